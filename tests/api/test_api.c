/*
 * test_api.c -- the public malloc family of gomalloc, as a program sees it.
 *
 * Built twice (tests/api/local.mk): tests/api/test_api links libgomalloc,
 * tests/api/test_api-preload does not and runs under
 * LD_PRELOAD=.libs/libgomalloc.so (tests/run-test.sh).  So this file names
 * no gm_* symbol directly: gm_version and gm_kind_of are looked up with
 * dlsym(RTLD_DEFAULT, ...), and the first test fails when they are missing
 * (the program would be testing glibc's malloc).
 *
 * What is checked: every exported function of the malloc family (and the
 * __libc_* names, through dlsym) resolves to libgomalloc and works; malloc(0)
 * gives unique freeable blocks; alignment of every result (8 bytes, 16 for
 * blocks of more than 8 bytes; aligned_alloc/posix_memalign/memalign for
 * every power of two up to 1 MiB); malloc_usable_size equals the Go class
 * size for every n in 1..32768 (17..24 -> 32, min_align 16); large blocks
 * are usable over their whole usable size; realloc keeps contents in every
 * direction; calloc zeroes reused (dirty) memory; valloc/pvalloc.
 *
 * Compiled with -fno-builtin, and every address or byte the compiler could
 * reason about (alignment attributes of aligned_alloc, calloc's zeroes) is
 * laundered through an empty asm, so no check can be folded away.
 */
#define _GNU_SOURCE
#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#pragma GCC diagnostic ignored "-Wdeprecated-declarations" /* mallinfo */

#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)

/* Go's size classes (tests/unit/sizeclasses.tsv, column bytes_per_obj). */
static const size_t class_size[] = {
	0,     8,     16,    24,    32,    48,    64,    80,    96,    112,
	128,   144,   160,   176,   192,   208,   224,   240,   256,   288,
	320,   352,   384,   416,   448,   480,   512,   576,   640,   704,
	768,   896,   1024,  1152,  1280,  1408,  1536,  1792,  2048,  2304,
	2688,  3072,  3200,  3456,  4096,  4864,  5376,  6144,  6528,  6784,
	6912,  8192,  9472,  9728,  10240, 10880, 12288, 13568, 14336, 16384,
	18432, 19072, 20480, 21760, 24576, 27264, 28672, 32768,
};
#define NCLASSES (sizeof class_size / sizeof class_size[0])

/* Usable size gomalloc must report for malloc(n), 1 <= n <= 32768, with the
 * default min_align 16: the smallest class >= n, but 17..24 -> 32. */
static size_t expected_usable(size_t n)
{
	if (n >= 17 && n <= 24)
		return 32;
	for (size_t c = 1; c < NCLASSES; c++)
		if (class_size[c] >= n)
			return class_size[c];
	return 0;
}

/* An address the compiler knows nothing about. */
static inline uintptr_t addr(const void *p)
{
	uintptr_t a = (uintptr_t)p;
	__asm__ volatile("" : "+r"(a));
	return a;
}

static inline const unsigned char *launder(const void *p)
{
	return (const unsigned char *)addr(p);
}

typedef const char *(*version_fn)(void);
typedef int (*kind_fn)(const void *);

static version_fn gm_version_p;
static kind_fn gm_kind_of_p;

static void lookup_gm(void)
{
	gm_version_p = (version_fn)dlsym(RTLD_DEFAULT, "gm_version");
	gm_kind_of_p = (kind_fn)dlsym(RTLD_DEFAULT, "gm_kind_of");
}

/* True if p is a live gomalloc block (gm_kind_of != -1). */
static int live(const void *p)
{
	return gm_kind_of_p != NULL && gm_kind_of_p(p) != -1;
}

/* Pattern byte i of a block tagged t. */
static inline unsigned char pat(uint32_t t, size_t i)
{
	return (unsigned char)((i * 131u + t * 17u + (i >> 8)) ^ (t >> 3));
}

static void fill(void *p, size_t n, uint32_t t)
{
	unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		b[i] = pat(t, i);
}

/* Index of the first byte of [0, n) that differs from the pattern, or n. */
static size_t check_fill(const void *p, size_t n, uint32_t t)
{
	const unsigned char *b = launder(p);
	for (size_t i = 0; i < n; i++)
		if (b[i] != pat(t, i))
			return i;
	return n;
}

/* Index of the first nonzero byte of [0, n), or n. */
static size_t first_nonzero(const void *p, size_t n)
{
	const unsigned char *b = launder(p);
	for (size_t i = 0; i < n; i++)
		if (b[i] != 0)
			return i;
	return n;
}

/* ---- the program runs on gomalloc ---- */

