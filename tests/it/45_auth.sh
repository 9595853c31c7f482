#!/bin/bash
# Unattended auth: username and password instead of a key, the token cache,
# renewal of an expired cached token, of a token that expires in the middle
# of a run (no unit lost or fetched twice beyond the 401 retry), a wrong
# password (exit 4), a token refused right after a fresh login (exit 4), and
# neither the password nor any token in any output, status or mirror table.
. "$(dirname "$0")/lib.sh"

BOT="sync-bot@example.com"
PASSWORD="Pa55 w0rd&=%-$$-hush"
OUT="$TEST_TMP/out"
mkdir -p "$OUT"
printf '%s\n' "$PASSWORD" >"$TEST_TMP/pw"
printf '%s\n' "not-the-password" >"$TEST_TMP/badpw"
chmod 600 "$TEST_TMP/pw" "$TEST_TMP/badpw"

# cred_conf FILE SCHEMA TOKEN_URL CACHE [PASSWORD_FILE]: a config that logs in
# with the username and password (no key) against the current sim.
cred_conf() {
	SCHEMA=$2 write_conf "$1" "username = \"$BOT\";
  password_file = \"${5:-$TEST_TMP/pw}\";
  token_url = \"$3\";
  token_cache = \"$4\";"
	sed -i '/^  key = /d' "$1"
	echo "metrics_file = \"$OUT/metrics.prom\";" >>"$1"
}

# run_sync NAME CONF [ARGS]: runs a sync, output kept in $OUT/NAME.{out,err}; sets RC.
run_sync() {
	name=$1; conf=$2; shift 2
	"$BLOOMSYNC" -c "$conf" "$@" sync >"$OUT/$name.out" 2>"$OUT/$name.err"
	RC=$?
}

new_db auth45 || exit 1

# ---- 1. an expired cached token is renewed before the run ----
start_sim --latency-ms 5 --username "$BOT" --password "$PASSWORD" || exit 1
SIM1_URL=$SIM_URL
cache1="$TEST_TMP/state1/token"
cred_conf "$TEST_TMP/c1.conf" bloom "$SIM_URL/Token" "$cache1"
"$BLOOMSYNC" -c "$TEST_TMP/c1.conf" migrate >"$OUT/migrate.out" 2>"$OUT/migrate.err"
mkdir -p "$TEST_TMP/state1" && chmod 700 "$TEST_TMP/state1"
printf '{"token_url":"%s","username":"%s","access_token":"expired-token-4242","expires_at":%d}\n' \
	"$SIM_URL/Token" "$BOT" $(( $(date +%s) - 100 )) >"$cache1"
chmod 600 "$cache1"
run_sync expired "$TEST_TMP/c1.conf"
expect_eq "a run starting with an expired cached token exits 0" "$RC" 0
grep -q "has expired; logging in again" "$OUT/expired.err"
check "the log says the cached token expired and it logged in again" test $? -eq 0
sim_get /__expect >"$TEST_TMP/expect.json"
chmod 644 "$TEST_TMP/expect.json"
check "the mirror equals the expected mirror" mirror_equals bloom "$TEST_TMP/expect.json"
sim_get /__stats >"$TEST_TMP/s1.json"
expect_eq "one token was issued" "$(json_get "$TEST_TMP/s1.json" 'd["tokens_issued"]')" 1
expect_eq "no request was refused" "$(json_get "$TEST_TMP/s1.json" 'd["status"].get("401", 0)')" 0
grep -q expired-token-4242 "$cache1"
check "the cache no longer holds the expired token" test $? -ne 0
expect_eq "the cache file is mode 600" "$(stat -c %a "$cache1")" 600

# the next run reuses the cached token: no new login
run_sync reuse "$TEST_TMP/c1.conf"
expect_eq "a second run exits 0" "$RC" 0
grep -q "using the cached API token" "$OUT/reuse.err"
check "the second run uses the cached token" test $? -eq 0
sim_get /__stats >"$TEST_TMP/s2.json"
expect_eq "the second run logged in no more" "$(json_get "$TEST_TMP/s2.json" 'd["tokens_issued"]')" 1

# a cached token the client believes valid but the API refuses: 401, one login, success
printf '{"token_url":"%s","username":"%s","access_token":"revoked-token-4343","expires_at":%d}\n' \
	"$SIM_URL/Token" "$BOT" $(( $(date +%s) + 1000000 )) >"$cache1"
