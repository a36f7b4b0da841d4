/* link_host.c - the engine link's host loop on the loop runtime. See
 * link_host.h. */
#include "link_host.h"

#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "loop.h"

struct hslot {
	struct loop_watch w; /* first */
	struct cl_host *host;
	int slot;
};

struct cl_host {
	struct cl_loop base; /* first: a cl_loop * is a cl_host * */
	struct cl_handler h;
	struct loop *l;              /* attached to (its thread only) */
	_Atomic(struct loop *) wake_l; /* the same, for cl_wake from any thread */
	struct hslot s[CL_LOOP_SLOTS];
	struct loop_alarm alarm;
	long long timer_at;
	struct loop_guest guest;
};

static void rewatch(struct cl_host *h, struct hslot *s)
{
	int rc = h->l->m->rewatch(h->l, &s->w);
	if (rc < 0) /* the link's own deadline (connect timeout, PING) notices a silent socket */
		log_warn("cluster: cannot watch the link's socket: %s", strerror(-rc));
}

static void h_watch(struct cl_loop *l, int slot, int fd, bool rd, bool wr)
{
	struct cl_host *h = (struct cl_host *)l;
	struct hslot *s = &h->s[slot];
	s->w.fd = fd;
	s->w.mask = fd < 0 ? 0 : (rd ? LOOP_POLL_IN : 0) | (wr ? LOOP_POLL_OUT : 0);
	if (h->l)
		rewatch(h, s);
}

static void h_timer(struct cl_loop *l, long long at_ms)
{
	struct cl_host *h = (struct cl_host *)l;
	h->timer_at = at_ms;
	if (h->l)
		loop_alarm_at(h->l, &h->alarm, at_ms);
}

static void h_wake(struct cl_loop *l)
{
	struct loop *lp = atomic_load(&((struct cl_host *)l)->wake_l);
	if (lp)
		loop_guest_wake(lp);
}

static const struct cl_loop_ops host_ops = {h_watch, h_timer, h_wake};

/* ---- the loop's side ---- */

static bool on_ready(struct loop *l, struct loop_watch *w)
{
	(void)l;
	struct hslot *s = (struct hslot *)w;
	struct cl_host *h = s->host;
	h->h.io(h->h.arg, s->slot, w->got & LOOP_POLL_IN, w->got & LOOP_POLL_OUT);
	return true; /* the link says what it wants next through h_watch */
}

static void on_alarm(struct loop *l, struct loop_alarm *a)
{
	(void)l;
	struct cl_host *h = (struct cl_host *)((char *)a - offsetof(struct cl_host, alarm));
	h->timer_at = 0;
	h->h.timer(h->h.arg);
}

static int attach(struct loop *l, void *arg)
{
	struct cl_host *h = arg;
	h->l = l;
	for (int i = 0; i < CL_LOOP_SLOTS; i++)
		if (h->s[i].w.fd >= 0 && h->s[i].w.mask)
			rewatch(h, &h->s[i]);
	if (h->timer_at && loop_alarm_at(l, &h->alarm, h->timer_at) < 0)
		return -ENOMEM;
	atomic_store(&h->wake_l, l);
	log_debug("cluster: the link runs on %s loop %d", l->m->name, l->index);
	return 0;
}

static void wake(struct loop *l, void *arg)
{
	(void)l;
	struct cl_host *h = arg;
	h->h.wake(h->h.arg);
}

static void detach(struct loop *l, void *arg)
{
	struct cl_host *h = arg;
	atomic_store(&h->wake_l, NULL);
	for (int i = 0; i < CL_LOOP_SLOTS; i++) {
		struct loop_watch *w = &h->s[i].w;
		int mask = w->mask;
		w->mask = 0;
		if (w->reg || w->model)
			l->m->rewatch(l, w);
		w->mask = mask;
	}
	loop_alarm_at(l, &h->alarm, 0);
	h->l = NULL;
}

struct cl_host *cl_host_new(void)
{
	struct cl_host *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->base.ops = &host_ops;
	for (int i = 0; i < CL_LOOP_SLOTS; i++)
		h->s[i] = (struct hslot){.w = {.fd = -1, .fn = on_ready}, .host = h, .slot = i};
	loop_timer_init(&h->alarm.t);
	h->alarm.fn = on_alarm;
	h->guest = (struct loop_guest){attach, wake, detach, h};
	return h;
}

void cl_host_set_handler(struct cl_host *h, const struct cl_handler *handler) { h->h = *handler; }

struct cl_loop *cl_host_loop(struct cl_host *h) { return &h->base; }

const struct loop_guest *cl_host_guest(struct cl_host *h) { return &h->guest; }

void cl_host_free(struct cl_host *h) { free(h); }