START_TEST(test_runs_on_gomalloc)
{
	ck_assert_msg(gm_version_p != NULL,
	              "gm_version not found: malloc is not gomalloc (LD_PRELOAD missing?)");
	ck_assert_ptr_nonnull(gm_kind_of_p);
	const char *v = gm_version_p();
	ck_assert_msg(strncmp(v, "gomalloc ", 9) == 0, "gm_version() = \"%s\"", v);
	/* malloc itself resolves to libgomalloc and gives gomalloc blocks */
	Dl_info info;
	void *m = dlsym(RTLD_DEFAULT, "malloc");
	ck_assert_ptr_nonnull(m);
	ck_assert(dladdr(m, &info) != 0);
	ck_assert_msg(info.dli_fname && strstr(info.dli_fname, "libgomalloc"),
	              "malloc resolves to %s", info.dli_fname ? info.dli_fname : "?");
	void *p = malloc(40);
	ck_assert_int_eq(gm_kind_of_p(p), 0); /* GM_KIND_SCAN */
	free(p);
	int x;
	ck_assert_int_eq(gm_kind_of_p(&x), -1);
}
END_TEST

/* Every exported name of the family is found in libgomalloc. */
START_TEST(test_exported_symbols)
{
	static const char *const names[] = {
		"malloc", "free", "calloc", "realloc", "reallocarray",
		"posix_memalign", "aligned_alloc", "memalign", "valloc", "pvalloc",
		"malloc_usable_size", "malloc_trim", "mallopt", "mallinfo",
		"mallinfo2", "malloc_stats", "malloc_info", "free_sized",
		"free_aligned_sized", "__libc_malloc", "__libc_free",
		"__libc_calloc", "__libc_realloc", "__libc_memalign",
		"__libc_valloc", "__libc_pvalloc", "__posix_memalign", "cfree",
		"gm_malloc_noscan", "gm_calloc_noscan", "gm_aligned_alloc_noscan",
		"gm_kind_of", "gm_heap_walk", "gm_scavenge", "gm_stats", "gm_version",
	};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		void *f = dlsym(RTLD_DEFAULT, names[i]);
		ck_assert_msg(f != NULL, "%s: not found", names[i]);
		Dl_info info;
		ck_assert_msg(dladdr(f, &info) != 0, "%s: dladdr failed", names[i]);
		ck_assert_msg(info.dli_fname && strstr(info.dli_fname, "libgomalloc"),
		              "%s resolves to %s", names[i],
		              info.dli_fname ? info.dli_fname : "?");
	}
}
END_TEST

/* ---- malloc(0), malloc/free basics ---- */

START_TEST(test_malloc_zero)
{
	enum { N = 300 };
	void *p[N];
	for (int i = 0; i < N; i++) {
		p[i] = malloc(0);
		ck_assert_ptr_nonnull(p[i]);
		ck_assert_msg(live(p[i]), "malloc(0) = %p is not a live block", p[i]);
		ck_assert_uint_eq(addr(p[i]) & 7, 0);
	}
	/* unique: sort and compare neighbours */
	for (int i = 1; i < N; i++)
		for (int j = i; j > 0 && addr(p[j - 1]) > addr(p[j]); j--) {
			void *t = p[j];
			p[j] = p[j - 1];
			p[j - 1] = t;
		}
	for (int i = 1; i < N; i++)
		ck_assert_msg(p[i] != p[i - 1], "malloc(0) returned %p twice", p[i]);
	for (int i = 0; i < N; i++) {
		free(p[i]);
		ck_assert_msg(!live(p[i]), "%p still live after free", p[i]);
	}
	free(NULL);
}
END_TEST

/* C23's free_sized/free_aligned_sized: not in glibc 2.36's headers or
 * libc, so the preload variant finds them with dlsym too. */
START_TEST(test_free_variants)
{
	void (*free_sized)(void *, size_t) =
	    (void (*)(void *, size_t))dlsym(RTLD_DEFAULT, "free_sized");
	void (*free_aligned_sized)(void *, size_t, size_t) =
	    (void (*)(void *, size_t, size_t))dlsym(RTLD_DEFAULT, "free_aligned_sized");
	ck_assert_ptr_nonnull(free_sized);
	ck_assert_ptr_nonnull(free_aligned_sized);
	void *p = malloc(100);
	ck_assert(live(p));
	free_sized(p, 100);
	ck_assert(!live(p));
	p = malloc(100000);
	ck_assert(live(p));
	free_sized(p, 100000);
	ck_assert(!live(p));
	p = aligned_alloc(256, 1000);
	ck_assert(live(p));
	free_aligned_sized(p, 256, 1000);
	ck_assert(!live(p));
	p = aligned_alloc(64 * KiB, 200 * KiB);
	ck_assert(live(p));
	free_aligned_sized(p, 64 * KiB, 200 * KiB);
	ck_assert(!live(p));
	free_sized(NULL, 0);
	free_aligned_sized(NULL, 16, 0);
}
END_TEST

