#!/bin/bash
# Faults (issue 5): a sync under injected 429/5xx/resets/truncated bodies ends
# with the exact mirror; out of retries fails the run (exit 1) and the next
# sync resumes it; deletes only after a complete run; a second concurrent sync
# exits 3 naming the holder; SIGTERM cancels (exit 5) and the next sync
# resumes; a stall longer than api.timeout_ms is retried.
# Every scenario has its own database (new_db) so none sees another's runs.
. "$(dirname "$0")/lib.sh"

TABLES=$MIRROR_ALL_TABLES

# mirror_rows: rows (deleted or not) over all mirror tables.
mirror_rows() {
	sql="SELECT 0"
	for t in $TABLES; do sql="$sql + (SELECT count(*) FROM bloom.$t)"; done
	q "$sql"
}

# save_expect FILE: bloomsim's expected mirror, readable by the server.
save_expect() {
	sim_get /__expect >"$1" && chmod 644 "$1"
}

# wait_status STATUS SECONDS: waits until the latest run has STATUS.
wait_status() {
	for _ in $(seq 1 $(($2 * 10))); do
		[ "$(q "SELECT status FROM bloom.sync_runs ORDER BY id DESC LIMIT 1" 2>/dev/null)" = "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

# wait_units_done N SECONDS: waits until the latest run committed at least N units.
wait_units_done() {
	for _ in $(seq 1 $(($2 * 10))); do
		n=$(q "SELECT units_done FROM bloom.sync_runs ORDER BY id DESC LIMIT 1" 2>/dev/null)
		[ -n "$n" ] && [ "$n" -ge "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

fault_count() { json_get "$1" "d['faults']['$2']"; }

# start_sync_under_way ERRFILE: starts a sync of $conf in the background
# (its pid in bg), and waits until its run has committed two units.
start_sync_under_way() {
	"$BLOOMSYNC" -c "$conf" sync 2>"$1" &
	bg=$!
	BG_PIDS="$BG_PIDS $bg"
	check "a sync is running" wait_status running 30
	wait_units_done 2 30
}

# ---------------------------------------------------------------------------
# 1. A sync under 5% 429 (Retry-After 1), 5% 5xx, 2% resets, 2% truncated
#    bodies: exit 0, exact mirror, retries counted per stream.
new_db faults_mix || exit 1
start_sim --fault-429 0.05 --retry-after 1 --fault-5xx 0.05 --fault-reset 0.02 --fault-truncate 0.02 \
	--fault-seed 7 || exit 1
conf="$TEST_TMP/mix.conf"
write_conf "$conf"
"$BLOOMSYNC" -c "$conf" sync 2>"$TEST_TMP/mix.err"
rc=$?
expect_eq "sync under 429/5xx/reset/truncate faults exits 0" "$rc" 0
[ "$rc" -eq 0 ] || tail -n 20 "$TEST_TMP/mix.err" | sed 's/^/# /'
save_expect "$TEST_TMP/mix.expect.json"
check "mirror equals the expected mirror despite the faults" mirror_equals bloom "$TEST_TMP/mix.expect.json"
sim_get /__stats >"$TEST_TMP/mix.stats.json"
for f in 429 5xx reset truncate; do
	n=$(fault_count "$TEST_TMP/mix.stats.json" "$f")
	check "bloomsim injected $f faults ($n)" test "$n" -gt 0
done
# Every 429, 5xx and truncated body costs one counted retry. A reset is not
# always one: libcurl itself silently re-sends a request whose reused
# connection died before any answer, so resets are left out of the bound.
answered=$(json_get "$TEST_TMP/mix.stats.json" "sum(d['faults'][k] for k in ('429', '5xx', 'truncate'))")
retries=$(q "SELECT coalesce(sum(retries), 0) FROM bloom.sync_run_streams")
check "retries are counted in sync_run_streams ($retries retries for $answered answered faults)" \
	test "$retries" -gt 0 -a "$retries" -ge "$answered"
streams=$(q "SELECT count(DISTINCT stream) FROM bloom.sync_run_streams WHERE retries > 0")
check "retries are counted per stream ($streams streams retried)" test "$streams" -ge 1
status=$(q "SELECT status FROM bloom.sync_runs ORDER BY id DESC LIMIT 1")
expect_eq "the run is recorded as succeeded" "$status" succeeded
stop_sim "$SIM_PID"

# ---------------------------------------------------------------------------
# 2. Out of retries: every request fails with 5xx after the first N, with
#    max_retries 1 -> exit 1, run failed with an error, committed units kept.
#    Clearing the faults, the next sync resumes the same run and ends exact.
new_db faults_retry || exit 1
start_sim --latency-ms 5 || exit 1
conf="$TEST_TMP/retry.conf"
MAX_RETRIES=1 BATCH_SIZE=50 write_conf "$conf"
sim_post /__faults '{"5xx":1.0,"after":60}' >/dev/null
"$BLOOMSYNC" -c "$conf" sync 2>"$TEST_TMP/retry1.err"
rc=$?
expect_eq "a sync out of retries exits 1" "$rc" 1
read -r run1 status1 err1 done1 <<<"$(q "SELECT id, status, error IS NOT NULL AND error <> '', units_done
  FROM bloom.sync_runs ORDER BY id DESC LIMIT 1" | tr '|' ' ')"
expect_eq "the run is recorded as failed" "$status1" failed
expect_eq "the failed run records its error" "$err1" t
errtext=$(q "SELECT error FROM bloom.sync_runs WHERE id = ${run1:-0}")
echo "# recorded error: $errtext"
grep -qi "error" "$TEST_TMP/retry1.err"
check "the summary prints the error" test $? -eq 0
rows1=$(mirror_rows)
check "units committed before the failure are kept ($done1 units, $rows1 rows)" \
	test "${done1:-0}" -gt 0 -a "${rows1:-0}" -gt 0
donestate=$(q "SELECT count(*) FROM bloom.sync_units WHERE run_id = ${run1:-0} AND state <> 0")
expect_eq "the checkpoint holds exactly the committed units" "$donestate" "$done1"
# the unit that failed the run was never committed, but its requests and
# retries (2 and 1, with max_retries 1) are the run's: status and the
# metrics show what the failure cost
retries1=$(q "SELECT coalesce(sum(retries), 0) FROM bloom.sync_run_streams WHERE run_id = ${run1:-0}")
check "the failed run counts the retries of the unit that failed it ($retries1)" test "${retries1:-0}" -ge 1

sim_post /__faults '{"5xx":0,"after":0}' >/dev/null
sim_post /__reset >/dev/null
"$BLOOMSYNC" -c "$conf" sync 2>"$TEST_TMP/retry2.err"
rc=$?
expect_eq "the next sync after clearing the faults exits 0" "$rc" 0
read -r run2 status2 resumed2 known2 <<<"$(q "SELECT id, status, resumed, units_known FROM bloom.sync_runs
  ORDER BY id DESC LIMIT 1" | tr '|' ' ')"
expect_eq "it resumes the same run id" "$run2" "$run1"
check "the run is marked resumed (resumed = $resumed2)" test "${resumed2:-0}" -gt 0
expect_eq "the resumed run ends succeeded" "$status2" succeeded
nruns=$(q "SELECT count(*) FROM bloom.sync_runs")
expect_eq "no second run was created" "$nruns" 1
grep -q "resum" "$TEST_TMP/retry2.err"
check "the output says the run was resumed" test $? -eq 0
save_expect "$TEST_TMP/retry.expect.json"
check "mirror equals the expected mirror after the resume" mirror_equals bloom "$TEST_TMP/retry.expect.json"
total2=$(json_get <(sim_get /__stats) 'd["total"]')
# no faults now: the resumed session fetches each pending unit exactly once
expect_eq "the resume fetches only the units not committed (units_known - units_done)" \
	"$total2" "$((known2 - done1))"
stop_sim "$SIM_PID"

# ---------------------------------------------------------------------------
# 3. Deletes only after a complete run: mutate the org; a run that fails
#    mid-way marks nothing deleted; the resumed complete run marks exactly the
#    rows removed upstream.
new_db faults_del || exit 1
start_sim --latency-ms 5 || exit 1
conf="$TEST_TMP/del.conf"
MAX_RETRIES=1 BATCH_SIZE=50 write_conf "$conf"
"$BLOOMSYNC" -c "$conf" sync 2>"$TEST_TMP/del1.err"
expect_eq "deletes: the first complete sync exits 0" $? 0
save_expect "$TEST_TMP/del.expect1.json"
check "deletes: mirror equals the expected mirror before the mutation" mirror_equals bloom "$TEST_TMP/del.expect1.json"
del0=$(deleted_rows)
sim_post /__mutate >/dev/null
save_expect "$TEST_TMP/del.expect2.json"
removed=$(removed_keys "$TEST_TMP/del.expect1.json" "$TEST_TMP/del.expect2.json")
check "deletes: the mutation removed rows upstream ($removed)" test "$removed" -gt 0
sim_post /__faults '{"5xx":1.0,"after":80}' >/dev/null
"$BLOOMSYNC" -c "$conf" sync 2>"$TEST_TMP/del2.err"
expect_eq "deletes: the run that fails mid-way exits 1" $? 1
status=$(q "SELECT status FROM bloom.sync_runs ORDER BY id DESC LIMIT 1")
expect_eq "deletes: the partial run is recorded failed" "$status" failed
partial=$(q "SELECT units_done > 1 AND units_done < units_known FROM bloom.sync_runs ORDER BY id DESC LIMIT 1")
expect_eq "deletes: the failed run did commit part of its units" "$partial" t
del1=$(deleted_rows)
expect_eq "deletes: a failed run marks nothing deleted" "$del1" "$del0"
drow=$(q "SELECT deleted_rows FROM bloom.sync_runs ORDER BY id DESC LIMIT 1")
expect_eq "deletes: the failed run records no deleted rows" "$drow" 0
sim_post /__faults '{"5xx":0,"after":0}' >/dev/null
"$BLOOMSYNC" -c "$conf" sync 2>"$TEST_TMP/del3.err"
expect_eq "deletes: the resumed run exits 0" $? 0
nruns=$(q "SELECT count(*) FROM bloom.sync_runs")
resumed=$(q "SELECT resumed FROM bloom.sync_runs ORDER BY id DESC LIMIT 1")
expect_eq "deletes: the complete run is the resumed one (2 runs, resumed 1)" "$nruns/$resumed" "2/1"
del2=$(deleted_rows)
expect_eq "deletes: the resumed complete run marks exactly the removed rows" "$((del2 - del0))" "$removed"
check "deletes: mirror equals the mutated org's expected mirror" mirror_equals bloom "$TEST_TMP/del.expect2.json"
drow=$(q "SELECT deleted_rows FROM bloom.sync_runs ORDER BY id DESC LIMIT 1")
expect_eq "deletes: the complete run records its deleted rows" "$drow" "$removed"
stop_sim "$SIM_PID"

# ---------------------------------------------------------------------------
# 4. A second concurrent sync exits 3 at once naming the holder; then SIGTERM
#    to the running one: exit 5, run cancelled; the next sync resumes it.
new_db faults_lock || exit 1
start_sim --latency-ms 200 || exit 1
conf="$TEST_TMP/lock.conf"
BATCH_SIZE=50 write_conf "$conf"
start_sync_under_way "$TEST_TMP/lock1.err"
"$BLOOMSYNC" -c "$conf" sync 2>"$TEST_TMP/lock2.err"
rc=$?
expect_eq "a second concurrent sync exits 3" "$rc" 3
kill -0 "$bg" 2>/dev/null
check "the second sync ended while the first was still running" test $? -eq 0
grep -qi "lock" "$TEST_TMP/lock2.err"
check "its message says the lock is held" test $? -eq 0
grep -q "pid $bg\b" "$TEST_TMP/lock2.err"
check "its message names the holder (pid $bg)" test $? -eq 0
sed 's/^/# /' "$TEST_TMP/lock2.err" | head -n 3
nruns=$(q "SELECT count(*) FROM bloom.sync_runs")
expect_eq "the locked-out sync created no run" "$nruns" 1

run1=$(q "SELECT id FROM bloom.sync_runs ORDER BY id DESC LIMIT 1")
kill -TERM "$bg"
wait "$bg"
rc=$?
BG_PIDS=""
expect_eq "SIGTERM to a running sync exits 5" "$rc" 5
read -r status done1 known1 <<<"$(q "SELECT status, units_done, units_known FROM bloom.sync_runs
  WHERE id = $run1" | tr '|' ' ')"
expect_eq "the run is recorded as cancelled" "$status" cancelled
check "the cancelled run was partial ($done1 of $known1 units)" test "$done1" -lt "$known1"
sim_post /__faults '{"latency_ms":5}' >/dev/null
"$BLOOMSYNC" -c "$conf" sync 2>"$TEST_TMP/lock3.err"
expect_eq "the next sync after SIGTERM exits 0" $? 0
read -r run2 status resumed <<<"$(q "SELECT id, status, resumed FROM bloom.sync_runs ORDER BY id DESC LIMIT 1" |
	tr '|' ' ')"
expect_eq "it resumes the cancelled run (same run id)" "$run2" "$run1"
check "the run is marked resumed (resumed = $resumed)" test "${resumed:-0}" -gt 0
expect_eq "the resumed run ends succeeded" "$status" succeeded
save_expect "$TEST_TMP/lock.expect.json"
check "mirror equals the expected mirror after SIGTERM and resume" mirror_equals bloom "$TEST_TMP/lock.expect.json"

# 4b. The run lock lost while reconnecting: another session (here psql, as a
#     second sync would) takes it once the sync's backend is terminated. The
#     sync stops, and records nothing of the run, which is the lock holder's
#     now: not 'failed' while it runs on. Without the holder, the next sync
#     resumes it.
sim_post /__mutate >/dev/null
sim_post /__faults '{"latency_ms":100}' >/dev/null
start_sync_under_way "$TEST_TMP/lost.err"
run3=$(q "SELECT id FROM bloom.sync_runs ORDER BY id DESC LIMIT 1")
lock_class=$((0x426c6f6f))
psql -XAtq -v ON_ERROR_STOP=1 >"$TEST_TMP/holder.out" 2>&1 <<SQL &
SELECT pid AS victim, objid AS key2 FROM pg_locks
  WHERE locktype = 'advisory' AND classid = $lock_class AND granted \gset
SELECT pg_terminate_backend(:victim);
SELECT pg_advisory_lock($lock_class, :key2);
SELECT 'holding';
SELECT pg_sleep(60);
SQL
holder=$!
BG_PIDS="$BG_PIDS $holder"
wait "$bg"
rc=$?
expect_eq "the sync that lost the run lock exits 1" "$rc" 1
grep -q "lost the run lock while reconnecting" "$TEST_TMP/lost.err"
check "it says it lost the run lock" test $? -eq 0
grep -q "holding" "$TEST_TMP/holder.out"
check "the other session held the lock by then" test $? -eq 0
expect_eq "the run stays 'running': it is the lock holder's, not recorded failed" \
	"$(q "SELECT status || '/' || (finished_at IS NULL) FROM bloom.sync_runs WHERE id = $run3")" running/true
[ "$FAILS" -eq 0 ] || sed 's/^/# /' "$TEST_TMP/lost.err" | tail -n 5
# its backend, asleep, would not notice its client gone: end it
q "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND classid = $lock_class" >/dev/null
wait "$holder" 2>/dev/null
BG_PIDS=""
for _ in $(seq 1 50); do
	[ "$(q "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = $lock_class")" = 0 ] && break
	sleep 0.1
done
sim_post /__faults '{"latency_ms":5}' >/dev/null
"$BLOOMSYNC" -c "$conf" sync 2>"$TEST_TMP/lost2.err"
expect_eq "with the holder gone, the next sync exits 0" $? 0
expect_eq "it resumed the run" "$(q "SELECT id || ' ' || status FROM bloom.sync_runs ORDER BY id DESC LIMIT 1")" \
	"$run3 succeeded"
save_expect "$TEST_TMP/lost.expect.json"
check "mirror equals the expected mirror after the lost lock" mirror_equals bloom "$TEST_TMP/lost.expect.json"

# 4c. A frozen database backend (SIGSTOP: it answers nothing, not even the
#     cancel) does not hold a stop: the signal's grace ends, the session's
#     socket is closed, the sync exits. Thawed, the next sync resumes.
sim_post /__mutate >/dev/null
sim_post /__faults '{"latency_ms":100}' >/dev/null
start_sync_under_way "$TEST_TMP/frozen.err"
backend=$(q "SELECT pid FROM pg_stat_activity WHERE application_name = 'bloomsync' LIMIT 1")
kill -STOP "$backend"
sleep 1
kill -TERM "$bg"
for _ in $(seq 1 600); do kill -0 "$bg" 2>/dev/null || break; sleep 0.1; done
kill -0 "$bg" 2>/dev/null
frozen_alive=$?
kill -CONT "$backend"
check "SIGTERM ends a sync whose database backend is frozen (within 60 s)" test "$frozen_alive" -ne 0
wait "$bg"
rc=$?
BG_PIDS=""
check "it exits 5 (cancelled) or 1 (failed), not killed (rc $rc)" test "$rc" -eq 5 -o "$rc" -eq 1
[ "$FAILS" -eq 0 ] || sed 's/^/# /' "$TEST_TMP/frozen.err" | tail -n 5
q "SELECT pg_terminate_backend($backend)" >/dev/null
sim_post /__faults '{"latency_ms":5}' >/dev/null
"$BLOOMSYNC" -c "$conf" sync 2>"$TEST_TMP/frozen2.err"
expect_eq "thawed, the next sync exits 0" $? 0
save_expect "$TEST_TMP/frozen.expect.json"
check "mirror equals the expected mirror after the frozen backend" mirror_equals bloom "$TEST_TMP/frozen.expect.json"
stop_sim "$SIM_PID"

# ---------------------------------------------------------------------------
# 5. A stalled response longer than api.timeout_ms times out and is retried.
new_db faults_stall || exit 1
start_sim --fault-stall 0.05 --stall-ms 4000 --fault-seed 3 || exit 1
conf="$TEST_TMP/stall.conf"
TIMEOUT_MS=1000 write_conf "$conf"
"$BLOOMSYNC" -c "$conf" sync 2>"$TEST_TMP/stall.err"
rc=$?
expect_eq "a sync with stalls longer than api.timeout_ms exits 0" "$rc" 0
[ "$rc" -eq 0 ] || tail -n 20 "$TEST_TMP/stall.err" | sed 's/^/# /'
sim_get /__stats >"$TEST_TMP/stall.stats.json"
stalls=$(fault_count "$TEST_TMP/stall.stats.json" stall)
check "bloomsim stalled some responses ($stalls)" test "$stalls" -gt 0
retries=$(q "SELECT coalesce(sum(retries), 0) FROM bloom.sync_run_streams")
check "the stalled requests were retried ($retries retries for $stalls stalls)" test "$retries" -ge "$stalls"
save_expect "$TEST_TMP/stall.expect.json"
check "mirror equals the expected mirror despite the stalls" mirror_equals bloom "$TEST_TMP/stall.expect.json"
stop_sim "$SIM_PID"

finish
