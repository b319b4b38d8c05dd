/*
 * test_badptr.c -- bad pointers (issue 3, "Bad pointers"): free, realloc
 * and malloc_usable_size of a stack pointer, a global, a static buffer, an
 * mmap'd region (all "not allocated by gomalloc"), an interior pointer, an
 * unaligned pointer, one past a block, and an immediate double free.
 *
 * Each case runs in a fresh process (this binary re-executed with
 * "--case NAME"), stdout and stderr captured through pipes:
 *  - default options: the process dies of SIGABRT after writing exactly one
 *    line "gomalloc: <call>(<address>): <error>" naming the call and the
 *    address (and "double free" for a double free);
 *  - GOMALLOC_CONF=abort_on_error:false (options are read at
 *    initialisation, hence the re-exec): the same one line, then the call
 *    is ignored (realloc returns NULL, malloc_usable_size 0) and the heap
 *    keeps working: no silent corruption.
 *  - mallopt(M_CHECK_ACTION, 1) turns abort off at run time the same way.
 *
 * Built linked (tests/api/test_badptr) and for LD_PRELOAD
 * (tests/api/test_badptr-preload, -DGM_TEST_PRELOAD: gm_* through dlsym;
 * the re-executed process inherits LD_PRELOAD).
 */
#define _GNU_SOURCE
#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gomalloc.h>

#include "support.h"

extern char **environ;

static inline void *opp(void *p)
{
	__asm__ volatile("" : "+r"(p) : : "memory");
	return p;
}

/* ---- the cases (run in the re-executed process) ---- */

enum call { CALL_FREE, CALL_REALLOC, CALL_USABLE };
static const char *call_name[] = { "free", "realloc", "malloc_usable_size" };

static long global_long = 42;
static char static_buf[4096] __attribute__((aligned(64)));

static void *bad_stack(void)
{
	char local[64];
	__asm__ volatile("" : : "r"(local) : "memory");
	return opp((void *)(local + 16));
}
static void *bad_global(void) { return opp(&global_long); }
static void *bad_static(void) { return opp(static_buf + 128); }
static void *bad_mmap(void)
{
	char *m = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return m == MAP_FAILED ? NULL : opp(m + 4096);
}
/* A block of glibc's own malloc (libc.so.6's definition, reached through
 * its handle: what a pointer allocated by glibc before gomalloc took over
 * looks like). */
static void *bad_glibc_block(void)
{
	void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
	void *(*glibc_malloc)(size_t) = libc ? (void *(*)(size_t))dlsym(libc, "malloc") : NULL;
	if (glibc_malloc == NULL || glibc_malloc == malloc)
		return NULL;
	return opp(glibc_malloc(100));
}
static void *bad_interior_small(void)
{
	char *p = malloc(64);
	return opp(p + 16);
}
static void *bad_interior_large(void)
{
	char *p = malloc(100000);
	return opp(p + 16384);
}
/* A class of 3 objects a span (a span with a tail: the start of a fourth
 * slot would lie inside the span, and the object-start limit must refuse
 * it as it refuses interior pointers) */
static void *bad_interior_few(void)
{
	char *p = malloc(2600); /* class 2688: 3 objects a span */
	return opp(p + 512);
}
static void *bad_unaligned_small(void)
{
	char *p = malloc(64);
	return opp(p + 1);
}
static void *bad_unaligned_large(void)
{
	char *p = malloc(100000);
	return opp(p + 3);
}
/* The first block of a size class nothing else uses: the next slot is free. */
static void *bad_one_past_small(void)
{
	char *p = malloc(9000);
	return opp(p + malloc_usable_size(p));
}
static void *bad_one_past_large(void)
{
	char *p = malloc(200000);
	return opp(p + malloc_usable_size(p));
}
static void *bad_double_free_small(void)
{
	void *keep = malloc(48); /* the span stays in use */
	(void)keep;
	void *p = malloc(48);
	free(p);
	return opp(p);
}
static void *bad_double_free_large(void)
{
	void *p = malloc(100000);
	free(p);
	return opp(p);
}
/* over 4 MiB: the freed block waits in the heap's huge slot (SPAN_CACHED) */
static void *bad_double_free_huge(void)
{
	void *p = malloc(16 << 20);
	free(p);
	return opp(p);
}
static void *remote_fn(void *arg)
{
	(void)arg;
	void *keep = malloc(200);
	(void)keep;
	return malloc(200);
}
/* Allocated by another (still running) thread, freed twice by this one. */
static pthread_t remote_thread;
static void *bad_double_free_remote(void)
{
	void *p;
	pthread_create(&remote_thread, NULL, remote_fn, NULL);
	pthread_join(remote_thread, &p);
	free(p);
	return opp(p);
}
/* Freed by the thread that allocated it (its owner), then again by this
 * one: the remote free finds the block free in the owner's free map. */
