/*
 * pagealloc.c -- the page allocator (Go's mpagealloc.go,
 * mpagealloc_64bit.go and mpagecache.go): address-ordered first fit over
 * 8 KiB pages, with a radix tree of summaries to find runs fast.
 *
 * Who calls it: mheap.c, under the mheap lock, for every span's pages and
 * to grow the heap; scavenge.c, under the same lock, to take free resident
 * runs (pagealloc_scav_take) and give them back scavenged
 * (pagealloc_scav_return) around an madvise done without the lock; thread
 * caches through mheap for page caches.  Every function takes the mheap
 * lock as given, except pagecache_alloc, which touches only the caller's
 * own cache.  Nothing here ever touches heap memory: the allocator works on
 * addresses only, which is why the unit tests can run it over a fake range.
 *
 * Structure:
 *   - chunks: 512 pages (4 MiB) each, one pallocdata_t (alloc + scavenged
 *     bitmaps) per chunk, found through a two-level map (2^13 x 2^13) whose
 *     L2 blocks are mapped when a chunk in them is first grown.
 *   - summary[0..4]: one packed (start, max, end) per region; level l
 *     entry i covers addresses [i << shift[l], (i+1) << shift[l]), with
 *     shift = {34, 31, 28, 25, 22}: 16 GiB at the root, one chunk at the
 *     leaves.  Each level is cut in blocks of 2^14 summaries (128 KiB);
 *     a block is mapped when a grown range first covers it, the others
 *     are one shared read-only zero block: untouched entries read 0 ("no
 *     free page"), which is also right for never-grown memory, and a
 *     process's summaries take about 1.6 MiB of address space instead of
 *     585 MiB (docs/design.md, "Address space under ulimit -v").
 *
 * Invariants (checked by tests/unit/test_pagealloc.c):
 *   summary[4][c]    = pallocbits_summarize(chunk c alloc)  (grown c not in
 *                      dirty[]; for a chunk in dirty[] the leaf summarises
 *                      an older bitmap with a subset of the free pages: a
 *                      free inside one chunk defers the update, and every
 *                      reader of summaries calls pagealloc_sync first)
 *   summary[l][i]    = merge(summary[l+1][8i .. 8i+7])      (l < 4)
 *   every page below search_addr is allocated
 *   free_pages       = sum_c  free alloc bits of chunk c
 *   scav_pages       = sum_c  popcount(scav & ~alloc) of chunk c
 *   total_pages      = pages grown;  scav_pages <= free_pages <= total_pages
 *
 * Page caches hold 64-page blocks whose free pages are marked allocated
 * here while cached; their scavenged bits travel in the cache and come
 * back on flush.  Scavenging never crosses a chunk; scav_take marks the
 * run allocated so that the unlocked madvise cannot race with an alloc.
 *
 * Not handled: address spaces above 48 bits, growing a range twice
 * (refused), freeing pages that are not allocated (a caller bug; mheap
 * detects double frees before they get here).
 */
#include "pagealloc.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compiler.h"
#include "os_linux.h"

#define PAGEALLOC_ADDR_LIMIT ((uintptr_t)1 << GM_ADDR_BITS)
#define PAGEALLOC_L2_MASK    (((chunk_idx_t)1 << PAGEALLOC_CHUNKS_L2_BITS) - 1)
#define PAGEALLOC_NO_CHUNK   (~(chunk_idx_t)0)

/* Radix bits, address shift, and log2 pages per entry of each level. */
static const unsigned pagealloc_level_bits[PAGEALLOC_LEVELS] = {
	PAGEALLOC_L0_BITS, PAGEALLOC_LEVEL_BITS, PAGEALLOC_LEVEL_BITS,
	PAGEALLOC_LEVEL_BITS, PAGEALLOC_LEVEL_BITS,
};
static const unsigned pagealloc_level_shift[PAGEALLOC_LEVELS] = {
	GM_ADDR_BITS - PAGEALLOC_L0_BITS,
	GM_ADDR_BITS - PAGEALLOC_L0_BITS - 1 * PAGEALLOC_LEVEL_BITS,
	GM_ADDR_BITS - PAGEALLOC_L0_BITS - 2 * PAGEALLOC_LEVEL_BITS,
	GM_ADDR_BITS - PAGEALLOC_L0_BITS - 3 * PAGEALLOC_LEVEL_BITS,
	GM_ADDR_BITS - PAGEALLOC_L0_BITS - 4 * PAGEALLOC_LEVEL_BITS,
};
static const unsigned pagealloc_level_log_pages[PAGEALLOC_LEVELS] = {
	9 + 4 * PAGEALLOC_LEVEL_BITS, 9 + 3 * PAGEALLOC_LEVEL_BITS,
	9 + 2 * PAGEALLOC_LEVEL_BITS, 9 + 1 * PAGEALLOC_LEVEL_BITS, 9,
};
_Static_assert(GM_ADDR_BITS - PAGEALLOC_L0_BITS - 4 * PAGEALLOC_LEVEL_BITS ==
               GM_CHUNK_SHIFT, "leaf level is one chunk");

