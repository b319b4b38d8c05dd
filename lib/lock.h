/*
 * lock.h -- the allocator's mutex: a futex word, three states (Drepper's
 * "Futexes are tricky", mutex 2).  No allocation, no libc locks, so it is
 * safe during bootstrap and can be re-initialised in a forked child.
 *
 * Every lock has a rank (lockrank.h); debug builds (-DGM_DEBUG) check that a
 * thread takes locks in increasing rank order.
 */
#ifndef GM_LOCK_H
#define GM_LOCK_H

#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "compiler.h"
#include "lockrank.h"

typedef struct gm_mutex {
	_Atomic uint32_t state;   /* 0 unlocked, 1 locked, 2 locked + waiters */
	uint32_t rank;            /* lockrank_t */
} gm_mutex_t;

#define GM_MUTEX_INIT(rank) { 0, (rank) }

/* Allocator locks the calling thread holds.  A fork() from a signal
 * handler that interrupted this thread inside the allocator sees it > 0:
 * the fork handlers then take no lock (they would wait for themselves)
 * and the child re-initialises every lock, as glibc's single-threaded
 * fork does.  So the count goes up before a lock is taken and down only
 * after it is released, each with a compiler barrier (a signal fence: the
 * handler runs on this thread), never the other way round: a handler
 * between the two would see a held lock as free and wait for itself
 * (test_fork fork_in_signal_handler hung 2 runs in 25 under load when
 * gm_mutex_unlock counted down first). */
extern __thread unsigned gm_locks_held __attribute__((tls_model("initial-exec")));

static inline void gm_mutex_init(gm_mutex_t *m, lockrank_t rank)
{
	atomic_store_explicit(&m->state, 0, memory_order_relaxed);
	m->rank = rank;
}

void gm_mutex_lock_slow(gm_mutex_t *m);
void gm_mutex_unlock_slow(gm_mutex_t *m);

static ALWAYS_INLINE void gm_mutex_lock(gm_mutex_t *m)
{
	uint32_t expect = 0;
	lockrank_acquire(m->rank);
	gm_locks_held++; /* counted first (see gm_locks_held) */
	atomic_signal_fence(memory_order_seq_cst);
	if (LIKELY(atomic_compare_exchange_strong_explicit(
	        &m->state, &expect, 1, memory_order_acquire,
	        memory_order_relaxed)))
		return;
	gm_mutex_lock_slow(m);
}

static ALWAYS_INLINE int gm_mutex_trylock(gm_mutex_t *m)
{
	uint32_t expect = 0;
	gm_locks_held++; /* counted first (see gm_locks_held) */
	atomic_signal_fence(memory_order_seq_cst);
	if (atomic_compare_exchange_strong_explicit(&m->state, &expect, 1,
	                                            memory_order_acquire,
	                                            memory_order_relaxed)) {
		lockrank_acquire(m->rank);
		return 1;
	}
	atomic_signal_fence(memory_order_seq_cst);
	gm_locks_held--;
	return 0;
}

static ALWAYS_INLINE void gm_mutex_unlock(gm_mutex_t *m)
{
	lockrank_release(m->rank);
	uint32_t old = atomic_exchange_explicit(&m->state, 0, memory_order_release);
	atomic_signal_fence(memory_order_seq_cst);
	gm_locks_held--; /* only once released (see gm_locks_held) */
	if (UNLIKELY(old == 2))
		gm_mutex_unlock_slow(m);
}

#endif /* GM_LOCK_H */
