/* config.c - the option table and the parser. What is generated from the
 * table (--help, the man page, bash completion) is in config_doc.c. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_table.h"
#include "log.h"

#define F(field) offsetof(struct config, field)

/* Every consumer of a duration must hold CONFIG_MS_MAX: an int (struct
 * config), poll()'s int timeout, uring's uint32 ms clock compared
 * wrap-safely, and the coro scheduler, which caps one wait at 2^30 ms
 * (servers/coro/sched.c MAX_WAIT_MS) and would otherwise cut a timeout short. */
_Static_assert(CONFIG_MS_MAX <= INT_MAX, "a duration is stored as int ms");
_Static_assert(CONFIG_MS_MAX <= (1LL << 30), "coro's scheduler waits at most 2^30 ms");

/* A row leaves out models and choices when every model reads the flag and
 * any value of its type goes: the trailing fields are NULL by design. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
const struct opt config_opts[] = {
	{"model", T_STR, F(model), "coro", "M", "concurrency model, one of the models listed below"},
	{"mode", T_MODE, F(mode), "echo", "MODE", "echo | chat (HTTP is detected on any connection)", NULL, "echo chat"},
	{"no-http", T_BOOL, F(no_http), NULL, NULL, "never switch a connection to HTTP"},
	{"host", T_STR, F(host), "127.0.0.1", "ADDR", "address to listen on (IPv4 or IPv6, e.g. ::1 or ::)"},
	{"port", T_INT, F(port), "7000", "N", "plain TCP port; 0 picks a free one (see the ready line)"},
	{"backlog", T_INT, F(backlog), "511", "N", "listen(2) backlog"},
	{"reuseport", T_BOOL, F(reuseport), NULL, NULL, "set SO_REUSEPORT (implied by --threads > 1)"},
	{"threads", T_INT, F(threads), "1", "N", "event loops sharing the port (SO_REUSEPORT; 1..256)", "coro uring"},
	{"workers", T_INT, F(workers), "128", "N", "worker threads, each serving one connection (1..100000)", "pool"},
	{"queue", T_INT, F(queue), "64", "N", "accepted connections waiting for a worker; beyond it refuse (0..1000000)", "pool"},
	{"stack-size", T_SIZE, F(stack_size), "256k", "BYTES", "stack per thread (64k..1g)", "threads pool"},
	{"poller", T_STR, F(poller), "epoll", "P", "select (about 1,020 connections at most) | poll | epoll", "coro", "select poll epoll"},
	{"max-conns", T_INT, F(max_conns), "10000", "N", "open connections at most; beyond it refuse with an error"},
	{"idle-timeout", T_SECS, F(idle_timeout_ms), "300", "SEC", "close a connection silent this long (0 = never)"},
	{"tcp-keepalive", T_SECS, F(tcp_keepalive_ms), "300", "SEC",
	 "TCP keepalive on accepted connections: probe after this long silent, drop after 3 unanswered (0 = off)"},
	{"drain-timeout", T_SECS, F(drain_timeout_ms), "5", "SEC", "on SIGTERM/SIGINT, time to finish in-flight work"},
	{"read-pause", T_SIZE, F(read_pause), "1m", "BYTES", "stop reading a connection while this much output is unsent (>= 1)"},
	{"header-timeout", T_SECS, F(header_timeout_ms), "10", "SEC", "HTTP: a request head must arrive within this of its first byte (408 beyond; 0 = never)"},
	{"max-head", T_SIZE, F(max_head), "16k", "BYTES", "HTTP request line + headers (431 beyond)"},
	{"max-body", T_SIZE, F(max_body), "8m", "BYTES", "HTTP request body (413 beyond)"},
	{"max-headers", T_INT, F(max_headers), "100", "N", "HTTP header fields (431 beyond; 1..32767)"},
	{"max-line", T_SIZE, F(max_line), "64k", "BYTES", "chat command line / RESP inline command"},
	{"max-message", T_SIZE, F(max_message), "1m", "BYTES", "chat message / RESP bulk string"},
	{"max-channel", T_SIZE, F(max_channel), "4k", "BYTES",
	 "chat: channel name in a PUBLISH (longer is refused: bounds the pattern matching one PUBLISH costs)"},
	{"max-subs", T_INT, F(max_subs), "1024", "N", "chat subscriptions per connection"},
	{"outbox-hard", T_SIZE, F(outbox_hard), "32m", "BYTES", "chat: disconnect a subscriber with this much unsent (0 = no limit)"},
	{"outbox-soft", T_SIZE, F(outbox_soft), "8m", "BYTES", "chat: ... or with this much unsent for --outbox-soft-secs"},
	{"outbox-soft-secs", T_SECS, F(outbox_soft_ms), "60", "SEC", "chat: how long the soft limit may be exceeded"},
	{"publish-hold", T_SIZE, F(publish_hold), "2m", "BYTES",
	 "chat: stop reading a publisher while a subscriber it feeds has this much unsent (at most half an outbox limit; 0 = never)"},
	{"publish-hold-secs", T_SECS, F(publish_hold_ms), "1", "SEC",
	 "chat: ... for at most this long in a row (0.001..30); then the outbox limits judge the subscriber"},
	{"ws-ping", T_SECS, F(ws_ping_ms), "30", "SEC",
	 "WebSocket: ping a connection that sent nothing this long (keeps proxies and NATs open; 0 = never)"},
	{"ws-pong-timeout", T_SECS, F(ws_pong_timeout_ms), "10", "SEC",
	 "WebSocket: close (1001) a pinged connection that sent nothing back within this (0.001..3600)"},
	{"ws-origin", T_STR, F(ws_origin), NULL, "LIST",
	 "WebSocket: accept an upgrade only with one of these comma-separated Origins (e.g. https://chat.example); "
	 "none sent is accepted (403 otherwise) [any]"},
	{"tls-port", T_INT, F(tls_port), "-1", "N", "also serve TLS on this port, not --port's (0 = pick one); -1 = off"},
	{"cert", T_STR, F(cert), NULL, "FILE", "TLS certificate chain (PEM); without it a self-signed one is made"},
	{"key", T_STR, F(key), NULL, "FILE", "TLS private key (PEM)"},
	{"handshake-timeout", T_SECS, F(handshake_timeout_ms), "10", "SEC", "TLS handshake must finish within this of the start, in total (0 = never)"},
	{"cluster", T_STR, F(cluster), NULL, "URL",
	 "chat: join other weft nodes through Redis at redis://HOST:PORT (rediss:// for TLS), or a Redis Cluster "
	 "(sharded pub/sub) at redis-cluster://HOST:PORT[,HOST:PORT...] (rediss-cluster:// for TLS); see docs/CLUSTER.md"},
	{"cluster-ca", T_STR, F(cluster_ca), NULL, "FILE", "rediss: CA certificates (PEM) to verify the engine with [system store]"},
	{"cluster-insecure", T_BOOL, F(cluster_insecure), NULL, NULL, "rediss: do not verify the engine's certificate"},
	{"cluster-prefix", T_STR, F(cluster_prefix), "weft:", "P", "prefix of every engine channel (no * ? [ ] \\)"},
	{"cluster-key-file", T_STR, F(cluster_key_file), NULL, "FILE",
	 "shared secret (>= 32 bytes, mode 600): envelopes are HMAC-SHA256 tagged, untagged ones dropped"},
	{"cluster-password-file", T_STR, F(cluster_password_file), NULL, "FILE",
	 "the engine's AUTH password (or in the URL, or $WEFT_CLUSTER_PASSWORD)"},
	{"cluster-hosts", T_STR, F(cluster_hosts), NULL, "LIST",
	 "redis-cluster: hosts the slot map may send the link (and its AUTH) to besides the seeds': names, addresses, "
	 "ADDR/BITS ranges, or * for any [the seeds' hosts]"},
	{"cluster-backoff-max", T_SECS, F(cluster_backoff_max_ms), "2", "SEC", "reconnect back-off cap (0.05..3600)"},
	{"cluster-connect-timeout", T_SECS, F(cluster_connect_timeout_ms), "5", "SEC",
	 "connect, TLS, AUTH and PING to the engine within this (0.1..3600)"},
	{"daemon", T_BOOL, F(daemon), NULL, NULL, "detach (double fork, setsid); needs --pidfile"},
	{"pidfile", T_STR, F(pidfile), NULL, "FILE", "write our pid here (created exclusively, removed on exit)"},
	{"log-file", T_STR, F(log_file), NULL, "FILE", "append log lines here instead of stderr"},
	{"log-level", T_LEVEL, F(log_level), "info", "L", "debug | info | warn | error", NULL, "debug info warn error"},
};
#pragma GCC diagnostic pop
#define NOPTS (sizeof(config_opts) / sizeof(config_opts[0]))
const size_t config_nopts = NOPTS;
_Static_assert(NOPTS <= 64, "struct config's given is a 64-bit mask of the table's rows");

/* Units after a number: the multiplier, case-insensitive. Sizes as nginx
 * reads them (k = 1024; Redis reads 1k as 1000 and 1kb as 1024, so a Redis
 * user's kb, mb and gb are the same here). Durations as nginx's (ms s m h d). */
