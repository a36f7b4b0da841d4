/* poller.h - the loop runtime's readiness backends: "which of these fds are
 * ready to read or to write?", behind one small interface, so a readiness
 * model (coro's scheduler) does not care whether select(), poll() or epoll
 * answers (the shape of Redis' ae.c with ae_select.c / ae_epoll.c). One
 * function-pointer table per backend; the helpers below are inline, so a
 * call costs the one indirect call it always did.
 *
 * Level-triggered everywhere: an fd stays reported while it is ready and
 * watched, so a backend may report only some events per wait without losing
 * any. */
#ifndef WEFT_LOOP_POLLER_H
#define WEFT_LOOP_POLLER_H

#include <poll.h>

enum { LOOP_POLL_IN = 1, LOOP_POLL_OUT = 2 };

/* poll(2)'s bits (also io_uring's poll requests'): the events for a mask,
 * and the mask for what came back (an error or hang-up: both). */
static inline unsigned loop_poll_events(int mask) { return ((mask & LOOP_POLL_IN) ? POLLIN : 0) | ((mask & LOOP_POLL_OUT) ? POLLOUT : 0); }
static inline int loop_poll_got(unsigned re)
{
	if (re & (POLLERR | POLLHUP | POLLNVAL))
		return LOOP_POLL_IN | LOOP_POLL_OUT;
	return ((re & POLLIN) ? LOOP_POLL_IN : 0) | ((re & POLLOUT) ? LOOP_POLL_OUT : 0);
}

struct loop_poller;

struct loop_poller_event {
	int fd;
	int mask; /* LOOP_POLL_IN / LOOP_POLL_OUT; errors and hangups report both */
};

struct loop_poller_ops {
	const char *name;
	int fd_limit; /* fds >= this cannot be watched (select: FD_SETSIZE) */
	int (*create)(struct loop_poller **pp);
	void (*destroy)(struct loop_poller *p);
	/* Change fd's interest from old to mask (0 = stop watching). 0 or -errno. */
	int (*set)(struct loop_poller *p, int fd, int old, int mask);
	/* Wait up to timeout_ms (-1 = forever) and fill at most max events.
	 * Returns the count, or -errno (-EINTR included). */
	int (*wait)(struct loop_poller *p, int timeout_ms, struct loop_poller_event *ev, int max);
};

extern const struct loop_poller_ops loop_poller_select, loop_poller_poll, loop_poller_epoll;

/* Interest changes on fd, each one ops->set call: */
static inline int loop_poller_add(const struct loop_poller_ops *ops, struct loop_poller *p, int fd, int mask)
{
	return ops->set(p, fd, 0, mask);
}
static inline int loop_poller_mod(const struct loop_poller_ops *ops, struct loop_poller *p, int fd, int old, int mask)
{
	return ops->set(p, fd, old, mask);
}
static inline int loop_poller_del(const struct loop_poller_ops *ops, struct loop_poller *p, int fd, int old)
{
	return ops->set(p, fd, old, 0);
}

/* The backend called name, or NULL. */
const struct loop_poller_ops *loop_poller_find(const char *name);

#endif
