/*
 * test_gm.c -- gomalloc's extension API (include/gomalloc.h), linked only.
 *
 * scan/noscan kinds (gm_*_noscan, gm_kind_of, realloc keeps the kind),
 * gm_heap_walk (exactly the live blocks, with their usable sizes and
 * kinds; stops on a nonzero callback), gm_stats (deltas of allocated,
 * nblocks, large_allocated, nlarge), gm_scavenge, a freed and rebuilt
 * working set keeping its pages (scavenged_total), gm_version, and the
 * min_align option, checked in a child process started with
 * GOMALLOC_CONF=min_align:8 (this program re-executed as
 * "test_gm --usable-child").
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <malloc.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gomalloc.h>

#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)

extern char **environ;

static inline uintptr_t addr(const void *p)
{
	uintptr_t a = (uintptr_t)p;
	__asm__ volatile("" : "+r"(a));
	return a;
}

/* ---- kinds ---- */

START_TEST(test_kinds)
{
	static const size_t sizes[] = { 0, 1, 8, 24, 100, 1024, 5000, 32768, 32769, 200000, 3 * MiB };
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		size_t n = sizes[i];
		void *a = malloc(n), *b = gm_malloc_noscan(n);
		void *c = calloc(1, n), *d = gm_calloc_noscan(1, n);
		void *e = gm_aligned_alloc_noscan(64, n), *f = aligned_alloc(64, n);
		void *g = gm_aligned_alloc_noscan(16 * KiB, n);
		ck_assert_msg(gm_kind_of(a) == GM_KIND_SCAN, "malloc(%zu)", n);
		ck_assert_msg(gm_kind_of(b) == GM_KIND_NOSCAN, "gm_malloc_noscan(%zu)", n);
		ck_assert_msg(gm_kind_of(c) == GM_KIND_SCAN, "calloc(%zu)", n);
		ck_assert_msg(gm_kind_of(d) == GM_KIND_NOSCAN, "gm_calloc_noscan(%zu)", n);
		ck_assert_msg(gm_kind_of(e) == GM_KIND_NOSCAN, "gm_aligned_alloc_noscan(64, %zu)", n);
		ck_assert_msg(gm_kind_of(f) == GM_KIND_SCAN, "aligned_alloc(64, %zu)", n);
		ck_assert_msg(gm_kind_of(g) == GM_KIND_NOSCAN, "gm_aligned_alloc_noscan(16K, %zu)", n);
		ck_assert_uint_eq(addr(e) & 63, 0);
		ck_assert_uint_eq(addr(g) & (16 * KiB - 1), 0);
		ck_assert_uint_ge(malloc_usable_size(b), n);
		ck_assert_uint_ge(malloc_usable_size(g), n);
		/* noscan calloc zeroes too */
		const unsigned char *z = (const unsigned char *)addr(d);
		size_t k = 0;
		while (k < n && z[k] == 0)
			k++;
		ck_assert_msg(k == n, "gm_calloc_noscan(1, %zu): byte %zu is not 0", n, k);
		/* noscan blocks are ordinary blocks for free() */
		free(a); free(b); free(c); free(d); free(e); free(f); free(g);
		ck_assert_int_eq(gm_kind_of(b), -1);
		ck_assert_int_eq(gm_kind_of(d), -1);
		ck_assert_int_eq(gm_kind_of(g), -1);
	}
	/* overflow and bad alignment */
	volatile size_t huge = SIZE_MAX / 2;
	errno = 0;
	ck_assert_ptr_null(gm_calloc_noscan(huge, 3));
	ck_assert_int_eq(errno, ENOMEM);
	errno = 0;
	ck_assert_ptr_null(gm_aligned_alloc_noscan(48, 100));
	ck_assert_int_eq(errno, EINVAL);
}
END_TEST

START_TEST(test_kind_of_foreign)
{
	int on_stack = 0;
	static int in_data;
	ck_assert_int_eq(gm_kind_of(&on_stack), -1);
	ck_assert_int_eq(gm_kind_of(&in_data), -1);
	ck_assert_int_eq(gm_kind_of((void *)test_kind_of_foreign), -1);
	ck_assert_int_eq(gm_kind_of(NULL), -1);
	/* interior pointers are not blocks */
	char *p = malloc(64);
	char *q = malloc(100000);
	ck_assert_int_eq(gm_kind_of(p), GM_KIND_SCAN);
	ck_assert_int_eq(gm_kind_of(p + 8), -1);
	ck_assert_int_eq(gm_kind_of(p + 1), -1);
	ck_assert_int_eq(gm_kind_of(q + 8192), -1);
	ck_assert_int_eq(gm_kind_of(q + 16), -1);
	free(p);
	free(q);
	ck_assert_int_eq(gm_kind_of(p), -1);
	ck_assert_int_eq(gm_kind_of(q), -1);
}
END_TEST

