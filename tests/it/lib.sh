# tests/it/lib.sh — helpers for the integration tests (bash), sourced by each
# tests/it/NN_*.sh. The runner (tests/run.sh) provides: BLOOMSYNC, BLOOMSIM,
# TEST_TMP (a scratch dir of this script's own), and a running scratch
# PostgreSQL through PGHOST/PGPORT/PGUSER/PGDATABASE (plus PG_BINDIR,
# PG_DATADIR, PG_DIR for restart tests).

set -u
: "${BLOOMSYNC:=build/bloomsync}"
: "${BLOOMSIM:=build/bloomsim}"
: "${TEST_TMP:=$(mktemp -d)}"
KEY=${KEY:-test-key-$$-s3cr3t}
FAILS=0
SIM_PIDS=""
BG_PIDS=""

ok() { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; FAILS=$((FAILS + 1)); }

# check NAME COMMAND...: runs the command; ok when it exits 0.
check() {
	name=$1; shift
	if "$@"; then ok "$name"; else not_ok "$name"; fi
}

# expect_eq NAME GOT WANT
expect_eq() {
	if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1 (got '$2', want '$3')"; fi
}

cleanup() {
	for p in $BG_PIDS $SIM_PIDS; do kill "$p" 2>/dev/null; done
	for p in $BG_PIDS $SIM_PIDS; do wait "$p" 2>/dev/null; done
	return 0
}
trap cleanup EXIT

finish() {
	cleanup
	SIM_PIDS=""; BG_PIDS=""
	if [ "$FAILS" -gt 0 ]; then exit 1; fi
	exit 0
}

# start_sim ARGS...: starts bloomsim on a free port; sets SIM_PID, SIM_URL, SIM_API.
start_sim() {
	out="$TEST_TMP/sim.$$.$RANDOM.out"
	"$BLOOMSIM" --port 0 --key "$KEY" "$@" >"$out" 2>"$out.err" &
	SIM_PID=$!
	SIM_PIDS="$SIM_PIDS $SIM_PID"
	for _ in $(seq 1 200); do
		port=$(head -n 1 "$out" 2>/dev/null)
		[ -n "$port" ] && break
		sleep 0.05
	done
	if [ -z "$port" ]; then
		echo "# bloomsim did not start:" >&2; cat "$out.err" >&2
		return 1
	fi
	SIM_URL="http://127.0.0.1:$port"
	SIM_API="$SIM_URL/api/v1"
}

# start_body_server [STATE_FILE]: serves the bodies that the Python code on
# stdin gives (a function body(path); see body_server.py) on a free port;
# sets SIM_API. For bodies bloomsim cannot produce.
start_body_server() {
	code="$TEST_TMP/bodies.$$.$RANDOM.py"
	portfile="$code.port"
	cat >"$code"
	python3 "$(dirname "${BASH_SOURCE[0]}")/body_server.py" "$portfile" "$code" "$@" 2>"$code.err" &
	SIM_PIDS="$SIM_PIDS $!"
	for _ in $(seq 1 100); do [ -s "$portfile" ] && break; sleep 0.05; done
	if [ ! -s "$portfile" ]; then
		echo "# the body server did not start:" >&2; cat "$code.err" >&2
		return 1
	fi
	SIM_API="http://127.0.0.1:$(cat "$portfile")/api/v1"
}

stop_sim() {
	kill "$1" 2>/dev/null; wait "$1" 2>/dev/null
	return 0
}

sim_get() { curl -sf "$SIM_URL$1"; }
sim_post() { curl -sf -X POST ${2:+-d "$2"} "$SIM_URL$1"; }

# new_db NAME: creates a database and makes it the default (PGDATABASE).
new_db() {
	psql -XAtq -d postgres -c "DROP DATABASE IF EXISTS $1" >/dev/null 2>&1
	psql -XAtq -d postgres -c "CREATE DATABASE $1" >/dev/null || return 1
	export PGDATABASE=$1
}

q() { psql -XAtq -v ON_ERROR_STOP=1 -c "$1"; }

# write_conf FILE [EXTRA_API_SETTINGS] [EXTRA_PG_SETTINGS]: a config for the sim and the scratch db.
write_conf() {
	cat >"$1" <<CONF
api = {
  base_url = "$SIM_API";
  key = "$KEY";
  concurrency = ${CONCURRENCY:-4};
  rate_limit = 0;
  timeout_ms = ${TIMEOUT_MS:-5000};
  max_retries = ${MAX_RETRIES:-6};
  ${2:-}
};
postgres = {
  conninfo = "dbname=$PGDATABASE";
  schema = "${SCHEMA:-bloom}";
  batch_size = ${BATCH_SIZE:-500};
  ${3:-}
};
log = { level = "${LOG_LEVEL:-info}"; };
CONF
	chmod 600 "$1"
}

