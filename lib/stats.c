/*
 * stats.c -- the statistics reports: mallinfo/mallinfo2, malloc_stats,
 * malloc_info and gomalloc's own report (stats_print option).
 *
 * Every figure comes from one stats_snapshot_t, taken by mheap.c under
 * mheap.lock by walking the in-use spans and counting live slots in their
 * bitmaps; nothing here keeps counters of its own, so the fast paths pay
 * nothing for statistics.  The walk reads other threads' cached spans
 * without stopping them: figures of a busy heap are approximate, exact at
 * a quiescent point.  Cost: O(spans + objects), fine for an introspection
 * call, not for a hot loop.
 *
 * Mapping onto glibc's mallinfo2 (one "arena"):
 *   arena    = heap_inuse + free_retained   (resident heap pages)
 *   ordblks  = free slots in in-use small spans + free page runs (approx.)
 *   hblks    = live large blocks,  hblkhd = their bytes
 *   uordblks = bytes in live blocks (small and large: "bytes in use")
 *   fordblks = arena - uordblks,   keepcost = free_retained (releasable)
 *   usmblks  = peak mapped bytes
 */
#define _GNU_SOURCE
#include "stats.h"

#include <errno.h>
#include <string.h>

#include "message.h"
#include "scavenge.h"

void stats_snapshot(stats_snapshot_t *out)
{
	mheap_stats_snapshot(out);
	out->g.memory_limit = scavenge_memory_limit();
}

void stats_fill_mallinfo2(const stats_snapshot_t *s, struct mallinfo2 *mi)
{
	memset(mi, 0, sizeof *mi);
	size_t free_slots = 0;
	for (unsigned c = 1; c < GM_NUM_SIZE_CLASSES; c++)
		free_slots += s->cls[c].nobjs_total - s->cls[c].nobjs_inuse;
	mi->arena = s->g.heap_inuse + s->g.free_retained;
	mi->ordblks = free_slots + (s->g.free_retained ? 1 : 0);
	mi->smblks = 0;
	mi->hblks = s->g.nlarge;
	mi->hblkhd = s->g.large_allocated;
	mi->usmblks = s->peak_mapped;
	mi->fsmblks = 0;
	mi->uordblks = s->g.allocated;
	mi->fordblks = mi->arena > mi->uordblks ? mi->arena - mi->uordblks : 0;
	mi->keepcost = s->g.free_retained;
}

void stats_mallinfo2(struct mallinfo2 *mi)
{
	stats_snapshot_t s;
	stats_snapshot(&s);
	stats_fill_mallinfo2(&s, mi);
}

void stats_malloc_stats(void)
{
	stats_snapshot_t s;
	stats_snapshot(&s);
	size_t system = s.g.heap_inuse + s.g.free_retained;
	size_t inuse = s.g.allocated;
	/* glibc prints one block per arena, then the totals incl. mmap. */
	fprintf(stderr, "Arena 0:\n");
	fprintf(stderr, "system bytes     = %10zu\n", system);
	fprintf(stderr, "in use bytes     = %10zu\n", inuse);
	fprintf(stderr, "Total (incl. mmap):\n");
	fprintf(stderr, "system bytes     = %10zu\n", system);
	fprintf(stderr, "in use bytes     = %10zu\n", inuse);
	fprintf(stderr, "max mmap regions = %10zu\n", s.g.nlarge);
	fprintf(stderr, "max mmap bytes   = %10zu\n", s.g.large_allocated);
	fflush(stderr);
}

