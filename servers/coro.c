/* coro.c - the `coro` model: generators as an alternative to threads (Python
 * Cookbook, 3rd ed., 12.12), in C, on the loop runtime (common/loop/).
 *
 * Each loop runs a scheduler (coro/sched.c) of stackless coroutine tasks: a
 * listener task per listener that yields "wait accept", one task per
 * connection, and one per fd the runtime watches (the stop signal, the
 * mailbox wake-up). A connection task awaits two sub-coroutines, recv_some()
 * and send_all(), the way a Python task does `yield from`; each yields "wait
 * readable / writable" up to the scheduler (each wait is activity, and
 * re-arms the connection's deadline on the runtime's heap: loop.h,
 * deadlines; an expiry comes back as coro_expired's CR_KILL, or through
 * coro_write), which keeps the ready queue and the read/write waiting sets and
 * sleeps in select() (or poll/epoll, --poller) only when nothing is ready.
 * --threads N runs N such loops, each on its own SO_REUSEPORT listener. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "coro/coro.h"
#include "poller.h"
#include "coro/sched.h"
#include "log.h"
#include "loop.h"
#include "model.h"
#include "server.h"
#include "session.h"

#define RBUF_SIZE (64 * 1024) /* one read buffer per loop, none per connection */
#define ACCEPT_BATCH 64       /* then let the others run */

enum { KIND_CONN, KIND_LISTEN, KIND_WATCH };

struct coro_loop {
	struct loop l; /* first: the runtime's part */
	struct sched sch;
	bool sch_ok;
	char *rbuf;
};

static struct coro_loop *of(struct loop *l) { return (struct coro_loop *)l; }
static struct coro_loop *sched_loop(struct sched *sch) { return sch->data; }

/* ---- connection task ---- */

/* Write what the session has until it is all out or the socket is full:
 * 1 = blocked with more to write, 0 = all out, -1 = socket error (counted). */
static int flush(struct sched *sch, struct task *t)
{
	bool wrote = false;
	size_t before = session_pending(t->data);
	int rc = session_send(t->data, task_fd(t), &wrote);
	if (wrote)
		loop_wrote(&sched_loop(sch)->l, &t->lc, t->data, before); /* output moved: the runtime's cue for near holds */
	return rc;
}

/* One read into the loop's buffer, handed to the session at once; what it
 * produced is written by the loop's write pass (the connection is listed).
 * 0, or -1 on a socket error (counted). */
static int read_once(struct coro_loop *c, struct task *t)
{
	struct session *s = t->data;
	ssize_t r = recv(task_fd(t), c->rbuf, RBUF_SIZE, 0);
	if (r > 0) {
		loop_input(&c->l, &t->lc, s, c->rbuf, (size_t)r);
	} else if (r == 0) {
		session_eof(s);
	} else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
		session_reset(s);
		return -1;
	}
	return 0;
}

/* Yield req: the connection is active now (a wait counts from its start,
 * as it always did here), and the runtime re-arms its deadline by the
 * policy (loop.h, deadlines: a later one moves lazily). */
static int conn_wait(struct sched *sch, struct task *t, int req)
{
	struct loop *l = &sched_loop(sch)->l;
	loop_conn_active(l, &t->lc);
	loop_conn_deadline(l, &t->lc, t->data);
	return req;
}

/* Did the wait end the connection (the runtime's deadline or its retry of a
 * hold found it expired and said close: CR_KILL, coro_expired)? An expiry
 * that leaves it open to send a last reply comes through coro_write. */
static bool conn_ended(struct sched *sch, struct task *t)
{
	(void)sch;
	return t->ev & CR_KILL;
}

/* Sub-coroutine: wait until the socket has bytes (or, while output is
 * blocked, room; or mail), then read once. 0, or -1: the connection ends. */
static int recv_some(struct sched *sch, struct task *t, int blocked)
{
	struct coro_loop *c = sched_loop(sch);
	CR_BEGIN(&t->sub);
	CR_YIELD(&t->sub, conn_wait(sch, t, CR_READ | (blocked ? CR_WRITE : 0)));
	if (conn_ended(sch, t))
		CR_RETURN(&t->sub, -1);
	if ((t->ev & CR_READ) && read_once(c, t) < 0)
		CR_RETURN(&t->sub, -1);
	CR_END(&t->sub);
}

/* Sub-coroutine: the socket is full and reading is paused (back-pressure or
 * closing): write as room appears until the output is out or reading is
 * wanted again. 0, or -1: the connection ends. */
