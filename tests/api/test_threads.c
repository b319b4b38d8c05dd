/*
 * test_threads.c -- threads and gomalloc (issue 3, "Threads"):
 *  - 10,000 short-lived threads, each allocating mixed sizes (some blocks
 *    freed by another thread, the rest freed locally and so left in its
 *    cache) then exiting, leave RSS and the heap flat: a thread's cached
 *    memory is returned when it exits;
 *  - allocation inside pthread key destructors works, also after gomalloc's
 *    own thread-exit destructor ran, and leaks no thread cache;
 *  - producer/consumer pairs (one thread allocates, the other frees) for
 *    many rounds: no leak, RSS bounded;
 *  - the scavenger thread blocks the program's signals, and a process
 *    whose main thread called pthread_exit still ends with its last
 *    thread (the scavenger does not keep it alive).
 * (C++ thread_local destructors that allocate: test_cxx.cc.)
 *
 * Built linked (tests/api/test_threads) and for LD_PRELOAD
 * (tests/api/test_threads-preload, -DGM_TEST_PRELOAD: gm_* through dlsym).
 */
#define _GNU_SOURCE
#include <check.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gomalloc.h>

#include "support.h"

#define MiB ((size_t)1 << 20)

static gm_stats_t heap_stats(void)
{
	gm_stats_t s;
	memset(&s, 0, sizeof s);
	GM_FN(gm_stats)(&s);
	return s;
}

START_TEST(test_runs_on_gomalloc)
{
	assert_runs_on_gomalloc();
}
END_TEST

/* ---- 10,000 short-lived threads ---- */

#define SHORT_THREADS 10000
#define SHORT_BATCH 4
#define SHORT_BLOCKS 100

/* Blocks a thread hands to the main thread to free (cross-thread frees). */
static void *handoff[SHORT_BATCH][SHORT_BLOCKS];

static size_t short_size(unsigned i, unsigned id)
{
	unsigned k = (i * 31 + id) % 100;
	if (k < 60)
		return (k * 7 + i) % 256 + 1;      /* small */
	if (k < 90)
		return (k * 131 + i * 17) % 8000 + 257; /* medium */
	if (k < 98)
		return 20000 + (size_t)k * 100;    /* up to the largest class */
	return 40000 + (size_t)(id % 50) * 4096; /* large: the thread's large cache */
}

static void *short_thread(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	unsigned slot = id % SHORT_BATCH;
	void *b[SHORT_BLOCKS];
	for (unsigned i = 0; i < SHORT_BLOCKS; i++) {
		size_t n = short_size(i, id);
		b[i] = (i % 5 == 0) ? calloc(1, n) : malloc(n);
		if (b[i] == NULL)
			return (void *)1;
		memset(b[i], (int)i, n < 128 ? n : 128);
	}
	/* a quarter goes to the main thread, the rest is freed here (and so
	 * sits in this thread's cache when it exits) */
	for (unsigned i = 0; i < SHORT_BLOCKS; i++) {
		if (i % 4 == 0) {
			handoff[slot][i] = b[i];
		} else {
			handoff[slot][i] = NULL;
			free(b[i]);
		}
	}
	/* keep a few cached large blocks and a fresh span around at exit */
	void *x = malloc(100000);
	void *y = malloc(48);
	free(x);
	free(y);
	return NULL;
}

static void run_short_threads(unsigned from, unsigned to)
{
	for (unsigned base = from; base < to; base += SHORT_BATCH) {
		pthread_t th[SHORT_BATCH];
		for (unsigned k = 0; k < SHORT_BATCH; k++) {
			int err = pthread_create(&th[k], NULL, short_thread,
			                         (void *)(uintptr_t)(base + k));
			ck_assert_msg(err == 0, "pthread_create #%u: %s", base + k, strerror(err));
		}
		for (unsigned k = 0; k < SHORT_BATCH; k++) {
			void *res;
			pthread_join(th[k], &res);
			ck_assert_msg(res == NULL, "thread %u: allocation failed", base + k);
		}
		for (unsigned k = 0; k < SHORT_BATCH; k++)
			for (unsigned i = 0; i < SHORT_BLOCKS; i++) {
				free(handoff[k][i]);
				handoff[k][i] = NULL;
			}
	}
}

