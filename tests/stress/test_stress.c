/*
 * test_stress.c -- many threads, long random sequences, a shadow model.
 *
 * Built twice (tests/api/local.mk): tests/stress/test_stress links
 * libgomalloc, tests/stress/test_stress-preload runs under LD_PRELOAD; the
 * first test proves malloc is gomalloc (dlsym(RTLD_DEFAULT, "gm_version")).
 *
 * test_threads: NTHREADS threads, each a seeded (deterministic per thread)
 * sequence of malloc/calloc/realloc/aligned_alloc/posix_memalign/memalign/
 * free over its own table of slots.  Every block is filled with a pattern
 * derived from (thread, serial) and verified in full before it is freed or
 * reallocated; realloc must keep the prefix.  Blocks are also handed to other
 * threads through lock-protected mailboxes, verified and freed (or adopted
 * and later reallocated) there: cross-thread frees.  At NCHECKPOINTS
 * barriers every live block of every thread and mailbox goes into one list,
 * sorted by address: no two [p, p + usable) may overlap.  At the end every
 * block is verified and freed.  Errors are recorded by the threads and
 * asserted by the test's own thread.  Meanwhile another thread calls
 * malloc_trim(0) and mallinfo2() every few milliseconds, so pages are
 * released to the OS and the heap is walked while the workers run (calloc's
 * zero check then also covers released-and-reused pages).
 *
 * test_orphans: threads allocate and exit; their blocks (in spans no thread
 * owns any more) are verified, reallocated and freed by the test's thread.
 *
 * test_thread_churn: short-lived producer threads hand their blocks to a
 * consumer thread and exit while it frees (and reallocates) them.
 *
 * test_single_thread: 1e6 operations on one thread, with the same pattern
 * checks and a sorted-interval overlap check every 1000 operations.
 *
 * Sizes: mostly 1..1024, some up to 32 KiB, a few large up to 4 MiB, and
 * 1 in 16,000 from 4 to 12 MiB (blocks the heap's huge slot keeps).
 * Runs in a few seconds on 2 cores; alarm() turns a deadlock into a failure.
 */
#define _GNU_SOURCE
#include <check.h>
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)

#define NTHREADS      8
#define SLOTS         1024
#define OPS           200000      /* per thread */
#define NCHECKPOINTS  6
#define MAILBOX_CAP   128
#define DRAIN_EVERY   32

#define ST_OPS        1000000
#define ST_SLOTS      4096
#define ST_CHECK_EVERY 1000

/* ---- deterministic random numbers (xorshift64*) ---- */

static inline uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1Dull;
}

/* mostly small, some medium, a few large */
static size_t pick_size(uint64_t *s)
{
	uint64_t r = rnd(s);
	unsigned k = (unsigned)(r % 1000);
	r >>= 10;
	if (k < 900)
		return 1 + r % 1024;
	if (k < 997)
		return 1025 + r % (32 * KiB - 1024);
	if (k == 999 && (r & 15) == 0) /* 1 in 16,000: over 4 MiB (the heap's huge slot) */
		return 4 * MiB + 1 + (r >> 4) % (8 * MiB);
	return 32 * KiB + 1 + r % (4 * MiB - 32 * KiB);
}

/* ---- patterns ---- */

static inline uint64_t pat_word(uint64_t tag, size_t j)
{
	uint64_t x = tag * 0x9E3779B97F4A7C15ull + j * 0xD6E8FEB86659FD93ull;
	return x ^ (x >> 31);
}

static inline unsigned char pat_byte(uint64_t tag, size_t i)
{
	return (unsigned char)(pat_word(tag, i >> 3) >> ((i & 7) * 8));
}

/* Write the pattern of tag over bytes [from, to) of p (p 8-aligned). */
static void fill_range(unsigned char *p, size_t from, size_t to, uint64_t tag)
{
	size_t i = from;
	while (i < to && (i & 7))
		p[i] = pat_byte(tag, i), i++;
	for (; i + 8 <= to; i += 8)
		*(uint64_t *)(p + i) = pat_word(tag, i >> 3);
	for (; i < to; i++)
		p[i] = pat_byte(tag, i);
}

