/*
 * test_cxx.cc -- the C++ allocation operators on gomalloc (issue 3, "C++"):
 * aligned new/delete (64, 4096, 1 MiB), nothrow new returning nullptr under
 * RLIMIT_AS exhaustion (in a child), the new_handler loop (a handler that
 * frees a reserve lets the retry succeed; one that uninstalls itself leads
 * to std::bad_alloc), sized delete, operator new(0), and thread_local
 * destructors that allocate.
 *
 * Built linked (tests/api/test_cxx) and for LD_PRELOAD
 * (tests/api/test_cxx-preload, -DGM_TEST_PRELOAD: gm_* through dlsym).
 */
#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include <gomalloc.h>

#include "support.h"

static const size_t MiB = size_t(1) << 20;

static inline void *opp(void *p)
{
	__asm__ volatile("" : "+r"(p) : : "memory");
	return p;
}

static inline size_t opq(size_t x)
{
	__asm__ volatile("" : "+r"(x));
	return x;
}

/* kind_of(p) after delete is the point: is p still a live block? */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic ignored "-Wuse-after-free"
#endif

static int kind_of(const void *p)
{
	return GM_FN(gm_kind_of)(p);
}

/* Run fn in a child with RLIMIT_AS at the current size + headroom; its
 * exit status is the result (0 = pass). */
static void run_oom_child(int (*fn)(void), const char *what)
{
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct rlimit nocore = { 0, 0 };
		setrlimit(RLIMIT_CORE, &nocore);
		alarm(30);
		FILE *f = fopen("/proc/self/statm", "r");
		unsigned long pages = 0;
		if (f == NULL || fscanf(f, "%lu", &pages) != 1)
			_exit(99);
		fclose(f);
		size_t limit = pages * (size_t)sysconf(_SC_PAGESIZE) + 256 * MiB;
		struct rlimit rl = { limit, limit };
		setrlimit(RLIMIT_AS, &rl);
		_exit(fn());
	}
	int st = 0;
	double end = now_s() + 40;
	for (;;) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			break;
		if (now_s() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			ck_abort_msg("%s: child hung", what);
		}
		usleep(5000);
	}
	ck_assert_msg(!WIFSIGNALED(st), "%s: child killed by signal %d", what, WTERMSIG(st));
	ck_assert_msg(WEXITSTATUS(st) == 0, "%s: child failed at step %d", what,
	              WEXITSTATUS(st));
}

START_TEST(test_runs_on_gomalloc)
{
	ck_assert_msg(dlsym(RTLD_DEFAULT, "gm_version") != NULL,
	              "gm_version not found: the test is not running on gomalloc");
	char *p = new char[100];
	ck_assert_msg(kind_of(p) == GM_KIND_SCAN, "operator new[] is not gomalloc's");
	delete[] p;
	int *q = new int(5);
	ck_assert_msg(kind_of(q) == GM_KIND_SCAN, "operator new is not gomalloc's");
	delete q;
}
END_TEST

struct alignas(64) A64 {
	char c[100];
};
struct alignas(4096) A4096 {
	char c[5000];
};

START_TEST(test_aligned_new_delete)
{
	static const size_t aligns[] = { 32, 64, 128, 4096, 8192, 65536, MiB };
	static const size_t sizes[] = { 1, 64, 100, 4096, 5000, 70000, 3 * MiB };
	for (size_t a : aligns) {
		for (size_t n : sizes) {
			std::align_val_t al = static_cast<std::align_val_t>(a);
			void *p = opp(::operator new(opq(n), al));
			ck_assert_msg(reinterpret_cast<uintptr_t>(p) % a == 0,
			              "operator new(%zu, align %zu) = %p", n, a, p);
			ck_assert_int_eq(kind_of(p), GM_KIND_SCAN);
			memset(p, 0x5a, n);
			::operator delete(p, al);
			ck_assert_msg(kind_of(p) == -1, "aligned delete did not free");

			p = opp(::operator new[](opq(n), al));
			ck_assert_uint_eq(reinterpret_cast<uintptr_t>(p) % a, 0);
			memset(p, 0x5b, n);
			::operator delete[](p, n, al); /* sized + aligned */
			ck_assert_msg(kind_of(p) == -1, "sized aligned delete[] did not free");

			p = opp(::operator new(opq(n), al, std::nothrow));
			ck_assert_ptr_nonnull(p);
			ck_assert_uint_eq(reinterpret_cast<uintptr_t>(p) % a, 0);
			::operator delete(p, n, al);
			ck_assert_int_eq(kind_of(p), -1);
		}
	}
	A64 *x = new A64;
	ck_assert_uint_eq(reinterpret_cast<uintptr_t>(x) % 64, 0);
	A4096 *y = new A4096[3];
	ck_assert_uint_eq(reinterpret_cast<uintptr_t>(y) % 4096, 0);
	for (int i = 0; i < 3; i++)
		memset(y[i].c, i, sizeof y[i].c);
	delete x;
	delete[] y;
	ck_assert_int_eq(kind_of(x), -1);
}
END_TEST

