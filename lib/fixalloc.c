/*
 * fixalloc.c -- metadata allocation from the OS, never from our own heap
 * (Go's mfixalloc.go and persistentalloc in malloc.go).
 *
 * persistent_alloc hands out zeroed, never-freed memory carved from 256 KiB
 * OS mappings (bigger requests get their own mapping); it protects itself
 * with a tiny spin lock because it is called from several layers (mheap's
 * span structs, arena metadata, mcentral bitmaps, thread caches).
 *
 * fixalloc_t is Go's fixalloc: a free list of fixed-size objects on top of
 * persistent_alloc, used for mspan_t and mcache_t.  It is NOT thread-safe:
 * the caller holds the lock that owns the fixalloc (mheap.lock).
 *
 * Slab mode (span structs): a burst of small objects needs one mspan_t per
 * 8 KiB span (~3% of the heap); after the burst is freed those structs
 * would stay resident forever.  In slab mode objects come from 64 KiB
 * aligned slabs, each with its own free list and count; a slab whose every
 * object is free can be released (os_unused past its first OS page) by
 * fixalloc_release_empty, called by the scavenger under mheap.lock.
 *
 * Invariant: fixalloc objects are reused only through fixalloc_alloc, which
 * zeroes them, so a recycled mspan_t never carries old state.
 */
#include "fixalloc.h"

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "compiler.h"
#include "os_linux.h"

#define PERSISTENT_CHUNK (256u * 1024u)

static atomic_flag persistent_lock = ATOMIC_FLAG_INIT;
static char *persistent_base;
static size_t persistent_off, persistent_cap;
static _Atomic size_t persistent_total;
static _Atomic size_t fixslab_released; /* bytes of span-struct slabs now released */

static void persistent_lock_acquire(void)
{
	while (atomic_flag_test_and_set_explicit(&persistent_lock,
	                                         memory_order_acquire))
		GM_CPU_RELAX();
}

static void persistent_lock_release(void)
{
	atomic_flag_clear_explicit(&persistent_lock, memory_order_release);
}

void persistent_atfork_child(void)
{
	atomic_flag_clear(&persistent_lock);
}

void *persistent_alloc(size_t size, size_t align)
{
	if (align == 0)
		align = 16;
	size = (size + 15) & ~(size_t)15;
	if (size >= PERSISTENT_CHUNK / 4) {
		size_t bytes = (size + 4095) & ~(size_t)4095;
		void *p = os_alloc(bytes);
		if (p != NULL)
			atomic_fetch_add_explicit(&persistent_total, bytes,
			                          memory_order_relaxed);
		return p;
	}
	persistent_lock_acquire();
	size_t off = (persistent_off + align - 1) & ~(align - 1);
	if (persistent_base == NULL || off + size > persistent_cap) {
		char *chunk = os_alloc(PERSISTENT_CHUNK);
		if (chunk == NULL) {
			persistent_lock_release();
			return NULL;
		}
		atomic_fetch_add_explicit(&persistent_total, PERSISTENT_CHUNK,
		                          memory_order_relaxed);
		persistent_base = chunk;
		persistent_cap = PERSISTENT_CHUNK;
		off = 0;
	}
	void *p = persistent_base + off;
	persistent_off = off + size;
	persistent_lock_release();
	return p;
}

size_t persistent_bytes(void)
{
	return atomic_load_explicit(&persistent_total, memory_order_relaxed) -
	       atomic_load_explicit(&fixslab_released, memory_order_relaxed);
}

void fixalloc_init(fixalloc_t *f, size_t size)
{
	memset(f, 0, sizeof *f);
	f->size = (size + 15) & ~(size_t)15;
}

#define FIXSLAB_SIZE ((size_t)64 << 10)
#define FIXSLAB_HDR 64
#define FIXSLAB_KEEP_FROM 4096 /* the first OS page (header) stays resident */

typedef struct fixslab {
	struct fixslab *next, *prev; /* in f->partial */
	void *free;                  /* freed objects of this slab */
	uint32_t nfree;              /* free objects (never handed out included) */
	uint32_t cap;                /* objects in the slab */
	uint32_t bump;               /* objects handed out since (re)start */
	bool released;               /* pages past the first were released */
} fixslab_t;
_Static_assert(sizeof(fixslab_t) <= FIXSLAB_HDR, "slab header too big");


