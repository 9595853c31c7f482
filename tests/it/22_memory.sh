#!/bin/bash
# Bounded memory: peak RSS of a full sync of an org ten times bloomsim's
# default one stays within 20% of the default org's (the plain build: ASan
# would measure itself). Memory, not time: a behaviour, so a test.
. "$(dirname "$0")/lib.sh"

bin=${BLOOMSYNC_PLAIN:-build/bloomsync}
if [ ! -x /usr/bin/time ] || [ ! -x "$bin" ]; then
	ok "peak memory # SKIP /usr/bin/time or the plain build is missing"
	finish
fi

peak_kb() { # users meetings db
	new_db "$3" || return 1
	start_sim --users "$1" --meetings "$2" || return 1
	CONCURRENCY=8 write_conf "$TEST_TMP/$3.conf"
	/usr/bin/time -f '%M' -o "$TEST_TMP/$3.rss" "$bin" -c "$TEST_TMP/$3.conf" sync 2>"$TEST_TMP/$3.err" || return 1
	stop_sim "$SIM_PID"
	tail -n 1 "$TEST_TMP/$3.rss"
}

small=$(peak_kb 40 8 mem22a)
check "a sync of the default org succeeds (peak ${small} KB)" test -n "$small"
large=$(peak_kb 400 80 mem22b)
check "a sync of an org 10x larger succeeds (peak ${large} KB)" test -n "$large"
if [ -n "$small" ] && [ -n "$large" ]; then
	check "peak RSS of the 10x org ($large KB) is within 20% of the default org's ($small KB)" \
		test $((large * 100)) -le $((small * 120))
	check "peak RSS stays under 32 MiB ($large KB)" test "$large" -le 32768
fi
finish
