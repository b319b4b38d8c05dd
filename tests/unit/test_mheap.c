/*
 * test_mheap.c -- the span layers alone: mheap span allocation and free
 * (the spans[] map, large and aligned runs, needzero), the sweep that folds
 * local and remote frees into the alloc bitmap, Go's nextFreeIndex, the
 * thread cache's free events (empty spans go back to the heap), in-place
 * resizing of large spans, and mcentral taking spans back.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "malloc_impl.h"
#include "mcache.h"
#include "mcentral.h"
#include "mheap.h"
#include "sizeclass.h"

static void setup(void)
{
	ck_assert(gm_init_slow());
}

START_TEST(span_alloc_maps_pages)
{
	spanclass_t spc = spanclass_make(5, 0); /* 48-byte objects */
	mspan_t *s = mheap_alloc_span(NULL, 1, spc, 0);
	ck_assert_ptr_nonnull(s);
	ck_assert_uint_eq(s->base % GM_PAGE_SIZE, 0);
	ck_assert_uint_eq(s->elemsize, 48);
	ck_assert_uint_eq(s->nelems, 170);
	ck_assert_ptr_eq(arena_span_of(s->base), s);
	ck_assert_ptr_eq(arena_span_of(s->base + GM_PAGE_SIZE - 1), s);
	ck_assert_uint_eq(s->needzero, 0);
	uintptr_t base = s->base;
	mheap_free_span(NULL, s);
	ck_assert_ptr_null(arena_span_of(base));
}
END_TEST

/* The heap maps what it needs in 4 MiB chunks, contiguously, not whole
 * 64 MiB arenas (an arena's worth of address space at the first malloc
 * made `ulimit -v` below ~110 MB fail): the first growth is one chunk, a
 * block larger than the step maps its own size rounded to chunks right
 * after, and a range that reaches into a new arena registers it. */
START_TEST(heap_grows_in_chunks)
{
	mspan_t *s = mheap_alloc_span(NULL, 1, spanclass_make(5, 0), 0);
	ck_assert_ptr_nonnull(s);
	ck_assert_uint_eq(arena_mapped_bytes(), GM_CHUNK_SIZE);
	uintptr_t first = s->base & ~(uintptr_t)(GM_CHUNK_SIZE - 1);
	/* 70 MiB: more than the free rest of the chunk and than the step */
	size_t np = (70u << 20) >> GM_PAGE_SHIFT;
	mspan_t *big = mheap_alloc_span(NULL, np, spanclass_make(0, 1), 0);
	ck_assert_ptr_nonnull(big);
	size_t mapped = arena_mapped_bytes();
	ck_assert_uint_eq(mapped % GM_CHUNK_SIZE, 0);
	ck_assert_uint_ge(mapped, GM_CHUNK_SIZE + (70u << 20));
	ck_assert_uint_le(mapped, GM_CHUNK_SIZE + (72u << 20));
	/* contiguous when the address after the first chunk was free (it is in
	 * this fresh process: 0xc000400000), so the block starts in the free
	 * rest of the first chunk and runs on into the new range */
	ck_assert_uint_ge(big->base, first);
	ck_assert_uint_lt(big->base, first + GM_CHUNK_SIZE);
	uintptr_t end = big->base + (np << GM_PAGE_SHIFT);
	for (uintptr_t a = big->base; a < end; a += GM_ARENA_SIZE)
		ck_assert_ptr_nonnull(arena_of(a));
	ck_assert_ptr_nonnull(arena_of(end - 1));
	memset((void *)(end - GM_PAGE_SIZE), 1, GM_PAGE_SIZE); /* mapped to its end */
	mheap_free_span(NULL, big);
	mheap_free_span(NULL, s);
}
END_TEST