int stats_malloc_info(int options, FILE *fp)
{
	if (options != 0 || fp == NULL)
		return EINVAL; /* as glibc: the error number is the return value */
	stats_snapshot_t s;
	stats_snapshot(&s);
	size_t free_count = 0, free_bytes = 0;
	fputs("<malloc version=\"1\">\n<heap nr=\"0\">\n<sizes>\n", fp);
	size_t from = 1;
	for (unsigned c = 1; c < GM_NUM_SIZE_CLASSES; c++) {
		const stats_class_t *cl = &s.cls[c];
		size_t nfree = cl->nobjs_total - cl->nobjs_inuse;
		if (nfree) {
			fprintf(fp, "<size from=\"%zu\" to=\"%zu\" total=\"%zu\" count=\"%zu\"/>\n",
			        from, cl->size, nfree * cl->size, nfree);
			free_count += nfree;
			free_bytes += nfree * cl->size;
		}
		from = cl->size + 1;
	}
	if (s.g.free_retained)
		fprintf(fp, "<unsorted from=\"%zu\" to=\"%zu\" total=\"%zu\" count=\"1\"/>\n",
		        (size_t)GM_PAGE_SIZE, s.g.free_retained, s.g.free_retained);
	size_t system = s.g.heap_inuse + s.g.free_retained;
	fputs("</sizes>\n", fp);
	fprintf(fp, "<total type=\"fast\" count=\"0\" size=\"0\"/>\n");
	fprintf(fp, "<total type=\"rest\" count=\"%zu\" size=\"%zu\"/>\n",
	        free_count + (s.g.free_retained ? 1 : 0), free_bytes + s.g.free_retained);
	fprintf(fp, "<system type=\"current\" size=\"%zu\"/>\n", system);
	fprintf(fp, "<system type=\"max\" size=\"%zu\"/>\n", s.peak_mapped);
	fprintf(fp, "<aspace type=\"total\" size=\"%zu\"/>\n", s.g.mapped);
	fprintf(fp, "<aspace type=\"mprotect\" size=\"%zu\"/>\n", s.g.mapped);
	fputs("</heap>\n", fp);
	fprintf(fp, "<total type=\"fast\" count=\"0\" size=\"0\"/>\n");
	fprintf(fp, "<total type=\"rest\" count=\"%zu\" size=\"%zu\"/>\n",
	        free_count + (s.g.free_retained ? 1 : 0), free_bytes + s.g.free_retained);
	fprintf(fp, "<total type=\"mmap\" count=\"%zu\" size=\"%zu\"/>\n", s.g.nlarge,
	        s.g.large_allocated);
	fprintf(fp, "<system type=\"current\" size=\"%zu\"/>\n", system);
	fprintf(fp, "<system type=\"max\" size=\"%zu\"/>\n", s.peak_mapped);
	fprintf(fp, "<aspace type=\"total\" size=\"%zu\"/>\n", s.g.mapped);
	fprintf(fp, "<aspace type=\"mprotect\" size=\"%zu\"/>\n", s.g.mapped);
	fputs("</malloc>\n", fp);
	return 0;
}

void stats_print_report(int fd)
{
	stats_snapshot_t s;
	stats_snapshot(&s);
	gm_dprintf(fd, "gomalloc %d.%d.%d heap statistics\n", GOMALLOC_VERSION_MAJOR,
	           GOMALLOC_VERSION_MINOR, GOMALLOC_VERSION_PATCH);
	gm_dprintf(fd, "  mapped          %12zu  (peak %zu)\n", s.g.mapped, s.peak_mapped);
	gm_dprintf(fd, "  heap in use     %12zu\n", s.g.heap_inuse);
	gm_dprintf(fd, "  allocated       %12zu  in %zu blocks\n", s.g.allocated, s.g.nblocks);
	gm_dprintf(fd, "  large           %12zu  in %zu blocks\n", s.g.large_allocated,
	           s.g.nlarge);
	gm_dprintf(fd, "  free retained   %12zu\n", s.g.free_retained);
	gm_dprintf(fd, "  released        %12zu  (total scavenged %zu)\n", s.g.released,
	           s.g.scavenged_total);
	gm_dprintf(fd, "  metadata        %12zu\n", s.g.metadata);
	gm_dprintf(fd, "  thread caches   %12zu\n", s.g.nthreads);
	gm_dprintf(fd, "  memory limit    %12zu\n", s.g.memory_limit);
	gm_dprintf(fd, "  class   size  spans     objects      in use\n");
	for (unsigned c = 1; c < GM_NUM_SIZE_CLASSES; c++) {
		const stats_class_t *cl = &s.cls[c];
		if (cl->nspans == 0)
			continue;
		gm_dprintf(fd, "  %5u %6zu %6zu %11zu %11zu\n", c, cl->size, cl->nspans,
		           cl->nobjs_total, cl->nobjs_inuse);
	}
}