START_TEST(test_sized_delete_and_zero)
{
	for (size_t n = 0; n < 200000; n = n * 3 + 1) {
		void *p = opp(::operator new(opq(n)));
		ck_assert_int_eq(kind_of(p), GM_KIND_SCAN);
		memset(p, 1, n);
		::operator delete(p, n);
		ck_assert_msg(kind_of(p) == -1, "sized delete(%zu) did not free", n);
		p = opp(::operator new[](opq(n)));
		::operator delete[](p, n);
		ck_assert_int_eq(kind_of(p), -1);
	}
	struct D {
		std::string s;
		~D() { s.clear(); }
	};
	D *d = new D[10];
	for (int i = 0; i < 10; i++)
		d[i].s = std::string(100, 'x');
	delete[] d; /* the compiler's sized delete[] (cookie) */
	/* operator new(0): non-null, distinct, freeable */
	void *z1 = opp(::operator new(opq(0)));
	void *z2 = opp(::operator new(opq(0)));
	ck_assert_ptr_nonnull(z1);
	ck_assert_ptr_nonnull(z2);
	ck_assert_ptr_ne(z1, z2);
	::operator delete(z1);
	::operator delete(z2, size_t(0));
	char *z3 = new char[opq(0)];
	ck_assert_ptr_nonnull(z3);
	delete[] z3;
	void *z4 = opp(::operator new(opq(0), std::nothrow));
	ck_assert_ptr_nonnull(z4);
	::operator delete(z4, std::nothrow);
}
END_TEST

/* ---- OOM ---- */

static int nothrow_oom_child(void)
{
	std::vector<void *> blocks;
	blocks.reserve(4096);
	for (;;) {
		void *p = ::operator new(MiB, std::nothrow);
		if (p == nullptr)
			break;
		if (blocks.size() == blocks.capacity())
			return 1;
		blocks.push_back(p);
	}
	if (blocks.size() < 16)
		return 2;
	/* every form fails cleanly now */
	if (::operator new(MiB, std::nothrow) != nullptr)
		return 3;
	if (::operator new[](2 * MiB, std::nothrow) != nullptr)
		return 4;
	if (::operator new(MiB, std::align_val_t(4096), std::nothrow) != nullptr)
		return 5;
	if (::operator new[](MiB, std::align_val_t(MiB), std::nothrow) != nullptr)
		return 6;
	bool thrown = false;
	try {
		void *p = ::operator new(opq(4 * MiB));
		::operator delete(p);
	} catch (const std::bad_alloc &) {
		thrown = true;
	}
	if (!thrown)
		return 7;
	thrown = false;
	try {
		void *p = ::operator new(opq(4 * MiB), std::align_val_t(64));
		::operator delete(p, std::align_val_t(64));
	} catch (const std::bad_alloc &) {
		thrown = true;
	}
	if (!thrown)
		return 8;
	/* free everything: new works again */
	for (void *p : blocks)
		::operator delete(p);
	blocks.clear();
	for (int i = 0; i < 32; i++) {
		void *p = ::operator new(MiB, std::nothrow);
		if (p == nullptr)
			return 9;
		blocks.push_back(p);
	}
	for (void *p : blocks)
		::operator delete(p, MiB);
	return 0;
}

START_TEST(test_nothrow_new_oom)
{
	run_oom_child(nothrow_oom_child, "nothrow new under RLIMIT_AS");
}
END_TEST

static void *reserve;
static int handler_calls;
static void free_reserve_handler()
{
	handler_calls++;
	if (reserve != nullptr) {
		::operator delete(reserve);
		reserve = nullptr;
	} else {
		std::set_new_handler(nullptr); /* give up: bad_alloc */
	}
}

static int new_handler_reserve_child(void)
{
	reserve = ::operator new(64 * MiB);
	memset(reserve, 1, MiB);
	std::vector<void *> blocks;
	blocks.reserve(4096);
	for (;;) {
		void *p = ::operator new(MiB, std::nothrow);
		if (p == nullptr)
			break;
		if (blocks.size() == blocks.capacity())
			return 1;
		blocks.push_back(p);
	}
	std::set_new_handler(free_reserve_handler);
	handler_calls = 0;
	char *p = nullptr;
	try {
		p = static_cast<char *>(::operator new(opq(32 * MiB)));
	} catch (const std::bad_alloc &) {
		return 2; /* the reserve should have made room */
	}
	if (handler_calls != 1)
		return 3;
	memset(p, 2, 32 * MiB);
	::operator delete(p);
	std::set_new_handler(nullptr);
	for (void *b : blocks)
		::operator delete(b);
	return 0;
}

START_TEST(test_new_handler_frees_reserve)
{
	run_oom_child(new_handler_reserve_child, "new_handler freeing a reserve");
}
END_TEST

static int uninstall_calls;
static void uninstalling_handler()
{
	uninstall_calls++;
	std::set_new_handler(nullptr);
}

