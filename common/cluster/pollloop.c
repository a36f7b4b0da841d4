/* pollloop.c - a poll() loop on a thread of its own, hosting the engine link
 * (link_loop.h). An eventfd wakes it; one timer bounds each sleep. */
#include "link_loop.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "clock.h"

struct cl_poll {
	struct cl_loop base; /* first: a cl_loop * is a cl_poll * */
	struct cl_handler h;
	int efd;
	struct {
		int fd;
		short events;
	} slot[CL_LOOP_SLOTS];
	long long timer_at;
	atomic_bool stop;
	bool started;
	pthread_t thread;
};

static void p_watch(struct cl_loop *l, int slot, int fd, bool rd, bool wr)
{
	struct cl_poll *p = (struct cl_poll *)l;
	p->slot[slot].fd = fd;
	p->slot[slot].events = (short)((rd ? POLLIN : 0) | (wr ? POLLOUT : 0));
}

static void p_timer(struct cl_loop *l, long long at_ms) { ((struct cl_poll *)l)->timer_at = at_ms; }

static void p_wake(struct cl_loop *l)
{
	uint64_t one = 1;
	/* EAGAIN means the counter is already non-zero: it will wake anyway. */
	if (write(((struct cl_poll *)l)->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("cluster: cannot wake the link thread: %s", strerror(errno));
}

static const struct cl_loop_ops poll_ops = {p_watch, p_timer, p_wake};

struct cl_poll *cl_poll_new(void)
{
	struct cl_poll *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->base.ops = &poll_ops;
	p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->efd < 0) {
		free(p);
		return NULL;
	}
	for (int i = 0; i < CL_LOOP_SLOTS; i++)
		p->slot[i].fd = -1;
	return p;
}

void cl_poll_set_handler(struct cl_poll *p, const struct cl_handler *h) { p->h = *h; }

struct cl_loop *cl_poll_loop(struct cl_poll *p) { return &p->base; }

static void turn(struct cl_poll *p)
{
	struct pollfd fds[CL_LOOP_SLOTS + 1];
	int map[CL_LOOP_SLOTS + 1], n = 0;
	fds[n] = (struct pollfd){.fd = p->efd, .events = POLLIN};
	map[n++] = -1;
	for (int i = 0; i < CL_LOOP_SLOTS; i++) {
		if (p->slot[i].fd >= 0 && p->slot[i].events) {
			fds[n] = (struct pollfd){.fd = p->slot[i].fd, .events = p->slot[i].events};
			map[n++] = i;
		}
	}
	int timeout = 1000; /* a stop request also comes through the eventfd; this only bounds the sleep */
	if (p->timer_at) {
		long long left = p->timer_at - now_ms();
		timeout = left <= 0 ? 0 : left < timeout ? (int)left : timeout;
	}
	int r = poll(fds, (nfds_t)n, timeout);
	if (r < 0 && errno != EINTR) {
		log_error("cluster: poll: %s", strerror(errno));
		usleep(100 * 1000);
		return;
	}
	if (p->timer_at && now_ms() >= p->timer_at) {
		p->timer_at = 0;
		p->h.timer(p->h.arg);
	}
	for (int i = 1; r > 0 && i < n; i++) {
		short re = fds[i].revents;
		int s = map[i];
		/* The fd may have changed (closed by the timer or an earlier slot). */
		if (!re || p->slot[s].fd != fds[i].fd)
			continue;
		bool err = re & (POLLERR | POLLHUP | POLLNVAL);
		p->h.io(p->h.arg, s, err || (re & POLLIN), err || (re & POLLOUT));
	}
	if (r > 0 && (fds[0].revents & POLLIN)) {
		uint64_t v;
		if (read(p->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			log_warn("cluster: eventfd read: %s", strerror(errno));
		if (!atomic_load(&p->stop))
			p->h.wake(p->h.arg);
	}
}

static void *run(void *arg)
{
	struct cl_poll *p = arg;
	while (!atomic_load(&p->stop))
		turn(p);
	return NULL;
}

int cl_poll_start(struct cl_poll *p)
{
	/* Signals go to the model's threads (SIGTERM handling lives there):
	 * the link thread is born with all of them blocked. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int rc = pthread_create(&p->thread, NULL, run, p);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc)
		return -rc;
	p->started = true;
	return 0;
}

void cl_poll_stop(struct cl_poll *p)
{
	if (!p || !p->started)
		return;
	atomic_store(&p->stop, true);
	p_wake(&p->base);
	pthread_join(p->thread, NULL);
	p->started = false;
}

void cl_poll_free(struct cl_poll *p)
{
	if (!p)
		return;
	cl_poll_stop(p);
	close(p->efd);
	free(p);
}
