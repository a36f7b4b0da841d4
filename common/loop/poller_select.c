/* poller_select.c - the select() backend, the faithful one of the recipe.
 *
 * Master read/write sets are kept and copied for each call. select() cannot
 * name an fd >= FD_SETSIZE (FD_SET beyond it is undefined behaviour), so
 * fd_limit says so and set() refuses such an fd; the model refuses those
 * connections at accept time. */
#include "poller.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/select.h>

struct loop_poller {
	fd_set rd, wr;         /* what is watched */
	fd_set rd_out, wr_out; /* what select() reported */
	int maxfd;             /* highest watched fd, -1 if none */
	int next;              /* where the next scan starts (fairness) */
};

static int sel_create(struct loop_poller **pp)
{
	struct loop_poller *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	FD_ZERO(&p->rd);
	FD_ZERO(&p->wr);
	p->maxfd = -1;
	*pp = p;
	return 0;
}

static void sel_destroy(struct loop_poller *p) { free(p); }

static int sel_set(struct loop_poller *p, int fd, int old, int mask)
{
	(void)old;
	if (fd < 0 || fd >= FD_SETSIZE)
		return -EINVAL;
	if (mask & LOOP_POLL_IN)
		FD_SET(fd, &p->rd);
	else
		FD_CLR(fd, &p->rd);
	if (mask & LOOP_POLL_OUT)
		FD_SET(fd, &p->wr);
	else
		FD_CLR(fd, &p->wr);
	if (mask && fd > p->maxfd)
		p->maxfd = fd;
	while (p->maxfd >= 0 && !FD_ISSET(p->maxfd, &p->rd) && !FD_ISSET(p->maxfd, &p->wr))
		p->maxfd--;
	return 0;
}

static int sel_wait(struct loop_poller *p, int timeout_ms, struct loop_poller_event *ev, int max)
{
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	p->rd_out = p->rd;
	p->wr_out = p->wr;
	int n = select(p->maxfd + 1, &p->rd_out, &p->wr_out, NULL, timeout_ms < 0 ? NULL : &tv);
	if (n < 0)
		return -errno;
	/* The scan's start is fixed for the scan: moving it as fds are reported
	 * would report one twice and skip others (the highest, often), starving
	 * them while the lower ones stay ready. */
	int count = 0, span = p->maxfd + 1, start = p->next;
	for (int i = 0; i < span && count < max && n > 0; i++) {
		int fd = (start + i) % span;
		int mask = (FD_ISSET(fd, &p->rd_out) ? LOOP_POLL_IN : 0) | (FD_ISSET(fd, &p->wr_out) ? LOOP_POLL_OUT : 0);
		if (mask) {
			ev[count++] = (struct loop_poller_event){fd, mask};
			p->next = fd + 1;
			n--;
		}
	}
	return count;
}

const struct loop_poller_ops loop_poller_select = {
	.name = "select",
	.fd_limit = FD_SETSIZE,
	.create = sel_create,
	.destroy = sel_destroy,
	.set = sel_set,
	.wait = sel_wait,
};
