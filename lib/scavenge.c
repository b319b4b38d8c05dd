/*
 * scavenge.c -- when to give free pages back to the OS (Go's
 * mgcscavenge.go, adapted to a program without a garbage collector).
 *
 * Mechanism lives below: pagealloc_scav_take/scav_return find and mark the
 * highest free, unscavenged page runs; mheap_scavenge madvises them
 * (os_unused) without holding mheap.lock.  This file is only policy:
 *
 *   goal     = recent peak of in-use bytes * retain_percent / 100
 *              (peak = highest in-use seen during the last delay; the heap
 *              also records its high-water mark between ticks)
 *   retained = heap bytes mapped and not released (in use + free resident)
 *   excess   = retained - goal, sampled every tick (250 ms)
 *   release  = the smallest excess seen over the whole last delay
 *              (scavenge_delay_ms, default 1 s): only memory that stayed
 *              unneeded that long goes back, so a busy program that frees
 *              and reallocates big blocks never faults them back in.
 * Pacing: about 1% of one CPU, as Go, but averaged: 1% of wall time accrues
 * as credit (up to 500 ms of work, full at start); a tick spends it, and only
 * a deficit t makes the thread sleep 99 t.  When nothing free is resident it parks on a futex
 * and is woken only when the heap frees pages again, so an idle process is
 * not woken at all.
 *
 * Memory limit (memory_limit option, else cgroup v2 memory.max): before the
 * heap maps more, scavenge_for_limit releases free pages synchronously so
 * retained + growth stays under the limit.  It is soft, like GOMEMLIMIT:
 * allocation still succeeds past it.
 *
 * Growth (Go's allocSpan after a heap growth): when an allocation pages in
 * fresh or scavenged pages, scavenge_for_growth releases free resident
 * pages -- at most as many as it paged in -- while retained exceeds
 * retain_percent of in use.  Memory that is free while the heap takes new
 * pages could not serve this request (no run was long enough), so it goes
 * back now instead of a delay later, and peak RSS stays near peak in use;
 * free memory the program keeps reusing is never touched here.
 *
 * Idle caches: each tick also asks mcache_flush_idle to take the page
 * cache and cached large blocks of every thread cache whose slow paths
 * have not run for cache_idle_ms (default 2 s), so a thread that went
 * quiet does not pin memory; those pages then age like any free pages.
 * The heap's huge slot (mheap_huge_flush_idle) likewise, after a tick
 * (250 ms) without use.
 * The thread does not park while such a cache may still need flushing.
 *
 * Modes (option scavenger): background (a thread, started lazily after the
 * first allocation and again in a forked child), inline (the same tick run
 * from allocation slow paths), off.
 *
 * The last thread: glibc ends a process when its last thread ends (a main
 * thread that called pthread_exit is counted out; the thread that brings
 * the count to 0 calls exit(0)), and the background thread is one of
 * those threads.  So it watches for being the only one left and then
 * returns, and glibc's exit(0) follows as it would have without it (see
 * scav_sleep_watching).
 *
 * Locks: scav_lock (rank SCAVENGE) serialises ticks and thread start; it is
 * taken before mheap.lock, never inside it.
 */
#define _GNU_SOURCE
#include "scavenge.h"

#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "lock.h"
#include "mcache.h"
#include "message.h"
#include "mheap.h"
#include "options.h"
#include "os_linux.h"

#define SCAV_MAX_PER_TICK ((size_t)256 << 20)
/* Most release work (ns) the thread may do ahead of its 1% budget. */
#define SCAV_CREDIT_MAX_NS ((int64_t)500 * 1000 * 1000)

/* ---- the planner (pure) ---- */

void scav_plan_init(scav_plan_t *p, uint64_t delay_ns, unsigned retain_percent)
{
	memset(p, 0, sizeof *p);
	p->delay_ns = delay_ns;
	p->retain_percent = retain_percent;
	p->peak_window_ns = delay_ns > SCAV_TICK_NS ? delay_ns : SCAV_TICK_NS;
}

/* bytes * percent / 100 without overflow: the goal of the background ticks
 * and of the release at heap growth. */
static size_t scav_percent_of(size_t bytes, unsigned percent)
{
	return bytes / 100 * percent + bytes % 100 * percent / 100;
}

size_t scav_plan_goal(const scav_plan_t *p)
{
	return scav_percent_of(p->peak_inuse, p->retain_percent);
}

