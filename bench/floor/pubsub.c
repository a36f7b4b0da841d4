/* floor-pubsub - a measuring stick, not a server: the least a single-threaded
 * epoll server can do per RESP pub/sub delivery. SUBSCRIBE and PUBLISH only
 * (anything else gets one error line), no patterns, no UNSUBSCRIBE, no limits,
 * no checks. A PUBLISH encodes its "message" frame once and appends it to
 * each subscriber's contiguous output buffer; every connection with output is
 * written once per epoll_wait batch, after all of that batch's input (what
 * Redis does from beforeSleep). bench/compare runs it as the pub/sub cells'
 * floor, next to weft and redis-server.
 *
 *     floor-pubsub [PORT]    (127.0.0.1 only; prints "floor-pubsub ready: port=P ...") */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "floor.h"

struct buf {
	char *p;
	size_t len, off, cap;
};

struct conn {
	int fd;
	struct buf in, out;
	struct chan **chans; /* what it subscribed to, to leave on close */
	size_t nchans;
	bool dirty, want_out, dead;
	struct conn *next_dirty;
};

struct chan {
	char *name;
	size_t len, nsubs;
	struct conn **subs;
	struct chan *next;
};

#define BUCKETS 4096
static struct floor fl;
static struct chan *table[BUCKETS];
static struct conn *dirty;
static struct buf frame; /* one delivery, encoded once per PUBLISH */

static void reserve(struct buf *b, size_t more)
{
	if (b->len + more > b->cap) {
		size_t cap = b->cap ? b->cap : 16384;
		while (cap < b->len + more)
			cap *= 2;
		if (!(b->p = realloc(b->p, cap)))
			abort(); /* a floor has no policy for running out */
		b->cap = cap;
	}
}

static void put(struct buf *b, const void *p, size_t n)
{
	reserve(b, n);
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void putf(struct buf *b, const char *s, size_t n, const char *s2, size_t n2)
{
	char head[32];
	put(b, head, (size_t)snprintf(head, sizeof(head), "$%zu\r\n", n));
	put(b, s, n);
	put(b, "\r\n", 2);
	if (s2)
		putf(b, s2, n2, NULL, 0);
}

static void mark(struct conn *c)
{
	if (!c->dirty) {
		c->dirty = true;
		c->next_dirty = dirty;
		dirty = c;
	}
}

static struct chan *chan_get(const char *name, size_t len, bool create)
{
	size_t h = 5381;
	for (size_t i = 0; i < len; i++)
		h = h * 33 + (unsigned char)name[i];
	struct chan **slot = &table[h % BUCKETS];
	for (struct chan *ch = *slot; ch; ch = ch->next)
		if (ch->len == len && memcmp(ch->name, name, len) == 0)
			return ch;
	if (!create)
		return NULL;
	struct chan *ch = calloc(1, sizeof(*ch));
	if (!ch || !(ch->name = malloc(len)))
		abort();
	memcpy(ch->name, name, len);
	ch->len = len;
	ch->next = *slot;
	return *slot = ch;
}

static void subscribe(struct conn *c, const char *name, size_t len)
{
	struct chan *ch = chan_get(name, len, true);
	if (!(ch->subs = realloc(ch->subs, (ch->nsubs + 1) * sizeof(*ch->subs))) ||
	    !(c->chans = realloc(c->chans, (c->nchans + 1) * sizeof(*c->chans))))
		abort();
	ch->subs[ch->nsubs++] = c;
	c->chans[c->nchans++] = ch;
	char n[32];
	put(&c->out, "*3\r\n", 4);
	putf(&c->out, "subscribe", 9, name, len);
	put(&c->out, n, (size_t)snprintf(n, sizeof(n), ":%zu\r\n", c->nchans));
}

static void publish(struct conn *c, const char *name, size_t len, const char *msg, size_t mlen)
{
	struct chan *ch = chan_get(name, len, false);
	size_t nsubs = ch ? ch->nsubs : 0;
	frame.len = 0;
	put(&frame, "*3\r\n", 4);
	putf(&frame, "message", 7, name, len);
	putf(&frame, msg, mlen, NULL, 0);
	for (size_t i = 0; i < nsubs; i++) {
		put(&ch->subs[i]->out, frame.p, frame.len);
		mark(ch->subs[i]);
	}
	char n[32];
	put(&c->out, n, (size_t)snprintf(n, sizeof(n), ":%zu\r\n", nsubs));
}

#define ARGS_MAX 64
static const char ERR[] = "-ERR floor-pubsub knows SUBSCRIBE and PUBLISH only\r\n";

/* One command at p: bytes used, 0 if incomplete. Arrays of bulk strings only;
 * any other line is skipped with an error. */
static size_t command(struct conn *c, const char *p, size_t n)
{
	const char *arg[ARGS_MAX], *end = p + n, *q = memchr(p, '\n', n);
	size_t len[ARGS_MAX], argc = 0, want;
	if (!q)
		return 0;
	want = strtoul(p + 1, NULL, 10); /* stops at the '\r' or '\n' found above */
	for (q++; p[0] == '*' && argc < want; argc++) {
		const char *nl = memchr(q, '\n', (size_t)(end - q));
		size_t l = nl ? strtoul(q + 1, NULL, 10) : 0;
		if (!nl || (size_t)(end - nl - 1) < l + 2)
			return 0;
		if (argc < ARGS_MAX)
			arg[argc] = nl + 1, len[argc] = l;
		q = nl + 1 + l + 2;
	}
	if (p[0] == '*' && want >= 2 && want <= ARGS_MAX && len[0] == 9 && strncasecmp(arg[0], "subscribe", 9) == 0)
		for (size_t i = 1; i < want; i++)
			subscribe(c, arg[i], len[i]);
	else if (p[0] == '*' && want == 3 && len[0] == 7 && strncasecmp(arg[0], "publish", 7) == 0)
		publish(c, arg[1], len[1], arg[2], len[2]);
	else
		put(&c->out, ERR, sizeof(ERR) - 1);
	return (size_t)(q - p);
}

static void *on_accept(int fd)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (c)
		c->fd = fd;
	return c;
}

