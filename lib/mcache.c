/*
 * mcache.c -- the per-thread cache (Go's mcache.go): the slow paths behind
 * the fast paths of mcache_inline.h, thread creation and exit.
 *
 * Each thread has one mcache_t, reached through initial-exec TLS
 * (mcache_tls).  A thread that never allocated points at mcache_empty, whose
 * every alloc[] slot is mcache_empty_span (free map 0), so the malloc fast
 * path fails into mcache_refill_alloc, which creates the real cache.
 *
 * Ownership (the difference from Go, see docs/design.md): a span a thread
 * allocated from stays owned by that thread until the thread exits or the
 * span is empty.  Per span class the cache holds
 *   alloc[spc]   the current span (fast path allocates from it),
 *   partial[spc] owned spans that received local frees,
 *   full[spc]    owned spans with no known free slot (remote frees may wait
 *                in their remote_bits; refill looks at a few of them).
 * Frees by the owner are plain stores into the span's free map, so a
 * single-threaded program never executes an atomic read-modify-write on
 * malloc or free.
 *
 * Free events: the fast free calls mcache_free_event when the owner's frees
 * since the last sweep reach free_trigger:
 *   CURRENT span:       free_trigger 0 (none: its freed slots are reused
 *                       from the free map as malloc reaches their word), or
 *                       1 while needzero is 0 (the first free makes the
 *                       span's free slots dirty: calloc must clear them)
 *   CACHE_FULL span:    after 1/MCACHE_TRIGGER_YIELD of it was freed
 *                       (move it to partial: a sweep would now pay); at
 *                       its first free for a class of few objects per
 *                       span whose full list is long (mcache_set_trigger)
 *   CACHE_PARTIAL span: alloc_count (every object freed: span is empty)
 * An empty non-current span goes back to mheap unless it is the only
 * partial span of its class (hysteresis: a malloc/free cycle around a span
 * boundary does not bounce pages through the heap lock) or the cache keeps
 * less than MCACHE_EMPTY_KEEP_BYTES of such spans (empty_bytes; those are
 * marked kept_empty): a working set freed and built again reuses its spans
 * without the page heap.  They go back at malloc_trim, at the idle flush,
 * at thread exit, and when a refill finds no memory.
 *
 * Refill order (mcache_refill_alloc): later words of the current span
 * (for the classes below 128 B tried first inline by gm_alloc_class_slow,
 * mcache_refill_next_word) -> sweep the current span (start again at word
 * 0 and take in remote frees) -> partial list -> a few full spans with
 * remote frees -> mcentral -> mheap.
 *
 * Thread exit: a pthread key destructor gives every span back to mcentral
 * (swept there; empty spans go to mheap), flushes the page cache and frees
 * the mcache.  A later allocation by another destructor creates a fresh
 * cache and registers the key again, so it is cleaned up in the next round.
 *
 * Idle caches (mcache_flush_idle, from the scavenger): the page cache and
 * large blocks are guarded by idle_lock, the partial/full lists by span_lock
 * (owner-biased locks, mcache_lock_t, the owner takes only on slow paths);
 * the scavenger try-locks them and takes the page cache, the large blocks and every listed span with
 * no live object.  Current spans with no live object are taken through a
 * handshake (mcache_take_current): the owner stores the class it is about
 * to read in alloc_spc, the scavenger empties the slot, runs membarrier
 * and puts back the span of the class in alloc_spc (docs/design.md).
 *
 * Locks: none for the owner's reads of its current spans (writes to alloc[]
 * are under span_lock); idle_lock and span_lock as above; the global cache
 * list and the mcache fixalloc are under mheap.lock.
 */
#define _GNU_SOURCE
#include "mcache.h"

#include <pthread.h>
#include <string.h>

#include "fixalloc.h"
#include "malloc_impl.h"
#include "message.h"
#include "options.h"
#include "os_linux.h"
#include "scavenge.h"

/* Every slot empty: cache_word 0 and a free-map word 0 of 0 (the static
 * initialisation of a flexible array member is a GNU extension). */
mspan_t mcache_empty_span = { .bits = { 0 } };
mcache_t mcache_empty = {
	.alloc = { [0 ... GM_NUM_SPAN_CLASSES - 1] = &mcache_empty_span },
	.live = false,
};
__thread mcache_t *mcache_tls __attribute__((tls_model("initial-exec"))) = &mcache_empty;

