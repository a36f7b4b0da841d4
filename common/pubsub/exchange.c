/* exchange.c - channels and patterns -> subscribers, and publishing.
 *
 * Channels live in core's chained hash table (htable.h), patterns in an array (Redis also
 * walks every pattern on each publish; glob_match is linear in the channel
 * name, so a long name cannot hold the lock). Both hold arrays of
 * (subscriber, format). Everything runs under ex->lock; see exchange.h for
 * the lock order. */
#include "exchange.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "glob.h"
#include "metrics_src.h"
#include "hash.h"
#include "htable.h"
#include "msg.h"
#include "owner.h"
#include "stats.h"

struct member {
	struct subscriber *sub;
	enum ex_fmt fmt;
};

struct subs {
	struct member *v;
	size_t n, cap;
};

struct channel {
	struct hnode node; /* in exchange.chans: hash, name length */
	struct subs subs;
	char name[];
};

struct pattern {
	struct subs subs;
	size_t len;
	char name[];
};

struct exchange {
	pthread_mutex_t lock;
	struct htable chans; /* struct channel, by name */
	struct pattern **pats;
	size_t npats, pats_cap;
	size_t nsubs; /* members of every channel and pattern: subscriptions */
	struct exchange_hook hook; /* --cluster: set once before use */
};

/* The bridge hook, when one is set (see exchange.h). */
static void held(struct exchange *ex, bool pattern, const char *name, size_t n, bool on)
{
	if (ex->hook.held)
		ex->hook.held(ex->hook.arg, pattern, name, n, on);
}

struct exchange *exchange_new(void)
{
	struct exchange *ex = calloc(1, sizeof(*ex));
	if (!ex)
		return NULL;
	htable_init(&ex->chans, offsetof(struct channel, name));
	if (htable_reserve(&ex->chans) < 0) { /* buckets from the start: lookups need no check */
		free(ex);
		return NULL;
	}
	pthread_mutex_init(&ex->lock, NULL);
	return ex;
}

void exchange_free(struct exchange *ex)
{
	if (!ex)
		return;
	for (size_t b = 0; b < ex->chans.nb; b++) {
		for (struct hnode *e = ex->chans.b[b], *next; e; e = next) {
			next = e->next;
			free(((struct channel *)e)->subs.v);
			free(e);
		}
	}
	for (size_t i = 0; i < ex->npats; i++) {
		free(ex->pats[i]->subs.v);
		free(ex->pats[i]);
	}
	free(ex->pats);
	htable_free(&ex->chans);
	pthread_mutex_destroy(&ex->lock);
	free(ex);
}

/* ---- subscriber arrays ---- */

static bool subs_has(const struct subs *ss, const struct subscriber *sub)
{
	for (size_t i = 0; i < ss->n; i++)
		if (ss->v[i].sub == sub)
			return true;
	return false;
}

