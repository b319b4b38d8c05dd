/*
 * test_zero.c -- calloc returns zeroed memory over every kind of memory the
 * heap can hand out again (issue 4, "Zeroing").
 *
 * gomalloc skips the memset of calloc on memory it knows is zero (fresh
 * from the OS above an arena's zeroed_base, or scavenged with
 * MADV_DONTNEED: span needzero).  Each case here makes memory dirty (0xa5),
 * frees it, brings it back through one path, and checks that calloc's
 * bytes are all zero:
 *   recycled_small   the same size class again, owner frees and frees by
 *                    another thread (remote bits)
 *   recycled_large   large blocks again: the thread's large cache (same
 *                    and slightly smaller size), the page heap (> 4 MiB),
 *                    a larger block over freed + fresh pages
 *   recycled_cross   dirty large blocks become small spans and back
 *   scavenged_trim   free, malloc_trim(0), calloc (small and large)
 *   scavenged_part   free, gm_scavenge(some bytes): runs partly scavenged
 *   lazy_large       large blocks used densely, sparsely, densely again:
 *                    calloc's choice of memset or MADV_DONTNEED follows
 *                    (mincore), and the bytes are zero either way
 * Every case runs twice, in a child re-executed with GOMALLOC_CONF unset
 * (MADV_DONTNEED) and with madvise:free.  MADV_FREE pages keep their old
 * contents until the kernel reclaims them, so gomalloc must not count them
 * as zero: the madvise:free run catches exactly that.  (The child also
 * reports whether old contents survived the release, i.e. whether the run
 * could see the bug.)
 */
#define _GNU_SOURCE
#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gomalloc.h>

#include "support.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define DIRTY 0xa5

static int nfail;

/* Offset of the first non-zero byte, or -1. */
static long first_nonzero(const void *p, size_t n)
{
	const unsigned char *c = p;
	size_t i = 0;
	for (; i < n && ((uintptr_t)(c + i) & 7); i++)
		if (c[i])
			return (long)i;
	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, c + i, sizeof w);
		if (w)
			break;
	}
	for (; i < n; i++)
		if (c[i])
			return (long)i;
	return -1;
}

static void dirty(void *p)
{
	memset(p, DIRTY, malloc_usable_size(p));
}

/* calloc(1, size) and check every requested byte. */
static void *calloc_checked(size_t size, const char *what)
{
	void *p = calloc(1, size);
	if (p == NULL) {
		printf("FAIL-REASON: %s: calloc(1, %zu) returned NULL\n", what, size);
		nfail++;
		return NULL;
	}
	long off = first_nonzero(p, size);
	if (off >= 0) {
		if (nfail < 8)
			printf("FAIL-REASON: %s: calloc(1, %zu) = %p not zero at offset "
			       "%ld (byte 0x%02x)\n", what, size, p, off,
			       ((unsigned char *)p)[off]);
		nfail++;
	}
	return p;
}

typedef size_t (*gm_scavenge_fn_t)(size_t);
typedef int (*gm_stats_fn_t)(gm_stats_t *);

static gm_stats_t stats_now(void)
{
	gm_stats_t s;
	memset(&s, 0, sizeof s);
	gm_stats_fn_t f = (gm_stats_fn_t)dlsym(RTLD_DEFAULT, "gm_stats");
	if (f != NULL)
		f(&s);
	return s;
}

/* ---- cases ---- */

static const size_t small_sizes[] = {
	8, 16, 24, 32, 48, 64, 100, 128, 256, 500, 1024, 2048, 4000, 8192,
	12000, 20000, 32768,
};
#define NSMALL (sizeof small_sizes / sizeof small_sizes[0])

static void *remote_free_thread(void *arg)
{
	void **v = arg;
	for (size_t i = 0; v[i] != NULL; i++)
		free(v[i]);
	return NULL;
}

