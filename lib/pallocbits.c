/*
 * pallocbits.c -- the per-chunk page bitmaps of the page allocator (Go's
 * mpallocbits.go): set/clear/count ranges, the start/max/end summary, first
 * fit inside one chunk, and the search for scavengeable runs.
 *
 * Who calls it: only pagealloc.c (and the unit tests).  Everything here is
 * pure computation on 512-bit bitmaps passed in by the caller; it owns no
 * state and takes no lock.  pagealloc.c holds the mheap lock around every
 * call on a chunk that belongs to the heap.
 *
 * Bit conventions: alloc bit 1 = page in use, 0 = free; scav bit 1 = page
 * scavenged (returned to the OS, reads as zero when touched again).
 * Invariants kept by pallocdata_*:
 *     alloc[i] == 1  =>  scav[i] == 0
 *     pallocdata_free_count      = 512 - popcount(alloc)
 *     pallocdata_free_scav_count = popcount(scav & ~alloc)
 *
 * Summaries (pallocsum_t, see pallocbits.h) are computed here for one
 * chunk; merging them up the radix tree is pagealloc.c's job.
 *
 * Search semantics (as Go): pallocbits_find starts at the *word* holding
 * search_idx, because the caller guarantees every page below search_idx is
 * allocated; it returns the lowest fitting run (address-ordered first fit)
 * and, as a by-product, the first free page it saw, which the caller uses
 * to raise its search address.
 *
 * The scavenger's search (pallocdata_find_scavenge_candidate) goes the
 * other way, from high pages to low, and never crosses the chunk: a run
 * handed to madvise is at most one chunk (4 MiB).  We assume the OS page
 * (4 KiB) divides our 8 KiB page, so any page run is madvisable; kernels
 * with 16/64 KiB pages would need Go's `minimum` alignment here.
 */
#include "pallocbits.h"

#include "compiler.h"

static inline unsigned pallocbits_ctz(uint64_t x)
{
	return x ? (unsigned)__builtin_ctzll(x) : 64;
}

static inline unsigned pallocbits_clz(uint64_t x)
{
	return x ? (unsigned)__builtin_clzll(x) : 64;
}

static inline unsigned pallocbits_popcount(uint64_t x)
{
	return (unsigned)gm_popcount64(x);
}

/* n low bits set, 0 <= n <= 64. */
static inline uint64_t pallocbits_low_mask(unsigned n)
{
	return n >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << n) - 1);
}

void pallocbits_set_range(pallocbits_t *b, page_idx_t i, unsigned n)
{
	page_idx_t j = i + n - 1; /* last bit, inclusive */
	if (i / 64 == j / 64) {
		b->w[i / 64] |= pallocbits_low_mask(n) << (i % 64);
		return;
	}
	b->w[i / 64] |= ~(uint64_t)0 << (i % 64);
	for (unsigned k = i / 64 + 1; k < j / 64; k++)
		b->w[k] = ~(uint64_t)0;
	b->w[j / 64] |= pallocbits_low_mask(j % 64 + 1);
}

void pallocbits_clear_range(pallocbits_t *b, page_idx_t i, unsigned n)
{
	page_idx_t j = i + n - 1;
	if (i / 64 == j / 64) {
		b->w[i / 64] &= ~(pallocbits_low_mask(n) << (i % 64));
		return;
	}
	b->w[i / 64] &= ~(~(uint64_t)0 << (i % 64));
	for (unsigned k = i / 64 + 1; k < j / 64; k++)
		b->w[k] = 0;
	b->w[j / 64] &= ~pallocbits_low_mask(j % 64 + 1);
}

void pallocbits_set_all(pallocbits_t *b)
{
	for (unsigned k = 0; k < PALLOC_CHUNK_WORDS; k++)
		b->w[k] = ~(uint64_t)0;
}

void pallocbits_clear_all(pallocbits_t *b)
{
	for (unsigned k = 0; k < PALLOC_CHUNK_WORDS; k++)
		b->w[k] = 0;
}

unsigned pallocbits_popcnt_range(const pallocbits_t *b, page_idx_t i,
                                 unsigned n)
{
	if (n == 0)
		return 0;
	page_idx_t j = i + n - 1;
	if (i / 64 == j / 64)
		return pallocbits_popcount((b->w[i / 64] >> (i % 64)) &
		                           pallocbits_low_mask(n));
	unsigned s = pallocbits_popcount(b->w[i / 64] >> (i % 64));
	for (unsigned k = i / 64 + 1; k < j / 64; k++)
		s += pallocbits_popcount(b->w[k]);
	s += pallocbits_popcount(b->w[j / 64] & pallocbits_low_mask(j % 64 + 1));
	return s;
}

