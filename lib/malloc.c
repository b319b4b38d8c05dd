/*
 * malloc.c -- the public entry points built on the layers (Go's malloc.go):
 * initialisation, the slow paths of malloc and free, large blocks, calloc,
 * realloc, aligned allocation, usable size, trim, and bad-input handling.
 *
 * One malloc(40), walked through the layers:
 *   1. override.c's malloc -> gm_alloc (malloc.h, inline): sizeclass_of(40)
 *      = class 5 (48 bytes), span class 5<<1|0 = 10 (scan).
 *   2. mcache_alloc_fast (mcache_inline.h): the thread's current span for
 *      class 10; ctz of its free map's word cache_word gives the next free
 *      slot; clear its bit; return base + idx*48.  No lock, no atomic.
 *   3. When that word runs out: gm_alloc_slow -> mcache_refill_alloc
 *      (mcache.c): a later word, else sweep the span (fold in remote frees),
 *      else an owned partial span, else mcentral_cache_span (mcentral.c),
 *      else mheap_alloc_span (mheap.c): the thread's page cache or, under
 *      mheap.lock, pagealloc_alloc (pagealloc.c); when that is out of room,
 *      arena_grow (arena.c) maps 4 MiB chunks more via os_linux.c.
 * One free(p):
 *   1. gm_free -> mcache_free_fast: span_of(p) = arena_map[p>>26]->spans
 *      [(p>>13)&8191]; if this thread owns the span: check p is an object
 *      start of an object that exists and its free-map bit is clear
 *      (allocated), set that bit (plain store).  Done.
 *   2. Otherwise gm_free_slow: a large block goes to the thread's large
 *      cache or back to mheap; a small object of another thread's span gets
 *      its bit set in remote_bits with one atomic OR; anything else is a
 *      bad pointer: one line on stderr, then abort (abort_on_error).
 *
 * Bootstrap: gm_init_slow runs on the first allocation of the process
 * (under gm_init_lock); it reads options by scanning environ (no getenv),
 * reserves the arena map and page-allocator summaries, creates the
 * thread-exit key and registers fork handlers.  Allocations made by libc
 * while we initialise (pthread_atfork, dlsym -> calloc) are served from a
 * small static bootstrap buffer; free() of such a block is ignored.
 *
 * Errors: sizes above PTRDIFF_MAX or overflowing products return NULL with
 * errno ENOMEM; an OS that refuses memory gives NULL/ENOMEM, never a crash.
 */
#define _GNU_SOURCE
#include "malloc_impl.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "lock.h"
#include "mcentral.h"
#include "message.h"
#include "mheap.h"
#include "options.h"
#include "os_linux.h"
#include "scavenge.h"
#include "stats.h"

extern char **environ;

_Atomic int gm_initialized;
static gm_mutex_t gm_init_lock = GM_MUTEX_INIT(LOCKRANK_INIT);
static __thread bool gm_in_init __attribute__((tls_model("initial-exec")));
static bool gm_init_failed;

/* ---- bootstrap buffer: allocations made while we initialise ---- */
#define BOOT_SIZE (64 * 1024)
static char gm_boot_buf[BOOT_SIZE] GM_ALIGNED(4096);
static _Atomic size_t gm_boot_used;

static void *gm_boot_alloc(size_t size, size_t align)
{
	if (align < 16)
		align = 16;
	if (size > BOOT_SIZE)
		return NULL;
	size_t need = (size + 15) & ~(size_t)15;
	size_t old = atomic_load(&gm_boot_used);
	for (;;) {
		size_t start = (old + 16 + align - 1) & ~(align - 1);
		if (start + need > BOOT_SIZE)
			return NULL;
		if (atomic_compare_exchange_weak(&gm_boot_used, &old, start + need)) {
			*(size_t *)(gm_boot_buf + start - 16) = size;
			return gm_boot_buf + start;
		}
	}
}

static inline bool gm_is_boot(const void *p)
{
	return (const char *)p >= gm_boot_buf && (const char *)p < gm_boot_buf + BOOT_SIZE;
}

/* Size of a bootstrap or degraded-mode block: both allocators store the
 * requested size 16 bytes before the block. */
static size_t gm_boot_size(const void *p)
{
	return *(const size_t *)((const char *)p - 16);
}