/* realloc through classes and into/out of large keeps the kind. */
static void realloc_chain(void *p, int kind)
{
	static const size_t chain[] = {
		16, 17, 48, 100, 1000, 1025, 4000, 9000, 32768, 32769, 50000,
		300000, 2 * MiB, 70000, 40000, 30000, 500, 8, 1,
	};
	for (size_t i = 0; i < sizeof chain / sizeof chain[0]; i++) {
		p = realloc(p, chain[i]);
		ck_assert_ptr_nonnull(p);
		ck_assert_msg(gm_kind_of(p) == kind, "kind %d lost at realloc to %zu: %d",
		              kind, chain[i], gm_kind_of(p));
	}
	free(p);
}

START_TEST(test_realloc_keeps_kind)
{
	realloc_chain(gm_malloc_noscan(8), GM_KIND_NOSCAN);
	realloc_chain(malloc(8), GM_KIND_SCAN);
	realloc_chain(gm_calloc_noscan(1, 40000), GM_KIND_NOSCAN);
	realloc_chain(gm_aligned_alloc_noscan(4096, 100), GM_KIND_NOSCAN);
	realloc_chain(calloc(1, 3 * MiB), GM_KIND_SCAN);
}
END_TEST

/* ---- heap walk ---- */

enum { WALK_N = 1500, WALK_MAX = 200000 };

typedef struct walked {
	uintptr_t addr;
	size_t usable;
	int kind;
} walked_t;

typedef struct walk_rec {
	walked_t *v;
	size_t n, cap, calls;
	size_t stop_after;  /* 0: never stop */
} walk_rec_t;

static int walk_cb(void *a, size_t usable, gm_kind_t kind, void *arg)
{
	walk_rec_t *r = arg;
	r->calls++;
	if (r->n < r->cap) {
		r->v[r->n].addr = (uintptr_t)a;
		r->v[r->n].usable = usable;
		r->v[r->n].kind = kind;
		r->n++;
	}
	if (r->stop_after && r->calls == r->stop_after)
		return 42;
	return 0;
}

static int cmp_walked(const void *a, const void *b)
{
	uintptr_t x = ((const walked_t *)a)->addr, y = ((const walked_t *)b)->addr;
	return x < y ? -1 : x > y;
}

static const walked_t *find_walked(const walk_rec_t *r, uintptr_t a)
{
	walked_t key = { a, 0, 0 };
	return bsearch(&key, r->v, r->n, sizeof key, cmp_walked);
}