static int subs_add(struct subs *ss, struct subscriber *sub, enum ex_fmt fmt)
{
	if (ss->n == ss->cap) {
		size_t cap = ss->cap ? ss->cap * 2 : 4;
		struct member *v = realloc(ss->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		ss->v = v;
		ss->cap = cap;
	}
	ss->v[ss->n++] = (struct member){sub, fmt};
	return 0;
}

/* Order among subscribers does not matter (each message is posted to all of
 * them under the lock), so removal swaps in the last one. */
static bool subs_del(struct subs *ss, const struct subscriber *sub)
{
	for (size_t i = 0; i < ss->n; i++) {
		if (ss->v[i].sub == sub) {
			ss->v[i] = ss->v[--ss->n];
			return true;
		}
	}
	return false;
}

/* ---- channels ---- */

static struct hnode **chan_slot(struct exchange *ex, const char *name, size_t n, uint64_t h)
{
	return htable_slot(&ex->chans, name, n, h);
}

static struct channel *chan_find(struct exchange *ex, const char *name, size_t n)
{
	return (struct channel *)*chan_slot(ex, name, n, hash_bytes(name, n));
}

int exchange_subscribe(struct exchange *ex, struct subscriber *sub, enum ex_fmt fmt, const char *ch, size_t n)
{
	uint64_t h = hash_bytes(ch, n);
	int rc = 1;
	pthread_mutex_lock(&ex->lock);
	htable_reserve(&ex->chans); /* failing to grow only costs speed */
	struct hnode **pp = chan_slot(ex, ch, n, h);
	struct channel *c = (struct channel *)*pp;
	if (!c) {
		c = calloc(1, sizeof(*c) + n + 1);
		if (!c) {
			rc = -ENOMEM;
			goto out;
		}
		c->node.hash = h;
		c->node.klen = n;
		memcpy(c->name, ch, n);
		htable_link(&ex->chans, pp, &c->node);
	} else if (subs_has(&c->subs, sub)) {
		rc = 0;
		goto out;
	}
	if (subs_add(&c->subs, sub, fmt) < 0) {
		rc = -ENOMEM;
		if (c->subs.n == 0) { /* just made: do not leave an empty channel */
			htable_unlink(&ex->chans, pp);
			free(c);
		}
		goto out;
	}
	ex->nsubs++;
	if (c->subs.n == 1)
		held(ex, false, ch, n, true);
out:
	pthread_mutex_unlock(&ex->lock);
	return rc;
}

int exchange_unsubscribe(struct exchange *ex, struct subscriber *sub, const char *ch, size_t n)
{
	uint64_t h = hash_bytes(ch, n);
	int rc = 0;
	pthread_mutex_lock(&ex->lock);
	struct hnode **pp = chan_slot(ex, ch, n, h);
	struct channel *c = (struct channel *)*pp;
	if (c && subs_del(&c->subs, sub)) {
		rc = 1;
		ex->nsubs--;
		if (c->subs.n == 0) {
			htable_unlink(&ex->chans, pp);
			free(c->subs.v);
			free(c);
			held(ex, false, ch, n, false);
		}
	}
	pthread_mutex_unlock(&ex->lock);
	return rc;
}

size_t exchange_subscribers(struct exchange *ex, const char *ch, size_t n)
{
	pthread_mutex_lock(&ex->lock);
	struct channel *c = chan_find(ex, ch, n);
	size_t k = c ? c->subs.n : 0;
	pthread_mutex_unlock(&ex->lock);
	return k;
}

void exchange_each_channel(struct exchange *ex, void (*fn)(const char *name, size_t n, size_t subs, void *arg),
                           void *arg)
{
	pthread_mutex_lock(&ex->lock);
	for (size_t b = 0; b < ex->chans.nb; b++)
		for (struct hnode *e = ex->chans.b[b]; e; e = e->next)
			fn(((struct channel *)e)->name, e->klen, ((struct channel *)e)->subs.n, arg);
	pthread_mutex_unlock(&ex->lock);
}

struct exchange_counts exchange_counts(struct exchange *ex)
{
	pthread_mutex_lock(&ex->lock);
	struct exchange_counts k = {ex->chans.n, ex->npats, ex->nsubs};
	pthread_mutex_unlock(&ex->lock);
	return k;
}

int exchange_metrics(void *arg, struct buf *out, const char *model)
{
	struct exchange_counts k = exchange_counts(arg);
	const struct {
		const char *name, *help;
		size_t v;
	} g[] = {
		{"weft_chat_channels", "channels with at least one subscriber", k.channels},
		{"weft_chat_patterns", "distinct patterns with at least one subscriber", k.patterns},
		{"weft_chat_subscriptions", "channel and pattern subscriptions of all connections", k.subscriptions},
	};
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < sizeof(g) / sizeof(g[0]); i++)
		rc = metrics_appendf(out, "# HELP %s %s\n# TYPE %s gauge\n%s{model=\"%s\"} %zu\n", g[i].name, g[i].help,
		                     g[i].name, g[i].name, model, g[i].v);
	return rc;
}

/* ---- patterns ---- */

static struct pattern *pat_find(struct exchange *ex, const char *pat, size_t n, size_t *idx)
{
	for (size_t i = 0; i < ex->npats; i++) {
		struct pattern *p = ex->pats[i];
		if (p->len == n && memcmp(p->name, pat, n) == 0) {
			*idx = i;
			return p;
		}
	}
	return NULL;
}

static struct pattern *pat_make(struct exchange *ex, const char *pat, size_t n)
{
	if (ex->npats == ex->pats_cap) {
		size_t cap = ex->pats_cap ? ex->pats_cap * 2 : 8;
		struct pattern **v = realloc(ex->pats, cap * sizeof(*v));
		if (!v)
			return NULL;
		ex->pats = v;
		ex->pats_cap = cap;
	}
	struct pattern *p = calloc(1, sizeof(*p) + n + 1);
	if (!p)
		return NULL;
	p->len = n;
	memcpy(p->name, pat, n);
	ex->pats[ex->npats++] = p;
	return p;
}

