/*
 * test_sizeclass.c -- Go's size classes against ../shared/sizeclasses.tsv
 * (the copy in tests/unit, and the shared original when it is beside the
 * checkout), the size -> class maps, the division magic, aligned classes.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sizeclass.h"

typedef struct row { unsigned cls, size, span, pages, objs, tail; } row_t;
static row_t rows[GM_NUM_SIZE_CLASSES];
static int nrows;

static int load_tsv(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	char line[256];
	int n = 0;
	if (!fgets(line, sizeof line, f)) {
		fclose(f);
		return -1;
	}
	while (fgets(line, sizeof line, f) && n < GM_NUM_SIZE_CLASSES) {
		row_t r;
		double waste;
		if (sscanf(line, "%u\t%u\t%u\t%u\t%u\t%u\t%lf", &r.cls, &r.size, &r.span,
		           &r.pages, &r.objs, &r.tail, &waste) == 7)
			rows[n++] = r;
	}
	fclose(f);
	return n;
}

static const char *srcdir(void)
{
	const char *s = getenv("srcdir");
	return s ? s : ".";
}

static void setup(void)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/tests/unit/sizeclasses.tsv", srcdir());
	nrows = load_tsv(path);
	if (nrows < 0) {
		snprintf(path, sizeof path, "%s/sizeclasses.tsv", srcdir());
		nrows = load_tsv(path);
	}
	ck_assert_msg(nrows == GM_NUM_SIZE_CLASSES, "could not read 68 rows from %s", path);
}

/* Go's table, with one deliberate difference (docs/design.md, "Spans of at
 * least 24 objects"): a class of at most 1280 bytes whose Go span holds
 * fewer than 24 objects has the fewest pages that hold 24, and one of
 * 1281..4096 bytes whose Go span holds fewer than 8 the fewest pages that
 * hold 8.  Every other class has Go's pages; every class has Go's size. */
static unsigned min_objects(unsigned size)
{
	return size <= 1280 ? 24 : size <= 4096 ? 8 : 0;
}

START_TEST(table_matches_go)
{
	unsigned changed = 0, changed_mid = 0;
	for (int c = 0; c < nrows; c++) {
		ck_assert_uint_eq(rows[c].cls, (unsigned)c);
		ck_assert_uint_eq(sizeclass_size[c], rows[c].size);
		unsigned want = min_objects(rows[c].size);
		if (c > 0 && rows[c].objs < want) {
			ck_assert_uint_ge(sizeclass_nobjs[c], want);
			ck_assert_uint_lt((sizeclass_npages[c] - 1u) * 8192u / rows[c].size, want);
			ck_assert_uint_gt(sizeclass_npages[c], rows[c].pages);
			changed++;
			changed_mid += rows[c].size > 1280;
		} else {
			ck_assert_uint_eq(sizeclass_npages[c], rows[c].pages);
			ck_assert_uint_eq(sizeclass_nobjs[c], rows[c].objs);
		}
		if (c > 0) {
			ck_assert_uint_eq(rows[c].span, rows[c].pages * 8192u);
			ck_assert_uint_eq(sizeclass_nobjs[c],
			                  sizeclass_npages[c] * 8192u / sizeclass_size[c]);
			ck_assert_uint_eq(rows[c].tail, rows[c].span - rows[c].objs * rows[c].size);
			/* tail waste of our span stays within Go's 12.5% bound */
			ck_assert_uint_le((sizeclass_npages[c] * 8192u) % sizeclass_size[c] * 8,
			                  sizeclass_npages[c] * 8192u);
		}
	}
	/* 352, 384, 416, 448, 480, 512, 576 .. 1280; then 1536, 2048, 2304,
	 * 2688, 3200, 3456, 4096 (1408, 1792 and 3072 hold 8 or more in Go) */
	ck_assert_uint_eq(changed, 21);
	ck_assert_uint_eq(changed_mid, 7);
}
END_TEST

START_TEST(shared_copy_identical)
{
	/* When ../shared is beside the checkout, our copy must equal it. */
	char a[4096], b[4096];
	snprintf(a, sizeof a, "%s/../shared/sizeclasses.tsv", srcdir());
	snprintf(b, sizeof b, "%s/tests/unit/sizeclasses.tsv", srcdir());
	FILE *fa = fopen(a, "r"), *fb = fopen(b, "r");
	if (fa && fb) {
		int ca, cb;
		do {
			ca = fgetc(fa);
			cb = fgetc(fb);
			ck_assert_int_eq(ca, cb);
		} while (ca != EOF);
	}
	if (fa)
		fclose(fa);
	if (fb)
		fclose(fb);
	/* Either way, the generated table must still agree with the rows. */
	for (int c = 1; c < nrows; c++)
		ck_assert_uint_eq(sizeclass_size[c], rows[c].size);
}
END_TEST