# The mirror tables mirror_diff compares (all eleven).
MIRROR_ALL_TABLES="users meetings meeting_attendees todos measurables meeting_measurables scores
  goals goal_meetings issues headlines"

# mirror_diff SCHEMA EXPECT_FILE: (the file read by the server: the
# tests connect as superuser) prints rows that differ between the mirror
# (rows not deleted) and bloomsim's expected mirror; empty output = equal.
# MIRROR_TABLES (default: all eleven) limits the comparison to some tables.
mirror_diff() {
	schema=$1; expect=$2
	for t in ${MIRROR_TABLES:-$MIRROR_ALL_TABLES}; do
		psql -XAtq -v ON_ERROR_STOP=1 -v exp="$(realpath "$expect")" <<SQL
WITH e AS (
  SELECT to_jsonb(x) - ARRAY['raw','first_seen_at','updated_at','deleted_at'] AS r
  FROM jsonb_populate_recordset(NULL::$schema.$t, pg_read_file(:'exp')::jsonb -> '$t') x),
m AS (
  SELECT to_jsonb(x) - ARRAY['raw','first_seen_at','updated_at','deleted_at'] AS r
  FROM $schema.$t x WHERE deleted_at IS NULL),
missing AS (SELECT r FROM e EXCEPT ALL SELECT r FROM m),
extra AS (SELECT r FROM m EXCEPT ALL SELECT r FROM e)
SELECT '$t missing: ' || left(r::text, 300) FROM (SELECT r FROM missing LIMIT 3) a
UNION ALL
SELECT '$t extra:   ' || left(r::text, 300) FROM (SELECT r FROM extra LIMIT 3) b
UNION ALL
SELECT '$t counts: expected ' || (SELECT count(*) FROM e) || ', mirror ' || (SELECT count(*) FROM m)
WHERE (SELECT count(*) FROM e) <> (SELECT count(*) FROM m);
SQL
		[ $? -eq 0 ] || echo "$t: the comparison query failed"
	done
}

# mirror_equals SCHEMA EXPECT_FILE: 0 when equal; prints differences otherwise.
mirror_equals() {
	d=$(mirror_diff "$1" "$2")
	if [ -n "$d" ]; then echo "$d" | head -n 30 | sed 's/^/# /' >&2; return 1; fi
	return 0
}

# Total inserts/updates/deletes PostgreSQL counted on the mirror tables.
mirror_writes() {
	q "SELECT pg_stat_clear_snapshot()" >/dev/null
	q "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables
	   WHERE schemaname = '${1:-bloom}' AND relname IN ('users','meetings','meeting_attendees','todos',
	   'measurables','meeting_measurables','scores')"
}

# removed_keys OLD_EXPECT NEW_EXPECT: rows (by primary key) that the expected
# mirror OLD has and NEW lacks, over all tables.
removed_keys() {
	python3 - "$1" "$2" <<'PY'
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
links = ("goal_id", "meeting_id", "user_id", "measurable_id")
key = lambda r: (r["id"],) if "id" in r else tuple(r[k] for k in links if k in r)
print(sum(len({key(r) for r in a[t]} - {key(r) for r in b.get(t, [])}) for t in a))
PY
}

# deleted_rows [SCHEMA]: rows marked deleted over all mirror tables.
deleted_rows() {
	sql="SELECT 0"
	for t in $MIRROR_ALL_TABLES; do
		sql="$sql + (SELECT count(*) FROM ${1:-bloom}.$t WHERE deleted_at IS NOT NULL)"
	done
	q "$sql"
}

# json_get FILE PYEXPR: evaluates a python expression on the JSON document `d`.
json_get() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }

# A line of a Prometheus text-format file (the metrics file): a sample, or
# a HELP or TYPE comment.
PROM_SAMPLE='^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\[\\"n])*"(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\[\\"n])*")*\})? [-+]?([0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?|NaN|Inf)$'
PROM_COMMENT='^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$'

# metric FILE LINE_PREFIX: the value of the first sample starting with the
# prefix. A missing FILE gives no value, which no expect_eq or check of a
# value accepts, and awk says which file on stderr (kept in the test's output).
metric() { awk -v k="$2 " 'index($0, k) == 1 { print $NF; exit }' "$1"; }
