/* coro.c - the `coro` model: generators as an alternative to threads (Python
 * Cookbook, 3rd ed., 12.12), in C.
 *
 * One thread runs a scheduler (coro/sched.c) of stackless coroutine tasks: a
 * listener task that yields "wait accept", one task per connection, a task
 * for the mailbox wake-up and one for the stop signal. A connection task
 * awaits two sub-coroutines, recv_some() and send_all(), the way a Python
 * task does `yield from`; each yields "wait readable / writable" (with the
 * session's idle deadline) up to the scheduler, which keeps the ready queue
 * and the read/write waiting sets and sleeps in select() (or poll/epoll,
 * --poller) only when nothing is ready. --threads N runs N such schedulers,
 * each on its own SO_REUSEPORT listener. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "coro/coro.h"
#include "coro/poller.h"
#include "coro/sched.h"
#include "daemon.h"
#include "log.h"
#include "model.h"
#include "owner.h"
#include "server.h"
#include "session.h"
#include "stats.h"

#define RBUF_SIZE (64 * 1024) /* one read buffer per scheduler, none per connection */
#define ACCEPT_BATCH 64       /* then let the others run */

enum { KIND_CONN, KIND_LISTEN, KIND_WAKE, KIND_STOP };

struct listener {
	int fd;
	bool tls;
	bool shared; /* srv->listen_fd / tls_listen_fd: also forget it there */
};

struct startup {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int running; /* scheduler threads that reached their loop */
};

/* One scheduler and what it owns. */
struct loop {
	struct sched sch;
	struct server *srv;
	struct owner owner;
	bool owner_ok;
	int efd; /* eventfd: owner_post() from other threads wakes us here */
	struct listener lis[2];
	int nlis;
	bool stopping;
	char *rbuf;
	bool published;         /* the input read_once() just handed over published */
	unsigned long posts;    /* owner_posts_here() at the last drain */
	unsigned long drained;  /* sessions mail_ready() made ready, ever */
	struct startup *startup;
	pthread_t thr;
	int rc;
};

/* ---- connection task ---- */

/* Write what the session has until it is all out or the socket is full:
 * 1 = blocked with more to write, 0 = all out, -1 = socket error (counted). */
static int flush(struct task *t) { return session_send(t->data, t->fd, NULL); }

/* One read into the scheduler's buffer, handed to the session at once.
 * 0, or -1 on a socket error (counted). */
static int read_once(struct loop *l, struct task *t)
{
	struct session *s = t->data;
	ssize_t r = recv(t->fd, l->rbuf, RBUF_SIZE, 0);
	if (r > 0) {
		unsigned long posts = owner_posts_here();
		session_input(s, l->rbuf, (size_t)r);
		l->published = owner_posts_here() != posts;
	} else if (r == 0) {
		session_eof(s);
	} else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
		session_reset(s);
		return -1;
	}
	return 0;
}

/* Yield req, bounded by the session's current inactivity limit and by its
 * phase's total deadline, whichever comes first. */
static int conn_wait(struct sched *sch, struct task *t, int req)
{
	int ms = session_idle_limit_ms(t->data);
	if (ms > 0)
		sched_deadline(sch, t, (uint32_t)ms);
	long long at = session_deadline_ms(t->data);
	if (at)
		sched_deadline_at(sch, t, at);
	return req;
}

/* Did the wait end the connection (killed, or past a deadline)? A total
 * deadline may leave it open to send a last reply. */
static bool conn_ended(struct loop *l, struct task *t)
{
	struct session *s = t->data;
	if (t->ev & CR_KILL)
		return true;
	if (!(t->ev & CR_TIMEOUT))
		return false;
	long long at = session_deadline_ms(s);
	if (at && now_ms() >= at)
		return session_deadline_expired(s);
	if (l->stopping && session_pending(s))
		stat_inc(STAT_drain_forced); /* its drain time ran out with output unsent */
	session_idle_expired(s);
	return true;
}

/* Sub-coroutine: wait until the socket has bytes (or, while output is
 * blocked, room; or mail), then read once. 0, or -1: the connection ends. */