static void *owner_frees_fn(void *arg)
{
	(void)arg;
	void *keep = malloc(200);
	(void)keep;
	void *p = malloc(200);
	free(p);
	return p;
}
static void *bad_double_free_owner_then_remote(void)
{
	void *p;
	pthread_create(&remote_thread, NULL, owner_frees_fn, NULL);
	pthread_join(remote_thread, &p);
	return opp(p);
}
/* The start of the slot that would follow the last object of a span with
 * a tail (class 4864: 5 objects in 3 pages, 256 bytes left over): an object
 * start for the division, not an object.  The span's base is its first
 * block, the only one of the class on a page boundary (k * 4864 is a
 * multiple of 8192 only for k a multiple of 32): at most 5 mallocs reach
 * a new span's. */
static void *bad_tail_slot(void)
{
	char *p = NULL;
	for (int i = 0; i < 6; i++) {
		p = malloc(4800);
		if (((uintptr_t)p & 8191) == 0)
			break;
	}
	return opp((void *)((uintptr_t)p + 5 * 4864));
}
static void *bad_double_free_noscan(void)
{
	/* plain dlsym: this runs in the re-executed process, outside Check */
	void *(*noscan)(size_t) = (void *(*)(size_t))dlsym(RTLD_DEFAULT, "gm_malloc_noscan");
	if (noscan == NULL)
		return NULL;
	void *p = noscan(500);
	free(p);
	return opp(p);
}
static void *bad_double_free_aligned(void)
{
	void *p = aligned_alloc(4096, 4096);
	free(p);
	return opp(p);
}

typedef struct bad_case {
	const char *name;
	void *(*setup)(void);
	const char *error; /* substring the error must contain, or NULL */
} bad_case_t;

static const bad_case_t cases[] = {
	{ "stack", bad_stack, "not allocated" },
	{ "global", bad_global, "not allocated" },
	{ "static", bad_static, "not allocated" },
	{ "mmap", bad_mmap, "not allocated" },
	{ "glibc_block", bad_glibc_block, "not allocated" },
	{ "interior_small", bad_interior_small, NULL },
	{ "interior_large", bad_interior_large, NULL },
	{ "interior_few", bad_interior_few, NULL },
	{ "unaligned_small", bad_unaligned_small, NULL },
	{ "unaligned_large", bad_unaligned_large, NULL },
	{ "one_past_small", bad_one_past_small, NULL },
	{ "one_past_large", bad_one_past_large, NULL },
	{ "double_free_small", bad_double_free_small, "double free" },
	{ "double_free_large", bad_double_free_large, "double free" },
	{ "double_free_huge", bad_double_free_huge, "double free" },
	{ "double_free_remote", bad_double_free_remote, "double free" },
	{ "double_free_owner_then_remote", bad_double_free_owner_then_remote, "double free" },
	{ "tail_slot", bad_tail_slot, "invalid pointer" },
	{ "double_free_noscan", bad_double_free_noscan, "double free" },
	{ "double_free_aligned", bad_double_free_aligned, "double free" },
};
#define NCASES (sizeof cases / sizeof cases[0])

static const bad_case_t *find_case(const char *name)
{
	for (size_t i = 0; i < NCASES; i++)
		if (strcmp(cases[i].name, name) == 0)
			return &cases[i];
	return NULL;
}

/* The heap still works and hands out distinct blocks. */
static int heap_sane(void)
{
	enum { N = 2000 };
	static unsigned char *b[N];
	for (int i = 0; i < N; i++) {
		size_t n = (size_t)(i % 50) * 40 + 48;
		if (i % 100 == 0)
			n = 100000;
		b[i] = malloc(n);
		if (b[i] == NULL)
			return 0;
		memset(b[i], i & 0xff, n);
	}
	for (int i = 0; i < N; i++) {
		size_t n = (size_t)(i % 50) * 40 + 48;
		if (i % 100 == 0)
			n = 100000;
		for (size_t k = 0; k < n; k += 37)
			if (b[i][k] != (unsigned char)(i & 0xff))
				return 0; /* two live blocks overlap */
	}
	for (int i = 0; i < N; i++)
		free(b[i]);
	return 1;
}