START_TEST(large_span_crosses_chunks)
{
	size_t before = atomic_load(&mheap.pages_inuse);
	mspan_t *s = mheap_alloc_span(NULL, 1500, spanclass_make(0, 1), 0);
	ck_assert_ptr_nonnull(s);
	ck_assert_uint_eq(atomic_load(&mheap.pages_inuse), before + 1500);
	/* a large block has only its first page in spans[]: free() gets its
	 * base, and a 1500-page block costs one entry, not 1500 */
	ck_assert_ptr_eq(arena_span_of(s->base), s);
	ck_assert_ptr_eq(arena_span_of(s->base + 5), s);
	for (size_t i = 1; i < 1500; i += 97)
		ck_assert_ptr_null(arena_span_of(s->base + i * GM_PAGE_SIZE + 5));
	ck_assert_ptr_null(arena_span_of(s->base + 1499 * GM_PAGE_SIZE));
	ck_assert_ptr_ne(arena_span_of(s->base + 1500 * GM_PAGE_SIZE), s);
	memset((void *)s->base, 7, 1500 * GM_PAGE_SIZE);
	mheap_free_span(NULL, s);
	ck_assert_uint_eq(atomic_load(&mheap.pages_inuse), before);
}
END_TEST

START_TEST(aligned_runs)
{
	for (size_t align = 16384; align <= ((size_t)4 << 20); align <<= 1) {
		mspan_t *s = mheap_alloc_span(NULL, 3, spanclass_make(0, 0), align);
		ck_assert_ptr_nonnull(s);
		ck_assert_uint_eq(s->base % align, 0);
		ck_assert_ptr_eq(arena_span_of(s->base), s);
		mheap_free_span(NULL, s);
	}
}
END_TEST

START_TEST(reuse_needs_zero)
{
	mspan_t *s = mheap_alloc_span(NULL, 8, spanclass_make(0, 0), 0);
	uintptr_t base = s->base;
	memset((void *)base, 1, 8 * GM_PAGE_SIZE);
	mheap_free_span(NULL, s);
	s = mheap_alloc_span(NULL, 8, spanclass_make(0, 0), 0);
	ck_assert_uint_eq(s->base, base); /* address-ordered first fit */
	ck_assert_uint_eq(s->needzero, 1);
	mheap_free_span(NULL, s);
}
END_TEST

/* The span struct keeps all that malloc and free touch on one line (line
 * 1), the remote bits on others, and another thread's free finds its
 * remote word from line 1 alone (mspan_remote_bits_at): a wrong offset
 * there sends remote frees into another span's bits or its free map. */
START_TEST(span_line_layout)
{
	for (unsigned sc = 0; sc < GM_NUM_SIZE_CLASSES; sc++) {
		for (unsigned noscan = 0; noscan < 2; noscan++) {
			size_t np = sc == 0 ? 5 : sizeclass_npages[sc];
			mspan_t *s = mheap_alloc_span(NULL, np, spanclass_make(sc, noscan), 0);
			ck_assert_ptr_nonnull(s);
			ck_assert_int_eq(mspan_is_large(s), sc == 0);
			ck_assert_ptr_eq(mspan_remote_bits_at(s), s->remote_bits);
			uintptr_t line = (uintptr_t)&s->base / 64;
			ck_assert_uint_eq((uintptr_t)&s->owner / 64, line);
			ck_assert_uint_eq((uintptr_t)&s->free_left / 64, line);
			ck_assert_uint_eq((uintptr_t)&s->cache_word / 64, line);
			ck_assert_uint_eq((uintptr_t)&s->state / 64, line);
			ck_assert_uint_eq((uintptr_t)&s->nwords_log2 / 64, line);
			ck_assert_uint_eq((uintptr_t)&s->bits[0] / 64, line);
			/* the remote bits start after the free map, on a line of
			 * their own */
			ck_assert_uint_eq((uintptr_t)s->remote_bits % 64, 0);
			ck_assert((uintptr_t)s->remote_bits >=
			          (uintptr_t)&s->bits[mspan_nwords(s)]);
			mheap_free_span(NULL, s);
		}
	}
}
END_TEST

