#!/usr/bin/env bash
# tests/preload/run.sh -- real programs under LD_PRELOAD=libgomalloc.so must
# behave exactly as under glibc's malloc.
#
# Each case runs one workload twice in the same fresh directory, first on
# glibc, then with LD_PRELOAD=.libs/libgomalloc.so, and compares stdout, stderr
# and the exit status byte for byte.  Each preloaded run also proves that
# malloc really was gomalloc's:
#   - tests/preload/whichmalloc, run with the same environment, must name
#     libgomalloc.so as the object defining malloc (dlsym + dladdr);
#   - the dynamic linker's own record of the run (LD_DEBUG=bindings, written
#     to files, so the program's output is untouched) must show the
#     processes binding `malloc' to libgomalloc.so and never to libc.
# One line per program: PASS: / FAIL: (why) / SKIP: (not installed).
#
# Run by `make check` (GM_BUILDDIR: top build dir; srcdir: top source dir),
# or by hand from the build dir: srcdir=/path/to/src bash .../run.sh [case...]
set -u

builddir=$(cd "${GM_BUILDDIR:-.}" && pwd)
srcdir=$(cd "${srcdir:-.}" && pwd)
lib=$builddir/.libs/libgomalloc.so
which=$builddir/tests/preload/whichmalloc
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=(python3 pythreads perl git gcc gxx sort sqlite3 bash make xz jq node java rlimit)

unset LD_PRELOAD GOMALLOC_CONF LD_DEBUG LD_DEBUG_OUTPUT MALLOC_CONF
export LC_ALL=C TZ=UTC
failed=0

T=$(mktemp -d "${TMPDIR:-/tmp}/gm-preload.XXXXXX") || exit 1
# GM_PRELOAD_KEEP=1 keeps the outputs (<case>.{glibc,gm}.{out,err}) for a look.
if [ -n "${GM_PRELOAD_KEEP:-}" ]; then
	echo "# outputs kept in $T"
else
	trap 'rm -rf "$T"' EXIT
fi
mkdir -p "$T/data" "$T/ld"

for f in "$lib" "$which"; do
	if [ ! -x "$f" ] && [ ! -f "$f" ]; then
		echo "FAIL: preload harness (missing $f)"
		exit 1
	fi
done
libpath=$(readlink -f "$lib")
# Without the preload whichmalloc must name the C library, or it proves nothing.
plain=$("$which" 2>&1)
case $plain in
*libc.so*) ;;
*)
	echo "FAIL: preload harness (whichmalloc without preload says '$plain')"
	exit 1
	;;
esac

# ---- the workloads: each runs in the current (fresh) directory ----------

PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3 || true)

wl_python3() {
	PYTHONMALLOC=malloc PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1 \
		"$PY" "$srcdir/tests/preload/workload.py"
}

# A process that ends when its last thread ends by pthread_exit: CPython's
# test_threading test_3_join_in_forked_from_thread.  A thread forks; in the
# child that thread is the main one, starts a thread and ends, and the
# child ends with its last thread (glibc: exit(0)).  Before 2026-11-28 the
# child never ended under gomalloc (its scavenger thread was the last
# thread; docs/design.md, "The scavenger thread must not outlive the
# program's threads"): the timeout turns such a hang into a failure.
wl_pythreads() {
	cat >t.py <<'PYEOF'
import os, sys, threading
main_thread = threading.current_thread()
def joining(mainthread):
    mainthread.join()
    print("end of thread", len([str(i) * 3 for i in range(20000)]))
    sys.stdout.flush()
def worker():
    pid = os.fork()
    if pid != 0:
        _, status = os.waitpid(pid, 0)
        print("child exit status", os.waitstatus_to_exitcode(status))
        sys.stdout.flush()
        return
    t = threading.Thread(target=joining, args=(main_thread,))
    print("end of main")
    t.start()
    t.join()
w = threading.Thread(target=worker)
w.start()
PYEOF
	PYTHONMALLOC=malloc PYTHONDONTWRITEBYTECODE=1 timeout -s KILL 60 "$PY" t.py
}

