/* chat.c - `weft-load chat`: pub/sub fan-out.
 *
 * S subscribers over K channels (subscriber s listens on channel s % K), P
 * publishers (publisher p publishes on channel p % K). Each message carries
 * "<publisher>:<seq>:<send time ns>:" and a fill derived from both, so a
 * subscriber checks every payload, measures end-to-end latency, and tracks
 * per publisher that nothing is lost, duplicated or reordered.
 *
 * Publishers start once every subscription is confirmed. Closed loop: a
 * publisher keeps at most --window PUBLISHes unanswered and all publishers
 * together at most --backlog undelivered messages (so a fast server is
 * measured, not its outbox limits). Open loop (--rate): publishes are due on
 * a fixed schedule and stamped with the intended time.
 *
 * Speaks RESP with --resp (also drives redis-server) and weft's line protocol
 * otherwise (docs/PROTOCOL.md). */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "wl.h"

#define TICK_NS 20000000u
#define OUT_PAUSE (4u << 20) /* open loop: stop queueing past this much unsent */
#define IN_CHUNK (64 * 1024)

enum role { SUB, PUB };

struct cconn {
	struct wl_io io;
	enum role role;
	unsigned num;     /* subscriber or publisher number */
	unsigned channel;
	char *in;
	size_t in_len, in_cap;
	char *out;
	size_t out_len, out_off, out_cap;
	bool connecting, up, dead, subscribed;
	char chan[24];    /* the channel's name */
	unsigned char chan_len;
	unsigned char pre_len;
	char pre[64];     /* SUB, RESP: the bytes every --size delivery starts with */
	uint64_t *next;   /* SUB: next expected seq per publisher */
	uint64_t seq;     /* PUB: next seq to publish */
	uint64_t replies; /* PUB: PUBLISH replies received */
	uint64_t last_progress;
};

struct cthread {
	const struct wl_opts *o;
	struct cconn **c;
	unsigned n;
	int ep;
	SSL_CTX *tls;
	bool running;
	uint64_t local_delivered; /* not yet added to the shared counter */
	struct wl_result r;
	pthread_t th;
};

static pthread_barrier_t subs_done, start_set;
static uint64_t t0, t_warm, t_end;
static atomic_uint_fast64_t subscribed, delivered_all, expected_all;
static unsigned *subs_per_channel;
static atomic_bool all_stopped_publishing;
static atomic_uint threads_publishing;

/* ---- wire formats ---- */

static const char *chan_prefix = "wl"; /* --channel-prefix, set once by wl_chat_run */

static int channel_str(unsigned k, char *buf, size_t n)
{
	return snprintf(buf, n, "%s%u", chan_prefix, k);
}

