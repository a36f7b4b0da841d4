/* group.c - a group of loops, one per thread (--threads N), and the ready
 * barrier: each loop sets itself up on its own thread and reports; loop 0,
 * on the caller's thread, logs "ready" once every loop is accepting, or
 * stops them all if any failed. Any loop failing later stops the others. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"

#include "daemon.h"
#include "log.h"
#include "loop.h"
#include "server.h"

struct loop_group {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int n, reported, failed;
	bool aux;                       /* loop_host_start's: no listeners, not the server's readiness */
	const struct loop_guest *guest; /* on loop 0 */
};

static const struct loop_guest *next_guest;

/* The host group's loop, for loop_host_stop() to wake (under host_lock). */
static pthread_mutex_t host_lock = PTHREAD_MUTEX_INITIALIZER;
static struct loop *host_loop;
static atomic_bool host_done;

bool loop_host_done(void) { return atomic_load(&host_done); }

static void host_publish(struct loop *l)
{
	pthread_mutex_lock(&host_lock);
	host_loop = l;
	pthread_mutex_unlock(&host_lock);
}
static _Thread_local struct loop *loop_here; /* the loop this thread runs */

void loop_guest_set(const struct loop_guest *g) { next_guest = g; }

void loop_guest_wake(struct loop *l)
{
	if (atomic_exchange_explicit(&l->guest_mail, true, memory_order_acq_rel))
		return; /* asked already: it runs once for all */
	if (loop_here == l)
		return; /* loop_before_sleep runs it */
	uint64_t one = 1;
	ssize_t w = write(l->wake_fd, &one, sizeof(one)); /* EAGAIN: the counter is set, it wakes anyway */
	(void)w;
}

void loop_guest_mail(struct loop *l)
{
	if (atomic_exchange_explicit(&l->guest_mail, false, memory_order_acq_rel) && l->guest)
		l->guest->wake(l, l->guest->arg);
}

