/*
 * prodcons.c -- producer/consumer: every block is freed by a thread other
 * than the one that allocated it.
 *
 * P producer threads allocate batches of `batch` blocks (random sizes
 * min..max, first and last byte written; the batch's pointer array is itself
 * malloc'ed) and push them on a bounded queue (mutex + condition variables,
 * `depth` batches); C consumer threads pop batches, check and free every block
 * and the array.  --threads N gives N producers and N consumers (default 1+1;
 * more threads than cores oversubscribes, which is the point on 2 cores).
 * Total work = `batches` batches (scaled), split among the producers.
 */
#include "wl_common.h"

#include <pthread.h>

static long batches = 40000, batch = 256, depth = 32, min_size = 16, max_size = 1024;

static struct {
	pthread_mutex_t lock;
	pthread_cond_t not_empty, not_full;
	void ***ring;
	long head, tail;    /* head - tail = batches queued */
	int producers_left;
} q = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER,
       NULL, 0, 0, 0};

struct producer {
	long count;
	uint64_t rng;
};

static void *produce(void *arg)
{
	struct producer *pr = arg;
	/* the rng in a local: producers are adjacent in one array, and a
	 * store to pr->rng per block (kept in memory across malloc) would be
	 * false sharing between them and with whatever else shares the line
	 * (see larson.c) */
	uint64_t rng = pr->rng;
	for (long b = 0; b < pr->count; b++) {
		void **arr = malloc((size_t)batch * sizeof(void *));
		for (long i = 0; i < batch; i++) {
			size_t size = wl_range(&rng, (size_t)min_size, (size_t)max_size);
			unsigned char *p = malloc(size);
			if (!p) {
				fprintf(stderr, "prodcons: malloc failed\n");
				exit(1);
			}
			p[0] = (unsigned char)size;
			p[size - 1] = 0xA5;
			arr[i] = p;
		}
		pthread_mutex_lock(&q.lock);
		while (q.head - q.tail >= depth)
			pthread_cond_wait(&q.not_full, &q.lock);
		q.ring[q.head++ % depth] = arr;
		pthread_cond_signal(&q.not_empty);
		pthread_mutex_unlock(&q.lock);
	}
	pthread_mutex_lock(&q.lock);
	q.producers_left--;
	pthread_cond_broadcast(&q.not_empty);
	pthread_mutex_unlock(&q.lock);
	return NULL;
}

static void *consume(void *arg)
{
	unsigned long *sum = arg;   /* reading the blocks: a consumer uses its data */
	unsigned long acc = 0;      /* summed in a local, stored once (see produce) */
	for (;;) {
		pthread_mutex_lock(&q.lock);
		while (q.head == q.tail && q.producers_left > 0)
			pthread_cond_wait(&q.not_empty, &q.lock);
		if (q.head == q.tail) {
			pthread_mutex_unlock(&q.lock);
			*sum = acc;
			return NULL;
		}
		void **arr = q.ring[q.tail++ % depth];
		pthread_cond_signal(&q.not_full);
		pthread_mutex_unlock(&q.lock);
		for (long i = 0; i < batch; i++) {
			unsigned char *p = arr[i];
			acc += p[0];
			free(p);
		}
		free(arr);
	}
}

int main(int argc, char **argv)
{
	struct wl_opts o;
	const struct wl_extra extra[] = {
		{"batches", &batches, "batches in all, scaled"},
		{"batch", &batch, "blocks per batch"},
		{"depth", &depth, "queue capacity in batches"},
		{"min", &min_size, "smallest block"},
		{"max", &max_size, "largest block"},
		{NULL, NULL, NULL},
	};
	wl_parse(argc, argv, &o, 0.25, "producer/consumer (see the source header)", extra);
	int n = o.threads > 0 ? o.threads : 1;
	batches = wl_scaled(&o, batches, n);
	if (batch < 1 || depth < 1 || min_size < 1 || max_size < min_size) {
		fprintf(stderr, "prodcons: bad parameters\n");
		return 2;
	}
	q.ring = malloc((size_t)depth * sizeof(void **));
	q.producers_left = n;

	pthread_t *th = malloc(2 * (size_t)n * sizeof(pthread_t));
	struct producer *pr = malloc((size_t)n * sizeof *pr);
	unsigned long *sums = calloc((size_t)n, sizeof *sums);
	uint64_t seed = o.seed;
	double t0 = wl_now();
	for (int i = 0; i < n; i++) {
		pr[i].count = batches / n + (i < batches % n);
		pr[i].rng = wl_rand(&seed) | 1;
		if (pthread_create(&th[i], NULL, produce, &pr[i]) != 0 ||
		    pthread_create(&th[n + i], NULL, consume, &sums[i]) != 0) {
			fprintf(stderr, "prodcons: pthread_create failed\n");
			return 1;
		}
	}
	for (int i = 0; i < 2 * n; i++)
		pthread_join(th[i], NULL);
	double t1 = wl_now();
	free(th);
	free(pr);
	free(sums);
	free(q.ring);
	char extra_out[64];
	snprintf(extra_out, sizeof extra_out, "blocks=%ld", batches * batch);
	wl_report(t1 - t0, extra_out);
	return 0;
}
