/* test_loop_timer.c - the loop runtime's timer heap (common/loop/timer.h)
 * against the simplest reference: an array of (armed, at) scanned in full.
 *
 * A fixed-seed random sequence of arm, re-arm (sooner and later), cancel and
 * pop-due over a bounded set of records, with times near the uint32 wrap so
 * the wrap-safe order is exercised; after every step the heap's invariants
 * (each record's index points back at it, parent <= child) and its earliest
 * time are checked against the reference. */
#include <stdlib.h>

#include "check.h"
#include "timer.h"

#define N 200
#define STEPS 40000

static struct loop_timer rec[N];
static bool ref_armed[N];
static uint32_t ref_at[N];

static unsigned long long rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void)
{
	rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
	return (uint32_t)(rng >> 11);
}

static bool heap_ok(const struct loop_timers *ts)
{
	int armed = 0;
	for (int i = 0; i < N; i++)
		armed += ref_armed[i];
	if (ts->len != armed)
		return false;
	for (int i = 0; i < ts->len; i++) {
		if (ts->h[i]->idx != i)
			return false;
		if (i && loop_time_before(ts->h[i]->at, ts->h[(i - 1) / 2]->at))
			return false;
	}
	for (int i = 0; i < N; i++)
		if (loop_timer_armed(&rec[i]) != ref_armed[i] || (ref_armed[i] && rec[i].at != ref_at[i]))
			return false;
	return true;
}

/* The reference's earliest armed record, or -1. */
static int ref_first(void)
{
	int best = -1;
	for (int i = 0; i < N; i++)
		if (ref_armed[i] && (best < 0 || loop_time_before(ref_at[i], ref_at[best])))
			best = i;
	return best;
}

static void random_ops(uint32_t base)
{
	struct loop_timers ts = {0};
	for (int i = 0; i < N; i++)
		loop_timer_init(&rec[i]), ref_armed[i] = false;
	uint32_t now = base;
	int bad = 0, pops = 0;
	for (int step = 0; step < STEPS; step++) {
		int i = (int)(rnd() % N);
		switch (rnd() % 4) {
		case 0: /* arm or re-arm (sooner or later) */
		case 1: {
			uint32_t at = now + rnd() % 5000;
			if (loop_timers_arm(&ts, &rec[i], at) == 0)
				ref_armed[i] = true, ref_at[i] = at;
			break;
		}
		case 2:
			loop_timers_cancel(&ts, &rec[i]);
			ref_armed[i] = false;
			break;
		default: { /* time moves on; pop what is due, earliest first */
			now += rnd() % 300;
			struct loop_timer *t;
			uint32_t last = 0;
			bool first = true;
			while ((t = loop_timers_pop_due(&ts, now))) {
				int k = (int)(t - rec);
				if (k < 0 || k >= N || !ref_armed[k] || loop_time_before(now, ref_at[k]) ||
				    (!first && loop_time_before(t->at, last)) || loop_timer_armed(t))
					bad++;
				/* the earliest: no armed record in the reference is sooner */
				int f = ref_first();
				if (f >= 0 && loop_time_before(ref_at[f], ref_at[k]))
					bad++;
				ref_armed[k] = false;
				last = t->at, first = false;
				pops++;
			}
			int f = ref_first();
			if (f >= 0 && !loop_time_before(now, ref_at[f]))
				bad++; /* something due was left */
		}
		}
		if (!heap_ok(&ts))
			bad++;
		int f = ref_first();
		struct loop_timer *top = loop_timers_first(&ts);
		if ((f < 0) != (top == NULL) || (top && top->at != ref_at[f]))
			bad++;
	}
	CHECK(bad == 0);
	CHECK(pops > 1000); /* the sequence did pop timers, not only arm them */
	loop_timers_fini(&ts);
}

static void timeouts(void)
{
	struct loop_timers ts = {0};
	struct loop_timer a, b;
	loop_timer_init(&a), loop_timer_init(&b);
	CHECK(loop_timers_timeout(&ts, 100, 1000) == 1000); /* none: the cap */
	CHECK(loop_timers_arm(&ts, &a, 350) == 0);
	CHECK(loop_timers_timeout(&ts, 100, 1000) == 250);
	CHECK(loop_timers_timeout(&ts, 100, 200) == 200);
	CHECK(loop_timers_timeout(&ts, 350, 1000) == 0);
	CHECK(loop_timers_timeout(&ts, 400, 1000) == 0); /* overdue */
	CHECK(loop_timers_arm(&ts, &b, 120) == 0);
	CHECK(loop_timers_first(&ts) == &b);
	CHECK(loop_timers_arm(&ts, &b, 900) == 0); /* later: a moves to the top */
	CHECK(loop_timers_first(&ts) == &a && ts.len == 2);
	CHECK(loop_timers_pop_due(&ts, 349) == NULL);
	CHECK(loop_timers_pop_due(&ts, 350) == &a && !loop_timer_armed(&a));
	loop_timers_cancel(&ts, &a); /* not armed: nothing */
	CHECK(ts.len == 1);
	/* across the wrap: 0xfffffff0 is before 0x10 */
	CHECK(loop_timers_arm(&ts, &a, 0x10) == 0);
	CHECK(loop_timers_arm(&ts, &b, 0xfffffff0u) == 0);
	CHECK(loop_timers_first(&ts) == &b);
	CHECK(loop_timers_timeout(&ts, 0xffffffe0u, 1000) == 16);
	CHECK(loop_timers_pop_due(&ts, 0x5) == &b);
	CHECK(loop_timers_pop_due(&ts, 0x5) == NULL);
	loop_timers_fini(&ts);
}

int main(void)
{
	timeouts();
	random_ops(1000);
	random_ops(0xffffffffu - 100000); /* runs across the uint32 wrap */
	return check_done();
}