struct unit {
	const char *name;
	unsigned long long mul;
};
static const struct unit size_units[] = {
	{"", 1}, {"k", 1ULL << 10}, {"kb", 1ULL << 10}, {"m", 1ULL << 20}, {"mb", 1ULL << 20},
	{"g", 1ULL << 30}, {"gb", 1ULL << 30},
};
static const struct unit secs_units[] = {
	{"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 3600 * 1000}, {"d", 86400 * 1000},
};

/* The multiplier of the unit s names exactly (s is the rest of the value). */
static int unit_mul(const struct unit *u, size_t n, const char *s, unsigned long long *mul)
{
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(s, u[i].name) == 0) {
			*mul = u[i].mul;
			return 0;
		}
	return -EINVAL;
}

int config_parse_size(const char *s, size_t *out)
{
	if (*s < '0' || *s > '9')
		return -EINVAL; /* strtoull would take blanks, '+' and a '-' that wraps */
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	unsigned long long mul;
	if (unit_mul(size_units, sizeof(size_units) / sizeof(size_units[0]), end, &mul) < 0)
		return -EINVAL;
	if (v > CONFIG_SIZE_MAX / mul || v * mul > SIZE_MAX)
		return -ERANGE;
	*out = (size_t)(v * mul);
	return 0;
}

