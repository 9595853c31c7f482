#!/bin/bash
# Migrations and upgrades:
#  1. schemas left by builds whose 001_init, 004_sources or 007_source_counts
#     had an older text (tests/fixtures/sql_history, from git history), with
#     those versions recorded: migrate gives each the shape a fresh migrate
#     makes (columns in order, types, defaults, constraints, indexes,
#     UNLOGGED, storage options, views), keeps their rows, and a sync then
#     mirrors the org exactly;
#  2. migrate while a sync holds the run lock: refused, naming the holder,
#     nothing applied; applied once the sync is gone;
#  3. a schema migrated by a newer bloomsync: migrate, sync and check refuse;
#  4. each migration is recorded with the md5 of its text; one applied from
#     another text is warned about.
. "$(dirname "$0")/lib.sh"

HIST=tests/fixtures/sql_history
new_db migrate18 || exit 1
start_sim --users 3 --meetings 2 || exit 1

# conf_for SCHEMA: a config file for that schema; prints its path.
conf_for() {
	SCHEMA=$1 write_conf "$TEST_TMP/$1.conf"
	echo "$TEST_TMP/$1.conf"
}

# describe SCHEMA: the schema's shape, a line per relation, table or view
# columns (in order), constraint, index and view, its name written S.
describe() {
	psql -XAtq -v ON_ERROR_STOP=1 -v s="$1" <<'SQL' | sed "s/\b$1\./S./g"
SET search_path = pg_catalog;
WITH rel AS (
  SELECT c.oid, c.relname, c.relkind, c.relpersistence, c.reloptions
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = :'s')
SELECT 'rel ' || relname || ' ' || relkind::text || ' ' || relpersistence::text || ' ' || coalesce(reloptions::text, '')
FROM rel
UNION ALL
SELECT 'col ' || r.relname || ': ' || string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
       || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
       || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), ''), ', ' ORDER BY a.attnum)
FROM rel r JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE r.relkind IN ('r', 'v')
GROUP BY r.relname
UNION ALL
SELECT 'con ' || r.relname || ' ' || co.conname || ' ' || pg_get_constraintdef(co.oid)
FROM rel r JOIN pg_constraint co ON co.conrelid = r.oid
UNION ALL
SELECT 'idx ' || indexname || ' ' || indexdef FROM pg_indexes WHERE schemaname = :'s'
UNION ALL
SELECT 'view ' || r.relname || ' ' || pg_get_viewdef(r.oid) FROM rel r WHERE r.relkind = 'v'
ORDER BY 1;
SQL
}

# old_schema SCHEMA FILE...: the schema as a build with those texts left it:
# each file run in order and its version (the name up to the first dot)
# recorded, in schema_migrations as bloomsync created it then.
old_schema() {
	s=$1
	shift
	{
		echo "SET client_min_messages = warning; DROP SCHEMA IF EXISTS $s CASCADE; CREATE SCHEMA $s;"
		echo "SET search_path TO $s, pg_catalog;"
		echo "CREATE TABLE schema_migrations (version text PRIMARY KEY,"
		echo "  applied_at timestamptz NOT NULL DEFAULT now());"
		for f in "$@"; do
			cat "$f"
			v=$(basename "$f" .sql)
			echo "INSERT INTO schema_migrations (version) VALUES ('${v%%.*}');"
		done
	} | psql -XAtq -v ON_ERROR_STOP=1 --single-transaction >/dev/null
	# a text that fails leaves no schema, and migrate would build a fresh
	# one: every check of the upgrade would then pass for nothing
	check "the old schema $s was built" test $? -eq 0
}

# ---------------------------------------------------------------------------
# 1. upgrades from the older texts
fresh=$(conf_for fresh18)
"$BLOOMSYNC" -c "$fresh" migrate >/dev/null 2>"$TEST_TMP/fresh.err"
expect_eq "a fresh migrate exits 0" $? 0
describe fresh18 >"$TEST_TMP/fresh.shape"
check "the fresh shape was read" test "$(grep -c '^col ' "$TEST_TMP/fresh.shape")" -ge 15

upgrade_matches() { # SCHEMA: migrate it; 0 when it then has the fresh shape
	"$BLOOMSYNC" -c "$(conf_for "$1")" migrate >"$TEST_TMP/$1.out" 2>"$TEST_TMP/$1.err"
	rc=$?
	if [ "$rc" -ne 0 ]; then
		echo "# migrate exited $rc:" >&2
		sed 's/^/#   /' "$TEST_TMP/$1.err" | tail -n 3 >&2
		return 1
	fi
	describe "$1" >"$TEST_TMP/$1.shape"
	if ! diff "$TEST_TMP/fresh.shape" "$TEST_TMP/$1.shape" >"$TEST_TMP/$1.diff"; then
		sed 's/^/#   /' "$TEST_TMP/$1.diff" | head -n 20 >&2
		return 1
	fi
	if grep -q "another text" "$TEST_TMP/$1.err"; then
		echo "# a checksum warning for migrations recorded without one" >&2
		return 1
	fi
}

