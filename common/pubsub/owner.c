/* owner.c - the mailbox between publishers (any thread) and the thread that
 * owns a subscriber, and the slow-consumer limits (Redis'
 * client-output-buffer-limit pubsub): owner_post() refuses a message that
 * would put a subscriber over its hard limit, or over its soft limit for
 * longer than soft_ms (subscriber->limits), counting its queued mail plus the
 * unsent output its owner last saw (subscriber->unsent). The owner then hands
 * the verdict to the subscriber's slow() in owner_drain. A publisher never
 * waits for a subscriber and a subscriber's memory stays bounded.
 *
 * Per delivery the subscriber is called through its ops (subscriber.h); the
 * mailbox itself knows no protocol and no policy. */
#include "owner.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "msg.h"
#include "clock.h"

enum { SLOW_NO, SLOW_SOFT, SLOW_HARD };

void owner_init(struct owner *o, void (*wake)(struct owner *o), void *model_data)
{
	pthread_mutex_init(&o->lock, NULL);
	o->ready = NULL;
	o->signalled = false;
	o->wake = wake;
	o->model_data = model_data;
	o->local = NULL;
	o->nlocal = o->local_cap = 0;
	o->limits = (struct subscriber_limits){0};
}

void owner_destroy(struct owner *o)
{
	free(o->local);
	pthread_mutex_destroy(&o->lock);
}

static _Thread_local struct owner *bound_here;

/* A loop that owns many subscribers fills an output chunk for each of them per
 * turn (one per subscriber of a 1 -> 1000 fan-out): let it keep that many. */
#define LOOP_MSG_CACHE 1024

void owner_bind(struct owner *o)
{
	bound_here = o;
	msg_cache_limit(o ? LOOP_MSG_CACHE : 0);
}

/* Would one more message of len bytes put sub over a limit, with unsent
 * bytes waiting already? (owner->lock, or the owner thread under the
 * exchange lock) */
static int slow_verdict(struct subscriber *sub, size_t unsent, size_t len)
{
	const struct subscriber_limits *lim = &sub->owner->limits;
	unsent += len;
	if (lim->hard && unsent > lim->hard)
		return SLOW_HARD;
	if (!lim->soft || unsent <= lim->soft) {
		sub->soft_since = 0;
		return SLOW_NO;
	}
	long long now = now_ms();
	if (!sub->soft_since)
		sub->soft_since = now ? now : 1;
	else if (now - sub->soft_since >= lim->soft_ms)
		return SLOW_SOFT;
	return SLOW_NO;
}

static _Thread_local unsigned long posts_here;
static _Thread_local unsigned char pressure_here; /* OWNER_PRESSURE_* */

unsigned long owner_posts_here(void) { return posts_here; }
unsigned owner_pressure_here(void) { return pressure_here; }
void owner_pressure_clear(void) { pressure_here = 0; }
void owner_pressure_hold(void) { pressure_here |= OWNER_PRESSURE_HOLD | OWNER_PRESSURE_FAR; }
void owner_pressure_dropped(void) { pressure_here |= OWNER_PRESSURE_DROP; }

/* A message of len bytes is accepted for sub, which then has unsent bytes
 * waiting (its queued mail included). */
static void note_pressure(const struct subscriber *sub, size_t unsent, size_t len)
{
	size_t hold = sub->owner->limits.hold;
	if (hold && unsent + len > hold)
		pressure_here |= OWNER_PRESSURE_HOLD | (sub->owner != bound_here ? OWNER_PRESSURE_FAR : 0);
}

/* Note sub for the owner's next owner_drain(); false on ENOMEM. */
static bool local_note(struct owner *o, struct subscriber *sub)
{
	if (sub->local_queued)
		return true;
	if (o->nlocal == o->local_cap) {
		unsigned cap = o->local_cap ? o->local_cap * 2 : 64;
		struct subscriber **v = realloc(o->local, cap * sizeof(*v));
		if (!v)
			return false;
		o->local = v;
		o->local_cap = cap;
	}
	o->local[o->nlocal++] = sub;
	sub->local_queued = true;
	return true;
}

/* Queue sub for owner_drain with no mail: it holds a slow-consumer verdict. */
static void queue_locked(struct owner *o, struct subscriber *sub)
{
	if (!sub->mail_queued) {
		sub->mail_queued = true;
		sub->mail_next = o->ready;
		o->ready = sub;
	}
}

