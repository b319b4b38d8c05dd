/*
 * override.c -- the exported symbol set: the C library's malloc family,
 * glibc's __libc_* aliases, C23 free_sized, the malloc.h introspection
 * functions and the gm_* extension API.  Everything else in the library is
 * hidden (-fvisibility=hidden); tests/api checks `nm -D`.
 *
 * Each function is a thin shell over malloc.c; malloc and free inline the
 * fast paths of malloc_impl.h so the exported symbol itself is the fast path.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

#include <gomalloc.h>

#include "malloc_impl.h"
#include "mheap.h"
#include "scavenge.h"
#include "stats.h"

/* malloc starts a 64-byte line and free follows it (at +0xb0, 48 bytes into
 * a line): the layout every benchmark of 2026-11-26/27 measured.  Without
 * the pin, any change that grows the library's cold code before .text moves
 * both, and on the test VM a move by 48 bytes made most pair rows 2-47%
 * slower (docs/design.md, "Code placement"). */
GM_EXPORT GM_ALIGNED(64) void *malloc(size_t size)
{
	return gm_alloc(size, 0);
}

GM_EXPORT void free(void *p)
{
	gm_free(p);
}

GM_EXPORT void *calloc(size_t nmemb, size_t size)
{
	return gm_calloc_fast(nmemb, size, 0);
}

GM_EXPORT void *realloc(void *p, size_t size)
{
	return gm_realloc(p, size);
}

GM_EXPORT void *reallocarray(void *p, size_t nmemb, size_t size)
{
	return gm_reallocarray(p, nmemb, size);
}

/* posix_memalign starts a line, as before calloc's fast path was inlined
 * (which grew calloc by 240 bytes): so the aligned fast paths keep the
 * offsets in their lines that every figure before 2026-11-27 12:00
 * measured (docs/design.md, "Code placement"). */
GM_EXPORT GM_ALIGNED(64) int posix_memalign(void **memptr, size_t align, size_t size)
{
	/* below sizeof(void *) is EINVAL here, the slow path reports it */
	if (LIKELY(align >= sizeof(void *))) {
		void *p = gm_alloc_aligned_fast(align, size);
		if (LIKELY(p != NULL)) {
			*memptr = p;
			return 0;
		}
	}
	return gm_posix_memalign(memptr, align, size);
}

GM_EXPORT void *aligned_alloc(size_t align, size_t size)
{
	return gm_aligned_alloc(align, size);
}

GM_EXPORT void *memalign(size_t align, size_t size)
{
	return gm_aligned_alloc(align, size);
}

/* valloc starts a line so that everything linked after it keeps its
 * offset in a 64-byte line when the aligned fast paths above change size
 * (they grew by 736 bytes, 32 mod 64, on 2026-11-27): docs/design.md, "Code
 * placement". */
GM_EXPORT GM_ALIGNED(64) void *valloc(size_t size)
{
	return gm_valloc(size);
}

GM_EXPORT void *pvalloc(size_t size)
{
	return gm_pvalloc(size);
}

GM_EXPORT size_t malloc_usable_size(void *p)
{
	return gm_usable_size(p, "malloc_usable_size");
}

GM_EXPORT void free_sized(void *p, size_t size)
{
	(void)size;
	gm_free(p);
}

GM_EXPORT void free_aligned_sized(void *p, size_t align, size_t size)
{
	(void)align;
	(void)size;
	gm_free(p);
}

GM_EXPORT int malloc_trim(size_t pad)
{
	return gm_malloc_trim(pad);
}

GM_EXPORT int mallopt(int param, int value)
{
	return gm_mallopt(param, value);
}

GM_EXPORT struct mallinfo2 mallinfo2(void)
{
	struct mallinfo2 mi;
	stats_mallinfo2(&mi);
	return mi;
}

static int clamp_int(size_t v)
{
	return v > (size_t)0x7fffffff ? 0x7fffffff : (int)v;
}

GM_EXPORT struct mallinfo mallinfo(void)
{
	struct mallinfo2 m2;
	struct mallinfo mi;
	stats_mallinfo2(&m2);
	mi.arena = clamp_int(m2.arena);
	mi.ordblks = clamp_int(m2.ordblks);
	mi.smblks = clamp_int(m2.smblks);
	mi.hblks = clamp_int(m2.hblks);
	mi.hblkhd = clamp_int(m2.hblkhd);
	mi.usmblks = clamp_int(m2.usmblks);
	mi.fsmblks = clamp_int(m2.fsmblks);
	mi.uordblks = clamp_int(m2.uordblks);
	mi.fordblks = clamp_int(m2.fordblks);
	mi.keepcost = clamp_int(m2.keepcost);
	return mi;
}

