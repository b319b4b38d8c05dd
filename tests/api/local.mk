# tests/api/local.mk -- automake fragment included by Makefile.am
#
# The public API and the stress test (owner: api helper).
#   tests/api/test_api      malloc family, linked with libgomalloc
#   tests/api/test_api-preload      the same source, run under LD_PRELOAD
#   tests/api/test_gm       the gm_* extension API (linked only)
#   tests/stress/test_stress        8 threads + 1e6-op single thread, linked
#   tests/stress/test_stress-preload        the same source, under LD_PRELOAD
#
# -fno-builtin: the compiler must not fold away what the tests check
# (malloc/calloc knowledge: alignment, zeroed memory, dead malloc+free).
# $(DL_LIBS): dlsym/dladdr (gm_* lookups in the preload variants).

check_PROGRAMS += tests/api/test_api tests/api/test_api-preload tests/api/test_gm \
	tests/stress/test_stress tests/stress/test_stress-preload
TESTS += tests/api/test_api tests/api/test_api-preload tests/api/test_gm \
	tests/stress/test_stress tests/stress/test_stress-preload

tests_api_test_api_SOURCES = tests/api/test_api.c
tests_api_test_api_CFLAGS = -std=gnu11 $(GM_TEST_CFLAGS) -fno-builtin -Wall -Wextra
tests_api_test_api_LDADD = $(GM_TEST_LINKED) $(DL_LIBS)

tests_api_test_api_preload_SOURCES = tests/api/test_api.c
tests_api_test_api_preload_CFLAGS = -std=gnu11 $(GM_TEST_CFLAGS) -fno-builtin -Wall -Wextra
tests_api_test_api_preload_LDADD = $(GM_TEST_PRELOAD) $(DL_LIBS)

tests_api_test_gm_SOURCES = tests/api/test_gm.c
tests_api_test_gm_CFLAGS = -std=gnu11 $(GM_TEST_CFLAGS) -fno-builtin -Wall -Wextra
tests_api_test_gm_LDADD = $(GM_TEST_LINKED)

tests_stress_test_stress_SOURCES = tests/stress/test_stress.c
tests_stress_test_stress_CFLAGS = -std=gnu11 $(GM_TEST_CFLAGS) -fno-builtin -Wall -Wextra
tests_stress_test_stress_LDADD = $(GM_TEST_LINKED) $(DL_LIBS)

tests_stress_test_stress_preload_SOURCES = tests/stress/test_stress.c
tests_stress_test_stress_preload_CFLAGS = -std=gnu11 $(GM_TEST_CFLAGS) -fno-builtin -Wall -Wextra
tests_stress_test_stress_preload_LDADD = $(GM_TEST_PRELOAD) $(DL_LIBS)

# Bootstrap: a constructor before main, dlsym/dlerror, the first call of
# every entry point in a new thread (lead).
check_PROGRAMS += tests/api/test_boot tests/api/test_boot-preload
TESTS += tests/api/test_boot tests/api/test_boot-preload
tests_api_test_boot_SOURCES = tests/api/test_boot.c
tests_api_test_boot_CFLAGS = -std=gnu11 $(GM_TEST_CFLAGS) -fno-builtin -Wall -Wextra
tests_api_test_boot_LDADD = $(GM_TEST_LINKED) $(DL_LIBS)
tests_api_test_boot_preload_SOURCES = tests/api/test_boot.c
tests_api_test_boot_preload_CFLAGS = -std=gnu11 $(GM_TEST_CFLAGS) -fno-builtin -Wall -Wextra
tests_api_test_boot_preload_LDADD = $(GM_TEST_PRELOAD) $(DL_LIBS)

# The scavenger takes empty spans from caches whose owners are running
# (cache_idle_ms:1): pattern-checked blocks, local and cross-thread frees.
check_PROGRAMS += tests/stress/test_idle_steal tests/stress/test_idle_steal-preload
TESTS += tests/stress/test_idle_steal tests/stress/test_idle_steal-preload
tests_stress_test_idle_steal_SOURCES = tests/stress/test_idle_steal.c tests/api/support.c tests/api/support.h
tests_stress_test_idle_steal_CFLAGS = -std=gnu11 $(GM_TEST_CFLAGS) -fno-builtin -Wall -Wextra
tests_stress_test_idle_steal_LDADD = $(GM_TEST_LINKED) $(DL_LIBS)
tests_stress_test_idle_steal_preload_SOURCES = tests/stress/test_idle_steal.c tests/api/support.c tests/api/support.h
tests_stress_test_idle_steal_preload_CFLAGS = -std=gnu11 $(GM_TEST_CFLAGS) -fno-builtin -Wall -Wextra
tests_stress_test_idle_steal_preload_LDADD = $(GM_TEST_PRELOAD) $(DL_LIBS)