/* The owner thread posting to its own subscriber with no mail waiting (mail
 * would have to go out first): deliver now, judged on the real output.
 * False: take the mailbox path. */
static bool post_local(struct subscriber *sub, struct msg *m, int *rc)
{
	struct owner *o = sub->owner;
	if (o != bound_here || sub->mail_count || sub->slow)
		return false;
	size_t unsent = sub->ops->pending(sub);
	int verdict = slow_verdict(sub, unsent, m->len);
	if (verdict) {
		/* owner_drain hands it to slow(), outside the exchange lock;
		 * this thread drains before it sleeps. */
		pthread_mutex_lock(&o->lock);
		sub->slow = (unsigned char)verdict;
		pressure_here |= OWNER_PRESSURE_DROP;
		queue_locked(o, sub);
		pthread_mutex_unlock(&o->lock);
		*rc = -ENOBUFS;
		return true;
	}
	if (!local_note(o, sub))
		return false;
	note_pressure(sub, unsent, m->len);
	*rc = 0;
	if (!sub->slow_closed)
		sub->ops->deliver(sub, m);
	atomic_store_explicit(&sub->unsent, sub->ops->pending(sub), memory_order_relaxed);
	return true;
}

bool owner_refuses(struct subscriber *sub)
{
	struct owner *o = sub->owner;
	pthread_mutex_lock(&o->lock);
	bool slow = sub->slow;
	pthread_mutex_unlock(&o->lock);
	return slow;
}

int owner_post(struct subscriber *sub, struct msg *m)
{
	posts_here++;
	struct owner *o = sub->owner;
	bool wake = false;
	int rc = 0;
	if (post_local(sub, m, &rc))
		return rc;
	pthread_mutex_lock(&o->lock);
	if (sub->slow) {
		rc = -ENOBUFS; /* already condemned; its owner is dropping it */
		goto out;
	}
	size_t unsent = atomic_load_explicit(&sub->unsent, memory_order_relaxed) + sub->mail_bytes;
	sub->slow = slow_verdict(sub, unsent, m->len);
	if (sub->slow) {
		pressure_here |= OWNER_PRESSURE_DROP;
		rc = -ENOBUFS;
		goto queue; /* no mail, but the owner must look at it */
	}
	note_pressure(sub, unsent, m->len);
	/* The mail array's capacity is implied by its count: 8, then doubling. */
	unsigned n = sub->mail_count;
	if (n == 0 || (n >= 8 && (n & (n - 1)) == 0)) {
		unsigned cap = n ? n * 2 : 8;
		struct msg **nm = realloc(sub->mail, cap * sizeof(*nm));
		if (!nm) {
			rc = -ENOMEM;
			goto out;
		}
		sub->mail = nm;
	}
	sub->mail[sub->mail_count++] = msg_ref(m);
	sub->mail_bytes += m->len;
queue:
	queue_locked(o, sub);
	if (!o->signalled && o != bound_here) /* the owner itself drains before it sleeps */
		wake = o->signalled = true;
out:
	pthread_mutex_unlock(&o->lock);
	/* wake() only writes to an fd; calling it unlocked keeps the owner lock a
	 * leaf. A late wake after a drain is harmless (an empty drain). */
	if (wake)
		o->wake(o);
	return rc;
}

struct taken {
	struct subscriber *sub;
	struct msg **mail;
	unsigned n;
	unsigned char slow;
};

/* Hand one subscriber its mail (or its verdict, after which mail is dropped). */
static void deliver_taken(struct taken *t)
{
	struct subscriber *sub = t->sub;
	if (t->slow && !sub->slow_closed) {
		sub->slow_closed = true;
		sub->ops->slow(sub, t->slow == SLOW_SOFT);
	}
	for (unsigned k = 0; k < t->n; k++) {
		if (!sub->slow_closed)
			sub->ops->deliver(sub, t->mail[k]);
		msg_unref(t->mail[k]);
	}
	free(t->mail);
	atomic_store_explicit(&sub->unsent, sub->ops->pending(sub), memory_order_relaxed);
}

#define DRAIN_STACK 32

/* Double the taken array, moving it off the stack the first time. */
static int grow_taken(struct taken **t, struct taken *stack, size_t *cap)
{
	size_t c = *cap * 2;
	struct taken *n = realloc(*t == stack ? NULL : *t, c * sizeof(*n));
	if (!n)
		return -ENOMEM;
	if (*t == stack)
		memcpy(n, stack, *cap * sizeof(*n));
	*t = n;
	*cap = c;
	return 0;
}