/* ---- degraded mode: the child of a fork from a signal handler ----
 *
 * When fork() runs in a signal handler that interrupted this thread inside
 * the allocator (gm_fork_nolock), the child inherits a heap that may be
 * half-updated (page-allocator summaries, span lists).  Such a child gets a
 * bump allocator over fresh mappings instead: it never touches the old
 * heap, frees are ignored (it is expected to exec or _exit soon), and
 * realloc copies.  Slow paths only test gm_degraded; the fast paths fail
 * into them because the child's thread cache is reset to mcache_empty. */
static void *gm_enomem(void);
static bool gm_degraded;
static char *gm_deg_chunk;                  /* current chunk */
static size_t gm_deg_used, gm_deg_cap;
#define DEG_CHUNK ((size_t)1 << 20)

typedef struct deg_chunk {
	struct deg_chunk *next;
	size_t size;
} deg_chunk_t;
static deg_chunk_t *gm_deg_chunks;

COLD static void *gm_degraded_alloc(size_t size, size_t align)
{
	if (align < 16)
		align = 16;
	if (size > (size_t)PTRDIFF_MAX - align - 64)
		return gm_enomem();
	size_t off = (gm_deg_used + 16 + align - 1) & ~(align - 1);
	if (gm_deg_chunk == NULL || off + size > gm_deg_cap) {
		size_t want = size + align + 64 > DEG_CHUNK ? size + align + 64 : DEG_CHUNK;
		want = (want + GM_OS_PAGE_SIZE - 1) & ~(size_t)(GM_OS_PAGE_SIZE - 1);
		deg_chunk_t *ch = os_alloc(want);
		if (ch == NULL)
			return gm_enomem();
		ch->size = want;
		ch->next = gm_deg_chunks;
		gm_deg_chunks = ch;
		gm_deg_chunk = (char *)ch;
		gm_deg_cap = want;
		gm_deg_used = sizeof *ch;
		off = (gm_deg_used + 16 + align - 1) & ~(align - 1);
	}
	char *p = gm_deg_chunk + off;
	*(size_t *)(p - 16) = size;
	gm_deg_used = off + size;
	return p; /* fresh mapping: zero */
}

static bool gm_degraded_owns(const void *p)
{
	for (deg_chunk_t *ch = gm_deg_chunks; ch != NULL; ch = ch->next)
		if ((const char *)p > (const char *)ch && (const char *)p < (const char *)ch + ch->size)
			return true;
	return false;
}

/* ---- initialisation and fork ---- */

/* fork() from a signal handler that interrupted this thread while it held
 * an allocator lock: take none (see lock.h); the child re-initialises. */
static __thread bool gm_fork_nolock __attribute__((tls_model("initial-exec")));

/* glibc's stdio list lock (exported, recursive).  glibc's fork() takes it
 * only after the atfork prepare handlers ran, and a thread in fflush(NULL)
 * holds it while it waits for a FILE lock whose holder may be in malloc
 * (getline growing its buffer): had prepare already taken the allocator
 * locks, those three threads would deadlock.  So prepare takes the list
 * lock first, as glibc orders its own malloc locks after it.  Weak: absent
 * from other C libraries. */
extern void _IO_list_lock(void) __attribute__((weak));
extern void _IO_list_unlock(void) __attribute__((weak));
extern void _IO_list_resetlock(void) __attribute__((weak));

static void gm_fork_prepare(void)
{
	if (!atomic_load(&gm_initialized))
		return;
	gm_fork_nolock = gm_locks_held > 0;
	if (gm_fork_nolock)
		return;
	if (_IO_list_lock != NULL)
		_IO_list_lock();
	gm_mutex_lock(&gm_init_lock);
	scavenge_fork_prepare();
	mcentral_fork_prepare();
	mheap_fork_prepare();
}

static void gm_fork_parent(void)
{
	if (!atomic_load(&gm_initialized) || gm_fork_nolock)
		return;
	mheap_fork_parent();
	mcentral_fork_parent();
	scavenge_fork_parent();
	gm_mutex_unlock(&gm_init_lock);
	if (_IO_list_unlock != NULL)
		_IO_list_unlock();
}

