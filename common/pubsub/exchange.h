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
 * A message is encoded once per wire format (the line form, the RESP
 * `message` form, and one RESP `pmessage` per matching pattern) and every
 * subscriber gets a reference to the same msg.
 *
 * Subscriptions are keyed by session pointer: a session must be removed
 * (exchange_unsubscribe / exchange_punsubscribe for everything it holds,
 * which chat.c does in the protocols' fini()) before it is freed. */
#ifndef WEFT_EXCHANGE_H
#define WEFT_EXCHANGE_H

#include <stdbool.h>
#include <stddef.h>

struct exchange;
struct session;

/* How a subscriber wants its deliveries encoded. */
enum ex_fmt { EX_LINE, EX_RESP };

struct exchange *exchange_new(void);
/* All subscribers must be gone. */
void exchange_free(struct exchange *ex);

/* Add s to channel [ch, ch+n) (or pattern): 1 added, 0 already there, -ENOMEM. */
int exchange_subscribe(struct exchange *ex, struct session *s, enum ex_fmt fmt, const char *ch, size_t n);
int exchange_psubscribe(struct exchange *ex, struct session *s, enum ex_fmt fmt, const char *pat, size_t n);
/* Remove s: 1 removed, 0 was not subscribed. */
int exchange_unsubscribe(struct exchange *ex, struct session *s, const char *ch, size_t n);
int exchange_punsubscribe(struct exchange *ex, struct session *s, const char *pat, size_t n);

/* Publish [data, data+n) on channel ch; from is the sender's nick (line form).
 * Returns the number of receivers (channel subscribers + matching pattern
 * subscriptions, as Redis counts them, including slow consumers that refused
 * it), or -ENOMEM. Never blocks on a subscriber. */
long exchange_publish(struct exchange *ex, const char *ch, size_t chn, const char *from, const char *data,
                      size_t n);

/* Subscribers of one channel now. */
size_t exchange_subscribers(struct exchange *ex, const char *ch, size_t n);

/* Call fn for every channel with subscribers, under the exchange lock: fn
 * must not call into the exchange or take an owner lock. */
void exchange_each_channel(struct exchange *ex, void (*fn)(const char *name, size_t n, size_t subs, void *arg),
                           void *arg);

/* The line form of a message for [data, data+n): backslash, CR, LF and other
 * control bytes escaped so it stays one line. Writes at most 4*n bytes to
 * out (when out is NULL, only counts); returns the length. */
size_t exchange_line_escape(char *out, const char *data, size_t n);

#endif