static fixalloc_t mcache_alloc_fix;   /* under mheap.lock */
static mcache_t *mcache_list;         /* under mheap.lock */
static size_t mcache_nlive;           /* under mheap.lock */
static pthread_key_t mcache_key;
static bool mcache_key_ok;

static void mcache_thread_exit(void *arg);

bool mcache_lock_fenced;
/* membarrier failed after init (a seccomp filter installed later): the
 * scavenger's side of both handshakes gives up for good.  Under mheap.lock
 * (the scavenger's tick). */
static bool mcache_no_membarrier;

/* The scavenger's half of a handshake: every running thread of the process
 * executes a full barrier.  False if membarrier is not available. */
static bool mcache_scav_fence(void)
{
	if (!mcache_lock_fenced || mcache_no_membarrier)
		return false;
	if (os_membarrier())
		return true;
	mcache_no_membarrier = true; /* never again: idle caches keep their memory */
	return false;
}

void mcache_scav_trylock(mcache_lock_t *const *l, bool *ok, unsigned n)
{
	/* counted before trying, uncounted after a failed try (lock.h,
	 * gm_locks_held: a fork from a signal handler must never see a lock
	 * this thread holds as free) */
	gm_locks_held += n;
	atomic_signal_fence(memory_order_seq_cst);
	if (!mcache_lock_fenced) {
		for (unsigned i = 0; i < n; i++)
			ok[i] = atomic_exchange_explicit(&l[i]->owner_in, 1, memory_order_acquire) == 0;
	} else {
		for (unsigned i = 0; i < n; i++)
			atomic_store_explicit(&l[i]->scav_in, 1, memory_order_relaxed);
		bool fenced = mcache_scav_fence();
		for (unsigned i = 0; i < n; i++) {
			ok[i] = fenced && atomic_load_explicit(&l[i]->owner_in, memory_order_acquire) == 0;
			if (!ok[i])
				atomic_store_explicit(&l[i]->scav_in, 0, memory_order_release);
		}
	}
	atomic_signal_fence(memory_order_seq_cst);
	for (unsigned i = 0; i < n; i++)
		gm_locks_held -= !ok[i];
}

void mcache_scav_unlock(mcache_lock_t *l)
{
	if (!mcache_lock_fenced)
		atomic_store_explicit(&l->owner_in, 0, memory_order_release);
	else
		atomic_store_explicit(&l->scav_in, 0, memory_order_release);
	atomic_signal_fence(memory_order_seq_cst);
	gm_locks_held--; /* only once released (lock.h, gm_locks_held) */
}

void mcache_global_init(void)
{
	/* registers this process for membarrier and proves it works; decided
	 * once, before any thread cache exists */
	mcache_lock_fenced = os_membarrier();
	fixalloc_init(&mcache_alloc_fix, sizeof(mcache_t));
	mcache_key_ok = pthread_key_create(&mcache_key, mcache_thread_exit) == 0;
}

/* Sweep thresholds (docs/design.md, "When an owned full span is swept
 * again"): the current span is swept again when 1/MCACHE_SWEEP_YIELD of it
 * was freed; a full span becomes a refill candidate (partial) after
 * 1/MCACHE_TRIGGER_YIELD of it was freed by the owner. */
#ifndef MCACHE_SWEEP_YIELD
#define MCACHE_SWEEP_YIELD 8
#endif
#ifndef MCACHE_TRIGGER_YIELD
#define MCACHE_TRIGGER_YIELD 2
#endif
/* Classes of fewer than MCACHE_FEW_NELEMS objects per span whose full
 * list holds at least MCACHE_FULL_LONG spans: a full span becomes a refill
 * candidate at its first owner free (the refill looks at only
 * MCACHE_FULL_BUDGET spans of a long list; docs/design.md, "When an owned
 * full span is swept again"). */
#ifndef MCACHE_FEW_NELEMS
#define MCACHE_FEW_NELEMS 16
#endif
#ifndef MCACHE_FULL_LONG
#define MCACHE_FULL_LONG 16
#endif
/* Full spans a refill looks at (for remote frees) before asking mcentral. */
#ifndef MCACHE_FULL_BUDGET
#define MCACHE_FULL_BUDGET 4
#endif

/* Would a sweep of s pay (Go sweeps once per GC cycle, so every sweep
 * yields a cycle's worth of frees)?  At least 1/MCACHE_SWEEP_YIELD of the
 * span free in its free map (the owner's frees in the words the
 * allocation passed) or freed by other threads.  The remote words are read
 * (out of line) only when the map falls short and a remote free ever
 * happened. */
