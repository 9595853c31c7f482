#!/bin/bash
# valgrind (memcheck) on the error paths of the plain build: 20_sync runs one
# clean full sync under valgrind; here the paths that free what they took
# in a hurry. A sync under 429/5xx/resets/truncated bodies, one out of
# retries and its resume, SIGTERM mid-run, a second sync locked out, a
# rejected key, a run that logs in with a username and password, a paged
# sync, and status/check. Each must end with its documented exit code and
# memcheck must report no error and no definite or indirect leak (exit 99
# would say it did). The sanitizer build covers the same paths in the other
# scripts; memcheck adds reads of uninitialised memory, which ASan does not see.
. "$(dirname "$0")/lib.sh"

if ! command -v valgrind >/dev/null || [ ! -x "${BLOOMSYNC_PLAIN:-}" ]; then
	ok "valgrind error paths # SKIP valgrind or the plain build is not available"
	finish
fi

VG_ERR=99

# vg NAME ARGS...: runs the plain build under memcheck, stderr in
# $TEST_TMP/NAME.err; sets RC. A memcheck report is echoed as comments.
vg() {
	name=$1; shift
	valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite,indirect \
		--error-exitcode=$VG_ERR "$BLOOMSYNC_PLAIN" "$@" >"$TEST_TMP/$name.out" 2>"$TEST_TMP/$name.err"
	RC=$?
	report "$name"
}

# report NAME: prints memcheck's lines of NAME.err (if any) as comments.
report() {
	grep -E '^==[0-9]+==' "$TEST_TMP/$1.err" | head -n 40 | sed 's/^/# /'
}

# memcheck_clean NAME: memcheck said nothing in NAME.err.
memcheck_clean() { ! grep -qE '^==[0-9]+==' "$TEST_TMP/$1.err"; }

save_expect() { sim_get /__expect >"$1" && chmod 644 "$1"; }

latest_run() { q "SELECT status FROM bloom.sync_runs ORDER BY id DESC LIMIT 1"; }

# ---- 1. faults: 429, 5xx, resets and truncated bodies, all retried ----
new_db vg_faults || exit 1
start_sim --fault-429 0.05 --retry-after 1 --fault-5xx 0.05 --fault-reset 0.03 --fault-truncate 0.03 \
	--fault-seed 11 || exit 1
write_conf "$TEST_TMP/faults.conf"
vg faults -c "$TEST_TMP/faults.conf" sync
expect_eq "valgrind: a sync under injected faults exits 0, memcheck clean" "$RC" 0
retries=$(q "SELECT coalesce(sum(retries), 0) FROM bloom.sync_run_streams")
check "valgrind: the faults were met and retried ($retries retries)" test "${retries:-0}" -gt 0
save_expect "$TEST_TMP/faults.expect.json"
check "valgrind: the mirror is exact despite the faults" mirror_equals bloom "$TEST_TMP/faults.expect.json"
stop_sim "$SIM_PID"

# ---- 2. out of retries (exit 1), then the resume (exit 0) ----
new_db vg_retry || exit 1
start_sim || exit 1
MAX_RETRIES=1 BATCH_SIZE=50 write_conf "$TEST_TMP/retry.conf"
sim_post /__faults '{"5xx":1.0,"after":60}' >/dev/null
vg retry1 -c "$TEST_TMP/retry.conf" sync
expect_eq "valgrind: a sync out of retries exits 1, memcheck clean" "$RC" 1
expect_eq "valgrind: that run is recorded failed" "$(latest_run)" failed
sim_post /__faults '{"5xx":0,"after":0}' >/dev/null
vg retry2 -c "$TEST_TMP/retry.conf" sync
expect_eq "valgrind: the resumed sync exits 0, memcheck clean" "$RC" 0
save_expect "$TEST_TMP/retry.expect.json"
check "valgrind: the mirror is exact after the resume" mirror_equals bloom "$TEST_TMP/retry.expect.json"

