/*
 * test_errors.c -- glibc-grade error behaviour of every allocation function
 * (issue 3, "Errors"): ENOMEM for sizes that cannot be served, overflow of
 * calloc/reallocarray/valloc/pvalloc, posix_memalign/aligned_alloc/memalign
 * alignment checks, errno across free, NULL and zero-size corner cases,
 * realloc in place and a failed realloc leaving the block intact.
 *
 * Built twice: linked with libgomalloc (tests/api/test_errors) and without
 * it, run under LD_PRELOAD (tests/api/test_errors-preload, -DGM_TEST_PRELOAD);
 * gm_* functions are then reached through dlsym.
 */
#define _GNU_SOURCE
#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gomalloc.h>

#include "support.h"

/* C23 (glibc 2.39); gomalloc exports them, this libc's headers may not. */
void free_sized(void *p, size_t size);
void free_aligned_sized(void *p, size_t align, size_t size);

/* Hide values from the optimiser so it cannot fold or drop allocator calls. */
static inline size_t opq(size_t x)
{
	__asm__ volatile("" : "+r"(x));
	return x;
}
static inline void *opp(void *p)
{
	__asm__ volatile("" : "+r"(p) : : "memory");
	return p;
}

static void fill(void *p, size_t n, unsigned seed)
{
	unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		b[i] = (unsigned char)(seed + i * 7);
}

static int check_fill(const void *p, size_t n, unsigned seed)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i] != (unsigned char)(seed + i * 7))
			return 0;
	return 1;
}

START_TEST(test_runs_on_gomalloc)
{
	assert_runs_on_gomalloc();
}
END_TEST

/* Sizes no allocator can serve on a 64-bit machine (above PTRDIFF_MAX or
 * beyond any user address space, even 57-bit). */
static const size_t huge_sizes[] = {
	SIZE_MAX,
	SIZE_MAX - 1,
	SIZE_MAX - 15,
	SIZE_MAX - 4095,
	SIZE_MAX - 8191,
	SIZE_MAX - (1u << 20),
	(size_t)PTRDIFF_MAX + 1,
	(size_t)PTRDIFF_MAX,
	(size_t)PTRDIFF_MAX - 8191,
	(size_t)PTRDIFF_MAX - (1u << 20),
	(size_t)1 << 62,
	(size_t)1 << 58,
	((size_t)1 << 57) + 12345,
};
#define NHUGE (sizeof huge_sizes / sizeof huge_sizes[0])

#define EXPECT_ENOMEM(call, what, n)                                              \
	do {                                                                       \
		errno = 0;                                                         \
		void *r_ = (call);                                                 \
		int e_ = errno;                                                    \
		ck_assert_msg(r_ == NULL, "%s(%zu) returned %p, want NULL", what,  \
		              (size_t)(n), r_);                                     \
		ck_assert_msg(e_ == ENOMEM, "%s(%zu): errno %d, want ENOMEM", what, \
		              (size_t)(n), e_);                                     \
	} while (0)

