/*
 * sizeclass.h -- Go's 68 size classes (sizeclasses.go, msize.go).
 */
#ifndef GM_SIZECLASS_H
#define GM_SIZECLASS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compiler.h"
#include "params.h"

/* Written once by sizeclass_init before any span exists; read-only after. */
extern uint8_t sizeclass_class8[GM_SMALL_SIZE_MAX / GM_SMALL_SIZE_DIV + 1];
extern const uint8_t sizeclass_class128[(GM_MAX_SMALL_SIZE - GM_SMALL_SIZE_MAX) /
                                        GM_LARGE_SIZE_DIV + 1];
extern const uint32_t sizeclass_size[GM_NUM_SIZE_CLASSES];
extern const uint8_t sizeclass_npages[GM_NUM_SIZE_CLASSES];
extern const uint16_t sizeclass_nobjs[GM_NUM_SIZE_CLASSES];
extern const uint32_t sizeclass_divmagic[GM_NUM_SIZE_CLASSES];

/* min_align 16 (default): requests of 17..24 bytes use class 4 (32 bytes)
 * so every block > 8 bytes is 16-byte aligned; 8: Go's exact mapping. */
void sizeclass_init(unsigned min_align);

/* Size class for size <= GM_SMALL_SIZE_MAX (1 KiB; 0 maps to class 1). */
static ALWAYS_INLINE unsigned sizeclass_of_upto1k(size_t size)
{
	return sizeclass_class8[(size + GM_SMALL_SIZE_DIV - 1) / GM_SMALL_SIZE_DIV];
}

/* Size class for 1 <= size <= GM_MAX_SMALL_SIZE (0 maps to class 1). */
static ALWAYS_INLINE unsigned sizeclass_of(size_t size)
{
	if (LIKELY(size <= GM_SMALL_SIZE_MAX))
		return sizeclass_of_upto1k(size);
	return sizeclass_class128[(size - GM_SMALL_SIZE_MAX +
	                           GM_LARGE_SIZE_DIV - 1) / GM_LARGE_SIZE_DIV];
}

/* Object index of offset `off` in a span of class `sc` (Go's divMagic):
 * exact for every offset inside the span. */
static ALWAYS_INLINE uint32_t sizeclass_objindex(uint32_t divmagic, uintptr_t off)
{
	return (uint32_t)(((uint64_t)off * divmagic) >> 32);
}

/* The owner free's object-start limit of class c (mspan free_objlimit):
 * for every offset off inside a span of class c (below npages * 8 KiB),
 *   (uint32_t)(off * divmagic) < limit
 * exactly when off is the start of object i < nobjs.  The low half of the
 * product is i * err at object i's start (err = divmagic * size - 2^32,
 * the rounding of divmagic) and at least divmagic elsewhere, so the limit
 * (nobjs - 1) * err + 1 (capped at divmagic) also turns away the start of
 * the slot that would follow the last object in the span's tail.  Checked
 * for every class and offset by tests/unit/test_sizeclass,
 * objlimit_test_is_exact. */
static inline uint32_t sizeclass_objlimit(unsigned c)
{
	uint64_t err = (uint64_t)sizeclass_divmagic[c] * sizeclass_size[c] - (1ull << 32);
	uint64_t lim = (uint64_t)(sizeclass_nobjs[c] - 1) * err + 1;
	return lim < sizeclass_divmagic[c] ? (uint32_t)lim : sizeclass_divmagic[c];
}

/* sizeclass_aligned[k][c] is the smallest class >= c whose object size is
 * a multiple of 1 << k, 0 if none: objects of such a class are naturally
 * aligned because spans start on page boundaries (test_sizeclass
 * aligned_table_matches).  Read by the aligned_alloc fast path
 * (malloc_impl.h) and sizeclass_for_aligned.  All 0 until sizeclass_init
 * fills it, so a fast path that reads it before the initialisation falls
 * through to the slow path. */
extern uint8_t sizeclass_aligned[GM_PAGE_SHIFT + 1][GM_NUM_SIZE_CLASSES];

/* Smallest class >= size whose object size is a multiple of align (align a
 * power of two <= GM_PAGE_SIZE), from sizeclass_aligned; 0 if none is
 * small.  After sizeclass_init. */
unsigned sizeclass_for_aligned(size_t size, size_t align);

#endif /* GM_SIZECLASS_H */
