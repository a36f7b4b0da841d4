/* owner.c - the mailbox between publishers (any thread) and the thread that
 * owns a session, and the slow-consumer limits (Redis'
 * client-output-buffer-limit pubsub): owner_post() refuses a message that
 * would put a subscriber over --outbox-hard, or over --outbox-soft for longer
 * than --outbox-soft-secs, counting its queued mail plus the unsent output its
 * owner last reported (session->unsent). The owner then drops the session in
 * owner_drain (chat_slow_consumer). A publisher never waits for a
 * subscriber and a subscriber's memory stays bounded. */
#include "owner.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "msg.h"
#include "server.h"
#include "session.h"

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
}

void owner_destroy(struct owner *o)
{
	free(o->local);
	pthread_mutex_destroy(&o->lock);
}

static _Thread_local struct owner *bound_here;

/* A loop that owns many sessions fills an output chunk for each of them per
 * turn (one per subscriber of a 1 -> 1000 fan-out): let it keep that many. */
#define LOOP_MSG_CACHE 1024

void owner_bind(struct owner *o)
{
	bound_here = o;
	msg_cache_limit(o ? LOOP_MSG_CACHE : 0);
}

/* Would one more message of len bytes put s over a limit, with unsent bytes
 * waiting already? (owner->lock, or the owner thread under the exchange lock) */
static int slow_verdict(struct session *s, size_t unsent, size_t len)
{
	const struct config *cfg = s->srv->cfg;
	unsent += len;
	if (cfg->outbox_hard && unsent > cfg->outbox_hard)
		return SLOW_HARD;
	if (!cfg->outbox_soft || unsent <= cfg->outbox_soft) {
		s->soft_since = 0;
		return SLOW_NO;
	}
	long long now = now_ms();
	if (!s->soft_since)
		s->soft_since = now ? now : 1;
	else if (now - s->soft_since >= cfg->outbox_soft_ms)
		return SLOW_SOFT;
	return SLOW_NO;
}

static _Thread_local unsigned long posts_here;

unsigned long owner_posts_here(void) { return posts_here; }

/* Note s for the owner's next owner_drain(); false on ENOMEM. */
static bool local_note(struct owner *o, struct session *s)
{
	if (s->local_queued)
		return true;
	if (o->nlocal == o->local_cap) {
		unsigned cap = o->local_cap ? o->local_cap * 2 : 64;
		struct session **v = realloc(o->local, cap * sizeof(*v));
		if (!v)
			return false;
		o->local = v;
		o->local_cap = cap;
	}
	o->local[o->nlocal++] = s;
	s->local_queued = true;
	return true;
}

/* Queue s for owner_drain with no mail: it holds a slow-consumer verdict. */
static void queue_locked(struct owner *o, struct session *s)
{
	if (!s->mail_queued) {
		s->mail_queued = true;
		s->mail_next = o->ready;
		o->ready = s;
	}
}

/* The owner thread posting to its own session with no mail waiting (mail
 * would have to go out first): append now, judged on the real output.
 * False: take the mailbox path. */
static bool post_local(struct session *s, struct msg *m, int *rc)
{
	struct owner *o = s->owner;
	if (o != bound_here || s->mail_count || s->slow)
		return false;
	int verdict = slow_verdict(s, session_pending(s), m->len);
	if (verdict) {
		/* owner_drain acts on it (chat_slow_consumer), outside the
		 * exchange lock; this thread drains before it sleeps. */
		pthread_mutex_lock(&o->lock);
		s->slow = (unsigned char)verdict;
		queue_locked(o, s);
		pthread_mutex_unlock(&o->lock);
		*rc = -ENOBUFS;
		return true;
	}
	if (!local_note(o, s))
		return false;
	*rc = 0;
	if (!s->slow_closed && session_write_msg(s, m) < 0)
		session_close_after_flush(s);
	atomic_store_explicit(&s->unsent, session_pending(s), memory_order_relaxed);
	return true;
}

int owner_post(struct session *s, struct msg *m)
{
	posts_here++;
	struct owner *o = s->owner;
	bool wake = false;
	int rc = 0;
	if (post_local(s, m, &rc))
		return rc;
	pthread_mutex_lock(&o->lock);
	if (s->slow) {
		rc = -ENOBUFS; /* already condemned; its owner is dropping it */
		goto out;
	}
	s->slow = slow_verdict(s, atomic_load_explicit(&s->unsent, memory_order_relaxed) + s->mail_bytes, m->len);
	if (s->slow) {
		rc = -ENOBUFS;
		goto queue; /* no mail, but the owner must look at it */
	}
	/* The mail array's capacity is implied by its count: 8, then doubling. */
	unsigned n = s->mail_count;
	if (n == 0 || (n >= 8 && (n & (n - 1)) == 0)) {
		unsigned cap = n ? n * 2 : 8;
		struct msg **nm = realloc(s->mail, cap * sizeof(*nm));
		if (!nm) {
			rc = -ENOMEM;
			goto out;
		}
		s->mail = nm;
	}
	s->mail[s->mail_count++] = msg_ref(m);
	s->mail_bytes += m->len;
queue:
	queue_locked(o, s);
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
	struct session *s;
	struct msg **mail;
	unsigned n;
	unsigned char slow;
};

