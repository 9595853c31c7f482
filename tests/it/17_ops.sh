#!/bin/bash
# Operations by hand and failed starts:
#  - migrate, status and check with the config of the systemd unit, whose
#    api.key_file (or api.password_file) is a credential that exists only
#    inside the service: only the commands that talk to the API read it;
#  - check says why the API is unreachable when api.base_url is wrong;
#  - a sync that cannot start (exit 2) still writes the metrics file when it
#    knows where it is, and keeps the last success;
#  - the per-stream request and retry gauges are not named like counters.
. "$(dirname "$0")/lib.sh"

# in_prom_format FILE: 0 when every line is a sample or a HELP/TYPE comment
in_prom_format() {
	[ -s "$1" ] || { echo "# $1 is missing or empty" >&2; return 1; }
	bad=$(grep -Ev "$PROM_SAMPLE" "$1" | grep -Ev "$PROM_COMMENT")
	[ -z "$bad" ] || { echo "$bad" | head -n 3 | sed 's/^/# /' >&2; return 1; }
}

new_db ops17 || exit 1
start_sim --users 3 --meetings 2 || exit 1
creds="$TEST_TMP/credentials" # $CREDENTIALS_DIRECTORY: empty outside the service
mkdir -p "$creds"

# ---------------------------------------------------------------------------
# 1. the unit's config, run by hand: the key file is not there
conf="$TEST_TMP/unit.conf"
write_conf "$conf"
sed -i "s#^  key = .*#  key_file = \"$creds/bg_api_key\";#" "$conf"
grep -q "key_file = \"$creds/bg_api_key\"" "$conf" || not_ok "the test config has no key_file"

"$BLOOMSYNC" -c "$conf" migrate >"$TEST_TMP/migrate.out" 2>"$TEST_TMP/migrate.err"
rc=$?
expect_eq "migrate without the key file exits 0" "$rc" 0
[ "$rc" -eq 0 ] || sed 's/^/# /' "$TEST_TMP/migrate.err" | tail -n 3
"$BLOOMSYNC" -c "$conf" status >"$TEST_TMP/status.out" 2>"$TEST_TMP/status.err"
expect_eq "status without the key file exits 0" $? 0
"$BLOOMSYNC" -c "$conf" status --json >"$TEST_TMP/status.json" 2>"$TEST_TMP/status.err"
expect_eq "status --json without the key file exits 0" $? 0

"$BLOOMSYNC" -c "$conf" check >"$TEST_TMP/check.out" 2>"$TEST_TMP/check.err"
expect_eq "check without the key file exits 2 (configuration)" $? 2
grep -Eq "^api: +FAIL $conf:3: api.key_file: cannot read $creds/bg_api_key: No such file or directory$" \
	"$TEST_TMP/check.out"
check "check's api line names the setting, its line and the missing file" test $? -eq 0
grep -q "^database: ok" "$TEST_TMP/check.out"
check "check still checks the database" test $? -eq 0
[ "$FAILS" -eq 0 ] || sed 's/^/# /' "$TEST_TMP/check.out"

"$BLOOMSYNC" -c "$conf" sync >"$TEST_TMP/sync-nokey.out" 2>"$TEST_TMP/sync-nokey.err"
expect_eq "sync without the key file exits 2" $? 2
grep -q "api.key_file: cannot read $creds/bg_api_key: No such file or directory" "$TEST_TMP/sync-nokey.err"
check "sync says which setting and file" test $? -eq 0

BG_API_KEY=$KEY "$BLOOMSYNC" -c "$conf" check >"$TEST_TMP/check-env.out" 2>&1
expect_eq "check with BG_API_KEY set needs no key file (exit 0)" $? 0
grep -q "^api: .*ok .*fixed key from environment BG_API_KEY" "$TEST_TMP/check-env.out"
check "BG_API_KEY still wins over api.key_file" test $? -eq 0

printf '%s\n' "$KEY" >"$creds/bg_api_key"
chmod 600 "$creds/bg_api_key"
"$BLOOMSYNC" -c "$conf" check >"$TEST_TMP/check-file.out" 2>&1
expect_eq "check with the key file in place exits 0" $? 0
grep -q "^api: .*ok .*fixed key from api.key_file" "$TEST_TMP/check-file.out"
check "check reads the key from api.key_file" test $? -eq 0
rm -f "$creds/bg_api_key"

