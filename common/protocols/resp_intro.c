/* resp_intro.c - Redis introspection over RESP: PUBSUB (CHANNELS, NUMSUB,
 * NUMPAT, HELP), CLIENT (ID, GETNAME, SETNAME, INFO, HELP; LIST refused) and
 * INFO. Replies and errors are Redis 7.0's bytes for the same state
 * (tests/conformance/test_introspect.py compares them with a real
 * redis-server); docs/PROTOCOL.md says where weft's state differs.
 *
 * Everything is answered on the connection's own thread, from the exchange
 * (shared by every loop, under its lock) or from process-wide counters:
 * nothing walks the other connections, which live on other threads (that is
 * why CLIENT LIST is refused). With --cluster the PUBSUB answers are this
 * node's: the exchange holds only its own clients' subscriptions. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "chat.h"
#include "exchange.h"
#include "glob.h"
#include "resp.h"
#include "server.h"
#include "session.h"
#include "stats.h"

static size_t min_sz(size_t a, size_t b) { return a < b ? a : b; }

struct subcommand {
	const char *name;
	int arity; /* Redis arity, the command's own name included */
	void (*run)(struct session *s, const struct resp_argv *a);
};

/* Redis' order: an unknown subcommand, then its arity, then (RESP2) the
 * subscribed context, which names it "cmd|sub". */
static void dispatch(struct session *s, const struct resp_argv *a, const char *cmd, const char *upper,
                     const struct subcommand *t, size_t n)
{
	const struct subcommand *sc = NULL;
	for (size_t i = 0; i < n && !sc; i++)
		if (resp_is(a, 1, t[i].name))
			sc = &t[i];
	char e[300];
	if (!sc) {
		/* Redis formats the name with %.128s: it stops at a NUL byte too */
		snprintf(e, sizeof(e), "ERR unknown subcommand '%.*s'. Try %s HELP.", (int)min_sz(resp_arg_n(a, 1), 128),
		         resp_arg_p(a, 1), upper);
		resp_put_err(s, e);
		return;
	}
	char full[64];
	snprintf(full, sizeof(full), "%s|%s", cmd, sc->name);
	if (sc->arity > 0 ? a->c != sc->arity : a->c < -sc->arity) {
		snprintf(e, sizeof(e), "ERR wrong number of arguments for '%s' command", full);
		resp_put_err(s, e);
		return;
	}
	if (chat_count(s->chat)) {
		resp_not_in_context(s, full);
		return;
	}
	sc->run(s, a);
}

/* An array of simple strings: the HELP replies' form. */
static void put_lines(struct session *s, const char *const *lines, size_t n)
{
	char h[32];
	session_write(s, h, (size_t)snprintf(h, sizeof(h), "*%zu\r\n", n));
	for (size_t i = 0; i < n; i++) {
		session_puts(s, "+");
		session_puts(s, lines[i]);
		session_puts(s, "\r\n");
	}
}

/* ---- PUBSUB ---- */

struct name_list {
	struct chat_name *v;
	size_t n, cap;
	bool oom;
};

/* Under the exchange lock: copy only; the matching is done outside it. */
static void copy_name(const char *name, size_t n, size_t subs, void *arg)
{
	(void)subs;
	struct name_list *l = arg;
	if (l->oom)
		return;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct chat_name *v = realloc(l->v, cap * sizeof(*v));
		if (!v) {
			l->oom = true;
			return;
		}
		l->v = v;
		l->cap = cap;
	}
	char *p = malloc(n + 1);
	if (!p) {
		l->oom = true;
		return;
	}
	memcpy(p, name, n);
	p[n] = '\0';
	l->v[l->n++] = (struct chat_name){p, n};
}

static int by_name(const void *x, const void *y)
{
	const struct chat_name *a = x, *b = y;
	int c = memcmp(a->p, b->p, min_sz(a->n, b->n));
	return c ? c : (a->n > b->n) - (a->n < b->n);
}

/* PUBSUB CHANNELS [pattern]: sorted by name (Redis gives its hash order, so
 * a client cannot rely on any order). A pattern is at most CHAT_NAME_MAX
 * bytes, the longest channel name: matching costs linear time in the
 * pattern per channel (glob.h), so a longer one could stall the loop. */
