/*
 * stats.h -- heap statistics (Go's mstats.go): one snapshot type filled by
 * mheap_stats_snapshot (mheap.c walks the spans under mheap.lock), and the
 * glibc-compatible reports built from it.
 */
#ifndef GM_STATS_H
#define GM_STATS_H

#include <malloc.h>
#include <stdio.h>

#include "gomalloc.h"
#include "params.h"

typedef struct stats_class {
	size_t size;        /* object size of the class */
	size_t nspans;      /* in-use spans of the class (scan + noscan) */
	size_t nobjs_total; /* slots in those spans */
	size_t nobjs_inuse; /* live objects among them; free = total - inuse */
} stats_class_t;

typedef struct stats_snapshot {
	gm_stats_t g;
	stats_class_t cls[GM_NUM_SIZE_CLASSES]; /* [0] unused (large) */
	size_t peak_mapped;                     /* high-water mark of g.mapped */
} stats_snapshot_t;

/* Filled by mheap.c: walks every in-use span under mheap.lock. */
void mheap_stats_snapshot(stats_snapshot_t *out);

/* Full snapshot including the memory limit (scavenge.c). */
void stats_snapshot(stats_snapshot_t *out);

/* glibc's mallinfo2 fields from a snapshot (uordblks = bytes in use). */
void stats_fill_mallinfo2(const stats_snapshot_t *s, struct mallinfo2 *mi);
void stats_mallinfo2(struct mallinfo2 *mi);

/* malloc_stats(3): glibc's layout, on stderr. */
void stats_malloc_stats(void);

/* malloc_info(3): glibc-style XML on fp; returns 0, or EINVAL (as glibc)
 * when options is not 0. */
int stats_malloc_info(int options, FILE *fp);

/* The stats_print report (GOMALLOC_CONF=stats_print:true), written to fd
 * without stdio. */
void stats_print_report(int fd);

#endif /* GM_STATS_H */