run_sync revoked "$TEST_TMP/c1.conf"
expect_eq "a run whose cached token is refused renews it and exits 0" "$RC" 0
grep -q "refused the token (HTTP 401): logged in again" "$OUT/revoked.err"
check "the log says it logged in again after a 401" test $? -eq 0
sim_get /__stats >"$TEST_TMP/s3.json"
expect_eq "exactly one more token was issued" "$(json_get "$TEST_TMP/s3.json" 'd["tokens_issued"]')" 2

# check reports how it authenticates, without secrets
"$BLOOMSYNC" -c "$TEST_TMP/c1.conf" check >"$OUT/check.out" 2>"$OUT/check.err"
expect_eq "check with credentials exits 0" $? 0
grep -q "username and password of $BOT (password from api.password_file), token read from the cache .* valid until" \
	"$OUT/check.out"
check "check says username and password, the cache and the expiry" test $? -eq 0

# ---- 2. a wrong password: exit 4, a clear message ----
cred_conf "$TEST_TMP/bad.conf" bloom "$SIM_URL/Token" "$TEST_TMP/state-bad/token" "$TEST_TMP/badpw"
runs_before=$(q "SELECT count(*) FROM bloom.sync_runs")
run_sync badpw "$TEST_TMP/bad.conf"
expect_eq "a wrong password exits 4" "$RC" 4
# as docs/operations.md says: the login comes before the run
expect_eq "a refused login opens no run in sync_runs" "$(q "SELECT count(*) FROM bloom.sync_runs")" "$runs_before"
expect_eq "a refused login is in the metrics file as auth" \
	"$(metric "$OUT/metrics.prom" 'bloomsync_last_run_status{status="auth"}')" 1
grep -q "the API rejected the username or password" "$OUT/badpw.err"
check "the message says the username or password was rejected" test $? -eq 0
"$BLOOMSYNC" -c "$TEST_TMP/bad.conf" check >"$OUT/badcheck.out" 2>"$OUT/badcheck.err"
expect_eq "check with a wrong password exits 4" $? 4
check "no token cache is written for a rejected login" test ! -e "$TEST_TMP/state-bad/token"
# a password in token_url, however short, stays out of what is printed
cred_conf "$TEST_TMP/badurl.conf" bloom "${SIM_URL/http:\/\//http://tu:pw@}/Token" "$TEST_TMP/state-bad/token" \
	"$TEST_TMP/badpw"
"$BLOOMSYNC" -c "$TEST_TMP/badurl.conf" check >"$OUT/badurl.out" 2>"$OUT/badurl.err"
expect_eq "check with a wrong password, token_url with a password in it, exits 4" $? 4
grep -q "tu:\[redacted\]@" "$OUT/badurl.out"
check "check shows token_url with its password masked" test $? -eq 0
run_sync badurl "$TEST_TMP/badurl.conf"
check "neither check nor sync prints token_url's password" \
	test "$(cat "$OUT/badurl.out" "$OUT/badurl.err" "$OUT/badurl"*.out "$OUT/badurl"*.err | grep -c 'tu:pw@')" = 0

# ---- 3. a token refused right after a fresh login: exit 4 ----
# bloomsim #2 does not know the tokens bloomsim #1 issues
start_sim --username "$BOT" --password "$PASSWORD" || exit 1
cred_conf "$TEST_TMP/split.conf" bloom "$SIM1_URL/Token" "$TEST_TMP/state-split/token"
sed -i "s#base_url = \"[^\"]*\"#base_url = \"$SIM_API\"#" "$TEST_TMP/split.conf"
run_sync split "$TEST_TMP/split.conf"
expect_eq "a token refused right after a fresh login exits 4" "$RC" 4
grep -q "rejected a freshly issued token" "$OUT/split.err"
check "the message says a fresh token was refused" test $? -eq 0
expect_eq "a fresh token refused: the run is recorded failed, with the error" \
	"$(q "SELECT status || ': ' || error FROM bloom.sync_runs ORDER BY id DESC LIMIT 1" | grep -c '^failed: .*freshly issued token')" 1
stop_sim "$SIM_PID"

