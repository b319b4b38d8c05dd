/*
 * fixalloc.h -- metadata memory straight from the OS (Go's mfixalloc.go and
 * persistentalloc): never from gomalloc's own heap.
 */
#ifndef GM_FIXALLOC_H
#define GM_FIXALLOC_H

#include <stdbool.h>
#include <stddef.h>

/* A free list of fixed-size objects.  Not thread-safe: the caller holds the
 * lock that protects the fixalloc (mheap's lock for spans and caches). */
typedef struct fixalloc {
	size_t size;        /* object size, a multiple of 16 */
	void *list;         /* freed objects, linked through their first word */
	char *chunk;        /* bump region */
	size_t nchunk;      /* bytes left in chunk */
	size_t inuse;       /* bytes handed out and not freed */
	/* slab mode (fixalloc_init_slabs): objects live in 64 KiB slabs whose
	 * memory goes back to the OS when every object of the slab is free */
	bool slabs;
	struct fixslab *partial; /* slabs with at least one free object */
} fixalloc_t;

void fixalloc_init(fixalloc_t *f, size_t size);
/* Like fixalloc_init, but releasable: see fixalloc_release_empty. */
void fixalloc_init_slabs(fixalloc_t *f, size_t size);
/* Give the memory of every entirely free slab but `keep` back to the OS
 * (os_unused; the slab stays mapped for reuse).  Returns bytes released. */
size_t fixalloc_release_empty(fixalloc_t *f, unsigned keep);
/* Zeroed object, or NULL if the OS refuses memory. */
void *fixalloc_alloc(fixalloc_t *f);
void fixalloc_free(fixalloc_t *f, void *p);

/* Zeroed metadata memory that is never freed, aligned to `align` (<= 4096).
 * Thread-safe (its own spin lock, held for a few instructions). */
void *persistent_alloc(size_t size, size_t align);
/* Bytes of metadata obtained from the OS and not released. */
size_t persistent_bytes(void);
/* Re-initialise the spin lock in a forked child. */
void persistent_atfork_child(void);

#endif /* GM_FIXALLOC_H */