/* ---- alignment ---- */

START_TEST(test_malloc_alignment)
{
	enum { BATCH = 64 };
	void *p[BATCH];
	size_t sz[BATCH];
	int k = 0;
	for (size_t n = 1; n <= MiB; n += n < 2048 ? 1 : n / 16 + 1) {
		void *b = malloc(n);
		ck_assert_msg(b != NULL, "malloc(%zu) = NULL", n);
		uintptr_t a = addr(b);
		ck_assert_msg((a & 7) == 0, "malloc(%zu) = %p: not 8-aligned", n, b);
		if (n > 8)
			ck_assert_msg((a & 15) == 0, "malloc(%zu) = %p: not 16-aligned", n, b);
		ck_assert_msg(malloc_usable_size(b) >= n, "usable(malloc(%zu)) = %zu", n,
		              malloc_usable_size(b));
		((volatile char *)b)[0] = 1;
		((volatile char *)b)[n - 1] = 2;
		p[k] = b;
		sz[k] = n;
		if (++k == BATCH) {
			for (int i = 0; i < k; i++)
				free(p[i]);
			k = 0;
		}
	}
	for (int i = 0; i < k; i++)
		free(p[i]);
	(void)sz;
	/* calloc and realloc results too */
	for (size_t n = 9; n < 64 * KiB; n = n * 3 / 2 + 1) {
		void *c = calloc(1, n);
		ck_assert_msg((addr(c) & 15) == 0, "calloc(1, %zu) = %p", n, c);
		void *r = realloc(c, n * 2);
		ck_assert_msg((addr(r) & 15) == 0, "realloc(.., %zu) = %p", n * 2, r);
		free(r);
	}
}
END_TEST

/* Sizes tried for one alignment. */
static size_t align_sizes(size_t align, size_t *out)
{
	size_t k = 0;
	out[k++] = 1;
	out[k++] = 8;
	out[k++] = 24;
	out[k++] = 100;
	if (align > 2)
		out[k++] = align / 2 + 1;
	out[k++] = align;
	out[k++] = align + 1;
	out[k++] = 3 * align + 5;
	out[k++] = 40000;
	out[k++] = 300 * KiB;
	return k;
}

static void check_aligned(const char *fn, void *p, size_t align, size_t n)
{
	ck_assert_msg(p != NULL, "%s(%zu, %zu) = NULL", fn, align, n);
	uintptr_t a = addr(p);
	ck_assert_msg(a % align == 0, "%s(%zu, %zu) = %p: misaligned", fn, align, n, p);
	if (n > 8)
		ck_assert_msg((a & 15) == 0, "%s(%zu, %zu) = %p: not 16-aligned", fn, align, n, p);
	ck_assert_msg(live(p), "%s(%zu, %zu) = %p: not a gomalloc block", fn, align, n, p);
	size_t u = malloc_usable_size(p);
	ck_assert_msg(u >= n, "%s(%zu, %zu): usable %zu", fn, align, n, u);
	memset(p, 0x5a, n);  /* writable over the whole size */
	ck_assert_uint_eq(launder(p)[n - 1], 0x5a);
}

START_TEST(test_aligned_alloc)
{
	size_t sizes[16];
	for (size_t align = 1; align <= MiB; align <<= 1) {
		size_t ns = align_sizes(align, sizes);
		void *held[16];
		for (size_t i = 0; i < ns; i++) {
			held[i] = aligned_alloc(align, sizes[i]);
			check_aligned("aligned_alloc", held[i], align, sizes[i]);
		}
		for (size_t i = 0; i < ns; i++)
			free(held[i]);
	}
	/* not a power of two */
	errno = 0;
	ck_assert_ptr_null(aligned_alloc(24, 48));
	ck_assert_int_eq(errno, EINVAL);
}
END_TEST

START_TEST(test_posix_memalign)
{
	size_t sizes[16];
	void *p = (void *)1;
	for (size_t align = 1; align < sizeof(void *); align <<= 1) {
		ck_assert_int_eq(posix_memalign(&p, align, 16), EINVAL);
		ck_assert_ptr_eq(p, (void *)1); /* untouched on error */
	}
	ck_assert_int_eq(posix_memalign(&p, 24, 16), EINVAL);
	for (size_t align = sizeof(void *); align <= MiB; align <<= 1) {
		size_t ns = align_sizes(align, sizes);
		void *held[16];
		for (size_t i = 0; i < ns; i++) {
			held[i] = NULL;
			ck_assert_int_eq(posix_memalign(&held[i], align, sizes[i]), 0);
			check_aligned("posix_memalign", held[i], align, sizes[i]);
		}
		for (size_t i = 0; i < ns; i++)
			free(held[i]);
	}
	/* size 0: a unique freeable pointer (or NULL, which glibc never gives) */
	ck_assert_int_eq(posix_memalign(&p, 64, 0), 0);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(addr(p) & 63, 0);
	free(p);
}
END_TEST

