/* alarm.c - a loop's alarms: one-shot timers of non-session code (the
 * cluster link's, the EMFILE back-off's, the hold retry's) on the loop's
 * alarm heap (timer.h), on the loop's own clock (ms since l->epoch). The
 * model's wait is bounded by the earliest and the due ones run after it
 * (due.c: loop_timeout, loop_run_due). */
#include <errno.h>

#include "clock.h"
#include "log.h"
#include "loop.h"

int loop_alarm_at(struct loop *l, struct loop_alarm *a, long long at_ms)
{
	if (!at_ms) {
		loop_timers_cancel(&l->alarms, &a->t);
		return 0;
	}
	long long d = at_ms - l->epoch, now = now_ms() - l->epoch;
	if (d < now)
		d = now;
	if (d - now > LOOP_TIMER_MAX_MS)
		d = now + LOOP_TIMER_MAX_MS;
	int rc = loop_timers_arm(&l->alarms, &a->t, (uint32_t)d);
	if (rc < 0)
		log_warn("loop %d: no memory for an alarm", l->index);
	return rc;
}
