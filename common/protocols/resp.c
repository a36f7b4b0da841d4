/* resp.c - the Redis RESP2 pub/sub subset (proto_resp), byte-compatible with
 * Redis 7 for SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, PUBLISH, PING
 * and QUIT, and the introspection commands PUBSUB, CLIENT and INFO (in
 * resp_intro.c); anything else gets Redis' unknown-command error (HELLO
 * included, so RESP3 clients fall back to RESP2).
 *
 * The parser is resumable without re-scanning: it records where each
 * argument of the command being read starts (offsets into the unconsumed
 * input, which the session offers again from the same start) and executes a
 * command only once all of it is here, so a connection that drops mid-command
 * never publishes a partial message. Inline commands (a line of words) are
 * accepted as Redis does, split on blanks without quoting.
 *
 * Back-pressure: feed() stops between commands once the output reaches
 * --read-pause, and a (P)(UN)SUBSCRIBE of many names stops between names: its
 * bytes stay unconsumed, with the parsed offsets, until the session offers
 * them again (session.h), and it goes on from the next name. So no command
 * answers more than about --read-pause before its client reads. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "chat.h"
#include "owner.h"
#include "proto.h"
#include "resp.h"
#include "server.h"
#include "session.h"

#define RESP_HEADER_MAX (64 * 1024) /* Redis PROTO_INLINE_MAX_SIZE */
#define RESP_MAX_ARGS (1024 * 1024)
/* Argument slots reserved when a multibulk count arrives; more only as
 * arguments really arrive (Redis reserves at most 1024 up front too), so
 * "*1048576\r\n" alone costs 16 KiB, not 16 MiB. */
#define RESP_ARGS_PREALLOC 1024
/* Argument slots kept between commands; a larger array goes once its command
 * is done (see resp_feed). */
#define RESP_ARGS_KEEP 16

struct resp {
	long want;    /* arguments of the multibulk being read; 0 = none begun */
	long have;    /* of them complete */
	size_t pos;   /* where the next header starts */
	struct resp_arg *args;
	size_t cap;
	/* a command paused between names (back-pressure): its argument count
	 * (0 = none), the next name to act on, and its length in bytes */
	long exec_argc;
	int exec_next;
	size_t exec_len;
};

static const char *arg_p(const struct resp_argv *a, int i) { return resp_arg_p(a, i); }
static size_t arg_n(const struct resp_argv *a, int i) { return resp_arg_n(a, i); }

/* ---- replies ---- */

static void put_bulk(struct session *s, const char *p, size_t n)
{
	char h[32];
	session_write(s, h, (size_t)snprintf(h, sizeof(h), "$%zu\r\n", n));
	session_write(s, p, n);
	session_write(s, "\r\n", 2);
}

static void put_int(struct session *s, long long v)
{
	char h[32];
	session_write(s, h, (size_t)snprintf(h, sizeof(h), ":%lld\r\n", v));
}

/* An error line; CR and LF inside become spaces, as Redis does. */
static void put_err(struct session *s, const char *text)
{
	size_t n = strlen(text);
	char *t = malloc(n + 3);
	if (!t) {
		session_puts(s, "-ERR out of memory\r\n");
		return;
	}
	t[0] = '-';
	for (size_t i = 0; i < n; i++)
		t[i + 1] = text[i] == '\r' || text[i] == '\n' ? ' ' : text[i];
	memcpy(t + n + 1, "\r\n", 2);
	session_write(s, t, n + 3);
	free(t);
}

static void protocol_error(struct session *s, const char *what)
{
	char e[160];
	snprintf(e, sizeof(e), "ERR Protocol error: %s", what);
	put_err(s, e);
	stat_inc(STAT_chat_bad_input);
	session_close_for(s, CLOSE_BAD_INPUT);
}

/* *3 <kind> <name or nil> :count */
static void put_sub_reply(struct session *s, const char *kind, const char *name, size_t n)
{
	session_puts(s, "*3\r\n");
	put_bulk(s, kind, strlen(kind));
	if (name)
		put_bulk(s, name, n);
	else
		session_puts(s, "$-1\r\n");
	put_int(s, (long long)chat_count(s->chat));
}

/* ---- commands ---- */

static bool is(const struct resp_argv *a, int i, const char *word)
{
	return arg_n(a, i) == strlen(word) && strncasecmp(arg_p(a, i), word, arg_n(a, i)) == 0;
}