START_TEST(next_free_index_walks_words)
{
	mspan_t *s = mheap_alloc_span(NULL, 1, spanclass_make(1, 0), 0); /* 8 B x 1024 */
	for (size_t i = 0; i < 1024; i++)
		ck_assert_uint_eq(mspan_next_free_index(s), i);
	ck_assert_uint_eq(mspan_next_free_index(s), 1024);
	ck_assert_uint_eq(s->cache_word, 15);
	ck_assert_uint_eq(mspan_nfree_map(s), 0);
	mheap_free_span(NULL, s);
}
END_TEST

/* The owner's free as the fast path makes it: the slot's free-map bit. */
static void map_free(mspan_t *s, size_t i)
{
	mspan_free_map(s)[i / 64] |= 1ull << (i % 64);
}

START_TEST(sweep_takes_in_remote_frees)
{
	mspan_t *s = mheap_alloc_span(NULL, 1, spanclass_make(1, 0), 0);
	for (size_t i = 0; i < 200; i++)
		ck_assert_uint_eq(mspan_next_free_index(s), i);
	/* owner frees: 0..9 (free at once); remote frees: 100..104 and 150 */
	for (size_t i = 0; i < 10; i++)
		map_free(s, i);
	atomic_store(&mspan_remote_seen, true); /* as gm_free_slow does first */
	for (size_t i = 100; i < 105; i++)
		atomic_fetch_or(&s->remote_bits[i / 64], 1ull << (i % 64));
	atomic_fetch_or(&s->remote_bits[150 / 64], 1ull << (150 % 64));
	ck_assert(mspan_has_remote(s));
	ck_assert(!mspan_obj_live(s, 5));
	ck_assert(!mspan_obj_live(s, 102));
	ck_assert(mspan_obj_live(s, 50));
	ck_assert(!mspan_obj_live(s, 300)); /* never allocated */
	ck_assert(!mspan_obj_live(s, 1024)); /* no such object */
	ck_assert_uint_eq(mspan_live_count(s), 184);
	size_t nfree = mspan_sweep(s);
	ck_assert_uint_eq(nfree, 1024 - 184);
	ck_assert_uint_eq(s->alloc_count, 184);
	ck_assert_uint_eq(s->cache_word, 0);
	ck_assert(!mspan_has_remote(s));
	ck_assert_uint_eq(s->needzero, 1);
	ck_assert_uint_eq(mspan_live_count(s), 184);
	/* the freed slots come back first, in address order */
	for (size_t i = 0; i < 10; i++)
		ck_assert_uint_eq(mspan_next_free_index(s), i);
	for (size_t i = 100; i < 105; i++)
		ck_assert_uint_eq(mspan_next_free_index(s), i);
	ck_assert_uint_eq(mspan_next_free_index(s), 150);
	ck_assert_uint_eq(mspan_next_free_index(s), 200);
	mheap_free_span(NULL, s);
}
END_TEST

/* A sweep of a span with one bitmap word (at most 64 objects): class 32
 * (1024 B, n = 24 objects since "Spans of at least 24 objects").  0..n-2
 * taken, then owner frees 10, 11 (before the sweep: free at once) and 1, 2,
 * 13; remote frees 4 and 14. */