static void pubsub_channels(struct session *s, const struct resp_argv *a)
{
	char e[200];
	if (a->c > 3) {
		snprintf(e, sizeof(e), "ERR unknown subcommand or wrong number of arguments for '%.*s'. Try PUBSUB HELP.",
		         (int)min_sz(resp_arg_n(a, 1), 128), resp_arg_p(a, 1));
		resp_put_err(s, e);
		return;
	}
	const char *pat = a->c == 3 ? resp_arg_p(a, 2) : NULL;
	size_t pn = a->c == 3 ? resp_arg_n(a, 2) : 0;
	if (pn > CHAT_NAME_MAX) {
		snprintf(e, sizeof(e), "ERR pattern too long: %zu bytes (max %d, the longest channel name)", pn,
		         CHAT_NAME_MAX);
		stat_inc(STAT_chat_bad_input);
		resp_put_err(s, e);
		return;
	}
	struct name_list l = {0};
	exchange_each_channel(s->srv->ex, copy_name, &l);
	size_t keep = 0;
	for (size_t i = 0; i < l.n; i++) {
		if (!pat || glob_match(pat, pn, l.v[i].p, l.v[i].n))
			l.v[keep++] = l.v[i];
		else
			free(l.v[i].p);
	}
	if (l.oom) {
		resp_put_err(s, "ERR out of memory");
	} else {
		if (keep)
			qsort(l.v, keep, sizeof(*l.v), by_name);
		char h[32];
		session_write(s, h, (size_t)snprintf(h, sizeof(h), "*%zu\r\n", keep));
		for (size_t i = 0; i < keep; i++)
			resp_put_bulk(s, l.v[i].p, l.v[i].n);
	}
	for (size_t i = 0; i < keep; i++)
		free(l.v[i].p);
	free(l.v);
}

static void pubsub_numsub(struct session *s, const struct resp_argv *a)
{
	char h[32];
	session_write(s, h, (size_t)snprintf(h, sizeof(h), "*%d\r\n", (a->c - 2) * 2));
	for (int i = 2; i < a->c; i++) {
		resp_put_bulk(s, resp_arg_p(a, i), resp_arg_n(a, i));
		resp_put_int(s, (long long)exchange_subscribers(s->srv->ex, resp_arg_p(a, i), resp_arg_n(a, i)));
	}
}

/* Distinct patterns with a subscriber, as Redis 7 counts them. */
static void pubsub_numpat(struct session *s, const struct resp_argv *a)
{
	(void)a;
	resp_put_int(s, (long long)exchange_counts(s->srv->ex).patterns);
}

static void pubsub_help(struct session *s, const struct resp_argv *a)
{
	(void)a;
	static const char *const lines[] = {
		"PUBSUB <subcommand> [<arg> ...]. Subcommands are (weft):",
		"CHANNELS [<pattern>]",
		"    The channels with at least one subscriber, matching <pattern> if given, by name.",
		"NUMPAT",
		"    The number of distinct patterns with at least one subscriber.",
		"NUMSUB [<channel> ...]",
		"    Each channel and its number of subscribers (pattern subscriptions not counted).",
		"HELP",
		"    This help.",
	};
	put_lines(s, lines, sizeof(lines) / sizeof(lines[0]));
}

static const struct subcommand pubsub_subs[] = {
	{"channels", -2, pubsub_channels},
	{"numsub", -2, pubsub_numsub},
	{"numpat", 2, pubsub_numpat},
	{"help", 2, pubsub_help},
};

void resp_pubsub(struct session *s, const struct resp_argv *a)
{
	dispatch(s, a, "pubsub", "PUBSUB", pubsub_subs, sizeof(pubsub_subs) / sizeof(pubsub_subs[0]));
}

/* ---- CLIENT ---- */

static void client_id(struct session *s, const struct resp_argv *a)
{
	(void)a;
	resp_put_int(s, (long long)s->id);
}

static void client_getname(struct session *s, const struct resp_argv *a)
{
	(void)a;
	if (s->chat->name)
		resp_put_bulk(s, s->chat->name, strlen(s->chat->name));
	else
		session_puts(s, "$-1\r\n");
}

/* Redis' rule: printable ASCII without space ('!'..'~'); empty clears it.
 * Its length is bounded by --max-message, as every argument is. */
