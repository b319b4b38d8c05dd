/*
 * mheap.c -- the page heap: spans of whole pages (Go's mheap.go).
 *
 * Callers: mcentral.c (small spans), malloc.c (large blocks, aligned page
 * runs), mcache.c (page cache, span structs), scavenge.c (mheap_scavenge),
 * stats/heap walk.
 *
 * One lock, mheap.lock (rank MHEAP, the innermost lock), protects the page
 * allocator (pagealloc.c), the span-struct fixallocs, arena growth and each
 * arena's zeroed_base.  Two paths avoid it, as Go's do:
 *   - a thread cache's page cache (64 aligned pages taken at once with
 *     pagealloc_alloc_to_cache) serves spans of fewer than 16 pages;
 *   - a thread cache keeps a few free span structs per bitmap size.
 * So a small span costs the lock only once per 64 pages.
 *
 * A span struct holds two bitmaps after its header (mspan_t.bits): the free
 * map (holder) and remote (atomic, on its own cache line so remote frees do
 * not bounce the owner's allocation state).  Bitmap sizes are 1, 2, 4, 8 or 16
 * words; one fixalloc per size.
 *
 * Zeroing (Go's needzero): pages are known to be zero when they lie above
 * their arena's zeroed_base (never handed out) or when every page was
 * scavenged with MADV_DONTNEED.  Otherwise span->needzero = 1.
 *
 * Reclaim: a span allocation first sweeps the central lists of the classes
 * where a thread freed a block of a span no cache owns (mcentral_note_remote,
 * paced by mheap_reclaim_debt), so spans emptied by remote frees after their
 * owner exited go back to the page heap without waiting for growth.
 *
 * Growth: when the page allocator has no room, first sweep the central
 * lists (mheap_reclaim: spans emptied by remote frees of exited threads),
 * then map a range of whole 4 MiB chunks (at least mheap_grow_step: a quarter
 * of the heap, up to an arena) after the last one (arena.c) and add it to
 * the page allocator as free, scavenged pages.
 *
 * Invariants:
 *   pages_inuse = sum of npages over SPAN_INUSE and SPAN_CACHED spans
 *   pagealloc_total_pages = arena_mapped_bytes / 8 KiB
 *   spans[page] == s for every page of a live small span and for the first
 *   page of a live large span; NULL for free pages and large interiors.
 */
#include "mheap.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "arena.h"
#include "fixalloc.h"
#include "mcache.h"
#include "mcentral.h"
#include "os_linux.h"
#include "sizeclass.h"
#include "scavenge.h"
#include "stats.h"

mheap_t mheap;

static size_t mheap_spanstruct_size[MHEAP_SPAN_KINDS];
static bool mheap_used_madv_free;  /* any scavenge with MADV_FREE: scavenged != zero */

unsigned mheap_nwords_log2(size_t nelems)
{
	size_t nw = (nelems + 63) / 64;
	unsigned k = 0;
	while (((size_t)1 << k) < nw)
		k++;
	return k;
}

bool mheap_init(void)
{
	gm_mutex_init(&mheap.lock, LOCKRANK_MHEAP);
	for (unsigned k = 0; k < MHEAP_SPAN_KINDS; k++) {
		size_t nw = (size_t)1 << k;
		size_t off = mspan_remote_off(k);
		mheap_spanstruct_size[k] = (off + nw * sizeof(uint64_t) + 63) & ~(size_t)63;
		fixalloc_init_slabs(&mheap.spanalloc[k], mheap_spanstruct_size[k]);
	}
	if (!arena_init())
		return false;
	return pagealloc_init(&mheap.pages);
}

static void mheap_spanstruct_setup(mspan_t *s, unsigned kind)
{
	s->nwords_log2 = (uint8_t)kind;
	s->remote_bits = (_Atomic uint64_t *)((char *)s + mspan_remote_off(kind));
}

mspan_t *mheap_spanstruct_alloc(unsigned kind)
{
	mspan_t *s = fixalloc_alloc(&mheap.spanalloc[kind]);
	if (s != NULL)
		mheap_spanstruct_setup(s, kind);
	return s;
}