/* Patterns keep their creation order, so pmessages of one publish come in a
 * stable order. */
static void pat_drop(struct exchange *ex, size_t idx)
{
	free(ex->pats[idx]->subs.v);
	free(ex->pats[idx]);
	memmove(&ex->pats[idx], &ex->pats[idx + 1], (ex->npats - idx - 1) * sizeof(*ex->pats));
	ex->npats--;
}

int exchange_psubscribe(struct exchange *ex, struct subscriber *sub, enum ex_fmt fmt, const char *pat, size_t n)
{
	int rc = 1;
	size_t idx;
	pthread_mutex_lock(&ex->lock);
	struct pattern *p = pat_find(ex, pat, n, &idx);
	if (p && subs_has(&p->subs, sub)) {
		rc = 0;
	} else {
		if (!p)
			p = pat_make(ex, pat, n);
		if (!p || subs_add(&p->subs, sub, fmt) < 0) {
			rc = -ENOMEM;
			if (p && p->subs.n == 0)
				pat_drop(ex, ex->npats - 1);
		} else {
			ex->nsubs++;
			if (p->subs.n == 1)
				held(ex, true, pat, n, true);
		}
	}
	pthread_mutex_unlock(&ex->lock);
	return rc;
}

int exchange_punsubscribe(struct exchange *ex, struct subscriber *sub, const char *pat, size_t n)
{
	int rc = 0;
	size_t idx;
	pthread_mutex_lock(&ex->lock);
	struct pattern *p = pat_find(ex, pat, n, &idx);
	if (p && subs_del(&p->subs, sub)) {
		rc = 1;
		ex->nsubs--;
		if (p->subs.n == 0) {
			pat_drop(ex, idx);
			held(ex, true, pat, n, false);
		}
	}
	pthread_mutex_unlock(&ex->lock);
	return rc;
}

/* ---- encoding ---- */

static char *put_bulk(char *w, const char *p, size_t n)
{
	w += sprintf(w, "$%zu\r\n", n);
	memcpy(w, p, n);
	w += n;
	*w++ = '\r';
	*w++ = '\n';
	return w;
}

#define BULK_HEAD 24 /* "$" + 20 digits + CRLF, and the trailing CRLF */

/* *3 message <ch> <data>, or *4 pmessage <pat> <ch> <data> when pat. */
static struct msg *encode_resp(const char *pat, size_t pn, const char *ch, size_t cn, const char *d, size_t n)
{
	struct msg *m = msg_new(4 * BULK_HEAD + 16 + pn + cn + n);
	if (!m)
		return NULL;
	char *w = m->data;
	if (pat) {
		w += sprintf(w, "*4\r\n");
		w = put_bulk(w, "pmessage", 8);
		w = put_bulk(w, pat, pn);
	} else {
		w += sprintf(w, "*3\r\n");
		w = put_bulk(w, "message", 7);
	}
	w = put_bulk(w, ch, cn);
	w = put_bulk(w, d, n);
	m->len = (size_t)(w - m->data);
	return m;
}

/* Could one of the eight bytes at p need escaping (a control byte, '\\' or
 * DEL)? Exact but for TAB, which it also flags (the byte loop keeps it). */
static bool maybe_escape8(const char *p)
{
	const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
	uint64_t x, bs, del;
	memcpy(&x, p, 8);
	bs = x ^ (ones * '\\');
	del = x ^ (ones * 0x7f);
	return (((x - ones * 0x20) & ~x) | ((bs - ones) & ~bs) | ((del - ones) & ~del)) & high;
}

/* One byte as the line protocol escapes it (\n, \r, \\, else \xHH) into esc;
 * returns its length. */
static size_t escape_byte(unsigned char c, char esc[4])
{
	static const char hex[] = "0123456789abcdef";
	esc[0] = '\\';
	if (c == '\n' || c == '\r' || c == '\\') {
		esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : '\\';
		return 2;
	}
	esc[1] = 'x';
	esc[2] = hex[c >> 4];
	esc[3] = hex[c & 15];
	return 4;
}

