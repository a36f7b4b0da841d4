/* pool.c - the `pool` model: a thread pool serving one client per worker
 * (Python Cookbook, 3rd ed., 12.7 "Creating a thread pool", fed through 12.3's
 * queue with a sentinel to stop the consumers), in C.
 *
 * The main thread is the acceptor (blocking.c's accept loop). It puts each
 * accepted connection on a bounded queue (mutex + condition variables);
 * --workers threads take connections off it and serve each one to the end
 * in blocking_serve(), then take the next, so at most --workers clients are
 * served at once, by design. The bound is flow control: when every worker
 * is busy and --queue connections already wait, the next client is refused
 * with a clear message instead of waiting unseen. On stop the acceptor puts
 * a sentinel behind whatever is queued: workers serve those connections
 * first, and a worker that takes the sentinel puts it back for the next and
 * exits. */
#include <errno.h>
#include <limits.h>
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

#define SENTINEL (-1) /* an item with this fd: stop */

struct item {
	int fd;
	bool tls;
};

struct pool {
	struct blocking b;
	pthread_mutex_t lock;
	pthread_cond_t nonempty; /* an item was queued */
	pthread_cond_t changed;  /* a worker started or finished */
	struct item *ring;       /* FIFO, capacity cap */
	int cap, head, count;
	int idle;     /* workers waiting in take() */
	int started;  /* workers that reached their loop or failed to */
	int failed;   /* workers whose setup failed */
	int fail_err; /* the first one's -errno */
	int running;  /* workers not yet finished */
	pthread_t *thr;
	int nthr;     /* workers created */
	bool sync_ok; /* lock and conds initialised */
};

/* ---- the queue ---- */

static void put_locked(struct pool *p, struct item it)
{
	p->ring[(p->head + p->count) % p->cap] = it;
	p->count++;
	pthread_cond_signal(&p->nonempty);
}

/* Block until there is an item; a sentinel stays queued for the others. */
static struct item take(struct pool *p)
{
	pthread_mutex_lock(&p->lock);
	p->idle++;
	while (p->count == 0)
		pthread_cond_wait(&p->nonempty, &p->lock);
	p->idle--;
	struct item it = p->ring[p->head];
	if (it.fd == SENTINEL) {
		pthread_cond_signal(&p->nonempty); /* pass it on */
	} else {
		p->head = (p->head + 1) % p->cap;
		p->count--;
	}
	pthread_mutex_unlock(&p->lock);
	return it;
}

/* The acceptor's hand-off. A connection waits only if a worker is idle to
 * take it or there is room in --queue; otherwise it is refused at once. */
static void enqueue(void *arg, int fd, bool tls)
{
	struct pool *p = arg;
	struct server *srv = p->b.srv;
	enum refuse_reason why = REFUSE_QUEUE_FULL;
	bool queued = false;
	pthread_mutex_lock(&p->lock);
	/* Items beyond the idle workers are the ones really waiting. */
	if (p->count < p->idle + srv->cfg->queue) {
		why = REFUSE_MAX_CONNS;
		if (server_conn_admit(srv)) {
			put_locked(p, (struct item){fd, tls});
			queued = true;
		}
	}
	pthread_mutex_unlock(&p->lock);
	if (!queued)
		server_refuse(srv, fd, why);
}

/* ---- workers ---- */

static void worker_done(struct pool *p, int err)
{
	pthread_mutex_lock(&p->lock);
	if (err < 0) {
		p->started++;
		if (p->failed++ == 0)
			p->fail_err = err;
	}
	p->running--;
	pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->lock);
}

static void *worker_main(void *arg)
{
	struct pool *p = arg;
	struct blocking_worker w;
	int rc = blocking_worker_init(&w, &p->b);
	if (rc < 0) {
		blocking_worker_fini(&w);
		worker_done(p, rc); /* start_workers() reports it, once for all */
		return NULL;
	}
	pthread_mutex_lock(&p->lock);
	p->started++; /* the recipe's "thread has started" Event */
	pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->lock);
	for (;;) {
		struct item it = take(p);
		if (it.fd == SENTINEL)
			break;
		blocking_serve(&w, it.fd, it.tls);
	}
	blocking_worker_fini(&w);
	worker_done(p, 0);
	return NULL;
}