# the same with a username and a password file
pconf="$TEST_TMP/password.conf"
write_conf "$pconf" "" ""
sed -i "s#^  key = .*#  username = \"bot@example.com\"; password_file = \"$creds/bg_password\";#" "$pconf"
"$BLOOMSYNC" -c "$pconf" migrate >/dev/null 2>"$TEST_TMP/pmigrate.err"
expect_eq "migrate without the password file exits 0" $? 0
"$BLOOMSYNC" -c "$pconf" status >/dev/null 2>&1
expect_eq "status without the password file exits 0" $? 0
"$BLOOMSYNC" -c "$pconf" check >"$TEST_TMP/pcheck.out" 2>&1
expect_eq "check without the password file exits 2" $? 2
grep -Eq "^api: +FAIL $pconf:3: api.password_file: cannot read $creds/bg_password: No such file" \
	"$TEST_TMP/pcheck.out"
check "check's api line names api.password_file and the file" test $? -eq 0

# ---------------------------------------------------------------------------
# 2. check with a wrong api.base_url says why
# reason_of FILE: what follows "api:      FAIL URL: " (empty when no reason)
reason_of() { sed -n 's/^api: *FAIL [^ ]*: //p' "$1"; }

MAX_RETRIES=0 write_conf "$TEST_TMP/wrong-path.conf"
sed -i "s#$SIM_API#$SIM_URL/api/v2#" "$TEST_TMP/wrong-path.conf"
"$BLOOMSYNC" -c "$TEST_TMP/wrong-path.conf" check >"$TEST_TMP/wrong-path.out" 2>&1
expect_eq "check with a base_url the server answers 404 to exits 1" $? 1
reason=$(reason_of "$TEST_TMP/wrong-path.out")
check "check gives a reason for the 404 ('$reason')" test -n "$reason"
case "$reason" in *"HTTP 404"*"api.base_url"*) ok "the reason is the 404 and names api.base_url" ;;
*) not_ok "the reason is the 404 and names api.base_url" ;; esac

start_sim || exit 1 # a port that was just free, and is again once it stops
closed_url="http://127.0.0.1:${SIM_URL##*:}/api/v1"
stop_sim "$SIM_PID"
MAX_RETRIES=0 write_conf "$TEST_TMP/refused.conf"
sed -i "s#base_url = \"[^\"]*\"#base_url = \"$closed_url\"#" "$TEST_TMP/refused.conf"
"$BLOOMSYNC" -c "$TEST_TMP/refused.conf" check >"$TEST_TMP/refused.out" 2>&1
expect_eq "check with a port where nothing listens exits 1" $? 1
reason=$(reason_of "$TEST_TMP/refused.out")
case "$reason" in *"Couldn't connect"*) ok "the reason says it could not connect ('$reason')" ;;
*) not_ok "the reason says it could not connect ('$reason')" ;; esac

MAX_RETRIES=0 TIMEOUT_MS=3000 write_conf "$TEST_TMP/unresolved.conf"
sed -i 's#base_url = "[^"]*"#base_url = "http://bloomsync-test.invalid/api/v1"#' "$TEST_TMP/unresolved.conf"
"$BLOOMSYNC" -c "$TEST_TMP/unresolved.conf" check >"$TEST_TMP/unresolved.out" 2>&1
expect_eq "check with a host that does not resolve exits 1" $? 1
reason=$(reason_of "$TEST_TMP/unresolved.out")
check "check gives a reason for the host ('$reason')" test -n "$reason"

# ---------------------------------------------------------------------------
# 3. a sync that cannot start (exit 2) writes the metrics file it knows of
mdir="$TEST_TMP/textfile"
mkdir -p "$mdir"
prom="$mdir/bloomsync.prom"
printf 'bloomsync_last_success_timestamp_seconds 1700000000\n' >"$prom" # an earlier success

