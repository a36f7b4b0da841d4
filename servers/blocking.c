/* blocking.c - one connection served on the calling thread until it closes,
 * and the acceptor loop; shared by the `threads` and `pool` models (see
 * blocking.h). Not a model of its own: each model decides which thread runs
 * blocking_serve() for which connection.
 *
 * The socket stays blocking, as in the recipe, but the thread sleeps in
 * poll() rather than in read(): it must also wake for chat mail, for the
 * stop and for its idle deadline. read/write then use MSG_DONTWAIT so that a
 * spurious wake-up can never block a thread past the drain. */
#include "blocking.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "deadline.h"
#include "log.h"
#include "server.h"
#include "session.h"
#include "stats.h"

#define RBUF_SIZE (64 * 1024)
#define ACCEPT_BATCH 64
#define JOIN_SLACK_MS 2000 /* past the drain end, before a late thread is reported */
#define REOPEN_SLICE_MS 100 /* the drain's wait looks at the log reopen this often */

void blocking_init(struct blocking *b, struct server *srv)
{
	b->srv = srv;
	atomic_init(&b->drain_end, 0);
}

long long blocking_drain_end(struct blocking *b)
{
	long long end = atomic_load(&b->drain_end);
	if (end)
		return end;
	long long mine = now_ms() + b->srv->cfg->drain_timeout_ms;
	/* The first thread to see the stop sets the clock for all. */
	if (atomic_compare_exchange_strong(&b->drain_end, &end, mine))
		return mine;
	return end;
}

/* ---- a serving thread's mailbox ---- */

static void worker_wake(struct owner *o)
{
	struct blocking_worker *w = o->model_data;
	uint64_t one = 1;
	ssize_t r = write(w->efd, &one, sizeof(one)); /* an eventfd never blocks a writer here */
	(void)r;
}

int blocking_worker_init(struct blocking_worker *w, struct blocking *b)
{
	*w = (struct blocking_worker){.b = b, .efd = -1};
	w->rbuf = malloc(RBUF_SIZE);
	if (!w->rbuf)
		return -ENOMEM;
	/* Only chat delivers mail; in echo mode a connection costs one fd, not two
	 * (poll() skips the -1 entry). */
	if (b->srv->cfg->mode == MODE_CHAT) {
		w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (w->efd < 0)
			return -errno;
	}
	owner_init(&w->owner, worker_wake, w);
	w->owner.limits = server_outbox_limits(b->srv);
	w->owner_ok = true;
	return 0;
}

void blocking_worker_fini(struct blocking_worker *w)
{
	if (w->owner_ok)
		owner_destroy(&w->owner);
	if (w->efd >= 0)
		close(w->efd);
	free(w->rbuf);
	w->owner_ok = false;
	w->efd = -1;
	w->rbuf = NULL;
}

/* ---- one connection ---- */

struct conn {
	struct blocking_worker *w;
	struct session *s;
	int fd;
	bool stopped;      /* session_stop() done */
	long long active;  /* last progress (read, write, mail), ms */
	long long drain_end;
};

/* Write what the session has until it is all out or the socket is full:
 * 1 = blocked with more to write, 0 = all out, -1 = socket error (reset). */
static int flush(struct conn *c)
{
	bool wrote = false;
	int rc = session_send(c->s, c->fd, &wrote);
	if (wrote)
		c->active = now_ms();
	return rc;
}

/* One read, handed to the session at once. 0, or -1 on a socket error. */
static int read_once(struct conn *c)
{
	ssize_t r = recv(c->fd, c->w->rbuf, RBUF_SIZE, MSG_DONTWAIT);
	if (r > 0) {
		session_input(c->s, c->w->rbuf, (size_t)r);
		c->active = now_ms();
	} else if (r == 0) {
		session_eof(c->s);
	} else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
		return -1;
	}
	return 0;
}

static void ignore_ready(struct subscriber *sub, void *arg)
{
	(void)sub, (void)arg; /* the serve loop flushes after every wake-up anyway */
}

