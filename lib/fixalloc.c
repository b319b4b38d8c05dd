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
	return atomic_load_explicit(&persistent_total, memory_order_relaxed);
}

void fixalloc_init(fixalloc_t *f, size_t size)
{
	memset(f, 0, sizeof *f);
	f->size = (size + 15) & ~(size_t)15;
}

void *fixalloc_alloc(fixalloc_t *f)
{
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
	*(void **)p = f->list;
	f->list = p;
	f->inuse -= f->size;
}