/* Offset of the first byte of [0, n) not matching tag's pattern, or n. */
static size_t check_range(const unsigned char *p, size_t n, uint64_t tag)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8)
		if (*(const uint64_t *)(p + i) != pat_word(tag, i >> 3))
			break;
	for (; i < n; i++)
		if (p[i] != pat_byte(tag, i))
			return i;
	return n;
}

/* ---- errors, recorded by any thread ---- */

static atomic_int nerrors;
static pthread_mutex_t err_lock = PTHREAD_MUTEX_INITIALIZER;
static char first_error[512];

__attribute__((format(printf, 1, 2))) static void error(const char *fmt, ...)
{
	if (atomic_fetch_add(&nerrors, 1) == 0) {
		pthread_mutex_lock(&err_lock);
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(first_error, sizeof first_error, fmt, ap);
		va_end(ap);
		pthread_mutex_unlock(&err_lock);
	}
}

/* ---- blocks ---- */

typedef struct block {
	unsigned char *p;
	size_t n;
	uint64_t tag;   /* thread << 40 | serial */
} block_t;

static int verify(const block_t *b, const char *when)
{
	size_t bad = check_range(b->p, b->n, b->tag);
	if (bad != b->n) {
		error("%s: block %p (%zu bytes, thread %u serial %llu): byte %zu is 0x%02x, "
		      "want 0x%02x", when, (void *)b->p, b->n, (unsigned)(b->tag >> 40),
		      (unsigned long long)(b->tag & ((1ull << 40) - 1)), bad, b->p[bad],
		      pat_byte(b->tag, bad));
		return 0;
	}
	return 1;
}

/* Allocate a block of a random kind into *b; 0 if the allocator failed. */
static int alloc_block(block_t *b, uint64_t *rs, uint64_t tag)
{
	size_t n = pick_size(rs);
	unsigned how = (unsigned)(rnd(rs) % 100);
	size_t align = 0;
	unsigned char *p;
	if (how < 60) {
		p = malloc(n);
	} else if (how < 80) {
		p = (how & 1) ? calloc(n, 1) : calloc(1, n);
		if (p != NULL) {
			size_t i = 0;
			while (i < n && p[i] == 0)
				i++;
			if (i != n)
				error("calloc(%zu) = %p: byte %zu is 0x%02x", n, (void *)p, i, p[i]);
		}
	} else if (how < 92) {
		align = (size_t)16 << (rnd(rs) % 9);           /* 16 .. 4096 */
		p = aligned_alloc(align, n);
	} else if (how < 97) {
		align = (size_t)8 << (rnd(rs) % 11);           /* 8 .. 8192 */
		void *q = NULL;
		if (posix_memalign(&q, align, n) != 0)
			q = NULL;
		p = q;
	} else {
		align = (size_t)1 << (rnd(rs) % 17);           /* 1 .. 64 KiB */
		p = memalign(align, n);
	}
	if (p == NULL) {
		error("allocation of %zu bytes (align %zu) failed", n, align);
		return 0;
	}
	uintptr_t a = (uintptr_t)p;
	if ((align && a % align) || (n > 8 && (a & 15)) || (a & 7))
		error("block %p of %zu bytes: misaligned (align %zu)", (void *)p, n, align);
	size_t u = malloc_usable_size(p);
	if (u < n)
		error("block %p of %zu bytes: usable size %zu", (void *)p, n, u);
	b->p = p;
	b->n = n;
	b->tag = tag;
	fill_range(p, 0, n, tag);
	return 1;
}