static NOINLINE bool mcache_sweep_pays_remote(mspan_t *s, size_t n, size_t want)
{
	size_t nw = mspan_nwords_used(s);
	for (size_t w = 0; w < nw && n < want; w++) {
		uint64_t r = atomic_load_explicit(&s->remote_bits[w], memory_order_relaxed);
		if (r != 0)
			n += gm_popcount64(r);
	}
	return n >= want;
}

/* *nfree: the free map's free slots (mspan_nfree_map), for the caller that
 * retires s when the sweep would not pay. */
static ALWAYS_INLINE bool mcache_sweep_pays(mspan_t *s, size_t *nfree)
{
	size_t want = 1 + s->nelems / MCACHE_SWEEP_YIELD;
	if (LIKELY(mspan_one_word(s))) {
		/* one word (every class from 128 B up, where refills are
		 * frequent: few objects a span): no loop and no call */
		uint64_t f = s->bits[0];
		size_t n = f != 0 ? gm_popcount64(f) : 0;
		*nfree = n;
		if (n >= want)
			return true;
		if (!atomic_load_explicit(&mspan_remote_seen, memory_order_relaxed))
			return false;
		uint64_t r = atomic_load_explicit(&s->remote_bits[0], memory_order_relaxed);
		return r != 0 && n + gm_popcount64(r) >= want;
	}
	size_t n = mspan_nfree_map(s);
	*nfree = n;
	if (LIKELY(n >= want))
		return true;
	if (!atomic_load_explicit(&mspan_remote_seen, memory_order_relaxed))
		return false; /* no remote free yet: the remote words are all 0 */
	return mcache_sweep_pays_remote(s, n, want);
}

static ALWAYS_INLINE void mcache_set_trigger(mcache_t *c, mspan_t *s)
{
	switch (s->list) {
	case SPAN_LIST_CACHE_FULL:
		/* move to partial once a sweep would pay: 1/MCACHE_TRIGGER_YIELD
		 * of the span freed (a sweep costs the same for 1 slot or 100),
		 * or at once for a few-object span on a long full list, which
		 * the refill would not reach (see MCACHE_FEW_NELEMS) */
		if (s->nelems < MCACHE_FEW_NELEMS && c->full[s->spanclass].n >= MCACHE_FULL_LONG)
			mspan_set_free_trigger(s, mspan_nfree_local(s) + 1);
		else
			mspan_set_free_trigger(s, mspan_nfree_local(s) + 1 + s->nelems / MCACHE_TRIGGER_YIELD);
		break;
	case SPAN_LIST_CACHE_PARTIAL:
		mspan_set_free_trigger(s, s->alloc_count);
		break;
	case SPAN_LIST_CURRENT:
		/* its first free sets needzero (mcache_free_event) */
		mspan_set_free_trigger(s, s->needzero ? 0 : mspan_nfree_local(s) + 1);
		break;
	default:
		mspan_set_free_trigger(s, 0);
		break;
	}
}

mcache_t *mcache_get(void)
{
	mcache_t *c = mcache_tls;
	if (LIKELY(c->live))
		return c;
	if (!gm_ensure_init())
		return NULL;
	gm_mutex_lock(&mheap.lock);
	c = fixalloc_alloc(&mcache_alloc_fix);
	if (c != NULL) {
		for (unsigned i = 0; i < GM_NUM_SPAN_CLASSES; i++)
			c->alloc[i] = &mcache_empty_span;
		c->live = true;
		c->tid = os_gettid();
		c->next = mcache_list;
		if (mcache_list)
			mcache_list->prev = c;
		mcache_list = c;
		mcache_nlive++;
	}
	gm_mutex_unlock(&mheap.lock);
	if (c == NULL)
		return NULL;
	if (mcache_key_ok)
		pthread_setspecific(mcache_key, c);
	mcache_tls = c;
	return c;
}

/* Allocate the slot at idx of s (already reserved by next_free_index). */
static ALWAYS_INLINE void *mcache_take(mspan_t *s, size_t idx)
{
	return (void *)(s->base + idx * s->elemsize);
}

/* Take the next free slot of s, which has one (just swept, or handed out
 * by mcentral; mspan_take_free_index).  NULL if s has no free slot after
 * all. */
static ALWAYS_INLINE void *mcache_take_next(mspan_t *s)
{
	size_t idx = mspan_take_free_index(s);
	if (UNLIKELY(idx >= s->nelems))
		return NULL;
	return mcache_take(s, idx);
}