static void case_recycled_small(void)
{
	for (size_t k = 0; k < NSMALL; k++) {
		size_t sz = small_sizes[k];
		size_t n = 2 * MiB / sz;
		if (n < 64)
			n = 64;
		void **v = calloc(n + 1, sizeof(void *));
		/* round 1: owner frees */
		for (size_t i = 0; i < n; i++) {
			v[i] = malloc(sz);
			dirty(v[i]);
		}
		for (size_t i = n; i-- > 0;)
			free(v[i]);
		for (size_t i = 0; i < n; i++)
			v[i] = calloc_checked(sz, "recycled_small/owner");
		/* round 2: dirty the calloc'ed blocks, free every other one,
		 * calloc into the holes */
		for (size_t i = 0; i < n; i++)
			dirty(v[i]);
		for (size_t i = 0; i < n; i += 2)
			free(v[i]);
		for (size_t i = 0; i < n; i += 2)
			v[i] = calloc_checked(sz, "recycled_small/holes");
		for (size_t i = 0; i < n; i++)
			dirty(v[i]);
		/* round 3: another thread frees them (remote frees) */
		v[n] = NULL;
		pthread_t t;
		if (pthread_create(&t, NULL, remote_free_thread, v) != 0) {
			printf("FAIL-REASON: pthread_create failed\n");
			nfail++;
			return;
		}
		pthread_join(t, NULL);
		for (size_t i = 0; i < n; i++)
			v[i] = calloc_checked(sz, "recycled_small/remote");
		for (size_t i = 0; i < n; i++)
			free(v[i]);
		free(v);
	}
}

static const size_t large_sizes[] = {
	33 * KiB, 40 * KiB, 64 * KiB, 100 * KiB, 256 * KiB, 1 * MiB,
	3 * MiB, 8 * MiB, 17 * MiB, 40 * MiB,
};
#define NLARGE (sizeof large_sizes / sizeof large_sizes[0])

static void case_recycled_large(void)
{
	for (size_t k = 0; k < NLARGE; k++) {
		size_t sz = large_sizes[k];
		void *v[4];
		for (int i = 0; i < 4; i++) {
			v[i] = malloc(sz);
			dirty(v[i]);
		}
		for (int i = 0; i < 4; i++)
			free(v[i]);
		/* same size (thread cache or heap), then slightly smaller */
		v[0] = calloc_checked(sz, "recycled_large/same");
		v[1] = calloc_checked(sz - sz / 16, "recycled_large/smaller");
		v[2] = calloc_checked(sz - 5000, "recycled_large/smaller2");
		v[3] = calloc_checked(sz, "recycled_large/same2");
		for (int i = 0; i < 4; i++) {
			dirty(v[i]);
			free(v[i]);
		}
		/* larger than any freed block: freed pages + fresh ones */
		void *big = calloc_checked(sz * 3, "recycled_large/larger");
		dirty(big);
		free(big);
		void *again = calloc_checked(sz * 2, "recycled_large/larger2");
		free(again);
	}
	/* realloc keeps no stale bytes visible to calloc afterwards */
	void *p = malloc(1 * MiB);
	dirty(p);
	p = realloc(p, 3 * MiB);
	dirty(p);
	p = realloc(p, 200 * KiB);
	free(p);
	void *q = calloc_checked(3 * MiB, "recycled_large/after-realloc");
	free(q);
}

static void case_recycled_cross(void)
{
	enum { NB = 96 };
	void *v[NB];
	/* dirty large pages become small spans */
	for (int i = 0; i < NB; i++) {
		v[i] = malloc(1 * MiB);
		dirty(v[i]);
	}
	for (int i = 0; i < NB; i++)
		free(v[i]);
	size_t sizes[] = { 48, 1024, 3072, 24576 };
	for (size_t k = 0; k < 4; k++) {
		size_t n = 24 * MiB / sizes[k];
		void **w = malloc(n * sizeof(void *));
		for (size_t i = 0; i < n; i++)
			w[i] = calloc_checked(sizes[k], "recycled_cross/large->small");
		for (size_t i = 0; i < n; i++)
			dirty(w[i]);
		for (size_t i = 0; i < n; i++)
			free(w[i]);
		free(w);
	}
	/* and dirty small spans become large blocks */
	for (int i = 0; i < NB; i++)
		v[i] = calloc_checked(1 * MiB + 4096 * (size_t)i,
		                      "recycled_cross/small->large");
	for (int i = 0; i < NB; i++)
		free(v[i]);
}