/* A command acting on many names, started (or resumed) at name `from`,
 * stops before name i once the output is full; it always acts on one. */
static bool pause_at(const struct session *s, int from, int i)
{
	return i > from && session_output_full(s);
}

/* These return 0 when done, else the name to go on from later. */
static int subscribe(struct session *s, const struct resp_argv *a, int from, bool pattern)
{
	const char *kind = pattern ? "psubscribe" : "subscribe";
	for (int i = from; i < a->c; i++) {
		if (pause_at(s, from, i))
			return i;
		if (!chat_valid_name(arg_p(a, i), arg_n(a, i))) {
			char e[160];
			snprintf(e, sizeof(e), "ERR invalid %s name: 1-%d bytes, no spaces or control characters",
			         pattern ? "pattern" : "channel", CHAT_NAME_MAX);
			put_err(s, e);
			stat_inc(STAT_chat_bad_input);
			continue;
		}
		int rc = chat_subscribe(s, arg_p(a, i), arg_n(a, i), pattern);
		if (rc == -ENOSPC) {
			char e[160];
			snprintf(e, sizeof(e), "ERR max subscriptions per connection reached (weft --max-subs %d)",
			         s->srv->cfg->max_subs);
			put_err(s, e);
		} else if (rc < 0) {
			put_err(s, "ERR out of memory");
		} else {
			put_sub_reply(s, kind, arg_p(a, i), arg_n(a, i));
		}
	}
	return 0;
}

static int unsubscribe(struct session *s, const struct resp_argv *a, int from, bool pattern)
{
	const char *kind = pattern ? "punsubscribe" : "unsubscribe";
	if (a->c > 1) {
		for (int i = from; i < a->c; i++) {
			if (pause_at(s, from, i))
				return i;
			chat_unsubscribe(s, arg_p(a, i), arg_n(a, i), pattern);
			put_sub_reply(s, kind, arg_p(a, i), arg_n(a, i));
		}
		return 0;
	}
	/* every subscription: at most --max-subs replies, not paused */
	struct chat_names *ns = pattern ? &s->chat->pats : &s->chat->chans;
	if (ns->n == 0) {
		put_sub_reply(s, kind, NULL, 0);
		return 0;
	}
	while (ns->n) {
		/* the name is freed by the unsubscribe: reply from a copy */
		struct chat_name nm = ns->v[0];
		char *copy = malloc(nm.n + 1);
		if (!copy) {
			put_err(s, "ERR out of memory");
			return 0;
		}
		memcpy(copy, nm.p, nm.n);
		chat_unsubscribe(s, copy, nm.n, pattern);
		put_sub_reply(s, kind, copy, nm.n);
		free(copy);
	}
	return 0;
}

static void publish(struct session *s, const struct resp_argv *a)
{
	if (!chat_publishable(s, arg_n(a, 1))) {
		char e[160];
		snprintf(e, sizeof(e), "ERR channel name too long: %zu bytes (max %zu, weft --max-channel)", arg_n(a, 1),
		         s->srv->cfg->max_channel);
		put_err(s, e);
		return;
	}
	long r = exchange_publish(s->srv->ex, arg_p(a, 1), arg_n(a, 1), s->chat->nick, arg_p(a, 2), arg_n(a, 2));
	if (r < 0)
		put_err(s, "ERR out of memory");
	else
		put_int(s, r);
}

static void ping(struct session *s, const struct resp_argv *a)
{
	if (chat_count(s->chat)) { /* subscribed context, RESP2: a pong array */
		session_puts(s, "*2\r\n$4\r\npong\r\n");
		put_bulk(s, a->c > 1 ? arg_p(a, 1) : "", a->c > 1 ? arg_n(a, 1) : 0);
	} else if (a->c > 1) {
		put_bulk(s, arg_p(a, 1), arg_n(a, 1));
	} else {
		session_puts(s, "+PONG\r\n");
	}
}

struct command {
	const char *name;
	int arity; /* Redis arity: n exactly, -n at least n */
	bool in_pubsub; /* allowed while subscribed */
	/* The introspection commands (resp_intro.c). One with subcommands checks
	 * the subscribed context itself, once it found its subcommand: Redis
	 * answers an unknown one or a wrong arity first, and names the
	 * subcommand ('pubsub|numpat') in the context error. */
	void (*run)(struct session *s, const struct resp_argv *a);
	bool subcommands;
};