static int send_all(struct sched *sch, struct task *t)
{
	int blocked;
	CR_BEGIN(&t->sub);
	do {
		CR_YIELD(&t->sub, conn_wait(sch, t, CR_WRITE));
		if (conn_ended(sch, t))
			CR_RETURN(&t->sub, -1);
		blocked = flush(sch, t);
		if (blocked < 0)
			CR_RETURN(&t->sub, -1);
	} while (blocked && !session_want_read(t->data));
	CR_END(&t->sub);
}

/* The connection task: answer what arrives until the session is done. A
 * held publisher (session.h, holds) is the runtime's to retry (loop.h,
 * holds): it waits, for nothing or for room, until the write pass pokes it;
 * its deadline stays as its last wait armed it (the retry and the runtime's
 * deadline run judge it: loop.h, deadlines). */
static int conn_run(struct sched *sch, struct task *t)
{
	struct session *s = t->data;
	int rc = 0, blocked = 0;
	bool listed;
	CR_BEGIN(&t->line);
	for (;;) {
		/* Input or mail may have produced output. While the connection is
		 * listed, writing it is the loop's write pass's (coro_write), in
		 * the runtime's order; meanwhile it waits as it did (for room too,
		 * if it was blocked), and the pass pokes it unless that wait is
		 * still the one it wants. */
		listed = loop_listed(&t->lc);
		blocked = listed ? (t->reg & LOOP_POLL_OUT) != 0 : flush(sch, t);
		if (blocked < 0 || session_done(s))
			break;
		if (session_want_read(s)) {
			CR_AWAIT(&t->line, rc, recv_some(sch, t, blocked));
		} else if (listed) {
			CR_YIELD(&t->line, CR_SLEEP); /* until the write pass pokes it */
			rc = conn_ended(sch, t) ? -1 : 0;
		} else if (session_held(s)) {
			loop_hold(&sched_loop(sch)->l, &t->lc);
			CR_YIELD(&t->line, blocked ? CR_WRITE : CR_SLEEP); /* room, or the retry (or mail) */
			rc = conn_ended(sch, t) ? -1 : 0;
		} else if (blocked) {
			CR_AWAIT(&t->line, rc, send_all(sch, t));
		} else {
			break; /* nothing to read and nothing that can be sent: it cannot finish */
		}
		if (rc < 0)
			break;
	}
	CR_END(&t->line);
}

static void conn_fini(struct sched *sch, struct task *t)
{
	loop_unlist(&sched_loop(sch)->l, &t->lc);
	loop_close(&sched_loop(sch)->l, t->data, task_fd(t));
}

/* The runtime admitted a connection (loop_accepted): its task. */
static bool coro_open(struct loop *l, struct session *s, int fd)
{
	/* Its id on the write pass's list is its fd: room for it first. */
	struct task *t = loop_conns_reserve(l, (uint32_t)fd + 1) < 0 ? NULL : sched_spawn(&of(l)->sch, KIND_CONN, fd, s);
	if (!t)
		return false;
	loop_conn_start(l, &t->lc);
	s->sub.loop_data = t;
	return true;
}

/* ---- listener task (data: the runtime's struct loop_listener) ---- */

static int listener_index(struct coro_loop *c, struct task *t) { return (int)((struct loop_listener *)t->data - c->l.lis); }

/* Stateless: accept a batch, then wait for the next connection; while the
 * runtime's back-off pauses the listener, sleep until it pokes (coro_accept). */
static int listen_run(struct sched *sch, struct task *t)
{
	struct coro_loop *c = sched_loop(sch);
	int li = listener_index(c, t);
	if (c->l.stopping)
		return CR_DONE;
	loop_accept_some(&c->l, li, ACCEPT_BATCH);
	return loop_accepting(&c->l, li) ? CR_ACCEPT : CR_SLEEP;
}

static void listen_fini(struct sched *sch, struct task *t) { loop_listener_close(&sched_loop(sch)->l, listener_index(sched_loop(sch), t)); }

/* ---- watch task: a non-session fd of the runtime's (struct loop_watch) ---- */

static int watch_req(const struct loop_watch *w)
{
	return ((w->mask & LOOP_POLL_IN) ? CR_READ : 0) | ((w->mask & LOOP_POLL_OUT) ? CR_WRITE : 0);
}

/* Stateless: each resume with readiness calls fn, then waits for what the
 * watch asks now (fn may have changed it, or moved the watch to another
 * task: coro_rewatch). */
