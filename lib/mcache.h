/*
 * mcache.h -- the per-thread cache (Go's mcache.go).
 */
#ifndef GM_MCACHE_H
#define GM_MCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compiler.h"
#include "lock.h"
#include "mcentral.h"
#include "mheap.h"
#include "pagealloc.h"
#include "params.h"

#define MCACHE_SPANSTRUCTS 8   /* cached span structs per bitmap kind */
/* Freed large blocks kept for lock-free reuse: one, the last freed (of at
 * most half MCACHE_LARGE_MAX_BYTES).  One slot serves a loop that frees and
 * allocates a block of the same size (19 ns a pair instead of ~140 ns
 * through mheap); eight held up to 8 MiB of free memory resident per thread
 * and lost reuse across sizes to the page heap: peak RSS of the pareto
 * workload 12.4 -> 10.2 MiB, large workload 0.11 -> 0.08 s (bench/RESULTS.md,
 * 2026-11-25 evening). */
#ifndef MCACHE_LARGE_SLOTS
#define MCACHE_LARGE_SLOTS 1
#endif
#ifndef MCACHE_LARGE_MAX_BYTES
#define MCACHE_LARGE_MAX_BYTES ((size_t)8 << 20) /* blocks <= half of it */
#endif
/* The largest block a thread cache keeps; bigger ones go to the heap's
 * huge slot (mheap.c). */
#define MCACHE_LARGE_MAX_BLOCK (MCACHE_LARGE_MAX_BYTES / 2)

/* Empty spans a thread cache keeps for reuse (bytes, all classes), besides
 * the one empty span per class that is always kept. */
#ifndef MCACHE_EMPTY_KEEP_BYTES
#define MCACHE_EMPTY_KEEP_BYTES ((size_t)256 << 10)
#endif

/* An owner-biased lock (idle_lock, span_lock of a thread cache).  The
 * owner takes it on its slow paths, often (larson: every few hundred
 * frees), the scavenger rarely and only with a try-lock.  Owner side: a
 * plain store of owner_in, a compiler barrier, a plain load of scav_in --
 * no atomic read-modify-write (an xchg there was three quarters of the
 * refill and free-event time of larson).  Scavenger side: store scav_in,
 * membarrier(PRIVATE_EXPEDITED) (every running thread of the process
 * executes a full barrier), load owner_in: the asymmetric Dekker pair of
 * docs/design.md "Idle thread caches", so the two never both get in.
 * Without membarrier (mcache_lock_fenced false, decided once at init) both
 * sides use owner_in as a spin lock word with xchg. */
typedef struct mcache_lock {
	_Atomic uint32_t owner_in;  /* owner: 1 while inside or entering */
	_Atomic uint32_t scav_in;   /* scavenger: 1 while inside or trying */
} mcache_lock_t;

extern bool mcache_lock_fenced;

