#!/bin/sh
# shellcheck disable=SC2086 # package lists are split into words on purpose
# install-deps.sh — install the Debian packages bloomsync needs to build,
# test and run, with apt-get. Safe to run again: packages already installed
# are left as they are (or upgraded, without --if-missing).
#
# usage: sh deploy/install-deps.sh [--if-missing] [--bench | --no-tests]
#
#   --if-missing  install only the packages that are not installed yet;
#                 when nothing is missing, exit 0 at once and print nothing
#                 (what `make check` and `make demo` run; `make deps` runs it without)
#   --bench       also the benchmark tools (wrk, gnuplot, hyperfine)
#   --no-tests    only what `make`, `make install` and running bloomsync need,
#                 for a production host: no PostgreSQL server (its Debian
#                 package creates and starts a cluster), valgrind, cmocka or
#                 other test tools
#
# Run as root, or as a user with sudo. Without either, the script prints
# the command to run as root and exits 1.

set -eu
set -f # package lists are split into words on purpose: never glob them

# Build: compiler, make, pkg-config and the libraries' headers.
# Test: PostgreSQL server and client (the integration tests start their own
# server, as the postgres user through runuser from util-linux), valgrind,
# /usr/bin/time, ps/pkill (procps), curl, python3; systemd-analyze, groff and
# man for the checks of the unit files and the man page.
PACKAGES="gcc make pkg-config
	libcurl4-openssl-dev libjansson-dev libpq-dev libconfig-dev
	libcmocka-dev libmicrohttpd-dev
	postgresql postgresql-client util-linux
	curl valgrind time procps python3
	systemd groff-base man-db"
BENCH_PACKAGES="wrk gnuplot-nox hyperfine"
# --no-tests: build (`make` builds bloomsim too, hence libmicrohttpd-dev) and
# run; the -dev packages bring the shared libraries bloomsync links, and
# ca-certificates lets libcurl verify the API's certificate.
NO_TESTS_PACKAGES="gcc libc6-dev make pkg-config
	libcurl4-openssl-dev libjansson-dev libpq-dev libconfig-dev
	libmicrohttpd-dev ca-certificates"

usage() {
	sed -n '7,16s/^# \{0,1\}//p' "$0"
}

if_missing=no
bench=no
no_tests=no
for arg in "$@"; do
	case "$arg" in
	--if-missing) if_missing=yes ;;
	--bench) bench=yes ;;
	--no-tests) no_tests=yes ;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		echo "install-deps.sh: unknown option '$arg'" >&2
		usage >&2
		exit 2
		;;
	esac
done

if [ "$bench" = yes ] && [ "$no_tests" = yes ]; then
	echo "install-deps.sh: --bench needs the test packages; it does not go with --no-tests" >&2
	usage >&2
	exit 2
fi

wanted=$PACKAGES
if [ "$no_tests" = yes ]; then
	wanted=$NO_TESTS_PACKAGES
fi
if [ "$bench" = yes ]; then
	wanted="$wanted $BENCH_PACKAGES"
fi
# One line, one space between packages.
set -- $wanted
wanted="$*"

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
	echo "install-deps.sh: apt-get and dpkg-query not found; this script is for Debian" \
		"and its derivatives. Install these packages (or your system's equivalents):" >&2
	echo "  $wanted" >&2
	exit 1
fi

# Prints the wanted packages that are not installed, one line, space-separated.
# dpkg-query's second column is the status abbreviation: its second letter
# is 'i' when the package is installed ("ii", or "hi" when held).
missing_packages() {
	installed=" $(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' $wanted 2>/dev/null |
		awk 'substr($2, 2, 1) == "i" { printf "%s ", $1 }') " || true
	missing=
	for pkg in $wanted; do
		case "$installed" in
		*" $pkg "*) ;;
		*) missing="${missing:+$missing }$pkg" ;;
		esac
	done
	echo "$missing"
}

if [ "$if_missing" = yes ]; then
	to_install=$(missing_packages)
	if [ -z "$to_install" ]; then
		exit 0
	fi
	what="installing missing packages"
else
	to_install=$wanted
	what="installing or upgrading"
fi

if [ "$(id -u)" -eq 0 ]; then
	as_root=
elif command -v sudo >/dev/null 2>&1; then
	as_root=sudo
else
	echo "install-deps.sh: not root and sudo is not installed; run this as root:" >&2
	echo "  apt-get update && DEBIAN_FRONTEND=noninteractive" \
		"apt-get install -y --no-install-recommends $to_install" >&2
	exit 1
fi

echo "install-deps.sh: $what: $to_install"
# `env` carries DEBIAN_FRONTEND through sudo, which resets the environment.
$as_root env DEBIAN_FRONTEND=noninteractive apt-get update
$as_root env DEBIAN_FRONTEND=noninteractive \
	apt-get install -y --no-install-recommends $to_install

if [ "$if_missing" = yes ]; then
	still_missing=$(missing_packages)
	if [ -n "$still_missing" ]; then
		echo "install-deps.sh: still not installed after apt-get: $still_missing" >&2
		exit 1
	fi
fi
echo "install-deps.sh: done"
