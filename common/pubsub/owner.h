/* owner.h - the thread that owns sessions, and its mailbox.
 *
 * Actor style: only an owner thread touches its sessions' outboxes and
 * sockets. Another thread (a chat publisher) hands a message to a session by
 * owner_post(), which queues a reference under owner->lock and wakes the
 * owner with the model's wake() (eventfd / pipe / io_uring message) when the
 * owner was not already signalled. The owner, woken, calls owner_drain(),
 * which moves queued messages into outboxes and tells the model which
 * sessions now have something to write.
 *
 * Within one loop no lock and no wake: when the publisher runs on the
 * subscriber's own owner thread (owner_bind), owner_post() appends straight
 * to the outbox and only notes the session; the model's next owner_drain()
 * (which it makes whenever owner_posts_here() moved, before it sleeps) tells
 * it which sessions have output. That needs no owner lock because every
 * owner_post() runs under the exchange lock (exchange.h): the fields the
 * mailbox keeps are written either by the owner thread or under that lock.
 *
 * Lock order (global, never reversed): exchange lock -> owner lock.
 * Nothing is called with an owner lock held except memory operations. */
#ifndef WEFT_OWNER_H
#define WEFT_OWNER_H

#include <pthread.h>
#include <stdbool.h>

struct session;
struct msg;

struct owner {
	pthread_mutex_t lock;
	struct session *ready;     /* sessions with queued mail (guarded by lock) */
	bool signalled;            /* wake() called since the last drain (lock) */
	void (*wake)(struct owner *o); /* set by the model; must be thread-safe */
	void *model_data;          /* for the model's wake() */
	/* Sessions that received deliveries posted on this owner's own thread
	 * (owner thread only; session->local_queued). */
	struct session **local;
	unsigned nlocal, local_cap;
};

void owner_init(struct owner *o, void (*wake)(struct owner *o), void *model_data);
void owner_destroy(struct owner *o);

/* On the owner thread, once before it serves: posts made on this thread to
 * o's sessions are local (no lock, no wake; see above), and the thread keeps
 * up to 1024 freed output chunks for reuse (msg_cache_limit; NULL: back to
 * the default). A model that binds
 * must call owner_drain() before it sleeps whenever owner_posts_here() has
 * moved since its last drain. */
void owner_bind(struct owner *o);

/* From any thread, with the exchange lock held: queue a reference to m for
 * s (or, from s's bound owner thread, append m to its output). Returns 0, or -ENOBUFS if s
 * is over its slow-consumer hard limit (the message is not queued; s will
 * be closed by its owner), or -ENOMEM. */
int owner_post(struct session *s, struct msg *m);

/* On the owner thread: deliver queued mail into outboxes and call
 * ready(s, arg) for each session that received any. ready() may free the
 * session it is given, and no other. */
void owner_drain(struct owner *o, void (*ready)(struct session *s, void *arg), void *arg);

/* How many owner_post() calls this thread has made (a model can tell
 * whether the input it just handed a session published anything). */
unsigned long owner_posts_here(void);

/* On the owner thread: move s's queued mail into its outbox now, so a reply
 * written next comes after everything published before it (Redis order:
 * messages published before an UNSUBSCRIBE arrive before its reply). */
void owner_flush(struct session *s);

/* On the owner thread, before freeing s: forget its queued mail. */
void owner_forget(struct session *s);

#endif