void mheap_spanstruct_free(mspan_t *s)
{
	fixalloc_free(&mheap.spanalloc[s->nwords_log2], s);
}

/* A span struct from the cache's stash or the heap (refilled in batches). */
static mspan_t *mheap_get_spanstruct(mcache_t *c, unsigned kind)
{
	if (c != NULL && c->live) {
		if (c->nspanstructs[kind] == 0) {
			gm_mutex_lock(&mheap.lock);
			while (c->nspanstructs[kind] < MCACHE_SPANSTRUCTS / 2) {
				mspan_t *s = mheap_spanstruct_alloc(kind);
				if (s == NULL)
					break;
				/* set up: an unused stashed struct freed at thread
				 * exit goes back by its nwords_log2 */
				c->spanstructs[kind][c->nspanstructs[kind]++] = s;
			}
			gm_mutex_unlock(&mheap.lock);
			if (c->nspanstructs[kind] == 0)
				return NULL;
		}
		mspan_t *s = c->spanstructs[kind][--c->nspanstructs[kind]];
		memset(s, 0, mheap_spanstruct_size[kind]);
		mheap_spanstruct_setup(s, kind);
		return s;
	}
	gm_mutex_lock(&mheap.lock);
	mspan_t *s = mheap_spanstruct_alloc(kind);
	gm_mutex_unlock(&mheap.lock);
	return s;
}

static void mheap_put_spanstruct(mcache_t *c, mspan_t *s)
{
	unsigned kind = s->nwords_log2;
	if (c != NULL && c->live && c->nspanstructs[kind] < MCACHE_SPANSTRUCTS) {
		c->spanstructs[kind][c->nspanstructs[kind]++] = s;
		return;
	}
	gm_mutex_lock(&mheap.lock);
	mheap_spanstruct_free(s);
	gm_mutex_unlock(&mheap.lock);
}

/* Growth step: a quarter of what is mapped, between one chunk (4 MiB) and
 * one arena (64 MiB), so a small program maps 4 MiB and a growing one
 * reaches 1 GiB in about 25 growths (each sweeps mcentral first). */
static size_t mheap_grow_step(void)
{
	size_t step = arena_mapped_bytes() / 4;
	if (step < GM_CHUNK_SIZE)
		step = GM_CHUNK_SIZE;
	if (step > GM_ARENA_SIZE)
		step = GM_ARENA_SIZE;
	return step & ~(GM_CHUNK_SIZE - 1);
}

/* Map more heap for at least npages; under mheap.lock. */
static bool mheap_grow(size_t npages)
{
	size_t bytes = npages << GM_PAGE_SHIFT;
	if (bytes >> GM_PAGE_SHIFT != npages)
		return false;
	bytes = (bytes + GM_CHUNK_SIZE - 1) & ~(GM_CHUNK_SIZE - 1);
	if (bytes == 0)
		return false;
	size_t step = mheap_grow_step();
	uintptr_t base = 0;
	if (bytes < step) {
		base = arena_grow(step);
		if (base != 0)
			bytes = step;
		/* else the OS refused the step (`ulimit -v`, overcommit): what
		 * this allocation needs may still fit */
	}
	if (base == 0)
		base = arena_grow(bytes);
	if (base == 0)
		return false;
	if (!pagealloc_grow(&mheap.pages, base, bytes))
		return false;
	size_t mapped = arena_mapped_bytes();
	if (mapped > mheap.mapped_peak)
		mheap.mapped_peak = mapped;
	return true;
}

/* Pages [base, +npages) under mheap.lock; grows the heap when needed.
 * Returns 0 when the OS refuses memory. */
