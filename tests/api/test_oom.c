/*
 * test_oom.c -- out of memory (issue 3, "Out of memory"): in a child under
 * setrlimit(RLIMIT_AS), memory is exhausted; then every allocation function
 * returns NULL with errno ENOMEM (posix_memalign returns ENOMEM), never a
 * crash, also from several threads at once; once blocks are freed the
 * allocator serves requests again, of other sizes too.
 *
 * Built linked (tests/api/test_oom) and for LD_PRELOAD
 * (tests/api/test_oom-preload, -DGM_TEST_PRELOAD: gm_* through dlsym).
 */
#define _GNU_SOURCE
#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gomalloc.h>

#include "support.h"

#define MiB ((size_t)1 << 20)
#define HEADROOM (256 * MiB) /* address space allowed beyond the start */

static inline size_t opq(size_t x)
{
	__asm__ volatile("" : "+r"(x));
	return x;
}

static size_t vm_size(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long size = 0;
	if (f) {
		if (fscanf(f, "%lu", &size) != 1)
			size = 0;
		fclose(f);
	}
	return size * (size_t)sysconf(_SC_PAGESIZE);
}

static void limit_address_space(size_t headroom)
{
	struct rlimit rl;
	rl.rlim_cur = rl.rlim_max = vm_size() + headroom;
	setrlimit(RLIMIT_AS, &rl);
}

static void resolve_gm(void);

/* Run fn in a child; its exit status is the result (0 = pass). */
static void run_in_child(int (*fn)(void), const char *what, double secs)
{
	resolve_gm();
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct rlimit nocore = { 0, 0 };
		setrlimit(RLIMIT_CORE, &nocore);
		alarm((unsigned)secs);
		_exit(fn());
	}
	int st;
	double end = now_s() + secs + 5;
	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			break;
		if (now_s() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			ck_abort_msg("%s: child hung", what);
		}
		usleep(5000);
	}
	ck_assert_msg(!WIFSIGNALED(st), "%s: child killed by signal %d (%s)", what,
	              WTERMSIG(st), strsignal(WTERMSIG(st)));
	ck_assert_msg(WEXITSTATUS(st) == 0, "%s: child failed at step %d", what,
	              WEXITSTATUS(st));
}

#define FAIL(step, ...)                                  \
	do {                                             \
		fprintf(stderr, "oom: " __VA_ARGS__);    \
		fprintf(stderr, "\n");                   \
		return (step);                           \
	} while (0)

/* A list of blocks threaded through their first word. */
typedef struct blk { struct blk *next; } blk_t;

/* Allocate blocks of size n until malloc fails; returns how many. */
static size_t exhaust(blk_t **list, size_t n, size_t max, int *bad_errno)
{
	size_t count = 0;
	for (; count < max; count++) {
		errno = 0;
		blk_t *b = malloc(n);
		if (b == NULL) {
			if (errno != ENOMEM)
				*bad_errno = errno ? errno : -1;
			break;
		}
		b->next = *list;
		*list = b;
	}
	return count;
}

/* Free the first `count` blocks of the list (the most recent, so mostly
 * neighbours in memory); count 0 frees all. */
static void free_list(blk_t **list, size_t count)
{
	blk_t *b = *list;
	for (size_t i = 0; b != NULL && (count == 0 || i < count); i++) {
		blk_t *next = b->next;
		free(b);
		b = next;
	}
	*list = b;
}

/* With the heap exhausted: every function fails cleanly for sizes that
 * need fresh pages.  Returns 0 or a step number. */
static void *(*noscan)(size_t);
static void *(*calloc_noscan)(size_t, size_t);
static void *(*aligned_noscan)(size_t, size_t);

/* Looked up before memory runs out (Check's assertions allocate). */
static void resolve_gm(void)
{
	noscan = GM_FN(gm_malloc_noscan);
	calloc_noscan = GM_FN(gm_calloc_noscan);
	aligned_noscan = GM_FN(gm_aligned_alloc_noscan);
}

