/*
 * os_linux.h -- the only door to the kernel's memory calls (Go's mem_linux.go).
 *
 * Go's memory states: None -> Reserved (os_reserve) -> Prepared/Ready
 * (os_map) -> in use; free pages go back with os_unused (MADV_DONTNEED or
 * MADV_FREE) and come back with os_used; os_free unmaps.
 */
#ifndef GM_OS_LINUX_H
#define GM_OS_LINUX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Map `bytes` of zeroed read-write memory, aligned to `align` (a power of
 * two, at least the OS page), optionally at `hint`.  Pages are not touched
 * (MAP_NORESERVE).  Returns NULL when the OS refuses. */
void *os_map_aligned(size_t bytes, size_t align, uintptr_t hint);
/* Map `bytes` of zeroed read-write memory for metadata; NULL on refusal. */
void *os_alloc(size_t bytes);
/* Unmap. */
void os_free(void *p, size_t bytes);
/* Reserve address space with no access (PROT_NONE, NORESERVE). */
void *os_reserve(size_t bytes);
/* Zero memory that faults on a write (shared zero summaries of pagealloc). */
void *os_alloc_zero_readonly(size_t bytes);
/* Make reserved space read-write; false on refusal. */
bool os_commit(void *p, size_t bytes);
/* Tell the kernel the pages' contents are not needed (scavenge).
 * Returns true if the pages now read as zero (MADV_DONTNEED), false if
 * they may keep old contents (MADV_FREE). */
bool os_unused(void *p, size_t bytes);
/* Make `bytes` at p read as zero (MADV_DONTNEED: the pages go back to the
 * kernel and fault in as zero pages when touched); false if refused. */
bool os_zero(void *p, size_t bytes);
/* How many OS pages of [p, p + bytes) are resident (mincore), counting no
 * further once stop_at is reached; SIZE_MAX if the kernel refuses.  A page
 * swapped out counts as not resident: a guide, never a proof of zero. */
size_t os_resident_pages(void *p, size_t bytes, size_t stop_at);
/* The pages are about to be used again (hugepage hint). */
void os_used(void *p, size_t bytes);
/* Name an anonymous mapping ("gomalloc heap"); ignored where unsupported. */
void os_name(void *p, size_t bytes, const char *name);
/* Use MADV_FREE (true) or MADV_DONTNEED (false) in os_unused. */
void os_set_madv_free(bool use_free);
/* Monotonic clock in nanoseconds. */
uint64_t os_nanotime(void);
/* Thread id (gettid). */
int os_gettid(void);
/* A memory barrier on every running thread of this process (membarrier
 * PRIVATE_EXPEDITED; registered on first use, and again after fork).
 * False where the kernel or a seccomp filter refuses it. */
bool os_membarrier(void);
/* Number of online CPUs (sysconf without allocating). */
int os_ncpu(void);
/* Resident set size of this process in bytes (/proc/self/statm), 0 if unknown. */
size_t os_rss(void);
/* cgroup v2 memory.max of this process; 0 if none or unlimited. */
size_t os_cgroup_memory_max(void);
/* The process's threads as a thread that is not the main one sees them
 * (/proc/self/stat): the main thread (the thread group's leader) still
 * runs; it has exited (pthread_exit: a zombie until the whole group ends)
 * while other threads run; it has exited and the caller is the only
 * thread left; or unknown (no /proc). */
enum os_threads { OS_THREADS_UNKNOWN, OS_THREADS_MAIN_LIVE, OS_THREADS_MAIN_GONE, OS_THREADS_ONLY_CALLER };
enum os_threads os_threads_state(void);

#endif /* GM_OS_LINUX_H */
