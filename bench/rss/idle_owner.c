/*
 * idle_owner.c -- memory pinned by an idle thread: a producer thread
 * allocates 4M small blocks (16..160 bytes, 412 MiB resident), main frees
 * all of them (every free is a free of another thread's block), and the
 * producer stays alive, asleep, for 12 s.  Prints RSS (MiB) every second for
 * 10 s after the free.  An allocator that keeps a thread's memory with the
 * thread stays high until the thread exits.
 *
 *   cc -O2 -pthread bench/rss/idle_owner.c -o /tmp/idle_owner
 *   LD_PRELOAD=/path/to/libgomalloc.so /tmp/idle_owner   (and each peer)
 *
 * 2026-11-25 (MiB, base -> peak -> 10 s after the free): gomalloc 3 -> 412 ->
 * 39 (the 32 MiB pointer array is still live), jemalloc 3 -> 415 -> 160, glibc
 * 1 -> 435 -> 435 (docs/design.md, "Idle thread caches").
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N (4L << 20)

static void **objs;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int done;

static long rss_mib(void)
{
	long pages = 0, res = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f == NULL)
		return -1;
	if (fscanf(f, "%ld %ld", &pages, &res) != 2)
		res = -1;
	fclose(f);
	return res * sysconf(_SC_PAGESIZE) / (1024 * 1024);
}

static void *producer(void *arg)
{
	(void)arg;
	for (long i = 0; i < N; i++) {
		size_t sz = 16 + (size_t)(i % 7) * 24;
		objs[i] = malloc(sz);
		if (objs[i] == NULL) {
			fprintf(stderr, "malloc failed\n");
			exit(1);
		}
		memset(objs[i], 1, sz);
	}
	pthread_mutex_lock(&mu);
	done = 1;
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
	sleep(12);
	return NULL;
}

int main(void)
{
	objs = malloc(N * sizeof *objs);
	if (objs == NULL)
		return 1;
	long base = rss_mib();
	pthread_t t;
	if (pthread_create(&t, NULL, producer, NULL) != 0)
		return 1;
	pthread_mutex_lock(&mu);
	while (!done)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	printf("base %ld MiB, peak %ld MiB\n", base, rss_mib());
	for (long i = 0; i < N; i++)
		free(objs[i]);
	for (int s = 1; s <= 10; s++) {
		sleep(1);
		printf("+%d s: %ld MiB\n", s, rss_mib());
	}
	pthread_join(t, NULL);
	return 0;
}