static void take_mail(struct conn *c)
{
	uint64_t v;
	ssize_t r = read(c->w->efd, &v, sizeof(v)); /* before the drain, so no wake-up is lost */
	(void)r;
	owner_drain(&c->w->owner, ignore_ready, NULL);
	c->active = now_ms();
}

static void begin_drain(struct conn *c)
{
	c->stopped = true;
	c->drain_end = blocking_drain_end(c->w->b);
	session_stop(c->s);
}

/* The runtime's deadline policy (common/loop/deadline.h), with this
 * connection's clocks; LLONG_MAX = never. */
static long long deadline(const struct conn *c)
{
	long long due = deadline_due(c->s, c->active, c->stopped ? c->drain_end : 0);
	return due ? due : LLONG_MAX;
}

static int poll_timeout(long long end, long long now)
{
	if (end == LLONG_MAX)
		return -1;
	if (end <= now)
		return 0;
	return end - now > INT_MAX ? INT_MAX : (int)(end - now);
}

/* Past a deadline: true when it must close now (an expiry may instead
 * queue a last reply, flushed as usual). */
static bool expired(struct conn *c)
{
	long long now = now_ms();
	if (now < deadline(c))
		return false;
	if (deadline_expire(c->s, c->active, now, c->stopped ? c->drain_end : 0))
		return true;
	/* A held publisher's retry and a lingering session's next look count
	 * from this look, not from the last traffic: else poll() would not wait. */
	if (session_held(c->s) || session_lingering(c->s))
		c->active = now;
	return false;
}

/* The session.h contract, on one thread: answer until done. */
static void serve_loop(struct conn *c)
{
	struct server *srv = c->w->b->srv;
	for (;;) {
		int blocked = flush(c); /* input or mail may have produced output */
		if (blocked < 0)
			return;
		if (session_done(c->s))
			return;
		bool rd = session_want_read(c->s);
		if (!rd && !blocked && !session_held(c->s))
			return; /* nothing to read and nothing that can be sent: it cannot finish */
		struct pollfd pfd[3] = {
			{c->fd, (short)((rd ? POLLIN : 0) | (blocked ? POLLOUT : 0)), 0},
			{c->w->efd, POLLIN, 0}, /* -1 (skipped) outside chat mode */
			{c->stopped ? -1 : server_stop_fd(srv), POLLIN, 0}, /* readable forever once stopped */
		};
		if (poll(pfd, 3, poll_timeout(deadline(c), now_ms())) < 0) {
			if (errno == EINTR)
				continue;
			log_error("blocking: poll: %s", strerror(errno));
			return;
		}
		if (pfd[2].revents)
			begin_drain(c);
		if (pfd[1].revents & POLLIN)
			take_mail(c);
		if (rd && (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) && read_once(c) < 0) {
			session_reset(c->s);
			return;
		}
		/* Checked on every pass: a client that never pauses must still
		 * end at the drain's end. */
		if (expired(c))
			return;
	}
}

void blocking_serve(struct blocking_worker *w, int fd, bool tls)
{
	struct server *srv = w->b->srv;
	struct session *s = session_new(srv, &w->owner, tls);
	enum close_reason why = CLOSE_ERROR;
	if (s) {
		session_log_open(s, fd);
		struct conn c = {.w = w, .s = s, .fd = fd, .active = now_ms()};
		serve_loop(&c);
		why = session_close_reason(s);
		session_free(s);
	} else {
		stat_inc(STAT_oom_errors);
	}
	close(fd);
	server_conn_closed(srv, why);
}

/* ---- the acceptor ---- */

/* One listener's accepted sockets, on their way to the model's hand-off. */
struct handoff_to {
	const struct server *srv;
	blocking_handoff *handoff;
	void *arg;
	bool tls;
};