/* Verify, realloc to a random size, check the kept prefix, fill the rest. */
static void realloc_block(block_t *b, uint64_t *rs)
{
	verify(b, "before realloc");
	size_t m = pick_size(rs);
	unsigned char *q = realloc(b->p, m);
	if (q == NULL) {
		error("realloc(%p, %zu) failed", (void *)b->p, m);
		return;
	}
	if (m > 8 && ((uintptr_t)q & 15))
		error("realloc(.., %zu) = %p: misaligned", m, (void *)q);
	if (malloc_usable_size(q) < m)
		error("realloc(.., %zu) = %p: usable %zu", m, (void *)q, malloc_usable_size(q));
	size_t keep = b->n < m ? b->n : m;
	block_t kept = { q, keep, b->tag };
	verify(&kept, "prefix after realloc");
	if (m > keep)
		fill_range(q, keep, m, b->tag);
	b->p = q;
	b->n = m;
}

static void free_block(block_t *b, const char *when)
{
	verify(b, when);
	free(b->p);
	b->p = NULL;
}

/* ---- overlap check over a list of blocks ---- */

typedef struct interval {
	uintptr_t lo, hi;
} interval_t;

static int cmp_interval(const void *a, const void *b)
{
	uintptr_t x = ((const interval_t *)a)->lo, y = ((const interval_t *)b)->lo;
	return x < y ? -1 : x > y;
}

/* Sort v[0..n) and report any two intervals that overlap. */
static void check_overlap(interval_t *v, size_t n, const char *when)
{
	qsort(v, n, sizeof *v, cmp_interval);
	for (size_t i = 1; i < n; i++)
		if (v[i].lo < v[i - 1].hi)
			error("%s: blocks [%#lx, %#lx) and [%#lx, %#lx) overlap", when,
			      (unsigned long)v[i - 1].lo, (unsigned long)v[i - 1].hi,
			      (unsigned long)v[i].lo, (unsigned long)v[i].hi);
}

static interval_t to_interval(const block_t *b)
{
	interval_t iv = { (uintptr_t)b->p, (uintptr_t)b->p + malloc_usable_size(b->p) };
	return iv;
}

/* ---- the multi-threaded test ---- */

typedef struct mailbox {
	pthread_mutex_t lock;
	block_t item[MAILBOX_CAP];
	int n;
} mailbox_t;

typedef struct worker {
	unsigned id;
	pthread_t thread;
	block_t slot[SLOTS];
	uint64_t serial;
	uint64_t rs;
	size_t nsent, nreceived, nadopted, nrealloc, nfree;
} worker_t;

static worker_t *workers;
static mailbox_t mailbox[NTHREADS];
static pthread_barrier_t barrier;
static interval_t *all_intervals;   /* NTHREADS * (SLOTS + MAILBOX_CAP) */

static void drain_mailbox(worker_t *w)
{
	mailbox_t *mb = &mailbox[w->id];
	block_t got[MAILBOX_CAP];
	pthread_mutex_lock(&mb->lock);
	int n = mb->n;
	memcpy(got, mb->item, (size_t)n * sizeof got[0]);
	mb->n = 0;
	pthread_mutex_unlock(&mb->lock);
	for (int i = 0; i < n; i++) {
		w->nreceived++;
		size_t s = (size_t)(rnd(&w->rs) % SLOTS);
		if ((rnd(&w->rs) & 1) && w->slot[s].p == NULL && verify(&got[i], "adopting")) {
			w->slot[s] = got[i];  /* later freed or reallocated here */
			w->nadopted++;
		} else {
			free_block(&got[i], "cross-thread free");
			w->nfree++;
		}
	}
}

/* Hand *b to another thread; false if its mailbox is full. */
static int send_block(worker_t *w, block_t *b)
{
	unsigned to = (unsigned)((w->id + 1 + rnd(&w->rs) % (NTHREADS - 1)) % NTHREADS);
	mailbox_t *mb = &mailbox[to];
	int ok = 0;
	pthread_mutex_lock(&mb->lock);
	if (mb->n < MAILBOX_CAP) {
		mb->item[mb->n++] = *b;
		ok = 1;
	}
	pthread_mutex_unlock(&mb->lock);
	if (ok) {
		b->p = NULL;
		w->nsent++;
	}
	return ok;
}