# ---- 3. status and check on that database ----
vg status -c "$TEST_TMP/retry.conf" status
expect_eq "valgrind: status exits 0, memcheck clean" "$RC" 0
grep -q succeeded "$TEST_TMP/status.out"
check "valgrind: status lists the succeeded run" test $? -eq 0
vg check -c "$TEST_TMP/retry.conf" check
expect_eq "valgrind: check exits 0, memcheck clean" "$RC" 0
stop_sim "$SIM_PID"

# ---- 4. a second sync locked out (exit 3), then SIGTERM mid-run (exit 5) ----
new_db vg_lock || exit 1
start_sim --latency-ms 100 || exit 1
BATCH_SIZE=20 write_conf "$TEST_TMP/lock.conf"
valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=$VG_ERR \
	"$BLOOMSYNC_PLAIN" -c "$TEST_TMP/lock.conf" sync >/dev/null 2>"$TEST_TMP/term.err" &
bg=$!
BG_PIDS="$BG_PIDS $bg"
started=1
for _ in $(seq 1 600); do
	n=$(q "SELECT units_done FROM bloom.sync_runs ORDER BY id DESC LIMIT 1" 2>/dev/null)
	[ -n "$n" ] && [ "$n" -ge 2 ] && started=0 && break
	sleep 0.1
done
check "valgrind: the first sync is running and committing" test "$started" -eq 0
vg locked -c "$TEST_TMP/lock.conf" sync
expect_eq "valgrind: a second concurrent sync exits 3, memcheck clean" "$RC" 3
kill -TERM "$bg"
wait "$bg"
rc=$?
BG_PIDS=""
report term
expect_eq "valgrind: SIGTERM to a running sync exits 5, memcheck clean" "$rc" 5
check "valgrind: memcheck said nothing about the cancelled sync" memcheck_clean term
expect_eq "valgrind: that run is recorded cancelled" "$(latest_run)" cancelled
stop_sim "$SIM_PID"

# ---- 5. a rejected key (exit 4) ----
start_sim || exit 1
KEY=not-the-key write_conf "$TEST_TMP/badkey.conf"
vg badkey -c "$TEST_TMP/badkey.conf" sync
expect_eq "valgrind: a rejected key exits 4, memcheck clean" "$RC" 4
stop_sim "$SIM_PID"

# ---- 6. a run that logs in (username and password, token cache) ----
new_db vg_login || exit 1
BOT="vg-bot@example.com"
PASSWORD="vg-$$-pass"
start_sim --username "$BOT" --password "$PASSWORD" || exit 1
printf '%s\n' "$PASSWORD" >"$TEST_TMP/pw"
chmod 600 "$TEST_TMP/pw"
write_conf "$TEST_TMP/login.conf" "username = \"$BOT\";
  password_file = \"$TEST_TMP/pw\";
  token_url = \"$SIM_URL/Token\";
  token_cache = \"$TEST_TMP/state/token\";"
sed -i '/^  key = /d' "$TEST_TMP/login.conf"
vg login -c "$TEST_TMP/login.conf" sync
expect_eq "valgrind: a sync that logs in exits 0, memcheck clean" "$RC" 0
check "valgrind: the token was cached" test -s "$TEST_TMP/state/token"
vg login2 -c "$TEST_TMP/login.conf" sync
expect_eq "valgrind: a sync with the cached token exits 0, memcheck clean" "$RC" 0
stop_sim "$SIM_PID"

# ---- 7. a paged sync ----
new_db vg_paging || exit 1
start_sim --page-size 7 || exit 1
write_conf "$TEST_TMP/paging.conf" "page_size = 7;"
vg paging -c "$TEST_TMP/paging.conf" sync
expect_eq "valgrind: a paged sync exits 0, memcheck clean" "$RC" 0
save_expect "$TEST_TMP/paging.expect.json"
check "valgrind: the paged mirror is exact" mirror_equals bloom "$TEST_TMP/paging.expect.json"
stop_sim "$SIM_PID"

finish
