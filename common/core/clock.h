/* clock.h - the one clock every layer reads: milliseconds on CLOCK_MONOTONIC;
 * and the wall clock that signed stamps and versions are read on. */
#ifndef WEFT_CLOCK_H
#define WEFT_CLOCK_H

#include <stdint.h>

/* Milliseconds on CLOCK_MONOTONIC. */
long long now_ms(void);
/* Unix time (CLOCK_REALTIME) in microseconds. */
uint64_t wall_us(void);
/* The next number of a sequence that follows a wall clock, its last being
 * last and the clock now clock (both in the same unit): the clock, or one
 * more than the last while the clock has not passed it, unless the last is
 * window or more ahead of the clock (it stepped back that far): the clock
 * again (else a receiver that refuses numbers further than window from its
 * own clock would refuse every one for as long as the step). */
uint64_t wall_next(uint64_t last, uint64_t clock, uint64_t window);

#endif
