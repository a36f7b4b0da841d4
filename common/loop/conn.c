/* conn.c - a loop's connections: admitting them (the model's connection
 * made through m->open), walking them, closing them (also what is left at
 * teardown: loop_teardown), and the deadline policy (deadline.c) applied
 * with the loop's drain clock. */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "deadline.h"
#include "log.h"
#include "loop.h"
#include "server.h"
#include "session.h"
#include "stats.h"

/* Admit fd (--max-conns) and make its session; NULL when refused or out
 * of memory (fd closed and counted). */
static struct session *loop_admit(struct loop *l, int fd, bool tls)
{
	if (l->stopping) {
		close(fd); /* accepted between the stop and closing the listener: not ours to serve */
		return NULL;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	server_keepalive(l->srv, fd);
	if (!server_conn_admit(l->srv)) {
		server_refuse(l->srv, fd, REFUSE_MAX_CONNS);
		return NULL;
	}
	struct session *s = session_new(l->srv, &l->owner, tls);
	if (!s) {
		stat_inc(STAT_oom_errors);
		log_warn("%s: no memory for a new connection; closing it", l->m->name);
		close(fd);
		server_conn_closed(l->srv, CLOSE_ERROR);
		return NULL;
	}
	session_log_open(s, fd);
	l->live++;
	return s;
}

void loop_close(struct loop *l, struct session *s, int fd)
{
	enum close_reason why = session_close_reason(s);
	session_free(s);
	close(fd);
	server_conn_closed(l->srv, why);
	l->live--;
}

/* No memory for the model's connection after loop_admit: counted, closed. */
static void loop_unadmit(struct loop *l, struct session *s, int fd)
{
	stat_inc(STAT_oom_errors);
	loop_close(l, s, fd);
}

void loop_accepted(struct loop *l, int fd, bool tls)
{
	if (l->fd_limit && fd >= l->fd_limit) {
		server_refuse(l->srv, fd, REFUSE_FD_LIMIT); /* the model's poller cannot watch it (select) */
		return;
	}
	struct session *s = loop_admit(l, fd, tls);
	if (s && !l->m->open(l, s, fd))
		loop_unadmit(l, s, fd);
}

void loop_conns_each(struct loop *l, void (*fn)(struct loop *l, struct loop_conn *lc))
{
	/* Every id a model hands out is below pending_cap (loop_conns_reserve). */
	for (uint32_t id = 0; id < l->pending_cap; id++) {
		struct loop_conn *lc = l->m->conn(l, id);
		if (lc)
			fn(l, lc);
	}
}

void loop_conn_close(struct loop *l, struct loop_conn *lc)
{
	loop_unlist(l, lc);
	int fd = -1;
	struct session *s = l->m->release(l, lc, &fd);
	loop_close(l, s, fd);
}

void loop_teardown(struct loop *l)
{
	if (l->m->halt)
		l->m->halt(l); /* the kernel reads nothing of the model's any more */
	if (l->live)
		loop_conns_each(l, loop_conn_close); /* only after a fatal error */
	if (l->live)
		log_error("%s: loop %d: %u connection(s) not found at teardown", l->m->name, l->index, l->live);
	l->m->teardown(l);
	for (int i = 0; i < l->nlis; i++)
		if (l->lis[i].owned)
			loop_listener_close(l, i);
	loop_timers_fini(&l->alarms); /* after the listeners: their back-off alarms */
	loop_timers_fini(&l->deadlines); /* the connections' records are gone */
}

static long long drain_end(const struct loop *l)
{
	return l->stopping ? l->stop_ms + l->srv->cfg->drain_timeout_ms : 0;
}

long long loop_due(const struct loop *l, const struct session *s, long long last_ms)
{
	return deadline_due(s, last_ms, drain_end(l));
}

bool loop_expire(struct loop *l, struct session *s, long long last_ms, long long now)
{
	return deadline_expire(s, last_ms, now, drain_end(l));
}
