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
	"HELP commands: /nick NAME | /join CHANNEL | /leave [CHANNEL] | /pub CHANNEL TEXT | /psub PATTERN | "               \
	"/punsub [PATTERN] | /list | /who CHANNEL | /numpat | /help | /quit; any other line goes to the channel joined last; " \
	"start it with // to send a line beginning with /\n"

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
	if (!chat_publishable(s, cn)) {
		reply(s, "ERR channel name too long: %zu bytes (max %zu, weft --max-channel)", cn, s->srv->cfg->max_channel);
		return;
	}
	long r = exchange_publish(s->srv->ex, ch, cn, s->chat->nick, text, n);
	/* Our own copy (if we listen there) comes before whatever this line's
	 * successors write: "//x" then "/leave" must show the MSG, then the OK. */
	owner_flush(&s->sub);
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
		/* the limit counts patterns too: say so, as /psub does */
		reply(s, "ERR too many subscriptions: %d channels and patterns at most (weft --max-subs)",
		      s->srv->cfg->max_subs);
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

static bool check_pattern(struct session *s, const char *p, size_t n)
{
	char sn[80];
	if (chat_valid_name(p, n))
		return true;
	bad(s, "invalid pattern '%s': 1-%d bytes, no spaces or control characters", snip(sn, p, n), CHAT_NAME_MAX);
	return false;
}

/* OK psub <pattern> <n>: n = this connection's channels and patterns now
 * (what --max-subs bounds; Redis' psubscribe reply counts the same). The
 * exchange's pattern machinery does the rest: PSUBSCRIBE's, cluster bridge
 * included. */
static void cmd_psub(struct session *s, const char *a, size_t n)
{
	if (!check_pattern(s, a, n))
		return;
	int rc = chat_subscribe(s, a, n, true);
	if (rc == -ENOSPC) {
		reply(s, "ERR too many subscriptions: %d channels and patterns at most (weft --max-subs)",
		      s->srv->cfg->max_subs);
		return;
	}
	if (rc < 0) {
		reply(s, "ERR out of memory");
		return;
	}
	reply(s, "OK psub %.*s %zu", (int)n, a, chat_count(s->chat));
}

/* OK punsub <pattern> <n> for the pattern named, or (none named) for each
 * pattern held, in subscription order, as PUNSUBSCRIBE replies: at most
 * --max-subs lines. */
static void cmd_punsub(struct session *s, const char *a, size_t n)
{
	char sn[80];
	if (n) {
		if (n > CHAT_NAME_MAX || !chat_unsubscribe(s, a, n, true))
			bad(s, "not subscribed to pattern '%s'", snip(sn, a, n));
		else
			reply(s, "OK punsub %.*s %zu", (int)n, a, chat_count(s->chat));
		return;
	}
	struct chat_names *ps = &s->chat->pats;
	if (ps->n == 0) {
		bad(s, "not subscribed to any pattern");
		return;
	}
	while (ps->n) {
		char name[CHAT_NAME_MAX + 1]; /* the unsubscribe frees the held copy */
		size_t k = ps->v[0].n;
		memcpy(name, ps->v[0].p, k);
		chat_unsubscribe(s, name, k, true);
		reply(s, "OK punsub %.*s %zu", (int)k, name, chat_count(s->chat));
	}
}

/* /list names at most this many channels, the first by name, and says how
 * many more there are: its reply stays under ~220 KB however many channels
 * the server has, and so does the memory it takes to build it. */
#define LIST_MAX 1000

struct list_item {
	char *name;
	size_t n, subs;
};

/* The LIST_MAX smallest names seen so far, as a max-heap (v[0] is the
 * largest), so no more than LIST_MAX names are ever copied. */
struct list_acc {
	struct list_item *v;
	size_t n, cap;
	size_t total; /* channels seen */
	bool oom;
};

/* Byte order, a prefix first: the order /list promises. */
static int name_cmp(const char *a, size_t an, const char *b, size_t bn)
{
	int c = memcmp(a, b, an < bn ? an : bn);
	return c ? c : (an > bn) - (an < bn);
}

static int item_cmp(const struct list_item *a, const struct list_item *b)
{
	return name_cmp(a->name, a->n, b->name, b->n);
}

static void heap_swap(struct list_item *v, size_t i, size_t j)
{
	struct list_item t = v[i];
	v[i] = v[j];
	v[j] = t;
}