/* Under span_lock: s leaves a partial list (no longer an empty span kept
 * for reuse, if it was one). */
static ALWAYS_INLINE void mcache_unkeep(mcache_t *c, mspan_t *s)
{
	if (UNLIKELY(s->kept_empty)) {
		s->kept_empty = 0;
		c->empty_bytes -= s->npages << GM_PAGE_SHIFT;
	}
}

static void mcache_make_current(mcache_t *c, spanclass_t spc, mspan_t *s)
{
	s->list = SPAN_LIST_CURRENT;
	mcache_set_trigger(c, s);
	c->alloc[spc] = s;
}

void *mcache_refill_alloc(mcache_t *c, spanclass_t spc)
{
	if (UNLIKELY(!c->live)) {
		c = mcache_get();
		if (c == NULL)
			return NULL;
	}
	mcache_note_use(c);
	mcache_note_alloc_spc(c, spc);
	c->last_p = NULL; /* cache_word or the current span may change */
	mspan_t *s;
	size_t idx;
retry:
	s = c->alloc[spc];
	if (s != &mcache_empty_span) {
		/* cache_word ran out: a later word of s, if any (none when
		 * cache_word is the last word: one-word spans, and after
		 * gm_alloc_class_slow's mcache_refill_next_word found none) */
		if (s->bits[s->cache_word] != 0 ||
		    (size_t)s->cache_word + 1 < mspan_nwords_used(s)) {
			idx = mspan_next_free_index(s);
			if (idx < s->nelems)
				return mcache_take(s, idx);
		}
		size_t nfree;
		if (mcache_sweep_pays(s, &nfree) && mspan_sweep(s) > 0)
			return mcache_take_next(s);
		/* the lists and alloc[] writes are shared with the scavenger
		 * (span_lock); this span is not: alloc_spc keeps it off */
		mcache_spin_lock(&c->span_lock);
		c->alloc[spc] = &mcache_empty_span;
		/* retired: its count from here (the free map's few free slots
		 * lie in words the allocation passed) */
		s->alloc_count = (uint16_t)(s->nelems - nfree);
		mspan_reset_nfree_local(s);
		s->list = SPAN_LIST_CACHE_FULL;
		mcache_set_trigger(c, s);
		span_list_push(&c->full[spc], s);
	} else {
		mcache_spin_lock(&c->span_lock);
		if (c->alloc[spc] != &mcache_empty_span) {
			/* the scavenger looked at our current span and put it
			 * back (mcache_take_current) */
			mcache_spin_unlock(&c->span_lock);
			goto retry;
		}
	}
	while ((s = span_list_pop(&c->partial[spc])) != NULL) {
		mcache_unkeep(c, s);
		if (mspan_sweep(s) > 0) {
			mcache_make_current(c, spc, s);
			mcache_spin_unlock(&c->span_lock);
			return mcache_take_next(s);
		}
		s->list = SPAN_LIST_CACHE_FULL;
		mcache_set_trigger(c, s);
		span_list_push(&c->full[spc], s);
	}
	for (unsigned budget = MCACHE_FULL_BUDGET; budget > 0 && c->full[spc].n > 1; budget--) {
		s = c->full[spc].head;
		span_list_remove(&c->full[spc], s);
		size_t nfree;
		if (mcache_sweep_pays(s, &nfree) && mspan_sweep(s) > 0) {
			mcache_make_current(c, spc, s);
			mcache_spin_unlock(&c->span_lock);
			return mcache_take_next(s);
		}
		mcache_set_trigger(c, s);
		span_list_push(&c->full[spc], s);
	}
	mcache_spin_unlock(&c->span_lock);
	s = mcentral_cache_span(c, spc);
	if (UNLIKELY(s == NULL) && c->empty_bytes != 0) {
		/* out of memory: the empty spans kept for other classes */
		mcache_release_kept(c);
		s = mcentral_cache_span(c, spc);
	}
	if (s == NULL)
		return NULL;
	mcache_spin_lock(&c->span_lock);
	mcache_make_current(c, spc, s);
	mcache_spin_unlock(&c->span_lock);
	return mcache_take_next(s); /* not NULL: mcentral hands out spans with room */
}

/* Under span_lock: s, an empty span on c's partial list of class spc, goes
 * back to mheap -- unless the sweep finds it not empty after all (a bad
 * free reported by the sweep, with abort_on_error:false): then it stays. */
