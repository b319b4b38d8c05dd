/*
 * lock.c -- the contended halves of gm_mutex (futex wait/wake) and the
 * debug lock-rank checker.  See lock.h.
 */
#include "lock.h"

#include <stdlib.h>

__thread unsigned gm_locks_held __attribute__((tls_model("initial-exec")));

void gm_mutex_lock_slow(gm_mutex_t *m)
{
	/* spin briefly: the holders' critical sections are short */
	for (int i = 0; i < 100; i++) {
		uint32_t expect = 0;
		if (atomic_load_explicit(&m->state, memory_order_relaxed) == 0 &&
		    atomic_compare_exchange_weak_explicit(&m->state, &expect, 1,
		                                          memory_order_acquire,
		                                          memory_order_relaxed))
			return;
		GM_CPU_RELAX();
	}
	while (atomic_exchange_explicit(&m->state, 2, memory_order_acquire) != 0)
		syscall(SYS_futex, &m->state, FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0);
}

void gm_mutex_unlock_slow(gm_mutex_t *m)
{
	syscall(SYS_futex, &m->state, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

#ifdef GM_DEBUG
static __thread uint32_t lockrank_held[LOCKRANK_COUNT];

void lockrank_acquire(uint32_t rank)
{
	for (uint32_t r = rank + 1; r < LOCKRANK_COUNT; r++)
		if (lockrank_held[r])
			abort(); /* lock taken out of rank order */
	lockrank_held[rank]++;
}

void lockrank_release(uint32_t rank)
{
	lockrank_held[rank]--;
}
#endif
