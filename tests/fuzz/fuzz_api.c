/*
 * fuzz_api.c -- libFuzzer harness: random sequences of every allocation
 * call, checked against a shadow model (issue 3, "Tests").
 *
 * The input is a little program: each step reads an opcode byte, a slot
 * byte and size bytes, and runs one of malloc, calloc, realloc,
 * reallocarray, aligned_alloc, posix_memalign, memalign, valloc, pvalloc,
 * free, free_sized, free_aligned_sized, malloc_usable_size, the gm_*
 * extension calls (noscan allocation, gm_kind_of, gm_scavenge, gm_stats),
 * mallinfo2, malloc_trim, a free by another thread, and requests that must
 * fail (huge sizes, overflowing products, bad alignments).  The shadow model
 * keeps, per slot, the block's requested size, alignment, kind and the byte
 * it was filled with; every step checks what the allocator promised:
 * alignment, usable size, zeroed calloc memory, contents kept by realloc,
 * blocks that never overlap (fill bytes intact), NULL + errno for failures,
 * and that a failed realloc leaves the block alone.  Any violation aborts,
 * which libFuzzer reports as a crash with the input that caused it.
 *
 * Built by tests/fuzz/run.sh with clang -fsanitize=fuzzer, the lib/ sources
 * compiled in (with coverage instrumentation, so the fuzzer steers into the
 * allocator's own branches).  libFuzzer itself also allocates with this
 * malloc, which adds coverage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gomalloc.h>

/* C23; this libc's headers may not declare them. */
void free_sized(void *p, size_t size);
void free_aligned_sized(void *p, size_t align, size_t size);

#define NSLOTS 64

typedef struct slot {
	unsigned char *p;
	size_t size;   /* requested bytes (all of them hold `fill`) */
	size_t align;  /* promised alignment */
	int kind;      /* GM_KIND_SCAN / GM_KIND_NOSCAN */
	unsigned char fill;
} slot_t;

static slot_t slots[NSLOTS];
static unsigned char next_fill = 1;

