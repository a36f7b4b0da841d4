/* slots.h - the uring model's connection slots and its user_data codec.
 *
 * user_data = op (8 bits) | generation (24) | slot (32); a watch's (loop.h)
 * is op | its poll's generation (8) | its address (48). A connection lives
 * in a slot of a chunked table (slots never move, so a pointer to one stays
 * good); a slot is reused only after its generation was bumped, so a
 * completion naming the old generation is stale: slots_from() returns NULL
 * for it. Apart from uring.c's ring, nothing here touches the kernel, so a
 * unit test drives it (tests/unit/test_uring_slots.c). */
#ifndef WEFT_URING_SLOTS_H
#define WEFT_URING_SLOTS_H

#include <stdbool.h>
#include <stdint.h>

#include "loop.h"

#define SLOT_CHUNK 1024     /* connection slots are allocated this many at a time */
#define GEN_MASK 0xffffffu  /* struct conn's gen is 24 bits */
#define NO_SLOT UINT32_MAX

enum op { OP_ACCEPT = 1, OP_RECV, OP_SEND, OP_CANCEL, OP_WATCH };

enum {
	F_LIVE = 1 << 0,
	F_RECV = 1 << 1,        /* a multishot recv is armed */
	F_RECV_CANCEL = 1 << 2, /* ... and we asked to cancel it (back-pressure) */
	F_SEND = 1 << 3,        /* a send is in flight */
	F_CLOSING = 1 << 4,     /* cancelling everything; freed once nothing is in flight */
};

struct session;
struct sendv;

/* Kept small on purpose (40 bytes): an idle connection costs this plus its
 * session (and its entry in the runtime's deadline heap). lc.id is its slot (24 bits:
 * the table stops growing at LOOP_CONN_ID_MAX + 1 slots). */
struct conn {
	struct loop_conn lc;    /* first: the runtime's record (loop.h); lc.id = the slot */
	uint32_t gen : 24;      /* as in user_data */
	uint32_t flags : 8;
	struct session *s;
	struct sendv *sv; /* the iovecs of a multi-segment send in flight */
	union {
		int fd;             /* live */
		uint32_t next_free; /* free: next free slot */
	};
	struct loop_deadline dl; /* the runtime's (loop.h, deadlines): last traffic, when the policy looks next */
};

_Static_assert(sizeof(struct conn) <= 40, "an idle uring connection stays 40 bytes");

struct uring_slots {
	struct conn **chunks;
	uint32_t nchunks, free_head; /* free_head: NO_SLOT when every slot is taken */
};

static inline uint64_t ud_make(enum op op, uint32_t gen, uint32_t slot)
{
	return (uint64_t)op << 56 | (uint64_t)(gen & GEN_MASK) << 32 | slot;
}
static inline enum op ud_op(uint64_t ud) { return (enum op)(ud >> 56); }
static inline uint32_t ud_gen(uint64_t ud) { return (uint32_t)(ud >> 32) & GEN_MASK; }
static inline uint32_t ud_slot(uint64_t ud) { return (uint32_t)ud; }
static inline uint64_t conn_ud(const struct conn *c, enum op op) { return ud_make(op, c->gen, c->lc.id); }

/* A watch's poll request (OP_WATCH): its address (user-space pointers fit
 * in 48 bits) and the generation of its poll request (w->gen) in bits
 * 48-55, so a completion of a poll that was removed (its fd changed) is
 * known stale. */
#define WATCH_PTR ((1ull << 48) - 1)
static inline uint64_t watch_ud(const struct loop_watch *w)
{
	return (uint64_t)OP_WATCH << 56 | (uint64_t)w->gen << 48 | ((uintptr_t)w & WATCH_PTR);
}
static inline struct loop_watch *ud_watch(uint64_t ud) { return (struct loop_watch *)(uintptr_t)(ud & WATCH_PTR); }
static inline uint8_t ud_watch_gen(uint64_t ud) { return (uint8_t)(ud >> 48); }

static inline uint32_t slots_count(const struct uring_slots *sl) { return sl->nchunks * SLOT_CHUNK; }
static inline struct conn *slots_at(const struct uring_slots *sl, uint32_t slot)
{
	return &sl->chunks[slot / SLOT_CHUNK][slot % SLOT_CHUNK];
}

/* An empty table (no slots yet). */
void slots_init(struct uring_slots *sl);
/* SLOT_CHUNK more free slots. 0, or -ENOMEM (also past LOOP_CONN_ID_MAX). */
int slots_grow(struct uring_slots *sl);
/* A free slot, now F_LIVE with no session and fd -1; NULL when there is no
 * free one (slots_grow first). Its deadline record is the runtime's
 * (loop_conn_start). */
struct conn *slots_take(struct uring_slots *sl);
/* Give c's slot back (its deadline cancelled by the runtime: loop_unlist): its generation
 * moves on, so completions naming the old one are stale. */
void slots_put(struct uring_slots *sl, struct conn *c);
/* The live connection a completion's user_data names, or NULL if it is
 * stale (freed since, or reused by a later generation) or out of range. */
struct conn *slots_from(const struct uring_slots *sl, uint64_t ud);
/* Free the table (what the slots point at is the caller's). */
void slots_fini(struct uring_slots *sl);

#endif
