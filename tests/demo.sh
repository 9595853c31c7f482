#!/bin/sh
# `make demo`: a scratch PostgreSQL and bloomsim (with network-like latency),
# one full `bloomsync sync`, then a look at what landed. Stops what it started.
set -eu
cd "$(dirname "$0")/.."
TMP=$(mktemp -d /tmp/bloomsync-demo.XXXXXX)
chmod 755 "$TMP"
SIM_PID=""
cleanup() {
	[ -n "$SIM_PID" ] && kill "$SIM_PID" 2>/dev/null && wait "$SIM_PID" 2>/dev/null
	sh tests/pg.sh stop "$TMP/pg" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

echo "== starting a scratch PostgreSQL in $TMP/pg"
eval "$(sh tests/pg.sh start "$TMP/pg")"
psql -XAtq -c "CREATE DATABASE bloom_demo"
export PGDATABASE=bloom_demo

KEY="demo-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
echo "== starting bloomsim: 150 users, 30 meetings, 40 ms latency per request"
build/bloomsim --port 0 --key "$KEY" --users 150 --meetings 30 --latency-ms 40 --jitter-ms 10 >"$TMP/sim.out" 2>"$TMP/sim.err" &
SIM_PID=$!
i=0
while [ ! -s "$TMP/sim.out" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
PORT=$(head -n 1 "$TMP/sim.out")
[ -n "$PORT" ] || { cat "$TMP/sim.err"; exit 1; }

cat >"$TMP/bloomsync.conf" <<CONF
api = {
  base_url = "http://127.0.0.1:$PORT/api/v1";
  concurrency = 16;
  rate_limit = 0;
};
postgres = {
  conninfo = "dbname=bloom_demo";
  schema = "bloom";
};
CONF
export BG_API_KEY="$KEY"

echo "== bloomsync sync (16 requests in flight)"
build/bloomsync -c "$TMP/bloomsync.conf" sync

echo
echo "== a second sync: nothing changed upstream, so nothing is written"
build/bloomsync -c "$TMP/bloomsync.conf" sync 2>&1 | sed -n '1p;/^total/p'

echo
echo "== what landed"
psql -X -P pager=off -c "SELECT 'users' AS table, count(*) FROM bloom.users UNION ALL
  SELECT 'meetings', count(*) FROM bloom.meetings UNION ALL
  SELECT 'meeting_attendees', count(*) FROM bloom.meeting_attendees UNION ALL
  SELECT 'todos', count(*) FROM bloom.todos UNION ALL
  SELECT 'measurables', count(*) FROM bloom.measurables UNION ALL
  SELECT 'meeting_measurables', count(*) FROM bloom.meeting_measurables UNION ALL
  SELECT 'scores', count(*) FROM bloom.scores UNION ALL
  SELECT 'goals', count(*) FROM bloom.goals UNION ALL
  SELECT 'goal_meetings', count(*) FROM bloom.goal_meetings UNION ALL
  SELECT 'issues', count(*) FROM bloom.issues UNION ALL
  SELECT 'headlines', count(*) FROM bloom.headlines"
psql -X -P pager=off -c "SELECT id, left(name, 30) AS name, email, title, is_placeholder FROM bloom.users ORDER BY id LIMIT 5"
psql -X -P pager=off -c "SELECT id, left(name, 30) AS name, meeting_type, created_at FROM bloom.meetings ORDER BY id LIMIT 5"
psql -X -P pager=off -c "SELECT id, left(name, 30) AS name, due_date, is_complete, meeting_id, owner_id FROM bloom.todos ORDER BY id LIMIT 5"
psql -X -P pager=off -c "SELECT id, left(name, 30) AS name, target, unit, direction FROM bloom.measurables ORDER BY id LIMIT 5"
psql -X -P pager=off -c "SELECT id, measurable_id, week, week_id, value, target FROM bloom.scores ORDER BY id LIMIT 5"
psql -X -P pager=off -c "SELECT id, left(name, 30) AS name, owner_id, due_date, completion, is_archived FROM bloom.goals ORDER BY id LIMIT 5"
psql -X -P pager=off -c "SELECT id, left(name, 30) AS name, meeting_id, owner_id, is_complete FROM bloom.issues ORDER BY id LIMIT 5"
echo "== a dashboard view: to-do completion per meeting and week"
psql -X -P pager=off -c "SELECT meeting_id, week, todos_due, completed_on_time, completion_rate FROM bloom.todo_completion_weekly ORDER BY week DESC, meeting_id LIMIT 5"
build/bloomsync -c "$TMP/bloomsync.conf" status