static ALWAYS_INLINE void mcache_free_empty_span(mcache_t *c, spanclass_t spc, mspan_t *s)
{
	span_list_remove(&c->partial[spc], s);
	s->list = SPAN_LIST_NONE;
	if (mspan_sweep(s) == s->nelems) {
		mheap_free_span(c, s);
		return;
	}
	s->list = SPAN_LIST_CACHE_PARTIAL;
	span_list_push(&c->partial[spc], s);
	mcache_set_trigger(c, s);
}

static void mcache_free_event_locked(mcache_t *c, mspan_t *s);

void mcache_free_event(mspan_t *s)
{
	mcache_t *c = mcache_tls;
	mcache_spin_lock(&c->span_lock);
	/* The scavenger may have taken s (no live object left) between this
	 * thread's free and here; then s is none of our business any more. */
	if (atomic_load_explicit(&s->owner, memory_order_relaxed) == c)
		mcache_free_event_locked(c, s);
	mcache_spin_unlock(&c->span_lock);
}

static void mcache_free_event_locked(mcache_t *c, mspan_t *s)
{
	spanclass_t spc = s->spanclass;
	s->needzero = 1; /* a freed slot is dirty */
	if (s->list == SPAN_LIST_CACHE_FULL) {
		span_list_remove(&c->full[spc], s);
		s->list = SPAN_LIST_CACHE_PARTIAL;
		span_list_push_head(&c->partial[spc], s);
	}
	if (s->list == SPAN_LIST_CACHE_PARTIAL && mspan_nfree_local(s) == s->alloc_count) {
		/* empty: kept if it is the class's only partial span, or while
		 * the cache keeps less than MCACHE_EMPTY_KEEP_BYTES of empty
		 * spans (counted in empty_bytes) */
		size_t bytes = s->npages << GM_PAGE_SHIFT;
		bool only = c->partial[spc].n == 1;
		if (only || c->empty_bytes + bytes <= MCACHE_EMPTY_KEEP_BYTES) {
			if (!only) {
				s->kept_empty = 1;
				c->empty_bytes += bytes;
			}
			mspan_set_free_trigger(s, 0);
			return;
		}
		mcache_free_empty_span(c, spc, s);
		return;
	}
	mcache_set_trigger(c, s);
}

void mcache_release_kept(mcache_t *c)
{
	mcache_spin_lock(&c->span_lock);
	for (unsigned spc = 0; spc < GM_NUM_SPAN_CLASSES && c->empty_bytes != 0; spc++) {
		mspan_t *s = c->partial[spc].head;
		while (s != NULL) {
			mspan_t *next = s->next;
			if (s->kept_empty) {
				mcache_unkeep(c, s);
				mcache_free_empty_span(c, spc, s);
			}
			s = next;
		}
	}
	mcache_spin_unlock(&c->span_lock);
}

/* Under the idle lock and mheap.lock: hand the page cache back. */
static void mcache_flush_pcache_locked(mcache_t *c)
{
	if (c->pcache.cache != 0)
		pagecache_flush(&c->pcache, &mheap.pages);
	memset(&c->pcache, 0, sizeof c->pcache);
	c->pcache_fresh = 0;
}

void mcache_release_large(mcache_t *c)
{
	mcache_idle_lock(c);
	while (c->nlarge > 0) {
		mspan_t *s = c->large[--c->nlarge];
		c->large_bytes -= s->npages << GM_PAGE_SHIFT;
		mheap_free_span(NULL, s);
	}
	mcache_idle_unlock(c);
}

void mcache_release_pages(mcache_t *c)
{
	if (c->empty_bytes != 0)
		mcache_release_kept(c);
	mcache_release_large(c);
	mcache_idle_lock(c);
	gm_mutex_lock(&mheap.lock);
	mcache_flush_pcache_locked(c);
	gm_mutex_unlock(&mheap.lock);
	mcache_idle_unlock(c);
}