# expect_config_error NAME FILE: FILE records a sync that could not start
expect_config_error() {
	expect_eq "$1: bloomsync_last_run_success is 0" "$(metric "$2" bloomsync_last_run_success)" 0
	expect_eq "$1: status config is 1" "$(metric "$2" 'bloomsync_last_run_status{status="config"}')" 1
	expect_eq "$1: status succeeded is 0" "$(metric "$2" 'bloomsync_last_run_status{status="succeeded"}')" 0
	expect_eq "$1: bloomsync_last_run_exit_code is 2" "$(metric "$2" bloomsync_last_run_exit_code)" 2
	expect_eq "$1: the earlier last success is kept" \
		"$(metric "$2" bloomsync_last_success_timestamp_seconds)" 1700000000
	check "$1: the file is in the text format" in_prom_format "$2"
}

"$BLOOMSYNC" -c "$conf" --metrics-file "$prom" sync 2>/dev/null
expect_eq "sync without the key file, with --metrics-file, exits 2" $? 2
expect_config_error "missing key file" "$prom"

mconf="$TEST_TMP/unit-m.conf"
cp "$conf" "$mconf"
echo "metrics_file = \"$mdir/from-config.prom\";" >>"$mconf"
printf 'bloomsync_last_success_timestamp_seconds 1700000000\n' >"$mdir/from-config.prom"
"$BLOOMSYNC" -c "$mconf" sync 2>/dev/null
expect_eq "sync without the key file, metrics_file in the config, exits 2" $? 2
expect_config_error "metrics_file of the config" "$mdir/from-config.prom"

rm -f "$prom"
printf 'api = { concurrency = 4;\n' >"$TEST_TMP/broken.conf" # the group is never closed
"$BLOOMSYNC" -c "$TEST_TMP/broken.conf" --metrics-file "$prom" sync 2>"$TEST_TMP/broken.err"
expect_eq "sync with a broken config exits 2" $? 2
grep -q "broken.conf:[0-9]*: syntax error" "$TEST_TMP/broken.err"
check "it names the file and line of the syntax error" test $? -eq 0
expect_eq "a broken config: bloomsync_last_run_status{status=\"config\"} is 1" \
	"$(metric "$prom" 'bloomsync_last_run_status{status="config"}')" 1
expect_eq "a broken config: no earlier success known, 0" \
	"$(metric "$prom" bloomsync_last_success_timestamp_seconds)" 0

rm -f "$prom"
"$BLOOMSYNC" -c "$conf" --metrics-file "$prom" sync --no-such-flag 2>/dev/null
expect_eq "sync with an unknown argument exits 2" $? 2
expect_eq "an unknown argument: bloomsync_last_run_exit_code is 2" \
	"$(metric "$prom" bloomsync_last_run_exit_code)" 2
rm -f "$prom"
"$BLOOMSYNC" -c "$conf" --metrics-file "$prom" --no-such-flag sync 2>"$TEST_TMP/before.err"
expect_eq "an unknown option before sync exits 2" $? 2
expect_eq "an unknown option before sync: bloomsync_last_run_exit_code is 2" \
	"$(metric "$prom" bloomsync_last_run_exit_code)" 2
grep -q "no-such-flag" "$TEST_TMP/before.err"
check "getopt names the unknown option" test $? -eq 0
rm -f "$prom"
"$BLOOMSYNC" -c "$conf" --metrics-file "$prom" --no-such-flag status >/dev/null 2>&1
expect_eq "an unknown option before status exits 2" $? 2
check "and writes no metrics file" test ! -e "$prom"
"$BLOOMSYNC" --no-such-flag --help >/dev/null 2>&1
expect_eq "an unknown option before --help still exits 2" $? 2

# what does not run a sync leaves the file alone
echo "sentinel 1" >"$prom"
"$BLOOMSYNC" -c "$conf" --metrics-file "$prom" sync --help >/dev/null 2>&1
expect_eq "sync --help exits 0" $? 0
"$BLOOMSYNC" -c "$conf" --metrics-file "$prom" check >/dev/null 2>&1
"$BLOOMSYNC" -c "$conf" --metrics-file "$prom" migrate >/dev/null 2>&1
"$BLOOMSYNC" -c "$conf" --metrics-file "$prom" status >/dev/null 2>&1
expect_eq "sync --help, check, migrate and status leave the metrics file alone" "$(cat "$prom")" "sentinel 1"
expect_eq "no temporary file is left in the textfile directory" "$(ls -A "$mdir" | sort | tr '\n' ' ')" \
	"bloomsync.prom from-config.prom "

