/* link.h - the connection to the engine (Redis): two TCP connections, one in
 * subscriber mode and one for PUBLISH (RESP2 allows nothing else on a
 * subscribed connection), made and kept together: the link is up when both
 * have answered AUTH (if any) and PING, and goes down as a whole.
 *
 * Non-blocking connect, TLS through weft's byte transform (tls.c) for
 * rediss://, replies parsed by hiredis's redisReader; reconnect with
 * exponential backoff and jitter; host names resolved without blocking
 * (getaddrinfo_a). Runs on a loop (link_loop.h) and is only ever touched on
 * that loop's thread. */
#ifndef WEFT_CLUSTER_LINK_H
#define WEFT_CLUSTER_LINK_H

#include <stdbool.h>
#include <stddef.h>

#include "link_loop.h"
#include "stats.h"
#include "url.h"

struct tls_ctx;
struct redisReply;
struct link;

enum link_conn { LINK_SUB, LINK_PUB, LINK_CONNS };

#define LINK_TICK_MS 1000

struct link_handler {
	void (*up)(void *arg);   /* both connections are ready */
	void (*down)(void *arg); /* the link was up and is not any more */
	void (*tick)(void *arg); /* every LINK_TICK_MS while up */
	/* One reply on conn; the handler keeps nothing of it. Return <0 to drop
	 * the link (a protocol error). */
	int (*reply)(void *arg, enum link_conn conn, struct redisReply *r);
	void *arg;
	/* Optional: an attempt failed before the link was up (the sharded
	 * engine tries another node). */
	void (*failed)(void *arg);
	/* Optional: a count that grows with the work the replies left for the
	 * loop's write pass (the bridge: local deliveries). A read pass stops
	 * once it grew by link_limits.pass_work. */
	unsigned long (*work)(void *arg);
};

struct link_limits {
	size_t max_reply;       /* bytes of one reply buffered unparsed */
	size_t max_bulk;        /* bytes of one bulk string (a message, its envelope, its channel) */
	int backoff_max_ms;     /* reconnect back-off cap */
	int connect_timeout_ms; /* connect, TLS, AUTH and PING within this */
	size_t pub_bulk;        /* bytes of one bulk string on the publisher connection (0: none; the
	                         * sharded engine's CLUSTER NODES text) */
	size_t max_out[LINK_CONNS]; /* bytes queued for the engine per connection, beyond what the up
	                             * handler queued; past it the link fails (the engine does not read) */
	unsigned long pass_work;    /* a read pass stops once handler.work grew this much (0: no bound) */
};

/* tls NULL: plain TCP. Beyond a limit a reply is a protocol error: the link
 * is dropped (counted, logged) and made again. u->pass non-empty: AUTH. */
struct link *link_new(const struct cluster_url *u, struct tls_ctx *tls, struct cl_loop *loop,
                      const struct link_handler *h, const struct link_limits *lim);
void link_free(struct link *l);
/* The first attempt, now. */
void link_start(struct link *l);
/* Called by the loop (cl_handler). */
void link_io(struct link *l, int slot, bool rd, bool wr);
void link_timer(struct link *l);
/* The wake: read on where the last read stopped at its budget; up: also
 * read every connection of a link that is up (the wake follows publishes,
 * whose copies the engine sends back; the loop's next readiness report for
 * them may be turns away). */
void link_read_more(struct link *l, bool up);
/* Queue a formatted command on conn (only while up). 0 or -ENOMEM, or
 * -ENOTCONN (not up, or a write to conn failed: the link is lost at its next
 * turn), or -ENOBUFS: the queue is at its bound (max_out); the link fails at
 * its next turn. */
int link_send(struct link *l, enum link_conn conn, const char *p, size_t n);
/* The counter of a publish link_send (or shards_send) refused with rc:
 * weft_cluster_dropped_total reason="down" (-ENOTCONN) or "full". */
enum stat_id link_drop_stat(int rc);
/* on: what is queued until link_burst(l, false) is a whole resubscription
 * (the up handler's, a slot move's): bounded by the held table, so it is
 * not held to max_out and raises the connection's bound by its size. */
void link_burst(struct link *l, bool on);
/* Write what is queued now, without waiting for the loop to report the
 * sockets writable (the caller queued a batch; a failure drops the link,
 * so not with a lock the handler takes). */
void link_flush(struct link *l);
/* Bytes queued on conn and not yet written. */
size_t link_backlog(const struct link *l, enum link_conn conn);
bool link_is_up(const struct link *l);
/* Up, and the last read of a connection stopped at its budget with bytes
 * left (until a read finds none): the engine queues faster than the link
 * reads, and publishes that would come back on it should wait. */
bool link_behind(const struct link *l);
/* Whether the "link up" line may be logged now (rate-limited like the
 * failures); *held: the ones not logged since the last. */
bool link_log_up(struct link *l, unsigned *held);
/* The next attempt goes to host:port (the sharded engine's map link moving
 * on from a node it cannot reach). */
void link_retarget(struct link *l, const char *host, int port);
/* "redis://host:port", for log lines (never the password). */
const char *link_what(const struct link *l);

#endif