static void heap_up(struct list_item *v, size_t i)
{
	while (i > 0 && item_cmp(&v[(i - 1) / 2], &v[i]) < 0) {
		heap_swap(v, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void heap_down(struct list_item *v, size_t n, size_t i)
{
	for (;;) {
		size_t big = i, l = 2 * i + 1, r = l + 1;
		if (l < n && item_cmp(&v[l], &v[big]) > 0)
			big = l;
		if (r < n && item_cmp(&v[r], &v[big]) > 0)
			big = r;
		if (big == i)
			return;
		heap_swap(v, i, big);
		i = big;
	}
}

static char *name_copy(const char *name, size_t n)
{
	char *copy = malloc(n + 1);
	if (copy) {
		memcpy(copy, name, n);
		copy[n] = '\0';
	}
	return copy;
}

/* Under the exchange lock: keep it to a compare for most channels. */
static void list_one(const char *name, size_t n, size_t subs, void *arg)
{
	struct list_acc *acc = arg;
	acc->total++;
	if (acc->oom)
		return;
	if (acc->n == LIST_MAX) {
		struct list_item *top = &acc->v[0];
		if (name_cmp(name, n, top->name, top->n) >= 0)
			return;
		char *copy = name_copy(name, n);
		if (!copy) {
			acc->oom = true;
			return;
		}
		free(top->name);
		*top = (struct list_item){copy, n, subs};
		heap_down(acc->v, acc->n, 0);
		return;
	}
	if (acc->n == acc->cap) {
		size_t cap = acc->cap ? acc->cap * 2 : 16;
		cap = cap < LIST_MAX ? cap : LIST_MAX;
		struct list_item *v = realloc(acc->v, cap * sizeof(*v));
		if (!v) {
			acc->oom = true;
			return;
		}
		acc->v = v;
		acc->cap = cap;
	}
	char *copy = name_copy(name, n);
	if (!copy) {
		acc->oom = true;
		return;
	}
	acc->v[acc->n] = (struct list_item){copy, n, subs};
	heap_up(acc->v, acc->n++);
}

static int by_name(const void *a, const void *b) { return item_cmp(a, b); }

/* LIST <n> <name>=<subscribers> ... (sorted by name), as one line; past
 * LIST_MAX channels it ends with "... <k> more". */
static void cmd_list(struct session *s)
{
	struct list_acc acc = {0};
	exchange_each_channel(s->srv->ex, list_one, &acc);
	if (acc.oom) {
		reply(s, "ERR out of memory");
	} else {
		if (acc.n) /* no channels: v is NULL, which qsort may not be given */
			qsort(acc.v, acc.n, sizeof(*acc.v), by_name);
		char b[64];
		session_write(s, b, (size_t)snprintf(b, sizeof(b), "LIST %zu", acc.total));
		for (size_t i = 0; i < acc.n; i++) {
			session_write(s, " ", 1);
			session_write(s, acc.v[i].name, acc.v[i].n);
			session_write(s, b, (size_t)snprintf(b, sizeof(b), "=%zu", acc.v[i].subs));
		}
		if (acc.total > acc.n) {
			stat_inc(STAT_chat_list_truncated);
			session_write(s, b, (size_t)snprintf(b, sizeof(b), " ... %zu more", acc.total - acc.n));
		}
		session_write(s, "\n", 1);
	}
	for (size_t i = 0; i < acc.n; i++)
		free(acc.v[i].name);
	free(acc.v);
}

/* WHO <channel> <subscribers>: the count only, as PUBSUB NUMSUB gives it.
 * Not the nicks: they belong to connections on other threads, and the
 * exchange keeps no copy of them. */
static void cmd_who(struct session *s, const char *a, size_t n)
{
	if (check_channel(s, a, n))
		reply(s, "WHO %.*s %zu", (int)n, a, exchange_subscribers(s->srv->ex, a, n));
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
	} else if (word_is(w, wl, "psub") && al) {
		cmd_psub(s, a, al);
	} else if (word_is(w, wl, "punsub")) {
		cmd_punsub(s, a, al);
	} else if (word_is(w, wl, "list")) {
		cmd_list(s);
	} else if (word_is(w, wl, "who") && al) {
		cmd_who(s, a, al);
	} else if (word_is(w, wl, "numpat")) {
		reply(s, "NUMPAT %zu", exchange_counts(s->srv->ex).patterns);
	} else if (word_is(w, wl, "help")) {
		session_puts(s, HELP_LINE);
	} else if (word_is(w, wl, "quit")) {
		reply(s, "BYE");
		session_close_after_flush(s);
	} else if (word_is(w, wl, "psub")) {
		bad(s, "usage: /psub PATTERN");
	} else if (word_is(w, wl, "nick") || word_is(w, wl, "join") || word_is(w, wl, "pub") ||
	           word_is(w, wl, "publish") || word_is(w, wl, "msg") || word_is(w, wl, "who")) {
		bool chan = word_is(w, wl, "join") || word_is(w, wl, "who");
		bad(s, "usage: /%s %s",
		    word_is(w, wl, "nick") ? "nick" : word_is(w, wl, "join") ? "join" : word_is(w, wl, "who") ? "who" : "pub",
		    word_is(w, wl, "nick") ? "NAME" : chan ? "CHANNEL" : "CHANNEL TEXT");
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

/* A transport that frames lines itself (WebSocket, ws.c) hands over one
 * line at a time, without its LF; s->pstate is this protocol's state. */
void chat_line_one(struct session *s, const char *p, size_t n)
{
	owner_flush(&s->sub); /* deliveries published before this line go first */
	if (n > s->srv->cfg->max_line) {
		stat_inc(STAT_chat_too_big);
		reply(s, "ERR line too long: more than %zu bytes (weft --max-line); ignored", s->srv->cfg->max_line);
		return;
	}
	one_line(s, s->pstate, p, n);
}

static size_t line_feed(struct session *s, const char *p, size_t n)
{
	struct line *l = s->pstate;
	const struct config *cfg = s->srv->cfg;
	size_t i = 0;
	owner_flush(&s->sub); /* deliveries published before these lines go first */
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