static void client_setname(struct session *s, const struct resp_argv *a)
{
	const char *p = resp_arg_p(a, 2);
	size_t n = resp_arg_n(a, 2);
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '!' || p[i] > '~') {
			stat_inc(STAT_chat_bad_input);
			resp_put_err(s, "ERR Client names cannot contain spaces, newlines or special characters.");
			return;
		}
	}
	char *name = NULL;
	if (n) {
		name = malloc(n + 1);
		if (!name) {
			resp_put_err(s, "ERR out of memory");
			return;
		}
		memcpy(name, p, n);
		name[n] = '\0';
	}
	free(s->chat->name);
	s->chat->name = name;
	session_puts(s, "+OK\r\n");
}

/* This connection, in CLIENT LIST's key=value form: Redis' fields in its
 * order, less the addresses and descriptor (a session never sees its
 * socket); those weft does not track are 0, present because clients parse
 * them (redis-py's client_info() needs every integer field). idle is 0: it
 * is answering a command now. qbuf is its unconsumed input, omem its unsent
 * output. */
static void client_info(struct session *s, const struct resp_argv *a)
{
	(void)a;
	const struct chat_conn *c = s->chat;
	char line[160];
	int n = snprintf(line, sizeof(line), "id=%llu name=", (unsigned long long)s->id);
	char tail[256];
	int k = snprintf(tail, sizeof(tail),
	                 " age=%lld idle=0 flags=%s db=0 sub=%zu psub=%zu ssub=0 multi=-1 qbuf=%zu qbuf-free=0 "
	                 "argv-mem=0 multi-mem=0 obl=0 oll=0 omem=%zu tot-mem=0 resp=2\n",
	                 (now_ms() - s->start_ms) / 1000, chat_count(c) ? "P" : "N", c->chans.n, c->pats.n,
	                 buf_used(&s->in), session_pending(s));
	size_t nl = c->name ? strlen(c->name) : 0;
	char h[32];
	session_write(s, h, (size_t)snprintf(h, sizeof(h), "$%zu\r\n", (size_t)n + nl + (size_t)k));
	session_write(s, line, (size_t)n);
	session_write(s, c->name ? c->name : "", nl);
	session_write(s, tail, (size_t)k);
	session_puts(s, "\r\n");
}

static void client_list(struct session *s, const struct resp_argv *a)
{
	(void)a;
	resp_put_err(s, "ERR CLIENT LIST is not served by weft: connections live on several threads and are not "
	                "walked (CLIENT INFO shows this one; INFO clients and PUBSUB NUMSUB count the rest)");
}

static void client_help(struct session *s, const struct resp_argv *a)
{
	(void)a;
	static const char *const lines[] = {
		"CLIENT <subcommand> [<arg> ...]. Subcommands are (weft):",
		"ID",
		"    The ID of this connection.",
		"GETNAME",
		"    The name of this connection.",
		"SETNAME <name>",
		"    Name this connection (printable ASCII, no spaces; empty clears it).",
		"INFO",
		"    This connection, as key=value fields.",
		"HELP",
		"    This help.",
	};
	put_lines(s, lines, sizeof(lines) / sizeof(lines[0]));
}

static const struct subcommand client_subs[] = {
	{"id", 2, client_id},           {"getname", 2, client_getname}, {"setname", 3, client_setname},
	{"info", 2, client_info},       {"list", -2, client_list},      {"help", 2, client_help},
};

void resp_client(struct session *s, const struct resp_argv *a)
{
	dispatch(s, a, "client", "CLIENT", client_subs, sizeof(client_subs) / sizeof(client_subs[0]));
}

/* ---- INFO ---- */

enum { SEC_SERVER = 1, SEC_CLIENTS = 2, SEC_STATS = 4, SEC_CPU = 8, SEC_KEYSPACE = 16, SEC_ALL = 31 };

static const struct {
	const char *name;
	int bits;
} sections[] = {
	{"server", SEC_SERVER}, {"clients", SEC_CLIENTS}, {"stats", SEC_STATS},         {"cpu", SEC_CPU},
	{"keyspace", SEC_KEYSPACE}, {"default", SEC_ALL}, {"all", SEC_ALL}, {"everything", SEC_ALL},
};

struct text {
	char b[2048];
	size_t n;
};

static void add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(t->b + t->n, sizeof(t->b) - t->n, fmt, ap);
	va_end(ap);
	if (k > 0)
		t->n = min_sz(t->n + (size_t)k, sizeof(t->b) - 1);
}