static void check_every_function_enomem(void)
{
	void *(*noscan)(size_t) = GM_FN(gm_malloc_noscan);
	void *(*calloc_noscan)(size_t, size_t) = GM_FN(gm_calloc_noscan);
	void *(*aligned_noscan)(size_t, size_t) = GM_FN(gm_aligned_alloc_noscan);
	for (size_t i = 0; i < NHUGE; i++) {
		size_t n = opq(huge_sizes[i]);
		EXPECT_ENOMEM(malloc(n), "malloc", n);
		EXPECT_ENOMEM(calloc(1, n), "calloc(1, n)", n);
		EXPECT_ENOMEM(calloc(n, 1), "calloc(n, 1)", n);
		EXPECT_ENOMEM(realloc(NULL, n), "realloc(NULL, n)", n);
		EXPECT_ENOMEM(reallocarray(NULL, 1, n), "reallocarray(NULL, 1, n)", n);
		EXPECT_ENOMEM(reallocarray(NULL, n, 1), "reallocarray(NULL, n, 1)", n);
		EXPECT_ENOMEM(aligned_alloc(16, n), "aligned_alloc(16)", n);
		EXPECT_ENOMEM(aligned_alloc(64, n), "aligned_alloc(64)", n);
		EXPECT_ENOMEM(aligned_alloc(4096, n), "aligned_alloc(4096)", n);
		EXPECT_ENOMEM(aligned_alloc(1 << 20, n), "aligned_alloc(1 MiB)", n);
		EXPECT_ENOMEM(memalign(8, n), "memalign(8)", n);
		EXPECT_ENOMEM(memalign(256, n), "memalign(256)", n);
		EXPECT_ENOMEM(memalign(1 << 16, n), "memalign(64 KiB)", n);
		EXPECT_ENOMEM(valloc(n), "valloc", n);
		EXPECT_ENOMEM(pvalloc(n), "pvalloc", n);
		EXPECT_ENOMEM(noscan(n), "gm_malloc_noscan", n);
		EXPECT_ENOMEM(calloc_noscan(1, n), "gm_calloc_noscan", n);
		EXPECT_ENOMEM(aligned_noscan(64, n), "gm_aligned_alloc_noscan", n);

		void *m = (void *)0x1234;
		int rc = posix_memalign(&m, 64, n);
		ck_assert_msg(rc == ENOMEM, "posix_memalign(64, %zu) = %d, want ENOMEM", n, rc);
		ck_assert_ptr_eq(m, (void *)0x1234);
		rc = posix_memalign(&m, 1 << 20, n);
		ck_assert_msg(rc == ENOMEM, "posix_memalign(1 MiB, %zu) = %d", n, rc);
		ck_assert_ptr_eq(m, (void *)0x1234);
	}
}

START_TEST(test_huge_enomem_fresh)
{
	check_every_function_enomem();
	/* the heap is still fine */
	void *p = malloc(opq(100));
	ck_assert_ptr_nonnull(p);
	free(p);
}
END_TEST

START_TEST(test_huge_enomem_after_small)
{
	enum { N = 3000 };
	static void *blocks[N];
	static size_t sizes[N];
	for (int i = 0; i < N; i++) {
		sizes[i] = (size_t)(i * 37 % 3000) + 1;
		if (i % 200 == 0)
			sizes[i] = 40000 + (size_t)i * 100; /* some large */
		blocks[i] = malloc(opq(sizes[i]));
		ck_assert_ptr_nonnull(blocks[i]);
		fill(blocks[i], sizes[i], (unsigned)i);
	}
	for (int i = 0; i < N; i += 3) {
		free(blocks[i]);
		blocks[i] = NULL;
	}
	check_every_function_enomem();
	for (int i = 0; i < N; i++) {
		if (blocks[i] == NULL)
			continue;
		ck_assert_msg(check_fill(blocks[i], sizes[i], (unsigned)i),
		              "block %d corrupted by failed huge requests", i);
		free(blocks[i]);
	}
	void *p = malloc(opq(5000));
	ck_assert_ptr_nonnull(p);
	free(p);
}
END_TEST

/* n * size wraps around; a broken calloc would hand out a small block. */
START_TEST(test_calloc_overflow)
{
	static const size_t pairs[][2] = {
		{ SIZE_MAX, SIZE_MAX },
		{ SIZE_MAX, 2 },
		{ 2, SIZE_MAX },
		{ (SIZE_MAX / 2) + 1, 2 },          /* exactly 2^64: wraps to 0 */
		{ (size_t)1 << 32, (size_t)1 << 32 }, /* 2^64: wraps to 0 */
		{ (SIZE_MAX / 3) + 2, 3 },          /* wraps to 3 */
		{ 16, (SIZE_MAX / 16) + 2 },        /* wraps to 16 */
		{ 65537, (SIZE_MAX / 65537) + 1 },  /* wraps to a small value */
		{ (size_t)PTRDIFF_MAX / 2 + 1, 2 }, /* 2^63: above PTRDIFF_MAX */
	};
	void *(*calloc_noscan)(size_t, size_t) = GM_FN(gm_calloc_noscan);
	for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
		size_t a = opq(pairs[i][0]), b = opq(pairs[i][1]);
		EXPECT_ENOMEM(calloc(a, b), "calloc", i);
		EXPECT_ENOMEM(calloc_noscan(a, b), "gm_calloc_noscan", i);
		EXPECT_ENOMEM(reallocarray(NULL, a, b), "reallocarray(NULL)", i);
		/* with a live block: fails and leaves it intact */
		void *p = malloc(opq(100));
		ck_assert_ptr_nonnull(p);
		fill(p, 100, 3);
		EXPECT_ENOMEM(reallocarray(p, a, b), "reallocarray(p)", i);
		ck_assert(check_fill(p, 100, 3));
		ck_assert_uint_ge(malloc_usable_size(p), 100);
		free(p);
	}
	/* products that fit still work and are zeroed */
	unsigned char *q = calloc(opq(1000), opq(1000));
	ck_assert_ptr_nonnull(q);
	for (size_t i = 0; i < 1000000; i += 4093)
		ck_assert_uint_eq(q[i], 0);
	free(q);
}
END_TEST