static int every_function_fails(size_t n, void *live)
{
#define EXPECT_FAIL(step, call)                                                   \
	do {                                                                      \
		errno = 0;                                                        \
		void *r_ = (call);                                                \
		if (r_ != NULL)                                                   \
			FAIL(step, #call " succeeded with the heap exhausted");   \
		if (errno != ENOMEM)                                              \
			FAIL(step, #call ": errno %d, want ENOMEM", errno);       \
	} while (0)
	EXPECT_FAIL(20, malloc(opq(n)));
	EXPECT_FAIL(21, calloc(opq(n / 64), 64));
	EXPECT_FAIL(22, realloc(NULL, opq(n)));
	EXPECT_FAIL(23, reallocarray(NULL, opq(n / 16), 16));
	EXPECT_FAIL(24, aligned_alloc(4096, opq(n)));
	EXPECT_FAIL(25, aligned_alloc(1 << 20, opq(n)));
	EXPECT_FAIL(26, memalign(64, opq(n)));
	EXPECT_FAIL(27, valloc(opq(n)));
	EXPECT_FAIL(28, pvalloc(opq(n)));
	EXPECT_FAIL(29, noscan(opq(n)));
	EXPECT_FAIL(30, calloc_noscan(opq(n / 8), 8));
	EXPECT_FAIL(31, aligned_noscan(256, opq(n)));
	void *m = (void *)0x77;
	int rc = posix_memalign(&m, 64, opq(n));
	if (rc != ENOMEM || m != (void *)0x77)
		FAIL(32, "posix_memalign with the heap exhausted: %d", rc);
	if (live != NULL) {
		unsigned char *c = live;
		size_t u = malloc_usable_size(live);
		EXPECT_FAIL(33, realloc(live, opq(u + n)));
		EXPECT_FAIL(34, reallocarray(live, opq(u + n), 1));
		for (size_t i = 0; i < 4096; i++)
			if (c[i] != 0xab)
				FAIL(35, "failed realloc changed the block");
	}
#undef EXPECT_FAIL
	return 0;
}

static int oom_single(void)
{
	void *live = malloc(8192);
	memset(live, 0xab, 8192);
	limit_address_space(HEADROOM);
	blk_t *big = NULL, *mid = NULL, *small = NULL;
	int bad = 0;
	size_t nbig = exhaust(&big, MiB, 100000, &bad);
	if (bad)
		FAIL(1, "malloc(1 MiB) failed with errno %d", bad);
	if (nbig < 16)
		FAIL(2, "only %zu MiB before the limit", nbig);
	size_t nmid = exhaust(&mid, 40000, 1000000, &bad);
	size_t nsmall = exhaust(&small, 100, 10000000, &bad);
	if (bad)
		FAIL(3, "small malloc failed with errno %d", bad);
	fprintf(stderr, "oom: exhausted after %zu x 1 MiB, %zu x 40000, %zu x 100\n", nbig,
	        nmid, nsmall);
	int rc = every_function_fails(MiB, live);
	if (rc)
		return rc;
	/* small requests: NULL/ENOMEM or a usable block, never a crash */
	for (size_t n = 1; n <= 32768; n = n * 2 + 1) {
		errno = 0;
		char *p = malloc(n);
		if (p == NULL && errno != ENOMEM)
			FAIL(40, "malloc(%zu): NULL with errno %d", n, errno);
		if (p != NULL)
			memset(p, 1, n);
		free(p);
		p = calloc(1, n);
		if (p == NULL && errno != ENOMEM)
			FAIL(41, "calloc(%zu): NULL with errno %d", n, errno);
		free(p);
	}
	/* free half of the big blocks: 1 MiB and other sizes work again */
	free_list(&big, nbig / 2);
	for (int i = 0; i < 8; i++) {
		void *p = malloc(MiB);
		if (p == NULL)
			FAIL(50, "malloc(1 MiB) #%d after freeing %zu MiB", i, nbig / 2);
		memset(p, 2, MiB);
		free(p);
	}
	void *a = malloc(3 * MiB + 5);
	void *b = calloc(1, 5 * MiB);
	void *c = aligned_alloc(1 << 20, 2 * MiB);
	if (a == NULL || b == NULL || c == NULL)
		FAIL(51, "3/5/2 MiB requests after freeing %zu MiB: %p %p %p", nbig / 2, a, b, c);
	free(a);
	free(b);
	free(c);
	/* everything freed: memory of one size serves another */
	free_list(&big, 0);
	free_list(&mid, 0);
	free_list(&small, 0);
	size_t again = 0;
	blk_t *re = NULL;
	again = exhaust(&re, 300000, (nbig * MiB) / 300000 / 2, &bad);
	if (again < (nbig * MiB) / 300000 / 2)
		FAIL(52, "after freeing everything only %zu x 300000 bytes fit (had %zu MiB)",
		     again, nbig);
	free_list(&re, 0);
	/* freed blocks a thread keeps for reuse must serve another size when
	 * nothing else is left: exhaust with 4 MiB blocks, free the last 8
	 * (neighbours), then ask for 24 MiB */
	blk_t *four = NULL;
	size_t nfour = exhaust(&four, 4 * MiB, 100000, &bad);
	exhaust(&small, 3000, 10000000, &bad);
	if (nfour < 12)
		FAIL(54, "only %zu x 4 MiB after recovery", nfour);
	free_list(&four, 8);
	void *y = malloc(24 * MiB);
	if (y == NULL)
		FAIL(55, "malloc(24 MiB) fails after 8 neighbouring 4 MiB blocks were freed");
	memset(y, 3, 24 * MiB);
	free(y);
	free_list(&four, 0);
	free_list(&small, 0);
	void *x = malloc(100);
	if (x == NULL)
		FAIL(53, "malloc(100) after recovery");
	free(x);
	free(live);
	return 0;
}

START_TEST(test_oom_every_function)
{
	run_in_child(oom_single, "single-threaded exhaustion", 40);
}
END_TEST

/* ---- several threads exhaust at once ---- */

#define OOM_THREADS 4
static pthread_barrier_t oom_barrier;
static atomic_int oom_errors;
static blk_t *oom_lists[OOM_THREADS];

static void *oom_thread(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	static const size_t sizes[] = { 100, 3000, 40000, MiB };
	pthread_barrier_wait(&oom_barrier); /* the limit is in force now */
	int bad = 0;
	for (int round = 0; round < 3; round++) {
		blk_t *l = NULL;
		size_t total = 0;
		for (int k = 3; k >= 0; k--) {
			size_t n = sizes[(k + id) % 4];
			total += exhaust(&l, n, 10000000, &bad) * n;
		}
		if (bad) {
			fprintf(stderr, "oom thread %u: errno %d\n", id, bad);
			atomic_fetch_add(&oom_errors, 1);
		}
		if (round < 2) {
			pthread_barrier_wait(&oom_barrier); /* all exhausted */
			if (id == 0 && every_function_fails(MiB, NULL) != 0)
				atomic_fetch_add(&oom_errors, 1);
			pthread_barrier_wait(&oom_barrier);
			free_list(&l, 0);
			pthread_barrier_wait(&oom_barrier); /* all freed */
		} else {
			oom_lists[id] = l;
		}
		(void)total;
	}
	return NULL;
}

static int oom_threads(void)
{
	pthread_t th[OOM_THREADS];
	pthread_barrier_init(&oom_barrier, NULL, OOM_THREADS + 1);
	for (uintptr_t i = 0; i < OOM_THREADS; i++)
		if (pthread_create(&th[i], NULL, oom_thread, (void *)i) != 0)
			FAIL(1, "pthread_create");
	usleep(20000);
	limit_address_space(HEADROOM);
	pthread_barrier_wait(&oom_barrier);
	for (int round = 0; round < 2; round++) {
		pthread_barrier_wait(&oom_barrier);
		pthread_barrier_wait(&oom_barrier);
		pthread_barrier_wait(&oom_barrier);
	}
	for (int i = 0; i < OOM_THREADS; i++)
		pthread_join(th[i], NULL);
	if (atomic_load(&oom_errors))
		FAIL(2, "%d errors in threads", atomic_load(&oom_errors));
	/* the main thread frees every thread's blocks (cross-thread frees) */
	for (int i = 0; i < OOM_THREADS; i++)
		free_list(&oom_lists[i], 0);
	void *p = malloc(8 * MiB);
	if (p == NULL)
		FAIL(3, "malloc(8 MiB) after the threads' blocks were freed");
	memset(p, 1, 8 * MiB);
	free(p);
	return 0;
}

START_TEST(test_oom_threads)
{
	run_in_child(oom_threads, "threads exhausting memory together", 45);
}
END_TEST

START_TEST(test_runs_on_gomalloc)
{
	assert_runs_on_gomalloc();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("oom");
	add_case(s, "runs_on_gomalloc", test_runs_on_gomalloc, 10);
	add_case(s, "oom_every_function", test_oom_every_function, 60);
	add_case(s, "oom_threads", test_oom_threads, 60);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
