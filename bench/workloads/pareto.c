/*
 * pareto.c -- many short-lived objects with a heavy-tailed (Pareto) size
 * distribution, one thread: the shape of interpreters and request handlers.
 *
 * Sizes are xm / U^(1/alpha) (xm = 16 B, alpha = 1.2, capped at 1 MiB), so
 * most objects are a few dozen bytes and a few are huge.  --min / --max set
 * xm and the cap (e.g. --min 4096 --max 32768: the classes whose spans hold
 * few objects; bench/RESULTS.md, "where pareto's gap is by size").  Each new object is
 * written in full (memset) and put in a random slot of a short window (1024
 * slots), freeing the object it replaces; one in 16 goes instead into a long
 * window (32768 slots), so a medium-lived population keeps the heap
 * fragmented.  Total work = `ops` (scaled) allocations; everything is freed at
 * the end.
 */
#include "wl_common.h"

static long ops = 16000000, short_slots = 1024, long_slots = 32768;
static long min_size = 16, max_size = 1 << 20;

int main(int argc, char **argv)
{
	struct wl_opts o;
	const struct wl_extra extra[] = {
		{"ops", &ops, "allocations, scaled"},
		{"short", &short_slots, "short-lived window"},
		{"long", &long_slots, "medium-lived window"},
		{"min", &min_size, "smallest size (the Pareto scale xm), bytes"},
		{"max", &max_size, "largest size (the cap), bytes"},
		{NULL, NULL, NULL},
	};
	wl_parse(argc, argv, &o, 0.3, "Pareto-sized short-lived objects (see the source header)", extra);
	ops = wl_scaled(&o, ops, 1000);
	if (short_slots < 1 || long_slots < 1 || min_size < 1 || max_size < min_size) {
		fprintf(stderr, "pareto: bad parameters\n");
		return 2;
	}
	const double xm = (double)min_size, inv_alpha = 1.0 / 1.2, cap = (double)max_size;
	char **win_short = calloc((size_t)short_slots, sizeof(char *));
	char **win_long = calloc((size_t)long_slots, sizeof(char *));
	uint64_t rng = o.seed | 1;
	unsigned long bytes = 0;

	double t0 = wl_now();
	for (long i = 0; i < ops; i++) {
		double u = 1.0 - wl_unit(&rng);         /* (0, 1] */
		double s = xm * wl_exp(-inv_alpha * wl_log(u));
		size_t size = s > cap ? (size_t)cap : (size_t)s;
		char *p = malloc(size);
		if (!p) {
			fprintf(stderr, "pareto: malloc(%zu) failed\n", size);
			return 1;
		}
		memset(p, (int)i, size);
		bytes += size;
		char **slot = (wl_rand(&rng) & 15) == 0
			? &win_long[wl_range(&rng, 0, (size_t)long_slots - 1)]
			: &win_short[wl_range(&rng, 0, (size_t)short_slots - 1)];
		free(*slot);
		*slot = p;
	}
	for (long i = 0; i < short_slots; i++)
		free(win_short[i]);
	for (long i = 0; i < long_slots; i++)
		free(win_long[i]);
	double t1 = wl_now();
	free(win_short);
	free(win_long);
	char extra_out[64];
	snprintf(extra_out, sizeof extra_out, "ops=%ld mean_size=%.1f", ops, (double)bytes / (double)ops);
	wl_report(t1 - t0, extra_out);
	return 0;
}