# ---------------------------------------------------------------------------
# 4. a run that did start: its exit status, and gauges named as gauges
start_sim --users 3 --meetings 2 || exit 1
write_conf "$TEST_TMP/good.conf"
"$BLOOMSYNC" -c "$TEST_TMP/good.conf" --metrics-file "$prom" sync 2>"$TEST_TMP/good.err"
rc=$?
expect_eq "a sync exits 0" "$rc" 0
[ "$rc" -eq 0 ] || sed 's/^/# /' "$TEST_TMP/good.err" | tail -n 5
expect_eq "its bloomsync_last_run_exit_code is 0" "$(metric "$prom" bloomsync_last_run_exit_code)" 0
expect_eq "its status config is 0" "$(metric "$prom" 'bloomsync_last_run_status{status="config"}')" 0
users=$(metric "$prom" 'bloomsync_last_run_requests{stream="users"}')
check "bloomsync_last_run_requests{stream=\"users\"} counts requests ($users)" test "${users:-0}" -gt 0
check "bloomsync_last_run_retries{stream=\"users\"} is there" \
	test -n "$(metric "$prom" 'bloomsync_last_run_retries{stream="users"}')"
expect_eq "no metric ends in _total (they are gauges)" "$(grep -Ec '^[a-z_]+_total[{ ]' "$prom")" 0
check "the file is in the text format" in_prom_format "$prom"

KEY=wrong-key-for-ops17 write_conf "$TEST_TMP/bad-key.conf"
"$BLOOMSYNC" -c "$TEST_TMP/bad-key.conf" --metrics-file "$prom" sync 2>/dev/null
expect_eq "a sync with a wrong key exits 4" $? 4
expect_eq "its bloomsync_last_run_exit_code is 4" "$(metric "$prom" bloomsync_last_run_exit_code)" 4
# as docs/operations.md says: a refused key fails a run that had started
expect_eq "a refused key: the run is recorded failed, with the error" \
	"$(q "SELECT status || ': ' || error FROM bloom.sync_runs ORDER BY id DESC LIMIT 1" | grep -c '^failed: the API rejected the key')" 1

# ---------------------------------------------------------------------------
# 5. -q (or log.level warn / error) quiets a successful sync: under cron,
# piped to logger, every line is a syslog entry. A failed one still says why.
"$BLOOMSYNC" -q -c "$TEST_TMP/good.conf" sync 2>"$TEST_TMP/quiet.err"
expect_eq "sync -q exits 0" $? 0
check "sync -q that succeeds prints nothing on stderr" test ! -s "$TEST_TMP/quiet.err"
sed 's/^/# /' "$TEST_TMP/quiet.err" | head -n 3
LOG_LEVEL=error write_conf "$TEST_TMP/level-error.conf"
"$BLOOMSYNC" -c "$TEST_TMP/level-error.conf" sync 2>"$TEST_TMP/level-error.err"
expect_eq "sync with log.level error exits 0" $? 0
check "sync with log.level error that succeeds prints nothing on stderr" test ! -s "$TEST_TMP/level-error.err"
"$BLOOMSYNC" -c "$TEST_TMP/good.conf" sync 2>"$TEST_TMP/default.err"
grep -Eq '^run [0-9]+ succeeded' "$TEST_TMP/default.err" && grep -Eq '^total +[0-9]' "$TEST_TMP/default.err"
check "at the default level, the summary (outcome and table) is printed" test $? -eq 0
"$BLOOMSYNC" -q -c "$TEST_TMP/bad-key.conf" sync 2>"$TEST_TMP/quiet-bad.err"
expect_eq "sync -q with a wrong key exits 4" $? 4
grep -Eq 'error .*run [0-9]+ failed in .* s.*: the API rejected the key' "$TEST_TMP/quiet-bad.err"
check "sync -q that fails logs its outcome and error at level error" test $? -eq 0
grep -Eq '^(stream|total) ' "$TEST_TMP/quiet-bad.err"
check "sync -q that fails prints no table" test $? -ne 0