static size_t pagealloc_level_entries(int l)
{
	return (size_t)1 << (GM_ADDR_BITS - pagealloc_level_shift[l]);
}

#define PAGEALLOC_SUM_BLOCK_BYTES (PAGEALLOC_SUM_BLOCK * sizeof(pallocsum_t))
#define PAGEALLOC_DIR_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define PAGEALLOC_LEVEL_BLOCKS(l) \
	((size_t)1 << (PAGEALLOC_L0_BITS + (l) * PAGEALLOC_LEVEL_BITS - PAGEALLOC_SUM_BLOCK_BITS))
_Static_assert(PAGEALLOC_DIR_LEN(((pagealloc_t *)0)->sumblk_l0) == PAGEALLOC_LEVEL_BLOCKS(0) &&
               PAGEALLOC_DIR_LEN(((pagealloc_t *)0)->sumblk_l1) == PAGEALLOC_LEVEL_BLOCKS(1) &&
               PAGEALLOC_DIR_LEN(((pagealloc_t *)0)->sumblk_l2) == PAGEALLOC_LEVEL_BLOCKS(2) &&
               PAGEALLOC_DIR_LEN(((pagealloc_t *)0)->sumblk_l3) == PAGEALLOC_LEVEL_BLOCKS(3) &&
               PAGEALLOC_DIR_LEN(((pagealloc_t *)0)->sumblk_l4) == PAGEALLOC_LEVEL_BLOCKS(4),
               "one block pointer per block of each level");

static size_t pagealloc_level_blocks(int l)
{
	return pagealloc_level_entries(l) >> PAGEALLOC_SUM_BLOCK_BITS;
}

/* Summary i of level l.  Groups of 8 siblings (aligned) and all of level
 * 0 lie in one block, so a pointer to the first covers them. */
static inline pallocsum_t *pagealloc_sum(const pagealloc_t *p, int l, size_t i)
{
	return &p->sumblk[l][i >> PAGEALLOC_SUM_BLOCK_BITS][i & (PAGEALLOC_SUM_BLOCK - 1)];
}

/* Map the summary blocks of level l over entries [lo, hi]; false if the
 * OS refuses (blocks mapped so far stay, for a later grow). */
static bool pagealloc_map_sums(pagealloc_t *p, int l, size_t lo, size_t hi)
{
	for (size_t b = lo >> PAGEALLOC_SUM_BLOCK_BITS; b <= hi >> PAGEALLOC_SUM_BLOCK_BITS; b++) {
		if (p->sumblk[l][b] != p->zero_block)
			continue;
		pallocsum_t *blk = os_alloc(PAGEALLOC_SUM_BLOCK_BYTES);
		if (blk == NULL)
			return false;
		p->sumblk[l][b] = blk;
		p->meta_bytes += PAGEALLOC_SUM_BLOCK_BYTES;
	}
	return true;
}

/* Corrupt metadata: say so without allocating and stop. */
static COLD GM_NORETURN void pagealloc_throw(const char *msg)
{
	static const char prefix[] = "gomalloc: page allocator: ";
	ssize_t r = write(2, prefix, sizeof prefix - 1);
	r = write(2, msg, strlen(msg));
	r = write(2, "\n", 1);
	(void)r;
	abort();
}

static inline pallocdata_t *pagealloc_chunk_of(const pagealloc_t *p,
                                               chunk_idx_t ci)
{
	return &p->chunks[ci >> PAGEALLOC_CHUNKS_L2_BITS]
	            ->chunk[ci & PAGEALLOC_L2_MASK];
}

static bool pagealloc_chunk_grown(const pagealloc_t *p, chunk_idx_t ci)
{
	if (ci >> (PAGEALLOC_CHUNKS_L1_BITS + PAGEALLOC_CHUNKS_L2_BITS))
		return false;
	const pagealloc_l2_t *l2 = p->chunks[ci >> PAGEALLOC_CHUNKS_L2_BITS];
	if (l2 == NULL)
		return false;
	chunk_idx_t j = ci & PAGEALLOC_L2_MASK;
	return (l2->grown[j / 64] >> (j % 64)) & 1;
}