/* Give every span of c back to mcentral and its pages to mheap. */
static void mcache_release_all(mcache_t *c)
{
	mcache_spin_lock(&c->span_lock);
	for (unsigned spc = 0; spc < GM_NUM_SPAN_CLASSES; spc++) {
		mspan_t *s = c->alloc[spc];
		if (s != &mcache_empty_span) {
			c->alloc[spc] = &mcache_empty_span;
			s->list = SPAN_LIST_NONE;
			mcentral_uncache_span(s);
		}
		while ((s = span_list_pop(&c->partial[spc])) != NULL) {
			mcache_unkeep(c, s);
			s->list = SPAN_LIST_NONE;
			mcentral_uncache_span(s);
		}
		while ((s = span_list_pop(&c->full[spc])) != NULL) {
			s->list = SPAN_LIST_NONE;
			mcentral_uncache_span(s);
		}
	}
	mcache_spin_unlock(&c->span_lock);
	mcache_release_pages(c);
	gm_mutex_lock(&mheap.lock);
	for (unsigned k = 0; k < MHEAP_SPAN_KINDS; k++) {
		while (c->nspanstructs[k] > 0)
			mheap_spanstruct_free(c->spanstructs[k][--c->nspanstructs[k]]);
	}
	gm_mutex_unlock(&mheap.lock);
}

bool mcache_destroy(mcache_t *c)
{
	if (!c->live)
		return false;
	mcache_release_all(c);
	gm_mutex_lock(&mheap.lock);
	if (c->prev)
		c->prev->next = c->next;
	else
		mcache_list = c->next;
	if (c->next)
		c->next->prev = c->prev;
	bool last = --mcache_nlive == 0;
	c->live = false;
	fixalloc_free(&mcache_alloc_fix, c);
	gm_mutex_unlock(&mheap.lock);
	return last;
}

static void mcache_thread_exit(void *arg)
{
	mcache_t *c = arg;
	mcache_tls = &mcache_empty;
	/* the last thread that allocated is going: the process may be
	 * ending by pthread_exit, which the scavenger thread must not stop */
	if (mcache_destroy(c))
		scavenge_note_last_cache_exit();
}

mspan_t *mcache_large_take(mcache_t *c, size_t npages)
{
	mcache_note_use(c);
	if (c->nlarge == 0)
		return NULL;
	mspan_t *found = NULL;
	mcache_idle_lock(c);
	unsigned n = c->nlarge;
	/* the newest first: taking it moves nothing (a loop that frees and
	 * allocates one size takes the block from large[n - 1] every time) */
	for (unsigned i = n; i-- > 0;) {
		mspan_t *s = c->large[i];
		if (mspan_large_serves(s, npages)) {
			/* keep large[] oldest first: put evicts large[0] */
			if (UNLIKELY(i != n - 1))
				memmove(&c->large[i], &c->large[i + 1], (n - 1 - i) * sizeof c->large[0]);
			c->nlarge = n - 1;
			c->large_bytes -= s->npages << GM_PAGE_SHIFT;
			s->needzero = 1;
			atomic_store_explicit(&s->state, SPAN_INUSE, memory_order_relaxed);
			found = s;
			break;
		}
	}
	mcache_idle_unlock(c);
	return found;
}

/* mcache_large_put's rare case, out of line (its loop and call would make
 * the common case save registers): give back the oldest blocks until one
 * of `bytes` fits in large[].  Under idle_lock. */
static NOINLINE void mcache_large_evict(mcache_t *c, size_t bytes)
{
	while (c->nlarge > 0 && (c->nlarge == MCACHE_LARGE_SLOTS ||
	                         c->large_bytes + bytes > MCACHE_LARGE_MAX_BYTES)) {
		mspan_t *old = c->large[0]; /* the oldest */
		memmove(&c->large[0], &c->large[1], --c->nlarge * sizeof c->large[0]);
		c->large_bytes -= old->npages << GM_PAGE_SHIFT;
		mheap_free_span(c, old);
	}
}

bool mcache_large_put(mcache_t *c, mspan_t *s)
{
	size_t bytes = s->npages << GM_PAGE_SHIFT;
	if (!c->live || bytes > MCACHE_LARGE_MAX_BLOCK)
		return false;
	mcache_note_use(c);
	mcache_idle_lock(c);
	unsigned n = c->nlarge;
	if (UNLIKELY(n == MCACHE_LARGE_SLOTS || c->large_bytes + bytes > MCACHE_LARGE_MAX_BYTES)) {
		mcache_large_evict(c, bytes);
		n = c->nlarge;
	}
	atomic_store_explicit(&s->state, SPAN_CACHED, memory_order_relaxed);
	c->large[n] = s;
	c->nlarge = n + 1;
	c->large_bytes += bytes;
	mcache_idle_unlock(c);
	scavenge_wake(); /* it may be parked with nothing else to watch */
	return true;
}

