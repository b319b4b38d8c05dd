/*
 * test_introspect.c -- glibc's introspection functions return real numbers
 * (issue 3, "Introspection"):
 *  - mallinfo2().uordblks grows by at least what is allocated (and by no
 *    more than the usable sizes) and falls back after free; blocks live in
 *    another thread's cache count too; mallinfo likewise;
 *  - malloc_stats prints glibc's layout on stderr, with the bytes in use;
 *  - malloc_info writes well-formed glibc-style XML, "<malloc version=";
 *  - mallopt returns 1 for glibc's parameters and 0 for unknown ones;
 *  - malloc_trim(0) returns 1 after a lot of memory was freed, and RSS falls.
 *
 * Built linked (tests/api/test_introspect) and for LD_PRELOAD
 * (tests/api/test_introspect-preload, -DGM_TEST_PRELOAD: gm_* via dlsym).
 */
#define _GNU_SOURCE
#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gomalloc.h>

#include "support.h"

#define MiB ((size_t)1 << 20)

/* A workload of known size: small, medium and large blocks. */
typedef struct workload {
	void *p[1200];
	size_t n;
	size_t requested, usable;
} workload_t;

static void workload_alloc(workload_t *w)
{
	memset(w, 0, sizeof *w);
	for (int i = 0; i < 1000; i++) {
		size_t sz = (size_t)(i % 10) * 10 + 100;
		w->p[w->n++] = malloc(sz);
		w->requested += sz;
	}
	for (int i = 0; i < 100; i++) {
		w->p[w->n++] = malloc(5000);
		w->requested += 5000;
	}
	for (int i = 0; i < 10; i++) {
		w->p[w->n++] = malloc(100 * 1024);
		w->requested += 100 * 1024;
	}
	w->p[w->n++] = malloc(8 * MiB);
	w->requested += 8 * MiB;
	for (size_t i = 0; i < w->n; i++) {
		ck_assert_ptr_nonnull(w->p[i]);
		w->usable += malloc_usable_size(w->p[i]);
		memset(w->p[i], 1, 64);
	}
}

static void workload_free(workload_t *w)
{
	for (size_t i = 0; i < w->n; i++)
		free(w->p[i]);
	w->n = 0;
}

START_TEST(test_mallinfo2_counts)
{
	static workload_t w;
	struct mallinfo2 m0 = mallinfo2();
	workload_alloc(&w);
	struct mallinfo2 m1 = mallinfo2();
	size_t delta = m1.uordblks - m0.uordblks;
	ck_assert_msg(m1.uordblks >= m0.uordblks + w.requested,
	              "uordblks grew by %zu after allocating %zu bytes", delta, w.requested);
	ck_assert_msg(delta <= w.usable + 64 * 1024,
	              "uordblks grew by %zu, more than the %zu usable bytes allocated", delta,
	              w.usable);
	ck_assert_msg(m1.arena + m1.hblkhd >= m1.uordblks,
	              "system bytes (arena %zu + hblkhd %zu) below bytes in use %zu", m1.arena,
	              m1.hblkhd, m1.uordblks);
	ck_assert_msg(m1.hblkhd >= 8 * MiB, "hblkhd %zu with an 8 MiB block live", m1.hblkhd);
	workload_free(&w);
	struct mallinfo2 m2 = mallinfo2();
	ck_assert_msg(m2.uordblks + w.requested <= m1.uordblks,
	              "uordblks %zu -> %zu after freeing %zu bytes", m1.uordblks, m2.uordblks,
	              w.requested);
	ck_assert_msg(m2.uordblks <= m0.uordblks + 64 * 1024, "uordblks %zu, was %zu before",
	              m2.uordblks, m0.uordblks);
}
END_TEST

#pragma GCC diagnostic ignored "-Wdeprecated-declarations" /* mallinfo is the point */
START_TEST(test_mallinfo_counts)
{
	static workload_t w;
	struct mallinfo m0 = mallinfo();
	workload_alloc(&w);
	struct mallinfo m1 = mallinfo();
	ck_assert_msg((size_t)m1.uordblks >= (size_t)m0.uordblks + w.requested,
	              "mallinfo uordblks %d -> %d after allocating %zu", m0.uordblks,
	              m1.uordblks, w.requested);
	ck_assert_msg((size_t)(m1.uordblks - m0.uordblks) <= w.usable + 64 * 1024,
	              "mallinfo uordblks grew by %d for %zu usable", m1.uordblks - m0.uordblks,
	              w.usable);
	workload_free(&w);
	struct mallinfo m2 = mallinfo();
	ck_assert_msg((size_t)m2.uordblks + w.requested <= (size_t)m1.uordblks,
	              "mallinfo uordblks %d -> %d after free", m1.uordblks, m2.uordblks);
}
END_TEST