/* All fields are owner-thread only unless said otherwise. */
typedef struct mcache {
	/* The span class whose alloc[] slot the owner read last (stored by
	 * the malloc fast path before it reads alloc[spc], and by the
	 * refill): the scavenger never takes that class's current span
	 * (mcache_flush_idle, docs/design.md "Idle thread caches"). */
	_Atomic uint32_t alloc_spc;
	/* The block the malloc fast path handed out last and its bit in the
	 * word it came from (the current span of alloc_spc, word cache_word):
	 * a free of it needs no index (mcache_free_fast).  NULL after any
	 * refill: whatever moves cache_word or replaces the current span of
	 * alloc_spc must reset it, or that free sets the bit in the wrong
	 * word (test_mcache last_block_free_uses_its_bit). */
	void *last_p;
	uint64_t last_bit;
	/* Current span per span class; &mcache_empty_span when none.  The
	 * owner reads it without a lock; writes by the owner's slow paths and
	 * by the scavenger are under span_lock. */
	mspan_t *alloc[GM_NUM_SPAN_CLASSES];
	span_list_t partial[GM_NUM_SPAN_CLASSES]; /* owned, with local frees */
	span_list_t full[GM_NUM_SPAN_CLASSES];    /* owned, no known free slot */
	pagecache_t pcache;                       /* Go's per-P page cache */
	uint64_t pcache_fresh;                    /* pcache pages never used (zero) */
	mspan_t *spanstructs[MHEAP_SPAN_KINDS][MCACHE_SPANSTRUCTS];
	unsigned nspanstructs[MHEAP_SPAN_KINDS];
	mspan_t *large[MCACHE_LARGE_SLOTS];       /* freed large blocks */
	unsigned nlarge;
	size_t large_bytes;
	/* Bytes of empty spans kept on the partial lists beyond each class's
	 * one (span->kept_empty), at most MCACHE_EMPTY_KEEP_BYTES; under
	 * span_lock like the lists. */
	size_t empty_bytes;
	bool live;                                /* false for the static empty cache */
	/* Idle flush (scavenger): the owner holds idle_lock (a spin flag)
	 * while it touches pcache, pcache_fresh, large[], nlarge, large_bytes,
	 * and span_lock while it touches the partial[] and full[] lists; the
	 * scavenger only try-locks them, under mheap.lock, to take those from
	 * a cache whose slow_events did not move for cache_idle_ms (for the
	 * lists: the spans with no live object, see mcache_flush_idle). */
	mcache_lock_t idle_lock;
	mcache_lock_t span_lock;
	_Atomic uint64_t slow_events;             /* owner stores, others load */
	/* under mheap.lock */
	uint64_t idle_seen;                       /* slow_events at idle_since */
	uint64_t idle_since;
	uint64_t span_scan_ns;                    /* last scan of the lists */
	uint64_t span_scan_gap;                   /* wait before the next one */
	struct mcache *next, *prev;
	int tid;
} mcache_t;

/* Owner side of idle_lock and span_lock: waits only while the scavenger
 * is taking an idle cache's pages or empty spans (a few microseconds).
 * Counted in gm_locks_held like the mutexes (fork from a signal handler,
 * and the scavenger's inline ticks, look at it). */
static inline void mcache_spin_lock(mcache_lock_t *l)
{
	gm_locks_held++; /* counted first (lock.h, gm_locks_held) */
	atomic_signal_fence(memory_order_seq_cst);
	if (UNLIKELY(!mcache_lock_fenced)) {
		while (atomic_exchange_explicit(&l->owner_in, 1, memory_order_acquire) != 0)
			GM_CPU_RELAX();
		return;
	}
	for (;;) {
		atomic_store_explicit(&l->owner_in, 1, memory_order_relaxed);
		/* the CPU may still load scav_in before the store is visible:
		 * the scavenger's membarrier orders the pair */
		atomic_signal_fence(memory_order_seq_cst);
		if (LIKELY(atomic_load_explicit(&l->scav_in, memory_order_acquire) == 0))
			return;
		atomic_store_explicit(&l->owner_in, 0, memory_order_release);
		while (atomic_load_explicit(&l->scav_in, memory_order_relaxed) != 0)
			GM_CPU_RELAX();
	}
}

static inline void mcache_spin_unlock(mcache_lock_t *l)
{
	atomic_store_explicit(&l->owner_in, 0, memory_order_release);
	atomic_signal_fence(memory_order_seq_cst);
	gm_locks_held--; /* only once released (lock.h, gm_locks_held) */
}

/* Scavenger side: try n locks with one barrier; ok[i] = lock i is held
 * (release it with mcache_scav_unlock).  Never waits. */
void mcache_scav_trylock(mcache_lock_t *const *l, bool *ok, unsigned n);
void mcache_scav_unlock(mcache_lock_t *l);

static inline void mcache_idle_lock(mcache_t *c) { mcache_spin_lock(&c->idle_lock); }
static inline void mcache_idle_unlock(mcache_t *c) { mcache_spin_unlock(&c->idle_lock); }

/* Owner: about to read alloc[spc] (a plain store; the compiler may not
 * move the read above it, the CPU may: the scavenger's membarrier covers
 * that). */
static ALWAYS_INLINE void mcache_note_alloc_spc(mcache_t *c, spanclass_t spc)
{
	atomic_store_explicit(&c->alloc_spc, spc, memory_order_relaxed);
	atomic_signal_fence(memory_order_seq_cst);
}

