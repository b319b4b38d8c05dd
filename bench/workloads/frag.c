/*
 * frag.c -- fragmentation: how much memory stays resident when most of a big
 * heap of small objects is freed and the program moves on to other sizes.
 *
 * Phase 1 allocates `mb` MiB (scaled; default 512) of small objects, sizes
 * 16..1024 at random, each written in full.  Phase 2 frees a random 90% of
 * them.  Phase 3 allocates objects of OTHER sizes (1040..8192), written in
 * full, `refill_pct` percent (default 30) of phase 1's volume.  Live data at
 * the end = 10% + 30% of phase 1's bytes; an allocator that can reuse the
 * freed small-object pages for the new sizes (or return them and map fresh
 * ones) ends near that, one that cannot keeps phase 1's footprint and more.
 * Prints time_s, peak_rss_kb, rss_after_free_kb, final_rss_kb, live_kb.
 */
#include "wl_common.h"

static long mb = 512, free_pct = 90, refill_pct = 30;

int main(int argc, char **argv)
{
	struct wl_opts o;
	const struct wl_extra extra[] = {
		{"mb", &mb, "phase 1 volume in MiB, scaled"},
		{"free_pct", &free_pct, "percent of phase 1 objects freed"},
		{"refill_pct", &refill_pct, "phase 3 volume, percent of phase 1"},
		{NULL, NULL, NULL},
	};
	wl_parse(argc, argv, &o, 0.4, "fragmentation (see the source header)", extra);
	size_t volume = (size_t)wl_scaled(&o, mb << 20, 1 << 20);
	if (free_pct < 0 || free_pct > 100 || refill_pct < 0) {
		fprintf(stderr, "frag: bad parameters\n");
		return 2;
	}
	uint64_t rng = o.seed | 1;
	size_t cap = volume / 16 + 16, n = 0, live = 0;
	char **objs = malloc(cap * sizeof(char *));
	size_t *sizes = malloc(cap * sizeof(size_t));

	double t0 = wl_now();
	for (size_t bytes = 0; bytes < volume; n++) {
		size_t size = wl_range(&rng, 16, 1024);
		objs[n] = malloc(size);
		if (!objs[n]) {
			fprintf(stderr, "frag: malloc failed\n");
			return 1;
		}
		memset(objs[n], (int)n, size);
		sizes[n] = size;
		bytes += size;
	}
	/* Free a random free_pct% (partial Fisher-Yates over the indices). */
	size_t nfree = n * (size_t)free_pct / 100;
	for (size_t i = 0; i < nfree; i++) {
		size_t j = i + wl_range(&rng, 0, n - 1 - i);
		char *tp = objs[i]; objs[i] = objs[j]; objs[j] = tp;
		size_t ts = sizes[i]; sizes[i] = sizes[j]; sizes[j] = ts;
		free(objs[i]);
		objs[i] = NULL;
	}
	for (size_t i = nfree; i < n; i++)
		live += sizes[i];
	long rss_after_free = wl_cur_rss_kb();

	size_t refill = volume / 100 * (size_t)refill_pct, m = 0, cap2 = refill / 1040 + 16;
	char **objs2 = malloc(cap2 * sizeof(char *));
	for (size_t bytes = 0; bytes < refill && m < cap2; m++) {
		size_t size = wl_range(&rng, 1040, 8192);
		objs2[m] = malloc(size);
		if (!objs2[m]) {
			fprintf(stderr, "frag: malloc failed\n");
			return 1;
		}
		memset(objs2[m], (int)m, size);
		bytes += size;
		live += size;
	}
	double t1 = wl_now();
	long final_rss = wl_cur_rss_kb();

	char extra_out[160];
	snprintf(extra_out, sizeof extra_out, "rss_after_free_kb=%ld final_rss_kb=%ld live_kb=%zu",
		 rss_after_free, final_rss, live >> 10);
	wl_report(t1 - t0, extra_out);
	for (size_t i = nfree; i < n; i++)
		free(objs[i]);
	for (size_t i = 0; i < m; i++)
		free(objs2[i]);
	free(objs);
	free(sizes);
	free(objs2);
	return 0;
}
