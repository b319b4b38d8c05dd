/*
 * lockrank.h -- the one list of gomalloc's locks, in the order a thread may
 * take them (lowest first), as Go's lockrank.go.  pthread_atfork's prepare
 * handler takes them all in this order; debug builds (-DGM_DEBUG) abort when
 * a thread takes a lock of rank <= one it already holds (the per-class
 * mcentral locks share one rank and are never nested).
 */
#ifndef GM_LOCKRANK_H
#define GM_LOCKRANK_H

#include <stdint.h>

typedef enum lockrank {
	LOCKRANK_INIT = 1,      /* malloc.c: one-time initialisation */
	LOCKRANK_SCAVENGE,      /* scavenge.c: scavenger state, thread start */
	LOCKRANK_MCENTRAL,      /* mcentral.c: one per span class, never nested */
	LOCKRANK_MHEAP,         /* mheap.c: page allocator, spans, fixalloc, arenas */
	LOCKRANK_COUNT
} lockrank_t;

#ifdef GM_DEBUG
void lockrank_acquire(uint32_t rank);
void lockrank_release(uint32_t rank);
#else
static inline void lockrank_acquire(uint32_t rank) { (void)rank; }
static inline void lockrank_release(uint32_t rank) { (void)rank; }
#endif

#endif /* GM_LOCKRANK_H */
