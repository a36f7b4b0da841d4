/* subscriber.h - what the exchange delivers to: an interface, not a session.
 *
 * A subscriber belongs to one owner loop (owner.h) and says, through its
 * ops, how a message is appended to its output, how much of that output is
 * still unsent, and what happens when it falls too far behind. The exchange
 * and the mailbox know nothing else about it: a chat session (chat.c) is one
 * kind, a test's buffer another, a cluster bridge could be a third.
 *
 * The embedding object fills owner, ops, limits and loop_data before the
 * subscriber is subscribed anywhere, and zeroes the rest (calloc will do);
 * before it is freed it leaves the exchange and calls owner_forget().
 *
 * The ops run on the owner thread only, from owner_post() (a post from the
 * subscriber's own bound loop, under the exchange lock), owner_drain() and
 * owner_flush(); none may call into the exchange or take an owner lock. */
#ifndef WEFT_SUBSCRIBER_H
#define WEFT_SUBSCRIBER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

struct owner;
struct msg;
struct subscriber;

/* Slow-consumer limits (Redis' client-output-buffer-limit pubsub): refuse a
 * message that would put the subscriber over hard bytes unsent, or over soft
 * bytes for soft_ms or longer. 0 = no such limit. */
struct subscriber_limits {
	size_t hard;
	size_t soft;
	int soft_ms;
	/* A post that leaves a subscriber with more than this unsent puts the
	 * posting thread under pressure (owner_pressure_here): its publisher
	 * should wait before the subscriber is judged. 0 = never. */
	size_t hold;
};

struct subscriber_ops {
	/* Append m to the output (take a reference or copy it). On failure the
	 * subscriber deals with it itself (a session closes after its flush). */
	void (*deliver)(struct subscriber *sub, struct msg *m);
	/* Bytes appended and not yet sent, now: what the limits are checked on. */
	size_t (*pending)(const struct subscriber *sub);
	/* The limits refused a message (soft: the soft one, for too long). Called
	 * once; deliver is not called again afterwards. The subscriber drops what
	 * it can, tells its peer why and goes away on its own loop's terms. */
	void (*slow)(struct subscriber *sub, bool soft);
};

/* Every idle connection carries one (in its session): 72 bytes, no holes.
 * The limits are the mailbox's (owner->limits), not stored per subscriber. */
struct subscriber {
	struct owner *owner;
	const struct subscriber_ops *ops;
	void *loop_data;            /* the model's own per-connection object (what
	                             * owner_drain's ready() must wake); never touched here */
	/* Mailbox bookkeeping, guarded by owner->lock (owner.c says when the
	 * owner thread may touch them under the exchange lock instead). */
	struct subscriber *mail_next;
	struct msg **mail;
	size_t mail_bytes;          /* bytes of queued mail */
	long long soft_since;       /* when the soft limit was first exceeded, 0 = not now */
	atomic_size_t unsent;       /* ops->pending() as last seen by the owner thread
	                             * (the mailbox's, and the subscriber's after it sent) */
	unsigned mail_count;        /* msgs in mail; its capacity follows from this (owner.c) */
	bool mail_queued;           /* on owner->ready */
	unsigned char slow;         /* slow-consumer verdict of owner_post */
	/* Owner thread only. Separate bytes, not bit-fields: publishers write
	 * the two above at any time, and a byte is its own memory location. */
	bool local_queued;          /* noted on owner->local (owner.h) */
	bool slow_closed;           /* the owner acted on a slow-consumer verdict */
};

#endif