/* valloc/pvalloc round the size up to a page: near SIZE_MAX that wraps. */
START_TEST(test_valloc_pvalloc_overflow)
{
	static const size_t sizes[] = {
		SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 100, SIZE_MAX - 4094,
		SIZE_MAX - 4095, /* rounds up to exactly 2^64 = 0 */
		SIZE_MAX - 4096, SIZE_MAX - 8191,
		(size_t)PTRDIFF_MAX, (size_t)PTRDIFF_MAX - 100,
	};
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		size_t n = opq(sizes[i]);
		EXPECT_ENOMEM(valloc(n), "valloc", n);
		EXPECT_ENOMEM(pvalloc(n), "pvalloc", n);
	}
	/* ordinary sizes: page aligned; pvalloc rounds the usable size up */
	for (size_t n = 0; n < 20000; n += 1337) {
		void *v = valloc(opq(n));
		ck_assert_ptr_nonnull(v);
		ck_assert_uint_eq((uintptr_t)v % 4096, 0);
		ck_assert_uint_ge(malloc_usable_size(v), n);
		memset(v, 1, n);
		void *pv = pvalloc(opq(n));
		ck_assert_ptr_nonnull(pv);
		ck_assert_uint_eq((uintptr_t)pv % 4096, 0);
		size_t want = n == 0 ? 4096 : (n + 4095) & ~(size_t)4095;
		ck_assert_uint_ge(malloc_usable_size(pv), want);
		memset(pv, 2, want);
		free(v);
		free(pv);
	}
}
END_TEST

START_TEST(test_posix_memalign_einval)
{
	static const size_t bad[] = {
		0, 1, 2, 4,           /* powers of two below sizeof(void *) */
		3, 12, 24, 48, 96, 100, 4097, 65535,
		((size_t)1 << 20) + 8, SIZE_MAX, SIZE_MAX - 7,
		((size_t)1 << 63) + 8,
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		void *m = (void *)0x4321;
		int rc = posix_memalign(&m, opq(bad[i]), opq(64));
		ck_assert_msg(rc == EINVAL, "posix_memalign(align %zu) = %d, want EINVAL",
		              bad[i], rc);
		ck_assert_msg(m == (void *)0x4321, "posix_memalign(align %zu) wrote *memptr",
		              bad[i]);
		rc = posix_memalign(&m, opq(bad[i]), opq(SIZE_MAX)); /* EINVAL wins */
		ck_assert_msg(rc == EINVAL, "posix_memalign(align %zu, SIZE_MAX) = %d",
		              bad[i], rc);
		ck_assert_ptr_eq(m, (void *)0x4321);
	}
	/* alignments no machine can satisfy: ENOMEM, *memptr untouched */
	static const size_t impossible[] = { (size_t)1 << 63, (size_t)1 << 62,
		                             (size_t)1 << 58 };
	for (size_t i = 0; i < 3; i++) {
		void *m = (void *)0x4321;
		int rc = posix_memalign(&m, opq(impossible[i]), opq(1));
		ck_assert_msg(rc == ENOMEM, "posix_memalign(align 2^%d, 1) = %d, want ENOMEM",
		              __builtin_ctzll(impossible[i]), rc);
		ck_assert_ptr_eq(m, (void *)0x4321);
	}
	/* good alignments: aligned, writable, usable size covers the request */
	for (size_t a = sizeof(void *); a <= ((size_t)1 << 22); a <<= 1) {
		size_t sizes[] = { 0, 1, a - 1, a, a + 1, 3 * a + 5, 70000 };
		for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
			void *m = NULL;
			int rc = posix_memalign(&m, opq(a), opq(sizes[k]));
			ck_assert_msg(rc == 0, "posix_memalign(%zu, %zu) = %d", a, sizes[k], rc);
			ck_assert_ptr_nonnull(m);
			ck_assert_msg((uintptr_t)m % a == 0, "posix_memalign(%zu): %p", a, m);
			ck_assert_uint_ge(malloc_usable_size(m), sizes[k]);
			memset(m, 0x5a, sizes[k]);
			free(m);
		}
	}
}
END_TEST