#define CHECK(cond, ...)                                                  \
	do {                                                              \
		if (!(cond)) {                                            \
			fprintf(stderr, "fuzz_api: check failed: %s: ", #cond); \
			fprintf(stderr, __VA_ARGS__);                     \
			fprintf(stderr, "\n");                            \
			abort();                                          \
		}                                                         \
	} while (0)

/* ---- input reader ---- */

typedef struct input {
	const uint8_t *d;
	size_t n, pos;
} input_t;

static unsigned byte(input_t *in)
{
	return in->pos < in->n ? in->d[in->pos++] : 0;
}

/* A size from the input, biased to the interesting ranges. */
static size_t size_of(input_t *in)
{
	unsigned sel = byte(in);
	unsigned v = byte(in) | byte(in) << 8;
	switch (sel % 16) {
	case 0: return 0;
	case 1: case 2: case 3: case 4: return v % 128 + 1;       /* tiny */
	case 5: case 6: case 7: return v % 1024 + 1;              /* size_to_class8 */
	case 8: case 9: return v % 32768 + 1;                     /* small classes */
	case 10: return 32768 + (v % 64) - 32;                    /* the small/large edge */
	case 11: return 32769 + (size_t)v * 8;                    /* large */
	case 12: return (size_t)(v % 64 + 1) << 13;               /* whole pages */
	case 13: return (size_t)(v % 9 + 1) << 20;                /* MiBs (over 4: the huge slot) */
	case 14: return (size_t)1 << (v % 16);                    /* powers of two */
	default: return (size_t)v;
	}
}

static size_t huge_of(input_t *in)
{
	static const size_t huge[] = { SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 4095,
		                       (size_t)PTRDIFF_MAX + 1, (size_t)PTRDIFF_MAX,
		                       (size_t)PTRDIFF_MAX - 8191, (size_t)1 << 62,
		                       (size_t)1 << 58 };
	return huge[byte(in) % (sizeof huge / sizeof huge[0])];
}

static size_t align_of(input_t *in)
{
	return (size_t)1 << (byte(in) % 22); /* 1 .. 2 MiB */
}

/* ---- the shadow model ---- */

static void fill_block(slot_t *s)
{
	s->fill = next_fill++;
	if (next_fill == 0)
		next_fill = 1;
	memset(s->p, s->fill, s->size);
}

static void verify(const slot_t *s, const char *when)
{
	if (s->p == NULL)
		return;
	size_t n = s->size;
	size_t step = n > 4096 ? 61 : 1;
	for (size_t i = 0; i < n; i += step)
		CHECK(s->p[i] == s->fill, "%s: block %p (%zu bytes) byte %zu is %u, want %u", when,
		      (void *)s->p, n, i, s->p[i], s->fill);
	if (n)
		CHECK(s->p[n - 1] == s->fill, "%s: last byte of %p", when, (void *)s->p);
}

static void adopt(slot_t *s, void *p, size_t size, size_t align, int kind, const char *call)
{
	CHECK(p != NULL, "%s(%zu, align %zu) failed", call, size, align);
	CHECK((uintptr_t)p % align == 0, "%s(%zu): %p not aligned to %zu", call, size, p, align);
	CHECK(malloc_usable_size(p) >= size, "%s(%zu): usable %zu", call, size,
	      malloc_usable_size(p));
	CHECK(gm_kind_of(p) == kind, "%s(%zu): kind %d, want %d", call, size, gm_kind_of(p), kind);
	s->p = p;
	s->size = size;
	s->align = align;
	s->kind = kind;
	fill_block(s);
}

static void release(slot_t *s, int how)
{
	if (s->p == NULL)
		return;
	verify(s, "before free");
	switch (how % 3) {
	case 0: free(s->p); break;
	case 1: free_sized(s->p, s->size); break;
	default: free_aligned_sized(s->p, s->align, s->size); break;
	}
	s->p = NULL;
}

static int is_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

/* ---- frees by another thread (synchronous hand-off: deterministic) ---- */

static pthread_mutex_t remote_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t remote_cv = PTHREAD_COND_INITIALIZER;
static void *remote_ptr;
static int remote_busy, remote_started;

static void *remote_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&remote_mu);
	for (;;) {
		while (!remote_busy)
			pthread_cond_wait(&remote_cv, &remote_mu);
		free(remote_ptr);
		void *own = malloc(64); /* this thread has spans too */
		free(own);
		remote_busy = 0;
		pthread_cond_broadcast(&remote_cv);
	}
	return NULL;
}

static void remote_free(void *p)
{
	pthread_mutex_lock(&remote_mu);
	if (!remote_started) {
		pthread_t t;
		remote_started = pthread_create(&t, NULL, remote_main, NULL) == 0;
		if (!remote_started) {
			pthread_mutex_unlock(&remote_mu);
			free(p);
			return;
		}
		pthread_detach(t);
	}
	remote_ptr = p;
	remote_busy = 1;
	pthread_cond_broadcast(&remote_cv);
	while (remote_busy)
		pthread_cond_wait(&remote_cv, &remote_mu);
	pthread_mutex_unlock(&remote_mu);
}

/* ---- one step ---- */

enum {
	OP_MALLOC, OP_CALLOC, OP_REALLOC, OP_REALLOCARRAY, OP_ALIGNED_ALLOC,
	OP_POSIX_MEMALIGN, OP_MEMALIGN, OP_VALLOC, OP_PVALLOC, OP_FREE, OP_FREE_SIZED,
	OP_USABLE, OP_NOSCAN, OP_CALLOC_NOSCAN, OP_ALIGNED_NOSCAN, OP_KIND,
	OP_REMOTE_FREE, OP_HUGE, OP_BAD_ALIGN, OP_MALLINFO, OP_TRIM, OP_VERIFY_ALL,
	OP_REALLOC_ZERO, OP_COUNT
};

