#include "outbox.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Small enough that an idle connection holds nothing (drained chunks are freed),
 * large enough that pipelined small replies share a chunk. */
#define OUTBOX_CHUNK 4096 /* == msg.c's cached size: no malloc per small reply */
#define OUTBOX_RING0 8    /* first ring, once a second msg is queued */

/* The i-th queued msg, oldest first. */
static struct msg **slot(const struct outbox *o, unsigned i)
{
	if (!o->cap)
		return (struct msg **)&o->q.one;
	return &o->q.ring[(o->head + i) % o->cap];
}

static int push(struct outbox *o, struct msg *m, bool writable)
{
	unsigned room = o->cap ? o->cap : 1;
	if (o->count == room) {
		unsigned cap = o->cap ? o->cap * 2 : OUTBOX_RING0;
		struct msg **r = malloc(cap * sizeof(*r));
		if (!r)
			return -ENOMEM;
		for (unsigned i = 0; i < o->count; i++)
			r[i] = *slot(o, i);
		if (o->cap)
			free(o->q.ring);
		o->q.ring = r;
		o->head = 0;
		o->cap = cap;
	}
	o->count++;
	*slot(o, o->count - 1) = m;
	o->tail_writable = writable;
	return 0;
}

/* Forget the oldest msg (already unref'd or moved); back to the inline slot
 * once nothing is queued. */
static void pop_head(struct outbox *o)
{
	o->head_off = 0;
	o->count--;
	if (o->pinned)
		o->pinned--;
	if (o->cap) {
		o->head = (o->head + 1) % o->cap;
		if (!o->count) {
			free(o->q.ring);
			o->cap = 0;
		}
	}
	if (!o->count) {
		o->head = 0;
		o->q.one = NULL;
		o->tail_writable = false;
	}
}

int outbox_append(struct outbox *o, const void *p, size_t n)
{
	if (n == 0)
		return 0;
	/* Only whole: a reply split across two msgs could be cut in half by
	 * outbox_drop_unstarted(), which keeps or drops whole msgs. */
	if (o->count && o->tail_writable) {
		struct msg *t = *slot(o, o->count - 1);
		if (t->cap - t->len >= n) {
			memcpy(t->data + t->len, p, n);
			t->len += n;
			o->bytes += n;
			return 0;
		}
	}
	struct msg *m = msg_new(n > OUTBOX_CHUNK ? n : OUTBOX_CHUNK);
	if (!m)
		return -ENOMEM;
	memcpy(m->data, p, n);
	m->len = n;
	if (push(o, m, true) < 0) {
		msg_unref(m);
		return -ENOMEM;
	}
	o->bytes += n;
	return 0;
}

int outbox_append_msg(struct outbox *o, struct msg *m)
{
	if (m->len == 0)
		return 0;
	if (push(o, msg_ref(m), false) < 0) {
		msg_unref(m);
		return -ENOMEM;
	}
	o->bytes += m->len;
	return 0;
}

int outbox_iov(const struct outbox *o, struct iovec *iov, int max)
{
	int n = 0;
	for (unsigned i = 0; i < o->count && n < max; i++) {
		const struct msg *m = *slot(o, i);
		size_t off = i == 0 ? o->head_off : 0;
		if (m->len == off)
			continue;
		iov[n].iov_base = (char *)m->data + off;
		iov[n].iov_len = m->len - off;
		n++;
	}
	return n;
}

void outbox_consume(struct outbox *o, size_t n)
{
	o->bytes -= n;
	while (o->count) {
		struct msg *m = *slot(o, 0);
		size_t left = m->len - o->head_off;
		if (n < left) {
			o->head_off += n;
			return;
		}
		n -= left;
		msg_unref(m);
		pop_head(o);
	}
}

void outbox_pin(struct outbox *o, size_t n)
{
	unsigned k = 0;
	size_t off = o->head_off;
	while (n && k < o->count) {
		const struct msg *m = *slot(o, k++);
		size_t left = m->len - off;
		n -= n < left ? n : left;
		off = 0;
	}
	o->pinned = k;
}

void outbox_drop_unstarted(struct outbox *o)
{
	unsigned keep = o->count && o->head_off > 0 ? 1 : 0;
	if (o->pinned > keep)
		keep = o->pinned;
	while (o->count > keep) {
		struct msg *m = *slot(o, o->count - 1);
		o->bytes -= m->len; /* unstarted and unpinned: no byte of it was sent */
		msg_unref(m);
		if (o->count == 1) {
			pop_head(o);
		} else {
			o->count--;
			o->tail_writable = false;
		}
	}
}

void outbox_free(struct outbox *o)
{
	while (o->count) {
		msg_unref(*slot(o, 0));
		pop_head(o);
	}
	*o = (struct outbox){0};
}
