/*
 * test_options.c -- GOMALLOC_CONF parsing (lib/options.c over options.def)
 * and the no-allocation formatter (lib/message.c): every kind of option,
 * suffixes, bad keys and values (one message each, defaults kept).
 */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "message.h"
#include "options.h"

/* Run fn with stderr redirected to a pipe; return what it wrote. */
static char captured[4096];
static int capture_errors(const char *conf)
{
	int fds[2];
	ck_assert_int_eq(pipe(fds), 0);
	int saved = dup(2);
	dup2(fds[1], 2);
	close(fds[1]);
	options_defaults();
	int errors = options_parse(conf);
	dup2(saved, 2);
	close(saved);
	ssize_t n = read(fds[0], captured, sizeof captured - 1);
	captured[n > 0 ? n : 0] = '\0';
	close(fds[0]);
	return errors;
}

static int count_lines(const char *s)
{
	int n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

START_TEST(defaults)
{
	char *envp[] = {"HOME=/x", NULL};
	ck_assert_int_eq(options_init(envp), 0);
	ck_assert_uint_eq(gm_opt.min_align, 16);
	ck_assert_uint_eq(gm_opt.abort_on_error, 1);
	ck_assert_uint_eq(gm_opt.scavenger, GM_SCAVENGER_BACKGROUND);
	ck_assert_uint_eq(gm_opt.madvise, GM_MADVISE_DONTNEED);
	ck_assert_uint_eq(gm_opt.retain_percent, 110);
	ck_assert_uint_eq(gm_opt.memory_limit, 0);
	ck_assert_uint_eq(gm_opt.stats_print, 0);
}
END_TEST

START_TEST(env_scan)
{
	char *envp[] = {"GOMALLOC_CONFX=min_align:8", "A=b",
	                "GOMALLOC_CONF=min_align:8,scavenger:off,madvise:free", NULL};
	ck_assert_int_eq(options_init(envp), 0);
	ck_assert_uint_eq(gm_opt.min_align, 8);
	ck_assert_uint_eq(gm_opt.scavenger, GM_SCAVENGER_OFF);
	ck_assert_uint_eq(gm_opt.madvise, GM_MADVISE_FREE);
}
END_TEST

START_TEST(kinds)
{
	ck_assert_int_eq(capture_errors("abort_on_error:false,verbose:yes,stats_print=1,"
	                                "scavenge_delay_ms:250,retain_percent:150,"
	                                "scavenger:inline,memory_limit:512M"), 0);
	ck_assert_str_eq(captured, "");
	ck_assert_uint_eq(gm_opt.abort_on_error, 0);
	ck_assert_uint_eq(gm_opt.verbose, 1);
	ck_assert_uint_eq(gm_opt.stats_print, 1);
	ck_assert_uint_eq(gm_opt.scavenge_delay_ms, 250);
	ck_assert_uint_eq(gm_opt.retain_percent, 150);
	ck_assert_uint_eq(gm_opt.scavenger, GM_SCAVENGER_INLINE);
	ck_assert_uint_eq(gm_opt.memory_limit, 512ull << 20);
	/* a bare boolean key means true */
	ck_assert_int_eq(capture_errors("verbose"), 0);
	ck_assert_uint_eq(gm_opt.verbose, 1);
}
END_TEST

START_TEST(size_suffixes)
{
	uint64_t v;
	ck_assert(options_parse_size("4096", 4, &v) && v == 4096);
	ck_assert(options_parse_size("8k", 2, &v) && v == 8192);
	ck_assert(options_parse_size("3G", 2, &v) && v == 3ull << 30);
	ck_assert(options_parse_size("2TB", 3, &v) && v == 2ull << 40);
	ck_assert(options_parse_size("64MiB", 5, &v) && v == 64ull << 20);
	ck_assert(!options_parse_size("", 0, &v));
	ck_assert(!options_parse_size("M", 1, &v));
	ck_assert(!options_parse_size("12X", 3, &v));
	ck_assert(!options_parse_size("-1", 2, &v));
	ck_assert(!options_parse_size("99999999999999999999", 20, &v));
	ck_assert(!options_parse_size("20000000T", 9, &v)); /* overflows */
}
END_TEST

START_TEST(bad_key_one_line_and_defaults_kept)
{
	ck_assert_int_eq(capture_errors("min_align:8,frobnicate:1,scavenger:off"), 1);
	ck_assert_int_eq(count_lines(captured), 1);
	ck_assert_ptr_nonnull(strstr(captured, "gomalloc: GOMALLOC_CONF:"));
	ck_assert_ptr_nonnull(strstr(captured, "frobnicate"));
	/* the valid keys are listed */
	ck_assert_ptr_nonnull(strstr(captured, "memory_limit"));
	ck_assert_ptr_nonnull(strstr(captured, "scavenger"));
	/* the good options around it still apply */
	ck_assert_uint_eq(gm_opt.min_align, 8);
	ck_assert_uint_eq(gm_opt.scavenger, GM_SCAVENGER_OFF);
}
END_TEST

START_TEST(bad_values)
{
	static const char *bad[] = {"min_align:4",  "min_align:12",   "abort_on_error:maybe",
	                            "scavenger:on", "retain_percent:50", "memory_limit:lots",
	                            "scavenge_delay_ms:-5", "madvise:", "verbose:2"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ck_assert_int_eq(capture_errors(bad[i]), 1);
		ck_assert_int_eq(count_lines(captured), 1);
		char key[32];
		size_t kl = strcspn(bad[i], ":");
		memcpy(key, bad[i], kl);
		key[kl] = '\0';
		ck_assert_msg(strstr(captured, key) != NULL, "%s: %s", bad[i], captured);
		ck_assert_ptr_nonnull(strstr(captured, "default kept"));
	}
	/* every bad value left the defaults */
	ck_assert_uint_eq(gm_opt.verbose, 0);
	capture_errors("min_align:4");
	ck_assert_uint_eq(gm_opt.min_align, 16);
	capture_errors("scavenger:on");
	ck_assert_uint_eq(gm_opt.scavenger, GM_SCAVENGER_BACKGROUND);
}
END_TEST

START_TEST(empty_items_ignored)
{
	ck_assert_int_eq(capture_errors(",,verbose:true,"), 0);
	ck_assert_uint_eq(gm_opt.verbose, 1);
	ck_assert_int_eq(capture_errors(""), 0);
}
END_TEST

START_TEST(formatter)
{
	char buf[128];
	gm_fmt(buf, sizeof buf, "%s=%d %u %zu %x %p %c%%", "k", -42, 7u, (size_t)1 << 40, 255u,
	       (void *)0x1234, 'z');
	ck_assert_str_eq(buf, "k=-42 7 1099511627776 ff 0x1234 z%");
	gm_fmt(buf, sizeof buf, "%p %s %lld %05u", NULL, (char *)NULL, -9000000000ll, 42u);
	ck_assert_str_eq(buf, "(nil) (null) -9000000000 00042");
	/* truncation never overflows and stays terminated */
	char small[8];
	memset(small, 'X', sizeof small);
	size_t n = gm_fmt(small, 6, "%s", "abcdefghij");
	ck_assert_uint_eq(n, 5);
	ck_assert_str_eq(small, "abcde");
	ck_assert_int_eq(small[6], 'X');
}
END_TEST

int main(void)
{
	Suite *s = suite_create("options");
	TCase *tc = tcase_create("options");
	tcase_add_test(tc, defaults);
	tcase_add_test(tc, env_scan);
	tcase_add_test(tc, kinds);
	tcase_add_test(tc, size_suffixes);
	tcase_add_test(tc, bad_key_one_line_and_defaults_kept);
	tcase_add_test(tc, bad_values);
	tcase_add_test(tc, empty_items_ignored);
	tcase_add_test(tc, formatter);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