/* Move one session's mail into its outbox (or drop it with the session). */
static void deliver(struct taken *t)
{
	struct session *s = t->s;
	if (t->slow && !s->slow_closed) {
		s->slow_closed = true;
		chat_slow_consumer(s, t->slow == SLOW_SOFT);
	}
	for (unsigned k = 0; k < t->n; k++) {
		if (!s->slow_closed && session_write_msg(s, t->mail[k]) < 0)
			session_close_after_flush(s);
		msg_unref(t->mail[k]);
	}
	free(t->mail);
	atomic_store_explicit(&s->unsent, session_pending(s), memory_order_relaxed);
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

/* Tell the model about the sessions local posts appended to. The list is
 * taken whole first: a ready() may post, and so note sessions, again. */
static void local_ready(struct owner *o, void (*ready)(struct session *s, void *arg), void *arg)
{
	if (!o->nlocal)
		return;
	struct session **v = o->local;
	unsigned n = o->nlocal, cap = o->local_cap;
	o->local = NULL;
	o->nlocal = o->local_cap = 0;
	for (unsigned i = 0; i < n; i++)
		if (v[i])
			v[i]->local_queued = false;
	/* Each session is on the list once, so one that ready() frees is
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

void owner_drain(struct owner *o, void (*ready)(struct session *s, void *arg), void *arg)
{
	/* The first DRAIN_STACK sessions need no allocation, so every drain
	 * makes progress even when memory is short. */
	struct taken stack[DRAIN_STACK], *t = stack;
	size_t nt = 0, cap = DRAIN_STACK;
	bool again = false;
	pthread_mutex_lock(&o->lock);
	o->signalled = false;
	/* Take everything under the lock: a publisher may re-queue a session
	 * (reusing mail_next) the moment we unlock. */
	for (struct session *s = o->ready; s; s = s->mail_next) {
		if (nt == cap && grow_taken(&t, stack, &cap) < 0) {
			/* The rest stays queued. A publisher wakes us only when
			 * signalled is false, and those sessions may get no more
			 * mail: wake ourselves, so the next turn drains them. */
			again = o->signalled = true;
			break;
		}
		t[nt++] = (struct taken){s, s->mail, s->mail_count, s->slow};
		s->mail_queued = false;
		s->mail = NULL;
		s->mail_count = 0;
		s->mail_bytes = 0;
		o->ready = s->mail_next;
	}
	pthread_mutex_unlock(&o->lock);
	if (again)
		o->wake(o);

	for (size_t i = 0; i < nt; i++)
		deliver(&t[i]);
	/* ready() may free the session it is given, so call it last. A session
	 * on both lists is told twice, which is harmless; one that a ready()
	 * freed here is gone from the local list (owner_forget clears it). */
	for (size_t i = 0; i < nt; i++)
		ready(t[i].s, arg);
	if (t != stack)
		free(t);
	local_ready(o, ready, arg);
}

void owner_flush(struct session *s)
{
	struct owner *o = s->owner;
	pthread_mutex_lock(&o->lock);
	/* s stays on the ready list (unlinking is a walk); owner_drain will find
	 * it with no mail, which is harmless. */
	struct taken t = {s, s->mail, s->mail_count, s->slow};
	s->mail = NULL;
	s->mail_count = 0;
	s->mail_bytes = 0;
	pthread_mutex_unlock(&o->lock);
	if (t.n || t.slow)
		deliver(&t);
	else
		free(t.mail);
}

void owner_forget(struct session *s)
{
	struct owner *o = s->owner;
	if (s->local_queued) {
		for (unsigned i = 0; i < o->nlocal; i++)
			if (o->local[i] == s)
				o->local[i] = NULL;
		s->local_queued = false;
	}
	pthread_mutex_lock(&o->lock);
	if (s->mail_queued) {
		struct session **pp = &o->ready;
		while (*pp != s)
			pp = &(*pp)->mail_next;
		*pp = s->mail_next;
		s->mail_queued = false;
	}
	struct msg **mail = s->mail;
	unsigned n = s->mail_count;
	s->mail = NULL;
	s->mail_count = 0;
	s->mail_bytes = 0;
	pthread_mutex_unlock(&o->lock);
	for (unsigned i = 0; i < n; i++)
		msg_unref(mail[i]);
	free(mail);
}
