/*
 * mheap.h -- spans and the page heap (Go's mheap.go, mspan).
 */
#ifndef GM_MHEAP_H
#define GM_MHEAP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <gomalloc.h>

#include "compiler.h"
#include "fixalloc.h"
#include "lock.h"
#include "pagealloc.h"
#include "params.h"

struct mcache;

/* Where a span is; changes only by the party that holds it (see mcache.c,
 * mcentral.c). */
enum span_list_kind {
	SPAN_LIST_NONE = 0,      /* large span, or in transit */
	SPAN_LIST_CURRENT,       /* mcache->alloc[spc] */
	SPAN_LIST_CACHE_PARTIAL, /* owned by an mcache, has free slots */
	SPAN_LIST_CACHE_FULL,    /* owned by an mcache, no known free slot */
	SPAN_LIST_CENTRAL_PARTIAL,
	SPAN_LIST_CENTRAL_FULL,
};

enum span_state {
	SPAN_DEAD = 0,   /* struct free or pages free */
	SPAN_INUSE,      /* small span or live large block */
	SPAN_CACHED,     /* large block freed into a thread's large cache */
};

/*
 * A run of pages holding objects of one span class (or one large block).
 *
 * Object i lives at base + i * elemsize.  Object i is allocated iff
 *   i < nelems && !free_map[i] && !remote_bits[i]
 * free_map (bits[0 .. nwords), 1 = free): the slots the span's holder may
 * hand out -- never handed out, or freed by the owner -- written with
 * plain stores by the holder only: the malloc fast path takes the lowest
 * set bit of word cache_word, the owner's free sets the slot's bit again.
 * A slot the owner frees is so handed out again at once if it lies in
 * cache_word, else when the allocation reaches its word (immediate reuse,
 * docs/design.md "One free map"); Go's alloc bits, free bits and
 * freeindex are one map here, so the owner's free needs one bit test for
 * both "not allocated" and "already freed".  Bits at or above nelems are
 * always 0.
 * remote_bits: frees by other threads (atomic OR, anyone); consumed by the
 * span's holder with an atomic exchange when it sweeps (mspan_sweep: OR
 * them into free_map).
 * cache_word: the free_map word the malloc fast path takes from; the words
 * below it may hold owner frees (seen at the next sweep), the words above
 * it are looked at when it runs out (mspan_next_free_index).
 * Counting: alloc_count = objects allocated as of the last sweep or
 * retirement (mcache.c); a current span's count is stale.  Owner frees
 * since then: mspan_nfree_local(s), kept as a countdown to the next free
 * event (free_left = free_trigger - frees, mod 2^16): the fast free
 * decrements it and calls mcache_free_event when it reaches 0 (one `sub`
 * on memory and a branch).  A trigger of 0 means "not before 2^16 frees":
 * current spans (their count wraps, and only the sweep's "any frees?"
 * reads it) and the one empty span a class keeps.
 */