START_TEST(test_new_handler_uninstalls_then_bad_alloc)
{
	const size_t huge = opq(SIZE_MAX / 2);
	/* without a handler: bad_alloc straight away */
	bool thrown = false;
	try {
		void *p = ::operator new(huge);
		::operator delete(p);
	} catch (const std::bad_alloc &) {
		thrown = true;
	}
	ck_assert_msg(thrown, "operator new(SIZE_MAX/2) did not throw bad_alloc");
	/* a handler that uninstalls itself: called once, then bad_alloc */
	const std::align_val_t aligns[] = { std::align_val_t(0), std::align_val_t(64),
		                            std::align_val_t(MiB) };
	for (int form = 0; form < 4; form++) {
		uninstall_calls = 0;
		std::set_new_handler(uninstalling_handler);
		thrown = false;
		try {
			void *p = form == 0 ? ::operator new(huge)
			        : form == 1 ? ::operator new[](huge)
			                    : ::operator new(huge, aligns[form - 1]);
			::operator delete(p);
		} catch (const std::bad_alloc &) {
			thrown = true;
		}
		ck_assert_msg(thrown, "form %d: no bad_alloc after the handler gave up", form);
		ck_assert_msg(uninstall_calls == 1, "form %d: handler called %d times", form,
		              uninstall_calls);
		ck_assert_msg(std::get_new_handler() == nullptr, "handler still installed");
	}
	/* nothrow new runs the handler loop too, then returns nullptr */
	uninstall_calls = 0;
	std::set_new_handler(uninstalling_handler);
	void *p = ::operator new(huge, std::nothrow);
	ck_assert_ptr_null(p);
	ck_assert_int_eq(uninstall_calls, 1);
	p = ::operator new(huge, std::align_val_t(4096), std::nothrow);
	ck_assert_ptr_null(p);
	std::set_new_handler(nullptr);
	/* huge alignment requests fail the same way */
	thrown = false;
	try {
		void *q = ::operator new(opq(1), std::align_val_t(size_t(1) << 62));
		::operator delete(q, std::align_val_t(size_t(1) << 62));
	} catch (const std::bad_alloc &) {
		thrown = true;
	}
	ck_assert_msg(thrown, "operator new(1, align 2^62) did not throw");
}
END_TEST

/* ---- thread_local destructors that allocate ---- */

static std::atomic<int> tl_dtors{ 0 }, tl_failures{ 0 };

struct TlState {
	std::vector<std::string> names;
	void *raw = nullptr;
	TlState()
	{
		names.reserve(4);
		raw = malloc(1000);
	}
	~TlState()
	{
		/* runs during thread exit, around gomalloc's own cleanup */
		std::vector<std::string> more;
		for (int i = 0; i < 50; i++)
			more.push_back(std::string(40 + i, char('a' + i % 26)));
		names.insert(names.end(), more.begin(), more.end());
		int *v = new int[1000]();
		char *big = static_cast<char *>(malloc(200000));
		void *al = ::operator new(256, std::align_val_t(256));
		if (v == nullptr || big == nullptr || al == nullptr || v[999] != 0)
			tl_failures++;
		memset(big, 3, 200000);
		for (size_t i = 0; i < names.size(); i++)
			if (names[i].size() != 40 + i % 50 && !names[i].empty())
				tl_failures++;
		delete[] v;
		free(big);
		free(raw);
		::operator delete(al, std::align_val_t(256));
		tl_dtors++;
	}
};

static thread_local TlState tl_state;

static void tl_thread_body()
{
	tl_state.names.push_back("x");
	tl_state.names.clear();
	std::vector<int> work(1000, 1);
	(void)work;
}

START_TEST(test_thread_local_destructors_allocate)
{
	int (*stats)(gm_stats_t *) = GM_FN(gm_stats);
	gm_stats_t s0, s1;
	stats(&s0);
	const int rounds = 20, per = 25;
	for (int r = 0; r < rounds; r++) {
		std::vector<std::thread> ts;
		for (int i = 0; i < per; i++)
			ts.emplace_back(tl_thread_body);
		for (auto &t : ts)
			t.join();
	}
	stats(&s1);
	ck_assert_int_eq(tl_failures.load(), 0);
	ck_assert_int_eq(tl_dtors.load(), rounds * per);
	ck_assert_msg(s1.nthreads <= s0.nthreads + 2, "thread caches %zu -> %zu after %d threads",
	              s0.nthreads, s1.nthreads, rounds * per);
	ck_assert_msg(s1.allocated < s0.allocated + MiB, "live bytes %zu -> %zu", s0.allocated,
	              s1.allocated);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cxx");
	add_case(s, "runs_on_gomalloc", test_runs_on_gomalloc, 10);
	add_case(s, "aligned_new_delete", test_aligned_new_delete, 20);
	add_case(s, "sized_delete_and_zero", test_sized_delete_and_zero, 20);
	add_case(s, "nothrow_new_oom", test_nothrow_new_oom, 50);
	add_case(s, "new_handler_frees_reserve", test_new_handler_frees_reserve, 50);
	add_case(s, "new_handler_uninstalls_then_bad_alloc", test_new_handler_uninstalls_then_bad_alloc,
	    20);
	add_case(s, "thread_local_destructors_allocate", test_thread_local_destructors_allocate, 30);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