bool pagealloc_init(pagealloc_t *p)
{
	memset(p, 0, sizeof *p);
	p->sumblk[0] = p->sumblk_l0;
	p->sumblk[1] = p->sumblk_l1;
	p->sumblk[2] = p->sumblk_l2;
	p->sumblk[3] = p->sumblk_l3;
	p->sumblk[4] = p->sumblk_l4;
	p->search_addr = PAGEALLOC_MAX_SEARCH_ADDR;
	p->zero_block = os_alloc_zero_readonly(PAGEALLOC_SUM_BLOCK_BYTES);
	if (p->zero_block == NULL)
		return false;
	for (int l = 0; l < PAGEALLOC_LEVELS; l++)
		for (size_t b = 0; b < pagealloc_level_blocks(l); b++)
			p->sumblk[l][b] = p->zero_block;
	/* the root levels whole (1.1 MiB of address space, touched as used) */
	for (int l = 0; l < 2; l++) {
		if (!pagealloc_map_sums(p, l, 0, pagealloc_level_entries(l) - 1)) {
			pagealloc_destroy(p);
			return false;
		}
	}
	return true;
}

void pagealloc_destroy(pagealloc_t *p)
{
	for (int l = 0; l < PAGEALLOC_LEVELS; l++) {
		if (p->sumblk[l] == NULL)
			continue;
		for (size_t b = 0; b < pagealloc_level_blocks(l); b++)
			if (p->sumblk[l][b] != NULL && p->sumblk[l][b] != p->zero_block)
				os_free(p->sumblk[l][b], PAGEALLOC_SUM_BLOCK_BYTES);
	}
	if (p->zero_block != NULL)
		os_free(p->zero_block, PAGEALLOC_SUM_BLOCK_BYTES);
	for (size_t i = 0; i < (1u << PAGEALLOC_CHUNKS_L1_BITS); i++)
		if (p->chunks[i] != NULL)
			os_free(p->chunks[i], sizeof(pagealloc_l2_t));
	memset(p, 0, sizeof *p);
	p->search_addr = PAGEALLOC_MAX_SEARCH_ADDR;
}

/*
 * Merge consecutive summaries, each covering 1 << log_pages pages, into
 * one (Go's mergeSummaries).
 */
static pallocsum_t pagealloc_merge(const pallocsum_t *sums, size_t n,
                                   unsigned log_pages)
{
	size_t whole = (size_t)1 << log_pages;
	size_t start, max, end;
	pallocsum_unpack(sums[0], &start, &max, &end);
	for (size_t i = 1; i < n; i++) {
		size_t si, mi, ei;
		pallocsum_unpack(sums[i], &si, &mi, &ei);
		if (start == i * whole) /* everything so far is free */
			start += si;
		if (end + si > max)
			max = end + si;
		if (mi > max)
			max = mi;
		if (ei == whole)
			end += whole;
		else
			end = ei;
	}
	return pallocsum_pack(start, max, end);
}

/*
 * Recompute the summaries over [base, base + npages pages) after its
 * bitmaps changed (Go's update).  contig: the change was one contiguous
 * alloc (alloc) or free (!alloc), so chunks strictly inside the range are
 * wholly allocated or wholly free.
 */
static void pagealloc_update(pagealloc_t *p, uintptr_t base, size_t npages,
                             bool contig, bool alloc)
{
	uintptr_t limit = base + npages * GM_PAGE_SIZE - 1; /* inclusive */
	chunk_idx_t sc = pagealloc_chunk_index(base);
	chunk_idx_t ec = pagealloc_chunk_index(limit);
	const int leaf = PAGEALLOC_LEVELS - 1;

	if (sc == ec) {
		pallocsum_t y = pallocbits_summarize(&pagealloc_chunk_of(p, sc)->alloc);
		pallocsum_t *e = pagealloc_sum(p, leaf, sc);
		if (*e == y)
			return;
		*e = y;
	} else if (contig) {
		*pagealloc_sum(p, leaf, sc) = pallocbits_summarize(&pagealloc_chunk_of(p, sc)->alloc);
		for (chunk_idx_t c = sc + 1; c < ec; c++)
			*pagealloc_sum(p, leaf, c) = alloc ? 0 : PALLOCSUM_FREE_CHUNK;
		*pagealloc_sum(p, leaf, ec) = pallocbits_summarize(&pagealloc_chunk_of(p, ec)->alloc);
	} else {
		for (chunk_idx_t c = sc; c <= ec; c++)
			*pagealloc_sum(p, leaf, c) = pallocbits_summarize(&pagealloc_chunk_of(p, c)->alloc);
	}

	bool changed = true;
	for (int l = PAGEALLOC_LEVELS - 2; l >= 0 && changed; l--) {
		changed = false;
		unsigned child_bits = pagealloc_level_bits[l + 1];
		unsigned child_log_pages = pagealloc_level_log_pages[l + 1];
		size_t lo = base >> pagealloc_level_shift[l];
		size_t hi = (limit >> pagealloc_level_shift[l]) + 1;
		for (size_t i = lo; i < hi; i++) {
			pallocsum_t sum = pagealloc_merge(
			    pagealloc_sum(p, l + 1, i << child_bits),
			    (size_t)1 << child_bits, child_log_pages);
			pallocsum_t *e = pagealloc_sum(p, l, i);
			if (*e != sum) {
				*e = sum;
				changed = true;
			}
		}
	}
}