START_TEST(sweep_one_word)
{
	unsigned sc = 32;
	const size_t n = sizeclass_nobjs[sc];
	ck_assert_uint_eq(sizeclass_size[sc], 1024);
	ck_assert(n >= 16 && n <= 64);
	mspan_t *s = mheap_alloc_span(NULL, sizeclass_npages[sc], spanclass_make(sc, 0), 0);
	ck_assert_ptr_nonnull(s);
	ck_assert_uint_eq(s->nelems, n);
	ck_assert_uint_eq(s->nwords_log2, 0);
	/* every slot free, none above */
	ck_assert_uint_eq(s->bits[0], n == 64 ? ~0ull : (1ull << n) - 1);
	for (size_t i = 0; i < n - 1; i++)
		ck_assert_uint_eq(mspan_take_free_index(s), i);
	map_free(s, 10);
	map_free(s, 11);
	map_free(s, 1);
	map_free(s, 2);
	map_free(s, 13);
	atomic_store(&mspan_remote_seen, true);
	atomic_fetch_or(&s->remote_bits[0], (1ull << 4) | (1ull << 14));
	size_t nfree = mspan_sweep(s);
	ck_assert_uint_eq(nfree, 8);
	ck_assert_uint_eq(s->alloc_count, n - 8);
	const size_t order[] = { 1, 2, 4, 10, 11, 13, 14, n - 1 };
	uint64_t want = 0;
	for (size_t i = 0; i < 8; i++)
		want |= 1ull << order[i];
	ck_assert_uint_eq(s->bits[0], want);
	ck_assert(!mspan_has_remote(s));
	for (size_t i = 0; i < 8; i++)
		ck_assert_uint_eq(mspan_take_free_index(s), order[i]);
	ck_assert_uint_eq(mspan_take_free_index(s), n); /* full */
	ck_assert_uint_eq(mspan_live_count(s), n);
	mheap_free_span(NULL, s);
}
END_TEST

/* The free map's words (mheap.h): a new span's map has every slot's bit
 * and none at or above nelems; the allocation moves up a word at a time;
 * a free in the word it takes from is handed out next, one in a word it
 * passed waits for the sweep.  Class 3 (24 B): 341 objects in 6 of the
 * struct's 8 words. */
START_TEST(free_map_words)
{
	atomic_store(&mspan_remote_seen, false);
	mspan_t *s = mheap_alloc_span(NULL, 1, spanclass_make(3, 0), 0);
	ck_assert_uint_eq(s->nelems, 341);
	ck_assert_uint_eq(mspan_nwords(s), 8);
	for (size_t w = 0; w < 5; w++)
		ck_assert_uint_eq(s->bits[w], ~0ull);
	ck_assert_uint_eq(s->bits[5], (1ull << 21) - 1);
	ck_assert_uint_eq(s->bits[6], 0);
	ck_assert_uint_eq(s->bits[7], 0);
	for (size_t i = 0; i < 128; i++)
		ck_assert_uint_eq(mspan_take_free_index(s), i);
	ck_assert_uint_eq(s->cache_word, 1);
	map_free(s, 3);
	map_free(s, 70);
	ck_assert_uint_eq(mspan_nfree_map(s), 2 + 341 - 128);
	ck_assert_uint_eq(mspan_take_free_index(s), 70);
	ck_assert_uint_eq(mspan_take_free_index(s), 128);
	ck_assert_uint_eq(s->cache_word, 2);
	/* 0..128 but 3 allocated */
	ck_assert_uint_eq(mspan_sweep(s), 341 - 128);
	ck_assert_uint_eq(s->alloc_count, 128);
	ck_assert_uint_eq(s->cache_word, 0);
	ck_assert_uint_eq(mspan_take_free_index(s), 3);
	ck_assert_uint_eq(mspan_take_free_index(s), 129);
	/* to the end: no slot at or above nelems is ever handed out */
	for (size_t i = 130; i < 341; i++)
		ck_assert_uint_eq(mspan_take_free_index(s), i);
	ck_assert_uint_eq(mspan_take_free_index(s), 341);
	ck_assert_uint_eq(mspan_live_count(s), 341);
	mheap_free_span(NULL, s);
}
END_TEST

/* Before the first remote free (mspan_remote_seen false) a sweep leaves
 * remote_bits alone: a bit that lands then (a first remote free in flight)
 * keeps its object allocated until a sweep after the flag shows. */