static void gm_fork_child(void)
{
	if (!atomic_load(&gm_initialized))
		return;
	persistent_atfork_child();
	mheap_fork_child();
	mcentral_fork_child();
	scavenge_fork_child();
	gm_mutex_init(&gm_init_lock, LOCKRANK_INIT);
	/* one thread now: glibc resets the list lock itself only when the
	 * parent had several threads, so reset it here in every case */
	if (_IO_list_resetlock != NULL)
		_IO_list_resetlock();
	/* the locks prepare took are gone; those of an interrupted frame (the
	 * nolock case) will be released when that frame resumes */
	gm_locks_held = gm_fork_nolock ? gm_locks_held : 0;
	mcache_fork_child();
	if (gm_fork_nolock) {
		gm_degraded = true;
		mcache_tls = &mcache_empty;
	}
}

static void gm_atexit_report(void)
{
	stats_print_report(2);
}

bool gm_init_slow(void)
{
	if (gm_in_init)
		return false;
	gm_mutex_lock(&gm_init_lock);
	if (atomic_load(&gm_initialized) || gm_init_failed) {
		gm_mutex_unlock(&gm_init_lock);
		return !gm_init_failed;
	}
	gm_in_init = true;
	gm_cpu_init();
	options_init(environ);
	sizeclass_init(gm_opt.min_align);
	os_set_madv_free(gm_opt.madvise == GM_MADVISE_FREE);
	mcentral_init();
	if (!mheap_init()) {
		gm_init_failed = true;
		gm_in_init = false;
		gm_mutex_unlock(&gm_init_lock);
		return false;
	}
	mcache_global_init();
	scavenge_init();
	pthread_atfork(gm_fork_prepare, gm_fork_parent, gm_fork_child);
	if (gm_opt.stats_print)
		atexit(gm_atexit_report);
	atomic_store_explicit(&gm_initialized, 1, memory_order_release);
	gm_in_init = false;
	gm_mutex_unlock(&gm_init_lock);
	return true;
}

/* ---- errors ---- */

COLD static void gm_bad_pointer(const char *call, const void *p, const char *what)
{
	gm_message("%s(%p): %s", call, p, what);
	if (gm_opt.abort_on_error)
		abort();
}

/* ---- allocation ---- */

COLD static void *gm_enomem(void)
{
	errno = ENOMEM;
	return NULL;
}

static void *gm_alloc_large_from(mcache_t *c, mspan_t *s, size_t size, size_t npages,
                                 int noscan, size_t align, bool zero);

/* ---- calloc of a large block that may be dirty: memset or MADV_DONTNEED ----
 *
 * A reused large block must be cleared for calloc.  memset costs ~0.09 us
 * a 4 KiB page here (1 MiB: 23 us); MADV_DONTNEED costs ~0.3 us a call,
 * then ~1.1 us a page the program touches (the fault and the kernel's own
 * clearing).  So memset wins unless the program touches fewer than ~1 page
 * in 12 -- a calloc'd table or bitmap it fills sparsely, as numpy.zeros
 * and hash tables do; jemalloc always takes MADV_DONTNEED, glibc gives a
 * fresh mapping (both lazy), mimalloc and tcmalloc memset.  We measure:
 * every so often a block is cleared with MADV_DONTNEED (a probe, span
 * zero_probe = 1), and its free counts the pages it has resident
 * (mincore).  Few resident: the program is sparse, and large callocs take
 * MADV_DONTNEED from then on (1 block in LZ_SAMPLE still probed, so a
 * change back is seen); many: memset, with probes every LZ_FIRST,
 * 2 * LZ_FIRST, ... up to every LZ_MAX-th call (the period doubles with
 * each probe made, answered or not; a dense program pays one probe's
 * faults, ~250 us a MiB, per LZ_MAX callocs: under 1%).
 * Correctness never depends on the guess: both ways clear the block (a
 * page mincore calls absent may be swapped out, so "none resident" is
 * not taken as "still zero").  The state is global, read and written
 * with relaxed loads and stores (a lost update only moves a probe). */
#define LZ_MIN_BYTES ((size_t)256 << 10) /* below: memset (a call's cost) */
#define LZ_FIRST 4u
#define LZ_MAX 1024u
#define LZ_SAMPLE 8u
#define LZ_SPARSE 16u /* sparse: at most 1 OS page in LZ_SPARSE resident */
static _Atomic unsigned lz_calls;               /* large dirty callocs */
static _Atomic unsigned lz_every = LZ_FIRST;    /* probe period; 0: sparse mode */