int config_parse_secs(const char *s, int *ms)
{
	const char *p = s;
	long long whole = 0, frac = 0, scale = 1;
	bool digits = false, frac_rest = false;
	for (; *p >= '0' && *p <= '9'; p++, digits = true)
		if (whole <= CONFIG_MS_MAX) /* stop growing once out of range: no overflow */
			whole = whole * 10 + (*p - '0');
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++, digits = true) {
			if (scale < 1000000000LL) { /* 9 digits are below 1 ms for every unit */
				frac = frac * 10 + (*p - '0');
				scale *= 10;
			} else if (*p != '0') {
				frac_rest = true;
			}
		}
	}
	unsigned long long mul;
	if (!digits || unit_mul(secs_units, sizeof(secs_units) / sizeof(secs_units[0]), p, &mul) < 0)
		return -EINVAL; /* also nan, inf, 1e3, 0x10, -1, +1 and blanks */
	/* whole <= CONFIG_MS_MAX + 9 digits and mul <= 86400000: no overflow */
	long long frac_ms = frac * (long long)mul / scale; /* below 1 ms is cut */
	bool below_ms = frac_rest || frac * (long long)mul % scale != 0;
	if (whole > CONFIG_MS_MAX || whole * (long long)mul + frac_ms > CONFIG_MS_MAX)
		return -ERANGE;
	long long v = whole * (long long)mul + frac_ms;
	if (v == 0 && below_ms)
		return -ERANGE; /* would round to 0, which means "never" or "at once" */
	*ms = (int)v;
	return 0;
}