/* Blocks held by another live thread count as in use. */
static pthread_barrier_t info_barrier;
static void *holder_fn(void *arg)
{
	size_t *bytes = arg;
	void *p[4096];
	for (int i = 0; i < 4096; i++) {
		p[i] = malloc(1000);
		*bytes += malloc_usable_size(p[i]);
	}
	pthread_barrier_wait(&info_barrier); /* allocated */
	pthread_barrier_wait(&info_barrier); /* measured */
	for (int i = 0; i < 4096; i++)
		free(p[i]);
	return NULL;
}

START_TEST(test_mallinfo2_other_threads)
{
	size_t bytes = 0;
	pthread_t t;
	pthread_barrier_init(&info_barrier, NULL, 2);
	struct mallinfo2 m0 = mallinfo2();
	ck_assert_int_eq(pthread_create(&t, NULL, holder_fn, &bytes), 0);
	pthread_barrier_wait(&info_barrier);
	struct mallinfo2 m1 = mallinfo2();
	pthread_barrier_wait(&info_barrier);
	pthread_join(t, NULL);
	struct mallinfo2 m2 = mallinfo2();
	ck_assert_msg(m1.uordblks >= m0.uordblks + 4096 * 1000,
	              "another thread's 4 MiB not counted: %zu -> %zu", m0.uordblks, m1.uordblks);
	ck_assert_msg(m1.uordblks <= m0.uordblks + bytes + 64 * 1024, "%zu -> %zu for %zu",
	              m0.uordblks, m1.uordblks, bytes);
	ck_assert_msg(m2.uordblks <= m0.uordblks + 64 * 1024,
	              "freed by an exited thread, still in use: %zu (was %zu)", m2.uordblks,
	              m0.uordblks);
}
END_TEST

/* Run fn with stderr going to a temporary file; return what it wrote. */
static char *capture_stderr(void (*fn)(void))
{
	FILE *tmp = tmpfile();
	ck_assert_ptr_nonnull(tmp);
	fflush(stderr);
	int saved = dup(2);
	dup2(fileno(tmp), 2);
	fn();
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	long len = lseek(fileno(tmp), 0, SEEK_END);
	char *buf = calloc(1, (size_t)len + 1);
	ck_assert_int_eq(pread(fileno(tmp), buf, (size_t)len, 0), len);
	fclose(tmp);
	return buf;
}

static void call_malloc_stats(void)
{
	malloc_stats();
}

