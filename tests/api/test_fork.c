/*
 * test_fork.c -- fork() and gomalloc (issue 3, "fork"):
 *  - a child allocates and frees after fork() from a parent whose other
 *    threads were hammering malloc/free (and frees blocks those threads own);
 *  - threads fork while others use stdio (fopen/getline/fflush(NULL));
 *  - fork() from a SIGALRM handler that interrupted malloc, free, realloc;
 *  - the child's heap returns memory: gm_scavenge/gm_stats work there, and
 *    the background scavenger exists again in the child (RSS falls on its
 *    own; re-exec with a short GOMALLOC_CONF scavenge_delay_ms).
 * Every child is waited for with a deadline and every test runs under
 * alarm(), so a deadlock fails instead of hanging.
 *
 * Built linked (tests/api/test_fork) and for LD_PRELOAD
 * (tests/api/test_fork-preload, -DGM_TEST_PRELOAD: gm_* through dlsym).
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
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gomalloc.h>

#include "support.h"

extern char **environ;
static const char *self_exe = "/proc/self/exe";

static inline size_t opq(size_t x)
{
	__asm__ volatile("" : "+r"(x));
	return x;
}

/* Wait for pid at most secs seconds; on timeout kill it and return -1. */
static int wait_child(pid_t pid, double secs)
{
	double end = now_s() + secs;
	for (;;) {
		int st;
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return st;
		if (r < 0 && errno != EINTR)
			return -2;
		if (now_s() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return -1;
		}
		usleep(2000);
	}
}

static void check_child_status(int st, const char *what)
{
	ck_assert_msg(st != -1, "%s: child deadlocked (killed after the deadline)", what);
	ck_assert_msg(st >= 0, "%s: waitpid failed", what);
	ck_assert_msg(!WIFSIGNALED(st), "%s: child killed by signal %d", what, WTERMSIG(st));
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: child exited with %d", what,
	              WEXITSTATUS(st));
}

/* Work a child does after fork: every entry point, many sizes. Returns 0
 * on success, else the step that failed. */
static int child_alloc_work(int rounds)
{
	static const size_t sizes[] = { 1, 16, 24, 100, 500, 1024, 3000, 8192,
		                        20000, 32768, 40000, 100000, 1 << 20, 20 << 20 };
	enum { NS = sizeof sizes / sizeof sizes[0] };
	void *blocks[NS * 4];
	for (int r = 0; r < rounds; r++) {
		for (int i = 0; i < NS * 4; i++) {
			size_t n = sizes[i % NS];
			switch (i / NS) {
			case 0: blocks[i] = malloc(opq(n)); break;
			case 1: blocks[i] = calloc(1, opq(n)); break;
			case 2: blocks[i] = aligned_alloc(64, opq(n)); break;
			default: blocks[i] = realloc(malloc(opq(n / 2 + 1)), opq(n)); break;
			}
			if (blocks[i] == NULL)
				return 10 + i;
			/* touch a prefix and the end: page faults are slow on VMs */
			size_t head = n < 16384 ? n : 16384;
			unsigned char *c = blocks[i];
			if (i / NS == 1) {
				for (size_t k = 0; k < head; k += 61)
					if (c[k] != 0 || c[n - 1] != 0)
						return 100 + i;
			}
			memset(c, i, head);
			c[n - 1] = (unsigned char)i;
		}
		for (int i = 0; i < NS * 4; i++) {
			unsigned char *c = blocks[i];
			size_t n = sizes[i % NS];
			if (c[0] != (unsigned char)i || c[n - 1] != (unsigned char)i)
				return 200 + i;
			free(blocks[i]);
		}
	}
	return 0;
}

static void *child_thread_fn(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)child_alloc_work(3);
}

START_TEST(test_runs_on_gomalloc)
{
	assert_runs_on_gomalloc();
}
END_TEST

/* ---- fork while other threads hammer malloc/free ---- */

#define HAMMER_THREADS 4
#define HAMMER_SLOTS 2048
#define STABLE_PER_THREAD 2000
static atomic_int hammer_stop;
static void *_Atomic hammer_slots[HAMMER_SLOTS];
static void *stable[HAMMER_THREADS][STABLE_PER_THREAD];
static pthread_barrier_t hammer_barrier;