START_TEST(test_short_lived_threads_rss_flat)
{
	alarm(55);
	run_short_threads(0, 1000);
	size_t rss1 = rss_bytes();
	gm_stats_t s1 = heap_stats();
	run_short_threads(1000, SHORT_THREADS);
	size_t rss2 = rss_bytes();
	gm_stats_t s2 = heap_stats();
	fprintf(stderr, "threads: RSS %zu KiB after 1000, %zu KiB after %d; heap_inuse "
	        "%zu -> %zu KiB, metadata %zu -> %zu KiB, caches %zu -> %zu\n",
	        rss1 >> 10, rss2 >> 10, SHORT_THREADS, s1.heap_inuse >> 10,
	        s2.heap_inuse >> 10, s1.metadata >> 10, s2.metadata >> 10, s1.nthreads,
	        s2.nthreads);
	ck_assert_msg(rss2 < rss1 + 8 * MiB,
	              "RSS grew %zu KiB from 1,000 to 10,000 threads", (rss2 - rss1) >> 10);
	ck_assert_msg(s2.nthreads <= SHORT_BATCH + 2,
	              "%zu thread caches alive after all threads exited", s2.nthreads);
	ck_assert_msg(s2.heap_inuse < s1.heap_inuse + 4 * MiB,
	              "heap in use grew %zu -> %zu", s1.heap_inuse, s2.heap_inuse);
	ck_assert_msg(s2.metadata < s1.metadata + 4 * MiB,
	              "allocator metadata grew %zu -> %zu", s1.metadata, s2.metadata);
	ck_assert_msg(s2.allocated < s1.allocated + MiB,
	              "live bytes grew %zu -> %zu: blocks leaked", s1.allocated, s2.allocated);
	alarm(0);
}
END_TEST

/* ---- allocation in pthread key destructors ---- */

static pthread_key_t dtor_key;
static atomic_int dtor_calls, dtor_failures;
static void *_Atomic dtor_out[4096];
static atomic_int dtor_nout;

/* Runs at thread exit, possibly after gomalloc's own destructor; allocates,
 * checks, frees, and re-arms itself for a second round (which then surely
 * runs after gomalloc's destructor). */
static void dtor_fn(void *v)
{
	uintptr_t round = (uintptr_t)v;
	atomic_fetch_add(&dtor_calls, 1);
	char *a = malloc(100);
	char *b = calloc(50, 20);
	char *c = malloc(70000);
	char *d = realloc(NULL, 300);
	if (a == NULL || b == NULL || c == NULL || d == NULL) {
		atomic_fetch_add(&dtor_failures, 1);
		return;
	}
	for (int i = 0; i < 1000; i++)
		if (b[i] != 0)
			atomic_fetch_add(&dtor_failures, 1);
	memset(a, 'a', 100);
	memset(c, 'c', 70000);
	d = realloc(d, 5000);
	free(a);
	free(b);
	free(c);
	/* one block outlives the thread: the main thread checks and frees it */
	memset(d, 'd', 5000);
	int k = atomic_fetch_add(&dtor_nout, 1);
	if (k < 4096)
		atomic_store(&dtor_out[k], d);
	else
		free(d);
	if (round == 1)
		pthread_setspecific(dtor_key, (void *)2);
}

static void *dtor_thread(void *arg)
{
	(void)arg;
	void *p = malloc(64); /* this thread has a cache before the key is set */
	free(p);
	pthread_setspecific(dtor_key, (void *)1);
	p = malloc(200);
	free(p);
	return NULL;
}