size_t exchange_line_escape(char *out, const char *data, size_t n)
{
	size_t k = 0, i = 0;
	while (i < n) {
		/* The run that needs no escape (all of it, for most text), copied
		 * in one go: once per publish for every line and WebSocket
		 * subscriber, byte by byte it was a tenth of a fan-out's user time. */
		size_t j = i;
		while (n - j >= 8 && !maybe_escape8(data + j))
			j += 8;
		for (; j < n; j++) {
			unsigned char c = (unsigned char)data[j];
			if (c == '\\' || c == 0x7f || (c < 0x20 && c != '\t'))
				break;
		}
		if (out)
			memcpy(out + k, data + i, j - i);
		k += j - i;
		if (j == n)
			break;
		char esc[4];
		size_t l = escape_byte((unsigned char)data[j], esc);
		if (out)
			memcpy(out + k, esc, l);
		k += l;
		i = j + 1;
	}
	return k;
}

/* The channel as a line names it (written to out unless NULL; returns its
 * length). A name a line client can join (no space, control byte or DEL) is
 * written as it is. Any other (only a RESP PUBLISH or another node makes
 * one, and only a pattern subscriber gets it) with the text's escapes, and
 * \xHH for a space or TAB too: else a newline in it would end the line and
 * forge the next one, and a space would shift the nick and text words. */
static size_t line_channel(char *out, const char *ch, size_t cn)
{
	size_t i = 0;
	while (i < cn && (unsigned char)ch[i] > ' ' && ch[i] != 0x7f)
		i++;
	if (i == cn) {
		if (out)
			memcpy(out, ch, cn);
		return cn;
	}
	size_t k = 0;
	for (i = 0; i < cn; i++) {
		unsigned char c = (unsigned char)ch[i];
		char esc[4] = {(char)c};
		size_t l = c == '\\' || c <= ' ' || c == 0x7f ? escape_byte(c, esc) : 1;
		if (out)
			memcpy(out + k, esc, l);
		k += l;
	}
	return k;
}

/* MSG <channel> <from> <text>\n */
static struct msg *encode_line(const char *ch, size_t cn, const char *from, const char *d, size_t n)
{
	size_t fl = strlen(from);
	struct msg *m = msg_new(8 + line_channel(NULL, ch, cn) + fl + exchange_line_escape(NULL, d, n));
	if (!m)
		return NULL;
	char *w = m->data;
	memcpy(w, "MSG ", 4);
	w += 4;
	w += line_channel(w, ch, cn);
	*w++ = ' ';
	memcpy(w, from, fl);
	w += fl;
	*w++ = ' ';
	w += exchange_line_escape(w, d, n);
	*w++ = '\n';
	m->len = (size_t)(w - m->data);
	return m;
}

/* ---- publishing ---- */

struct pub {
	const char *ch, *from, *data;
	size_t cn, n;
	struct msg *line, *resp, *ws; /* made on first need, shared by all */
	long receivers;
	int err;
};

static void deliver(struct pub *pb, struct subscriber *sub, struct msg *m)
{
	pb->receivers++;
	if (owner_post(sub, m) == 0)
		stat_inc(STAT_chat_delivered);
}

static ex_framer ws_framer;

void exchange_set_ws_framer(ex_framer f)
{
	ws_framer = f;
}

/* The shared msg for fmt, encoding it on first use; NULL on ENOMEM. */
static struct msg *form(struct pub *pb, enum ex_fmt fmt)
{
	struct msg **m = fmt == EX_LINE ? &pb->line : fmt == EX_RESP ? &pb->resp : &pb->ws;
	if (!*m) {
		if (fmt == EX_LINE)
			*m = encode_line(pb->ch, pb->cn, pb->from, pb->data, pb->n);
		else if (fmt == EX_RESP)
			*m = encode_resp(NULL, 0, pb->ch, pb->cn, pb->data, pb->n);
		else if (ws_framer && form(pb, EX_LINE)) /* the line form, framed */
			*m = ws_framer(pb->line->data, pb->line->len);
	}
	if (!*m)
		pb->err = -ENOMEM;
	return *m;
}

static void publish_channel(struct exchange *ex, struct pub *pb)
{
	struct channel *c = chan_find(ex, pb->ch, pb->cn);
	if (!c)
		return;
	for (size_t i = 0; i < c->subs.n; i++) {
		struct msg *m = form(pb, c->subs.v[i].fmt);
		if (m)
			deliver(pb, c->subs.v[i].sub, m);
	}
}

/* The line form of a delivery through pattern pat, made from the channel's:
 * "PMSG <pattern> " and the MSG line without its "MSG " (nothing escaped
 * again). */
