/* poller_poll.c - the poll() backend: a dense pollfd array, plus the index of
 * each fd in it so that changing or dropping an fd costs O(1). */
#include "poller.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

struct loop_poller {
	struct pollfd *pfd;
	int n, cap;
	int *slot;    /* fd -> index in pfd, or -1 */
	int slot_cap;
	int next;     /* where the next scan starts (fairness) */
};

static int pl_create(struct loop_poller **pp)
{
	struct loop_poller *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	*pp = p;
	return 0;
}

static void pl_destroy(struct loop_poller *p)
{
	if (!p)
		return;
	free(p->pfd);
	free(p->slot);
	free(p);
}

static short events_of(int mask) { return (short)loop_poll_events(mask); }

static int grow(struct loop_poller *p, int fd)
{
	if (fd >= p->slot_cap) {
		int cap = p->slot_cap ? p->slot_cap : 64;
		while (cap <= fd)
			cap *= 2;
		int *s = realloc(p->slot, (size_t)cap * sizeof(*s));
		if (!s)
			return -ENOMEM;
		for (int i = p->slot_cap; i < cap; i++)
			s[i] = -1;
		p->slot = s;
		p->slot_cap = cap;
	}
	if (p->n == p->cap) {
		int cap = p->cap ? p->cap * 2 : 64;
		struct pollfd *f = realloc(p->pfd, (size_t)cap * sizeof(*f));
		if (!f)
			return -ENOMEM;
		p->pfd = f;
		p->cap = cap;
	}
	return 0;
}

static int pl_set(struct loop_poller *p, int fd, int old, int mask)
{
	(void)old;
	if (fd < 0)
		return -EINVAL;
	int i = fd < p->slot_cap ? p->slot[fd] : -1;
	if (i >= 0 && mask) {
		p->pfd[i].events = events_of(mask);
	} else if (i >= 0) {
		p->pfd[i] = p->pfd[--p->n];
		p->slot[p->pfd[i].fd] = i;
		p->slot[fd] = -1;
	} else if (mask) {
		if (grow(p, fd) < 0)
			return -ENOMEM;
		p->pfd[p->n] = (struct pollfd){.fd = fd, .events = events_of(mask)};
		p->slot[fd] = p->n++;
	}
	return 0;
}

static int pl_wait(struct loop_poller *p, int timeout_ms, struct loop_poller_event *ev, int max)
{
	int n = poll(p->pfd, (nfds_t)p->n, timeout_ms);
	if (n < 0)
		return -errno;
	int count = 0, start = p->next; /* fixed for the scan: see poller_select.c */
	for (int k = 0; k < p->n && count < max && n > 0; k++) {
		int i = (start + k) % p->n;
		short re = p->pfd[i].revents;
		if (!re)
			continue;
		n--;
		/* an error or hang-up reports both: the owner finds it by reading */
		ev[count++] = (struct loop_poller_event){p->pfd[i].fd, loop_poll_got((unsigned short)re)};
		p->next = i + 1;
	}
	return count;
}

const struct loop_poller_ops loop_poller_poll = {
	.name = "poll",
	.fd_limit = INT_MAX,
	.create = pl_create,
	.destroy = pl_destroy,
	.set = pl_set,
	.wait = pl_wait,
};
