/*
 * test_idle_steal.c -- the scavenger takes spans with no live object from
 * idle thread caches (mcache_flush_idle) while their owners and other
 * threads keep allocating and freeing into them; nothing may be lost.
 *
 * The case re-executes this program as a child with
 * GOMALLOC_CONF=cache_idle_ms:1,verbose:true, so that any cache whose slow
 * paths did not run between two scavenger ticks (250 ms) counts as idle:
 * spans are taken from threads that are running their fast paths, the race
 * the design has to survive (docs/design.md, "Idle thread caches").  In the
 * child, 4 threads for 5 s:
 *   - keep up to 512 blocks of their own (8..607 bytes), freeing random ones;
 *   - swap a fresh block into a random slot of a shared table and free the
 *     block they took out (a free by another thread than the allocator);
 *   - every ~1M iterations free their own blocks and sleep 300..500 ms
 *     (their cache goes idle while other threads free into their spans).
 * Every block carries its size and a tag byte and is filled with the tag;
 * it is checked in full before it is freed.  The child fails on any
 * corrupted block; the case fails unless the child exits 0 and its stderr
 * shows that the scavenger took spans ("took N spans").
 *
 * A second case takes *current* spans from running threads: in the child
 * ("lifo"), 4 threads for 5 s run malloc/free pairs of two sizes of
 * 2..12 KiB (spans of at most 4 objects, where a free of the last block
 * taken undoes the allocation), so they stay on their fast paths; the
 * scavenger keeps finding their caches idle and the current span of the
 * class not used last empty, and takes it while the owner may be between
 * its read of alloc[] and its writes to the span (the alloc_spc handshake,
 * docs/design.md).  A wrong take hands one slot out twice or makes the
 * owner's free of its own block an error: the tags, or an abort, show it.
 * The case fails unless some line shows "(N current)" with N > 0.
 *
 * Built linked (test_idle_steal) and for LD_PRELOAD (test_idle_steal-preload).
 */
#define _GNU_SOURCE
#include <check.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../api/support.h"

#define NTHREADS 4
#define NOWN 512
#define SLOTS 20000
#define RUN_SECONDS 5

static _Atomic(uintptr_t) slots[SLOTS];
static _Atomic int bad, stop;
static int lifo_mode;

/* [size:4][tag:1][tag x (size - 5)] */
static unsigned char *block_new(uint64_t *r)
{
	uint64_t x = xorshift64(r);
	uint32_t n = (uint32_t)(8 + x % 600);
	unsigned char *p = malloc(n);
	if (p == NULL) {
		atomic_fetch_add(&bad, 1);
		return NULL;
	}
	unsigned char tag = (unsigned char)(x >> 20);
	memcpy(p, &n, 4);
	p[4] = tag;
	memset(p + 5, tag, n - 5);
	return p;
}

static void block_free(unsigned char *p)
{
	if (p == NULL)
		return;
	uint32_t n;
	memcpy(&n, p, 4);
	for (uint32_t i = 5; i < n; i++) {
		if (p[i] != p[4]) {
			if (atomic_fetch_add(&bad, 1) < 5)
				printf("corrupted block %p (%u bytes) at %u: 0x%02x, want 0x%02x\n",
				       (void *)p, n, i, p[i], p[4]);
			break;
		}
	}
	free(p);
}

static void *worker(void *arg)
{
	uint64_t r = 0x9e3779b97f4a7c15ull * ((uintptr_t)arg + 1);
	unsigned char *own[NOWN];
	int nown = 0;
	for (long it = 0; !atomic_load_explicit(&stop, memory_order_relaxed); it++) {
		if (nown < NOWN) {
			own[nown++] = block_new(&r);
		} else {
			int k = (int)(xorshift64(&r) % NOWN);
			block_free(own[k]);
			own[k] = own[--nown];
		}
		unsigned s = (unsigned)(xorshift64(&r) % SLOTS);
		uintptr_t old = atomic_exchange(&slots[s], (uintptr_t)block_new(&r));
		block_free((unsigned char *)old);
		if ((it & 0xfffff) == 0xfffff) {
			while (nown > 0)
				block_free(own[--nown]);
			usleep(300000 + (unsigned)(xorshift64(&r) % 200000));
		}
	}
	while (nown > 0)
		block_free(own[--nown]);
	return NULL;
}

/* Blocks of spans of at most 4 objects (Go's table): pairs never leave the
 * fast path.  Only the head (size, tag) and 64 bytes are written and
 * checked, so the fast paths dominate the loop. */
