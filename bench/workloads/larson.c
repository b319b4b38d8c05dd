/*
 * larson.c -- Larson & Krishnan's server workload ("Memory allocation for
 * long-running server applications", ISMM 1998), fixed-work version.
 *
 * Each of T threads owns an array of `slots` blocks.  One operation frees a
 * random slot and puts a new block of random size (min..max bytes) in it,
 * writing its first and last byte.  After `rounds` operations a thread hands
 * its whole array to a NEW thread and exits; a chain of threads runs `gens`
 * generations.  The blocks were allocated by earlier threads, most of them
 * dead, so almost every free is a free of another (exited) thread's block:
 * this is what stresses thread caches and the return of remote frees.  The
 * arrays are first filled by the main thread.
 *
 * Total work = threads * gens * rounds operations, the same for every
 * allocator.  Prints time_s, peak_rss_kb and ops.
 */
#include "wl_common.h"

#include <pthread.h>
#include <semaphore.h>

static long slots = 5000, rounds = 100000, gens = 200, min_size = 8, max_size = 1000;
static sem_t chains_done;

struct chain {
	char **blocks;
	uint64_t rng;
	long gen_left;
};

static void *worker(void *arg)
{
	struct chain *c = arg;
	/* The chain's state lives in locals while the thread runs: the chains
	 * sit next to each other in one calloc'd array, and a store to c->rng
	 * on every operation (the compiler must keep it in memory across
	 * malloc and free) made the threads' cores pass that cache line back
	 * and forth: false sharing in the harness, not the allocator.  Before
	 * this, two threads ran at a third of the speed of two one-thread
	 * processes under every allocator (2026-11-27, bench/RESULTS.md). */
	uint64_t rng = c->rng;
	char **blocks = c->blocks;
	for (long i = 0; i < rounds; i++) {
		size_t victim = wl_range(&rng, 0, (size_t)slots - 1);
		size_t size = wl_range(&rng, (size_t)min_size, (size_t)max_size);
		free(blocks[victim]);
		char *p = malloc(size);
		if (!p) {
			fprintf(stderr, "larson: malloc(%zu) failed\n", size);
			exit(1);
		}
		p[0] = (char)i;
		p[size - 1] = (char)size;
		blocks[victim] = p;
	}
	c->rng = rng;
	if (--c->gen_left > 0) {
		pthread_t t;
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&t, &attr, worker, c) != 0) {
			fprintf(stderr, "larson: pthread_create failed\n");
			exit(1);
		}
		pthread_attr_destroy(&attr);
	} else {
		sem_post(&chains_done);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct wl_opts o;
	const struct wl_extra extra[] = {
		{"slots", &slots, "blocks per thread"},
		{"rounds", &rounds, "operations per thread generation"},
		{"gens", &gens, "generations (threads in each chain), scaled"},
		{"min", &min_size, "smallest block"},
		{"max", &max_size, "largest block"},
		{NULL, NULL, NULL},
	};
	wl_parse(argc, argv, &o, 0.25, "Larson server workload (see the source header)", extra);
	int nthreads = o.threads > 0 ? o.threads : 2;
	gens = wl_scaled(&o, gens, 1);
	if (o.scale < 0.1)
		rounds = wl_scaled(&o, rounds * 10, 100);
	if (min_size < 1 || max_size < min_size || slots < 1) {
		fprintf(stderr, "larson: bad sizes\n");
		return 2;
	}

	sem_init(&chains_done, 0, 0);
	struct chain *chains = calloc((size_t)nthreads, sizeof *chains);
	uint64_t seed = o.seed;
	for (int t = 0; t < nthreads; t++) {
		chains[t].rng = wl_rand(&seed) | 1;
		chains[t].gen_left = gens;
		chains[t].blocks = malloc((size_t)slots * sizeof(char *));
		for (long i = 0; i < slots; i++) {
			size_t size = wl_range(&chains[t].rng, (size_t)min_size, (size_t)max_size);
			chains[t].blocks[i] = malloc(size);
			chains[t].blocks[i][0] = 1;
		}
	}

	double t0 = wl_now();
	for (int t = 0; t < nthreads; t++) {
		pthread_t th;
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&th, &attr, worker, &chains[t]) != 0) {
			fprintf(stderr, "larson: pthread_create failed\n");
			return 1;
		}
		pthread_attr_destroy(&attr);
	}
	for (int t = 0; t < nthreads; t++)
		sem_wait(&chains_done);
	double t1 = wl_now();

	for (int t = 0; t < nthreads; t++) {
		for (long i = 0; i < slots; i++)
			free(chains[t].blocks[i]);
		free(chains[t].blocks);
	}
	free(chains);
	char extra_out[64];
	snprintf(extra_out, sizeof extra_out, "ops=%ld", (long)nthreads * gens * rounds);
	wl_report(t1 - t0, extra_out);
	return 0;
}