START_TEST(test_memalign)
{
	size_t sizes[16];
	for (size_t align = 1; align <= MiB; align <<= 1) {
		size_t ns = align_sizes(align, sizes);
		void *held[16];
		for (size_t i = 0; i < ns; i++) {
			held[i] = memalign(align, sizes[i]);
			check_aligned("memalign", held[i], align, sizes[i]);
		}
		for (size_t i = 0; i < ns; i++)
			free(held[i]);
	}
}
END_TEST

/* Many live aligned blocks at once: distinct, aligned, not overlapping. */
START_TEST(test_aligned_many_live)
{
	enum { N = 200 };
	static const size_t aligns[] = { 32, 64, 128, 512, 4096, 8192, 16384, 65536 };
	for (size_t a = 0; a < sizeof aligns / sizeof aligns[0]; a++) {
		void *p[N];
		size_t n = 3 * aligns[a] / 4 + 8;
		for (int i = 0; i < N; i++) {
			p[i] = aligned_alloc(aligns[a], n);
			ck_assert_ptr_nonnull(p[i]);
			ck_assert_uint_eq(addr(p[i]) % aligns[a], 0);
			fill(p[i], n, (uint32_t)i);
		}
		for (int i = 0; i < N; i++) {
			ck_assert_msg(check_fill(p[i], n, (uint32_t)i) == n,
			              "aligned block %d (align %zu) overwritten", i, aligns[a]);
			free(p[i]);
		}
	}
}
END_TEST

START_TEST(test_valloc_pvalloc)
{
	long page = sysconf(_SC_PAGESIZE);
	static const size_t sizes[] = { 0, 1, 100, 4095, 4096, 4097, 10000, 65536, 300000 };
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		size_t n = sizes[i];
		void *v = valloc(n);
		ck_assert_ptr_nonnull(v);
		ck_assert_msg(addr(v) % (uintptr_t)page == 0, "valloc(%zu) = %p", n, v);
		ck_assert_uint_ge(malloc_usable_size(v), n);
		if (n)
			memset(v, 1, n);
		void *pv = pvalloc(n);
		ck_assert_ptr_nonnull(pv);
		ck_assert_msg(addr(pv) % (uintptr_t)page == 0, "pvalloc(%zu) = %p", n, pv);
		size_t rounded = n == 0 ? (size_t)page : (n + (size_t)page - 1) & ~((size_t)page - 1);
		ck_assert_msg(malloc_usable_size(pv) >= rounded, "pvalloc(%zu): usable %zu < %zu",
		              n, malloc_usable_size(pv), rounded);
		memset(pv, 2, rounded);  /* pvalloc rounds the size up to whole pages */
		free(v);
		free(pv);
	}
}
END_TEST

/* ---- usable size ---- */

START_TEST(test_usable_size_small)
{
	for (size_t n = 1; n <= 32768; n++) {
		void *p = malloc(n);
		ck_assert_msg(p != NULL, "malloc(%zu) = NULL", n);
		size_t u = malloc_usable_size(p);
		ck_assert_msg(u == expected_usable(n),
		              "malloc_usable_size(malloc(%zu)) = %zu, want %zu", n, u,
		              expected_usable(n));
		free(p);
	}
	ck_assert_uint_eq(malloc_usable_size(NULL), 0);
	/* 0 bytes: the smallest class */
	void *z = malloc(0);
	ck_assert_uint_eq(malloc_usable_size(z), 8);
	free(z);
}
END_TEST

START_TEST(test_usable_size_large)
{
	static const size_t sizes[] = {
		32769, 33000, 40000, 40960, 65535, 65536, 65537, 100000,
		131072 + 1, 500000, MiB - 1, MiB, MiB + 1, 3 * MiB + 123,
		4 * MiB, 9 * MiB + 7,
	};
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		size_t n = sizes[i];
		unsigned char *p = malloc(n);
		ck_assert_msg(p != NULL, "malloc(%zu) = NULL", n);
		size_t u = malloc_usable_size(p);
		ck_assert_msg(u >= n, "malloc_usable_size(malloc(%zu)) = %zu", n, u);
		/* whole pages, and no absurd waste (a reused run may be 1/8 larger) */
		ck_assert_msg(u % 8192 == 0, "large usable size %zu is not whole pages", u);
		ck_assert_msg(u <= n + n / 8 + 8192, "malloc(%zu): usable %zu", n, u);
		memset(p, 0x77, u);  /* the whole usable size is writable */
		ck_assert_uint_eq(launder(p)[u - 1], 0x77);
		ck_assert_uint_eq(launder(p)[0], 0x77);
		free(p);
	}
}
END_TEST

