/* alloc_fail.c - an LD_PRELOAD shim for test_engine_hostile.py's
 * test_keyed_no_memory_for_a_mark: while the file FAIL_FILE exists, a call
 * of FAIL_FN ("malloc" or "calloc") for FAIL_MIN to FAIL_MAX bytes returns
 * NULL, as it does when memory runs out, so that the receiver cannot read
 * or make a stream's mark (common/cluster/bridge.c: track; its key past
 * 512 bytes is malloc'd, the mark's entry in `seen` calloc'd). The size
 * range picks those out: the test's channel is long enough that nothing
 * else on the receiving path asks for such a size. test_marker_out_of_memory_stays_due
 * fails a publisher's mallocs of a channel's engine name the same way (the
 * publish's and its markers'), test_marker_refused_by_the_link_stays_due
 * those of one PUBLISH command of a 5,000-byte channel (the link's queue
 * copies it into a msg of its own: link_send refuses it). Built by the test into its temporary
 * directory; build-tree only. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static size_t lo = 1, hi; /* hi 0: nothing fails */

/* Whether a call of fn for n bytes fails now. getenv and access do not
 * allocate; the file is looked at for the sizes in range only. The range is
 * read once the environment is there: a sanitizer's runtime allocates
 * before the C library has set it up. */
static int fails(const char *fn, size_t n)
{
	static int ready;
	if (!ready) {
		const char *min = getenv("FAIL_MIN"), *max = getenv("FAIL_MAX");
		if (min && max) {
			lo = strtoul(min, NULL, 10);
			hi = strtoul(max, NULL, 10);
			ready = 1;
		}
	}
	if (n < lo || n > hi)
		return 0;
	const char *f = getenv("FAIL_FN"), *file = getenv("FAIL_FILE");
	return f && file && strcmp(f, fn) == 0 && access(file, F_OK) == 0;
}

void *malloc(size_t n)
{
	static void *(*real)(size_t);
	if (!real)
		real = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
	return fails("malloc", n) ? NULL : real(n);
}

void *calloc(size_t k, size_t n)
{
	static void *(*real)(size_t, size_t);
	if (!real)
		real = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
	return k == 1 && fails("calloc", n) ? NULL : real(k, n);
}
