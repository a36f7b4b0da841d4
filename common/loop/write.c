/* write.c - the loop's write order (loop.h, "connections and the write
 * order"): the pending list of connection ids and the before-sleep pass
 * that hands each listed connection to the model's write hook, the ones
 * whose input published last. Also the room for every id on the held list
 * (hold.c), reserved with the pending list's. */
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
	/* The held list is nearly always empty: a fresh block, not realloc's
	 * copy of the old one, so its pages are not touched until a hold uses
	 * them (idle memory per connection). */
	uint32_t *h = l->nheld ? realloc(l->held, (size_t)cap * sizeof(*h)) : malloc((size_t)cap * sizeof(*h));
	if (!h)
		return -ENOMEM; /* pending_cap unchanged: both hold at least that */
	if (!l->nheld)
		free(l->held);
	l->held = h;
	l->pending_cap = cap;
	return 0;
}

void loop_input(struct loop *l, struct loop_conn *lc, struct session *s, const char *p, size_t n)
{
	unsigned long posts = owner_posts_here();
	session_input(s, p, n);
	loop_pending_since(l, lc, posts);
}

/* Take id off a list of n ids (it is there once), keeping the others' order. */
static void take_off(uint32_t *list, uint32_t *n, uint32_t id)
{
	for (uint32_t i = 0; i < *n; i++) {
		if (list[i] == id) {
			memmove(&list[i], &list[i + 1], (*n - i - 1) * sizeof(list[0]));
			(*n)--;
			return;
		}
	}
}

void loop_unlist(struct loop *l, struct loop_conn *lc)
{
	if (lc->flags & LOOP_CONN_HELD)
		take_off(l->held, &l->nheld, lc->id); /* rare too: a held publisher ending */
	if (lc->flags & LOOP_CONN_PENDING) {
		/* Rare (a connection ending in the turn it was listed): keep the
		 * others' order and every entry naming a listed connection, so
		 * the list never holds more entries than ids. */
		take_off(l->pending, &l->npending, lc->id);
	}
	lc->flags &= (uint8_t)~(LOOP_CONN_PENDING | LOOP_CONN_PUBLISHED | LOOP_CONN_HELD);
	loop_conn_deadline_cancel(l, lc);
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
