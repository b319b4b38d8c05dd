/*
 * test_mcache.c -- the thread cache alone (lib/mcache.c over the real
 * mcentral/mheap): span ownership, owner and cross-thread frees folded in
 * by sweep, thread-exit flush, and the idle flush driven by a fake clock.
 * The process's own malloc stays glibc's; the heap is gm_alloc/gm_free.
 */
#define _GNU_SOURCE
#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "malloc_impl.h"
#include "mcache.h"
#include "options.h"
#include "stats.h"

#define MS 1000000ull

START_TEST(owner_alloc_free_reuses_slot)
{
	void *a = gm_alloc(64, 0);
	mcache_t *c = mcache_tls;
	ck_assert(c->live);
	mspan_t *s = arena_span_of((uintptr_t)a);
	ck_assert_ptr_eq(atomic_load(&s->owner), c);
	ck_assert_ptr_eq(c->alloc[spanclass_make(sizeclass_of(64), 0)], s);
	/* a noscan request of the same size comes from a different span */
	void *n = gm_alloc(64, 1);
	ck_assert_ptr_ne(arena_span_of((uintptr_t)n), s);
	/* a span is swept once enough of it was freed (1 + nelems/8): free a
	 * and 40 neighbours, then refilling past the span's end sweeps the
	 * slots back into use, a among them */
	void *nb[40];
	for (int i = 0; i < 40; i++)
		nb[i] = gm_alloc(64, 0);
	gm_free(a);
	for (int i = 0; i < 40; i++)
		gm_free(nb[i]);
	void *p[4096];
	size_t k = 0;
	while (k < 4096) {
		p[k] = gm_alloc(64, 0);
		if (p[k++] == a)
			break;
	}
	ck_assert_msg(p[k - 1] == a, "freed slot never reused");
	ck_assert_uint_le(k, 128); /* from the same span, not a new one */
	for (size_t i = 0; i < k; i++)
		gm_free(p[i]);
	gm_free(n);
}
END_TEST

/* The free map (mheap.h): a slot freed in the word the allocation takes
 * from is handed out again by the next mallocs, in address order; slots
 * freed in a word it passed wait until the span is exhausted and the
 * refill sweeps it again (enough of it free: 1 + nelems/8) and starts at
 * word 0 again (mcache_take_next).  64 B: 128 objects, 2 words; 17 frees
 * each time.  In a thread of its own, so the span is its first. */
static void *reuse_words(void *arg)
{
	(void)arg;
	static void *p[128];
	for (int i = 0; i < 128; i++)
		p[i] = gm_alloc(64, 0);
	mspan_t *s = arena_span_of((uintptr_t)p[0]);
	for (int i = 0; i < 128; i++) {
		if (arena_span_of((uintptr_t)p[i]) != s || p[i] != (void *)(s->base + (size_t)i * 64))
			return "not one fresh span in slot order";
	}
	for (int i = 80; i >= 64; i--)
		gm_free(p[i]);
	for (int i = 64; i <= 80; i++) {
		void *q = gm_alloc(64, 0);
		if (q != p[i])
			return "current word's freed slots not handed out at once, in order";
	}
	for (int i = 0; i <= 16; i++)
		gm_free(p[i]);
	if (s->cache_word != 1)
		return "allocation not in word 1";
	for (int i = 0; i <= 16; i++) {
		void *q = gm_alloc(64, 0);
		if (q != p[i])
			return "re-swept span did not hand out word 0's freed slots in order";
	}
	if (s->alloc_count != 128 - 17)
		return "sweep count";
	for (int i = 0; i < 128; i++)
		gm_free(p[i]);
	return NULL;
}

/* Run fn in a thread of its own (a fresh cache: its spans are its first)
 * and fail with the message it returns, if any. */
static void run_in_new_thread(void *(*fn)(void *))
{
	pthread_t t;
	void *err;
	ck_assert_int_eq(pthread_create(&t, NULL, fn, NULL), 0);
	ck_assert_int_eq(pthread_join(t, &err), 0);
	ck_assert_msg(err == NULL, "%s", (const char *)err);
}

START_TEST(free_map_reuse_and_resweep)
{
	run_in_new_thread(reuse_words);
}
END_TEST

/* The free's first guess (mcache_free_fast) trusts that c->alloc[] holds
 * only spans c owns, and must not take a block of another thread's
 * current span of the same class for its own. */
static void *guess_other(void *arg)
{
	void **out = arg;
	out[0] = gm_alloc(64, 0);     /* this thread's current 64 B span */
	return NULL;
}