/* Idle caches' empty spans: per scavenger tick, at most this many spans
 * looked at and taken, and a cache whose lists yielded nothing is looked at
 * again after 1, 2, 4, 8 s (then only after it was used again, or when the
 * scavenger wakes for another reason). */
#define SPAN_SCAN_MAX 65536
#define SPAN_TAKE_MAX 8192
#define SPAN_SCAN_GAP_NS (1000ull * 1000 * 1000)
#define SPAN_SCAN_GAP_MAX_NS (8 * SPAN_SCAN_GAP_NS)

/* Under c's span_lock (the owner is kept out of its lists): move the spans
 * of one owner list that have no live object to out[].  Such a span is one
 * the owner's fast paths no longer write: it is not current, every object
 * in it was freed (by the owner: the free bit is the owner's last store, see
 * mcache_free_fast; or by other threads: remote bits), and a further free
 * of one of its objects would be a double free.  Returns spans looked at. */
static size_t mcache_take_empty(mcache_t *c, span_list_t *l, mspan_t **out, unsigned *n,
                                unsigned max)
{
	size_t looked = 0;
	mspan_t *s = l->head;
	while (s != NULL && *n < max) {
		mspan_t *next = s->next;
		looked++;
		size_t live = mspan_live_count(s);
		/* pairs with the release store of the owner's last free bit: its
		 * earlier writes to s (the count) come before ours (the sweep) */
		atomic_thread_fence(memory_order_acquire);
		if (live == 0) {
			span_list_remove(l, s);
			mcache_unkeep(c, s);
			s->list = SPAN_LIST_NONE;
			out[(*n)++] = s;
		}
		s = next;
	}
	return looked;
}

/* Under c's span_lock: move the current spans with no live object to
 * out[] (the handshake of docs/design.md, "Idle thread caches").  The
 * owner's malloc fast path reads alloc[spc] and writes the span without a
 * lock, after storing spc in alloc_spc.  Each candidate's slot is emptied,
 * then a membarrier makes every running thread execute a full barrier:
 * either the owner's alloc_spc store is visible now, or its later read of
 * alloc[spc] sees the empty slot (a Dekker pair whose owner half costs
 * one plain store).  A candidate of the class in alloc_spc goes back (the
 * owner may be between its read and its writes, or in the refill, which
 * rereads alloc[] under span_lock); any other is stable and is taken if it
 * still has no live object.  The owner's current span of the class it
 * used last is therefore never taken. */
static unsigned mcache_take_current(mcache_t *c, mspan_t **out, unsigned *n,
                                    unsigned max)
{
	mspan_t *cand[GM_NUM_SPAN_CLASSES]; /* slot: alloc[cand[i]->spanclass] */
	unsigned ncand = 0, took = 0;
	if (!mcache_lock_fenced || mcache_no_membarrier)
		return 0;
	uint32_t busy = atomic_load_explicit(&c->alloc_spc, memory_order_relaxed);
	for (unsigned spc = 0; spc < GM_NUM_SPAN_CLASSES && *n + ncand < max; spc++) {
		mspan_t *s = __atomic_load_n(&c->alloc[spc], __ATOMIC_RELAXED);
		/* a first look, racing with the owner: confirmed below */
		if (s == &mcache_empty_span || spc == busy || mspan_live_count(s) != 0)
			continue;
		__atomic_store_n(&c->alloc[spc], &mcache_empty_span, __ATOMIC_RELAXED);
		cand[ncand++] = s;
	}
	if (ncand == 0)
		return 0;
	bool fenced = mcache_scav_fence();
	busy = atomic_load_explicit(&c->alloc_spc, memory_order_relaxed);
	for (unsigned i = 0; i < ncand; i++) {
		mspan_t *s = cand[i];
		if (fenced && s->spanclass != busy && mspan_live_count(s) == 0) {
			s->list = SPAN_LIST_NONE;
			out[(*n)++] = s;
			took++;
			continue;
		}
		__atomic_store_n(&c->alloc[s->spanclass], s, __ATOMIC_RELAXED);
	}
	return took;
}