static size_t hammer_size(unsigned r)
{
	unsigned k = r % 100;
	if (k < 70)
		return (r >> 8) % 512 + 1;
	if (k < 95)
		return (r >> 8) % 32768 + 1;
	if (k < 99)
		return (r >> 8) % (128 << 10) + 32769;
	return (r >> 8) % (2 << 20) + 1;
}

static void *hammer_fn(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	unsigned seed = id * 7919 + 1;
	/* blocks the forked children free: owned by this thread's spans */
	for (int i = 0; i < STABLE_PER_THREAD; i++) {
		size_t n = (size_t)(i % 300) + 1 + (i % 97 == 0 ? 50000 : 0);
		stable[id][i] = malloc(n);
		memset(stable[id][i], (int)id, n);
	}
	pthread_barrier_wait(&hammer_barrier);
	while (!atomic_load_explicit(&hammer_stop, memory_order_relaxed)) {
		unsigned r = (unsigned)rand_r(&seed);
		size_t n = hammer_size(r);
		void *p;
		switch (r % 7) {
		case 0: p = calloc(1, n); break;
		case 1: p = aligned_alloc(256, n); break;
		default: p = malloc(n); break;
		}
		if (p != NULL)
			memset(p, 0x11, n < 64 ? n : 64);
		void *old = atomic_exchange(&hammer_slots[(r >> 3) % HAMMER_SLOTS], p);
		if (old != NULL) {
			if (r % 11 == 0) {
				void *q = realloc(old, n / 2 + 1);
				free(q);
			} else {
				free(old); /* often another thread's block */
			}
		}
	}
	return NULL;
}

START_TEST(test_fork_while_threads_hammer)
{
	alarm(50);
	pthread_t th[HAMMER_THREADS];
	atomic_store(&hammer_stop, 0);
	pthread_barrier_init(&hammer_barrier, NULL, HAMMER_THREADS + 1);
	for (uintptr_t i = 0; i < HAMMER_THREADS; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, hammer_fn, (void *)i), 0);
	pthread_barrier_wait(&hammer_barrier);
	for (int f = 0; f < 25; f++) {
		usleep(1000 + (f % 5) * 3000);
		pid_t pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			alarm(20);
			int rc = child_alloc_work(4);
			if (rc)
				_exit(rc);
			/* free blocks owned by the parent's (now gone) threads */
			for (int t = 0; t < HAMMER_THREADS; t++)
				for (int i = 0; i < STABLE_PER_THREAD; i++) {
					unsigned char *c = stable[t][i];
					if (c[0] != (unsigned char)t)
						_exit(50);
					free(c);
				}
			rc = child_alloc_work(2);
			if (rc)
				_exit(rc);
			/* a new thread in the child allocates too */
			pthread_t ct;
			void *res;
			if (pthread_create(&ct, NULL, child_thread_fn, NULL) != 0)
				_exit(60);
			pthread_join(ct, &res);
			_exit(res == NULL ? 0 : 61);
		}
		int st = wait_child(pid, 20);
		char what[64];
		snprintf(what, sizeof what, "fork %d while threads hammer", f);
		if (st != 0) {
			atomic_store(&hammer_stop, 1);
			check_child_status(st, what);
		}
	}
	atomic_store(&hammer_stop, 1);
	for (int i = 0; i < HAMMER_THREADS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < HAMMER_SLOTS; i++)
		free(atomic_exchange(&hammer_slots[i], NULL));
	for (int t = 0; t < HAMMER_THREADS; t++)
		for (int i = 0; i < STABLE_PER_THREAD; i++)
			free(stable[t][i]);
	alarm(0);
}
END_TEST

/* ---- threads fork while others use stdio ---- */

static char stdio_path[64];
static atomic_int stdio_stop;
static atomic_int stdio_failures;

/* A stream whose reads allocate (as a decompressing or decoding stream
 * does): malloc runs with the FILE's lock held, and a block this large
 * always takes the heap lock.  Serves 200 short lines. */
typedef struct cookie_src {
	int left;
	unsigned k;
} cookie_src_t;

static ssize_t cookie_read(void *cookie, char *buf, size_t size)
{
	cookie_src_t *c = cookie;
	void *p = malloc(((size_t)17 << 20) + (size_t)(c->k++ % 8) * 4096);
	free(p);
	if (c->left == 0 || size < 16)
		return 0;
	c->left--;
	memcpy(buf, "cookie line\n", 12);
	return 12;
}

