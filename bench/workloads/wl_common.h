/*
 * wl_common.h -- shared helpers of the bench/workloads programs.
 *
 * Every workload is one C file with its own main() that does a FIXED amount of
 * work (never "as much as fits in N seconds"), so the time of a run compares
 * across allocators.  It allocates only through the malloc family (the
 * allocator under test is chosen by LD_PRELOAD by bench/compare) and prints one
 * line on stdout:
 *     time_s=<wall seconds of the work> peak_rss_kb=<getrusage maxrss> [key=value...]
 * Common options (parsed by wl_parse):
 *     --quick        a smaller scale (each run <= ~3 s on the 2-core VM)
 *     --scale X      multiply the amount of work by X (bench/compare --smoke
 *                    uses a tiny one); applied after --quick
 *     --threads N    threads where the workload has them
 *     --seed N       random seed (default fixed, so runs are repeatable)
 * plus the workload's own options, listed by --help.
 */
#ifndef WL_COMMON_H
#define WL_COMMON_H

#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>

struct wl_opts {
	double scale;   /* work multiplier, 1.0 = full run */
	int threads;    /* 0: the workload's default */
	uint64_t seed;
	int quick;
};

/* Workload-specific options: "--name value", integer valued. */
struct wl_extra {
	const char *name;
	long *value;
	const char *help;
};

static void wl_usage(const char *prog, const char *what,
		     const struct wl_extra *extra)
{
	fprintf(stderr, "usage: %s [--quick] [--scale X] [--threads N] [--seed N]", prog);
	for (const struct wl_extra *e = extra; e && e->name; e++)
		fprintf(stderr, " [--%s N]", e->name);
	fprintf(stderr, "\n  %s\n", what);
	for (const struct wl_extra *e = extra; e && e->name; e++)
		fprintf(stderr, "  --%s N: %s (default %ld)\n", e->name, e->help, *e->value);
}

static void wl_parse(int argc, char **argv, struct wl_opts *o, double quick_scale,
		     const char *what, const struct wl_extra *extra)
{
	double scale = 1.0;
	o->scale = 1.0;
	o->threads = 0;
	o->seed = 12345;
	o->quick = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--quick") == 0) {
			o->quick = 1;
			continue;
		}
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			wl_usage(argv[0], what, extra);
			exit(0);
		}
		if (!v || strncmp(a, "--", 2) != 0)
			goto bad;
		if (strcmp(a, "--scale") == 0)
			scale = atof(v);
		else if (strcmp(a, "--threads") == 0)
			o->threads = atoi(v);
		else if (strcmp(a, "--seed") == 0)
			o->seed = strtoull(v, NULL, 0);
		else {
			const struct wl_extra *e = extra;
			for (; e && e->name; e++)
				if (strcmp(a + 2, e->name) == 0)
					break;
			if (!e || !e->name)
				goto bad;
			*e->value = strtol(v, NULL, 0);
		}
		i++;
		continue;
bad:
		fprintf(stderr, "%s: bad argument '%s'\n", argv[0], a);
		wl_usage(argv[0], what, extra);
		exit(2);
	}
	o->scale = scale * (o->quick ? quick_scale : 1.0);
	if (o->scale <= 0)
		o->scale = 1e-9;
}

/* n scaled, at least min. */
static inline long wl_scaled(const struct wl_opts *o, long n, long min)
{
	double v = (double)n * o->scale;
	return v < (double)min ? min : (long)v;
}

static inline double wl_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline long wl_peak_rss_kb(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

/* Current resident set in KiB, from /proc/self/statm (no allocation). */
static inline long wl_cur_rss_kb(void)
{
	char buf[128];
	long size = 0, res = 0;
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	if (sscanf(buf, "%ld %ld", &size, &res) != 2)
		return -1;
	return res * (sysconf(_SC_PAGESIZE) / 1024);
}

/* xorshift64*: per-thread state, no locks, no allocation. */
static inline uint64_t wl_rand(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 2685821657736338717ull;
}

/* Uniform in [lo, hi]. */
static inline size_t wl_range(uint64_t *s, size_t lo, size_t hi)
{
	return lo + (size_t)((wl_rand(s) >> 11) % (hi - lo + 1));
}

/* Uniform in [0, 1). */
static inline double wl_unit(uint64_t *s)
{
	return (double)(wl_rand(s) >> 11) * (1.0 / 9007199254740992.0);
}

/* Natural log and exp without libm (the programs link -lpthread only);
 * about 1e-10 relative error, plenty for drawing random sizes. */
static inline double wl_log(double x)
{
	union { double d; uint64_t u; } v = {x};
	int e = (int)((v.u >> 52) & 0x7ff) - 1023;
	v.u = (v.u & 0x000fffffffffffffull) | 0x3ff0000000000000ull;  /* [1, 2) */
	double m = v.d;
	if (m > 1.4142135623730951) {
		m *= 0.5;
		e++;
	}
	double t = (m - 1) / (m + 1), t2 = t * t, s = 0;
	for (int k = 13; k >= 1; k -= 2)
		s = s * t2 + 1.0 / k;
	return 2 * t * s + e * 0.6931471805599453;
}

static inline double wl_exp(double x)
{
	if (x > 700)
		x = 700;
	if (x < -700)
		return 0;
	double kf = x * 1.4426950408889634;
	long k = (long)(kf < 0 ? kf - 0.5 : kf + 0.5);
	double r = x - (double)k * 0.6931471805599453, s = 1, term = 1;
	for (int i = 1; i < 14; i++) {
		term *= r / i;
		s += term;
	}
	union { double d; uint64_t u; } p = {.u = (uint64_t)(k + 1023) << 52};
	return s * p.d;
}

static inline void wl_report(double t, const char *extra)
{
	printf("time_s=%.6f peak_rss_kb=%ld%s%s\n", t, wl_peak_rss_kb(),
	       extra && *extra ? " " : "", extra ? extra : "");
	fflush(stdout);
}

#endif