START_TEST(free_guess_only_own_current_span)
{
	void *mine = gm_alloc(64, 0);
	mcache_t *c = mcache_tls;
	for (size_t size = 8; size <= 32768; size *= 2)
		gm_free(gm_alloc(size, size & 16 ? 1 : 0));
	for (unsigned spc = 0; spc < GM_NUM_SPAN_CLASSES; spc++)
		if (c->alloc[spc] != &mcache_empty_span)
			ck_assert_ptr_eq(atomic_load(&c->alloc[spc]->owner), c);
	void *theirs[1];
	pthread_t t;
	pthread_create(&t, NULL, guess_other, theirs);
	pthread_join(t, NULL);
	mspan_t *ts = arena_span_of((uintptr_t)theirs[0]);
	ck_assert_ptr_ne(ts, arena_span_of((uintptr_t)mine));
	gm_free(gm_alloc(64, 0)); /* alloc_spc: the 64 B class */
	mspan_t *cur = c->alloc[c->alloc_spc];
	unsigned nf = mspan_nfree_local(cur);
	/* a remote free: the guess (our 64 B span) must miss, and the block
	 * must go to its own span's remote bits, not our free bits */
	gm_free(theirs[0]);
	ck_assert_uint_eq(mspan_nfree_local(cur), nf);
	ck_assert(mspan_has_remote(ts));
	gm_free(mine);
}
END_TEST

/* A class of few objects per span: 5376 B, 3 in 16 KiB (Go's span; the
 * classes up to 4 KiB hold at least 8 since 2026-11-27). */
#define FEW_SIZE 5376

START_TEST(pair_reuses_slot_small_spans)
{
	/* a freed block is the next malloc's (the free map's bit, set by the
	 * free, taken by the malloc) */
	ck_assert_uint_eq(sizeclass_nobjs[sizeclass_of(FEW_SIZE)], 3);
	void *a = gm_alloc(FEW_SIZE, 0);
	void *b = gm_alloc(FEW_SIZE, 0);
	gm_free(b);
	void *c = gm_alloc(FEW_SIZE, 0);
	ck_assert_ptr_eq(c, b);
	/* the freed slot is free for the heap walk and the stats */
	gm_free(c);
	stats_snapshot_t st;
	stats_snapshot(&st);
	ck_assert_uint_eq(st.cls[sizeclass_of(FEW_SIZE)].nobjs_inuse, 1);
	gm_free(a);
}
END_TEST

/* A class of few objects per span (FEW_SIZE: 3) whose full list is long:
 * the refill looks at only MCACHE_FULL_BUDGET spans of it, so a span
 * retired onto such a list becomes a refill candidate at its first owner
 * free, and the next malloc of the class gets that block back.  A span
 * retired while the list was short waits for half of it (pareto's peak
 * RSS; docs/design.md "When an owned full span is swept again"). */
static bool alloc_few(void **blk, int n)
{
	for (int i = 0; i < n; i++)
		if ((blk[i] = gm_alloc(FEW_SIZE, 0)) == NULL)
			return false;
	return true;
}

/* Fill n blocks of FEW_SIZE and free blk[k], whose span *s must be on the
 * full list before the free; NULL, or what went wrong. */
static void *fill_and_free_one(void **blk, int n, int k, mspan_t **s)
{
	if (!alloc_few(blk, n))
		return "malloc failed";
	*s = arena_span_of((uintptr_t)blk[k]);
	if ((*s)->list != SPAN_LIST_CACHE_FULL)
		return "a span of the filled class is not on the full list";
	gm_free(blk[k]);
	return NULL;
}

static void *few_object_full_list(void *arg)
{
	(void)arg;
	enum { N = 120 };
	void *blk[N];
	mspan_t *late;
	void *err = fill_and_free_one(blk, N, 100, &late);
	if (err != NULL)
		return err;
	if (late->list != SPAN_LIST_CACHE_PARTIAL)
		return "the first free did not make the span a refill candidate";
	void *again = gm_alloc(FEW_SIZE, 0);
	if (again != blk[100])
		return "the next malloc did not reuse the freed block";
	for (int i = 0; i < N; i++)
		gm_free(blk[i]);
	return NULL;
}

static void *few_object_short_list(void *arg)
{
	(void)arg;
	enum { N = 12 }; /* 4 spans: a short full list */
	void *blk[N];
	mspan_t *s;
	void *err = fill_and_free_one(blk, N, 2, &s);
	if (err != NULL)
		return err;
	if (s->list != SPAN_LIST_CACHE_FULL)
		return "a span on a short full list moved at its first free";
	for (int i = 0; i < N; i++)
		if (i != 2)
			gm_free(blk[i]);
	return NULL;
}

START_TEST(few_object_spans_long_full_list)
{
	run_in_new_thread(few_object_full_list);
	run_in_new_thread(few_object_short_list);
}
END_TEST

/* The free of the block the malloc fast path handed out last needs no
 * index: its bit (c->last_bit) in the current word (mcache_free_fast).
 * After a refill that moved to the next word, that block must be freed
 * by its own index: the refill forgets it (last_p NULL), or its bit would
 * be set in the new word -- a live slot there shown free, the block itself
 * never freed. */