static uintptr_t mheap_alloc_pages_locked(size_t npages, size_t align,
                                          size_t *scav, bool *reclaimed)
{
	size_t extra = align > GM_PAGE_SIZE ? (align >> GM_PAGE_SHIFT) - 1 : 0;
	size_t total = npages + extra;
	if (total < npages)
		return 0;
	for (;;) {
		uintptr_t base = pagealloc_alloc(&mheap.pages, total, scav);
		if (base != 0) {
			if (extra == 0)
				return base;
			uintptr_t aligned = (base + align - 1) & ~(uintptr_t)(align - 1);
			size_t head = (aligned - base) >> GM_PAGE_SHIFT;
			size_t tail = total - head - npages;
			if (head)
				pagealloc_free(&mheap.pages, base, head);
			if (tail)
				pagealloc_free(&mheap.pages,
				               aligned + (npages << GM_PAGE_SHIFT), tail);
			/* scav counted the whole run; be conservative */
			if (head || tail)
				*scav = 0;
			return aligned;
		}
		if (!*reclaimed) {
			/* sweep central lists without the heap lock, then retry */
			*reclaimed = true;
			gm_mutex_unlock(&mheap.lock);
			size_t got = mcentral_reclaim_all() + mheap_huge_flush();
			gm_mutex_lock(&mheap.lock);
			if (got > 0)
				continue;
		}
		/* Growing: first stay under the memory limit by releasing free
		 * pages (they cannot serve this request: no run is long enough). */
		gm_mutex_unlock(&mheap.lock);
		scavenge_for_limit(total << GM_PAGE_SHIFT);
		gm_mutex_lock(&mheap.lock);
		if (!mheap_grow(total))
			return 0;
	}
}

static void mheap_init_span(mspan_t *s, uintptr_t base, size_t npages,
                            spanclass_t spc, bool needzero)
{
	unsigned sc = spanclass_sizeclass(spc);
	s->base = base;
	s->npages = npages;
	s->spanclass = spc;
	s->needzero = needzero;
	s->cache_word = 0;
	s->alloc_count = 0;
	s->free_trigger = 0;
	s->free_left = 0;
	s->kept_empty = 0;
	s->zero_probe = 0;
	s->list = SPAN_LIST_NONE;
	atomic_store_explicit(&s->owner, NULL, memory_order_relaxed);
	if (sc == 0) {
		s->elemsize = 0;
		s->nelems = 1;
		s->divmagic = 0;
		s->free_objlimit = 0;
		s->small_bytes = 0;
		s->bits[0] = 0; /* the block: allocated */
	} else {
		s->elemsize = sizeclass_size[sc];
		s->nelems = sizeclass_nobjs[sc];
		s->divmagic = sizeclass_divmagic[sc];
		s->free_objlimit = sizeclass_objlimit(sc);
		s->small_bytes = (uint32_t)(s->npages << GM_PAGE_SHIFT);
		for (size_t w = 0; w < mspan_nwords(s); w++) {
			s->bits[w] = mspan_valid_mask(s, w); /* every slot free */
			atomic_store_explicit(&s->remote_bits[w], 0,
			                      memory_order_relaxed);
		}
	}
	atomic_store_explicit(&s->state, SPAN_INUSE, memory_order_relaxed);
}

/* spans[] entries of a span: every page of a small span (free() of any of
 * its objects looks its page up), only the first page of a large block
 * (free, realloc and malloc_usable_size get its base), so a 64 MiB block
 * costs one entry instead of 8192 on malloc and on free.  Interior pages
 * of a large block read NULL: a pointer into them is reported as not
 * allocated by gomalloc. */
static void mheap_set_spans(mspan_t *s, uintptr_t base, size_t npages, mspan_t *to)
{
	if (mspan_is_large(s))
		npages = 1;
	arena_set_spans(base, npages, to);
}

/* Pages still to be allocated before the next mcentral_reclaim_pending:
 * the spans that reclaim looked at, so its work stays a fraction of the
 * allocations it saves from fresh pages.  Relaxed: an estimate. */
static _Atomic size_t mheap_reclaim_debt;

/* Before pages are taken for a span: give back the spans that frees by
 * other threads emptied in mcentral (mcentral_note_remote), so the heap
 * reuses their pages instead of touching new ones. */
static NOINLINE void mheap_reclaim_before_alloc(size_t npages)
{
	size_t debt = atomic_load_explicit(&mheap_reclaim_debt, memory_order_relaxed);
	if (debt > npages) {
		atomic_store_explicit(&mheap_reclaim_debt, debt - npages, memory_order_relaxed);
		return;
	}
	atomic_store_explicit(&mheap_reclaim_debt, mcentral_reclaim_pending(),
	                      memory_order_relaxed);
}

