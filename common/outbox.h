/* outbox.h - bytes waiting to be written to one connection, in order.
 *
 * A FIFO of msg references. outbox_append() copies into the tail msg while
 * this outbox is its only owner; outbox_append_msg() shares a msg (a published
 * chat message) without copying. Only the connection's owner thread touches
 * an outbox; other threads deliver through the owner's mailbox (owner.h). */
#ifndef WEFT_OUTBOX_H
#define WEFT_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>

#include "msg.h"

struct outbox_ent {
	struct msg *m;
	size_t off;    /* bytes of m already sent */
	bool writable; /* we own m alone and may append to it */
};

struct outbox {
	struct outbox_ent *ents; /* ring */
	unsigned head, count, cap;
	size_t bytes; /* unsent bytes in total */
};

/* Copy n bytes to the end; 0 or -ENOMEM. */
int outbox_append(struct outbox *o, const void *p, size_t n);
/* Queue a shared msg; takes a new reference. 0 or -ENOMEM. */
int outbox_append_msg(struct outbox *o, struct msg *m);
/* Fill up to max iovecs with unsent bytes, oldest first; returns the count. */
int outbox_iov(const struct outbox *o, struct iovec *iov, int max);
/* The first n unsent bytes were written. */
void outbox_consume(struct outbox *o, size_t n);
static inline size_t outbox_bytes(const struct outbox *o) { return o->bytes; }
static inline bool outbox_empty(const struct outbox *o) { return o->bytes == 0; }
void outbox_free(struct outbox *o);

#endif