void fixalloc_init_slabs(fixalloc_t *f, size_t size)
{
	fixalloc_init(f, size);
	f->slabs = true;
}

static void fixslab_unlink(fixalloc_t *f, fixslab_t *sl)
{
	if (sl->prev)
		sl->prev->next = sl->next;
	else
		f->partial = sl->next;
	if (sl->next)
		sl->next->prev = sl->prev;
	sl->next = sl->prev = NULL;
}

static void fixslab_push(fixalloc_t *f, fixslab_t *sl)
{
	sl->prev = NULL;
	sl->next = f->partial;
	if (f->partial)
		f->partial->prev = sl;
	f->partial = sl;
}

static void *fixslab_alloc(fixalloc_t *f)
{
	fixslab_t *sl = f->partial;
	if (sl == NULL) {
		sl = os_map_aligned(FIXSLAB_SIZE, FIXSLAB_SIZE, 0);
		if (sl == NULL)
			return NULL;
		atomic_fetch_add_explicit(&persistent_total, FIXSLAB_SIZE, memory_order_relaxed);
		sl->cap = (uint32_t)((FIXSLAB_SIZE - FIXSLAB_HDR) / f->size);
		sl->nfree = sl->cap;
		fixslab_push(f, sl);
	}
	if (sl->released) {
		sl->released = false;
		atomic_fetch_sub_explicit(&fixslab_released, FIXSLAB_SIZE - FIXSLAB_KEEP_FROM,
		                          memory_order_relaxed);
	}
	void *p;
	if (sl->free != NULL) {
		p = sl->free;
		sl->free = *(void **)p;
	} else {
		p = (char *)sl + FIXSLAB_HDR + (size_t)sl->bump++ * f->size;
	}
	if (--sl->nfree == 0)
		fixslab_unlink(f, sl);
	memset(p, 0, f->size);
	f->inuse += f->size;
	return p;
}

static void fixslab_free(fixalloc_t *f, void *p)
{
	fixslab_t *sl = (fixslab_t *)((uintptr_t)p & ~(FIXSLAB_SIZE - 1));
	*(void **)p = sl->free;
	sl->free = p;
	if (sl->nfree++ == 0)
		fixslab_push(f, sl);
	f->inuse -= f->size;
}

size_t fixalloc_release_empty(fixalloc_t *f, unsigned keep)
{
	size_t released = 0;
	for (fixslab_t *sl = f->partial; sl != NULL; sl = sl->next) {
		if (sl->nfree != sl->cap || sl->released)
			continue;
		if (keep > 0) {
			keep--;
			continue;
		}
		os_unused((char *)sl + FIXSLAB_KEEP_FROM, FIXSLAB_SIZE - FIXSLAB_KEEP_FROM);
		sl->free = NULL; /* the links lived in the released pages */
		sl->bump = 0;
		sl->released = true;
		released += FIXSLAB_SIZE - FIXSLAB_KEEP_FROM;
	}
	atomic_fetch_add_explicit(&fixslab_released, released, memory_order_relaxed);
	return released;
}

void *fixalloc_alloc(fixalloc_t *f)
{
	if (f->slabs)
		return fixslab_alloc(f);
	void *p;
	if (f->list != NULL) {
		p = f->list;
		f->list = *(void **)p;
		memset(p, 0, f->size);
	} else {
		if (f->nchunk < f->size) {
			size_t n = 64 * f->size;
			if (n < 16384)
				n = 16384;
			f->chunk = persistent_alloc(n, 64);
			if (f->chunk == NULL)
				return NULL;
			f->nchunk = n;
		}
		p = f->chunk; /* persistent memory is already zero */
		f->chunk += f->size;
		f->nchunk -= f->size;
	}
	f->inuse += f->size;
	return p;
}

void fixalloc_free(fixalloc_t *f, void *p)
{
	if (f->slabs) {
		fixslab_free(f, p);
		return;
	}
	*(void **)p = f->list;
	f->list = p;
	f->inuse -= f->size;
}
