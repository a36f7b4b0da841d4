/* shards.h - the engine as a Redis Cluster (redis-cluster://): sharded pub/sub.
 *
 * One link (link.h) per shard primary, each the usual pair of connections:
 * the subscriber one carries SSUBSCRIBE / SUNSUBSCRIBE and smessage, the
 * publisher one SPUBLISH (pipelined). One more link, to a seed (then to any
 * node the map named), reads the slot map with CLUSTER NODES. A channel lives
 * in the slot of its engine name (slot.h); commands are sent to the link of
 * the slot's owner. A MOVED reply, an unsolicited sunsubscribe (the slot left
 * that node) or a shard's link failing refreshes the map; the channels of the
 * slots whose owner changed are subscribed again on the new owner, and a
 * shard's link that comes (back) up subscribes every held channel of its
 * slots.
 *
 * Every link keeps its own state machine, back-off and timer; they share the
 * host loop (link_loop.h) through a small multiplexer (each link sees a
 * cl_loop of its own: two fd slots and one timer). Loop thread only, like
 * the link. */
#ifndef WEFT_CLUSTER_SHARDS_H
#define WEFT_CLUSTER_SHARDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "link.h"
#include "slot.h"

#define SHARDS_MAX 32 /* shard primaries (links); the loop slots: 2 for the map link, 2 each */

struct redisReply;
struct shards;

struct shards_handler {
	/* An smessage from a shard (channel with the engine's prefix). */
	void (*message)(void *arg, const struct redisReply *ch, const struct redisReply *payload);
	/* Whether this node holds the engine channel [ch, ch + n): a sunsubscribe
	 * of one it holds was not asked for (the slot moved). */
	bool (*wanted)(void *arg, const char *ch, size_t n);
	/* SSUBSCRIBE on the owner every held channel whose slot shard owns and,
	 * slots non-NULL, whose bit is set there (shards_send). */
	void (*resub)(void *arg, int shard, const uint64_t *slots);
	void (*tick)(void *arg);             /* every LINK_TICK_MS once the map is known */
	void (*state)(void *arg, bool up);   /* the map is known and every owner's link is up, or not any more */
	void *arg;
};

/* u->sharded, with its seeds; hosts: --cluster-hosts (hosts.h: the map's
 * nodes elsewhere are not connected to), NULL = the seeds' hosts only, kept
 * (not copied). tls NULL: plain. */
struct shards *shards_new(const struct cluster_url *u, const char *hosts, struct tls_ctx *tls, struct cl_loop *loop,
                          const struct shards_handler *h, const struct link_limits *lim);
void shards_free(struct shards *s);
void shards_start(struct shards *s);
/* The host loop's callbacks. */
void shards_io(struct shards *s, int slot, bool rd, bool wr);
void shards_timer(struct shards *s);
void shards_read_more(struct shards *s); /* the wake: link_read_more on each link */
/* Queue a formatted command for the owner of slot on conn. 0, -ENOTCONN (the
 * owner unknown or its link down), -ENOMEM. */
int shards_send(struct shards *s, unsigned slot, enum link_conn conn, const char *p, size_t n);
/* The shard (0..SHARDS_MAX-1) owning slot, or -1. */
int shards_owner(const struct shards *s, unsigned slot);
/* Whether the owner of slot is known and its link up. */
bool shards_slot_up(const struct shards *s, unsigned slot);
/* Publisher bytes queued and unwritten on every shard. */
size_t shards_backlog(const struct shards *s);
/* A shard's link reads slower than its engine queues (link_behind). */
bool shards_behind(const struct shards *s);
/* Primaries in the map, and how many of their links are up. */
void shards_counts(const struct shards *s, int *known, int *up);

#endif
