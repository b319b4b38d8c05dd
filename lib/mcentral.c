/*
 * mcentral.c -- one central list per span class (Go's mcentral.go) and the
 * "sweep" that turns explicit frees back into free slots (Go's mgcsweep.go,
 * adapted to free()).
 *
 * Who holds a span (and so may touch its non-atomic state):
 *   - the thread whose mcache owns it (span->owner == that cache), or
 *   - the mcentral of its class, under that mcentral's lock (owner NULL).
 * Anyone may set bits in remote_bits (atomic OR); only the holder consumes
 * them (atomic exchange) when it sweeps.  mcentral lists hold spans that no
 * cache owns: spans given back by exiting or idle threads, and spans a
 * thread gave up because it held too many partial ones.
 *
 * cache_span: take a partial span (swept again, to pick up remote frees), or
 * sweep up to MCENTRAL_SWEEP_BUDGET spans of the full list looking for
 * remote frees (Go's spanBudget), or allocate a new span from mheap.
 * A span that turns out empty when swept goes back to mheap.
 *
 * Locks: mcentral[spc].lock (rank MCENTRAL, never two at once), then
 * mheap.lock inside it to free or allocate spans.
 *
 * Sweep invariant (for every object i of span s):
 *   allocated_after(i) = (i < freeindex || alloc_bits[i]) && !free_bits[i]
 *                        && !remote_bits[i]
 * and afterwards freeindex = 0, alloc_bits = allocated_after,
 * free_bits = remote_bits = 0, alloc_count = popcount(alloc_bits).
 */
#include "mcentral.h"

#include <stdlib.h>
#include <string.h>

#include "mcache.h"
#include "message.h"
#include "sizeclass.h"
#include "options.h"

#define MCENTRAL_SWEEP_BUDGET 16

mcentral_t mcentral[GM_NUM_SPAN_CLASSES];
_Atomic bool mspan_remote_seen;

void mcentral_init(void)
{
	for (unsigned i = 0; i < GM_NUM_SPAN_CLASSES; i++) {
		gm_mutex_init(&mcentral[i].lock, LOCKRANK_MCENTRAL);
		mcentral[i].spanclass = (spanclass_t)i;
		memset(&mcentral[i].partial, 0, sizeof(span_list_t));
		memset(&mcentral[i].full, 0, sizeof(span_list_t));
	}
}

/* Mask of the bits of word w that stand for objects of the span. */
static inline uint64_t mask_valid(size_t w, size_t nelems)
{
	return mspan_mask_below(w, nelems);
}

COLD static void mspan_report_double_free(mspan_t *s, size_t idx)
{
	gm_message("free(%p): double free (detected when sweeping)",
	           (void *)(s->base + idx * s->elemsize));
	if (gm_opt.abort_on_error)
		abort();
}

size_t mspan_sweep(mspan_t *s)
{
	/* Only the words that hold objects.  Below freeindex's word every slot was
	 * allocated or taken, so alloc_bits | below(freeindex) is all ones
	 * there (no load of alloc_bits); freeindex's own word or's in its low
	 * bits; the words above it are alloc_bits as they are.  No word has a
	 * bit at or above nelems: freeindex <= nelems, and a small span's
	 * alloc_bits are zeroed when it is made and written only here. */
	size_t nelems = s->nelems;
	size_t nw = mspan_nwords_used(s);
	size_t fi = s->freeindex;
	size_t fw = fi >> 6;
	uint64_t fbelow = (1ull << (fi & 63)) - 1;
	uint64_t *ab = mspan_alloc_bits(s);
	uint64_t *fb = s->free_bits;
	bool remote = atomic_load_explicit(&mspan_remote_seen, memory_order_relaxed);
	size_t count = 0;
	uint64_t freed = 0;
	for (size_t w = 0; w < nw; w++) {
		uint64_t r = 0;
		if (remote && atomic_load_explicit(&s->remote_bits[w], memory_order_relaxed)) {
			r = atomic_exchange_explicit(&s->remote_bits[w], 0, memory_order_acquire);
			if (UNLIKELY((fb[w] & r) != 0))
				mspan_report_double_free(s, w * 64 + (size_t)__builtin_ctzll(fb[w] & r));
		}
		uint64_t f = fb[w] | r;
		fb[w] = 0;
		uint64_t a = w < fw ? ~0ull : (w == fw ? ab[w] | fbelow : ab[w]);
		freed |= f & a;
		a &= ~f;
		ab[w] = a;
		count += (size_t)gm_popcount64(a);
	}
	if (freed != 0)
		s->needzero = 1;
	s->freeindex = 0;
	s->cache_word = 0;
	s->alloc_count = (uint16_t)count;
	mspan_reset_nfree_local(s);
	s->alloc_cache = mspan_load_cache(s, 0);
	return nelems - count;
}

