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

#include "log.h"
#include "options.h"
#include "url.h"

enum opt_type { T_STR, T_INT, T_SIZE, T_BOOL, T_SECS, T_MODE, T_LEVEL };

struct opt {
	const char *name;
	enum opt_type type;
	size_t off;
	const char *def; /* NULL = unset */
	const char *arg; /* metavar for --help */
	const char *help;
};

#define F(field) offsetof(struct config, field)

/* The longest duration, in whole seconds for --help. */
#define SECS_MAX_TEXT "604800"
/* Every consumer of a duration must hold CONFIG_MS_MAX: an int (struct
 * config), poll()'s int timeout, uring's uint32 ms clock compared
 * wrap-safely, and the coro scheduler, which caps one wait at 2^30 ms
 * (servers/coro/sched.c MAX_WAIT_MS) and would otherwise cut a timeout short. */
_Static_assert(CONFIG_MS_MAX <= INT_MAX, "a duration is stored as int ms");
_Static_assert(CONFIG_MS_MAX <= (1LL << 30), "coro's scheduler waits at most 2^30 ms");

static const struct opt opts[] = {
	{"model", T_STR, F(model), "coro", "M", "concurrency model, one of those under models: below"},
	{"mode", T_MODE, F(mode), "echo", "MODE", "echo | chat (HTTP is detected on any connection)"},
	{"no-http", T_BOOL, F(no_http), NULL, NULL, "never switch a connection to HTTP"},
	{"host", T_STR, F(host), "127.0.0.1", "ADDR", "address to listen on (IPv4 or IPv6, e.g. ::1 or ::)"},
	{"port", T_INT, F(port), "7000", "N", "plain TCP port; 0 picks a free one (see the ready line)"},
	{"backlog", T_INT, F(backlog), "511", "N", "listen(2) backlog"},
	{"reuseport", T_BOOL, F(reuseport), NULL, NULL, "set SO_REUSEPORT (implied by --threads > 1)"},
	{"threads", T_INT, F(threads), "1", "N", "coro, uring: event loops sharing the port (SO_REUSEPORT; 1..256)"},
	{"workers", T_INT, F(workers), "128", "N", "pool: worker threads, each serving one connection (1..100000)"},
	{"queue", T_INT, F(queue), "64", "N", "pool: accepted connections waiting for a worker; beyond it refuse (0..1000000)"},
	{"stack-size", T_SIZE, F(stack_size), "256k", "BYTES", "threads, pool: stack per thread (64k..1g)"},
	{"poller", T_STR, F(poller), "select", "P", "coro: select | poll | epoll"},
	{"max-conns", T_INT, F(max_conns), "10000", "N", "open connections at most; beyond it refuse with an error"},
	{"idle-timeout", T_SECS, F(idle_timeout_ms), "300", "SEC", "close a connection silent this long (0 = never)"},
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
	{"tls-port", T_INT, F(tls_port), "-1", "N", "also serve TLS on this port, not --port's (0 = pick one); -1 = off"},
	{"cert", T_STR, F(cert), NULL, "FILE", "TLS certificate chain (PEM); without it a self-signed one is made"},
	{"key", T_STR, F(key), NULL, "FILE", "TLS private key (PEM)"},
	{"handshake-timeout", T_SECS, F(handshake_timeout_ms), "10", "SEC", "TLS handshake must finish within this of the start, in total (0 = never)"},
	{"cluster", T_STR, F(cluster), NULL, "URL",
	 "chat: join other weft nodes through Redis at redis://HOST:PORT (rediss:// for TLS); see docs/CLUSTER.md"},
	{"cluster-ca", T_STR, F(cluster_ca), NULL, "FILE", "rediss: CA certificates (PEM) to verify the engine with [system store]"},
	{"cluster-insecure", T_BOOL, F(cluster_insecure), NULL, NULL, "rediss: do not verify the engine's certificate"},
	{"cluster-prefix", T_STR, F(cluster_prefix), "weft:", "P", "prefix of every engine channel (no * ? [ ] \\)"},
	{"cluster-key-file", T_STR, F(cluster_key_file), NULL, "FILE",
	 "shared secret (>= 32 bytes, mode 600): envelopes are HMAC-SHA256 tagged, untagged ones dropped"},
	{"cluster-password-file", T_STR, F(cluster_password_file), NULL, "FILE",
	 "the engine's AUTH password (or in the URL, or $WEFT_CLUSTER_PASSWORD)"},
	{"cluster-backoff-max", T_SECS, F(cluster_backoff_max_ms), "2", "SEC", "reconnect back-off cap (0.05..3600)"},
	{"cluster-connect-timeout", T_SECS, F(cluster_connect_timeout_ms), "5", "SEC",
	 "connect, TLS, AUTH and PING to the engine within this (0.1..3600)"},
	{"daemon", T_BOOL, F(daemon), NULL, NULL, "detach (double fork, setsid); needs --pidfile"},
	{"pidfile", T_STR, F(pidfile), NULL, "FILE", "write our pid here (created exclusively, removed on exit)"},
	{"log-file", T_STR, F(log_file), NULL, "FILE", "append log lines here instead of stderr"},
	{"log-level", T_LEVEL, F(log_level), "info", "L", "debug | info | warn | error"},
};
#define NOPTS (sizeof(opts) / sizeof(opts[0]))