mspan_t *mheap_alloc_span(mcache_t *c, size_t npages, spanclass_t spc,
                          size_t align)
{
	if (UNLIKELY(atomic_load_explicit(&mcentral_remote_pending, memory_order_relaxed)))
		mheap_reclaim_before_alloc(npages);
	unsigned sc = spanclass_sizeclass(spc);
	unsigned kind = sc == 0 ? 0 : mheap_nwords_log2(sizeclass_nobjs[sc]);
	mspan_t *s = mheap_get_spanstruct(c, kind);
	if (s == NULL)
		return NULL;
	uintptr_t base = 0;
	bool needzero = true;
	size_t scav = 0;
	size_t fresh = 0; /* bytes never handed out before: heap growth */

	/* Lock-free: the thread's page cache (Go: npages < pageCachePages/4). */
	if (c != NULL && c->live && align <= GM_PAGE_SIZE &&
	    npages < GM_PAGE_CACHE_PAGES / 4) {
		mcache_idle_lock(c);
		if (c->pcache.cache == 0) {
			bool reclaimed = true;
			gm_mutex_lock(&mheap.lock);
			c->pcache = pagealloc_alloc_to_cache(&mheap.pages);
			if (c->pcache.cache == 0 && mheap_grow(GM_PAGE_CACHE_PAGES))
				c->pcache = pagealloc_alloc_to_cache(&mheap.pages);
			(void)reclaimed;
			if (c->pcache.cache != 0) {
				/* Pages of the group above zeroed_base are fresh. */
				c->pcache_fresh = arena_alloc_needzero(
				    c->pcache.base,
				    GM_PAGE_CACHE_PAGES << GM_PAGE_SHIFT, NULL) ? 0 : ~0ull;
			}
			gm_mutex_unlock(&mheap.lock);
		}
		if (c->pcache.cache != 0) {
			uint64_t scav_before = c->pcache.scav;
			uintptr_t pc_base = c->pcache.base;
			base = pagecache_alloc(&c->pcache, npages, &scav);
			if (scav != 0)
				atomic_fetch_sub_explicit(&mheap.pages.cache_scav_pages, scav,
				                          memory_order_relaxed);
			if (base != 0) {
				unsigned first = (unsigned)((base - pc_base) >> GM_PAGE_SHIFT);
				uint64_t run = (npages == 64 ? ~0ull : ((1ull << npages) - 1)) << first;
				uint64_t zero = c->pcache_fresh;
				fresh = (size_t)gm_popcount64(zero & run) << GM_PAGE_SHIFT;
				if (!mheap_used_madv_free)
					zero |= scav_before;
				needzero = (zero & run) != run;
			}
		}
		mcache_idle_unlock(c);
	}
	if (base == 0) {
		bool reclaimed = false;
		gm_mutex_lock(&mheap.lock);
		base = mheap_alloc_pages_locked(npages, align, &scav, &reclaimed);
		if (base != 0) {
			bool below = arena_alloc_needzero(base, npages << GM_PAGE_SHIFT, &fresh);
			bool scav_zero = scav == npages && !mheap_used_madv_free;
			needzero = below && !scav_zero;
		}
		gm_mutex_unlock(&mheap.lock);
		if (base == 0) {
			mheap_put_spanstruct(c, s);
			return NULL;
		}
	}
	if (scav != 0) {
		/* Paging in grows retained memory: release free resident
		 * pages that could not serve this request, to stay under the
		 * limit and near the recent peak in use (Go's allocSpan after a
		 * heap growth; scavenge_for_growth). */
		size_t inuse = atomic_load_explicit(&mheap.pages_inuse,
		                                    memory_order_relaxed) + npages;
		scavenge_for_growth(scav << GM_PAGE_SHIFT, fresh, inuse << GM_PAGE_SHIFT);
		os_used((void *)base, npages << GM_PAGE_SHIFT);
	}
	mheap_init_span(s, base, npages, spc, needzero);
	mheap_set_spans(s, base, npages, s);
	atomic_fetch_add_explicit(&mheap.pages_inuse, npages, memory_order_relaxed);
	size_t inuse = atomic_load_explicit(&mheap.pages_inuse, memory_order_relaxed);
	if (inuse > atomic_load_explicit(&mheap.inuse_peak, memory_order_relaxed))
		atomic_store_explicit(&mheap.inuse_peak, inuse, memory_order_relaxed);
	return s;
}