static void *last_block_frees(void *arg)
{
	(void)arg;
	spanclass_t spc = spanclass_make(1, 0); /* 8 B: 1024 per span, 16 words */
	void *first = gm_alloc(8, 0); /* the refill of a new cache */
	void *p = gm_alloc(8, 0);     /* the fast path */
	(void)first;
	mcache_t *c = mcache_tls;
	mspan_t *s = c->alloc[spc];
	if (arena_span_of((uintptr_t)p) != s)
		return "the first block is not from the current span";
	/* the free of the last block: its slot is free again and the next
	 * malloc gets it back */
	if (c->last_p != p)
		return "the fast path did not note its block";
	gm_free(p);
	if (mspan_obj_live(s, ((uintptr_t)p - s->base) / 8))
		return "the last block's free left it live";
	if (gm_alloc(8, 0) != p)
		return "the last block's slot was not handed out again";
	/* fill the current word, up to the block the fast path hands out last */
	unsigned w = s->cache_word;
	void *last = p;
	while (s->bits[w] != 0)
		last = gm_alloc(8, 0);
	if (c->last_p != last)
		return "the last block of the word is not noted";
	void *next = gm_alloc(8, 0); /* the refill: the next word */
	if (c->alloc[spc] != s || s->cache_word == w)
		return "the refill did not move to the span's next word";
	if (c->last_p != NULL)
		return "the refill kept the old word's last block";
	size_t li = ((uintptr_t)last - s->base) / 8;
	uint64_t new_word = s->bits[s->cache_word];
	gm_free(last);
	if (mspan_obj_live(s, li))
		return "the old word's last block was not freed";
	if (s->bits[s->cache_word] != new_word)
		return "the free changed the new word";
	gm_free(next);
	return NULL;
}

START_TEST(last_block_free_uses_its_bit)
{
	run_in_new_thread(last_block_frees);
}
END_TEST

/* calloc of a slot the free map hands out again: a fresh span's slots are
 * zero (needzero 0), a freed one is not, so the first free of a current
 * span sets needzero (mcache_set_trigger, mcache_free_event).  The second
 * calloc is calloc()'s inline path (gm_calloc_fast), the first the
 * out-of-line one. */
static void *calloc_reuse(void *arg)
{
	(void)arg;
	unsigned char *a = gm_calloc(1, 96, 0);
	mspan_t *s = arena_span_of((uintptr_t)a);
	if (s->needzero)
		return NULL; /* not a fresh span: nothing to show */
	memset(a, 0xa5, 96);
	gm_free(a);
	if (!s->needzero)
		return "first free of a fresh current span did not set needzero";
	unsigned char *b = gm_calloc_fast(1, 96, 0);
	if (b != a)
		return "freed slot not handed out again";
	for (int i = 0; i < 96; i++)
		if (b[i] != 0)
			return "calloc handed out a dirty slot";
	gm_free(b);
	return NULL;
}

START_TEST(calloc_after_reuse_is_zero)
{
	run_in_new_thread(calloc_reuse);
}
END_TEST

START_TEST(double_free_small_span_aborts)
{
	void *a = gm_alloc(4096, 0);
	gm_free(a);
	gm_free(a); /* must be detected: abort() */
}
END_TEST

static void *remote_free(void *arg)
{
	void **v = arg;
	for (int i = 0; i < 100; i++)
		gm_free(v[i]);
	return NULL;
}

START_TEST(remote_frees_are_swept)
{
	void *v[100];
	stats_snapshot_t a, b;
	gm_free(gm_alloc(256, 0));
	stats_snapshot(&a);
	for (int i = 0; i < 100; i++)
		v[i] = gm_alloc(256, 0);
	pthread_t t;
	pthread_create(&t, NULL, remote_free, v);
	pthread_join(t, NULL);
	stats_snapshot(&b);
	ck_assert_uint_eq(b.g.nblocks, a.g.nblocks);
	/* the owner gets the remote slots back through its sweep */
	int again = 0;
	void *w[2000];
	for (int i = 0; i < 2000; i++) {
		w[i] = gm_alloc(256, 0);
		for (int j = 0; j < 100; j++)
			again += w[i] == v[j];
	}
	/* all but the slots of one span (the last one, with fewer remote
	 * frees than the sweep threshold, 1 + 32/4 of its 32 objects, may wait
	 * in the full list); an owner that never sweeps remote frees gets 0 */
	ck_assert_int_ge(again, 100 - (1 + 32 / 4));
	for (int i = 0; i < 2000; i++)
		gm_free(w[i]);
}
END_TEST