/*
 * Two passes, as Go.  The first finds start, end and every free run that
 * touches a word boundary; the second looks inside words for interior runs,
 * and only in words whose interior zeros could beat the current max.
 */
pallocsum_t pallocbits_summarize(const pallocbits_t *b)
{
	size_t start = 0, max = 0, cur = 0;
	bool seen_alloc = false;

	for (unsigned k = 0; k < PALLOC_CHUNK_WORDS; k++) {
		uint64_t x = b->w[k];
		if (x == 0) {
			cur += 64;
			continue;
		}
		cur += pallocbits_ctz(x);
		if (!seen_alloc) {
			start = cur;
			seen_alloc = true;
		}
		if (cur > max)
			max = cur;
		cur = pallocbits_clz(x);
	}
	if (!seen_alloc)
		return PALLOCSUM_FREE_CHUNK;
	size_t end = cur;
	if (cur > max)
		max = cur;
	if (max >= 62) /* an interior run has at most 62 zeros */
		return pallocsum_pack(start, max, end);

	for (unsigned k = 0; k < PALLOC_CHUNK_WORDS; k++) {
		uint64_t x = b->w[k]; /* non-zero: some bit was set above */
		if (x == 0)
			continue;
		x >>= pallocbits_ctz(x);                 /* bit 0 now set */
		unsigned top = 63 - pallocbits_clz(x);   /* highest set bit */
		if (top < 2)
			continue;
		uint64_t z = ~x & (((uint64_t)1 << top) - 1); /* interior zeros */
		if (pallocbits_popcount(z) <= max)
			continue;
		size_t run = 0; /* longest run of 1s in z */
		while (z != 0) {
			z &= z >> 1;
			run++;
		}
		if (run > max)
			max = run;
	}
	return pallocsum_pack(start, max, end);
}

/*
 * Shrink every run of 1s by n-1 from the top, doubling the shift each
 * step; a surviving bit marks the start of a run of at least n.
 */
unsigned pallocbits_find_bit_range64(uint64_t c, unsigned n)
{
	unsigned p = n - 1; /* 1s still to remove from each run */
	unsigned k = 1;     /* every surviving run of 0s is at least k wide */
	while (p > 0) {
		if (p <= k) {
			c &= c >> p;
			break;
		}
		c &= c >> k;
		if (c == 0)
			return 64;
		p -= k;
		k *= 2;
	}
	return pallocbits_ctz(c);
}

page_idx_t pallocbits_find1(const pallocbits_t *b, page_idx_t search_idx)
{
	for (unsigned k = search_idx / 64; k < PALLOC_CHUNK_WORDS; k++) {
		uint64_t x = b->w[k];
		if (x != ~(uint64_t)0)
			return k * 64 + pallocbits_ctz(~x);
	}
	return PALLOC_NOT_FOUND;
}

/* 2 <= npages <= 64: a run crosses at most one word boundary. */
static page_idx_t pallocbits_find_small(const pallocbits_t *b, unsigned npages,
                                        page_idx_t search_idx,
                                        page_idx_t *new_search_idx)
{
	unsigned end = 0; /* free pages at the top of the previous word */
	for (unsigned k = search_idx / 64; k < PALLOC_CHUNK_WORDS; k++) {
		uint64_t x = b->w[k];
		if (x == ~(uint64_t)0) {
			end = 0;
			continue;
		}
		if (*new_search_idx == PALLOC_NOT_FOUND)
			*new_search_idx = k * 64 + pallocbits_ctz(~x);
		unsigned start = pallocbits_ctz(x);
		if (end + start >= npages)
			return k * 64 - end;
		unsigned j = pallocbits_find_bit_range64(~x, npages);
		if (j < 64)
			return k * 64 + j;
		end = pallocbits_clz(x);
	}
	return PALLOC_NOT_FOUND;
}