/* A decimal int: digits, or '-' and digits. strtol alone takes blanks and '+'. */
static int parse_int(const char *v, int *out)
{
	if (!((v[0] >= '0' && v[0] <= '9') || (v[0] == '-' && v[1] >= '0' && v[1] <= '9')))
		return -EINVAL;
	char *end;
	errno = 0;
	long n = strtol(v, &end, 10);
	if (errno || *end || n < INT_MIN || n > INT_MAX)
		return -EINVAL;
	*out = (int)n;
	return 0;
}

const char *config_rule(enum opt_type t)
{
	switch (t) {
	case T_INT: return "a decimal integer";
	case T_SIZE: return "bytes: digits with an optional k, m or g (or kb, mb, gb; any case; k = 1024), at most "
	                    CONFIG_SIZE_MAX_TEXT;
	case T_SECS: return "a duration: seconds with an optional fraction (1.5), or digits with a unit ms, s, m, h or d "
	                    "(500ms, 30s, 5m, 1h); 0 or 1 ms.." CONFIG_SECS_MAX_TEXT " s (7 days)";
	case T_MODE: return "echo or chat";
	case T_LEVEL: return "debug, info, warn or error";
	case T_STR: case T_BOOL: break;
	}
	return "see --help";
}

static int set(struct config *cfg, const struct opt *o, const char *v)
{
	void *p = (char *)cfg + o->off;
	switch (o->type) {
	case T_STR:
		*(const char **)p = v;
		return 0;
	case T_BOOL:
		*(bool *)p = true;
		return 0;
	case T_INT:
		return parse_int(v, (int *)p);
	case T_SIZE:
		return config_parse_size(v, (size_t *)p);
	case T_SECS:
		return config_parse_secs(v, (int *)p);
	case T_MODE:
		if (strcmp(v, "echo") == 0)
			*(enum weft_mode *)p = MODE_ECHO;
		else if (strcmp(v, "chat") == 0)
			*(enum weft_mode *)p = MODE_CHAT;
		else
			return -EINVAL;
		return 0;
	case T_LEVEL: {
		enum log_level l;
		if (log_parse_level(v, &l) < 0)
			return -EINVAL;
		*(int *)p = (int)l;
		return 0;
	}
	}
	return -EINVAL;
}

/* An int flag outside [lo, hi]: say which and what it may be. */
/* A hold is timed on a 15-bit ms clock (session.h), and 0 would be no hold:
 * --publish-hold 0 says that. */
static bool bad_hold_secs(int ms)
{
	if (ms >= 1 && ms <= CONFIG_HOLD_MS_MAX)
		return false;
	fprintf(stderr, "weft: --publish-hold-secs %d.%03d: must be 0.001..%d (--publish-hold 0 turns holds off)\n",
	        ms / 1000, ms % 1000, CONFIG_HOLD_MS_MAX / 1000);
	return true;
}

static bool out_of(const char *flag, long long v, long long lo, long long hi, const char *why)
{
	if (v >= lo && v <= hi)
		return false;
	if (hi == INT_MAX)
		fprintf(stderr, "weft: --%s %lld: must be at least %lld%s%s\n", flag, v, lo, why ? "; " : "", why ? why : "");
	else
		fprintf(stderr, "weft: --%s %lld: must be %lld..%lld%s%s\n", flag, v, lo, hi, why ? "; " : "",
		        why ? why : "");
	return true;
}