static void *stdio_user_fn(void *arg)
{
	(void)arg;
	char *line = NULL;
	size_t cap = 0;
	FILE *out = fopen("/dev/null", "w");
	while (!atomic_load(&stdio_stop)) {
		FILE *f = fopen(stdio_path, "r");
		if (f == NULL) {
			atomic_fetch_add(&stdio_failures, 1);
			break;
		}
		int lines = 0;
		while (getline(&line, &cap, f) > 0)
			lines++;
		fclose(f);
		if (lines != 200)
			atomic_fetch_add(&stdio_failures, 1);
		free(line); /* the next getline allocates again, under the FILE lock */
		line = NULL;
		cap = 0;
		cookie_src_t src = { 200, 0 };
		cookie_io_functions_t io = { cookie_read, NULL, NULL, NULL };
		FILE *cf = fopencookie(&src, "r", io);
		lines = 0;
		while (cf != NULL && getline(&line, &cap, cf) > 0)
			lines++;
		if (cf != NULL)
			fclose(cf);
		if (lines != 200)
			atomic_fetch_add(&stdio_failures, 1);
		char *ms = NULL;
		size_t mslen = 0;
		FILE *m = open_memstream(&ms, &mslen);
		for (int i = 0; i < 50; i++)
			fprintf(m, "memstream line %d with some text to grow the buffer\n", i);
		fclose(m);
		free(ms);
		fprintf(out, "%d lines\n", lines);
		fflush(NULL);
	}
	free(line);
	fclose(out);
	return NULL;
}

static void *stdio_forker_fn(void *arg)
{
	(void)arg;
	for (int i = 0; i < 40 && !atomic_load(&stdio_failures); i++) {
		pid_t pid = fork();
		if (pid < 0) {
			atomic_fetch_add(&stdio_failures, 1);
			break;
		}
		if (pid == 0) {
			alarm(20);
			char *line = NULL;
			size_t cap = 0;
			FILE *f = fopen(stdio_path, "r");
			if (f == NULL)
				_exit(2);
			int lines = 0;
			while (getline(&line, &cap, f) > 0)
				lines++;
			fclose(f);
			free(line);
			char *s = malloc(4096);
			if (s == NULL)
				_exit(3);
			snprintf(s, 4096, "child read %d lines", lines);
			FILE *out = fopen("/dev/null", "w");
			fputs(s, out);
			fflush(NULL);
			fclose(out);
			free(s);
			if (child_alloc_work(3))
				_exit(4);
			_exit(lines == 200 ? 0 : 5);
		}
		int st = wait_child(pid, 20);
		if (st != 0) {
			fprintf(stderr, "stdio fork child: status %d (%s)\n", st,
			        st == -1 ? "deadlock" : "failed");
			atomic_fetch_add(&stdio_failures, 1);
		}
	}
	return NULL;
}

START_TEST(test_fork_with_stdio_threads)
{
	alarm(50);
	snprintf(stdio_path, sizeof stdio_path, "/tmp/gm-test-fork-%d.txt", (int)getpid());
	FILE *f = fopen(stdio_path, "w");
	ck_assert_ptr_nonnull(f);
	for (int i = 0; i < 200; i++)
		fprintf(f, "line %d of the stdio fork test, long enough to matter %0*d\n", i,
		        i % 100, 0);
	fclose(f);
	atomic_store(&stdio_stop, 0);
	atomic_store(&stdio_failures, 0);
	pthread_t users[3], forkers[2];
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(pthread_create(&users[i], NULL, stdio_user_fn, NULL), 0);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&forkers[i], NULL, stdio_forker_fn, NULL), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(forkers[i], NULL);
	atomic_store(&stdio_stop, 1);
	for (int i = 0; i < 3; i++)
		pthread_join(users[i], NULL);
	unlink(stdio_path);
	ck_assert_int_eq(atomic_load(&stdio_failures), 0);
	alarm(0);
}
END_TEST

/* ---- fork from a signal handler that interrupted malloc/free ---- */

#define SIG_FORKS 500
static volatile sig_atomic_t sig_nforks, sig_fork_errors;
static pid_t sig_pids[SIG_FORKS];