/* argv: --case NAME CALL [mallopt]; exit 0 when the bad call returned and
 * the heap is sane (continue mode), 1 when it returned wrongly. */
static int case_main(const char *name, const char *callname, int use_mallopt)
{
	const bad_case_t *c = find_case(name);
	if (c == NULL)
		return 90;
	int call = -1;
	for (int i = 0; i < 3; i++)
		if (strcmp(call_name[i], callname) == 0)
			call = i;
	if (call < 0)
		return 91;
	if (use_mallopt && mallopt(M_CHECK_ACTION, 1) != 1)
		return 92;
	void *p = c->setup();
	if (p == NULL)
		return 93;
	/* write(2), not stdio: a stdio buffer allocated now could reuse the
	 * freed block of a double-free case */
	char line[64];
	int len = snprintf(line, sizeof line, "%p\n", p);
	if (write(1, line, (size_t)len) != len)
		return 94;
	errno = 0;
	switch (call) {
	case CALL_FREE:
		free(p);
		break;
	case CALL_REALLOC: {
		void *q = realloc(p, 64);
		if (q != NULL) {
			fprintf(stderr, "(test) realloc of a bad pointer returned %p\n", q);
			return 1;
		}
		break;
	}
	case CALL_USABLE: {
		size_t u = malloc_usable_size(p);
		if (u != 0) {
			fprintf(stderr, "(test) malloc_usable_size of a bad pointer: %zu\n", u);
			return 1;
		}
		break;
	}
	}
	if (!heap_sane()) {
		fprintf(stderr, "(test) heap corrupted after the bad call\n");
		return 1;
	}
	return 0;
}

/* ---- the driver (Check tests) ---- */

typedef struct result {
	int status;        /* wait status, -1 if it hung */
	char out[256];     /* stdout: the bad address */
	char err[4096];    /* stderr */
} result_t;

static void read_pipes(int fo, int fe, result_t *r, pid_t pid)
{
	size_t no = 0, ne = 0;
	struct pollfd pf[2] = { { fo, POLLIN, 0 }, { fe, POLLIN, 0 } };
	int open_fds = 2;
	double end = now_s() + 20;
	while (open_fds > 0 && now_s() < end) {
		if (poll(pf, 2, 100) < 0 && errno != EINTR)
			break;
		for (int i = 0; i < 2; i++) {
			if (pf[i].fd < 0 || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			char *buf = i == 0 ? r->out : r->err;
			size_t *n = i == 0 ? &no : &ne;
			size_t cap = i == 0 ? sizeof r->out : sizeof r->err;
			ssize_t k = read(pf[i].fd, buf + *n, cap - 1 - *n);
			if (k <= 0) {
				pf[i].fd = -1;
				open_fds--;
			} else {
				*n += (size_t)k;
			}
		}
	}
	r->out[no] = 0;
	r->err[ne] = 0;
	int st;
	for (;;) {
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid) {
			r->status = st;
			return;
		}
		if (now_s() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			r->status = -1;
			return;
		}
		usleep(2000);
	}
}