static void take_accepted(void *arg, int fd)
{
	struct handoff_to *h = arg;
	server_keepalive(h->srv, fd);
	h->handoff(h->arg, fd, h->tls);
}

static void close_listeners(struct server *srv)
{
	close(srv->listen_fd);
	srv->listen_fd = -1;
	if (srv->tls_listen_fd >= 0)
		close(srv->tls_listen_fd);
	srv->tls_listen_fd = -1;
}

int blocking_accept_loop(struct blocking *b, const char *model, blocking_handoff *handoff, void *arg)
{
	struct server *srv = b->srv;
	const int lfd[2] = {srv->listen_fd, srv->tls_listen_fd};
	long long resume = 0; /* accepting paused until then (out of descriptors) */
	int rc = 0;
	server_ready(srv, model);
	for (;;) {
		long long now = now_ms();
		bool paused = now < resume;
		struct pollfd pfd[4] = {
			{paused ? -1 : lfd[0], POLLIN, 0},
			{paused ? -1 : lfd[1], POLLIN, 0},
			{server_stop_fd(srv), POLLIN, 0},
			{daemon_reopen_fd(), POLLIN, 0}, /* SIGHUP/SIGUSR1: reopen --log-file here */
		};
		if (poll(pfd, 4, paused ? poll_timeout(resume, now) : -1) < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			log_error("%s: poll: %s", model, strerror(errno));
			server_request_stop(srv);
			break;
		}
		if (pfd[2].revents)
			break;
		if (pfd[3].revents)
			daemon_reopen_run();
		for (int i = 0; i < 2; i++)
			if ((pfd[i].revents & POLLIN) &&
			    server_accept_some(lfd[i], false, ACCEPT_BATCH, take_accepted,
			                       &(struct handoff_to){srv, handoff, arg, i == 1}) < 0)
				resume = deadline_accept_retry(now_ms()); /* the runtime's back-off: no spin */
	}
	server_drain_begins(srv);
	blocking_drain_end(b);
	close_listeners(srv); /* new clients are refused by the kernel, not left in the backlog */
	return rc;
}

/* ---- waiting for the serving threads ---- */

int blocking_cond_init(pthread_cond_t *cond)
{
	pthread_condattr_t ca;
	int err = pthread_condattr_init(&ca);
	if (err)
		return -err;
	err = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (!err)
		err = pthread_cond_init(cond, &ca);
	pthread_condattr_destroy(&ca);
	return -err;
}

/* A logrotate's SIGHUP during the drain: the reopen pipe has a byte (poll,
 * no wait), so reopen here, where the drain waits (the accept loop that
 * watched it has ended). */
static void reopen_if_asked(void)
{
	struct pollfd p = {daemon_reopen_fd(), POLLIN, 0};
	if (p.fd >= 0 && poll(&p, 1, 0) > 0)
		daemon_reopen_run();
}

void blocking_wait_zero(struct blocking *b, pthread_mutex_t *lock, pthread_cond_t *cond, const int *count,
                        const char *what)
{
	long long limit = blocking_drain_end(b) + JOIN_SLACK_MS;
	bool late = false;
	while (*count > 0) {
		/* In slices of REOPEN_SLICE_MS, so that a reopen asked for meanwhile
		 * is done within one (else every drain line went to the renamed file). */
		long long until = now_ms() + REOPEN_SLICE_MS;
		if (!late && until > limit)
			until = limit;
		struct timespec ts = {.tv_sec = until / 1000, .tv_nsec = (until % 1000) * 1000000};
		int err = pthread_cond_timedwait(cond, lock, &ts);
		pthread_mutex_unlock(lock); /* the threads going away need it: not held over a file open */
		reopen_if_asked();
		pthread_mutex_lock(lock);
		if (err == ETIMEDOUT && !late && *count > 0 && now_ms() >= limit) {
			log_error("%s: %d still running %d ms after the drain's end; waiting for them", what, *count,
			          JOIN_SLACK_MS);
			late = true;
		}
	}
}