static void sig_fork_handler(int sig)
{
	(void)sig;
	int saved = errno;
	if (sig_nforks >= SIG_FORKS)
		return;
	pid_t pid = fork();
	if (pid == 0) {
		/* the child: the interrupted malloc/free never resumes here */
		alarm(10);
		void *a = malloc(100);
		void *b = malloc(5000);
		void *c = calloc(10, 1000);
		void *d = malloc(200000);
		void *e = realloc(NULL, 40);
		if (a == NULL || b == NULL || c == NULL || d == NULL || e == NULL)
			_exit(3);
		memset(a, 1, 100);
		memset(d, 2, 200000);
		free(a);
		free(b);
		free(c);
		free(d);
		free(e);
		_exit(0);
	}
	if (pid < 0)
		sig_fork_errors++;
	else
		sig_pids[sig_nforks++] = pid;
	errno = saved;
}

/* The process that takes the signals: single-threaded from the program's
 * point of view, like the glibc case the issue names. */
static int sig_fork_main(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = sig_fork_handler;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = { { 0, 1500 }, { 0, 1500 } };
	setitimer(ITIMER_REAL, &it, NULL);
	enum { NB = 512 };
	static void *blocks[NB];
	unsigned seed = 12345;
	double end = now_s() + 15;
	while (sig_nforks < SIG_FORKS && now_s() < end) {
		for (int i = 0; i < 2000; i++) {
			unsigned r = (unsigned)rand_r(&seed);
			int k = (int)(r % NB);
			size_t n = (r >> 9) % 100 < 90 ? (r >> 12) % 1024 + 1
			                               : (r >> 12) % (1 << 20) + 1;
			if (blocks[k] == NULL) {
				blocks[k] = (r & 1) ? malloc(n) : calloc(1, n);
			} else if (r % 5 == 0) {
				void *q = realloc(blocks[k], n);
				if (q != NULL)
					blocks[k] = q;
			} else {
				free(blocks[k]);
				blocks[k] = NULL;
			}
		}
	}
	struct itimerval off = { { 0, 0 }, { 0, 0 } };
	setitimer(ITIMER_REAL, &off, NULL);
	signal(SIGALRM, SIG_DFL);
	int bad = 0;
	if (sig_fork_errors)
		bad = 1;
	for (int i = 0; i < sig_nforks; i++) {
		int st = wait_child(sig_pids[i], 10);
		if (st != 0) {
			fprintf(stderr, "signal-fork child %d: %s (status %d)\n", i,
			        st == -1 ? "deadlock" : "failed", st);
			bad = 1;
		}
	}
	if (sig_nforks < SIG_FORKS / 2) {
		fprintf(stderr, "only %d forks from the handler\n", (int)sig_nforks);
		bad = 1;
	}
	return bad;
}

START_TEST(test_fork_in_signal_handler)
{
	alarm(55);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(sig_fork_main());
	int st = wait_child(pid, 25);
	check_child_status(st, "fork from a SIGALRM handler interrupting malloc/free");
	alarm(0);
}
END_TEST

/* ---- the child's heap gives memory back ---- */

#define SCAV_BYTES ((size_t)64 << 20)

/* Allocate SCAV_BYTES (one big block and many mid-sized ones), touch, free. */
static size_t alloc_touch_free_64m(void)
{
	enum { NMID = 128 };
	size_t mid = (SCAV_BYTES / 2) / NMID; /* 256 KiB */
	void *big = malloc(SCAV_BYTES / 2);
	if (big == NULL)
		return 0;
	memset(big, 1, SCAV_BYTES / 2);
	void *m[NMID];
	for (int i = 0; i < NMID; i++) {
		m[i] = malloc(mid);
		if (m[i] == NULL)
			return 0;
		memset(m[i], 2, mid);
	}
	size_t peak = rss_bytes();
	free(big);
	for (int i = 0; i < NMID; i++)
		free(m[i]);
	return peak;
}

static void *idle_thread_fn(void *arg)
{
	pthread_barrier_t *b = arg;
	void *p = malloc(1000); /* this thread has a cache */
	pthread_barrier_wait(b);
	pthread_barrier_wait(b);
	free(p);
	return NULL;
}