static int watch_run(struct sched *sch, struct task *t)
{
	struct loop_watch *w = t->data;
	int got = ((t->ev & CR_READ) ? LOOP_POLL_IN : 0) | ((t->ev & CR_WRITE) ? LOOP_POLL_OUT : 0);
	if (got) {
		w->got = got;
		if (!w->fn(&sched_loop(sch)->l, w)) {
			if (w->model == t)
				w->model = NULL;
			return CR_DONE;
		}
		if (w->model != t)
			return CR_DONE; /* dropped by a rewatch inside fn (sched_drop: freed by step) */
	}
	return watch_req(w);
}

static void nothing_fini(struct sched *sch, struct task *t) { (void)sch, (void)t; }

static const struct task_kind kinds[] = {
	[KIND_CONN] = {conn_run, conn_fini},
	[KIND_LISTEN] = {listen_run, listen_fini},
	[KIND_WATCH] = {watch_run, nothing_fini},
};

/* ---- the runtime's hooks ---- */

static void coro_before_sleep(struct sched *sch) { loop_before_sleep(&sched_loop(sch)->l); }
static int coro_sleep_cap(struct sched *sch, int ms) { return loop_timeout(&sched_loop(sch)->l, ms); }

/* After each wait (its readiness handed to the tasks, none run yet): the
 * turn's clock, then the deadlines and alarms due. */
static void coro_after_wait(struct sched *sch)
{
	struct loop *l = &sched_loop(sch)->l;
	loop_turn(l);
	loop_run_due(l);
}
static bool coro_serving(struct sched *sch) { return loop_serving(&sched_loop(sch)->l); }

static int coro_setup(struct loop *l)
{
	struct coro_loop *c = of(l);
	const struct loop_poller_ops *ops = loop_poller_find(l->srv->cfg->poller);
	int rc = sched_init(&c->sch, ops, kinds, c);
	if (rc < 0)
		return rc;
	c->sch_ok = true;
	c->sch.before_sleep = coro_before_sleep;
	c->sch.sleep_cap = coro_sleep_cap;
	c->sch.after_wait = coro_after_wait;
	c->sch.serving = coro_serving;
	/* select() cannot watch an fd past FD_SETSIZE, nor lc.id hold one past
	 * LOOP_CONN_ID_MAX: the runtime refuses those (loop_accepted). */
	l->fd_limit = ops->fd_limit <= (int)LOOP_CONN_ID_MAX ? ops->fd_limit : (int)LOOP_CONN_ID_MAX + 1;
	c->rbuf = malloc(RBUF_SIZE);
	if (!c->rbuf)
		return -ENOMEM;
	for (int i = 0; i < l->nlis; i++) {
		if (l->lis[i].fd >= ops->fd_limit)
			return -EMFILE;
		if (!sched_spawn(&c->sch, KIND_LISTEN, l->lis[i].fd, &l->lis[i]))
			return -ENOMEM;
	}
	return 0;
}

/* One task per watched fd; a new fd (or none) drops the old task at once. */
static int coro_rewatch(struct loop *l, struct loop_watch *w)
{
	struct coro_loop *c = of(l);
	struct task *t = w->model;
	if (t && (task_fd(t) != w->fd || !w->mask || w->fd < 0)) {
		sched_drop(&c->sch, t);
		w->model = t = NULL;
	}
	if (w->fd < 0 || !w->mask)
		return 0;
	if (t)
		return sched_rewait(&c->sch, t, watch_req(w));
	if (w->fd >= c->sch.ops->fd_limit)
		return -EMFILE;
	t = sched_spawn(&c->sch, KIND_WATCH, w->fd, w);
	if (!t)
		return -ENOMEM;
	w->model = t;
	return 0;
}

static int coro_serve(struct loop *l) { return sched_run(&of(l)->sch); }

/* The teardown walk reached a connection whose task outlived the scheduler's
 * run: drop the task (not its fini: the runtime closes the connection). */
static struct session *coro_release(struct loop *l, struct loop_conn *lc, int *fd)
{
	struct task *t = (struct task *)lc;
	struct session *s = t->data;
	*fd = task_fd(t);
	sched_drop(&of(l)->sch, t);
	return s;
}

static void coro_teardown(struct loop *l)
{
	struct coro_loop *c = of(l);
	if (c->sch_ok)
		sched_fini(&c->sch); /* closes what is left: listeners */
	free(c->rbuf);
}

static struct loop_conn *coro_conn(struct loop *l, uint32_t id)
{
	struct sched *sch = &of(l)->sch;
	struct task *t = id < (uint32_t)sch->fds_cap ? sch->fds[id] : NULL;
	return t && t->kind == KIND_CONN ? &t->lc : NULL;
}

static struct session *coro_session(struct loop *l, struct loop_conn *lc)
{
	(void)l;
	return ((struct task *)lc)->data;
}