/* Leave every channel now; the memory goes after the flush (it may be on the dirty list). */
static void conn_close(struct conn *c)
{
	for (size_t i = 0; i < c->nchans; i++) {
		struct chan *ch = c->chans[i];
		for (size_t k = 0; k < ch->nsubs; k++)
			if (ch->subs[k] == c) {
				ch->subs[k] = ch->subs[--ch->nsubs];
				break;
			}
	}
	close(c->fd);
	c->dead = true;
	mark(c);
}

static void on_input(struct conn *c)
{
	reserve(&c->in, 65536);
	ssize_t n = read(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len);
	if (n == 0 || (n < 0 && errno != EAGAIN)) {
		conn_close(c);
		return;
	}
	c->in.len += (size_t)(n > 0 ? n : 0);
	size_t used;
	while (c->in.off < c->in.len && (used = command(c, c->in.p + c->in.off, c->in.len - c->in.off)))
		c->in.off += used;
	memmove(c->in.p, c->in.p + c->in.off, c->in.len - c->in.off);
	c->in.len -= c->in.off;
	c->in.off = 0;
	if (c->out.len)
		mark(c);
}

/* Once per batch: write every connection that has output, once. */
static void flush_all(void)
{
	while (dirty) {
		struct conn *c = dirty;
		dirty = c->next_dirty;
		c->dirty = false;
		if (c->dead) {
			free(c->in.p);
			free(c->out.p);
			free(c->chans);
			free(c);
			continue;
		}
		if (c->out.off < c->out.len) {
			ssize_t w = write(c->fd, c->out.p + c->out.off, c->out.len - c->out.off);
			if (w < 0 && errno != EAGAIN) {
				conn_close(c); /* back on the list: freed further down it */
				continue;
			}
			if (w > 0 && (c->out.off += (size_t)w) == c->out.len)
				c->out.off = c->out.len = 0;
		}
		bool want_out = c->out.len > 0;
		if (want_out != c->want_out && floor_watch(&fl, c->fd, c, EPOLLIN | (want_out ? EPOLLOUT : 0), false) == 0)
			c->want_out = want_out;
	}
}

int main(int argc, char **argv)
{
	floor_init(&fl, argc, argv, "floor-pubsub", on_accept);
	struct epoll_event ev[512];
	while (!fl.stop) {
		int n = floor_wait(&fl, ev, 512);
		for (int i = 0; i < n; i++) {
			struct conn *c = ev[i].data.ptr;
			if (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				on_input(c);
			else
				mark(c); /* EPOLLOUT: the rest of its output */
		}
		flush_all();
	}
	return 0;
}
