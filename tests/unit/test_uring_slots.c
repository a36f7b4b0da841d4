/* test_uring_slots.c - the uring model's user_data codec and connection
 * slots (servers/uring/slots.h), without a ring: what a completion's
 * user_data decodes to, and that a completion naming a slot's old
 * generation finds nothing once the slot was freed, or reused. */
#include <stdlib.h>

#include "check.h"
#include "uring/slots.h"

static void codec(void)
{
	static const enum op ops[] = {OP_ACCEPT, OP_RECV, OP_SEND, OP_CANCEL, OP_WATCH};
	static const uint32_t gens[] = {0, 1, 0x123456, GEN_MASK};
	static const uint32_t slots[] = {0, 1, SLOT_CHUNK, 0xfffffffeu, UINT32_MAX};
	int bad = 0;
	for (size_t o = 0; o < sizeof(ops) / sizeof(ops[0]); o++)
		for (size_t g = 0; g < sizeof(gens) / sizeof(gens[0]); g++)
			for (size_t k = 0; k < sizeof(slots) / sizeof(slots[0]); k++) {
				uint64_t ud = ud_make(ops[o], gens[g], slots[k]);
				if (ud_op(ud) != ops[o] || ud_gen(ud) != gens[g] || ud_slot(ud) != slots[k])
					bad++;
			}
	CHECK(bad == 0);
	/* a generation wider than 24 bits is cut to them; it never spills into op */
	uint64_t ud = ud_make(OP_SEND, GEN_MASK + 2, 7);
	CHECK(ud_op(ud) == OP_SEND && ud_gen(ud) == 1 && ud_slot(ud) == 7);
	/* op 0 is no op: a zeroed user_data is never a connection's */
	CHECK(ud_op(0) == 0 && OP_ACCEPT != 0);
	/* a watch's: its address and its poll's generation, under OP_WATCH */
	static struct loop_watch w = {.gen = 0xa5};
	uint64_t wu = watch_ud(&w);
	CHECK(ud_op(wu) == OP_WATCH && ud_watch(wu) == &w && ud_watch_gen(wu) == 0xa5);
	w.gen++;
	CHECK(ud_watch_gen(wu) != w.gen); /* the old poll's completion is stale */
}

static void generations(void)
{
	struct uring_slots sl;
	slots_init(&sl);
	CHECK(slots_count(&sl) == 0 && slots_take(&sl) == NULL);
	CHECK(slots_from(&sl, ud_make(OP_RECV, 0, 0)) == NULL); /* out of range: no table yet */
	CHECK(slots_grow(&sl) == 0 && slots_count(&sl) == SLOT_CHUNK);

	struct conn *a = slots_take(&sl);
	CHECK(a && (a->flags & F_LIVE) && a->fd == -1 && !a->s && !a->sv);
	uint64_t recv_a = conn_ud(a, OP_RECV), send_a = conn_ud(a, OP_SEND);
	CHECK(slots_from(&sl, recv_a) == a && slots_from(&sl, send_a) == a);
	CHECK(slots_from(&sl, ud_make(OP_RECV, a->gen + 1, a->lc.id)) == NULL); /* a generation not yet lived */
	CHECK(slots_from(&sl, ud_make(OP_RECV, 0, slots_count(&sl))) == NULL); /* past the end */

	/* Freed: its old completions are stale, and stay stale once the slot is
	 * reused (the free list hands the same slot back first). */
	uint32_t slot = a->lc.id, gen = a->gen;
	slots_put(&sl, a);
	CHECK(slots_from(&sl, recv_a) == NULL);
	struct conn *b = slots_take(&sl);
	CHECK(b == a && b->lc.id == slot && b->gen == ((gen + 1) & GEN_MASK));
	CHECK(slots_from(&sl, recv_a) == NULL && slots_from(&sl, conn_ud(b, OP_RECV)) == b);
	slots_put(&sl, b);

	/* The generation wraps at 24 bits and still tells the old apart. */
	struct conn *c = slots_take(&sl);
	c->gen = GEN_MASK;
	uint64_t old = conn_ud(c, OP_RECV);
	slots_put(&sl, c);
	c = slots_take(&sl);
	CHECK(c->gen == 0 && slots_from(&sl, old) == NULL && slots_from(&sl, conn_ud(c, OP_RECV)) == c);
	slots_put(&sl, c);

	/* Every slot of a chunk is handed out once, then none until it grows;
	 * slots stay put (a pointer taken before a grow is still good). */
	struct conn **taken = calloc(SLOT_CHUNK, sizeof(*taken));
	int dup = 0;
	for (int i = 0; i < SLOT_CHUNK; i++) {
		taken[i] = slots_take(&sl);
		if (!taken[i] || taken[i] != slots_at(&sl, taken[i]->lc.id))
			dup++;
		for (int j = 0; j < i && taken[i]; j++)
			if (taken[j] == taken[i])
				dup++;
	}
	CHECK(dup == 0 && slots_take(&sl) == NULL);
	uint64_t first = conn_ud(taken[0], OP_SEND);
	CHECK(slots_grow(&sl) == 0 && slots_count(&sl) == 2 * SLOT_CHUNK);
	struct conn *d = slots_take(&sl);
	CHECK(d && d->lc.id >= SLOT_CHUNK && slots_from(&sl, conn_ud(d, OP_RECV)) == d);
	CHECK(slots_from(&sl, first) == taken[0]); /* the first chunk did not move */
	free(taken);
	slots_fini(&sl);
	CHECK(slots_count(&sl) == 0);
}

int main(void)
{
	codec();
	generations();
	return check_done();
}
