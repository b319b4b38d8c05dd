// bench_micro.cc -- allocator micro-benchmarks for gomalloc and its peers.
//
// Links no allocator: run it under each one with LD_PRELOAD (bench/compare does,
// interleaving and rotating the allocators).  Build:
//   g++ -std=gnu++17 -O2 -fno-builtin-malloc -fno-builtin-free -fno-builtin-calloc
//       -fno-builtin-realloc bench_micro.cc -o bench_micro -lbenchmark -lpthread
//
// Every benchmark sets items_processed to the number of malloc+free pairs (or
// reallocs) it did, so 1e9 / items_per_second is "ns per op" whatever the batch
// size; the threaded ones use real time, so that figure is wall time per op of
// the whole process (lower is better, and it falls as threads scale).
//
// Families (names are what --benchmark_filter and bench/compare --filter see):
//   pair/<size>            malloc+free of one block, Go size classes 8 B..32 KiB
//                          (a representative subset; --all_size_classes: all 67)
//   pair_large/<size>      the same, 64 KiB..64 MiB in powers of 4 (memory not touched)
//   batch_{lifo,fifo,random}/<size>   1000 mallocs, then 1000 frees in that order
//   pair_mixed             malloc+free, size drawn from a fixed table of 16..1024
//   window/<n>             a window of n live 32-byte blocks: each op mallocs one,
//                          writes a byte of it, and frees the block of a random
//                          slot, which it replaces (the free order of most
//                          programs: neither the block just allocated nor the
//                          batch order above; the pareto workload's pattern
//                          with one size and no work between the calls)
//   realloc_grow           realloc 1 B -> 1 MiB in random +16..+256 steps (ops = reallocs)
//   calloc/<size>          calloc+free of 64 B, 4 KiB, 1 MiB (the block not touched)
//   calloc_touch/<size>    calloc of 1 MiB, a write to one byte of every 4 KiB
//                          page, free: what calloc costs a program that uses the
//                          block (an allocator that zeroes a reused block with
//                          MADV_DONTNEED, as jemalloc does, pays here in page
//                          faults what calloc/1048576 does not show)
//   aligned/<align>/<size> aligned_alloc+free, alignments 64 and 4096
//   xthread_free/<size>    this thread allocates batches of 100, another frees
//                          them (single-producer single-consumer ring of batches)
//   threads_pair/size:S/threads:N     N threads doing malloc+free pairs
//   threads_batch/threads:N           N threads doing batches of 100 mixed sizes
//                          (own thread pool, not ->Threads(n): see Pool below)
//   gbthreads_pair/64/real_time/threads:N   the same as threads_pair, with
//                          google-benchmark's ->Threads(n)
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include <malloc.h>
#include <pthread.h>
#include <sched.h>

