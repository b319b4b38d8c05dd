/*
 * pagealloc.h -- the page allocator: a radix tree of free-run summaries
 * over per-chunk bitmaps, address-ordered first fit over 8 KiB pages (Go's
 * mpagealloc.go, mpagealloc_64bit.go, mpagecache.go).
 *
 * Locking: every function here except pagecache_alloc must be called with
 * the mheap lock held (mheap.c embeds the pagealloc_t and owns the lock;
 * scavenge.c calls pagealloc_scav_take/return under that same lock).
 * pagecache_alloc touches only the caller's own pagecache_t.
 */
#ifndef GM_PAGEALLOC_H
#define GM_PAGEALLOC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pallocbits.h"
#include "params.h"

/* Radix tree geometry (Go's summaryLevels, summaryL0Bits, levelBits). */
#define PAGEALLOC_LEVELS      5
#define PAGEALLOC_L0_BITS     14
#define PAGEALLOC_LEVEL_BITS  3
_Static_assert(PAGEALLOC_L0_BITS + (PAGEALLOC_LEVELS - 1) * PAGEALLOC_LEVEL_BITS +
               GM_CHUNK_SHIFT == GM_ADDR_BITS, "levels cover the address space");
_Static_assert(GM_PAGE_SHIFT + 9 == GM_CHUNK_SHIFT, "512 pages per chunk");
_Static_assert(9 + (PAGEALLOC_LEVELS - 1) * PAGEALLOC_LEVEL_BITS ==
               PALLOCSUM_LOG_MAX_PACKED, "a root summary counts 2^21 pages");

/* Chunk map: L1 of 2^13 pointers to L2 blocks of 2^13 chunks (1 MiB each). */
#define PAGEALLOC_CHUNKS_L1_BITS 13
#define PAGEALLOC_CHUNKS_L2_BITS 13
_Static_assert(PAGEALLOC_CHUNKS_L1_BITS + PAGEALLOC_CHUNKS_L2_BITS +
               GM_CHUNK_SHIFT == GM_ADDR_BITS, "chunk map covers 48 bits");

/* A chunk's index in the address space: addr >> GM_CHUNK_SHIFT. */
typedef uintptr_t chunk_idx_t;

static inline chunk_idx_t pagealloc_chunk_index(uintptr_t addr)
{
	return addr >> GM_CHUNK_SHIFT;
}
static inline uintptr_t pagealloc_chunk_base(chunk_idx_t ci)
{
	return (uintptr_t)ci << GM_CHUNK_SHIFT;
}
static inline page_idx_t pagealloc_chunk_page_index(uintptr_t addr)
{
	return (page_idx_t)((addr >> GM_PAGE_SHIFT) & (GM_PAGES_PER_CHUNK - 1));
}

/* One L2 block of the chunk map, mapped (zero) when a chunk in it is first
 * grown.  `grown` has bit c set once chunk c of the block was given to
 * pagealloc_grow: bits of chunks never grown are meaningless. */
typedef struct pagealloc_l2 {
	pallocdata_t chunk[1u << PAGEALLOC_CHUNKS_L2_BITS];
	uint64_t grown[(1u << PAGEALLOC_CHUNKS_L2_BITS) / 64];
} pagealloc_l2_t;

/* Summaries per block of a summary level (128 KiB: level 0 is one). */
#define PAGEALLOC_SUM_BLOCK_BITS 14
#define PAGEALLOC_SUM_BLOCK      ((size_t)1 << PAGEALLOC_SUM_BLOCK_BITS)
_Static_assert(PAGEALLOC_L0_BITS == PAGEALLOC_SUM_BLOCK_BITS,
               "level 0 (scanned whole by the search) is one block");

/* Chunks with deferred summary updates before a forced sync. */
#define PAGEALLOC_DIRTY_MAX 16

