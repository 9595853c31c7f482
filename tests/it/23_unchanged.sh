#!/bin/bash
# Sources whose body did not change (sql/004_sources.sql): a second sync
# skips every one of them and writes nothing; --full reads them all again;
# after an upstream change only the changed sources are read, and the mirror
# and its deletes stay exact; a source that vanished and comes back with the
# body it had before is read in full again (its rows, marked deleted in
# between, come back).
. "$(dirname "$0")/lib.sh"

new_db unchanged || exit 1
ORG="--users 30 --meetings 6"
start_sim $ORG || exit 1
sim_get /__expect >"$TEST_TMP/expect0.json" && chmod 644 "$TEST_TMP/expect0.json"
conf="$TEST_TMP/sync.conf"
write_conf "$conf"

# "units D/K, U unchanged" of a sync's summary, as "D K U"
units_line() {
	l=$(sed -n 's/.*units \([0-9]*\)\/\([0-9]*\), \([0-9]*\) unchanged.*/\1 \2 \3/p' "$1" | tail -n 1)
	echo "${l:-missing missing missing}"
}
unchanged_rows() {
	q "SELECT coalesce(sum(unchanged), 0) FROM bloom.sync_run_streams WHERE run_id = (SELECT max(id) FROM bloom.sync_runs)"
}

"$BLOOMSYNC" -c "$conf" sync 2>"$TEST_TMP/first.err"
expect_eq "the first sync exits 0" $? 0
read -r done1 known1 unchanged1 <<<"$(units_line "$TEST_TMP/first.err")"
expect_eq "the first sync reads every source in full" "$unchanged1" 0
check "the first sync knew and did every unit ($done1/$known1)" test "$known1" -gt 100 -a "$done1" = "$known1"
check "the first sync's mirror equals the expected mirror" mirror_equals bloom "$TEST_TMP/expect0.json"
sources=$(q "SELECT count(*) FROM bloom.sync_sources WHERE kind <> ''")
expect_eq "a digest is kept for every source read" "$sources" "$known1"

# no change upstream: every source skipped, nothing written
sim_post /__reset >/dev/null
before=$(mirror_writes)
"$BLOOMSYNC" -c "$conf" sync 2>"$TEST_TMP/second.err"
expect_eq "a no-change sync exits 0" $? 0
sleep 0.6 # let the statistics collector see the finished backend
read -r done2 known2 unchanged2 <<<"$(units_line "$TEST_TMP/second.err")"
expect_eq "a no-change sync finds every source unchanged" "$done2/$known2/$unchanged2" "$known1/$known1/$known1"
requests=$(json_get <(sim_get /__stats) 'd["total"]')
expect_eq "it still asks the API for every source (one request each)" "$requests" "$known1"
expect_eq "a no-change sync writes nothing to the mirror" "$(mirror_writes)" "$before"
rows=0
for t in $MIRROR_ALL_TABLES; do rows=$((rows + $(q "SELECT count(*) FROM bloom.$t"))); done
check "the skipped sources' rows count as unchanged ($(unchanged_rows) >= $rows mirror rows)" \
	test "$(unchanged_rows)" -ge "$rows"
deleted=$(deleted_rows bloom)
expect_eq "a no-change sync marks nothing deleted" "$deleted" 0

# The unchanged rows are counted from the counts recorded with each digest
# (sql/007_source_counts.sql); a digest without them (recorded before that
# migration) has its yields counted instead; the migration fills them in.
named=$(q "SELECT coalesce(sum(cardinality(k1)), 0) FROM bloom.sync_yields")
expect_eq "the unchanged rows are exactly the rows the sources named" "$(unchanged_rows)" "$named"
q "UPDATE bloom.sync_sources SET rows_named = CASE WHEN ref % 2 = 0 THEN NULL ELSE '99:1,x' END" >/dev/null
"$BLOOMSYNC" -c "$conf" sync 2>"$TEST_TMP/nocounts.err"
expect_eq "a no-change sync over digests without counts (or unreadable ones) exits 0" $? 0
expect_eq "it counts the same unchanged rows from the yields" "$(unchanged_rows)" "$named"
q "UPDATE bloom.sync_sources SET rows_named = NULL" >/dev/null
PGOPTIONS="-c search_path=bloom -c client_min_messages=warning" \
	psql -XAtq -v ON_ERROR_STOP=1 -f sql/007_source_counts.sql >/dev/null