/* Dirty memory of many shapes, freed. */
static void make_dirty_free_memory(void)
{
	enum { NB = 48 };
	void *v[NB];
	for (int i = 0; i < NB; i++) {
		v[i] = malloc((size_t)(i % 6 + 1) * MiB);
		dirty(v[i]);
	}
	for (int i = 0; i < NB; i++)
		free(v[i]);
	void *h1 = malloc(24 * MiB), *h2 = malloc(40 * MiB);
	dirty(h1);
	dirty(h2);
	free(h1);
	free(h2);
	for (size_t k = 0; k < NSMALL; k++) {
		size_t n = 2 * MiB / small_sizes[k];
		void **w = malloc(n * sizeof(void *));
		for (size_t i = 0; i < n; i++) {
			w[i] = malloc(small_sizes[k]);
			dirty(w[i]);
		}
		for (size_t i = 0; i < n; i++)
			free(w[i]);
		free(w);
	}
}

/* After a release: do old contents survive (MADV_FREE), i.e. could this
 * run see calloc returning stale bytes? Probe with malloc, not calloc. */
static int old_contents_visible(void)
{
	int seen = 0;
	for (size_t sz = 1 * MiB; sz <= 6 * MiB; sz += MiB) {
		unsigned char *p = malloc(sz);
		if (p != NULL && (p[0] == DIRTY || p[sz / 2] == DIRTY))
			seen = 1;
		free(p);
	}
	return seen;
}

static void calloc_everything(const char *what)
{
	void *v[64];
	int n = 0;
	for (size_t sz = 1 * MiB; sz <= 6 * MiB; sz += MiB)
		v[n++] = calloc_checked(sz, what);
	v[n++] = calloc_checked(24 * MiB, what);
	v[n++] = calloc_checked(40 * MiB, what);
	v[n++] = calloc_checked(100 * KiB, what);
	for (int i = 0; i < n; i++)
		free(v[i]);
	for (size_t k = 0; k < NSMALL; k++) {
		size_t cnt = 2 * MiB / small_sizes[k];
		void **w = malloc(cnt * sizeof(void *));
		for (size_t i = 0; i < cnt; i++)
			w[i] = calloc_checked(small_sizes[k], what);
		for (size_t i = 0; i < cnt; i++)
			free(w[i]);
		free(w);
	}
}

static void case_scavenged_trim(const char *mode)
{
	make_dirty_free_memory();
	gm_stats_t s0 = stats_now();
	int tr = malloc_trim(0);
	gm_stats_t s1 = stats_now();
	printf("malloc_trim(0) = %d, scavenged %.1f MiB\n", tr,
	       (double)(s1.scavenged_total - s0.scavenged_total) / MiB);
	if (tr != 1 || s1.scavenged_total - s0.scavenged_total < 64 * MiB) {
		printf("FAIL-REASON: malloc_trim(0) returned %d and scavenged %zu bytes "
		       "(want 1 and >= 64 MiB)\n", tr, s1.scavenged_total - s0.scavenged_total);
		nfail++;
	}
	int seen = old_contents_visible();
	printf("madvise %s: old contents visible after release: %s\n", mode,
	       seen ? "yes (this run can catch stale calloc)" : "no");
	malloc_trim(0);
	calloc_everything("scavenged_trim");
}

static void case_scavenged_part(void)
{
	gm_scavenge_fn_t scav = (gm_scavenge_fn_t)dlsym(RTLD_DEFAULT, "gm_scavenge");
	if (scav == NULL) {
		printf("FAIL-REASON: gm_scavenge not found\n");
		nfail++;
		return;
	}
	for (size_t part = 1; part <= 5; part += 2) {
		make_dirty_free_memory();
		size_t got = scav(part * 7 * MiB);
		printf("gm_scavenge(%zu MiB) released %.1f MiB\n", part * 7,
		       (double)got / MiB);
		calloc_everything("scavenged_part");
	}
}

