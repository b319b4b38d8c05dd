#!/bin/sh
# tests/run-test.sh -- LOG_COMPILER of `make check`: runs one test.
#
#   tests/run-test.sh PROGRAM [ARGS...]
#
# - every test runs under `timeout 300` (a hung test fails; exit 124);
# - a program whose name ends in -preload runs with
#   LD_PRELOAD=<builddir>/.libs/libgomalloc.so (the same test source built
#   without gomalloc linked in);
# - a *.sh test runs with bash.
# GM_BUILDDIR (set by Makefile.am's AM_TESTS_ENVIRONMENT) is the absolute
# top build directory; default: the current directory, where automake runs
# the tests.
prog=$1
shift
: "${GM_BUILDDIR:=$(pwd)}"
export GM_BUILDDIR
limit=${GM_TEST_TIMEOUT:-300}

case $prog in
*.sh)
	exec timeout -k 10 "$limit" bash "$prog" "$@"
	;;
*-preload)
	lib=$GM_BUILDDIR/.libs/libgomalloc.so
	if [ ! -f "$lib" ]; then
		echo "FAIL: $prog (no $lib to preload)"
		exit 1
	fi
	# env after timeout: timeout itself is not preloaded.
	exec timeout -k 10 "$limit" env LD_PRELOAD="$lib" "$prog" "$@"
	;;
*)
	exec timeout -k 10 "$limit" "$prog" "$@"
	;;
esac
