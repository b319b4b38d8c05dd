/*
 * pallocbits.h -- one chunk's page bitmaps and their packed summary (Go's
 * mpallocbits.go and the pallocSum of mpagealloc.go).
 *
 * A chunk is 512 pages (4 MiB).  pallocbits_t holds one bit per page in
 * eight words; bit i of word k is page 64*k + i.  In an alloc bitmap 1 means
 * allocated; in a scavenged bitmap 1 means returned to the OS.
 * pallocdata_t pairs the two, and keeps  alloc bit == 1  =>  scav bit == 0.
 *
 * These functions are pure bit manipulation: no locks, no memory.  The page
 * allocator (pagealloc.c) calls them under the mheap lock.
 */
#ifndef GM_PALLOCBITS_H
#define GM_PALLOCBITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "params.h"

#define PALLOC_CHUNK_WORDS (GM_PAGES_PER_CHUNK / 64)      /* 8 */
_Static_assert(GM_PAGES_PER_CHUNK % 64 == 0, "a chunk is whole words");

/* A page's index inside its chunk, [0, GM_PAGES_PER_CHUNK). */
typedef unsigned page_idx_t;
/* "Not found" for functions that return a page_idx_t. */
#define PALLOC_NOT_FOUND ((page_idx_t)~0u)

typedef struct pallocbits {
	uint64_t w[PALLOC_CHUNK_WORDS];
} pallocbits_t;

/* Go's pallocData.  Invariant: (alloc.w[k] & scav.w[k]) == 0 for every k:
 * an allocated page is never marked scavenged.  (Pages held by a page
 * cache are allocated here; their scavenged bits travel in the cache.) */
typedef struct pallocdata {
	pallocbits_t alloc;   /* 1 = allocated */
	pallocbits_t scav;    /* 1 = scavenged (free and not resident) */
} pallocdata_t;

/* ---- pallocSum: start, max, end packed in one word --------------------
 *
 * start = free pages at the beginning of a region, end = at its end,
 * max = the longest free run anywhere in it.  21 bits each (Go's
 * logMaxPackedValue): a root summary covers 2^21 pages, so the value
 * 2^21 itself does not fit; it only happens when the whole region is free,
 * and is then encoded as bit 63 alone, meaning start = max = end = 2^21.
 * The zero summary means "no free page" (also for never-grown memory). */
typedef uint64_t pallocsum_t;

#define PALLOCSUM_LOG_MAX_PACKED 21
#define PALLOCSUM_MAX_PACKED     ((size_t)1 << PALLOCSUM_LOG_MAX_PACKED)
#define PALLOCSUM_MASK           ((uint64_t)PALLOCSUM_MAX_PACKED - 1)
#define PALLOCSUM_ALL_FREE_BIT   ((uint64_t)1 << 63)
_Static_assert(3 * PALLOCSUM_LOG_MAX_PACKED == 63, "three fields and a flag");

static inline pallocsum_t pallocsum_pack(size_t start, size_t max, size_t end)
{
	if (max == PALLOCSUM_MAX_PACKED)
		return PALLOCSUM_ALL_FREE_BIT;
	return ((uint64_t)start & PALLOCSUM_MASK) |
	       (((uint64_t)max & PALLOCSUM_MASK) << PALLOCSUM_LOG_MAX_PACKED) |
	       (((uint64_t)end & PALLOCSUM_MASK) << (2 * PALLOCSUM_LOG_MAX_PACKED));
}

static inline size_t pallocsum_start(pallocsum_t s)
{
	if (s & PALLOCSUM_ALL_FREE_BIT)
		return PALLOCSUM_MAX_PACKED;
	return (size_t)(s & PALLOCSUM_MASK);
}

static inline size_t pallocsum_max(pallocsum_t s)
{
	if (s & PALLOCSUM_ALL_FREE_BIT)
		return PALLOCSUM_MAX_PACKED;
	return (size_t)((s >> PALLOCSUM_LOG_MAX_PACKED) & PALLOCSUM_MASK);
}

static inline size_t pallocsum_end(pallocsum_t s)
{
	if (s & PALLOCSUM_ALL_FREE_BIT)
		return PALLOCSUM_MAX_PACKED;
	return (size_t)((s >> (2 * PALLOCSUM_LOG_MAX_PACKED)) & PALLOCSUM_MASK);
}

