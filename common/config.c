#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

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

static const struct opt opts[] = {
	{"model", T_STR, F(model), "coro", "M", "concurrency model: threads | pool | coro | uring"},
	{"mode", T_MODE, F(mode), "echo", "MODE", "echo | chat (HTTP is detected on any connection)"},
	{"no-http", T_BOOL, F(no_http), NULL, NULL, "never switch a connection to HTTP"},
	{"host", T_STR, F(host), "127.0.0.1", "ADDR", "address to listen on (IPv4 or IPv6, e.g. ::1 or ::)"},
	{"port", T_INT, F(port), "7000", "N", "plain TCP port; 0 picks a free one (see the ready line)"},
	{"backlog", T_INT, F(backlog), "511", "N", "listen(2) backlog"},
	{"reuseport", T_BOOL, F(reuseport), NULL, NULL, "set SO_REUSEPORT (implied by --threads > 1)"},
	{"threads", T_INT, F(threads), "1", "N", "coro, uring: event loops sharing the port (SO_REUSEPORT)"},
	{"workers", T_INT, F(workers), "128", "N", "pool: worker threads, each serving one connection"},
	{"queue", T_INT, F(queue), "64", "N", "pool: accepted connections waiting for a worker; beyond it refuse"},
	{"stack-size", T_SIZE, F(stack_size), "256k", "BYTES", "threads, pool: stack per thread"},
	{"poller", T_STR, F(poller), "select", "P", "coro: select | poll | epoll"},
	{"max-conns", T_INT, F(max_conns), "10000", "N", "open connections at most; beyond it refuse with an error"},
	{"idle-timeout", T_SECS, F(idle_timeout_ms), "300", "SEC", "close a connection silent this long (0 = never)"},
	{"drain-timeout", T_SECS, F(drain_timeout_ms), "5", "SEC", "on SIGTERM/SIGINT, time to finish in-flight work"},
	{"read-pause", T_SIZE, F(read_pause), "1m", "BYTES", "stop reading a connection while this much output is unsent"},
	{"header-timeout", T_SECS, F(header_timeout_ms), "10", "SEC", "HTTP: a request head must arrive within this of its first byte (408 beyond; 0 = never)"},
	{"max-head", T_SIZE, F(max_head), "16k", "BYTES", "HTTP request line + headers (431 beyond)"},
	{"max-body", T_SIZE, F(max_body), "8m", "BYTES", "HTTP request body (413 beyond)"},
	{"max-headers", T_INT, F(max_headers), "100", "N", "HTTP header fields (431 beyond)"},
	{"max-line", T_SIZE, F(max_line), "64k", "BYTES", "chat command line / RESP inline command"},
	{"max-message", T_SIZE, F(max_message), "1m", "BYTES", "chat message / RESP bulk string"},
	{"max-subs", T_INT, F(max_subs), "1024", "N", "chat subscriptions per connection"},
	{"outbox-hard", T_SIZE, F(outbox_hard), "32m", "BYTES", "chat: disconnect a subscriber with this much unsent"},
	{"outbox-soft", T_SIZE, F(outbox_soft), "8m", "BYTES", "chat: ... or with this much unsent for --outbox-soft-secs"},
	{"outbox-soft-secs", T_SECS, F(outbox_soft_ms), "60", "SEC", "chat: how long the soft limit may be exceeded"},
	{"tls-port", T_INT, F(tls_port), "-1", "N", "also serve TLS on this port (0 = pick one); -1 = off"},
	{"cert", T_STR, F(cert), NULL, "FILE", "TLS certificate chain (PEM); without it a self-signed one is made"},
	{"key", T_STR, F(key), NULL, "FILE", "TLS private key (PEM)"},
	{"handshake-timeout", T_SECS, F(handshake_timeout_ms), "10", "SEC", "TLS handshake must finish within this of the start, in total (0 = never)"},
	{"daemon", T_BOOL, F(daemon), NULL, NULL, "detach (double fork, setsid); needs --pidfile"},
	{"pidfile", T_STR, F(pidfile), NULL, "FILE", "write our pid here (created exclusively, removed on exit)"},
	{"log-file", T_STR, F(log_file), NULL, "FILE", "append log lines here instead of stderr"},
	{"log-level", T_LEVEL, F(log_level), "info", "L", "debug | info | warn | error"},
};
#define NOPTS (sizeof(opts) / sizeof(opts[0]))

int config_parse_size(const char *s, size_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
		return -EINVAL;
	unsigned long long mul = 1;
	switch (*end) {
	case 'k': case 'K': mul = 1ULL << 10; end++; break;
	case 'm': case 'M': mul = 1ULL << 20; end++; break;
	case 'g': case 'G': mul = 1ULL << 30; end++; break;
	}
	if (*end || v > SIZE_MAX / mul)
		return -EINVAL;
	*out = (size_t)(v * mul);
	return 0;
}

static int set(struct config *cfg, const struct opt *o, const char *v)
{
	void *p = (char *)cfg + o->off;
	char *end;
	long n;
	double d;
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
		d = strtod(v, &end);
		if (end == v || *end || d < 0 || d > 86400.0 * 365)
			return -EINVAL;
		*(int *)p = (int)(d * 1000);
		return 0;
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
	printf("exit codes: 0 clean stop, 1 runtime error, 2 bad usage, 69 io_uring unavailable\n");
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
			fprintf(stderr, "weft: bad value '%s' for --%s (%s)\n", optarg, o->name, o->help);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "weft: unexpected argument '%s'; try 'weft --help'\n", argv[optind]);
		return -EINVAL;
	}
	const char *err = NULL;
	if (cfg->port < 0 || cfg->port > 65535)
		err = "--port must be 0..65535";
	else if (cfg->tls_port < -1 || cfg->tls_port > 65535)
		err = "--tls-port must be -1..65535";
	else if (cfg->threads < 1 || cfg->threads > 256)
		err = "--threads must be 1..256";
	else if (cfg->workers < 1 || cfg->workers > 100000)
		err = "--workers must be 1..100000";
	else if (cfg->queue < 0)
		err = "--queue must be >= 0";
	else if (cfg->max_conns < 1)
		err = "--max-conns must be >= 1";
	else if (cfg->backlog < 1)
		err = "--backlog must be >= 1";
	else if (cfg->stack_size < 65536)
		err = "--stack-size must be at least 64k";
	else if (cfg->daemon && !cfg->pidfile)
		err = "--daemon needs --pidfile (that is how 'weft stop' finds it)";
	else if ((cfg->cert == NULL) != (cfg->key == NULL))
		err = "--cert and --key go together";
	else if (strcmp(cfg->poller, "select") && strcmp(cfg->poller, "poll") && strcmp(cfg->poller, "epoll"))
		err = "--poller must be select, poll or epoll";
	else if (cfg->max_head < 64 || cfg->max_line < 16 || cfg->max_message < 16 || cfg->max_subs < 1 || cfg->max_headers < 1)
		err = "limits are too small to speak any protocol";
	if (err) {
		fprintf(stderr, "weft: %s\n", err);
		return -EINVAL;
	}
	return 0;
}