expect_eq "migration 007 gives every source its counts" \
	"$(q "SELECT count(*) FROM bloom.sync_sources WHERE kind <> '' AND rows_named IS NULL")" 0
"$BLOOMSYNC" -c "$conf" sync 2>"$TEST_TMP/backfilled.err"
expect_eq "and a no-change sync counts them the same ($named)" "$(unchanged_rows)" "$named"

# --full: every body mapped and compared again; still nothing written
"$BLOOMSYNC" -c "$conf" sync --full 2>"$TEST_TMP/full.err"
expect_eq "sync --full exits 0" $? 0
sleep 0.6
read -r _ _ unchanged3 <<<"$(units_line "$TEST_TMP/full.err")"
expect_eq "sync --full skips no source" "$unchanged3" 0
expect_eq "sync --full of an unchanged org writes nothing" "$(mirror_writes)" "$before"

# a change upstream: only the changed sources are read; exact mirror and deletes
sim_post /__mutate >/dev/null
sim_get /__expect >"$TEST_TMP/expect1.json" && chmod 644 "$TEST_TMP/expect1.json"
"$BLOOMSYNC" -c "$conf" sync 2>"$TEST_TMP/mutated.err"
expect_eq "the sync after a mutation exits 0" $? 0
read -r done4 known4 unchanged4 <<<"$(units_line "$TEST_TMP/mutated.err")"
check "some sources changed, others did not ($unchanged4 of $done4 unchanged)" \
	test "$unchanged4" -gt 0 -a "$unchanged4" -lt "$done4"
check "the mirror equals the mutated org's expected mirror" mirror_equals bloom "$TEST_TMP/expect1.json"
removed=$(removed_keys "$TEST_TMP/expect0.json" "$TEST_TMP/expect1.json")
deleted=$(deleted_rows bloom)
check "rows removed upstream ($removed) are exactly the rows marked deleted ($deleted)" \
	test "$removed" -gt 0 -a "$removed" = "$deleted"
sources=$(q "SELECT count(*) FROM bloom.sync_sources WHERE kind <> ''")
expect_eq "a complete run keeps the digests of its own sources only" "$sources" "$known4"

# the first org again, from a bloomsim that never mutated: the removed
# users' sources come back with the bodies they had in the first sync; they
# must be read again (not skipped over rows marked deleted since)
start_sim $ORG || exit 1
write_conf "$conf"
"$BLOOMSYNC" -c "$conf" sync 2>"$TEST_TMP/back.err"
expect_eq "the sync of the first org again exits 0" $? 0
check "the mirror equals the first org's expected mirror again" mirror_equals bloom "$TEST_TMP/expect0.json"
read -r done5 _ unchanged5 <<<"$(units_line "$TEST_TMP/back.err")"
check "sources that came back were read in full ($unchanged5 of $done5 unchanged)" test "$unchanged5" -lt "$done5"

# A server crash empties the UNLOGGED sync_sources and sync_yields: the next
# sync reads everything in full and the mirror stays exact.
q "TRUNCATE bloom.sync_sources, bloom.sync_yields"
before=$(mirror_writes)
"$BLOOMSYNC" -c "$conf" sync 2>"$TEST_TMP/lost.err"
expect_eq "a sync after the digests were lost exits 0" $? 0
sleep 0.6
read -r _ _ unchanged6 <<<"$(units_line "$TEST_TMP/lost.err")"
expect_eq "with no digests every source is read in full" "$unchanged6" 0
expect_eq "and, the org unchanged, nothing is written" "$(mirror_writes)" "$before"
check "the mirror still equals the first org's expected mirror" mirror_equals bloom "$TEST_TMP/expect0.json"
finish
