/*
 * os_linux.c -- the only file that calls mmap, munmap, madvise, mincore,
 * mprotect and prctl (Go's mem_linux.go).
 *
 * Callers: arena.c (heap arenas), fixalloc.c (metadata), pagealloc.c
 * (summary arrays and chunk bitmaps), scavenge.c (os_unused), malloc.c
 * (os_zero and os_resident_pages: calloc of a large dirty block).  Nothing here
 * takes a lock or allocates: it must work during bootstrap, in a forked child
 * and inside signal handlers.
 *
 * Memory states as in Go: reserved (PROT_NONE) -> ready (read-write, pages
 * untouched until first write) -> unused (madvise'd away; reads as zero
 * after MADV_DONTNEED) -> used again.  Heap arenas are mapped read-write at
 * once with MAP_NORESERVE: the kernel only commits the pages we touch, and
 * Linux would count PROT_NONE reservations against RLIMIT_AS all the same.
 *
 * MADV_FREE (option madvise:free) is cheaper but leaves old contents until
 * the kernel reclaims the pages, so os_unused reports whether the pages are
 * known to read as zero; a kernel that refuses MADV_FREE falls back to
 * MADV_DONTNEED for good.
 */
#define _GNU_SOURCE
#include "os_linux.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "compiler.h"
#include "params.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#define PR_SET_VMA_ANON_NAME 0
#endif

static _Atomic bool os_madv_free;

void os_set_madv_free(bool use_free)
{
	atomic_store_explicit(&os_madv_free, use_free, memory_order_relaxed);
}

void *os_map_aligned(size_t bytes, size_t align, uintptr_t hint)
{
	int prot = PROT_READ | PROT_WRITE;
	int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
	if (hint != 0 && hint % align == 0) {
		void *p = mmap((void *)hint, bytes, prot,
		               flags | MAP_FIXED_NOREPLACE, -1, 0);
		if (p != MAP_FAILED) {
			if ((uintptr_t)p == hint)
				return p;
			munmap(p, bytes); /* old kernel ignored the flag */
		}
	}
	if (align <= 4096) {
		void *p = mmap(NULL, bytes, prot, flags, -1, 0);
		return p == MAP_FAILED ? NULL : p;
	}
	/* Over-map and trim to the alignment. */
	size_t total = bytes + align;
	if (total < bytes)
		return NULL;
	void *raw = mmap(NULL, total, prot, flags, -1, 0);
	if (raw == MAP_FAILED)
		return NULL;
	uintptr_t start = (uintptr_t)raw;
	uintptr_t aligned = (start + align - 1) & ~(uintptr_t)(align - 1);
	if (aligned > start)
		munmap(raw, aligned - start);
	uintptr_t end = aligned + bytes;
	if (start + total > end)
		munmap((void *)end, start + total - end);
	return (void *)aligned;
}

