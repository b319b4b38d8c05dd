# bench/local.mk -- automake fragment included by Makefile.am
#
# The benchmark programs, `make bench`, `make bench-smoke` and the fast-path
# instruction budget test.  No benchmark program links gomalloc: bench/compare
# runs each of them under every allocator by LD_PRELOAD, glibc's included.
#
#   make bench-programs   build bench/workloads/* (and bench/micro/bench_micro
#                         when google-benchmark was found)
#   make bench            bench/compare --quick with the library just built;
#                         writes $(srcdir)/bench/results/<date>.md + SVG charts
#   make bench-smoke      bench/compare --smoke --repeats 2, then --report of
#                         that run merged with itself (< 2 min; what CI runs: it
#                         only proves the harness works, no timing is judged)
#   bench/fastpath-check.sh (in TESTS) fails when the malloc or free fast path
#                         of .libs/libgomalloc.so grows past bench/fastpath.budget

BENCH_WL_CFLAGS = -std=gnu11 -O2 -g -pthread -fno-builtin-malloc -fno-builtin-free
BENCH_WL_LIBS = -lpthread

BENCH_WORKLOADS = \
	bench/workloads/larson \
	bench/workloads/prodcons \
	bench/workloads/falseshare \
	bench/workloads/pareto \
	bench/workloads/churn \
	bench/workloads/large \
	bench/workloads/frag

EXTRA_PROGRAMS += $(BENCH_WORKLOADS)
CLEANFILES += $(BENCH_WORKLOADS)

bench_workloads_larson_SOURCES = bench/workloads/larson.c bench/workloads/wl_common.h
bench_workloads_larson_CFLAGS = $(BENCH_WL_CFLAGS)
bench_workloads_larson_LDADD = $(BENCH_WL_LIBS)
bench_workloads_prodcons_SOURCES = bench/workloads/prodcons.c bench/workloads/wl_common.h
bench_workloads_prodcons_CFLAGS = $(BENCH_WL_CFLAGS)
bench_workloads_prodcons_LDADD = $(BENCH_WL_LIBS)
bench_workloads_falseshare_SOURCES = bench/workloads/falseshare.c bench/workloads/wl_common.h
bench_workloads_falseshare_CFLAGS = $(BENCH_WL_CFLAGS)
bench_workloads_falseshare_LDADD = $(BENCH_WL_LIBS)
bench_workloads_pareto_SOURCES = bench/workloads/pareto.c bench/workloads/wl_common.h
bench_workloads_pareto_CFLAGS = $(BENCH_WL_CFLAGS)
bench_workloads_pareto_LDADD = $(BENCH_WL_LIBS)
bench_workloads_churn_SOURCES = bench/workloads/churn.c bench/workloads/wl_common.h
bench_workloads_churn_CFLAGS = $(BENCH_WL_CFLAGS)
bench_workloads_churn_LDADD = $(BENCH_WL_LIBS)
bench_workloads_large_SOURCES = bench/workloads/large.c bench/workloads/wl_common.h
bench_workloads_large_CFLAGS = $(BENCH_WL_CFLAGS)
bench_workloads_large_LDADD = $(BENCH_WL_LIBS)
bench_workloads_frag_SOURCES = bench/workloads/frag.c bench/workloads/wl_common.h
bench_workloads_frag_CFLAGS = $(BENCH_WL_CFLAGS)
bench_workloads_frag_LDADD = $(BENCH_WL_LIBS)

BENCH_BINS = $(BENCH_WORKLOADS)
if HAVE_BENCHMARK
BENCH_BINS += bench/micro/bench_micro
EXTRA_PROGRAMS += bench/micro/bench_micro
CLEANFILES += bench/micro/bench_micro
# -fno-builtin-*: the compiler must not fold a malloc/free pair away (the
# loops also use benchmark::DoNotOptimize/ClobberMemory).
bench_micro_bench_micro_SOURCES = bench/micro/bench_micro.cc
bench_micro_bench_micro_CXXFLAGS = -std=gnu++17 -O2 -g -pthread $(BENCHMARK_CFLAGS) \
	-fno-builtin-malloc -fno-builtin-free -fno-builtin-calloc -fno-builtin-realloc
bench_micro_bench_micro_LDADD = $(BENCHMARK_LIBS) -lpthread
endif

EXTRA_DIST += \
	bench/compare \
	bench/checkcost \
	bench/fastpath \
	bench/fastpath.budget \
	bench/fastpath-check.sh \
	bench/workloads/py_workload.py \
	bench/RESULTS.md

TESTS += bench/fastpath-check.sh

BENCH_COMPARE = $(BASH) $(srcdir)/bench/compare \
	--lib $(abs_top_builddir)/.libs/libgomalloc.so --bindir $(abs_top_builddir)

bench-programs: $(BENCH_BINS)

bench: bench-programs libgomalloc.la
	$(BENCH_COMPARE) --quick --out $(abs_top_srcdir)/bench/results

# Two repeats, so the report's "by repeat" column is made; then --report
# merges the run with itself (4 repeats) to prove the merge works.
SMOKE_OUT = $(abs_top_builddir)/bench/results-smoke
bench-smoke: bench-programs libgomalloc.la
	rm -rf $(SMOKE_OUT)
	$(BENCH_COMPARE) --smoke --repeats 2 --out $(SMOKE_OUT)
	grep -q ' by repeat |' $(SMOKE_OUT)/*.md
	t=`ls $(SMOKE_OUT)/*.tsv` && \
	  $(BASH) $(srcdir)/bench/compare --report "$$t,$$t" --out $(SMOKE_OUT)/merged
	grep -q '(report mode, 4 repeat(s)' $(SMOKE_OUT)/merged/*.md

.PHONY: bench bench-programs bench-smoke