/* A thread allocates the blocks and exits: its spans go to mcentral, full. */
#define EXIT_NBLK 400
static void *alloc_and_exit(void *arg)
{
	void **v = arg;
	for (int i = 0; i < EXIT_NBLK; i++)
		v[i] = gm_alloc(512, 1);
	return NULL;
}

/* Frees into spans mcentral holds (their owner exited) mark the class, and
 * the next span allocation from the heap sweeps it: the emptied spans go
 * back to the page heap without malloc_trim or a heap growth.  On the
 * library before 2026-11-28 they stayed in use (mcentral's full list). */
START_TEST(frees_after_owner_exit_are_reclaimed)
{
	static void *v[EXIT_NBLK];
	stats_snapshot_t a, b, c;
	spanclass_t spc = spanclass_make(sizeclass_of(512), 1);
	mcentral_reclaim_all(); /* start with no mark */
	stats_snapshot(&a);
	pthread_t t;
	pthread_create(&t, NULL, alloc_and_exit, v);
	pthread_join(t, NULL);
	mspan_t *s = arena_span_of((uintptr_t)v[0]);
	ck_assert_ptr_nonnull(s);
	ck_assert_ptr_null(atomic_load(&s->owner)); /* handed to mcentral */
	ck_assert_int_eq(s->list, SPAN_LIST_CENTRAL_FULL);
	for (int i = 0; i < EXIT_NBLK; i++)
		gm_free(v[i]);
	ck_assert(atomic_load(&mcentral_remote_pending));
	ck_assert(atomic_load(&mcentral[spc].remote_pending));
	stats_snapshot(&b);
	/* freed, but every span still in use: nothing swept them */
	ck_assert_uint_ge(b.g.heap_inuse, a.g.heap_inuse + EXIT_NBLK * 512);
	/* blocks of a class not used before need new spans from the heap: the
	 * marked class is swept before the first (or, if an earlier sweep in
	 * this process left a debt, before a later one: a few spans' worth) */
	void *w[32];
	int n = 0;
	while (n < 32 && atomic_load(&mcentral_remote_pending))
		w[n++] = gm_alloc(20480, 0);
	ck_assert_int_lt(n, 32);
	while (n > 0)
		gm_free(w[--n]);
	ck_assert(!atomic_load(&mcentral_remote_pending));
	ck_assert(!atomic_load(&mcentral[spc].remote_pending));
	/* the emptied spans left mcentral for the page heap (whose pages the
	 * new spans may have taken) */
	ck_assert_uint_eq(mcentral[spc].full.n, 0);
	ck_assert_uint_eq(mcentral[spc].partial.n, 0);
	stats_snapshot(&c);
	ck_assert_uint_le(c.g.heap_inuse, a.g.heap_inuse + (64 << 10)); /* a 20480 B span */
}
END_TEST

static void *short_thread(void *arg)
{
	(void)arg;
	for (int i = 0; i < 1000; i++)
		gm_free(gm_alloc((size_t)(i % 500) + 1, i & 1));
	void *big = gm_alloc(1 << 20, 0);
	gm_free(big); /* lands in the thread's large cache */
	return NULL;
}

START_TEST(thread_exit_returns_everything)
{
	stats_snapshot_t a, b;
	gm_free(gm_alloc(16, 0));
	stats_snapshot(&a);
	for (int r = 0; r < 20; r++) {
		pthread_t t;
		pthread_create(&t, NULL, short_thread, NULL);
		pthread_join(t, NULL);
	}
	stats_snapshot(&b);
	ck_assert_uint_eq(b.g.nthreads, a.g.nthreads);
	ck_assert_uint_eq(b.g.heap_inuse, a.g.heap_inuse);
	ck_assert_uint_eq(b.g.nblocks, a.g.nblocks);
}
END_TEST

/* The large cache (mcache_large_put / mcache_large_take) through free and
 * malloc: the block freed last comes back for its size (and a size within
 * 1/8 below it), its state and large_bytes follow it, a second block evicts
 * the first to the heap (MCACHE_LARGE_SLOTS is 1), a size it cannot serve
 * leaves it there, and a block over MCACHE_LARGE_MAX_BYTES / 2 is not kept. */