static unsigned smallest_class(size_t n, unsigned min_align)
{
	for (unsigned c = 1; c < GM_NUM_SIZE_CLASSES; c++) {
		if (sizeclass_size[c] < n)
			continue;
		if (min_align >= 16 && n > 8 && sizeclass_size[c] % 16 != 0)
			continue;
		return c;
	}
	return 0;
}

START_TEST(size_to_class_default)
{
	sizeclass_init(16);
	for (size_t n = 1; n <= GM_MAX_SMALL_SIZE; n++) {
		unsigned c = sizeclass_of(n);
		ck_assert_msg(c == smallest_class(n, 16), "n=%zu class %u", n, c);
		ck_assert_uint_ge(sizeclass_size[c], n);
		if (n > 8)
			ck_assert_uint_eq(sizeclass_size[c] % 16, 0);
	}
	ck_assert_uint_eq(sizeclass_size[sizeclass_of(17)], 32);
	ck_assert_uint_eq(sizeclass_size[sizeclass_of(24)], 32);
	ck_assert_uint_eq(sizeclass_size[sizeclass_of(0)], 8);
}
END_TEST

START_TEST(size_to_class_min_align_8)
{
	sizeclass_init(8);
	for (size_t n = 1; n <= GM_MAX_SMALL_SIZE; n++)
		ck_assert_uint_eq(sizeclass_of(n), smallest_class(n, 8));
	ck_assert_uint_eq(sizeclass_size[sizeclass_of(20)], 24);
	sizeclass_init(16);
}
END_TEST

START_TEST(divmagic_exact)
{
	for (unsigned c = 1; c < GM_NUM_SIZE_CLASSES; c++) {
		uint32_t size = sizeclass_size[c];
		for (uint32_t i = 0; i < sizeclass_nobjs[c]; i++) {
			uintptr_t off = (uintptr_t)i * size;
			ck_assert_uint_eq(sizeclass_objindex(sizeclass_divmagic[c], off), i);
			ck_assert_uint_eq(sizeclass_objindex(sizeclass_divmagic[c], off + size - 1), i);
		}
	}
}
END_TEST

/* What sizeclass_objlimit builds on: for every offset inside a span's
 * objects, the low half of off * divmagic is below divmagic exactly at
 * object starts (and the high half is the object index). */
START_TEST(objstart_test_is_exact)
{
	for (unsigned c = 1; c < GM_NUM_SIZE_CLASSES; c++) {
		uint32_t size = sizeclass_size[c];
		uint32_t magic = sizeclass_divmagic[c];
		size_t end = (size_t)sizeclass_nobjs[c] * size;
		for (size_t off = 0; off < end; off++) {
			uint64_t prod = (uint64_t)off * magic;
			bool start = off % size == 0;
			if (((uint32_t)prod < magic) != start ||
			    (prod >> 32) != off / size)
				ck_abort_msg("class %u (size %u): offset %zu misjudged", c, size, off);
		}
	}
}
END_TEST

/* The same test with the span's limit (sizeclass_objlimit), as the owner's
 * fast free makes it: over the whole span, tail included, it holds exactly
 * at the starts of objects that exist.  With the plain divmagic bound the
 * start of the slot after the last object passes in 30-odd classes. */
START_TEST(objlimit_test_is_exact)
{
	unsigned tail_starts = 0;
	for (unsigned c = 1; c < GM_NUM_SIZE_CLASSES; c++) {
		uint32_t size = sizeclass_size[c];
		uint32_t magic = sizeclass_divmagic[c];
		uint32_t lim = sizeclass_objlimit(c);
		size_t n = sizeclass_nobjs[c];
		size_t end = (size_t)sizeclass_npages[c] * GM_PAGE_SIZE;
		ck_assert_uint_le(lim, magic);
		if (n * size < end)
			tail_starts++;
		for (size_t off = 0; off < end; off++) {
			uint64_t prod = (uint64_t)off * magic;
			bool want = off % size == 0 && off / size < n;
			if (((uint32_t)prod < lim) != want)
				ck_abort_msg("class %u (size %u): offset %zu misjudged", c, size, off);
		}
	}
	ck_assert_uint_gt(tail_starts, 10); /* the case the limit is for exists */
}
END_TEST