/* The runtime's deadline, or its retry of a hold, found the connection
 * expired: its task ends (conn_ended) when it next runs; the write pass,
 * which follows, pokes it. */
static void coro_expired(struct loop *l, struct loop_conn *lc)
{
	sched_poke(&of(l)->sch, (struct task *)lc, CR_KILL);
}

/* The write pass reached this connection (in the runtime's order): write
 * now. Its task runs only when it must decide something: it closes, stops
 * reading, or waits for the wrong thing (room it no longer needs, or not
 * for the room it now does). */
static void coro_write(struct loop *l, struct loop_conn *lc)
{
	struct coro_loop *c = of(l);
	struct task *t = (struct task *)lc;
	struct session *s = t->data;
	if (t->ev & CR_KILL)
		return; /* coro_expired: it ends, nothing more is sent */
	bool wrote = false;
	size_t before = session_pending(s);
	int blocked = session_send(s, task_fd(t), &wrote);
	if (wrote)
		loop_wrote(l, lc, s, before);
	if (blocked >= 0 && t->wait == (CR_READ | (blocked ? CR_WRITE : 0)) && session_want_read(s) && !session_done(s)) {
		if (wrote) /* output is activity: its wait's deadline counts from now */
			loop_conn_active(l, lc);
		/* Also when nothing went out: what was queued may have moved its
		 * deadline sooner (a delivery that leaves a subscriber stuck over
		 * --outbox-soft gives it an idle limit again), and its task does
		 * not run to arm it. */
		loop_conn_deadline(l, lc, s);
		return;
	}
	sched_poke(&c->sch, t, CR_POKE);
}

/* The runtime's back-off: the listener's task sleeps (it yields CR_SLEEP
 * itself when it is running) or accepts again. */
static void coro_accept(struct loop *l, int li, bool on)
{
	struct sched *sch = &of(l)->sch;
	int fd = l->lis[li].fd;
	struct task *t = fd >= 0 && fd < sch->fds_cap ? sch->fds[fd] : NULL; /* -1: closed, its task gone */
	if (!t || t->kind != KIND_LISTEN)
		return;
	/* A rewait the poller refused (ENOMEM) leaves the task waiting to accept:
	 * run it now instead, so that it yields CR_SLEEP itself and the
	 * scheduler's own change of interest judges it (logged, and the listener
	 * closed if the poller refuses again) rather than at its next readiness. */
	if (on || sched_rewait(sch, t, CR_SLEEP) < 0)
		sched_poke(sch, t, CR_POKE);
}

static void coro_stop(struct loop *l)
{
	for (int li = 0; li < l->nlis; li++)
		coro_accept(l, li, true); /* the listener tasks see l->stopping and end */
}

/* The runtime's stop walk (coro_conn's connections). */
static void coro_stop_conn(struct loop *l, struct loop_conn *lc)
{
	struct task *t = (struct task *)lc;
	session_stop(t->data);
	sched_poke(&of(l)->sch, t, CR_POKE); /* flush what stop queued; wait again under the drain's deadlines */
}

static const struct loop_model coro_loop = {
	.name = "coro",
	.size = sizeof(struct coro_loop),
	.deadline_off = offsetof(struct task, dl),
	.setup = coro_setup,
	.watch = coro_rewatch,
	.rewatch = coro_rewatch,
	.serve = coro_serve,
	.release = coro_release,
	.teardown = coro_teardown,
	.open = coro_open,
	.conn = coro_conn,
	.session = coro_session,
	.expired = coro_expired,
	.write = coro_write,
	.accept = coro_accept,
	.stop = coro_stop,
	.stop_conn = coro_stop_conn,
};

static int run(struct server *srv)
{
	const struct config *cfg = srv->cfg;
	const struct loop_poller_ops *ops = loop_poller_find(cfg->poller);
	if (!ops) {
		log_error("coro: unknown --poller '%s'", cfg->poller);
		return 2;
	}
	log_info("coro: %d scheduler%s, poller %s", cfg->threads, cfg->threads > 1 ? "s" : "", ops->name);
	if (ops->fd_limit < cfg->max_conns) /* select(): FD_SETSIZE, whatever the descriptor limit */
		log_warn("coro: --poller %s watches descriptors below %d only: about %d connections at most, not "
		         "--max-conns %d; --poller epoll has no such ceiling", ops->name, ops->fd_limit, ops->fd_limit - 4,
		         cfg->max_conns);
	return loop_group_run(srv, &coro_loop, cfg->threads);
}

const struct model model_coro = {
	.name = "coro",
	.recipe = "stackless coroutines on a scheduler with ready queue and read/write waiting sets over select|poll|epoll",
	.run = run,
};