size_t scav_plan_tick(scav_plan_t *p, uint64_t now, size_t inuse, size_t retained)
{
	/* peak: highest in-use during the last window */
	if (inuse >= p->peak_inuse || now - p->peak_time > p->peak_window_ns) {
		p->peak_inuse = inuse;
		p->peak_time = now;
	}
	size_t goal = scav_plan_goal(p);
	size_t excess = retained > goal ? retained - goal : 0;
	p->sample_time[p->next] = now;
	p->sample_excess[p->next] = excess;
	p->next = (p->next + 1) % SCAV_SAMPLES;
	if (p->nsamples < SCAV_SAMPLES)
		p->nsamples++;
	/* The excess must have lasted the whole delay: we need a sample at or
	 * before now - delay, and take the minimum from it on. */
	bool covered = p->delay_ns == 0;
	size_t min = excess;
	uint64_t newest_old = 0;
	unsigned newest_old_i = SCAV_SAMPLES;
	for (unsigned i = 0; i < p->nsamples; i++) {
		uint64_t t = p->sample_time[i];
		if (now - t < p->delay_ns) {
			if (p->sample_excess[i] < min)
				min = p->sample_excess[i];
		} else if (t >= newest_old) {
			newest_old = t;
			newest_old_i = i;
			covered = true;
		}
	}
	if (!covered)
		return 0;
	if (newest_old_i < SCAV_SAMPLES && p->sample_excess[newest_old_i] < min)
		min = p->sample_excess[newest_old_i];
	return min;
}

uint64_t scav_pace_sleep_ns(uint64_t spent_ns)
{
	uint64_t sleep = spent_ns * 99; /* work / (work + sleep) = 1% */
	return sleep < SCAV_TICK_NS ? SCAV_TICK_NS : sleep;
}

/* ---- the runtime side ---- */

_Atomic bool scavenge_started;
static gm_mutex_t scav_lock = GM_MUTEX_INIT(LOCKRANK_SCAVENGE);
static scav_plan_t scav_plan;           /* under scav_lock */
static size_t scav_limit;               /* bytes; 0 = none */
_Atomic uint32_t scav_parked;           /* futex word: 1 while parked */
static _Atomic uint32_t scav_nudge;     /* futex word: 1 = a thread exit to watch */
static uint64_t scav_last_tick;         /* inline mode; under scav_lock */

static size_t scav_retained(void)
{
	size_t total = pagealloc_total_pages(&mheap.pages);
	size_t released = pagealloc_released_pages(&mheap.pages);
	return total > released ? (total - released) << GM_PAGE_SHIFT : 0;
}

static size_t scav_free_resident(void)
{
	size_t f = pagealloc_free_pages(&mheap.pages);
	size_t s = pagealloc_scav_pages(&mheap.pages);
	return f > s ? (f - s) << GM_PAGE_SHIFT : 0;
}

void scavenge_init(void)
{
	scav_plan_init(&scav_plan, (uint64_t)gm_opt.scavenge_delay_ms * 1000000ull,
	               gm_opt.retain_percent);
	scav_limit = gm_opt.memory_limit;
	if (scav_limit == 0)
		scav_limit = os_cgroup_memory_max();
	if (gm_opt.scavenger == GM_SCAVENGER_OFF)
		atomic_store(&scavenge_started, true); /* nothing to start */
	if (gm_opt.scavenger == GM_SCAVENGER_INLINE)
		atomic_store(&scavenge_started, true);
	if (gm_opt.verbose && scav_limit)
		gm_message("memory limit %zu bytes in force", scav_limit);
}

size_t scavenge_memory_limit(void)
{
	return scav_limit;
}

/* One tick: returns the ns spent releasing (0 if nothing). Under scav_lock. */
static bool scav_cache_pending;  /* under scav_lock */

static uint64_t scav_tick(uint64_t now)
{
	if (gm_opt.cache_idle_ms != 0) {
		scav_cache_pending = mcache_flush_idle(now, gm_opt.cache_idle_ms * 1000000ull);
		/* the heap's huge slot: after a tick unused (a loop that reuses
		 * its block uses it all the time; a block bigger than 4 MiB
		 * should not wait the thread caches' 2 s before it ages) */
		scav_cache_pending |= mheap_huge_flush_idle(now, SCAV_TICK_NS);
	}
	size_t inuse = atomic_load_explicit(&mheap.pages_inuse, memory_order_relaxed);
	size_t high = atomic_exchange_explicit(&mheap.inuse_peak, inuse, memory_order_relaxed);
	if (high < inuse)
		high = inuse;
	size_t release = scav_plan_tick(&scav_plan, now, high << GM_PAGE_SHIFT,
	                                scav_retained());
	if (release == 0)
		return 0;
	if (release > SCAV_MAX_PER_TICK)
		release = SCAV_MAX_PER_TICK;
	uint64_t t0 = os_nanotime();
	mheap_scavenge(release, true);
	return os_nanotime() - t0 + 1;
}