static int recv_some(struct sched *sch, struct task *t, int blocked)
{
	struct loop *l = sch->data;
	CR_BEGIN(&t->sub);
	CR_YIELD(&t->sub, conn_wait(sch, t, CR_READ | (blocked ? CR_WRITE : 0)));
	if (conn_ended(l, t))
		CR_RETURN(&t->sub, -1);
	l->published = false; /* read_once() sets it; conn_run() reads it in this same resume */
	if ((t->ev & CR_READ) && read_once(l, t) < 0)
		CR_RETURN(&t->sub, -1);
	CR_END(&t->sub);
}

/* Sub-coroutine: the socket is full and reading is paused (back-pressure or
 * closing): write as room appears until the output is out or reading is
 * wanted again. 0, or -1: the connection ends. */
static int send_all(struct sched *sch, struct task *t)
{
	struct loop *l = sch->data;
	int blocked;
	CR_BEGIN(&t->sub);
	do {
		CR_YIELD(&t->sub, conn_wait(sch, t, CR_WRITE));
		if (conn_ended(l, t))
			CR_RETURN(&t->sub, -1);
		blocked = flush(t);
		if (blocked < 0)
			CR_RETURN(&t->sub, -1);
	} while (blocked && !session_want_read(t->data));
	CR_END(&t->sub);
}

static bool drain_mail(struct loop *l);