/* Start --workers threads and wait until each is in its loop. 0, or -errno. */
static int start_workers(struct pool *p, const struct config *cfg)
{
	pthread_attr_t attr;
	int err = pthread_attr_init(&attr);
	if (err)
		return -err;
	err = pthread_attr_setstacksize(&attr, cfg->stack_size);
	for (; !err && p->nthr < cfg->workers; p->nthr++) {
		pthread_mutex_lock(&p->lock);
		p->running++;
		pthread_mutex_unlock(&p->lock);
		err = daemon_thread_create(&p->thr[p->nthr], &attr, worker_main, p);
		if (err) {
			pthread_mutex_lock(&p->lock);
			p->running--;
			pthread_mutex_unlock(&p->lock);
			log_error("pool: cannot start worker %d of %d: %s (lower --workers or --stack-size)", p->nthr + 1,
			          cfg->workers, strerror(err));
			break; /* p->nthr counts the ones that run */
		}
	}
	pthread_attr_destroy(&attr);
	pthread_mutex_lock(&p->lock);
	while (p->started < p->nthr)
		pthread_cond_wait(&p->changed, &p->lock);
	if (!err && p->failed) {
		log_error("pool: %d of %d workers could not set up: %s (raise ulimit -n or lower --workers)", p->failed,
		          cfg->workers, strerror(-p->fail_err));
		err = -p->fail_err;
	}
	pthread_mutex_unlock(&p->lock);
	return -err;
}

/* The sentinel, then every worker finishes (bounded by the drain) and is joined. */
static void stop_workers(struct pool *p)
{
	pthread_mutex_lock(&p->lock);
	put_locked(p, (struct item){SENTINEL, false});
	/* Every idle worker at once: passed on one by one (take), the sentinel
	 * made a chain of 10,000 wake-ups with --workers 10000, each waiting for
	 * the last to be scheduled, and on two loaded CPUs the drain outlasted
	 * its caller's patience (a CI run: 9,440 still running 2 s after it). */
	pthread_cond_broadcast(&p->nonempty);
	blocking_wait_zero(&p->b, &p->lock, &p->changed, &p->running, "pool: workers");
	pthread_mutex_unlock(&p->lock);
	for (int i = 0; i < p->nthr; i++)
		pthread_join(p->thr[i], NULL);
}

/* ---- setup and teardown ---- */

static int pool_setup(struct pool *p, struct server *srv)
{
	const struct config *cfg = srv->cfg;
	blocking_init(&p->b, srv);
	/* Waiting items never exceed idle workers + --queue; one more for the
	 * sentinel. config.c bounds both flags so this fits an int many times
	 * over; it is summed wide anyway, so no setting can wrap it. */
	size_t cap = (size_t)cfg->workers + (size_t)cfg->queue + 1;
	if (cfg->workers < 1 || cfg->queue < 0 || cap > INT_MAX)
		return -EOVERFLOW;
	p->cap = (int)cap;
	p->ring = calloc((size_t)p->cap, sizeof(*p->ring));
	p->thr = calloc((size_t)cfg->workers, sizeof(*p->thr));
	if (!p->ring || !p->thr)
		return -ENOMEM;
	int err = pthread_mutex_init(&p->lock, NULL);
	if (err)
		return -err;
	err = pthread_cond_init(&p->nonempty, NULL);
	if (err) {
		pthread_mutex_destroy(&p->lock);
		return -err;
	}
	int rc = blocking_cond_init(&p->changed);
	if (rc < 0) {
		pthread_cond_destroy(&p->nonempty);
		pthread_mutex_destroy(&p->lock);
		return rc;
	}
	p->sync_ok = true;
	return 0;
}

static void pool_teardown(struct pool *p)
{
	if (p->sync_ok) {
		pthread_cond_destroy(&p->changed);
		pthread_cond_destroy(&p->nonempty);
		pthread_mutex_destroy(&p->lock);
	}
	free(p->ring);
	free(p->thr);
}

static int run(struct server *srv)
{
	struct pool p = {0};
	int rc = pool_setup(&p, srv);
	if (rc < 0) {
		log_error("pool: cannot set up: %s", strerror(-rc));
		pool_teardown(&p);
		return 1;
	}
	rc = start_workers(&p, srv->cfg);
	if (rc == 0)
		rc = loop_host_start(srv); /* the cluster link's loop, if any */
	if (rc == 0) {
		log_info("pool: %d workers, queue %d", p.nthr, srv->cfg->queue);
		rc = blocking_accept_loop(&p.b, "pool", enqueue, &p);
	}
	stop_workers(&p);
	pool_teardown(&p);
	int host = loop_host_stop(srv);
	return rc < 0 || host ? 1 : 0;
}

const struct model model_pool = {
	.name = "pool",
	.recipe = "acceptor + bounded queue (refuse when full) + --workers threads, each serving one connection to its end",
	.run = run,
};