START_TEST(test_fork_child_scavenge_and_stats)
{
	alarm(50);
	pthread_barrier_t b;
	pthread_barrier_init(&b, NULL, 4);
	pthread_t th[3];
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, idle_thread_fn, &b), 0);
	pthread_barrier_wait(&b);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		alarm(20);
		size_t (*scavenge)(size_t) = GM_FN(gm_scavenge);
		int (*stats)(gm_stats_t *) = GM_FN(gm_stats);
		gm_stats_t s0, s1;
		if (stats(&s0) != 0)
			_exit(2);
		/* the three other threads do not exist here: their caches went */
		if (s0.nthreads > 2) {
			fprintf(stderr, "child: %zu thread caches alive\n", s0.nthreads);
			_exit(3);
		}
		size_t peak = alloc_touch_free_64m();
		if (peak == 0)
			_exit(4);
		size_t released = scavenge(0);
		size_t after = rss_bytes();
		if (stats(&s1) != 0)
			_exit(5);
		if (released < SCAV_BYTES * 3 / 4) {
			fprintf(stderr, "child: gm_scavenge(0) released %zu of %zu\n", released,
			        SCAV_BYTES);
			_exit(6);
		}
		if (s1.scavenged_total < s0.scavenged_total + SCAV_BYTES * 3 / 4) {
			fprintf(stderr, "child: gm_stats scavenged_total %zu -> %zu\n",
			        s0.scavenged_total, s1.scavenged_total);
			_exit(7);
		}
		if (after + SCAV_BYTES * 3 / 4 > peak) {
			fprintf(stderr, "child: RSS %zu -> %zu after gm_scavenge\n", peak, after);
			_exit(8);
		}
		if (child_alloc_work(5))
			_exit(9);
		_exit(0);
	}
	int st = wait_child(pid, 30);
	pthread_barrier_wait(&b);
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	check_child_status(st, "child scavenge and stats");
	alarm(0);
}
END_TEST

/* Re-exec'd with GOMALLOC_CONF (options are read at initialisation): the
 * forked grandchild frees 64 MiB and its RSS must fall without any call,
 * i.e. the background scavenger runs again in a forked child. */
static int background_scavenger_main(void)
{
	void *warm = malloc(100000); /* starts the parent's scavenger */
	free(warm);
	usleep(100000);
	pid_t pid = fork();
	if (pid < 0)
		return 2;
	if (pid == 0) {
		alarm(25);
		size_t peak = alloc_touch_free_64m();
		if (peak == 0)
			_exit(3);
		double end = now_s() + 15;
		size_t rss = rss_bytes();
		while (now_s() < end) {
			rss = rss_bytes();
			if (rss + SCAV_BYTES * 3 / 4 <= peak)
				_exit(0);
			usleep(50000);
		}
		fprintf(stderr, "forked child: RSS %zu MiB at peak, still %zu MiB after 15 s\n",
		        peak >> 20, rss >> 20);
		_exit(4);
	}
	int st = wait_child(pid, 30);
	if (st == -1)
		fprintf(stderr, "forked child deadlocked\n");
	return st == 0 ? 0 : 1;
}

START_TEST(test_fork_child_background_scavenger)
{
	alarm(50);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		static char conf[] = "GOMALLOC_CONF=scavenge_delay_ms:200,cache_idle_ms:200";
		size_t n = 0;
		while (environ[n])
			n++;
		char **env = calloc(n + 2, sizeof *env);
		size_t k = 0;
		for (size_t i = 0; i < n; i++)
			if (strncmp(environ[i], "GOMALLOC_CONF=", 14) != 0)
				env[k++] = environ[i];
		env[k++] = conf;
		env[k] = NULL;
		char *argv[] = { (char *)"test_fork", (char *)"--background-scavenger", NULL };
		execve(self_exe, argv, env);
		_exit(127);
	}
	int st = wait_child(pid, 40);
	check_child_status(st, "background scavenger in a forked child");
	alarm(0);
}
END_TEST

static Suite *fork_suite(void)
{
	Suite *s = suite_create("fork");
	add_case(s, "runs_on_gomalloc", test_runs_on_gomalloc, 10);
	add_case(s, "fork_while_threads_hammer", test_fork_while_threads_hammer, 60);
	add_case(s, "fork_with_stdio_threads", test_fork_with_stdio_threads, 60);
	add_case(s, "fork_in_signal_handler", test_fork_in_signal_handler, 60);
	add_case(s, "fork_child_scavenge_and_stats", test_fork_child_scavenge_and_stats, 60);
	add_case(s, "fork_child_background_scavenger", test_fork_child_background_scavenger, 60);
	return s;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--background-scavenger") == 0)
		return background_scavenger_main();
	struct rlimit nocore = { 0, 0 };
	setrlimit(RLIMIT_CORE, &nocore);
	SRunner *sr = srunner_create(fork_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
