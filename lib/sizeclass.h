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

/* Is the offset whose product with divmagic is `prod` (off * divmagic, as
 * in sizeclass_objindex) an object start?  The low 32 bits of the product
 * are below divmagic exactly at multiples of the class size, for every
 * offset inside the span's objects (checked for all 67 classes by
 * tests/unit/test_sizeclass, objstart_test_is_exact). */
static ALWAYS_INLINE bool sizeclass_is_objstart(uint32_t divmagic, uint64_t prod)
{
	return (uint32_t)prod < divmagic;
}

/* Smallest class >= size whose object size is a multiple of align (align a
 * power of two <= GM_PAGE_SIZE): objects of such a class are naturally
 * aligned because spans start on page boundaries.  0 if none is small. */
unsigned sizeclass_for_aligned(size_t size, size_t align);

#endif /* GM_SIZECLASS_H */