START_TEST(sweep_reads_remote_after_first_remote_free)
{
	atomic_store(&mspan_remote_seen, false);
	mspan_t *s = mheap_alloc_span(NULL, 1, spanclass_make(1, 0), 0);
	for (size_t i = 0; i < 100; i++)
		mspan_next_free_index(s);
	map_free(s, 3);                                 /* local free of 3 */
	atomic_fetch_or(&s->remote_bits[1], 1ull << 2); /* remote free of 66 */
	ck_assert_uint_eq(mspan_sweep(s), 1024 - 99);
	ck_assert(mspan_obj_live(s, 66) == false); /* still reads as freed */
	ck_assert(mspan_has_remote(s));
	atomic_store(&mspan_remote_seen, true);
	ck_assert_uint_eq(mspan_sweep(s), 1024 - 98);
	ck_assert(!mspan_has_remote(s));
	ck_assert_uint_eq(s->alloc_count, 98);
	mheap_free_span(NULL, s);
}
END_TEST

/* The owner's fast free as gm_free runs it. */
static int owner_free(mcache_t *c, void *p)
{
	return mcache_free_fast(c, p);
}

START_TEST(cache_returns_empty_spans)
{
	mcache_t *c = mcache_get();
	ck_assert_ptr_nonnull(c);
	spanclass_t spc = spanclass_make(51, 0); /* 8192 B, 1 per 8 KiB span */
	ck_assert_uint_eq(sizeclass_size[51], 8192);
	ck_assert_uint_eq(sizeclass_npages[51], 1);
	enum { KEEP = MCACHE_EMPTY_KEEP_BYTES / 8192, N = KEEP + 32 };
	static void *p[N];
	for (int i = 0; i < N; i++) {
		p[i] = mcache_alloc_fast(c, spc);
		if (p[i] == NULL)
			p[i] = mcache_refill_alloc(c, spc);
		ck_assert_ptr_nonnull(p[i]);
		memset(p[i], i, 8192);
	}
	size_t inuse = atomic_load(&mheap.pages_inuse);
	ck_assert_uint_ge(c->full[spc].n, KEEP + 30);
	ck_assert_uint_eq(c->empty_bytes, 0);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(owner_free(c, p[i]), FREE_DONE);
	/* kept: the current span, one empty span of the class and empty spans
	 * up to MCACHE_EMPTY_KEEP_BYTES; the other 30 went back to mheap */
	ck_assert_uint_le(c->empty_bytes, MCACHE_EMPTY_KEEP_BYTES);
	ck_assert_uint_eq(c->empty_bytes, (size_t)KEEP * 8192);
	ck_assert_uint_le(c->full[spc].n + c->partial[spc].n, 1 + KEEP);
	size_t kept = atomic_load(&mheap.pages_inuse);
	ck_assert_uint_le(kept, inuse - 30);
	/* the kept spans serve the class again without the page heap */
	for (int i = 0; i < KEEP; i++) {
		p[i] = mcache_alloc_fast(c, spc);
		if (p[i] == NULL)
			p[i] = mcache_refill_alloc(c, spc);
		ck_assert_ptr_nonnull(p[i]);
	}
	ck_assert_uint_eq(atomic_load(&mheap.pages_inuse), kept);
	ck_assert_uint_le(c->empty_bytes, 8192); /* the uncounted one may go first */
	for (int i = 0; i < KEEP; i++)
		ck_assert_int_eq(owner_free(c, p[i]), FREE_DONE);
	ck_assert_uint_eq(c->empty_bytes, (size_t)KEEP * 8192);
	/* malloc_trim's release: only the class's one empty span stays */
	mcache_release_kept(c);
	ck_assert_uint_eq(c->empty_bytes, 0);
	ck_assert_uint_le(c->full[spc].n + c->partial[spc].n, 1);
	ck_assert_uint_le(atomic_load(&mheap.pages_inuse), kept - KEEP);
	/* a double free is refused by the fast path */
	void *q = mcache_alloc_fast(c, spc);
	if (q == NULL)
		q = mcache_refill_alloc(c, spc);
	ck_assert_int_eq(owner_free(c, q), FREE_DONE);
	ck_assert_int_eq(owner_free(c, q), FREE_SLOW);
}
END_TEST