void pagealloc_sync(pagealloc_t *p)
{
	for (unsigned k = 0; k < p->ndirty; k++)
		pagealloc_update(p, pagealloc_chunk_base(p->dirty[k]),
		                 GM_PAGES_PER_CHUNK, false, false);
	p->ndirty = 0;
}

/* A free inside chunk ci: its summaries are brought up to date later
 * (pagealloc_t dirty[]).  batch_lifo/4096 (500 one-page spans freed in a
 * row) summarised and merged the same chunk 500 times. */
static void pagealloc_defer(pagealloc_t *p, chunk_idx_t ci)
{
	for (unsigned k = 0; k < p->ndirty; k++)
		if (p->dirty[k] == ci)
			return;
	if (p->ndirty == PAGEALLOC_DIRTY_MAX)
		pagealloc_sync(p);
	p->dirty[p->ndirty++] = ci;
}

/*
 * Mark [base, base + npages pages) allocated (all of it must be free) and
 * update summaries and counts.  Returns how many pages were scavenged.
 */
static size_t pagealloc_alloc_range(pagealloc_t *p, uintptr_t base,
                                    size_t npages)
{
	uintptr_t limit = base + npages * GM_PAGE_SIZE - 1;
	chunk_idx_t sc = pagealloc_chunk_index(base);
	chunk_idx_t ec = pagealloc_chunk_index(limit);
	page_idx_t si = pagealloc_chunk_page_index(base);
	page_idx_t ei = pagealloc_chunk_page_index(limit);
	size_t scav = 0;

	if (sc == ec) {
		scav += pallocdata_alloc_range(pagealloc_chunk_of(p, sc), si,
		                               ei + 1 - si);
	} else {
		scav += pallocdata_alloc_range(pagealloc_chunk_of(p, sc), si,
		                               GM_PAGES_PER_CHUNK - si);
		for (chunk_idx_t c = sc + 1; c < ec; c++)
			scav += pallocdata_alloc_all(pagealloc_chunk_of(p, c));
		scav += pallocdata_alloc_range(pagealloc_chunk_of(p, ec), 0,
		                               ei + 1);
	}
	p->free_pages -= npages;
	p->scav_pages -= scav;
	pagealloc_update(p, base, npages, true, true);
	return scav;
}

/* Mark [base, base + npages pages) free, and scavenged if `scavenged`. */
static void pagealloc_free_range(pagealloc_t *p, uintptr_t base,
                                 size_t npages, bool scavenged)
{
	uintptr_t limit = base + npages * GM_PAGE_SIZE - 1;
	chunk_idx_t sc = pagealloc_chunk_index(base);
	chunk_idx_t ec = pagealloc_chunk_index(limit);

	if (base < p->search_addr)
		p->search_addr = base;
	for (chunk_idx_t c = sc; c <= ec; c++) {
		page_idx_t i = c == sc ? pagealloc_chunk_page_index(base) : 0;
		page_idx_t j = c == ec ? pagealloc_chunk_page_index(limit)
		                       : GM_PAGES_PER_CHUNK - 1;
#ifdef GM_DEBUG
		if (!pagealloc_chunk_grown(p, c) ||
		    pallocbits_popcnt_range(&pagealloc_chunk_of(p, c)->alloc, i,
		                            j + 1 - i) != j + 1 - i)
			pagealloc_throw("free of pages that are not allocated");
#endif
		pallocdata_t *d = pagealloc_chunk_of(p, c);
		pallocdata_free_range(d, i, j + 1 - i);
		if (scavenged)
			pallocbits_set_range(&d->scav, i, j + 1 - i);
	}
	p->free_pages += npages;
	if (scavenged)
		p->scav_pages += npages;
	if (sc == ec && !scavenged)
		pagealloc_defer(p, sc);
	else
		pagealloc_update(p, base, npages, true, false);
}

