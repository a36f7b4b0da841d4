/* chat.h - one chat connection's state (session->chat), shared by the line
 * protocol (chat_line.c) and RESP (resp.c).
 *
 * Only the session's owner thread touches a chat_conn. It remembers what the
 * connection subscribed to, in order, so that UNSUBSCRIBE without arguments,
 * the subscription counts Redis replies with, and the detach on close all
 * work without asking the exchange. chat_detach() must run before the session
 * is freed (the protocols call it from fini()). */
#ifndef WEFT_CHAT_H
#define WEFT_CHAT_H

#include <stdbool.h>
#include <stddef.h>

#include "exchange.h"

struct session;

#define CHAT_NAME_MAX 200 /* channel or pattern name, bytes */
#define CHAT_NICK_MAX 32

struct chat_name {
	char *p;
	size_t n;
};

struct chat_names {
	struct chat_name *v;
	size_t n, cap;
};

struct chat_conn {
	enum ex_fmt fmt;
	char nick[CHAT_NICK_MAX + 1];
	/* Chat over WebSocket: our close frame is queued (ws.c), so no data
	 * frame may follow it and a delivery is dropped. A flag here, in the
	 * padding after nick, because session_write_msg asks for every
	 * delivery: an out-of-line call through two pointers cost about 3 % of
	 * a fan-out's user time. */
	bool ws_closed;
	char *name; /* RESP CLIENT SETNAME; NULL = none */
	struct chat_names chans, pats; /* in subscription order */
	/* Chat over WebSocket: what the session writes is framed, each line one
	 * text message (ws.h); NULL on a raw TCP connection. Here rather than in
	 * struct session, which every idle connection carries: 8 more bytes here
	 * stay in the same malloc chunk (96 -> 104 of 104 usable). */
	struct ws_conn *ws;
};

/* Give s a chat_conn (s->chat) and make it an exchange subscriber (s->sub:
 * delivery into its output, the --outbox-* limits, the slow-consumer error
 * in its own protocol); 0 or -ENOMEM. */
int chat_attach(struct session *s, enum ex_fmt fmt);
/* Leave every channel and pattern and free s->chat (NULL is fine). */
void chat_detach(struct session *s);

/* Subscribe s: 1 added, 0 already subscribed, -ENOSPC over --max-subs,
 * -ENOMEM. */
int chat_subscribe(struct session *s, const char *name, size_t n, bool pattern);
/* 1 removed, 0 was not subscribed. */
int chat_unsubscribe(struct session *s, const char *name, size_t n, bool pattern);
/* Channels + patterns (what Redis replies as the subscription count). */
static inline size_t chat_count(const struct chat_conn *c) { return c->chans.n + c->pats.n; }
/* Chat over WebSocket and our close frame queued: nothing more is delivered. */
static inline bool chat_ws_closed(const struct chat_conn *c) { return c && c->ws_closed; }

/* Channel and pattern names: 1..CHAT_NAME_MAX bytes, no space, no control
 * byte (so the line form "MSG <channel> <nick> <text>" stays parseable). */
bool chat_valid_name(const char *p, size_t n);
/* May s publish on a channel name of n bytes (--max-channel)? Counts a
 * refusal. The bound keeps one PUBLISH's pattern matching (linear in the
 * name, per pattern: glob.h) small whatever a client sends. */
bool chat_publishable(struct session *s, size_t n);
/* Nicks: 1..CHAT_NICK_MAX of [A-Za-z0-9_.-]. */
bool chat_valid_nick(const char *p, size_t n);

/* The line protocol's entry for one line that came without its LF (a
 * WebSocket text message: chat_line.c); s->pstate must be its state. */
void chat_line_one(struct session *s, const char *p, size_t n);

#endif