/* 64 < npages <= 512: a run must contain the top bits of its first word. */
static page_idx_t pallocbits_find_large(const pallocbits_t *b, unsigned npages,
                                        page_idx_t search_idx,
                                        page_idx_t *new_search_idx)
{
	page_idx_t start = PALLOC_NOT_FOUND;
	unsigned size = 0;
	for (unsigned k = search_idx / 64; k < PALLOC_CHUNK_WORDS; k++) {
		uint64_t x = b->w[k];
		if (x == ~(uint64_t)0) {
			size = 0;
			continue;
		}
		if (*new_search_idx == PALLOC_NOT_FOUND)
			*new_search_idx = k * 64 + pallocbits_ctz(~x);
		if (size == 0) {
			size = pallocbits_clz(x);
			start = k * 64 + 64 - size;
			continue;
		}
		unsigned s = pallocbits_ctz(x);
		if (s + size >= npages)
			return start;
		if (s < 64) {
			size = pallocbits_clz(x);
			start = k * 64 + 64 - size;
			continue;
		}
		size += 64;
	}
	return size >= npages ? start : PALLOC_NOT_FOUND;
}

page_idx_t pallocbits_find(const pallocbits_t *b, size_t npages,
                           page_idx_t search_idx, page_idx_t *new_search_idx)
{
	*new_search_idx = PALLOC_NOT_FOUND;
	if (npages == 0 || npages > GM_PAGES_PER_CHUNK ||
	    search_idx >= GM_PAGES_PER_CHUNK)
		return PALLOC_NOT_FOUND;
	if (npages == 1) {
		page_idx_t i = pallocbits_find1(b, search_idx);
		*new_search_idx = i;
		return i;
	}
	if (npages <= 64)
		return pallocbits_find_small(b, (unsigned)npages, search_idx,
		                             new_search_idx);
	return pallocbits_find_large(b, (unsigned)npages, search_idx,
	                             new_search_idx);
}

unsigned pallocdata_alloc_range(pallocdata_t *d, page_idx_t i, unsigned n)
{
	unsigned scav = pallocbits_popcnt_range(&d->scav, i, n);
	pallocbits_set_range(&d->alloc, i, n);
	pallocbits_clear_range(&d->scav, i, n);
	return scav;
}

unsigned pallocdata_alloc_all(pallocdata_t *d)
{
	unsigned scav = 0;
	for (unsigned k = 0; k < PALLOC_CHUNK_WORDS; k++)
		scav += pallocbits_popcount(d->scav.w[k]);
	pallocbits_set_all(&d->alloc);
	pallocbits_clear_all(&d->scav);
	return scav;
}

void pallocdata_free_range(pallocdata_t *d, page_idx_t i, unsigned n)
{
	pallocbits_clear_range(&d->alloc, i, n);
}

unsigned pallocdata_free_count(const pallocdata_t *d)
{
	unsigned used = 0;
	for (unsigned k = 0; k < PALLOC_CHUNK_WORDS; k++)
		used += pallocbits_popcount(d->alloc.w[k]);
	return (unsigned)GM_PAGES_PER_CHUNK - used;
}

unsigned pallocdata_free_scav_count(const pallocdata_t *d)
{
	unsigned n = 0;
	for (unsigned k = 0; k < PALLOC_CHUNK_WORDS; k++)
		n += pallocbits_popcount(d->scav.w[k] & ~d->alloc.w[k]);
	return n;
}

page_idx_t pallocdata_find_scavenge_candidate(const pallocdata_t *d,
                                              page_idx_t search_idx,
                                              size_t max_pages,
                                              unsigned *npages)
{
	if (max_pages == 0)
		return PALLOC_NOT_FOUND;
	if (search_idx >= GM_PAGES_PER_CHUNK)
		search_idx = GM_PAGES_PER_CHUNK - 1;
	/* Candidates are free and unscavenged: 1 in ~(alloc | scav). */
	uint64_t mask = pallocbits_low_mask(search_idx % 64 + 1);
	for (int k = (int)(search_idx / 64); k >= 0; k--, mask = ~(uint64_t)0) {
		uint64_t cand = ~(d->alloc.w[k] | d->scav.w[k]) & mask;
		if (cand == 0)
			continue;
		unsigned top = 63 - pallocbits_clz(cand);
		page_idx_t last = (page_idx_t)k * 64 + top; /* inclusive */
		/* Length of the run of 1s ending at bit `top`, going down. */
		size_t len = pallocbits_clz(~(cand << (63 - top)));
		if (len == top + 1) { /* reaches bit 0: continue below */
			for (int m = k - 1; m >= 0 && len < max_pages; m--) {
				uint64_t c = ~(d->alloc.w[m] | d->scav.w[m]);
				unsigned ones = pallocbits_clz(~c);
				len += ones;
				if (ones < 64)
					break;
			}
		}
		if (len > max_pages)
			len = max_pages;
		*npages = (unsigned)len;
		return last + 1 - (page_idx_t)len;
	}
	return PALLOC_NOT_FOUND;
}