START_TEST(aligned_classes)
{
	sizeclass_init(16);
	for (size_t align = 16; align <= GM_PAGE_SIZE; align *= 2) {
		for (size_t n = 1; n <= GM_MAX_SMALL_SIZE; n += 37) {
			unsigned c = sizeclass_for_aligned(n, align);
			if (c == 0)
				continue;
			ck_assert_uint_ge(sizeclass_size[c], n);
			ck_assert_uint_eq(sizeclass_size[c] % align, 0);
		}
	}
	ck_assert_uint_eq(sizeclass_size[sizeclass_for_aligned(100, 4096)], 4096);
	ck_assert_uint_eq(sizeclass_size[sizeclass_for_aligned(1, 8192)], 8192);
	ck_assert_uint_eq(sizeclass_for_aligned(40000, 16), 0);
}
END_TEST

/* The smallest class at or above size's whose object size is a multiple of
 * align, by search (what sizeclass_aligned must hold). */
static unsigned aligned_class_by_search(size_t size, size_t align)
{
	for (unsigned c = sizeclass_of(size); c < GM_NUM_SIZE_CLASSES; c++)
		if (sizeclass_size[c] % align == 0)
			return c;
	return 0;
}

/* The aligned_alloc fast path's table (and sizeclass_for_aligned, which
 * reads it) gives the class a search finds for every small size and every
 * alignment up to a page, under both min_align settings; a table that was
 * off would hand out misaligned or too-small blocks without any other
 * check noticing. */
START_TEST(aligned_table_matches)
{
	static const unsigned aligns[] = { 8, 16 };
	for (unsigned m = 0; m < 2; m++) {
		sizeclass_init(aligns[m]);
		for (unsigned k = 0; k <= GM_PAGE_SHIFT; k++) {
			size_t align = (size_t)1 << k;
			for (size_t n = 1; n <= GM_MAX_SMALL_SIZE; n++) {
				unsigned want = aligned_class_by_search(n, align);
				unsigned got = sizeclass_aligned[k][sizeclass_of(n)];
				if (got != want || sizeclass_for_aligned(n, align) != want)
					ck_abort_msg("min_align %u, size %zu, align %zu: table %u, "
					             "sizeclass_for_aligned %u, search %u",
					             aligns[m], n, align, got,
					             sizeclass_for_aligned(n, align), want);
				if (got != 0 && (sizeclass_size[got] % align != 0 ||
				                 sizeclass_size[got] < n))
					ck_abort_msg("size %zu, align %zu: class %u of %u bytes", n,
					             align, got, (unsigned)sizeclass_size[got]);
			}
		}
		ck_assert_uint_eq(sizeclass_aligned[12][sizeclass_of(100)],
		                  aligned_class_by_search(100, 4096));
	}
	sizeclass_init(16);
	/* a 64-byte class for 64-byte alignment, the page class for a page */
	ck_assert_uint_eq(sizeclass_size[sizeclass_aligned[6][sizeclass_of(1)]], 64);
	ck_assert_uint_eq(sizeclass_size[sizeclass_aligned[GM_PAGE_SHIFT][sizeclass_of(1)]],
	                  GM_PAGE_SIZE);
	ck_assert_uint_eq(sizeclass_aligned[4][0], 0);
}
END_TEST

/* The refill's next-word shortcut (mcache_refill_next_word) skips the
 * classes from GM_FIRST_ONE_WORD_CLASS on without looking at the span:
 * they must all have one free-map word, and the class before it more. */
START_TEST(one_word_classes)
{
	ck_assert_uint_eq(sizeclass_size[GM_FIRST_ONE_WORD_CLASS], 128);
	ck_assert_uint_gt(sizeclass_nobjs[GM_FIRST_ONE_WORD_CLASS - 1], 64);
	for (unsigned c = GM_FIRST_ONE_WORD_CLASS; c < GM_NUM_SIZE_CLASSES; c++)
		ck_assert_msg(sizeclass_nobjs[c] <= 64, "class %u: %u objects", c,
		              (unsigned)sizeclass_nobjs[c]);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sizeclass");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, table_matches_go);
	tcase_add_test(tc, shared_copy_identical);
	tcase_add_test(tc, size_to_class_default);
	tcase_add_test(tc, size_to_class_min_align_8);
	tcase_add_test(tc, divmagic_exact);
	tcase_add_test(tc, objstart_test_is_exact);
	tcase_add_test(tc, objlimit_test_is_exact);
	tcase_add_test(tc, aligned_classes);
	tcase_add_test(tc, aligned_table_matches);
	tcase_add_test(tc, one_word_classes);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed;
}
