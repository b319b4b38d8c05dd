/*
 * test_memlimit.c -- the soft memory limit (issue 4, "Memory limit") and
 * the parsing of its option.
 *
 * Churn cases (each a child re-executed with its own GOMALLOC_CONF):
 *   1. overshoot: 96 blocks of 4 MiB (384 MiB, over a 256 MiB limit) with a
 *      64 KiB block pinned after each; every allocation must succeed (the
 *      limit is soft) and gm_stats must show it: memory_limit = 256 MiB,
 *      heap in use > limit.
 *   2. free the 4 MiB blocks (384 MiB of free, resident 4 MiB holes), then
 *      churn: 14 slots of 5..9 MiB blocks (~100 MiB live) replaced at
 *      random, every page touched, until 4 GiB have gone through.  No hole
 *      fits, so the heap has to grow: before it does, gomalloc must release
 *      free pages so that retained memory stays under the limit.  RSS
 *      (over the baseline) must stay <= limit + 10% + 16 MiB once the churn
 *      has allocated its first blocks, gm_stats' mapped - released likewise,
 *      and scavenged_total must grow.
 *   Cases: limit (memory_limit:256M), limit_only (the same with
 *   scavenge_delay_ms:60000, so only the limit releases memory) and control
 *   (scavenge_delay_ms:60000, no limit) -- the control must go over the
 *   bound, which proves the workload needs the limit to stay under it.
 * Option cases: memory_limit:1G / 2g / 512K / 300000 / 64MiB are read as
 * bytes (gm_stats().memory_limit); bad values (12Q, empty, -5) and a
 * misspelt key print exactly one line on stderr naming the key, and the
 * default limit stays in force.
 *
 * gm_stats is looked up with dlsym so the same source runs linked and
 * under LD_PRELOAD.
 */
#define _GNU_SOURCE
#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gomalloc.h>

#include "support.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define LIMIT (256 * MiB)
#define SLACK (LIMIT / 10 + 16 * MiB)
#define TURNOVER ((size_t)4 << 30)
#define NSLOTS 14

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static uint64_t rng(void)
{
	return xorshift64(&rng_state);
}

typedef int (*gm_stats_fn_t)(gm_stats_t *);

static int get_stats(gm_stats_t *s)
{
	memset(s, 0, sizeof *s);
	gm_stats_fn_t f = (gm_stats_fn_t)dlsym(RTLD_DEFAULT, "gm_stats");
	if (f == NULL)
		return 0;
	f(s);
	return 1;
}

static void touch(void *p, size_t size)
{
	unsigned char *c = p;
	for (size_t off = 0; off < size; off += 4096)
		c[off] = (unsigned char)off | 1;
	c[size - 1] = 1;
}

/* ---- children ---- */

static int child_stats(void)
{
	free(malloc(1));
	gm_stats_t s;
	if (!get_stats(&s)) {
		printf("FAIL-REASON: gm_stats not found\n");
		return 1;
	}
	printf("memory_limit=%zu\n", s.memory_limit);
	return 0;
}