void mheap_free_span(mcache_t *c, mspan_t *s)
{
	uintptr_t base = s->base;
	size_t npages = s->npages;
	atomic_store_explicit(&s->state, SPAN_DEAD, memory_order_relaxed);
	mheap_set_spans(s, base, npages, NULL);
	atomic_store_explicit(&s->owner, NULL, memory_order_relaxed);
	atomic_fetch_sub_explicit(&mheap.pages_inuse, npages, memory_order_relaxed);
	gm_mutex_lock(&mheap.lock);
	pagealloc_free(&mheap.pages, base, npages);
	if (c == NULL || !c->live)
		mheap_spanstruct_free(s);
	gm_mutex_unlock(&mheap.lock);
	if (c != NULL && c->live)
		mheap_put_spanstruct(c, s);
	scavenge_note_growth();
}

/* ---- the huge slot ----
 * A loop that frees and allocates one block bigger than the thread caches
 * keep (4 MiB) went through the page allocator twice: a 16 MiB malloc+free
 * was ~5,200 instructions (summaries of 4 chunks updated both ways under
 * mheap.lock), ~440 ns, against tcmalloc's 65 and glibc's 22.  The slot
 * holds the last such block, whole, for the next malloc of its size.  One
 * block for the whole process (not per thread: DESIGN's reason for the
 * thread caches' 4 MiB limit is memory pinned per thread), given back to
 * the heap when a malloc of another size looks (its pages may serve it),
 * before the heap grows (mheap_alloc_pages_locked's reclaim step), by
 * malloc_trim, and by the scavenger when no malloc or free used it for a
 * tick, 250 ms (an idle block then ages like any free pages; with
 * cache_idle_ms:0, as the thread caches' blocks, never).
 * Its span is SPAN_CACHED (a free of it is a double free) and counts in
 * pages_inuse, as a thread cache's large block does.  An atomic exchange
 * on each put and take: the large path, not the fast paths. */
static mspan_t *_Atomic mheap_huge;
static _Atomic bool mheap_huge_used;

/* A put or a take: the scavenger's idle flush waits (a plain store, and
 * only when the flag is clear). */
static inline void mheap_huge_note_use(void)
{
	if (!atomic_load_explicit(&mheap_huge_used, memory_order_relaxed))
		atomic_store_explicit(&mheap_huge_used, true, memory_order_relaxed);
}

/* The slot's block, now the caller's; NULL if empty (no exchange then). */
static inline mspan_t *mheap_huge_grab(void)
{
	if (atomic_load_explicit(&mheap_huge, memory_order_relaxed) == NULL)
		return NULL;
	return atomic_exchange_explicit(&mheap_huge, NULL, memory_order_acq_rel);
}

void mheap_huge_put(mcache_t *c, mspan_t *s)
{
	atomic_store_explicit(&s->state, SPAN_CACHED, memory_order_relaxed);
	mheap_huge_note_use();
	mspan_t *old = atomic_exchange_explicit(&mheap_huge, s, memory_order_acq_rel);
	if (old != NULL)
		mheap_free_span(c, old);
	else
		scavenge_wake(); /* a parked scavenger must come to flush it */
}

mspan_t *mheap_huge_take(mcache_t *c, size_t npages)
{
	mspan_t *s = mheap_huge_grab();
	if (s == NULL)
		return NULL;
	if (mspan_large_serves(s, npages)) {
		mheap_huge_note_use();
		s->needzero = 1;
		atomic_store_explicit(&s->state, SPAN_INUSE, memory_order_relaxed);
		return s;
	}
	mheap_free_span(c, s); /* another size: its pages may serve this one */
	return NULL;
}

size_t mheap_huge_flush(void)
{
	mspan_t *s = mheap_huge_grab();
	if (s == NULL)
		return 0;
	size_t npages = s->npages;
	mheap_free_span(NULL, s);
	return npages;
}

