#!/bin/bash
# Operations: make install, the man page, the systemd units, the metrics file
# (format, carry-over of the last success through failed, locked and
# cancelled runs), status output, and the least-privilege roles of
# deploy/roles.sql against the real PostgreSQL.
. "$(dirname "$0")/lib.sh"

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$(realpath "$BLOOMSYNC")
# ---------------------------------------------------------------------------
# make install into a staging root (-o: install the binary already built, do not rebuild it)
dest="$TEST_TMP/root"
make -s -C "$ROOT" -o build/bloomsync install DESTDIR="$dest" PREFIX=/usr >"$TEST_TMP/install.out" 2>&1
rc=$?
expect_eq "make install DESTDIR=... PREFIX=/usr succeeds" "$rc" 0
[ "$rc" -eq 0 ] || sed 's/^/# /' "$TEST_TMP/install.out" | tail -n 10
check "make install puts bin/bloomsync in place, executable" test -x "$dest/usr/bin/bloomsync"
check "make install puts the man page in share/man/man1" test -f "$dest/usr/share/man/man1/bloomsync.1"
check "make install puts the example config in share/bloomsync" \
	test -f "$dest/usr/share/bloomsync/bloomsync.conf.example"
"$dest/usr/bin/bloomsync" version >"$TEST_TMP/version.out" 2>&1
check "the installed binary runs (bloomsync version)" grep -q '^bloomsync [0-9]' "$TEST_TMP/version.out"

# ---------------------------------------------------------------------------
# the man page
man_page="$ROOT/docs/bloomsync.1"
if command -v groff >/dev/null 2>&1; then
	groff -man -ww -z "$man_page" >/dev/null 2>"$TEST_TMP/groff.err"
	check "groff -man -ww finds nothing to warn about in bloomsync.1" test ! -s "$TEST_TMP/groff.err"
	sed 's/^/# /' "$TEST_TMP/groff.err" | head -n 5
else
	ok "groff -ww on bloomsync.1 # SKIP groff not available"
