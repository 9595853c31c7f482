#!/bin/sh
# A scratch PostgreSQL server for tests, the demo and the benchmark.
#
#   tests/pg.sh start DIR   initdb + start in DIR (unix socket in DIR only, no TCP);
#                           prints the environment to use, as shell assignments
#   tests/pg.sh stop DIR    stops it (fast), leaves DIR for the caller to remove
#   tests/pg.sh restart DIR / resume DIR   restarts it / starts it again after a stop
#   tests/pg.sh crash DIR   stops it as a crash would (immediate: WAL not yet
#                           written is lost), then starts it again
#
# As root, the server runs as the `postgres` user (initdb refuses root).
set -eu

bindir() {
	d=$(pg_config --bindir 2>/dev/null || true)
	if [ -n "$d" ] && [ -x "$d/initdb" ]; then echo "$d"; return; fi
	d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
	if [ -n "$d" ] && [ -x "$d/initdb" ]; then echo "$d"; return; fi
	echo "tests/pg.sh: no PostgreSQL server binaries (initdb) found; run: sh deploy/install-deps.sh" >&2
	exit 1
}

as_owner() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: tests/pg.sh start|stop DIR" >&2; exit 2; }
BIN=$(bindir)
port=5432

case "$cmd" in
start)
	mkdir -p "$dir"
	if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; fi
	as_owner "$BIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
		{ cat "$dir/initdb.log" >&2; exit 1; }
	# Test-only settings: durability off for speed; sockets in the private DIR.
	cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$dir'
port = $port
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 50
log_min_messages = warning
CONF
	as_owner "$BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
		{ cat "$dir/server.log" >&2; exit 1; }
	echo "export PGHOST='$dir' PGPORT=$port PGUSER=postgres PGDATABASE=postgres PG_BINDIR='$BIN' PG_DATADIR='$dir/data'"
	;;
stop)
	[ -d "$dir/data" ] || exit 0
	as_owner "$BIN/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
	;;
restart)
	as_owner "$BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -m fast -w -t 60 restart >/dev/null
	;;
crash)
	as_owner "$BIN/pg_ctl" -D "$dir/data" -m immediate -w -t 60 stop >/dev/null
	as_owner "$BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null
	;;
resume)
	as_owner "$BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null
	;;
*)
	echo "usage: tests/pg.sh start|stop|restart|crash|resume DIR" >&2
	exit 2
	;;
esac