static inline void pallocsum_unpack(pallocsum_t s, size_t *start, size_t *max,
                                    size_t *end)
{
	*start = pallocsum_start(s);
	*max = pallocsum_max(s);
	*end = pallocsum_end(s);
}

/* The summary of a chunk with every page free (Go's freeChunkSum). */
#define PALLOCSUM_FREE_CHUNK                                                  \
	((pallocsum_t)GM_PAGES_PER_CHUNK |                                    \
	 ((pallocsum_t)GM_PAGES_PER_CHUNK << PALLOCSUM_LOG_MAX_PACKED) |      \
	 ((pallocsum_t)GM_PAGES_PER_CHUNK << (2 * PALLOCSUM_LOG_MAX_PACKED)))

/* ---- plain bitmaps ---------------------------------------------------- */

static inline unsigned pallocbits_get(const pallocbits_t *b, page_idx_t i)
{
	return (unsigned)((b->w[i / 64] >> (i % 64)) & 1);
}

/* The aligned 64-page word holding page i. */
static inline uint64_t pallocbits_block64(const pallocbits_t *b, page_idx_t i)
{
	return b->w[i / 64];
}

/* Set / clear bits [i, i+n); n >= 1 and i + n <= 512. */
void pallocbits_set_range(pallocbits_t *b, page_idx_t i, unsigned n);
void pallocbits_clear_range(pallocbits_t *b, page_idx_t i, unsigned n);
void pallocbits_set_all(pallocbits_t *b);
void pallocbits_clear_all(pallocbits_t *b);
/* Number of set bits in [i, i+n); n == 0 gives 0. */
unsigned pallocbits_popcnt_range(const pallocbits_t *b, page_idx_t i,
                                 unsigned n);

/* Summary of an alloc bitmap: free-run lengths at the start, anywhere, at
 * the end (Go's pallocBits.summarize). */
pallocsum_t pallocbits_summarize(const pallocbits_t *b);

/* First index of n consecutive 1 bits in c (1 <= n <= 64), or >= 64 if
 * there is none (Go's findBitRange64). */
unsigned pallocbits_find_bit_range64(uint64_t c, unsigned n);

/* First (lowest) run of npages free pages in an alloc bitmap, searching
 * from the word holding search_idx, which must be a lower bound of the
 * free pages.  Returns its index or PALLOC_NOT_FOUND.  *new_search_idx
 * receives the first free page seen (a better lower bound); it is
 * meaningful whenever the bitmap has a free page at or after the word of
 * search_idx (Go's pallocBits.find). */
page_idx_t pallocbits_find(const pallocbits_t *b, size_t npages,
                           page_idx_t search_idx, page_idx_t *new_search_idx);
/* First free page at or after the word of search_idx (Go's find1). */
page_idx_t pallocbits_find1(const pallocbits_t *b, page_idx_t search_idx);

/* ---- alloc + scavenged pairs ------------------------------------------ */

/* Mark [i, i+n) allocated and not scavenged; returns how many of those
 * pages were scavenged before. */
unsigned pallocdata_alloc_range(pallocdata_t *d, page_idx_t i, unsigned n);
/* Same for the whole chunk. */
unsigned pallocdata_alloc_all(pallocdata_t *d);
/* Mark [i, i+n) free.  Scavenged bits are left as they are (0 for pages
 * that were allocated). */
void pallocdata_free_range(pallocdata_t *d, page_idx_t i, unsigned n);

/* Free pages in the chunk, and free-and-scavenged pages. */
unsigned pallocdata_free_count(const pallocdata_t *d);
unsigned pallocdata_free_scav_count(const pallocdata_t *d);

/* The highest run of free, unscavenged pages whose pages all lie at or
 * below search_idx, cut to its top max_pages pages (max_pages >= 1).
 * Returns the run's first page and its length in *npages, or
 * PALLOC_NOT_FOUND (Go's findScavengeCandidate, physical page <= page). */
page_idx_t pallocdata_find_scavenge_candidate(const pallocdata_t *d,
                                              page_idx_t search_idx,
                                              size_t max_pages,
                                              unsigned *npages);

#endif /* GM_PALLOCBITS_H */