typedef struct mspan {
	/* line 0: the holder's counts and list links, the heap's fields: off
	 * the fast paths, and off every free but a large block's */
	uint8_t spanclass;
	uint8_t list;            /* enum span_list_kind; holder only */
	uint16_t alloc_count;
	uint16_t free_trigger;    /* owner: mspan_nfree_local value that calls it */
	uint8_t kept_empty;      /* holder: an empty span counted in c->empty_bytes */
	uint8_t zero_probe;      /* large, in use: calloc zeroed it with MADV_DONTNEED
	                          * and its free reports how much was touched */
	size_t npages;
	_Atomic uint64_t *remote_bits; /* = mspan_remote_bits_at(s) */
	struct mspan *next, *prev;    /* list links; holder only */
	/* line 1: all that malloc and free read or write -- the fast paths
	 * and another thread's free (which finds its remote word from s and
	 * nwords_log2, mspan_remote_bits_at) -- and the first 3 words of the
	 * free map (spans of up to 192 objects): a free touches one line of
	 * the span struct, a remote free one more (its remote word) */
	uintptr_t base GM_ALIGNED(64);
	uint32_t elemsize;       /* 0: a large span (mspan_is_large) */
	uint32_t divmagic;
	/* for the owner's fast free (mcache_free_fast): the object-start
	 * limit, sizeclass_objlimit (one compare tells an object start of a
	 * slot below nelems; 0 for a large span); and npages * GM_PAGE_SIZE of
	 * a small span (0 for a large one: the free's first guess looks only
	 * at current spans) */
	uint32_t free_objlimit;
	uint32_t small_bytes;
	struct mcache *_Atomic owner; /* caching mcache, NULL in mcentral/large */
	uint16_t free_left;       /* owner: frees until mcache_free_event (see above) */
	uint16_t nelems;
	uint8_t needzero;        /* holder only: free slots may be dirty */
	uint8_t cache_word;      /* holder only: the free_map word malloc takes from */
	_Atomic uint8_t state;   /* enum span_state */
	uint8_t nwords_log2;     /* bitmap words = 1 << nwords_log2 */
	uint64_t bits[];              /* free_map, then (64-aligned) remote_bits */
} mspan_t;
_Static_assert(offsetof(mspan_t, base) == 64 && offsetof(mspan_t, bits) == 104,
               "the fields of malloc and free and 3-word free maps share line 1");

/* Offset of the remote bits in a span struct of 1 << k bitmap words: the
 * first line after the free map. */
static ALWAYS_INLINE size_t mspan_remote_off(unsigned k)
{
	return (offsetof(mspan_t, bits) + ((size_t)8 << k) + 63) & ~(size_t)63;
}
/* s->remote_bits computed from line 1 alone (for another thread's free). */
static ALWAYS_INLINE _Atomic uint64_t *mspan_remote_bits_at(mspan_t *s)
{
	return (_Atomic uint64_t *)((char *)s + mspan_remote_off(s->nwords_log2));
}

/* The free map (1 = free slot). */
static ALWAYS_INLINE uint64_t *mspan_free_map(mspan_t *s) { return s->bits; }
/* Owner frees since the last sweep. */
static ALWAYS_INLINE unsigned mspan_nfree_local(const mspan_t *s)
{
	return (uint16_t)(s->free_trigger - s->free_left);
}
/* The free event at `trigger` owner frees since the last sweep (0: never),
 * keeping the count. */
static ALWAYS_INLINE void mspan_set_free_trigger(mspan_t *s, unsigned trigger)
{
	unsigned n = mspan_nfree_local(s);
	s->free_trigger = (uint16_t)trigger;
	s->free_left = (uint16_t)(trigger - n);
}
/* A sweep: no owner free since (the trigger stays). */
static ALWAYS_INLINE void mspan_reset_nfree_local(mspan_t *s)
{
	s->free_left = s->free_trigger;
}
static ALWAYS_INLINE size_t mspan_nwords(const mspan_t *s) { return (size_t)1 << s->nwords_log2; }
/* The bitmap words that hold objects (mspan_nwords may be more: struct
 * sizes are powers of two). */
static ALWAYS_INLINE size_t mspan_nwords_used(const mspan_t *s) { return ((size_t)s->nelems + 63) >> 6; }
/* One free-map word (every class from GM_FIRST_ONE_WORD_CLASS, 128 B, on). */
static ALWAYS_INLINE bool mspan_one_word(const mspan_t *s) { return s->nelems <= 64; }
static ALWAYS_INLINE int mspan_is_large(const mspan_t *s) { return s->elemsize == 0; }
/* A kept large block (a thread cache's, the heap's huge slot) serves a
 * request of npages when it is at most 1/8 bigger. */
static ALWAYS_INLINE bool mspan_large_serves(const mspan_t *s, size_t npages)
{
	return s->npages >= npages && s->npages - npages <= npages / 8;
}

/* Mask of the bits of bitmap word w that stand for indices below `below`. */
static inline uint64_t mspan_mask_below(size_t w, size_t below)
{
	size_t lo = w * 64;
	if (below >= lo + 64)
		return ~0ull;
	if (below <= lo)
		return 0;
	return (1ull << (below - lo)) - 1;
}