/* calloc of large dirty blocks used densely, then sparsely, then densely
 * again.  gomalloc clears such a block with memset or, once it has seen
 * the program touch few of a calloc'd block's pages, with MADV_DONTNEED
 * (malloc.c, gm_zero_large); either way every byte must read zero.  A
 * block cleared by MADV_DONTNEED is not resident right after calloc
 * (mincore), which tells the two apart: the sparse phase must end up on
 * MADV_DONTNEED (else the adaptive choice is dead) and the dense phase
 * after it back on memset (else a dense program keeps paying a fault a
 * page).  The sparse phase writes one byte every 128 KiB and checks those
 * bytes (reading a page maps it, so the whole block is not read there). */
static size_t resident_pages(void *p, size_t n)
{
	size_t pg = 4096, cnt = 0;
	uintptr_t a = (uintptr_t)p & ~(uintptr_t)(pg - 1);
	size_t len = (uintptr_t)p + n - a, np = (len + pg - 1) / pg;
	unsigned char *v = malloc(np);
	if (v == NULL || mincore((void *)a, len, v) != 0) {
		free(v);
		return (size_t)-1;
	}
	for (size_t i = 0; i < np; i++)
		cnt += v[i] & 1;
	free(v);
	return cnt;
}

#define SPARSE_STEP (128 * KiB)

/* One phase of `iters` callocs of sz; returns how many of the last `tail`
 * came back not resident (cleared with MADV_DONTNEED). */
static int lazy_phase(size_t sz, int iters, int tail, bool sparse, const char *what)
{
	int lazy = 0;
	for (int it = 0; it < iters; it++) {
		unsigned char *p = calloc(1, sz);
		if (p == NULL) {
			printf("FAIL-REASON: %s: calloc(1, %zu) returned NULL\n", what, sz);
			nfail++;
			return 0;
		}
		size_t res = resident_pages(p, sz);
		if (it >= iters - tail && res <= sz / 4096 / 16)
			lazy++;
		if (sparse) {
			for (size_t off = 0; off < sz; off += SPARSE_STEP)
				if (p[off] != 0) {
					if (nfail < 8)
						printf("FAIL-REASON: %s: calloc(1, %zu) = %p not zero at "
						       "offset %zu\n", what, sz, (void *)p, off);
					nfail++;
				}
			for (size_t off = 0; off < sz; off += SPARSE_STEP)
				p[off] = DIRTY;
		} else {
			long off = first_nonzero(p, sz);
			if (off >= 0) {
				if (nfail < 8)
					printf("FAIL-REASON: %s: calloc(1, %zu) = %p not zero at offset "
					       "%ld\n", what, sz, (void *)p, off);
				nfail++;
			}
			memset(p, DIRTY, sz);
		}
		free(p);
	}
	return lazy;
}

static void case_lazy_large(void)
{
	/* 1 MiB: the thread's large cache; 6 MiB: back to the page heap */
	static const size_t sizes[] = { 1 * MiB, 6 * MiB };
	for (size_t k = 0; k < 2; k++) {
		size_t sz = sizes[k];
		int d1 = lazy_phase(sz, 48, 16, false, "lazy_large/dense");
		/* the probe period has grown to 64-128 calls by now (it doubles
		 * with every dense verdict): 160 calls see a probe */
		int sp = lazy_phase(sz, 160, 32, true, "lazy_large/sparse");
		int d2 = lazy_phase(sz, 48, 32, false, "lazy_large/dense-again");
		printf("%zu MiB: blocks not resident after calloc: dense %d/16, sparse %d/32, "
		       "dense again %d/32\n", sz / MiB, d1, sp, d2);
		/* dense: at most a probe in 16 (period >= 16 by then) */
		if (d1 > 1 || sp < 30 || d2 > 2) {
			printf("FAIL-REASON: %zu MiB: want dense <= 1, sparse >= 30, dense again "
			       "<= 2 blocks not resident\n", sz / MiB);
			nfail++;
		}
	}
	/* a block cleared by MADV_DONTNEED, grown (in place or moved) by
	 * realloc, keeps its bytes */
	lazy_phase(MiB, 16, 0, true, "lazy_large/sparse2");
	unsigned char *p = calloc(1, 1 * MiB);
	if (p != NULL && resident_pages(p, MiB) > MiB / 4096 / 16) {
		printf("FAIL-REASON: lazy_large/realloc: the calloc after a sparse phase "
		       "is resident (%zu pages)\n", resident_pages(p, MiB));
		nfail++;
	}
	if (p != NULL) {
		p[0] = 1;
		p[MiB - 1] = 2;
		unsigned char *q = realloc(p, 3 * MiB);
		unsigned char *r = q ? realloc(q, 20 * MiB) : NULL;
		if (r == NULL || r[0] != 1 || r[MiB - 1] != 2 || r[MiB / 2] != 0) {
			printf("FAIL-REASON: lazy_large/realloc: bytes lost\n");
			nfail++;
		}
		free(r ? r : q);
	}
}

