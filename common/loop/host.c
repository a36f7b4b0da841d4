/* host.c - the host model: a loop with no listeners and no sessions, only
 * watches and alarms, over the epoll backend (poller.h). A one-loop group of
 * it hosts the guest (the cluster link) for the models that have no loop of
 * their own (threads, pool): loop_host_start() runs it on a thread of its
 * own until loop_host_stop(), after the model's drain. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "loop.h"

#define HOST_MAX_SLEEP_MS 1000 /* see coro's SCHED_MAX_SLEEP_MS */

struct host_loop {
	struct loop l; /* first */
	const struct loop_poller_ops *ops;
	struct loop_poller *p;
	struct loop_watch **fds; /* fd -> the watch registered on it */
	int cap;
	struct loop_poller_event ev[64];
};

static struct host_loop *of(struct loop *l) { return (struct host_loop *)l; }

static int host_setup(struct loop *l)
{
	struct host_loop *h = of(l);
	h->ops = &loop_poller_epoll;
	return h->ops->create(&h->p);
}

static void unregister(struct host_loop *h, struct loop_watch *w)
{
	if (!w->reg)
		return;
	loop_poller_del(h->ops, h->p, w->reg_fd, w->reg);
	if (w->reg_fd < h->cap && h->fds[w->reg_fd] == w)
		h->fds[w->reg_fd] = NULL;
	w->reg = 0;
}

static int host_rewatch(struct loop *l, struct loop_watch *w)
{
	struct host_loop *h = of(l);
	if (w->reg && (w->reg_fd != w->fd || !w->mask || w->fd < 0))
		unregister(h, w);
	if (w->fd < 0 || !w->mask || w->reg == w->mask)
		return 0;
	if (w->fd >= h->cap) {
		int cap = h->cap ? h->cap : 64;
		while (cap <= w->fd)
			cap *= 2;
		struct loop_watch **f = realloc(h->fds, (size_t)cap * sizeof(*f));
		if (!f)
			return -ENOMEM;
		memset(f + h->cap, 0, (size_t)(cap - h->cap) * sizeof(*f));
		h->fds = f;
		h->cap = cap;
	}
	int rc = h->ops->set(h->p, w->fd, w->reg, w->mask);
	if (rc < 0)
		return rc;
	w->reg = w->mask;
	w->reg_fd = w->fd;
	h->fds[w->fd] = w;
	return 0;
}

static int host_serve(struct loop *l)
{
	struct host_loop *h = of(l);
	while (!loop_host_done()) { /* not at the stop signal: the model's drain may still publish */
		int ms = loop_timeout(l, HOST_MAX_SLEEP_MS);
		int n = h->ops->wait(h->p, ms, h->ev, (int)(sizeof(h->ev) / sizeof(h->ev[0])));
		loop_turn(l);
		if (n < 0 && n != -EINTR) {
			log_error("loop: host: %s: %s", h->ops->name, strerror(-n));
			return n;
		}
		for (int i = 0; i < n; i++) {
			int fd = h->ev[i].fd;
			struct loop_watch *w = fd < h->cap ? h->fds[fd] : NULL;
			if (!w || !(h->ev[i].mask & w->mask))
				continue; /* gone since, or not asked for any more */
			w->got = h->ev[i].mask;
			if (!w->fn(l, w))
				unregister(h, w);
		}
		loop_run_due(l);
		loop_before_sleep(l);
	}
	return 0;
}

static void host_teardown(struct loop *l)
{
	struct host_loop *h = of(l);
	if (h->p)
		h->ops->destroy(h->p);
	free(h->fds);
}

/* No connections: nothing is ever listed for the write pass. */
static struct loop_conn *host_conn(struct loop *l, uint32_t id) { return (void)l, (void)id, NULL; }
static void host_write(struct loop *l, struct loop_conn *lc) { (void)l, (void)lc; }
static void host_stop(struct loop *l) { (void)l; /* serve runs until loop_host_stop() */ }

const struct loop_model loop_host_model = {
	.name = "host",
	.size = sizeof(struct host_loop),
	.setup = host_setup,
	.watch = host_rewatch,
	.rewatch = host_rewatch,
	.serve = host_serve,
	.teardown = host_teardown,
	.conn = host_conn,
	.write = host_write,
	.stop = host_stop,
};
