/* clock.c - now_ms(), the wall clock (clock.h). */
#include "clock.h"

#include <time.h>

long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

uint64_t wall_next(uint64_t last, uint64_t clock, uint64_t window)
{
	if (clock > last || last - clock >= window)
		return clock;
	return last + 1;
}
