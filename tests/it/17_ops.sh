#!/bin/bash
# Operations by hand and failed starts:
#  - migrate, status and check with the config of the systemd unit, whose
#    api.key_file (or api.password_file) is a credential that exists only
#    inside the service: only the commands that talk to the API read it;
#  - check says why the API is unreachable when api.base_url is wrong.
. "$(dirname "$0")/lib.sh"

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

finish
