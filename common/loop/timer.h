/* timer.h - the loop runtime's timers: a binary min-heap of loop_timer
 * records, each embedded in its owner (a coroutine task, a connection), with
 * its heap index kept in the record, so arming, moving and cancelling a
 * timer are O(log n) and never search (libuv's timer heap, h2o's timerwheel
 * entry).
 *
 * Times are uint32 milliseconds on the owner's clock (ms since its loop
 * started), compared wrap-safe: a timer is at most 2^30 ms (12 days) ahead.
 * Nothing here reads a clock; the owner says what "now" is.
 *
 * Only re-arming an armed timer and cancelling never fail; arming a timer
 * that is not in the heap may (-ENOMEM, when the heap's array must grow).
 * Everything here belongs to one thread. */
#ifndef WEFT_LOOP_TIMER_H
#define WEFT_LOOP_TIMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOOP_TIMER_MAX_MS (1u << 30) /* how far ahead a timer may be */

struct loop_timer {
	int idx;     /* index in its heap; -1 when not armed */
	uint32_t at; /* when it is due */
};

struct loop_timers {
	struct loop_timer **h;
	int len, cap;
};

/* a is earlier than b (wrap-safe). */
static inline bool loop_time_before(uint32_t a, uint32_t b) { return (int32_t)(a - b) < 0; }

static inline void loop_timer_init(struct loop_timer *t) { t->idx = -1, t->at = 0; }
static inline bool loop_timer_armed(const struct loop_timer *t) { return t->idx >= 0; }

/* Arm t to be due at `at`, or move it there if it is armed. 0 or -ENOMEM
 * (only when it was not armed: it then stays unarmed). */
int loop_timers_arm(struct loop_timers *ts, struct loop_timer *t, uint32_t at);
/* Room for n armed timers, so that arming never fails below that. 0 or -ENOMEM. */
int loop_timers_reserve(struct loop_timers *ts, int n);
/* Disarm t (nothing if it is not armed). */
void loop_timers_cancel(struct loop_timers *ts, struct loop_timer *t);
/* The earliest timer, or NULL; it stays armed. */
static inline struct loop_timer *loop_timers_first(const struct loop_timers *ts) { return ts->len ? ts->h[0] : NULL; }
/* The earliest timer if it is due by now (at <= now), disarmed; else NULL. */
struct loop_timer *loop_timers_pop_due(struct loop_timers *ts, uint32_t now);
/* ms from now until the earliest timer (0 if one is due), capped at max;
 * max when there is none. */
int loop_timers_timeout(const struct loop_timers *ts, uint32_t now, int max);
/* Free the heap's array (the records are their owners'). */
void loop_timers_fini(struct loop_timers *ts);

#endif