typedef struct pagealloc {
	/* Level l has 1 << (14 + 3*l) summaries (level 4: one per chunk of
	 * the 48-bit address space), kept in blocks of PAGEALLOC_SUM_BLOCK
	 * summaries: sumblk[l][b] is block b of level l, the shared read-only
	 * zero block (zero_block) until pagealloc_grow maps it for a grown
	 * range, so only the blocks over grown ranges take address space
	 * (docs/design.md, "Address space under ulimit -v").  Levels 0 and
	 * 1 are mapped whole at init.  Under mheap lock. */
	pallocsum_t *sumblk_l0[1], *sumblk_l1[8], *sumblk_l2[64], *sumblk_l3[512],
	    *sumblk_l4[4096];
	pallocsum_t **sumblk[PAGEALLOC_LEVELS];
	pallocsum_t *zero_block;
	/* chunk_idx -> bitmaps.  Under mheap lock. */
	pagealloc_l2_t *chunks[1u << PAGEALLOC_CHUNKS_L1_BITS];
	/* Go's searchAddr: every page below it is allocated.  Either inside a
	 * summary region with free pages or PAGEALLOC_MAX_SEARCH_ADDR (no free
	 * page anywhere).  Under mheap lock. */
	uintptr_t search_addr;
	/* Chunks [start, end) bound every grown chunk (not all between are). */
	chunk_idx_t start, end;
	/* Page counts, exact:
	 *   total_pages = pages ever grown
	 *   free_pages  = sum over grown chunks of free alloc bits
	 *   scav_pages  = sum over grown chunks of (free & scavenged) bits
	 * Pages in a page cache count as allocated.  Under mheap lock. */
	size_t total_pages, free_pages, scav_pages;
	/* Scavenged pages held in page caches: added when a cache takes a
	 * block, taken off when its owner pages some in (mheap_alloc_span,
	 * no lock: atomic) or the cache is flushed.  Released memory all the
	 * same (Go's heapReleased counts them until they are allocated). */
	_Atomic size_t cache_scav_pages;
	/* Bytes of metadata mappings (summary blocks + L2 blocks). */
	size_t meta_bytes;
	/* Chunks whose summaries lag their bitmaps: a free inside one chunk
	 * (pagealloc_free: a span going back) changes the bits and the counts
	 * at once but only notes the chunk here; pagealloc_sync brings the
	 * summaries up to date before anything reads them (alloc, page cache,
	 * scavenge, pagealloc_summary) or when the list is full.  A lagging
	 * leaf shows a subset of the chunk's free pages (only frees are
	 * deferred, and every alloc in the chunk summarises it again), and the
	 * levels above always merge the leaves as they are.  Under mheap lock.
	 * (docs/design.md, "Deferred summaries".) */
	chunk_idx_t dirty[PAGEALLOC_DIRTY_MAX];
	unsigned ndirty;
} pagealloc_t;

/* "No free memory" value of search_addr (Go's maxSearchAddr). */
#define PAGEALLOC_MAX_SEARCH_ADDR UINTPTR_MAX

/* Go's pageCache: 64 pages aligned to 64 pages inside one chunk, owned by
 * one thread cache.  cache bit i = page base + i*8K is free for the owner;
 * scav bit i = that page is scavenged (only meaningful where cache bit is
 * 1).  cache == 0 means empty.  Owner only; the pages are marked allocated
 * in the page allocator while cached. */
typedef struct pagecache {
	uintptr_t base;
	uint64_t cache;
	uint64_t scav;
} pagecache_t;

/* Reserve the summary arrays (virtual space only); false if the OS refuses. */
bool pagealloc_init(pagealloc_t *p);
/* Unmap all metadata (tests; the heap itself lives forever). */
void pagealloc_destroy(pagealloc_t *p);
/* Add [base, base + bytes) as free, scavenged pages.  base and bytes must be
 * chunk-aligned (4 MiB), non-zero, below 2^48, and not overlap an earlier
 * grow.  False (nothing changed) if not, or if chunk metadata can't be
 * mapped.  Mheap lock. */
