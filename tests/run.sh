#!/bin/sh
# The test run of `make check`: unit tests (cmocka, ASan+UBSan build), then
# the integration tests in tests/it/ against a scratch PostgreSQL started here
# and bloomsim over real HTTP. Ends with the line "N passed, N failed".
#
#   sh tests/run.sh            everything
#   sh tests/run.sh it 20      only integration tests whose name starts with 20
set -u
cd "$(dirname "$0")/.."
SAN=${SAN_BUILD:-build/san}
only=${1:-all}
filter=${2:-}
passed=0
failed=0
failed_names=""

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

TMP=$(mktemp -d /tmp/bloomsync-test.XXXXXX)
chmod 755 "$TMP"
PGDIR="$TMP/pg"
cleanup() {
	sh tests/pg.sh stop "$PGDIR" 2>/dev/null
	[ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

count_unit() { # binary
	out=$("$1" 2>&1)
	rc=$?
	p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -n 1)
	f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -n 1)
	p=${p:-0}
	f=${f:-0}
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
	if [ "$f" -gt 0 ]; then
		printf '%s\n' "$out" | sed 's/^/    /'
		failed_names="$failed_names $(basename "$1")"
	fi
	echo "unit $(basename "$1"): $p passed, $f failed"
	passed=$((passed + p))
	failed=$((failed + f))
}

# One scratch server for the whole run: test_load (a unit test of the
# loader) needs it too.
eval "$(sh tests/pg.sh start "$PGDIR")" || { echo "cannot start PostgreSQL"; echo "0 passed, 1 failed"; exit 1; }
export PG_DIR="$PGDIR"

if [ "$only" = all ] || [ "$only" = unit ]; then
	echo "== unit tests ($SAN)"
	for t in "$SAN"/tests/test_*; do
		[ -x "$t" ] || continue
		count_unit "$t"
	done
fi

if [ "$only" = all ] || [ "$only" = it ]; then
	echo "== integration tests"
	export BLOOMSYNC=${BLOOMSYNC:-$SAN/bloomsync}
	export BLOOMSIM=${BLOOMSIM:-$SAN/bloomsim}
	export BLOOMSYNC_PLAIN=build/bloomsync
	export BLOOMSIM_PLAIN=build/bloomsim
	for t in tests/it/[0-9]*.sh; do
		name=$(basename "$t" .sh)
		case "$name" in "$filter"*) ;; *) continue ;; esac
		export TEST_TMP="$TMP/$name"
		mkdir -p "$TEST_TMP"
		chmod 755 "$TEST_TMP"
		echo "-- $name"
		timeout 900 bash "$t" >"$TMP/$name.out" 2>&1
		rc=$?
		sed 's/^/    /' "$TMP/$name.out"
		p=$(grep -c '^ok ' "$TMP/$name.out")
		f=$(grep -c '^not ok ' "$TMP/$name.out")
		if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
			echo "    $name exited with $rc"
			f=1
		fi
		[ "$f" -gt 0 ] && failed_names="$failed_names $name"
		passed=$((passed + p))
		failed=$((failed + f))
	done
fi

[ -n "$failed_names" ] && echo "failed:$failed_names"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
