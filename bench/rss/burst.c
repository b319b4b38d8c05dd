/*
 * burst.c -- RSS over time around bursts of allocation (issue 4).
 *
 *   burst [--scale F]
 *
 * Keeps a live set of 32 MiB, then:
 *   idle 0.5 s; burst 1: ~1 GiB in mixed sizes (half the bytes in small
 *   blocks of 16..4096 B, half in large blocks of 64 KiB..8 MiB, picked at
 *   random, every page touched); free it all; idle 10 s; burst 2: 256 MiB
 *   the same way; free; idle 10 s.
 * A sampler thread reads /proc/self/statm every 100 ms into a preallocated
 * buffer (it never calls malloc).  Output (stdout, TSV):
 *   # event <name> <t_s>          burst1, free1, burst2, free2, end
 *   <t_s> <rss_mib> <phase>      one line per sample
 *   # summary k=v ...             peak1 f1_1s f1_3s f1_8s peak2 f2_1s f2_3s
 *                                 f2_8s base (MiB), alloc1_s free1_s (s)
 * Bookkeeping arrays are mmap'ed so they do not disturb the heap.
 * Run it with LD_PRELOAD=<allocator> (bench/rss/run.sh does, for several).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MiB ((size_t)1 << 20)
#define MAXSAMPLES 4096

static double t_start;
static double sample_t[MAXSAMPLES];
static double sample_rss[MAXSAMPLES];
static int sample_phase[MAXSAMPLES];
static atomic_int nsamples;
static atomic_int phase;    /* 0 idle, 1 burst1, 2 idle after free1, 3 burst2, 4 idle */
static atomic_int stop;

static const char *phase_name[] = { "start", "burst1", "idle1", "burst2", "idle2" };

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double rss_mib(void)
{
	char buf[128];
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	unsigned long size = 0, res = 0;
	sscanf(buf, "%lu %lu", &size, &res);
	return (double)res * (double)sysconf(_SC_PAGESIZE) / (double)MiB;
}

static void *sampler(void *arg)
{
	(void)arg;
	double next = now_s();
	while (!atomic_load(&stop)) {
		int i = atomic_load(&nsamples);
		if (i < MAXSAMPLES) {
			sample_t[i] = now_s() - t_start;
			sample_rss[i] = rss_mib();
			sample_phase[i] = atomic_load(&phase);
			atomic_store(&nsamples, i + 1);
		}
		next += 0.1;
		double d = next - now_s();
		if (d > 0) {
			struct timespec ts = { (time_t)d, (long)((d - (time_t)d) * 1e9) };
			nanosleep(&ts, NULL);
		}
	}
	return NULL;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void)
{
	uint64_t x = rng_state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

static void touch(void *p, size_t n)
{
	unsigned char *c = p;
	if (n <= 4096) {
		memset(c, 0x5a, n);
		return;
	}
	for (size_t o = 0; o < n; o += 4096)
		c[o] = 0x5a;
	c[n - 1] = 0x5a;
}

static size_t pick_size(size_t *small_left, size_t *large_left)
{
	int small = *large_left == 0 || (*small_left > 0 && (rng() % 1024) < 1020);
	/* ~1020/1024 of the blocks are small, which puts about half of the
	 * bytes in each kind (small ~2 KiB, large ~4 MiB on average) */
	size_t sz;
	if (small) {
		sz = 16 + (size_t)(rng() % 4081);
		*small_left = *small_left > sz ? *small_left - sz : 0;
	} else {
		sz = (64u << 10) + (size_t)(rng() % ((8u << 20) - (64u << 10)));
		*large_left = *large_left > sz ? *large_left - sz : 0;
	}
	return sz;
}

typedef struct { void **p; size_t n, cap; } vec_t;

static void *bk(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		exit(2);
	}
	return p;
}