void *os_alloc(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

void os_free(void *p, size_t bytes)
{
	if (p != NULL && bytes != 0)
		munmap(p, bytes);
}

void *os_reserve(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_NONE,
	               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

void *os_alloc_zero_readonly(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ,
	               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

bool os_commit(void *p, size_t bytes)
{
	return mprotect(p, bytes, PROT_READ | PROT_WRITE) == 0;
}

bool os_unused(void *p, size_t bytes)
{
	int saved = errno;
	bool zero = true;
	if (atomic_load_explicit(&os_madv_free, memory_order_relaxed)) {
		if (madvise(p, bytes, MADV_FREE) == 0) {
			zero = false;
			goto out;
		}
		/* Kernel without MADV_FREE: fall back for good. */
		atomic_store_explicit(&os_madv_free, false, memory_order_relaxed);
	}
	if (madvise(p, bytes, MADV_DONTNEED) != 0)
		zero = false; /* refused: contents stay, pages stay resident */
out:
	errno = saved;
	return zero;
}

bool os_zero(void *p, size_t bytes)
{
	int saved = errno;
	bool ok = madvise(p, bytes, MADV_DONTNEED) == 0;
	errno = saved;
	return ok;
}

size_t os_resident_pages(void *p, size_t bytes, size_t stop_at)
{
	unsigned char vec[1024]; /* 4 MiB of OS pages per call */
	size_t osp = GM_OS_PAGE_SIZE, n = 0;
	int saved = errno;
	for (size_t off = 0; off < bytes && n < stop_at; off += sizeof vec * osp) {
		size_t len = bytes - off < sizeof vec * osp ? bytes - off : sizeof vec * osp;
		if (mincore((char *)p + off, len, vec) != 0) {
			n = SIZE_MAX;
			break;
		}
		for (size_t i = 0; i < (len + osp - 1) / osp; i++)
			n += vec[i] & 1;
	}
	errno = saved;
	return n;
}

void os_used(void *p, size_t bytes)
{
	(void)p;
	(void)bytes;
}

void os_name(void *p, size_t bytes, const char *name)
{
	int saved = errno;
	prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, (unsigned long)p, bytes,
	      (unsigned long)name);
	errno = saved;
}

uint64_t os_nanotime(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int os_gettid(void)
{
	return (int)syscall(SYS_gettid);
}

bool os_membarrier(void)
{
	/* linux/membarrier.h values, stable ABI since Linux 4.14 */
	enum { MB_PRIVATE_EXPEDITED = 1 << 3, MB_REGISTER_PRIVATE_EXPEDITED = 1 << 4 };
	int saved = errno;
	if (syscall(SYS_membarrier, MB_PRIVATE_EXPEDITED, 0, 0) == 0)
		return true;
	/* not registered yet (EPERM; a forked child starts unregistered) */
	bool ok = errno == EPERM &&
	          syscall(SYS_membarrier, MB_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0 &&
	          syscall(SYS_membarrier, MB_PRIVATE_EXPEDITED, 0, 0) == 0;
	errno = saved;
	return ok;
}

/* Read a small file into buf without stdio (stdio allocates). */
static ssize_t read_small_file(const char *path, char *buf, size_t cap)
{
	int saved = errno;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		errno = saved;
		return -1;
	}
	size_t n = 0;
	while (n + 1 < cap) {
		ssize_t r = read(fd, buf + n, cap - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';
	errno = saved;
	return (ssize_t)n;
}

static size_t parse_u64(const char *s, const char **end)
{
	size_t v = 0;
	while (*s == ' ')
		s++;
	while (*s >= '0' && *s <= '9')
		v = v * 10 + (size_t)(*s++ - '0');
	if (end)
		*end = s;
	return v;
}

int os_ncpu(void)
{
	char buf[256];
	/* "0-15" or "0,2-3" */
	if (read_small_file("/sys/devices/system/cpu/online", buf,
	                    sizeof buf) <= 0)
		return 1;
	int n = 0;
	const char *s = buf;
	while (*s >= '0' && *s <= '9') {
		size_t a = parse_u64(s, &s), b = a;
		if (*s == '-')
			b = parse_u64(s + 1, &s);
		n += (int)(b - a + 1);
		if (*s != ',')
			break;
		s++;
	}
	return n > 0 ? n : 1;
}

size_t os_rss(void)
{
	char buf[128];
	if (read_small_file("/proc/self/statm", buf, sizeof buf) <= 0)
		return 0;
	const char *s = buf;
	parse_u64(s, &s);
	return parse_u64(s, &s) * (size_t)sysconf(_SC_PAGESIZE);
}

enum os_threads os_threads_state(void)
{
	/* "pid (comm) S ppid ...": the state is the leader's, field 3;
	 * num_threads is field 20 and counts a zombie leader (the kernel
	 * releases it only with the last thread).  comm may hold ") ", so
	 * the fields start after the last ')'. */
	char buf[1024];
	if (read_small_file("/proc/self/stat", buf, sizeof buf) <= 0)
		return OS_THREADS_UNKNOWN;
	const char *s = strrchr(buf, ')');
	if (s == NULL || s[1] != ' ' || s[2] == '\0')
		return OS_THREADS_UNKNOWN;
	char state = s[2];
	s += 3;
	for (int field = 4; field <= 20; field++) {
		while (*s == ' ')
			s++;
		if (*s == '\0')
			return OS_THREADS_UNKNOWN;
		if (field == 20)
			break;
		while (*s && *s != ' ')
			s++;
	}
	size_t nthreads = parse_u64(s, NULL);
	if (state != 'Z' && state != 'X')
		return OS_THREADS_MAIN_LIVE;
	return nthreads <= 2 ? OS_THREADS_ONLY_CALLER : OS_THREADS_MAIN_GONE;
}

size_t os_cgroup_memory_max(void)
{
	char buf[512], path[600];
	/* cgroup v2: a single line "0::/path". */
	if (read_small_file("/proc/self/cgroup", buf, sizeof buf) <= 0)
		return 0;
	const char *line = buf;
	while (*line) {
		if (line[0] == '0' && line[1] == ':' && line[2] == ':')
			break;
		while (*line && *line != '\n')
			line++;
		if (*line == '\n')
			line++;
	}
	if (!*line)
		return 0;
	const char *rel = line + 3;
	const char prefix[] = "/sys/fs/cgroup";
	size_t n = 0;
	for (size_t i = 0; prefix[i]; i++)
		path[n++] = prefix[i];
	for (; *rel && *rel != '\n' && n + 16 < sizeof path; rel++)
		path[n++] = *rel;
	if (n > 0 && path[n - 1] == '/')
		n--;
	const char file[] = "/memory.max";
	for (size_t i = 0; file[i]; i++)
		path[n++] = file[i];
	path[n] = '\0';
	if (read_small_file(path, buf, sizeof buf) <= 0)
		return 0;
	if (buf[0] < '0' || buf[0] > '9')
		return 0; /* "max" */
	return parse_u64(buf, NULL);
}
