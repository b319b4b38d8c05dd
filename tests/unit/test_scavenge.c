/*
 * test_scavenge.c -- the scavenger's policy with a fake clock (scav_plan_*,
 * scav_pace_sleep_ns) and its mechanism with a fake release function
 * (mheap_scavenge over the real page heap, os_unused replaced): which
 * ranges, in which order, how much, at what pace.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "malloc_impl.h"
#include "mheap.h"
#include "scavenge.h"

#define MiB ((size_t)1 << 20)
#define MS 1000000ull

START_TEST(no_release_before_delay)
{
	scav_plan_t p;
	scav_plan_init(&p, 1000 * MS, 110);
	uint64_t t = 1000 * MS;
	/* burst: 1 GiB in use, then freed; retained stays at 1 GiB */
	ck_assert_uint_eq(scav_plan_tick(&p, t, 1024 * MiB, 1024 * MiB), 0);
	t += 250 * MS;
	ck_assert_uint_eq(scav_plan_tick(&p, t, 10 * MiB, 1024 * MiB), 0);
	/* within one delay of the peak nothing may go: the peak still counts */
	t += 250 * MS;
	ck_assert_uint_eq(scav_plan_tick(&p, t, 10 * MiB, 1024 * MiB), 0);
}
END_TEST

START_TEST(release_after_idle_to_goal)
{
	scav_plan_t p;
	scav_plan_init(&p, 1000 * MS, 110);
	uint64_t t = 1000 * MS;
	scav_plan_tick(&p, t, 1024 * MiB, 1024 * MiB);
	size_t got = 0;
	uint64_t first = 0;
	for (int i = 1; i <= 40 && got == 0; i++) {
		t += 250 * MS;
		got = scav_plan_tick(&p, t, 10 * MiB, 1024 * MiB);
		if (got)
			first = t;
	}
	ck_assert_uint_gt(got, 0);
	/* released down to peak * 1.1 = 11 MiB */
	ck_assert_uint_eq(got, 1024 * MiB - 11 * MiB);
	/* and it happened within peak window + delay + a tick (about 2.25 s) */
	ck_assert_uint_le(first - 1000 * MS, 2250 * MS);
}
END_TEST

START_TEST(busy_program_keeps_memory)
{
	/* in-use swings between 5 and 25 MiB every tick: the excess over the
	 * goal never lasts a whole delay, so nothing beyond 25*1.1 is released */
	scav_plan_t p;
	scav_plan_init(&p, 1000 * MS, 110);
	uint64_t t = 0;
	size_t total = 0;
	for (int i = 0; i < 200; i++) {
		t += 250 * MS;
		size_t inuse = (i % 2) ? 25 * MiB : 5 * MiB;
		total += scav_plan_tick(&p, t, inuse, 26 * MiB);
	}
	ck_assert_uint_eq(total, 0);
}
END_TEST

START_TEST(retain_percent_goal)
{
	scav_plan_t p;
	scav_plan_init(&p, 0, 200);
	scav_plan_tick(&p, 1, 100 * MiB, 100 * MiB);
	ck_assert_uint_eq(scav_plan_goal(&p), 200 * MiB);
	/* delay 0: excess goes at once */
	ck_assert_uint_eq(scav_plan_tick(&p, 2, 100 * MiB, 300 * MiB), 100 * MiB);
}
END_TEST

START_TEST(pacing_one_percent)
{
	ck_assert_uint_eq(scav_pace_sleep_ns(0), SCAV_TICK_NS);
	ck_assert_uint_eq(scav_pace_sleep_ns(10 * MS), 990 * MS);
	/* work / (work + sleep) <= 1% */
	uint64_t w = 37 * MS;
	ck_assert(w * 100 <= w + scav_pace_sleep_ns(w) + 1);
}
END_TEST

/* ---- mechanism: fake release ---- */
static struct { uintptr_t base; size_t bytes; } rel[4096];
static int nrel;

static bool fake_release(void *p, size_t bytes)
{
	if (nrel < 4096) {
		rel[nrel].base = (uintptr_t)p;
		rel[nrel].bytes = bytes;
		nrel++;
	}
	return true;
}