/* Tell the model about the subscribers local posts delivered to. The list is
 * taken whole first: a ready() may post, and so note subscribers, again. */
static void local_ready(struct owner *o, void (*ready)(struct subscriber *sub, void *arg), void *arg)
{
	if (!o->nlocal)
		return;
	struct subscriber **v = o->local;
	unsigned n = o->nlocal, cap = o->local_cap;
	o->local = NULL;
	o->nlocal = o->local_cap = 0;
	for (unsigned i = 0; i < n; i++)
		if (v[i])
			v[i]->local_queued = false;
	/* Each subscriber is on the list once, so one that ready() frees is
	 * never looked at again. */
	for (unsigned i = 0; i < n; i++)
		if (v[i])
			ready(v[i], arg);
	if (!o->local) { /* keep the array for the next turn */
		o->local = v;
		o->local_cap = cap;
	} else {
		free(v);
	}
}

void owner_drain(struct owner *o, void (*ready)(struct subscriber *sub, void *arg), void *arg)
{
	/* The first DRAIN_STACK subscribers need no allocation, so every drain
	 * makes progress even when memory is short. */
	struct taken stack[DRAIN_STACK], *t = stack;
	size_t nt = 0, cap = DRAIN_STACK;
	bool again = false;
	pthread_mutex_lock(&o->lock);
	o->signalled = false;
	/* Take everything under the lock: a publisher may re-queue a subscriber
	 * (reusing mail_next) the moment we unlock. */
	for (struct subscriber *sub = o->ready; sub; sub = sub->mail_next) {
		if (nt == cap && grow_taken(&t, stack, &cap) < 0) {
			/* The rest stays queued. A publisher wakes us only when
			 * signalled is false, and those subscribers may get no more
			 * mail: wake ourselves, so the next turn drains them. */
			again = o->signalled = true;
			break;
		}
		t[nt++] = (struct taken){sub, sub->mail, sub->mail_count, sub->slow};
		sub->mail_queued = false;
		sub->mail = NULL;
		sub->mail_count = 0;
		sub->mail_bytes = 0;
		o->ready = sub->mail_next;
	}
	pthread_mutex_unlock(&o->lock);
	if (again)
		o->wake(o);

	for (size_t i = 0; i < nt; i++)
		deliver_taken(&t[i]);
	/* ready() may free the subscriber it is given, so call it last. One on
	 * both lists is told twice, which is harmless; one that a ready() freed
	 * here is gone from the local list (owner_forget clears it). */
	for (size_t i = 0; i < nt; i++)
		ready(t[i].sub, arg);
	if (t != stack)
		free(t);
	local_ready(o, ready, arg);
}

void owner_flush(struct subscriber *sub)
{
	struct owner *o = sub->owner;
	pthread_mutex_lock(&o->lock);
	/* sub stays on the ready list (unlinking is a walk); owner_drain will find
	 * it with no mail, which is harmless. */
	struct taken t = {sub, sub->mail, sub->mail_count, sub->slow};
	sub->mail = NULL;
	sub->mail_count = 0;
	sub->mail_bytes = 0;
	pthread_mutex_unlock(&o->lock);
	if (t.n || t.slow)
		deliver_taken(&t);
	else
		free(t.mail);
}

void owner_forget(struct subscriber *sub)
{
	struct owner *o = sub->owner;
	if (sub->local_queued) {
		for (unsigned i = 0; i < o->nlocal; i++)
			if (o->local[i] == sub)
				o->local[i] = NULL;
		sub->local_queued = false;
	}
	pthread_mutex_lock(&o->lock);
	if (sub->mail_queued) {
		struct subscriber **pp = &o->ready;
		while (*pp != sub)
			pp = &(*pp)->mail_next;
		*pp = sub->mail_next;
		sub->mail_queued = false;
	}
	struct msg **mail = sub->mail;
	unsigned n = sub->mail_count;
	sub->mail = NULL;
	sub->mail_count = 0;
	sub->mail_bytes = 0;
	pthread_mutex_unlock(&o->lock);
	for (unsigned i = 0; i < n; i++)
		msg_unref(mail[i]);
	free(mail);
}