/* The usable size of a small block is writable without harming neighbours. */
START_TEST(test_usable_size_writable)
{
	enum { N = 64 };
	for (size_t n = 1; n <= 32768; n += n < 256 ? 7 : n / 5) {
		void *p[N];
		size_t u[N];
		for (int i = 0; i < N; i++) {
			p[i] = malloc(n);
			u[i] = malloc_usable_size(p[i]);
			fill(p[i], u[i], (uint32_t)(i * 7 + n));
		}
		for (int i = 0; i < N; i++) {
			size_t bad = check_fill(p[i], u[i], (uint32_t)(i * 7 + n));
			ck_assert_msg(bad == u[i], "malloc(%zu) block %d: byte %zu of %zu overwritten",
			              n, i, bad, u[i]);
			free(p[i]);
		}
	}
}
END_TEST

/* ---- realloc ---- */

static void *grow_check(void *p, size_t old, size_t new, uint32_t t)
{
	void *q = realloc(p, new);
	ck_assert_msg(q != NULL, "realloc(%zu -> %zu) = NULL", old, new);
	size_t keep = old < new ? old : new;
	size_t bad = check_fill(q, keep, t);
	ck_assert_msg(bad == keep, "realloc(%zu -> %zu): byte %zu changed", old, new, bad);
	ck_assert_msg(malloc_usable_size(q) >= new, "realloc(%zu -> %zu): usable %zu",
	              old, new, malloc_usable_size(q));
	if (new > 8)
		ck_assert_uint_eq(addr(q) & 15, 0);
	fill(q, new, t);
	return q;
}

START_TEST(test_realloc_contents)
{
	/* each path: small->small, small->large, large->large grow and shrink,
	 * large->small, and back */
	static const size_t chain[] = {
		1, 7, 16, 17, 100, 1000, 1024, 1025, 5000, 32768, /* small grows */
		32769, 40000, 100000, 2 * MiB, 5 * MiB + 3,          /* to large, grows */
		3 * MiB, 70000, 33000,                              /* large shrinks */
		32768, 20000, 500, 24, 3, 1,                        /* large -> small, shrinks */
		4 * MiB, 8,                                         /* jumps */
	};
	uint32_t t = 11;
	void *p = malloc(chain[0]);
	fill(p, chain[0], t);
	for (size_t i = 1; i < sizeof chain / sizeof chain[0]; i++)
		p = grow_check(p, chain[i - 1], chain[i], t);
	free(p);

	/* realloc in both directions around every class boundary */
	for (size_t c = 1; c < NCLASSES; c++) {
		size_t n = class_size[c];
		void *q = malloc(n);
		fill(q, n, (uint32_t)c);
		q = grow_check(q, n, n + 1, (uint32_t)c);
		q = grow_check(q, n + 1, n / 2 + 1, (uint32_t)c);
		q = grow_check(q, n / 2 + 1, 2 * n + 5, (uint32_t)c);
		free(q);
	}
}
END_TEST

START_TEST(test_realloc_interleaved)
{
	/* blocks grown while others stay live next to them */
	enum { N = 50 };
	void *p[N];
	size_t sz[N];
	for (int i = 0; i < N; i++) {
		sz[i] = 16 + (size_t)i * 37;
		p[i] = malloc(sz[i]);
		fill(p[i], sz[i], (uint32_t)i);
	}
	for (int round = 0; round < 6; round++) {
		for (int i = 0; i < N; i++) {
			size_t n = (round & 1) ? sz[i] / 3 + 1 : sz[i] * 3;
			p[i] = grow_check(p[i], sz[i], n, (uint32_t)i);
			sz[i] = n;
		}
	}
	for (int i = 0; i < N; i++) {
		ck_assert_uint_eq(check_fill(p[i], sz[i], (uint32_t)i), sz[i]);
		free(p[i]);
	}
}
END_TEST