GM_EXPORT void malloc_stats(void)
{
	stats_malloc_stats();
}

GM_EXPORT int malloc_info(int options, FILE *fp)
{
	return stats_malloc_info(options, fp);
}

/* glibc's internal names, used by some programs and by libc itself. */
GM_EXPORT void *__libc_malloc(size_t size) { return gm_alloc(size, 0); }
GM_EXPORT void __libc_free(void *p) { gm_free(p); }
GM_EXPORT void *__libc_calloc(size_t n, size_t size) { return gm_calloc(n, size, 0); }
GM_EXPORT void *__libc_realloc(void *p, size_t size) { return gm_realloc(p, size); }
GM_EXPORT void *__libc_memalign(size_t align, size_t size)
{
	return gm_aligned_alloc_checked(align, size, 0);
}
GM_EXPORT void *__libc_valloc(size_t size) { return gm_valloc(size); }
GM_EXPORT void *__libc_pvalloc(size_t size) { return gm_pvalloc(size); }
GM_EXPORT int __posix_memalign(void **memptr, size_t align, size_t size)
{
	return gm_posix_memalign(memptr, align, size);
}
/* cfree: gone from glibc's headers since 2.26, still in libc.so as the
 * compat symbol cfree@GLIBC_2.2.5 that binaries linked before then call.
 * Without this definition such a call reached glibc's free with our block
 * and the program aborted ("free(): invalid pointer"); mimalloc and
 * tcmalloc define it too (docs/design.md, "cfree"). */
void cfree(void *p);
GM_EXPORT void cfree(void *p) { gm_free(p); }

/* ---- the gm_* extension API (include/gomalloc.h) ---- */

GM_EXPORT void *gm_malloc_noscan(size_t size)
{
	return gm_alloc(size, 1);
}

GM_EXPORT void *gm_calloc_noscan(size_t nmemb, size_t size)
{
	return gm_calloc(nmemb, size, 1);
}

GM_EXPORT void *gm_aligned_alloc_noscan(size_t align, size_t size)
{
	return gm_aligned_alloc_checked(align, size, 1);
}

GM_EXPORT int gm_kind_of(const void *p)
{
	if (p == NULL)
		return -1;
	mspan_t *s = arena_span_of((uintptr_t)p);
	if (s == NULL || atomic_load_explicit(&s->state, memory_order_relaxed) != SPAN_INUSE)
		return -1;
	uintptr_t off = (uintptr_t)p - s->base;
	if (mspan_is_large(s)) {
		if (off != 0)
			return -1;
	} else {
		uint32_t idx = sizeclass_objindex(s->divmagic, off);
		if ((uintptr_t)idx * s->elemsize != off || !mspan_obj_live(s, idx))
			return -1;
	}
	return spanclass_noscan(s->spanclass) ? GM_KIND_NOSCAN : GM_KIND_SCAN;
}

GM_EXPORT int gm_heap_walk(gm_walk_fn callback, void *arg)
{
	return mheap_heap_walk(callback, arg);
}

GM_EXPORT size_t gm_scavenge(size_t bytes)
{
	if (!gm_ensure_init())
		return 0;
	if (bytes == 0) {
		size_t before = atomic_load(&mheap.scavenged_total);
		gm_malloc_trim(0);
		return atomic_load(&mheap.scavenged_total) - before;
	}
	return mheap_scavenge(bytes, false);
}

GM_EXPORT int gm_stats(gm_stats_t *out)
{
	stats_snapshot_t snap;
	mheap_stats_snapshot(&snap);
	*out = snap.g;
	out->memory_limit = scavenge_memory_limit();
	return 0;
}

GM_EXPORT const char *gm_version(void)
{
	return "gomalloc 0.1.0";
}

/* For override_cxx.cc (hidden): operator new's allocation, 0 = no alignment. */
void *gm_cxx_alloc(size_t size, size_t align)
{
	if (align <= 16)
		return gm_alloc(size, 0);
	return gm_aligned_alloc_checked(align, size, 0);
}

void gm_cxx_free(void *p)
{
	gm_free(p);
}