static void gm_zero_large(mspan_t *s, size_t size)
{
	s->zero_probe = 0;
	if (size >= LZ_MIN_BYTES) {
		unsigned n = atomic_load_explicit(&lz_calls, memory_order_relaxed) + 1;
		atomic_store_explicit(&lz_calls, n, memory_order_relaxed);
		unsigned every = atomic_load_explicit(&lz_every, memory_order_relaxed);
		bool lazy = every == 0 || n % every == 0;
		if (lazy && every != 0 && every < LZ_MAX)
			/* the period doubles with every probe made, answered or
			 * not: a program that keeps its probed blocks pays for
			 * log2 of its calls, then 1 in LZ_MAX */
			atomic_store_explicit(&lz_every, every * 2, memory_order_relaxed);
		if (lazy && os_zero((void *)s->base, s->npages << GM_PAGE_SHIFT)) {
			s->zero_probe = every != 0 || n % LZ_SAMPLE == 0;
			return;
		}
	}
	memset((void *)s->base, 0, size);
}

/* The free of a block gm_zero_large probed: was it used sparsely? */
static NOINLINE void gm_zero_probe_report(mspan_t *s)
{
	s->zero_probe = 0;
	size_t bytes = s->npages << GM_PAGE_SHIFT;
	size_t limit = bytes / GM_OS_PAGE_SIZE / LZ_SPARSE;
	size_t resident = os_resident_pages((void *)s->base, bytes, limit + 1);
	if (resident == SIZE_MAX)
		return;
	unsigned every = atomic_load_explicit(&lz_every, memory_order_relaxed);
	if (resident <= limit)
		atomic_store_explicit(&lz_every, 0, memory_order_relaxed); /* sparse */
	else if (every == 0)
		atomic_store_explicit(&lz_every, LZ_FIRST, memory_order_relaxed); /* dense again */
	/* dense in memset mode: the period doubled when the probe was made */
}

static void *gm_alloc_large(size_t size, int noscan, size_t align, bool zero)
{
	if (size > (size_t)PTRDIFF_MAX - GM_PAGE_SIZE)
		return gm_enomem();
	if (UNLIKELY(gm_degraded))
		return gm_degraded_alloc(size, align);
	size_t npages = (size + GM_PAGE_SIZE - 1) >> GM_PAGE_SHIFT;
	if (npages == 0)
		npages = 1;
	mcache_t *c = mcache_get();
	mspan_t *s = NULL;
	if (c != NULL && align <= GM_PAGE_SIZE)
		s = mcache_large_take(c, npages);
	return gm_alloc_large_from(c, s, size, npages, noscan, align, zero);
}

/* gm_alloc_large after the thread's large cache was asked: s is what it
 * gave (NULL: a new span from the heap). */
static void *gm_alloc_large_from(mcache_t *c, mspan_t *s, size_t size, size_t npages,
                                 int noscan, size_t align, bool zero)
{
	if (s == NULL && npages > MCACHE_LARGE_MAX_BLOCK >> GM_PAGE_SHIFT &&
	    align <= GM_PAGE_SIZE)
		s = mheap_huge_take(c, npages); /* a block the thread caches do not keep */
	if (s == NULL) {
		s = mheap_alloc_span(c, npages, spanclass_make(0, noscan), align);
		if (s == NULL && c != NULL && c->live && c->nlarge > 0) {
			/* out of memory: blocks kept for reuse serve this size */
			mcache_release_large(c);
			s = mheap_alloc_span(c, npages, spanclass_make(0, noscan), align);
		}
		if (s == NULL)
			return gm_enomem();
		scavenge_note_growth();
	} else {
		s->spanclass = spanclass_make(0, noscan);
	}
	if (zero && s->needzero)
		gm_zero_large(s, size);
	return (void *)s->base;
}

void *gm_alloc_class_slow(spanclass_t spc)
{
	/* The common case first: a live thread cache (which implies
	 * initialised, not initialising, not a degraded fork child) only needs
	 * refilling. */
	mcache_t *c = mcache_tls;
	if (LIKELY(c->live)) {
		void *p = mcache_refill_next_word(c, spc);
		if (p != NULL)
			return p;
	} else {
		if (UNLIKELY(gm_in_init))
			return gm_boot_alloc(sizeclass_size[spanclass_sizeclass(spc)], 16);
		if (UNLIKELY(gm_degraded))
			return gm_degraded_alloc(sizeclass_size[spanclass_sizeclass(spc)], 16);
		if (!gm_ensure_init())
			return gm_enomem();
		c = mcache_get(); /* a new cache: every class empty, so refill */
		if (c == NULL)
			return gm_enomem();
	}
	void *p = mcache_refill_alloc(c, spc);
	if (p == NULL)
		return gm_enomem();
	scavenge_maybe_start();
	return p;
}

