#!/bin/bash
# Resume (issue 5): kill -9 at random points of a run, resume each time; the
# mirror ends exact, it is all one run, and bloomsim served at most one batch
# of extra requests per interruption. Then a PostgreSQL restart in the middle
# of a run: the sync reconnects, redoes the open batch and ends exact. Last,
# SIGTERM while the server is down and the sync reconnecting.
# Each scenario has its own database (new_db).
. "$(dirname "$0")/lib.sh"

CONC=8
KILLS=5
export CONCURRENCY=$CONC BATCH_SIZE=50

# A clean run of this org takes about 2400 requests * 30 ms / 8 in flight
# = 9 s, longer than the most the kill loop lets it run (5 * 1.5 s), so every
# kill lands inside the run.
start_sim --latency-ms 30 --users 600 --meetings 120 || exit 1
sim_get /__expect >"$TEST_TMP/expect.json" && chmod 644 "$TEST_TMP/expect.json"

latest_run() { q "SELECT $1 FROM bloom.sync_runs ORDER BY id DESC LIMIT 1" 2>/dev/null; }

# stream_counts: the latest run's inserted/updated per stream, one line.
stream_counts() {
	q "SELECT string_agg(stream || '=' || inserted || '/' || updated, ' ' ORDER BY stream)
	   FROM bloom.sync_run_streams WHERE run_id = (SELECT max(id) FROM bloom.sync_runs)"
}

# sync_under_way CONF ERR: starts a sync in the background (its pid in pid,
# stderr to ERR) and waits until it has committed 200 units (10 s at most).
sync_under_way() {
	"$BLOOMSYNC" -c "$1" sync 2>"$2" &
	pid=$!
	BG_PIDS="$BG_PIDS $pid"
	for _ in $(seq 1 100); do
		n=$(latest_run units_done)
		[ -n "$n" ] && [ "$n" -ge 200 ] && break
		sleep 0.1
	done
}

# terminated_within_10s: sends SIGTERM to the sync ($pid); 0 when it has
# ended 10 s later (not a speed figure: the cases it serves would go on for
# a minute or more without heeding the signal).
terminated_within_10s() {
	kill -TERM "$pid"
	for _ in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}