static struct msg *encode_pline(const char *pat, size_t pn, const struct msg *line)
{
	struct msg *m = msg_new(6 + pn + line->len);
	if (!m)
		return NULL;
	char *w = m->data;
	memcpy(w, "PMSG ", 5);
	w += 5;
	memcpy(w, pat, pn);
	w += pn;
	*w++ = ' ';
	memcpy(w, line->data + 4, line->len - 4);
	m->len = 6 + pn + line->len - 4;
	return m;
}

/* The shared msg for fmt through pattern p (f: its forms, indexed by
 * ex_fmt), encoding it on first use; NULL on ENOMEM. Every format names the
 * pattern: RESP's pmessage, the line's PMSG, and PMSG framed. */
static struct msg *pat_form(struct pub *pb, const struct pattern *p, struct msg *f[3], enum ex_fmt fmt)
{
	if (!f[fmt]) {
		if (fmt == EX_RESP) {
			f[fmt] = encode_resp(p->name, p->len, pb->ch, pb->cn, pb->data, pb->n);
		} else if (fmt == EX_LINE) {
			struct msg *line = form(pb, EX_LINE);
			f[fmt] = line ? encode_pline(p->name, p->len, line) : NULL;
		} else if (ws_framer && pat_form(pb, p, f, EX_LINE)) {
			f[fmt] = ws_framer(f[EX_LINE]->data, f[EX_LINE]->len);
		}
		if (!f[fmt])
			pb->err = -ENOMEM;
	}
	return f[fmt];
}

/* Every subscriber of pattern p (which matches the channel). Each pattern
 * has its own forms, so one client holding --max-subs patterns that match
 * would have one PUBLISH encode --max-subs copies of it: none is made for
 * a subscriber already refusing (over a slow-consumer limit, often from
 * this very PUBLISH), which still counts as a receiver, as in Redis. */
static void publish_pattern(struct pub *pb, const struct pattern *p)
{
	struct msg *f[3] = {NULL, NULL, NULL};
	for (size_t k = 0; k < p->subs.n; k++) {
		if (!f[p->subs.v[k].fmt] && owner_refuses(p->subs.v[k].sub)) {
			pb->receivers++;
			continue;
		}
		struct msg *m = pat_form(pb, p, f, p->subs.v[k].fmt);
		if (m)
			deliver(pb, p->subs.v[k].sub, m);
	}
	for (int i = 0; i < 3; i++)
		msg_unref(f[i]);
}

static void publish_patterns(struct exchange *ex, struct pub *pb)
{
	for (size_t i = 0; i < ex->npats; i++) {
		struct pattern *p = ex->pats[i];
		if (glob_match(p->name, p->len, pb->ch, pb->cn))
			publish_pattern(pb, p);
	}
}

long exchange_publish(struct exchange *ex, const char *ch, size_t chn, const char *from, const char *data,
                      size_t n)
{
	struct pub pb = {.ch = ch, .from = from ? from : "-", .data = data, .cn = chn, .n = n};
	pthread_mutex_lock(&ex->lock);
	publish_channel(ex, &pb);
	publish_patterns(ex, &pb);
	pthread_mutex_unlock(&ex->lock);
	msg_unref(pb.line);
	msg_unref(pb.resp);
	msg_unref(pb.ws);
	stat_inc(STAT_chat_published);
	if (ex->hook.published)
		ex->hook.published(ex->hook.arg, ch, chn, pb.from, data, n);
	if (pb.err && pb.receivers == 0)
		return pb.err;
	return pb.receivers;
}

/* ---- the cluster bridge hook ---- */

void exchange_set_hook(struct exchange *ex, const struct exchange_hook *hook) { ex->hook = *hook; }

long exchange_publish_remote(struct exchange *ex, const char *pat, size_t pn, const char *ch, size_t cn,
                             const char *from, const char *data, size_t n)
{
	struct pub pb = {.ch = ch, .from = from ? from : "-", .data = data, .cn = cn, .n = n};
	size_t idx;
	pthread_mutex_lock(&ex->lock);
	struct pattern *p = pat ? pat_find(ex, pat, pn, &idx) : NULL;
	if (!pat)
		publish_channel(ex, &pb);
	else if (p && glob_match(p->name, p->len, ch, cn))
		publish_pattern(&pb, p);
	pthread_mutex_unlock(&ex->lock);
	msg_unref(pb.line);
	msg_unref(pb.resp);
	msg_unref(pb.ws);
	if (pb.err && pb.receivers == 0)
		return pb.err;
	return pb.receivers;
}
