/* conn.c - admitting and closing a loop's connections, and the one deadline
 * policy every event model applies to them. */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "server.h"
#include "session.h"
#include "stats.h"

struct session *loop_admit(struct loop *l, int fd, bool tls)
{
	if (l->stopping) {
		close(fd); /* accepted between the stop and closing the listener: not ours to serve */
		return NULL;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (!server_conn_admit(l->srv)) {
		server_refuse(l->srv, fd, REFUSE_MAX_CONNS);
		return NULL;
	}
	struct session *s = session_new(l->srv, &l->owner, tls);
	if (!s) {
		stat_inc(STAT_oom_errors);
		log_warn("%s: no memory for a new connection; closing it", l->m->name);
		close(fd);
		server_conn_closed(l->srv);
		return NULL;
	}
	l->live++;
	return s;
}

void loop_close(struct loop *l, struct session *s, int fd)
{
	session_free(s);
	close(fd);
	server_conn_closed(l->srv);
	l->live--;
}

static long long earliest(long long a, long long b) { return !a || (b && b < a) ? b : a; }

static long long drain_deadline(const struct loop *l)
{
	return l->stopping ? l->stop_ms + l->srv->cfg->drain_timeout_ms : 0;
}

/* Three clocks bound a connection: its phase's total deadline (TLS
 * handshake, request head, a last reply's linger), its inactivity limit (idle;
 * while stopping, the drain's quietness), and, once stopping, the drain
 * deadline. */
long long loop_due(const struct loop *l, const struct session *s, long long last_ms)
{
	int limit = session_idle_limit_ms(s);
	long long due = limit > 0 ? last_ms + limit : 0;
	due = earliest(due, session_deadline_ms(s));
	return earliest(due, drain_deadline(l));
}

bool loop_expire(struct loop *l, struct session *s, long long last_ms, long long now)
{
	long long drain = drain_deadline(l);
	if (drain && now >= drain) {
		stat_inc(STAT_drain_forced);
		return true;
	}
	long long at = session_deadline_ms(s);
	if (at && now >= at)
		return session_deadline_expired(s); /* it may keep it open to send a reply */
	int limit = session_idle_limit_ms(s);
	if (limit <= 0 || (last_ms != LOOP_WAITED_OUT && now - last_ms < limit))
		return false;
	/* Idle. With output stuck (the peer is not reading), or already told
	 * and still here, it can never finish politely: close now. Else it
	 * closes once what the expiry queued is out. */
	if (session_pending(s) || s->closing) {
		if (l->stopping && session_pending(s))
			stat_inc(STAT_drain_forced); /* its drain time ran out with output unsent */
		return true;
	}
	session_idle_expired(s);
	return false;
}
