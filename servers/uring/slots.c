/* slots.c - the uring model's connection slots. See slots.h. */
#include "slots.h"

#include <errno.h>
#include <stdlib.h>

void slots_init(struct uring_slots *sl)
{
	sl->chunks = NULL;
	sl->nchunks = 0;
	sl->free_head = NO_SLOT;
}

int slots_grow(struct uring_slots *sl)
{
	if (slots_count(sl) + SLOT_CHUNK > LOOP_CONN_ID_MAX + 1u)
		return -ENOMEM; /* a slot is a loop_conn id */
	struct conn **ch = realloc(sl->chunks, (sl->nchunks + 1) * sizeof(*ch));
	if (!ch)
		return -ENOMEM;
	sl->chunks = ch;
	struct conn *c = calloc(SLOT_CHUNK, sizeof(*c));
	if (!c)
		return -ENOMEM;
	uint32_t base = sl->nchunks * SLOT_CHUNK;
	for (uint32_t i = 0; i < SLOT_CHUNK; i++) {
		c[i].lc.id = base + i;
		loop_timer_init(&c[i].dl.timer); /* unarmed until the runtime arms it */
		c[i].next_free = i + 1 < SLOT_CHUNK ? base + i + 1 : sl->free_head;
	}
	sl->chunks[sl->nchunks++] = c;
	sl->free_head = base;
	return 0;
}

struct conn *slots_take(struct uring_slots *sl)
{
	if (sl->free_head == NO_SLOT)
		return NULL;
	struct conn *c = slots_at(sl, sl->free_head);
	sl->free_head = c->next_free;
	c->flags = F_LIVE;
	c->lc.flags = 0;
	c->s = NULL;
	c->sv = NULL;
	c->fd = -1; /* was next_free */
	loop_timer_init(&c->dl.timer);
	return c;
}

void slots_put(struct uring_slots *sl, struct conn *c)
{
	c->gen = (c->gen + 1) & GEN_MASK; /* every CQE naming the old generation is now stale */
	c->flags = 0;
	c->lc.flags = 0;
	c->s = NULL;
	c->next_free = sl->free_head; /* in place of fd */
	sl->free_head = c->lc.id;
}

struct conn *slots_from(const struct uring_slots *sl, uint64_t ud)
{
	uint32_t slot = ud_slot(ud);
	if (slot >= slots_count(sl))
		return NULL;
	struct conn *c = slots_at(sl, slot);
	if (!(c->flags & F_LIVE) || c->gen != ud_gen(ud))
		return NULL;
	return c;
}

void slots_fini(struct uring_slots *sl)
{
	for (uint32_t i = 0; i < sl->nchunks; i++)
		free(sl->chunks[i]);
	free(sl->chunks);
	slots_init(sl);
}