/* glibc 2.38: aligned_alloc and memalign fail with EINVAL for alignment 0 or
 * not a power of two (the choice for memalign too). */
START_TEST(test_aligned_alloc_memalign_einval)
{
	static const size_t bad[] = { 0, 3, 5, 6, 12, 24, 48, 100, 4095, 4097,
		                      ((size_t)1 << 20) + 16, SIZE_MAX,
		                      ((size_t)1 << 63) + 1 };
	void *(*aligned_noscan)(size_t, size_t) = GM_FN(gm_aligned_alloc_noscan);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		size_t a = opq(bad[i]);
		errno = 0;
		void *p = aligned_alloc(a, opq(64));
		ck_assert_msg(p == NULL && errno == EINVAL,
		              "aligned_alloc(%zu, 64) = %p errno %d, want NULL/EINVAL", a, p, errno);
		errno = 0;
		p = memalign(a, opq(64));
		ck_assert_msg(p == NULL && errno == EINVAL,
		              "memalign(%zu, 64) = %p errno %d, want NULL/EINVAL", a, p, errno);
		errno = 0;
		p = aligned_noscan(a, opq(64));
		ck_assert_msg(p == NULL && errno == EINVAL,
		              "gm_aligned_alloc_noscan(%zu) = %p errno %d", a, p, errno);
	}
	static const size_t impossible[] = { (size_t)1 << 63, (size_t)1 << 62,
		                             (size_t)1 << 58 };
	for (size_t i = 0; i < 3; i++) {
		EXPECT_ENOMEM(aligned_alloc(opq(impossible[i]), opq(1)), "aligned_alloc(2^k, 1)",
		              impossible[i]);
		EXPECT_ENOMEM(memalign(opq(impossible[i]), opq(1)), "memalign(2^k, 1)",
		              impossible[i]);
	}
	/* every power of two works, including those below sizeof(void *) */
	for (size_t a = 1; a <= ((size_t)1 << 21); a <<= 1) {
		void *p = aligned_alloc(opq(a), opq(a * 3));
		ck_assert_ptr_nonnull(p);
		ck_assert_uint_eq((uintptr_t)p % a, 0);
		ck_assert_uint_ge(malloc_usable_size(p), a * 3);
		memset(p, 1, a * 3);
		void *q = memalign(opq(a), opq(17));
		ck_assert_ptr_nonnull(q);
		ck_assert_uint_eq((uintptr_t)q % a, 0);
		ck_assert_uint_ge(malloc_usable_size(q), 17);
		memset(q, 2, 17);
		free(p);
		free(q);
	}
}
END_TEST