# no_other_backends: waits until no other session is connected to this
# database (a killed client's backend notices the closed socket and exits;
# until then it still holds the run lock).
no_other_backends() {
	for _ in $(seq 1 100); do
		n=$(q "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
		  AND pid <> pg_backend_pid()" 2>/dev/null)
		[ "$n" = 0 ] && return 0
		sleep 0.1
	done
	return 1
}

# ---------------------------------------------------------------------------
# The cost of a clean run, in its own database.
new_db resume_clean || exit 1
write_conf "$TEST_TMP/clean.conf"
sim_post /__reset >/dev/null
"$BLOOMSYNC" -c "$TEST_TMP/clean.conf" sync 2>"$TEST_TMP/clean.err"
expect_eq "a clean run exits 0" $? 0
clean_total=$(json_get <(sim_get /__stats) 'd["total"]')
clean_units=$(latest_run units_known)
clean_counts=$(stream_counts)
echo "# a clean run costs $clean_total requests for $clean_units units"
check "the clean run's mirror equals the expected mirror" mirror_equals bloom "$TEST_TMP/expect.json"

# ---------------------------------------------------------------------------
# The kill -9 loop.
new_db resume_kill || exit 1
write_conf "$TEST_TMP/kill.conf"
sim_post /__reset >/dev/null
kills=0       # kill -9 delivered to a live sync
kills_in_run=0 # of those, the ones after the run record was committed
ended_alone=0
for i in $(seq 1 $KILLS); do
	"$BLOOMSYNC" -c "$TEST_TMP/kill.conf" sync 2>"$TEST_TMP/kill$i.err" &
	pid=$!
	BG_PIDS="$BG_PIDS $pid"
	ms=$((300 + RANDOM % 1201))
	sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
	if kill -9 "$pid" 2>/dev/null; then
		wait "$pid" 2>/dev/null
		kills=$((kills + 1))
		nrun=$(q "SELECT count(*) FROM bloom.sync_runs" 2>/dev/null)
		[ "${nrun:-0}" -gt 0 ] && kills_in_run=$((kills_in_run + 1))
		echo "# kill $i after ${ms} ms: $(latest_run "units_done || '/' || units_known") units done"
		if [ "$(latest_run status 2>/dev/null)" = running ] && [ "${status_checked:-0}" = 0 ]; then
			"$BLOOMSYNC" -c "$TEST_TMP/kill.conf" status >"$TEST_TMP/kill_status.out" 2>&1
			grep -q "(running, but no sync holds the lock: it was killed or crashed).*the next sync resumes it" \
				"$TEST_TMP/kill_status.out"
			check "status after kill -9 says the 'running' run was killed and will be resumed" test $? -eq 0
			status_checked=1
		fi
	else
		wait "$pid"
		echo "# sync $i ended by itself with exit $? before the kill"
		ended_alone=1
	fi
	BG_PIDS=""
	no_other_backends || echo "# a killed sync's backend is still connected"
	[ "$ended_alone" = 1 ] && break
done
expect_eq "every kill -9 landed in a running sync" "$kills/$ended_alone" "$KILLS/0"
if [ "$(latest_run status)" != succeeded ]; then
	"$BLOOMSYNC" -c "$TEST_TMP/kill.conf" sync 2>"$TEST_TMP/kill_final.err"
	rc=$?
	expect_eq "the sync after the kills runs to completion (exit 0)" "$rc" 0
	[ "$rc" -eq 0 ] || tail -n 20 "$TEST_TMP/kill_final.err" | sed 's/^/# /'
fi
check "after the kill -9 loop the mirror equals the expected mirror" mirror_equals bloom "$TEST_TMP/expect.json"
read -r nruns nids status resumed known <<<"$(q "SELECT count(*), count(DISTINCT id), max(status),
  max(resumed), max(units_known) FROM bloom.sync_runs" | tr '|' ' ')"
expect_eq "sync_runs holds exactly one run for all of it" "$nruns/$nids/$status" "1/1/succeeded"
expect_eq "the run was resumed once per kill after its creation" "$resumed" "$kills_in_run"
expect_eq "the run covered the same units as a clean run" "$known" "$clean_units"
kill_counts=$(stream_counts)
expect_eq "the run's per-stream inserted/updated counts equal a clean run's" "$kill_counts" "$clean_counts"
total=$(json_get <(sim_get /__stats) 'd["total"]')
# The bound. A unit is fetched again after a kill only when it was fetched
# and not yet committed: the requests handed to the HTTP engine (a window of
# 2 * concurrency), the results queue (8 * concurrency, at least 64) and the
# open batch the consumer has taken from that queue (it commits when the queue
# is drained and the fetch stage is short of work, so with 30 ms of latency
# it holds a handful of units). We assert at most 10 * concurrency extra
# requests per kill on top of a clean run (a request never sent costs
# nothing: units still queued for dispatch are not fetched),
# plus one batch of slack for the whole loop (batch_size = 50: a batch of
# 50 rows holds at most 50 units with rows). A resume that re-listed or
# refetched committed units would cost hundreds more per kill.
per_kill=$((10 * CONC))
bound=$((clean_total + kills * per_kill + BATCH_SIZE))
echo "# kill loop: $total requests = clean $clean_total + $((total - clean_total)) for $kills kills (bound $bound)"
check "bloomsim served at most one batch per kill above a clean run ($total <= $bound)" test "$total" -le "$bound"
check "every unit was fetched at least once ($total >= $clean_total)" test "$total" -ge "$clean_total"

# ---------------------------------------------------------------------------
# PostgreSQL restarts in the middle of a run: the sync reconnects, redoes the
# open batch, ends exit 0 with the exact mirror, as one run never resumed.
new_db resume_pg || exit 1
write_conf "$TEST_TMP/pg.conf"
sync_under_way "$TEST_TMP/pg.conf" "$TEST_TMP/pg.err"
before=$(latest_run "units_done || '/' || units_known")
if [ -n "${PG_DIR:-}" ]; then
	sh "$(dirname "$0")/../pg.sh" restart "$PG_DIR"
	check "PostgreSQL restarted while the sync ran (at $before units)" test $? -eq 0
else
	not_ok "PG_DIR is not set: cannot restart PostgreSQL"
fi
kill -0 "$pid" 2>/dev/null
check "the sync was still running after the restart" test $? -eq 0
wait "$pid"
rc=$?
BG_PIDS=""
expect_eq "the sync survives the PostgreSQL restart (exit 0)" "$rc" 0
[ "$rc" -eq 0 ] || grep -v " info " "$TEST_TMP/pg.err" | head -n 20 | sed 's/^/# /'
grep -qi "reconnect" "$TEST_TMP/pg.err"
check "it noticed the lost connection and reconnected" test $? -eq 0
check "after the PostgreSQL restart the mirror equals the expected mirror" \
	mirror_equals bloom "$TEST_TMP/expect.json"
read -r nruns status resumed <<<"$(q "SELECT count(*), max(status), max(resumed) FROM bloom.sync_runs" | tr '|' ' ')"
expect_eq "one run, succeeded, not resumed" "$nruns/$status/$resumed" "1/succeeded/0"
# nothing written twice, nothing lost: the run's committed counts are a
# clean run's (a redone batch was rolled back with its counts)
pg_counts=$(stream_counts)
expect_eq "the run's per-stream inserted/updated counts equal a clean run's" "$pg_counts" "$clean_counts"

# ---------------------------------------------------------------------------
# PostgreSQL crashes in the middle of a run and loses the batches it had
# acknowledged but not yet written (batches commit with synchronous_commit
# off; the WAL writer is slowed here so that the last seconds' commits are
# surely lost): the sync reconnects, finds those units pending again, fetches
# them again and ends exit 0 with the exact mirror. It once ended
# "succeeded" without them.
new_db resume_crash || exit 1
write_conf "$TEST_TMP/crash.conf"
if [ -n "${PG_DIR:-}" ]; then
	q "ALTER SYSTEM SET wal_writer_delay = '10s'" >/dev/null
	q "ALTER SYSTEM SET wal_writer_flush_after = '1GB'" >/dev/null
	q "SELECT pg_reload_conf()" >/dev/null
	sleep 0.5
	sync_under_way "$TEST_TMP/crash.conf" "$TEST_TMP/crash.err"
	sh "$(dirname "$0")/../pg.sh" crash "$PG_DIR"
	check "PostgreSQL crashed and came back while the sync ran" test $? -eq 0
	wait "$pid"
	rc=$?
	BG_PIDS=""
	q "ALTER SYSTEM RESET wal_writer_delay" >/dev/null
	q "ALTER SYSTEM RESET wal_writer_flush_after" >/dev/null
	q "SELECT pg_reload_conf()" >/dev/null
	expect_eq "the sync survives the crash (exit 0)" "$rc" 0
	[ "$rc" -eq 0 ] || grep -v " info " "$TEST_TMP/crash.err" | head -n 20 | sed 's/^/# /'
	grep -q "pending again" "$TEST_TMP/crash.err"
	check "it found units the server had lost pending again" test $? -eq 0
	expect_eq "its summary counts each unit once, as the run does (not the lost ones twice)" \
		"$(sed -n 's/^this session: .* units \([0-9]*\/[0-9]*\),.*/\1/p' "$TEST_TMP/crash.err")" \
		"$(latest_run "units_done || '/' || units_known")"
	check "after the crash the mirror equals the expected mirror" mirror_equals bloom "$TEST_TMP/expect.json"
	expect_eq "one run, succeeded, no unit left pending" \
		"$(q "SELECT count(*) || '/' || max(status) || '/' || (SELECT count(*) FROM bloom.sync_units) FROM bloom.sync_runs")" \
		"1/succeeded/0"
else
	not_ok "PG_DIR is not set: cannot crash PostgreSQL"
fi

# ---------------------------------------------------------------------------
# PostgreSQL goes down and stays down; SIGTERM comes while the sync is
# reconnecting (which it would go on with for about a minute): it stops at
# once with exit 5, and once the server is back the next sync resumes the
# run and ends exact.
new_db resume_down || exit 1
write_conf "$TEST_TMP/down.conf"
sync_under_way "$TEST_TMP/down.conf" "$TEST_TMP/down.err"
if [ -n "${PG_DIR:-}" ]; then
	sh "$(dirname "$0")/../pg.sh" stop "$PG_DIR"
	for _ in $(seq 1 100); do
		grep -q "reconnecting in" "$TEST_TMP/down.err" && break
		sleep 0.1
	done
	grep -q "reconnecting in" "$TEST_TMP/down.err"
	check "the sync noticed the server was gone and reconnects" test $? -eq 0
	# without heeding the signal it reconnects for ~60 s
	check "SIGTERM while reconnecting ends the sync within 10 s" terminated_within_10s
	kill -KILL "$pid" 2>/dev/null
	wait "$pid"
	rc=$?
	BG_PIDS=""
	expect_eq "it exits 5 (cancelled)" "$rc" 5
	[ "$rc" -eq 5 ] || grep -v " info " "$TEST_TMP/down.err" | tail -n 10 | sed 's/^/# /'
	sh "$(dirname "$0")/../pg.sh" resume "$PG_DIR"
	check "PostgreSQL is back" test $? -eq 0
	"$BLOOMSYNC" -c "$TEST_TMP/down.conf" sync 2>"$TEST_TMP/down2.err"
	expect_eq "the next sync exits 0" $? 0
	read -r nruns status <<<"$(q "SELECT count(*), max(status) FROM bloom.sync_runs" | tr '|' ' ')"
	expect_eq "it resumed the interrupted run: one run, succeeded" "$nruns/$status" "1/succeeded"
	check "after the outage and resume the mirror equals the expected mirror" \
		mirror_equals bloom "$TEST_TMP/expect.json"
else
	not_ok "PG_DIR is not set: cannot stop PostgreSQL"
fi

# ---------------------------------------------------------------------------
# A batch waits on a lock another session holds on a mirror table (a DBA's
# long transaction); SIGTERM cancels the waiting statement, and the sync
# stops with exit 5 instead of waiting as long as the lock is held. Once the
# lock is gone the next sync resumes the run and ends exact.
# sigterm_while_locked TABLE TAG: a sync started while another session
# holds TABLE locked, sent SIGTERM once it waits on the lock; sets rc.
sigterm_while_locked() {
	psql -XAtq -c "BEGIN; LOCK TABLE $1 IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(120); COMMIT" \
		>/dev/null 2>&1 &
	locker=$!
	BG_PIDS="$BG_PIDS $locker"
	for _ in $(seq 1 100); do
		[ "$(q "SELECT count(*) FROM pg_locks WHERE relation = '$1'::regclass AND granted
		  AND mode = 'AccessExclusiveLock'")" = 1 ] && break
		sleep 0.05
	done
	"$BLOOMSYNC" -c "$TEST_TMP/lock.conf" sync 2>"$TEST_TMP/$2.err" &
	pid=$!
	BG_PIDS="$BG_PIDS $pid"
	waiting=0
	for _ in $(seq 1 200); do
		waiting=$(q "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'bloomsync'
		  AND wait_event_type = 'Lock' AND datname = current_database()")
		[ "$waiting" -gt 0 ] && break
		sleep 0.1
	done
	check "the sync waits on the lock on $1 ($waiting sessions)" test "$waiting" -gt 0
	# without the cancel it waits out the locker's 120 s
	check "SIGTERM while the sync waits on a lock on $1 ends it within 10 s" terminated_within_10s
	q "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(120)%'
	  AND pid <> pg_backend_pid()" >/dev/null
	kill -KILL "$pid" 2>/dev/null
	wait "$pid"
	rc=$?
	wait "$locker" 2>/dev/null
	BG_PIDS=""
	[ "$rc" -eq 5 ] || grep -v " info " "$TEST_TMP/$2.err" | tail -n 10 | sed 's/^/# /'
}
new_db resume_lock || exit 1
write_conf "$TEST_TMP/lock.conf"
"$BLOOMSYNC" -c "$TEST_TMP/lock.conf" migrate >/dev/null 2>&1
# before the run is open: reading sync_runs waits (and after the cancel,
# recording the run's end would wait too: it gives up instead)
sigterm_while_locked bloom.sync_runs lock0
expect_eq "a sync stopped before its run opened exits 5 (cancelled), not 1" "$rc" 5
expect_eq "no run was opened" "$(q "SELECT count(*) FROM bloom.sync_runs")" 0
# in the middle of the run: a batch waits
sigterm_while_locked bloom.users lock
expect_eq "it exits 5 (cancelled)" "$rc" 5
expect_eq "the run is recorded cancelled" "$(latest_run status)" cancelled
"$BLOOMSYNC" -c "$TEST_TMP/lock.conf" sync 2>"$TEST_TMP/lock2.err"
expect_eq "the next sync exits 0" $? 0
expect_eq "it resumed the cancelled run: one run, succeeded" \
	"$(q "SELECT count(*) || '/' || max(status) FROM bloom.sync_runs")" "1/succeeded"
check "the mirror equals the expected mirror" mirror_equals bloom "$TEST_TMP/expect.json"

finish