static void burst(vec_t *v, size_t bytes)
{
	size_t small_left = bytes / 2, large_left = bytes - bytes / 2;
	v->n = 0;
	while (small_left > 0 || large_left > 0) {
		size_t sz = pick_size(&small_left, &large_left);
		void *p = malloc(sz);
		if (p == NULL) {
			fprintf(stderr, "malloc(%zu) failed\n", sz);
			exit(2);
		}
		touch(p, sz);
		if (v->n == v->cap) {
			fprintf(stderr, "bookkeeping full\n");
			exit(2);
		}
		v->p[v->n++] = p;
	}
}

static void free_all(vec_t *v)
{
	/* in allocation order, as a program dropping a batch would */
	for (size_t i = 0; i < v->n; i++)
		free(v->p[i]);
	v->n = 0;
}

static void sleep_s(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (time_t)s) * 1e9) };
	while (nanosleep(&ts, &ts) != 0)
		;
}

/* RSS of the first sample at or after time t. */
static double rss_at(double t)
{
	int n = atomic_load(&nsamples);
	for (int i = 0; i < n; i++)
		if (sample_t[i] >= t)
			return sample_rss[i];
	return n ? sample_rss[n - 1] : 0;
}

static double peak_between(double a, double b)
{
	int n = atomic_load(&nsamples);
	double m = 0;
	for (int i = 0; i < n; i++)
		if (sample_t[i] >= a && sample_t[i] <= b && sample_rss[i] > m)
			m = sample_rss[i];
	return m;
}

int main(int argc, char **argv)
{
	double scale = 1.0;
	if (argc >= 3 && strcmp(argv[1], "--scale") == 0)
		scale = atof(argv[2]);
	size_t b1 = (size_t)(1024.0 * scale) * MiB, b2 = (size_t)(256.0 * scale) * MiB;
	double idle = 10.0;

	vec_t live = { bk(sizeof(void *) << 16), 0, 1 << 16 };
	vec_t v = { bk(sizeof(void *) << 21), 0, 1 << 21 };
	t_start = now_s();
	pthread_t th;
	if (pthread_create(&th, NULL, sampler, NULL) != 0) {
		fprintf(stderr, "pthread_create failed\n");
		return 2;
	}
	burst(&live, 32 * MiB);
	sleep_s(0.5);
	double base = rss_mib();

	double e_b1 = now_s() - t_start;
	atomic_store(&phase, 1);
	burst(&v, b1);
	double e_f1s = now_s() - t_start;
	free_all(&v);
	double e_f1 = now_s() - t_start;
	atomic_store(&phase, 2);
	sleep_s(idle);

	double e_b2 = now_s() - t_start;
	atomic_store(&phase, 3);
	burst(&v, b2);
	free_all(&v);
	double e_f2 = now_s() - t_start;
	atomic_store(&phase, 4);
	sleep_s(idle);
	double e_end = now_s() - t_start;
	atomic_store(&stop, 1);
	pthread_join(th, NULL);

	printf("# event burst1 %.3f\n# event free1 %.3f\n# event burst2 %.3f\n"
	       "# event free2 %.3f\n# event end %.3f\n", e_b1, e_f1, e_b2, e_f2, e_end);
	int n = atomic_load(&nsamples);
	for (int i = 0; i < n; i++)
		printf("%.3f\t%.1f\t%s\n", sample_t[i], sample_rss[i],
		       phase_name[sample_phase[i]]);
	printf("# summary base=%.1f peak1=%.1f f1_1s=%.1f f1_3s=%.1f f1_8s=%.1f "
	       "peak2=%.1f f2_1s=%.1f f2_3s=%.1f f2_8s=%.1f alloc1_s=%.2f free1_s=%.3f\n",
	       base, peak_between(e_b1, e_f1 + 0.2), rss_at(e_f1 + 1), rss_at(e_f1 + 3),
	       rss_at(e_f1 + 8), peak_between(e_b2, e_f2 + 0.2), rss_at(e_f2 + 1),
	       rss_at(e_f2 + 3), rss_at(e_f2 + 8), e_f1s - e_b1, e_f1 - e_f1s);
	for (size_t i = 0; i < live.n; i++)
		free(live.p[i]);
	return 0;
}
