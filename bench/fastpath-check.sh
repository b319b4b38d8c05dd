#!/bin/sh
# bench/fastpath-check.sh -- the `make check` script test of the fast-path
# instruction budget: runs bench/fastpath on the library just built
# (.libs/libgomalloc.so under the build directory, the current directory of
# `make check`; or $GOMALLOC_LIB) against bench/fastpath.budget.
# Prints bench/fastpath's PASS:/FAIL: lines; exits 1 on a regression,
# 77 (automake SKIP) only when python3 or binutils are missing.
here=$(cd "$(dirname "$0")" && pwd)
lib=${GOMALLOC_LIB:-${GM_BUILDDIR:-.}/.libs/libgomalloc.so}
for tool in python3 objdump nm; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "SKIP: fastpath ($tool not found)"
		exit 77
	fi
done
if [ ! -f "$lib" ]; then
	echo "FAIL: fastpath (library $lib not found; run from the build directory)"
	exit 1
fi
exec python3 "$here/fastpath" --budget "$here/fastpath.budget" "$lib"