static void report(struct loop_group *g, int rc)
{
	pthread_mutex_lock(&g->lock);
	g->reported++;
	if (rc < 0)
		g->failed++;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

/* Loop 0: every loop has reported. */
static void wait_all(struct loop *l)
{
	struct loop_group *g = l->group;
	pthread_mutex_lock(&g->lock);
	while (g->reported < g->n)
		pthread_cond_wait(&g->cond, &g->lock);
	bool ok = g->failed == 0;
	pthread_mutex_unlock(&g->lock);
	if (!ok)
		server_request_stop(l->srv);
	else if (!g->aux) /* the host group is not the server's readiness */
		server_ready(l->srv, l->m->name);
}

static bool stop_signalled(struct loop *l, struct loop_watch *w)
{
	(void)w;
	l->stopping = true;
	l->stop_ms = now_ms();
	server_drain_begins(l->srv);
	l->m->stop(l);
	if (l->m->stop_conn)
		loop_conns_each(l, l->m->stop_conn);
	return false; /* the stop fd stays readable forever */
}

/* SIGHUP/SIGUSR1 (daemon.c): reopen --log-file here, on any loop of the
 * server's group, between turns; the handler only wrote the pipe. */
static bool reopen_signalled(struct loop *l, struct loop_watch *w)
{
	(void)l, (void)w;
	daemon_reopen_run();
	return true;
}

static int open_loop(struct loop *l)
{
	int rc = l->group->aux ? 0 : loop_listeners_open(l);
	if (rc < 0) {
		log_error("%s: loop %d: cannot listen: %s", l->m->name, l->index, strerror(-rc));
		return rc;
	}
	rc = l->m->setup(l);
	if (rc == 0)
		rc = l->m->watch(l, &l->stop_w);
	if (rc == 0)
		rc = l->m->watch(l, &l->wake_w);
	if (rc == 0 && l->reopen_w.fd >= 0)
		rc = l->m->watch(l, &l->reopen_w);
	if (rc == 0 && l->index == 0 && l->group->guest) {
		l->guest = l->group->guest;
		rc = l->guest->attach(l, l->guest->arg);
		if (rc < 0)
			l->guest = NULL;
	}
	if (rc < 0)
		log_error("%s: loop %d: cannot start: %s", l->m->name, l->index, strerror(-rc));
	return rc;
}

static void *loop_main(void *arg)
{
	struct loop *l = arg;
	loop_here = l;
	int rc = open_loop(l);
	report(l->group, rc);
	if (l->index == 0)
		wait_all(l);
	if (rc == 0) {
		owner_bind(&l->owner);
		l->posts = owner_posts_here();
		rc = l->m->serve(l);
	}
	if (l->guest) {
		l->guest->detach(l, l->guest->arg);
		loop_guest_mail(l); /* nothing to do any more: only clears it */
		l->guest = NULL;
	}
	loop_teardown(l);
	loop_here = NULL;
	l->rc = rc;
	if (rc < 0)
		server_request_stop(l->srv); /* the others stop too */
	return NULL;
}

static struct loop *nth(void *loops, const struct loop_model *m, int i)
{
	return (struct loop *)((char *)loops + (size_t)i * m->size);
}

static int group_run(struct server *srv, const struct loop_model *m, int n, bool aux)
{
	struct loop_group g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, n, 0, 0, aux, next_guest};
	next_guest = NULL; /* hosted once */
	void *loops = calloc((size_t)n, m->size);
	if (!loops) {
		log_error("%s: out of memory", m->name);
		return 1;
	}
	int made = 0, rc = 0;
	for (; made < n; made++) {
		struct loop *l = nth(loops, m, made);
		*l = (struct loop){.m = m, .srv = srv, .index = made, .group = &g, .wake_fd = -1, .epoch = now_ms()};
		loop_turn(l); /* the turn's clock, before the first turn */
		l->stop_w = (struct loop_watch){.fd = server_stop_fd(srv), .fn = stop_signalled, .mask = LOOP_POLL_IN};
		/* Every loop of the server's group takes the log reopens (not the
		 * host group's): a loop ends as soon as its own connections are
		 * gone, so with loop 0 alone a logrotate during the drain, while
		 * another loop still drained, sent the rest of the log to the
		 * renamed file. daemon_reopen_run serialises them: the first reads
		 * the pipe, the others find it empty. */
		int reopen_fd = !aux ? daemon_reopen_fd() : -1;
		l->reopen_w = (struct loop_watch){.fd = reopen_fd, .fn = reopen_signalled, .mask = LOOP_POLL_IN};
		rc = loop_mailbox_open(l);
		if (rc < 0) {
			log_error("%s: loop %d: eventfd: %s", m->name, made, strerror(-rc));
			break;
		}
	}
	if (rc == 0 && aux)
		host_publish(nth(loops, m, 0));
	if (rc == 0) {
		for (int i = 1; i < n; i++) {
			struct loop *l = nth(loops, m, i);
			int err = daemon_thread_create(&l->thr, NULL, loop_main, l);
			l->started = err == 0;
			if (err) {
				log_error("%s: cannot start loop thread %d: %s", m->name, i, strerror(err));
				l->rc = -err;
				report(&g, -err);
			}
		}
		loop_main(nth(loops, m, 0));
	}
	int code = rc < 0 ? 1 : 0;
	for (int i = 0; i < made; i++) {
		struct loop *l = nth(loops, m, i);
		if (l->started)
			pthread_join(l->thr, NULL);
		if (l->rc < 0)
			code = 1;
	}
	if (aux)
		host_publish(NULL);
	for (int i = 0; i < made; i++) /* only now: until every loop is gone, another may post */
		loop_mailbox_close(nth(loops, m, i));
	free(loops);
	pthread_cond_destroy(&g.cond);
	pthread_mutex_destroy(&g.lock);
	return code;
}

int loop_group_run(struct server *srv, const struct loop_model *m, int n) { return group_run(srv, m, n, false); }

/* ---- the host group (host.c) for models without a loop ---- */

extern const struct loop_model loop_host_model;

static pthread_t host_thr;
static bool host_started;
static int host_rc;

static void *host_main(void *arg)
{
	host_rc = group_run(arg, &loop_host_model, 1, true);
	return NULL;
}

int loop_host_start(struct server *srv)
{
	if (!next_guest)
		return 0;
	atomic_store(&host_done, false);
	int err = daemon_thread_create(&host_thr, NULL, host_main, srv);
	if (err) {
		log_error("loop: cannot start the host loop's thread: %s", strerror(err));
		return -err;
	}
	host_started = true;
	return 0;
}

int loop_host_stop(struct server *srv)
{
	if (!host_started)
		return 0;
	(void)srv;
	/* Only now: the model's threads are gone, nothing can wake it any more. */
	atomic_store(&host_done, true);
	pthread_mutex_lock(&host_lock);
	if (host_loop) {
		uint64_t one = 1;
		ssize_t w = write(host_loop->wake_fd, &one, sizeof(one));
		(void)w;
	}
	pthread_mutex_unlock(&host_lock);
	pthread_join(host_thr, NULL);
	host_started = false;
	return host_rc;
}
