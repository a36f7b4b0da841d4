/* poller.h - "which of these fds are ready?", behind one small interface, so
 * the scheduler does not care whether select(), poll() or epoll answers
 * (the shape of Redis' ae.c with ae_select.c / ae_epoll.c).
 *
 * Level-triggered everywhere: an fd stays reported while it is ready and
 * watched, so a backend may report only some events per wait without losing
 * any. */
#ifndef WEFT_POLLER_H
#define WEFT_POLLER_H

enum { POLLER_IN = 1, POLLER_OUT = 2 };

struct poller;

struct poller_event {
	int fd;
	int mask; /* POLLER_IN / POLLER_OUT; errors and hangups report both */
};

struct poller_ops {
	const char *name;
	int fd_limit; /* fds >= this cannot be watched (select: FD_SETSIZE) */
	int (*create)(struct poller **pp);
	void (*destroy)(struct poller *p);
	/* Change fd's interest from old to mask (0 = stop watching). 0 or -errno. */
	int (*set)(struct poller *p, int fd, int old, int mask);
	/* Wait up to timeout_ms (-1 = forever) and fill at most max events.
	 * Returns the count, or -errno (-EINTR included). */
	int (*wait)(struct poller *p, int timeout_ms, struct poller_event *ev, int max);
};

extern const struct poller_ops poller_select, poller_poll, poller_epoll;

/* The backend called name, or NULL. */
const struct poller_ops *poller_find(const char *name);

#endif