# A schema migrated by the files as they were before 004b and 009: those
# two change nothing in it.
old_schema hcur sql/001_init.sql sql/002_more_streams.sql sql/003_views.sql sql/004_sources.sql \
	sql/005_units_lookup.sql sql/006_units_fillfactor.sql sql/007_source_counts.sql sql/008_run_streams.sql
check "a schema of the current texts: migrate changes nothing else" upgrade_matches hcur

# 001_init as first committed (f7afb35): foreign keys to sync_runs, sync_units
# keyed by (run_id, kind, ref); then as 14951ec and 8cee1a8 left it (no
# foreign keys; sync_seen UNLOGGED), still with that key. 005 fails on it
# without 004b.
for rev in f7afb35 14951ec 8cee1a8; do
	old_schema "h001_$rev" "$HIST/001_init.$rev.sql"
	q "INSERT INTO h001_$rev.sync_runs (status) VALUES ('failed');
	   INSERT INTO h001_$rev.sync_units (run_id, kind, ref)
	   SELECT id, 'users', 0 FROM h001_$rev.sync_runs UNION ALL SELECT id, 'user_meetings', 7 FROM h001_$rev.sync_runs"
	check "001_init of $rev: migrate gives the current shape" upgrade_matches "h001_$rev"
	expect_eq "001_init of $rev: the units are kept" "$(q "SELECT count(*) FROM h001_$rev.sync_units")" 2
done

# A schema of f7afb35 upgraded by dab950f: 002, 003 and 004_sources without
# sync_runs.sources_read; the next build's 005 failed on it.
old_schema h004 "$HIST/001_init.f7afb35.sql" sql/002_more_streams.sql sql/003_views.sql \
	"$HIST/004_sources.dab950f.sql"
check "004_sources of dab950f over 001_init of f7afb35: migrate gives the current shape" upgrade_matches h004
h004=$TEST_TMP/h004.conf
"$BLOOMSYNC" -c "$h004" sync 2>"$TEST_TMP/h004-sync.err"
expect_eq "a sync into the upgraded schema exits 0" $? 0
sim_get /__expect >"$TEST_TMP/expect.json"
chmod 644 "$TEST_TMP/expect.json"
check "the upgraded schema mirrors the org exactly" mirror_equals h004 "$TEST_TMP/expect.json"

# A schema of 473ba26 upgraded by dab950f (004 without sources_read), then
# by 924cfd2 (007 with rows_named integer[]), then by 7085221 (008): runs
# and sources recorded in that shape.
old_schema h007 sql/001_init.sql sql/002_more_streams.sql sql/003_views.sql "$HIST/004_sources.dab950f.sql" \
	sql/005_units_lookup.sql sql/006_units_fillfactor.sql "$HIST/007_source_counts.924cfd2.sql" \
	sql/008_run_streams.sql
q "INSERT INTO h007.sync_runs (status, streams) VALUES ('succeeded', 'users,meetings'), ('failed', NULL);
   INSERT INTO h007.sync_sources (kind, ref, digest, rows_named) VALUES
     ('', 1, 0, NULL), ('users', 0, 11, '{3,0,0,0,0,0,0,0,0,0,2}'), ('meeting', 7, 12, '{0,0,0,0,0,0,0,0,0,0,0}'),
     ('user', 5, 13, NULL)"
check "004_sources of dab950f and 007_source_counts of 924cfd2: migrate gives the current shape" \
	upgrade_matches h007
expect_eq "the runs keep their streams and get sources_read 0" \
	"$(q "SELECT string_agg(status || ':' || coalesce(streams, 'null') || ':' || sources_read, ' ' ORDER BY id)
	      FROM h007.sync_runs")" "succeeded:users,meetings:0 failed:null:0"
expect_eq "rows_named arrays become tbl:count pairs, NULL stays NULL" \
	"$(q "SELECT string_agg(kind || '=' || coalesce(rows_named, 'null'), ' ' ORDER BY kind, ref)
	      FROM h007.sync_sources")" "=null meeting= user=null users=0:3,10:2"