/* What the model multiplexes with, in Redis' multiplexing_api terms. */
static const char *mux(const struct config *cfg)
{
	if (strcmp(cfg->model, "coro") == 0)
		return cfg->poller;
	if (strcmp(cfg->model, "uring") == 0)
		return "io_uring";
	return "poll"; /* threads, pool: a thread per connection, polling it */
}

static void section_server(struct text *t, const struct server *srv)
{
	struct utsname u;
	long long up = (now_ms() - srv->start_ms) / 1000;
	if (uname(&u) < 0)
		memset(&u, 0, sizeof(u));
	add(t, "# Server\r\nweft_version:%s\r\nweft_model:%s\r\nredis_mode:standalone\r\nos:%s %s %s\r\n"
	       "arch_bits:%zu\r\nmultiplexing_api:%s\r\nprocess_id:%d\r\ntcp_port:%d\r\n"
	       "uptime_in_seconds:%lld\r\nuptime_in_days:%lld\r\n",
	    WEFT_VERSION, srv->cfg->model, u.sysname, u.release, u.machine, sizeof(void *) * 8, mux(srv->cfg),
	    (int)getpid(), srv->port, up, up / 86400);
}

static void section_clients(struct text *t, struct server *srv)
{
	add(t, "# Clients\r\nconnected_clients:%d\r\nmaxclients:%d\r\n", atomic_load(&srv->open_conns),
	    srv->cfg->max_conns);
}

static void section_stats(struct text *t, const struct server *srv)
{
	struct exchange_counts k = srv->ex ? exchange_counts(srv->ex) : (struct exchange_counts){0};
	unsigned long long refused =
	    stat_sum(STAT_refused_max_conns) + stat_sum(STAT_refused_queue) + stat_sum(STAT_refused_fd_limit);
	add(t, "# Stats\r\ntotal_connections_received:%llu\r\ntotal_net_input_bytes:%llu\r\n"
	       "total_net_output_bytes:%llu\r\nrejected_connections:%llu\r\npubsub_channels:%zu\r\n"
	       "pubsub_patterns:%zu\r\n",
	    (unsigned long long)stat_sum(STAT_conn_accepted), (unsigned long long)stat_sum(STAT_bytes_in),
	    (unsigned long long)stat_sum(STAT_bytes_out), refused, k.channels, k.patterns);
}

static void section_cpu(struct text *t)
{
	struct rusage self = {0}, kids = {0};
	getrusage(RUSAGE_SELF, &self);
	getrusage(RUSAGE_CHILDREN, &kids);
	add(t, "# CPU\r\nused_cpu_sys:%ld.%06ld\r\nused_cpu_user:%ld.%06ld\r\nused_cpu_sys_children:%ld.%06ld\r\n"
	       "used_cpu_user_children:%ld.%06ld\r\n",
	    (long)self.ru_stime.tv_sec, (long)self.ru_stime.tv_usec, (long)self.ru_utime.tv_sec,
	    (long)self.ru_utime.tv_usec, (long)kids.ru_stime.tv_sec, (long)kids.ru_stime.tv_usec,
	    (long)kids.ru_utime.tv_sec, (long)kids.ru_utime.tv_usec);
}

/* INFO [section ...]: Redis' format (sections "# Name", "key:value" lines,
 * a blank line between sections) with weft's values; unknown sections give
 * nothing, as in Redis (so "INFO memory" is an empty string). */
void resp_info(struct session *s, const struct resp_argv *a)
{
	int want = a->c == 1 ? SEC_ALL : 0;
	for (int i = 1; i < a->c; i++)
		for (size_t k = 0; k < sizeof(sections) / sizeof(sections[0]); k++)
			if (resp_is(a, i, sections[k].name))
				want |= sections[k].bits;
	struct text t = {.n = 0};
	for (int bit = SEC_SERVER; bit <= SEC_KEYSPACE; bit <<= 1) {
		if (!(want & bit))
			continue;
		if (t.n)
			add(&t, "\r\n");
		switch (bit) {
		case SEC_SERVER: section_server(&t, s->srv); break;
		case SEC_CLIENTS: section_clients(&t, s->srv); break;
		case SEC_STATS: section_stats(&t, s->srv); break;
		case SEC_CPU: section_cpu(&t); break;
		default: add(&t, "# Keyspace\r\n"); break; /* weft keeps no keys */
		}
	}
	resp_put_bulk(s, t.b, t.n);
}
