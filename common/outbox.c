#include "outbox.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Small enough that an idle connection holds nothing (drained chunks are freed),
 * large enough that pipelined small replies share a chunk. */
#define OUTBOX_CHUNK 4096 /* == msg.c's cached size: no malloc per small reply */

static int push(struct outbox *o, struct msg *m, bool writable)
{
	if (o->count == o->cap) {
		unsigned cap = o->cap ? o->cap * 2 : 8;
		struct outbox_ent *e = malloc(cap * sizeof(*e));
		if (!e)
			return -ENOMEM;
		for (unsigned i = 0; i < o->count; i++)
			e[i] = o->ents[(o->head + i) % o->cap];
		free(o->ents);
		o->ents = e;
		o->head = 0;
		o->cap = cap;
	}
	o->ents[(o->head + o->count) % o->cap] = (struct outbox_ent){m, 0, writable};
	o->count++;
	return 0;
}

int outbox_append(struct outbox *o, const void *p, size_t n)
{
	if (n == 0)
		return 0;
	if (o->count) {
		struct outbox_ent *t = &o->ents[(o->head + o->count - 1) % o->cap];
		size_t room = t->writable ? t->m->cap - t->m->len : 0;
		if (room) {
			size_t k = n < room ? n : room;
			memcpy(t->m->data + t->m->len, p, k);
			t->m->len += k;
			o->bytes += k;
			p = (const char *)p + k;
			n -= k;
			if (!n)
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
		const struct outbox_ent *e = &o->ents[(o->head + i) % o->cap];
		if (e->m->len == e->off)
			continue;
		iov[n].iov_base = e->m->data + e->off;
		iov[n].iov_len = e->m->len - e->off;
		n++;
	}
	return n;
}

void outbox_consume(struct outbox *o, size_t n)
{
	o->bytes -= n;
	while (o->count) {
		struct outbox_ent *e = &o->ents[o->head];
		size_t left = e->m->len - e->off;
		if (n < left) {
			e->off += n;
			return;
		}
		n -= left;
		msg_unref(e->m);
		o->head = (o->head + 1) % o->cap;
		o->count--;
	}
}

void outbox_free(struct outbox *o)
{
	while (o->count) {
		msg_unref(o->ents[o->head].m);
		o->head = (o->head + 1) % o->cap;
		o->count--;
	}
	free(o->ents);
	*o = (struct outbox){0};
}