START_TEST(test_alloc_in_key_destructors)
{
	alarm(50);
	ck_assert_int_eq(pthread_key_create(&dtor_key, dtor_fn), 0);
	enum { ROUNDS = 25, PER = 40 };
	gm_stats_t s0 = heap_stats();
	for (int r = 0; r < ROUNDS; r++) {
		pthread_t th[PER];
		for (int i = 0; i < PER; i++)
			ck_assert_int_eq(pthread_create(&th[i], NULL, dtor_thread, NULL), 0);
		for (int i = 0; i < PER; i++)
			pthread_join(th[i], NULL);
		int n = atomic_exchange(&dtor_nout, 0);
		for (int i = 0; i < n && i < 4096; i++) {
			char *d = atomic_exchange(&dtor_out[i], NULL);
			ck_assert_ptr_nonnull(d);
			for (int j = 0; j < 5000; j += 97)
				ck_assert_msg(d[j] == 'd', "block allocated in a destructor corrupted");
			free(d);
		}
	}
	ck_assert_int_eq(atomic_load(&dtor_failures), 0);
	ck_assert_int_eq(atomic_load(&dtor_calls), ROUNDS * PER * 2);
	gm_stats_t s1 = heap_stats();
	fprintf(stderr, "key destructors: caches %zu -> %zu, heap_inuse %zu -> %zu KiB\n",
	        s0.nthreads, s1.nthreads, s0.heap_inuse >> 10, s1.heap_inuse >> 10);
	/* caches created by allocations in late destructors must not leak */
	ck_assert_msg(s1.nthreads <= s0.nthreads + 2,
	              "%zu thread caches alive after %d threads exited (was %zu)",
	              s1.nthreads, ROUNDS * PER, s0.nthreads);
	ck_assert_msg(s1.allocated < s0.allocated + MiB, "live bytes %zu -> %zu",
	              s0.allocated, s1.allocated);
	pthread_key_delete(dtor_key);
	alarm(0);
}
END_TEST

/* ---- producer/consumer pairs ---- */

#define PC_PAIRS 2
#define PC_QUEUE 1024
#define PC_ITEMS 400000

#define GM_PAD __attribute__((aligned(64)))
typedef struct pc_queue {
	void *_Atomic item[PC_QUEUE];
	_Atomic size_t head GM_PAD; /* consumer */
	_Atomic size_t tail GM_PAD; /* producer */
	atomic_int failures;
	unsigned seed;
} pc_queue_t;

static pc_queue_t pc_q[PC_PAIRS];
static atomic_int pc_phase_done;

static size_t pc_size(unsigned r)
{
	unsigned k = r % 100;
	if (k < 80)
		return (r >> 8) % 512 + 24; /* >= 24: the header and one tag byte */
	if (k < 98)
		return (r >> 8) % 16384 + 24;
	return (r >> 8) % 200000 + 32769;
}

static void *producer(void *arg)
{
	pc_queue_t *q = arg;
	unsigned seed = q->seed;
	for (size_t i = 0; i < PC_ITEMS; i++) {
		unsigned r = (unsigned)rand_r(&seed);
		size_t n = pc_size(r);
		size_t *p = malloc(n);
		if (p == NULL) {
			atomic_fetch_add(&q->failures, 1);
			return NULL;
		}
		p[0] = n;
		p[1] = i;
		memset(p + 2, (int)(i & 0xff), n - 16 < 64 ? n - 16 : 64);
		size_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
		while (t - atomic_load_explicit(&q->head, memory_order_acquire) >= PC_QUEUE)
			sched_yield();
		atomic_store_explicit(&q->item[t % PC_QUEUE], p, memory_order_relaxed);
		atomic_store_explicit(&q->tail, t + 1, memory_order_release);
	}
	return NULL;
}

static void *consumer(void *arg)
{
	pc_queue_t *q = arg;
	for (size_t i = 0; i < PC_ITEMS; i++) {
		size_t h = atomic_load_explicit(&q->head, memory_order_relaxed);
		while (atomic_load_explicit(&q->tail, memory_order_acquire) == h)
			sched_yield();
		size_t *p = atomic_load_explicit(&q->item[h % PC_QUEUE], memory_order_relaxed);
		atomic_store_explicit(&q->head, h + 1, memory_order_release);
		unsigned char *c = (unsigned char *)(p + 2);
		if (p[1] != i || malloc_usable_size(p) < p[0] || c[0] != (unsigned char)(i & 0xff))
			atomic_fetch_add(&q->failures, 1);
		free(p); /* another thread's block */
	}
	return NULL;
}

static void run_pc_round(unsigned round)
{
	pthread_t pt[PC_PAIRS], ct[PC_PAIRS];
	for (int i = 0; i < PC_PAIRS; i++) {
		memset(&pc_q[i], 0, sizeof pc_q[i]);
		pc_q[i].seed = round * 100 + (unsigned)i + 1;
		ck_assert_int_eq(pthread_create(&ct[i], NULL, consumer, &pc_q[i]), 0);
		ck_assert_int_eq(pthread_create(&pt[i], NULL, producer, &pc_q[i]), 0);
	}
	for (int i = 0; i < PC_PAIRS; i++) {
		pthread_join(pt[i], NULL);
		pthread_join(ct[i], NULL);
		ck_assert_int_eq(atomic_load(&pc_q[i].failures), 0);
	}
}

