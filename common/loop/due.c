/* due.c - what comes due on a loop (loop.h, "deadlines"): the turn's clock,
 * the connections' deadlines on the loop's heap, the wait bound, and the run
 * of what is due - the deadlines, then the alarms. */
#include "clock.h"
#include "log.h"
#include "loop.h"
#include "session.h"

void loop_turn(struct loop *l)
{
	l->now_at = now_ms();
	l->now = (uint32_t)(l->now_at - l->epoch);
}

int loop_timeout(struct loop *l, int max)
{
	/* A fresh read, not the turn's clock: the turn's work since would make
	 * the wait overshoot a deadline by that much. Once a turn. */
	uint32_t now = (uint32_t)(now_ms() - l->epoch);
	return loop_timers_timeout(&l->alarms, now, loop_timers_timeout(&l->deadlines, now, max));
}

/* The heap's time for a now_ms() time due after the turn's clock, at most
 * LOOP_TIMER_MAX_MS ahead. */
static uint32_t heap_at(const struct loop *l, long long due)
{
	if (due - l->now_at > LOOP_TIMER_MAX_MS)
		due = l->now_at + LOOP_TIMER_MAX_MS;
	return (uint32_t)(due - l->epoch);
}

void loop_conn_deadline(struct loop *l, struct loop_conn *lc, const struct session *s)
{
	struct loop_deadline *d = loop_conn_dl(l, lc);
	long long due = loop_due(l, s, loop_conn_last(l, lc));
	if (!due)
		return; /* none now; an armed timer finds that out when it fires */
	long long now = l->now_at;
	if (due <= now || (loop_held(lc) && due < now + LOOP_OVERDUE_MS))
		due = now + LOOP_OVERDUE_MS; /* it expired and stays (a last reply goes out), or
		                              * the held list's retry offers it its input: not every turn */
	uint32_t at = heap_at(l, due);
	if (!loop_timer_armed(&d->timer) || loop_time_before(at, d->timer.at))
		if (loop_timers_arm(&l->deadlines, &d->timer, at) < 0) /* only unarmed, and not reserved */
			log_warn("%s: loop %d: no memory for a connection's deadline; it is lost", l->m->name, l->index);
}

int loop_deadlines_reserve(struct loop *l, int n) { return loop_timers_reserve(&l->deadlines, n); }

void loop_conn_deadline_cancel(struct loop *l, struct loop_conn *lc)
{
	if (l->m->deadline_off)
		loop_timers_cancel(&l->deadlines, &loop_conn_dl(l, lc)->timer);
}

static void deadlines_run(struct loop *l)
{
	struct loop_timer *tm;
	while ((tm = loop_timers_pop_due(&l->deadlines, l->now))) {
		struct loop_conn *lc = (struct loop_conn *)((char *)tm - offsetof(struct loop_deadline, timer) - l->m->deadline_off);
		struct session *s = l->m->session(l, lc);
		long long last = loop_conn_last(l, lc), due = loop_due(l, s, last);
		if (!due)
			continue; /* no deadline any more: the model's next loop_conn_deadline arms one */
		if (l->now_at < due) {
			/* activity moved it later: look then (no allocation: it was just popped) */
			loop_timers_arm(&l->deadlines, tm, heap_at(l, due));
			continue;
		}
		/* A held publisher's hold expiry offers it its input, which may
		 * publish: then its reply goes after those deliveries, as after the
		 * hold's retry (loop.h, holds; they are listed only at loop_drain). */
		unsigned long posts = owner_posts_here();
		if (loop_expire(l, s, last, l->now_at))
			l->m->expired(l, lc); /* the model closes it: no deadline any more */
		else
			loop_conn_deadline(l, lc, s); /* open: look again (LOOP_OVERDUE_MS) */
		loop_pending_since(l, lc, posts); /* its write hook sends what the expiry queued, or closes it */
	}
}

void loop_run_due(struct loop *l)
{
	if (l->deadlines.len)
		deadlines_run(l);
	/* Only the alarms due now, once each: one that re-arms itself at "now"
	 * runs in the next turn, after the loop looked at its fds. */
	int n = l->alarms.len;
	struct loop_timer *t;
	while (n-- > 0 && (t = loop_timers_pop_due(&l->alarms, l->now)))
		((struct loop_alarm *)t)->fn(l, (struct loop_alarm *)t);
}
