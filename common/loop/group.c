/* group.c - a group of loops, one per thread (--threads N), and the ready
 * barrier: each loop sets itself up on its own thread and reports; loop 0,
 * on the caller's thread, logs "ready" once every loop is accepting, or
 * stops them all if any failed. Any loop failing later stops the others. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "log.h"
#include "loop.h"
#include "server.h"

struct loop_group {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int n, reported, failed;
};

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
	if (ok)
		server_ready(l->srv, l->m->name);
	else
		server_request_stop(l->srv);
}

static bool stop_signalled(struct loop *l, struct loop_watch *w)
{
	(void)w;
	l->stopping = true;
	l->stop_ms = now_ms();
	server_drain_begins(l->srv);
	l->m->stop(l);
	return false; /* the stop fd stays readable forever */
}

static int open_loop(struct loop *l)
{
	int rc = loop_listeners_open(l);
	if (rc < 0) {
		log_error("%s: loop %d: cannot listen: %s", l->m->name, l->index, strerror(-rc));
		return rc;
	}
	rc = l->m->setup(l);
	if (rc == 0)
		rc = l->m->watch(l, &l->stop_w);
	if (rc == 0)
		rc = l->m->watch(l, &l->wake_w);
	if (rc < 0)
		log_error("%s: loop %d: cannot start: %s", l->m->name, l->index, strerror(-rc));
	return rc;
}

static void *loop_main(void *arg)
{
	struct loop *l = arg;
	int rc = open_loop(l);
	report(l->group, rc);
	if (l->index == 0)
		wait_all(l);
	if (rc == 0) {
		owner_bind(&l->owner);
		l->posts = owner_posts_here();
		rc = l->m->serve(l);
	}
	l->m->teardown(l);
	for (int i = 0; i < l->nlis; i++)
		if (l->lis[i].owned)
			loop_listener_close(l, i);
	l->rc = rc;
	if (rc < 0)
		server_request_stop(l->srv); /* the others stop too */
	return NULL;
}

static struct loop *nth(void *loops, const struct loop_model *m, int i)
{
	return (struct loop *)((char *)loops + (size_t)i * m->size);
}

int loop_group_run(struct server *srv, const struct loop_model *m, int n)
{
	struct loop_group g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, n, 0, 0};
	void *loops = calloc((size_t)n, m->size);
	if (!loops) {
		log_error("%s: out of memory", m->name);
		return 1;
	}
	int made = 0, rc = 0;
	for (; made < n; made++) {
		struct loop *l = nth(loops, m, made);
		*l = (struct loop){.m = m, .srv = srv, .index = made, .group = &g, .wake_fd = -1};
		l->stop_w = (struct loop_watch){server_stop_fd(srv), stop_signalled};
		rc = loop_mailbox_open(l);
		if (rc < 0) {
			log_error("%s: loop %d: eventfd: %s", m->name, made, strerror(-rc));
			break;
		}
	}
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
	for (int i = 0; i < made; i++) /* only now: until every loop is gone, another may post */
		loop_mailbox_close(nth(loops, m, i));
	free(loops);
	pthread_cond_destroy(&g.cond);
	pthread_mutex_destroy(&g.lock);
	return code;
}
