/* held.h - the bridge's names held on the engine (its held table) and the
 * list of those whose engine side must change (dirty): what sending the
 * changes does to each entry, whether the send worked or not. Not
 * thread-safe: the bridge holds its lock. */
#ifndef WEFT_CLUSTER_HELD_H
#define WEFT_CLUSTER_HELD_H

#include <stdbool.h>
#include <stddef.h>

#include "table.h"

struct buf;

/* entry flags */
#define H_WANT 1u   /* a local client holds it */
#define H_ENGINE 2u /* subscribed on the engine (as far as we sent) */
#define H_DIRTY 4u  /* on the dirty list */

struct held_ops {
	/* Append e's change (subscribe if want, else unsubscribe) to out: 0, 1
	 * (nothing to send: the engine has no such subscription), or -ENOMEM
	 * (out as it was). */
	int (*put)(void *arg, struct buf *out, struct tentry *e, bool want);
	/* Queue out for the engine: e the entry it holds the change of (each),
	 * or NULL (a batch). 0, or -ENOMEM: nothing was queued, the entries
	 * stay dirty; any other error counts as sent (the link is down or
	 * failing, and what is held is subscribed afresh when it is up). */
	int (*send)(void *arg, struct tentry *e, struct buf *out);
	/* The change of e is on its way (or there is none to send). */
	void (*done)(void *arg, struct tentry *e, bool want);
	bool each; /* send each entry's change on its own (a sharded engine: to its slot's owner) */
};

/* Send the changes of the entries on *dirty. An entry whose change went
 * out (or needs none) is done and off the list, and deleted from t if no
 * client wants it; one whose change could not be formatted or queued for
 * want of memory stays on *dirty, unchanged, to be sent at the next turn.
 * Returns the entries that stayed. */
size_t held_sync(struct table *t, struct tentry **dirty, const struct held_ops *ops, void *arg);

#endif
