/*
 * test_rss.c -- memory goes back to the OS: RSS follows the live heap
 * (issue 4, "Scavenger and memory return").
 *
 * Each case re-executes this program (/proc/self/exe --child CASE) with its
 * own GOMALLOC_CONF, because options are read once at initialisation, and
 * so that RSS is measured in a fresh process.  The child:
 *   1. measures its baseline RSS (/proc/self/statm) after gomalloc is up,
 *   2. allocates a live set of 32 MiB (small and large blocks, patterned),
 *   3. allocates 1 GiB more -- 512 MiB in small blocks of 16..4096 bytes,
 *      512 MiB in large blocks of 64 KiB..8 MiB -- touches every page, and
 *      frees all of it,
 *   4. then, by case:
 *        background: sleeps, polling RSS every 100 ms for up to 5 s; RSS
 *                    must fall to baseline + live * 1.1 + 8 MiB;
 *        inline:     the same, while making a few malloc/free calls every
 *                    20 ms (inline mode scavenges from allocation paths);
 *        off:        RSS must stay high for 3 s (so this test can fail),
 *                    then malloc_trim(0) must bring it down at once;
 *   5. checks that the live set still holds its pattern (the scavenger
 *      must never release pages in use).
 * idle-owner / idle-owner-off: a thread allocates 256 MiB of small blocks,
 * main frees them all, the thread stays alive and idle; its spans must go
 * back (or, with cache_idle_ms:0, stay), and it must allocate correctly
 * afterwards (idle_owner_main).
 * exited-owner: a thread allocates 128 MiB of small blocks and exits (its
 * spans go to the central lists, all full), main frees them all and goes
 * on allocating a little; the emptied spans must go back to the heap and
 * RSS fall to baseline + 8 MiB within 8 s (exited_owner_main).
 * idle-current / idle-current-off: 32 threads each allocate ~7 KiB of every
 * small size class (one current span per class), free it all themselves,
 * and stay alive and idle; their current spans must go back (or stay)
 * (idle_current_main).
 * rlimit-as: run under RLIMIT_AS of 160 MiB (`ulimit -v`), set before exec;
 * the address space once gomalloc is up must be at most 48 MiB, and 64 MiB
 * of blocks and two threads must work (rlimit_as_main).
 * growth / growth-kept: blocks A (48 MiB) and B (32 MiB) touched, A freed,
 * then C (64 MiB) touched: A's free pages cannot hold C, so the heap takes
 * new pages, and must release A's at once (no delay: scavenge_delay_ms is
 * a minute), RSS peaking near B + C; with retain_percent:300 (goal three
 * times in use) it must keep them, so the case can fail (growth_main).
 * huge-idle / huge-trim: a touched 64 MiB block, freed, waits in the heap's
 * huge slot; it must go back when idle (cache_idle_ms) or at malloc_trim
 * (huge_main).
 * The live size is the sum of malloc_usable_size of the live blocks.
 *
 * Built twice: linked with libgomalloc (test_rss) and without it
 * (test_rss-preload, run under LD_PRELOAD); the child proves it runs on
 * gomalloc with dlsym(RTLD_DEFAULT, "gm_version").
 */
#define _GNU_SOURCE
#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gomalloc.h>

#include "support.h"

#define MiB ((size_t)1 << 20)
#define BURST_SMALL (512 * MiB)
#define BURST_LARGE (512 * MiB)
#define LIVE_SMALL (16 * MiB)
#define LIVE_LARGE (16 * MiB)

/* ------------------------------------------------------------------ */
/* helpers shared by the child cases                                  */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void)
{
	return xorshift64(&rng_state);
}

static size_t rnd_range(size_t lo, size_t hi)
{
	return lo + (size_t)(rng() % (uint64_t)(hi - lo + 1));
}

/* Bookkeeping arrays come straight from mmap so they are not part of the
 * heap being measured. */