START_TEST(test_realloc_special)
{
	/* realloc(NULL, n) is malloc(n) */
	void *p = realloc(NULL, 100);
	ck_assert_ptr_nonnull(p);
	ck_assert(live(p));
	ck_assert_uint_eq(malloc_usable_size(p), 112);
	free(p);
	p = realloc(NULL, 200000);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_ge(malloc_usable_size(p), 200000);
	free(p);

	/* to the same usable size: same pointer */
	static const size_t sizes[] = { 1, 8, 9, 100, 1000, 4000, 32768, 32769, 100000, 3 * MiB };
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		p = malloc(sizes[i]);
		size_t u = malloc_usable_size(p);
		fill(p, u, 3);
		void *q = realloc(p, u);
		ck_assert_msg(q == p, "realloc(malloc(%zu), usable %zu) moved %p -> %p",
		              sizes[i], u, p, q);
		q = realloc(q, sizes[i]);
		ck_assert_msg(q == p, "realloc back to %zu moved %p -> %p", sizes[i], p, q);
		ck_assert_uint_eq(malloc_usable_size(q), u);
		ck_assert_uint_eq(check_fill(q, sizes[i], 3), sizes[i]);
		free(q);
	}

	/* a large block shrinks in place, and grows in place when the pages
	 * after it are free (the heap of a fresh test process has room) */
	p = malloc(2 * MiB);
	fill(p, 2 * MiB, 4);
	void *q = realloc(p, MiB + 1);
	ck_assert_msg(q == p, "large shrink moved %p -> %p", p, q);
	ck_assert_uint_eq(check_fill(q, MiB + 1, 4), MiB + 1);
	int in_place = 0;
	for (size_t n = MiB + 8 * KiB; n <= 3 * MiB; n += 64 * KiB) {
		void *r = realloc(q, n);
		ck_assert_ptr_nonnull(r);
		ck_assert_uint_eq(check_fill(r, MiB + 1, 4), MiB + 1);
		in_place += r == q;
		q = r;
	}
	ck_assert_msg(in_place > 0, "a large block never grew in place");
	free(q);

	/* realloc(p, 0) frees p and returns NULL (glibc) */
	p = malloc(50);
	ck_assert(live(p));
	ck_assert_ptr_null(realloc(p, 0));
	ck_assert(!live(p));
}
END_TEST

START_TEST(test_reallocarray)
{
	void *p = reallocarray(NULL, 10, 10);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_ge(malloc_usable_size(p), 100);
	fill(p, 100, 9);
	p = reallocarray(p, 1000, 100);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_ge(malloc_usable_size(p), 100000);
	ck_assert_uint_eq(check_fill(p, 100, 9), 100);
	errno = 0;
	volatile size_t huge = SIZE_MAX / 2;
	void *q = reallocarray(p, huge, 3);
	ck_assert_ptr_null(q);
	ck_assert_int_eq(errno, ENOMEM);
	ck_assert(live(p));  /* untouched on failure */
	ck_assert_uint_eq(check_fill(p, 100, 9), 100);
	free(p);
}
END_TEST

/* ---- calloc ---- */

START_TEST(test_calloc_zero_after_dirty)
{
	static const size_t sizes[] = {
		1, 8, 16, 24, 33, 48, 100, 256, 1000, 1024, 2000, 4096, 8192,
		10000, 32768, 32769, 65536, 100000, MiB, 4 * MiB, 20 * MiB,
	};
	static void *held[2200];
	static uintptr_t dirty[2200];
	for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
		size_t n = sizes[s];
		/* enough blocks to go through a few spans of the class */
		size_t count = n <= 8 ? 2100 : 256 * KiB / n;
		/* large: more blocks than a thread keeps cached, so some go
		 * back to the page heap and come back through it */
		if (n > 32 * KiB && n <= 4 * MiB && count < 12)
			count = 12;
		if (count < 3)
			count = 3;
		if (count > 2100)
			count = 2100;
		size_t ndirty = 0, reused = 0;
		for (int round = 0; round < 3; round++) {
			for (size_t i = 0; i < count; i++) {
				held[i] = malloc(n);
				ck_assert_ptr_nonnull(held[i]);
				memset(held[i], 0xa5, malloc_usable_size(held[i]));
				if (ndirty < 2200)
					dirty[ndirty++] = addr(held[i]);
			}
			for (size_t i = 0; i < count; i++)
				free(held[i]);
			for (size_t i = 0; i < count; i++) {
				held[i] = (i & 1) ? calloc(n, 1) : calloc(1, n);
				ck_assert_ptr_nonnull(held[i]);
				size_t bad = first_nonzero(held[i], n);
				ck_assert_msg(bad == n, "calloc(%zu) round %d block %zu: byte %zu "
				              "is 0x%02x", n, round, i, bad, launder(held[i])[bad]);
				for (size_t d = 0; d < ndirty && reused == 0; d++)
					if (dirty[d] == addr(held[i]))
						reused++;
				memset(held[i], 0x3c, n);
			}
			for (size_t i = 0; i < count; i++)
				free(held[i]);
		}
		/* the test only means something if dirty memory came back */
		ck_assert_msg(reused > 0, "calloc(%zu): no dirty block was ever reused", n);
	}
	/* overflow */
	volatile size_t huge = SIZE_MAX / 2;
	errno = 0;
	ck_assert_ptr_null(calloc(huge, 3));
	ck_assert_int_eq(errno, ENOMEM);
}
END_TEST

/* ---- introspection: trim, mallopt, mallinfo, malloc_stats, malloc_info ---- */