bool mspan_has_remote(mspan_t *s)
{
	size_t nw = mspan_nwords(s);
	for (size_t w = 0; w < nw; w++)
		if (atomic_load_explicit(&s->remote_bits[w], memory_order_relaxed))
			return true;
	return false;
}

size_t mspan_next_free_index(mspan_t *s)
{
	size_t sfi = s->freeindex;
	size_t nelems = s->nelems;
	if (sfi >= nelems)
		return nelems;
	uint64_t ac = s->alloc_cache;
	size_t w = s->cache_word;
	/* freeindex moved past the cached word (the fast path took its last
	 * slot): load freeindex's word */
	if (ac == 0 && sfi / 64 != w) {
		w = sfi / 64;
		ac = mspan_load_cache(s, w) & ~mspan_mask_below(w, sfi);
	}
	while (ac == 0) {
		w++;
		if (w * 64 >= nelems) {
			s->freeindex = (uint16_t)nelems;
			s->alloc_cache = 0;
			return nelems;
		}
		ac = mspan_load_cache(s, w);
	}
	size_t result = w * 64 + (size_t)__builtin_ctzll(ac);
	s->alloc_cache = ac & (ac - 1);
	s->cache_word = (uint8_t)w;
	s->freeindex = (uint16_t)(result + 1);
	return result;
}

bool mspan_obj_live(mspan_t *s, size_t idx)
{
	size_t w = idx / 64;
	uint64_t bit = 1ull << (idx % 64);
	bool alloc = idx < s->freeindex || (mspan_alloc_bits(s)[w] & bit);
	if (!alloc)
		return false;
	if (s->free_bits[w] & bit)
		return false;
	if (atomic_load_explicit(&s->remote_bits[w], memory_order_relaxed) & bit)
		return false;
	return true;
}

size_t mspan_live_count(mspan_t *s)
{
	size_t nw = mspan_nwords(s), live = 0;
	for (size_t w = 0; w < nw; w++) {
		uint64_t valid = mask_valid(w, s->nelems);
		if (valid == 0)
			break;
		uint64_t a = mspan_alloc_bits(s)[w] | mspan_mask_below(w, s->freeindex);
		a &= ~s->free_bits[w];
		a &= ~atomic_load_explicit(&s->remote_bits[w], memory_order_relaxed);
		live += gm_popcount64(a & valid);
	}
	return live;
}

/* Make a swept span with free slots the cache's current span. */
static void mcentral_hand_to(mcache_t *c, mspan_t *s)
{
	s->list = SPAN_LIST_CURRENT;
	atomic_store_explicit(&s->owner, c, memory_order_release);
}

/* Under the central lock: a swept span found empty goes back to mheap. */
static void mcentral_release_empty(mspan_t *s)
{
	s->list = SPAN_LIST_NONE;
	mheap_free_span(NULL, s);
}