/* ---- the last thread ----
 *
 * Without this a program whose main thread called pthread_exit never
 * ended: once its other threads were gone the background thread was the
 * last, asleep with every signal blocked, so not even SIGTERM ended the
 * process (found with Python's test_threading, test_3_join_in_forked_from_
 * thread: a child forked by a thread exits that way).  When a thread exit
 * leaves no thread cache (no thread that allocated is left), that thread
 * nudges the background thread, which then reads /proc/self/stat
 * (os_threads_state): 1 ms after the nudge, then at doubling intervals.
 * Once the main thread has exited and the background thread is the only
 * one left it returns, and glibc's exit(0) ends the process.  While the
 * main thread is gone it keeps looking (at most every tick, 250 ms; it no
 * longer parks); a nudge that finds the main thread running is watched
 * for a second (the nudging thread may be the main thread itself, still
 * on its way out) and then dropped, so a process whose main thread runs
 * is still not woken when idle.  Not covered: a main thread that exits
 * while the threads left never allocated nor freed, after the last cache
 * went (no nudge comes; the process waits as before). */
#define SCAV_WATCH_FIRST_NS (1000ull * 1000)        /* 1 ms */
#define SCAV_WATCH_NUDGE_NS (1000ull * 1000 * 1000) /* 1 s */

typedef struct scav_watch {
	bool on;
	uint64_t until; /* os_nanotime: stop looking (renewed while main is gone) */
	uint64_t step;  /* the next look, this long after the last */
} scav_watch_t;

