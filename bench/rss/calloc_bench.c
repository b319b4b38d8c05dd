/*
 * calloc_bench.c -- time per calloc of 1..64 MiB, on fresh and on recycled
 * memory (issue 4: calloc skips memset on memory known to be zero).
 *
 *   calloc_bench [reps]        (run under LD_PRELOAD=<allocator>)
 *
 * fresh:    reps calls of each size, nothing freed in between, so every
 *           block is new memory (sizes in increasing order; nothing of the
 *           process was freed before)
 * recycled: calloc, write every page (dirty), free, then reps times
 *           calloc the same size again / write every page / free.
 * Columns: size, microseconds per calloc call, and per calloc + first write
 * to every 4 KiB page (what a program pays before it can use the memory:
 * a memset inside calloc, or page faults after it).  Median of reps.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MiB ((size_t)1 << 20)
#define MAXREPS 64

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec * 1e-3;
}

static void touch(void *p, size_t n)
{
	volatile unsigned char *c = p;
	for (size_t o = 0; o < n; o += 4096)
		c[o] = 0x77;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
	int reps = argc > 1 ? atoi(argv[1]) : 8;
	if (reps < 1 || reps > MAXREPS)
		reps = 8;
	static const size_t sizes[] = { 1, 2, 4, 8, 16, 32, 64 };
	enum { NS = sizeof sizes / sizeof sizes[0] };
	double fresh_call[NS], fresh_all[NS], rec_call[NS], rec_all[NS];
	void *keep[NS][MAXREPS];
	double c[MAXREPS], a[MAXREPS];

	for (int s = 0; s < NS; s++) {
		size_t n = sizes[s] * MiB;
		for (int r = 0; r < reps; r++) {
			double t0 = now_us();
			void *p = calloc(1, n);
			double t1 = now_us();
			if (p == NULL)
				return 2;
			touch(p, n);
			double t2 = now_us();
			c[r] = t1 - t0;
			a[r] = t2 - t0;
			keep[s][r] = p;
		}
		fresh_call[s] = median(c, reps);
		fresh_all[s] = median(a, reps);
	}
	for (int s = 0; s < NS; s++)
		for (int r = 0; r < reps; r++)
			free(keep[s][r]);
	for (int s = 0; s < NS; s++) {
		size_t n = sizes[s] * MiB;
		void *p = calloc(1, n);
		touch(p, n);
		free(p);
		for (int r = 0; r < reps; r++) {
			double t0 = now_us();
			p = calloc(1, n);
			double t1 = now_us();
			if (p == NULL)
				return 2;
			touch(p, n);
			double t2 = now_us();
			free(p);
			c[r] = t1 - t0;
			a[r] = t2 - t0;
		}
		rec_call[s] = median(c, reps);
		rec_all[s] = median(a, reps);
	}
	printf("%-8s %14s %16s %14s %16s\n", "size", "fresh call us", "fresh +touch us",
	       "recycled call", "recycled +touch");
	for (int s = 0; s < NS; s++)
		printf("%3zu MiB  %14.1f %16.1f %14.1f %16.1f\n", sizes[s], fresh_call[s],
		       fresh_all[s], rec_call[s], rec_all[s]);
	return 0;
}
