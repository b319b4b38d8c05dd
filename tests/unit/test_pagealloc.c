/*
 * test_pagealloc.c -- the page allocator alone, over fake address ranges.
 *
 * pagealloc never touches heap memory, so, like Go's NewPageAlloc test
 * fixtures, the heap here is a table of chunk indices at 0xc000000000 and
 * beyond with no memory behind them.  A fixture grows those chunks and
 * then reaches the wanted alloc/scavenged bits through the public API
 * (fresh chunks are all scavenged; alloc_exact + free makes pages
 * unscavenged), so building one already exercises grow, alloc_exact and
 * free.  Expected summaries are recomputed bit by bit from the chunk
 * bitmaps (ref_sum), independently of pagealloc's merge code.
 *
 * The last test runs a few thousand random operations against a shadow
 * bitmap and checks every returned address (address-ordered first fit),
 * every scavenged count, the page-count equations, the bitmaps and the
 * summaries at every level.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"
#include "pagealloc.h"
#include "pallocbits.h"

#define PG   ((uintptr_t)GM_PAGE_SIZE)
#define NPC  ((unsigned)GM_PAGES_PER_CHUNK)
#define BASE ((uintptr_t)0xc000000000ull)
#define CI0  ((chunk_idx_t)(BASE >> GM_CHUNK_SHIFT))
#define CHUNKS_PER_L0 ((chunk_idx_t)1 << 12) /* 16 GiB root entry */

/* Check's ck_assert_* report every *passing* assertion to the parent
 * process (one write(2) each), far too slow for the inner loops here;
 * these only call into Check when they fail. */