bool pagealloc_grow(pagealloc_t *p, uintptr_t base, size_t bytes)
{
	if (base == 0 || bytes == 0 || base % GM_CHUNK_SIZE != 0 ||
	    bytes % GM_CHUNK_SIZE != 0 || base >= PAGEALLOC_ADDR_LIMIT ||
	    bytes > PAGEALLOC_ADDR_LIMIT - base)
		return false;
	uintptr_t limit = base + bytes;
	chunk_idx_t sc = pagealloc_chunk_index(base);
	chunk_idx_t ec = pagealloc_chunk_index(limit); /* exclusive */

	for (chunk_idx_t c = sc; c < ec; c++)
		if (pagealloc_chunk_grown(p, c))
			return false;
	/* Map the L2 blocks first, so a refusal leaves everything as it was
	 * (blocks mapped so far stay, empty, and are used by a later grow). */
	for (size_t i = sc >> PAGEALLOC_CHUNKS_L2_BITS;
	     i <= (ec - 1) >> PAGEALLOC_CHUNKS_L2_BITS; i++) {
		if (p->chunks[i] != NULL)
			continue;
		p->chunks[i] = os_alloc(sizeof(pagealloc_l2_t));
		if (p->chunks[i] == NULL)
			return false;
		p->meta_bytes += sizeof(pagealloc_l2_t);
	}
	/* ... and the summary blocks over the range, every level */
	for (int l = 0; l < PAGEALLOC_LEVELS; l++)
		if (!pagealloc_map_sums(p, l, base >> pagealloc_level_shift[l],
		                        (limit - 1) >> pagealloc_level_shift[l]))
			return false;

	/* Fresh memory is free and scavenged (zero, not resident). */
	for (chunk_idx_t c = sc; c < ec; c++) {
		pagealloc_l2_t *l2 = p->chunks[c >> PAGEALLOC_CHUNKS_L2_BITS];
		chunk_idx_t j = c & PAGEALLOC_L2_MASK;
		l2->grown[j / 64] |= (uint64_t)1 << (j % 64);
		pallocbits_clear_all(&l2->chunk[j].alloc);
		pallocbits_set_all(&l2->chunk[j].scav);
	}
	if (p->end == 0 || sc < p->start)
		p->start = sc;
	if (ec > p->end)
		p->end = ec;
	if (base < p->search_addr)
		p->search_addr = base;

	size_t npages = bytes / GM_PAGE_SIZE;
	p->total_pages += npages;
	p->free_pages += npages;
	p->scav_pages += npages;
	pagealloc_update(p, base, npages, true, false);
	return true;
}

/*
 * The narrowest known window that holds the first free page (Go's
 * firstFree): it starts as the whole address space and shrinks each time
 * the search descends into a region that has free pages.
 */
typedef struct pagealloc_window {
	uintptr_t base, bound; /* inclusive */
} pagealloc_window_t;

static void pagealloc_found_free(pagealloc_window_t *w, uintptr_t addr,
                                 uintptr_t size)
{
	uintptr_t last = addr + size - 1;
	if (w->base <= addr && last <= w->bound) {
		w->base = addr;
		w->bound = last;
	} else if (!(last < w->base || addr > w->bound)) {
		pagealloc_throw("free window partially overlaps");
	}
}

/*
 * The radix tree search (Go's pageAlloc.find): walk down from the root,
 * taking at each level the first entry whose max fits npages, unless a run
 * crossing entries (one's end + next ones' start) fits first.  Returns the
 * run's base or 0, and in *new_search a candidate search_addr.
 */
static uintptr_t pagealloc_find(const pagealloc_t *p, size_t npages,
                                uintptr_t *new_search)
{
	pagealloc_window_t first_free = { 0, PAGEALLOC_ADDR_LIMIT - 1 };
	size_t i = 0; /* first entry of the block searched at this level */

	for (int l = 0; l < PAGEALLOC_LEVELS; l++) {
		size_t per_block = (size_t)1 << pagealloc_level_bits[l];
		unsigned log_pages = pagealloc_level_log_pages[l];
		size_t whole = (size_t)1 << log_pages;
		unsigned shift = pagealloc_level_shift[l];
		i <<= pagealloc_level_bits[l];
		const pallocsum_t *entries = pagealloc_sum(p, l, i);

		/* Start at search_addr's entry if it lies in this block. */
		size_t j0 = 0;
		size_t search_idx = p->search_addr >> shift;
		if ((search_idx & ~(per_block - 1)) == i)
			j0 = search_idx & (per_block - 1);

		size_t base = 0, size = 0; /* current run, pages from entry i */
		bool descend = false;
		for (size_t j = j0; j < per_block; j++) {
			pallocsum_t sum = entries[j];
			if (sum == 0) {
				size = 0;
				continue;
			}
			pagealloc_found_free(&first_free, (uintptr_t)(i + j) << shift,
			                     (uintptr_t)whole * GM_PAGE_SIZE);
			size_t s = pallocsum_start(sum);
			if (size + s >= npages) {
				if (size == 0)
					base = j << log_pages;
				size += s;
				break;
			}
			if (pallocsum_max(sum) >= npages) {
				i += j;
				descend = true;
				break;
			}
			if (size == 0 || s < whole) {
				size = pallocsum_end(sum);
				base = ((j + 1) << log_pages) - size;
				continue;
			}
			size += whole; /* wholly free: the run goes on */
		}
		if (descend)
			continue;
		if (size >= npages) {
			*new_search = first_free.base;
			return ((uintptr_t)i << shift) + (uintptr_t)base * GM_PAGE_SIZE;
		}
		if (l == 0) {
			*new_search = PAGEALLOC_MAX_SEARCH_ADDR;
			return 0;
		}
		pagealloc_throw("bad summary data (level exhausted)");
	}

	/* The leaf entry i has max >= npages: look inside the chunk. */
	chunk_idx_t ci = i;
	page_idx_t sidx;
	page_idx_t j = pallocbits_find(&pagealloc_chunk_of(p, ci)->alloc, npages,
	                               0, &sidx);
	if (j == PALLOC_NOT_FOUND)
		pagealloc_throw("bad summary data (chunk has no fit)");
	uintptr_t search = pagealloc_chunk_base(ci) + (uintptr_t)sidx * GM_PAGE_SIZE;
	pagealloc_found_free(&first_free, search,
	                     pagealloc_chunk_base(ci + 1) - search);
	*new_search = first_free.base;
	return pagealloc_chunk_base(ci) + (uintptr_t)j * GM_PAGE_SIZE;
}

