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
 * Reclaim: frees into spans these lists hold (their owner exited or gave
 * them back) mark the class (mcentral_note_remote); mheap_alloc_span then
 * sweeps the marked classes' lists (mcentral_reclaim_pending), and before
 * the heap grows every class's (mcentral_reclaim_all).
 *
 * Locks: mcentral[spc].lock (rank MCENTRAL, never two at once), then
 * mheap.lock inside it to free or allocate spans.
 *
 * Sweep invariant (for every object i of span s):
 *   free_after(i) = free_map[i] || remote_bits[i]
 * and afterwards free_map = free_after, remote_bits = 0, cache_word = 0,
 * alloc_count = nelems - popcount(free_map).  The owner's own frees are in
 * the free map already (mheap.h); a sweep only takes in the remote ones.
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

COLD void mspan_report_double_free(mspan_t *s, size_t idx)
{
	gm_message("free(%p): double free (detected when sweeping)",
	           (void *)(s->base + idx * s->elemsize));
	if (gm_opt.abort_on_error)
		abort();
}

size_t mspan_nfree_map(const mspan_t *s)
{
	/* at a refill most words are 0 (the allocation took them): a test
	 * each, no count */
	size_t nw = mspan_nwords_used(s), n = 0;
	for (size_t w = 0; w < nw; w++) {
		uint64_t f = s->bits[w];
		if (f != 0)
			n += (size_t)gm_popcount64(f);
	}
	return n;
}

size_t mspan_sweep_words(mspan_t *s)
{
	/* Only the words that hold objects; no word has a bit at or above
	 * nelems (the free map never gets one, a remote free is of an object
	 * start below nelems). */
	size_t nw = mspan_nwords_used(s);
	uint64_t *fm = mspan_free_map(s);
	bool remote = atomic_load_explicit(&mspan_remote_seen, memory_order_relaxed);
	size_t nfree = 0;
	uint64_t took = 0;
	for (size_t w = 0; w < nw; w++) {
		uint64_t f = fm[w];
		if (remote)
			took |= mspan_fold_remote(s, w, &f);
		nfree += (size_t)gm_popcount64(f);
	}
	return mspan_sweep_done(s, nfree, took);
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
	return mspan_take_free_from(s, s->cache_word);
}

bool mspan_obj_live(mspan_t *s, size_t idx)
{
	if (idx >= s->nelems)
		return false;
	size_t w = idx / 64;
	uint64_t bit = 1ull << (idx % 64);
	if (__atomic_load_n(&mspan_free_map(s)[w], __ATOMIC_RELAXED) & bit)
		return false;
	if (atomic_load_explicit(&s->remote_bits[w], memory_order_relaxed) & bit)
		return false;
	return true;
}

size_t mspan_live_count(mspan_t *s)
{
	size_t nw = mspan_nwords(s), live = 0;
	for (size_t w = 0; w < nw; w++) {
		uint64_t valid = mspan_valid_mask(s, w);
		if (valid == 0)
			break;
		uint64_t a = ~__atomic_load_n(&mspan_free_map(s)[w], __ATOMIC_RELAXED);
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

/* Sweep mc's full spans with remote frees and its partial spans; empty
 * ones go back to mheap.  Returns the pages released; *walked counts the
 * spans looked at. */
static size_t mcentral_reclaim_class(mcentral_t *mc, size_t *walked)
{
	size_t released = 0;
	gm_mutex_lock(&mc->lock);
	mspan_t *s = mc->full.head;
	while (s != NULL) {
		mspan_t *next = s->next;
		++*walked;
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
		++*walked;
		size_t nfree = mspan_sweep(s);
		if (nfree == s->nelems) {
			span_list_remove(&mc->partial, s);
			released += s->npages;
			mcentral_release_empty(s);
		}
		s = next;
	}
	gm_mutex_unlock(&mc->lock);
	return released;
}

size_t mcentral_reclaim_all(void)
{
	size_t released = 0, walked = 0;
	for (unsigned i = 2; i < GM_NUM_SPAN_CLASSES; i++) {
		mcentral_t *mc = &mcentral[i];
		if (mc->full.n == 0 && mc->partial.n == 0)
			continue;
		atomic_store_explicit(&mc->remote_pending, false, memory_order_relaxed);
		released += mcentral_reclaim_class(mc, &walked);
	}
	return released;
}

_Atomic bool mcentral_remote_pending;

size_t mcentral_reclaim_pending(void)
{
	/* one thread at a time takes the marks: the exchange (a slow path's
	 * RMW, at most once per mark) */
	if (!atomic_exchange_explicit(&mcentral_remote_pending, false, memory_order_relaxed))
		return 0;
	size_t walked = 0;
	for (unsigned i = 2; i < GM_NUM_SPAN_CLASSES; i++) {
		mcentral_t *mc = &mcentral[i];
		if (!atomic_load_explicit(&mc->remote_pending, memory_order_relaxed))
			continue;
		atomic_store_explicit(&mc->remote_pending, false, memory_order_relaxed);
		(void)mcentral_reclaim_class(mc, &walked);
	}
	return walked;
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