int config_parse_size(const char *s, size_t *out)
{
	if (*s < '0' || *s > '9')
		return -EINVAL; /* strtoull would take blanks, '+' and a '-' that wraps */
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	unsigned long long mul = 1;
	switch (*end) {
	case 'k': case 'K': mul = 1ULL << 10; end++; break;
	case 'm': case 'M': mul = 1ULL << 20; end++; break;
	case 'g': case 'G': mul = 1ULL << 30; end++; break;
	}
	if (*end)
		return -EINVAL;
	if (v > CONFIG_SIZE_MAX / mul || v * mul > SIZE_MAX)
		return -ERANGE;
	*out = (size_t)(v * mul);
	return 0;
}

int config_parse_secs(const char *s, int *ms)
{
	const char *p = s;
	long long whole = 0, frac = 0;
	int frac_digits = 0;
	bool digits = false, below_ms = false;
	for (; *p >= '0' && *p <= '9'; p++, digits = true)
		if (whole <= CONFIG_SECS_MAX) /* stop growing once out of range: no overflow */
			whole = whole * 10 + (*p - '0');
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++, digits = true) {
			if (frac_digits < 3) {
				frac = frac * 10 + (*p - '0');
				frac_digits++;
			} else if (*p != '0') {
				below_ms = true;
			}
		}
	}
	if (!digits || *p)
		return -EINVAL; /* also nan, inf, 1e3, 0x10, -1, +1 and blanks */
	for (; frac_digits < 3; frac_digits++)
		frac *= 10;
	if (whole > CONFIG_SECS_MAX || whole * 1000 + frac > CONFIG_MS_MAX)
		return -ERANGE;
	if (whole == 0 && frac == 0 && below_ms)
		return -ERANGE; /* would round to 0, which means "never" or "at once" */
	*ms = (int)(whole * 1000 + frac);
	return 0;
}

/* What a value of this type must look like, for the error message. */
static const char *rule(enum opt_type t)
{
	switch (t) {
	case T_INT: return "a decimal integer";
	case T_SIZE: return "bytes, digits with an optional k, m or g, at most " CONFIG_SIZE_MAX_TEXT;
	case T_SECS: return "seconds, digits with an optional fraction (ms resolution), 0 or 0.001.." SECS_MAX_TEXT
	                    " (7 days)";
	case T_MODE: return "echo or chat";
	case T_LEVEL: return "debug, info, warn or error";
	case T_STR: case T_BOOL: break;
	}
	return "see --help";
}