/* gm_alloc_slow's cases after the large cache: a thread or process that
 * is not set up (bootstrap, first use, degraded fork child), a small size
 * without a live cache, a large block from the heap. */
static NOINLINE void *gm_alloc_slow_rest(size_t size, int noscan)
{
	if (UNLIKELY(gm_in_init))
		return gm_boot_alloc(size, 16);
	if (UNLIKELY(!gm_ensure_init()))
		return gm_in_init ? gm_boot_alloc(size, 16) : gm_enomem();
	if (UNLIKELY(gm_degraded))
		return gm_degraded_alloc(size, 16);
	if (size <= GM_MAX_SMALL_SIZE)
		return gm_alloc_class_slow(spanclass_make(sizeclass_of(size), noscan));
	void *p = gm_alloc_large(size, noscan, 0, false);
	if (p != NULL)
		scavenge_maybe_start();
	return p;
}

/* A large block after the thread's large cache was asked (and had none
 * of its size): from the heap, without asking the cache again. */
static NOINLINE void *gm_alloc_large_heap(size_t size, int noscan)
{
	size_t npages = (size + GM_PAGE_SIZE - 1) >> GM_PAGE_SHIFT;
	void *p = gm_alloc_large_from(mcache_tls, NULL, size, npages, noscan, 0, false);
	if (p != NULL)
		scavenge_maybe_start();
	return p;
}

/* gm_alloc_slow's other cases, out of line so that the refill's tail call
 * above keeps a function with no register saves (+14 instructions a small
 * slow allocation when this was inline: pareto under callgrind); the
 * large cache first, in a function of its own that saves few registers
 * (gm_alloc_slow_rest has the rest). */
static NOINLINE void *gm_alloc_slow_other(size_t size, int noscan)
{
	/* A large block the thread's cache holds: a cache with a block in it
	 * is live (initialised; the static empty cache holds none), so none
	 * of the checks of gm_alloc_slow_rest applies but the degraded fork
	 * child's. */
	mcache_t *c = mcache_tls;
	if (size > GM_MAX_SMALL_SIZE && size <= MCACHE_LARGE_MAX_BLOCK && c->nlarge != 0 &&
	    LIKELY(!gm_degraded)) {
		mspan_t *s = mcache_large_take(c, (size + GM_PAGE_SIZE - 1) >> GM_PAGE_SHIFT);
		if (LIKELY(s != NULL)) {
			s->spanclass = spanclass_make(0, noscan);
			void *p = (void *)s->base;
			scavenge_maybe_start();
			return p;
		}
		/* (few values kept across the call above: the miss computes
		 * the cache and the page count again) */
		return gm_alloc_large_heap(size, noscan);
	}
	if (size > MCACHE_LARGE_MAX_BLOCK && size <= (size_t)PTRDIFF_MAX - GM_PAGE_SIZE &&
	    c->live && LIKELY(!gm_degraded)) {
		/* a block the thread caches do not keep: the heap's huge slot */
		mspan_t *s = mheap_huge_take(c, (size + GM_PAGE_SIZE - 1) >> GM_PAGE_SHIFT);
		if (s != NULL) {
			s->spanclass = spanclass_make(0, noscan);
			scavenge_maybe_start();
			return (void *)s->base;
		}
		return gm_alloc_large_heap(size, noscan);
	}
	return gm_alloc_slow_rest(size, noscan);
}

void *gm_alloc_slow(size_t size, int noscan)
{
	/* A small size with a live thread cache: straight to the refill (the
	 * checks in gm_alloc_slow_other are for large sizes and for a thread
	 * or process that is not set up). */
	if (LIKELY(size <= GM_MAX_SMALL_SIZE && mcache_tls->live))
		return gm_alloc_class_slow(spanclass_make(sizeclass_of(size), noscan));
	return gm_alloc_slow_other(size, noscan);
}

