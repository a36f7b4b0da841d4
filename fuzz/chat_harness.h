/* chat_harness.h - shared by fuzz_resp.c and fuzz_line.c: one exchange, one
 * owner, sessions of either chat protocol fed whole or split, and a RESP
 * watcher subscribed to the pattern '*' that must only ever receive whole
 * pmessage arrays (nothing partial is published). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "config.h"
#include "exchange.h"
#include "msg.h"
#include "owner.h"
#include "proto.h"
#include "server.h"
#include "session.h"

static struct config cfg;
static struct server srv;
static struct owner own;

static void wake(struct owner *o) { (void)o; }
static void ready(struct subscriber *sub, void *arg) { (void)sub, (void)arg; }

static void setup(void)
{
	char *argv[] = {"weft", "--mode", "chat", "--max-line", "256", "--max-message", "512", "--max-subs", "8", NULL};
	if (config_parse(&cfg, 9, argv) != 0)
		abort();
	srv.cfg = &cfg;
	srv.ex = exchange_new();
	owner_init(&own, wake, NULL);
}

static struct session *open_as(const struct proto *p)
{
	struct session *s = session_new(&srv, &own, false);
	s->id = 1; /* the same default nick in every run */
	s->proto = p;
	if (p->init(s) < 0)
		abort();
	return s;
}

/* Everything s would send now. */
static char *drain(struct session *s, size_t *len)
{
	owner_drain(&own, ready, NULL);
	struct iovec iov[16];
	int n;
	char *out = NULL;
	*len = 0;
	while ((n = session_iov(s, iov, 16)) > 0) {
		for (int i = 0; i < n; i++) {
			out = realloc(out, *len + iov[i].iov_len);
			memcpy(out + *len, iov[i].iov_base, iov[i].iov_len);
			*len += iov[i].iov_len;
			session_sent(s, iov[i].iov_len);
		}
	}
	return out;
}

static char *run(const struct proto *p, const char *prefix, const uint8_t *data, size_t size, size_t split,
                 size_t *len)
{
	struct session *s = open_as(p);
	session_input(s, prefix, strlen(prefix));
	if (split) {
		session_input(s, (const char *)data, split);
		session_input(s, (const char *)data + split, size - split);
	} else {
		session_input(s, (const char *)data, size);
	}
	char *out = drain(s, len);
	session_eof(s); /* a partial command at EOF must publish nothing */
	size_t more;
	free(drain(s, &more));
	session_free(s);
	return out;
}

/* The watcher's stream is whole "*4 $8 pmessage $1 * $ ch $ msg" arrays. */
static void check_whole(const char *p, size_t n)
{
	const char pre[] = "*3\r\n$10\r\npsubscribe\r\n$1\r\n*\r\n:1\r\n";
	if (n < sizeof(pre) - 1 || memcmp(p, pre, sizeof(pre) - 1) != 0)
		abort();
	size_t i = sizeof(pre) - 1;
	while (i < n) {
		const char hd[] = "*4\r\n$8\r\npmessage\r\n$1\r\n*\r\n";
		if (n - i < sizeof(hd) - 1 || memcmp(p + i, hd, sizeof(hd) - 1) != 0)
			abort();
		i += sizeof(hd) - 1;
		for (int k = 0; k < 2; k++) {
			if (i >= n || p[i] != '$')
				abort();
			char *end;
			unsigned long l = strtoul(p + i + 1, &end, 10);
			i = (size_t)(end - p) + 2 + l + 2;
			if (i > n || p[i - 2] != '\r' || p[i - 1] != '\n')
				abort();
		}
	}
}

static void count_cb(const char *name, size_t n, size_t subs, void *arg)
{
	(void)name, (void)n;
	*(size_t *)arg += subs;
}

/* Watcher on; run(a) whole and split; compare(a, b); watcher checked; all freed. */
static void fuzz_one(const struct proto *p, const char *prefix, const uint8_t *data, size_t size,
                     void (*compare)(const char *, size_t, const char *, size_t))
{
	static int ready_once;
	if (!ready_once++)
		setup();
	if (size == 0)
		return;
	long live0 = msg_live_count();
	struct session *watch = open_as(&proto_resp);
	session_input(watch, "*2\r\n$10\r\npsubscribe\r\n$1\r\n*\r\n", 29);
	size_t split = size > 1 ? data[size - 1] % size : 0;
	size_t a_len, b_len, w_len;
	char *a = run(p, prefix, data, size, 0, &a_len);
	char *b = run(p, prefix, data, size, split, &b_len);
	compare(a, a_len, b, b_len);
	char *w = drain(watch, &w_len);
	check_whole(w, w_len);
	free(a);
	free(b);
	free(w);
	session_free(watch);
	size_t subs = 0;
	exchange_each_channel(srv.ex, count_cb, &subs);
	if (subs != 0 || msg_live_count() != live0)
		abort();
}
