/*
 * sizeclass.c -- Go's size classes: size -> class, class -> object size,
 * span pages, objects per span, and the division magic for object indices.
 *
 * The numbers are Go's (runtime/sizeclasses.go), generated into
 * sizeclass_table.h by gen_sizeclass_table.sh from tests/unit/sizeclasses.tsv;
 * tests/unit/test_sizeclass.c checks them against ../shared/sizeclasses.tsv.
 * Class 0 stands for "large" (> 32 KiB, whole pages from mheap).
 *
 * Callers: malloc.c and mcache_inline.h (sizeclass_of on every small malloc),
 * mheap.c and mcentral.c (span geometry).  No locks: sizeclass_init runs
 * once, during gomalloc's initialisation and before any span exists; every
 * table is read-only afterwards.
 *
 * Spans of at least 24 objects (docs/design.md): a class of at most 1280
 * bytes whose Go span holds fewer than 24 objects (352..1280 B: 6 to 23)
 * gets the fewest pages that hold 24 (2, 3 or 4).  Without a garbage
 * collector every span that runs out costs a refill and a sweep, and a span
 * of few objects that came back a fraction freed gives few of them: larson
 * (8..1000-byte blocks) refilled once every 5.5 mallocs with Go's spans,
 * three quarters of the refills in these classes.  Likewise a class of
 * 1281..4096 bytes whose Go span holds fewer than 8 (1536..4096 B: 2 to 7)
 * gets the fewest pages that hold 8: a batch of 4 KiB blocks took a span
 * from the heap and gave it back every 2 blocks.  The sizes, and every
 * other class, are Go's.
 *
 * The deliberate difference in the size mapping (DESIGN.md, "Alignment"): Go's class
 * 3 holds 24-byte objects, which are only 8-byte aligned.  C programs expect
 * glibc's 16-byte alignment for every block larger than 8 bytes, so by
 * default sizes 17..24 map to class 4 (32 bytes).  min_align:8 restores Go's
 * exact mapping.  Every other class size is a multiple of 16 (checked in
 * sizeclass_init), so all other classes keep 16-byte alignment.
 *
 * Invariants (checked by test_sizeclass):
 *   sizeclass_size[sizeclass_of(n)] >= n, and it is the smallest such class
 *   (modulo the 17..24 rule);
 *   sizeclass_nobjs[c] == sizeclass_npages[c] * 8192 / sizeclass_size[c];
 *   sizeclass_nobjs[c] >= 16 for every class up to 1280 bytes;
 *   objindex(divmagic[c], i * size[c]) == i for every object i.
 */
#include "sizeclass.h"

#include "sizeclass_table.h"

_Static_assert(SIZECLASS_TABLE_N == GM_NUM_SIZE_CLASSES, "68 classes");

uint8_t sizeclass_aligned[GM_PAGE_SHIFT + 1][GM_NUM_SIZE_CLASSES];

void sizeclass_init(unsigned min_align)
{
	/* Index 3 covers sizes 17..24: Go's class 3 (24 bytes, 8-aligned). */
	sizeclass_class8[3] = (uint8_t)(min_align >= 16 ? 4 : 3);
	for (unsigned k = 0; k <= GM_PAGE_SHIFT; k++) {
		unsigned next = 0; /* smallest class >= c with the alignment */
		for (unsigned c = GM_NUM_SIZE_CLASSES - 1; c >= 1; c--) {
			if ((sizeclass_size[c] & ((1u << k) - 1)) == 0)
				next = c;
			sizeclass_aligned[k][c] = (uint8_t)next;
		}
		sizeclass_aligned[k][0] = 0; /* class 0: large */
	}
}

unsigned sizeclass_for_aligned(size_t size, size_t align)
{
	if (size == 0)
		size = 1;
	if (size > GM_MAX_SMALL_SIZE || align > GM_PAGE_SIZE)
		return 0;
	/* align is a power of two (callers check) */
	return sizeclass_aligned[gm_ctz64(align)][sizeclass_of(size)];
}
