#include "owner.h"

#include <errno.h>
#include <stdlib.h>

#include "msg.h"
#include "session.h"

void owner_init(struct owner *o, void (*wake)(struct owner *o), void *model_data)
{
	pthread_mutex_init(&o->lock, NULL);
	o->ready = NULL;
	o->signalled = false;
	o->wake = wake;
	o->model_data = model_data;
}

void owner_destroy(struct owner *o) { pthread_mutex_destroy(&o->lock); }

int owner_post(struct session *s, struct msg *m)
{
	struct owner *o = s->owner;
	bool wake = false;
	int rc = 0;
	pthread_mutex_lock(&o->lock);
	if (s->mail_count == s->mail_cap) {
		unsigned cap = s->mail_cap ? s->mail_cap * 2 : 8;
		struct msg **nm = realloc(s->mail, cap * sizeof(*nm));
		if (!nm) {
			rc = -ENOMEM;
			goto out;
		}
		s->mail = nm;
		s->mail_cap = cap;
	}
	s->mail[s->mail_count++] = msg_ref(m);
	if (!s->mail_queued) {
		s->mail_queued = true;
		s->mail_next = o->ready;
		o->ready = s;
	}
	if (!o->signalled)
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
};

void owner_drain(struct owner *o, void (*ready)(struct session *s, void *arg), void *arg)
{
	struct taken *t = NULL;
	size_t nt = 0, cap = 0;
	pthread_mutex_lock(&o->lock);
	o->signalled = false;
	/* Take everything under the lock: a publisher may re-queue a session
	 * (reusing mail_next) the moment we unlock. */
	for (struct session *s = o->ready; s; s = s->mail_next) {
		if (nt == cap) {
			cap = cap ? cap * 2 : 16;
			struct taken *nt2 = realloc(t, cap * sizeof(*t));
			if (!nt2)
				break; /* the rest stays queued for the next drain */
			t = nt2;
		}
		t[nt++] = (struct taken){s, s->mail, s->mail_count};
		s->mail_queued = false;
		s->mail = NULL;
		s->mail_count = s->mail_cap = 0;
		o->ready = s->mail_next;
	}
	pthread_mutex_unlock(&o->lock);

	for (size_t i = 0; i < nt; i++) {
		for (unsigned k = 0; k < t[i].n; k++) {
			if (session_write_msg(t[i].s, t[i].mail[k]) < 0)
				session_close_after_flush(t[i].s);
			msg_unref(t[i].mail[k]);
		}
		free(t[i].mail);
	}
	/* ready() may free the session it is given, so call it last. */
	for (size_t i = 0; i < nt; i++)
		ready(t[i].s, arg);
	free(t);
}

void owner_forget(struct session *s)
{
	struct owner *o = s->owner;
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
	s->mail_count = s->mail_cap = 0;
	pthread_mutex_unlock(&o->lock);
	for (unsigned i = 0; i < n; i++)
		msg_unref(mail[i]);
	free(mail);
}
