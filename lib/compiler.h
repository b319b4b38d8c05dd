/*
 * compiler.h -- the compiler attributes gomalloc uses, in one place.
 */
#ifndef GM_COMPILER_H
#define GM_COMPILER_H

#define LIKELY(x)      __builtin_expect(!!(x), 1)
#define UNLIKELY(x)    __builtin_expect(!!(x), 0)
#define ALWAYS_INLINE  inline __attribute__((always_inline))
#define NOINLINE       __attribute__((noinline))
#define COLD           __attribute__((cold, noinline))
#define GM_EXPORT      __attribute__((visibility("default")))
#define GM_HIDDEN      __attribute__((visibility("hidden")))
#define GM_UNUSED      __attribute__((unused))
#define GM_NORETURN    __attribute__((noreturn))
#define GM_CACHELINE   64
#define GM_ALIGNED(n)  __attribute__((aligned(n)))
#define GM_FORMAT(a,b) __attribute__((format(printf, a, b)))

#include <stdbool.h>

/* Population count without a libgcc call on baseline x86-64 (no -mpopcnt):
 * the popcnt instruction when the CPU has it (gm_cpu_popcnt, set once by
 * gm_cpu_init before anything else runs; a well-predicted branch), else 12
 * instructions of arithmetic.  Sweeps count every bitmap word: larson ran
 * 3.5% of its instructions in the arithmetic (bench/RESULTS.md
 * 2026-11-26). */
#if !defined(__POPCNT__) && defined(__x86_64__)
extern bool gm_cpu_popcnt;
#endif
void gm_cpu_init(void);

static inline unsigned gm_popcount64(unsigned long long x)
{
#if defined(__POPCNT__) || !defined(__x86_64__)
	return (unsigned)__builtin_popcountll(x);
#else
	if (LIKELY(gm_cpu_popcnt)) {
		unsigned long long n;
		__asm__("popcntq %1, %0" : "=r"(n) : "rm"(x) : "cc");
		return (unsigned)n;
	}
	x = x - ((x >> 1) & 0x5555555555555555ull);
	x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
	x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
	return (unsigned)((x * 0x0101010101010101ull) >> 56);
#endif
}

/* Index of the lowest set bit of x != 0, as a 64-bit value: `tzcnt` writes
 * the whole register (the builtin's int made gcc add a `movslq`; CPUs
 * without BMI1 run the encoding as `bsf`, the same for x != 0). */
static ALWAYS_INLINE unsigned long long gm_ctz64(unsigned long long x)
{
#if defined(__x86_64__)
	unsigned long long i;
	__asm__("tzcntq %1, %0" : "=r"(i) : "rm"(x) : "cc");
	return i;
#else
	return (unsigned long long)__builtin_ctzll(x);
#endif
}

/* Set bit i % 64 of *w; returns that bit's old value.  On x86 one `bts`,
 * which takes the index modulo 64 itself (C needs `i & 63`, and the
 * compiler kept that `and` and a copy into %cl) and whose carry is the old
 * bit: the owner free's allocated and double-free test is one branch and
 * no instruction of its own. */
static ALWAYS_INLINE bool gm_testsetbit64(unsigned long long *w, unsigned long long i)
{
#if defined(__x86_64__)
	bool was;
	__asm__("btsq %2, %0" : "+r"(*w), "=@ccc"(was) : "r"(i));
	return was;
#else
	bool was = (*w >> (i & 63)) & 1;
	*w |= 1ull << (i & 63);
	return was;
#endif
}

/* Spin-wait hint. */
#if defined(__x86_64__) || defined(__i386__)
#define GM_CPU_RELAX() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define GM_CPU_RELAX() __asm__ __volatile__("yield" ::: "memory")
#else
#define GM_CPU_RELAX() __asm__ __volatile__("" ::: "memory")
#endif

#endif /* GM_COMPILER_H */
