/* poller_epoll.c - the epoll backend (level-triggered, like the others, so
 * the scheduler behaves the same whichever answers). */
#include "poller.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#define EPOLL_BATCH 1024

struct loop_poller {
	int epfd;
	struct epoll_event out[EPOLL_BATCH];
};

static int ep_create(struct loop_poller **pp)
{
	struct loop_poller *p = malloc(sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (p->epfd < 0) {
		int err = -errno;
		free(p);
		return err;
	}
	*pp = p;
	return 0;
}

static void ep_destroy(struct loop_poller *p)
{
	if (!p)
		return;
	close(p->epfd);
	free(p);
}

static int ep_set(struct loop_poller *p, int fd, int old, int mask)
{
	struct epoll_event e = {
		.events = ((mask & LOOP_POLL_IN) ? EPOLLIN : 0) | ((mask & LOOP_POLL_OUT) ? EPOLLOUT : 0),
		.data.fd = fd,
	};
	int op = !old ? EPOLL_CTL_ADD : !mask ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
	return epoll_ctl(p->epfd, op, fd, &e) < 0 ? -errno : 0;
}

static int ep_wait(struct loop_poller *p, int timeout_ms, struct loop_poller_event *ev, int max)
{
	int n = epoll_wait(p->epfd, p->out, max < EPOLL_BATCH ? max : EPOLL_BATCH, timeout_ms);
	if (n < 0)
		return -errno;
	for (int i = 0; i < n; i++) {
		uint32_t re = p->out[i].events;
		int mask = ((re & EPOLLIN) ? LOOP_POLL_IN : 0) | ((re & EPOLLOUT) ? LOOP_POLL_OUT : 0);
		if (re & (EPOLLERR | EPOLLHUP))
			mask = LOOP_POLL_IN | LOOP_POLL_OUT;
		ev[i] = (struct loop_poller_event){p->out[i].data.fd, mask};
	}
	return n;
}

const struct loop_poller_ops loop_poller_epoll = {
	.name = "epoll",
	.fd_limit = INT_MAX,
	.create = ep_create,
	.destroy = ep_destroy,
	.set = ep_set,
	.wait = ep_wait,
};