bool pagealloc_grow(pagealloc_t *p, uintptr_t base, size_t bytes);
/* First fit of npages pages; 0 if no run is large enough.  *scav_pages (may
 * be NULL) = how many of the returned pages were scavenged (so are zero and
 * not resident).  Mheap lock. */
uintptr_t pagealloc_alloc(pagealloc_t *p, size_t npages, size_t *scav_pages);
/* First fit of npages pages whose base is aligned to align_pages pages (a
 * power of two); found by searching npages + align_pages - 1 pages, as Go's
 * needPhysPageAlign.  0 if none.  Mheap lock. */
uintptr_t pagealloc_alloc_aligned(pagealloc_t *p, size_t npages,
                                  size_t align_pages, size_t *scav_pages);
/* Allocate exactly [base, base + npages pages) iff every page there is grown
 * and free (realloc in place).  Mheap lock. */
bool pagealloc_alloc_exact(pagealloc_t *p, uintptr_t base, size_t npages,
                           size_t *scav_pages);
/* Free pages that were allocated; they become unscavenged.  Mheap lock. */
void pagealloc_free(pagealloc_t *p, uintptr_t base, size_t npages);
/* Every page of the range is grown and free.  Mheap lock. */
bool pagealloc_is_free(const pagealloc_t *p, uintptr_t base, size_t npages);

/* Scavenger mechanism (policy in scavenge.c).  Find the highest run of
 * free, unscavenged pages at or below *search (start with UINTPTR_MAX), at
 * most max_pages long and inside one chunk; mark it allocated so nobody
 * takes it while the caller madvises it without the lock; return its base
 * and length in *npages_out (0 if there is none: then *search = 0).
 * *search moves just below the run, so the next call continues downward.
 * Mheap lock. */
uintptr_t pagealloc_scav_take(pagealloc_t *p, size_t max_pages,
                              uintptr_t *search, size_t *npages_out);
/* Give back a run from pagealloc_scav_take: free it and mark its pages
 * scavenged.  (If madvise failed, give it back with pagealloc_free.)
 * Mheap lock. */
void pagealloc_scav_return(pagealloc_t *p, uintptr_t base, size_t npages);

size_t pagealloc_free_pages(const pagealloc_t *p);   /* mheap lock */
size_t pagealloc_scav_pages(const pagealloc_t *p);   /* free and scavenged */
/* Pages released to the OS: free and scavenged, plus the scavenged pages
 * of page caches (not yet paged in). */
size_t pagealloc_released_pages(const pagealloc_t *p);
size_t pagealloc_total_pages(const pagealloc_t *p);
size_t pagealloc_metadata_bytes(const pagealloc_t *p); /* virtual */

/* Page cache (Go's mpagecache.go). */
/* Take the 64-page block holding the first free page; its free pages become
 * allocated here and belong to the returned cache.  cache == 0: no free
 * page (the heap must grow).  Mheap lock. */
pagecache_t pagealloc_alloc_to_cache(pagealloc_t *p);
/* First fit of npages (1..64) inside the cache; 0 if it can't.  No lock:
 * owner only.  *scav_pages (may be NULL) as pagealloc_alloc. */
uintptr_t pagecache_alloc(pagecache_t *c, size_t npages, size_t *scav_pages);
/* Return the cache's unused pages (keeping their scavenged bits) and empty
 * it.  Mheap lock. */
void pagecache_flush(pagecache_t *c, pagealloc_t *p);

/* Bring every deferred summary up to date (see dirty[]).  Mheap lock. */
void pagealloc_sync(pagealloc_t *p);

/* For tests and debugging: summary entry idx of level l, after a sync. */
uint64_t pagealloc_summary(pagealloc_t *p, int level, size_t idx);
/* The bitmaps of chunk ci, or NULL if it was never grown.  Mheap lock. */
const pallocdata_t *pagealloc_chunk(const pagealloc_t *p, chunk_idx_t ci);

#endif /* GM_PAGEALLOC_H */
