#!/bin/bash
# The sync against bloomsim's default org: exact mirror, idempotent second
# run, mutations, bounded concurrency, migrate idempotence, exit codes.
. "$(dirname "$0")/lib.sh"

new_db sync20 || exit 1
start_sim --latency-ms 20 --jitter-ms 5 || exit 1
CONCURRENCY=6 write_conf "$TEST_TMP/b.conf"
conf="$TEST_TMP/b.conf"

# migrate: creates every contract table, twice without harm
check "migrate applies the schema" "$BLOOMSYNC" -c "$conf" migrate
check "migrate is idempotent" "$BLOOMSYNC" -c "$conf" migrate
tables=$(q "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'bloom'
  AND column_name IN ('raw','first_seen_at','updated_at','deleted_at')
  AND table_name IN ('users','meetings','meeting_attendees','todos','measurables','meeting_measurables','scores')")
expect_eq "all seven mirror tables carry raw/first_seen_at/updated_at/deleted_at" "$tables" 28

# first sync: the mirror equals bloomsim's expected mirror, every column
sim_post /__reset >/dev/null
"$BLOOMSYNC" -c "$conf" sync 2>"$TEST_TMP/sync1.err"
expect_eq "first sync exits 0" $? 0
sim_get /__expect >"$TEST_TMP/expect1.json"
chmod 644 "$TEST_TMP/expect1.json"
check "mirror equals the expected mirror after the first sync" mirror_equals bloom "$TEST_TMP/expect1.json"
sim_get /__stats >"$TEST_TMP/stats1.json"
peak=$(json_get "$TEST_TMP/stats1.json" 'd["peak_inflight"]')
expect_eq "peak in-flight requests reached api.concurrency and never exceeded it" "$peak" 6
grep -q "succeeded" "$TEST_TMP/sync1.err"
check "the summary says the run succeeded" test $? -eq 0
status=$(q "SELECT status FROM bloom.sync_runs ORDER BY id DESC LIMIT 1")
expect_eq "sync_runs records the run as succeeded" "$status" succeeded
nul=$(q "SELECT count(*) FROM bloom.todos WHERE position(chr(1) in name) > 0 OR raw::text LIKE '%\\\\u0000%'")
expect_eq "no NUL survives in names or raw" "$nul" 0
quirky=$(q "SELECT count(*) FROM bloom.users WHERE name ~ '[^\\x01-\\x7f]'")
check "non-ASCII names are stored ($quirky users)" test "$quirky" -gt 0
long=$(q "SELECT max(length(name)) FROM bloom.todos")
check "a very long todo name is stored whole ($long chars)" test "$long" -gt 30000
grep -q "$KEY" "$TEST_TMP/sync1.err"
check "the key never appears in the output" test $? -ne 0
keyrows=$(q "SELECT count(*) FROM bloom.sync_runs WHERE coalesce(error,'') LIKE '%$KEY%'")
expect_eq "the key never appears in the run records" "$keyrows" 0

# second sync with no upstream change writes nothing into the mirror tables
before=$(mirror_writes)
"$BLOOMSYNC" -c "$conf" sync 2>"$TEST_TMP/sync2.err"
expect_eq "second sync exits 0" $? 0
sleep 0.6 # let the statistics collector see the finished backend
after=$(mirror_writes)
expect_eq "a no-change sync inserts, updates and deletes nothing in the mirror" "$after" "$before"
check "mirror still equals the expected mirror" mirror_equals bloom "$TEST_TMP/expect1.json"

# upstream changes: edits, additions and removals are mirrored
sim_post /__mutate >/dev/null
"$BLOOMSYNC" -c "$conf" sync 2>"$TEST_TMP/sync3.err"
expect_eq "sync after a mutation exits 0" $? 0
sim_get /__expect >"$TEST_TMP/expect2.json"
chmod 644 "$TEST_TMP/expect2.json"
check "mirror equals the mutated org's expected mirror" mirror_equals bloom "$TEST_TMP/expect2.json"
removed=$(removed_keys "$TEST_TMP/expect1.json" "$TEST_TMP/expect2.json")
deleted=$(deleted_rows bloom)
check "rows removed upstream ($removed) are exactly the rows marked deleted ($deleted)" test "$removed" -gt 0 -a "$removed" = "$deleted"

# whatever client encoding the environment or the role asks for, bytes go
# in as the UTF-8 they are (not as LATIN1 characters: mojibake)
saved_db=$PGDATABASE
new_db sync20latin1 || exit 1
write_conf "$TEST_TMP/latin1.conf"
PGCLIENTENCODING=LATIN1 "$BLOOMSYNC" -c "$TEST_TMP/latin1.conf" sync 2>"$TEST_TMP/latin1.err"
expect_eq "sync with PGCLIENTENCODING=LATIN1 exits 0" $? 0
check "with PGCLIENTENCODING=LATIN1 the mirror equals the expected mirror (names with accents intact)" \
	mirror_equals bloom "$TEST_TMP/expect2.json"
export PGDATABASE=$saved_db

# status shows the runs
"$BLOOMSYNC" -c "$conf" status >"$TEST_TMP/status.out" 2>&1
check "status lists the three runs" test "$(grep -c succeeded "$TEST_TMP/status.out")" -eq 3
"$BLOOMSYNC" -c "$conf" status --json >"$TEST_TMP/status.json" 2>&1
n=$(json_get "$TEST_TMP/status.json" 'len(d["runs"])')
expect_eq "status --json lists the three runs" "$n" 3
# status on a database never migrated: no runs, and still JSON with --json
saved_db=$PGDATABASE
new_db sync20empty || exit 1
write_conf "$TEST_TMP/empty.conf"
"$BLOOMSYNC" -c "$TEST_TMP/empty.conf" status --json >"$TEST_TMP/empty.json" 2>"$TEST_TMP/empty.err"
rc=$?
n=$(json_get "$TEST_TMP/empty.json" 'len(d["runs"])' 2>/dev/null)
check "status --json before any migration: a JSON document with no runs, exit 0 (rc $rc)" \
	test "$n" = 0 -a $rc -eq 0
export PGDATABASE=$saved_db
# a run longer than a day (a failed run resumed days later keeps its start)
first=$(q "SELECT min(id) FROM bloom.sync_runs")
q "UPDATE bloom.sync_runs SET started_at = finished_at - interval '26 hours 5 minutes' WHERE id = $first" >/dev/null
"$BLOOMSYNC" -c "$conf" status >"$TEST_TMP/status2.out" 2>&1
check "status shows a 26 h 5 min run as 26:05:00" grep -q "^$first .* 26:05:00 " "$TEST_TMP/status2.out"

# a wrong key: exit 4, clear message, run recorded as failed, key not printed
cat "$conf" | sed "s/key = \"$KEY\"/key = \"wrong-key-0000\"/" >"$TEST_TMP/bad.conf"
chmod 600 "$TEST_TMP/bad.conf"
"$BLOOMSYNC" -c "$TEST_TMP/bad.conf" sync 2>"$TEST_TMP/badkey.err"
expect_eq "a rejected key exits 4" $? 4
grep -qi "rejected the key" "$TEST_TMP/badkey.err"
check "the message says the key was rejected" test $? -eq 0
grep -q "wrong-key-0000" "$TEST_TMP/badkey.err"
check "the rejected key is not printed" test $? -ne 0
"$BLOOMSYNC" -c "$TEST_TMP/bad.conf" check >"$TEST_TMP/check.out" 2>&1
expect_eq "check with a rejected key exits 4" $? 4
"$BLOOMSYNC" -c "$conf" sync --restart 2>/dev/null
expect_eq "sync --restart after the failed run exits 0" $? 0
"$BLOOMSYNC" -c "$conf" check >"$TEST_TMP/check2.out" 2>&1
expect_eq "check passes with the right key and a migrated database" $? 0

# bad config lines: FILE:LINE and the setting, exit 2
printf 'api = { concurrency = 0; };\n' >"$TEST_TMP/c1.conf"
"$BLOOMSYNC" -c "$TEST_TMP/c1.conf" check 2>"$TEST_TMP/c1.err"
rc=$?
grep -q "c1.conf:1: api.concurrency" "$TEST_TMP/c1.err"
check "an out-of-range value names file, line and setting, exit 2 (rc $rc)" test $? -eq 0 -a $rc -eq 2
printf 'api = {\n  concurreny = 3;\n};\n' >"$TEST_TMP/c2.conf"
"$BLOOMSYNC" -c "$TEST_TMP/c2.conf" check 2>"$TEST_TMP/c2.err"
rc=$?
grep -q "c2.conf:2: .*concurreny" "$TEST_TMP/c2.err"
check "an unknown setting names file, line and setting, exit 2 (rc $rc)" test $? -eq 0 -a $rc -eq 2
"$BLOOMSYNC" -c "$TEST_TMP/none.conf" check 2>/dev/null
expect_eq "a missing config file exits 2" $? 2
"$BLOOMSYNC" frobnicate 2>/dev/null
expect_eq "an unknown command exits 2" $? 2
"$BLOOMSYNC" -c "" check 2>"$TEST_TMP/empty-c.err"
rc=$?
grep -q "config file path is empty" "$TEST_TMP/empty-c.err"
check "-c with an empty path exits 2 and says so, not falling back to the default file (rc $rc)" \
	test $? -eq 0 -a $rc -eq 2
"$BLOOMSYNC" version --help >"$TEST_TMP/vhelp.out" 2>&1
rc=$?
grep -q "^usage: bloomsync version" "$TEST_TMP/vhelp.out"
check "version --help prints the command's usage, exit 0 (rc $rc)" test $? -eq 0 -a $rc -eq 0

# A server that accepts and never answers: the default connect_timeout
# (10 s) ends the wait with exit 1, where libpq alone would wait forever.
python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
print(s.getsockname()[1], flush=True)
held = []
s.settimeout(0.5)
end = time.time() + 60
while time.time() < end:
    try: held.append(s.accept()[0])
    except socket.timeout: pass
' >"$TEST_TMP/silent.port" &
silent=$!
BG_PIDS="$BG_PIDS $silent"
for _ in $(seq 1 50); do [ -s "$TEST_TMP/silent.port" ] && break; sleep 0.1; done
write_conf "$TEST_TMP/silent.conf" "" "conninfo = \"host=127.0.0.1 port=$(cat "$TEST_TMP/silent.port") dbname=x sslmode=disable\";"
sed -i '0,/conninfo = "dbname=/{/conninfo = "dbname=/d}' "$TEST_TMP/silent.conf"
t0=$(date +%s)
env -u PGCONNECT_TIMEOUT timeout 60 "$BLOOMSYNC" -c "$TEST_TMP/silent.conf" migrate 2>"$TEST_TMP/silent.err"
rc=$?
t1=$(date +%s)
kill "$silent" 2>/dev/null
grep -q "timeout expired" "$TEST_TMP/silent.err"
check "a database server that never answers: exit 1 after the default connect timeout (rc $rc, $((t1 - t0)) s)" \
	test $? -eq 0 -a $rc -eq 1 -a $((t1 - t0)) -lt 30

# The progress line: on a terminal with text logs, not with --log-format json
# (its lines must stay JSON). script(1) gives the sync a terminal.
if command -v script >/dev/null; then
	new_db sync20tty || exit 1
	write_conf "$TEST_TMP/tty.conf"
	script -qec "'$BLOOMSYNC' -c '$TEST_TMP/tty.conf' sync" /dev/null >"$TEST_TMP/tty.text" 2>&1
	# the progress line is redrawn in place: carriage return, erase line (ESC [ K)
	grep -q $'\r\033\[Kunits [0-9]*/[0-9]*' "$TEST_TMP/tty.text"
	check "a sync on a terminal shows the progress line" test $? -eq 0
	new_db sync20ttyjson || exit 1
	write_conf "$TEST_TMP/tty.conf"
	script -qec "'$BLOOMSYNC' -c '$TEST_TMP/tty.conf' --log-format json sync 2>&1 >/dev/null" /dev/null \
		>"$TEST_TMP/tty.json" 2>&1
	grep -q $'\033\[K' "$TEST_TMP/tty.json"
	check "with --log-format json on a terminal, no progress line" test $? -ne 0
	grep -q '"stream":"scores".*"msg":"summary: requests=[0-9]' "$TEST_TMP/tty.json"
	check "with --log-format json, the summary comes as log lines, one per stream" test $? -eq 0
	bad=$(tr -d '\r' <"$TEST_TMP/tty.json" | python3 -c '
import json, sys
lines = [l for l in sys.stdin.read().split("\n") if l.strip()]
bad = 0
for l in lines:
    try:
        json.loads(l)
    except ValueError:
        bad += 1
print(bad if lines else -1)')
	expect_eq "with --log-format json on a terminal, every log line is JSON" "$bad" 0
	unnamed=$(tr -d '\r' <"$TEST_TMP/tty.json" | python3 -c '
import json, sys
lines = [json.loads(l) for l in sys.stdin.read().split("\n") if l.strip()]
summary = [l for l in lines if "summary: " in l.get("msg", "") or " succeeded in " in l.get("msg", "")]
print(sum(1 for l in summary if not l.get("run_id")) if summary else -1)')
	expect_eq "with --log-format json, every summary line names its run_id" "$unnamed" 0
else
	ok "progress line on a terminal # SKIP script(1) not available"
fi

# valgrind (memcheck) on a full sync of the plain build: no leaks, no errors
if command -v valgrind >/dev/null && [ -x "${BLOOMSYNC_PLAIN:-}" ]; then
	new_db sync20vg || exit 1
	write_conf "$TEST_TMP/vg.conf"
	valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
		"$BLOOMSYNC_PLAIN" -c "$TEST_TMP/vg.conf" sync 2>"$TEST_TMP/vg.err"
	rc=$?
	[ $rc -eq 0 ] || grep -E '==[0-9]+==' "$TEST_TMP/vg.err" | head -n 40 | sed 's/^/# /'
	expect_eq "valgrind reports no leaks and no errors on a full sync" "$rc" 0
	check "the valgrind run mirrors the org exactly" mirror_equals bloom "$TEST_TMP/expect2.json"
else
	ok "valgrind full sync # SKIP valgrind or the plain build is not available"
fi

finish