/* Every thread at a barrier: thread 0 checks all live blocks for overlap. */
static void checkpoint(worker_t *w, int final)
{
	pthread_barrier_wait(&barrier);
	if (w->id == 0) {
		size_t n = 0;
		for (unsigned t = 0; t < NTHREADS; t++) {
			for (size_t s = 0; s < SLOTS; s++)
				if (workers[t].slot[s].p)
					all_intervals[n++] = to_interval(&workers[t].slot[s]);
			for (int i = 0; i < mailbox[t].n; i++)
				all_intervals[n++] = to_interval(&mailbox[t].item[i]);
		}
		check_overlap(all_intervals, n, final ? "final" : "checkpoint");
	}
	pthread_barrier_wait(&barrier);
}

static void *worker_main(void *arg)
{
	worker_t *w = arg;
	size_t per_checkpoint = OPS / NCHECKPOINTS;
	for (size_t op = 1; op <= OPS; op++) {
		block_t *b = &w->slot[rnd(&w->rs) % SLOTS];
		if (b->p == NULL) {
			alloc_block(b, &w->rs, (uint64_t)w->id << 40 | ++w->serial);
		} else {
			unsigned what = (unsigned)(rnd(&w->rs) % 100);
			if (what < 40) {
				free_block(b, "free");
				w->nfree++;
			} else if (what < 70) {
				realloc_block(b, &w->rs);
				w->nrealloc++;
			} else if (what < 90) {
				if (verify(b, "before sending") && !send_block(w, b)) {
					free_block(b, "free (mailbox full)");
					w->nfree++;
				}
			} else {
				verify(b, "spot check");
			}
		}
		if (op % DRAIN_EVERY == 0)
			drain_mailbox(w);
		if (op % per_checkpoint == 0)
			checkpoint(w, 0);
	}
	/* everyone stopped sending: collect, verify and free everything */
	pthread_barrier_wait(&barrier);
	drain_mailbox(w);
	checkpoint(w, 1);
	for (size_t s = 0; s < SLOTS; s++)
		if (w->slot[s].p)
			free_block(&w->slot[s], "final free");
	return NULL;
}

/* ---- blocks that outlive the thread that allocated them ---- */

#define ORPHAN_ROUNDS   12
#define ORPHAN_THREADS  4
#define ORPHAN_BLOCKS   1500

typedef struct orphan_job {
	unsigned id;
	block_t *out;   /* ORPHAN_BLOCKS blocks, filled by the thread */
} orphan_job_t;

static void *orphan_main(void *arg)
{
	orphan_job_t *j = arg;
	uint64_t rs = 0xABCDEFull + j->id * 0x10001ull;
	uint64_t serial = 0;
	for (size_t i = 0; i < ORPHAN_BLOCKS; i++) {
		alloc_block(&j->out[i], &rs, (uint64_t)(100 + j->id) << 40 | ++serial);
		/* free some locally so the spans are partly empty when we exit */
		if (j->out[i].p && rnd(&rs) % 4 == 0)
			free_block(&j->out[i], "local free before exit");
	}
	return NULL;
}

/* Threads allocate and exit; their blocks are verified, reallocated and
 * freed afterwards by this thread, into spans that no thread owns now. */