START_TEST(large_cache_put_take)
{
	gm_free(gm_alloc(16, 0)); /* initialise */
	gm_opt.cache_idle_ms = 0; /* keep the real scavenger out of it */
	mcache_t *c = mcache_tls;
	mcache_release_large(c);
	ck_assert_uint_eq(c->nlarge, 0);
	ck_assert_uint_eq(c->large_bytes, 0);

	void *a = gm_alloc(256 << 10, 0);
	mspan_t *sa = arena_span_of((uintptr_t)a);
	ck_assert_uint_eq(atomic_load(&sa->state), SPAN_INUSE);
	gm_free(a);
	ck_assert_uint_eq(c->nlarge, 1);
	ck_assert_ptr_eq(c->large[0], sa);
	ck_assert_uint_eq(c->large_bytes, sa->npages << GM_PAGE_SHIFT);
	ck_assert_uint_eq(atomic_load(&sa->state), SPAN_CACHED);
	/* a size it cannot serve (twice as big) leaves it there */
	void *b = gm_alloc(512 << 10, 0);
	ck_assert_uint_eq(c->nlarge, 1);
	ck_assert_ptr_eq(c->large[0], sa);
	/* freeing b evicts a (one slot): a goes back to the heap */
	mspan_t *sb = arena_span_of((uintptr_t)b);
	gm_free(b);
	ck_assert_uint_eq(c->nlarge, 1);
	ck_assert_ptr_eq(c->large[0], sb);
	ck_assert_uint_eq(c->large_bytes, sb->npages << GM_PAGE_SHIFT);
	ck_assert_uint_eq(atomic_load(&sb->state), SPAN_CACHED);
	/* a size up to 1/8 below the block's takes it, and it reads as in use */
	void *b2 = gm_alloc((512 << 10) - (48 << 10), 0);
	ck_assert_ptr_eq(b2, b);
	ck_assert_uint_eq(c->nlarge, 0);
	ck_assert_uint_eq(c->large_bytes, 0);
	ck_assert_uint_eq(atomic_load(&sb->state), SPAN_INUSE);
	ck_assert_uint_ge(gm_usable_size(b2, "test"), (512 << 10) - (48 << 10));
	gm_free(b2);
	/* a block over half of MCACHE_LARGE_MAX_BYTES goes straight back */
	void *h = gm_alloc(MCACHE_LARGE_MAX_BYTES / 2 + GM_PAGE_SIZE, 0);
	mspan_t *sh = arena_span_of((uintptr_t)h);
	gm_free(h);
	ck_assert_ptr_ne(c->large[0], sh);
	ck_assert_uint_eq(c->nlarge, 1);
	mcache_release_large(c);
	ck_assert_uint_eq(c->nlarge, 0);
}
END_TEST

/* The heap's huge slot (mheap_huge_put / take / flush): a block over
 * MCACHE_LARGE_MAX_BYTES / 2 freed waits there, not in the thread cache,
 * counted in pages_inuse and SPAN_CACHED; a malloc of its size (or up to
 * 1/8 below) takes it back; a malloc of another size gives it to the heap;
 * mheap_huge_flush gives it back at once, mheap_huge_flush_idle only after
 * idle_ns without a put or take. */
START_TEST(huge_slot_put_take_flush)
{
	gm_free(gm_alloc(16, 0)); /* initialise */
	gm_opt.cache_idle_ms = 0; /* keep the real scavenger out of it */
	mcache_t *c = mcache_tls;
	mcache_release_large(c);
	mheap_huge_flush();
	const size_t big = (size_t)16 << 20, np = big >> GM_PAGE_SHIFT;

	void *h = gm_alloc(big, 0);
	mspan_t *sh = arena_span_of((uintptr_t)h);
	size_t inuse = atomic_load(&mheap.pages_inuse);
	gm_free(h);
	ck_assert_uint_eq(c->nlarge, 0);
	ck_assert_uint_eq(atomic_load(&sh->state), SPAN_CACHED);
	ck_assert_uint_eq(atomic_load(&mheap.pages_inuse), inuse);
	/* a size up to 1/8 below takes it, and it reads as in use */
	void *h2 = gm_alloc(big - ((size_t)1 << 20), 0);
	ck_assert_ptr_eq(h2, h);
	ck_assert_uint_eq(atomic_load(&sh->state), SPAN_INUSE);
	ck_assert_uint_ge(gm_usable_size(h2, "test"), big);
	gm_free(h2);
	/* another size gives it back to the heap */
	void *o = gm_alloc(big / 2, 0);
	ck_assert_uint_eq(mheap_huge_flush(), 0);
	ck_assert_uint_eq(atomic_load(&mheap.pages_inuse), inuse - np + np / 2);
	gm_free(o); /* now o waits in the slot */
	ck_assert_uint_eq(mheap_huge_flush(), np / 2);
	ck_assert_uint_eq(atomic_load(&mheap.pages_inuse), inuse - np);
	ck_assert_uint_eq(mheap_huge_flush(), 0);

	/* the idle flush: kept while used, given back idle_ns after the last use */
	gm_free(gm_alloc(big, 0));
	uint64_t t = 1000 * MS;
	ck_assert(mheap_huge_flush_idle(t, 100 * MS));            /* used: kept */
	ck_assert(mheap_huge_flush_idle(t + 50 * MS, 100 * MS));  /* not idle long enough */
	ck_assert(!mheap_huge_flush_idle(t + 150 * MS, 100 * MS)); /* given back */
	ck_assert_uint_eq(mheap_huge_flush(), 0);
	ck_assert(!mheap_huge_flush_idle(t + 200 * MS, 100 * MS)); /* nothing there */
	gm_free(gm_alloc(big, 0));
	ck_assert(mheap_huge_flush_idle(t + 300 * MS, 100 * MS));
	gm_free(gm_alloc(big, 0)); /* a take and a put: used again */
	ck_assert(mheap_huge_flush_idle(t + 380 * MS, 100 * MS)); /* the wait restarts */
	ck_assert(mheap_huge_flush_idle(t + 470 * MS, 100 * MS));
	ck_assert(!mheap_huge_flush_idle(t + 490 * MS, 100 * MS));
	ck_assert_uint_eq(atomic_load(&mheap.pages_inuse), inuse - np);
}
END_TEST