static int set(struct config *cfg, const struct opt *o, const char *v)
{
	void *p = (char *)cfg + o->off;
	char *end;
	long n;
	switch (o->type) {
	case T_STR:
		*(const char **)p = v;
		return 0;
	case T_BOOL:
		*(bool *)p = true;
		return 0;
	case T_INT:
		errno = 0;
		n = strtol(v, &end, 10);
		if (errno || end == v || *end || n < INT_MIN || n > INT_MAX)
			return -EINVAL;
		*(int *)p = (int)n;
		return 0;
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

void config_usage(void)
{
	printf("usage: weft [options]            run a server\n"
	       "       weft stop --pidfile FILE  stop a daemon started with --daemon\n\n"
	       "One listener serves echo or chat (netcat lines and Redis RESP pub/sub),\n"
	       "HTTP/1.1 for curl and wrk, and the same over TLS with --tls-port.\n\n"
	       "options (default in brackets):\n");
	for (size_t i = 0; i < NOPTS; i++) {
		const struct opt *o = &opts[i];
		char left[64];
		snprintf(left, sizeof(left), "--%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
		printf("  %-26s %s", left, o->help);
		if (o->def)
			printf(" [%s]", o->def);
		printf("\n");
	}
	printf("  %-26s %s\n  %-26s %s\n\n", "--help", "show this help", "--version", "show the version");
	printf("SEC is seconds with an optional fraction (ms resolution): 0 or 0.001..%s (7 days).\n"
	       "BYTES is digits with an optional k, m or g, at most %s.\n\n",
	       SECS_MAX_TEXT, CONFIG_SIZE_MAX_TEXT);
	printf("exit codes: 0 clean stop, 1 runtime error, 2 bad usage, 69 io_uring unavailable\n");
}

/* An int flag outside [lo, hi]: say which and what it may be. */
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

/* --cluster and its companions; every message names the flag. */
static int check_cluster(const struct config *cfg)
{
	struct cluster_url u;
	const char *why = NULL, *err = NULL;
	if (!cfg->cluster) {
		if (cfg->cluster_ca || cfg->cluster_insecure)
			err = "--cluster-ca and --cluster-insecure go with --cluster rediss://...";
	} else if (cluster_url_parse(cfg->cluster, &u, &why) < 0) {
		char shown[600];
		cluster_url_redact(cfg->cluster, shown, sizeof(shown));
		fprintf(stderr, "weft: bad value '%s' for --cluster: %s (e.g. redis://127.0.0.1:6379)\n", shown, why);
		return -EINVAL;
	} else if (cfg->mode != MODE_CHAT) {
		err = "--cluster joins chat channels across nodes: it needs --mode chat (echo mode has nothing to share)";
	} else if (!u.tls && (cfg->cluster_ca || cfg->cluster_insecure)) {
		err = "--cluster-ca and --cluster-insecure are for a rediss:// (TLS) --cluster URL";
	} else if (cfg->cluster_ca && cfg->cluster_insecure) {
		err = "--cluster-ca and --cluster-insecure contradict each other: pick one";
	} else if (cfg->cluster_prefix[strcspn(cfg->cluster_prefix, "*?[]\\")] != '\0' ||
	           strlen(cfg->cluster_prefix) > 64) {
		err = "--cluster-prefix may not hold * ? [ ] or \\ (it is glued in front of patterns) and is at most 64 bytes";
	} else if (cfg->cluster_ca) {
		FILE *f = fopen(cfg->cluster_ca, "r");
		if (!f) {
			fprintf(stderr, "weft: cannot read --cluster-ca %s: %s\n", cfg->cluster_ca, strerror(errno));
			return -EINVAL;
		}
		fclose(f);
	}
	if (err) {
		fprintf(stderr, "weft: %s\n", err);
		return -EINVAL;
	}
	return cluster_options_check(cfg);
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
	else if ((cfg->cert == NULL) != (cfg->key == NULL))
		err = "--cert and --key go together";
	else if (strcmp(cfg->poller, "select") && strcmp(cfg->poller, "poll") && strcmp(cfg->poller, "epoll"))
		err = "--poller must be select, poll or epoll";
	if (err) {
		fprintf(stderr, "weft: %s\n", err);
		return -EINVAL;
	}
	return check_cluster(cfg);
}

int config_parse(struct config *cfg, int argc, char **argv)
{
	struct option lopts[NOPTS + 3];
	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < NOPTS; i++) {
		lopts[i] = (struct option){opts[i].name, opts[i].type == T_BOOL ? no_argument : required_argument, NULL, (int)i + 256};
		if (opts[i].def && set(cfg, &opts[i], opts[i].def) < 0)
			abort(); /* a bad default is a bug in the table */
	}
	lopts[NOPTS] = (struct option){"help", no_argument, NULL, 'h'};
	lopts[NOPTS + 1] = (struct option){"version", no_argument, NULL, 'V'};
	lopts[NOPTS + 2] = (struct option){0};

	optind = 1;
	int c;
	while ((c = getopt_long(argc, argv, "hV", lopts, NULL)) != -1) {
		if (c == 'h') {
			config_usage();
			return 1;
		}
		if (c == 'V') {
			printf("weft %s\n", WEFT_VERSION);
			return 1;
		}
		if (c < 256) {
			fprintf(stderr, "weft: try 'weft --help' for the list of options\n");
			return -EINVAL;
		}
		const struct opt *o = &opts[c - 256];
		if (set(cfg, o, optarg) < 0) {
			fprintf(stderr, "weft: bad value '%s' for --%s: %s (--%s: %s)\n", optarg, o->name, rule(o->type),
			        o->name, o->help);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "weft: unexpected argument '%s'; try 'weft --help'\n", argv[optind]);
		return -EINVAL;
	}
	return check(cfg);
}