wl_perl() {
	perl -e '
		my (%h, %cnt, @l);
		for my $i (1 .. 300000) {
			my $k = "k" . ($i * 7919 % 1000003);
			$h{$k} = [$i, "v" x ($i % 61), { n => $i % 17 }];
			$cnt{$i % 1013}++;
		}
		delete $h{"k" . ($_ * 7919 % 1000003)} for grep { $_ % 3 == 0 } 1 .. 300000;
		push @l, join(",", $_, scalar @{ $h{$_} }) for (sort keys %h)[0 .. 999];
		my $s = 0; $s += $_->[0] + length($_->[1]) for values %h;
		my $text = join(" ", map { lc(sprintf("%x", $_ * 2654435761 % 4294967296)) } 1 .. 100000);
		my %w; $w{$_}++ for split / /, $text;
		printf "keys %d sum %d words %d cnt %d\n", scalar(keys %h), $s, scalar(keys %w), scalar(keys %cnt);
		print "$_\n" for @l[0 .. 9], @l[-10 .. -1];
		print join(",", map { "$_=$w{$_}" } (sort keys %w)[0 .. 19]), "\n";
	'
}

wl_git() {
	export HOME=$PWD/home GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
	export GIT_AUTHOR_NAME="Gomalloc Test" GIT_AUTHOR_EMAIL=test@example.org
	export GIT_COMMITTER_NAME="Gomalloc Test" GIT_COMMITTER_EMAIL=test@example.org
	mkdir -p home repo && cd repo || return 1
	git init -q -b main . || return 1
	local i j
	for i in $(seq 1 50); do
		mkdir -p "src/d$((i % 7))"
		for j in $(seq 0 $((i % 4))); do
			awk -v i="$i" -v j="$j" 'BEGIN {
				for (n = 0; n < 40 + (i * j) % 60; n++)
					printf "line %d of file %d, commit %d: %d\n", n, j, i, (n * i + j) % 97
			}' > "src/d$((i % 7))/f$(((i + j) % 11)).txt"
		done
		[ $((i % 9)) -eq 0 ] && git rm -q -r --ignore-unmatch "src/d$((i % 5))" >/dev/null
		git add -A
		GIT_AUTHOR_DATE="@$((1700000000 + i * 3600)) +0000" \
			GIT_COMMITTER_DATE="@$((1700000000 + i * 3600)) +0000" \
			git commit -q -m "commit $i" -m "Generated change number $i." || return 1
	done
	git log --stat
	git diff HEAD~10
	git gc -q --aggressive
	git log --oneline --graph --numstat
	git blame -s src/d1/f3.txt 2>&1 | head -50
	git rev-list --objects --all | wc -l
	git fsck --no-progress 2>&1
}

wl_gcc() {
	# A generated C file: many functions, switches, loops, a lookup table.
	awk 'BEGIN {
		print "#include <stdio.h>"
		print "static const unsigned tab[] = {"
		for (i = 0; i < 4000; i++) printf "%u,%s", (i * 2654435761) % 4294967296, (i % 8 == 7) ? "\n" : ""
		print "};"
		for (f = 0; f < 400; f++) {
			printf "struct s%d { int a[%d]; double d; const char *n; };\n", f, 1 + f % 9
			printf "static unsigned f%d(unsigned x) {\n  struct s%d v = { {0}, %d.5, \"f%d\" };\n", f, f, f, f
			printf "  for (int i = 0; i < %d; i++) { v.a[i %% %d] += x * %d + i; x ^= x << %d; x += tab[(x + i) %% 4000]; }\n", 10 + f % 13, 1 + f % 9, f + 3, 1 + f % 7
			printf "  switch (x %% 7) {\n"
			for (c = 0; c < 7; c++) printf "  case %d: x = x * %d + %d; break;\n", c, c + f, f * c
			printf "  }\n  return x + v.a[0] + (unsigned)v.d + v.n[1];\n}\n"
		}
		print "int main(void) {\n  unsigned x = 1;"
		for (f = 0; f < 400; f++) printf "  x = f%d(x);\n", f
		print "  printf(\"%u\\n\", x);\n  return 0;\n}"
	}' > gen.c
	gcc -O2 -Wall -c gen.c -o gen.o || return 1
	gcc gen.o -o gen || return 1
	cksum < gen.o
	./gen
	objdump -d --no-show-raw-insn gen.o | md5sum
}