/* Long-lived pairs: the same producer and consumer threads keep going, so
 * remote frees must be recycled into the producer's spans. */
START_TEST(test_producer_consumer_bounded)
{
	alarm(55);
	gm_stats_t s0 = heap_stats();
	run_pc_round(0); /* warm-up: RSS settles */
	size_t rss1 = rss_bytes();
	gm_stats_t s1 = heap_stats();
	for (unsigned r = 1; r <= 3; r++)
		run_pc_round(r);
	size_t rss2 = rss_bytes();
	gm_stats_t s2 = heap_stats();
	fprintf(stderr, "producer/consumer: RSS %zu -> %zu KiB, heap_inuse %zu -> %zu -> "
	        "%zu KiB, live %zu -> %zu KiB\n", rss1 >> 10, rss2 >> 10,
	        s0.heap_inuse >> 10, s1.heap_inuse >> 10, s2.heap_inuse >> 10,
	        s1.allocated >> 10, s2.allocated >> 10);
	/* at most PC_PAIRS * PC_QUEUE blocks are live at once: ~2.5 MiB plus
	 * the odd large block; the heap must not keep growing with rounds */
	ck_assert_msg(rss2 < rss1 + 16 * MiB, "RSS grew %zu KiB over 3 more rounds",
	              (rss2 - rss1) >> 10);
	ck_assert_msg(s1.heap_inuse < 64 * MiB, "heap in use %zu MiB for ~3 MiB live",
	              s1.heap_inuse >> 20);
	ck_assert_msg(s2.allocated < s0.allocated + MiB, "blocks leaked: live %zu -> %zu",
	              s0.allocated, s2.allocated);
	alarm(0);
}
END_TEST

/* One long-lived producer thread, one long-lived consumer, one long round:
 * the producer's spans fill with remotely freed slots; they must be reused. */
static atomic_int long_stop;
static void *long_producer(void *arg)
{
	pc_queue_t *q = arg;
	unsigned seed = 99;
	size_t i = 0;
	while (!atomic_load_explicit(&long_stop, memory_order_relaxed)) {
		size_t n = (size_t)(rand_r(&seed) % 2000) + 16;
		size_t *p = malloc(n);
		if (p == NULL) {
			atomic_fetch_add(&q->failures, 1);
			return NULL;
		}
		p[0] = n;
		p[1] = i;
		size_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
		while (t - atomic_load_explicit(&q->head, memory_order_acquire) >= PC_QUEUE) {
			if (atomic_load_explicit(&long_stop, memory_order_relaxed)) {
				free(p);
				return NULL;
			}
			sched_yield();
		}
		atomic_store_explicit(&q->item[t % PC_QUEUE], p, memory_order_relaxed);
		atomic_store_explicit(&q->tail, t + 1, memory_order_release);
		i++;
	}
	return NULL;
}

static void *long_consumer(void *arg)
{
	pc_queue_t *q = arg;
	size_t i = 0;
	for (;;) {
		size_t h = atomic_load_explicit(&q->head, memory_order_relaxed);
		while (atomic_load_explicit(&q->tail, memory_order_acquire) == h) {
			if (atomic_load_explicit(&pc_phase_done, memory_order_acquire))
				return NULL;
			sched_yield();
		}
		size_t *p = atomic_load_explicit(&q->item[h % PC_QUEUE], memory_order_relaxed);
		atomic_store_explicit(&q->head, h + 1, memory_order_release);
		if (p[1] != i)
			atomic_fetch_add(&q->failures, 1);
		free(p);
		i++;
	}
}