uintptr_t pagealloc_alloc(pagealloc_t *p, size_t npages, size_t *scav_pages)
{
	if (scav_pages != NULL)
		*scav_pages = 0;
	if (p->ndirty != 0)
		pagealloc_sync(p);
	if (npages == 0 || pagealloc_chunk_index(p->search_addr) >= p->end)
		return 0;
	if (npages > p->free_pages) { /* cannot fit; also no overflow below */
		if (p->free_pages == 0)
			p->search_addr = PAGEALLOC_MAX_SEARCH_ADDR;
		return 0;
	}

	uintptr_t addr, search;
	/* Fast path: the run may fit in search_addr's own chunk. */
	page_idx_t spi = pagealloc_chunk_page_index(p->search_addr);
	if (GM_PAGES_PER_CHUNK - spi >= npages) {
		chunk_idx_t ci = pagealloc_chunk_index(p->search_addr);
		if (pallocsum_max(*pagealloc_sum(p, PAGEALLOC_LEVELS - 1, ci)) >= npages) {
			page_idx_t sidx;
			page_idx_t j = pallocbits_find(&pagealloc_chunk_of(p, ci)->alloc,
			                               npages, spi, &sidx);
			if (j == PALLOC_NOT_FOUND)
				pagealloc_throw("bad summary data (search chunk)");
			addr = pagealloc_chunk_base(ci) + (uintptr_t)j * GM_PAGE_SIZE;
			search = pagealloc_chunk_base(ci) + (uintptr_t)sidx * GM_PAGE_SIZE;
			goto found;
		}
	}
	addr = pagealloc_find(p, npages, &search);
	if (addr == 0) {
		/* Not one free page anywhere: say so until a free or grow. */
		if (npages == 1)
			p->search_addr = PAGEALLOC_MAX_SEARCH_ADDR;
		return 0;
	}
found:;
	size_t scav = pagealloc_alloc_range(p, addr, npages);
	if (scav_pages != NULL)
		*scav_pages = scav;
	if (search > p->search_addr)
		p->search_addr = search;
	return addr;
}

uintptr_t pagealloc_alloc_aligned(pagealloc_t *p, size_t npages,
                                  size_t align_pages, size_t *scav_pages)
{
	if (align_pages <= 1)
		return pagealloc_alloc(p, npages, scav_pages);
	if (scav_pages != NULL)
		*scav_pages = 0;
	if (p->ndirty != 0)
		pagealloc_sync(p);
	if (npages == 0 || (align_pages & (align_pages - 1)) != 0 ||
	    pagealloc_chunk_index(p->search_addr) >= p->end ||
	    npages > p->free_pages || align_pages - 1 > p->free_pages - npages)
		return 0;
	/* search_addr stays: pages below it are still all allocated. */
	uintptr_t search;
	uintptr_t addr = pagealloc_find(p, npages + align_pages - 1, &search);
	if (addr == 0)
		return 0;
	uintptr_t align = (uintptr_t)align_pages * GM_PAGE_SIZE;
	addr = (addr + align - 1) & ~(align - 1);
	size_t scav = pagealloc_alloc_range(p, addr, npages);
	if (scav_pages != NULL)
		*scav_pages = scav;
	return addr;
}

bool pagealloc_is_free(const pagealloc_t *p, uintptr_t base, size_t npages)
{
	if (npages == 0 || base % GM_PAGE_SIZE != 0 ||
	    base >= PAGEALLOC_ADDR_LIMIT ||
	    npages > (PAGEALLOC_ADDR_LIMIT - base) / GM_PAGE_SIZE)
		return false;
	uintptr_t limit = base + npages * GM_PAGE_SIZE - 1;
	chunk_idx_t sc = pagealloc_chunk_index(base);
	chunk_idx_t ec = pagealloc_chunk_index(limit);
	for (chunk_idx_t c = sc; c <= ec; c++) {
		if (!pagealloc_chunk_grown(p, c))
			return false;
		page_idx_t i = c == sc ? pagealloc_chunk_page_index(base) : 0;
		page_idx_t j = c == ec ? pagealloc_chunk_page_index(limit)
		                       : GM_PAGES_PER_CHUNK - 1;
		if (pallocbits_popcnt_range(&pagealloc_chunk_of(p, c)->alloc, i,
		                            j + 1 - i) != 0)
			return false;
	}
	return true;
}

