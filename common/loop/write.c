/* write.c - the loop's write order (loop.h, "connections and the write
 * order"): the pending list of connection ids and the before-sleep pass
 * that hands each listed connection to the model's write hook, the ones
 * whose input published last. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "loop.h"
#include "session.h"

int loop_conns_reserve(struct loop *l, uint32_t n)
{
	if (n <= l->pending_cap)
		return 0;
	if (n > LOOP_CONN_ID_MAX + 1u)
		return -ENOMEM;
	uint32_t cap = l->pending_cap ? l->pending_cap : 256;
	while (cap < n)
		cap *= 2;
	uint32_t *p = realloc(l->pending, (size_t)cap * sizeof(*p));
	if (!p)
		return -ENOMEM;
	l->pending = p;
	l->pending_cap = cap;
	return 0;
}

void loop_input(struct loop *l, struct loop_conn *lc, struct session *s, const char *p, size_t n)
{
	unsigned long posts = owner_posts_here();
	session_input(s, p, n);
	if (owner_posts_here() != posts) {
		lc->flags |= LOOP_CONN_PUBLISHED;
		l->published = true;
	}
	loop_pending(l, lc);
}

void loop_unlist(struct loop *l, struct loop_conn *lc)
{
	if (lc->flags & LOOP_CONN_PENDING) {
		/* Rare (a connection ending in the turn it was listed): keep the
		 * others' order and every entry naming a listed connection, so
		 * the list never holds more entries than ids. */
		for (uint32_t i = 0; i < l->npending; i++) {
			if (l->pending[i] == lc->id) {
				memmove(&l->pending[i], &l->pending[i + 1], (l->npending - i - 1) * sizeof(l->pending[0]));
				l->npending--;
				break;
			}
		}
	}
	lc->flags &= (uint8_t)~(LOOP_CONN_PENDING | LOOP_CONN_PUBLISHED);
}

/* One pass over the list: every listed connection, or (first pass of two)
 * only those whose input did not publish. A write may list connections
 * (its own or others'): they are appended and reached in this same pass. */
static void pass(struct loop *l, bool skip_published)
{
	for (uint32_t i = 0; i < l->npending; i++) {
		struct loop_conn *lc = l->m->conn(l, l->pending[i]);
		if (!lc || !(lc->flags & LOOP_CONN_PENDING))
			continue; /* written already (first pass) */
		if (skip_published && (lc->flags & LOOP_CONN_PUBLISHED))
			continue;
		lc->flags &= (uint8_t)~(LOOP_CONN_PENDING | LOOP_CONN_PUBLISHED);
		l->m->write(l, lc);
	}
}

void loop_write_pending(struct loop *l)
{
	if (l->published) {
		l->published = false;
		pass(l, true); /* subscribers (and everyone else) first */
	}
	pass(l, false);
	l->npending = 0;
}