/* Run "--case name call" in a fresh process; conf: GOMALLOC_CONF or NULL. */
static void spawn_case(const char *name, int call, const char *conf, int use_mallopt,
                       result_t *r)
{
	int po[2], pe[2];
	ck_assert_int_eq(pipe(po), 0);
	ck_assert_int_eq(pipe(pe), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(po[1], 1);
		dup2(pe[1], 2);
		close(po[0]);
		close(pe[0]);
		close(po[1]);
		close(pe[1]);
		struct rlimit nocore = { 0, 0 };
		setrlimit(RLIMIT_CORE, &nocore);
		size_t n = 0;
		while (environ[n])
			n++;
		char **env = calloc(n + 2, sizeof *env);
		size_t k = 0;
		for (size_t i = 0; i < n; i++)
			if (strncmp(environ[i], "GOMALLOC_CONF=", 14) != 0)
				env[k++] = environ[i];
		char confvar[256];
		if (conf != NULL) {
			snprintf(confvar, sizeof confvar, "GOMALLOC_CONF=%s", conf);
			env[k++] = confvar;
		}
		env[k] = NULL;
		char *argv[] = { (char *)"test_badptr", (char *)"--case", (char *)name,
			         (char *)call_name[call], use_mallopt ? (char *)"mallopt" : NULL,
			         NULL };
		execve("/proc/self/exe", argv, env);
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	memset(r, 0, sizeof *r);
	read_pipes(po[0], pe[0], r, pid);
	close(po[0]);
	close(pe[0]);
}

/* stderr must be exactly "gomalloc: <call>(<addr>): <error>\n". */
static void check_one_line(const result_t *r, const bad_case_t *c, int call)
{
	char addr[64];
	snprintf(addr, sizeof addr, "%.*s", (int)strcspn(r->out, "\n"), r->out);
	ck_assert_msg(addr[0] != 0, "%s/%s: the case did not run (stderr: %s)", c->name,
	              call_name[call], r->err);
	const char *nl = strchr(r->err, '\n');
	ck_assert_msg(nl != NULL && nl[1] == 0,
	              "%s/%s: want exactly one line on stderr, got:\n%s", c->name,
	              call_name[call], r->err);
	char prefix[128];
	snprintf(prefix, sizeof prefix, "gomalloc: %s(%s): ", call_name[call], addr);
	ck_assert_msg(strncmp(r->err, prefix, strlen(prefix)) == 0,
	              "%s/%s: want a line starting \"%s\", got: %s", c->name, call_name[call],
	              prefix, r->err);
	const char *what = r->err + strlen(prefix);
	ck_assert_msg(what < nl, "%s/%s: no error text: %s", c->name, call_name[call], r->err);
	if (c->error != NULL && (call == CALL_FREE || strcmp(c->error, "double free") != 0))
		ck_assert_msg(strstr(what, c->error) != NULL, "%s/%s: error should say \"%s\": %s",
		              c->name, call_name[call], c->error, r->err);
}

static void expect_abort(const bad_case_t *c, int call)
{
	result_t r;
	spawn_case(c->name, call, NULL, 0, &r);
	ck_assert_msg(r.status != -1, "%s/%s: hung", c->name, call_name[call]);
	ck_assert_msg(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGABRT,
	              "%s/%s: want SIGABRT, got %s %d (stderr: %s)", c->name, call_name[call],
	              WIFSIGNALED(r.status) ? "signal" : "exit",
	              WIFSIGNALED(r.status) ? WTERMSIG(r.status) : WEXITSTATUS(r.status), r.err);
	check_one_line(&r, c, call);
}

static void expect_continue(const bad_case_t *c, int call, int use_mallopt)
{
	result_t r;
	spawn_case(c->name, call, use_mallopt ? NULL : "abort_on_error:false", use_mallopt, &r);
	const char *mode = use_mallopt ? "mallopt(M_CHECK_ACTION, 1)" : "abort_on_error:false";
	ck_assert_msg(r.status != -1, "%s/%s (%s): hung", c->name, call_name[call], mode);
	ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0,
	              "%s/%s (%s): want a normal exit, got %s %d (stderr: %s)", c->name,
	              call_name[call], mode, WIFSIGNALED(r.status) ? "signal" : "exit",
	              WIFSIGNALED(r.status) ? WTERMSIG(r.status) : WEXITSTATUS(r.status), r.err);
	check_one_line(&r, c, call);
}

static const char *free_cases[] = { "stack", "global", "static", "mmap", "glibc_block",
	                            "interior_small", "interior_large", "interior_few",
	                            "unaligned_small", "unaligned_large",
	                            "one_past_small", "one_past_large",
	                            "double_free_small", "double_free_large", "double_free_huge",
	                            "double_free_remote", "double_free_owner_then_remote",
	                            "double_free_noscan", "double_free_aligned", "tail_slot" };
static const char *other_cases[] = { "stack", "global", "mmap", "glibc_block", "interior_small",
	                             "interior_large", "unaligned_small", "one_past_small",
	                             "one_past_large", "double_free_small",
	                             "double_free_large", "double_free_huge", "tail_slot" };
#define NFREE (int)(sizeof free_cases / sizeof free_cases[0])
#define NOTHER (int)(sizeof other_cases / sizeof other_cases[0])

