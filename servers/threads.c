/* threads.c - the `threads` model: one thread per client (Python Cookbook,
 * 3rd ed., 12.1 "Starting and stopping threads" and 11.2's TCP server with a
 * thread per connection), in C.
 *
 * The main thread is the acceptor (blocking.c's accept loop); every accepted
 * connection gets its own thread, created with --stack-size, which
 * serves it to the end in blocking_serve() and exits. The recipe's danger is
 * an unbounded thread count, so --max-conns is checked before a thread is
 * created, and a failed pthread_create refuses the client as clearly. On
 * stop the main thread waits (counter + condition variable) until every
 * connection thread has finished its drain.
 *
 * Threads are joined, not detached: a thread still runs library cleanup
 * (OpenSSL's thread-local state) after its function returns, and that must
 * be over before the TLS context is freed. A finished thread puts itself on
 * a list that the acceptor joins at its next accept and at the end. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blocking.h"
#include "daemon.h"
#include "log.h"
#include "loop.h"
#include "model.h"
#include "server.h"

struct client {
	struct threads *t;
	pthread_t thr;
	int fd;
	bool tls;
	struct client *next; /* on threads.finished */
};

struct threads {
	struct blocking b;
	pthread_attr_t attr;  /* --stack-size */
	pthread_mutex_t lock;
	pthread_cond_t gone;  /* a connection thread finished */
	int live;             /* connection threads not yet finished (lock) */
	struct client *finished; /* finished, not yet joined (lock) */
};

static void *client_thread(void *arg)
{
	struct client *c = arg;
	struct threads *t = c->t;
	struct blocking_worker w;
	int rc = blocking_worker_init(&w, &t->b);
	if (rc == 0) {
		blocking_serve(&w, c->fd, c->tls);
	} else {
		log_warn("threads: cannot serve a connection: %s", strerror(-rc));
		close(c->fd);
		server_conn_closed(t->b.srv, CLOSE_ERROR);
	}
	blocking_worker_fini(&w);
	pthread_mutex_lock(&t->lock);
	c->next = t->finished;
	t->finished = c;
	if (--t->live == 0)
		pthread_cond_broadcast(&t->gone);
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

/* Join the threads that finished (each exits right after it queued itself). */
static void reap(struct threads *t)
{
	pthread_mutex_lock(&t->lock);
	struct client *c = t->finished;
	t->finished = NULL;
	pthread_mutex_unlock(&t->lock);
	while (c) {
		struct client *next = c->next;
		pthread_join(c->thr, NULL);
		free(c);
		c = next;
	}
}

/* pthread_create failed: the client gets the max-conns refusal, since the
 * machine's thread limit is the real one now. Logged at most once a second. */
static void refuse_no_thread(struct threads *t, int fd, int err)
{
	static struct log_rate rate = LOG_RATE_INIT;
	log_rated(&rate, LOG_WARN, "threads: cannot start a thread for a connection: %s (refusing; lower --max-conns or "
	          "--stack-size)", strerror(err));
	server_conn_closed(t->b.srv, CLOSE_ERROR); /* admitted, then refused: our failure */
	server_refuse(t->b.srv, fd, REFUSE_MAX_CONNS);
}

/* The acceptor's hand-off: one new thread per admitted connection. */
static void spawn(void *arg, int fd, bool tls)
{
	struct threads *t = arg;
	reap(t);
	if (!server_conn_admit(t->b.srv)) {
		server_refuse(t->b.srv, fd, REFUSE_MAX_CONNS);
		return;
	}
	struct client *c = malloc(sizeof(*c));
	if (!c) {
		refuse_no_thread(t, fd, ENOMEM);
		return;
	}
	*c = (struct client){.t = t, .fd = fd, .tls = tls};
	pthread_mutex_lock(&t->lock);
	t->live++;
	pthread_mutex_unlock(&t->lock);
	int err = daemon_thread_create(&c->thr, &t->attr, client_thread, c);
	if (err) {
		pthread_mutex_lock(&t->lock);
		t->live--;
		pthread_mutex_unlock(&t->lock);
		free(c);
		refuse_no_thread(t, fd, err);
	}
}

static int threads_setup(struct threads *t, struct server *srv)
{
	blocking_init(&t->b, srv);
	int err = pthread_attr_init(&t->attr);
	if (err)
		return -err;
	err = pthread_attr_setstacksize(&t->attr, srv->cfg->stack_size);
	if (!err)
		err = pthread_mutex_init(&t->lock, NULL);
	if (err) {
		pthread_attr_destroy(&t->attr);
		return -err;
	}
	int rc = blocking_cond_init(&t->gone);
	if (rc < 0) {
		pthread_mutex_destroy(&t->lock);
		pthread_attr_destroy(&t->attr);
	}
	return rc;
}

static void threads_teardown(struct threads *t)
{
	pthread_cond_destroy(&t->gone);
	pthread_mutex_destroy(&t->lock);
	pthread_attr_destroy(&t->attr);
}

static int run(struct server *srv)
{
	struct threads t = {0};
	int rc = threads_setup(&t, srv);
	if (rc < 0) {
		log_error("threads: cannot set up: %s", strerror(-rc));
		return 1;
	}
	rc = loop_host_start(srv); /* the cluster link's loop, if any */
	if (rc == 0)
		rc = blocking_accept_loop(&t.b, "threads", spawn, &t);
	pthread_mutex_lock(&t.lock);
	blocking_wait_zero(&t.b, &t.lock, &t.gone, &t.live, "threads: connection threads");
	pthread_mutex_unlock(&t.lock);
	reap(&t);
	threads_teardown(&t);
	int host = loop_host_stop(srv);
	return rc < 0 || host ? 1 : 0;
}

const struct model model_threads = {
	.name = "threads",
	.recipe = "one blocking thread per connection, accept loop in the main thread, bounded by --max-conns",
	.run = run,
};