static void step(input_t *in)
{
	unsigned op = byte(in) % OP_COUNT;
	slot_t *s = &slots[byte(in) % NSLOTS];
	switch (op) {
	case OP_MALLOC: {
		size_t n = size_of(in);
		release(s, 0);
		adopt(s, malloc(n), n, n > 8 ? 16 : 8, GM_KIND_SCAN, "malloc");
		break;
	}
	case OP_CALLOC: case OP_CALLOC_NOSCAN: {
		size_t n = size_of(in);
		size_t k = byte(in) % 8 + 1;
		release(s, 1);
		unsigned char *p = op == OP_CALLOC ? calloc(k, n) : gm_calloc_noscan(k, n);
		CHECK(p != NULL, "calloc(%zu, %zu)", k, n);
		CHECK(is_zero(p, k * n), "calloc(%zu, %zu) not zeroed", k, n);
		adopt(s, p, k * n, k * n > 8 ? 16 : 8,
		      op == OP_CALLOC ? GM_KIND_SCAN : GM_KIND_NOSCAN, "calloc");
		break;
	}
	case OP_REALLOC: case OP_REALLOCARRAY: {
		size_t n = size_of(in);
		if (n == 0)
			n = 1; /* realloc(p, 0) is its own op */
		verify(s, "before realloc");
		size_t keep = s->size < n ? s->size : n;
		int kind = s->p ? s->kind : GM_KIND_SCAN;
		unsigned char fill = s->fill;
		unsigned char *q = op == OP_REALLOC ? realloc(s->p, n) : reallocarray(s->p, 1, n);
		CHECK(q != NULL, "realloc(%zu)", n);
		for (size_t i = 0; s->p && i < keep; i += keep > 4096 ? 61 : 1)
			CHECK(q[i] == fill, "realloc(%zu) lost byte %zu", n, i);
		s->p = NULL;
		/* realloc guarantees malloc's alignment, not the original's */
		adopt(s, q, n, n > 8 ? 16 : 8, kind, "realloc");
		break;
	}
	case OP_REALLOC_ZERO: {
		if (s->p == NULL)
			break;
		verify(s, "before realloc(p, 0)");
		void *p = s->p;
		CHECK(realloc(p, 0) == NULL, "realloc(p, 0) must free and return NULL");
		CHECK(gm_kind_of(p) == -1, "realloc(p, 0) left %p live", p);
		s->p = NULL;
		break;
	}
	case OP_ALIGNED_ALLOC: case OP_MEMALIGN: case OP_ALIGNED_NOSCAN: {
		size_t a = align_of(in), n = size_of(in);
		release(s, 2);
		void *p = op == OP_ALIGNED_ALLOC ? aligned_alloc(a, n)
		        : op == OP_MEMALIGN      ? memalign(a, n)
		                                 : gm_aligned_alloc_noscan(a, n);
		adopt(s, p, n, a, op == OP_ALIGNED_NOSCAN ? GM_KIND_NOSCAN : GM_KIND_SCAN,
		      "aligned_alloc");
		break;
	}
	case OP_POSIX_MEMALIGN: {
		size_t a = align_of(in), n = size_of(in);
		release(s, 0);
		void *p = (void *)0x1;
		int rc = posix_memalign(&p, a, n);
		if (a < sizeof(void *)) {
			CHECK(rc == EINVAL && p == (void *)0x1, "posix_memalign(%zu): %d", a, rc);
			break;
		}
		CHECK(rc == 0, "posix_memalign(%zu, %zu) = %d", a, n, rc);
		adopt(s, p, n, a, GM_KIND_SCAN, "posix_memalign");
		break;
	}
	case OP_VALLOC: case OP_PVALLOC: {
		size_t n = size_of(in);
		release(s, 0);
		void *p = op == OP_VALLOC ? valloc(n) : pvalloc(n);
		size_t want = op == OP_VALLOC ? n : (n == 0 ? 4096 : (n + 4095) & ~(size_t)4095);
		adopt(s, p, want, 4096, GM_KIND_SCAN, "valloc");
		break;
	}
	case OP_FREE: case OP_FREE_SIZED:
		release(s, op == OP_FREE ? 0 : byte(in));
		break;
	case OP_USABLE:
		if (s->p) {
			size_t u = malloc_usable_size(s->p);
			CHECK(u >= s->size, "usable %zu < %zu", u, s->size);
			/* the slack is ours to use and must not hit a neighbour */
			memset(s->p + s->size, 0xee, u - s->size);
			memset(s->p + s->size, s->fill, u - s->size);
			s->size = u;
		} else {
			CHECK(malloc_usable_size(NULL) == 0, "malloc_usable_size(NULL)");
		}
		break;
	case OP_NOSCAN: {
		size_t n = size_of(in);
		release(s, 0);
		adopt(s, gm_malloc_noscan(n), n, n > 8 ? 16 : 8, GM_KIND_NOSCAN, "gm_malloc_noscan");
		break;
	}
	case OP_KIND:
		if (s->p)
			CHECK(gm_kind_of(s->p) == s->kind, "gm_kind_of %d, want %d", gm_kind_of(s->p),
			      s->kind);
		break;
	case OP_REMOTE_FREE:
		if (s->p) {
			verify(s, "before remote free");
			remote_free(s->p);
			s->p = NULL;
		}
		break;
	case OP_HUGE: {
		size_t h = huge_of(in);
		errno = 0;
		CHECK(malloc(h) == NULL && errno == ENOMEM, "malloc(%zu)", h);
		errno = 0;
		CHECK(calloc(h, 3) == NULL && errno == ENOMEM, "calloc(%zu, 3)", h);
		errno = 0;
		CHECK(calloc(2, (h >> 1) + 1) == NULL && errno == ENOMEM, "calloc overflow");
		errno = 0;
		CHECK(aligned_alloc(64, h) == NULL && errno == ENOMEM, "aligned_alloc(64, %zu)", h);
		errno = 0;
		CHECK(pvalloc(h) == NULL && errno == ENOMEM, "pvalloc(%zu)", h);
		if (s->p) {
			errno = 0;
			CHECK(realloc(s->p, h) == NULL && errno == ENOMEM, "realloc(p, %zu)", h);
			CHECK(reallocarray(s->p, h, 2) == NULL, "reallocarray(p, %zu, 2)", h);
			verify(s, "after a failed realloc");
		}
		break;
	}
	case OP_BAD_ALIGN: {
		size_t a = (size_t)byte(in) * 2 + 3; /* odd: never a power of two */
		errno = 0;
		CHECK(aligned_alloc(a, 16) == NULL && errno == EINVAL, "aligned_alloc(%zu)", a);
		void *p = (void *)0x2;
		CHECK(posix_memalign(&p, a, 16) == EINVAL && p == (void *)0x2, "posix_memalign(%zu)", a);
		CHECK(posix_memalign(&p, 0, 16) == EINVAL, "posix_memalign(0)");
		break;
	}
	case OP_MALLINFO: {
		struct mallinfo2 mi = mallinfo2();
		size_t live = 0;
		for (int i = 0; i < NSLOTS; i++)
			if (slots[i].p)
				live += slots[i].size;
		CHECK(mi.uordblks >= live, "mallinfo2 uordblks %zu < %zu live in the model",
		      mi.uordblks, live);
		gm_stats_t st;
		CHECK(gm_stats(&st) == 0, "gm_stats");
		CHECK(st.allocated >= live, "gm_stats allocated %zu < %zu", st.allocated, live);
		break;
	}
	case OP_TRIM:
		if (byte(in) % 4 == 0)
			malloc_trim(0);
		else
			gm_scavenge((size_t)byte(in) << 16);
		break;
	case OP_VERIFY_ALL:
		for (int i = 0; i < NSLOTS; i++)
			verify(&slots[i], "verify all");
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	input_t in = { data, size, 0 };
	while (in.pos < in.n)
		step(&in);
	for (int i = 0; i < NSLOTS; i++)
		release(&slots[i], i);
	return 0;
}