START_TEST(idle_flush_after_delay_only)
{
	gm_free(gm_alloc(16, 0));  /* initialise (sets the options) */
	gm_opt.cache_idle_ms = 0; /* keep the real scavenger out of it */
	void *p = gm_alloc(4 << 20, 0);
	gm_free(p);
	mcache_t *c = mcache_tls;
	ck_assert_uint_ge(c->nlarge, 1);
	uint64_t t = 1000 * MS;
	ck_assert(mcache_flush_idle(t, 100 * MS));      /* first sighting */
	ck_assert_uint_ge(c->nlarge, 1);
	ck_assert(mcache_flush_idle(t + 50 * MS, 100 * MS));
	ck_assert_uint_ge(c->nlarge, 1);               /* not idle long enough */
	mcache_note_use(c);                             /* the owner wakes up */
	ck_assert(mcache_flush_idle(t + 150 * MS, 100 * MS));
	ck_assert_uint_ge(c->nlarge, 1);
	stats_snapshot_t a, b;
	stats_snapshot(&a);
	mcache_flush_idle(t + 300 * MS, 100 * MS);      /* idle 150 ms: flushed */
	ck_assert_uint_eq(c->nlarge, 0);
	ck_assert_uint_eq(c->pcache.cache, 0);
	stats_snapshot(&b);
	ck_assert_uint_ge(b.g.free_retained + b.g.released,
	                  a.g.free_retained + a.g.released + (4 << 20));
	ck_assert(!mcache_flush_idle(t + 400 * MS, 100 * MS)); /* nothing left */
	/* the cache still works afterwards */
	p = gm_alloc(4 << 20, 0);
	memset(p, 1, 4 << 20);
	gm_free(p);
	gm_free(gm_alloc(100, 0));
}
END_TEST

/* Empty spans kept for reuse (MCACHE_EMPTY_KEEP_BYTES) are pages the rest
 * of the program cannot use: a thread that goes idle gives them back at the
 * idle flush, malloc_trim gives back the calling thread's, and a thread
 * that exits gives back everything (thread_exit_returns_everything). */
enum { KEPT_N = MCACHE_EMPTY_KEEP_BYTES / 8192 + 8 };
static void *kept_blocks[KEPT_N];

static void make_kept_spans(mcache_t **cp)
{
	for (int i = 0; i < KEPT_N; i++)
		kept_blocks[i] = gm_alloc(8192, 0); /* 1 per 8 KiB span */
	for (int i = 0; i < KEPT_N; i++)
		gm_free(kept_blocks[i]);
	*cp = mcache_tls;
}

START_TEST(kept_empty_spans_go_back_when_idle_or_trimmed)
{
	gm_free(gm_alloc(16, 0));  /* initialise (sets the options) */
	gm_opt.cache_idle_ms = 0; /* keep the real scavenger out of it */
	mcache_t *c;
	make_kept_spans(&c);
	spanclass_t spc = spanclass_make(sizeclass_of(8192), 0);
	ck_assert_uint_eq(sizeclass_npages[sizeclass_of(8192)], 1);
	ck_assert_uint_eq(c->empty_bytes, MCACHE_EMPTY_KEEP_BYTES);
	ck_assert_uint_ge(c->partial[spc].n, MCACHE_EMPTY_KEEP_BYTES / 8192);
	size_t inuse = atomic_load(&mheap.pages_inuse);
	uint64_t t = 1000 * MS;
	ck_assert(mcache_flush_idle(t, 100 * MS)); /* first sighting */
	ck_assert_uint_eq(c->empty_bytes, MCACHE_EMPTY_KEEP_BYTES);
	mcache_flush_idle(t + 150 * MS, 100 * MS);  /* idle: flushed */
	ck_assert_uint_eq(c->empty_bytes, 0);
	ck_assert_uint_eq(c->partial[spc].n, 0);
	ck_assert_uint_le(atomic_load(&mheap.pages_inuse),
	                  inuse - MCACHE_EMPTY_KEEP_BYTES / 8192);
	/* malloc_trim */
	make_kept_spans(&c);
	ck_assert_uint_eq(c->empty_bytes, MCACHE_EMPTY_KEEP_BYTES);
	inuse = atomic_load(&mheap.pages_inuse);
	gm_malloc_trim(0);
	ck_assert_uint_eq(c->empty_bytes, 0);
	ck_assert_uint_le(c->partial[spc].n, 1);
	ck_assert_uint_le(atomic_load(&mheap.pages_inuse),
	                  inuse - MCACHE_EMPTY_KEEP_BYTES / 8192);
	/* the class still works afterwards */
	void *p = gm_alloc(4096, 0);
	memset(p, 1, 4096);
	gm_free(p);
}
END_TEST