bool mheap_huge_flush_idle(uint64_t now, uint64_t idle_ns)
{
	static uint64_t seen_used; /* the scavenger's: under scav_lock */
	if (atomic_load_explicit(&mheap_huge, memory_order_relaxed) == NULL)
		return false;
	if (atomic_exchange_explicit(&mheap_huge_used, false, memory_order_relaxed) ||
	    seen_used == 0) {
		seen_used = now;
		return true;
	}
	if (now - seen_used < idle_ns)
		return true;
	seen_used = 0;
	mheap_huge_flush();
	return false;
}

bool mheap_resize_large(mspan_t *s, size_t npages)
{
	bool ok = true;
	if (npages == s->npages)
		return true;
	gm_mutex_lock(&mheap.lock);
	if (npages < s->npages) {
		uintptr_t tail = s->base + (npages << GM_PAGE_SHIFT);
		size_t ntail = s->npages - npages; /* large: no spans[] entries */
		pagealloc_free(&mheap.pages, tail, ntail);
		atomic_fetch_sub_explicit(&mheap.pages_inuse, ntail, memory_order_relaxed);
		s->npages = npages;
	} else {
		uintptr_t next = s->base + (s->npages << GM_PAGE_SHIFT);
		size_t more = npages - s->npages;
		size_t scav = 0;
		if (arena_of(next) != NULL && arena_of(next + (more << GM_PAGE_SHIFT) - 1) != NULL &&
		    pagealloc_alloc_exact(&mheap.pages, next, more, &scav)) {
			arena_alloc_needzero(next, more << GM_PAGE_SHIFT, NULL);
			atomic_fetch_add_explicit(&mheap.pages_inuse, more, memory_order_relaxed);
			s->npages = npages;
		} else {
			ok = false;
		}
	}
	gm_mutex_unlock(&mheap.lock);
	return ok;
}

void mheap_reclaim(void)
{
	mcentral_reclaim_all();
}

static bool (*mheap_release_fn)(void *p, size_t bytes) = os_unused;

void mheap_set_release_hook(bool (*fn)(void *p, size_t bytes))
{
	mheap_release_fn = fn != NULL ? fn : os_unused;
}

size_t mheap_scavenge(size_t bytes, bool only_old)
{
	(void)only_old;
	size_t want = bytes == 0 ? SIZE_MAX : (bytes + GM_PAGE_SIZE - 1) >> GM_PAGE_SHIFT;
	size_t released = 0;
	uintptr_t search = UINTPTR_MAX;
	while (released < want) {
		size_t n = 0;
		size_t max = want - released;
		if (max > GM_PAGES_PER_CHUNK)
			max = GM_PAGES_PER_CHUNK;
		gm_mutex_lock(&mheap.lock);
		uintptr_t base = pagealloc_scav_take(&mheap.pages, max, &search, &n);
		gm_mutex_unlock(&mheap.lock);
		if (base == 0 || n == 0)
			break;
		bool zero = mheap_release_fn((void *)base, n << GM_PAGE_SHIFT);
		gm_mutex_lock(&mheap.lock);
		if (!zero)
			mheap_used_madv_free = true;
		pagealloc_scav_return(&mheap.pages, base, n);
		gm_mutex_unlock(&mheap.lock);
		released += n;
	}
	/* span structs of the spans freed since: slabs left entirely free
	 * (one per size kept for the next burst) */
	size_t meta = 0;
	gm_mutex_lock(&mheap.lock);
	for (unsigned k = 0; k < MHEAP_SPAN_KINDS; k++)
		meta += fixalloc_release_empty(&mheap.spanalloc[k], 1);
	gm_mutex_unlock(&mheap.lock);
	atomic_fetch_add_explicit(&mheap.scavenged_total, (released << GM_PAGE_SHIFT) + meta,
	                          memory_order_relaxed);
	return (released << GM_PAGE_SHIFT) + meta;
}

void mheap_fork_prepare(void)
{
	gm_mutex_lock(&mheap.lock);
}

void mheap_fork_parent(void)
{
	gm_mutex_unlock(&mheap.lock);
}