START_TEST(test_orphans)
{
	alarm(100);
	block_t *blk = calloc((size_t)ORPHAN_THREADS * ORPHAN_BLOCKS, sizeof *blk);
	ck_assert_ptr_nonnull(blk);
	uint64_t rs = 77;
	size_t n_freed = 0, n_realloc = 0;
	for (int round = 0; round < ORPHAN_ROUNDS; round++) {
		pthread_t th[ORPHAN_THREADS];
		orphan_job_t job[ORPHAN_THREADS];
		for (unsigned t = 0; t < ORPHAN_THREADS; t++) {
			job[t].id = (unsigned)round * ORPHAN_THREADS + t;
			job[t].out = blk + (size_t)t * ORPHAN_BLOCKS;
			ck_assert_int_eq(pthread_create(&th[t], NULL, orphan_main, &job[t]), 0);
		}
		for (unsigned t = 0; t < ORPHAN_THREADS; t++)
			pthread_join(th[t], NULL);
		size_t nb = (size_t)ORPHAN_THREADS * ORPHAN_BLOCKS, n = 0;
		interval_t *iv = calloc(nb, sizeof *iv);
		for (size_t i = 0; i < nb; i++)
			if (blk[i].p)
				iv[n++] = to_interval(&blk[i]);
		check_overlap(iv, n, "orphans");
		free(iv);
		for (size_t i = 0; i < nb; i++) {
			if (!blk[i].p)
				continue;
			if (rnd(&rs) % 3 == 0) {
				realloc_block(&blk[i], &rs);
				n_realloc++;
			}
			free_block(&blk[i], "free of an orphan");
			n_freed++;
		}
	}
	alarm(0);
	ck_assert_msg(atomic_load(&nerrors) == 0, "%d errors; first: %s",
	              atomic_load(&nerrors), first_error);
	ck_assert_uint_gt(n_freed, ORPHAN_ROUNDS * ORPHAN_BLOCKS);
	ck_assert_uint_gt(n_realloc, 1000);
	free(blk);
}
END_TEST

/* Thread churn: short-lived producers hand every block to one consumer
 * thread and exit at once, so the consumer's frees (remote frees into the
 * producers' spans) race with the producers' thread-exit flushes. */

#define CHURN_THREADS   24     /* in all, CHURN_LIVE at a time */
#define CHURN_LIVE      3
#define CHURN_BLOCKS    3000   /* per producer */
#define CHURN_QCAP      4096

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	block_t item[CHURN_QCAP];
	size_t head, n;
	int done;
} churnq = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, { { 0 } }, 0, 0, 0 };

static void churn_push(block_t *b)
{
	pthread_mutex_lock(&churnq.lock);
	while (churnq.n == CHURN_QCAP)
		pthread_cond_wait(&churnq.cond, &churnq.lock);
	churnq.item[(churnq.head + churnq.n++) % CHURN_QCAP] = *b;
	pthread_cond_broadcast(&churnq.cond);
	pthread_mutex_unlock(&churnq.lock);
}

static void *churn_producer(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	uint64_t rs = 0x5151ull * (id + 3), serial = 0;
	for (size_t i = 0; i < CHURN_BLOCKS; i++) {
		block_t b;
		if (!alloc_block(&b, &rs, (uint64_t)(200 + id) << 40 | ++serial))
			continue;
		if (rnd(&rs) % 5 == 0)
			free_block(&b, "producer free");
		else
			churn_push(&b);
	}
	return NULL;   /* exits while the consumer still frees our blocks */
}

static size_t churn_consumed;

static void *churn_consumer(void *arg)
{
	(void)arg;
	uint64_t rs = 99;
	for (;;) {
		pthread_mutex_lock(&churnq.lock);
		while (churnq.n == 0 && !churnq.done)
			pthread_cond_wait(&churnq.cond, &churnq.lock);
		if (churnq.n == 0) {
			pthread_mutex_unlock(&churnq.lock);
			return NULL;
		}
		block_t b = churnq.item[churnq.head];
		churnq.head = (churnq.head + 1) % CHURN_QCAP;
		churnq.n--;
		pthread_cond_broadcast(&churnq.cond);
		pthread_mutex_unlock(&churnq.lock);
		if (rnd(&rs) % 4 == 0)
			realloc_block(&b, &rs);
		free_block(&b, "consumer free");
		churn_consumed++;
	}
}

