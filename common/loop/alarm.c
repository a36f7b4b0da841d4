/* alarm.c - a loop's alarms: one-shot timers of non-session code (the
 * cluster link's) on the runtime's timer heap (timer.h), on the loop's own
 * clock (ms since l->epoch). The model bounds its wait by the earliest and
 * runs the due ones after it. */
#include <errno.h>

#include "clock.h"
#include "log.h"
#include "loop.h"

static uint32_t now32(const struct loop *l) { return (uint32_t)(now_ms() - l->epoch); }

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

int loop_alarms_timeout(struct loop *l, int max) { return loop_timers_timeout(&l->alarms, now32(l), max); }

void loop_alarms_run(struct loop *l)
{
	/* Only those due now, once each: one that re-arms itself at "now"
	 * runs in the next turn, after the loop looked at its fds. */
	int n = l->alarms.len;
	uint32_t now = now32(l);
	struct loop_timer *t;
	while (n-- > 0 && (t = loop_timers_pop_due(&l->alarms, now)))
		((struct loop_alarm *)t)->fn(l, (struct loop_alarm *)t);
}
