#!/bin/bash
# tests/fuzz/run.sh -- build and run the libFuzzer harness (fuzz_api.c).
#
#   tests/fuzz/run.sh            (make check: 30 s; `make fuzz`: FUZZ_TIME=600)
#
# Builds tests/fuzz/fuzz_api in the build tree with clang -fsanitize=fuzzer:
# the lib/ sources are compiled in with -fsanitize=fuzzer-no-link, so the
# fuzzer gets coverage of the allocator's own branches, and the program's
# malloc (libFuzzer's included) is gomalloc.  Then runs it for FUZZ_TIME
# seconds on a corpus kept in tests/fuzz/corpus (so longer runs build on
# earlier ones; `make clean` removes it with obj/).  Prints "PASS: fuzz_api" or "FAIL: fuzz_api (why)", or
# "SKIP: fuzz_api (why)" (exit 77) when clang or libFuzzer is missing.
#
# Environment: GM_SRCDIR, GM_BUILDDIR (set by make; default: this script's
# tree and the current directory), FUZZ_CC/FUZZ_CXX (default clang/clang++),
# FUZZ_TIME (seconds, default 30), FUZZ_JOBS (parallel fuzzing jobs, 1).
set -u

here=$(cd "$(dirname "$0")" && pwd)
src=${GM_SRCDIR:-$(cd "$here/../.." && pwd)}
build=${GM_BUILDDIR:-$(pwd)}
out=$build/tests/fuzz
time_s=${FUZZ_TIME:-30}
name=fuzz_api

find_tool() {
	for t in "$@"; do
		[ -n "$t" ] && command -v "$t" >/dev/null 2>&1 && { command -v "$t"; return 0; }
	done
	return 1
}

cc=$(find_tool "${FUZZ_CC:-}" clang clang-16 clang-15 clang-14) || {
	echo "SKIP: $name (no clang)"
	exit 77
}
cxx=$(find_tool "${FUZZ_CXX:-}" clang++ clang++-16 clang++-15 clang++-14) || {
	echo "SKIP: $name (no clang++)"
	exit 77
}

mkdir -p "$out/obj" "$out/corpus" || { echo "FAIL: $name (cannot create $out)"; exit 1; }
log=$out/$name.log

# libFuzzer present?
probe=$out/obj/probe
printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
	'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' \
	> "$probe.c"
if ! "$cc" -fsanitize=fuzzer "$probe.c" -o "$probe" >/dev/null 2>&1; then
	echo "SKIP: $name ($cc has no libFuzzer)"
	exit 77
fi

# Build: lib/ with coverage, the harness, linked by clang++ (libFuzzer is C++).
# The harness needs -fno-builtin: clang folds "malloc(huge) == NULL" to false
# when the block is otherwise unused, and the checks would test nothing.
cflags="-std=gnu11 -O1 -g -fno-omit-frame-pointer -fvisibility=hidden \
	-ftls-model=initial-exec -fno-builtin-malloc -fno-builtin-free \
	-fno-builtin-calloc -fno-builtin-realloc -I$src/include -I$src/lib"
objs=()
for f in "$src"/lib/*.c; do
	o=$out/obj/$(basename "$f" .c).o
	if ! "$cc" $cflags -fsanitize=fuzzer-no-link -c "$f" -o "$o" 2>>"$log"; then
		echo "FAIL: $name (cannot compile $f, see $log)"
		exit 1
	fi
	objs+=("$o")
done
o=$out/obj/override_cxx.o
if ! "$cxx" -std=gnu++17 -O1 -g -fvisibility=hidden -fsanitize=fuzzer-no-link \
	-I"$src/include" -I"$src/lib" -c "$src/lib/override_cxx.cc" -o "$o" 2>>"$log"; then
	echo "FAIL: $name (cannot compile override_cxx.cc, see $log)"
	exit 1
fi
objs+=("$o")
o=$out/obj/$name.o
if ! "$cc" -std=gnu11 -O1 -g -fno-builtin -fsanitize=fuzzer -I"$src/include" -c "$here/$name.c" \
	-o "$o" 2>>"$log"; then
	echo "FAIL: $name (cannot compile $name.c, see $log)"
	exit 1
fi
objs+=("$o")
if ! "$cxx" -fsanitize=fuzzer "${objs[@]}" -o "$out/$name" -lpthread 2>>"$log"; then
	echo "FAIL: $name (cannot link, see $log)"
	exit 1
fi

# Run in $out (parallel jobs write fuzz-N.log to the current directory).
# -error_exitcode: libFuzzer's default 77 would read as SKIP to make.
jobs=${FUZZ_JOBS:-1}
par=()
[ "$jobs" -gt 1 ] 2>/dev/null && par=(-jobs="$jobs" -workers="$jobs")
(cd "$out" && "./$name" -max_total_time="$time_s" -timeout=30 -rss_limit_mb=4096 \
	-max_len=1024 -error_exitcode=1 -timeout_exitcode=1 "${par[@]}" \
	-artifact_prefix="$out/" -print_final_stats=1 corpus) >"$log" 2>&1
rc=$?
runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$')
if [ $rc -eq 0 ]; then
	echo "PASS: $name (${runs:-?} inputs in ${time_s} s, corpus $out/corpus)"
	exit 0
fi
echo "FAIL: $name (exit $rc; crash input and log in $out/, last lines:)"
tail -n 25 "$log" | sed 's/^/    /'
exit 1