START_TEST(test_heap_walk)
{
	static void *p[WALK_N];
	static size_t usable[WALK_N];
	static int kind[WALK_N];
	walk_rec_t rec = { calloc(WALK_MAX, sizeof(walked_t)), 0, WALK_MAX, 0, 0 };
	ck_assert_ptr_nonnull(rec.v);
	uint32_t x = 12345;
	for (int i = 0; i < WALK_N; i++) {
		x = x * 1103515245u + 12345u;
		size_t n = (x >> 8) % 2000 + 1;
		if (i % 50 == 0)
			n = 32769 + (x >> 4) % 500000;   /* some large */
		else if (i % 7 == 0)
			n = 1025 + (x >> 6) % 31000;     /* some medium */
		int ns = (x >> 20) & 1;
		if (i % 11 == 0)
			p[i] = ns ? gm_aligned_alloc_noscan(256, n) : aligned_alloc(256, n);
		else
			p[i] = ns ? gm_malloc_noscan(n) : malloc(n);
		ck_assert_ptr_nonnull(p[i]);
		usable[i] = malloc_usable_size(p[i]);
		kind[i] = ns ? GM_KIND_NOSCAN : GM_KIND_SCAN;
	}
	/* free every third block */
	for (int i = 0; i < WALK_N; i += 3)
		free(p[i]);

	gm_stats_t st;
	gm_stats(&st);
	ck_assert_int_eq(gm_heap_walk(walk_cb, &rec), 0);
	ck_assert_uint_lt(rec.n, rec.cap);
	ck_assert_uint_eq(rec.calls, rec.n);
	/* the walk and the stats agree at a quiescent point */
	ck_assert_uint_eq(rec.n, st.nblocks);
	qsort(rec.v, rec.n, sizeof(walked_t), cmp_walked);
	size_t total = 0;
	for (size_t k = 0; k < rec.n; k++) {
		total += rec.v[k].usable;
		ck_assert_msg(k == 0 || rec.v[k].addr >= rec.v[k - 1].addr + rec.v[k - 1].usable,
		              "walk: blocks %#lx+%zu and %#lx overlap or repeat",
		              (unsigned long)rec.v[k - 1].addr, rec.v[k - 1].usable,
		              (unsigned long)rec.v[k].addr);
	}
	ck_assert_uint_eq(total, st.allocated);
	for (int i = 0; i < WALK_N; i++) {
		const walked_t *w = find_walked(&rec, (uintptr_t)p[i]);
		if (i % 3 == 0) {
			ck_assert_msg(w == NULL, "freed block %d (%p) is in the walk", i, p[i]);
			continue;
		}
		ck_assert_msg(w != NULL, "live block %d (%p) missing from the walk", i, p[i]);
		ck_assert_msg(w->usable == usable[i], "block %d: walk usable %zu, usable %zu",
		              i, w->usable, usable[i]);
		ck_assert_msg(w->kind == kind[i], "block %d: walk kind %d, want %d", i, w->kind,
		              kind[i]);
	}
	/* the record array itself is a live block too */
	const walked_t *self = find_walked(&rec, (uintptr_t)rec.v);
	ck_assert_ptr_nonnull(self);
	ck_assert_uint_eq(self->kind, GM_KIND_SCAN);

	/* stop when the callback says so */
	walk_rec_t stop = { rec.v, 0, WALK_MAX, 0, 17 };
	ck_assert_int_eq(gm_heap_walk(walk_cb, &stop), 42);
	ck_assert_uint_eq(stop.calls, 17);
	stop = (walk_rec_t){ rec.v, 0, WALK_MAX, 0, 1 };
	ck_assert_int_eq(gm_heap_walk(walk_cb, &stop), 42);
	ck_assert_uint_eq(stop.calls, 1);

	for (int i = 0; i < WALK_N; i++)
		if (i % 3 != 0)
			free(p[i]);
	/* after freeing, none of them is walked */
	rec.n = rec.calls = 0;
	ck_assert_int_eq(gm_heap_walk(walk_cb, &rec), 0);
	qsort(rec.v, rec.n, sizeof(walked_t), cmp_walked);
	for (int i = 0; i < WALK_N; i++)
		ck_assert_msg(find_walked(&rec, (uintptr_t)p[i]) == NULL,
		              "freed block %d (%p) is in the walk", i, p[i]);
	free(rec.v);
}
END_TEST

/* ---- stats ---- */

/* Go through the slow paths once, so anything gomalloc starts lazily (the
 * scavenger thread, whose creation allocates in libc) exists before the
 * first snapshot and the deltas count only the test's own blocks. */
static void warm_up(void)
{
	free(malloc(100000));
	free(malloc(100));
	gm_stats_t st;
	gm_stats(&st);
}

START_TEST(test_stats_small)
{
	enum { N = 1000 };
	static void *p[N];
	gm_stats_t a, b, c;
	warm_up();
	ck_assert_int_eq(gm_stats(&a), 0);
	for (int i = 0; i < N; i++)
		p[i] = malloc(100);  /* class 112 */
	gm_stats(&b);
	ck_assert_uint_eq(b.nblocks - a.nblocks, N);
	ck_assert_uint_eq(b.allocated - a.allocated, N * 112);
	ck_assert_uint_eq(b.nlarge, a.nlarge);
	ck_assert_uint_eq(b.large_allocated, a.large_allocated);
	ck_assert_uint_ge(b.heap_inuse, b.allocated);
	ck_assert_uint_ge(b.mapped, b.heap_inuse);
	ck_assert_uint_ge(b.nthreads, 1);
	for (int i = 0; i < N; i++)
		free(p[i]);
	gm_stats(&c);
	ck_assert_uint_eq(c.nblocks, a.nblocks);
	ck_assert_uint_eq(c.allocated, a.allocated);
}
END_TEST