START_TEST(test_mallinfo)
{
	struct mallinfo2 a = mallinfo2();
	struct mallinfo ai = mallinfo();
	void *big = malloc(8 * MiB);
	memset(big, 1, 8 * MiB);
	enum { N = 1000 };
	void *small[N];
	for (int i = 0; i < N; i++)
		small[i] = malloc(100);
	struct mallinfo2 b = mallinfo2();
	struct mallinfo bi = mallinfo();
	ck_assert_uint_ge(b.uordblks, a.uordblks + 8 * MiB + N * 112);
	ck_assert_uint_ge(b.hblks, a.hblks + 1);
	ck_assert_uint_ge(b.hblkhd, a.hblkhd + 8 * MiB);
	ck_assert_uint_ge(b.arena, b.uordblks);
	ck_assert_int_ge(bi.uordblks, ai.uordblks + (int)(8 * MiB));
	ck_assert_int_ge(bi.hblks, ai.hblks + 1);
	free(big);
	for (int i = 0; i < N; i++)
		free(small[i]);
	struct mallinfo2 c = mallinfo2();
	ck_assert_uint_le(c.uordblks + 8 * MiB, b.uordblks);
}
END_TEST

START_TEST(test_malloc_trim)
{
	enum { N = 16 };
	void *p[N];
	for (int i = 0; i < N; i++) {
		p[i] = malloc(4 * MiB);
		memset(p[i], 1, 4 * MiB);
	}
	for (int i = 0; i < N; i++)
		free(p[i]);
	/* 64 MiB free and resident: trim gives some back */
	ck_assert_int_eq(malloc_trim(0), 1);
	/* allocation still works */
	void *q = malloc(4 * MiB);
	memset(q, 2, 4 * MiB);
	free(q);
}
END_TEST

START_TEST(test_mallopt)
{
	/* M_CHECK_ACTION (-5) is accepted; bit 1 keeps abort-on-error */
	ck_assert_int_eq(mallopt(M_CHECK_ACTION, 3), 1);
	void *p = malloc(10);
	ck_assert_ptr_nonnull(p);
	free(p);
	/* an unknown parameter is refused, not a crash */
	ck_assert_int_eq(mallopt(12345, 1), 0);
}
END_TEST

/* Run fn with fd 2 sent to a temporary file; return what it wrote. */
static char *capture_stderr(void (*fn)(void))
{
	char path[] = "/tmp/gm_test_api_XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	unlink(path);
	fflush(stderr);
	int saved = dup(2);
	dup2(fd, 2);
	fn();
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	off_t len = lseek(fd, 0, SEEK_END);
	char *buf = malloc((size_t)len + 1);
	pread(fd, buf, (size_t)len, 0);
	buf[len] = 0;
	close(fd);
	return buf;
}

START_TEST(test_malloc_stats)
{
	void *p = malloc(1000);
	char *out = capture_stderr(malloc_stats);
	ck_assert_msg(strstr(out, "in use bytes") != NULL, "malloc_stats wrote \"%s\"", out);
	ck_assert_msg(strstr(out, "system bytes") != NULL, "malloc_stats wrote \"%s\"", out);
	free(out);
	free(p);
}
END_TEST

START_TEST(test_malloc_info)
{
	FILE *fp = tmpfile();
	ck_assert_ptr_nonnull(fp);
	void *p = malloc(100000);
	ck_assert_int_eq(malloc_info(0, fp), 0);
	fflush(fp);
	long len = ftell(fp);
	ck_assert_int_gt(len, 0);
	char *buf = malloc((size_t)len + 1);
	rewind(fp);
	ck_assert_uint_eq(fread(buf, 1, (size_t)len, fp), (size_t)len);
	buf[len] = 0;
	ck_assert_msg(strncmp(buf, "<malloc version=", 16) == 0, "malloc_info: %.60s", buf);
	ck_assert_msg(strstr(buf, "</malloc>") != NULL, "malloc_info: no </malloc>");
	free(buf);
	/* options other than 0 are refused (glibc: EINVAL) */
	ck_assert_int_ne(malloc_info(1, fp), 0);
	fclose(fp);
	free(p);
}
END_TEST

/* ---- cfree, as a binary linked before glibc 2.26 calls it ---- */

/* The reference names glibc's compat version, as in such a binary; the
 * dynamic linker binds it to the first definition in the search order,
 * libgomalloc's (unversioned).  Without it the call reached glibc's free
 * with our block: abort, "free(): invalid pointer". */
void old_cfree(void *p) __asm__("cfree");
__asm__(".symver cfree,cfree@GLIBC_2.2.5");

START_TEST(test_cfree_old_binaries)
{
	for (int i = 0; i < 2000; i++) {
		size_t n = 1 + (size_t)i * 37 % 70000;
		void *p = malloc(n);
		ck_assert(live(p));
		old_cfree(p);
		ck_assert(!live(p));
	}
	void *p = calloc(3, 5000);
	old_cfree(p);
	ck_assert(!live(p));
	old_cfree(NULL);
}
END_TEST