/* The number after "label = " on the n-th line starting with label. */
static int stats_field(const char *text, const char *label, int nth, size_t *out)
{
	const char *p = text;
	int seen = 0;
	size_t ll = strlen(label);
	while (p && *p) {
		if (strncmp(p, label, ll) == 0) {
			if (seen++ == nth) {
				const char *eq = strchr(p, '=');
				if (eq == NULL)
					return 0;
				return sscanf(eq + 1, "%zu", out) == 1;
			}
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return 0;
}

START_TEST(test_malloc_stats_layout)
{
	void *big = malloc(10 * MiB);
	memset(big, 1, 10 * MiB);
	char *out = capture_stderr(call_malloc_stats);
	free(big);
	/* glibc's layout, in this order */
	static const char *lines[] = { "Arena 0:\n", "system bytes     = ", "in use bytes     = ",
		                       "Total (incl. mmap):\n", "system bytes     = ",
		                       "in use bytes     = ", "max mmap regions = ",
		                       "max mmap bytes   = " };
	const char *p = out;
	for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
		const char *q = strstr(p, lines[i]);
		ck_assert_msg(q != NULL, "malloc_stats: no \"%s\" (in order) in:\n%s", lines[i], out);
		ck_assert_msg(q == out || q[-1] == '\n', "malloc_stats: \"%s\" not at a line start",
		              lines[i]);
		p = q + strlen(lines[i]);
	}
	size_t sys0, inuse0, sys_total, inuse_total;
	ck_assert(stats_field(out, "system bytes", 0, &sys0));
	ck_assert(stats_field(out, "in use bytes", 0, &inuse0));
	ck_assert(stats_field(out, "system bytes", 1, &sys_total));
	ck_assert(stats_field(out, "in use bytes", 1, &inuse_total));
	ck_assert_msg(inuse_total >= 10 * MiB, "malloc_stats: in use %zu with 10 MiB live",
	              inuse_total);
	ck_assert_msg(sys_total >= inuse_total, "malloc_stats: system %zu < in use %zu",
	              sys_total, inuse_total);
	ck_assert_msg(sys_total >= sys0 && inuse_total >= inuse0, "totals below arena 0");
	free(out);
}
END_TEST

/* A small well-formedness check: tags nest and close, attributes are
 * name="value", nothing but whitespace outside the root element. */
static const char *xml_check(const char *s, char *root, size_t rootcap)
{
	const char *stack[64];
	size_t stack_len[64];
	int depth = 0, roots = 0;
	const char *p = s;
	while (*p) {
		if (*p != '<') {
			if (depth == 0 && *p != ' ' && *p != '\n' && *p != '\t' && *p != '\r')
				return "text outside the root element";
			if (*p == '&' && strncmp(p, "&amp;", 5) && strncmp(p, "&lt;", 4) &&
			    strncmp(p, "&gt;", 4) && strncmp(p, "&quot;", 6) && strncmp(p, "&apos;", 6))
				return "bad entity";
			p++;
			continue;
		}
		p++;
		if (*p == '?') {
			const char *e = strstr(p, "?>");
			if (e == NULL || depth || roots)
				return "bad processing instruction";
			p = e + 2;
			continue;
		}
		bool closing = *p == '/';
		if (closing)
			p++;
		const char *name = p;
		while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
		       *p == '-' || (*p >= '0' && *p <= '9'))
			p++;
		size_t nlen = (size_t)(p - name);
		if (nlen == 0)
			return "empty tag name";
		if (closing) {
			if (depth == 0 || stack_len[depth - 1] != nlen ||
			    strncmp(stack[depth - 1], name, nlen) != 0)
				return "mismatched closing tag";
			depth--;
			if (*p != '>')
				return "junk in closing tag";
			p++;
			continue;
		}
		/* attributes */
		for (;;) {
			while (*p == ' ' || *p == '\n' || *p == '\t')
				p++;
			if (*p == '>' || (*p == '/' && p[1] == '>'))
				break;
			const char *a = p;
			while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
			       *p == '-')
				p++;
			if (p == a || *p != '=' || p[1] != '"')
				return "bad attribute";
			p += 2;
			while (*p && *p != '"' && *p != '<')
				p++;
			if (*p != '"')
				return "unterminated attribute value";
			p++;
		}
		if (depth == 0) {
			if (roots++)
				return "more than one root element";
			snprintf(root, rootcap, "%.*s", (int)nlen, name);
		}
		if (*p == '/') {
			p += 2;
			continue;
		}
		p++;
		if (depth == 64)
			return "too deep";
		stack[depth] = name;
		stack_len[depth] = nlen;
		depth++;
	}
	if (depth != 0)
		return "unclosed element";
	if (roots != 1)
		return "no root element";
	return NULL;
}

START_TEST(test_malloc_info_xml)
{
	void *big = malloc(10 * MiB);
	void *small[100];
	for (int i = 0; i < 100; i++)
		small[i] = malloc(100);
	for (int i = 0; i < 100; i += 2)
		free(small[i]);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(malloc_info(0, f), 0);
	fclose(f);
	ck_assert_msg(strncmp(buf, "<malloc version=\"", 17) == 0,
	              "malloc_info must start with <malloc version=\": %.60s", buf);
	char root[32] = "";
	const char *err = xml_check(buf, root, sizeof root);
	ck_assert_msg(err == NULL, "malloc_info: not well-formed XML (%s):\n%s", err, buf);
	ck_assert_str_eq(root, "malloc");
	/* the top-level current system size covers the live 10 MiB */
	const char *last = NULL, *q = buf;
	while ((q = strstr(q, "<system type=\"current\" size=\"")) != NULL)
		last = q++;
	ck_assert_msg(last != NULL, "malloc_info: no <system type=\"current\" .../>");
	size_t sys = 0;
	ck_assert(sscanf(last + strlen("<system type=\"current\" size=\""), "%zu", &sys) == 1);
	ck_assert_msg(sys >= 10 * MiB, "malloc_info: current system size %zu with 10 MiB live",
	              sys);
	free(buf);
	/* glibc: options must be 0 */
	f = open_memstream(&buf, &len);
	ck_assert_int_ne(malloc_info(1, f), 0);
	fclose(f);
	free(buf);
	free(big);
	for (int i = 1; i < 100; i += 2)
		free(small[i]);
}
END_TEST

