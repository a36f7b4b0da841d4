/* mailbox.c - a loop's mailbox (owner.h): other threads post and wake it
 * through an eventfd, which the loop watches like any other fd; the loop
 * drains when woken and, for what it published to itself, once per turn
 * before it sleeps (loop_before_sleep). A drain lists the connections that
 * got mail for the write pass (write.c). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "loop.h"
#include "server.h"
#include "subscriber.h"

/* Any thread: wake the loop. owner->signalled already makes this one write
 * per drain; an overflowing counter still wakes. */
static void wake(struct owner *o)
{
	struct loop *l = o->model_data;
	uint64_t one = 1;
	ssize_t w = write(l->wake_fd, &one, sizeof(one));
	(void)w;
}

/* sub got mail: its connection (sub->loop_data, which begins with its
 * struct loop_conn) has output for the write pass. */
static void ready(struct subscriber *sub, void *arg)
{
	loop_pending(arg, sub->loop_data);
}

void loop_drain(struct loop *l)
{
	l->posts = owner_posts_here();
	owner_drain(&l->owner, ready, l);
}

static bool woken(struct loop *l, struct loop_watch *w)
{
	uint64_t v;
	ssize_t r = read(w->fd, &v, sizeof(v)); /* reset the counter before draining */
	(void)r;
	loop_guest_mail(l);
	loop_drain(l);
	return true;
}

int loop_mailbox_open(struct loop *l)
{
	l->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (l->wake_fd < 0)
		return -errno;
	owner_init(&l->owner, wake, l);
	l->owner.limits = server_outbox_limits(l->srv);
	l->wake_w = (struct loop_watch){.fd = l->wake_fd, .fn = woken, .mask = LOOP_POLL_IN};
	return 0;
}

/* Only once every loop of the group is gone: until then another may post. */
void loop_mailbox_close(struct loop *l)
{
	free(l->pending); /* the write pass's list (write.c): no turn is left */
	l->pending = NULL;
	free(l->held); /* and the held list (hold.c) */
	l->held = NULL;
	l->nheld = 0;
	l->pending_cap = l->npending = 0;
	if (l->wake_fd < 0)
		return;
	owner_destroy(&l->owner);
	close(l->wake_fd);
	l->wake_fd = -1;
}
