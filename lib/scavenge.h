/*
 * scavenge.h -- returning free pages to the OS (Go's mgcscavenge.go):
 * the policy.  The mechanism is pagealloc_scav_take/return + os_unused,
 * driven by mheap_scavenge.
 */
#ifndef GM_SCAVENGE_H
#define GM_SCAVENGE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compiler.h"

#define SCAV_SAMPLES 16

/* The planner's state: pure data, so tests drive it with a fake clock. */
typedef struct scav_plan {
	uint64_t delay_ns;          /* free memory must stay in excess this long */
	unsigned retain_percent;    /* goal = peak in-use * this / 100 */
	uint64_t peak_window_ns;    /* in-use peak decays over this window */
	size_t peak_inuse;          /* recent peak of in-use bytes */
	uint64_t peak_time;         /* when peak_inuse was last raised */
	/* excess samples over the last delay: (time, excess bytes) */
	uint64_t sample_time[SCAV_SAMPLES];
	size_t sample_excess[SCAV_SAMPLES];
	unsigned nsamples, next;
} scav_plan_t;

void scav_plan_init(scav_plan_t *p, uint64_t delay_ns, unsigned retain_percent);
/* One tick at time now: in-use bytes and retained bytes (in use + free
 * pages still resident).  Returns how many bytes may be released now: the
 * smallest excess over goal seen during the whole last delay (memory that
 * stayed unused that long).  0 while the delay has not elapsed. */
size_t scav_plan_tick(scav_plan_t *p, uint64_t now, size_t inuse, size_t retained);
/* The goal in bytes at the current peak. */
size_t scav_plan_goal(const scav_plan_t *p);

/* Pacing: how long to sleep after spending spent_ns releasing memory, so
 * the scavenger uses about 1% of one CPU (never less than one tick). */
uint64_t scav_pace_sleep_ns(uint64_t spent_ns);
#define SCAV_TICK_NS (250ull * 1000 * 1000)

void scavenge_init(void);
/* Start the background thread after the first allocation (cheap check). */
void scavenge_maybe_start_slow(void);
extern _Atomic bool scavenge_started;
static ALWAYS_INLINE void scavenge_maybe_start(void)
{
	if (UNLIKELY(!__atomic_load_n((bool *)&scavenge_started, __ATOMIC_RELAXED)))
		scavenge_maybe_start_slow();
}
/* The heap grew or pages were freed: wake a parked scavenger (cheap). */
void scavenge_note_growth(void);
/* Wake the background thread if it is parked (pages or caches to watch):
 * one load when it is not. */
extern _Atomic uint32_t scav_parked; /* futex word: 1 while parked */
void scavenge_wake_slow(void);
/* A thread exit left no thread cache: see scavenge.c, "The last thread". */
void scavenge_note_last_cache_exit(void);
static ALWAYS_INLINE void scavenge_wake(void)
{
	if (UNLIKELY(atomic_load_explicit(&scav_parked, memory_order_relaxed)))
		scavenge_wake_slow();
}
/* Before mapping `bytes` more: scavenge synchronously to stay under the
 * memory limit.  Call without mheap.lock. */
void scavenge_for_limit(size_t bytes);
/* An allocation just paged in `paged_in` bytes (fresh or scavenged pages),
 * `fresh` of them never handed out before (heap growth), with `inuse`
 * bytes in use counting it: release free resident pages, at most as many
 * as were paged in, so retained memory stays within retain_percent of the
 * recent peak in use (and under the memory limit).  Go's allocSpan does the
 * same on heap growth.  Scavenged pages paged in again release only when
 * retained memory is a page-cache group (512 KiB) over the goal.  Call
 * without mheap.lock. */
void scavenge_for_growth(size_t paged_in, size_t fresh, size_t inuse);
size_t scavenge_memory_limit(void);
void scavenge_fork_prepare(void);
void scavenge_fork_parent(void);
void scavenge_fork_child(void);

#endif /* GM_SCAVENGE_H */
