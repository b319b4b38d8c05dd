/*
 * whichmalloc.c -- prints the path of the object file that defines the
 * malloc this process resolved (dlsym(RTLD_DEFAULT, "malloc") + dladdr).
 *
 * Under LD_PRELOAD=.../libgomalloc.so it must print that library, without it
 * the C library; tests/preload/run.sh runs it beside each real program, with
 * the same environment, to prove the program's malloc was gomalloc.  It also
 * allocates and frees through the resolved function, so a library that
 * exports malloc but cannot serve it fails here too.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
	void *(*fn)(size_t) = (void *(*)(size_t))dlsym(RTLD_DEFAULT, "malloc");
	Dl_info info;

	if (fn == NULL || dladdr((void *)fn, &info) == 0 || info.dli_fname == NULL) {
		fprintf(stderr, "whichmalloc: cannot resolve malloc: %s\n", dlerror());
		return 1;
	}
	/* The resolved function must serve an allocation. */
	char *p = fn(64);
	if (p == NULL) {
		fprintf(stderr, "whichmalloc: malloc(64) returned NULL\n");
		return 1;
	}
	memset(p, 0xa5, 64);
	free(p);
	printf("%s\n", info.dli_fname);
	return 0;
}
