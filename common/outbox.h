/* outbox.h - bytes waiting to be written to one connection, in order.
 *
 * A FIFO of msg references. outbox_append() copies into the tail msg while
 * this outbox is its only owner; outbox_append_msg() shares a msg (a published
 * chat message) without copying. Only the connection's owner thread touches
 * an outbox; other threads deliver through the owner's mailbox (owner.h).
 *
 * Memory: one queued msg sits in the struct itself; a ring is allocated only
 * while two or more are queued and freed when the outbox empties, so an idle
 * connection's outbox holds no heap at all. Only the head msg can be partly
 * sent (head_off) and only the tail can still grow (tail_writable). */
#ifndef WEFT_OUTBOX_H
#define WEFT_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>

#include "msg.h"

struct outbox {
	union {
		struct msg *one;   /* cap == 0: the only slot */
		struct msg **ring; /* cap > 0: a ring of cap slots */
	} q;
	unsigned head, count, cap;
	bool tail_writable; /* we own the tail msg alone and may append to it */
	size_t head_off;    /* bytes of the head msg already sent */
	size_t bytes;       /* unsent bytes in total */
};

/* Copy n bytes to the end; 0 or -ENOMEM. */
int outbox_append(struct outbox *o, const void *p, size_t n);
/* Queue a shared msg; takes a new reference. 0 or -ENOMEM. */
int outbox_append_msg(struct outbox *o, struct msg *m);
/* Fill up to max iovecs with unsent bytes, oldest first; returns the count. */
int outbox_iov(const struct outbox *o, struct iovec *iov, int max);
/* The first n unsent bytes were written. */
void outbox_consume(struct outbox *o, size_t n);
/* Drop every queued msg the peer has not started receiving (a msg partly
 * sent stays whole, so what follows starts at a message boundary). */
void outbox_drop_unstarted(struct outbox *o);
static inline size_t outbox_bytes(const struct outbox *o) { return o->bytes; }
static inline bool outbox_empty(const struct outbox *o) { return o->bytes == 0; }
void outbox_free(struct outbox *o);

#endif