/* control: 1 = expect the bound to be exceeded (no limit) */
static int child_churn(int control)
{
	free(malloc(1));
	gm_stats_t s;
	if (!get_stats(&s)) {
		printf("FAIL-REASON: gm_stats not found\n");
		return 1;
	}
	if (!control && s.memory_limit != LIMIT) {
		printf("FAIL-REASON: gm_stats().memory_limit = %zu, want %zu\n",
		       s.memory_limit, LIMIT);
		return 1;
	}
	int ok = 1;
	size_t base = rss_bytes();
	double t0 = now_s();

	/* 1. overshoot */
	enum { NOVER = 96 };
	void *big[NOVER], *pin[NOVER];
	for (int i = 0; i < NOVER; i++) {
		big[i] = malloc(4 * MiB);
		pin[i] = malloc(64 * KiB);
		if (big[i] == NULL || pin[i] == NULL) {
			printf("FAIL-REASON: allocation %d past the soft limit returned NULL\n", i);
			return 1;
		}
		touch(big[i], 4 * MiB);
		touch(pin[i], 64 * KiB);
	}
	size_t rss_over = rss_bytes();
	get_stats(&s);
	printf("overshoot: RSS %.1f MiB over baseline; stats: limit %.1f inuse %.1f "
	       "mapped %.1f released %.1f MiB\n", mib(rss_over - base),
	       mib(s.memory_limit), mib(s.heap_inuse), mib(s.mapped), mib(s.released));
	if (!control && s.heap_inuse <= s.memory_limit) {
		printf("FAIL-REASON: overshoot not visible: heap_inuse %zu <= memory_limit %zu\n",
		       s.heap_inuse, s.memory_limit);
		ok = 0;
	}
	size_t scav0 = s.scavenged_total;
	for (int i = 0; i < NOVER; i++)
		free(big[i]);

	/* 2. churn */
	void *slot[NSLOTS] = { 0 };
	size_t slot_size[NSLOTS] = { 0 };
	size_t turnover = 0, nalloc = 0, max_rss = 0, max_retained = 0;
	double max_rss_t = 0;
	double t1 = now_s();
	while (turnover < TURNOVER && now_s() - t1 < 15.0) {
		unsigned i = (unsigned)(rng() % NSLOTS);
		if (nalloc < NSLOTS)
			i = (unsigned)nalloc; /* fill every slot first */
		free(slot[i]);
		size_t sz = 5 * MiB + (size_t)(rng() % (4 * MiB));
		slot[i] = malloc(sz);
		if (slot[i] == NULL) {
			printf("FAIL-REASON: malloc(%zu) returned NULL in the churn\n", sz);
			return 1;
		}
		slot_size[i] = sz;
		touch(slot[i], sz);
		turnover += sz;
		nalloc++;
		if (nalloc >= NSLOTS && nalloc % 4 == 0) {
			size_t r = rss_bytes();
			if (r > max_rss) {
				max_rss = r;
				max_rss_t = now_s() - t1;
			}
		}
		if (nalloc >= NSLOTS && nalloc % 32 == 0) {
			get_stats(&s);
			size_t ret = s.mapped - s.released;
			if (ret > max_retained)
				max_retained = ret;
		}
	}
	double t2 = now_s();
	get_stats(&s);
	size_t live = 0;
	for (int i = 0; i < NSLOTS; i++)
		live += slot_size[i];
	printf("churn: %zu allocations, %.2f GiB in %.2f s (overshoot phase %.2f s); "
	       "live %.1f MiB; max RSS %.1f MiB over baseline at t=%.2f s, "
	       "max mapped-released %.1f MiB; bound %.1f MiB; scavenged %.1f MiB\n",
	       nalloc, (double)turnover / (1 << 30), t2 - t1, t1 - t0, mib(live),
	       mib(max_rss - base), max_rss_t, mib(max_retained), mib(LIMIT + SLACK),
	       mib(s.scavenged_total - scav0));
	if (control) {
		if (max_rss - base <= LIMIT + SLACK) {
			printf("FAIL-REASON: without a limit RSS stayed at %.1f MiB <= %.1f: "
			       "the workload does not test the limit\n",
			       mib(max_rss - base), mib(LIMIT + SLACK));
			ok = 0;
		}
	} else {
		if (max_rss - base > LIMIT + SLACK) {
			printf("FAIL-REASON: RSS reached %.1f MiB over baseline (t=%.2f s), "
			       "over the %.0f MiB limit + %.1f MiB\n", mib(max_rss - base),
			       max_rss_t, mib(LIMIT), mib(SLACK));
			ok = 0;
		}
		if (max_retained > LIMIT + SLACK) {
			printf("FAIL-REASON: mapped - released reached %.1f MiB, over the "
			       "%.0f MiB limit + %.1f MiB\n", mib(max_retained), mib(LIMIT),
			       mib(SLACK));
			ok = 0;
		}
		if (s.scavenged_total <= scav0) {
			printf("FAIL-REASON: nothing was released (scavenged_total %zu)\n",
			       s.scavenged_total);
			ok = 0;
		}
		if (turnover < TURNOVER / 2) {
			printf("FAIL-REASON: only %.2f GiB of churn in 15 s: the limit "
			       "makes the heap thrash\n", (double)turnover / (1 << 30));
			ok = 0;
		}
	}
	for (int i = 0; i < NSLOTS; i++)
		free(slot[i]);
	for (int i = 0; i < NOVER; i++)
		free(pin[i]);
	return ok ? 0 : 1;
}