/* Owner: note a slow-path event (a plain relaxed store, no RMW). */
static inline void mcache_note_use(mcache_t *c)
{
	atomic_store_explicit(&c->slow_events,
	                      atomic_load_explicit(&c->slow_events, memory_order_relaxed) + 1,
	                      memory_order_relaxed);
}

/* The refill's common case on a span of several words (the classes below
 * 128 B): a later word of the current span has a free slot.  Inline in
 * gm_alloc_class_slow, so the malloc that ran out of its word takes it
 * with no further call and no lock (the owner's current span).  NULL when
 * no later word has one; cache_word is then the last word (the words
 * passed hold none), so mcache_refill_alloc goes on to the sweep.  The
 * classes of one-word spans (128 B and up) return at once. */
static ALWAYS_INLINE void *mcache_refill_next_word(mcache_t *c, spanclass_t spc)
{
	if (spanclass_sizeclass(spc) >= GM_FIRST_ONE_WORD_CLASS)
		return NULL; /* one word: no later word (a compare, no load) */
	/* as every reader of a current span: the class first, so the
	 * scavenger leaves this span alone (the callers' fast path stored it
	 * already; this keeps the rule local) */
	mcache_note_alloc_spc(c, spc);
	mspan_t *s = c->alloc[spc];
	size_t w = (size_t)s->cache_word + 1;
	if (w >= mspan_nwords_used(s)) /* 0 words for the empty span */
		return NULL;
	c->last_p = NULL; /* cache_word moves */
	size_t idx = mspan_take_free_from(s, w);
	if (idx >= s->nelems)
		return NULL;
	mcache_note_use(c);
	return (void *)(s->base + idx * s->elemsize);
}

/* The cache of a thread that never allocated: every slot empty, so the
 * fast path needs no "initialised?" test. */
extern mcache_t mcache_empty;
extern mspan_t mcache_empty_span;
extern __thread mcache_t *mcache_tls __attribute__((tls_model("initial-exec")));

/* Once, from gm_init: the cache allocator and the thread-exit key. */
void mcache_global_init(void);

/* Slow paths (mcache.c). */
void *mcache_refill_alloc(mcache_t *c, spanclass_t spc);
/* The owner's free reached s->free_trigger (owner = the calling thread's
 * cache, read from s). */
void mcache_free_event(mspan_t *s);
/* Called with the thread's cache when it exits: everything goes back.
 * True when no live cache is left (no other thread that allocated). */
bool mcache_destroy(mcache_t *c);
/* Give the cache's large blocks back to mheap (owner thread). */
void mcache_release_large(mcache_t *c);
/* ... and its page cache too (owner thread: malloc_trim). */
void mcache_release_pages(mcache_t *c);
/* Give the empty spans kept beyond one per class (empty_bytes) back to
 * mheap (owner thread: malloc_trim, and a refill that found no memory). */
void mcache_release_kept(mcache_t *c);
/* The calling thread's cache, created on first use; NULL if no memory. */
mcache_t *mcache_get(void);
/* Large-block cache of the thread (lock-free reuse). */
mspan_t *mcache_large_take(mcache_t *c, size_t npages);
bool mcache_large_put(mcache_t *c, mspan_t *s); /* false: not kept */
/* Free a large block in use: into the cache; a block too big for it into
 * the heap's huge slot; else back to mheap. */
static inline void mcache_large_free(mcache_t *c, mspan_t *s)
{
	if (mcache_large_put(c, s))
		return; /* (the common case first: its path as before the slot) */
	if ((s->npages << GM_PAGE_SHIFT) > MCACHE_LARGE_MAX_BLOCK)
		mheap_huge_put(c, s);
	else
		mheap_free_span(c, s);
}
/* Scavenger: give back the page cache, the large blocks and the owned
 * spans with no live object of every thread cache that has been idle for
 * idle_ns; returns true while some cache may still hold such memory (the
 * scavenger must not park). */
bool mcache_flush_idle(uint64_t now, uint64_t idle_ns);
/* In a forked child, give back the caches of threads that are gone. */
void mcache_fork_child(void);
size_t mcache_count(void);

#endif /* GM_MCACHE_H */
