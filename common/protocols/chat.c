/* chat.c - per-connection chat state: subscriptions, nick; attach/detach to
 * the exchange; a session as an exchange subscriber (subscriber.h), and what
 * happens to a slow consumer. */
#include "chat.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "msg.h"
#include "server.h"
#include "session.h"
#include "stats.h"
#include "ws.h"

static struct session *sub_session(const struct subscriber *sub)
{
	return (struct session *)((const char *)sub - offsetof(struct session, sub));
}

static void sub_deliver(struct subscriber *sub, struct msg *m)
{
	struct session *s = sub_session(sub);
	if (session_write_msg(s, m) < 0)
		session_close_after_flush(s);
}

static size_t sub_pending(const struct subscriber *sub) { return session_pending(sub_session(sub)); }

static void chat_slow_consumer(struct subscriber *sub, bool soft);

static const struct subscriber_ops session_sub_ops = {
	.deliver = sub_deliver,
	.pending = sub_pending,
	.slow = chat_slow_consumer,
};

int chat_attach(struct session *s, enum ex_fmt fmt)
{
	struct chat_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->fmt = fmt;
	snprintf(c->nick, sizeof(c->nick), "guest%llu", (unsigned long long)s->id);
	s->chat = c;
	s->sub.ops = &session_sub_ops;
	return 0;
}

static void names_free(struct chat_names *ns)
{
	for (size_t i = 0; i < ns->n; i++)
		free(ns->v[i].p);
	free(ns->v);
	*ns = (struct chat_names){0};
}

void chat_detach(struct session *s)
{
	struct chat_conn *c = s->chat;
	if (!c)
		return;
	struct exchange *ex = s->srv->ex;
	for (size_t i = 0; ex && i < c->chans.n; i++)
		exchange_unsubscribe(ex, &s->sub, c->chans.v[i].p, c->chans.v[i].n);
	for (size_t i = 0; ex && i < c->pats.n; i++)
		exchange_punsubscribe(ex, &s->sub, c->pats.v[i].p, c->pats.v[i].n);
	names_free(&c->chans);
	names_free(&c->pats);
	free(c->name);
	free(c);
	s->chat = NULL;
}

static ptrdiff_t names_find(const struct chat_names *ns, const char *p, size_t n)
{
	for (size_t i = 0; i < ns->n; i++)
		if (ns->v[i].n == n && memcmp(ns->v[i].p, p, n) == 0)
			return (ptrdiff_t)i;
	return -1;
}

static int names_add(struct chat_names *ns, const char *p, size_t n)
{
	if (ns->n == ns->cap) {
		size_t cap = ns->cap ? ns->cap * 2 : 4;
		struct chat_name *v = realloc(ns->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		ns->v = v;
		ns->cap = cap;
	}
	char *copy = malloc(n + 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, p, n);
	copy[n] = '\0';
	ns->v[ns->n++] = (struct chat_name){copy, n};
	return 0;
}

/* Keeps the order: the line protocol's "last joined" is the last one. */
static void names_del(struct chat_names *ns, size_t i)
{
	free(ns->v[i].p);
	memmove(&ns->v[i], &ns->v[i + 1], (ns->n - i - 1) * sizeof(*ns->v));
	ns->n--;
}

int chat_subscribe(struct session *s, const char *name, size_t n, bool pattern)
{
	struct chat_conn *c = s->chat;
	struct chat_names *ns = pattern ? &c->pats : &c->chans;
	if (names_find(ns, name, n) >= 0)
		return 0;
	if (chat_count(c) >= (size_t)s->srv->cfg->max_subs) {
		stat_inc(STAT_chat_max_subs);
		return -ENOSPC;
	}
	if (names_add(ns, name, n) < 0)
		return -ENOMEM;
	int rc = pattern ? exchange_psubscribe(s->srv->ex, &s->sub, c->fmt, name, n)
	                 : exchange_subscribe(s->srv->ex, &s->sub, c->fmt, name, n);
	if (rc < 0) {
		names_del(ns, ns->n - 1);
		return rc;
	}
	return 1;
}

int chat_unsubscribe(struct session *s, const char *name, size_t n, bool pattern)
{
	struct chat_conn *c = s->chat;
	struct chat_names *ns = pattern ? &c->pats : &c->chans;
	ptrdiff_t i = names_find(ns, name, n);
	if (i < 0)
		return 0;
	if (pattern)
		exchange_punsubscribe(s->srv->ex, &s->sub, name, n);
	else
		exchange_unsubscribe(s->srv->ex, &s->sub, name, n);
	names_del(ns, (size_t)i);
	return 1;
}

bool chat_valid_name(const char *p, size_t n)
{
	if (n == 0 || n > CHAT_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c <= ' ' || c == 0x7f)
			return false;
	}
	return true;
}

bool chat_publishable(struct session *s, size_t n)
{
	if (n <= s->srv->cfg->max_channel)
		return true;
	stat_inc(STAT_chat_channel_too_long);
	return false;
}

bool chat_valid_nick(const char *p, size_t n)
{
	if (n == 0 || n > CHAT_NICK_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
		      c == '-' || c == '.'))
			return false;
	}
	return true;
}

/* For the operator: which limit cut whom with how much unsent, at most a
 * line a second per limit (a burst cuts many subscribers at once). */
static void slow_consumer_log(const struct session *s, bool soft)
{
	static struct log_rate rates[2] = {LOG_RATE_INIT, LOG_RATE_INIT};
	const struct config *cfg = s->srv->cfg;
	if (soft)
		log_rated(&rates[1], LOG_INFO,
		          "slow consumer: connection %u cut by --outbox-soft %zu (over it for %d s), %zu bytes unsent", s->id,
		          cfg->outbox_soft, cfg->outbox_soft_ms / 1000, session_pending(s));
	else
		log_rated(&rates[0], LOG_INFO, "slow consumer: connection %u cut by --outbox-hard %zu, %zu bytes unsent",
		          s->id, cfg->outbox_hard, session_pending(s));
}

/* The mailbox's verdict, on the owner thread (owner_drain): s refused a
 * message for being too far behind. Count it, drop what it has not started
 * receiving, tell it why in its own protocol and close it. */
static void chat_slow_consumer(struct subscriber *sub, bool soft)
{
	struct session *s = sub_session(sub);
	const struct config *cfg = s->srv->cfg;
	char line[200];
	stat_inc(soft ? STAT_slow_soft : STAT_slow_hard);
	session_close_for(s, CLOSE_SLOW_CONSUMER); /* first: the error line below may fail */
	slow_consumer_log(s, soft);
	outbox_drop_unstarted(&s->out);
	const char *pre = s->chat && s->chat->fmt != EX_RESP ? "ERR" : "-ERR";
	if (soft)
		snprintf(line, sizeof(line),
		         "%s slow consumer: more than %zu bytes unsent for %d s (weft --outbox-soft); disconnecting\r\n", pre,
		         cfg->outbox_soft, cfg->outbox_soft_ms / 1000);
	else
		snprintf(line, sizeof(line), "%s slow consumer: more than %zu bytes unsent (weft --outbox-hard); disconnecting\r\n",
		         pre, cfg->outbox_hard);
	if (pre[0] == 'E') { /* line protocol lines end in a bare LF */
		size_t l = strlen(line);
		line[l - 2] = '\n';
		line[l - 1] = '\0';
	}
	session_puts(s, line);
	ws_chat_close(s, 1008, "slow consumer"); /* policy: the --outbox limits */
	session_close_after_flush(s);
}