bool pagealloc_alloc_exact(pagealloc_t *p, uintptr_t base, size_t npages,
                           size_t *scav_pages)
{
	if (scav_pages != NULL)
		*scav_pages = 0;
	if (!pagealloc_is_free(p, base, npages))
		return false;
	/* search_addr stays valid: allocating never frees a page below it. */
	size_t scav = pagealloc_alloc_range(p, base, npages);
	if (scav_pages != NULL)
		*scav_pages = scav;
	return true;
}

void pagealloc_free(pagealloc_t *p, uintptr_t base, size_t npages)
{
	if (npages == 0)
		return;
	pagealloc_free_range(p, base, npages, false);
}

/*
 * The highest grown chunk at or below ci with a free page, or
 * PAGEALLOC_NO_CHUNK.  Walks the tree downward, skipping whole regions
 * whose summary says "nothing free", so a sparse address space costs a few
 * reads per level rather than one per chunk.
 */
static chunk_idx_t pagealloc_prev_free_chunk(const pagealloc_t *p,
                                             chunk_idx_t ci)
{
	int l = PAGEALLOC_LEVELS - 1;
	size_t idx = ci;
	for (;;) {
		size_t lo = l == 0 ? 0 : idx & ~(((size_t)1 << pagealloc_level_bits[l]) - 1);
		size_t j = idx + 1;
		while (j > lo && *pagealloc_sum(p, l, j - 1) == 0)
			j--;
		if (j > lo) { /* entry j-1 has a free page: its highest child */
			if (l == PAGEALLOC_LEVELS - 1)
				return j - 1;
			l++;
			idx = ((j - 1) << pagealloc_level_bits[l]) +
			      ((size_t)1 << pagealloc_level_bits[l]) - 1;
			continue;
		}
		if (l == 0)
			return PAGEALLOC_NO_CHUNK;
		/* This block has nothing: go to the parent entry just below. */
		size_t parent = lo >> pagealloc_level_bits[l];
		if (parent == 0)
			return PAGEALLOC_NO_CHUNK;
		idx = parent - 1;
		l--;
	}
}

uintptr_t pagealloc_scav_take(pagealloc_t *p, size_t max_pages,
                              uintptr_t *search, size_t *npages_out)
{
	*npages_out = 0;
	if (p->ndirty != 0)
		pagealloc_sync(p);
	if (max_pages == 0 || p->end == 0) {
		*search = 0;
		return 0;
	}
	uintptr_t addr = *search;
	uintptr_t top = pagealloc_chunk_base(p->end) - 1;
	if (addr > top)
		addr = top;
	chunk_idx_t ci = pagealloc_chunk_index(addr);
	page_idx_t pi = pagealloc_chunk_page_index(addr);

	for (;;) {
		chunk_idx_t c = pagealloc_prev_free_chunk(p, ci);
		if (c == PAGEALLOC_NO_CHUNK)
			break;
		if (c != ci)
			pi = GM_PAGES_PER_CHUNK - 1;
		unsigned n;
		page_idx_t j = pallocdata_find_scavenge_candidate(
		    pagealloc_chunk_of(p, c), pi, max_pages, &n);
		if (j != PALLOC_NOT_FOUND) {
			uintptr_t base = pagealloc_chunk_base(c) +
			                 (uintptr_t)j * GM_PAGE_SIZE;
			pagealloc_alloc_range(p, base, n); /* none scavenged */
			*search = base - 1;
			*npages_out = n;
			return base;
		}
		if (c == 0)
			break;
		ci = c - 1;
		pi = GM_PAGES_PER_CHUNK - 1;
	}
	*search = 0;
	return 0;
}

void pagealloc_scav_return(pagealloc_t *p, uintptr_t base, size_t npages)
{
	if (npages == 0)
		return;
	pagealloc_free_range(p, base, npages, true);
}

size_t pagealloc_free_pages(const pagealloc_t *p)
{
	return p->free_pages;
}

size_t pagealloc_scav_pages(const pagealloc_t *p)
{
	return p->scav_pages;
}

size_t pagealloc_released_pages(const pagealloc_t *p)
{
	return p->scav_pages +
	       atomic_load_explicit(&p->cache_scav_pages, memory_order_relaxed);
}

size_t pagealloc_total_pages(const pagealloc_t *p)
{
	return p->total_pages;
}

size_t pagealloc_metadata_bytes(const pagealloc_t *p)
{
	return p->meta_bytes;
}

/* ---- page cache (Go's mpagecache.go) ---------------------------------- */