fi
if command -v man >/dev/null 2>&1; then
	MANWIDTH=80 man --warnings -l "$man_page" >"$TEST_TMP/man.out" 2>"$TEST_TMP/man.err"
	rc=$?
	check "man -l renders bloomsync.1 without warnings (exit $rc)" test "$rc" -eq 0 -a ! -s "$TEST_TMP/man.err"
	sed 's/^/# /' "$TEST_TMP/man.err" | head -n 5
	for section in NAME SYNOPSIS DESCRIPTION COMMANDS OPTIONS CONFIGURATION ENVIRONMENT "EXIT STATUS" FILES \
		EXAMPLES "SEE ALSO"; do
		grep -q "^$section\$" "$TEST_TMP/man.out" || not_ok "the man page has no $section section"
	done
	ok "the man page has every section"
	# every setting of config.c's table is documented, under its group
	missing=""
	for setting in $(sed -n 's/^[[:space:]]*{ *"\([a-z_.]*\)", CFG_.*/\1/p' "$ROOT/src/config.c"); do
		leaf=${setting##*.}
		sed -n '/^CONFIGURATION$/,/^ENVIRONMENT$/p' "$TEST_TMP/man.out" | grep -q "^       $leaf\b" ||
			missing="$missing $setting"
	done
	expect_eq "the man page documents every setting of src/config.c" "${missing:-none}" none
	for code in 0 1 2 3 4 5; do
		sed -n '/^EXIT STATUS$/,/^[A-Z]/p' "$TEST_TMP/man.out" | grep -q "^       $code " ||
			not_ok "the man page does not document exit status $code"
	done
	ok "the man page documents exit statuses 0 to 5"
else
	ok "man -l renders bloomsync.1 # SKIP man not available"
fi

# ---------------------------------------------------------------------------
# the systemd units
if command -v systemd-analyze >/dev/null 2>&1; then
	units="$TEST_TMP/units"
	mkdir -p "$units"
	grep -qxF 'ExecStart=/usr/local/bin/bloomsync -c /etc/bloomsync/bloomsync.conf --metrics-file /var/lib/node_exporter/textfile_collector/bloomsync.prom sync' \
		"$ROOT/deploy/bloomsync.service"
	check "bloomsync.service runs the installed binary with the metrics file" test $? -eq 0
	# verify checks that ExecStart's binary exists: point it at the one built here
	sed "s#^ExecStart=/usr/local/bin/bloomsync #ExecStart=$BIN #" "$ROOT/deploy/bloomsync.service" \
		>"$units/bloomsync.service"
	cp "$ROOT/deploy/bloomsync.timer" "$units/bloomsync.timer"
	# and Documentation=man:bloomsync(1) resolves to the page installed above
	MANPATH="$dest/usr/share/man" systemd-analyze verify "$units/bloomsync.service" "$units/bloomsync.timer" \
		>"$TEST_TMP/verify.out" 2>&1
	rc=$?
	check "systemd-analyze verify accepts bloomsync.service and bloomsync.timer (exit $rc)" \
		test "$rc" -eq 0 -a ! -s "$TEST_TMP/verify.out"
	sed 's/^/# /' "$TEST_TMP/verify.out" | head -n 10
else
	ok "systemd-analyze verify # SKIP systemd-analyze not available"
fi

# ---------------------------------------------------------------------------
# a successful sync writes the metrics file
new_db ops50 || exit 1
start_sim || exit 1
conf="$TEST_TMP/ops.conf"
write_conf "$conf"
mdir="$TEST_TMP/textfile"
mkdir -p "$mdir"
prom="$mdir/bloomsync.prom"
"$BLOOMSYNC" -c "$conf" --metrics-file "$prom" sync 2>"$TEST_TMP/sync1.err"
expect_eq "sync with --metrics-file exits 0" $? 0
check "the metrics file exists" test -f "$prom"
bad=$(grep -Ev "$PROM_SAMPLE" "$prom" | grep -Ev "$PROM_COMMENT")
expect_eq "every line of the metrics file is in the Prometheus text format" "${bad:-none}" none
expect_eq "bloomsync_last_run_success is 1" "$(metric "$prom" bloomsync_last_run_success)" 1
expect_eq "bloomsync_last_run_status{status=\"succeeded\"} is 1" \
	"$(metric "$prom" 'bloomsync_last_run_status{status="succeeded"}')" 1
# the streams of the end-of-run summary (its table between the header and "total")
want_streams=$(sed -n '/^stream  *requests/,/^total /p' "$TEST_TMP/sync1.err" | sed '1d;$d' | awk '{print $1}' |
	sort | tr '\n' ' ')
streams=$(sed -n 's/^bloomsync_last_run_requests{stream="\([a-z_]*\)"} [0-9]*$/\1/p' "$prom" | sort | tr '\n' ' ')
check "the summary lists streams (${want_streams% })" test -n "$want_streams"
expect_eq "requests are labelled with every stream of the summary" "$streams" "$want_streams"
users_inserted=$(metric "$prom" 'bloomsync_last_run_rows{stream="users",outcome="inserted"}')
db_users=$(q "SELECT count(*) FROM bloom.users")
expect_eq "rows inserted into users match the table" "$users_inserted" "$db_users"
run_id=$(q "SELECT max(id) FROM bloom.sync_runs")
expect_eq "bloomsync_last_run_id is the run's id" "$(metric "$prom" bloomsync_last_run_id)" "$run_id"
success1=$(metric "$prom" bloomsync_last_success_timestamp_seconds)
end1=$(metric "$prom" bloomsync_last_run_end_timestamp_seconds)
expect_eq "the last success is the end of this run" "$success1" "$end1"
now=$(date +%s)
check "the last success is a recent Unix time ($success1)" test "$success1" -gt $((now - 600)) -a "$success1" -le "$now"
expect_eq "the metrics file is mode 644" "$(stat -c %a "$prom")" 644
expect_eq "no temporary file is left in the textfile directory" "$(ls -A "$mdir")" bloomsync.prom
grep -q "$KEY" "$prom"
check "the key is not in the metrics file" test $? -ne 0

# metrics_file from the config, without the option
conf_m="$TEST_TMP/ops-m.conf"
write_conf "$conf_m"
echo "metrics_file = \"$mdir/from-config.prom\";" >>"$conf_m"
"$BLOOMSYNC" -c "$conf_m" sync 2>"$TEST_TMP/sync1m.err"
expect_eq "sync with metrics_file in the config exits 0" $? 0
expect_eq "the config's metrics_file is written" "$(metric "$mdir/from-config.prom" bloomsync_last_run_success)" 1

# a run with a wrong key: exit 4, success 0, the last success carried over
sleep 1 # a later second, so a wrongly refreshed timestamp would show
conf_bad="$TEST_TMP/ops-bad.conf"
KEY=wrong-key-for-ops write_conf "$conf_bad"
"$BLOOMSYNC" -c "$conf_bad" --metrics-file "$prom" sync 2>"$TEST_TMP/sync2.err"
expect_eq "sync with a wrong key exits 4" $? 4
expect_eq "after it, bloomsync_last_run_success is 0" "$(metric "$prom" bloomsync_last_run_success)" 0
expect_eq "after it, bloomsync_last_run_status{status=\"auth\"} is 1" \
	"$(metric "$prom" 'bloomsync_last_run_status{status="auth"}')" 1
expect_eq "the failed run keeps the earlier last success" \
	"$(metric "$prom" bloomsync_last_success_timestamp_seconds)" "$success1"
bad=$(grep -Ev "$PROM_SAMPLE" "$prom" | grep -Ev "$PROM_COMMENT")
expect_eq "the failed run's metrics file is in the text format too" "${bad:-none}" none

# wait_under_way PID: the sync PID (kept in bg) has a running run with units done
wait_under_way() {
	bg=$1
	BG_PIDS="$BG_PIDS $bg"
	for _ in $(seq 1 150); do
		[ "$(q "SELECT count(*) FROM bloom.sync_runs WHERE status = 'running' AND units_done > 0")" = 1 ] && break
		sleep 0.1
	done
}

# a run locked out by a running one, then that one cancelled: both carry the last success
sim_post /__faults '{"latency_ms":200}' >/dev/null
sim_post /__mutate >/dev/null
"$BLOOMSYNC" -c "$conf" --metrics-file "$mdir/bg.prom" sync --restart 2>"$TEST_TMP/bg.err" &
wait_under_way $!
"$BLOOMSYNC" -c "$conf" --metrics-file "$prom" sync 2>"$TEST_TMP/sync3.err"
expect_eq "a sync while another runs exits 3" $? 3
expect_eq "its metrics say locked" "$(metric "$prom" 'bloomsync_last_run_status{status="locked"}')" 1
expect_eq "the locked-out run keeps the earlier last success" \
	"$(metric "$prom" bloomsync_last_success_timestamp_seconds)" "$success1"
cp "$prom" "$mdir/locked.prom.txt"
kill -HUP "$bg" # as SIGTERM (the terminal of a backfill went away)
wait "$bg"
rc=$?
BG_PIDS=""
expect_eq "the running sync, sent SIGHUP, exits 5" "$rc" 5
expect_eq "its metrics say cancelled" "$(metric "$mdir/bg.prom" 'bloomsync_last_run_status{status="cancelled"}')" 1
expect_eq "the cancelled run carries no last success of its own (none in its file)" \
	"$(metric "$mdir/bg.prom" bloomsync_last_success_timestamp_seconds)" 0
sim_post /__faults '{"latency_ms":0}' >/dev/null
"$BLOOMSYNC" -c "$conf" --metrics-file "$prom" sync 2>"$TEST_TMP/sync4.err"
expect_eq "the next sync resumes and exits 0" $? 0
expect_eq "its metrics say resumed" "$(metric "$prom" bloomsync_last_run_resumed)" 1
success2=$(metric "$prom" bloomsync_last_success_timestamp_seconds)
check "a new success moves the last success forward ($success1 -> $success2)" test "$success2" -gt "$success1"
# under nohup (SIGHUP ignored) a hangup does not stop the run
sim_post /__faults '{"latency_ms":50}' >/dev/null
sim_post /__mutate >/dev/null
nohup "$BLOOMSYNC" -c "$conf" sync >/dev/null 2>"$TEST_TMP/nohup.err" &
wait_under_way $!
kill -HUP "$bg"
wait "$bg"
rc=$?
BG_PIDS=""
expect_eq "a sync under nohup, sent SIGHUP, runs on and exits 0" "$rc" 0
sim_post /__faults '{"latency_ms":0}' >/dev/null

# ---------------------------------------------------------------------------
# status, as a table and as JSON
"$BLOOMSYNC" -c "$conf" status >"$TEST_TMP/status.out" 2>"$TEST_TMP/status.err"
expect_eq "status exits 0" $? 0
head -n 1 "$TEST_TMP/status.out" | grep -Eq '^id +started \(UTC\) +duration +status +rows changed +requests +error$'
check "status prints the table header" test $? -eq 0
"$BLOOMSYNC" -c "$conf" status --json >"$TEST_TMP/status.json" 2>"$TEST_TMP/status.err"
expect_eq "status --json exits 0" $? 0
n=$(json_get "$TEST_TMP/status.json" 'len(d["runs"])' 2>/dev/null)
check "status --json is valid JSON listing the runs ($n)" test "${n:-0}" -ge 3
latest=$(json_get "$TEST_TMP/status.json" 'd["runs"][0]["status"]' 2>/dev/null)
expect_eq "status --json shows the latest run first" "$latest" succeeded
# a stop signal ends status (and migrate, check) waiting on a lock, as it ends sync
psql -XAtq -c "BEGIN; LOCK TABLE bloom.sync_runs IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(60)" \
	>/dev/null 2>&1 &
locker=$!
BG_PIDS="$BG_PIDS $locker"
for _ in $(seq 1 50); do
	[ "$(q "SELECT count(*) FROM pg_locks WHERE relation = 'bloom.sync_runs'::regclass AND mode = 'AccessExclusiveLock' AND granted")" = 1 ] && break
	sleep 0.1
done
"$BLOOMSYNC" -c "$conf" status >/dev/null 2>"$TEST_TMP/status-locked.err" &
st=$!
BG_PIDS="$BG_PIDS $st"
sleep 1
kill -TERM "$st"
for _ in $(seq 1 300); do kill -0 "$st" 2>/dev/null || break; sleep 0.1; done
kill -0 "$st" 2>/dev/null
check "status waiting on a lock ends at SIGTERM (within 30 s)" test $? -ne 0
wait "$st"
expect_eq "and exits 5 (cancelled)" $? 5
q "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'BEGIN; LOCK TABLE bloom.sync_runs%'" >/dev/null
wait "$locker" 2>/dev/null
BG_PIDS=""

# ---------------------------------------------------------------------------
# deploy/roles.sql: bloomsync runs as bloomsync_owner; bloomsync_reader reads only
new_db ops50_roles || exit 1
# a first migrate as the superuser: roles.sql hands its tables over
SCHEMA=mirror write_conf "$TEST_TMP/super.conf"
"$BLOOMSYNC" -c "$TEST_TMP/super.conf" migrate >/dev/null 2>&1
psql -XAtq -v ON_ERROR_STOP=1 -v schema=mirror -f "$ROOT/deploy/roles.sql" >"$TEST_TMP/roles.out" 2>&1
expect_eq "roles.sql runs (schema mirror)" $? 0
psql -XAtq -v ON_ERROR_STOP=1 -v schema=mirror -f "$ROOT/deploy/roles.sql" >"$TEST_TMP/roles2.out" 2>&1
expect_eq "roles.sql runs again without error" $? 0
others=$(q "SELECT count(*) FROM pg_tables WHERE schemaname = 'mirror' AND tableowner <> 'bloomsync_owner'")
expect_eq "every table of the schema is owned by bloomsync_owner" "$others" 0
SCHEMA=mirror write_conf "$TEST_TMP/owner.conf"
sed -i "s/conninfo = \"dbname=$PGDATABASE\"/conninfo = \"dbname=$PGDATABASE user=bloomsync_owner\"/" \
	"$TEST_TMP/owner.conf"
sim_post /__reset >/dev/null
"$BLOOMSYNC" -c "$TEST_TMP/owner.conf" sync 2>"$TEST_TMP/owner.err"
rc=$?
expect_eq "sync as bloomsync_owner exits 0" "$rc" 0
[ "$rc" -eq 0 ] || sed 's/^/# /' "$TEST_TMP/owner.err" | tail -n 5
psql -XAtq -v ON_ERROR_STOP=1 -c "CREATE TABLE mirror.later (id int)" -U bloomsync_owner
expect_eq "bloomsync_owner can create tables in the schema (future migrations)" $? 0
psql -XAtq -c "CREATE ROLE ops50_bi LOGIN IN ROLE bloomsync_reader" >/dev/null 2>&1
n=$(psql -XAtq -U ops50_bi -c "SELECT count(*) FROM mirror.users" 2>&1)
check "bloomsync_reader can read the mirror ($n users)" test "$n" -gt 0 2>/dev/null
n=$(psql -XAtq -U ops50_bi -c "SELECT count(*) FROM mirror.later" 2>&1)
expect_eq "bloomsync_reader can read a table created later (default privileges)" "$n" 0
psql -XAtq -U ops50_bi -c "UPDATE mirror.users SET name = 'x'" >/dev/null 2>&1
check "bloomsync_reader cannot write" test $? -ne 0
psql -XAtq -U ops50_bi -c "CREATE TABLE mirror.mine (id int)" >/dev/null 2>&1
check "bloomsync_reader cannot create in the schema" test $? -ne 0

# check says when the role cannot do what a sync does (reachable is not enough)
role_check() { # ROLE SCHEMA OUT: check as ROLE on SCHEMA; exit code
	SCHEMA=$2 write_conf "$TEST_TMP/$3.conf"
	sed -i "s/conninfo = \"dbname=$PGDATABASE\"/conninfo = \"dbname=$PGDATABASE user=$1\"/" "$TEST_TMP/$3.conf"
	"$BLOOMSYNC" -c "$TEST_TMP/$3.conf" check >"$TEST_TMP/$3.out" 2>&1
}
role_check bloomsync_owner mirror owner-check
expect_eq "check as bloomsync_owner exits 0" $? 0
role_check ops50_bi mirror bi-check
expect_eq "check as a read-only role exits 1" $? 1
grep -q "^database: FAIL role ops50_bi cannot write to mirror\.[a-z_]* " "$TEST_TMP/bi-check.out"
check "check says the read-only role cannot write, naming role and table" test $? -eq 0
role_check bloomsync_owner nosuch nosuch-check
expect_eq "check as bloomsync_owner on a schema it cannot create exits 1" $? 1
grep -q "^database: FAIL role bloomsync_owner cannot create schema nosuch (no CREATE on database" \
	"$TEST_TMP/nosuch-check.out"
check "check says the role cannot create the schema" test $? -eq 0
q "CREATE SCHEMA empty AUTHORIZATION bloomsync_owner"
role_check bloomsync_owner empty empty-check
expect_eq "check on an empty schema the role owns exits 0" $? 0
grep -q "^database: ok reachable; schema empty exists, not migrated yet" "$TEST_TMP/empty-check.out"
check "check tells an existing, unmigrated schema from a missing one" test $? -eq 0
q "CREATE SCHEMA theirs"
role_check bloomsync_owner theirs theirs-check
expect_eq "check on a schema the role cannot create tables in exits 1" $? 1
grep -q "^database: FAIL role bloomsync_owner cannot create tables in schema theirs" "$TEST_TMP/theirs-check.out"
check "check says the role cannot create tables there" test $? -eq 0
# a pending migration in a schema whose tables the role may write but not own
SCHEMA=part write_conf "$TEST_TMP/part.conf"
"$BLOOMSYNC" -c "$TEST_TMP/part.conf" migrate >/dev/null 2>&1
q "DELETE FROM part.schema_migrations WHERE version = (SELECT max(version) FROM part.schema_migrations);
   GRANT USAGE, CREATE ON SCHEMA part TO bloomsync_owner;
   GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA part TO bloomsync_owner"
role_check bloomsync_owner part part-check
expect_eq "check with a migration pending on tables the role does not own exits 1" $? 1
grep -q "^database: FAIL role bloomsync_owner does not own part\.[a-z_]*: the pending migrations" \
	"$TEST_TMP/part-check.out"
check "check says the pending migrations need the tables' owner" test $? -eq 0
# every table granted, but not the sequences (a common slip): a sync could
# not insert its run
SCHEMA=seqs write_conf "$TEST_TMP/seqs.conf"
"$BLOOMSYNC" -c "$TEST_TMP/seqs.conf" migrate >/dev/null 2>&1
q "GRANT USAGE ON SCHEMA seqs TO bloomsync_owner;
   GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA seqs TO bloomsync_owner"
role_check bloomsync_owner seqs seqs-check
expect_eq "check with the tables granted but not the sequences exits 1" $? 1
grep -q "^database: FAIL role bloomsync_owner cannot use sequence seqs\.[a-z_]*_seq (USAGE)" \
	"$TEST_TMP/seqs-check.out"
check "check names the sequence the role cannot use" test $? -eq 0
for f in bi-check nosuch-check empty-check theirs-check part-check seqs-check; do
	[ "$FAILS" -eq 0 ] || sed "s/^/# $f: /" "$TEST_TMP/$f.out"
done
psql -XAtq -c "DROP ROLE ops50_bi" >/dev/null 2>&1

finish
