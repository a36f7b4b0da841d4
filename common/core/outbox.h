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
 * sent (head_off) and only the tail can still grow (tail_writable).
 *
 * Pinning: a model whose writes complete later (an io_uring send) hands the
 * kernel pointers into the queued msgs. Until that operation completes, the
 * msgs it may read are pinned (outbox_pin): they stay queued and referenced
 * whatever else happens (a slow consumer's drop), and are released only by
 * outbox_consume() after they were really sent. Bytes appended to the tail
 * meanwhile land beyond what the kernel was given, so appending stays safe. */
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
	unsigned pinned : 31;       /* the first `pinned` msgs are read by an operation in flight */
	unsigned tail_writable : 1; /* we own the tail msg alone and may append to it */
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
/* An operation in flight reads the first n unsent bytes (what outbox_iov
 * returned, or a prefix of it): keep the msgs holding them until
 * outbox_unpin(). One pin at a time; a new pin replaces the old one. */
void outbox_pin(struct outbox *o, size_t n);
/* The operation completed (call outbox_consume for what it sent). */
static inline void outbox_unpin(struct outbox *o) { o->pinned = 0; }
/* Drop every queued msg the peer has not started receiving and no operation
 * in flight may read (a msg partly sent or pinned stays whole, so what
 * follows starts at a message boundary). */
void outbox_drop_unstarted(struct outbox *o);
static inline size_t outbox_bytes(const struct outbox *o) { return o->bytes; }
static inline bool outbox_empty(const struct outbox *o) { return o->bytes == 0; }
/* Never while pinned: the owner frees a connection's outbox only once its
 * operations have completed. */
void outbox_free(struct outbox *o);

#endif