static const struct command commands[] = {
	{"subscribe", -2, true, NULL, false},     {"unsubscribe", -1, true, NULL, false},
	{"psubscribe", -2, true, NULL, false},    {"punsubscribe", -1, true, NULL, false},
	{"publish", 3, false, NULL, false},       {"ping", -1, true, NULL, false},
	{"quit", -1, true, NULL, false},          {"pubsub", -2, false, resp_pubsub, true},
	{"client", -2, false, resp_client, true}, {"info", -1, false, resp_info, false},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

/* Redis commands weft does not serve. While subscribed Redis refuses them
 * with the subscribed-context error (they exist there), not as unknown. */
static const char *const redis_known[] = {
	"get", "set", "del", "exists", "incr", "decr", "expire", "ttl", "keys", "scan", "hello", "auth",
	"select", "config", "echo", "multi", "exec", "discard", "watch", "lpush", "rpush",
	"lpop", "rpop", "lrange", "sadd", "smembers", "hset", "hget", "hgetall", "zadd", "zrange", "command",
	"dbsize", "flushdb", "flushall", "type", "mget", "mset", "append", "strlen", "spublish",
};

static bool redis_knows(const struct resp_argv *a)
{
	for (size_t i = 0; i < sizeof(redis_known) / sizeof(redis_known[0]); i++)
		if (is(a, 0, redis_known[i]))
			return true;
	return false;
}

static void not_in_context(struct session *s, const char *name)
{
	char e[200];
	snprintf(e, sizeof(e),
	         "ERR Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are "
	         "allowed in this context",
	         name);
	put_err(s, e);
}

/* For resp_intro.c (resp.h). */
void resp_put_bulk(struct session *s, const char *p, size_t n) { put_bulk(s, p, n); }
void resp_put_int(struct session *s, long long v) { put_int(s, v); }
void resp_put_err(struct session *s, const char *text) { put_err(s, text); }
bool resp_is(const struct resp_argv *a, int i, const char *word) { return is(a, i, word); }
void resp_not_in_context(struct session *s, const char *name) { not_in_context(s, name); }

/* Redis: "unknown command 'x', with args beginning with: 'a' 'b' ". */
static void unknown(struct session *s, const struct resp_argv *a)
{
	char e[600];
	int k = snprintf(e, sizeof(e), "ERR unknown command '%.*s', with args beginning with: ",
	                 (int)(arg_n(a, 0) < 128 ? arg_n(a, 0) : 128), arg_p(a, 0));
	size_t args = 0;
	for (int i = 1; i < a->c && args < 128; i++) {
		/* Compare as size_t: an argument over 2 GiB (--max-message 4g) cast to
		 * int first would be a negative precision, i.e. "print to a NUL". */
		size_t room = 128 - args;
		int w = snprintf(e + k, sizeof(e) - (size_t)k, "'%.*s' ", (int)(arg_n(a, i) < room ? arg_n(a, i) : room),
		                 arg_p(a, i));
		k += w;
		args += (size_t)w;
	}
	/* Redis formats with %s: the text stops at a NUL byte */
	put_err(s, e);
}

static bool arity_ok(const struct command *c, int argc)
{
	return c->arity > 0 ? argc == c->arity : argc >= -c->arity;
}

/* (P)(UN)SUBSCRIBE from name `from` on: 0 when done, else where to go on. */
static int names_command(struct session *s, const struct resp_argv *a, int from)
{
	bool pattern = is(a, 0, "psubscribe") || is(a, 0, "punsubscribe");
	if (is(a, 0, "subscribe") || is(a, 0, "psubscribe"))
		return subscribe(s, a, from, pattern);
	return unsubscribe(s, a, from, pattern);
}

/* 0 when the command is done, else (back-pressure) the name to resume at. */
static int execute(struct session *s, const struct resp_argv *a)
{
	const struct command *c = NULL;
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (is(a, 0, commands[i].name))
			c = &commands[i];
	char e[200];
	if (!c) {
		char lower[16];
		if (chat_count(s->chat) && arg_n(a, 0) < sizeof(lower) && redis_knows(a)) {
			for (size_t i = 0; i < arg_n(a, 0); i++)
				lower[i] = (char)(arg_p(a, 0)[i] | 0x20);
			lower[arg_n(a, 0)] = '\0';
			not_in_context(s, lower);
		} else {
			unknown(s, a);
		}
		return 0;
	}
	if (!arity_ok(c, a->c) || (c->arity == -1 && strcmp(c->name, "ping") == 0 && a->c > 2)) {
		snprintf(e, sizeof(e), "ERR wrong number of arguments for '%s' command", c->name);
		put_err(s, e);
		return 0;
	}
	if (c->subcommands) {
		c->run(s, a);
		return 0;
	}
	if (chat_count(s->chat) && !c->in_pubsub) {
		not_in_context(s, c->name);
		return 0;
	}
	if (c->run) {
		c->run(s, a);
	} else if (is(a, 0, "publish")) {
		publish(s, a);
	} else if (is(a, 0, "ping")) {
		ping(s, a);
	} else if (is(a, 0, "quit")) {
		session_puts(s, "+OK\r\n");
		session_close_after_flush(s);
	} else {
		return names_command(s, a, 1);
	}
	return 0;
}

/* ---- parsing ---- */

/* Redis string2ll: optional '-', no leading zeros, no sign on zero. */
static bool parse_ll(const char *p, size_t n, long long *out)
{
	if (n == 0 || n > 20)
		return false;
	if (n == 1 && p[0] == '0') {
		*out = 0;
		return true;
	}
	bool neg = p[0] == '-';
	size_t i = neg;
	if (i == n || p[i] < '1' || p[i] > '9')
		return false;
	unsigned long long v = 0;
	for (; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		if (v > (ULLONG_MAX - 9) / 10)
			return false;
		v = v * 10 + (unsigned)(p[i] - '0');
	}
	if (v > (unsigned long long)LLONG_MAX + neg)
		return false;
	*out = neg ? (long long)(0 - v) : (long long)v;
	return true;
}

static int grow_args(struct resp *r, size_t need)
{
	if (need <= r->cap)
		return 0;
	size_t cap = r->cap ? r->cap : 8;
	while (cap < need)
		cap *= 2;
	struct resp_arg *v = realloc(r->args, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	r->args = v;
	r->cap = cap;
	return 0;
}

/* Execute the parsed command of len bytes at p; from = 0 for a new command,
 * else the name a paused one goes on at. Returns len when it is done, or 0
 * when back-pressure paused it: its bytes then stay unconsumed, and the next
 * feed resumes it (resp_feed) from the same first byte. */
static size_t run(struct session *s, struct resp *r, const char *p, long argc, size_t len, int from)
{
	if (argc <= 0)
		return len;
	const struct resp_argv a = {p, r->args, (int)argc};
	int next = from ? names_command(s, &a, from) : execute(s, &a);
	r->exec_argc = next ? argc : 0;
	r->exec_next = next;
	r->exec_len = next ? len : 0;
	return next ? 0 : len;
}

/* One inline command at p (it does not start with '*'). Returns bytes used,
 * 0 when the line is incomplete. */
static size_t inline_command(struct session *s, struct resp *r, const char *p, size_t n)
{
	const char *nl = memchr(p, '\n', n);
	if (!nl) {
		if (n > RESP_HEADER_MAX)
			protocol_error(s, "too big inline request");
		return s->closing ? n : 0;
	}
	size_t end = (size_t)(nl - p);
	if (end && p[end - 1] == '\r')
		end--;
	long argc = 0;
	for (size_t i = 0; i < end;) {
		while (i < end && (p[i] == ' ' || p[i] == '\t'))
			i++;
		if (i == end)
			break;
		size_t st = i;
		while (i < end && p[i] != ' ' && p[i] != '\t')
			i++;
		if (grow_args(r, (size_t)argc + 1) < 0) {
			put_err(s, "ERR out of memory");
			session_close_for(s, CLOSE_ERROR);
			return n;
		}
		r->args[argc++] = (struct resp_arg){st, i - st};
	}
	return run(s, r, p, argc, (size_t)(nl - p) + 1, 0);
}

/* A header line "<c><digits>\r\n" at p[pos]: sets *v and *next. 1 done,
 * 0 incomplete, -1 protocol error already sent. */
static int header(struct session *s, const char *p, size_t n, size_t pos, char c, long long *v, size_t *next)
{
	const char *cr = memchr(p + pos, '\r', n - pos);
	if (!cr || (size_t)(cr - p) + 2 > n) {
		if (n - pos > RESP_HEADER_MAX) {
			protocol_error(s, c == '*' ? "too big mbulk count string" : "too big bulk count string");
			return -1;
		}
		return 0;
	}
	if (p[pos] != c) {
		char e[64];
		snprintf(e, sizeof(e), "expected '%c', got '%c'", c, p[pos]);
		protocol_error(s, e);
		return -1;
	}
	if (!parse_ll(p + pos + 1, (size_t)(cr - p) - pos - 1, v)) {
		protocol_error(s, c == '*' ? "invalid multibulk length" : "invalid bulk length");
		return -1;
	}
	*next = (size_t)(cr - p) + 2;
	return 1;
}

/* One multibulk command at p; returns bytes used (0 = incomplete). */
static size_t multibulk(struct session *s, struct resp *r, const char *p, size_t n)
{
	const struct config *cfg = s->srv->cfg;
	long long v;
	int h;
	if (r->want == 0) {
		h = header(s, p, n, 0, '*', &v, &r->pos);
		if (h <= 0)
			return h < 0 ? n : 0;
		if (v <= 0)
			return r->pos; /* an empty command: ignored, as Redis does */
		if (v > RESP_MAX_ARGS || grow_args(r, v < RESP_ARGS_PREALLOC ? (size_t)v : RESP_ARGS_PREALLOC) < 0) {
			protocol_error(s, "invalid multibulk length");
			return n;
		}
		r->want = (long)v;
		r->have = 0;
	}
	while (r->have < r->want) {
		size_t next;
		h = header(s, p, n, r->pos, '$', &v, &next);
		if (h <= 0)
			return h < 0 ? n : 0;
		if (v < 0 || (size_t)v > cfg->max_message) {
			stat_inc(STAT_chat_too_big);
			protocol_error(s, "invalid bulk length");
			return n;
		}
		if (next + (size_t)v > cfg->max_message + cfg->max_line) {
			stat_inc(STAT_chat_too_big);
			protocol_error(s, "command too big (weft --max-message)");
			return n;
		}
		if (next + (size_t)v + 2 > n)
			return 0; /* the bulk is not all here yet */
		if (grow_args(r, (size_t)r->have + 1) < 0) {
			put_err(s, "ERR out of memory");
			session_close_for(s, CLOSE_ERROR);
			return n;
		}
		r->args[r->have++] = (struct resp_arg){next, (size_t)v};
		r->pos = next + (size_t)v + 2; /* Redis skips the CRLF unchecked */
	}
	size_t used = r->pos;
	long argc = r->want;
	r->want = r->have = 0;
	r->pos = 0;
	return run(s, r, p, argc, used, 0);
}

static size_t resp_feed(struct session *s, const char *p, size_t n)
{
	struct resp *r = s->pstate;
	size_t used = 0;
	owner_flush(&s->sub); /* what was published before these commands goes first */
	/* Back-pressure: no new command while the output is full (session.h). */
	while (used < n && !s->closing && !session_output_full(s)) {
		size_t k;
		if (r->exec_argc) /* a command paused between names: go on with it */
			k = run(s, r, p + used, r->exec_argc, r->exec_len, r->exec_next);
		else if (r->want || p[used] == '*')
			k = multibulk(s, r, p + used, n - used);
		else
			k = inline_command(s, r, p + used, n - used);
		if (k == 0)
			break;
		used += k;
	}
	/* No command is partial or paused: nothing refers to the argument
	 * array, so one grown for a command of 170k arguments (16 bytes each)
	 * is not kept for the rest of the connection. */
	if (!r->want && !r->exec_argc && r->cap > RESP_ARGS_KEEP) {
		free(r->args);
		r->args = NULL;
		r->cap = 0;
	}
	return s->closing ? n : used;
}

static int resp_init(struct session *s)
{
	struct resp *r = calloc(1, sizeof(*r));
	if (!r || chat_attach(s, EX_RESP) < 0) {
		free(r);
		return -ENOMEM;
	}
	s->pstate = r;
	return 0;
}

static void resp_stop(struct session *s)
{
	session_close_after_flush(s); /* as Redis does on shutdown: just close */
}

static void resp_fini(struct session *s)
{
	struct resp *r = s->pstate;
	chat_detach(s);
	if (r)
		free(r->args);
	free(r);
	s->pstate = NULL;
}

const struct proto proto_resp = {
	.name = "resp",
	.counter = STAT_proto_resp,
	.init = resp_init,
	.feed = resp_feed,
	.stop = resp_stop,
	.fini = resp_fini,
};