/* The connection task: answer what arrives until the session is done. */
static int conn_run(struct sched *sch, struct task *t)
{
	struct loop *l = sch->data;
	struct session *s = t->data;
	int rc = 0, blocked = 0;
	CR_BEGIN(&t->line);
	while (!(t->ev & CR_KILL)) {
		blocked = flush(t); /* input or mail may have produced output */
		if (blocked < 0 || session_done(s))
			break;
		if (session_want_read(s)) {
			CR_AWAIT(&t->line, rc, recv_some(sch, t, blocked));
			/* It published: deliver to this loop's subscribers now and let
			 * them write before this connection's own reply goes out (the
			 * order Redis writes its clients in). The publisher then sees
			 * its replies only after the deliveries left, so its next batch
			 * is larger and each subscriber's write carries more messages. */
			if (rc >= 0 && l->published && drain_mail(l))
				CR_YIELD(&t->line, CR_AGAIN);
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
	struct loop *l = sch->data;
	session_free(t->data);
	close(t->fd);
	server_conn_closed(l->srv);
	sch->live--;
}

static void conn_start(struct loop *l, int fd, bool tls)
{
	struct server *srv = l->srv;
	if (fd >= l->sch.ops->fd_limit) {
		server_refuse(srv, fd, REFUSE_FD_LIMIT); /* select() cannot watch it */
		return;
	}
	if (!server_conn_admit(srv)) {
		server_refuse(srv, fd, REFUSE_MAX_CONNS);
		return;
	}
	struct session *s = session_new(srv, &l->owner, tls);
	struct task *t = s ? sched_spawn(&l->sch, KIND_CONN, fd, s) : NULL;
	if (!t) {
		stat_inc(STAT_oom_errors);
		session_free(s);
		close(fd);
		server_conn_closed(srv);
		return;
	}
	s->model_data = t;
	l->sch.live++;
}

/* ---- listener task ---- */

/* The listener being drained, for the accepted sockets' start. */
struct accepting {
	struct loop *l;
	bool tls;
};

static void take_accepted(void *arg, int fd)
{
	struct accepting *a = arg;
	conn_start(a->l, fd, a->tls);
}

/* Accept what is queued (a batch at most). 0, or -errno when accepting
 * must pause (EMFILE, ENFILE, ...). */
static int accept_some(struct loop *l, const struct listener *li)
{
	return server_accept_some(li->fd, true, ACCEPT_BATCH, take_accepted, &(struct accepting){l, li->tls});
}

static int listen_run(struct sched *sch, struct task *t)
{
	struct loop *l = sch->data;
	CR_BEGIN(&t->line);
	while (!l->stopping) {
		if (accept_some(l, t->data) < 0) {
			/* Out of descriptors: the listener stays readable, so stop
			 * watching it for a while instead of spinning. */
			sched_deadline(sch, t, SERVER_ACCEPT_BACKOFF_MS);
			CR_YIELD(&t->line, CR_SLEEP);
		} else {
			CR_YIELD(&t->line, CR_ACCEPT);
		}
	}
	CR_END(&t->line);
}

static void listen_fini(struct sched *sch, struct task *t)
{
	struct loop *l = sch->data;
	struct listener *li = t->data;
	close(li->fd);
	if (li->shared)
		*(li->tls ? &l->srv->tls_listen_fd : &l->srv->listen_fd) = -1;
	li->fd = -1;
	sch->live--;
}

/* ---- mailbox wake-up task ---- */

static void loop_wake(struct owner *o)
{
	struct loop *l = o->model_data;
	uint64_t one = 1;
	ssize_t w = write(l->efd, &one, sizeof(one)); /* an overflowing counter still wakes */
	(void)w;
}

static void mail_ready(struct session *s, void *arg)
{
	struct loop *l = arg;
	l->drained++;
	sched_poke(&l->sch, s->model_data, CR_POKE); /* it has output now */
}

/* Move mail queued for this loop's sessions into their outboxes and make
 * them ready; true when any was. */
static bool drain_mail(struct loop *l)
{
	unsigned long before = l->drained;
	l->posts = owner_posts_here();
	owner_drain(&l->owner, mail_ready, l);
	return l->drained != before;
}

/* Before the scheduler sleeps: deliveries this loop posted to its own
 * sessions (owner_bind) since the last drain - from input that resumed as
 * output drained, say - are made ready now, not after a wake-up. */
static void loop_before_sleep(struct sched *sch)
{
	struct loop *l = sch->data;
	if (owner_posts_here() != l->posts)
		drain_mail(l);
}

/* The scheduler's own thread: bind the mailbox, then run. */
static int loop_serve(struct loop *l)
{
	owner_bind(&l->owner);
	l->posts = owner_posts_here();
	l->sch.before_sleep = loop_before_sleep;
	return sched_run(&l->sch);
}

static int wake_run(struct sched *sch, struct task *t)
{
	struct loop *l = sch->data;
	uint64_t v;
	CR_BEGIN(&t->line);
	for (;;) {
		CR_YIELD(&t->line, CR_READ);
		ssize_t r = read(t->fd, &v, sizeof(v));
		(void)r;
		owner_drain(&l->owner, mail_ready, l);
	}
	CR_END(&t->line);
}

static void nothing_fini(struct sched *sch, struct task *t) { (void)sch, (void)t; }

/* ---- stop task ---- */

static void poke_listener(struct sched *sch, struct task *t, void *arg)
{
	(void)arg;
	sched_poke(sch, t, CR_POKE);
}

static void stop_conn(struct sched *sch, struct task *t, void *arg)
{
	(void)arg;
	session_stop(t->data);
	sched_poke(sch, t, CR_POKE); /* flush what stop queued; re-arm with the drain limit */
}

static void kill_conn(struct sched *sch, struct task *t, void *arg)
{
	(void)arg;
	stat_inc(STAT_drain_forced);
	sched_poke(sch, t, CR_KILL);
}

/* Waits for the stop signal, then drains: listeners close, every session is
 * told, and whatever is still open at --drain-timeout is closed. */
static int stop_run(struct sched *sch, struct task *t)
{
	struct loop *l = sch->data;
	CR_BEGIN(&t->line);
	CR_YIELD(&t->line, CR_READ);
	l->stopping = true;
	sched_each(sch, KIND_LISTEN, poke_listener, NULL);
	sched_each(sch, KIND_CONN, stop_conn, NULL);
	sch->live--; /* from now on only connections keep the loop running */
	sched_deadline(sch, t, (uint32_t)l->srv->cfg->drain_timeout_ms);
	CR_YIELD(&t->line, CR_SLEEP);
	sched_each(sch, KIND_CONN, kill_conn, NULL);
	CR_END(&t->line);
}

static const struct task_kind kinds[] = {
	[KIND_CONN] = {conn_run, conn_fini},
	[KIND_LISTEN] = {listen_run, listen_fini},
	[KIND_WAKE] = {wake_run, nothing_fini},
	[KIND_STOP] = {stop_run, nothing_fini},
};

/* ---- schedulers and threads ---- */

static int add_listener(struct loop *l, int fd, bool tls, bool shared)
{
	if (fd < 0)
		return fd;
	struct listener *li = &l->lis[l->nlis++];
	*li = (struct listener){fd, tls, shared};
	if (fd >= l->sch.ops->fd_limit || !sched_spawn(&l->sch, KIND_LISTEN, fd, li)) {
		li->fd = -1;
		if (!shared)
			close(fd);
		return -EMFILE;
	}
	l->sch.live++;
	return 0;
}

/* Everything one scheduler needs; on failure loop_teardown() undoes it. */
static int loop_setup(struct loop *l, struct server *srv, const struct poller_ops *ops, int index)
{
	l->srv = srv;
	l->efd = -1;
	int rc = sched_init(&l->sch, ops, kinds, l);
	if (rc < 0)
		return rc;
	l->rbuf = malloc(RBUF_SIZE);
	l->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (!l->rbuf || l->efd < 0 || l->efd >= ops->fd_limit)
		return -ENOMEM;
	owner_init(&l->owner, loop_wake, l);
	l->owner_ok = true;
	int stop_fd = server_stop_fd(srv);
	if (stop_fd >= ops->fd_limit || !sched_spawn(&l->sch, KIND_STOP, stop_fd, NULL) ||
	    !sched_spawn(&l->sch, KIND_WAKE, l->efd, NULL))
		return -ENOMEM;
	l->sch.live++; /* the stop task, until the stop */
	rc = add_listener(l, index == 0 ? srv->listen_fd : server_listen_again(srv, false), false, index == 0);
	if (rc == 0 && srv->tls_listen_fd >= 0)
		rc = add_listener(l, index == 0 ? srv->tls_listen_fd : server_listen_again(srv, true), true, index == 0);
	return rc;
}

static void loop_teardown(struct loop *l)
{
	if (!l->srv)
		return;
	sched_fini(&l->sch); /* closes what is left: listeners, connections */
	if (l->owner_ok)
		owner_destroy(&l->owner);
	if (l->efd >= 0)
		close(l->efd);
	free(l->rbuf);
}

static void *loop_thread(void *arg)
{
	struct loop *l = arg;
	pthread_mutex_lock(&l->startup->lock);
	l->startup->running++;
	pthread_cond_signal(&l->startup->cond);
	pthread_mutex_unlock(&l->startup->lock);
	l->rc = loop_serve(l);
	if (l->rc < 0)
		server_request_stop(l->srv); /* the others stop too */
	return NULL;
}

/* Start schedulers 1..n-1 on their threads and wait until they run.
 * Returns how many started. */
static int start_threads(struct loop *loops, int n, struct startup *st)
{
	int started = 0;
	for (int i = 1; i < n; i++) {
		loops[i].startup = st;
		int err = daemon_thread_create(&loops[i].thr, NULL, loop_thread, &loops[i]);
		if (err) {
			log_error("coro: cannot start scheduler thread %d: %s", i, strerror(err));
			break;
		}
		started++;
	}
	pthread_mutex_lock(&st->lock);
	while (st->running < started)
		pthread_cond_wait(&st->cond, &st->lock);
	pthread_mutex_unlock(&st->lock);
	return started;
}

static int run(struct server *srv)
{
	const struct config *cfg = srv->cfg;
	const struct poller_ops *ops = poller_find(cfg->poller);
	if (!ops) {
		log_error("coro: unknown --poller '%s'", cfg->poller);
		return 2;
	}
	int n = cfg->threads, made = 0, rc = 0;
	struct loop *loops = calloc((size_t)n, sizeof(*loops));
	if (!loops)
		return 1;
	for (; made < n && rc == 0; made++) {
		rc = loop_setup(&loops[made], srv, ops, made);
		if (rc < 0)
			log_error("coro: cannot set up scheduler %d: %s", made, strerror(-rc));
	}
	if (rc == 0) {
		struct startup st = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
		int started = start_threads(loops, n, &st);
		if (started == n - 1) {
			log_info("coro: %d scheduler%s, poller %s", n, n > 1 ? "s" : "", ops->name);
			server_ready(srv, "coro");
		} else {
			rc = -EAGAIN;
			server_request_stop(srv);
		}
		if (loop_serve(&loops[0]) < 0) {
			rc = -EIO;
			server_request_stop(srv);
		}
		for (int i = 1; i <= started; i++) {
			pthread_join(loops[i].thr, NULL);
			if (loops[i].rc < 0)
				rc = loops[i].rc;
		}
		pthread_cond_destroy(&st.cond);
		pthread_mutex_destroy(&st.lock);
	}
	for (int i = 0; i < made; i++)
		loop_teardown(&loops[i]);
	free(loops);
	return rc < 0 ? 1 : 0;
}

const struct model model_coro = {
	.name = "coro",
	.recipe = "stackless coroutines on a scheduler with ready queue and read/write waiting sets over select|poll|epoll",
	.run = run,
};
