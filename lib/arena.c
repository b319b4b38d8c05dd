/*
 * arena.c -- 64 MiB heap arenas and the arena map (Go's heapArena,
 * mheap.sysAlloc and arenaHints in malloc.go).
 *
 * The heap grows in 4 MiB chunks (the page allocator's unit), not in whole
 * arenas: each growth maps only what mheap_grow asks for, right after the
 * previous range (MAP_FIXED_NOREPLACE at arena_hint, first 0xc000000000 as
 * in Go), so the heap is one contiguous range in the common case and a
 * large block can straddle arena boundaries (the page allocator does not
 * care about arenas).  If that address is taken, the kernel picks a
 * chunk-aligned range.  An arena's metadata (heap_arena_t) is registered
 * when a range first reaches into it; an arena may so be only partly
 * mapped, or mapped in pieces of different growths: its other pages are
 * never in the page allocator, and zeroed_base stays a safe bound (a page
 * below it is zeroed when handed out, whether or not it was before).  A
 * whole 64 MiB arena mapped at the first allocation put 64 MiB in every
 * process's address space (`ulimit -v`, docs/design.md).
 *
 * arena_map has one entry per possible arena of the address space mmap
 * uses (GM_ARENA_MAP_ADDR_BITS): span_of(p) = arena_map[p >> 26]->spans[
 * (p >> 13) & 8191], two dependent loads with no lock.  An entry is
 * published once (release store) after its heap_arena_t is initialised and
 * never changes again.
 *
 * Locks: arena_grow, arena_alloc_needzero and arena_first are called under
 * mheap.lock; arena_set_spans is called by whoever owns the pages (mheap
 * under its lock, or a thread cache for pages from its own page cache);
 * readers use acquire loads.
 */
#include "arena.h"

#include <string.h>

#include "fixalloc.h"
#include "mheap.h"
#include "os_linux.h"

/* In .bss: 16 MiB (x86-64) of address space the kernel backs only where an
 * entry is written (one 4 KiB page per 2 TiB of heap addresses).  A static
 * array saves free() one dependent load against a pointer to a mapping. */
heap_arena_t *_Atomic arena_map[GM_ARENA_L2_ENTRIES];

static uintptr_t arena_hint = (uintptr_t)0xc000000000ull;
static heap_arena_t *arena_list, *arena_list_tail;
static _Atomic size_t arena_mapped;

bool arena_init(void)
{
	return true;
}

uintptr_t arena_grow(size_t bytes)
{
	if (bytes == 0 || bytes % GM_CHUNK_SIZE != 0)
		return 0;
	void *p = os_map_aligned(bytes, GM_CHUNK_SIZE, arena_hint);
	if (p == NULL)
		return 0;
	uintptr_t base = (uintptr_t)p;
	if (base + bytes > ((uintptr_t)1 << GM_ARENA_MAP_ADDR_BITS) || base + bytes < base) {
		os_free(p, bytes);
		return 0;
	}
	/* Register the arenas the range reaches into that have no entry yet
	 * (the first of them may be registered by an earlier growth). */
	for (uintptr_t a = base & ~(uintptr_t)(GM_ARENA_SIZE - 1); a < base + bytes;
	     a += GM_ARENA_SIZE) {
		if (atomic_load_explicit(&arena_map[a >> GM_ARENA_SHIFT], memory_order_relaxed))
			continue;
		heap_arena_t *ha = persistent_alloc(sizeof *ha, 64);
		if (ha == NULL) {
			/* Arenas registered so far stay (their pages are never
			 * handed out); the range goes back whole. */
			os_free(p, bytes);
			return 0;
		}
		ha->base = a;
		ha->zeroed_base = 0;
		if (arena_list_tail)
			arena_list_tail->next = ha;
		else
			arena_list = ha;
		arena_list_tail = ha;
		atomic_store_explicit(&arena_map[a >> GM_ARENA_SHIFT], ha,
		                      memory_order_release);
	}
	os_name(p, bytes, "gomalloc heap");
	arena_hint = base + bytes;
	atomic_fetch_add_explicit(&arena_mapped, bytes, memory_order_relaxed);
	return base;
}

heap_arena_t *arena_first(void)
{
	return arena_list;
}

bool arena_alloc_needzero(uintptr_t base, size_t bytes, size_t *fresh)
{
	bool needzero = false;
	size_t nfresh = 0;
	uintptr_t end = base + bytes;
	while (base < end) {
		heap_arena_t *ha = arena_of(base);
		uintptr_t off = base - ha->base;
		uintptr_t arena_end = ha->base + GM_ARENA_SIZE;
		uintptr_t stop = end < arena_end ? end : arena_end;
		if (off < ha->zeroed_base)
			needzero = true;
		if (stop - ha->base > ha->zeroed_base) {
			uintptr_t from = off > ha->zeroed_base ? off : ha->zeroed_base;
			nfresh += (stop - ha->base) - from;
			ha->zeroed_base = stop - ha->base;
		}
		base = stop;
	}
	if (fresh != NULL)
		*fresh = nfresh;
	return needzero;
}

size_t arena_mapped_bytes(void)
{
	return atomic_load_explicit(&arena_mapped, memory_order_relaxed);
}

void arena_set_spans(uintptr_t base, size_t npages, struct mspan *s)
{
	for (size_t i = 0; i < npages; i++) {
		uintptr_t p = base + (i << GM_PAGE_SHIFT);
		heap_arena_t *ha = arena_of(p);
		atomic_store_explicit(
		    &ha->spans[(p >> GM_PAGE_SHIFT) & (GM_PAGES_PER_ARENA - 1)],
		    s, memory_order_release);
	}
}