/* An owner thread with two current spans, both with no live object,
 * goes quiet; the idle flush must take the one of class 64 B and keep the
 * one of class 128 B, the class the owner's fast path read last
 * (alloc_spc: it may still be between its read and its writes). */
static pthread_mutex_t cur_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cur_cv = PTHREAD_COND_INITIALIZER;
static int cur_step;
static mcache_t *cur_cache;
static mspan_t *cur_s64, *cur_s128;

static void cur_set(int v)
{
	pthread_mutex_lock(&cur_mu);
	cur_step = v;
	pthread_cond_broadcast(&cur_cv);
	pthread_mutex_unlock(&cur_mu);
}

static void cur_wait(int v)
{
	pthread_mutex_lock(&cur_mu);
	while (cur_step != v)
		pthread_cond_wait(&cur_cv, &cur_mu);
	pthread_mutex_unlock(&cur_mu);
}

static void *cur_owner(void *arg)
{
	(void)arg;
	void *a = gm_alloc(64, 1);
	void *b = gm_alloc(128, 1);
	cur_cache = mcache_tls;
	cur_s64 = arena_span_of((uintptr_t)a);
	cur_s128 = arena_span_of((uintptr_t)b);
	gm_free(a);
	gm_free(b);
	cur_set(1);
	cur_wait(2); /* idle while main flushes */
	/* both classes work afterwards */
	void *a2 = gm_alloc(64, 1), *b2 = gm_alloc(128, 1);
	memset(a2, 1, 64);
	memset(b2, 2, 128);
	ck_assert_ptr_eq(arena_span_of((uintptr_t)b2), cur_s128);
	gm_free(a2);
	gm_free(b2);
	return NULL;
}

START_TEST(idle_flush_takes_current_spans_but_the_last_class)
{
	gm_free(gm_alloc(16, 0));
	gm_opt.cache_idle_ms = 0; /* keep the real scavenger out of it */
	pthread_t t;
	pthread_create(&t, NULL, cur_owner, NULL);
	cur_wait(1);
	spanclass_t c64 = spanclass_make(sizeclass_of(64), 1);
	spanclass_t c128 = spanclass_make(sizeclass_of(128), 1);
	mcache_t *c = cur_cache;
	ck_assert_ptr_eq(c->alloc[c64], cur_s64);
	ck_assert_ptr_eq(c->alloc[c128], cur_s128);
	ck_assert_uint_eq(atomic_load(&c->alloc_spc), c128);
	uint64_t now = 5000 * MS;
	mcache_flush_idle(now, 100 * MS);            /* first sighting */
	ck_assert_ptr_eq(c->alloc[c64], cur_s64);
	mcache_flush_idle(now + 150 * MS, 100 * MS); /* idle: taken */
	ck_assert_ptr_eq(c->alloc[c64], &mcache_empty_span);
	ck_assert_ptr_ne(atomic_load(&cur_s64->owner), c);
	ck_assert_ptr_eq(c->alloc[c128], cur_s128);  /* the last class stays */
	ck_assert_ptr_eq(atomic_load(&cur_s128->owner), c);
	cur_set(2);
	pthread_join(t, NULL);
}
END_TEST

/* The owner-biased lock (mcache_lock_t): the scavenger's try-lock fails
 * while the owner holds it and leaves no trace; once the scavenger holds
 * it the owner waits until it lets go.  Run with membarrier (the owner's
 * side is plain stores) and in the xchg fallback. */
static _Atomic int lock_owner_in;
static void *lock_owner(void *arg)
{
	mcache_lock_t *l = arg;
	mcache_spin_lock(l);
	atomic_store(&lock_owner_in, 1);
	mcache_spin_unlock(l);
	return NULL;
}