# ---- 4. a token that expires in the middle of a run ----
start_sim --latency-ms 60 --token-ttl-s 2 --username "$BOT" --password "$PASSWORD" || exit 1
# the reference: a clean run with the fixed key, into its own schema
SCHEMA=clean write_conf "$TEST_TMP/clean.conf"
sim_post /__reset >/dev/null
run_sync clean "$TEST_TMP/clean.conf"
expect_eq "the reference run with the fixed key exits 0" "$RC" 0
sim_get /__stats >"$TEST_TMP/clean.json"
clean_total=$(json_get "$TEST_TMP/clean.json" 'd["total"]')
new_db auth45b || exit 1
cache4="$TEST_TMP/state4/token"
# max_retries = 0: re-sending a refused request with a renewed token is not a
# retry, so a run with no retries to spare still gets across the expiries
LOG_LEVEL=debug MAX_RETRIES=0 cred_conf "$TEST_TMP/c4.conf" bloom "$SIM_URL/Token" "$cache4"
sim_post /__reset >/dev/null
t0=$(date +%s.%N)
run_sync midrun "$TEST_TMP/c4.conf"
t1=$(date +%s.%N)
expect_eq "a run across token expiries exits 0" "$RC" 0
secs=$(python3 -c "print(round($t1 - $t0, 1))")
check "the run lasted longer than the token lifetime (${secs} s)" python3 -c "import sys; sys.exit(0 if $t1 - $t0 > 2.5 else 1)"
sim_get /__stats >"$TEST_TMP/s4.json"
refused=$(json_get "$TEST_TMP/s4.json" 'd["status"].get("401", 0)')
issued=$(json_get "$TEST_TMP/s4.json" 'd["tokens_issued"]')
total=$(json_get "$TEST_TMP/s4.json" 'd["total"]')
check "tokens expired during the run ($refused requests refused, $issued tokens issued)" \
	test "$refused" -gt 0 -a "$issued" -ge 2
expect_eq "requests = the clean run's $clean_total + the $refused refused ones (nothing repeated)" \
	"$total" $((clean_total + refused))
sim_get /__expect >"$TEST_TMP/expect4.json"
chmod 644 "$TEST_TMP/expect4.json"
check "the mirror equals the expected mirror" mirror_equals bloom "$TEST_TMP/expect4.json"
status=$(q "SELECT status FROM bloom.sync_runs ORDER BY id DESC LIMIT 1")
expect_eq "the run is recorded as succeeded" "$status" succeeded
"$BLOOMSYNC" -c "$TEST_TMP/c4.conf" status --json >"$OUT/status4.json" 2>"$OUT/status4.err"
pg_dump --data-only -n bloom auth45b >"$OUT/dump-auth45b.sql" 2>"$OUT/dump.err"
check "pg_dump of the mirror schema worked" test -s "$OUT/dump-auth45b.sql"

# ---- 5. neither the password nor any token anywhere ----
PGDATABASE=auth45 "$BLOOMSYNC" -c "$TEST_TMP/c1.conf" status --json >"$OUT/status1.json" 2>"$OUT/status1.err"
pg_dump --data-only -n bloom auth45 >"$OUT/dump-auth45.sql" 2>>"$OUT/dump.err"
pg_dump --data-only -n clean auth45b >"$OUT/dump-clean.sql" 2>>"$OUT/dump.err"
tokens=$( (curl -sf "$SIM1_URL/__tokens"; sim_get /__tokens) | python3 -c '
import json, sys
for line in sys.stdin:
    for t in json.loads(line)["tokens"]:
        print(t)')
ntokens=$(printf '%s\n' "$tokens" | grep -c .)
cached=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["access_token"])' "$cache4")
check "the issued tokens are known ($ntokens) and the cache holds one of them" \
	test "$ntokens" -ge 4 -a -n "$cached"
printf '%s\n' "$tokens" | grep -qxF "$cached"
check "the cached token is one bloomsim issued" test $? -eq 0
cp "$OUT/metrics.prom" "$OUT/metrics.txt" 2>/dev/null
leaks=0
for f in "$OUT"/*; do
	if grep -qF "$PASSWORD" "$f"; then echo "# the password is in $f" >&2; leaks=$((leaks + 1)); fi
	for t in $tokens expired-token-4242 revoked-token-4343; do
		if grep -qF "$t" "$f"; then echo "# token $t is in $f" >&2; leaks=$((leaks + 1)); fi
	done
done
nfiles=$(ls "$OUT" | wc -l)
expect_eq "no password or token in $nfiles captured outputs, status --json and pg_dump of the mirror" "$leaks" 0

finish