namespace {

// Go's 67 small size classes (class 1..67, lib/sizeclass_table.h).
const size_t kGoClasses[] = {
	8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224,
	240, 256, 288, 320, 352, 384, 416, 448, 480, 512, 576, 640, 704, 768, 896,
	1024, 1152, 1280, 1408, 1536, 1792, 2048, 2304, 2688, 3072, 3200, 3456,
	4096, 4864, 5376, 6144, 6528, 6784, 6912, 8192, 9472, 9728, 10240, 10880,
	12288, 13568, 14336, 16384, 18432, 19072, 20480, 21760, 24576, 27264,
	28672, 32768,
};

// The default subset: the sizes the brief asks for plus a few odd classes.
const size_t kSubsetClasses[] = {
	8, 16, 24, 32, 48, 64, 80, 128, 208, 256, 512, 640, 1024, 1152, 2048,
	3072, 4096, 6144, 8192, 13568, 16384, 27264, 32768,
};

constexpr int kBatch = 1000;

// xorshift64*: deterministic, cheap, allocation-free.
struct Rng {
	uint64_t s;
	explicit Rng(uint64_t seed) : s(seed ? seed : 0x9E3779B97F4A7C15ull) {}
	uint64_t next() {
		s ^= s >> 12; s ^= s << 25; s ^= s >> 27;
		return s * 2685821657736338717ull;
	}
	uint32_t below(uint32_t n) { return (uint32_t)((next() >> 32) * n >> 32); }
};

void BM_pair(benchmark::State &state) {
	const size_t size = (size_t)state.range(0);
	for (auto _ : state) {
		void *p = malloc(size);
		benchmark::DoNotOptimize(p);
		free(p);
		benchmark::ClobberMemory();
	}
	state.SetItemsProcessed(state.iterations());
}

// Pairs with the size drawn from a fixed random table (defeats the branch
// predictor's memory of one size class).
void BM_pair_mixed(benchmark::State &state) {
	static size_t sizes[1024];
	Rng rng(42);
	for (size_t &s : sizes)
		s = 16 + rng.below(1009);
	unsigned i = 0;
	for (auto _ : state) {
		void *p = malloc(sizes[i++ & 1023]);
		benchmark::DoNotOptimize(p);
		free(p);
		benchmark::ClobberMemory();
	}
	state.SetItemsProcessed(state.iterations());
}

// Random replacement in a window of n live blocks of 32 bytes (n a power of
// two): the freed block is a random one of the last ~n allocated, so where it
// lies (the current span or another, which cache line) varies from op to op.
void BM_window(benchmark::State &state) {
	const size_t n = (size_t)state.range(0);
	std::vector<void *> w(n);
	for (void *&p : w)
		p = malloc(32);
	Rng rng(11);
	for (auto _ : state) {
		char *p = static_cast<char *>(malloc(32));
		benchmark::DoNotOptimize(p);
		*static_cast<volatile char *>(p) = 1;
		void *&slot = w[rng.next() >> 40 & (n - 1)];
		free(slot);
		slot = p;
	}
	for (void *p : w)
		free(p);
	state.SetItemsProcessed(state.iterations());
}

enum class Order { kLifo, kFifo, kRandom };

template <Order order>
void BM_batch(benchmark::State &state) {
	const size_t size = (size_t)state.range(0);
	std::vector<void *> ptrs(kBatch);
	std::vector<int> perm(kBatch);
	Rng rng(7);
	for (int i = 0; i < kBatch; i++)
		perm[i] = i;
	for (int i = kBatch - 1; i > 0; i--)
		std::swap(perm[i], perm[rng.below(i + 1)]);
	for (auto _ : state) {
		for (int i = 0; i < kBatch; i++) {
			ptrs[i] = malloc(size);
			benchmark::DoNotOptimize(ptrs[i]);
		}
		benchmark::ClobberMemory();
		switch (order) {
		case Order::kLifo:
			for (int i = kBatch - 1; i >= 0; i--)
				free(ptrs[i]);
			break;
		case Order::kFifo:
			for (int i = 0; i < kBatch; i++)
				free(ptrs[i]);
			break;
		case Order::kRandom:
			for (int i = 0; i < kBatch; i++)
				free(ptrs[perm[i]]);
			break;
		}
		benchmark::ClobberMemory();
	}
	state.SetItemsProcessed(state.iterations() * kBatch);
}

void BM_realloc_grow(benchmark::State &state) {
	int64_t ops = 0;
	Rng rng(99);
	for (auto _ : state) {
		size_t size = 1;
		char *p = (char *)malloc(size);
		p[0] = 1;
		while (size < (1u << 20)) {
			size += 16 + rng.below(241);
			p = (char *)realloc(p, size);
			benchmark::DoNotOptimize(p);
			p[size - 1] = (char)size;
			ops++;
		}
		free(p);
		benchmark::ClobberMemory();
	}
	state.SetItemsProcessed(ops);
}

void BM_calloc(benchmark::State &state) {
	const size_t size = (size_t)state.range(0);
	for (auto _ : state) {
		void *p = calloc(1, size);
		benchmark::DoNotOptimize(p);
		free(p);
		benchmark::ClobberMemory();
	}
	state.SetItemsProcessed(state.iterations());
}

void BM_calloc_touch(benchmark::State &state) {
	const size_t size = (size_t)state.range(0);
	for (auto _ : state) {
		auto *p = static_cast<volatile unsigned char *>(calloc(1, size));
		for (size_t i = 0; i < size; i += 4096)
			p[i] = 1;
		free(const_cast<unsigned char *>(p));
		benchmark::ClobberMemory();
	}
	state.SetItemsProcessed(state.iterations());
}

void BM_aligned(benchmark::State &state) {
	const size_t align = (size_t)state.range(0);
	const size_t size = (size_t)state.range(1);
	for (auto _ : state) {
		void *p = aligned_alloc(align, size);
		benchmark::DoNotOptimize(p);
		free(p);
		benchmark::ClobberMemory();
	}
	state.SetItemsProcessed(state.iterations());
}

// Cross-thread free: the benchmark thread allocates batches and passes them
// through a bounded single-producer single-consumer ring to a freeing thread.
// The ring is short (16 batches), so the measured time includes the freeing
// thread keeping up; what it has left after the loop (at most 16 batches) is
// drained untimed.
constexpr int kXBatch = 100;
constexpr unsigned kRing = 16;

struct XRing {
	void *slots[kRing][kXBatch];
	alignas(64) std::atomic<unsigned> head{0};  // written by the producer
	alignas(64) std::atomic<unsigned> tail{0};  // written by the consumer
	alignas(64) std::atomic<bool> done{false};
};

void xthread_consumer(XRing *r) {
	for (;;) {
		unsigned t = r->tail.load(std::memory_order_relaxed);
		while (r->head.load(std::memory_order_acquire) == t) {
			if (r->done.load(std::memory_order_acquire) &&
			    r->head.load(std::memory_order_acquire) == t)
				return;
			sched_yield();
		}
		void **b = r->slots[t % kRing];
		for (int i = 0; i < kXBatch; i++)
			free(b[i]);
		r->tail.store(t + 1, std::memory_order_release);
	}
}

void BM_xthread_free(benchmark::State &state) {
	const size_t size = (size_t)state.range(0);
	XRing *r = new XRing;
	std::thread consumer(xthread_consumer, r);
	unsigned h = 0;
	for (auto _ : state) {
		while (h - r->tail.load(std::memory_order_acquire) >= kRing)
			sched_yield();
		void **b = r->slots[h % kRing];
		for (int i = 0; i < kXBatch; i++) {
			b[i] = malloc(size);
			benchmark::DoNotOptimize(b[i]);
		}
		r->head.store(++h, std::memory_order_release);
	}
	r->done.store(true, std::memory_order_release);
	consumer.join();
	delete r;
	state.SetItemsProcessed(state.iterations() * kXBatch);
}

// N worker threads, created once per benchmark run, each doing kPerRound ops
// per iteration; the benchmark thread only releases them and waits (two
// barriers per iteration), so an iteration's real time is the wall time of
// N * kPerRound ops.  Google-benchmark's own ->Threads(n) averages each
// thread's wall time, which is wrong when threads outnumber cores (8 threads
// on the 2-core VM); this pool measures the whole process instead.
constexpr int kPerRound = 20000;

class Pool {
public:
	template <class Fn>
	Pool(int n, Fn fn) : n_(n) {
		pthread_barrier_init(&start_, nullptr, n + 1);
		pthread_barrier_init(&end_, nullptr, n + 1);
		for (int i = 0; i < n; i++)
			threads_.emplace_back([this, fn, i] {
				for (;;) {
					pthread_barrier_wait(&start_);
					if (stop_.load(std::memory_order_acquire))
						break;
					fn(i);
					pthread_barrier_wait(&end_);
				}
			});
	}
	void round() {
		pthread_barrier_wait(&start_);
		pthread_barrier_wait(&end_);
	}
	~Pool() {
		stop_.store(true, std::memory_order_release);
		pthread_barrier_wait(&start_);
		for (auto &t : threads_)
			t.join();
		pthread_barrier_destroy(&start_);
		pthread_barrier_destroy(&end_);
	}

private:
	int n_;
	pthread_barrier_t start_, end_;
	std::atomic<bool> stop_{false};
	std::vector<std::thread> threads_;
};

void BM_threads_pair(benchmark::State &state) {
	const size_t size = (size_t)state.range(0);
	const int nthreads = (int)state.range(1);
	Pool pool(nthreads, [size](int) {
		for (int i = 0; i < kPerRound; i++) {
			void *p = malloc(size);
			benchmark::DoNotOptimize(p);
			free(p);
			benchmark::ClobberMemory();
		}
	});
	for (auto _ : state)
		pool.round();
	state.SetItemsProcessed(state.iterations() * nthreads * kPerRound);
}

void BM_threads_batch(benchmark::State &state) {
	constexpr int n = 100;
	const int nthreads = (int)state.range(0);
	Pool pool(nthreads, [](int idx) {
		void *ptrs[n];
		size_t sizes[n];
		Rng rng(1234 + idx);
		for (size_t &s : sizes)
			s = 16 + rng.below(1009);
		for (int r = 0; r < kPerRound / n; r++) {
			for (int i = 0; i < n; i++) {
				ptrs[i] = malloc(sizes[i]);
				benchmark::DoNotOptimize(ptrs[i]);
			}
			benchmark::ClobberMemory();
			for (int i = 0; i < n; i++)
				free(ptrs[i]);
		}
	});
	for (auto _ : state)
		pool.round();
	state.SetItemsProcessed(state.iterations() * nthreads * kPerRound);
}

// The same with google-benchmark's ->Threads(n), as first specified; kept for
// comparison with the pool version (see the Pool comment for its bias).
void BM_gbthreads_pair(benchmark::State &state) {
	const size_t size = (size_t)state.range(0);
	for (auto _ : state) {
		void *p = malloc(size);
		benchmark::DoNotOptimize(p);
		free(p);
		benchmark::ClobberMemory();
	}
	state.SetItemsProcessed(state.iterations());
}

void register_all(bool all_classes) {
	auto *pair = benchmark::RegisterBenchmark("pair", BM_pair);
	if (all_classes) {
		for (size_t s : kGoClasses)
			pair->Arg((int64_t)s);
	} else {
		for (size_t s : kSubsetClasses)
			pair->Arg((int64_t)s);
	}
	auto *large = benchmark::RegisterBenchmark("pair_large", BM_pair);
	for (int64_t s = 64 << 10; s <= (64 << 20); s *= 4)
		large->Arg(s);

	benchmark::RegisterBenchmark("pair_mixed", BM_pair_mixed);
	benchmark::RegisterBenchmark("window", BM_window)->Arg(64)->Arg(1024)->Arg(32768);

	for (int64_t s : {32, 256, 4096}) {
		benchmark::RegisterBenchmark("batch_lifo", BM_batch<Order::kLifo>)->Arg(s);
		benchmark::RegisterBenchmark("batch_fifo", BM_batch<Order::kFifo>)->Arg(s);
		benchmark::RegisterBenchmark("batch_random", BM_batch<Order::kRandom>)->Arg(s);
	}

	benchmark::RegisterBenchmark("realloc_grow", BM_realloc_grow);

	benchmark::RegisterBenchmark("calloc", BM_calloc)
		->Arg(64)->Arg(4096)->Arg(1 << 20);
	benchmark::RegisterBenchmark("calloc_touch", BM_calloc_touch)->Arg(1 << 20);

	benchmark::RegisterBenchmark("aligned", BM_aligned)
		->Args({64, 64})->Args({64, 1000})
		->Args({4096, 4096})->Args({4096, 20000});

	benchmark::RegisterBenchmark("xthread_free", BM_xthread_free)
		->Arg(64)->Arg(1024)->UseRealTime();

	benchmark::RegisterBenchmark("threads_pair", BM_threads_pair)
		->ArgNames({"size", "threads"})
		->ArgsProduct({{64, 1024}, {1, 2, 8}})->UseRealTime();
	benchmark::RegisterBenchmark("threads_batch", BM_threads_batch)
		->ArgName("threads")->Arg(1)->Arg(2)->Arg(8)->UseRealTime();
	benchmark::RegisterBenchmark("gbthreads_pair", BM_gbthreads_pair)
		->Arg(64)->Threads(1)->Threads(2)->Threads(8)->UseRealTime();
}

}  // namespace

int main(int argc, char **argv) {
	bool all_classes = false;
	int out = 1;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--all_size_classes") == 0)
			all_classes = true;
		else
			argv[out++] = argv[i];
	}
	argc = out;
	argv[argc] = nullptr;
	register_all(all_classes);
	benchmark::Initialize(&argc, argv);
	if (benchmark::ReportUnrecognizedArguments(argc, argv))
		return 1;
	benchmark::RunSpecifiedBenchmarks();
	benchmark::Shutdown();
	return 0;
}
