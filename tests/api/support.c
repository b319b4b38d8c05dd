/*
 * support.c -- helpers shared by the API tests; see support.h.
 */
#define _GNU_SOURCE
#include "support.h"

#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gomalloc.h>

extern char **environ;

double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Field `field` (0: total size, 1: resident) of /proc/self/statm in bytes,
 * 0 if unreadable; no malloc (the callers may run where it fails). */
static size_t statm_bytes(int field)
{
	char buf[128];
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	unsigned long f[2] = { 0, 0 };
	if (sscanf(buf, "%lu %lu", &f[0], &f[1]) != 2)
		return 0;
	return (size_t)f[field] * (size_t)sysconf(_SC_PAGESIZE);
}

size_t rss_bytes(void)
{
	return statm_bytes(1);
}

size_t vm_bytes(void)
{
	return statm_bytes(0);
}

size_t run_child_as_limit;

void run_child(const char *conf, const char *name, int timeout_s, child_result_t *r)
{
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	ck_assert_msg(n > 0, "readlink /proc/self/exe: %s", strerror(errno));
	exe[n] = '\0';
	size_t nenv = 0;
	while (environ[nenv])
		nenv++;
	char **envp = calloc(nenv + 2, sizeof(char *));
	ck_assert_ptr_nonnull(envp);
	size_t k = 0;
	for (size_t i = 0; i < nenv; i++)
		if (strncmp(environ[i], "GOMALLOC_CONF=", 14) != 0)
			envp[k++] = environ[i];
	char confvar[256];
	if (conf != NULL) {
		snprintf(confvar, sizeof confvar, "GOMALLOC_CONF=%s", conf);
		envp[k++] = confvar;
	}
	envp[k] = NULL;
	char *argv[] = { exe, (char *)"--child", (char *)name, NULL };
	int po[2], pe[2];
	ck_assert_int_eq(pipe2(po, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(pe, O_CLOEXEC), 0);
	memset(r, 0, sizeof *r);
	double t0 = now_s();
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(po[1], 1);
		dup2(pe[1], 2);
		if (run_child_as_limit != 0) {
			struct rlimit rl = { run_child_as_limit, run_child_as_limit };
			if (setrlimit(RLIMIT_AS, &rl) != 0)
				_exit(126);
		}
		execve(exe, argv, envp);
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	struct pollfd fds[2] = { { po[0], POLLIN, 0 }, { pe[0], POLLIN, 0 } };
	int open_fds = 2, killed = 0;
	while (open_fds > 0) {
		double left = timeout_s - (now_s() - t0);
		if (left <= 0 && !killed) {
			kill(pid, SIGKILL);
			killed = 1;
		}
		int pr = poll(fds, 2, left > 0 ? (int)(left * 1000) + 1 : 1000);
		if (pr < 0 && errno == EINTR)
			continue;
		for (int i = 0; i < 2; i++) {
			if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			char *buf = i == 0 ? r->out : r->err;
			size_t *len = i == 0 ? &r->nout : &r->nerr;
			size_t cap = i == 0 ? sizeof r->out : sizeof r->err;
			char tmp[4096];
			ssize_t got = read(fds[i].fd, tmp, sizeof tmp);
			if (got <= 0) {
				close(fds[i].fd);
				fds[i].fd = -1;
				open_fds--;
				continue;
			}
			size_t take = (size_t)got;
			if (*len + take > cap - 1)
				take = cap - 1 - *len;
			memcpy(buf + *len, tmp, take);
			*len += take;
			buf[*len] = '\0';
		}
	}
	waitpid(pid, &r->status, 0);
	r->secs = now_s() - t0;
	free(envp);
	printf("---- child %s (GOMALLOC_CONF=%s), %.1f s ----\n%s%s", name,
	       conf ? conf : "(unset)", r->secs, r->out, r->err);
	fflush(stdout);
}

void expect_child_ok(const char *conf, const char *name)
{
	child_result_t *r = malloc(sizeof *r);
	ck_assert_ptr_nonnull(r);
	run_child(conf, name, 45, r);
	const char *why = strstr(r->out, "FAIL-REASON: ");
	if (WIFSIGNALED(r->status))
		ck_abort_msg("child %s killed by signal %d (timeout or crash)\n%s%s", name,
		             WTERMSIG(r->status), r->out, r->err);
	ck_assert_msg(WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0,
	              "child %s failed (exit %d): %s", name, WEXITSTATUS(r->status),
	              why ? why + 13 : r->err);
	free(r);
}

double mib(size_t bytes)
{
	return (double)bytes / (double)(1 << 20);
}

uint64_t xorshift64(uint64_t *state)
{
	uint64_t x = *state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *state = x;
}

void add_case(Suite *s, const char *name, const TTest *t, int timeout)
{
	TCase *tc = tcase_create(name);
	tcase_set_timeout(tc, timeout);
	tcase_add_test(tc, t);
	suite_add_tcase(s, tc);
}

void assert_runs_on_gomalloc(void)
{
	ck_assert_msg(dlsym(RTLD_DEFAULT, "gm_version") != NULL,
	              "gm_version not found: the test is not running on gomalloc");
	int (*kind_of)(const void *) = (int (*)(const void *))dlsym(RTLD_DEFAULT, "gm_kind_of");
	ck_assert_ptr_nonnull(kind_of);
	void *p = malloc(100);
	ck_assert_int_eq(kind_of(p), GM_KIND_SCAN);
	free(p);
}
