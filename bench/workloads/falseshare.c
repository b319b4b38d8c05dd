/*
 * falseshare.c -- passive false sharing (Berger et al., Hoard, ASPLOS 2000).
 *
 * Each round, the main thread allocates one small block (`size` bytes, default
 * 8) per worker, back to back, so they likely share a cache line, and hands
 * one to each worker.  A worker writes its block `writes` times, frees it, and
 * then `cycles` times allocates a block of the same size, writes it `writes`
 * times and frees it.  An allocator that gives the freed block (or another
 * block of the main thread's cache line) back to the worker makes the workers
 * write into one cache line from different cores: the run slows down many
 * times.  Rounds are separated by barriers.  --threads N workers (default 2).
 * Total work = rounds (scaled) * workers * (1 + cycles) * writes writes.
 */
#include "wl_common.h"

#include <pthread.h>

static long rounds = 20000, writes = 1000, cycles = 4, size = 8;

static pthread_barrier_t start_bar, end_bar;
static char **handed;

/* Read-modify-write the first byte n times; volatile, so each is a real
 * store to the block's cache line. */
static void write_block(volatile char *p, long n)
{
	for (long i = 0; i < n; i++)
		p[0] = (char)(p[0] + 1);
}

static void *worker(void *arg)
{
	long idx = (long)(intptr_t)arg;
	for (long r = 0; r < rounds; r++) {
		pthread_barrier_wait(&start_bar);
		char *p = handed[idx];
		write_block(p, writes);
		free(p);
		for (long c = 0; c < cycles; c++) {
			char *q = malloc((size_t)size);
			if (!q) {
				fprintf(stderr, "falseshare: malloc failed\n");
				exit(1);
			}
			q[0] = 0;
			write_block(q, writes);
			free(q);
		}
		pthread_barrier_wait(&end_bar);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct wl_opts o;
	const struct wl_extra extra[] = {
		{"rounds", &rounds, "rounds, scaled"},
		{"writes", &writes, "writes to each block"},
		{"cycles", &cycles, "own malloc/write/free cycles per round"},
		{"size", &size, "block size in bytes"},
		{NULL, NULL, NULL},
	};
	wl_parse(argc, argv, &o, 0.5, "passive false sharing (see the source header)", extra);
	int n = o.threads > 0 ? o.threads : 2;
	rounds = wl_scaled(&o, rounds, 1);
	if (size < 1 || writes < 1 || cycles < 0) {
		fprintf(stderr, "falseshare: bad parameters\n");
		return 2;
	}
	handed = malloc((size_t)n * sizeof(char *));
	pthread_barrier_init(&start_bar, NULL, (unsigned)n + 1);
	pthread_barrier_init(&end_bar, NULL, (unsigned)n + 1);
	pthread_t *th = malloc((size_t)n * sizeof(pthread_t));
	for (long i = 0; i < n; i++)
		if (pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i) != 0) {
			fprintf(stderr, "falseshare: pthread_create failed\n");
			return 1;
		}
	double t0 = wl_now();
	for (long r = 0; r < rounds; r++) {
		for (int i = 0; i < n; i++) {
			handed[i] = malloc((size_t)size);
			memset(handed[i], 0, (size_t)size);
		}
		pthread_barrier_wait(&start_bar);
		pthread_barrier_wait(&end_bar);
	}
	double t1 = wl_now();
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	free(th);
	free(handed);
	wl_report(t1 - t0, NULL);
	return 0;
}