START_TEST(test_producer_consumer_long_lived)
{
	alarm(55);
	pc_queue_t *q = &pc_q[0];
	memset(q, 0, sizeof *q);
	atomic_store(&long_stop, 0);
	atomic_store(&pc_phase_done, 0);
	pthread_t pt, ct;
	ck_assert_int_eq(pthread_create(&ct, NULL, long_consumer, q), 0);
	ck_assert_int_eq(pthread_create(&pt, NULL, long_producer, q), 0);
	size_t rss[6];
	gm_stats_t st[6];
	for (int k = 0; k < 6; k++) {
		usleep(700000);
		rss[k] = rss_bytes();
		st[k] = heap_stats();
	}
	atomic_store(&long_stop, 1);
	pthread_join(pt, NULL);
	atomic_store(&pc_phase_done, 1);
	pthread_join(ct, NULL);
	size_t items = atomic_load(&q->tail);
	fprintf(stderr, "long-lived pair: %zu items; RSS %zu %zu %zu %zu %zu %zu KiB; "
	        "heap_inuse %zu .. %zu KiB\n", items, rss[0] >> 10, rss[1] >> 10,
	        rss[2] >> 10, rss[3] >> 10, rss[4] >> 10, rss[5] >> 10,
	        st[0].heap_inuse >> 10, st[5].heap_inuse >> 10);
	ck_assert_int_eq(atomic_load(&q->failures), 0);
	ck_assert_msg(items > 200000, "only %zu items passed in 4 s", items);
	ck_assert_msg(rss[5] < rss[1] + 8 * MiB, "RSS keeps growing: %zu -> %zu KiB",
	              rss[1] >> 10, rss[5] >> 10);
	ck_assert_msg(st[5].heap_inuse < st[1].heap_inuse + 8 * MiB,
	              "heap keeps growing: %zu -> %zu KiB", st[1].heap_inuse >> 10,
	              st[5].heap_inuse >> 10);
	alarm(0);
}
END_TEST

/* ---- the scavenger thread runs none of the program's signal handlers ---- */

/* Its signal mask, from /proc/self/task/<tid>/status (SigBlk), or 0 when
 * no thread is named gomalloc-scav (yet). */
static unsigned long long scavenger_sigblk(void)
{
	char path[320], line[256];
	DIR *d = opendir("/proc/self/task");
	if (d == NULL)
		return 0;
	unsigned long long mask = 0;
	struct dirent *e;
	while (mask == 0 && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
		FILE *f = fopen(path, "r");
		if (f == NULL)
			continue;
		bool scav = fgets(line, sizeof line, f) != NULL &&
		            strncmp(line, "gomalloc-scav", 13) == 0;
		fclose(f);
		if (!scav)
			continue;
		snprintf(path, sizeof path, "/proc/self/task/%s/status", e->d_name);
		f = fopen(path, "r");
		while (f != NULL && fgets(line, sizeof line, f) != NULL)
			if (sscanf(line, "SigBlk: %llx", &mask) == 1)
				break;
		if (f != NULL)
			fclose(f);
	}
	closedir(d);
	return mask;
}

/* Refills start the scavenger (in a forked child too: it restarts
 * lazily); wait up to 2 s for its thread.  Its SigBlk, or 0 if none. */
static unsigned long long scavenger_start_and_find(void)
{
	static void *p[64];
	for (int i = 0; i < 64; i++)
		p[i] = malloc(1000 + 100 * i);
	for (int i = 0; i < 64; i++)
		free(p[i]);
	unsigned long long mask = 0;
	for (int i = 0; i < 200 && mask == 0; i++) {
		mask = scavenger_sigblk();
		if (mask == 0)
			usleep(10000);
	}
	return mask;
}

/* A signal sent to the process must never run the program's handler on
 * the scavenger thread: a handler that forks would take the fork handlers'
 * locks there while a program thread it interrupted held mheap.lock
 * (docs/design.md, "fork").  This checks the running thread's mask; that
 * it is blocked from the thread's first instruction (lib/scavenge.c blocks
 * every signal around pthread_create) only test_fork's
 * fork_in_signal_handler shows, and only now and then, under load. */
START_TEST(test_scavenger_blocks_signals)
{
	assert_runs_on_gomalloc();
	unsigned long long mask = scavenger_start_and_find();
	ck_assert_msg(mask != 0, "no gomalloc-scav thread found");
	const int sigs[] = { SIGALRM, SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2,
	                     SIGCHLD, SIGPROF, SIGPIPE, SIGVTALRM, SIGWINCH };
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		ck_assert_msg(mask & (1ull << (sigs[i] - 1)), "signal %d not blocked (SigBlk %llx)",
		              sigs[i], mask);
}
END_TEST

/* ---- a process whose main thread called pthread_exit ends with its last thread ---- */