void scavenge_note_last_cache_exit(void)
{
	if (gm_opt.scavenger != GM_SCAVENGER_BACKGROUND || !atomic_load(&scavenge_started))
		return;
	atomic_store(&scav_nudge, 1);
	syscall(SYS_futex, &scav_nudge, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	scavenge_wake_slow(); /* if parked */
}

/* Sleep ns (until a nudge, which starts a watch); while watching, look at
 * the threads at w->step intervals.  True: this is the last thread. */
static bool scav_sleep_watching(uint64_t ns, scav_watch_t *w)
{
	uint64_t now = os_nanotime(), end = now + ns;
	for (;;) {
		uint64_t wait = end > now ? end - now : 0;
		if (w->on && wait > w->step)
			wait = w->step;
		struct timespec ts = { (time_t)(wait / 1000000000u), (long)(wait % 1000000000u) };
		syscall(SYS_futex, &scav_nudge, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0);
		now = os_nanotime();
		if (atomic_exchange(&scav_nudge, 0)) {
			w->on = true;
			w->until = now + SCAV_WATCH_NUDGE_NS;
			w->step = SCAV_WATCH_FIRST_NS;
		}
		if (w->on) {
			enum os_threads st = os_threads_state();
			if (st == OS_THREADS_ONLY_CALLER)
				return true;
			if (st == OS_THREADS_MAIN_GONE)
				w->until = now + SCAV_WATCH_NUDGE_NS;
			if (st == OS_THREADS_UNKNOWN || now >= w->until)
				w->on = false;
			else if (w->step < SCAV_TICK_NS)
				w->step *= 2;
		}
		if (now >= end)
			return false;
	}
}

static void *scav_thread(void *arg)
{
	(void)arg;
	/* every signal is blocked here from the first instruction
	 * (scavenge_maybe_start_slow) */
	prctl(PR_SET_NAME, (unsigned long)"gomalloc-scav", 0, 0, 0);
	/* Pacing budget: 1% of wall time accrues as credit (full at start,
	 * capped) and releasing spends it; only once it is spent does the
	 * thread sleep 99x its work.  Over any long window that is still 1% of
	 * one CPU, but a burst freed after a quiet spell goes back within a few
	 * ticks instead of 256 MiB per 99x-work sleep (seconds each). */
	int64_t credit = SCAV_CREDIT_MAX_NS;
	uint64_t last = os_nanotime();
	scav_watch_t watch = { 0 };
	for (;;) {
		uint64_t now = os_nanotime();
		credit += (int64_t)((now - last) / 100);
		if (credit > SCAV_CREDIT_MAX_NS)
			credit = SCAV_CREDIT_MAX_NS;
		last = now;
		gm_mutex_lock(&scav_lock);
		uint64_t spent = scav_tick(now);
		gm_mutex_unlock(&scav_lock);
		credit -= (int64_t)spent;
		uint64_t sleep = scav_pace_sleep_ns(credit < 0 ? (uint64_t)-credit : 0);
		if (!watch.on && spent == 0 && scav_free_resident() == 0 && !scav_cache_pending) {
			/* nothing resident to give back: park until pages are
			 * freed (scavenge_wake) or a thread exit nudges */
			atomic_store(&scav_parked, 1);
			if (scav_free_resident() == 0 && !atomic_load(&scav_nudge))
				syscall(SYS_futex, &scav_parked, FUTEX_WAIT_PRIVATE, 1,
				        NULL, NULL, 0);
			atomic_store(&scav_parked, 0);
		}
		if (scav_sleep_watching(sleep, &watch))
			break;
	}
	/* The last thread: returning ends the process (glibc's exit(0)).
	 * Should a thread appear after all, it scavenges inline. */
	gm_opt.scavenger = GM_SCAVENGER_INLINE;
	return NULL;
}

void scavenge_maybe_start_slow(void)
{
	if (atomic_exchange(&scavenge_started, true))
		return;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	/* The thread inherits a mask that blocks every signal, so a signal
	 * sent to the process never runs the program's handler on it -- not
	 * even in the first instructions of a new thread, before it could
	 * block them itself: there a SIGALRM handler that forks took the fork
	 * handlers' locks on this thread while the interrupted program thread
	 * held mheap.lock, and both waited for each other (test_fork
	 * fork_in_signal_handler, 1 run in 100 under load). */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	pthread_t t;
	int err = pthread_create(&t, &attr, scav_thread, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (err != 0) {
		/* no thread (limits, seccomp): fall back to inline ticks */
		gm_opt.scavenger = GM_SCAVENGER_INLINE;
		if (gm_opt.verbose)
			gm_message("scavenger thread not started (error %d): inline mode", err);
	} else if (gm_opt.verbose) {
		gm_message("scavenger thread started");
	}
}

void scavenge_wake_slow(void)
{
	atomic_store(&scav_parked, 0);
	syscall(SYS_futex, &scav_parked, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

void scavenge_note_growth(void)
{
	scavenge_wake();
	if (gm_opt.scavenger == GM_SCAVENGER_INLINE) {
		uint64_t now = os_nanotime();
		if (now - scav_last_tick >= SCAV_TICK_NS && gm_mutex_trylock(&scav_lock)) {
			scav_last_tick = now;
			scav_tick(now);
			gm_mutex_unlock(&scav_lock);
		}
	}
}

void scavenge_for_limit(size_t bytes)
{
	if (scav_limit == 0 || gm_opt.scavenger == GM_SCAVENGER_OFF)
		return;
	size_t retained = scav_retained();
	if (retained + bytes <= scav_limit)
		return;
	mheap_scavenge(retained + bytes - scav_limit, false);
}

void scavenge_for_growth(size_t paged_in, size_t fresh, size_t inuse)
{
	if (gm_opt.scavenger == GM_SCAVENGER_OFF)
		return;
	size_t retained = scav_retained();
	size_t todo = 0;
	if (scav_limit != 0 && retained > scav_limit)
		todo = retained - scav_limit;
	/* The goal of the background ticks, the recent peak in use, not the
	 * in-use of this moment; and pages paged in again (not fresh) release
	 * only well over it.  Otherwise a program that frees its working set
	 * and builds it again (bench_micro batch_*: 32 spans of 256 B, 1000
	 * times a second) releases at every rebuild the pages its next spans
	 * take: ~20 madvise calls a round, 7 -> 19 us a batch of 1000
	 * (bench/RESULTS.md 2026-11-26). */
	size_t peak = atomic_load_explicit(&mheap.inuse_peak, memory_order_relaxed) << GM_PAGE_SHIFT;
	if (peak > inuse)
		inuse = peak;
	size_t goal = scav_percent_of(inuse, gm_opt.retain_percent);
	if (fresh == 0)
		goal += (size_t)GM_PAGE_CACHE_PAGES << GM_PAGE_SHIFT;
	if (retained > goal) {
		size_t over = retained - goal;
		if (over > paged_in)
			over = paged_in;
		if (over > todo)
			todo = over;
	}
	if (todo != 0 && scav_free_resident() != 0)
		mheap_scavenge(todo, false);
}

void scavenge_fork_prepare(void)
{
	gm_mutex_lock(&scav_lock);
}

void scavenge_fork_parent(void)
{
	gm_mutex_unlock(&scav_lock);
}

void scavenge_fork_child(void)
{
	gm_mutex_init(&scav_lock, LOCKRANK_SCAVENGE);
	atomic_store(&scav_parked, 0);
	atomic_store(&scav_nudge, 0);
	if (gm_opt.scavenger == GM_SCAVENGER_BACKGROUND)
		atomic_store(&scavenge_started, false); /* restart lazily */
}
