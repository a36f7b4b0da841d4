/* proto.h - the protocol interface (pure: bytes in, bytes to the outbox).
 *
 * A protocol never touches a socket. feed() is resumable: it consumes a
 * prefix of what it is offered and the session keeps the rest, offering it
 * again with more bytes appended (like picohttpparser's "partial" result).
 * It must not keep pointers into p across calls. */
#ifndef WEFT_PROTO_H
#define WEFT_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "stats.h"

struct session;
struct server;

struct proto {
	const char *name;
	enum stat_id counter; /* counted once per connection that speaks it */
	/* Set up s->pstate; 0 or -errno. */
	int (*init)(struct session *s);
	/* Consume a prefix of [p, p+n) and queue replies; returns bytes consumed.
	 * Consuming nothing means "need more bytes"; a protocol must refuse (and
	 * close) rather than wait for more than its limit allows. */
	size_t (*feed)(struct session *s, const char *p, size_t n);
	/* Peer half-closed (optional): finish what can be finished. */
	void (*eof)(struct session *s);
	/* The server is stopping (optional): e.g. tell the client. */
	void (*stop)(struct session *s);
	/* A request head outlived --header-timeout (optional; only a protocol
	 * that has it calls session_head_begin): answer; the session closes. */
	void (*head_timeout)(struct session *s);
	/* Inactivity (both optional; never while stopping, held, lingering or
	 * dropped as a slow consumer). idle_limit: the limit in ms (0 = none)
	 * given the session's own, limit. idle: it passed (limit: the
	 * session's own again); true when the protocol acted and the connection
	 * stays (a WebSocket ping), false to close it as idle, after what it
	 * queued (a close frame). */
	int (*idle_limit)(const struct session *s, int limit);
	bool (*idle)(struct session *s, int limit);
	void (*fini)(struct session *s);
};

extern const struct proto proto_echo;
extern const struct proto proto_http;      /* http.c */
extern const struct proto proto_chat_line; /* chat_line.c */
extern const struct proto proto_resp;      /* resp.c */

/* Decide from a connection's first bytes which protocol speaks it (detect.c).
 * Returns NULL while [p, p+n) could still be either (then more bytes are
 * needed), else the protocol. Rules are in docs/PROTOCOL.md. */
const struct proto *proto_detect(const struct server *srv, const char *p, size_t n);

#endif