START_TEST(test_mallopt_params)
{
	static const struct { int param, value; const char *name; } known[] = {
		{ M_MXFAST, 64, "M_MXFAST" },
		{ M_TRIM_THRESHOLD, 128 * 1024, "M_TRIM_THRESHOLD" },
		{ M_TOP_PAD, 64 * 1024, "M_TOP_PAD" },
		{ M_MMAP_THRESHOLD, 256 * 1024, "M_MMAP_THRESHOLD" },
		{ M_MMAP_MAX, 65536, "M_MMAP_MAX" },
		{ M_CHECK_ACTION, 3, "M_CHECK_ACTION" },
		{ M_PERTURB, 0, "M_PERTURB" },
		{ M_ARENA_TEST, 8, "M_ARENA_TEST" },
		{ M_ARENA_MAX, 2, "M_ARENA_MAX" },
	};
	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
		int r = mallopt(known[i].param, known[i].value);
		ck_assert_msg(r == 1, "mallopt(%s, %d) = %d, want 1", known[i].name,
		              known[i].value, r);
		void *p = malloc(1000);
		ck_assert_ptr_nonnull(p);
		free(p);
	}
	static const int unknown[] = { 12345, -100, -9999, 100 };
	for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
		ck_assert_msg(mallopt(unknown[i], 1) == 0, "mallopt(%d, 1) accepted an unknown "
		              "parameter", unknown[i]);
	/* glibc's own range check */
	ck_assert_int_eq(mallopt(M_MXFAST, 100000), 0);
}
END_TEST

START_TEST(test_malloc_trim_releases)
{
	enum { NSMALL = 4096, NLARGE = 48 };
	static void *small[NSMALL];
	void *large[NLARGE];
	for (int i = 0; i < NSMALL; i++) {
		small[i] = malloc(4000); /* 16 MiB of small blocks */
		ck_assert_ptr_nonnull(small[i]);
		memset(small[i], 1, 4000);
	}
	for (int i = 0; i < NLARGE; i++) {
		large[i] = malloc(MiB); /* 48 MiB of large blocks */
		ck_assert_ptr_nonnull(large[i]);
		memset(large[i], 2, MiB);
	}
	size_t peak = rss_bytes();
	for (int i = 0; i < NSMALL; i++)
		free(small[i]);
	for (int i = 0; i < NLARGE; i++)
		free(large[i]);
	int r = malloc_trim(0);
	size_t after = rss_bytes();
	ck_assert_msg(r == 1, "malloc_trim(0) = %d after freeing 64 MiB", r);
	ck_assert_msg(after + 48 * MiB <= peak, "RSS %zu MiB -> %zu MiB after malloc_trim(0)",
	              peak >> 20, after >> 20);
	/* the memory is reusable afterwards */
	void *p = malloc(32 * MiB);
	ck_assert_ptr_nonnull(p);
	memset(p, 3, 32 * MiB);
	free(p);
}
END_TEST

START_TEST(test_runs_on_gomalloc)
{
	assert_runs_on_gomalloc();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("introspect");
	add_case(s, "runs_on_gomalloc", test_runs_on_gomalloc, 10);
	add_case(s, "mallinfo2_counts", test_mallinfo2_counts, 20);
	add_case(s, "mallinfo_counts", test_mallinfo_counts, 20);
	add_case(s, "mallinfo2_other_threads", test_mallinfo2_other_threads, 20);
	add_case(s, "malloc_stats_layout", test_malloc_stats_layout, 20);
	add_case(s, "malloc_info_xml", test_malloc_info_xml, 20);
	add_case(s, "mallopt_params", test_mallopt_params, 20);
	add_case(s, "malloc_trim_releases", test_malloc_trim_releases, 30);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