START_TEST(test_thread_churn)
{
	alarm(100);
	pthread_t consumer, prod[CHURN_THREADS];
	ck_assert_int_eq(pthread_create(&consumer, NULL, churn_consumer, NULL), 0);
	for (unsigned t = 0; t < CHURN_THREADS; t++) {
		if (t >= CHURN_LIVE)
			pthread_join(prod[t - CHURN_LIVE], NULL);
		ck_assert_int_eq(pthread_create(&prod[t], NULL, churn_producer,
		                                (void *)(uintptr_t)t), 0);
	}
	for (unsigned t = CHURN_THREADS - CHURN_LIVE; t < CHURN_THREADS; t++)
		pthread_join(prod[t], NULL);
	pthread_mutex_lock(&churnq.lock);
	churnq.done = 1;
	pthread_cond_broadcast(&churnq.cond);
	pthread_mutex_unlock(&churnq.lock);
	pthread_join(consumer, NULL);
	alarm(0);
	ck_assert_msg(atomic_load(&nerrors) == 0, "%d errors; first: %s",
	              atomic_load(&nerrors), first_error);
	ck_assert_uint_gt(churn_consumed, CHURN_THREADS * CHURN_BLOCKS / 2);
}
END_TEST

/* Runs beside the workers: malloc_trim(0) releases free pages to the OS
 * and mallinfo2() walks the heap while the workers allocate and free. */
static atomic_int trimmer_stop;
static size_t ntrims;

static void *trimmer_main(void *arg)
{
	(void)arg;
	struct timespec ts = { 0, 3 * 1000 * 1000 };
	while (!atomic_load(&trimmer_stop)) {
		malloc_trim(0);
		struct mallinfo2 mi = mallinfo2();
		if (mi.arena == 0)
			error("mallinfo2().arena is 0 during the run");
		ntrims++;
		nanosleep(&ts, NULL);
	}
	return NULL;
}

/* test_huge_threads: HUGE_THREADS threads malloc and calloc blocks of
 * 4-9 MiB (the heap's huge slot: one block for the process, taken and
 * given back with atomic exchanges; calloc of such blocks clears with
 * memset or MADV_DONTNEED, malloc.c gm_zero_large), write a tag every
 * 64 KiB, hand every third block to the next thread through a one-slot
 * mailbox, and verify each block's tags before freeing it -- a block handed
 * to two owners at once loses its tags.  calloc'd blocks must read zero
 * where sampled.  malloc_trim(0) runs beside them (it empties the slot). */
#define HUGE_THREADS 4
#define HUGE_ITERS 1500
#define HUGE_STEP (64 * KiB)
static pthread_mutex_t huge_lock = PTHREAD_MUTEX_INITIALIZER;
static void *huge_box[HUGE_THREADS];
static size_t huge_box_size[HUGE_THREADS];

static void huge_fill(uint64_t *p, size_t size, uint64_t tag)
{
	for (size_t off = 0; off + 8 <= size; off += HUGE_STEP)
		p[off / 8] = tag ^ off;
	p[(size - 8) / 8] = ~tag;
}

static void huge_check_free(uint64_t *p, size_t size, uint64_t tag)
{
	for (size_t off = 0; off + 8 <= size; off += HUGE_STEP)
		if (p[off / 8] != (tag ^ off)) {
			error("huge block %p (%zu bytes): tag lost at offset %zu", (void *)p, size, off);
			break;
		}
	if (p[(size - 8) / 8] != ~tag)
		error("huge block %p (%zu bytes): last word lost", (void *)p, size);
	free(p);
}

