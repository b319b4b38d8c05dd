/*
 * gomalloc.h -- public extension API of gomalloc.
 *
 * gomalloc replaces the C library's malloc family (malloc, free, calloc,
 * realloc, posix_memalign, aligned_alloc, malloc_usable_size, ...); those
 * keep their standard prototypes from <stdlib.h> and <malloc.h>.  This header
 * declares only what gomalloc adds: the scan/noscan split of Go's heap, a
 * heap walker, explicit scavenging and statistics.
 *
 * Link with -lgomalloc (pkg-config --libs gomalloc) or LD_PRELOAD the library.
 */
#ifndef GOMALLOC_H
#define GOMALLOC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GOMALLOC_VERSION_MAJOR 0
#define GOMALLOC_VERSION_MINOR 1
#define GOMALLOC_VERSION_PATCH 0

/* Kind of a block: SCAN blocks may hold pointers (plain malloc/calloc/
 * realloc), NOSCAN blocks promise not to (gm_malloc_noscan and friends). */
typedef enum gm_kind {
	GM_KIND_SCAN = 0,
	GM_KIND_NOSCAN = 1
} gm_kind_t;

/* Allocate from noscan spans: the caller promises the block holds no
 * pointers.  Free with free(); realloc() keeps the kind. */
void *gm_malloc_noscan(size_t size);
void *gm_calloc_noscan(size_t nmemb, size_t size);
void *gm_aligned_alloc_noscan(size_t alignment, size_t size);

/* Kind of a live block allocated by gomalloc; -1 if p is not one. */
int gm_kind_of(const void *p);

/* Enumerate every live block: callback(address, usable_size, kind, arg).
 * A non-zero return from the callback stops the walk (and is returned).
 * The walk reads other threads' caches without stopping them: call it
 * when no other thread allocates or frees (a quiescent point). The
 * callback must not allocate or free. */
typedef int (*gm_walk_fn)(void *addr, size_t usable_size, gm_kind_t kind,
                          void *arg);
int gm_heap_walk(gm_walk_fn callback, void *arg);

/* Return up to `bytes` of free memory to the OS now (0 = all of it).
 * Returns the number of bytes released. */
size_t gm_scavenge(size_t bytes);

/* Summary of the heap, in bytes unless said otherwise. */
typedef struct gm_stats {
	size_t mapped;         /* heap address space mapped from the OS */
	size_t heap_inuse;     /* bytes of pages in in-use spans */
	size_t allocated;      /* bytes in live blocks (usable sizes) */
	size_t nblocks;        /* number of live blocks */
	size_t large_allocated;/* bytes in live blocks > 32 KiB */
	size_t nlarge;         /* number of live blocks > 32 KiB */
	size_t free_retained;  /* free pages kept resident for reuse */
	size_t released;       /* free pages returned to the OS */
	size_t metadata;       /* allocator metadata (spans, bitmaps, caches) */
	size_t nthreads;       /* thread caches alive */
	size_t memory_limit;   /* soft limit in force (0: none) */
	size_t scavenged_total;/* bytes returned to the OS since start */
} gm_stats_t;

/* Fill *out; returns 0. Reads other threads' caches without stopping them,
 * so figures of a busy heap are approximate. */
int gm_stats(gm_stats_t *out);

/* Version string, e.g. "gomalloc 0.1.0". */
const char *gm_version(void);

#ifdef __cplusplus
}
#endif
#endif /* GOMALLOC_H */