static const uint32_t lifo_sizes[] = { 2048, 2688, 4096, 5376, 6144, 10240, 12288 };
#define NLIFO (sizeof lifo_sizes / sizeof lifo_sizes[0])

static unsigned char *lifo_new(uint32_t n, unsigned char tag)
{
	unsigned char *p = malloc(n);
	if (p == NULL) {
		atomic_fetch_add(&bad, 1);
		return NULL;
	}
	memcpy(p, &n, 4);
	memset(p + 4, tag, 64);
	memset(p + n - 8, tag, 8);
	return p;
}

static void lifo_free(unsigned char *p, unsigned char tag)
{
	if (p == NULL)
		return;
	uint32_t n;
	memcpy(&n, p, 4);
	int ok = n >= 2048 && n <= 12288;
	for (int i = 0; ok && i < 64; i++)
		ok = p[4 + i] == tag;
	for (int i = 0; ok && i < 8; i++)
		ok = p[n - 8 + i] == tag;
	if (!ok && atomic_fetch_add(&bad, 1) < 5)
		printf("corrupted block %p (tag 0x%02x)\n", (void *)p, tag);
	free(p);
}

static void *lifo_worker(void *arg)
{
	uint64_t r = 0x9e3779b97f4a7c15ull * ((uintptr_t)arg + 7);
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		uint64_t x = xorshift64(&r);
		/* two different classes: a free that is not of the last block
		 * of its span would take the slow path sooner or later */
		unsigned ia = (unsigned)(x % NLIFO);
		unsigned ib = (ia + 1 + (unsigned)((x >> 8) % (NLIFO - 1))) % NLIFO;
		uint32_t a = lifo_sizes[ia], b = lifo_sizes[ib];
		unsigned char ta = (unsigned char)(x >> 16), tb = (unsigned char)(x >> 24);
		for (int k = 0; k < 64; k++) {
			unsigned char *p = lifo_new(a, ta);
			unsigned char *q = lifo_new(b, tb);
			if (x & (1u << 30)) {
				lifo_free(q, tb);
				lifo_free(p, ta);
			} else {
				lifo_free(p, ta);
				lifo_free(q, tb);
			}
		}
	}
	return NULL;
}

static int child_main(void)
{
	alarm(30);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (dlsym(RTLD_DEFAULT, "gm_version") == NULL) {
		printf("FAIL-REASON: gm_version not found: malloc is not gomalloc\n");
		return 1;
	}
	pthread_t t[NTHREADS];
	for (long i = 0; i < NTHREADS; i++)
		if (pthread_create(&t[i], NULL, lifo_mode ? lifo_worker : worker, (void *)i) != 0) {
			printf("FAIL-REASON: pthread_create failed\n");
			return 1;
		}
	sleep(RUN_SECONDS);
	atomic_store(&stop, 1);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < SLOTS; i++)
		block_free((unsigned char *)atomic_load(&slots[i]));
	if (atomic_load(&bad) != 0) {
		printf("FAIL-REASON: %d corrupted or failed blocks\n", atomic_load(&bad));
		return 1;
	}
	return 0;
}

START_TEST(idle_spans_taken_under_load)
{
	child_result_t r;
	run_child("cache_idle_ms:1,verbose:true", "steal", 45, &r);
	ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0,
	              "child failed (status %d): %.*s", r.status, (int)r.nout, r.out);
	ck_assert_msg(strstr(r.err, "spans with no live object") != NULL,
	              "the scavenger never took a span: the case tested nothing");
}
END_TEST

/* The largest N of the scavenger's "(N current)" lines in err. */
static unsigned max_current(const char *err)
{
	unsigned best = 0;
	for (const char *q = err; (q = strstr(q, "live object from idle thread caches (")) != NULL;) {
		q += strlen("live object from idle thread caches (");
		unsigned v = (unsigned)strtoul(q, NULL, 10);
		if (v > best)
			best = v;
	}
	return best;
}

START_TEST(current_spans_taken_from_running_threads)
{
	child_result_t r;
	run_child("cache_idle_ms:1,verbose:true", "lifo", 45, &r);
	ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0,
	              "child failed (status %d): %.*s %.300s", r.status, (int)r.nout, r.out,
	              r.err);
	ck_assert_msg(max_current(r.err) > 0,
	              "the scavenger never took a current span: the case tested nothing");
}
END_TEST

int main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "--child") == 0) {
		lifo_mode = strcmp(argv[2], "lifo") == 0;
		return child_main();
	}
	Suite *s = suite_create("idle_steal");
	TCase *tc = tcase_create("idle_steal");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, idle_spans_taken_under_load);
	tcase_add_test(tc, current_spans_taken_from_running_threads);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