static void *huge_main(void *arg)
{
	unsigned me = (unsigned)(uintptr_t)arg, next = (me + 1) % HUGE_THREADS;
	static const size_t sizes[] = { 5 * MiB, 5 * MiB - 100 * KiB, 6 * MiB + 3, 9 * MiB };
	uint64_t rs = 0x9E3779B97F4A7C15ull * (me + 1);
	for (unsigned it = 0; it < HUGE_ITERS && atomic_load(&nerrors) == 0; it++) {
		uint64_t r = rnd(&rs);
		size_t size = sizes[r % 4];
		bool zeroed = (r >> 8) % 2 == 0;
		uint64_t *p = zeroed ? calloc(1, size) : malloc(size);
		if (p == NULL) {
			error("huge: %s(%zu) returned NULL", zeroed ? "calloc" : "malloc", size);
			break;
		}
		if (zeroed)
			for (size_t off = 0; off + 8 <= size; off += HUGE_STEP)
				if (p[off / 8] != 0) {
					error("huge: calloc(%zu) = %p not zero at offset %zu", size,
					      (void *)p, off);
					break;
				}
		uint64_t tag = ((uint64_t)me << 56) ^ ((uint64_t)it << 24) ^ (uintptr_t)p;
		huge_fill(p, size, tag);
		void *got = NULL;
		size_t got_size = 0;
		pthread_mutex_lock(&huge_lock);
		if (huge_box[me] != NULL) {
			got = huge_box[me];
			got_size = huge_box_size[me];
			huge_box[me] = NULL;
		}
		bool handed = false;
		if ((r >> 16) % 3 == 0 && huge_box[next] == NULL) {
			huge_box[next] = p;
			huge_box_size[next] = size;
			handed = true;
		}
		pthread_mutex_unlock(&huge_lock);
		if (got != NULL) {
			uint64_t *g = got;
			huge_check_free(g, got_size, g[0]); /* the tag is word 0 (offset 0) */
		}
		if (!handed)
			huge_check_free(p, size, tag);
	}
	return NULL;
}

START_TEST(test_huge_threads)
{
	alarm(100);
	pthread_t t[HUGE_THREADS], trimmer;
	atomic_store(&trimmer_stop, 0);
	ck_assert_int_eq(pthread_create(&trimmer, NULL, trimmer_main, NULL), 0);
	for (unsigned i = 0; i < HUGE_THREADS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, huge_main, (void *)(uintptr_t)i), 0);
	for (unsigned i = 0; i < HUGE_THREADS; i++)
		pthread_join(t[i], NULL);
	atomic_store(&trimmer_stop, 1);
	pthread_join(trimmer, NULL);
	for (unsigned i = 0; i < HUGE_THREADS; i++)
		if (huge_box[i] != NULL) {
			uint64_t *g = huge_box[i];
			huge_check_free(g, huge_box_size[i], g[0]);
			huge_box[i] = NULL;
		}
	alarm(0);
	ck_assert_msg(atomic_load(&nerrors) == 0, "%d errors; first: %s",
	              atomic_load(&nerrors), first_error);
}
END_TEST

typedef const char *(*version_fn)(void);

START_TEST(test_runs_on_gomalloc)
{
	version_fn v = (version_fn)dlsym(RTLD_DEFAULT, "gm_version");
	ck_assert_msg(v != NULL, "gm_version not found: malloc is not gomalloc");
	ck_assert_msg(strncmp(v(), "gomalloc ", 9) == 0, "gm_version() = \"%s\"", v());
	int (*kind_of)(const void *) = (int (*)(const void *))dlsym(RTLD_DEFAULT, "gm_kind_of");
	ck_assert_ptr_nonnull(kind_of);
	void *p = malloc(10);
	ck_assert_int_ne(kind_of(p), -1);
	free(p);
}
END_TEST

