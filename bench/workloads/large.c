/*
 * large.c -- large blocks (1..64 MiB) allocated, touched and freed in a loop:
 * the page-fault-sensitive case of DESIGN.md ("Facts of the machines").
 *
 * A block's size is log-uniform in [min_mb, max_mb] MiB, so small-large and
 * huge blocks are equally represented per octave; every 4 KiB page of it is
 * written (the first touch of a page costs ~11 us on these VMs, ~100 times a
 * write to a resident page).  `live` blocks are kept; each iteration frees a
 * random one and allocates a new one in its place.  An allocator that unmaps
 * (or MADV_DONTNEEDs) freed blocks at once takes a page fault for every page
 * of every block; one that keeps them for reuse takes almost none.  Prints
 * time_s, peak_rss_kb and the page faults taken (minflt).
 */
#include "wl_common.h"

static long iters = 200, live = 2, min_mb = 1, max_mb = 64;

int main(int argc, char **argv)
{
	struct wl_opts o;
	const struct wl_extra extra[] = {
		{"iters", &iters, "iterations, scaled"},
		{"live", &live, "blocks kept live"},
		{"min_mb", &min_mb, "smallest block, MiB"},
		{"max_mb", &max_mb, "largest block, MiB"},
		{NULL, NULL, NULL},
	};
	wl_parse(argc, argv, &o, 0.3, "large blocks, touched (see the source header)", extra);
	iters = wl_scaled(&o, iters, 2);
	if (o.scale < 0.05 && max_mb > 8)
		max_mb = 8;     /* smoke runs: keep it tiny */
	if (live < 1 || min_mb < 1 || max_mb < min_mb) {
		fprintf(stderr, "large: bad parameters\n");
		return 2;
	}
	char **blocks = calloc((size_t)live, sizeof(char *));
	uint64_t rng = o.seed | 1;
	const double lmin = wl_log((double)min_mb), lmax = wl_log((double)max_mb);
	struct rusage ru0, ru1;
	unsigned long touched = 0;
	getrusage(RUSAGE_SELF, &ru0);

	double t0 = wl_now();
	for (long i = 0; i < iters + live; i++) {
		size_t slot = i < live ? (size_t)i : wl_range(&rng, 0, (size_t)live - 1);
		free(blocks[slot]);
		size_t size = (size_t)(wl_exp(lmin + (lmax - lmin) * wl_unit(&rng)) * (1 << 20));
		char *p = malloc(size);
		if (!p) {
			fprintf(stderr, "large: malloc(%zu) failed\n", size);
			return 1;
		}
		for (size_t off = 0; off < size; off += 4096)
			p[off] = (char)off;
		p[size - 1] = 1;
		touched += size >> 12;
		blocks[slot] = p;
	}
	for (long i = 0; i < live; i++)
		free(blocks[i]);
	double t1 = wl_now();
	getrusage(RUSAGE_SELF, &ru1);
	free(blocks);
	char extra_out[96];
	snprintf(extra_out, sizeof extra_out, "minflt=%ld pages_touched=%lu",
		 ru1.ru_minflt - ru0.ru_minflt, touched);
	wl_report(t1 - t0, extra_out);
	return 0;
}