# ---------------------------------------------------------------------------
# 6. usage errors
"$BLOOMSYNC" help nosuch >"$TEST_TMP/help-nosuch.out" 2>"$TEST_TMP/help-nosuch.err"
expect_eq "help with a name that is no command exits 2" $? 2
grep -q "unknown command 'nosuch'" "$TEST_TMP/help-nosuch.err"
check "help nosuch says the command is unknown" test $? -eq 0
check "help nosuch prints nothing on stdout" test ! -s "$TEST_TMP/help-nosuch.out"
"$BLOOMSYNC" help status >"$TEST_TMP/help-status.out" 2>&1
expect_eq "help status exits 0" $? 0
grep -q "^usage: bloomsync \[options\] status" "$TEST_TMP/help-status.out"
check "help status prints the command's usage" test $? -eq 0
"$BLOOMSYNC" help help >"$TEST_TMP/help-help.out" 2>&1
expect_eq "help help exits 0" $? 0
grep -q "^usage: bloomsync \[-c FILE\]" "$TEST_TMP/help-help.out"
check "help help prints the general usage" test $? -eq 0

# ---------------------------------------------------------------------------
# 7. a password in api.base_url's userinfo is never shown
write_conf "$TEST_TMP/userinfo.conf"
sed -i "s#base_url = \"http://#base_url = \"http://bob:url-s3cret-pw@#" "$TEST_TMP/userinfo.conf"
grep -q "bob:url-s3cret-pw@" "$TEST_TMP/userinfo.conf" || not_ok "the test config has no userinfo"
"$BLOOMSYNC" -c "$TEST_TMP/userinfo.conf" check >"$TEST_TMP/userinfo.out" 2>&1
expect_eq "check with a password in api.base_url exits 0" $? 0
grep -q "url-s3cret-pw" "$TEST_TMP/userinfo.out"
check "check does not print the password of api.base_url" test $? -ne 0
grep -Eq "^api: +ok http://bob:\[redacted\]@127\.0\.0\.1:" "$TEST_TMP/userinfo.out"
check "check shows the URL with its password redacted" test $? -eq 0
sed -i "s#@127\.0\.0\.1:[0-9]*/#@127.0.0.1:1/#; s#max_retries = [0-9]*#max_retries = 0#" "$TEST_TMP/userinfo.conf"
"$BLOOMSYNC" -c "$TEST_TMP/userinfo.conf" check >"$TEST_TMP/userinfo-fail.out" 2>&1
expect_eq "check with a password in an unreachable api.base_url exits 1" $? 1
grep -q "url-s3cret-pw" "$TEST_TMP/userinfo-fail.out"
check "its FAIL line does not print the password either" test $? -ne 0
grep -Eq "^api: +FAIL http://bob:\[redacted\]@127\.0\.0\.1:1/" "$TEST_TMP/userinfo-fail.out"
check "its FAIL line shows the URL with its password redacted" test $? -eq 0
# a password too short for the log's secret list (under four bytes) too
sed -i "s#bob:url-s3cret-pw@#bob:pw@#" "$TEST_TMP/userinfo.conf"
"$BLOOMSYNC" -c "$TEST_TMP/userinfo.conf" check >"$TEST_TMP/userinfo-short.out" 2>&1
grep -Eq "^api: +FAIL http://bob:\[redacted\]@127\.0\.0\.1:1/" "$TEST_TMP/userinfo-short.out"
check "a two-letter password in api.base_url is redacted as well" test $? -eq 0

# ---------------------------------------------------------------------------
# 8. with --log-format json, errors found once the format is known are JSON
# lines too (a log shipper drops or mangles a plain line)

# json_error FILE TEXT: 0 when FILE is JSON lines only, one of them an
# error whose msg holds TEXT
json_error() {
	python3 -c '
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert lines and all(isinstance(l, dict) for l in lines)
assert any(l["level"] == "error" and sys.argv[2] in l["msg"] for l in lines)
' "$1" "$2" 2>/dev/null || { sed 's/^/# /' "$1" | head -n 3 >&2; return 1; }
}