# ---------------------------------------------------------------------------
# 2. migrate while a sync runs
conf=$(conf_for bloom)
"$BLOOMSYNC" -c "$conf" migrate >/dev/null 2>&1
# 1 s a request: the sync is still running when migrate tries, however slow
# the (sanitizer) build; it is stopped right after, so this costs no time
start_sim --latency-ms 1000 --users 3 --meetings 2 || exit 1
slow=$TEST_TMP/slow.conf
write_conf "$slow"
"$BLOOMSYNC" -c "$slow" sync 2>"$TEST_TMP/slow-sync.err" &
bg=$!
BG_PIDS="$BG_PIDS $bg"
running=no
for _ in $(seq 1 100); do
	[ "$(q "SELECT status FROM bloom.sync_runs ORDER BY id DESC LIMIT 1" 2>/dev/null)" = running ] && {
		running=yes
		break
	}
	sleep 0.1
done
expect_eq "a sync is running" "$running" yes
q "DELETE FROM bloom.schema_migrations WHERE version = '008_run_streams'"
"$BLOOMSYNC" -c "$conf" migrate >"$TEST_TMP/locked.out" 2>"$TEST_TMP/locked.err"
rc=$?
# main.c should map LOAD_SQLSTATE_LOCKED to exit 3, as for a locked sync
expect_eq "migrate under a running sync exits 3, as a second sync does" "$rc" 3
grep -q "another sync holds the lock for schema bloom: .*pid $bg\b" "$TEST_TMP/locked.err"
check "it says a sync holds the lock and names it (pid $bg)" test $? -eq 0
[ "$FAILS" -eq 0 ] || sed 's/^/# /' "$TEST_TMP/locked.err" | tail -n 3
expect_eq "it applied nothing" "$(q "SELECT count(*) FROM bloom.schema_migrations WHERE version = '008_run_streams'")" 0
kill -0 "$bg" 2>/dev/null
check "the sync is still running" test $? -eq 0
kill -TERM "$bg"
wait "$bg"
expect_eq "the sync, stopped, exits 5" $? 5
BG_PIDS=""
"$BLOOMSYNC" -c "$conf" migrate >"$TEST_TMP/after.out" 2>"$TEST_TMP/after.err"
expect_eq "once the sync is gone migrate exits 0" $? 0
grep -q "1 migration applied" "$TEST_TMP/after.out"
check "and applies the pending migration" test $? -eq 0

# ---------------------------------------------------------------------------
# 3. a schema migrated by a newer bloomsync
q "INSERT INTO bloom.schema_migrations (version) VALUES ('990_from_the_future')"
want="schema bloom was migrated by a newer bloomsync (migration 990_from_the_future); upgrade bloomsync"
runs=$(q "SELECT count(*) || ' runs, ' || sum(resumed) || ' resumed' FROM bloom.sync_runs")
"$BLOOMSYNC" -c "$conf" migrate >/dev/null 2>"$TEST_TMP/newer-migrate.err"
check "migrate refuses a newer schema (exit $?)" test $? -ne 0
grep -qF "$want" "$TEST_TMP/newer-migrate.err"
check "migrate says the schema is newer and to upgrade" test $? -eq 0
"$BLOOMSYNC" -c "$conf" sync >/dev/null 2>"$TEST_TMP/newer-sync.err"
check "sync refuses a newer schema (exit $?)" test $? -ne 0
grep -qF "$want" "$TEST_TMP/newer-sync.err"
check "sync says the schema is newer and to upgrade" test $? -eq 0
expect_eq "the refused sync started or resumed no run" \
	"$(q "SELECT count(*) || ' runs, ' || sum(resumed) || ' resumed' FROM bloom.sync_runs")" "$runs"
"$BLOOMSYNC" -c "$conf" check >"$TEST_TMP/newer-check.out" 2>&1
grep -qF "database: FAIL $want" "$TEST_TMP/newer-check.out"
check "check says the schema is newer" test $? -eq 0
q "DELETE FROM bloom.schema_migrations WHERE version = '990_from_the_future'"

# ---------------------------------------------------------------------------
# 4. checksums
sums=$(LC_ALL=C; for f in sql/[0-9]*.sql; do printf '%s:%s\n' "$(basename "$f" .sql)" "$(md5sum <"$f" | cut -d ' ' -f 1)"; done)
expect_eq "each migration is recorded with the md5 of its file" \
	"$(q "SELECT version || ':' || checksum FROM fresh18.schema_migrations ORDER BY version COLLATE \"C\"")" "$sums"
q "UPDATE fresh18.schema_migrations SET checksum = md5('edited') WHERE version = '005_units_lookup'"
"$BLOOMSYNC" -c "$fresh" migrate >/dev/null 2>"$TEST_TMP/sum.err"
expect_eq "migrate with an applied text edited still exits 0" $? 0
grep -q "migration 005_units_lookup in schema fresh18 was applied from another text" "$TEST_TMP/sum.err"
check "it warns about the migration whose text differs" test $? -eq 0
grep -q "another text" "$TEST_TMP/fresh.err"
check "a fresh migrate warns about nothing" test $? -ne 0

finish
