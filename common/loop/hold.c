/* hold.c - the held publishers (loop.h, "holds"): the list of connections
 * whose input waits for their subscribers, and their retry - after a turn
 * in which output moved (near holds), and by a loop alarm every
 * SESSION_HOLD_RETRY_MS (all). */
#include "clock.h"
#include "loop.h"
#include "server.h"
#include "session.h"

/* Offer the listed connections their input again: all of them (by_time),
 * or only those held for this loop's own output. One still held is handed
 * to loop_hold again by the model's write hook, which runs for each one
 * retried (listed). */
static void retry(struct loop *l, bool by_time)
{
	uint32_t n = l->nheld;
	l->nheld = 0;
	long long now = now_ms();
	for (uint32_t i = 0; i < n; i++) {
		uint32_t id = l->held[i];
		struct loop_conn *lc = l->m->conn(l, id);
		if (!lc || !(lc->flags & LOOP_CONN_HELD))
			continue; /* a guard: loop_unlist took an ended one off already */
		struct session *s = l->m->session(l, lc);
		if (!by_time && session_held_far(s)) {
			l->held[l->nheld++] = id; /* stays (i >= nheld: in place) */
			continue;
		}
		lc->flags &= (uint8_t)~LOOP_CONN_HELD;
		unsigned long posts = owner_posts_here();
		if (session_held(s) && !s->closing && loop_expire(l, s, LOOP_WAITED_OUT, now))
			l->m->expired(l, lc);
		loop_pending_since(l, lc, posts); /* its reply after what it published */
	}
}

static void retry_due(struct loop *l, struct loop_alarm *a);

static void arm(struct loop *l)
{
	if (!l->hold_retry.fn) /* the first hold of this loop: a new alarm */
		l->hold_retry = (struct loop_alarm){{-1, 0}, retry_due};
	if (!loop_timer_armed(&l->hold_retry.t))
		loop_alarm_at(l, &l->hold_retry, now_ms() + SESSION_HOLD_RETRY_MS); /* no memory: loop_holds_turn retries */
}

static void retry_due(struct loop *l, struct loop_alarm *a)
{
	(void)a;
	retry(l, true);
}

void loop_hold(struct loop *l, struct loop_conn *lc)
{
	if (lc->flags & LOOP_CONN_HELD)
		return;
	lc->flags |= LOOP_CONN_HELD;
	l->held[l->nheld++] = lc->id; /* room: every id has one (loop_conns_reserve) */
	arm(l);
}

void loop_holds_turn(struct loop *l)
{
	if (!loop_timer_armed(&l->hold_retry.t))
		retry(l, true); /* no alarm (no memory for it, logged): every turn rather than never */
	else if (l->wrote)
		retry(l, false);
}

void loop_wrote(struct loop *l, const struct loop_conn *lc, const struct session *s, size_t before)
{
	if (l->wrote || (lc->flags & LOOP_CONN_HELD) || session_held(s))
		return;
	size_t hold = server_outbox_limits(l->srv).hold;
	if (hold && before > hold)
		l->wrote = true;
}