START_TEST(large_resize_in_place)
{
	mspan_t *s = mheap_alloc_span(NULL, 10, spanclass_make(0, 0), 0);
	mspan_t *t = mheap_alloc_span(NULL, 10, spanclass_make(0, 0), 0);
	ck_assert_uint_eq(t->base, s->base + 10 * GM_PAGE_SIZE);
	ck_assert(!mheap_resize_large(s, 15)); /* t is in the way */
	mheap_free_span(NULL, t);
	ck_assert(mheap_resize_large(s, 15));
	ck_assert_uint_eq(s->npages, 15);
	ck_assert_ptr_eq(arena_span_of(s->base), s);
	/* the grown pages are taken: another span cannot get them */
	mspan_t *u = mheap_alloc_span(NULL, 5, spanclass_make(0, 0), 0);
	ck_assert(u->base >= s->base + 15 * GM_PAGE_SIZE || u->base + 5 * GM_PAGE_SIZE <= s->base);
	mheap_free_span(NULL, u);
	ck_assert(mheap_resize_large(s, 4));
	ck_assert_uint_eq(s->npages, 4);
	ck_assert_ptr_eq(arena_span_of(s->base), s);
	/* the freed tail is free again: the next 11-page run can start there */
	mspan_t *v = mheap_alloc_span(NULL, 11, spanclass_make(0, 0), 0);
	ck_assert_uint_eq(v->base, s->base + 4 * GM_PAGE_SIZE);
	mheap_free_span(NULL, v);
	mheap_free_span(NULL, s);
}
END_TEST

START_TEST(central_takes_back_spans)
{
	mcache_t *c = mcache_get();
	spanclass_t spc = spanclass_make(10, 1); /* 128 B noscan */
	mspan_t *s = mcentral_cache_span(c, spc);
	ck_assert_ptr_nonnull(s);
	ck_assert_ptr_eq(atomic_load(&s->owner), c);
	size_t idx = mspan_next_free_index(s);
	s->alloc_count++;
	/* keep one object: the span goes to the central partial list */
	s->list = SPAN_LIST_NONE;
	size_t before = mcentral[spc].partial.n;
	mcentral_uncache_span(s);
	ck_assert_ptr_null(atomic_load(&s->owner));
	ck_assert_uint_eq(mcentral[spc].partial.n, before + 1);
	/* a remote free of that object, then reclaim: the span goes home */
	atomic_store(&mspan_remote_seen, true);
	atomic_fetch_or(&s->remote_bits[idx / 64], 1ull << (idx % 64));
	uintptr_t base = s->base;
	mcentral_reclaim_all();
	ck_assert_uint_eq(mcentral[spc].partial.n, before);
	ck_assert_ptr_null(arena_span_of(base));
}
END_TEST

int main(void)
{
	Suite *su = suite_create("mheap");
	TCase *tc = tcase_create("spans");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, span_alloc_maps_pages);
	tcase_add_test(tc, heap_grows_in_chunks);
	tcase_add_test(tc, large_span_crosses_chunks);
	tcase_add_test(tc, aligned_runs);
	tcase_add_test(tc, reuse_needs_zero);
	tcase_add_test(tc, span_line_layout);
	tcase_add_test(tc, next_free_index_walks_words);
	tcase_add_test(tc, sweep_takes_in_remote_frees);
	tcase_add_test(tc, sweep_reads_remote_after_first_remote_free);
	tcase_add_test(tc, sweep_one_word);
	tcase_add_test(tc, free_map_words);
	tcase_add_test(tc, cache_returns_empty_spans);
	tcase_add_test(tc, large_resize_in_place);
	tcase_add_test(tc, central_takes_back_spans);
	suite_add_tcase(su, tc);
	SRunner *sr = srunner_create(su);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed;
}