START_TEST(test_stats_large)
{
	enum { N = 10 };
	void *p[N];
	gm_stats_t a, b, c;
	warm_up();
	gm_stats(&a);
	size_t sum = 0;
	for (int i = 0; i < N; i++) {
		p[i] = malloc(100000 + (size_t)i * 50000);
		sum += malloc_usable_size(p[i]);
	}
	gm_stats(&b);
	ck_assert_uint_eq(b.nlarge - a.nlarge, N);
	ck_assert_uint_eq(b.large_allocated - a.large_allocated, sum);
	ck_assert_uint_eq(b.nblocks - a.nblocks, N);
	ck_assert_uint_eq(b.allocated - a.allocated, sum);
	/* a block of exactly 32 KiB is small */
	void *s = malloc(32 * KiB);
	gm_stats(&c);
	ck_assert_uint_eq(c.nlarge, b.nlarge);
	ck_assert_uint_eq(c.nblocks, b.nblocks + 1);
	free(s);
	for (int i = 0; i < N; i++)
		free(p[i]);
	gm_stats(&c);
	ck_assert_uint_eq(c.nlarge, a.nlarge);
	ck_assert_uint_eq(c.large_allocated, a.large_allocated);
	ck_assert_uint_eq(c.allocated, a.allocated);
}
END_TEST

START_TEST(test_scavenge)
{
	enum { N = 16 };
	void *p[N];
	for (int i = 0; i < N; i++) {
		p[i] = malloc(4 * MiB);
		ck_assert_ptr_nonnull(p[i]);
		memset(p[i], 0x11, 4 * MiB);
	}
	gm_stats_t a, b;
	gm_stats(&a);
	for (int i = 0; i < N; i++)
		free(p[i]);
	size_t got = gm_scavenge(0);
	gm_stats(&b);
	ck_assert_msg(got > 0, "gm_scavenge(0) released nothing after freeing 64 MiB");
	ck_assert_msg(got >= 32 * MiB, "gm_scavenge(0) released only %zu bytes", got);
	ck_assert_uint_ge(b.released, a.released + got / 2);
	ck_assert_uint_ge(b.scavenged_total, a.scavenged_total + got);
	/* nothing left to release right away */
	ck_assert_uint_lt(gm_scavenge(0), 8 * MiB);
	/* the released memory is usable again, and zero for calloc */
	unsigned char *q = calloc(1, 16 * MiB);
	ck_assert_ptr_nonnull(q);
	size_t k = 0;
	while (k < 16 * MiB && ((volatile unsigned char *)q)[k] == 0)
		k += 4093;
	ck_assert_msg(k >= 16 * MiB, "calloc after scavenge: byte %zu is not 0", k);
	free(q);
	/* a bounded request releases about that much */
	for (int i = 0; i < N; i++) {
		p[i] = malloc(4 * MiB);
		memset(p[i], 0x22, 4 * MiB);
	}
	for (int i = 0; i < N; i++)
		free(p[i]);
	size_t part = gm_scavenge(MiB);
	ck_assert_uint_ge(part, MiB);
	ck_assert_uint_le(part, 2 * MiB);
}
END_TEST

/* A working set freed and built again (32 spans of 256 B, as bench_micro's
 * batch_fifo/256) keeps its pages: paging back in pages released earlier
 * must not release the pages the next spans take, round after round
 * (before 2026-11-26: ~20 pages a round, 320 MiB over these 2000 rounds). */
START_TEST(test_rebuild_keeps_pages)
{
	enum { N = 1000, ROUNDS = 2000 };
	static void *p[N];
	gm_stats_t a, b;
	for (int r = 0; r < ROUNDS + 20; r++) {
		if (r == 20)
			gm_stats(&a);
		for (int i = 0; i < N; i++) {
			p[i] = malloc(256);
			ck_assert_ptr_nonnull(p[i]);
			*(volatile char *)p[i] = (char)r;
		}
		for (int i = 0; i < N; i++)
			free(p[i]);
	}
	gm_stats(&b);
	size_t released = b.scavenged_total - a.scavenged_total;
	ck_assert_msg(released < 4 * MiB,
	              "%d rounds of a 256 KiB working set released %zu bytes to the OS",
	              ROUNDS, released);
}
END_TEST

START_TEST(test_version)
{
	const char *v = gm_version();
	ck_assert_ptr_nonnull(v);
	char want[64];
	snprintf(want, sizeof want, "gomalloc %d.%d.%d", GOMALLOC_VERSION_MAJOR,
	         GOMALLOC_VERSION_MINOR, GOMALLOC_VERSION_PATCH);
	ck_assert_str_eq(v, want);
}
END_TEST

/* ---- min_align, in a child process ---- */

static const char *self_path = "/proc/self/exe";

/* Child: print usable sizes of malloc(n) for n = 1..40, space-separated.
 * Exit 2 if a block is misaligned: 8 bytes always, and explicit 16-byte
 * alignment requests are honoured also under min_align:8. */