wl_sort() {
	# 1M lines from a fixed LCG; sorted three ways (sort runs threads).
	awk 'BEGIN { x = 12345; for (i = 0; i < 1000000; i++) {
		x = (x * 69069 + 1) % 2147483648
		printf "%08x %d %s\n", x, x % 100000, substr("abcdefghijklmnopqrstuvwxyz", 1 + x % 26, 1 + x % 13) } }' > in.txt
	sort --parallel=2 -S 64M in.txt > s1.txt || return 1
	sort --parallel=2 -k2,2n -k3,3r in.txt > s2.txt || return 1
	sort -u -k3,3 in.txt > s3.txt || return 1
	cksum s1.txt s2.txt s3.txt
	head -3 s1.txt; tail -3 s2.txt; wc -l < s3.txt
}

wl_sqlite3() {
	{
		echo "CREATE TABLE t(id INTEGER PRIMARY KEY, grp INTEGER, name TEXT, val REAL, blob BLOB);"
		echo "BEGIN;"
		awk 'BEGIN { for (i = 1; i <= 5000; i++)
			printf "INSERT INTO t(grp, name, val, blob) VALUES(%d, '\''name-%d-%s'\'', %d.25, zeroblob(%d));\n",
				i % 37, i, substr("xxxxxxxxxxxxxxxxxxxx", 1, i % 20), (i * 7919) % 10007, (i * 13) % 3000 }'
		echo "COMMIT;"
		echo "CREATE INDEX t_grp ON t(grp, val);"
		echo "CREATE TABLE u AS SELECT grp, count(*) AS n, sum(val) AS s FROM t GROUP BY grp;"
		echo "SELECT grp, n, s FROM u ORDER BY s DESC LIMIT 10;"
		echo "SELECT t.grp, count(*), max(length(t.name)), sum(length(t.blob)) FROM t JOIN u ON t.grp = u.grp WHERE t.val > u.s / u.n GROUP BY t.grp ORDER BY t.grp;"
		echo "SELECT name FROM t WHERE name LIKE '%-42%' ORDER BY val, id;"
		echo "UPDATE t SET name = name || '-' || id WHERE id % 3 = 0;"
		echo "DELETE FROM t WHERE id % 5 = 0;"
		echo "VACUUM;"
		echo "SELECT count(*), sum(length(name)), total(val) FROM t;"
		echo "PRAGMA integrity_check;"
	} > script.sql
	sqlite3 db.sqlite < script.sql
}