bool mcache_flush_idle(uint64_t now, uint64_t idle_ns)
{
	mspan_t *spans[4 * MCACHE_LARGE_SLOTS];
	static mspan_t *taken[SPAN_TAKE_MAX]; /* under scav_lock (one tick at a time) */
	unsigned n = 0, ntaken = 0, ncurrent = 0;
	size_t looked = 0;
	bool pending = false;
	/* Taking spans means mcentral and mheap locks: not from an inline tick
	 * run while this thread holds a lock (scav_lock is the one expected). */
	bool can_take = gm_locks_held <= 1;
	gm_mutex_lock(&mheap.lock);
	for (mcache_t *c = mcache_list; c != NULL; c = c->next) {
		uint64_t ev = atomic_load_explicit(&c->slow_events, memory_order_relaxed);
		if (ev != c->idle_seen || c->idle_since == 0) {
			c->idle_seen = ev;
			c->idle_since = now;
			c->span_scan_gap = 0;
			pending = true;
			continue;
		}
		if (now - c->idle_since < idle_ns) {
			pending = true;
			continue;
		}
		/* both locks with one barrier; the span lists only when due */
		bool scan = can_take && now - c->span_scan_ns >= c->span_scan_gap;
		if (scan && (looked >= SPAN_SCAN_MAX || ntaken == SPAN_TAKE_MAX)) {
			pending = true; /* the rest next tick */
			scan = false;
		}
		mcache_lock_t *const locks[2] = {&c->idle_lock, &c->span_lock};
		bool held[2];
		mcache_scav_trylock(locks, held, scan ? 2 : 1);
		if (!held[0]) {
			pending = true;
		} else {
			mcache_flush_pcache_locked(c);
			while (c->nlarge > 0 && n < sizeof spans / sizeof spans[0]) {
				mspan_t *s = c->large[--c->nlarge];
				c->large_bytes -= s->npages << GM_PAGE_SHIFT;
				spans[n++] = s;
			}
			if (c->nlarge > 0)
				pending = true;
			mcache_scav_unlock(&c->idle_lock);
		}
		if (!scan)
			continue;
		if (!held[1]) {
			pending = true;
			continue;
		}
		unsigned before = ntaken;
		for (unsigned spc = 0; spc < GM_NUM_SPAN_CLASSES && ntaken < SPAN_TAKE_MAX; spc++) {
			looked += mcache_take_empty(c, &c->partial[spc], taken, &ntaken, SPAN_TAKE_MAX);
			looked += mcache_take_empty(c, &c->full[spc], taken, &ntaken, SPAN_TAKE_MAX);
		}
		ncurrent += mcache_take_current(c, taken, &ntaken, SPAN_TAKE_MAX);
		for (unsigned i = before; i < ntaken; i++)
			atomic_store_explicit(&taken[i]->owner, NULL, memory_order_release);
		mcache_scav_unlock(&c->span_lock);
		c->span_scan_ns = now;
		if (ntaken > before || ntaken == SPAN_TAKE_MAX)
			c->span_scan_gap = 0; /* look again next tick */
		else
			c->span_scan_gap = c->span_scan_gap == 0 ? SPAN_SCAN_GAP_NS
			                                         : 2 * c->span_scan_gap;
		if (c->span_scan_gap <= SPAN_SCAN_GAP_MAX_NS)
			pending = true;
	}
	gm_mutex_unlock(&mheap.lock);
	for (unsigned i = 0; i < n; i++)
		mheap_free_span(NULL, spans[i]);
	/* swept by their mcentral: empty ones go back to mheap, where they age
	 * and are scavenged like any free page */
	for (unsigned i = 0; i < ntaken; i++)
		mcentral_uncache_span(taken[i]);
	if (ntaken > 0 && gm_opt.verbose)
		gm_message("scavenger: took %u spans with no live object from idle thread caches "
		           "(%u current)", ntaken, ncurrent);
	return pending;
}

void mcache_fork_child(void)
{
	/* Only the forking thread survives.  The other caches are dropped, not
	 * given back: their owner-only state (span lists, stash, large cache)
	 * may be mid-update, since their threads kept running while the kernel
	 * copied the address space page by page, and walking it crashed the
	 * child (tests/api/test_fork, fork_while_threads_hammer).  Their spans
	 * stay owned by a cache nobody uses: frees into them take the remote
	 * path; the memory is a bounded leak of the child. */
	mcache_t *self = mcache_tls;
	memset(&self->idle_lock, 0, sizeof self->idle_lock);
	memset(&self->span_lock, 0, sizeof self->span_lock);
	if (self->live) {
		self->next = self->prev = NULL;
		mcache_list = self;
		mcache_nlive = 1;
	} else {
		mcache_list = NULL;
		mcache_nlive = 0;
	}
}

size_t mcache_count(void)
{
	return mcache_nlive;
}
