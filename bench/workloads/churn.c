/*
 * churn.c -- thread churn: many short-lived threads that allocate.
 *
 * `threads` (scaled) threads in all are created, at most --threads N (default
 * 4) alive at a time, in waves that are joined before the next.  Each thread
 * does `pairs` malloc/free pairs of random small sizes (16..2048), allocates
 * `keep` blocks and frees half of them, and hands the other half back to the
 * main thread, which frees them after the join: blocks of a thread that has
 * exited.  What is measured is an allocator's per-thread set-up and
 * tear-down (thread cache creation, flush at exit, reuse by the next thread).
 */
#include "wl_common.h"

#include <pthread.h>

static long total = 10000, pairs = 1000, keep = 200;

struct job {
	uint64_t rng;
	void **kept;    /* keep/2 blocks handed back to main */
};

static void *run(void *arg)
{
	struct job *j = arg;
	/* the rng in a local: jobs are adjacent in one array, and a store to
	 * j->rng per block would be false sharing between running jobs (see
	 * larson.c) */
	uint64_t rng = j->rng;
	void **blocks = malloc((size_t)keep * sizeof(void *));
	for (long i = 0; i < pairs; i++) {
		size_t size = wl_range(&rng, 16, 2048);
		char *p = malloc(size);
		if (!p) {
			fprintf(stderr, "churn: malloc failed\n");
			exit(1);
		}
		p[0] = 1;
		p[size - 1] = 2;
		free(p);
	}
	for (long i = 0; i < keep; i++) {
		size_t size = wl_range(&rng, 16, 2048);
		char *p = malloc(size);
		memset(p, 3, size < 64 ? size : 64);
		blocks[i] = p;
	}
	long half = keep / 2;
	for (long i = 0; i < keep - half; i++)
		free(blocks[half + i]);
	j->rng = rng;
	j->kept = blocks;       /* first half still live; main frees them */
	return NULL;
}

int main(int argc, char **argv)
{
	struct wl_opts o;
	const struct wl_extra extra[] = {
		{"total", &total, "threads created in all, scaled"},
		{"pairs", &pairs, "malloc/free pairs per thread"},
		{"keep", &keep, "blocks a thread allocates and keeps (half freed by main)"},
		{NULL, NULL, NULL},
	};
	wl_parse(argc, argv, &o, 0.25, "thread churn (see the source header)", extra);
	int n = o.threads > 0 ? o.threads : 4;
	total = wl_scaled(&o, total, n);
	if (pairs < 0 || keep < 0) {
		fprintf(stderr, "churn: bad parameters\n");
		return 2;
	}
	pthread_t *th = malloc((size_t)n * sizeof(pthread_t));
	struct job *jobs = calloc((size_t)n, sizeof *jobs);
	uint64_t seed = o.seed;
	double t0 = wl_now();
	for (long done = 0; done < total; ) {
		int wave = total - done < n ? (int)(total - done) : n;
		for (int i = 0; i < wave; i++) {
			jobs[i].rng = wl_rand(&seed) | 1;
			if (pthread_create(&th[i], NULL, run, &jobs[i]) != 0) {
				fprintf(stderr, "churn: pthread_create failed\n");
				return 1;
			}
		}
		for (int i = 0; i < wave; i++) {
			pthread_join(th[i], NULL);
			for (long k = 0; k < keep / 2; k++)
				free(jobs[i].kept[k]);
			free(jobs[i].kept);
		}
		done += wave;
	}
	double t1 = wl_now();
	free(th);
	free(jobs);
	char extra_out[64];
	snprintf(extra_out, sizeof extra_out, "threads_created=%ld", total);
	wl_report(t1 - t0, extra_out);
	return 0;
}
