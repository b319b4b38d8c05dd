/*
 * support.h -- helpers shared by the API tests (tests/api/support.c):
 * the clock, RSS from /proc/self/statm, the gm_* lookup that also works in
 * the *-preload variants, and a runner that re-executes the test binary as
 * a child with its own GOMALLOC_CONF (options are read once, at start-up).
 */
#ifndef GM_TEST_SUPPORT_H
#define GM_TEST_SUPPORT_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#ifdef GM_TEST_PRELOAD
#include <dlfcn.h>
/* gm_* from the preloaded library; fail (not crash) when it is not there */
#ifdef __cplusplus
#define GM_FN(name)                                                                  \
	({                                                                           \
		auto gm_fn_ = reinterpret_cast<decltype(&name)>(dlsym(RTLD_DEFAULT, #name)); \
		ck_assert_msg(gm_fn_ != nullptr, #name " not found: not running on gomalloc"); \
		gm_fn_;                                                              \
	})
#else
#define GM_FN(name)                                                          \
	({                                                                   \
		__typeof__(&name) gm_fn_ = (__typeof__(&name))dlsym(RTLD_DEFAULT, #name); \
		ck_assert_msg(gm_fn_ != NULL, #name " not found: not running on gomalloc"); \
		gm_fn_;                                                      \
	})
#endif
#else
#define GM_FN(name) (&name)
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* CLOCK_MONOTONIC in seconds. */
double now_s(void);

/* Resident set size of this process in bytes (0 if unreadable). */
size_t rss_bytes(void);
/* The address space (VmSize) in bytes, from the same file; 0 if unreadable. */
size_t vm_bytes(void);

/* Bytes as MiB, for messages. */
double mib(size_t bytes);

/* Marsaglia's xorshift64: the next pseudo-random number of *state
 * (nonzero). */
uint64_t xorshift64(uint64_t *state);

/* A re-executed child: exit status, stdout and stderr, wall time. */
typedef struct child_result {
	int status;
	char out[32768];
	char err[8192];
	size_t nout, nerr;
	double secs;
} child_result_t;

/* Run "/proc/self/exe --child name" with GOMALLOC_CONF=conf (unset if conf
 * is NULL), killed after timeout_s; collect its stdout and stderr and echo
 * them to this process's stdout (the test log). */
void run_child(const char *conf, const char *name, int timeout_s, child_result_t *r);
/* When not 0: run_child's child runs under RLIMIT_AS of this many bytes
 * (set between fork and exec, so the whole new process is under it). */
extern size_t run_child_as_limit;

/* run_child with a 45 s timeout; the Check case fails unless the child
 * exits 0 (its "FAIL-REASON: " line, if any, is the failure message). */
void expect_child_ok(const char *conf, const char *name);

/* A Check case of its own named name, holding test t, with a timeout in
 * seconds. */
void add_case(Suite *s, const char *name, const TTest *t, int timeout);

/* Fails the Check case unless malloc is gomalloc's: gm_version resolves and
 * gm_kind_of calls a fresh malloc block a scan block. */
void assert_runs_on_gomalloc(void);

#ifdef __cplusplus
}
#endif
#endif /* GM_TEST_SUPPORT_H */
