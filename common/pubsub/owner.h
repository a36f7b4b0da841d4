/* owner.h - the thread that owns subscribers, and its mailbox.
 *
 * Actor style: only an owner thread touches its subscribers' output (for a
 * session: its outbox and socket). Another thread (a chat publisher) hands a
 * message to a subscriber (subscriber.h) by owner_post(), which queues a
 * reference under owner->lock and wakes the owner with the model's wake()
 * (eventfd / pipe / io_uring message) when the owner was not already
 * signalled. The owner, woken, calls owner_drain(), which hands queued
 * messages to each subscriber's deliver() and tells the model which
 * subscribers now have something to write.
 *
 * Within one loop no lock and no wake: when the publisher runs on the
 * subscriber's own owner thread (owner_bind), owner_post() calls deliver()
 * straight away and only notes the subscriber; the model's next owner_drain()
 * (which it makes whenever owner_posts_here() moved, before it sleeps) tells
 * it which subscribers have output. That needs no owner lock because every
 * owner_post() runs under the exchange lock (exchange.h): the fields the
 * mailbox keeps are written either by the owner thread or under that lock.
 *
 * The mailbox applies the slow-consumer limits (subscriber->limits) but
 * knows no policy: the verdict goes to the subscriber's slow().
 *
 * Lock order (global, never reversed): exchange lock -> owner lock.
 * Nothing is called with an owner lock held except memory operations. */
#ifndef WEFT_OWNER_H
#define WEFT_OWNER_H

#include <pthread.h>
#include <stdbool.h>

#include "subscriber.h"

struct msg;

struct owner {
	pthread_mutex_t lock;
	struct subscriber *ready;  /* subscribers with queued mail (guarded by lock) */
	bool signalled;            /* wake() called since the last drain (lock) */
	void (*wake)(struct owner *o); /* set by the model; must be thread-safe */
	void *model_data;          /* for the model's wake() */
	/* Subscribers that received deliveries posted on this owner's own
	 * thread (owner thread only; subscriber->local_queued). */
	struct subscriber **local;
	unsigned nlocal, local_cap;
	/* The slow-consumer limits for every subscriber of this mailbox; zero
	 * (none) after owner_init, set by whoever made the mailbox. */
	struct subscriber_limits limits;
};

void owner_init(struct owner *o, void (*wake)(struct owner *o), void *model_data);
void owner_destroy(struct owner *o);

/* On the owner thread, once before it serves: posts made on this thread to
 * o's subscribers are local (no lock, no wake; see above), and the thread keeps
 * up to 1024 freed output chunks for reuse (msg_cache_limit; NULL: back to
 * the default). A model that binds
 * must call owner_drain() before it sleeps whenever owner_posts_here() has
 * moved since its last drain. */
void owner_bind(struct owner *o);

/* From any thread, with the exchange lock held: queue a reference to m for
 * sub (or, from sub's bound owner thread, deliver m now). Returns 0, or
 * -ENOBUFS if sub is over a slow-consumer limit (the message is not queued;
 * its owner will call sub's slow()), or -ENOMEM. */
int owner_post(struct subscriber *sub, struct msg *m);

/* From any thread, with the exchange lock held: does sub hold a
 * slow-consumer verdict (owner_post would refuse anything)? A publisher
 * need not encode a form only refused subscribers would get. */
bool owner_refuses(struct subscriber *sub);

/* On the owner thread: deliver queued mail (and slow-consumer verdicts) and
 * call ready(sub, arg) for each subscriber that received any. ready() may
 * free the subscriber it is given, and no other. */
void owner_drain(struct owner *o, void (*ready)(struct subscriber *sub, void *arg), void *arg);

/* How many owner_post() calls this thread has made (a model can tell
 * whether the input it just handed a session published anything). */
unsigned long owner_posts_here(void);

/* What the owner_post() calls on this thread since the last
 * owner_pressure_clear() saw: HOLD, a subscriber left with more unsent than
 * its limits' hold (the input being handled should wait: session.c holds
 * its publisher, so that a subscriber which reads catches up before the
 * slow-consumer limits judge it); DROP, a subscriber over a limit. */
#define OWNER_PRESSURE_HOLD 1u
#define OWNER_PRESSURE_DROP 2u
/* With HOLD: what must catch up is moved by another thread (a subscriber
 * of another owner, the cluster link), so nothing this thread writes can
 * end the hold: a model retries such a hold by time only (session.h). */
#define OWNER_PRESSURE_FAR 4u
unsigned owner_pressure_here(void);
void owner_pressure_clear(void);
/* Not a subscriber but the way out of this node is behind (the cluster
 * link reads slower than the engine queues): HOLD the input being handled,
 * as a subscriber over its hold would (and FAR: the link runs on a loop of
 * its own choosing). */
void owner_pressure_hold(void);
/* The way out dropped what the input just published (the cluster link's
 * queue was full): DROP, as a subscriber cut at a limit does, so the run of
 * holds starts over. A publisher whose holds ran out (--publish-hold-secs)
 * refills the queue it waits for as fast as it drains: without this it was
 * never held again while the flood lasted, and every further copy beyond the
 * queue was dropped. */
void owner_pressure_dropped(void);

/* On the owner thread: deliver sub's queued mail now, so a reply written
 * next comes after everything published before it (Redis order: messages
 * published before an UNSUBSCRIBE arrive before its reply). */
void owner_flush(struct subscriber *sub);

/* On the owner thread, before freeing sub: forget its queued mail. */
void owner_forget(struct subscriber *sub);

#endif