/* The free slots that exist in bitmap word w: all of them, as a new span's
 * free map holds them. */
static inline uint64_t mspan_valid_mask(const mspan_t *s, size_t w)
{
	return mspan_mask_below(w, s->nelems);
}

#define MHEAP_SPAN_KINDS 5  /* bitmap words 1, 2, 4, 8, 16 */

typedef struct mheap {
	gm_mutex_t lock;
	pagealloc_t pages;           /* under lock */
	/* span structs by bitmap size; under lock */
	fixalloc_t spanalloc[MHEAP_SPAN_KINDS];
	size_t nlarge_live;          /* informational */
	_Atomic size_t pages_inuse;  /* pages in in-use spans */
	_Atomic size_t scavenged_total; /* bytes released to the OS ever */
	size_t mapped_peak;
	_Atomic size_t inuse_peak;   /* scavenger goal input: recent peak of pages_inuse*8K */
} mheap_t;

extern mheap_t mheap;

bool mheap_init(void);
/* Bitmap words for a span of nelems objects, as log2. */
unsigned mheap_nwords_log2(size_t nelems);

/* A span struct for a span whose bitmaps need (1 << kind) words; under
 * mheap.lock.  Zeroed. NULL if the OS refuses memory. */
mspan_t *mheap_spanstruct_alloc(unsigned kind);
void mheap_spanstruct_free(mspan_t *s);  /* under mheap.lock */

/*
 * Allocate a span of npages for span class spc (class 0 = large) and
 * initialise it: geometry, bitmaps, spans[] entries.  c may be NULL; if not,
 * its page cache and span-struct cache are used first (no lock).
 * align > GM_PAGE_SIZE asks for an aligned page run.  *needzero tells whether
 * the pages may hold old data.  NULL if the OS refuses memory.
 */
mspan_t *mheap_alloc_span(struct mcache *c, size_t npages, spanclass_t spc,
                          size_t align);
/* Return a span's pages to the heap and its struct to the cache/heap. */
void mheap_free_span(struct mcache *c, mspan_t *s);
/* The huge slot (mheap.c): the large block freed last among those the
 * thread caches do not keep (over MCACHE_LARGE_MAX_BLOCK), out of the
 * page allocator until a malloc of its size takes it, a malloc of another
 * size or the heap's growth gives it back, or it sat unused for a
 * scavenger tick.  put: always keeps s (c may be NULL). */
void mheap_huge_put(struct mcache *c, mspan_t *s);
/* A block of npages (at most 1/8 more) from the slot, in use and
 * needzero; NULL if none (a block of another size goes back to the heap). */
mspan_t *mheap_huge_take(struct mcache *c, size_t npages);
/* Give the slot's block back to the heap now; returns its pages. */
size_t mheap_huge_flush(void);
/* The scavenger's tick (under scav_lock): give it back if no put or take
 * used the slot for idle_ns; true while a block stays in the slot. */
bool mheap_huge_flush_idle(uint64_t now, uint64_t idle_ns);
/* Try to resize a large span in place to npages; true on success. */
bool mheap_resize_large(mspan_t *s, size_t npages);
/* Before growing, sweep mcentral spans freed by other threads (Go's reclaim). */
void mheap_reclaim(void);
/* Release free pages to the OS (0 = all): bytes released. */
size_t mheap_scavenge(size_t bytes, bool only_old);
/* Tests: replace os_unused as the release function (NULL restores it). */
void mheap_set_release_hook(bool (*fn)(void *p, size_t bytes));
/* Lock every heap lock for fork (rank order) and release/reinit them. */
/* gm_heap_walk: under mheap.lock; the callback must not allocate. */
int mheap_heap_walk(gm_walk_fn fn, void *arg);
void mheap_fork_prepare(void);
void mheap_fork_parent(void);
void mheap_fork_child(void);

#endif /* GM_MHEAP_H */