static int usable_child(void)
{
	char buf[512];
	size_t len = 0;
	for (size_t n = 1; n <= 64; n++) {
		void *a = aligned_alloc(16, n), *m = malloc(n), *q = NULL;
		if (posix_memalign(&q, 16, n) != 0 || (addr(a) & 15) || (addr(q) & 15) ||
		    (addr(m) & 7))
			return 2;
		free(a);
		free(q);
		free(m);
	}
	for (size_t n = 1; n <= 40; n++) {
		void *p = malloc(n);
		len += (size_t)snprintf(buf + len, sizeof buf - len, "%zu%s",
		                        malloc_usable_size(p), n == 40 ? "\n" : " ");
	}
	ssize_t w = write(1, buf, len);
	return w == (ssize_t)len ? 0 : 1;
}

/* Run this program as "--usable-child" with GOMALLOC_CONF=conf (NULL: unset);
 * parse the usable sizes it prints into out[1..40]. */
static void run_child(const char *conf, size_t out[41])
{
	size_t nenv = 0;
	while (environ[nenv])
		nenv++;
	char **env = calloc(nenv + 2, sizeof *env);
	size_t k = 0;
	for (size_t i = 0; i < nenv; i++)
		if (strncmp(environ[i], "GOMALLOC_CONF=", 14) != 0)
			env[k++] = environ[i];
	char confvar[128];
	if (conf) {
		snprintf(confvar, sizeof confvar, "GOMALLOC_CONF=%s", conf);
		env[k++] = confvar;
	}
	env[k] = NULL;
	int fds[2];
	ck_assert_int_eq(pipe(fds), 0);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
	posix_spawn_file_actions_addclose(&fa, fds[0]);
	char *argv[] = { (char *)"test_gm", (char *)"--usable-child", NULL };
	pid_t pid;
	int rc = posix_spawn(&pid, self_path, &fa, NULL, argv, env);
	ck_assert_int_eq(rc, 0);
	close(fds[1]);
	char buf[1024];
	size_t len = 0;
	ssize_t r;
	while (len < sizeof buf - 1 && (r = read(fds[0], buf + len, sizeof buf - 1 - len)) > 0)
		len += (size_t)r;
	buf[len] = 0;
	close(fds[0]);
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	              "child (GOMALLOC_CONF=%s) failed: status %#x", conf ? conf : "", status);
	char *s = buf;
	for (size_t n = 1; n <= 40; n++) {
		char *end;
		out[n] = strtoul(s, &end, 10);
		ck_assert_msg(end != s, "child output \"%s\"", buf);
		s = end;
	}
	posix_spawn_file_actions_destroy(&fa);
	free(env);
}

START_TEST(test_min_align)
{
	size_t u8[41], u16[41];
	run_child("min_align:8", u8);
	run_child(NULL, u16);
	for (size_t n = 1; n <= 40; n++) {
		size_t go = n <= 8 ? 8 : n <= 16 ? 16 : n <= 24 ? 24 : n <= 32 ? 32 : 48;
		size_t dflt = (n >= 17 && n <= 24) ? 32 : go;
		ck_assert_msg(u8[n] == go, "min_align:8: usable(malloc(%zu)) = %zu, want %zu",
		              n, u8[n], go);
		ck_assert_msg(u16[n] == dflt, "default: usable(malloc(%zu)) = %zu, want %zu",
		              n, u16[n], dflt);
	}
	ck_assert_uint_eq(u8[20], 24);
	ck_assert_uint_eq(u16[20], 32);
	/* and in this process (default unless the runner set min_align) */
	void *p = malloc(20);
	const char *conf = getenv("GOMALLOC_CONF");
	if (conf == NULL || strstr(conf, "min_align") == NULL)
		ck_assert_uint_eq(malloc_usable_size(p), 32);
	ck_assert_uint_eq(addr(p) & 15, 0);
	free(p);
}
END_TEST

static Suite *gm_suite(void)
{
	Suite *s = suite_create("gm");
	TCase *tc = tcase_create("gm");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_kinds);
	tcase_add_test(tc, test_kind_of_foreign);
	tcase_add_test(tc, test_realloc_keeps_kind);
	tcase_add_test(tc, test_heap_walk);
	tcase_add_test(tc, test_stats_small);
	tcase_add_test(tc, test_stats_large);
	tcase_add_test(tc, test_scavenge);
	tcase_add_test(tc, test_rebuild_keeps_pages);
	tcase_add_test(tc, test_version);
	tcase_add_test(tc, test_min_align);
	suite_add_tcase(s, tc);
	return s;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--usable-child") == 0)
		return usable_child();
	SRunner *sr = srunner_create(gm_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