/* glibc ends a process when its last thread ends, also when the main
 * thread left by pthread_exit (the thread that brings the count to 0
 * calls exit(0)).  The scavenger thread is counted too, so it must
 * leave when it is the only one: before it did, such a process never
 * ended -- asleep with every signal blocked, not even SIGTERM ended it
 * (Python's test_threading, a child forked by a thread that exits this
 * way).  Each mode runs in a forked child whose main thread calls
 * pthread_exit while a worker still runs: the worker allocates and ends
 * 100 ms later (ORDER_WORKER_LAST), never allocates and ends 300 ms
 * later (ORDER_WORKER_NO_CACHE: no thread exit nudges the scavenger; it
 * finds the main thread gone and keeps looking), or allocates and ends
 * first (ORDER_MAIN_LAST).  The child must exit with status 0 within 10 s,
 * its atexit handler run (glibc's exit(0), not a kill). */
enum exit_order { ORDER_WORKER_LAST, ORDER_WORKER_NO_CACHE, ORDER_MAIN_LAST };
static enum exit_order exit_order;
static int exit_pipe = -1;
static void *volatile exit_sink;

static void exit_marker(void)
{
	if (write(exit_pipe, "x", 1) != 1)
		_exit(5);
}

static void *exit_worker(void *arg)
{
	(void)arg;
	if (exit_order != ORDER_WORKER_NO_CACHE) {
		exit_sink = malloc(100);
		free(exit_sink);
	}
	usleep(exit_order == ORDER_MAIN_LAST ? 1000 : exit_order == ORDER_WORKER_LAST ? 100000 : 300000);
	return NULL;
}

static void run_main_thread_exit(enum exit_order order)
{
	assert_runs_on_gomalloc();
	int fds[2];
	ck_assert_int_eq(pipe(fds), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		exit_pipe = fds[1];
		exit_order = order;
		if (scavenger_start_and_find() == 0)
			_exit(3); /* no scavenger thread: the case would prove nothing */
		if (atexit(exit_marker) != 0)
			_exit(4);
		pthread_t t;
		if (pthread_create(&t, NULL, exit_worker, NULL) != 0)
			_exit(4);
		if (order == ORDER_MAIN_LAST)
			usleep(100000);
		pthread_exit(NULL);
	}
	close(fds[1]);
	int status = 0;
	pid_t got = 0;
	for (int i = 0; i < 1000 && got == 0; i++) { /* 10 s */
		got = waitpid(pid, &status, WNOHANG);
		if (got == 0)
			usleep(10000);
	}
	if (got == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		close(fds[0]);
		ck_abort_msg("the process did not end 10 s after its main thread's pthread_exit "
		             "and its last thread's end (order %d): the scavenger kept it alive",
		             (int)order);
	}
	char c = 0;
	ssize_t n = read(fds[0], &c, 1);
	close(fds[0]);
	ck_assert_msg(WIFEXITED(status), "child ended by signal %d", WTERMSIG(status));
	ck_assert_msg(WEXITSTATUS(status) != 3, "no scavenger thread started in the child");
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	ck_assert_msg(n == 1 && c == 'x', "the atexit handler did not run (exit(0) expected)");
}

START_TEST(test_main_thread_exit_worker_last)
{
	run_main_thread_exit(ORDER_WORKER_LAST);
}
END_TEST

START_TEST(test_main_thread_exit_worker_no_cache)
{
	run_main_thread_exit(ORDER_WORKER_NO_CACHE);
}
END_TEST

START_TEST(test_main_thread_exit_main_last)
{
	run_main_thread_exit(ORDER_MAIN_LAST);
}
END_TEST

static Suite *threads_suite(void)
{
	Suite *s = suite_create("threads");
	add_case(s, "runs_on_gomalloc", test_runs_on_gomalloc, 10);
	add_case(s, "short_lived_threads_rss_flat", test_short_lived_threads_rss_flat, 60);
	add_case(s, "alloc_in_key_destructors", test_alloc_in_key_destructors, 60);
	add_case(s, "producer_consumer_bounded", test_producer_consumer_bounded, 60);
	add_case(s, "producer_consumer_long_lived", test_producer_consumer_long_lived, 60);
	add_case(s, "scavenger_blocks_signals", test_scavenger_blocks_signals, 30);
	add_case(s, "main_thread_exit_worker_last", test_main_thread_exit_worker_last, 30);
	add_case(s, "main_thread_exit_worker_no_cache", test_main_thread_exit_worker_no_cache, 30);
	add_case(s, "main_thread_exit_main_last", test_main_thread_exit_main_last, 30);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(threads_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