START_TEST(mechanism_ranges_and_order)
{
	ck_assert(gm_init_slow());
	mheap_set_release_hook(fake_release);
	/* Scavenge everything already free so we start clean. */
	mheap_scavenge(0, false);
	/* Three large spans, freed: 3 free runs, released highest first. */
	mspan_t *s[3];
	for (int i = 0; i < 3; i++)
		s[i] = mheap_alloc_span(NULL, 64, spanclass_make(0, 0), 0);
	mspan_t *keep = mheap_alloc_span(NULL, 1, spanclass_make(0, 0), 0);
	for (int i = 0; i < 3; i++)
		memset((void *)s[i]->base, 1, 64 * GM_PAGE_SIZE);
	uintptr_t b0 = s[0]->base, b2 = s[2]->base;
	mheap_free_span(NULL, s[0]);
	mheap_free_span(NULL, s[2]);
	nrel = 0;
	size_t free_before = pagealloc_free_pages(&mheap.pages) - pagealloc_scav_pages(&mheap.pages);
	ck_assert_uint_eq(free_before, 128);
	/* how much: asking for 16 pages releases exactly 16 pages */
	size_t got = mheap_scavenge(16 * GM_PAGE_SIZE, false);
	ck_assert_uint_eq(got, 16 * GM_PAGE_SIZE);
	ck_assert_int_ge(nrel, 1);
	/* which: the highest free run first (s[2] lies above s[0]) */
	ck_assert_uint_ge(rel[0].base, b2);
	ck_assert_uint_lt(rel[0].base, b2 + 64 * GM_PAGE_SIZE);
	/* the rest: everything, in descending address order */
	got = mheap_scavenge(0, false);
	ck_assert_uint_eq(got, 112 * GM_PAGE_SIZE);
	for (int i = 1; i < nrel; i++)
		ck_assert_uint_lt(rel[i].base, rel[i - 1].base);
	ck_assert_uint_eq(rel[nrel - 1].base, b0);
	ck_assert_uint_eq(pagealloc_free_pages(&mheap.pages), pagealloc_scav_pages(&mheap.pages));
	/* a second pass finds nothing */
	nrel = 0;
	ck_assert_uint_eq(mheap_scavenge(0, false), 0);
	ck_assert_int_eq(nrel, 0);
	mheap_free_span(NULL, s[1]);
	mheap_free_span(NULL, keep);
	mheap_set_release_hook(NULL);
}
END_TEST

START_TEST(scavenged_pages_are_zero_on_reuse)
{
	ck_assert(gm_init_slow());
	mspan_t *s = mheap_alloc_span(NULL, 32, spanclass_make(0, 0), 0);
	uintptr_t base = s->base;
	memset((void *)base, 0xAB, 32 * GM_PAGE_SIZE);
	mheap_free_span(NULL, s);
	/* without scavenging, reuse of the same pages needs zeroing */
	s = mheap_alloc_span(NULL, 32, spanclass_make(0, 0), 0);
	ck_assert_uint_eq(s->base, base);
	ck_assert_uint_eq(s->needzero, 1);
	mheap_free_span(NULL, s);
	/* scavenged with MADV_DONTNEED: known zero, and really zero */
	mheap_scavenge(0, false);
	s = mheap_alloc_span(NULL, 32, spanclass_make(0, 0), 0);
	ck_assert_uint_eq(s->base, base);
	ck_assert_uint_eq(s->needzero, 0);
	for (size_t i = 0; i < 32 * GM_PAGE_SIZE; i += 512)
		ck_assert_uint_eq(((unsigned char *)base)[i], 0);
	mheap_free_span(NULL, s);
}
END_TEST

int main(void)
{
	Suite *su = suite_create("scavenge");
	TCase *tc = tcase_create("policy");
	tcase_add_test(tc, no_release_before_delay);
	tcase_add_test(tc, release_after_idle_to_goal);
	tcase_add_test(tc, busy_program_keeps_memory);
	tcase_add_test(tc, retain_percent_goal);
	tcase_add_test(tc, pacing_one_percent);
	suite_add_tcase(su, tc);
	TCase *tm = tcase_create("mechanism");
	tcase_add_test(tm, mechanism_ranges_and_order);
	tcase_add_test(tm, scavenged_pages_are_zero_on_reuse);
	suite_add_tcase(su, tm);
	SRunner *sr = srunner_create(su);
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed;
}
