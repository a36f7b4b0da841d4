/* exchange.h - named channels and glob patterns -> subscribers (chat mode).
 *
 * The exchange is shared by every owner thread. One mutex guards it; a
 * publish runs entirely under it, so every subscriber of a channel sees that
 * channel's messages in one order. Delivery is owner_post() (owner.h), called
 * with the exchange lock held: the global lock order is
 *
 *     exchange lock -> owner lock        (never the other way round)
 *
 * and no code holding an owner lock calls into the exchange.
 *
 * A message is encoded once per wire format (the line form, the line form
 * as a WebSocket frame, the RESP `message` form; per matching pattern with a
 * subscriber of that format, the RESP `pmessage`, the line `PMSG` and that
 * framed) and every subscriber gets a reference to the same msg.
 *
 * A subscriber is an interface (subscriber.h: its owner loop and how it
 * takes a delivery), not a session; subscriptions are keyed by its address.
 * It must be removed (exchange_unsubscribe / exchange_punsubscribe for
 * everything it holds; chat.c does it for a session in the protocols'
 * fini()) before it is freed. */
#ifndef WEFT_EXCHANGE_H
#define WEFT_EXCHANGE_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

struct exchange;
struct subscriber;

/* How a subscriber wants its deliveries encoded: the line form, RESP, or
 * the line form framed as one WebSocket text message (ws_text_msg). */
enum ex_fmt { EX_LINE, EX_RESP, EX_WS };

/* The WebSocket form of a delivery is made from its line form once per
 * publish, by a framer the WebSocket layer lends: the exchange sits below the
 * protocols and cannot include them (docs/LAYERS.md). Set once, before any
 * loop runs (servers/main.c); unset, EX_WS deliveries fail as out of memory. */
typedef struct msg *(*ex_framer)(const void *line, size_t n);
void exchange_set_ws_framer(ex_framer f);

struct exchange *exchange_new(void);
/* All subscribers must be gone. */
void exchange_free(struct exchange *ex);

/* Add sub to channel [ch, ch+n) (or pattern): 1 added, 0 already there, -ENOMEM. */
int exchange_subscribe(struct exchange *ex, struct subscriber *sub, enum ex_fmt fmt, const char *ch, size_t n);
int exchange_psubscribe(struct exchange *ex, struct subscriber *sub, enum ex_fmt fmt, const char *pat, size_t n);
/* Remove sub: 1 removed, 0 was not subscribed. */
int exchange_unsubscribe(struct exchange *ex, struct subscriber *sub, const char *ch, size_t n);
int exchange_punsubscribe(struct exchange *ex, struct subscriber *sub, const char *pat, size_t n);

/* Publish [data, data+n) on channel ch; from is the sender's nick (line form).
 * Returns the number of receivers (channel subscribers + matching pattern
 * subscriptions, as Redis counts them, including slow consumers that refused
 * it), or -ENOMEM. Never blocks on a subscriber. */
long exchange_publish(struct exchange *ex, const char *ch, size_t chn, const char *from, const char *data,
                      size_t n);

/* Subscribers of one channel now. */
size_t exchange_subscribers(struct exchange *ex, const char *ch, size_t n);

/* How much the exchange holds now: channels with a subscriber, patterns
 * with one (each counted once, as Redis 7's PUBSUB NUMPAT does), and
 * subscriptions (a subscriber on a channel or pattern, each pair once). */
struct exchange_counts {
	size_t channels, patterns, subscriptions;
};
struct exchange_counts exchange_counts(struct exchange *ex);
/* A /metrics source (metrics_src.h; arg is the exchange): the gauges
 * weft_chat_channels, weft_chat_patterns and weft_chat_subscriptions. */
int exchange_metrics(void *arg, struct buf *out, const char *model);

/* Call fn for every channel with subscribers, under the exchange lock: fn
 * must not call into the exchange or take an owner lock. */
void exchange_each_channel(struct exchange *ex, void (*fn)(const char *name, size_t n, size_t subs, void *arg),
                           void *arg);

/* The line form of a message for [data, data+n): backslash, CR, LF and other
 * control bytes escaped so it stays one line. Writes at most 4*n bytes to
 * out (when out is NULL, only counts); returns the length. */
size_t exchange_line_escape(char *out, const char *data, size_t n);

/* ---- the cluster bridge hook (common/cluster/bridge.c) ----
 *
 * With --cluster, the bridge learns from the exchange which channels and
 * patterns this node's clients hold (the exchange's own subscriber arrays are
 * the per-node reference counts: held() fires on the first subscriber and
 * after the last one), and gets a copy of every local publish. Messages that
 * came from the engine go back in through exchange_publish_remote(), which
 * never calls the hook: nothing from the engine is republished. */
struct exchange_hook {
	/* Under the exchange lock (lock order: exchange -> bridge): channel or
	 * pattern [name, name+n) got its first local subscriber (held) or lost
	 * its last (!held). Must not call into the exchange. */
	void (*held)(void *arg, bool pattern, const char *name, size_t n, bool held);
	/* After exchange_publish() delivered locally, outside the exchange lock. */
	void (*published)(void *arg, const char *ch, size_t cn, const char *from, const char *data, size_t n);
	void *arg;
};

/* Set once, before any client subscribes or publishes. */
void exchange_set_hook(struct exchange *ex, const struct exchange_hook *hook);

/* A message from the engine: delivered to this node's exact subscribers of
 * channel ch when pat is NULL (a `message`), or only to the subscribers of
 * pattern [pat, pat+pn) (a `pmessage`), as exchange_publish() would. Returns
 * the receivers or -ENOMEM. */
long exchange_publish_remote(struct exchange *ex, const char *pat, size_t pn, const char *ch, size_t cn,
                             const char *from, const char *data, size_t n);

#endif