write_conf "$TEST_TMP/nokey.conf"
sed -i '/^  key = /d' "$TEST_TMP/nokey.conf"
"$BLOOMSYNC" -c "$TEST_TMP/nokey.conf" --log-format json sync 2>"$TEST_TMP/json-nokey.err"
expect_eq "--log-format json, no key: sync exits 2" $? 2
check "--log-format json, no key: the error is a JSON line" json_error "$TEST_TMP/json-nokey.err" "no API key"
"$BLOOMSYNC" help --help >"$TEST_TMP/help-help.out" 2>&1
expect_eq "help --help exits 0 (every command takes --help)" $? 0
grep -q "^  help \[COMMAND\]" "$TEST_TMP/help-help.out"
check "help --help prints the usage, which shows help's" test $? -eq 0
"$BLOOMSYNC" -c "$TEST_TMP/good.conf" status --json -n 1 >"$TEST_TMP/status-n-1.out" 2>&1
expect_eq "status --json -n 1 exits 0" $? 0
"$BLOOMSYNC" -c "$TEST_TMP/good.conf" status --json -n1 >"$TEST_TMP/status-n1.out" 2>&1
expect_eq "status --json -n1 (value joined, as getopt allows) exits 0" $? 0
check "status -n1 shows what status -n 1 does" cmp -s "$TEST_TMP/status-n-1.out" "$TEST_TMP/status-n1.out"
"$BLOOMSYNC" -c "$TEST_TMP/good.conf" status -n0 >/dev/null 2>&1
expect_eq "status -n0 exits 2" $? 2
printf 'api = { concurrency = ; };\n' >"$TEST_TMP/syntax.conf"
"$BLOOMSYNC" -c "$TEST_TMP/syntax.conf" --log-format json sync 2>"$TEST_TMP/json-syntax.err"
expect_eq "--log-format json, a syntax error in the config: sync exits 2" $? 2
check "--log-format json, a syntax error in the config: it is a JSON line" \
	json_error "$TEST_TMP/json-syntax.err" "syntax.conf:1: syntax error"
"$BLOOMSYNC" -c "" --log-format json check >/dev/null 2>"$TEST_TMP/json-empty-c.err"
expect_eq "--log-format json, -c '': check exits 2" $? 2
check "--log-format json, -c '': the error is a JSON line" json_error "$TEST_TMP/json-empty-c.err" "path is empty"
"$BLOOMSYNC" -c "$TEST_TMP/good.conf" --log-format json sync --bogus 2>"$TEST_TMP/json-arg.err"
expect_eq "--log-format json, an unknown argument: sync exits 2" $? 2
check "--log-format json, an unknown argument: the error is a JSON line" json_error "$TEST_TMP/json-arg.err" "--bogus"
"$BLOOMSYNC" -c "$TEST_TMP/good.conf" --log-format json status -n x >/dev/null 2>"$TEST_TMP/json-n.err"
expect_eq "--log-format json, status -n x exits 2" $? 2
check "--log-format json, status -n x: the error is a JSON line" json_error "$TEST_TMP/json-n.err" "-n"
"$BLOOMSYNC" --log-format json frobnicate 2>"$TEST_TMP/json-cmd.err"
expect_eq "--log-format json, an unknown command exits 2" $? 2
check "--log-format json, an unknown command: the error is a JSON line" json_error "$TEST_TMP/json-cmd.err" frobnicate
"$BLOOMSYNC" --log-format json help frobnicate >/dev/null 2>"$TEST_TMP/json-help.err"
expect_eq "--log-format json, help frobnicate exits 2" $? 2
check "--log-format json, help frobnicate: the error is a JSON line" json_error "$TEST_TMP/json-help.err" frobnicate
# as text, a usage error still shows the help that fixes it
"$BLOOMSYNC" -c "$TEST_TMP/good.conf" sync --bogus 2>"$TEST_TMP/text-arg.err"
grep -q "unknown argument '--bogus'" "$TEST_TMP/text-arg.err" &&
	grep -q "^usage: bloomsync \[options\] sync" "$TEST_TMP/text-arg.err"
check "as text, an unknown argument is named and the command's usage follows" test $? -eq 0

