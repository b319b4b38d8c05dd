# tests/api/scav.mk -- automake fragment included by Makefile.am
#
# Scavenger and memory-return tests (issue 4), each built twice: linked with
# libgomalloc, and as <name>-preload without it (tests/run-test.sh runs that
# one under LD_PRELOAD).  Every test re-executes itself with its own
# GOMALLOC_CONF, so options are read fresh and RSS is measured in a new
# process.
#   test_rss       1 GiB burst freed: RSS back near the live size in 5 s
#                  (background, inline); scavenger:off keeps it until
#                  malloc_trim(0)
#   test_memlimit  memory_limit: soft limit under churn, overshoot in the
#                  stats, option parsing and its error line
#   test_zero      calloc over recycled and scavenged memory (DONTNEED and
#                  madvise:free)
# Bench programs of bench/rss (not built by `make`; bench/rss/run.sh builds
# them itself, or `make bench/rss/burst bench/rss/calloc_bench`).

GM_SCAV_TESTS = tests/api/test_rss tests/api/test_memlimit tests/api/test_zero
GM_SCAV_PRELOAD_TESTS = tests/api/test_rss-preload tests/api/test_memlimit-preload \
	tests/api/test_zero-preload
check_PROGRAMS += $(GM_SCAV_TESTS) $(GM_SCAV_PRELOAD_TESTS)
TESTS += $(GM_SCAV_TESTS) $(GM_SCAV_PRELOAD_TESTS)

tests_api_test_rss_SOURCES = tests/api/test_rss.c tests/api/support.c tests/api/support.h
tests_api_test_rss_CFLAGS = $(GM_TEST_CFLAGS)
tests_api_test_rss_LDADD = $(GM_TEST_LINKED)
tests_api_test_rss_preload_SOURCES = tests/api/test_rss.c tests/api/support.c tests/api/support.h
tests_api_test_rss_preload_CFLAGS = $(GM_TEST_CFLAGS)
tests_api_test_rss_preload_LDADD = $(GM_TEST_PRELOAD)

tests_api_test_memlimit_SOURCES = tests/api/test_memlimit.c tests/api/support.c tests/api/support.h
tests_api_test_memlimit_CFLAGS = $(GM_TEST_CFLAGS)
tests_api_test_memlimit_LDADD = $(GM_TEST_LINKED)
tests_api_test_memlimit_preload_SOURCES = tests/api/test_memlimit.c tests/api/support.c tests/api/support.h
tests_api_test_memlimit_preload_CFLAGS = $(GM_TEST_CFLAGS)
tests_api_test_memlimit_preload_LDADD = $(GM_TEST_PRELOAD)

tests_api_test_zero_SOURCES = tests/api/test_zero.c tests/api/support.c tests/api/support.h
tests_api_test_zero_CFLAGS = $(GM_TEST_CFLAGS)
tests_api_test_zero_LDADD = $(GM_TEST_LINKED)
tests_api_test_zero_preload_SOURCES = tests/api/test_zero.c tests/api/support.c tests/api/support.h
tests_api_test_zero_preload_CFLAGS = $(GM_TEST_CFLAGS)
tests_api_test_zero_preload_LDADD = $(GM_TEST_PRELOAD)

EXTRA_PROGRAMS += bench/rss/burst bench/rss/calloc_bench
bench_rss_burst_SOURCES = bench/rss/burst.c
bench_rss_burst_CFLAGS = -O2 -g
bench_rss_calloc_bench_SOURCES = bench/rss/calloc_bench.c
bench_rss_calloc_bench_CFLAGS = -O2 -g
CLEANFILES += bench/rss/burst bench/rss/calloc_bench
EXTRA_DIST += bench/rss/run.sh bench/rss/rss.gp bench/rss/README.md