static int out_reserve(struct cconn *c, size_t more)
{
	if (c->out_off > 0 && c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (c->out_len + more <= c->out_cap)
		return 0;
	size_t cap = c->out_cap ? c->out_cap : 4096;
	while (cap < c->out_len + more)
		cap *= 2;
	char *p = realloc(c->out, cap);
	if (!p)
		return -ENOMEM;
	c->out = p;
	c->out_cap = cap;
	return 0;
}

static int out_printf(struct cconn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int out_printf(struct cconn *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || out_reserve(c, (size_t)n + 1) < 0)
		return -ENOMEM;
	va_start(ap, fmt);
	vsnprintf(c->out + c->out_len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	c->out_len += (size_t)n;
	return 0;
}

static int enc_subscribe(const struct wl_opts *o, struct cconn *c)
{
	char ch[32];
	int n = channel_str(c->channel, ch, sizeof(ch));
	if (o->resp)
		return out_printf(c, "*2\r\n$9\r\nSUBSCRIBE\r\n$%d\r\n%s\r\n", n, ch);
	return out_printf(c, "/join %s\n", ch);
}

/* The fill: byte i of message (pub, seq) is 'a' + (pub * 7 + seq * 13 + i) % 26.
 * alpha is "abc...z" repeated, so the fill from byte i on is the run that
 * starts at alpha[(pub * 7 + seq * 13 + i) % 26]: making or checking it is a
 * memcpy or memcmp. */
static char *alpha;
static size_t alpha_len;

static int alpha_init(size_t size)
{
	alpha_len = size + 26;
	alpha = malloc(alpha_len);
	if (!alpha)
		return -ENOMEM;
	for (size_t i = 0; i < alpha_len; i++)
		alpha[i] = (char)('a' + i % 26);
	return 0;
}

/* The number that the digits in t's low bytes make, first digit in the
 * lowest byte (t: eight bytes of 0..9, little-endian; SWAR as in simdjson). */
static uint64_t digits_value(uint64_t t)
{
	t = (t * 10) + (t >> 8); /* pairs of digits */
	return (((t & 0x000000FF000000FFull) * (100 + (1000000ull << 32))) +
	        (((t >> 16) & 0x000000FF000000FFull) * (1 + (10000ull << 32)))) >> 32;
}

/* A decimal number (1-20 digits) ending in ':' at *p (advanced past the ':');
 * false if malformed. Every delivery carries three (the send time alone has 19
 * digits), and a byte loop over them, with a mispredicted exit per number, was
 * the load generator's hottest code: eight bytes at a time, the digits' end
 * found by a mask, not a loop. */
static bool take_num(const char **p, const char *end, uint64_t *v)
{
	static const uint64_t pow10[9] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000};
	const char *q = *p;
	uint64_t x = 0;
	while (end - q >= 8 && q - *p <= 12) { /* 20 digits at most, as below */
		uint64_t t;
		memcpy(&t, q, 8);
		t ^= 0x3030303030303030ull; /* a digit byte is now 0..9 */
		uint64_t nd = (((t & 0x7F7F7F7F7F7F7F7Full) + 0x7676767676767676ull) | t) & 0x8080808080808080ull;
		unsigned l = nd ? (unsigned)__builtin_ctzll(nd) / 8 : 8; /* digits before the first other byte */
		if (l == 0)
			break;
		if (l < 8)
			t <<= 8 * (8 - l); /* drop the rest; the low bytes become leading zeros */
		x = x * pow10[l] + digits_value(t);
		q += l;
		if (l < 8)
			goto digits_end;
	}
	while (q < end && *q >= '0' && *q <= '9' && q - *p < 20)
		x = x * 10 + (uint64_t)(*q++ - '0');
digits_end:
	if (q == *p || q == end || *q != ':')
		return false;
	*v = x;
	*p = q + 1;
	return true;
}

/* Decimal digits of v at w; returns the end. */
static char *put_u64(char *w, uint64_t v)
{
	char tmp[20];
	int k = 0;
	do
		tmp[k++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	while (k)
		*w++ = tmp[--k];
	return w;
}

/* The payload: header then fill up to --size (never shorter than the header). */
static size_t make_payload(const struct wl_opts *o, uint64_t pub, uint64_t seq, uint64_t ts, char *buf, size_t cap)
{
	char *w = buf;
	w = put_u64(w, pub);
	*w++ = ':';
	w = put_u64(w, seq);
	*w++ = ':';
	w = put_u64(w, ts);
	*w++ = ':';
	size_t h = (size_t)(w - buf);
	size_t n = o->size > h ? o->size : h;
	if (n > cap)
		n = cap;
	if (n > h)
		memcpy(w, alpha + (pub * 7 + seq * 13 + h) % 26, n - h);
	return n;
}

/* PUBLISH <channel> <payload>: RESP or a line. The channel part is the same
 * for every message of a connection (c->pre, made once). */
static int enc_publish(const struct wl_opts *o, struct cconn *c, const char *pl, size_t n)
{
	char len[24];
	char *e = len;
	if (o->resp) {
		e = put_u64(e, n);
		*e++ = '\r';
		*e++ = '\n';
	}
	if (out_reserve(c, c->pre_len + (size_t)(e - len) + n + 2) < 0)
		return -ENOMEM;
	char *w = c->out + c->out_len;
	memcpy(w, c->pre, c->pre_len);
	w += c->pre_len;
	memcpy(w, len, (size_t)(e - len));
	w += e - len;
	memcpy(w, pl, n);
	w += n;
	if (o->resp) {
		*w++ = '\r';
		*w++ = '\n';
	} else {
		*w++ = '\n';
	}
	c->out_len = (size_t)(w - c->out);
	return 0;
}

/* A decoded server frame. */
enum ev_kind { EV_NONE, EV_SUBSCRIBED, EV_MESSAGE, EV_PUBLISHED, EV_ERROR, EV_OTHER };
struct ev {
	enum ev_kind kind;
	const char *chan, *payload;
	size_t chan_len, payload_len;
	long long n;
};

/* RESP: one line ending in CRLF starting at p; returns its length without CRLF, or -1 incomplete. */
static long line_len(const char *p, size_t n)
{
	const char *e = memchr(p, '\n', n);
	if (!e)
		return -1;
	return (long)(e - p) - (e > p && e[-1] == '\r' ? 1 : 0);
}

/* One RESP bulk string or integer at p: 0 incomplete, -1 malformed, else bytes used. */
static long resp_item(const char *p, size_t n, const char **s, size_t *len, long long *num, char *type)
{
	long l = line_len(p, n);
	if (l < 0)
		return 0;
	size_t head = (size_t)l + 2;
	*type = p[0];
	if (p[0] == ':') {
		*num = strtoll(p + 1, NULL, 10);
		return (long)head;
	}
	if (p[0] != '$')
		return -1;
	long long bl = strtoll(p + 1, NULL, 10);
	if (bl < 0)
		return -1;
	if (n < head + (size_t)bl + 2)
		return 0;
	*s = p + head;
	*len = (size_t)bl;
	return (long)(head + (size_t)bl + 2);
}

static long parse_resp(const char *p, size_t n, struct ev *ev)
{
	long l = line_len(p, n);
	if (l < 0)
		return 0;
	memset(ev, 0, sizeof(*ev));
	switch (p[0]) {
	case ':':
		ev->kind = EV_PUBLISHED;
		ev->n = strtoll(p + 1, NULL, 10);
		return l + 2;
	case '-':
		ev->kind = EV_ERROR;
		return l + 2;
	case '+':
		ev->kind = EV_OTHER;
		return l + 2;
	case '*':
		break;
	default:
		return -1;
	}
	long count = strtol(p + 1, NULL, 10);
	size_t used = (size_t)l + 2;
	const char *s[3] = {0};
	size_t sl[3] = {0};
	long long num = 0;
	for (long i = 0; i < count; i++) {
		char type;
		const char *str = NULL;
		size_t len = 0;
		long k = resp_item(p + used, n - used, &str, &len, &num, &type);
		if (k <= 0)
			return k;
		if (i < 3) {
			s[i] = str;
			sl[i] = len;
		}
		used += (size_t)k;
	}
	ev->kind = EV_OTHER;
	if (count == 3 && s[0] && sl[0] == 7 && memcmp(s[0], "message", 7) == 0 && s[2]) {
		ev->kind = EV_MESSAGE;
		ev->chan = s[1];
		ev->chan_len = sl[1];
		ev->payload = s[2];
		ev->payload_len = sl[2];
	} else if (count == 3 && s[0] && sl[0] == 9 && memcmp(s[0], "subscribe", 9) == 0) {
		ev->kind = EV_SUBSCRIBED;
	}
	return (long)used;
}

/* Line protocol (docs/PROTOCOL.md, common/protocols/chat_line.c): one reply or
 * delivery per line; /join and /pub are answered "OK join ..." and
 * "OK pub <channel> <receivers>", deliveries are "MSG <channel> <from> <text>". */
static long parse_line(const char *p, size_t n, struct ev *ev)
{
	const char *e = memchr(p, '\n', n);
	if (!e)
		return 0;
	size_t l = (size_t)(e - p);
	size_t used = l + 1;
	if (l > 0 && p[l - 1] == '\r')
		l--;
	memset(ev, 0, sizeof(*ev));
	ev->kind = EV_OTHER;
	if (l >= 4 && memcmp(p, "MSG ", 4) == 0) {
		/* "MSG <channel> <nick> <payload>" */
		const char *ch = p + 4, *end = p + l;
		const char *sp = memchr(ch, ' ', (size_t)(end - ch));
		if (!sp)
			return -1;
		const char *nick = sp + 1;
		const char *sp2 = memchr(nick, ' ', (size_t)(end - nick));
		if (!sp2)
			return -1;
		ev->kind = EV_MESSAGE;
		ev->chan = ch;
		ev->chan_len = (size_t)(sp - ch);
		ev->payload = sp2 + 1;
		ev->payload_len = (size_t)(end - sp2 - 1);
	} else if (l >= 8 && memcmp(p, "OK join ", 8) == 0) {
		ev->kind = EV_SUBSCRIBED; /* "OK join <channel> <subscribers>" */
	} else if (l >= 7 && memcmp(p, "OK pub ", 7) == 0) {
		/* "OK pub <channel> <receivers>" */
		const char *sp = memrchr(p, ' ', l);
		ev->kind = EV_PUBLISHED;
		ev->n = strtoll(sp + 1, NULL, 10);
	} else if (l >= 3 && memcmp(p, "ERR", 3) == 0) {
		ev->kind = EV_ERROR;
	}
	return (long)used;
}

/* ---- connections ---- */

static void conn_dead(struct cthread *t, struct cconn *c, uint64_t *counter)
{
	if (counter)
		(*counter)++;
	wl_io_close(&c->io);
	c->up = c->connecting = false;
	c->dead = true;
	(void)t;
}

static void flush_delivered(struct cthread *t)
{
	if (t->local_delivered) {
		atomic_fetch_add(&delivered_all, t->local_delivered);
		t->local_delivered = 0;
	}
}

/* The first bad delivery or reply of a run, on stderr (once: a broken server
 * would print millions), so a failure says which check failed and on what. */
static atomic_bool told_bad;

static void tell_bad(const char *what, const char *chan, size_t chan_len, const char *p, size_t n)
{
	if (atomic_exchange(&told_bad, true))
		return;
	fprintf(stderr, "weft-load: first %s: channel '%.*s', %zu bytes: '%.*s'%s\n", what, (int)(chan_len < 40 ? chan_len : 40),
		chan, n, (int)(n < 80 ? n : 80), p, n > 80 ? "..." : "");
}

/* Check one delivery: channel, payload, order per publisher, latency. Lean on
 * purpose (no formatting or scanning per message): the load generator must
 * outrun the servers it drives, or a cell measures weft-load. */
static void on_message(struct cthread *t, struct cconn *c, const char *chan, size_t chan_len, const char *pl,
                       size_t n, uint64_t now)
{
	const struct wl_opts *o = t->o;
	const char *q = pl, *end = pl + n;
	uint64_t pub, seq, ts;
	if (chan_len != c->chan_len || memcmp(chan, c->chan, chan_len) != 0 || !take_num(&q, end, &pub) ||
	    !take_num(&q, end, &seq) || !take_num(&q, end, &ts) || pub >= (uint64_t)o->publishers ||
	    pub % (uint64_t)o->channels != c->channel) {
		t->r.mismatches++;
		tell_bad("delivery with a wrong channel or header", chan, chan_len, pl, n);
		return;
	}
	size_t used = (size_t)(q - pl);
	size_t want = o->size > used ? o->size : used;
	if (n != want || (n > used && memcmp(q, alpha + (pub * 7 + seq * 13 + used) % 26, n - used) != 0)) {
		t->r.mismatches++;
		tell_bad("delivery with a wrong length or fill", chan, chan_len, pl, n);
		return;
	}
	if (seq < c->next[pub]) {
		t->r.reordered++; /* a duplicate or a late one: either breaks the order */
		return;
	}
	if (seq > c->next[pub])
		t->r.lost += seq - c->next[pub];
	c->next[pub] = seq + 1;
	t->local_delivered++;
	if (ts >= t_warm) {
		t->r.ops++;
		t->r.bytes += n;
		wl_hist_add(&t->r.hist, now > ts ? now - ts : 0);
		t->r.t_last = now;
	}
}

/* RESP: a delivery of the usual length is its subscriber's fixed prefix, the
 * payload and CRLF; 0 when the bytes at p are anything else (then the
 * general parser decides), else the bytes used. */
static long fast_message(struct cthread *t, struct cconn *c, const char *p, size_t n, uint64_t now)
{
	size_t len = c->pre_len + t->o->size + 2;
	if (!c->pre_len || n < len || memcmp(p, c->pre, c->pre_len) != 0 || p[len - 2] != '\r' || p[len - 1] != '\n')
		return 0;
	on_message(t, c, c->chan, c->chan_len, p + c->pre_len, t->o->size, now);
	return (long)len;
}

static void on_event(struct cthread *t, struct cconn *c, const struct ev *ev, uint64_t now)
{
	switch (ev->kind) {
	case EV_SUBSCRIBED:
		if (c->role == SUB && !c->subscribed) {
			c->subscribed = true;
			atomic_fetch_add(&subscribed, 1);
		}
		break;
	case EV_MESSAGE:
		if (c->role == SUB)
			on_message(t, c, ev->chan, ev->chan_len, ev->payload, ev->payload_len, now);
		else
			t->r.errors++;
		break;
	case EV_PUBLISHED:
		if (c->role != PUB) {
			t->r.errors++;
			break;
		}
		c->replies++;
		/* Through a weft cluster (--pub-port) the count is the publishing node's own receivers (none).
		 * Anyone else listening on the run's channels counts too: a subscriber of an earlier run that
		 * the server has not yet seen close is one more (--channel-prefix keeps runs apart). */
		if (ev->n >= 0 && (unsigned long long)ev->n != (t->o->pub_port ? 0 : subs_per_channel[c->channel])) {
			t->r.count_mismatches++; /* the server says it reached a different number of subscribers */
			if (!atomic_exchange(&told_bad, true))
				fprintf(stderr, "weft-load: first wrong receiver count: publisher %u on '%s' reached %lld, not %u\n",
					c->num, c->chan, ev->n, t->o->pub_port ? 0 : subs_per_channel[c->channel]);
		}
		break;
	case EV_ERROR:
		t->r.errors++;
		break;
	default:
		break;
	}
}

static int conn_write(struct cthread *t, struct cconn *c)
{
	if (c->io.ws) { /* frames taken earlier (pongs too) may still wait */
		int rc = wl_ws_flush(&c->io);
		if (rc == -EAGAIN)
			return 0;
		if (rc < 0) {
			conn_dead(t, c, &t->r.errors);
			return -1;
		}
	}
	while (c->out_off < c->out_len) {
		ssize_t w = wl_io_write(&c->io, c->out + c->out_off, c->out_len - c->out_off);
		if (w == -EAGAIN)
			return 0;
		if (w < 0) {
			conn_dead(t, c, &t->r.errors);
			return -1;
		}
		c->out_off += (size_t)w;
	}
	c->out_off = c->out_len = 0;
	return 0;
}

static int conn_read(struct cthread *t, struct cconn *c, uint64_t now)
{
	for (;;) {
		if (c->in_cap - c->in_len < IN_CHUNK) {
			size_t cap = c->in_cap ? c->in_cap * 2 : 2 * IN_CHUNK;
			char *p = realloc(c->in, cap);
			if (!p) {
				conn_dead(t, c, &t->r.errors);
				return -1;
			}
			c->in = p;
			c->in_cap = cap;
		}
		ssize_t r = wl_io_read(&c->io, c->in + c->in_len, c->in_cap - c->in_len);
		if (r == -EAGAIN)
			break;
		if (r <= 0) {
			conn_dead(t, c, &t->r.errors);
			return -1;
		}
		c->in_len += (size_t)r;
		c->last_progress = now;
		size_t off = 0;
		for (;;) {
			struct ev ev;
			long k = c->role == SUB && t->o->resp && c->pre_len ? fast_message(t, c, c->in + off, c->in_len - off, now) : 0;
			if (k > 0) {
				off += (size_t)k;
				continue;
			}
			k = t->o->resp ? parse_resp(c->in + off, c->in_len - off, &ev) : parse_line(c->in + off, c->in_len - off, &ev);
			if (k == 0)
				break;
			if (k < 0) {
				conn_dead(t, c, &t->r.errors);
				return -1;
			}
			on_event(t, c, &ev, now);
			off += (size_t)k;
		}
		memmove(c->in, c->in + off, c->in_len - off);
		c->in_len -= off;
		/* Keep the buffer from staying huge after one big burst. */
		if (c->in_len == 0 && c->in_cap > 8 * IN_CHUNK) {
			free(c->in);
			c->in = NULL;
			c->in_cap = 0;
		}
		if (!c->io.ws && c->io.short_read) { /* drained: skip the read that would say EAGAIN */
			c->io.short_read = false;
			break;
		}
	}
	flush_delivered(t);
	return 0;
}

/* ---- publishing ---- */

static uint64_t pub_quota(const struct wl_opts *o, unsigned p)
{
	if (!o->count)
		return UINT64_MAX;
	return o->count / (uint64_t)o->publishers + (p < o->count % (uint64_t)o->publishers);
}

static uint64_t pub_period(const struct wl_opts *o)
{
	return (uint64_t)(1e9 * o->publishers / o->rate);
}

/* Open loop: when publisher c's next message is due. */
static uint64_t pub_due_at(const struct wl_opts *o, const struct cconn *c)
{
	return t0 + (c->seq * o->publishers + c->num) * pub_period(o) / o->publishers;
}

static bool pub_may(struct cthread *t, struct cconn *c, uint64_t now)
{
	const struct wl_opts *o = t->o;
	if (!t->running || !c->up || c->seq >= pub_quota(o, c->num))
		return false;
	if (o->rate > 0)
		return pub_due_at(o, c) <= now && c->out_len - c->out_off < OUT_PAUSE;
	if (c->seq - c->replies >= (uint64_t)o->window)
		return false;
	return atomic_load(&expected_all) - atomic_load(&delivered_all) < o->backlog;
}

static void publish(struct cthread *t, struct cconn *c, uint64_t now)
{
	const struct wl_opts *o = t->o;
	char buf[1 << 16];
	char *pl = o->size + 64 <= sizeof(buf) ? buf : malloc(o->size + 64);
	if (!pl)
		return;
	while (pub_may(t, c, now)) {
		uint64_t ts = o->rate > 0 ? pub_due_at(o, c) : now;
		size_t n = make_payload(o, c->num, c->seq, ts, pl, o->size + 64);
		if (enc_publish(o, c, pl, n) < 0)
			break;
		c->seq++;
		t->r.published++;
		atomic_fetch_add(&expected_all, subs_per_channel[c->channel]);
	}
	if (pl != buf)
		free(pl);
	conn_write(t, c);
}

/* ---- the loop ---- */

static void conn_event(struct cthread *t, struct cconn *c, uint64_t now)
{
	if (c->dead || c->io.fd < 0)
		return;
	if (c->connecting) {
		int rc = wl_io_connected(&c->io);
		if (rc == 0)
			rc = wl_io_handshake(&c->io);
		if (rc == -EAGAIN)
			return;
		if (rc < 0) {
			conn_dead(t, c, &t->r.connect_failures);
			return;
		}
		c->connecting = false;
		c->up = true;
		if (c->role == SUB && enc_subscribe(t->o, c) < 0) {
			conn_dead(t, c, &t->r.errors);
			return;
		}
	}
	if (conn_write(t, c) < 0 || conn_read(t, c, now) < 0)
		return;
	if (c->role == PUB)
		publish(t, c, now);
}

static void poll_once(struct cthread *t, int64_t timeout_ns)
{
	struct epoll_event ev[256];
	int n = wl_epoll_wait(t->ep, ev, 256, timeout_ns);
	uint64_t now = wl_now_ns();
	for (int i = 0; i < n; i++) {
		struct cconn *c = ev[i].data.ptr;
		wl_io_events(&c->io, ev[i].events);
		conn_event(t, c, now);
	}
}

static bool my_subs_ready(struct cthread *t)
{
	for (unsigned i = 0; i < t->n; i++) {
		struct cconn *c = t->c[i];
		if (c->dead)
			continue;
		if (c->connecting || (c->role == SUB && !c->subscribed))
			return false;
	}
	return true;
}

static void setup(struct cthread *t)
{
	uint64_t now = wl_now_ns();
	uint64_t deadline = now + (uint64_t)(t->o->timeout_s * 1e9);
	for (unsigned i = 0; i < t->n; i++) {
		struct cconn *c = t->c[i];
		struct wl_opts po = *t->o;
		if (c->role == PUB && po.pub_port)
			po.port = po.pub_port; /* publish on another node of a weft cluster */
		if (wl_io_connect(&c->io, &po, t->tls, NULL) < 0 || wl_epoll_add(t->ep, c->io.fd, c) < 0) {
			conn_dead(t, c, &t->r.connect_failures);
			continue;
		}
		c->connecting = true;
	}
	while (!my_subs_ready(t) && wl_now_ns() < deadline && !atomic_load(&wl_stop))
		poll_once(t, 10000000);
	for (unsigned i = 0; i < t->n; i++) {
		struct cconn *c = t->c[i];
		if (c->connecting)
			conn_dead(t, c, &t->r.connect_failures);
		else if (c->role == SUB && !c->dead && !c->subscribed)
			conn_dead(t, c, &t->r.timeouts);
	}
}

static bool pubs_finished(struct cthread *t, uint64_t now)
{
	if (now >= t_end || atomic_load(&wl_stop))
		return true;
	for (unsigned i = 0; i < t->n; i++) {
		struct cconn *c = t->c[i];
		if (c->role == PUB && c->up && c->seq < pub_quota(t->o, c->num))
			return false;
	}
	return true;
}

/* Nothing left in flight that this thread is waiting for. */
static bool drained(struct cthread *t)
{
	for (unsigned i = 0; i < t->n; i++) {
		struct cconn *c = t->c[i];
		if (c->up && (c->out_off < c->out_len || (c->role == PUB && c->replies < c->seq)))
			return false;
	}
	return atomic_load(&all_stopped_publishing) && atomic_load(&delivered_all) >= atomic_load(&expected_all);
}

/* Open loop: sleep until this thread's next publish is due (at most 1 ms), so
 * a message is not sent late - and its latency inflated - by the client's own
 * sleep. */
static int64_t open_loop_wait(struct cthread *t, uint64_t now)
{
	int64_t wait = 1000000;
	for (unsigned i = 0; i < t->n; i++) {
		struct cconn *c = t->c[i];
		if (c->role == PUB && c->up && c->seq < pub_quota(t->o, c->num)) {
			int64_t d = (int64_t)(pub_due_at(t->o, c) - now);
			wait = d < wait ? d : wait;
		}
	}
	return wait > 0 ? wait : 0;
}

static void run_loop(struct cthread *t)
{
	uint64_t drain_until = 0;
	for (unsigned i = 0; i < t->n; i++)
		if (t->c[i]->role == PUB)
			publish(t, t->c[i], wl_now_ns());
	for (;;) {
		uint64_t now = wl_now_ns();
		if (t->running && pubs_finished(t, now)) {
			t->running = false;
			if (t->o->rate > 0)
				for (unsigned i = 0; i < t->n; i++) {
					struct cconn *c = t->c[i];
					if (c->role != PUB)
						continue;
					uint64_t q = pub_quota(t->o, c->num);
					uint64_t due = (uint64_t)((double)(now - t0) / 1e9 * t->o->rate / t->o->publishers);
					due = due < q ? due : q;
					t->r.unsent += due > c->seq ? due - c->seq : 0;
				}
			drain_until = now + (uint64_t)(t->o->timeout_s * 1e9);
			if (atomic_fetch_sub(&threads_publishing, 1) == 1)
				atomic_store(&all_stopped_publishing, true);
		}
		if (t->running)
			for (unsigned i = 0; i < t->n; i++)
				if (t->c[i]->role == PUB)
					publish(t, t->c[i], now);
		if (!t->running && (drained(t) || now >= drain_until))
			return;
		int64_t wait = t->running ? 1000000 : TICK_NS; /* closed: the backlog bound frees up as others deliver */
		if (t->running && t->o->rate > 0)
			wait = open_loop_wait(t, now);
		poll_once(t, wait);
	}
}

static void *thread_main(void *arg)
{
	struct cthread *t = arg;
	setup(t);
	if (pthread_barrier_wait(&subs_done) == PTHREAD_BARRIER_SERIAL_THREAD) {
		if (t->o->settle_s > 0) /* a cluster node's engine subscription follows its first subscriber */
			usleep((useconds_t)(t->o->settle_s * 1e6));
		t0 = wl_now_ns();
		t_warm = t0 + (uint64_t)(t->o->warmup_s * 1e9);
		t_end = t_warm + (uint64_t)(t->o->duration_s * 1e9);
	}
	pthread_barrier_wait(&start_set);
	t->r.t_first = t_warm;
	t->running = true;
	run_loop(t);
	return NULL;
}

/* After the run: what never arrived, and replies that never came. */
static void account(const struct wl_opts *o, struct cconn **all, unsigned total, struct wl_result *r)
{
	uint64_t *published = calloc((size_t)o->publishers, sizeof(*published));
	if (!published)
		return;
	for (unsigned i = 0; i < total; i++)
		if (all[i]->role == PUB) {
			published[all[i]->num] = all[i]->seq;
			if (all[i]->replies < all[i]->seq)
				r->timeouts += all[i]->seq - all[i]->replies;
		}
	for (unsigned i = 0; i < total; i++) {
		struct cconn *c = all[i];
		if (c->role != SUB)
			continue;
		for (unsigned p = 0; p < (unsigned)o->publishers; p++)
			if (p % (unsigned)o->channels == c->channel && published[p] > c->next[p])
				r->lost += published[p] - c->next[p];
	}
	r->expected = atomic_load(&expected_all);
	free(published);
}

static void conn_free(struct cconn *c)
{
	if (!c)
		return;
	wl_io_close(&c->io);
	free(c->in);
	free(c->out);
	free(c->next);
	free(c);
}

int wl_chat_run(const struct wl_opts *o, struct wl_result *r)
{
	if (o->chan_prefix)
		chan_prefix = o->chan_prefix;
	unsigned total = (unsigned)(o->subscribers + o->publishers);
	unsigned nt = (unsigned)o->threads < total ? (unsigned)o->threads : total;
	struct cthread *ts = calloc(nt, sizeof(*ts));
	struct cconn **all = calloc(total, sizeof(*all));
	subs_per_channel = calloc((size_t)o->channels, sizeof(*subs_per_channel));
	SSL_CTX *tls = o->tls ? wl_tls_ctx() : NULL;
	int rc = (!ts || !all || !subs_per_channel || (o->tls && !tls) || alpha_init(o->size) < 0) ? -ENOMEM : 0;
	for (unsigned i = 0; ts && i < nt; i++)
		ts[i].ep = -1;
	atomic_store(&subscribed, 0);
	atomic_store(&told_bad, false);
	atomic_store(&delivered_all, 0);
	atomic_store(&expected_all, 0);
	atomic_store(&all_stopped_publishing, false);
	atomic_store(&threads_publishing, nt);
	for (unsigned i = 0; rc == 0 && i < total; i++) {
		struct cconn *c = calloc(1, sizeof(*c));
		all[i] = c;
		if (!c) {
			rc = -ENOMEM;
			break;
		}
		c->io.fd = -1;
		c->role = i < (unsigned)o->subscribers ? SUB : PUB;
		c->num = c->role == SUB ? i : i - (unsigned)o->subscribers;
		c->channel = c->num % (unsigned)o->channels;
		c->chan_len = (unsigned char)channel_str(c->channel, c->chan, sizeof(c->chan));
		int k = 0;
		if (c->role == SUB && o->resp && o->size <= 4096)
			k = snprintf(c->pre, sizeof(c->pre), "*3\r\n$7\r\nmessage\r\n$%u\r\n%s\r\n$%zu\r\n",
			             (unsigned)c->chan_len, c->chan, o->size);
		else if (c->role == PUB && o->resp)
			k = snprintf(c->pre, sizeof(c->pre), "*3\r\n$7\r\nPUBLISH\r\n$%u\r\n%s\r\n$", (unsigned)c->chan_len,
			             c->chan);
		else if (c->role == PUB)
			k = snprintf(c->pre, sizeof(c->pre), "/pub %s ", c->chan);
		c->pre_len = k > 0 && (size_t)k < sizeof(c->pre) ? (unsigned char)k : 0;
		if (c->role == SUB) {
			subs_per_channel[c->channel]++;
			c->next = calloc((size_t)o->publishers, sizeof(*c->next));
			if (!c->next)
				rc = -ENOMEM;
		}
	}
	for (unsigned i = 0; rc == 0 && i < nt; i++) {
		struct cthread *t = &ts[i];
		t->o = o;
		t->tls = tls;
		wl_result_init(&t->r);
		t->ep = epoll_create1(EPOLL_CLOEXEC);
		t->c = calloc(total / nt + 1, sizeof(*t->c));
		if (t->ep < 0 || !t->c)
			rc = -ENOMEM;
		for (unsigned k = i; t->c && k < total; k += nt)
			t->c[t->n++] = all[k]; /* round robin: each thread gets subscribers and publishers */
	}
	if (rc == 0) {
		pthread_barrier_init(&subs_done, NULL, nt);
		pthread_barrier_init(&start_set, NULL, nt);
		unsigned started = 0;
		for (; started < nt; started++)
			if (pthread_create(&ts[started].th, NULL, thread_main, &ts[started]) != 0) {
				fprintf(stderr, "weft-load: could not start all threads\n");
				exit(3);
			}
		for (unsigned i = 0; i < nt; i++) {
			pthread_join(ts[i].th, NULL);
			wl_result_merge(r, &ts[i].r);
		}
		pthread_barrier_destroy(&subs_done);
		pthread_barrier_destroy(&start_set);
		account(o, all, total, r);
	}
	for (unsigned i = 0; ts && i < nt; i++) {
		if (ts[i].ep >= 0)
			close(ts[i].ep);
		free(ts[i].c);
	}
	for (unsigned i = 0; all && i < total; i++)
		conn_free(all[i]);
	free(all);
	free(ts);
	free(subs_per_channel);
	subs_per_channel = NULL;
	free(alpha);
	alpha = NULL;
	SSL_CTX_free(tls);
	return rc;
}