mspan_t *mcentral_cache_span(mcache_t *c, spanclass_t spc)
{
	mcentral_t *mc = &mcentral[spc];
	mspan_t *s;
	gm_mutex_lock(&mc->lock);
	while ((s = span_list_pop(&mc->partial)) != NULL) {
		size_t nfree = mspan_sweep(s);
		if (nfree == s->nelems && mc->partial.n > 0) {
			/* keep one empty span for reuse, return extra ones */
			mcentral_release_empty(s);
			continue;
		}
		if (nfree > 0)
			goto found;
		s->list = SPAN_LIST_CENTRAL_FULL;
		span_list_push(&mc->full, s);
	}
	for (unsigned budget = MCENTRAL_SWEEP_BUDGET; budget > 0 && mc->full.n > 0;
	     budget--) {
		s = span_list_pop(&mc->full);
		if (!mspan_has_remote(s)) {
			span_list_push(&mc->full, s); /* rotate */
			continue;
		}
		size_t nfree = mspan_sweep(s);
		if (nfree > 0)
			goto found;
		span_list_push(&mc->full, s);
	}
	gm_mutex_unlock(&mc->lock);

	size_t sc = spanclass_sizeclass(spc);
	s = mheap_alloc_span(c, sizeclass_npages[sc], spc, 0);
	if (s == NULL)
		return NULL;
	mcentral_hand_to(c, s);
	return s;
found:
	gm_mutex_unlock(&mc->lock);
	mcentral_hand_to(c, s);
	return s;
}

void mcentral_uncache_span(mspan_t *s)
{
	mcentral_t *mc = &mcentral[s->spanclass];
	gm_mutex_lock(&mc->lock);
	atomic_store_explicit(&s->owner, NULL, memory_order_release);
	size_t nfree = mspan_sweep(s);
	if (nfree == s->nelems) {
		mcentral_release_empty(s);
	} else if (nfree > 0) {
		s->list = SPAN_LIST_CENTRAL_PARTIAL;
		span_list_push(&mc->partial, s);
	} else {
		s->list = SPAN_LIST_CENTRAL_FULL;
		span_list_push(&mc->full, s);
	}
	gm_mutex_unlock(&mc->lock);
}

size_t mcentral_reclaim_all(void)
{
	size_t released = 0;
	for (unsigned i = 2; i < GM_NUM_SPAN_CLASSES; i++) {
		mcentral_t *mc = &mcentral[i];
		if (mc->full.n == 0 && mc->partial.n == 0)
			continue;
		gm_mutex_lock(&mc->lock);
		mspan_t *s = mc->full.head;
		while (s != NULL) {
			mspan_t *next = s->next;
			if (mspan_has_remote(s)) {
				size_t nfree = mspan_sweep(s);
				if (nfree > 0) {
					span_list_remove(&mc->full, s);
					if (nfree == s->nelems) {
						released += s->npages;
						mcentral_release_empty(s);
					} else {
						s->list = SPAN_LIST_CENTRAL_PARTIAL;
						span_list_push(&mc->partial, s);
					}
				}
			}
			s = next;
		}
		s = mc->partial.head;
		while (s != NULL) {
			mspan_t *next = s->next;
			size_t nfree = mspan_sweep(s);
			if (nfree == s->nelems) {
				span_list_remove(&mc->partial, s);
				released += s->npages;
				mcentral_release_empty(s);
			}
			s = next;
		}
		gm_mutex_unlock(&mc->lock);
	}
	return released;
}

void mcentral_fork_prepare(void)
{
	for (unsigned i = 0; i < GM_NUM_SPAN_CLASSES; i++)
		gm_mutex_lock(&mcentral[i].lock);
}

void mcentral_fork_parent(void)
{
	for (unsigned i = GM_NUM_SPAN_CLASSES; i-- > 0;)
		gm_mutex_unlock(&mcentral[i].lock);
}

void mcentral_fork_child(void)
{
	for (unsigned i = 0; i < GM_NUM_SPAN_CLASSES; i++)
		gm_mutex_init(&mcentral[i].lock, LOCKRANK_MCENTRAL);
}
