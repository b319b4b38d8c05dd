/*
 * test_stats.c -- the statistics layer (lib/stats.c over mheap's span
 * walk): live-object counts per class, large blocks, the mallinfo2
 * mapping, malloc_info's XML and the stats_print report.  The heap is the
 * core linked directly (gm_alloc/gm_free), the process's own malloc stays
 * glibc's, so every figure is ours alone.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "malloc_impl.h"
#include "sizeclass.h"
#include "stats.h"

START_TEST(small_objects_counted_exactly)
{
	stats_snapshot_t a, b, c;
	void *p[1000];
	gm_free(gm_alloc(48, 0)); /* initialise */
	stats_snapshot(&a);
	for (int i = 0; i < 1000; i++)
		p[i] = gm_alloc(48, 0);
	stats_snapshot(&b);
	ck_assert_uint_eq(b.g.nblocks - a.g.nblocks, 1000);
	ck_assert_uint_eq(b.g.allocated - a.g.allocated, 48000);
	unsigned cls = sizeclass_of(48);
	ck_assert_uint_eq(b.cls[cls].size, 48);
	ck_assert_uint_eq(b.cls[cls].nobjs_inuse - a.cls[cls].nobjs_inuse, 1000);
	ck_assert_uint_ge(b.cls[cls].nobjs_total, b.cls[cls].nobjs_inuse);
	ck_assert_uint_ge(b.g.heap_inuse, 48000);
	for (int i = 0; i < 1000; i++)
		gm_free(p[i]);
	stats_snapshot(&c);
	ck_assert_uint_eq(c.g.nblocks, a.g.nblocks);
	ck_assert_uint_eq(c.g.allocated, a.g.allocated);
}
END_TEST

START_TEST(large_blocks_counted)
{
	stats_snapshot_t a, b, c;
	stats_snapshot(&a);
	void *p = gm_alloc(1 << 20, 0);
	void *q = gm_alloc(100000, 1);
	ck_assert_ptr_nonnull(p);
	stats_snapshot(&b);
	ck_assert_uint_eq(b.g.nlarge - a.g.nlarge, 2);
	/* large blocks count whole pages: 1 MiB + 13 pages */
	ck_assert_uint_eq(b.g.large_allocated - a.g.large_allocated, (1 << 20) + 13 * 8192);
	ck_assert_uint_ge(b.g.mapped, b.g.heap_inuse);
	ck_assert_uint_ge(b.peak_mapped, b.g.mapped);
	gm_free(p);
	gm_free(q);
	stats_snapshot(&c);
	ck_assert_uint_eq(c.g.nlarge, a.g.nlarge);
	ck_assert_uint_eq(c.g.large_allocated, a.g.large_allocated);
}
END_TEST

START_TEST(mallinfo2_mapping)
{
	void *p = gm_alloc(3000, 0);
	stats_snapshot_t s;
	stats_snapshot(&s);
	struct mallinfo2 mi;
	stats_fill_mallinfo2(&s, &mi);
	ck_assert_uint_eq(mi.uordblks, s.g.allocated);
	ck_assert_uint_eq(mi.arena, s.g.heap_inuse + s.g.free_retained);
	ck_assert_uint_eq(mi.uordblks + mi.fordblks, mi.arena);
	ck_assert_uint_eq(mi.hblks, s.g.nlarge);
	ck_assert_uint_eq(mi.keepcost, s.g.free_retained);
	struct mallinfo2 m2;
	stats_mallinfo2(&m2);
	ck_assert_uint_eq(m2.uordblks, mi.uordblks);
	gm_free(p);
	stats_mallinfo2(&m2);
	ck_assert_uint_eq(m2.uordblks + sizeclass_size[sizeclass_of(3000)], mi.uordblks);
}
END_TEST

START_TEST(malloc_info_xml)
{
	void *keep = gm_alloc(100, 0);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	ck_assert_int_eq(stats_malloc_info(0, f), 0);
	fclose(f);
	ck_assert_msg(strncmp(buf, "<malloc version=\"1\">\n", 21) == 0, "%s", buf);
	ck_assert_ptr_nonnull(strstr(buf, "<heap nr=\"0\">"));
	ck_assert_ptr_nonnull(strstr(buf, "</heap>"));
	ck_assert_ptr_nonnull(strstr(buf, "<system type=\"current\" size=\""));
	/* the 112-byte class has free slots around our one object */
	ck_assert_ptr_nonnull(strstr(buf, "to=\"112\""));
	ck_assert(len > 10 && strcmp(buf + len - 10, "</malloc>\n") == 0);
	/* balanced tags: every <x ...> that is not self-closed has </x> */
	int open = 0;
	for (char *t = buf; (t = strchr(t, '<')) != NULL; t++) {
		char *e = strchr(t, '>');
		ck_assert_ptr_nonnull(e);
		if (t[1] == '/')
			open--;
		else if (e[-1] != '/')
			open++;
	}
	ck_assert_int_eq(open, 0);
	free(buf);
	ck_assert_int_eq(stats_malloc_info(1, stdout), EINVAL);
	gm_free(keep);
}
END_TEST

START_TEST(report_to_fd)
{
	int fds[2];
	ck_assert_int_eq(pipe(fds), 0);
	void *p = gm_alloc(200, 0);
	stats_print_report(fds[1]);
	close(fds[1]);
	char out[8192];
	ssize_t n = read(fds[0], out, sizeof out - 1);
	ck_assert_int_gt(n, 0);
	out[n] = '\0';
	ck_assert_ptr_nonnull(strstr(out, "heap statistics"));
	ck_assert_ptr_nonnull(strstr(out, "allocated"));
	ck_assert_ptr_nonnull(strstr(out, "   208 ")); /* the class of 200 bytes */
	close(fds[0]);
	gm_free(p);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("stats");
	TCase *tc = tcase_create("stats");
	tcase_add_test(tc, small_objects_counted_exactly);
	tcase_add_test(tc, large_blocks_counted);
	tcase_add_test(tc, mallinfo2_mapping);
	tcase_add_test(tc, malloc_info_xml);
	tcase_add_test(tc, report_to_fd);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