void *gm_alloc_aligned(size_t align, size_t size, int noscan)
{
	if (align <= 8 || (align <= 16 && size > 8 && gm_opt.min_align >= 16))
		return gm_alloc(size, noscan);
	if (UNLIKELY(gm_in_init))
		return gm_boot_alloc(size, align);
	if (!gm_ensure_init())
		return gm_enomem();
	if (UNLIKELY(gm_degraded))
		return gm_degraded_alloc(size, align);
	if (align <= GM_PAGE_SIZE) {
		size_t want = size < align ? align : size;
		unsigned cls = sizeclass_for_aligned(want, align);
		if (cls != 0) {
			spanclass_t spc = spanclass_make(cls, noscan);
			void *p = mcache_alloc_fast(mcache_tls, spc);
			return p != NULL ? p : gm_alloc_class_slow(spc);
		}
		return gm_alloc_large(want, noscan, 0, false);
	}
	return gm_alloc_large(size == 0 ? 1 : size, noscan, align, false);
}

/* Span of a block handed to free/realloc/usable_size, or NULL after
 * reporting the error (NULL also for bootstrap blocks, *boot set).
 * Inline: as a call it cost gm_free_slow 21 instructions a large free and
 * 27 a free of another thread's block (callgrind). */
static ALWAYS_INLINE mspan_t *gm_checked_span(const void *p, const char *call, bool *boot)
{
	*boot = false;
	mspan_t *s = arena_span_of((uintptr_t)p);
	if (UNLIKELY(s == NULL)) {
		if (gm_is_boot(p)) {
			*boot = true;
			return NULL;
		}
		gm_bad_pointer(call, p, "invalid pointer (not allocated by gomalloc)");
		return NULL;
	}
	uint8_t state = atomic_load_explicit(&s->state, memory_order_relaxed);
	uintptr_t off = (uintptr_t)p - s->base;
	if (mspan_is_large(s)) {
		if (off != 0) {
			gm_bad_pointer(call, p, "invalid pointer (inside a block)");
			return NULL;
		}
		if (state != SPAN_INUSE) {
			gm_bad_pointer(call, p, "double free (block already freed)");
			return NULL;
		}
		return s;
	}
	uint32_t idx = sizeclass_objindex(s->divmagic, off);
	if ((uintptr_t)idx * s->elemsize != off || idx >= s->nelems) {
		gm_bad_pointer(call, p, "invalid pointer (inside a block)");
		return NULL;
	}
	return s;
}

void gm_free_slow(void *p, const char *call)
{
	if (p == NULL)
		return; /* free(NULL): the fast path sends it here (no arena at 0) */
	if (UNLIKELY(gm_degraded))
		return; /* the old heap may be inconsistent: leak */
	bool boot;
	mspan_t *s = gm_checked_span(p, call, &boot);
	if (s == NULL)
		return;
	mcache_t *c = mcache_tls;
	if (mspan_is_large(s)) {
		if (UNLIKELY(s->zero_probe))
			gm_zero_probe_report(s);
		mcache_large_free(c, s);
		return;
	}
	uintptr_t off = (uintptr_t)p - s->base;
	uint32_t idx = sizeclass_objindex(s->divmagic, off);
	uint64_t bit = 1ull << (idx & 63);
	mcache_t *owner = atomic_load_explicit(&s->owner, memory_order_relaxed);
	if (owner == c) {
		/* the fast path refused an object start whose free-map bit is
		 * set: freed already, or never handed out since the slot was */
		gm_bad_pointer(call, p, "double free (block is free)");
		return;
	}
	/* another thread's or mcentral's span: a block its holder shows free
	 * (freed by the owner, or never handed out) is a double free too; the
	 * read races with the holder's allocations, but never on this bit
	 * while the block is really allocated */
	if (UNLIKELY(__atomic_load_n(&mspan_free_map(s)[idx >> 6], __ATOMIC_RELAXED) & bit)) {
		gm_bad_pointer(call, p, "double free (block is free)");
		return;
	}
	if (!atomic_load_explicit(&mspan_remote_seen, memory_order_relaxed))
		atomic_store_explicit(&mspan_remote_seen, true, memory_order_relaxed);
	/* the remote word's address from line 1 (s->remote_bits is on line 0) */
	uint64_t old = atomic_fetch_or_explicit(&mspan_remote_bits_at(s)[idx >> 6], bit,
	                                        memory_order_release);
	if (UNLIKELY(old & bit))
		gm_bad_pointer(call, p, "double free (block already freed)");
	else if (owner == NULL)
		mcentral_note_remote(s->spanclass); /* nobody would sweep it */
}

