/* chat_line.c - the netcat chat protocol (proto_chat_line): one command or
 * message per line in, one reply or delivery per line out. Exact formats are
 * in docs/PROTOCOL.md.
 *
 * A line is acted on only once its LF is here, so a connection that drops
 * mid-line publishes nothing. A line longer than --max-line is answered with
 * an error and skipped up to its LF (the connection stays usable). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "chat.h"
#include "owner.h"
#include "proto.h"
#include "server.h"
#include "session.h"

struct line {
	size_t scanned;   /* bytes of the pending line already searched for LF */
	bool discarding;  /* skipping the rest of an over-long line */
	char current[CHAT_NAME_MAX + 1]; /* where plain lines go; "" = nowhere */
};

#define HELP_LINE                                                                                            \
	"HELP commands: /nick NAME | /join CHANNEL | /leave [CHANNEL] | /pub CHANNEL TEXT | /list | /help | " \
	"/quit; any other line goes to the channel joined last; start it with // to send a line beginning with /\n"

static void reply(struct session *s, const char *fmt, ...)
{
	char b[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(b, sizeof(b) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(b) - 2)
		n = (int)sizeof(b) - 2;
	b[n] = '\n';
	session_write(s, b, (size_t)n + 1);
}

/* A short, escaped copy of client input for an error line. */
static const char *snip(char out[80], const char *p, size_t n)
{
	size_t k = exchange_line_escape(NULL, p, n > 16 ? 16 : n);
	exchange_line_escape(out, p, n > 16 ? 16 : n);
	strcpy(out + k, n > 16 ? "..." : "");
	return out;
}

static void bad(struct session *s, const char *fmt, ...)
{
	char b[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(b, sizeof(b), fmt, ap);
	va_end(ap);
	stat_inc(STAT_chat_bad_input);
	reply(s, "ERR %s", b);
}

static bool check_channel(struct session *s, const char *p, size_t n)
{
	char sn[80];
	if (chat_valid_name(p, n))
		return true;
	bad(s, "invalid channel name '%s': 1-%d bytes, no spaces or control characters", snip(sn, p, n), CHAT_NAME_MAX);
	return false;
}

static bool check_message(struct session *s, size_t n)
{
	if (n <= s->srv->cfg->max_message)
		return true;
	stat_inc(STAT_chat_too_big);
	reply(s, "ERR message too long: %zu bytes (max %zu, weft --max-message)", n, s->srv->cfg->max_message);
	return false;
}

static void publish(struct session *s, const char *ch, size_t cn, const char *text, size_t n, bool tell)
{
	if (!check_message(s, n))
		return;
	long r = exchange_publish(s->srv->ex, ch, cn, s->chat->nick, text, n);
	/* Our own copy (if we listen there) comes before whatever this line's
	 * successors write: "//x" then "/leave" must show the MSG, then the OK. */
	owner_flush(s);
	if (r < 0)
		reply(s, "ERR out of memory");
	else if (tell)
		reply(s, "OK pub %.*s %ld", (int)cn, ch, r);
}

static void cmd_nick(struct session *s, const char *a, size_t n)
{
	char sn[80];
	if (!chat_valid_nick(a, n)) {
		bad(s, "invalid nick '%s': 1-%d of A-Z a-z 0-9 _ . -", snip(sn, a, n), CHAT_NICK_MAX);
		return;
	}
	memcpy(s->chat->nick, a, n);
	s->chat->nick[n] = '\0';
	reply(s, "OK nick %s", s->chat->nick);
}

static void cmd_join(struct session *s, struct line *l, const char *a, size_t n)
{
	if (!check_channel(s, a, n))
		return;
	int rc = chat_subscribe(s, a, n, false);
	if (rc == -ENOSPC) {
		reply(s, "ERR too many channels: %d at most (weft --max-subs)", s->srv->cfg->max_subs);
		return;
	}
	if (rc < 0) {
		reply(s, "ERR out of memory");
		return;
	}
	memcpy(l->current, a, n);
	l->current[n] = '\0';
	reply(s, "OK join %s %zu", l->current, exchange_subscribers(s->srv->ex, a, n));
}

static void cmd_leave(struct session *s, struct line *l, const char *a, size_t n)
{
	char sn[80];
	if (n == 0) {
		a = l->current;
		n = strlen(a);
		if (n == 0) {
			bad(s, "not in any channel");
			return;
		}
	}
	char name[CHAT_NAME_MAX + 1];
	if (n > CHAT_NAME_MAX || !chat_unsubscribe(s, a, n, false)) {
		bad(s, "not in channel '%s'", snip(sn, a, n));
		return;
	}
	memcpy(name, a, n);
	name[n] = '\0';
	if (strcmp(name, l->current) == 0) { /* back to the one joined before */
		const struct chat_names *cs = &s->chat->chans;
		l->current[0] = '\0';
		if (cs->n)
			memcpy(l->current, cs->v[cs->n - 1].p, cs->v[cs->n - 1].n + 1);
	}
	reply(s, "OK leave %s", name);
}

struct list_acc {
	struct chat_name *v;
	size_t *subs;
	size_t n, cap;
	bool oom;
};

static void list_one(const char *name, size_t n, size_t subs, void *arg)
{
	struct list_acc *acc = arg;
	if (acc->oom)
		return;
	if (acc->n == acc->cap) {
		size_t cap = acc->cap ? acc->cap * 2 : 16;
		struct chat_name *v = realloc(acc->v, cap * sizeof(*v));
		size_t *c = v ? realloc(acc->subs, cap * sizeof(*c)) : NULL;
		if (v)
			acc->v = v;
		if (!v || !c) {
			acc->oom = true;
			return;
		}
		acc->subs = c;
		acc->cap = cap;
	}
	char *copy = malloc(n + 1);
	if (!copy) {
		acc->oom = true;
		return;
	}
	memcpy(copy, name, n + 1);
	acc->v[acc->n] = (struct chat_name){copy, n};
	acc->subs[acc->n++] = subs;
}

/* Items are "name=count"; order by the name (before the last '='). */
static int by_name(const void *a, const void *b)
{
	const char *x = *(char *const *)a, *y = *(char *const *)b;
	size_t xn = (size_t)(strrchr(x, '=') - x), yn = (size_t)(strrchr(y, '=') - y);
	int c = memcmp(x, y, xn < yn ? xn : yn);
	return c ? c : (xn > yn) - (xn < yn);
}

/* LIST <n> <name>=<subscribers> ... (sorted by name), as one line. */
static void cmd_list(struct session *s)
{
	struct list_acc acc = {0};
	exchange_each_channel(s->srv->ex, list_one, &acc);
	/* sort (name, count) pairs together: pack the count behind the name */
	char **items = calloc(acc.n ? acc.n : 1, sizeof(*items));
	for (size_t i = 0; items && i < acc.n; i++) {
		items[i] = malloc(acc.v[i].n + 24);
		if (!items[i]) {
			acc.oom = true;
			break;
		}
		sprintf(items[i], "%s=%zu", acc.v[i].p, acc.subs[i]);
	}
	if (!items || acc.oom) {
		reply(s, "ERR out of memory");
	} else {
		qsort(items, acc.n, sizeof(*items), by_name);
		char h[32];
		session_write(s, h, (size_t)snprintf(h, sizeof(h), "LIST %zu", acc.n));
		for (size_t i = 0; i < acc.n; i++) {
			session_write(s, " ", 1);
			session_puts(s, items[i]);
		}
		session_write(s, "\n", 1);
	}
	for (size_t i = 0; i < acc.n; i++) {
		free(acc.v[i].p);
		if (items)
			free(items[i]);
	}
	free(items);
	free(acc.v);
	free(acc.subs);
}

/* Split "word rest" at the first space. */
static void split(const char *p, size_t n, size_t *wl, const char **rest, size_t *rl)
{
	size_t i = 0;
	while (i < n && p[i] != ' ')
		i++;
	*wl = i;
	while (i < n && p[i] == ' ')
		i++;
	*rest = p + i;
	*rl = n - i;
}

static bool word_is(const char *w, size_t n, const char *lit)
{
	return n == strlen(lit) && strncasecmp(w, lit, n) == 0;
}

static void command(struct session *s, struct line *l, const char *p, size_t n)
{
	size_t wl, al, cl, tl;
	const char *a, *text;
	char sn[80];
	split(p + 1, n - 1, &wl, &a, &al);
	const char *w = p + 1;
	if (word_is(w, wl, "nick") && al) {
		cmd_nick(s, a, al);
	} else if (word_is(w, wl, "join") && al) {
		cmd_join(s, l, a, al);
	} else if (word_is(w, wl, "leave") || word_is(w, wl, "part")) {
		cmd_leave(s, l, a, al);
	} else if ((word_is(w, wl, "pub") || word_is(w, wl, "publish") || word_is(w, wl, "msg")) && al) {
		split(a, al, &cl, &text, &tl);
		if (check_channel(s, a, cl))
			publish(s, a, cl, text, tl, true);
	} else if (word_is(w, wl, "list")) {
		cmd_list(s);
	} else if (word_is(w, wl, "help")) {
		session_puts(s, HELP_LINE);
	} else if (word_is(w, wl, "quit")) {
		reply(s, "BYE");
		session_close_after_flush(s);
	} else if (word_is(w, wl, "nick") || word_is(w, wl, "join") || word_is(w, wl, "pub") ||
	           word_is(w, wl, "publish") || word_is(w, wl, "msg")) {
		bad(s, "usage: /%s %s", word_is(w, wl, "nick") ? "nick" : word_is(w, wl, "join") ? "join" : "pub",
		    word_is(w, wl, "nick") ? "NAME" : word_is(w, wl, "join") ? "CHANNEL" : "CHANNEL TEXT");
	} else {
		bad(s, "unknown command '/%s'; /help lists them", snip(sn, w, wl));
	}
}

static void one_line(struct session *s, struct line *l, const char *p, size_t n)
{
	if (n && p[n - 1] == '\r')
		n--;
	if (n == 0)
		return;
	if (p[0] == '/' && !(n > 1 && p[1] == '/')) {
		command(s, l, p, n);
		return;
	}
	if (p[0] == '/') { /* "//text" sends "/text" */
		p++;
		n--;
	}
	if (!l->current[0]) {
		bad(s, "not in any channel: /join CHANNEL first (or /help)");
		return;
	}
	publish(s, l->current, strlen(l->current), p, n, false);
}

static size_t line_feed(struct session *s, const char *p, size_t n)
{
	struct line *l = s->pstate;
	const struct config *cfg = s->srv->cfg;
	size_t i = 0;
	owner_flush(s); /* deliveries published before these lines go first */
	/* Back-pressure: no new line while the output is full; the rest waits in
	 * the session until the client has read (session.h). */
	while (i < n && !s->closing && !session_output_full(s)) {
		const char *nl = memchr(p + i + l->scanned, '\n', n - i - l->scanned);
		if (l->discarding) {
			l->scanned = 0;
			if (!nl)
				return n;
			l->discarding = false;
			i = (size_t)(nl - p) + 1;
			continue;
		}
		if (!nl) {
			if (n - i <= cfg->max_line) {
				l->scanned = n - i;
				return i;
			}
			stat_inc(STAT_chat_too_big);
			reply(s, "ERR line too long: more than %zu bytes (weft --max-line); ignored", cfg->max_line);
			l->scanned = 0;
			l->discarding = true;
			return n;
		}
		size_t len = (size_t)(nl - p) - i;
		l->scanned = 0;
		if (len > cfg->max_line) {
			stat_inc(STAT_chat_too_big);
			reply(s, "ERR line too long: more than %zu bytes (weft --max-line); ignored", cfg->max_line);
		} else {
			one_line(s, l, p + i, len);
		}
		i += len + 1;
	}
	return s->closing ? n : i;
}

static int line_init(struct session *s)
{
	struct line *l = calloc(1, sizeof(*l));
	if (!l || chat_attach(s, EX_LINE) < 0) {
		free(l);
		return -ENOMEM;
	}
	s->pstate = l;
	return 0;
}

static void line_stop(struct session *s)
{
	reply(s, "BYE server shutting down");
	session_close_after_flush(s);
}

static void line_fini(struct session *s)
{
	chat_detach(s);
	free(s->pstate);
	s->pstate = NULL;
}

const struct proto proto_chat_line = {
	.name = "chat_line",
	.counter = STAT_proto_line,
	.init = line_init,
	.feed = line_feed,
	.stop = line_stop,
	.fini = line_fini,
};