static int child_main(const char *name)
{
	alarm(40);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (dlsym(RTLD_DEFAULT, "gm_version") == NULL) {
		printf("FAIL-REASON: gm_version not found: malloc is not gomalloc\n");
		return 1;
	}
	if (strcmp(name, "stats") == 0)
		return child_stats();
	if (strcmp(name, "churn") == 0)
		return child_churn(0);
	if (strcmp(name, "control") == 0)
		return child_churn(1);
	printf("FAIL-REASON: unknown case %s\n", name);
	return 1;
}

/* ---- the parent ---- */

START_TEST(limit_churn)
{
	expect_child_ok("memory_limit:256M", "churn");
}
END_TEST

START_TEST(limit_only_churn)
{
	expect_child_ok("memory_limit:256M,scavenge_delay_ms:60000", "churn");
}
END_TEST

START_TEST(control_without_limit)
{
	expect_child_ok("scavenge_delay_ms:60000", "control");
}
END_TEST

/* memory_limit reported by a child run with conf; its stderr in *err. */
static size_t child_limit(const char *conf, child_result_t *r)
{
	run_child(conf, "stats", 20, r);
	ck_assert_msg(WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0,
	              "stats child (GOMALLOC_CONF=%s) failed: %s%s", conf ? conf : "",
	              r->out, r->err);
	const char *m = strstr(r->out, "memory_limit=");
	ck_assert_msg(m != NULL, "no memory_limit line: %s", r->out);
	return (size_t)strtoull(m + 13, NULL, 10);
}

static int count_lines(const char *s)
{
	int n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

START_TEST(limit_option_values)
{
	static const struct {
		const char *conf;
		size_t want;
	} good[] = {
		{ "memory_limit:1G", (size_t)1 << 30 },
		{ "memory_limit:2g", (size_t)2 << 30 },
		{ "memory_limit:512K", 512 * KiB },
		{ "memory_limit:300000", 300000 },
		{ "memory_limit:64MiB", 64 * MiB },
		{ "verbose:false,memory_limit:256M", 256 * MiB },
	};
	child_result_t *r = malloc(sizeof *r);
	ck_assert_ptr_nonnull(r);
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		size_t got = child_limit(good[i].conf, r);
		ck_assert_msg(got == good[i].want, "GOMALLOC_CONF=%s: memory_limit %zu, want %zu",
		              good[i].conf, got, good[i].want);
		ck_assert_msg(r->nerr == 0, "GOMALLOC_CONF=%s printed: %s", good[i].conf, r->err);
	}
	free(r);
}
END_TEST

START_TEST(limit_option_bad)
{
	static const struct {
		const char *conf, *key;
	} bad[] = {
		{ "memory_limit:12Q", "memory_limit" },
		{ "memory_limit:", "memory_limit" },
		{ "memory_limit:-5", "memory_limit" },
		{ "memory_limit:99999999999999999999999G", "memory_limit" },
		{ "memory_limt:1G", "memory_limt" },
	};
	child_result_t *r = malloc(sizeof *r);
	ck_assert_ptr_nonnull(r);
	size_t def = child_limit(NULL, r);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		size_t got = child_limit(bad[i].conf, r);
		ck_assert_msg(got == def, "GOMALLOC_CONF=%s: memory_limit %zu, want the default %zu",
		              bad[i].conf, got, def);
		ck_assert_msg(count_lines(r->err) == 1,
		              "GOMALLOC_CONF=%s: want one line on stderr, got %d: %s",
		              bad[i].conf, count_lines(r->err), r->err);
		ck_assert_msg(strncmp(r->err, "gomalloc: GOMALLOC_CONF", 23) == 0,
		              "GOMALLOC_CONF=%s: message does not start with "
		              "\"gomalloc: GOMALLOC_CONF\": %s", bad[i].conf, r->err);
		ck_assert_msg(strstr(r->err, bad[i].key) != NULL,
		              "GOMALLOC_CONF=%s: message does not name %s: %s",
		              bad[i].conf, bad[i].key, r->err);
	}
	free(r);
}
END_TEST

int main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "--child") == 0)
		return child_main(argv[2]);
	Suite *s = suite_create("memlimit");
	TCase *tc = tcase_create("memlimit");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, limit_option_values);
	tcase_add_test(tc, limit_option_bad);
	tcase_add_test(tc, limit_churn);
	tcase_add_test(tc, limit_only_churn);
	tcase_add_test(tc, control_without_limit);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
