/*
 * test_boot.c -- bootstrap safety (issue 2): allocation from a constructor
 * that runs before main (and before anything else of the program has
 * allocated), dlsym/dlerror (glibc's dlerror buffer comes from calloc/malloc
 * while the allocator may itself be starting), the first call in a new
 * thread for every entry point, and blocks that cross those boundaries.
 * Built linked (tests/api/test_boot) and preloaded (test_boot-preload);
 * gm_* is reached through dlsym in both, and every block must be one that
 * gomalloc knows (gm_kind_of >= 0), so the test fails on any other malloc.
 */
#define _GNU_SOURCE
#include <check.h>
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef int (*kind_fn)(const void *);

/* Filled by the constructor, before main. */
static void *ctor_small, *ctor_large, *ctor_zero, *ctor_grown;
static int ctor_zero_ok, ctor_dlerror_ok;

__attribute__((constructor(101))) static void early_allocations(void)
{
	ctor_small = malloc(40);
	if (ctor_small)
		memset(ctor_small, 0x5a, 40);
	ctor_large = malloc(200000);
	if (ctor_large)
		memset(ctor_large, 0x6b, 200000);
	ctor_zero = calloc(1000, 8);
	ctor_zero_ok = ctor_zero != NULL;
	for (size_t i = 0; ctor_zero_ok && i < 8000; i++)
		ctor_zero_ok = ((unsigned char *)ctor_zero)[i] == 0;
	char *g = malloc(10);
	if (g) {
		memcpy(g, "123456789", 10);
		g = realloc(g, 100000); /* small -> large across the bootstrap */
	}
	ctor_grown = g;
	/* dlsym of a missing symbol makes glibc allocate dlerror's message */
	void *none = dlsym(RTLD_DEFAULT, "gm_no_such_symbol_here");
	const char *err = dlerror();
	ctor_dlerror_ok = none == NULL && err != NULL && strstr(err, "gm_no_such_symbol_here");
}

static kind_fn kind(void)
{
	kind_fn k = (kind_fn)dlsym(RTLD_DEFAULT, "gm_kind_of");
	ck_assert_msg(k != NULL, "gm_kind_of not found: malloc is not gomalloc");
	return k;
}

START_TEST(constructor_blocks_are_gomallocs)
{
	kind_fn k = kind();
	ck_assert_ptr_nonnull(ctor_small);
	ck_assert_ptr_nonnull(ctor_large);
	ck_assert_ptr_nonnull(ctor_grown);
	ck_assert_int_ge(k(ctor_small), 0);
	ck_assert_int_ge(k(ctor_large), 0);
	ck_assert_int_ge(k(ctor_zero), 0);
	ck_assert_int_ge(k(ctor_grown), 0);
	ck_assert(ctor_zero_ok);
	for (int i = 0; i < 40; i++)
		ck_assert_int_eq(((unsigned char *)ctor_small)[i], 0x5a);
	ck_assert_int_eq(((unsigned char *)ctor_large)[199999], 0x6b);
	ck_assert_str_eq((char *)ctor_grown, "123456789");
	ck_assert_uint_ge(malloc_usable_size(ctor_grown), 100000);
	ck_assert(ctor_dlerror_ok);
	free(ctor_small);
	free(ctor_zero);
	ctor_grown = realloc(ctor_grown, 20); /* large -> small */
	ck_assert_str_eq((char *)ctor_grown, "123456789");
	free(ctor_grown);
}
END_TEST

/* Each entry point as the very first allocator call of a fresh thread. */
enum { FIRST_MALLOC, FIRST_CALLOC, FIRST_REALLOC, FIRST_ALIGNED, FIRST_MEMALIGN,
       FIRST_FREE, FIRST_USABLE, FIRST_LARGE, NFIRST };

struct first_arg {
	int which;
	void *block;  /* FIRST_FREE/FIRST_USABLE: a block of the main thread */
	int ok;
};

static void *first_call(void *a)
{
	struct first_arg *fa = a;
	void *p = NULL;
	switch (fa->which) {
	case FIRST_MALLOC:
		p = malloc(24);
		fa->ok = p != NULL && ((uintptr_t)p & 15) == 0;
		break;
	case FIRST_CALLOC:
		p = calloc(100, 3);
		fa->ok = p != NULL;
		for (int i = 0; fa->ok && i < 300; i++)
			fa->ok = ((char *)p)[i] == 0;
		break;
	case FIRST_REALLOC:
		p = realloc(NULL, 77);
		fa->ok = p != NULL;
		break;
	case FIRST_ALIGNED:
		p = aligned_alloc(4096, 4096);
		fa->ok = p != NULL && ((uintptr_t)p & 4095) == 0;
		break;
	case FIRST_MEMALIGN:
		fa->ok = posix_memalign(&p, 256, 1000) == 0 && ((uintptr_t)p & 255) == 0;
		break;
	case FIRST_FREE:
		free(fa->block); /* a cross-thread free before this thread allocated */
		fa->ok = 1;
		return NULL;
	case FIRST_USABLE:
		fa->ok = malloc_usable_size(fa->block) >= 48;
		return NULL;
	case FIRST_LARGE:
		p = malloc(3 << 20);
		fa->ok = p != NULL;
		if (p)
			memset(p, 1, 3 << 20);
		break;
	}
	if (p) {
		memset(p, 0x33, 1);
		fa->block = p; /* checked and freed by the main thread */
	}
	return NULL;
}

START_TEST(first_call_in_new_thread)
{
	kind_fn k = kind();
	for (int w = 0; w < NFIRST; w++) {
		struct first_arg fa = {w, NULL, 0};
		if (w == FIRST_FREE || w == FIRST_USABLE)
			fa.block = malloc(48);
		void *given = fa.block;
		pthread_t t;
		ck_assert_int_eq(pthread_create(&t, NULL, first_call, &fa), 0);
		ck_assert_int_eq(pthread_join(t, NULL), 0);
		ck_assert_msg(fa.ok, "first call %d in a new thread failed", w);
		if (w == FIRST_FREE) {
			/* the slot is free again: its class hands it out in time */
			continue;
		}
		ck_assert_int_ge(k(fa.block), 0);
		if (w != FIRST_USABLE)
			ck_assert_ptr_ne(fa.block, given);
		free(fa.block);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("boot");
	TCase *tc = tcase_create("boot");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, constructor_blocks_are_gomallocs);
	tcase_add_test(tc, first_call_in_new_thread);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