pagecache_t pagealloc_alloc_to_cache(pagealloc_t *p)
{
	pagecache_t c = { 0, 0, 0 };
	if (p->ndirty != 0)
		pagealloc_sync(p);
	if (pagealloc_chunk_index(p->search_addr) >= p->end)
		return c;
	chunk_idx_t ci = pagealloc_chunk_index(p->search_addr);
	page_idx_t j;
	if (*pagealloc_sum(p, PAGEALLOC_LEVELS - 1, ci) != 0) {
		/* Free pages at or near search_addr. */
		j = pallocbits_find1(&pagealloc_chunk_of(p, ci)->alloc,
		                     pagealloc_chunk_page_index(p->search_addr));
		if (j == PALLOC_NOT_FOUND)
			pagealloc_throw("bad summary data (page cache)");
	} else {
		uintptr_t search;
		uintptr_t addr = pagealloc_find(p, 1, &search);
		if (addr == 0) {
			p->search_addr = PAGEALLOC_MAX_SEARCH_ADDR;
			return c;
		}
		ci = pagealloc_chunk_index(addr);
		j = pagealloc_chunk_page_index(addr);
	}
	pallocdata_t *d = pagealloc_chunk_of(p, ci);
	page_idx_t block = j & ~(page_idx_t)63;
	c.base = pagealloc_chunk_base(ci) + (uintptr_t)block * GM_PAGE_SIZE;
	c.cache = ~pallocbits_block64(&d->alloc, j);
	c.scav = pallocbits_block64(&d->scav, j) & c.cache;

	/* The cached pages are allocated here; their scav bits go along. */
	d->alloc.w[block / 64] = ~(uint64_t)0;
	d->scav.w[block / 64] &= ~c.cache;
	size_t nscav = (size_t)gm_popcount64(c.scav);
	p->free_pages -= (size_t)gm_popcount64(c.cache);
	p->scav_pages -= nscav;
	atomic_fetch_add_explicit(&p->cache_scav_pages, nscav, memory_order_relaxed);
	pagealloc_update(p, c.base, GM_PAGE_CACHE_PAGES, false, true);

	/* Every page below the block's end is now allocated; point at its
	 * last page (search_addr must stay inside grown memory). */
	p->search_addr = c.base + (GM_PAGE_CACHE_PAGES - 1) * GM_PAGE_SIZE;
	return c;
}

uintptr_t pagecache_alloc(pagecache_t *c, size_t npages, size_t *scav_pages)
{
	if (scav_pages != NULL)
		*scav_pages = 0;
	if (c->cache == 0 || npages == 0 || npages > GM_PAGE_CACHE_PAGES)
		return 0;
	unsigned i;
	uint64_t mask;
	if (npages == 1) {
		i = (unsigned)__builtin_ctzll(c->cache);
		mask = (uint64_t)1 << i;
	} else {
		i = pallocbits_find_bit_range64(c->cache, (unsigned)npages);
		if (i >= 64)
			return 0;
		mask = (npages == 64 ? ~(uint64_t)0
		                     : (((uint64_t)1 << npages) - 1)) << i;
	}
	if (scav_pages != NULL)
		*scav_pages = (size_t)gm_popcount64(c->scav & mask);
	c->cache &= ~mask;
	c->scav &= ~mask;
	return c->base + (uintptr_t)i * GM_PAGE_SIZE;
}

void pagecache_flush(pagecache_t *c, pagealloc_t *p)
{
	if (c->cache == 0) {
		c->base = c->scav = 0;
		return;
	}
	pallocdata_t *d = pagealloc_chunk_of(p, pagealloc_chunk_index(c->base));
	page_idx_t word = pagealloc_chunk_page_index(c->base) / 64;
	uint64_t scav = c->scav & c->cache;
#ifdef GM_DEBUG
	if ((d->alloc.w[word] & c->cache) != c->cache)
		pagealloc_throw("page cache flush of pages not allocated");
#endif
	d->alloc.w[word] &= ~c->cache;
	d->scav.w[word] |= scav;
	size_t nscav = (size_t)gm_popcount64(scav);
	p->free_pages += (size_t)gm_popcount64(c->cache);
	p->scav_pages += nscav;
	atomic_fetch_sub_explicit(&p->cache_scav_pages, nscav, memory_order_relaxed);
	if (c->base < p->search_addr)
		p->search_addr = c->base;
	pagealloc_update(p, c->base, GM_PAGE_CACHE_PAGES, false, false);
	c->base = 0;
	c->cache = 0;
	c->scav = 0;
}

uint64_t pagealloc_summary(pagealloc_t *p, int level, size_t idx)
{
	if (p->ndirty != 0)
		pagealloc_sync(p);
	if (level < 0 || level >= PAGEALLOC_LEVELS || p->sumblk[level] == NULL ||
	    idx >= pagealloc_level_entries(level))
		return 0;
	return *pagealloc_sum(p, level, idx);
}

const pallocdata_t *pagealloc_chunk(const pagealloc_t *p, chunk_idx_t ci)
{
	if (!pagealloc_chunk_grown(p, ci))
		return NULL;
	return pagealloc_chunk_of(p, ci);
}