/* A size flag below its minimum (the maximum is config_parse_size's). */
static bool too_small(const char *flag, size_t v, size_t lo, const char *why)
{
	if (v >= lo)
		return false;
	fprintf(stderr, "weft: --%s %zu: must be at least %zu bytes (up to " CONFIG_SIZE_MAX_TEXT "); %s\n", flag, v, lo,
	        why);
	return true;
}

static const struct opt *find_opt(const char *name, size_t len)
{
	for (size_t i = 0; i < NOPTS; i++)
		if (strlen(config_opts[i].name) == len && strncmp(config_opts[i].name, name, len) == 0)
			return &config_opts[i];
	return NULL;
}

/* Is the word among the choices "a b c" of a row's list (choices or models)? */
static bool in_list(const char *list, const char *word)
{
	size_t n = strlen(word);
	for (const char *p = list; p && *p; p += strcspn(p, " "), p += strspn(p, " "))
		if (strcspn(p, " ") == n && strncmp(p, word, n) == 0)
			return true;
	return false;
}

static bool is_choice(const char *value, const char *flag)
{
	return in_list(find_opt(flag, strlen(flag))->choices, value);
}

/* Settings each valid alone but that cannot work, and ranges; every message
 * names the flag and what it may be. 0 or -EINVAL. */
static int check(const struct config *cfg)
{
	bool bad = out_of("port", cfg->port, 0, 65535, "0 picks a free one") ||
	           out_of("tls-port", cfg->tls_port, -1, 65535, "-1 is off, 0 picks a free one") ||
	           out_of("threads", cfg->threads, 1, 256, NULL) ||
	           out_of("workers", cfg->workers, 1, CONFIG_WORKERS_MAX, NULL) ||
	           out_of("queue", cfg->queue, 0, CONFIG_QUEUE_MAX, "0 refuses whoever finds every worker busy") ||
	           out_of("max-conns", cfg->max_conns, 1, INT_MAX, NULL) ||
	           out_of("backlog", cfg->backlog, 1, INT_MAX, "the kernel caps it at net.core.somaxconn") ||
	           out_of("max-subs", cfg->max_subs, 1, INT_MAX, "a chat client must be able to join one channel") ||
	           out_of("max-headers", cfg->max_headers, 1, CONFIG_HEADERS_MAX,
	                  "each HTTP connection reserves room for this many up front") ||
	           too_small("read-pause", cfg->read_pause, 1, "0 would close every connection unread") ||
	           bad_hold_secs(cfg->publish_hold_ms) ||
	           out_of("ws-pong-timeout", cfg->ws_pong_timeout_ms, 1, 3600 * 1000, "in ms: 0.001..3600 s") ||
	           too_small("max-head", cfg->max_head, 64, "no HTTP request head fits") ||
	           too_small("max-line", cfg->max_line, 16, "no chat command fits") ||
	           too_small("max-message", cfg->max_message, 16, "no chat message fits") ||
	           too_small("max-channel", cfg->max_channel, 200, "a channel anyone can subscribe to must be publishable") ||
	           out_of("stack-size", (long long)cfg->stack_size, 64 << 10, CONFIG_STACK_MAX, "64k..1g");
	if (bad)
		return -EINVAL;
	const char *err = NULL;
	if (cfg->tls_port > 0 && cfg->tls_port == cfg->port)
		err = "--port and --tls-port name the same port; give them different ones (0 for both picks two free ones)";
	else if (cfg->daemon && !cfg->pidfile)
		err = "--daemon needs --pidfile (that is how 'weft stop' finds it)";
	else if (cfg->key && !cfg->cert)
		err = "--key needs --cert, the certificate chain the key belongs to (--cert alone does when its file "
		      "holds the key too)";
	else if (!is_choice(cfg->poller, "poller"))
		err = "--poller must be select, poll or epoll";
	if (err) {
		fprintf(stderr, "weft: %s\n", err);
		return -EINVAL;
	}
	return 0; /* --cluster and its companions: cluster_options_check() at start */
}


