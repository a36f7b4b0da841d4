/* clock.h - the one clock every layer reads: milliseconds on CLOCK_MONOTONIC. */
#ifndef WEFT_CLOCK_H
#define WEFT_CLOCK_H

/* Milliseconds on CLOCK_MONOTONIC. */
long long now_ms(void);

#endif