/* ---- glibc's __libc_* names, through dlsym ---- */

START_TEST(test_libc_names)
{
	void *(*l_malloc)(size_t) = (void *(*)(size_t))dlsym(RTLD_DEFAULT, "__libc_malloc");
	void (*l_free)(void *) = (void (*)(void *))dlsym(RTLD_DEFAULT, "__libc_free");
	void *(*l_calloc)(size_t, size_t) =
	    (void *(*)(size_t, size_t))dlsym(RTLD_DEFAULT, "__libc_calloc");
	void *(*l_realloc)(void *, size_t) =
	    (void *(*)(void *, size_t))dlsym(RTLD_DEFAULT, "__libc_realloc");
	void *(*l_memalign)(size_t, size_t) =
	    (void *(*)(size_t, size_t))dlsym(RTLD_DEFAULT, "__libc_memalign");
	void *(*l_valloc)(size_t) = (void *(*)(size_t))dlsym(RTLD_DEFAULT, "__libc_valloc");
	void *(*l_pvalloc)(size_t) = (void *(*)(size_t))dlsym(RTLD_DEFAULT, "__libc_pvalloc");
	int (*l_posix_memalign)(void **, size_t, size_t) =
	    (int (*)(void **, size_t, size_t))dlsym(RTLD_DEFAULT, "__posix_memalign");
	ck_assert_ptr_nonnull(l_malloc);
	ck_assert_ptr_nonnull(l_free);
	ck_assert_ptr_nonnull(l_calloc);
	ck_assert_ptr_nonnull(l_realloc);
	ck_assert_ptr_nonnull(l_memalign);
	ck_assert_ptr_nonnull(l_valloc);
	ck_assert_ptr_nonnull(l_pvalloc);
	ck_assert_ptr_nonnull(l_posix_memalign);

	void *p = l_malloc(100);
	ck_assert(live(p));
	ck_assert_uint_eq(malloc_usable_size(p), 112);
	fill(p, 100, 5);
	p = l_realloc(p, 5000);
	ck_assert(live(p));
	ck_assert_uint_eq(check_fill(p, 100, 5), 100);
	l_free(p);
	ck_assert(!live(p));

	unsigned char *c = l_calloc(10, 100);
	ck_assert(live(c));
	ck_assert_uint_eq(first_nonzero(c, 1000), 1000);
	free(c);  /* the families mix */

	p = l_memalign(4096, 100);
	ck_assert(live(p));
	ck_assert_uint_eq(addr(p) & 4095, 0);
	l_free(p);
	p = l_valloc(10);
	ck_assert(live(p));
	ck_assert_uint_eq(addr(p) & 4095, 0);
	l_free(p);
	p = l_pvalloc(10);
	ck_assert(live(p));
	ck_assert_uint_eq(addr(p) & 4095, 0);
	ck_assert_uint_ge(malloc_usable_size(p), 4096);
	l_free(p);
	p = NULL;
	ck_assert_int_eq(l_posix_memalign(&p, 256, 1000), 0);
	ck_assert(live(p));
	ck_assert_uint_eq(addr(p) & 255, 0);
	free(p);
	ck_assert_int_eq(l_posix_memalign(&p, 3, 1000), EINVAL);
}
END_TEST

static Suite *api_suite(void)
{
	Suite *s = suite_create("api");
	TCase *tc = tcase_create("api");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_runs_on_gomalloc);
	tcase_add_test(tc, test_exported_symbols);
	tcase_add_test(tc, test_malloc_zero);
	tcase_add_test(tc, test_free_variants);
	tcase_add_test(tc, test_malloc_alignment);
	tcase_add_test(tc, test_aligned_alloc);
	tcase_add_test(tc, test_posix_memalign);
	tcase_add_test(tc, test_memalign);
	tcase_add_test(tc, test_aligned_many_live);
	tcase_add_test(tc, test_valloc_pvalloc);
	tcase_add_test(tc, test_usable_size_small);
	tcase_add_test(tc, test_usable_size_large);
	tcase_add_test(tc, test_usable_size_writable);
	tcase_add_test(tc, test_realloc_contents);
	tcase_add_test(tc, test_realloc_interleaved);
	tcase_add_test(tc, test_realloc_special);
	tcase_add_test(tc, test_reallocarray);
	tcase_add_test(tc, test_calloc_zero_after_dirty);
	tcase_add_test(tc, test_mallinfo);
	tcase_add_test(tc, test_malloc_trim);
	tcase_add_test(tc, test_mallopt);
	tcase_add_test(tc, test_malloc_stats);
	tcase_add_test(tc, test_malloc_info);
	tcase_add_test(tc, test_libc_names);
	tcase_add_test(tc, test_cfree_old_binaries);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	lookup_gm();
	SRunner *sr = srunner_create(api_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
