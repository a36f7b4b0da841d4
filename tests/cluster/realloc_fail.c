/* realloc_fail.c - an LD_PRELOAD shim for test_engine_hostile.py's
 * test_resubscription_out_of_memory: while the file FAIL_FILE exists, a
 * realloc to FAIL_MIN bytes or more returns NULL, as it does when memory
 * runs out, so a large resubscription (common/cluster/bridge.c: on_up)
 * cannot be formatted. Built by the test into its temporary directory;
 * build-tree only. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>

void *realloc(void *p, size_t n)
{
	static void *(*real)(void *, size_t);
	if (!real)
		real = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
	const char *f = getenv("FAIL_FILE"), *min = getenv("FAIL_MIN");
	if (f && min && n >= strtoul(min, NULL, 10) && access(f, F_OK) == 0)
		return NULL;
	return real(p, n);
}