/* realloc and malloc_usable_size of a small block: is it live?  (free
 * finds out on its own paths.)  Other threads' bitmaps are read without a
 * lock: a block the caller really owns reads as live in every state the
 * owner's allocations and sweeps pass through. */
static bool gm_check_live(mspan_t *s, const void *p, const char *call)
{
	uint32_t idx = sizeclass_objindex(s->divmagic, (uintptr_t)p - s->base);
	if (LIKELY(mspan_obj_live(s, idx)))
		return true;
	uint64_t bit = 1ull << (idx & 63);
	bool freed = (__atomic_load_n(&mspan_free_map(s)[idx >> 6], __ATOMIC_RELAXED) & bit) ||
	             (atomic_load_explicit(&s->remote_bits[idx >> 6], memory_order_relaxed) & bit);
	gm_bad_pointer(call, p, freed ? "invalid pointer (block is free)"
	                              : "invalid pointer (block not allocated)");
	return false;
}

size_t gm_usable_size(const void *p, const char *call)
{
	if (p == NULL)
		return 0;
	if (UNLIKELY(gm_degraded) && gm_degraded_owns(p))
		return gm_boot_size(p);
	bool boot;
	mspan_t *s = gm_checked_span(p, call, &boot);
	if (s == NULL)
		return boot ? gm_boot_size(p) : 0;
	if (mspan_is_large(s))
		return s->npages << GM_PAGE_SHIFT;
	if (!gm_check_live(s, p, call))
		return 0;
	return s->elemsize;
}

void *gm_calloc(size_t nmemb, size_t size, int noscan)
{
	size_t total;
	if (UNLIKELY(__builtin_mul_overflow(nmemb, size, &total) ||
	             total > (size_t)PTRDIFF_MAX))
		return gm_enomem();
	if (total > GM_MAX_SMALL_SIZE) {
		if (UNLIKELY(gm_in_init))
			return gm_boot_alloc(total, 16); /* static: zero */
		if (!gm_ensure_init())
			return gm_enomem();
		void *p = gm_alloc_large(total, noscan, 0, true);
		if (p != NULL)
			scavenge_maybe_start();
		return p;
	}
	return gm_calloc_small(total, noscan);
}

/* calloc of a small block that malloc's fast path could not give (a refill,
 * or a cache not made yet). */
void *gm_calloc_small_slow(size_t total, int noscan)
{
	void *p = gm_alloc_slow(total, noscan);
	if (p == NULL || gm_is_boot(p) || UNLIKELY(gm_degraded))
		return p; /* boot and degraded memory is never reused: zero */
	mspan_t *s = arena_span_of((uintptr_t)p);
	if (s->needzero)
		memset(p, 0, total);
	return p;
}

void *gm_realloc(void *p, size_t size)
{
	if (p == NULL)
		return gm_alloc(size, 0);
	if (size == 0) {
		gm_free_as(p, "realloc");
		return NULL;
	}
	if (size > (size_t)PTRDIFF_MAX)
		return gm_enomem();
	if (UNLIKELY(gm_degraded)) {
		size_t old = gm_degraded_owns(p) || gm_is_boot(p) ? gm_boot_size(p)
		                                                  : gm_usable_size(p, "realloc");
		void *q = gm_degraded_alloc(size, 16);
		if (q != NULL)
			memcpy(q, p, size < old ? size : old);
		return q;
	}
	bool boot;
	mspan_t *s = gm_checked_span(p, "realloc", &boot);
	size_t old_usable;
	int noscan = 0;
	if (s == NULL) {
		if (!boot) {
			errno = EINVAL;
			return NULL;
		}
		old_usable = gm_boot_size(p);
	} else if (mspan_is_large(s)) {
		noscan = spanclass_noscan(s->spanclass);
		old_usable = s->npages << GM_PAGE_SHIFT;
		if (size > GM_MAX_SMALL_SIZE) {
			size_t npages = (size + GM_PAGE_SIZE - 1) >> GM_PAGE_SHIFT;
			if (npages == s->npages ||
			    (npages < s->npages && mheap_resize_large(s, npages)) ||
			    (npages > s->npages && mheap_resize_large(s, npages)))
				return p;
		}
	} else {
		if (!gm_check_live(s, p, "realloc")) {
			errno = EINVAL;
			return NULL;
		}
		noscan = spanclass_noscan(s->spanclass);
		old_usable = s->elemsize;
		/* same class (e.g. 8 -> 1 byte) would only copy to a twin slot */
		if (size <= old_usable && (size > old_usable / 2 ||
		                           sizeclass_size[sizeclass_of(size)] == old_usable))
			return p;
	}
	void *q = gm_alloc(size, noscan);
	if (q == NULL)
		return NULL; /* errno is ENOMEM; p is intact */
	memcpy(q, p, size < old_usable ? size : old_usable);
	if (!boot)
		gm_free(p);
	return q;
}

