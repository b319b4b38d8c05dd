/*
 * malloc_impl.h -- gomalloc's entry points, built on the layers (Go's malloc.go).
 * The always-inline fast paths live here so override.c's exported symbols
 * compile to them directly; everything slow is in malloc.c.
 */
#ifndef GM_MALLOC_IMPL_H
#define GM_MALLOC_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "compiler.h"
#include "mcache_inline.h"
#include "params.h"
#include "sizeclass.h"

/* Initialise once (options, heap, thread-exit key, fork handlers).
 * False if the OS refused the initial reservations. */
bool gm_init_slow(void);
extern _Atomic int gm_initialized;
static ALWAYS_INLINE bool gm_ensure_init(void)
{
	if (LIKELY(atomic_load_explicit(&gm_initialized, memory_order_acquire)))
		return true;
	return gm_init_slow();
}

/* Slow paths (malloc.c). */
void *gm_alloc_slow(size_t size, int noscan);
void *gm_alloc_class_slow(spanclass_t spc);
void gm_free_slow(void *p, const char *call);

static ALWAYS_INLINE void *gm_alloc(size_t size, int noscan)
{
	/* Sizes up to 1 KiB first: one compare before the class table. */
	unsigned sc;
	if (LIKELY(size <= GM_SMALL_SIZE_MAX))
		sc = sizeclass_of_upto1k(size);
	else if (size <= GM_MAX_SMALL_SIZE)
		sc = sizeclass_of(size);
	else
		return gm_alloc_slow(size, noscan);
	void *p = mcache_alloc_fast(mcache_tls, spanclass_make(sc, noscan));
	if (LIKELY(p != NULL))
		return p;
	/* the size, not sc: before the first initialisation sc comes from
	 * Go's exact table, which sizeclass_init rounds up for min_align 16
	 * (a 24-byte class would give 8-aligned blocks) */
	return gm_alloc_slow(size, noscan);
}

void *gm_calloc(size_t nmemb, size_t size, int noscan);
void *gm_calloc_small_slow(size_t total, int noscan);

/* calloc of a small block (total <= GM_MAX_SMALL_SIZE): malloc's class
 * lookup and fast path, the block cleared only when its span has had a
 * free since it was fresh (needzero, on the line the fast path just read),
 * with memset as a tail call (it returns the block); a refill goes to
 * gm_calloc_small_slow.  calloc's inline path and gm_calloc's small case. */
static ALWAYS_INLINE void *gm_calloc_small(size_t total, int noscan)
{
	unsigned sc = LIKELY(total <= GM_SMALL_SIZE_MAX) ? sizeclass_of_upto1k(total)
	                                                  : sizeclass_of(total);
	mspan_t *cur;
	void *p = mcache_alloc_fast_from(mcache_tls, spanclass_make(sc, noscan), &cur);
	if (UNLIKELY(p == NULL))
		return gm_calloc_small_slow(total, noscan);
	if (LIKELY(cur->needzero)) /* any span that has had a free */
		return memset(p, 0, total);
	return p;
}

/* calloc: a small block inline; an overflow and a large block go to
 * gm_calloc, which checks again. */
static ALWAYS_INLINE void *gm_calloc_fast(size_t nmemb, size_t size, int noscan)
{
	size_t total;
	if (UNLIKELY(__builtin_mul_overflow(nmemb, size, &total) ||
	             total > GM_MAX_SMALL_SIZE))
		return gm_calloc(nmemb, size, noscan);
	return gm_calloc_small(total, noscan);
}

/* aligned_alloc, memalign and posix_memalign of a small block with a
 * power-of-two alignment up to a page: the class from sizeclass_aligned
 * (its objects are multiples of the alignment, and spans start on pages),
 * then malloc's fast path.  NULL sends the call to its checked slow path
 * (gm_aligned_alloc_checked, gm_posix_memalign): a bad or large alignment,
 * a large block, a refill, or a cache not made yet (before the first
 * initialisation the table is all 0).  The free of the block is malloc's:
 * its class is the one the fast free looks at first. */
static ALWAYS_INLINE void *gm_alloc_aligned_fast(size_t align, size_t size)
{
	size_t want = size < align ? align : size;
	/* align - 1 wraps for 0: one compare for 0 and > GM_PAGE_SIZE */
	if (UNLIKELY(align - 1 >= GM_PAGE_SIZE || (align & (align - 1)) != 0 ||
	             want > GM_MAX_SMALL_SIZE))
		return NULL;
	unsigned sc = sizeclass_aligned[gm_ctz64(align)][sizeclass_of(want)];
	if (UNLIKELY(sc == 0))
		return NULL;
	return mcache_alloc_fast(mcache_tls, spanclass_make(sc, 0));
}

void *gm_aligned_alloc_checked(size_t align, size_t size, int noscan);

/* aligned_alloc and memalign: the fast path, else the checked one. */
static ALWAYS_INLINE void *gm_aligned_alloc(size_t align, size_t size)
{
	void *p = gm_alloc_aligned_fast(align, size);
	if (LIKELY(p != NULL))
		return p;
	return gm_aligned_alloc_checked(align, size, 0);
}

/* free(p) as called by `call` ("free", "realloc": named in error lines). */
static ALWAYS_INLINE void gm_free_as(void *p, const char *call)
{
	/* free(NULL) takes the slow path: page 0 is in no arena */
	if (LIKELY(mcache_free_fast(mcache_tls, p) == FREE_DONE))
		return;
	gm_free_slow(p, call);
}

static ALWAYS_INLINE void gm_free(void *p)
{
	gm_free_as(p, "free");
}

void *gm_realloc(void *p, size_t size);
void *gm_reallocarray(void *p, size_t nmemb, size_t size);
/* Aligned allocation: align a power of two (checked by callers). */
void *gm_alloc_aligned(size_t align, size_t size, int noscan);
size_t gm_usable_size(const void *p, const char *call);
int gm_posix_memalign(void **memptr, size_t align, size_t size);
void *gm_valloc(size_t size);
void *gm_pvalloc(size_t size);
int gm_malloc_trim(size_t pad);
int gm_mallopt(int param, int value);

#endif /* GM_MALLOC_IMPL_H */
