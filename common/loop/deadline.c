/* deadline.c - the one deadline policy (deadline.h). */
#include "deadline.h"

#include "session.h"

/* The drain's end cut it: that is its reason, unless a fault or a slow
 * consumer's verdict came first (those say more). */
static void cut_by_drain(struct session *s)
{
	if (s->close_why <= CLOSE_DRAIN)
		s->close_why = CLOSE_DRAIN_TIMEOUT;
	s->closing = 1;
}

static long long earliest(long long a, long long b) { return !a || (b && b < a) ? b : a; }

long long deadline_due(const struct session *s, long long last_ms, long long drain_end)
{
	int limit = session_idle_limit_ms(s);
	long long due = limit > 0 ? last_ms + limit : 0;
	due = earliest(due, session_deadline_ms(s));
	return earliest(due, drain_end);
}

bool deadline_expire(struct session *s, long long last_ms, long long now, long long drain_end)
{
	if (drain_end && now >= drain_end) {
		cut_by_drain(s); /* not quiet by the drain's end */
		return true;
	}
	long long at = session_deadline_ms(s);
	if (at && now >= at)
		return session_deadline_expired(s); /* it may keep it open to send a reply */
	int limit = session_idle_limit_ms(s);
	if (limit <= 0 || (last_ms != DEADLINE_WAITED_OUT && now - last_ms < limit))
		return false;
	if (session_held(s)) {
		session_hold_expired(s); /* a held publisher's retry, not inactivity */
		return false;
	}
	/* Idle. With output stuck (the peer is not reading), or already told
	 * and still here, it can never finish politely: close now. Else it
	 * closes once what the expiry queued is out. Either way an idle expiry
	 * is counted once (session_idle_expired, unless it was closing already). */
	bool stuck = session_pending(s) || s->closing;
	if (!s->closing && session_idle_expired(s))
		return false; /* a keepalive (WebSocket ping) queued: it stays */
	if (stuck && drain_end && session_pending(s))
		cut_by_drain(s); /* its drain time ran out with output unsent */
	return stuck;
}
