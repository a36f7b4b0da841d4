/* link_loop.h - the little a loop must do to host the engine link: watch a few
 * fds for readable / writable, keep one timer, and be woken from another
 * thread. The link (link.c) is written against this and nothing else, so it
 * is one non-session connection on whatever loop hosts it: loop 0 of the
 * loop runtime (link_host.c, a loop_guest), or a fake loop in a unit test. */
#ifndef WEFT_CLUSTER_LOOP_H
#define WEFT_CLUSTER_LOOP_H

#include <stdbool.h>

/* Two per link: the single engine needs 2; the sharded one 2 for its map
 * link and 2 per shard (shards.h). */
#define CL_LOOP_SLOTS 66

struct cl_loop;

/* What the hosted code is called with, on the loop's thread. */
struct cl_handler {
	/* The fd in slot is readable and/or writable (an error or hang-up
	 * reports both, so the next read or write finds it). */
	void (*io)(void *arg, int slot, bool rd, bool wr);
	void (*timer)(void *arg); /* the timer is due (it is cleared first) */
	void (*wake)(void *arg);  /* cl_loop_ops.wake() was called */
	void *arg;
};

struct cl_loop_ops {
	/* Watch fd in slot (0..CL_LOOP_SLOTS-1); fd -1 stops watching it. */
	void (*watch)(struct cl_loop *l, int slot, int fd, bool rd, bool wr);
	/* Call handler.timer at at_ms (now_ms() clock); 0 clears it. */
	void (*timer)(struct cl_loop *l, long long at_ms);
	/* From any thread: call handler.wake soon (several calls may make one). */
	void (*wake)(struct cl_loop *l);
};

struct cl_loop {
	const struct cl_loop_ops *ops;
};

static inline void cl_watch(struct cl_loop *l, int slot, int fd, bool rd, bool wr) { l->ops->watch(l, slot, fd, rd, wr); }
static inline void cl_timer(struct cl_loop *l, long long at_ms) { l->ops->timer(l, at_ms); }
static inline void cl_wake(struct cl_loop *l) { l->ops->wake(l); }

#endif
