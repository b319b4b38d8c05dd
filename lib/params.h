/*
 * params.h -- the fixed geometry of the heap, exactly Go's on linux/amd64.
 *
 * Every constant that depends on another is tied to it by a _Static_assert
 * here, so changing one without the others fails to compile.
 */
#ifndef GM_PARAMS_H
#define GM_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#define GM_PAGE_SHIFT        13                       /* Go's _PageShift */
#define GM_PAGE_SIZE         ((size_t)1 << GM_PAGE_SHIFT)  /* 8 KiB */
#define GM_OS_PAGE_SIZE      4096
#define GM_ARENA_SHIFT       26                       /* 64 MiB arenas */
#define GM_ARENA_SIZE        ((size_t)1 << GM_ARENA_SHIFT)
#define GM_PAGES_PER_ARENA   (GM_ARENA_SIZE / GM_PAGE_SIZE)  /* 8192 */
#define GM_CHUNK_SHIFT       22                       /* 4 MiB chunks */
#define GM_CHUNK_SIZE        ((size_t)1 << GM_CHUNK_SHIFT)
#define GM_PAGES_PER_CHUNK   (GM_CHUNK_SIZE / GM_PAGE_SIZE)  /* 512 */
#define GM_ADDR_BITS         48
/* The arena map covers the addresses mmap hands a process: 47 bits on
 * x86-64 (user space ends at 2^47 unless a program asks for more with a
 * hint above it, which gomalloc never gives), 48 elsewhere.  Half the map
 * on x86-64: 16 MiB of address space less (`ulimit -v`). */
#if defined(__x86_64__)
#define GM_ARENA_MAP_ADDR_BITS 47
#else
#define GM_ARENA_MAP_ADDR_BITS GM_ADDR_BITS
#endif
#define GM_ARENA_L2_BITS     (GM_ARENA_MAP_ADDR_BITS - GM_ARENA_SHIFT) /* 21 on x86-64 */
#define GM_ARENA_L2_ENTRIES  ((size_t)1 << GM_ARENA_L2_BITS)

#define GM_NUM_SIZE_CLASSES  68                       /* class 0 = large */
#define GM_NUM_SPAN_CLASSES  (GM_NUM_SIZE_CLASSES << 1) /* 136 */
#define GM_MAX_SMALL_SIZE    32768
#define GM_SMALL_SIZE_MAX    1024                     /* size_to_class8 limit */
#define GM_SMALL_SIZE_DIV    8
#define GM_LARGE_SIZE_DIV    128
#define GM_MAX_OBJS_PER_SPAN 1024                     /* 8-byte class */
#define GM_FIRST_ONE_WORD_CLASS 10                   /* 128 B: from it on every span holds
                                                          <= 64 objects (test_sizeclass) */
#define GM_PAGE_CACHE_PAGES  64                       /* Go's pageCachePages */

_Static_assert(GM_PAGES_PER_ARENA == 8192, "Go's pagesPerArena");
_Static_assert(GM_PAGES_PER_CHUNK == 512, "Go's pallocChunkPages");
_Static_assert(GM_ARENA_SIZE % GM_CHUNK_SIZE == 0, "chunks tile arenas");
_Static_assert(GM_PAGE_SIZE % GM_OS_PAGE_SIZE == 0, "pages tile OS pages");
_Static_assert(GM_NUM_SPAN_CLASSES == 136, "Go's numSpanClasses");
_Static_assert(GM_PAGE_CACHE_PAGES == 64, "page cache is one bitmap word");

/* Span class: size class << 1 | noscan (Go's spanClass). */
typedef unsigned spanclass_t; /* < 136; stored as uint8_t in mspan_t */
static inline spanclass_t spanclass_make(unsigned sizeclass, int noscan)
{
	return (spanclass_t)((sizeclass << 1) | (noscan ? 1u : 0u));
}
static inline unsigned spanclass_sizeclass(spanclass_t sc) { return sc >> 1; }
static inline int spanclass_noscan(spanclass_t sc) { return sc & 1; }

#endif /* GM_PARAMS_H */
