#!/bin/sh
# bench/rss/run.sh -- RSS over time of the same burst program (bench/rss/burst.c)
# under gomalloc, jemalloc, mimalloc, tcmalloc and glibc.
#
#   bench/rss/run.sh [path/to/libgomalloc.so] [--scale F]
#
# libgomalloc.so: the argument, else $GOMALLOC_SO, else .libs/libgomalloc.so
# of the current directory (a build dir), else $GM_BUILDDIR/.libs.
# Writes bench/results/rss-<date>.tsv (allocator, t_s, rss_mib, phase; one
# "# event" line per burst/free per allocator) and bench/results/rss-<date>.svg
# (gnuplot), and prints a summary table: peak RSS of burst 1 (~1 GiB) and RSS
# 1 s, 3 s and 8 s after it was freed, the same for burst 2 (256 MiB), the
# time to allocate burst 1.  Missing allocators are skipped (Debian:
# apt-get install libjemalloc2 libmimalloc2.0 libgoogle-perftools4 gnuplot-nox).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)

gm=""
scale=1
while [ $# -gt 0 ]; do
	case $1 in
	--scale) scale=$2; shift 2 ;;
	*) gm=$1; shift ;;
	esac
done
if [ -z "$gm" ]; then
	for c in "${GOMALLOC_SO:-}" "$(pwd)/.libs/libgomalloc.so" \
	         "${GM_BUILDDIR:-/nonexistent}/.libs/libgomalloc.so"; do
		if [ -n "$c" ] && [ -f "$c" ]; then gm=$c; break; fi
	done
fi
if [ -z "$gm" ] || [ ! -f "$gm" ]; then
	echo "run.sh: libgomalloc.so not found (give its path as the argument)" >&2
	exit 2
fi
gm=$(cd "$(dirname "$gm")" && pwd)/$(basename "$gm")

multiarch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
libdir=/usr/lib/$multiarch
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
${CC:-cc} -O2 -g -pthread -o "$work/burst" "$here/burst.c"

stamp=$(date -u +%Y-%m-%d)
mkdir -p "$top/bench/results"
tsv=$top/bench/results/rss-$stamp.tsv
svg=$top/bench/results/rss-$stamp.svg

printf 'allocator\tt_s\trss_mib\tphase\n' > "$tsv"
echo "# burst program: bench/rss/burst.c (scale $scale), $(nproc) cores, $(uname -r), $(date -u '+%Y-%m-%d %H:%M UTC')" >> "$tsv"
names=""
summary=$work/summary
: > "$summary"
for spec in "gomalloc:$gm" "jemalloc:$libdir/libjemalloc.so.2" \
            "mimalloc:$libdir/libmimalloc.so.2" \
            "tcmalloc:$libdir/libtcmalloc_minimal.so.4" "glibc:"; do
	name=${spec%%:*}
	lib=${spec#*:}
	if [ -n "$lib" ] && [ ! -f "$lib" ]; then
		echo "skip $name: $lib not installed" >&2
		continue
	fi
	echo "running $name ..." >&2
	if [ -n "$lib" ]; then
		env LD_PRELOAD="$lib" "$work/burst" --scale "$scale" > "$work/$name.out"
	else
		"$work/burst" --scale "$scale" > "$work/$name.out"
	fi
	grep -v '^#' "$work/$name.out" | sed "s/^/$name	/" >> "$tsv"
	grep '^# event' "$work/$name.out" | sed "s/^# event /# event $name /" >> "$tsv"
	printf '%s ' "$name" >> "$summary"
	grep '^# summary' "$work/$name.out" | sed 's/^# summary //' >> "$summary"
	names="$names $name"
done
sed "s/^/# summary /" "$summary" >> "$tsv"

if command -v gnuplot > /dev/null; then
	f1=$(awk '$1=="#" && $2=="event" && $3=="gomalloc" && $4=="free1" {print $5}' "$tsv")
	f2=$(awk '$1=="#" && $2=="event" && $3=="gomalloc" && $4=="free2" {print $5}' "$tsv")
	gnuplot -e "datafile='$tsv'; outfile='$svg'; allocs='$names'; free1='${f1:-0}'; free2='${f2:-0}'" \
		"$here/rss.gp"
	echo "wrote $tsv and $svg" >&2
else
	echo "wrote $tsv (gnuplot not installed: no chart)" >&2
fi

# the summary table
awk '
function v(k,   i, kv) { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) return kv[2] } return "-" }
BEGIN {
	printf "%-10s %8s %8s %8s %8s %8s | %8s %8s %8s %8s | %8s\n", "allocator", "base", \
	       "peak1", "+1s", "+3s", "+8s", "peak2", "+1s", "+3s", "+8s", "alloc1 s"
}
{
	printf "%-10s %8s %8s %8s %8s %8s | %8s %8s %8s %8s | %8s\n", $1, v("base"), v("peak1"), \
	       v("f1_1s"), v("f1_3s"), v("f1_8s"), v("peak2"), v("f2_1s"), v("f2_3s"), \
	       v("f2_8s"), v("alloc1_s")
}
END { print "(RSS in MiB; burst 1 ~1 GiB, burst 2 ~256 MiB, live set 32 MiB throughout; +Ns = N s after the free)" }
' "$summary"