wl_bash() {
	cat > script.bash <<'EOS'
declare -a arr
declare -A map
for ((i = 0; i < 20000; i++)); do
	arr+=("item-$i-$((i * 7919 % 10007))")
	map["k$((i % 3001))"]+="${i}:"
done
s=""
for ((i = 0; i < 5000; i++)); do
	s+="${arr[i]//item/it}"
	[ $((i % 500)) -eq 0 ] && s=${s:100}
done
unset 'arr[5]' 'arr[77]'
arr=("${arr[@]}")
joined=$(IFS=,; echo "${arr[*]:0:2000}")
IFS=, read -r -a back <<< "$joined"
n=0
for k in "${!map[@]}"; do n=$((n + ${#map[$k]})); done
echo "arr ${#arr[@]} back ${#back[@]} s ${#s} map ${#map[@]} n $n"
printf '%s\n' "${arr[@]:100:5}" "${back[@]: -3}"
printf '%s\n' "${!map[@]}" | sort | head -5
echo "${s:0:80}" | tr 'a-z' 'A-Z'
EOS
	bash script.bash
}

wl_make() {
	awk 'BEGIN {
		print "N := $(shell seq 1 300)"
		print "OBJS := $(foreach n,$(N),out/o$(n).txt)"
		print "WORDS := $(foreach n,$(N),w$(n)-$(words $(wordlist 1,$(n),$(N))))"
		print "all: out/total.txt"
		print "\t@cat out/total.txt"
		print "\t@echo $(words $(WORDS)) $(lastword $(WORDS)) $(subst w,W,$(firstword $(WORDS)))"
		print "out/total.txt: $(OBJS)"
		print "\t@cat $^ | sort | uniq -c | sort -rn | head -20 > $@"
		print "\t@wc -l $^ | tail -1 >> $@"
		print "out/o%.txt: src/s%.txt | out"
		print "\t@sed -e s/x/y/g $< > $@"
		print "\t@echo $(patsubst src/%,%,$<) $(notdir $@) >> $@"
		print "out:"
		print "\t@mkdir -p out"
		print ".PHONY: all"
	}' > Makefile
	mkdir -p src
	local i
	for i in $(seq 1 300); do
		printf 'x%d\nshared line\nx%d\n' $((i % 17)) $((i % 5)) > "src/s$i.txt"
	done
	make -s -j1 all
}

wl_gxx() {
	# C++: the compiler's own allocations (g++'s cc1plus is a C++ program),
	# then the built program's operator new/delete (plain, sized, aligned,
	# arrays), containers and std::thread, all under the preload.
	cat > t.cc <<'CCEOF'
#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>
struct alignas(64) Line { long v[8]; };
struct Node { std::string name; std::vector<int> vals; std::shared_ptr<Node> next; };
int main() {
	std::map<std::string, std::vector<long>> m;
	for (long i = 0; i < 200000; i++)
		m["key" + std::to_string(i * 7919 % 30011)].push_back(i);
	std::unordered_map<long, std::string> u;
	for (long i = 0; i < 100000; i++) u[i * 31] = std::string(i % 300, 'a' + i % 26);
	for (long i = 0; i < 100000; i += 3) u.erase(i * 31);
	std::vector<std::unique_ptr<Line>> lines;
	for (int i = 0; i < 5000; i++) { lines.emplace_back(new Line{}); lines.back()->v[i % 8] = i; }
	long bad = 0;
	for (auto &l : lines) bad += (reinterpret_cast<std::uintptr_t>(l.get()) % 64) != 0;
	std::shared_ptr<Node> head;
	for (int i = 0; i < 20000; i++) {
		auto n = std::make_shared<Node>();
		n->name = "node" + std::to_string(i);
		n->vals.assign(i % 50, i);
		n->next = i % 100 ? head : nullptr;
		head = n;
	}
	std::mutex mu;
	std::vector<std::string> out;
	std::vector<std::thread> ts;
	for (int t = 0; t < 4; t++)
		ts.emplace_back([t, &mu, &out] {
			std::vector<std::string> mine;
			long s = 0;
			for (int i = 0; i < 50000; i++) {
				std::string x(1 + (i * 13 + t) % 700, 'x');
				mine.push_back(x.substr(0, 8));
				s += x.size();
				if (mine.size() > 64) mine.erase(mine.begin(), mine.begin() + 32);
				int *a = new int[1 + i % 100];
				a[0] = i;
				s += a[0] % 7;
				delete[] a;
			}
			std::lock_guard<std::mutex> g(mu);
			out.push_back("thread " + std::to_string(t) + " " + std::to_string(s));
		});
	for (auto &t : ts) t.join();
	std::sort(out.begin(), out.end());
	long total = 0;
	for (auto &kv : m) total += kv.second.size() + kv.first.size();
	size_t ulen = 0;
	for (auto &kv : u) ulen += kv.second.size();
	printf("map %zu total %ld umap %zu len %zu misaligned %ld head %s\n", m.size(), total,
	       u.size(), ulen, bad, head->name.c_str());
	for (auto &s : out) printf("%s\n", s.c_str());
	return 0;
}
CCEOF
	g++ -O1 -std=c++17 -pthread -Wall t.cc -o t || return 1
	cksum < t
	./t
}

wl_node() {
	# node: V8's and libuv's malloc, worker threads, zlib, big strings.
	cat > t.js <<'JSEOF'
const { Worker, isMainThread, parentPort, workerData } = require('worker_threads');
const zlib = require('zlib');
if (isMainThread) {
  const res = [];
  let done = 0;
  for (let i = 0; i < 3; i++) {
    const w = new Worker(__filename, { workerData: i });
    w.on('message', (m) => { res[i] = m; if (++done === 3) finish(); });
  }
  function finish() {
    const obj = {};
    for (let i = 0; i < 50000; i++) obj['k' + (i * 7919 % 10007)] = [i, 'v'.repeat(i % 40)];
    const js = JSON.stringify(obj);
    console.log(res.join(' '), Object.keys(obj).length, js.length,
                zlib.gunzipSync(zlib.gzipSync(js)).toString() === js);
  }
} else {
  let acc = 0;
  const keep = [];
  for (let k = 0; k < 1500; k++) {
    const b = Buffer.alloc(1000 + (k * 37 % 40000), k & 255);
    const z = zlib.deflateSync(b);
    acc = (acc + z.length) % 1000003;
    keep.push(b);
    if (keep.length > 50) keep.shift();
  }
  parentPort.postMessage(workerData + ':' + acc);
}
JSEOF
	node t.js
}

wl_java() {
	# The JVM: its own threads (GC, compiler), malloc from C++ and from the
	# class library, a thread pool of Java code.
	cat > T.java <<'JEOF'
import java.util.*;
import java.util.concurrent.*;
public class T {
	public static void main(String[] a) throws Exception {
		ExecutorService ex = Executors.newFixedThreadPool(3);
		List<Future<Long>> fs = new ArrayList<>();
		for (int t = 0; t < 6; t++) {
			final int s = t;
			fs.add(ex.submit(() -> {
				long h = 0;
				Map<String, Integer> m = new HashMap<>();
				for (int i = 0; i < 100000; i++) m.put("k" + (i * 31 + s) % 20000, i);
				for (Map.Entry<String, Integer> e : m.entrySet()) h += e.getKey().hashCode() ^ e.getValue();
				return h;
			}));
		}
		long r = 0;
		for (Future<Long> f : fs) r += f.get();
		ex.shutdown();
		StringBuilder sb = new StringBuilder();
		for (int i = 0; i < 20000; i++) sb.append(Integer.toHexString(i * 2654435761L > 0 ? i : -i));
		System.out.println(r + " " + sb.length());
	}
}
JEOF
	javac T.java || return 1
	java -Xmx256m -cp . T
}

wl_xz() {
	# xz with two threads (liblzma's block threads) on 4 MB of text, and back.
	awk 'BEGIN { x = 7; for (i = 0; i < 120000; i++) {
		x = (x * 1103515245 + 12345) % 2147483648
		printf "%d %s %x\n", i, substr("the quick brown fox jumps over the lazy dog", 1 + x % 20, 5 + x % 17), x } }' > in.txt
	xz -T2 --block-size=512KiB -6 -k -c in.txt > in.txt.xz || return 1
	xz -T2 -d -c in.txt.xz | cksum
	xz -l in.txt.xz | tail -1
	cksum < in.txt.xz
}