START_TEST(test_free_preserves_errno)
{
	enum { N = 2000 };
	static void *p[N];
	for (int i = 0; i < N; i++) {
		size_t n = (i % 10 == 0) ? (size_t)(i + 1) * 4096 : (size_t)(i % 700) + 1;
		p[i] = malloc(opq(n));
		ck_assert_ptr_nonnull(p[i]);
	}
	/* big blocks: freeing them may unmap or madvise */
	void *big[4];
	for (int i = 0; i < 4; i++) {
		big[i] = malloc(opq((size_t)(16 + i * 20) << 20));
		ck_assert_ptr_nonnull(big[i]);
		memset(big[i], 1, 1 << 20);
	}
	for (int i = 0; i < N; i++) {
		errno = 9876;
		free(p[i]);
		ck_assert_msg(errno == 9876, "free(block %d) changed errno to %d", i, errno);
	}
	for (int i = 0; i < 4; i++) {
		errno = 4242;
		free(big[i]);
		ck_assert_msg(errno == 4242, "free(big %d) changed errno to %d", i, errno);
	}
	errno = 77;
	free(NULL);
	ck_assert_int_eq(errno, 77);
	void *q = malloc(opq(1000));
	errno = 78;
	GM_FN(free_sized)(q, 1000);
	ck_assert_int_eq(errno, 78);
	q = aligned_alloc(4096, opq(8192));
	errno = 79;
	GM_FN(free_aligned_sized)(q, 4096, 8192);
	ck_assert_int_eq(errno, 79);
	errno = 80;
	malloc_trim(0);
	(void)errno;
}
END_TEST

START_TEST(test_null_and_zero)
{
	free(NULL);
	GM_FN(free_sized)(NULL, 0);
	GM_FN(free_aligned_sized)(NULL, 64, 0);
	ck_assert_uint_eq(malloc_usable_size(NULL), 0);
	/* malloc(0), calloc(0, n), realloc(NULL, 0) give distinct live blocks */
	void *a = malloc(opq(0)), *b = malloc(opq(0));
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ck_assert_ptr_ne(a, b);
	void *c = calloc(opq(0), opq(10));
	void *d = realloc(NULL, opq(0));
	ck_assert_ptr_nonnull(c);
	ck_assert_ptr_nonnull(d);
	ck_assert_ptr_ne(c, d);
	int (*kind_of)(const void *) = GM_FN(gm_kind_of);
	ck_assert_int_eq(kind_of(a), GM_KIND_SCAN);
	ck_assert_int_eq(kind_of(d), GM_KIND_SCAN);
	free(a);
	free(b);
	free(c);
	free(d);
}
END_TEST

/* realloc(p, 0) frees p and returns NULL (glibc). */
START_TEST(test_realloc_zero_frees)
{
	int (*kind_of)(const void *) = GM_FN(gm_kind_of);
	static const size_t sizes[] = { 1, 24, 100, 1024, 5000, 32768, 40000, 1 << 20 };
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		void *keep = malloc(opq(sizes[i])); /* keep the span alive */
		void *p = malloc(opq(sizes[i]));
		ck_assert_ptr_nonnull(p);
		ck_assert_int_eq(kind_of(p), GM_KIND_SCAN);
		errno = 0;
		void *r = realloc(opp(p), opq(0));
		ck_assert_msg(r == NULL, "realloc(p of %zu, 0) = %p, want NULL", sizes[i], r);
		ck_assert_msg(kind_of(p) == -1, "realloc(p of %zu, 0) did not free p", sizes[i]);
		free(keep);
	}
	/* the memory really went back: many cycles do not grow the heap */
	struct mallinfo2 before = mallinfo2();
	for (int i = 0; i < 20000; i++) {
		void *p = malloc(opq(4000));
		ck_assert_ptr_nonnull(p);
		ck_assert_ptr_null(realloc(p, opq(0)));
	}
	struct mallinfo2 after = mallinfo2();
	ck_assert_msg(after.uordblks < before.uordblks + (1 << 20),
	              "realloc(p, 0) leaks: in use %zu -> %zu", before.uordblks, after.uordblks);
}
END_TEST