/* Print the words of "a b c" as "a, b or c" (or "a and b", ...). */
void config_print_list(FILE *f, const char *list, const char *last)
{
	for (const char *p = list; *p;) {
		size_t w = strcspn(p, " ");
		const char *next = p + w + strspn(p + w, " ");
		bool final = !*next, first = p == list;
		fprintf(f, "%s%.*s", first ? "" : final ? last : ", ", (int)w, p);
		p = next;
	}
}

int config_warn_ignored(const struct config *cfg, const char *model)
{
	int n = 0;
	for (size_t i = 0; i < NOPTS; i++) {
		const struct opt *o = &config_opts[i];
		if (!(cfg->given & (1ULL << i)) || !o->models || in_list(o->models, model))
			continue;
		fprintf(stderr, "weft: warning: --%s is ignored by --model %s; it is read by --model ", o->name, model);
		config_print_list(stderr, o->models, " or ");
		fputc('\n', stderr);
		n++;
	}
	/* Without a TLS listener these are never read (not even the files): an
	 * operator who forgot --tls-port would believe TLS configured. */
	static const char *const tls_only[] = {"cert", "key", "handshake-timeout"};
	for (size_t i = 0; cfg->tls_port < 0 && i < sizeof(tls_only) / sizeof(tls_only[0]); i++) {
		size_t row = (size_t)(find_opt(tls_only[i], strlen(tls_only[i])) - config_opts);
		if (!(cfg->given & (1ULL << row)))
			continue;
		fprintf(stderr, "weft: warning: --%s is ignored: TLS is off (give --tls-port PORT to serve TLS)\n",
		        tls_only[i]);
		n++;
	}
	return n;
}


/* ---- the command line ---------------------------------------------------- */

/* Edit distance of a and b (both shorter than 64 bytes): insertions,
 * deletions, substitutions and swaps of neighbours (--prot for --port) cost 1. */
