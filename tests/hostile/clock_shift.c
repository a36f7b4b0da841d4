/* clock_shift.c - an LD_PRELOAD shim for test_slowloris.py: CLOCK_MONOTONIC
 * jumps SHIFT_MS ahead once the file SHIFT_FILE exists, so a server that
 * started a moment ago can be made to run as if it had been up for 49.7
 * days (2^32 ms, where a uint32 ms clock wraps) without waiting for them.
 * For tests/cluster/test_engine_hostile.py: CLOCK_REALTIME is
 * SHIFT_REALTIME_MS off (either way) from the start, a node whose clock
 * disagrees with the others'. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int clock_gettime(clockid_t id, struct timespec *ts)
{
	static int (*real)(clockid_t, struct timespec *);
	if (!real)
		real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
	int r = real(id, ts);
	const char *rt = getenv("SHIFT_REALTIME_MS");
	if (r == 0 && id == CLOCK_REALTIME && rt) {
		long long ns = (long long)ts->tv_nsec + atoll(rt) % 1000 * 1000000;
		ts->tv_sec += atoll(rt) / 1000 + (ns < 0 ? -1 : ns >= 1000000000 ? 1 : 0);
		ts->tv_nsec = ns < 0 ? ns + 1000000000 : ns >= 1000000000 ? ns - 1000000000 : ns;
	}
	const char *f = getenv("SHIFT_FILE"), *ms = getenv("SHIFT_MS");
	if (r == 0 && id == CLOCK_MONOTONIC && f && ms && access(f, F_OK) == 0) {
		long long d = atoll(ms);
		ts->tv_sec += d / 1000;
		ts->tv_nsec += (d % 1000) * 1000000;
		if (ts->tv_nsec >= 1000000000) {
			ts->tv_sec++;
			ts->tv_nsec -= 1000000000;
		}
	}
	return r;
}