START_TEST(test_threads)
{
	alarm(100);  /* a deadlock fails the test */
	workers = calloc(NTHREADS, sizeof *workers);
	all_intervals = calloc(NTHREADS * (SLOTS + MAILBOX_CAP), sizeof *all_intervals);
	ck_assert_ptr_nonnull(workers);
	ck_assert_ptr_nonnull(all_intervals);
	pthread_barrier_init(&barrier, NULL, NTHREADS);
	for (unsigned t = 0; t < NTHREADS; t++) {
		pthread_mutex_init(&mailbox[t].lock, NULL);
		mailbox[t].n = 0;
		workers[t].id = t;
		workers[t].rs = 0x1234567ull * (t + 1) + 0x9E3779B97F4A7C15ull;
	}
	pthread_t trimmer;
	atomic_store(&trimmer_stop, 0);
	ck_assert_int_eq(pthread_create(&trimmer, NULL, trimmer_main, NULL), 0);
	for (unsigned t = 0; t < NTHREADS; t++)
		ck_assert_int_eq(pthread_create(&workers[t].thread, NULL, worker_main, &workers[t]), 0);
	for (unsigned t = 0; t < NTHREADS; t++)
		pthread_join(workers[t].thread, NULL);
	atomic_store(&trimmer_stop, 1);
	pthread_join(trimmer, NULL);
	alarm(0);
	ck_assert_msg(atomic_load(&nerrors) == 0, "%d errors; first: %s",
	              atomic_load(&nerrors), first_error);
	size_t sent = 0, received = 0, adopted = 0, reallocs = 0;
	for (unsigned t = 0; t < NTHREADS; t++) {
		sent += workers[t].nsent;
		received += workers[t].nreceived;
		adopted += workers[t].nadopted;
		reallocs += workers[t].nrealloc;
		for (size_t s = 0; s < SLOTS; s++)
			ck_assert_ptr_null(workers[t].slot[s].p);
		ck_assert_int_eq(mailbox[t].n, 0);
	}
	/* the run exercised what it claims to */
	ck_assert_uint_eq(sent, received);
	ck_assert_uint_gt(sent, 1000);
	ck_assert_uint_gt(adopted, 100);
	ck_assert_uint_gt(reallocs, 1000);
	ck_assert_uint_gt(ntrims, 0);
	pthread_barrier_destroy(&barrier);
	free(all_intervals);
	free(workers);
}
END_TEST

START_TEST(test_single_thread)
{
	alarm(100);
	block_t *slot = calloc(ST_SLOTS, sizeof *slot);
	interval_t *iv = calloc(ST_SLOTS, sizeof *iv);
	ck_assert_ptr_nonnull(slot);
	ck_assert_ptr_nonnull(iv);
	uint64_t rs = 0xC0FFEE123ull, serial = 0;
	size_t checks = 0;
	for (size_t op = 1; op <= ST_OPS; op++) {
		block_t *b = &slot[rnd(&rs) % ST_SLOTS];
		if (b->p == NULL) {
			alloc_block(b, &rs, ++serial);
		} else if (rnd(&rs) % 3 == 0) {
			realloc_block(b, &rs);
		} else {
			free_block(b, "free");
		}
		if (op % ST_CHECK_EVERY == 0) {
			size_t n = 0;
			for (size_t s = 0; s < ST_SLOTS; s++)
				if (slot[s].p)
					iv[n++] = to_interval(&slot[s]);
			check_overlap(iv, n, "single-thread checkpoint");
			checks++;
			if (atomic_load(&nerrors))
				break;
		}
	}
	for (size_t s = 0; s < ST_SLOTS; s++)
		if (slot[s].p)
			free_block(&slot[s], "final free");
	alarm(0);
	ck_assert_msg(atomic_load(&nerrors) == 0, "%d errors; first: %s",
	              atomic_load(&nerrors), first_error);
	ck_assert_uint_eq(checks, ST_OPS / ST_CHECK_EVERY);
	free(iv);
	free(slot);
}
END_TEST

static Suite *stress_suite(void)
{
	Suite *s = suite_create("stress");
	TCase *tc = tcase_create("stress");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_runs_on_gomalloc);
	tcase_add_test(tc, test_threads);
	tcase_add_test(tc, test_orphans);
	tcase_add_test(tc, test_thread_churn);
	tcase_add_test(tc, test_single_thread);
	tcase_add_test(tc, test_huge_threads);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(stress_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