static size_t distance(const char *a, size_t na, const char *b, size_t nb)
{
	size_t d[64][64];
	if (na >= 64 || nb >= 64)
		return SIZE_MAX;
	for (size_t i = 0; i <= na; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= nb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= na; i++)
		for (size_t j = 1; j <= nb; j++) {
			size_t best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
			if (d[i - 1][j] + 1 < best)
				best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	return d[na][nb];
}

/* The flag a person most likely meant by word (without dashes, without
 * "=value"): the nearest one a typo away (at most 1 edit per 3 letters, and
 * 1 for short words), or the one the word begins with. NULL if none. */
static const char *suggest(const char *word, size_t n)
{
	static const char *const extra[] = {"help", "version"};
	const char *best = NULL;
	size_t best_d = n / 3 > 1 ? n / 3 : 1;
	for (size_t i = 0; i < NOPTS + 2; i++) {
		const char *name = i < NOPTS ? config_opts[i].name : extra[i - NOPTS];
		size_t len = strlen(name);
		size_t d = distance(word, n, name, len);
		if (d <= best_d && (!best || d < best_d)) {
			best = name;
			best_d = d;
		}
		/* a word that begins with a flag: --cert-file -> --cert. (A word a
		 * flag begins with is getopt's: it takes a unique prefix itself,
		 * and bad_option reports an ambiguous one.) */
		if (!best && n > len && len >= 3 && strncmp(word, name, len) == 0)
			best = name;
	}
	return best;
}

/* An option getopt_long could not take: arg is the command-line word, c its
 * verdict (':' a value is missing, '?' anything else), optopt the option's
 * value when known. One line that names the word, and a way out. */
static void bad_option(const char *arg, int c, int opt)
{
	if (c == ':' && opt >= 256) {
		const struct opt *o = &config_opts[opt - 256];
		fprintf(stderr, "weft: --%s needs a value (%s): %s\n", o->name, o->arg ? o->arg : "", o->help);
		return;
	}
	if (opt >= 256 || opt == 'h' || opt == 'V') { /* --daemon=yes: a flag that takes no value */
		fprintf(stderr, "weft: %s: --%.*s takes no value\n", arg, (int)strcspn(arg + 2, "="), arg + 2);
		return;
	}
	const char *word = arg + strspn(arg, "-");
	size_t n = strcspn(word, "=");
	size_t prefixed = 0;
	for (size_t i = 0; i < NOPTS && arg[1] == '-'; i++)
		prefixed += strncmp(config_opts[i].name, word, n) == 0;
	if (prefixed > 1) {
		fprintf(stderr, "weft: %s is ambiguous: did you mean", arg);
		for (size_t i = 0, k = 0; i < NOPTS; i++)
			if (strncmp(config_opts[i].name, word, n) == 0)
				fprintf(stderr, "%s--%s", k++ == 0 ? " " : k == prefixed ? " or " : ", ", config_opts[i].name);
		fprintf(stderr, "?\n");
		return;
	}
	const char *s = suggest(word, n);
	if (arg[1] != '-' && opt && !s)
		fprintf(stderr, "weft: unknown option '-%c' (weft's options are long, like --port)", opt);
	else
		fprintf(stderr, "weft: unknown option '%.*s'", (int)(word - arg + n), arg);
	if (s)
		fprintf(stderr, "; did you mean --%s?\n", s);
	else
		fprintf(stderr, "; 'weft --help' lists every option\n");
}

int config_parse(struct config *cfg, int argc, char **argv)
{
	struct option lopts[NOPTS + 5];
	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < NOPTS; i++) {
		const struct opt *o = &config_opts[i];
		lopts[i] = (struct option){o->name, o->type == T_BOOL ? no_argument : required_argument, NULL, (int)i + 256};
		if (o->def && set(cfg, o, o->def) < 0)
			abort(); /* a bad default is a bug in the table */
	}
	/* hidden: what the build generates the man page and completion from */
	lopts[NOPTS] = (struct option){"help", no_argument, NULL, 'h'};
	lopts[NOPTS + 1] = (struct option){"version", no_argument, NULL, 'V'};
	lopts[NOPTS + 2] = (struct option){"help-man", no_argument, NULL, 'M'};
	lopts[NOPTS + 3] = (struct option){"help-completion", no_argument, NULL, 'C'};
	lopts[NOPTS + 4] = (struct option){0};

	/* getopt's own messages carry argv[0], the binary's full path: ours do not */
	opterr = 0;
	optind = 0; /* glibc: start afresh, also inside a cluster an earlier parse left (-port) */
	int c;
	for (;;) {
		int at = optind ? optind : 1; /* 0 (a fresh start) means argv[1] */
		c = getopt_long(argc, argv, ":hV", lopts, NULL);
		if (c == -1)
			break;
		switch (c) {
		case 'h': return CONFIG_SHOW_HELP;
		case 'M': return CONFIG_SHOW_MAN;
		case 'C': return CONFIG_SHOW_COMPLETION;
		case 'V':
			printf("weft %s\n", WEFT_VERSION);
			return CONFIG_DONE;
		case ':': case '?':
			/* the word getopt stopped at: optind moved past it, unless it
			 * stopped inside a cluster of short options (-port) */
			bad_option(argv[optind > at && optind - 1 < argc ? optind - 1 : at], c, optopt);
			return -EINVAL;
		}
		const struct opt *o = &config_opts[c - 256];
		if (set(cfg, o, optarg) < 0) {
			fprintf(stderr, "weft: bad value '%s' for --%s: %s (--%s: %s)\n", optarg, o->name, config_rule(o->type),
			        o->name, o->help);
			return -EINVAL;
		}
		cfg->given |= 1ULL << (c - 256);
	}
	if (optind < argc) {
		fprintf(stderr, "weft: unexpected argument '%s'; try 'weft --help'\n", argv[optind]);
		return -EINVAL;
	}
	return check(cfg);
}