START_TEST(test_realloc_usable_in_place)
{
	static const size_t sizes[] = { 1, 8, 9, 16, 17, 24, 25, 33, 100, 500, 1000, 1024,
		                        1025, 2000, 4000, 8192, 9000, 16385, 30000, 32768,
		                        32769, 40000, 65536, 100000, 1 << 20, (5 << 20) + 3,
		                        40 << 20 };
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		size_t n = opq(sizes[i]);
		void *p = malloc(n);
		ck_assert_ptr_nonnull(p);
		size_t u = malloc_usable_size(p);
		ck_assert_uint_ge(u, n);
		fill(p, u, 9);
		void *q = realloc(p, opq(u));
		ck_assert_msg(q == p, "realloc(p of %zu, usable %zu) moved %p -> %p", n, u, p, q);
		ck_assert(check_fill(q, u, 9));
		ck_assert_uint_eq(malloc_usable_size(q), u);
		/* shrinking to a size that malloc would serve with a block of the
		 * same usable size must not move either (a copy gains nothing) */
		void *t = malloc(n);
		size_t tu = malloc_usable_size(t);
		free(t);
		void *r = realloc(q, opq(n));
		if (tu == u)
			ck_assert_msg(r == p, "realloc(p of usable %zu, %zu) moved to a block "
			              "of the same size", u, n);
		ck_assert(check_fill(r, n, 9));
		free(r);
	}
	/* aligned and noscan blocks too */
	void *a = aligned_alloc(4096, opq(5000));
	size_t u = malloc_usable_size(a);
	ck_assert_ptr_eq(realloc(a, opq(u)), a);
	free(a);
	void *(*noscan)(size_t) = GM_FN(gm_malloc_noscan);
	int (*kind_of)(const void *) = GM_FN(gm_kind_of);
	void *ns = noscan(opq(300));
	u = malloc_usable_size(ns);
	ck_assert_ptr_eq(realloc(ns, opq(u)), ns);
	void *ns2 = realloc(ns, opq(100000)); /* moving keeps the kind */
	ck_assert_ptr_nonnull(ns2);
	ck_assert_int_eq(kind_of(ns2), GM_KIND_NOSCAN);
	free(ns2);
}
END_TEST

START_TEST(test_failed_realloc_keeps_block)
{
	static const size_t sizes[] = { 16, 100, 3000, 32768, 100000, 3 << 20 };
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		size_t n = sizes[i];
		void *p = malloc(opq(n));
		ck_assert_ptr_nonnull(p);
		fill(p, n, (unsigned)i);
		size_t u = malloc_usable_size(p);
		for (size_t k = 0; k < NHUGE; k++) {
			EXPECT_ENOMEM(realloc(p, opq(huge_sizes[k])), "realloc(p, huge)",
			              huge_sizes[k]);
			EXPECT_ENOMEM(reallocarray(p, opq(1), opq(huge_sizes[k])),
			              "reallocarray(p, 1, huge)", huge_sizes[k]);
			EXPECT_ENOMEM(reallocarray(p, opq(huge_sizes[k]), opq(2)),
			              "reallocarray(p, huge, 2)", huge_sizes[k]);
		}
		ck_assert_msg(check_fill(p, n, (unsigned)i), "block of %zu changed by failed realloc", n);
		ck_assert_uint_eq(malloc_usable_size(p), u);
		/* still a live block: it can grow and be freed normally */
		void *q = realloc(p, opq(n * 2 + 1));
		ck_assert_ptr_nonnull(q);
		ck_assert(check_fill(q, n, (unsigned)i));
		free(q);
	}
}
END_TEST

static Suite *errors_suite(void)
{
	Suite *s = suite_create("errors");
	TCase *tc = tcase_create("errors");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_runs_on_gomalloc);
	tcase_add_test(tc, test_huge_enomem_fresh);
	tcase_add_test(tc, test_huge_enomem_after_small);
	tcase_add_test(tc, test_calloc_overflow);
	tcase_add_test(tc, test_valloc_pvalloc_overflow);
	tcase_add_test(tc, test_posix_memalign_einval);
	tcase_add_test(tc, test_aligned_alloc_memalign_einval);
	tcase_add_test(tc, test_free_preserves_errno);
	tcase_add_test(tc, test_null_and_zero);
	tcase_add_test(tc, test_realloc_zero_frees);
	tcase_add_test(tc, test_realloc_usable_in_place);
	tcase_add_test(tc, test_failed_realloc_keeps_block);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(errors_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