/* ---- the child ---- */

static int child_main(const char *name, const char *mode)
{
	alarm(40);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (dlsym(RTLD_DEFAULT, "gm_version") == NULL) {
		printf("FAIL-REASON: gm_version not found: malloc is not gomalloc\n");
		return 1;
	}
	free(malloc(1));
	if (strcmp(name, "recycled_small") == 0)
		case_recycled_small();
	else if (strcmp(name, "recycled_large") == 0)
		case_recycled_large();
	else if (strcmp(name, "recycled_cross") == 0)
		case_recycled_cross();
	else if (strcmp(name, "scavenged_trim") == 0)
		case_scavenged_trim(mode);
	else if (strcmp(name, "scavenged_part") == 0)
		case_scavenged_part();
	else if (strcmp(name, "lazy_large") == 0)
		case_lazy_large();
	else {
		printf("FAIL-REASON: unknown case %s\n", name);
		return 1;
	}
	printf("%s (%s): %d bad calloc results\n", name, mode, nfail);
	return nfail ? 1 : 0;
}

/* ---- the parent ---- */

START_TEST(recycled_small_dontneed)
{
	expect_child_ok(NULL, "recycled_small");
}
END_TEST

START_TEST(recycled_small_madvfree)
{
	expect_child_ok("madvise:free", "recycled_small");
}
END_TEST

START_TEST(recycled_large_dontneed)
{
	expect_child_ok(NULL, "recycled_large");
}
END_TEST

START_TEST(recycled_large_madvfree)
{
	expect_child_ok("madvise:free", "recycled_large");
}
END_TEST

START_TEST(recycled_cross_dontneed)
{
	expect_child_ok(NULL, "recycled_cross");
}
END_TEST

START_TEST(recycled_cross_madvfree)
{
	expect_child_ok("madvise:free", "recycled_cross");
}
END_TEST

START_TEST(scavenged_trim_dontneed)
{
	expect_child_ok(NULL, "scavenged_trim");
}
END_TEST

START_TEST(scavenged_trim_madvfree)
{
	expect_child_ok("madvise:free", "scavenged_trim");
}
END_TEST

START_TEST(scavenged_part_dontneed)
{
	expect_child_ok(NULL, "scavenged_part");
}
END_TEST

START_TEST(scavenged_part_madvfree)
{
	expect_child_ok("madvise:free", "scavenged_part");
}
END_TEST

START_TEST(lazy_large_dontneed)
{
	expect_child_ok(NULL, "lazy_large");
}
END_TEST

START_TEST(lazy_large_madvfree)
{
	expect_child_ok("madvise:free", "lazy_large");
}
END_TEST

int main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "--child") == 0) {
		const char *conf = getenv("GOMALLOC_CONF");
		return child_main(argv[2], conf && strstr(conf, "madvise:free") ? "free"
		                                                                : "dontneed");
	}
	Suite *s = suite_create("zero");
	TCase *tc = tcase_create("zero");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, recycled_small_dontneed);
	tcase_add_test(tc, recycled_small_madvfree);
	tcase_add_test(tc, recycled_large_dontneed);
	tcase_add_test(tc, recycled_large_madvfree);
	tcase_add_test(tc, recycled_cross_dontneed);
	tcase_add_test(tc, recycled_cross_madvfree);
	tcase_add_test(tc, scavenged_trim_dontneed);
	tcase_add_test(tc, scavenged_trim_madvfree);
	tcase_add_test(tc, scavenged_part_dontneed);
	tcase_add_test(tc, scavenged_part_madvfree);
	tcase_add_test(tc, lazy_large_dontneed);
	tcase_add_test(tc, lazy_large_madvfree);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
