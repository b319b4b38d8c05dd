# tests/api/compat.mk -- automake fragment included by Makefile.am
#
# glibc-grade compatibility tests (issue 3; owner: compat helper).  Each
# Check program is built twice: linked with libgomalloc (tests/api/test_X)
# and without it as tests/api/test_X-preload, which tests/run-test.sh runs
# under LD_PRELOAD (built with -DGM_TEST_PRELOAD: gm_* through dlsym, and
# each proves it runs on gomalloc).
#   test_errors      ENOMEM/EINVAL for every function, overflow, errno, realloc
#   test_fork        fork with busy threads, with stdio, from a signal handler;
#                    scavenger and stats in the child
#   test_threads     10,000 short-lived threads, key destructors, producer/consumer
#   test_oom         RLIMIT_AS exhaustion, threads, recovery
#   test_badptr      bad free/realloc/malloc_usable_size: one line, abort or continue
#   test_introspect  mallinfo/mallinfo2, malloc_stats, malloc_info, mallopt, malloc_trim
#   test_cxx         operator new/delete: aligned, nothrow, new_handler, sized,
#                    thread_local destructors
#   tests/fuzz/run.sh  libFuzzer harness on every API call against a shadow
#                    model, 30 s (SKIP without clang/libFuzzer); `make fuzz`: 600 s
#
# -fno-builtin: the compiler must not fold away what the tests check.

GM_COMPAT_TESTS = tests/api/test_errors tests/api/test_fork tests/api/test_threads \
	tests/api/test_oom tests/api/test_badptr tests/api/test_introspect \
	tests/api/test_cxx
GM_COMPAT_PRELOAD_TESTS = tests/api/test_errors-preload tests/api/test_fork-preload \
	tests/api/test_threads-preload tests/api/test_oom-preload \
	tests/api/test_badptr-preload tests/api/test_introspect-preload \
	tests/api/test_cxx-preload
check_PROGRAMS += $(GM_COMPAT_TESTS) $(GM_COMPAT_PRELOAD_TESTS)
TESTS += $(GM_COMPAT_TESTS) $(GM_COMPAT_PRELOAD_TESTS) tests/fuzz/run.sh

GM_COMPAT_CFLAGS = -std=gnu11 $(GM_TEST_CFLAGS) -fno-builtin -Wall -Wextra
GM_COMPAT_CXXFLAGS = -std=gnu++17 $(GM_TEST_CFLAGS) -fno-builtin -Wall -Wextra

tests_api_test_errors_SOURCES = tests/api/test_errors.c tests/api/support.c tests/api/support.h
tests_api_test_errors_CFLAGS = $(GM_COMPAT_CFLAGS)
tests_api_test_errors_LDADD = $(GM_TEST_LINKED) $(DL_LIBS)
tests_api_test_errors_preload_SOURCES = tests/api/test_errors.c tests/api/support.c tests/api/support.h
tests_api_test_errors_preload_CFLAGS = $(GM_COMPAT_CFLAGS) -DGM_TEST_PRELOAD
tests_api_test_errors_preload_LDADD = $(GM_TEST_PRELOAD) $(DL_LIBS)

tests_api_test_fork_SOURCES = tests/api/test_fork.c tests/api/support.c tests/api/support.h
tests_api_test_fork_CFLAGS = $(GM_COMPAT_CFLAGS)
tests_api_test_fork_LDADD = $(GM_TEST_LINKED) $(DL_LIBS)
tests_api_test_fork_preload_SOURCES = tests/api/test_fork.c tests/api/support.c tests/api/support.h
tests_api_test_fork_preload_CFLAGS = $(GM_COMPAT_CFLAGS) -DGM_TEST_PRELOAD
tests_api_test_fork_preload_LDADD = $(GM_TEST_PRELOAD) $(DL_LIBS)

tests_api_test_threads_SOURCES = tests/api/test_threads.c tests/api/support.c tests/api/support.h
tests_api_test_threads_CFLAGS = $(GM_COMPAT_CFLAGS)
tests_api_test_threads_LDADD = $(GM_TEST_LINKED) $(DL_LIBS)
tests_api_test_threads_preload_SOURCES = tests/api/test_threads.c tests/api/support.c tests/api/support.h
tests_api_test_threads_preload_CFLAGS = $(GM_COMPAT_CFLAGS) -DGM_TEST_PRELOAD
tests_api_test_threads_preload_LDADD = $(GM_TEST_PRELOAD) $(DL_LIBS)

