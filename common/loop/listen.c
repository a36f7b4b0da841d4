/* listen.c - each loop's listeners. Loop 0 serves the sockets server_init
 * bound (so a single loop needs no SO_REUSEPORT); every other loop binds its
 * own on the same port and the kernel spreads connections across them.
 * Accepting on them, and the EMFILE back-off (loop.h): a paused listener is
 * resumed by a loop alarm at deadline_accept_retry(). */
#include <stddef.h>
#include <unistd.h>

#include "clock.h"
#include "deadline.h"
#include "loop.h"
#include "server.h"

/* The back-off's alarm came: accept on the listener again. */
static void resume(struct loop *l, struct loop_alarm *a)
{
	struct loop_listener *li = (struct loop_listener *)((char *)a - offsetof(struct loop_listener, retry));
	li->paused = false;
	if (loop_accepting(l, (int)(li - l->lis)))
		l->m->accept(l, (int)(li - l->lis), true);
}

/* Accepting on li must wait (the failure was counted and logged). */
static void pause_listener(struct loop *l, int li)
{
	if (l->lis[li].paused || !loop_accepting(l, li))
		return;
	l->lis[li].paused = true;
	l->m->accept(l, li, false);
	if (loop_alarm_at(l, &l->lis[li].retry, deadline_accept_retry(now_ms())) < 0) {
		l->lis[li].paused = false; /* no memory for the alarm (logged): better a spin than a deaf listener */
		l->m->accept(l, li, true);
	}
}

void loop_accept_failed(struct loop *l, int li, int err)
{
	if (server_accept_failed(err))
		pause_listener(l, li);
}

struct accepting {
	struct loop *l;
	bool tls;
};

static void take_accepted(void *arg, int fd)
{
	struct accepting *a = arg;
	loop_accepted(a->l, fd, a->tls);
}

void loop_accept_some(struct loop *l, int li, int max)
{
	if (!loop_accepting(l, li))
		return;
	/* server_accept_some counted and logged the failure already */
	if (server_accept_some(l->lis[li].fd, true, max, take_accepted, &(struct accepting){l, l->lis[li].tls}) < 0)
		pause_listener(l, li);
}

static int add(struct loop *l, int fd, bool tls, bool owned)
{
	if (fd < 0)
		return fd;
	l->lis[l->nlis++] = (struct loop_listener){fd, tls, owned, false, {{-1, 0}, resume}};
	return 0;
}

int loop_listeners_open(struct loop *l)
{
	struct server *srv = l->srv;
	bool first = l->index == 0;
	int rc = add(l, first ? srv->listen_fd : server_listen_again(srv, false), false, !first);
	if (rc == 0 && srv->tls_listen_fd >= 0)
		rc = add(l, first ? srv->tls_listen_fd : server_listen_again(srv, true), true, !first);
	return rc;
}

void loop_listener_close(struct loop *l, int i)
{
	struct loop_listener *li = &l->lis[i];
	if (li->fd < 0)
		return;
	loop_alarm_at(l, &li->retry, 0); /* no back-off for a closed listener */
	close(li->fd);
	if (!li->owned)
		*(li->tls ? &l->srv->tls_listen_fd : &l->srv->listen_fd) = -1;
	li->fd = -1;
}