#define EXPECT(cond) \
	do { if (!(cond)) ck_abort_msg("expected %s", #cond); } while (0)
#define EXPECT_MSG(cond, ...) \
	do { if (!(cond)) ck_abort_msg(__VA_ARGS__); } while (0)
#define EXPECT_EQ(a, b)                                                     \
	do {                                                                \
		uintmax_t a_ = (uintmax_t)(a), b_ = (uintmax_t)(b);         \
		if (a_ != b_)                                               \
			ck_abort_msg("expected %s == %s: %#jx != %#jx", #a, \
			             #b, a_, b_);                           \
	} while (0)

static uintptr_t caddr(chunk_idx_t ci, unsigned page)
{
	return ((uintptr_t)ci << GM_CHUNK_SHIFT) + (uintptr_t)page * PG;
}

/* ---- deterministic random numbers (xorshift64*) ----------------------- */

static uint64_t rng_state;

static void rng_seed(uint64_t s)
{
	rng_state = s ? s : 1;
}

static uint64_t rng_next(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static unsigned rng_below(unsigned n)
{
	return (unsigned)(rng_next() % n);
}

/* Random bitmap: each word all-zero, all-one or of a random density. */
static void rng_bits(pallocbits_t *b)
{
	for (unsigned k = 0; k < PALLOC_CHUNK_WORDS; k++) {
		switch (rng_below(5)) {
		case 0: b->w[k] = 0; break;
		case 1: b->w[k] = ~(uint64_t)0; break;
		case 2: b->w[k] = rng_next() & rng_next() & rng_next(); break;
		case 3: b->w[k] = rng_next() | rng_next() | rng_next(); break;
		default: b->w[k] = rng_next(); break;
		}
	}
}

/* ---- brute-force references ------------------------------------------- */

static unsigned bit(const pallocbits_t *b, unsigned i)
{
	return (unsigned)((b->w[i / 64] >> (i % 64)) & 1);
}

static void ref_bits_sum(const pallocbits_t *b, size_t *start, size_t *max,
                         size_t *end)
{
	size_t cur = 0, s = 0, m = 0;
	int seen = 0;
	for (unsigned i = 0; i < NPC; i++) {
		if (bit(b, i)) {
			if (!seen) {
				s = cur;
				seen = 1;
			}
			if (cur > m)
				m = cur;
			cur = 0;
		} else {
			cur++;
		}
	}
	if (!seen)
		s = cur;
	if (cur > m)
		m = cur;
	*start = s;
	*max = m;
	*end = cur;
}

static page_idx_t ref_find(const pallocbits_t *b, size_t npages,
                           page_idx_t search, page_idx_t *first_free)
{
	*first_free = PALLOC_NOT_FOUND;
	for (unsigned i = search & ~63u; i < NPC; i++) {
		if (!bit(b, i)) {
			*first_free = i;
			break;
		}
	}
	size_t run = 0;
	for (unsigned i = search & ~63u; i < NPC; i++) {
		run = bit(b, i) ? 0 : run + 1;
		if (run == npages)
			return i + 1 - (unsigned)npages;
	}
	return PALLOC_NOT_FOUND;
}

/* Summary of level `level` entry `idx`, from the chunk bitmaps one bit at
 * a time; chunks never grown count as allocated. */
static uint64_t ref_sum(pagealloc_t *p, int level, size_t idx)
{
	unsigned cbits = 3u * (unsigned)(PAGEALLOC_LEVELS - 1 - level);
	chunk_idx_t c0 = (chunk_idx_t)idx << cbits;
	chunk_idx_t nch = (chunk_idx_t)1 << cbits;
	size_t start = 0, max = 0, cur = 0;
	int seen = 0;
	for (chunk_idx_t c = c0; c < c0 + nch; c++) {
		const pallocdata_t *d = pagealloc_chunk(p, c);
		for (unsigned i = 0; i < NPC; i++) {
			if (d == NULL || bit(&d->alloc, i)) {
				if (!seen) {
					start = cur;
					seen = 1;
				}
				if (cur > max)
					max = cur;
				cur = 0;
				if (d == NULL)
					break; /* the rest of the chunk too */
			} else {
				cur++;
			}
		}
	}
	if (!seen)
		start = cur;
	if (cur > max)
		max = cur;
	return pallocsum_pack(start, max, cur);
}

static void check_summaries(pagealloc_t *p, const chunk_idx_t *cs,
                            size_t n)
{
	for (size_t k = 0; k < n; k++) {
		for (int l = 0; l < PAGEALLOC_LEVELS; l++) {
			size_t idx = cs[k] >> (3 * (PAGEALLOC_LEVELS - 1 - l));
			uint64_t got = pagealloc_summary(p, l, idx);
			uint64_t want = ref_sum(p, l, idx);
			EXPECT_MSG(got == want,
			           "summary[%d][%zu] = (%zu,%zu,%zu), want (%zu,%zu,%zu)",
			           l, idx, pallocsum_start(got), pallocsum_max(got),
			           pallocsum_end(got), pallocsum_start(want),
			           pallocsum_max(want), pallocsum_end(want));
		}
	}
}

/* free_pages and scav_pages against the bitmaps of the listed chunks
 * (which must be every grown chunk). */
static void check_counts(pagealloc_t *p, const chunk_idx_t *cs, size_t n)
{
	size_t total = 0, free = 0, scav = 0;
	for (size_t k = 0; k < n; k++) {
		const pallocdata_t *d = pagealloc_chunk(p, cs[k]);
		EXPECT(d != NULL);
		total += NPC;
		for (unsigned i = 0; i < NPC; i++) {
			if (!bit(&d->alloc, i)) {
				free++;
				scav += bit(&d->scav, i);
			} else {
				EXPECT_MSG(!bit(&d->scav, i),
				           "allocated page %u of chunk %zu is scavenged",
				           i, (size_t)cs[k]);
			}
		}
	}
	EXPECT_EQ(pagealloc_total_pages(p), total);
	EXPECT_EQ(pagealloc_free_pages(p), free);
	EXPECT_EQ(pagealloc_scav_pages(p), scav);
}

/* ---- fixtures (Go's NewPageAlloc) -------------------------------------- */

typedef struct {
	unsigned i, n;
} brange_t;

#define FX_RANGES 6
typedef struct {
	chunk_idx_t ci;
	brange_t alloc[FX_RANGES]; /* allocated pages; n == 0 ends the list */
	brange_t scav[FX_RANGES];  /* free pages that are scavenged */
} fx_chunk_t;

static pagealloc_t *pa_new(void)
{
	pagealloc_t *p = calloc(1, sizeof *p);
	EXPECT(p != NULL);
	EXPECT(pagealloc_init(p));
	return p;
}

static void pa_delete(pagealloc_t *p)
{
	pagealloc_destroy(p);
	free(p);
}

/* alloc_exact each maximal run of want[] pages (then free it again if
 * make_unscavenged: freed pages are unscavenged). */
static void fx_runs(pagealloc_t *p, chunk_idx_t ci, const unsigned char *want,
                    int make_unscavenged)
{
	for (unsigned i = 0; i < NPC;) {
		if (!want[i]) {
			i++;
			continue;
		}
		unsigned j = i;
		while (j < NPC && want[j])
			j++;
		EXPECT(pagealloc_alloc_exact(p, caddr(ci, i), j - i, NULL));
		if (make_unscavenged)
			pagealloc_free(p, caddr(ci, i), j - i);
		i = j;
	}
}

/* Chunks must be in increasing order; consecutive ones are grown in one
 * call. */
static pagealloc_t *fx_new(const fx_chunk_t *t, size_t n)
{
	pagealloc_t *p = pa_new();
	for (size_t k = 0; k < n;) {
		size_t m = k + 1;
		while (m < n && t[m].ci == t[m - 1].ci + 1)
			m++;
		EXPECT(pagealloc_grow(p, caddr(t[k].ci, 0), (m - k) * GM_CHUNK_SIZE));
		k = m;
	}
	for (size_t k = 0; k < n; k++) {
		unsigned char alloc[GM_PAGES_PER_CHUNK] = { 0 };
		unsigned char scav[GM_PAGES_PER_CHUNK] = { 0 };
		unsigned char unscav[GM_PAGES_PER_CHUNK];
		for (int r = 0; r < FX_RANGES && t[k].alloc[r].n; r++)
			memset(alloc + t[k].alloc[r].i, 1, t[k].alloc[r].n);
		for (int r = 0; r < FX_RANGES && t[k].scav[r].n; r++)
			memset(scav + t[k].scav[r].i, 1, t[k].scav[r].n);
		for (unsigned i = 0; i < NPC; i++)
			unscav[i] = !alloc[i] && !scav[i];
		fx_runs(p, t[k].ci, unscav, 1);
		fx_runs(p, t[k].ci, alloc, 0);
		const pallocdata_t *d = pagealloc_chunk(p, t[k].ci);
		for (unsigned i = 0; i < NPC; i++) {
			EXPECT_EQ(bit(&d->alloc, i), alloc[i]);
			EXPECT_EQ(bit(&d->scav, i), !alloc[i] && scav[i]);
		}
	}
	return p;
}

static void fx_check(pagealloc_t *p, const fx_chunk_t *t, size_t n)
{
	chunk_idx_t cs[16];
	EXPECT(n <= 16);
	for (size_t k = 0; k < n; k++)
		cs[k] = t[k].ci;
	check_summaries(p, cs, n);
	check_counts(p, cs, n);
}

#define FX_N(t) (sizeof(t) / sizeof((t)[0]))

/* ---- pallocSum and pallocbits ------------------------------------------ */

/* gm_popcount64: the popcnt path (when the CPU has it) and the arithmetic
 * agree with a bit-by-bit count. */
static unsigned slow_count(uint64_t x)
{
	unsigned n = 0;
	for (; x; x >>= 1)
		n += (unsigned)(x & 1);
	return n;
}

START_TEST(test_popcount)
{
	uint64_t x = 0x9E3779B97F4A7C15ull;
	for (int pass = 0; pass < 2; pass++) {
#if !defined(__POPCNT__) && defined(__x86_64__)
		gm_cpu_popcnt = false;
		if (pass == 1)
			gm_cpu_init(); /* the instruction, if the CPU has it */
#endif
		ck_assert_uint_eq(gm_popcount64(0), 0);
		ck_assert_uint_eq(gm_popcount64(~0ull), 64);
		ck_assert_uint_eq(gm_popcount64(1ull << 63), 1);
		for (int i = 0; i < 1000; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			uint64_t v = x & (x >> (i & 31));
			ck_assert_uint_eq(gm_popcount64(v), slow_count(v));
		}
	}
}
END_TEST

START_TEST(test_sum_pack)
{
	EXPECT_EQ(pallocsum_pack(0, 0, 0), 0);
	size_t vals[] = { 0, 1, 7, 512, 4096, PALLOCSUM_MAX_PACKED - 1 };
	for (size_t a = 0; a < 6; a++)
		for (size_t b = 0; b < 6; b++)
			for (size_t c = 0; c < 6; c++) {
				pallocsum_t s = pallocsum_pack(vals[a], vals[b], vals[c]);
				size_t s0, m0, e0;
				pallocsum_unpack(s, &s0, &m0, &e0);
				EXPECT_EQ(s0, vals[a]);
				EXPECT_EQ(m0, vals[b]);
				EXPECT_EQ(e0, vals[c]);
			}
	/* 2^21 does not fit in 21 bits: only "all free" uses it. */
	pallocsum_t all = pallocsum_pack(PALLOCSUM_MAX_PACKED, PALLOCSUM_MAX_PACKED,
	                                 PALLOCSUM_MAX_PACKED);
	EXPECT_EQ(all, (uint64_t)1 << 63);
	EXPECT_EQ(pallocsum_start(all), PALLOCSUM_MAX_PACKED);
	EXPECT_EQ(pallocsum_max(all), PALLOCSUM_MAX_PACKED);
	EXPECT_EQ(pallocsum_end(all), PALLOCSUM_MAX_PACKED);
	EXPECT_EQ(PALLOCSUM_FREE_CHUNK, pallocsum_pack(512, 512, 512));
}
END_TEST

START_TEST(test_bits_ranges)
{
	rng_seed(11);
	for (int iter = 0; iter < 20000; iter++) {
		pallocbits_t b, ref;
		rng_bits(&b);
		ref = b;
		unsigned i = rng_below(NPC);
		unsigned n = 1 + rng_below(NPC - i);
		unsigned want = 0;
		for (unsigned k = i; k < i + n; k++)
			want += bit(&b, k);
		EXPECT_EQ(pallocbits_popcnt_range(&b, i, n), want);
		int set = (int)rng_below(2);
		if (set)
			pallocbits_set_range(&b, i, n);
		else
			pallocbits_clear_range(&b, i, n);
		for (unsigned k = 0; k < NPC; k++) {
			unsigned w = (k >= i && k < i + n) ? (unsigned)set : bit(&ref, k);
			EXPECT_MSG(bit(&b, k) == w, "range [%u,+%u) set=%d bit %u",
			              i, n, set, k);
		}
	}
	pallocbits_t b;
	pallocbits_clear_all(&b);
	EXPECT_EQ(pallocbits_popcnt_range(&b, 0, NPC), 0);
	pallocbits_set_all(&b);
	EXPECT_EQ(pallocbits_popcnt_range(&b, 0, NPC), NPC);
	EXPECT_EQ(pallocbits_popcnt_range(&b, 5, 0), 0);
}
END_TEST

START_TEST(test_bits_summarize)
{
	pallocbits_t b;
	/* Table cases, as Go's TestPallocBitsSummarize. */
	pallocbits_clear_all(&b);
	EXPECT_EQ(pallocbits_summarize(&b), pallocsum_pack(512, 512, 512));
	pallocbits_set_all(&b);
	EXPECT_EQ(pallocbits_summarize(&b), 0);
	pallocbits_clear_all(&b);
	pallocbits_set_range(&b, 0, 10);
	EXPECT_EQ(pallocbits_summarize(&b), pallocsum_pack(0, 502, 502));
	pallocbits_clear_all(&b);
	pallocbits_set_range(&b, 500, 12);
	EXPECT_EQ(pallocbits_summarize(&b), pallocsum_pack(500, 500, 0));
	pallocbits_clear_all(&b);
	pallocbits_set_range(&b, 10, 100);
	pallocbits_set_range(&b, 200, 300);
	EXPECT_EQ(pallocbits_summarize(&b), pallocsum_pack(10, 90, 12));
	/* Interior runs only: 1 0^k 1 patterns inside words. */
	pallocbits_set_all(&b);
	b.w[3] = ~((uint64_t)0x3fff << 20); /* 14 free inside word 3 */
	b.w[6] = ~((uint64_t)0x1f << 2);    /* 5 free inside word 6 */
	EXPECT_EQ(pallocbits_summarize(&b), pallocsum_pack(0, 14, 0));
	pallocbits_set_all(&b);
	b.w[0] = ~((uint64_t)1 << 1 | (uint64_t)1 << 3);
	EXPECT_EQ(pallocbits_summarize(&b), pallocsum_pack(0, 1, 0));
	/* Run across a word boundary beats interior runs. */
	pallocbits_set_all(&b);
	b.w[1] = ~((uint64_t)0xff << 56 | (uint64_t)0xfff << 8);
	b.w[2] = ~(uint64_t)0x1f;
	EXPECT_EQ(pallocbits_summarize(&b), pallocsum_pack(0, 13, 0));

	rng_seed(22);
	for (int iter = 0; iter < 50000; iter++) {
		rng_bits(&b);
		size_t s, m, e;
		ref_bits_sum(&b, &s, &m, &e);
		pallocsum_t got = pallocbits_summarize(&b);
		EXPECT_MSG(got == pallocsum_pack(s, m, e),
		           "iter %d: got (%zu,%zu,%zu) want (%zu,%zu,%zu)", iter,
		           pallocsum_start(got), pallocsum_max(got),
		           pallocsum_end(got), s, m, e);
	}
}
END_TEST

START_TEST(test_bits_find)
{
	/* findBitRange64 against brute force. */
	rng_seed(33);
	for (int iter = 0; iter < 20000; iter++) {
		uint64_t c = rng_next();
		if (iter % 3 == 0)
			c |= rng_next();
		if (iter % 5 == 0)
			c |= rng_next() | (rng_next() >> rng_below(64));
		if (iter == 1)
			c = ~(uint64_t)0;
		unsigned n = 1 + rng_below(64);
		unsigned want = 64, run = 0;
		for (unsigned k = 0; k < 64; k++) {
			run = ((c >> k) & 1) ? run + 1 : 0;
			if (run == n) {
				want = k + 1 - n;
				break;
			}
		}
		unsigned got = pallocbits_find_bit_range64(c, n);
		if (want == 64)
			EXPECT(got >= 64);
		else
			EXPECT_EQ(got, want);
	}
	EXPECT_EQ(pallocbits_find_bit_range64(~(uint64_t)0, 64), 0);
	EXPECT(pallocbits_find_bit_range64(0, 1) >= 64);

	/* find and find1 against brute force, search hints included. */
	pallocbits_t b;
	rng_seed(44);
	for (int iter = 0; iter < 30000; iter++) {
		rng_bits(&b);
		size_t npages;
		switch (rng_below(4)) {
		case 0: npages = 1; break;
		case 1: npages = 1 + rng_below(64); break;
		case 2: npages = 65 + rng_below(NPC - 64); break;
		default: npages = 1 + rng_below(8); break;
		}
		page_idx_t search = rng_below(4) ? 0 : rng_below(NPC);
		page_idx_t ff, nsi;
		page_idx_t want = ref_find(&b, npages, search, &ff);
		page_idx_t got = pallocbits_find(&b, npages, search, &nsi);
		EXPECT_MSG(got == want, "iter %d npages %zu search %u: got %u want %u",
		           iter, npages, search, got, want);
		if (want != PALLOC_NOT_FOUND)
			EXPECT_EQ(nsi, ff);
		if (npages == 1)
			EXPECT_EQ(pallocbits_find1(&b, search), ff);
	}
	pallocbits_clear_all(&b);
	page_idx_t nsi;
	EXPECT_EQ(pallocbits_find(&b, 512, 0, &nsi), 0);
	EXPECT_EQ(pallocbits_find(&b, 513, 0, &nsi), PALLOC_NOT_FOUND);
	pallocbits_set_range(&b, 0, 200);
	EXPECT_EQ(pallocbits_find(&b, 312, 192, &nsi), 200);
	EXPECT_EQ(nsi, 200);
	EXPECT_EQ(pallocbits_find(&b, 313, 0, &nsi), PALLOC_NOT_FOUND);
	pallocbits_set_all(&b);
	EXPECT_EQ(pallocbits_find1(&b, 0), PALLOC_NOT_FOUND);
}
END_TEST

START_TEST(test_data_alloc_free)
{
	pallocdata_t d;
	pallocbits_clear_all(&d.alloc);
	pallocbits_set_all(&d.scav); /* fresh: free, scavenged */
	EXPECT_EQ(pallocdata_free_count(&d), 512);
	EXPECT_EQ(pallocdata_free_scav_count(&d), 512);

	EXPECT_EQ(pallocdata_alloc_range(&d, 10, 20), 20);
	EXPECT_EQ(pallocbits_popcnt_range(&d.scav, 10, 20), 0);
	EXPECT_EQ(pallocdata_free_count(&d), 492);
	EXPECT_EQ(pallocdata_free_scav_count(&d), 492);
	pallocdata_free_range(&d, 15, 10); /* pages 15..24 free, unscavenged */
	EXPECT_EQ(pallocdata_free_count(&d), 502);
	EXPECT_EQ(pallocdata_free_scav_count(&d), 492);
	/* 5..29: 5 scavenged (5..9), 10 unscavenged (15..24) free, 10 used. */
	EXPECT_EQ(pallocbits_popcnt_range(&d.alloc, 5, 25), 10);
	pallocdata_free_range(&d, 10, 5);
	pallocdata_free_range(&d, 25, 5);
	EXPECT_EQ(pallocdata_alloc_range(&d, 5, 25), 5);
	EXPECT_EQ(pallocdata_free_count(&d), 487);
	EXPECT_EQ(pallocdata_alloc_all(&d), 487);
	EXPECT_EQ(pallocdata_free_count(&d), 0);
	EXPECT_EQ(pallocdata_free_scav_count(&d), 0);
}
END_TEST

START_TEST(test_data_scav_candidate)
{
	pallocdata_t d;
	unsigned n = 0;
	memset(&d, 0, sizeof d); /* all free, none scavenged */
	EXPECT_EQ(pallocdata_find_scavenge_candidate(&d, 511, 1000, &n), 0);
	EXPECT_EQ(n, 512);
	EXPECT_EQ(pallocdata_find_scavenge_candidate(&d, 511, 10, &n), 502);
	EXPECT_EQ(n, 10);
	EXPECT_EQ(pallocdata_find_scavenge_candidate(&d, 100, 1000, &n), 0);
	EXPECT_EQ(n, 101);
	EXPECT_EQ(pallocdata_find_scavenge_candidate(&d, 0, 1000, &n), 0);
	EXPECT_EQ(n, 1);
	/* Scavenged and allocated pages both stop a run. */
	pallocbits_set_range(&d.alloc, 300, 212);
	pallocbits_set_range(&d.scav, 100, 150);
	EXPECT_EQ(pallocdata_find_scavenge_candidate(&d, 511, 1000, &n), 250);
	EXPECT_EQ(n, 50);
	EXPECT_EQ(pallocdata_find_scavenge_candidate(&d, 249, 1000, &n), 0);
	EXPECT_EQ(n, 100);
	EXPECT_EQ(pallocdata_find_scavenge_candidate(&d, 63, 3, &n), 61);
	EXPECT_EQ(n, 3);
	EXPECT_EQ(pallocdata_find_scavenge_candidate(&d, 5, 0, &n),
	          PALLOC_NOT_FOUND);
	pallocbits_set_range(&d.scav, 0, 100);
	pallocbits_clear_range(&d.scav, 64, 1); /* one page at a word start */
	EXPECT_EQ(pallocdata_find_scavenge_candidate(&d, 249, 1000, &n), 64);
	EXPECT_EQ(n, 1);
	pallocbits_set_range(&d.scav, 64, 1);
	EXPECT_EQ(pallocdata_find_scavenge_candidate(&d, 249, 1000, &n),
	          PALLOC_NOT_FOUND);

	/* Random bitmaps against brute force. */
	rng_seed(55);
	for (int iter = 0; iter < 20000; iter++) {
		rng_bits(&d.alloc);
		rng_bits(&d.scav);
		for (unsigned k = 0; k < PALLOC_CHUNK_WORDS; k++)
			d.scav.w[k] &= ~d.alloc.w[k];
		page_idx_t search = rng_below(3) ? NPC - 1 : rng_below(NPC);
		size_t max = 1 + rng_below(rng_below(2) ? 600 : 70);
		page_idx_t want = PALLOC_NOT_FOUND;
		unsigned wantn = 0;
		for (int i = (int)search; i >= 0; i--) {
			if (!bit(&d.alloc, (unsigned)i) && !bit(&d.scav, (unsigned)i)) {
				unsigned len = 1;
				while (len < max && i - (int)len >= 0 &&
				       !bit(&d.alloc, (unsigned)i - len) &&
				       !bit(&d.scav, (unsigned)i - len))
					len++;
				want = (unsigned)i + 1 - len;
				wantn = len;
				break;
			}
		}
		page_idx_t got = pallocdata_find_scavenge_candidate(&d, search, max, &n);
		EXPECT_MSG(got == want, "iter %d: got %u want %u", iter, got, want);
		if (want != PALLOC_NOT_FOUND)
			EXPECT_EQ(n, wantn);
	}
}
END_TEST

/* ---- the page allocator ------------------------------------------------ */

START_TEST(test_grow_summaries)
{
	pagealloc_t *p = pa_new();
	EXPECT_EQ(pagealloc_alloc(p, 1, NULL), 0); /* nothing grown */

	EXPECT(pagealloc_grow(p, BASE, 2 * GM_CHUNK_SIZE));
	EXPECT_EQ(pagealloc_summary(p, 4, CI0), PALLOCSUM_FREE_CHUNK);
	EXPECT_EQ(pagealloc_summary(p, 4, CI0 + 1), PALLOCSUM_FREE_CHUNK);
	EXPECT_EQ(pagealloc_summary(p, 4, CI0 + 2), 0);
	/* BASE is 16 GiB aligned: both chunks open every enclosing region. */
	for (int l = 0; l < 4; l++)
		EXPECT_EQ(pagealloc_summary(p, l, BASE >> (34 - 3 * l)),
		          pallocsum_pack(1024, 1024, 0));

	/* Non-contiguous: chunks 7 and 8 (across a level-3 boundary). */
	EXPECT(pagealloc_grow(p, caddr(CI0 + 7, 0), 2 * GM_CHUNK_SIZE));
	EXPECT_EQ(pagealloc_summary(p, 3, CI0 >> 3),
	          pallocsum_pack(1024, 1024, 512));
	EXPECT_EQ(pagealloc_summary(p, 3, (CI0 >> 3) + 1),
	          pallocsum_pack(512, 512, 0));
	EXPECT_EQ(pagealloc_summary(p, 2, CI0 >> 6),
	          pallocsum_pack(1024, 1024, 0));
	/* Another root entry, and the very top of the address space. */
	EXPECT(pagealloc_grow(p, caddr(CI0 + 5 * CHUNKS_PER_L0, 0),
	                      GM_CHUNK_SIZE));
	uintptr_t top = ((uintptr_t)1 << GM_ADDR_BITS) - GM_CHUNK_SIZE;
	EXPECT(pagealloc_grow(p, top, GM_CHUNK_SIZE));
	EXPECT_EQ(pagealloc_summary(p, 0, (size_t)(top >> 34)),
	          pallocsum_pack(0, 512, 512));
	EXPECT_EQ(pagealloc_summary(p, 4, top >> GM_CHUNK_SHIFT),
	          PALLOCSUM_FREE_CHUNK);

	chunk_idx_t cs[] = { CI0, CI0 + 1, CI0 + 7, CI0 + 8,
	                     CI0 + 5 * CHUNKS_PER_L0, top >> GM_CHUNK_SHIFT };
	check_summaries(p, cs, 6);
	check_counts(p, cs, 6);
	EXPECT_EQ(pagealloc_total_pages(p), 6 * 512);
	EXPECT_EQ(pagealloc_scav_pages(p), 6 * 512);

	/* Grown chunks are not grown again; bad ranges change nothing. */
	EXPECT(!pagealloc_grow(p, caddr(CI0 + 1, 0), 2 * GM_CHUNK_SIZE));
	EXPECT(!pagealloc_grow(p, BASE + PG, GM_CHUNK_SIZE));
	EXPECT(!pagealloc_grow(p, caddr(CI0 + 20, 0), GM_CHUNK_SIZE + PG));
	EXPECT(!pagealloc_grow(p, caddr(CI0 + 20, 0), 0));
	EXPECT(!pagealloc_grow(p, 0, GM_CHUNK_SIZE));
	EXPECT(!pagealloc_grow(p, top, 2 * GM_CHUNK_SIZE));
	EXPECT(!pagealloc_grow(p, top + GM_CHUNK_SIZE, GM_CHUNK_SIZE));
	EXPECT(pagealloc_chunk(p, CI0 + 2) == NULL);
	EXPECT_EQ(pagealloc_total_pages(p), 6 * 512);
	check_summaries(p, cs, 6);

	/* First fit in address order over the non-contiguous pieces. */
	EXPECT_EQ(pagealloc_alloc(p, 1024, NULL), BASE);
	EXPECT_EQ(pagealloc_alloc(p, 1000, NULL), caddr(CI0 + 7, 0));
	EXPECT_EQ(pagealloc_alloc(p, 100, NULL),
	          caddr(CI0 + 5 * CHUNKS_PER_L0, 0));
	EXPECT_EQ(pagealloc_alloc(p, 412, NULL),
	          caddr(CI0 + 5 * CHUNKS_PER_L0, 100));
	EXPECT_EQ(pagealloc_alloc(p, 512, NULL), top);
	EXPECT_EQ(pagealloc_alloc(p, 1, NULL), caddr(CI0 + 8, 488));
	EXPECT_EQ(pagealloc_alloc(p, 24, NULL), 0);
	check_summaries(p, cs, 6);
	check_counts(p, cs, 6);
	EXPECT_EQ(pagealloc_free_pages(p), 23);
	pa_delete(p);
}
END_TEST

/* One allocation step of a table test: npages -> address (0 = fails). */
typedef struct {
	size_t npages;
	uintptr_t want;
	size_t scav;
} alloc_step_t;

static void run_steps(pagealloc_t *p, const alloc_step_t *s, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		size_t scav = 99999;
		uintptr_t got = pagealloc_alloc(p, s[k].npages, &scav);
		EXPECT_MSG(got == s[k].want,
		           "step %zu: alloc(%zu) = %#lx, want %#lx", k,
		           s[k].npages, (unsigned long)got,
		           (unsigned long)s[k].want);
		if (got != 0)
			EXPECT_MSG(scav == s[k].scav, "step %zu: scav %zu want %zu",
			           k, scav, s[k].scav);
	}
}

START_TEST(test_alloc_one_chunk)
{
	static const fx_chunk_t t[] = {
		{ CI0, { { 0 } }, { { 0, 512 } } },
	};
	pagealloc_t *p = fx_new(t, FX_N(t));
	const alloc_step_t s[] = {
		{ 1, caddr(CI0, 0), 1 },
		{ 1, caddr(CI0, 1), 1 },
		{ 2, caddr(CI0, 2), 2 },
		{ 5, caddr(CI0, 4), 5 },
		{ 503, caddr(CI0, 9), 503 },
		{ 1, 0, 0 },
	};
	run_steps(p, s, FX_N(s));
	fx_check(p, t, FX_N(t));
	EXPECT_EQ(pagealloc_free_pages(p), 0);
	pa_delete(p);

	/* Mixed scavenged state. */
	static const fx_chunk_t t2[] = {
		{ CI0, { { 0, 3 }, { 40, 24 } }, { { 5, 5 }, { 64, 100 } } },
	};
	p = fx_new(t2, FX_N(t2));
	fx_check(p, t2, FX_N(t2));
	const alloc_step_t s2[] = {
		{ 1, caddr(CI0, 3), 0 },
		{ 1, caddr(CI0, 4), 0 },
		{ 1, caddr(CI0, 5), 1 },
		{ 8, caddr(CI0, 6), 4 },    /* 6..9 scavenged, 10..13 not */
		{ 30, caddr(CI0, 64), 30 }, /* 14..39 is only 26 long */
		{ 26, caddr(CI0, 14), 0 },
		{ 80, caddr(CI0, 94), 70 },
		{ 400, 0, 0 },
		{ 338, caddr(CI0, 174), 0 },
		{ 1, 0, 0 },
	};
	run_steps(p, s2, FX_N(s2));
	fx_check(p, t2, FX_N(t2));
	pa_delete(p);
}
END_TEST

START_TEST(test_alloc_cross_chunk)
{
	/* A run made of one chunk's end and the next one's start. */
	static const fx_chunk_t t[] = {
		{ CI0, { { 0, 500 } }, { { 0 } } },
		{ CI0 + 1, { { 20, 492 } }, { { 0, 10 } } },
	};
	pagealloc_t *p = fx_new(t, FX_N(t));
	fx_check(p, t, FX_N(t));
	EXPECT_EQ(pagealloc_summary(p, 3, CI0 >> 3), pallocsum_pack(0, 32, 0));
	const alloc_step_t s[] = {
		{ 25, caddr(CI0, 500), 10 },
		{ 8, 0, 0 },
		{ 7, caddr(CI0 + 1, 13), 0 },
		{ 1, 0, 0 },
	};
	run_steps(p, s, FX_N(s));
	fx_check(p, t, FX_N(t));
	pa_delete(p);

	/* A 512-page run that is not chunk-aligned comes first. */
	static const fx_chunk_t t2[] = {
		{ CI0, { { 0, 1 } }, { { 0, 512 } } },
		{ CI0 + 1, { { 0 } }, { { 0, 512 } } },
	};
	p = fx_new(t2, FX_N(t2));
	const alloc_step_t s2[] = {
		{ 512, caddr(CI0, 1), 512 },
		{ 512, 0, 0 },
		{ 510, caddr(CI0 + 1, 1), 510 },
		{ 1, caddr(CI0 + 1, 511), 1 },
		{ 1, 0, 0 },
	};
	run_steps(p, s2, FX_N(s2));
	fx_check(p, t2, FX_N(t2));
	pa_delete(p);
}
END_TEST

START_TEST(test_alloc_multi_chunk)
{
	static const fx_chunk_t t[] = {
		{ CI0, { { 0, 100 } }, { { 0 } } },
		{ CI0 + 1, { { 0 } }, { { 0, 512 } } },
		{ CI0 + 2, { { 0 } }, { { 100, 100 } } },
		{ CI0 + 3, { { 100, 412 } }, { { 0 } } },
	};
	pagealloc_t *p = fx_new(t, FX_N(t));
	fx_check(p, t, FX_N(t));
	const alloc_step_t s[] = {
		{ 1000, caddr(CI0, 100), 512 },
		{ 600, 0, 0 },
		{ 536, caddr(CI0 + 2, 76), 100 },
		{ 1, 0, 0 },
	};
	run_steps(p, s, FX_N(s));
	fx_check(p, t, FX_N(t));
	for (chunk_idx_t c = CI0; c < CI0 + 4; c++)
		EXPECT_EQ(pagealloc_summary(p, 4, c), 0);
	pa_delete(p);

	/* A run of whole free chunks right after a full chunk starts there,
	 * not at the earlier partial run. */
	static const fx_chunk_t t2[] = {
		{ CI0, { { 0, 502 } }, { { 0 } } },
		{ CI0 + 1, { { 0, 512 } }, { { 0 } } },
		{ CI0 + 2, { { 0 } }, { { 0 } } },
		{ CI0 + 3, { { 0 } }, { { 0 } } },
	};
	p = fx_new(t2, FX_N(t2));
	const alloc_step_t s2[] = {
		{ 1024, caddr(CI0 + 2, 0), 0 },
		{ 11, 0, 0 },
		{ 10, caddr(CI0, 502), 0 },
	};
	run_steps(p, s2, FX_N(s2));
	fx_check(p, t2, FX_N(t2));
	pa_delete(p);

	/* search_addr's position inside its own block must not be applied to
	 * the next block the search descends into. */
	static const fx_chunk_t t3[] = {
		{ CI0, { { 0, 512 } }, { { 0 } } },
		{ CI0 + 1, { { 0, 300 } }, { { 0 } } },
		{ CI0 + 8, { { 0, 10 } }, { { 0 } } },
		{ CI0 + 9, { { 0 } }, { { 0 } } },
	};
	p = fx_new(t3, FX_N(t3));
	const alloc_step_t s3[] = {
		{ 1, caddr(CI0 + 1, 300), 0 },
		{ 600, caddr(CI0 + 8, 10), 0 },
		{ 212, caddr(CI0 + 8, 610), 0 },
		{ 211, caddr(CI0 + 1, 301), 0 },
	};
	run_steps(p, s3, FX_N(s3));
	fx_check(p, t3, FX_N(t3));
	pa_delete(p);

	/* 16 chunks: runs over level-3 (32 MiB) boundaries and whole chunks
	 * in between (the contiguous update path). */
	p = pa_new();
	EXPECT(pagealloc_grow(p, BASE, 16 * GM_CHUNK_SIZE));
	chunk_idx_t cs[16];
	for (int k = 0; k < 16; k++)
		cs[k] = CI0 + (chunk_idx_t)k;
	EXPECT_EQ(pagealloc_alloc(p, 8 * 512 + 100, NULL), BASE);
	for (int k = 0; k < 8; k++)
		EXPECT_EQ(pagealloc_summary(p, 4, CI0 + (chunk_idx_t)k), 0);
	EXPECT_EQ(pagealloc_summary(p, 4, CI0 + 8),
	          pallocsum_pack(0, 412, 412));
	EXPECT_EQ(pagealloc_summary(p, 3, CI0 >> 3), 0);
	size_t scav;
	EXPECT_EQ(pagealloc_alloc(p, 7 * 512, &scav), caddr(CI0 + 8, 100));
	EXPECT_EQ(scav, 7 * 512);
	check_summaries(p, cs, 16);
	check_counts(p, cs, 16);
	EXPECT_EQ(pagealloc_free_pages(p), 412);
	/* Free the middle, whole chunks again. */
	pagealloc_free(p, caddr(CI0 + 2, 0), 10 * 512);
	EXPECT_EQ(pagealloc_summary(p, 4, CI0 + 5), PALLOCSUM_FREE_CHUNK);
	check_summaries(p, cs, 16);
	check_counts(p, cs, 16);
	EXPECT_EQ(pagealloc_alloc(p, 10 * 512, &scav), caddr(CI0 + 2, 0));
	EXPECT_EQ(scav, 0);
	EXPECT_EQ(pagealloc_alloc(p, 413, NULL), 0);
	EXPECT_EQ(pagealloc_alloc(p, 412, NULL), caddr(CI0 + 15, 100));
	EXPECT_EQ(pagealloc_alloc(p, 1, NULL), 0);
	check_summaries(p, cs, 16);
	check_counts(p, cs, 16);
	pa_delete(p);
}
END_TEST

START_TEST(test_alloc_noncontiguous)
{
	/* Two chunks far apart: no run crosses the hole between them. */
	chunk_idx_t far = CI0 + 3 * CHUNKS_PER_L0 + 9;
	static fx_chunk_t t[2];
	memset(t, 0, sizeof t);
	t[0].ci = CI0;
	t[0].alloc[0] = (brange_t){ 0, 400 };
	t[1].ci = far;
	t[1].alloc[0] = (brange_t){ 0, 1 };
	t[1].scav[0] = (brange_t){ 0, 512 };
	pagealloc_t *p = fx_new(t, 2);
	fx_check(p, t, 2);
	EXPECT_EQ(pagealloc_alloc(p, 200, NULL), caddr(far, 1));
	EXPECT_EQ(pagealloc_alloc(p, 112, NULL), caddr(CI0, 400));
	EXPECT_EQ(pagealloc_alloc(p, 312, NULL), 0);
	/* Grow the chunk after `far`: the run now goes on into it. */
	EXPECT(pagealloc_grow(p, caddr(far + 1, 0), GM_CHUNK_SIZE));
	size_t scav;
	EXPECT_EQ(pagealloc_alloc(p, 500, &scav), caddr(far, 201));
	EXPECT_EQ(scav, 500);
	/* Grow below everything: search_addr goes down to it. */
	EXPECT(pagealloc_grow(p, caddr(CI0 - 2 * CHUNKS_PER_L0, 0),
	                      GM_CHUNK_SIZE));
	EXPECT_EQ(pagealloc_alloc(p, 1, NULL),
	          caddr(CI0 - 2 * CHUNKS_PER_L0, 0));
	chunk_idx_t cs[] = { CI0 - 2 * CHUNKS_PER_L0, CI0, far, far + 1 };
	check_summaries(p, cs, 4);
	check_counts(p, cs, 4);
	pa_delete(p);
}
END_TEST

START_TEST(test_free_realloc)
{
	pagealloc_t *p = pa_new();
	EXPECT(pagealloc_grow(p, BASE, 2 * GM_CHUNK_SIZE));
	uintptr_t a[10];
	for (int k = 0; k < 10; k++) {
		a[k] = pagealloc_alloc(p, 1, NULL);
		EXPECT_EQ(a[k], BASE + (uintptr_t)k * PG);
	}
	pagealloc_free(p, a[7], 1);
	pagealloc_free(p, a[3], 1);
	size_t scav = 99;
	EXPECT_EQ(pagealloc_alloc(p, 1, &scav), a[3]); /* lowest first */
	EXPECT_EQ(scav, 0); /* freed pages are not scavenged */
	EXPECT_EQ(pagealloc_alloc(p, 2, &scav), BASE + 10 * PG);
	EXPECT_EQ(scav, 2);
	EXPECT_EQ(pagealloc_alloc(p, 1, NULL), a[7]);
	EXPECT_EQ(pagealloc_alloc(p, 1, NULL), BASE + 12 * PG);

	/* A large run across the chunk boundary: free it and get it back. */
	uintptr_t big = pagealloc_alloc(p, 700, &scav);
	EXPECT_EQ(big, BASE + 13 * PG);
	EXPECT_EQ(scav, 700);
	pagealloc_free(p, big, 700);
	EXPECT(pagealloc_is_free(p, big, 700));
	EXPECT(!pagealloc_is_free(p, big - PG, 700));
	EXPECT_EQ(pagealloc_alloc(p, 700, &scav), big);
	EXPECT_EQ(scav, 0);
	pagealloc_free(p, BASE, 13);
	EXPECT_EQ(pagealloc_alloc(p, 14, NULL), big + 700 * PG);
	EXPECT_EQ(pagealloc_alloc(p, 13, NULL), BASE);
	chunk_idx_t cs[] = { CI0, CI0 + 1 };
	check_summaries(p, cs, 2);
	check_counts(p, cs, 2);
	pa_delete(p);
}
END_TEST

/* Frees inside one chunk defer the chunk's summaries (pagealloc_t dirty[]):
 * every reader must still see the freed pages -- alloc (with and without
 * alignment), the page cache, the scavenger -- and more dirty chunks than
 * the list holds force a sync.  A reader that skipped the sync would find
 * the heap full (the leaf still says "nothing free") and grow it. */
START_TEST(test_deferred_free_summaries)
{
	enum { NCH = PAGEALLOC_DIRTY_MAX + 4 };
	pagealloc_t *p = pa_new();
	EXPECT(pagealloc_grow(p, BASE, (size_t)NCH * GM_CHUNK_SIZE));
	for (unsigned c = 0; c < NCH; c++)
		EXPECT_EQ(pagealloc_alloc(p, NPC, NULL), caddr(CI0 + c, 0));
	EXPECT_EQ(pagealloc_alloc(p, 1, NULL), 0);
	/* one page freed in each chunk, from the top: the list overflows */
	for (unsigned c = NCH; c-- > 0;) {
		pagealloc_free(p, caddr(CI0 + c, 100 + c), 1);
		EXPECT(p->ndirty >= 1 && p->ndirty <= PAGEALLOC_DIRTY_MAX);
	}
	EXPECT_EQ(pagealloc_free_pages(p), NCH); /* counts are never deferred */
	for (unsigned c = 0; c < NCH; c++)
		EXPECT_EQ(pagealloc_alloc(p, 1, NULL), caddr(CI0 + c, 100 + c));
	EXPECT_EQ(pagealloc_alloc(p, 1, NULL), 0);
	EXPECT_EQ(p->ndirty, 0);

	/* three neighbours freed: an aligned run of 2 (a search for 3) finds
	 * them */
	for (unsigned k = 64; k < 67; k++)
		pagealloc_free(p, caddr(CI0 + 3, k), 1);
	EXPECT_EQ(p->ndirty, 1);
	EXPECT_EQ(pagealloc_alloc_aligned(p, 2, 2, NULL), caddr(CI0 + 3, 64));
	EXPECT_EQ(pagealloc_alloc(p, 1, NULL), caddr(CI0 + 3, 66));

	/* the page cache takes a block holding a deferred free */
	pagealloc_free(p, caddr(CI0 + 5, 130), 1);
	pagecache_t pc = pagealloc_alloc_to_cache(p);
	EXPECT_EQ(pc.base, caddr(CI0 + 5, 128));
	EXPECT_EQ(pc.cache, (uint64_t)1 << 2);
	pagecache_flush(&pc, p);
	EXPECT_EQ(pagealloc_alloc(p, 1, NULL), caddr(CI0 + 5, 130));

	/* the scavenger finds a deferred free */
	pagealloc_free(p, caddr(CI0 + 7, 9), 1);
	uintptr_t search = UINTPTR_MAX;
	size_t n = 0;
	EXPECT_EQ(pagealloc_scav_take(p, 64, &search, &n), caddr(CI0 + 7, 9));
	EXPECT_EQ(n, 1);
	pagealloc_scav_return(p, caddr(CI0 + 7, 9), 1);

	/* and the summaries agree with the bitmaps */
	pagealloc_free(p, caddr(CI0 + 11, 0), 17);
	chunk_idx_t cs[NCH];
	for (unsigned c = 0; c < NCH; c++)
		cs[c] = CI0 + c;
	check_summaries(p, cs, NCH);
	check_counts(p, cs, NCH);
	pa_delete(p);
}
END_TEST

START_TEST(test_exhaust)
{
	/* Fill every page one at a time; alloc then fails until a free. */
	pagealloc_t *p = pa_new();
	EXPECT(pagealloc_grow(p, BASE, GM_CHUNK_SIZE));
	for (unsigned k = 0; k < NPC; k++)
		EXPECT_EQ(pagealloc_alloc(p, 1, NULL), caddr(CI0, k));
	EXPECT_EQ(pagealloc_alloc(p, 1, NULL), 0);
	EXPECT_EQ(p->search_addr, PAGEALLOC_MAX_SEARCH_ADDR);
	EXPECT_EQ(pagealloc_alloc_to_cache(p).cache, 0);
	pagealloc_free(p, caddr(CI0, 300), 2);
	EXPECT_EQ(pagealloc_alloc(p, 2, NULL), caddr(CI0, 300));
	EXPECT_EQ(pagealloc_alloc(p, 0, NULL), 0);
	EXPECT_EQ(pagealloc_free_pages(p), 0);
	pa_delete(p);
}
END_TEST

START_TEST(test_alloc_exact)
{
	static const fx_chunk_t t[] = {
		{ CI0, { { 10, 10 } }, { { 0, 5 }, { 300, 212 } } },
		{ CI0 + 1, { { 0 } }, { { 0, 512 } } },
	};
	pagealloc_t *p = fx_new(t, FX_N(t));
	size_t scav = 99;
	EXPECT(pagealloc_alloc_exact(p, caddr(CI0, 2), 8, &scav));
	EXPECT_EQ(scav, 3);
	EXPECT(!pagealloc_alloc_exact(p, caddr(CI0, 1), 2, &scav)); /* 2 taken */
	EXPECT_EQ(scav, 0);
	EXPECT(!pagealloc_alloc_exact(p, caddr(CI0, 19), 2, NULL));
	EXPECT(!pagealloc_alloc_exact(p, caddr(CI0, 20) + 1, 2, NULL));
	EXPECT(!pagealloc_alloc_exact(p, caddr(CI0 + 1, 500), 13, NULL));
	/* Across the chunk boundary. */
	EXPECT(pagealloc_alloc_exact(p, caddr(CI0, 500), 100, &scav));
	EXPECT_EQ(scav, 100);
	EXPECT(pagealloc_alloc_exact(p, caddr(CI0, 20), 280, &scav));
	EXPECT_EQ(scav, 0);
	/* First fit still sees what is left. */
	EXPECT_EQ(pagealloc_alloc(p, 1, NULL), caddr(CI0, 0));
	EXPECT_EQ(pagealloc_alloc(p, 2, NULL), caddr(CI0, 300));
	EXPECT(!pagealloc_is_free(p, caddr(CI0 + 2, 0), 1));
	EXPECT(!pagealloc_is_free(p, caddr(CI0, 0), 0));
	fx_check(p, t, FX_N(t));
	pa_delete(p);
}
END_TEST

START_TEST(test_alloc_aligned)
{
	static const fx_chunk_t t[] = {
		{ CI0, { { 0, 3 }, { 20, 1 } }, { { 0 } } },
		{ CI0 + 1, { { 0 } }, { { 0 } } },
	};
	pagealloc_t *p = fx_new(t, FX_N(t));
	EXPECT_EQ(pagealloc_alloc_aligned(p, 4, 8, NULL), caddr(CI0, 8));
	EXPECT_EQ(pagealloc_alloc_aligned(p, 8, 8, NULL), caddr(CI0, 24));
	EXPECT_EQ(pagealloc_alloc_aligned(p, 1, 512, NULL), caddr(CI0 + 1, 0));
	EXPECT_EQ(pagealloc_alloc_aligned(p, 2, 1, NULL), caddr(CI0, 3));
	EXPECT_EQ(pagealloc_alloc_aligned(p, 2, 3, NULL), 0); /* not 2^k */
	EXPECT_EQ(pagealloc_alloc_aligned(p, 600, 2, NULL), 0);
	EXPECT_EQ(pagealloc_alloc(p, 3, NULL), caddr(CI0, 5));
	fx_check(p, t, FX_N(t));
	pa_delete(p);
}
END_TEST

START_TEST(test_scav_take_return)
{
	/* All free; unscavenged runs: [10,20) in c0, [500,512) in c1 with
	 * [0,30) in c2 (one run across a chunk boundary, taken per chunk),
	 * [100,300) in a far chunk. */
	chunk_idx_t far = CI0 + 3 * CHUNKS_PER_L0;
	static fx_chunk_t t[4];
	memset(t, 0, sizeof t);
	t[0].ci = CI0;
	t[0].scav[0] = (brange_t){ 0, 10 };
	t[0].scav[1] = (brange_t){ 20, 492 };
	t[1].ci = CI0 + 1;
	t[1].scav[0] = (brange_t){ 0, 500 };
	t[2].ci = CI0 + 2;
	t[2].scav[0] = (brange_t){ 30, 482 };
	t[3].ci = far;
	t[3].scav[0] = (brange_t){ 0, 100 };
	t[3].scav[1] = (brange_t){ 300, 212 };
	pagealloc_t *p = fx_new(t, 4);
	fx_check(p, t, 4);
	size_t free0 = pagealloc_free_pages(p), scav0 = pagealloc_scav_pages(p);
	EXPECT_EQ(free0, 4 * 512);
	EXPECT_EQ(scav0, 4 * 512 - 10 - 12 - 30 - 200);

	const struct {
		uintptr_t base;
		size_t n;
	} want[] = {
		{ caddr(far, 236), 64 }, { caddr(far, 172), 64 },
		{ caddr(far, 108), 64 }, { caddr(far, 100), 8 },
		{ caddr(CI0 + 2, 0), 30 }, { caddr(CI0 + 1, 500), 12 },
		{ caddr(CI0, 10), 10 },
	};
	uintptr_t search = UINTPTR_MAX;
	size_t taken = 0;
	for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
		size_t n = 0;
		uintptr_t b = pagealloc_scav_take(p, 64, &search, &n);
		EXPECT_MSG(b == want[k].base, "take %zu: %#lx want %#lx", k,
		           (unsigned long)b, (unsigned long)want[k].base);
		EXPECT_EQ(n, want[k].n);
		EXPECT_EQ(search, b - 1);
		taken += n;
		EXPECT_EQ(pagealloc_free_pages(p), free0 - taken);
		EXPECT_EQ(pagealloc_scav_pages(p), scav0);
		EXPECT(!pagealloc_is_free(p, b, 1)); /* held while madvised */
	}
	size_t n = 99;
	EXPECT_EQ(pagealloc_scav_take(p, 64, &search, &n), 0);
	EXPECT_EQ(n, 0);
	EXPECT_EQ(search, 0);
	search = UINTPTR_MAX;
	EXPECT_EQ(pagealloc_scav_take(p, 64, &search, &n), 0);
	/* While taken, alloc does not hand the pages out. */
	EXPECT_EQ(pagealloc_alloc(p, 1, NULL), caddr(CI0, 0));
	EXPECT_EQ(pagealloc_alloc(p, 1, NULL), caddr(CI0, 1));
	pagealloc_free(p, caddr(CI0, 0), 2);

	for (size_t k = 0; k < sizeof want / sizeof want[0]; k++)
		pagealloc_scav_return(p, want[k].base, want[k].n);
	EXPECT_EQ(pagealloc_free_pages(p), free0);
	/* Pages 0 and 1 of c0 were used: now unscavenged. */
	EXPECT_EQ(pagealloc_scav_pages(p), free0 - 2);
	fx_check(p, t, 4);
	search = UINTPTR_MAX;
	EXPECT_EQ(pagealloc_scav_take(p, 64, &search, &n), caddr(CI0, 0));
	EXPECT_EQ(n, 2);
	pagealloc_scav_return(p, caddr(CI0, 0), 2);
	EXPECT_EQ(pagealloc_scav_pages(p), free0);

	/* Allocating scavenged pages reports them. */
	size_t scav = 0;
	EXPECT(pagealloc_alloc_exact(p, caddr(far, 90), 20, &scav));
	EXPECT_EQ(scav, 20);
	EXPECT_EQ(pagealloc_scav_pages(p), free0 - 20);
	/* A search cursor in the middle continues downward from there. */
	pagealloc_free(p, caddr(far, 90), 20);
	search = caddr(CI0 + 1, 0) - 1;
	EXPECT_EQ(pagealloc_scav_take(p, 5, &search, &n), 0);
	search = caddr(far, 95);
	EXPECT_EQ(pagealloc_scav_take(p, 5, &search, &n), caddr(far, 91));
	EXPECT_EQ(n, 5);
	EXPECT_EQ(pagealloc_scav_take(p, 0, &search, &n), 0);
	pa_delete(p);
}
END_TEST

START_TEST(test_pagecache)
{
	static const fx_chunk_t t[] = {
		{ CI0, { { 0, 70 }, { 80, 10 } }, { { 100, 20 } } },
		{ CI0 + 1, { { 0 } }, { { 0 } } },
	};
	pagealloc_t *p = fx_new(t, FX_N(t));
	size_t free0 = pagealloc_free_pages(p), scav0 = pagealloc_scav_pages(p);
	uint64_t m_free = (((uint64_t)1 << 10) - 1) << 6 | ~(uint64_t)0 << 26;
	uint64_t m_scav = (((uint64_t)1 << 20) - 1) << 36;

	pagecache_t c = pagealloc_alloc_to_cache(p);
	EXPECT_EQ(c.base, caddr(CI0, 64));
	EXPECT_EQ(c.cache, m_free);
	EXPECT_EQ(c.scav, m_scav);
	EXPECT_EQ(pagealloc_free_pages(p), free0 - 48);
	EXPECT_EQ(pagealloc_scav_pages(p), scav0 - 20);
	fx_check(p, t, FX_N(t)); /* counts still match the bitmaps */
	/* The heap no longer sees the cached pages. */
	EXPECT_EQ(pagealloc_alloc(p, 1, NULL), caddr(CI0, 128));

	size_t scav = 99;
	EXPECT_EQ(pagecache_alloc(&c, 1, &scav), caddr(CI0, 70));
	EXPECT_EQ(scav, 0);
	EXPECT_EQ(pagecache_alloc(&c, 10, &scav), caddr(CI0, 90));
	EXPECT_EQ(scav, 0);
	EXPECT_EQ(pagecache_alloc(&c, 5, &scav), caddr(CI0, 71));
	EXPECT_EQ(scav, 0);
	/* Left: 76..79 and 100..127 (100..119 scavenged). */
	EXPECT_EQ(pagecache_alloc(&c, 40, &scav), 0);
	EXPECT_EQ(pagecache_alloc(&c, 65, &scav), 0);
	EXPECT_EQ(pagecache_alloc(&c, 23, &scav), caddr(CI0, 100));
	EXPECT_EQ(scav, 20);
	EXPECT_EQ(pagecache_alloc(&c, 6, &scav), 0);
	EXPECT_EQ(pagecache_alloc(&c, 5, &scav), caddr(CI0, 123));
	EXPECT_EQ(pagecache_alloc(&c, 4, &scav), caddr(CI0, 76));
	EXPECT_EQ(c.cache, 0);

	/* Flush: pages 128.. were used by the heap, 70..79, 90..127 by the
	 * cache; nothing left to give back. */
	pagecache_flush(&c, p);
	EXPECT_EQ(c.cache, 0);
	EXPECT_EQ(pagealloc_free_pages(p), free0 - 49);
	pagealloc_free(p, caddr(CI0, 100), 23);
	pagealloc_free(p, caddr(CI0, 76), 4);
	pagealloc_free(p, caddr(CI0, 71), 5);
	fx_check(p, t, FX_N(t));

	/* Take again, allocate a little, flush: scavenged bits come back. */
	c = pagealloc_alloc_to_cache(p);
	EXPECT_EQ(c.base, caddr(CI0, 64));
	EXPECT_EQ(c.cache, (((uint64_t)1 << 9) - 1) << 7 |
	                   (((uint64_t)1 << 23) - 1) << 36);
	EXPECT_EQ(c.scav, 0);
	pagecache_flush(&c, p);
	fx_check(p, t, FX_N(t));

	pa_delete(p);
	/* A cache that is flushed untouched restores everything exactly. */
	p = fx_new(t, FX_N(t));
	c = pagealloc_alloc_to_cache(p);
	EXPECT_EQ(pagecache_alloc(&c, 2, &scav), caddr(CI0, 70));
	pagecache_flush(&c, p);
	EXPECT_EQ(pagealloc_free_pages(p), free0 - 2);
	EXPECT_EQ(pagealloc_scav_pages(p), scav0);
	const pallocdata_t *d = pagealloc_chunk(p, CI0);
	EXPECT_EQ(d->scav.w[1], m_scav);
	EXPECT_EQ(d->alloc.w[1], ~m_free | 3u << 6);
	fx_check(p, t, FX_N(t));
	pa_delete(p);

	/* Slow path: the search chunk is full, the cache comes from the next;
	 * and an empty heap gives an empty cache. */
	static const fx_chunk_t t2[] = {
		{ CI0, { { 0, 512 } }, { { 0 } } },
		{ CI0 + 1, { { 0, 64 }, { 130, 1 } }, { { 128, 64 } } },
	};
	p = fx_new(t2, FX_N(t2));
	pagealloc_free(p, caddr(CI0, 0), 1);
	EXPECT(pagealloc_alloc_exact(p, caddr(CI0, 0), 1, NULL));
	c = pagealloc_alloc_to_cache(p);
	EXPECT_EQ(c.base, caddr(CI0 + 1, 64));
	EXPECT_EQ(c.cache, ~(uint64_t)0);
	EXPECT_EQ(c.scav, 0);
	pagecache_t c2 = pagealloc_alloc_to_cache(p);
	EXPECT_EQ(c2.base, caddr(CI0 + 1, 128));
	EXPECT_EQ(c2.cache, ~(uint64_t)4);
	EXPECT_EQ(c2.scav, ~(uint64_t)4);
	EXPECT_EQ(pagecache_alloc(&c2, 64, NULL), 0);
	EXPECT_EQ(pagecache_alloc(&c, 64, &scav), caddr(CI0 + 1, 64));
	EXPECT_EQ(c.cache, 0);
	pagecache_flush(&c, p); /* empty: nothing happens */
	pagecache_flush(&c2, p);
	fx_check(p, t2, FX_N(t2));
	EXPECT_EQ(pagealloc_alloc(p, 1, NULL), caddr(CI0 + 1, 128));
	pa_delete(p);

	p = pa_new();
	c = pagealloc_alloc_to_cache(p);
	EXPECT_EQ(c.cache, 0);
	EXPECT_EQ(pagecache_alloc(&c, 1, NULL), 0);
	pa_delete(p);
}
END_TEST

/* ---- random operations against a shadow model ------------------------- */

/* Chunks of the shadow heap in address order; some are grown later. */
#define SH_N 10
static const chunk_idx_t sh_ci[SH_N] = {
	CI0 - 2 * CHUNKS_PER_L0,                 /* E: grown at op 1000 */
	CI0, CI0 + 1, CI0 + 2, CI0 + 3,          /* A */
	CI0 + 16, CI0 + 17,                      /* B */
	CI0 + 18, CI0 + 19,                      /* D: grown at op 2000 */
	CI0 + 3 * CHUNKS_PER_L0 + 5,             /* C */
};

typedef struct {
	int grown;
	unsigned char alloc[GM_PAGES_PER_CHUNK];
	unsigned char scav[GM_PAGES_PER_CHUNK];
} sh_chunk_t;

typedef struct {
	uintptr_t base;
	size_t n;
} sh_run_t;

#define SH_MAX_RUNS 8192
static sh_chunk_t sh[SH_N];
static sh_run_t sh_live[SH_MAX_RUNS], sh_held[SH_MAX_RUNS];
static size_t sh_nlive, sh_nheld;

static int sh_chunk_k(chunk_idx_t ci)
{
	for (int k = 0; k < SH_N; k++)
		if (sh_ci[k] == ci && sh[k].grown)
			return k;
	return -1;
}

/* Shadow state of one page: NULL if its chunk is not grown. */
static sh_chunk_t *sh_page(uintptr_t a, unsigned *i)
{
	int k = sh_chunk_k(pagealloc_chunk_index(a));
	if (k < 0)
		return NULL;
	*i = pagealloc_chunk_page_index(a);
	return &sh[k];
}

static void sh_grow(pagealloc_t *p, int k, int n)
{
	for (int j = k; j < k + n; j++) {
		sh[j].grown = 1;
		memset(sh[j].alloc, 0, NPC);
		memset(sh[j].scav, 1, NPC);
	}
	EXPECT(pagealloc_grow(p, caddr(sh_ci[k], 0), (size_t)n * GM_CHUNK_SIZE));
}

/* Mark pages allocated (scav bits counted and cleared) or free. */
static size_t sh_set(uintptr_t base, size_t n, int alloc, int scav)
{
	size_t was_scav = 0;
	for (size_t j = 0; j < n; j++) {
		unsigned i;
		sh_chunk_t *c = sh_page(base + j * PG, &i);
		EXPECT(c != NULL);
		EXPECT_EQ(c->alloc[i], !alloc);
		was_scav += c->scav[i];
		c->alloc[i] = (unsigned char)alloc;
		c->scav[i] = (unsigned char)(alloc ? 0 : scav);
	}
	return was_scav;
}

static int sh_all_free(uintptr_t base, size_t n)
{
	for (size_t j = 0; j < n; j++) {
		unsigned i;
		sh_chunk_t *c = sh_page(base + j * PG, &i);
		if (c == NULL || c->alloc[i])
			return 0;
	}
	return 1;
}

static uintptr_t sh_first_fit(size_t npages)
{
	uintptr_t start = 0;
	size_t run = 0;
	for (int k = 0; k < SH_N; k++) {
		if (!sh[k].grown || (k > 0 && sh_ci[k] != sh_ci[k - 1] + 1) ||
		    (k > 0 && !sh[k - 1].grown))
			run = 0;
		if (!sh[k].grown)
			continue;
		for (unsigned i = 0; i < NPC; i++) {
			if (sh[k].alloc[i]) {
				run = 0;
				continue;
			}
			if (run++ == 0)
				start = caddr(sh_ci[k], i);
			if (run == npages)
				return start;
		}
	}
	return 0;
}

static uintptr_t sh_scav_take(size_t max, uintptr_t *search, size_t *n)
{
	chunk_idx_t sci = pagealloc_chunk_index(*search);
	for (int k = SH_N - 1; k >= 0; k--) {
		if (!sh[k].grown || sh_ci[k] > sci)
			continue;
		int top = sh_ci[k] == sci ? (int)pagealloc_chunk_page_index(*search)
		                          : (int)NPC - 1;
		for (int i = top; i >= 0; i--) {
			if (sh[k].alloc[i] || sh[k].scav[i])
				continue;
			size_t len = 1;
			while (len < max && i - (int)len >= 0 &&
			       !sh[k].alloc[i - (int)len] && !sh[k].scav[i - (int)len])
				len++;
			uintptr_t base = caddr(sh_ci[k], (unsigned)(i + 1 - (int)len));
			*search = base - 1;
			*n = len;
			return base;
		}
	}
	*search = 0;
	*n = 0;
	return 0;
}

static void sh_check_counts(pagealloc_t *p)
{
	size_t total = 0, free = 0, scav = 0;
	for (int k = 0; k < SH_N; k++) {
		if (!sh[k].grown)
			continue;
		total += NPC;
		for (unsigned i = 0; i < NPC; i++) {
			free += !sh[k].alloc[i];
			scav += !sh[k].alloc[i] && sh[k].scav[i];
		}
	}
	EXPECT_EQ(pagealloc_total_pages(p), total);
	EXPECT_EQ(pagealloc_free_pages(p), free);
	EXPECT_EQ(pagealloc_scav_pages(p), scav);
}

static void sh_check_all(pagealloc_t *p)
{
	chunk_idx_t cs[SH_N];
	size_t n = 0;
	for (int k = 0; k < SH_N; k++) {
		const pallocdata_t *d = pagealloc_chunk(p, sh_ci[k]);
		if (!sh[k].grown) {
			EXPECT(d == NULL);
			continue;
		}
		EXPECT(d != NULL);
		for (unsigned i = 0; i < NPC; i++) {
			EXPECT_EQ(bit(&d->alloc, i), sh[k].alloc[i]);
			EXPECT_EQ(bit(&d->scav, i),
			          !sh[k].alloc[i] && sh[k].scav[i]);
		}
		cs[n++] = sh_ci[k];
	}
	check_summaries(p, cs, n);
	check_counts(p, cs, n);
	sh_check_counts(p);
}

static size_t sh_rand_npages(void)
{
	unsigned r = rng_below(100);
	if (r < 60)
		return 1 + rng_below(8);
	if (r < 85)
		return 9 + rng_below(56);
	if (r < 95)
		return 65 + rng_below(536);
	return 601 + rng_below(1600);
}

static void sh_take_run(sh_run_t *list, size_t *n, size_t idx, sh_run_t *out)
{
	*out = list[idx];
	list[idx] = list[--*n];
}

START_TEST(test_random_vs_shadow)
{
	pagealloc_t *p = pa_new();
	memset(sh, 0, sizeof sh);
	sh_nlive = sh_nheld = 0;
	rng_seed(0x5eed1234);
	sh_grow(p, 1, 4); /* A */
	sh_grow(p, 5, 2); /* B */
	sh_grow(p, 9, 1); /* C */

	pagecache_t cache = { 0, 0, 0 };
	uintptr_t cursor = UINTPTR_MAX;
	unsigned n_alloc = 0, n_fail = 0, n_cache = 0, n_take = 0;

	for (int op = 0; op < 4000; op++) {
		if (op == 1000)
			sh_grow(p, 0, 1); /* E, below everything */
		if (op == 2000)
			sh_grow(p, 7, 2); /* D, extends B */
		unsigned r = rng_below(100);
		size_t scav = 12345, n;
		uintptr_t a, want;

		if (r < 30 || (r < 55 && sh_nlive == 0)) {
			n = sh_rand_npages();
			want = sh_first_fit(n);
			a = pagealloc_alloc(p, n, &scav);
			EXPECT_MSG(a == want, "op %d alloc(%zu) = %#lx want %#lx", op,
			           n, (unsigned long)a, (unsigned long)want);
			if (a != 0) {
				EXPECT_EQ(scav, sh_set(a, n, 1, 0));
				sh_live[sh_nlive++] = (sh_run_t){ a, n };
				n_alloc++;
			} else {
				n_fail++;
			}
		} else if (r < 55) {
			sh_run_t run;
			sh_take_run(sh_live, &sh_nlive, rng_below((unsigned)sh_nlive), &run);
			pagealloc_free(p, run.base, run.n);
			sh_set(run.base, run.n, 0, 0);
		} else if (r < 60) {
			int k = (int)rng_below(SH_N);
			if (!sh[k].grown)
				continue;
			a = caddr(sh_ci[k], rng_below(NPC));
			n = 1 + rng_below(100);
			int ok = sh_all_free(a, n);
			EXPECT_EQ(pagealloc_is_free(p, a, n), ok);
			EXPECT_EQ(pagealloc_alloc_exact(p, a, n, &scav), ok);
			if (ok) {
				EXPECT_EQ(scav, sh_set(a, n, 1, 0));
				sh_live[sh_nlive++] = (sh_run_t){ a, n };
			}
		} else if (r < 64) {
			n = 1 + rng_below(20);
			size_t align = (size_t)1 << rng_below(7);
			want = sh_first_fit(n + align - 1);
			if (want != 0)
				want = (want + align * PG - 1) & ~(align * PG - 1);
			a = pagealloc_alloc_aligned(p, n, align, &scav);
			EXPECT_MSG(a == want, "op %d aligned(%zu, %zu) = %#lx want %#lx",
			           op, n, align, (unsigned long)a, (unsigned long)want);
			if (a != 0) {
				EXPECT_EQ(scav, sh_set(a, n, 1, 0));
				sh_live[sh_nlive++] = (sh_run_t){ a, n };
			}
		} else if (r < 74) {
			if (cursor == 0)
				cursor = UINTPTR_MAX;
			size_t max = 1 + rng_below(rng_below(2) ? 600 : 40);
			uintptr_t wcur = cursor;
			size_t wn;
			want = sh_scav_take(max, &wcur, &wn);
			a = pagealloc_scav_take(p, max, &cursor, &n);
			EXPECT_MSG(a == want, "op %d scav_take(%zu) = %#lx want %#lx",
			           op, max, (unsigned long)a, (unsigned long)want);
			EXPECT_EQ(n, wn);
			EXPECT_EQ(cursor, wcur);
			if (a != 0) {
				EXPECT_EQ(sh_set(a, n, 1, 0), 0);
				sh_held[sh_nheld++] = (sh_run_t){ a, n };
				n_take++;
			}
		} else if (r < 82) {
			if (sh_nheld == 0)
				continue;
			sh_run_t run;
			sh_take_run(sh_held, &sh_nheld, rng_below((unsigned)sh_nheld), &run);
			if (rng_below(10) == 0) { /* madvise failed */
				pagealloc_free(p, run.base, run.n);
				sh_set(run.base, run.n, 0, 0);
			} else {
				pagealloc_scav_return(p, run.base, run.n);
				sh_set(run.base, run.n, 0, 1);
			}
		} else if (r < 87) {
			if (cache.cache != 0)
				continue;
			/* Expected: the 64-page block of the first free page. */
			uintptr_t first = sh_first_fit(1);
			cache = pagealloc_alloc_to_cache(p);
			if (first == 0) {
				EXPECT_EQ(cache.cache, 0);
				continue;
			}
			uintptr_t blk = first & ~(64 * PG - 1);
			EXPECT_EQ(cache.base, blk);
			uint64_t wc = 0, ws = 0;
			for (unsigned j = 0; j < 64; j++) {
				unsigned i = 0;
				sh_chunk_t *c = sh_page(blk + j * PG, &i);
				if (!c->alloc[i]) {
					wc |= (uint64_t)1 << j;
					ws |= (uint64_t)c->scav[i] << j;
					c->alloc[i] = 1;
					c->scav[i] = 0;
				}
			}
			EXPECT_EQ(cache.cache, wc);
			EXPECT_EQ(cache.scav, ws);
			n_cache++;
		} else if (r < 96) {
			n = 1 + rng_below(rng_below(2) ? 4 : 40);
			uint64_t before = cache.cache, bscav = cache.scav;
			unsigned wi = 64;
			for (unsigned i = 0; i + n <= 64 && cache.cache; i++) {
				uint64_t m = (n == 64 ? ~(uint64_t)0
				                      : (((uint64_t)1 << n) - 1)) << i;
				if ((before & m) == m) {
					wi = i;
					break;
				}
			}
			a = pagecache_alloc(&cache, n, &scav);
			if (wi == 64) {
				EXPECT_EQ(a, 0);
				continue;
			}
			EXPECT_EQ(a, cache.base + wi * PG);
			uint64_t m = (((uint64_t)1 << n) - 1) << wi;
			EXPECT_EQ(scav, (size_t)__builtin_popcountll(bscav & m));
			EXPECT_EQ(cache.cache, before & ~m);
			sh_live[sh_nlive++] = (sh_run_t){ a, n };
		} else {
			for (unsigned j = 0; j < 64; j++) {
				if (!((cache.cache >> j) & 1))
					continue;
				unsigned i = 0;
				sh_chunk_t *c = sh_page(cache.base + j * PG, &i);
				c->alloc[i] = 0;
				c->scav[i] = (unsigned char)((cache.scav >> j) & 1);
			}
			pagecache_flush(&cache, p);
			EXPECT_EQ(cache.cache, 0);
		}
		EXPECT(sh_nlive < SH_MAX_RUNS - 1 && sh_nheld < SH_MAX_RUNS - 1);
		sh_check_counts(p);
		if (op % 16 == 0)
			sh_check_all(p);
	}
	sh_check_all(p);
	/* The sequence must have exercised every path. */
	EXPECT(n_alloc > 500);
	EXPECT(n_fail > 20);
	EXPECT(n_cache > 20);
	EXPECT(n_take > 100);
	pa_delete(p);
}
END_TEST

static Suite *pagealloc_suite(void)
{
	Suite *s = suite_create("pagealloc");
	TCase *bits = tcase_create("pallocbits");
	tcase_set_timeout(bits, 60);
	tcase_add_test(bits, test_popcount);
	tcase_add_test(bits, test_sum_pack);
	tcase_add_test(bits, test_bits_ranges);
	tcase_add_test(bits, test_bits_summarize);
	tcase_add_test(bits, test_bits_find);
	tcase_add_test(bits, test_data_alloc_free);
	tcase_add_test(bits, test_data_scav_candidate);
	suite_add_tcase(s, bits);

	TCase *pa = tcase_create("pagealloc");
	tcase_set_timeout(pa, 60);
	tcase_add_test(pa, test_grow_summaries);
	tcase_add_test(pa, test_alloc_one_chunk);
	tcase_add_test(pa, test_alloc_cross_chunk);
	tcase_add_test(pa, test_alloc_multi_chunk);
	tcase_add_test(pa, test_alloc_noncontiguous);
	tcase_add_test(pa, test_free_realloc);
	tcase_add_test(pa, test_exhaust);
	tcase_add_test(pa, test_alloc_exact);
	tcase_add_test(pa, test_alloc_aligned);
	tcase_add_test(pa, test_scav_take_return);
	tcase_add_test(pa, test_pagecache);
	tcase_add_test(pa, test_deferred_free_summaries);
	tcase_add_test(pa, test_random_vs_shadow);
	suite_add_tcase(s, pa);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(pagealloc_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed > 100 ? 100 : failed; /* the number of failures */
}