static void lock_protocol(void)
{
	mcache_lock_t lk = {0}, *l = &lk, other = {0};
	mcache_lock_t *const both[2] = {l, &other};
	bool ok[2];
	mcache_spin_lock(l); /* the owner is inside */
	mcache_scav_trylock(both, ok, 2);
	ck_assert(!ok[0]);
	ck_assert(ok[1]); /* one lock busy does not keep the scavenger out of another */
	mcache_scav_unlock(&other);
	ck_assert_uint_eq(atomic_load(&l->scav_in), 0);
	mcache_spin_unlock(l);
	mcache_scav_trylock(both, ok, 1); /* the owner left: the scavenger gets in */
	ck_assert(ok[0]);
	atomic_store(&lock_owner_in, 0);
	pthread_t t;
	pthread_create(&t, NULL, lock_owner, l);
	usleep(50 * 1000);
	ck_assert_int_eq(atomic_load(&lock_owner_in), 0); /* the owner waits */
	mcache_scav_unlock(l);
	pthread_join(t, NULL);
	ck_assert_int_eq(atomic_load(&lock_owner_in), 1);
	mcache_scav_trylock(both, ok, 1); /* free again */
	ck_assert(ok[0]);
	mcache_scav_unlock(l);
}

/* Every allocator lock this thread holds is counted in gm_locks_held
 * whenever a signal handler can look (lock.h): fork() from a handler that
 * found a held lock uncounted would wait for itself in the fork handlers.
 * A 10 us timer samples a loop of the mutex's lock/trylock/unlock and the
 * biased lock's: a lock word that shows held with the count at 0 fails
 * (the gm_mutex_unlock before 81904d3, which counted down before
 * releasing, failed within 31-65 samples in three runs). */
static gm_mutex_t counted_mutex = GM_MUTEX_INIT(LOCKRANK_MHEAP);
static mcache_lock_t counted_biased;
static volatile sig_atomic_t counted_samples, counted_bad;

static void counted_sample(int sig)
{
	(void)sig;
	counted_samples++;
	bool held = atomic_load_explicit(&counted_mutex.state, memory_order_relaxed) != 0 ||
	            atomic_load_explicit(&counted_biased.owner_in, memory_order_relaxed) != 0;
	if (held && gm_locks_held == 0)
		counted_bad = 1;
}

START_TEST(held_locks_always_counted)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = counted_sample;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = { { 0, 10 }, { 0, 10 } };
	setitimer(ITIMER_REAL, &it, NULL);
	for (long i = 0; counted_samples < 20000 && !counted_bad && i < 200000000; i++) {
		gm_mutex_lock(&counted_mutex);
		gm_mutex_unlock(&counted_mutex);
		if (gm_mutex_trylock(&counted_mutex))
			gm_mutex_unlock(&counted_mutex);
		mcache_spin_lock(&counted_biased);
		mcache_spin_unlock(&counted_biased);
	}
	struct itimerval off = { { 0, 0 }, { 0, 0 } };
	setitimer(ITIMER_REAL, &off, NULL);
	ck_assert_msg(!counted_bad, "a signal found a held lock not counted (sample %d)",
	              (int)counted_samples);
	ck_assert_int_ge(counted_samples, 1000);
	ck_assert_uint_eq(gm_locks_held, 0);
}
END_TEST

START_TEST(biased_lock_excludes_both_ways)
{
	gm_free(gm_alloc(16, 0)); /* initialise: membarrier registered */
	ck_assert(mcache_lock_fenced); /* Linux >= 4.14, no seccomp filter */
	lock_protocol();
}
END_TEST

START_TEST(biased_lock_fallback_without_membarrier)
{
	gm_free(gm_alloc(16, 0));
	gm_opt.cache_idle_ms = 0; /* no scavenger flush while the mode changes */
	mcache_lock_fenced = false; /* this forked test process only */
	lock_protocol();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("mcache");
	TCase *tc = tcase_create("mcache");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, owner_alloc_free_reuses_slot);
	tcase_add_test(tc, free_map_reuse_and_resweep);
	tcase_add_test(tc, free_guess_only_own_current_span);
	tcase_add_test(tc, pair_reuses_slot_small_spans);
	tcase_add_test(tc, few_object_spans_long_full_list);
	tcase_add_test(tc, last_block_free_uses_its_bit);
	tcase_add_test(tc, calloc_after_reuse_is_zero);
	tcase_add_test_raise_signal(tc, double_free_small_span_aborts, SIGABRT);
	tcase_add_test(tc, remote_frees_are_swept);
	tcase_add_test(tc, thread_exit_returns_everything);
	tcase_add_test(tc, large_cache_put_take);
	tcase_add_test(tc, huge_slot_put_take_flush);
	tcase_add_test(tc, idle_flush_after_delay_only);
	tcase_add_test(tc, idle_flush_takes_current_spans_but_the_last_class);
	tcase_add_test(tc, kept_empty_spans_go_back_when_idle_or_trimmed);
	tcase_add_test(tc, frees_after_owner_exit_are_reclaimed);
	tcase_add_test(tc, held_locks_always_counted);
	tcase_add_test(tc, biased_lock_excludes_both_ways);
	tcase_add_test(tc, biased_lock_fallback_without_membarrier);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