START_TEST(test_free_bad_aborts)
{
	expect_abort(find_case(free_cases[_i]), CALL_FREE);
}
END_TEST

START_TEST(test_realloc_bad_aborts)
{
	expect_abort(find_case(other_cases[_i]), CALL_REALLOC);
}
END_TEST

START_TEST(test_usable_size_bad_aborts)
{
	/* a freed block is not "bad" for malloc_usable_size in every design;
	 * the double-free cases are free's and realloc's */
	const bad_case_t *c = find_case(other_cases[_i]);
	if (strncmp(c->name, "double_free", 11) == 0)
		return;
	expect_abort(c, CALL_USABLE);
}
END_TEST

START_TEST(test_free_bad_continues)
{
	expect_continue(find_case(free_cases[_i]), CALL_FREE, 0);
}
END_TEST

START_TEST(test_realloc_bad_continues)
{
	expect_continue(find_case(other_cases[_i]), CALL_REALLOC, 0);
}
END_TEST

START_TEST(test_usable_size_bad_continues)
{
	const bad_case_t *c = find_case(other_cases[_i]);
	if (strncmp(c->name, "double_free", 11) == 0)
		return;
	expect_continue(c, CALL_USABLE, 0);
}
END_TEST

START_TEST(test_mallopt_check_action_continues)
{
	expect_continue(find_case("double_free_small"), CALL_FREE, 1);
	expect_continue(find_case("interior_small"), CALL_FREE, 1);
}
END_TEST

/* A good program prints nothing: free, realloc and usable size of valid
 * blocks of every kind, and free(NULL). */
START_TEST(test_valid_pointers_silent)
{
	int pe[2];
	ck_assert_int_eq(pipe(pe), 0);
	fflush(stderr);
	int saved = dup(2);
	dup2(pe[1], 2);
	for (int i = 0; i < 200; i++) {
		size_t n = (size_t)i * 613 + 1;
		void *p = (i % 3 == 0) ? aligned_alloc(64, n) : malloc(n);
		ck_assert_uint_ge(malloc_usable_size(p), n);
		p = realloc(p, n * 2);
		free(p);
	}
	free(NULL);
	dup2(saved, 2);
	close(saved);
	close(pe[1]);
	char buf[256];
	fcntl(pe[0], F_SETFL, O_NONBLOCK);
	ssize_t k = read(pe[0], buf, sizeof buf - 1);
	close(pe[0]);
	ck_assert_msg(k <= 0, "valid calls printed: %.*s", (int)(k > 0 ? k : 0), buf);
}
END_TEST

START_TEST(test_runs_on_gomalloc)
{
	assert_runs_on_gomalloc();
}
END_TEST

static TCase *tcase(Suite *s, const char *name, int timeout)
{
	TCase *tc = tcase_create(name);
	tcase_set_timeout(tc, timeout);
	suite_add_tcase(s, tc);
	return tc;
}

int main(int argc, char **argv)
{
	if (argc >= 4 && strcmp(argv[1], "--case") == 0)
		return case_main(argv[2], argv[3], argc >= 5 && strcmp(argv[4], "mallopt") == 0);
	Suite *s = suite_create("badptr");
	tcase_add_test(tcase(s, "runs_on_gomalloc", 10), test_runs_on_gomalloc);
	tcase_add_test(tcase(s, "valid_pointers_silent", 10), test_valid_pointers_silent);
	tcase_add_loop_test(tcase(s, "free_bad_aborts", 30), test_free_bad_aborts, 0, NFREE);
	tcase_add_loop_test(tcase(s, "realloc_bad_aborts", 30), test_realloc_bad_aborts, 0,
	                    NOTHER);
	tcase_add_loop_test(tcase(s, "usable_size_bad_aborts", 30), test_usable_size_bad_aborts,
	                    0, NOTHER);
	tcase_add_loop_test(tcase(s, "free_bad_continues", 30), test_free_bad_continues, 0,
	                    NFREE);
	tcase_add_loop_test(tcase(s, "realloc_bad_continues", 30), test_realloc_bad_continues,
	                    0, NOTHER);
	tcase_add_loop_test(tcase(s, "usable_size_bad_continues", 30),
	                    test_usable_size_bad_continues, 0, NOTHER);
	tcase_add_test(tcase(s, "mallopt_check_action_continues", 30),
	               test_mallopt_check_action_continues);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