wl_jq() {
	awk 'BEGIN { printf "["; for (i = 0; i < 40000; i++) {
		printf "%s{\"id\":%d,\"grp\":\"g%d\",\"name\":\"n%d-%s\",\"v\":[%d,%d,%d]}", (i ? "," : ""),
			i, i % 97, i, substr("abcdefghij", 1 + i % 10), i % 13, i * 7 % 101, i % 1000 } print "]" }' > in.json
	jq -c 'group_by(.grp) | map({g: .[0].grp, n: length, s: (map(.v | add) | add)}) | sort_by(-.s) | .[0:5]' in.json || return 1
	jq -c '[.[] | select(.name | test("-[ace]")) | .id] | length' in.json
	jq -S 'map(select(.id % 4000 == 0) | .name |= ascii_upcase)' in.json
}

wl_rlimit() {
	# Under `ulimit -v` (RLIMIT_AS, 96 MiB): the address space gomalloc
	# takes must leave room for the program (on 2026-11-28 it took 700 MB
	# at start until 04:00, then 110 MB until 13:30: every allocation
	# failed under a limit below that; now about 30 MB).  jemalloc and
	# glibc run these under 64 MiB, gomalloc's python3 needs ~75 MB.
	ulimit -v 98304 || return 1
	awk 'BEGIN { x = 3; for (i = 0; i < 200000; i++) { x = (x * 69069 + 1) % 2147483648; printf "%08x %d\n", x, i } }' > in.txt
	sort --parallel=2 -S 32M in.txt | cksum
	PYTHONMALLOC=malloc PYTHONHASHSEED=0 "$PY" -c '
d = {}
for i in range(300000):
    d["k%d" % (i * 7919 % 100003)] = [i] * (i % 20)
print(len(d), sum(len(v) for v in d.values()))'
	bash -c 'a=(); for ((i = 0; i < 20000; i++)); do a+=("x$i"); done; echo ${#a[@]} ${a[19999]}'
}