void *gm_reallocarray(void *p, size_t nmemb, size_t size)
{
	size_t total;
	if (__builtin_mul_overflow(nmemb, size, &total))
		return gm_enomem();
	return gm_realloc(p, total);
}

static inline bool gm_pow2(size_t x)
{
	return x != 0 && (x & (x - 1)) == 0;
}

void *gm_aligned_alloc_checked(size_t align, size_t size, int noscan)
{
	if (!gm_pow2(align)) {
		errno = EINVAL;
		return NULL;
	}
	if (size > (size_t)PTRDIFF_MAX - align)
		return gm_enomem();
	return gm_alloc_aligned(align, size, noscan);
}

int gm_posix_memalign(void **memptr, size_t align, size_t size)
{
	if (!gm_pow2(align) || align % sizeof(void *) != 0)
		return EINVAL;
	if (size > (size_t)PTRDIFF_MAX - align)
		return ENOMEM;
	int saved = errno;
	void *p = gm_alloc_aligned(align, size, 0);
	if (p == NULL) {
		errno = saved;
		return ENOMEM;
	}
	*memptr = p;
	return 0;
}

void *gm_valloc(size_t size)
{
	return gm_aligned_alloc_checked(GM_OS_PAGE_SIZE, size, 0);
}

void *gm_pvalloc(size_t size)
{
	size_t rounded = (size + GM_OS_PAGE_SIZE - 1) & ~(size_t)(GM_OS_PAGE_SIZE - 1);
	if (rounded < size)
		return gm_enomem();
	if (rounded == 0)
		rounded = GM_OS_PAGE_SIZE;
	return gm_aligned_alloc_checked(GM_OS_PAGE_SIZE, rounded, 0);
}

int gm_malloc_trim(size_t pad)
{
	(void)pad;
	if (!atomic_load(&gm_initialized))
		return 0;
	mcache_t *c = mcache_tls;
	if (c->live) {
		/* the calling thread's page cache and large blocks */
		mcache_release_pages(c);
	}
	mcentral_reclaim_all();
	mheap_huge_flush();
	return mheap_scavenge(0, false) > 0 ? 1 : 0;
}

int gm_mallopt(int param, int value)
{
	switch (param) {
	case -5: /* M_CHECK_ACTION: bit 1 = abort on error */
		gm_ensure_init();
		gm_opt.abort_on_error = (value & 2) != 0;
		return 1;
	case 1: /* M_MXFAST: glibc's range check; no fastbins here */
		return value >= 0 && (size_t)value <= 80 * sizeof(size_t) / 4;
	case -3: /* M_MMAP_THRESHOLD: glibc's range check (HEAP_MAX_SIZE / 2) */
		return value >= 0 && value <= (32 << 20);
	case -1: /* M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_MAX: the scavenger decides */
	case -2:
	case -4:
	case -6: /* M_PERTURB */
	case -7: /* M_ARENA_TEST, M_ARENA_MAX: per-thread caches, no arenas */
	case -8:
		return 1; /* glibc tuning: accepted (programs check the result) */
	default:
		return 0;
	}
}

#if !defined(__POPCNT__) && defined(__x86_64__)
#include <cpuid.h>
bool gm_cpu_popcnt;
#endif

/* Once, first thing in gm_init_slow (under gm_init_lock): CPU features. */
void gm_cpu_init(void)
{
#if !defined(__POPCNT__) && defined(__x86_64__)
	unsigned a, b, c, d;
	if (__get_cpuid(1, &a, &b, &c, &d))
		gm_cpu_popcnt = (c & bit_POPCNT) != 0;
#endif
}