# ---------------------------------------------------------------------------
# 9. status --json gives durations in seconds to the millisecond, not in
# binary floating point's digits (0.20000000000000001)
last=$(q "SELECT max(id) FROM bloom.sync_runs")
q "UPDATE bloom.sync_runs SET finished_at = started_at + CASE id WHEN $last THEN interval '0.2 s'
   WHEN $last - 1 THEN interval '149.1 s' ELSE interval '2.4567 s' END WHERE id > $last - 3" >/dev/null
"$BLOOMSYNC" -c "$TEST_TMP/good.conf" status --json -n 3 >"$TEST_TMP/durations.json" 2>&1
expect_eq "status --json -n 3 exits 0" $? 0
durations=$(sed -n 's/^ *"duration_s": \([^,]*\),*$/\1/p' "$TEST_TMP/durations.json" | tr '\n' ' ')
expect_eq "status --json rounds duration_s to milliseconds" "$durations" "0.2 149.1 2.457 "

# ---------------------------------------------------------------------------
# 10. check on a fresh database (README's Quick Start runs it before the first
# sync) and after an upgrade: pending migrations are noted, not a failure,
# since sync applies them itself
new_db ops17_fresh || exit 1
write_conf "$TEST_TMP/fresh.conf"
"$BLOOMSYNC" -c "$TEST_TMP/fresh.conf" check >"$TEST_TMP/fresh-check.out" 2>&1
expect_eq "check on a fresh database exits 0" $? 0
grep -Eq "^database: +ok reachable; schema bloom not created yet: the first sync" "$TEST_TMP/fresh-check.out"
check "check on a fresh database says the first sync creates the schema" test $? -eq 0
"$BLOOMSYNC" -c "$TEST_TMP/fresh.conf" migrate >/dev/null 2>&1
q "DELETE FROM bloom.schema_migrations WHERE version = (SELECT max(version) FROM bloom.schema_migrations)"
"$BLOOMSYNC" -c "$TEST_TMP/fresh.conf" check >"$TEST_TMP/pending-check.out" 2>&1
expect_eq "check with one migration pending exits 0" $? 0
grep -Eq "^database: +ok reachable; 1 migration pending in schema bloom: the next sync" "$TEST_TMP/pending-check.out"
check "check with one migration pending says the next sync applies it" test $? -eq 0

# ---------------------------------------------------------------------------
# 11. check interrupted by SIGINT exits 5, as sync does ("cancelled by a
# signal"), not 1 (which says the API or the database is unhealthy)
sim_post /__faults '{"latency_ms":8000}' >/dev/null
TIMEOUT_MS=30000 write_conf "$TEST_TMP/slow.conf"
"$BLOOMSYNC" -c "$TEST_TMP/slow.conf" check >"$TEST_TMP/int-check.out" 2>&1 &
bg=$!
BG_PIDS="$BG_PIDS $bg"
sleep 1.5
kill -INT "$bg"
wait "$bg"
rc=$?
BG_PIDS=""
sim_post /__faults '{"latency_ms":0}' >/dev/null
expect_eq "check interrupted by SIGINT exits 5" "$rc" 5
grep -Eq "^api: +FAIL .*interrupted" "$TEST_TMP/int-check.out"
check "its api line says it was interrupted" test $? -eq 0
[ "$FAILS" -eq 0 ] || sed 's/^/# /' "$TEST_TMP/int-check.out"

# a wrong --log-format is a usage error for help and version too
"$BLOOMSYNC" --log-format xml version >/dev/null 2>"$TEST_TMP/xml.err"
expect_eq "--log-format xml version exits 2" $? 2
grep -q "expected text or json, got 'xml'" "$TEST_TMP/xml.err"
check "it names the wrong format" test $? -eq 0
"$BLOOMSYNC" --log-format xml help >/dev/null 2>&1
expect_eq "--log-format xml help exits 2" $? 2

# output that cannot be written is an error, not an empty success
if [ -w /dev/full ]; then
	"$BLOOMSYNC" version >/dev/full 2>"$TEST_TMP/full.err"
	expect_eq "version into a full disk exits 1" $? 1
	grep -q "cannot write the output" "$TEST_TMP/full.err"
	check "it says the output could not be written" test $? -eq 0
	"$BLOOMSYNC" help sync >/dev/full 2>/dev/null
	expect_eq "help into a full disk exits 1" $? 1
fi

finish