# ---- the harness ---------------------------------------------------------

# program a case needs (to skip it when not installed)
need() {
	case $1 in
	python3 | pythreads | rlimit) echo "$PY" ;;
	sort) echo sort ;;
	gcc) echo "gcc objdump" ;;
	gxx) echo "g++" ;;
	java) echo "java javac" ;;
	*) echo "$1" ;;
	esac
}

run_case() {
	local name=$1 fn=wl_$1 p rc_g rc_p why=""
	for p in $(need "$name"); do
		if [ -z "$p" ] || ! command -v "$p" >/dev/null 2>&1; then
			echo "SKIP: preload $name (${p:-$name} not installed)"
			return 0
		fi
	done

	local w=$T/w out=$T/$name
	rm -rf "$w" && mkdir -p "$w"
	(cd "$w" && "$fn") >"$out.glibc.out" 2>"$out.glibc.err" </dev/null
	rc_g=$?

	rm -rf "$w" && mkdir -p "$w" "$T/ld/$name"
	(
		cd "$w" || exit 99
		export LD_PRELOAD=$lib LD_DEBUG=bindings LD_DEBUG_OUTPUT=$T/ld/$name/ld
		"$fn"
	) >"$out.gm.out" 2>"$out.gm.err" </dev/null
	rc_p=$?

	# whichmalloc with the same preload, from the same directory.
	local wm
	wm=$(cd "$w" && LD_PRELOAD=$lib "$which" 2>&1)
	rm -rf "$w"

	local nbind nlibc
	nbind=$(cat "$T/ld/$name"/ld.* 2>/dev/null |
		grep -cF "to $lib [0]: normal symbol \`malloc'")
	nlibc=$(cat "$T/ld/$name"/ld.* 2>/dev/null |
		grep -E "to [^ ]*libc\.so[^ ]* \[0\]: normal symbol \`(malloc|free|calloc|realloc)'" | head -3)

	if [ $rc_g -ne 0 ]; then
		why="the glibc run itself failed, exit $rc_g: $(head -c 300 "$out.glibc.err")"
	elif [ $rc_p -ne 0 ]; then
		why="exit $rc_p under gomalloc (glibc: 0): $(head -c 300 "$out.gm.err")"
	elif ! cmp -s "$out.glibc.out" "$out.gm.out"; then
		why="stdout differs: $(diff "$out.glibc.out" "$out.gm.out" | head -5 | tr '\n' '|' | head -c 300)"
	elif ! cmp -s "$out.glibc.err" "$out.gm.err"; then
		why="stderr differs: $(diff "$out.glibc.err" "$out.gm.err" | head -5 | tr '\n' '|' | head -c 300)"
	elif [ ! -s "$out.glibc.out" ]; then
		why="the workload printed nothing"
	elif [ "$(readlink -f "$wm" 2>/dev/null)" != "$libpath" ]; then
		why="whichmalloc under the preload says '$wm'"
	elif [ "$nbind" -eq 0 ]; then
		why="LD_DEBUG shows no binding of malloc to $lib"
	elif [ -n "$nlibc" ]; then
		why="a process bound the glibc allocator: $(echo "$nlibc" | head -1)"
	fi

	if [ -z "$why" ]; then
		echo "PASS: preload $name ($(wc -c < "$out.gm.out") bytes identical; malloc bound to libgomalloc $nbind times)"
	else
		echo "FAIL: preload $name ($why)"
		failed=1
	fi
	rm -rf "$T/ld/$name"
}

for c in "${cases[@]}"; do
	if ! declare -F "wl_$c" >/dev/null; then
		echo "FAIL: preload $c (no such case)"
		failed=1
		continue
	fi
	run_case "$c"
done
exit $failed