void mheap_fork_child(void)
{
	gm_mutex_init(&mheap.lock, LOCKRANK_MHEAP);
}

/* ---- statistics and the heap walk (racy for other threads' spans) ---- */

typedef int (*mheap_span_fn)(mspan_t *s, void *arg);

/* Call fn for every live span, under mheap.lock. */
static int mheap_for_each_span(mheap_span_fn fn, void *arg)
{
	for (heap_arena_t *ha = arena_first(); ha != NULL; ha = ha->next) {
		for (size_t i = 0; i < GM_PAGES_PER_ARENA; i++) {
			mspan_t *s = atomic_load_explicit(&ha->spans[i], memory_order_acquire);
			if (s == NULL)
				continue;
			uintptr_t page = ha->base + (i << GM_PAGE_SHIFT);
			if (s->base != page)
				continue;
			if (atomic_load_explicit(&s->state, memory_order_relaxed) != SPAN_INUSE)
				continue;
			int r = fn(s, arg);
			if (r != 0)
				return r;
		}
	}
	return 0;
}

static int mheap_stats_span(mspan_t *s, void *arg)
{
	stats_snapshot_t *out = arg;
	unsigned sc = spanclass_sizeclass(s->spanclass);
	out->g.heap_inuse += s->npages << GM_PAGE_SHIFT;
	if (sc == 0) {
		out->g.nlarge++;
		out->g.large_allocated += s->npages << GM_PAGE_SHIFT;
		out->g.allocated += s->npages << GM_PAGE_SHIFT;
		out->g.nblocks++;
		return 0;
	}
	size_t live = mspan_live_count(s);
	stats_class_t *cl = &out->cls[sc];
	cl->size = s->elemsize;
	cl->nspans++;
	cl->nobjs_total += s->nelems;
	cl->nobjs_inuse += live;
	out->g.allocated += live * s->elemsize;
	out->g.nblocks += live;
	return 0;
}

void mheap_stats_snapshot(stats_snapshot_t *out)
{
	memset(out, 0, sizeof *out);
	for (unsigned c = 1; c < GM_NUM_SIZE_CLASSES; c++)
		out->cls[c].size = sizeclass_size[c];
	if (arena_first() == NULL)
		return;
	gm_mutex_lock(&mheap.lock);
	mheap_for_each_span(mheap_stats_span, out);
	out->g.mapped = arena_mapped_bytes();
	size_t free_pages = pagealloc_free_pages(&mheap.pages);
	size_t scav_pages = pagealloc_scav_pages(&mheap.pages);
	out->g.free_retained = (free_pages - scav_pages) << GM_PAGE_SHIFT;
	out->g.released = pagealloc_released_pages(&mheap.pages) << GM_PAGE_SHIFT;
	out->g.metadata = persistent_bytes();
	out->g.nthreads = mcache_count();
	out->g.scavenged_total = atomic_load_explicit(&mheap.scavenged_total, memory_order_relaxed);
	out->peak_mapped = mheap.mapped_peak;
	gm_mutex_unlock(&mheap.lock);
}

typedef struct walk_ctx {
	gm_walk_fn fn;
	void *arg;
} walk_ctx_t;

static int mheap_walk_span(mspan_t *s, void *arg)
{
	walk_ctx_t *w = arg;
	gm_kind_t kind = spanclass_noscan(s->spanclass) ? GM_KIND_NOSCAN : GM_KIND_SCAN;
	if (mspan_is_large(s))
		return w->fn((void *)s->base, s->npages << GM_PAGE_SHIFT, kind, w->arg);
	for (size_t i = 0; i < s->nelems; i++) {
		if (!mspan_obj_live(s, i))
			continue;
		int r = w->fn((void *)(s->base + i * s->elemsize), s->elemsize, kind, w->arg);
		if (r != 0)
			return r;
	}
	return 0;
}

int mheap_heap_walk(gm_walk_fn fn, void *arg)
{
	if (arena_first() == NULL)
		return 0;
	walk_ctx_t w = { fn, arg };
	gm_mutex_lock(&mheap.lock);
	int r = mheap_for_each_span(mheap_walk_span, &w);
	gm_mutex_unlock(&mheap.lock);
	return r;
}
