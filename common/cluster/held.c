/* held.c - sending the held table's changes. See held.h. */
#include "held.h"

#include <errno.h>

#include "buf.h"

static void push(struct tentry **list, struct tentry *e)
{
	e->dirty = *list;
	*list = e;
}

/* The change went (or needs no sending): e's engine side is what it wants. */
static void settle(struct table *t, struct tentry *e, const struct held_ops *ops, void *arg)
{
	bool want = e->flags & H_WANT;
	e->flags &= ~H_DIRTY;
	e->dirty = NULL;
	if (want != !!(e->flags & H_ENGINE))
		ops->done(arg, e, want);
	if (!want)
		table_del(t, e);
}

size_t held_sync(struct table *t, struct tentry **dirty, const struct held_ops *ops, void *arg)
{
	struct buf out = {0};
	struct tentry *batch = NULL, *stay = NULL;
	size_t kept = 0;
	for (struct tentry *e = *dirty, *next; e; e = next) {
		next = e->dirty;
		bool want = e->flags & H_WANT;
		int rc = want == !!(e->flags & H_ENGINE) ? 1 : ops->put(arg, &out, e, want);
		if (rc == 0 && ops->each) {
			rc = ops->send(arg, e, &out) == -ENOMEM ? -ENOMEM : 1;
			buf_free(&out);
			out = (struct buf){0};
		}
		if (rc < 0) {
			push(&stay, e);
			kept++;
		} else if (rc > 0) {
			settle(t, e, ops, arg);
		} else {
			push(&batch, e);
		}
	}
	if (buf_used(&out) && ops->send(arg, NULL, &out) == -ENOMEM) {
		for (struct tentry *e = batch, *next; e; e = next) {
			next = e->dirty;
			push(&stay, e);
			kept++;
		}
		batch = NULL;
	}
	buf_free(&out);
	for (struct tentry *e = batch, *next; e; e = next) {
		next = e->dirty;
		settle(t, e, ops, arg);
	}
	*dirty = stay; /* H_DIRTY still set on each */
	return kept;
}