static void *bk_alloc(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

typedef struct blockset {
	void **p;
	size_t *size;
	size_t n, cap;
	size_t requested, usable;
} blockset_t;

static int bs_init(blockset_t *b, size_t cap)
{
	memset(b, 0, sizeof *b);
	b->p = bk_alloc(cap * sizeof(void *));
	b->size = bk_alloc(cap * sizeof(size_t));
	b->cap = cap;
	return b->p != NULL && b->size != NULL;
}

static void bs_done(blockset_t *b)
{
	munmap(b->p, b->cap * sizeof(void *));
	munmap(b->size, b->cap * sizeof(size_t));
}

/* Write one byte per 4 KiB (large) or the whole block (small). */
static void touch(void *p, size_t size, unsigned char v)
{
	if (size <= 4096) {
		memset(p, v, size);
		return;
	}
	unsigned char *c = p;
	for (size_t off = 0; off < size; off += 4096)
		c[off] = v;
	c[size - 1] = v;
}

/* Fill with small [lo,hi] blocks up to `total` requested bytes. */
static int bs_fill(blockset_t *b, size_t total, size_t lo, size_t hi,
                   unsigned char v)
{
	size_t got = 0;
	while (got < total) {
		if (b->n == b->cap) {
			printf("FAIL-REASON: bookkeeping full\n");
			return 0;
		}
		size_t sz = rnd_range(lo, hi);
		void *p = malloc(sz);
		if (p == NULL) {
			printf("FAIL-REASON: malloc(%zu) returned NULL\n", sz);
			return 0;
		}
		touch(p, sz, v);
		b->p[b->n] = p;
		b->size[b->n] = sz;
		b->n++;
		got += sz;
		b->requested += sz;
		b->usable += malloc_usable_size(p);
	}
	return 1;
}

static void bs_free_all(blockset_t *b)
{
	/* odd indices first, then even: frees land all over the spans */
	for (size_t i = 1; i < b->n; i += 2)
		free(b->p[i]);
	for (size_t i = 0; i < b->n; i += 2)
		free(b->p[i]);
	b->n = 0;
}

static unsigned char pat(size_t i)
{
	return (unsigned char)(0x41 + i % 61);
}

static void live_fill(blockset_t *b)
{
	for (size_t i = 0; i < b->n; i++)
		memset(b->p[i], pat(i), b->size[i]);
}

static int live_check(blockset_t *b, const char *what)
{
	for (size_t i = 0; i < b->n; i++) {
		const unsigned char *c = b->p[i];
		for (size_t k = 0; k < b->size[i]; k++) {
			if (c[k] != pat(i)) {
				printf("FAIL-REASON: live %s block %zu (%p, %zu bytes) "
				       "corrupted at offset %zu: 0x%02x, want 0x%02x\n",
				       what, i, b->p[i], b->size[i], k, c[k], pat(i));
				return 0;
			}
		}
	}
	return 1;
}

typedef int (*gm_stats_fn_t)(gm_stats_t *);

static void print_stats(const char *when)
{
	gm_stats_fn_t st = (gm_stats_fn_t)dlsym(RTLD_DEFAULT, "gm_stats");
	if (st == NULL)
		return;
	gm_stats_t s;
	memset(&s, 0, sizeof s);
	st(&s);
	printf("stats %s: mapped %.1f inuse %.1f allocated %.1f free_retained %.1f "
	       "released %.1f metadata %.1f scavenged_total %.1f MiB\n",
	       when, mib(s.mapped), mib(s.heap_inuse), mib(s.allocated),
	       mib(s.free_retained), mib(s.released), mib(s.metadata),
	       mib(s.scavenged_total));
}

/* A few allocation slow-path calls: large blocks of sizes that do not fit
 * each other's cache slot, so each call reaches the page heap. */
static void light_activity(void)
{
	static unsigned k;
	for (int i = 0; i < 4; i++) {
		size_t sz = (size_t)(40 + (k++ % 24) * 8) * 1024;
		void *p = malloc(sz);
		if (p != NULL) {
			((volatile char *)p)[0] = 1;
			free(p);
		}
	}
}

/* ------------------------------------------------------------------ */
/* an idle thread's spans (idle-owner, idle-owner-off)                */

#define OWNER_BYTES (256 * MiB)

static pthread_mutex_t ow_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ow_cv = PTHREAD_COND_INITIALIZER;
static int ow_phase; /* 1: blocks ready; 2: allocate again; 3: done again; 4: exit */
static blockset_t ow_blocks;
static int ow_ok = 1;

static void ow_wait_for(int phase)
{
	pthread_mutex_lock(&ow_mu);
	while (ow_phase < phase)
		pthread_cond_wait(&ow_cv, &ow_mu);
	pthread_mutex_unlock(&ow_mu);
}

static void ow_set(int phase)
{
	pthread_mutex_lock(&ow_mu);
	ow_phase = phase;
	pthread_cond_broadcast(&ow_cv);
	pthread_mutex_unlock(&ow_mu);
}

/* The producer: allocates OWNER_BYTES of small blocks that main frees (so
 * every span it owns ends up freed by another thread), then sleeps on a
 * condition variable -- an idle thread that keeps its cache.  Woken, it
 * allocates and checks a second round from the same cache (the spans the
 * scavenger took must not be used by it any more). */
static void *ow_producer(void *arg)
{
	(void)arg;
	if (!bs_fill(&ow_blocks, OWNER_BYTES, 16, 1024, 0x5a))
		ow_ok = 0;
	ow_set(1);
	ow_wait_for(2);
	blockset_t again;
	if (!bs_init(&again, 1 << 16) || !bs_fill(&again, 8 * MiB, 16, 1024, 0))
		ow_ok = 0;
	live_fill(&again);
	if (!live_check(&again, "second-round"))
		ow_ok = 0;
	bs_free_all(&again);
	bs_done(&again);
	ow_set(3);
	ow_wait_for(4);
	return NULL;
}

/* Poll RSS every 100 ms for up to `wait` s after t1, printing it once a
 * second; stop at the first reading <= base + target unless `full`.
 * Returns the last reading; *low gets the lowest, *t the seconds waited. */
static size_t rss_poll(size_t base, size_t target, double t1, double wait, int full,
                       size_t *low, double *t)
{
	double last_print = -1;
	size_t r = rss_bytes();
	*low = r;
	*t = 0;
	while (*t < wait && (full || r > base + target)) {
		usleep(100000);
		r = rss_bytes();
		if (r < *low)
			*low = r;
		*t = now_s() - t1;
		if (*t - last_print >= 1.0) {
			printf("  t=%.1f s: RSS %.1f MiB over baseline\n", *t,
			       mib(r > base ? r - base : 0));
			last_print = *t;
		}
	}
	return r;
}

/* idle-owner: RSS must fall to baseline + 8 MiB within 8 s after main freed
 * the producer's blocks while the producer stays idle (cache_idle_ms 2 s,
 * then the spans age like any free page); idle-owner-off (cache_idle_ms:0)
 * must stay above half the burst for 4 s, so the case can fail. */
static int idle_owner_main(const char *mode)
{
	int off = strcmp(mode, "idle-owner-off") == 0;
	if (!bs_init(&ow_blocks, 1 << 22)) {
		printf("FAIL-REASON: mmap for bookkeeping failed\n");
		return 1;
	}
	size_t base = rss_bytes();
	pthread_t th;
	if (pthread_create(&th, NULL, ow_producer, NULL) != 0) {
		printf("FAIL-REASON: pthread_create failed\n");
		return 1;
	}
	ow_wait_for(1);
	size_t peak = rss_bytes();
	size_t nblocks = ow_blocks.n;
	double t0 = now_s();
	bs_free_all(&ow_blocks); /* every free is a remote free */
	double t1 = now_s();
	bs_done(&ow_blocks); /* our bookkeeping is not heap */
	printf("mode %s: %zu blocks (%.1f MiB) allocated by an idle thread, freed "
	       "by main in %.2f s; peak %.1f MiB over baseline\n", mode, nblocks,
	       mib(OWNER_BYTES), t1 - t0, mib(peak - base));
	double wait = off ? 4.0 : 8.0, t;
	size_t low, r = rss_poll(base, 8 * MiB, t1, wait, off, &low, &t);
	printf("RSS %.1f MiB over baseline %.2f s after the free\n",
	       mib(r > base ? r - base : 0), t);
	print_stats("idle");
	int ok = 1;
	if (!off && r > base + 8 * MiB) {
		printf("FAIL-REASON: RSS still %.1f MiB over baseline %.0f s after the "
		       "idle thread's blocks were freed\n", mib(r - base), wait);
		ok = 0;
	}
	if (off && low < base + OWNER_BYTES / 2) {
		printf("FAIL-REASON: with cache_idle_ms:0 RSS fell to %.1f MiB over "
		       "baseline: the idle thread's spans were taken anyway\n",
		       mib(low - base));
		ok = 0;
	}
	ow_set(2);
	ow_wait_for(3);
	ow_set(4);
	pthread_join(th, NULL);
	if (!ow_ok) {
		printf("FAIL-REASON: the producer's second round failed\n");
		ok = 0;
	}
	return ok ? 0 : 1;
}

/* exited-owner: the producer's spans are held by mcentral once it exits;
 * main's frees are then frees into spans no thread cache owns, which only
 * a sweep turns back into free pages.  Before 2026-11-28 nothing swept them
 * until the heap had to grow (or malloc_trim): RSS stayed at the burst. */
#define EXITED_BYTES (128 * MiB)

static void *ex_producer(void *arg)
{
	blockset_t *b = arg;
	if (!bs_fill(b, EXITED_BYTES, 16, 1024, 0x3c))
		ow_ok = 0;
	return NULL; /* exit: the thread cache gives its spans to mcentral */
}

static int exited_owner_main(void)
{
	blockset_t blocks;
	if (!bs_init(&blocks, 1 << 22)) {
		printf("FAIL-REASON: mmap for bookkeeping failed\n");
		return 1;
	}
	size_t base = rss_bytes();
	pthread_t th;
	if (pthread_create(&th, NULL, ex_producer, &blocks) != 0) {
		printf("FAIL-REASON: pthread_create failed\n");
		return 1;
	}
	pthread_join(th, NULL);
	if (!ow_ok) {
		printf("FAIL-REASON: the producer's allocations failed\n");
		return 1;
	}
	size_t peak = rss_bytes();
	bs_free_all(&blocks); /* every free is into a span mcentral holds */
	bs_done(&blocks);
	double t1 = now_s(), t = 0, last_print = -1;
	printf("exited-owner: %.1f MiB of a finished thread's blocks freed by main; "
	       "peak %.1f MiB over baseline\n", mib(EXITED_BYTES), mib(peak - base));
	size_t r = rss_bytes();
	/* the program goes on: a few allocations that reach the page heap */
	while (t < 8.0 && r > base + 8 * MiB) {
		light_activity();
		usleep(100000);
		r = rss_bytes();
		t = now_s() - t1;
		if (t - last_print >= 1.0) {
			printf("  t=%.1f s: RSS %.1f MiB over baseline\n", t,
			       mib(r > base ? r - base : 0));
			last_print = t;
		}
	}
	print_stats("exited");
	if (r > base + 8 * MiB) {
		printf("FAIL-REASON: RSS still %.1f MiB over baseline %.0f s after the "
		       "finished thread's blocks were freed\n", mib(r - base), t);
		return 1;
	}
	printf("RSS %.1f MiB over baseline %.2f s after the free\n",
	       mib(r > base ? r - base : 0), t);
	return 0;
}

/* ------------------------------------------------------------------ */
/* the child                                                          */

/* idle-current: every thread keeps one current span per class it used,
 * each with no live object.  RSS must fall below baseline + a third of
 * what the threads pinned within 8 s (cache_idle_ms 2 s, then the pages
 * age like any free page); with cache_idle_ms:0 it must stay above three
 * quarters of it for 4 s, so the case can fail. */
#define CUR_THREADS 32
static pthread_barrier_t cur_bar;
static _Atomic int cur_ok = 1;

static void *cur_thread(void *arg)
{
	(void)arg;
	static __thread void *own[2048];
	size_t n = 0;
	/* the largest class first: the class used last (kept, alloc_spc) is
	 * a small one */
	for (size_t size = 32768; size >= 8 && n < 2000;) {
		size_t bytes = 0, cls = 0;
		do {
			void *p = malloc(size);
			if (p == NULL) {
				cur_ok = 0;
				break;
			}
			memset(p, 0x3c, size);
			own[n++] = p;
			bytes += size;
			cls = malloc_usable_size(p);
		} while (bytes + size <= 7 * 1024 && n < 2000);
		if (cls == 0)
			break;
		/* the next smaller class: sizes below this class's object
		 * size minus one may still land in it, step down until not */
		size_t next = size - 1;
		while (next >= 8) {
			void *q = malloc(next);
			size_t u = malloc_usable_size(q);
			free(q);
			if (u < cls)
				break;
			next--;
		}
		size = next;
	}
	for (size_t i = 0; i < n; i++)
		free(own[i]);
	pthread_barrier_wait(&cur_bar); /* allocated and freed */
	pthread_barrier_wait(&cur_bar); /* main measured: allocate again */
	for (size_t i = 0; i < n; i++) {
		unsigned char *p = malloc(64);
		memset(p, (int)i, 64);
		own[i] = p;
	}
	for (size_t i = 0; i < n; i++) {
		if (((unsigned char *)own[i])[63] != (unsigned char)i)
			cur_ok = 0;
		free(own[i]);
	}
	return NULL;
}

static int idle_current_main(const char *mode)
{
	int off = strcmp(mode, "idle-current-off") == 0;
	size_t base = rss_bytes();
	pthread_t th[CUR_THREADS];
	pthread_barrier_init(&cur_bar, NULL, CUR_THREADS + 1);
	for (int i = 0; i < CUR_THREADS; i++)
		if (pthread_create(&th[i], NULL, cur_thread, NULL) != 0) {
			printf("FAIL-REASON: pthread_create failed\n");
			return 1;
		}
	pthread_barrier_wait(&cur_bar);
	double t1 = now_s();
	size_t pinned = rss_bytes() - base;
	printf("mode %s: %d idle threads pin %.1f MiB over baseline in current spans\n",
	       mode, CUR_THREADS, mib(pinned));
	double wait = off ? 4.0 : 8.0, t;
	size_t low, r = rss_poll(base, pinned / 3, t1, wait, off, &low, &t);
	printf("RSS %.1f MiB over baseline after %.2f s\n", mib(r > base ? r - base : 0), t);
	print_stats("idle-current");
	int ok = 1;
	if (pinned < 8 * MiB) {
		printf("FAIL-REASON: the threads pinned only %.1f MiB: the case tests nothing\n",
		       mib(pinned));
		ok = 0;
	}
	if (!off && r > base + pinned / 3) {
		printf("FAIL-REASON: RSS still %.1f MiB over baseline %.0f s after the "
		       "threads went idle (pinned %.1f)\n", mib(r - base), wait, mib(pinned));
		ok = 0;
	}
	if (off && low < base + pinned * 3 / 4) {
		printf("FAIL-REASON: with cache_idle_ms:0 RSS fell to %.1f MiB over "
		       "baseline: the idle threads' spans were taken anyway\n", mib(low - base));
		ok = 0;
	}
	pthread_barrier_wait(&cur_bar);
	for (int i = 0; i < CUR_THREADS; i++)
		pthread_join(th[i], NULL);
	if (!cur_ok) {
		printf("FAIL-REASON: a thread's allocation failed or was corrupted\n");
		ok = 0;
	}
	return ok ? 0 : 1;
}

/* malloc(n) with every page written (v), or NULL after a FAIL-REASON line
 * naming the block `what`. */
static unsigned char *malloc_touched(size_t n, unsigned char v, const char *what)
{
	unsigned char *p = malloc(n);
	if (p == NULL) {
		printf("FAIL-REASON: malloc of %s failed\n", what);
		return NULL;
	}
	touch(p, n, v);
	return p;
}

/* growth: RSS over baseline after C must be below (B + C) * 1.1 + 8 MiB
 * (A's 48 MiB released when C paged in new memory); growth-kept: above
 * B + C + 40 MiB (A still resident).  B and C keep their pattern. */
static int growth_main(const char *mode)
{
	int kept = strcmp(mode, "growth-kept") == 0;
	size_t base = rss_bytes();
	size_t na = 48 * MiB, nb = 32 * MiB, nc = 64 * MiB;
	unsigned char *a = malloc(na), *b = malloc(nb);
	if (a == NULL || b == NULL) {
		printf("FAIL-REASON: malloc of A or B failed\n");
		return 1;
	}
	touch(a, na, 0x11);
	touch(b, nb, 0x22);
	size_t before = rss_bytes();
	free(a);
	unsigned char *c = malloc_touched(nc, 0x33, "C");
	if (c == NULL)
		return 1;
	size_t r = rss_bytes() - base;
	size_t lo = nb + nc + 40 * MiB;
	size_t hi = (nb + nc) + (nb + nc) / 10 + 8 * MiB;
	printf("mode %s: A+B %.1f MiB over baseline; after free(A) and C touched "
	       "%.1f MiB (released at growth: want %s %.1f MiB)\n",
	       mode, mib(before - base), mib(r), kept ? ">=" : "<=", mib(kept ? lo : hi));
	print_stats("after C");
	int ok = 1;
	if (!kept && r > hi) {
		printf("FAIL-REASON: A's free pages were not released when C took new "
		       "memory: RSS %.1f MiB over baseline, allowed %.1f MiB\n", mib(r), mib(hi));
		ok = 0;
	}
	if (kept && r < lo) {
		printf("FAIL-REASON: with retain_percent:300 A's pages must stay "
		       "resident: RSS %.1f MiB over baseline, want >= %.1f MiB\n", mib(r), mib(lo));
		ok = 0;
	}
	for (size_t off = 0; off < nb; off += 4096)
		if (b[off] != 0x22) {
			printf("FAIL-REASON: B lost its pattern at offset %zu\n", off);
			return 1;
		}
	for (size_t off = 0; off < nc; off += 4096)
		if (c[off] != 0x33) {
			printf("FAIL-REASON: C lost its pattern at offset %zu\n", off);
			return 1;
		}
	free(b);
	free(c);
	return ok ? 0 : 1;
}

/* huge-idle: a touched 64 MiB block freed waits in the heap's huge slot
 * (blocks over 4 MiB); unused for cache_idle_ms it must go back to the
 * heap and then to the OS: RSS under baseline + 16 MiB within 8 s.
 * huge-trim (scavenger:off): RSS stays up for 0.5 s, then malloc_trim(0)
 * must release the slot's block at once. */
static int huge_main(const char *mode)
{
	int trim = strcmp(mode, "huge-trim") == 0;
	size_t base = rss_bytes(), n = 64 * MiB;
	unsigned char *h = malloc_touched(n, 0x44, "64 MiB");
	if (h == NULL)
		return 1;
	size_t up = rss_bytes() - base;
	free(h);
	size_t want = 16 * MiB;
	if (trim) {
		usleep(500000);
		size_t still = rss_bytes() - base;
		int r = malloc_trim(0);
		size_t after = rss_bytes() - base;
		printf("mode %s: touched %.1f MiB, freed: %.1f MiB 0.5 s later, %.1f MiB after "
		       "malloc_trim(0) = %d\n", mode, mib(up), mib(still), mib(after), r);
		if (still < 48 * MiB) {
			printf("FAIL-REASON: the block was released with the scavenger off "
			       "(%.1f MiB over baseline): this case cannot see malloc_trim\n", mib(still));
			return 1;
		}
		if (after > want) {
			printf("FAIL-REASON: malloc_trim(0) left %.1f MiB over baseline (want <= "
			       "%.1f)\n", mib(after), mib(want));
			return 1;
		}
		return 0;
	}
	for (int i = 0; i < 80; i++) {
		usleep(100000);
		size_t r = rss_bytes() - base;
		if (r <= want) {
			printf("mode %s: touched %.1f MiB, freed: %.1f MiB over baseline after "
			       "%.1f s\n", mode, mib(up), mib(r), (i + 1) / 10.0);
			return 0;
		}
	}
	printf("FAIL-REASON: the freed 64 MiB block stayed resident: %.1f MiB over "
	       "baseline after 8 s (want <= %.1f)\n", mib(rss_bytes() - base), mib(want));
	print_stats("after 8 s");
	return 1;
}

/* rlimit-as: the parent set RLIMIT_AS (RLIMIT_AS_BYTES) before exec.  The
 * process's address space right after gomalloc is up must stay far below
 * it, and 64 MiB of small and large blocks, and two threads (8 MiB of stack
 * each), must work under it.  History: before 2026-11-28 04:00 the page
 * allocator's summaries alone reserved 585 MiB (every allocation failed
 * under `ulimit -v` below about 700 MB); until 2026-11-28 13:30 the first
 * malloc mapped a whole 64 MiB arena beside a 32 MiB arena map (this
 * child started at 108 MiB; now 29, 114 at its end). */
#define RLIMIT_AS_BYTES ((size_t)160 << 20)
#define RLIMIT_AS_BASE_MAX ((size_t)48 << 20)

static void *rlimit_thread(void *arg)
{
	uintptr_t bad = 0;
	for (int r = 0; r < 200; r++) {
		void *b[100];
		for (int i = 0; i < 100; i++) {
			size_t n = 16 + (size_t)(i * 97 + r) % 3000;
			b[i] = malloc(n);
			if (b[i] == NULL)
				return (void *)1;
			memset(b[i], i, n);
		}
		for (int i = 0; i < 100; i++) {
			bad |= ((unsigned char *)b[i])[0] != (unsigned char)i;
			free(b[i]);
		}
	}
	return (void *)bad;
}

static int rlimit_as_main(void)
{
	size_t vm = vm_bytes();
	void *first = malloc(100);
	if (first == NULL) {
		printf("FAIL-REASON: malloc(100) failed under RLIMIT_AS of %zu MiB "
		       "(address space %zu MiB)\n", RLIMIT_AS_BYTES >> 20, vm >> 20);
		return 1;
	}
	free(first);
	if (vm == 0 || vm > RLIMIT_AS_BASE_MAX) {
		printf("FAIL-REASON: address space %zu MiB once gomalloc is up (want <= %zu MiB)\n",
		       vm >> 20, RLIMIT_AS_BASE_MAX >> 20);
		return 1;
	}
	enum { NS = 48000, NL = 24 };
	static unsigned char *s[NS], *l[NL];
	static size_t ssz[NS], lsz[NL];
	for (size_t i = 0; i < NS; i++) { /* ~48 MiB: 16..2064 bytes */
		ssz[i] = 16 + i * 7919 % 2049;
		s[i] = malloc(ssz[i]);
		if (s[i] == NULL) {
			printf("FAIL-REASON: malloc(%zu) failed after %zu blocks, address space %zu MiB\n",
			       ssz[i], i, vm_bytes() >> 20);
			return 1;
		}
		memset(s[i], (int)(i & 0xff), ssz[i]);
	}
	for (size_t i = 0; i < NL; i++) { /* ~16 MiB: 64 KiB .. 1.2 MiB */
		lsz[i] = (64 << 10) + i * (48 << 10);
		l[i] = malloc(lsz[i]);
		if (l[i] == NULL) {
			printf("FAIL-REASON: malloc(%zu) failed, address space %zu MiB\n", lsz[i],
			       vm_bytes() >> 20);
			return 1;
		}
		memset(l[i], (int)(i + 1), lsz[i]);
	}
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		if (pthread_create(&t[i], NULL, rlimit_thread, NULL) != 0) {
			printf("FAIL-REASON: pthread_create failed under the limit\n");
			return 1;
		}
	int bad = 0;
	for (int i = 0; i < 2; i++) {
		void *r;
		pthread_join(t[i], &r);
		bad |= r != NULL;
	}
	for (size_t i = 0; i < NS; i++)
		bad |= s[i][0] != (unsigned char)(i & 0xff) || s[i][ssz[i] - 1] != (unsigned char)(i & 0xff);
	for (size_t i = 0; i < NL; i++)
		bad |= l[i][0] != (unsigned char)(i + 1) || l[i][lsz[i] - 1] != (unsigned char)(i + 1);
	for (size_t i = 0; i < NS; i++)
		free(s[i]);
	for (size_t i = 0; i < NL; i++)
		free(l[i]);
	if (bad) {
		printf("FAIL-REASON: a block lost its contents or a thread's malloc failed\n");
		return 1;
	}
	printf("address space: %zu MiB at start, %zu MiB at the end (limit %zu MiB)\n", vm >> 20,
	       vm_bytes() >> 20, RLIMIT_AS_BYTES >> 20);
	return 0;
}

static int child_main(const char *mode)
{
	alarm(40); /* a hang fails the case */
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (dlsym(RTLD_DEFAULT, "gm_version") == NULL) {
		printf("FAIL-REASON: gm_version not found: malloc is not gomalloc\n");
		return 1;
	}
	free(malloc(1)); /* gomalloc initialised, scavenger started */
	if (strncmp(mode, "idle-owner", 10) == 0)
		return idle_owner_main(mode);
	if (strncmp(mode, "idle-current", 12) == 0)
		return idle_current_main(mode);
	if (strcmp(mode, "exited-owner") == 0)
		return exited_owner_main();
	if (strncmp(mode, "growth", 6) == 0)
		return growth_main(mode);
	if (strncmp(mode, "huge", 4) == 0)
		return huge_main(mode);
	if (strcmp(mode, "rlimit-as") == 0)
		return rlimit_as_main();

	blockset_t live_s, live_l, burst_s, burst_l;
	if (!bs_init(&live_s, 1 << 16) || !bs_init(&live_l, 1 << 12) ||
	    !bs_init(&burst_s, 1 << 20) || !bs_init(&burst_l, 1 << 12)) {
		printf("FAIL-REASON: mmap for bookkeeping failed\n");
		return 1;
	}
	size_t base = rss_bytes();

	double t0 = now_s();
	if (!bs_fill(&live_s, LIVE_SMALL, 16, 4096, 1) ||
	    !bs_fill(&live_l, LIVE_LARGE, 64 << 10, 8 << 20, 1))
		return 1;
	live_fill(&live_s);
	live_fill(&live_l);
	size_t live = live_s.usable + live_l.usable;

	if (!bs_fill(&burst_s, BURST_SMALL, 16, 4096, 0xa5) ||
	    !bs_fill(&burst_l, BURST_LARGE, 64 << 10, 8 << 20, 0xa5))
		return 1;
	size_t peak = rss_bytes();
	size_t nbs = burst_s.n, nbl = burst_l.n;
	double t1 = now_s();
	bs_free_all(&burst_s);
	bs_free_all(&burst_l);
	bs_done(&burst_s); /* our own bookkeeping (4 MiB touched) is not heap */
	bs_done(&burst_l);
	double t2 = now_s();
	size_t after_free = rss_bytes();
	size_t limit = live + live / 10 + 8 * MiB;

	printf("mode %s: baseline %.1f MiB, live %.1f MiB (%zu+%zu blocks), "
	       "burst %zu small + %zu large blocks, peak %.1f MiB over baseline "
	       "(alloc %.2f s, free %.2f s); right after free %.1f; "
	       "target <= %.1f MiB over baseline\n",
	       mode, mib(base), mib(live), live_s.n, live_l.n, nbs, nbl, mib(peak - base), t1 - t0, t2 - t1,
	       mib(after_free - base), mib(limit));
	print_stats("after free");

	int ok = 1;
	if (strcmp(mode, "background") == 0 || strcmp(mode, "inline") == 0) {
		int inl = strcmp(mode, "inline") == 0;
		size_t r = rss_bytes();
		double t = 0, last_print = -1;
		while (r > base + limit && t < 5.0) {
			if (inl) {
				for (int i = 0; i < 5; i++) {
					light_activity();
					usleep(20000);
				}
			} else {
				usleep(100000);
			}
			r = rss_bytes();
			t = now_s() - t2;
			if (t - last_print >= 1.0) {
				printf("  t=%.1f s: RSS %.1f MiB over baseline\n", t,
				       mib(r > base ? r - base : 0));
				last_print = t;
			}
		}
		printf("RSS %.1f MiB over baseline %.2f s after the free\n",
		       mib(r > base ? r - base : 0), t);
		if (r > base + limit) {
			print_stats("at timeout");
			printf("FAIL-REASON: RSS still %.1f MiB over baseline 5 s after "
			       "freeing 1 GiB; live %.1f MiB, allowed %.1f MiB\n",
			       mib(r - base), mib(live), mib(limit));
			ok = 0;
		}
	} else if (strcmp(mode, "off") == 0) {
		size_t low = after_free;
		double t = 0;
		while (t < 3.0) {
			usleep(100000);
			size_t r = rss_bytes();
			if (r < low)
				low = r;
			t = now_s() - t2;
		}
		printf("scavenger off: lowest RSS in 3 s: %.1f MiB over baseline\n",
		       mib(low > base ? low - base : 0));
		if (low < base + live + 512 * MiB) {
			printf("FAIL-REASON: with scavenger:off RSS fell to %.1f MiB over "
			       "baseline (expected > %.1f): memory was released anyway\n",
			       mib(low - base), mib(live + 512 * MiB));
			ok = 0;
		}
		double ta = now_s();
		int tr = malloc_trim(0);
		double tb = now_s();
		size_t r = rss_bytes();
		printf("malloc_trim(0) = %d in %.3f s: RSS %.1f MiB over baseline\n", tr,
		       tb - ta, mib(r > base ? r - base : 0));
		print_stats("after trim");
		if (r > base + limit) {
			printf("FAIL-REASON: after malloc_trim(0) RSS is %.1f MiB over "
			       "baseline; live %.1f MiB, allowed %.1f MiB\n",
			       mib(r - base), mib(live), mib(limit));
			ok = 0;
		}
		if (tr != 1) {
			printf("FAIL-REASON: malloc_trim(0) returned %d, want 1 (memory "
			       "was released)\n", tr);
			ok = 0;
		}
	} else {
		printf("FAIL-REASON: unknown mode %s\n", mode);
		return 1;
	}
	if (!live_check(&live_s, "small") || !live_check(&live_l, "large"))
		ok = 0;
	return ok ? 0 : 1;
}

/* ------------------------------------------------------------------ */
/* the parent: Check cases that run the child                         */

START_TEST(runs_under_rlimit_as)
{
	run_child_as_limit = RLIMIT_AS_BYTES; /* this forked case only */
	expect_child_ok(NULL, "rlimit-as");
}
END_TEST

START_TEST(rss_falls_background)
{
	/* default options: background scavenger */
	expect_child_ok(NULL, "background");
}
END_TEST

START_TEST(rss_falls_inline)
{
	expect_child_ok("scavenger:inline", "inline");
}
END_TEST

START_TEST(rss_stays_when_off_until_trim)
{
	expect_child_ok("scavenger:off", "off");
}
END_TEST

START_TEST(idle_thread_spans_return)
{
	expect_child_ok(NULL, "idle-owner");
}
END_TEST

START_TEST(idle_thread_spans_kept_when_off)
{
	expect_child_ok("cache_idle_ms:0", "idle-owner-off");
}
END_TEST

START_TEST(exited_thread_spans_return)
{
	expect_child_ok(NULL, "exited-owner");
}
END_TEST

START_TEST(idle_thread_current_spans_return)
{
	expect_child_ok(NULL, "idle-current");
}
END_TEST

START_TEST(idle_thread_current_spans_kept_when_off)
{
	expect_child_ok("cache_idle_ms:0", "idle-current-off");
}
END_TEST

START_TEST(free_pages_released_at_growth)
{
	expect_child_ok("scavenge_delay_ms:60000", "growth");
}
END_TEST

START_TEST(free_pages_kept_at_growth_under_goal)
{
	expect_child_ok("scavenge_delay_ms:60000,retain_percent:300", "growth-kept");
}
END_TEST

START_TEST(huge_block_returns_when_idle)
{
	expect_child_ok(NULL, "huge-idle");
}
END_TEST

START_TEST(huge_block_returns_at_trim)
{
	expect_child_ok("scavenger:off", "huge-trim");
}
END_TEST

int main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "--child") == 0)
		return child_main(argv[2]);
	Suite *s = suite_create("rss");
	TCase *tc = tcase_create("rss");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, rss_falls_background);
	tcase_add_test(tc, rss_falls_inline);
	tcase_add_test(tc, rss_stays_when_off_until_trim);
	tcase_add_test(tc, idle_thread_spans_return);
	tcase_add_test(tc, idle_thread_spans_kept_when_off);
	tcase_add_test(tc, exited_thread_spans_return);
	tcase_add_test(tc, idle_thread_current_spans_return);
	tcase_add_test(tc, idle_thread_current_spans_kept_when_off);
	tcase_add_test(tc, free_pages_released_at_growth);
	tcase_add_test(tc, free_pages_kept_at_growth_under_goal);
	tcase_add_test(tc, huge_block_returns_when_idle);
	tcase_add_test(tc, huge_block_returns_at_trim);
	tcase_add_test(tc, runs_under_rlimit_as);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