tests_api_test_oom_SOURCES = tests/api/test_oom.c tests/api/support.c tests/api/support.h
tests_api_test_oom_CFLAGS = $(GM_COMPAT_CFLAGS)
tests_api_test_oom_LDADD = $(GM_TEST_LINKED) $(DL_LIBS)
tests_api_test_oom_preload_SOURCES = tests/api/test_oom.c tests/api/support.c tests/api/support.h
tests_api_test_oom_preload_CFLAGS = $(GM_COMPAT_CFLAGS) -DGM_TEST_PRELOAD
tests_api_test_oom_preload_LDADD = $(GM_TEST_PRELOAD) $(DL_LIBS)

tests_api_test_badptr_SOURCES = tests/api/test_badptr.c tests/api/support.c tests/api/support.h
tests_api_test_badptr_CFLAGS = $(GM_COMPAT_CFLAGS)
tests_api_test_badptr_LDADD = $(GM_TEST_LINKED) $(DL_LIBS)
tests_api_test_badptr_preload_SOURCES = tests/api/test_badptr.c tests/api/support.c tests/api/support.h
tests_api_test_badptr_preload_CFLAGS = $(GM_COMPAT_CFLAGS) -DGM_TEST_PRELOAD
tests_api_test_badptr_preload_LDADD = $(GM_TEST_PRELOAD) $(DL_LIBS)

tests_api_test_introspect_SOURCES = tests/api/test_introspect.c tests/api/support.c tests/api/support.h
tests_api_test_introspect_CFLAGS = $(GM_COMPAT_CFLAGS)
tests_api_test_introspect_LDADD = $(GM_TEST_LINKED) $(DL_LIBS)
tests_api_test_introspect_preload_SOURCES = tests/api/test_introspect.c tests/api/support.c tests/api/support.h
tests_api_test_introspect_preload_CFLAGS = $(GM_COMPAT_CFLAGS) -DGM_TEST_PRELOAD
tests_api_test_introspect_preload_LDADD = $(GM_TEST_PRELOAD) $(DL_LIBS)

tests_api_test_cxx_SOURCES = tests/api/test_cxx.cc tests/api/support.c tests/api/support.h
tests_api_test_cxx_CXXFLAGS = $(GM_COMPAT_CXXFLAGS)
tests_api_test_cxx_CFLAGS = $(GM_COMPAT_CFLAGS)
tests_api_test_cxx_LDADD = $(GM_TEST_LINKED) $(DL_LIBS)
tests_api_test_cxx_preload_SOURCES = tests/api/test_cxx.cc tests/api/support.c tests/api/support.h
tests_api_test_cxx_preload_CXXFLAGS = $(GM_COMPAT_CXXFLAGS) -DGM_TEST_PRELOAD
tests_api_test_cxx_preload_CFLAGS = $(GM_COMPAT_CFLAGS) -DGM_TEST_PRELOAD
tests_api_test_cxx_preload_LDADD = $(GM_TEST_PRELOAD) $(DL_LIBS)

# The fuzzer: tests/fuzz/run.sh builds tests/fuzz/fuzz_api with clang
# -fsanitize=fuzzer from the lib/ sources (coverage-instrumented; objects in
# tests/fuzz/obj) and runs it FUZZ_TIME seconds (30 under make check) on the
# corpus tests/fuzz/corpus.  `make fuzz` runs it 600 s (FUZZ_TIME=... to
# change, FUZZ_JOBS=2 for parallel jobs).
EXTRA_DIST += tests/fuzz/run.sh tests/fuzz/fuzz_api.c tests/fuzz/README.md
CLEANFILES += tests/fuzz/fuzz_api tests/fuzz/fuzz_api.log tests/fuzz/fuzz-*.log \
	tests/fuzz/crash-* tests/fuzz/timeout-* tests/fuzz/oom-* tests/fuzz/leak-*
fuzz: libgomalloc.la
	FUZZ_CC='$(FUZZ_CC)' FUZZ_CXX='$(FUZZ_CXX)' FUZZ_TIME=$${FUZZ_TIME:-600} \
	GM_BUILDDIR='$(abs_top_builddir)' GM_SRCDIR='$(abs_top_srcdir)' \
		$(BASH) $(top_srcdir)/tests/fuzz/run.sh
clean-local: compat-clean-fuzz
compat-clean-fuzz:
	-rm -rf tests/fuzz/obj tests/fuzz/corpus
.PHONY: fuzz compat-clean-fuzz
