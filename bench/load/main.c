/* main.c - weft-load's command line, and the report of one run: one JSON
 * object on stdout (or --json FILE) and a human summary on stderr.
 *
 * Exit status: 0 clean run, 1 verification errors (or nothing completed),
 * 2 bad usage, 3 could not set up the run. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "wl.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: weft-load echo|chat|handshake|idle --port N [options]\n"
		"\n"
		"  echo       N connections send messages and check every byte of the echo\n"
		"  chat       pub/sub fan-out: subscribers, channels, publishers (line protocol or --resp)\n"
		"  handshake  connect, (TLS handshake,) one request, close; new connections per second\n"
		"  idle       open N connections, one echo each, then hold them (for memory per connection)\n"
		"\n"
		"common:\n"
		"  --host ADDR          server address [127.0.0.1]\n"
		"  --port N             server port (required)\n"
		"  -c, --connections N  connections (echo, idle) or concurrent slots (handshake) [10]\n"
		"  -t, --threads N      load threads, one epoll loop each [1]\n"
		"  -d, --duration SEC   measured run time [5]\n"
		"  -n, --count N        stop after N messages / publishes / handshakes in total [no bound]\n"
		"  --warmup SEC         run this long before measuring [0]\n"
		"  --timeout SEC        no answer this long is a timeout; also bounds setup and drain [5]\n"
		"  --tls                speak TLS (OpenSSL, no certificate check)\n"
		"  --ws                 WebSocket (echo, idle, chat): upgrade on GET /, masked text messages,\n"
		"                       each message one echo (printable payload) or one chat command\n"
		"  --json FILE          write the JSON result here instead of stdout\n"
		"  --label TEXT         copied into the JSON result\n"
		"  -q, --quiet          no summary on stderr\n"
		"echo:\n"
		"  -s, --size BYTES     message size (k, m suffixes) [64]\n"
		"  --depth N            closed loop: messages in flight per connection (pipelining) [1]\n"
		"  --rate N             open loop: N messages/s in total, latency from the intended send time\n"
		"chat:\n"
		"  --subscribers N      [100]    --channels K  [1]    --publishers P  [1]\n"
		"  -s, --size BYTES     message size [64]\n"
		"  --rate N             open loop: N publishes/s in total\n"
		"  --window N           closed loop: unanswered PUBLISHes per publisher [64]\n"
		"  --backlog N          closed loop: undelivered messages in total [64 x subscribers]\n"
		"  --resp               speak RESP (works against redis-server) instead of the line protocol\n"
		"  --pub-port N         publishers connect to this port (another weft --cluster node) [--port]\n"
		"  --settle SEC         after the subscriptions, wait this long before publishing [0]\n"
		"  --channel-prefix P   channel k is named P<k>, P 1-8 of [A-Za-z0-9_-] [wl]\n"
		"                       (runs one after another on one server: each its own, as a PUBLISH reply\n"
		"                       counts an earlier run's subscribers until the server sees them close)\n"
		"handshake:\n"
		"  --resume             offer the previous connection's session (counts what resumed)\n"
		"  --echo               send a 64-byte echo message instead of GET / HTTP/1.1\n"
		"idle:\n"
		"  --hold SEC           keep the connections open this long, or until SIGINT/SIGTERM [60]\n"
		"  --ready-file FILE    create FILE once every connection is established\n");
}

enum {
	O_HOST = 256, O_PORT, O_WARMUP, O_TIMEOUT, O_TLS, O_JSON, O_LABEL, O_DEPTH, O_RATE, O_SUBS, O_CHANS,
	O_PUBS, O_WINDOW, O_BACKLOG, O_RESP, O_RESUME, O_ECHO, O_HOLD, O_READY, O_PUB_PORT,
	O_SETTLE, O_WS, O_CHAN_PREFIX,
};

static const struct option lopts[] = {
	{"host", required_argument, NULL, O_HOST},
	{"port", required_argument, NULL, O_PORT},
	{"connections", required_argument, NULL, 'c'},
	{"threads", required_argument, NULL, 't'},
	{"duration", required_argument, NULL, 'd'},
	{"count", required_argument, NULL, 'n'},
	{"warmup", required_argument, NULL, O_WARMUP},
	{"timeout", required_argument, NULL, O_TIMEOUT},
	{"tls", no_argument, NULL, O_TLS},
	{"json", required_argument, NULL, O_JSON},
	{"label", required_argument, NULL, O_LABEL},
	{"quiet", no_argument, NULL, 'q'},
	{"size", required_argument, NULL, 's'},
	{"depth", required_argument, NULL, O_DEPTH},
	{"rate", required_argument, NULL, O_RATE},
	{"subscribers", required_argument, NULL, O_SUBS},
	{"channels", required_argument, NULL, O_CHANS},
	{"publishers", required_argument, NULL, O_PUBS},
	{"window", required_argument, NULL, O_WINDOW},
	{"backlog", required_argument, NULL, O_BACKLOG},
	{"resp", no_argument, NULL, O_RESP},
	{"resume", no_argument, NULL, O_RESUME},
	{"echo", no_argument, NULL, O_ECHO},
	{"hold", required_argument, NULL, O_HOLD},
	{"ready-file", required_argument, NULL, O_READY},
	{"pub-port", required_argument, NULL, O_PUB_PORT},
	{"settle", required_argument, NULL, O_SETTLE},
	{"ws", no_argument, NULL, O_WS},
	{"channel-prefix", required_argument, NULL, O_CHAN_PREFIX},
	{"help", no_argument, NULL, 'h'},
	{0},
};

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	uint64_t mul = 1;
	if (errno || end == s || *s == '-')
		return -EINVAL;
	if (*end == 'k' || *end == 'K')
		mul = 1024, end++;
	else if (*end == 'm' || *end == 'M')
		mul = 1024 * 1024, end++;
	if (*end || v > UINT64_MAX / mul)
		return -EINVAL;
	*out = v * mul;
	return 0;
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
	uint64_t v;
	if (parse_u64(s, &v) < 0 || v < (uint64_t)lo || v > (uint64_t)hi)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

static int parse_secs(const char *s, double *out)
{
	char *end;
	double d = strtod(s, &end);
	if (end == s || *end || !(d >= 0) || d > 86400)
		return -EINVAL;
	*out = d;
	return 0;
}

static int set_opt(struct wl_opts *o, int c, const char *v)
{
	uint64_t u;
	switch (c) {
	case O_HOST: o->host = v; return 0;
	case O_PORT: return parse_int(v, 1, 65535, &o->port);
	case 'c': return parse_int(v, 1, 1000000, &o->conns);
	case 't': return parse_int(v, 1, 256, &o->threads);
	case 'd': return parse_secs(v, &o->duration_s);
	case 'n': return parse_u64(v, &o->count);
	case O_WARMUP: return parse_secs(v, &o->warmup_s);
	case O_TIMEOUT: return parse_secs(v, &o->timeout_s);
	case O_TLS: o->tls = true; return 0;
	case O_JSON: o->json_path = v; return 0;
	case O_LABEL: o->label = v; return 0;
	case 'q': o->quiet = true; return 0;
	case 's':
		if (parse_u64(v, &u) < 0 || u < 1 || u > (64u << 20))
			return -EINVAL;
		o->size = (size_t)u;
		return 0;
	case O_DEPTH: return parse_int(v, 1, 1024, &o->depth);
	case O_RATE: {
		char *end;
		o->rate = strtod(v, &end);
		return end == v || *end || !(o->rate > 0) || o->rate > 1e9 ? -EINVAL : 0;
	}
	case O_SUBS: return parse_int(v, 1, 1000000, &o->subscribers);
	case O_CHANS: return parse_int(v, 1, 1000000, &o->channels);
	case O_PUBS: return parse_int(v, 1, 1000000, &o->publishers);
	case O_WINDOW: return parse_int(v, 1, 1000000, &o->window);
	case O_BACKLOG: return parse_u64(v, &o->backlog);
	case O_RESP: o->resp = true; return 0;
	case O_RESUME: o->resume = true; return 0;
	case O_ECHO: o->http_request = false; return 0;
	case O_HOLD: return parse_secs(v, &o->hold_s);
	case O_READY: o->ready_file = v; return 0;
	case O_PUB_PORT: return parse_int(v, 1, 65535, &o->pub_port);
	case O_SETTLE: return parse_secs(v, &o->settle_s);
	case O_WS: o->ws = true; return 0;
	case O_CHAN_PREFIX: {
		size_t n = strlen(v);
		if (n < 1 || n > 8 || strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") != n)
			return -EINVAL;
		o->chan_prefix = v;
		return 0;
	}
	}
	return -EINVAL;
}

static int parse(struct wl_opts *o, int argc, char **argv)
{
	*o = (struct wl_opts){.host = "127.0.0.1", .conns = 10, .threads = 1, .duration_s = 5, .timeout_s = 5,
			      .size = 64, .depth = 1, .subscribers = 100, .channels = 1, .publishers = 1,
			      .window = 64, .http_request = true, .hold_s = 60};
	if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? -EINVAL : 1;
	}
	o->cmd = argv[1];
	if (strcmp(o->cmd, "echo") && strcmp(o->cmd, "chat") && strcmp(o->cmd, "handshake") && strcmp(o->cmd, "idle")) {
		fprintf(stderr, "weft-load: unknown command '%s' (echo, chat, handshake, idle)\n", o->cmd);
		return -EINVAL;
	}
	optind = 2;
	int c;
	while ((c = getopt_long(argc, argv, "c:t:d:n:qs:h", lopts, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			return 1;
		}
		if (c == '?' || set_opt(o, c, optarg) < 0) {
			if (c != '?')
				fprintf(stderr, "weft-load: bad value '%s' for option\n", optarg);
			fprintf(stderr, "weft-load: try 'weft-load --help'\n");
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "weft-load: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	if (!o->port) {
		fprintf(stderr, "weft-load: --port is required\n");
		return -EINVAL;
	}
	if (o->ws && (o->resp || strcmp(o->cmd, "handshake") == 0)) {
		fprintf(stderr, "weft-load: --ws speaks the line protocol in chat, and not in handshake\n");
		return -EINVAL;
	}
	if (o->timeout_s <= 0)
		o->timeout_s = 0.1;
	if (!o->backlog)
		o->backlog = 64u * (uint64_t)o->subscribers;
	if (strcmp(o->cmd, "idle") == 0)
		o->duration_s = o->timeout_s; /* the one message per connection */
	return 0;
}

/* Descriptors are the connection limit here too. */
static void raise_nofile(const struct wl_opts *o)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	uint64_t need = (uint64_t)o->conns + (uint64_t)o->subscribers + (uint64_t)o->publishers + 64;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < need)
		fprintf(stderr, "weft-load: warning: open-file limit %llu may be too low for %" PRIu64 " sockets\n",
			(unsigned long long)rl.rlim_cur, need);
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static double us(uint64_t ns) { return (double)ns / 1000.0; }

static double elapsed_s(const struct wl_result *r)
{
	return r->t_last > r->t_first ? (double)(r->t_last - r->t_first) / 1e9 : 0;
}

static void print_json(FILE *f, const struct wl_opts *o, const struct wl_result *r, bool ok)
{
	const struct wl_hist *h = &r->hist;
	double el = elapsed_s(r);
	fprintf(f, "{\"tool\":\"weft-load\",\"scenario\":\"%s\",\"label\":", o->cmd);
	json_str(f, o->label ? o->label : "");
	fprintf(f, ",\"host\":");
	json_str(f, o->host);
	fprintf(f, ",\"port\":%d,\"tls\":%s,\"ws\":%s,\"mode\":\"%s\",\"connections\":%d,\"threads\":%d", o->port,
		o->tls ? "true" : "false", o->ws ? "true" : "false", o->rate > 0 ? "open" : "closed",
		strcmp(o->cmd, "chat") == 0 ? o->subscribers + o->publishers : o->conns, o->threads);
	fprintf(f, ",\"size\":%zu,\"depth\":%d,\"rate\":%.1f", o->size, o->depth, o->rate);
	if (strcmp(o->cmd, "chat") == 0)
		fprintf(f, ",\"protocol\":\"%s\",\"subscribers\":%d,\"channels\":%d,\"publishers\":%d,\"published\":%" PRIu64
			",\"expected\":%" PRIu64,
			o->resp ? "resp" : o->ws ? "line over websocket" : "line", o->subscribers, o->channels, o->publishers, r->published, r->expected);
	if (strcmp(o->cmd, "handshake") == 0)
		fprintf(f, ",\"request\":\"%s\",\"resume\":%s,\"full\":%" PRIu64 ",\"resumed\":%" PRIu64
			",\"tls_versions\":{\"TLSv1.2\":%" PRIu64 ",\"TLSv1.3\":%" PRIu64 "}",
			o->http_request ? "http" : "echo", o->resume ? "true" : "false", r->full, r->resumed, r->tls12, r->tls13);
	if (strcmp(o->cmd, "idle") == 0)
		fprintf(f, ",\"established\":%" PRIu64, r->established);
	if (o->rate > 0)
		fprintf(f, ",\"unsent\":%" PRIu64, r->unsent);
	fprintf(f, ",\"duration_s\":%.3f,\"warmup_s\":%.3f,\"elapsed_s\":%.3f,\"ops\":%" PRIu64, o->duration_s, o->warmup_s, el,
		r->ops);
	fprintf(f, ",\"ops_per_s\":%.1f,\"bytes_per_s\":%.1f", el > 0 ? (double)r->ops / el : 0,
		el > 0 ? (double)r->bytes / el : 0);
	fprintf(f, ",\"latency_us\":{\"count\":%" PRIu64 ",\"mean\":%.1f,\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f}",
		h->count, h->count ? us(h->sum) / (double)h->count : 0, us(wl_hist_quantile(h, 0.5)),
		us(wl_hist_quantile(h, 0.9)), us(wl_hist_quantile(h, 0.99)), us(wl_hist_quantile(h, 0.999)), us(h->max));
	fprintf(f,
		",\"errors\":{\"mismatches\":%" PRIu64 ",\"count_mismatches\":%" PRIu64 ",\"lost\":%" PRIu64 ",\"duplicates\":%" PRIu64 ",\"reordered\":%" PRIu64
		",\"errors\":%" PRIu64 ",\"timeouts\":%" PRIu64 ",\"reconnects\":%" PRIu64 ",\"connect_failures\":%" PRIu64 "}",
		r->mismatches, r->count_mismatches, r->lost, r->duplicates, r->reordered, r->errors, r->timeouts, r->reconnects,
		r->connect_failures);
	fprintf(f, ",\"ok\":%s}\n", ok ? "true" : "false");
}

static void print_summary(const struct wl_opts *o, const struct wl_result *r, bool ok)
{
	const struct wl_hist *h = &r->hist;
	double el = elapsed_s(r);
	fprintf(stderr, "weft-load %s%s: %d conns, %d threads, %zu B, %s loop: %" PRIu64 " ops in %.2f s = %.0f/s (%.1f MB/s)\n",
		o->cmd, o->tls ? " (tls)" : "", strcmp(o->cmd, "chat") == 0 ? o->subscribers + o->publishers : o->conns,
		o->threads, o->size, o->rate > 0 ? "open" : "closed", r->ops, el, el > 0 ? (double)r->ops / el : 0,
		el > 0 ? (double)r->bytes / el / 1e6 : 0);
	fprintf(stderr, "  latency us: p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n", us(wl_hist_quantile(h, 0.5)),
		us(wl_hist_quantile(h, 0.9)), us(wl_hist_quantile(h, 0.99)), us(wl_hist_quantile(h, 0.999)), us(h->max));
	if (strcmp(o->cmd, "handshake") == 0 && o->tls)
		fprintf(stderr, "  handshakes: %" PRIu64 " full, %" PRIu64 " resumed; %" PRIu64 " TLS 1.3, %" PRIu64 " TLS 1.2\n",
			r->full, r->resumed, r->tls13, r->tls12);
	if (o->rate > 0 && r->unsent)
		fprintf(stderr, "  warning: the load generator fell behind its schedule: %" PRIu64
			" messages due were never sent (more --threads, or a lower --rate)\n", r->unsent);
	if (strcmp(o->cmd, "idle") == 0)
		fprintf(stderr, "  established: %" PRIu64 " of %d\n", r->established, o->conns);
	if (strcmp(o->cmd, "chat") == 0)
		fprintf(stderr, "  published %" PRIu64 ", deliveries expected %" PRIu64 "\n", r->published, r->expected);
	fprintf(stderr,
		"  mismatches %" PRIu64 "  count mismatches %" PRIu64 "  lost %" PRIu64 "  dup %" PRIu64 "  reordered %" PRIu64 "  errors %" PRIu64
		"  timeouts %" PRIu64 "  reconnects %" PRIu64 "  connect failures %" PRIu64 "  => %s\n",
		r->mismatches, r->count_mismatches, r->lost, r->duplicates, r->reordered, r->errors, r->timeouts, r->reconnects,
		r->connect_failures, ok ? "OK" : "FAILED");
}

static void on_signal(int sig)
{
	(void)sig;
	atomic_store(&wl_stop, true);
}

int main(int argc, char **argv)
{
	struct wl_opts o;
	int rc = parse(&o, argc, argv);
	if (rc)
		return rc > 0 ? 0 : 2;
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	raise_nofile(&o);
	wl_pattern_init();
	if (o.ws)
		wl_pattern_ascii(); /* text messages: valid UTF-8 */

	struct wl_result r;
	wl_result_init(&r);
	if (strcmp(o.cmd, "echo") == 0)
		rc = wl_echo_run(&o, &r);
	else if (strcmp(o.cmd, "chat") == 0)
		rc = wl_chat_run(&o, &r);
	else if (strcmp(o.cmd, "handshake") == 0)
		rc = wl_handshake_run(&o, &r);
	else
		rc = wl_idle_run(&o, &r);
	if (rc < 0) {
		fprintf(stderr, "weft-load: could not set up the run: %s\n", strerror(-rc));
		return 3;
	}
	bool ok = wl_result_bad(&r) == 0 && r.ops > 0;
	FILE *out = stdout;
	if (o.json_path && !(out = fopen(o.json_path, "w"))) {
		fprintf(stderr, "weft-load: cannot write %s: %s\n", o.json_path, strerror(errno));
		out = stdout;
	}
	print_json(out, &o, &r, ok);
	if (out != stdout)
		fclose(out);
	if (!o.quiet)
		print_summary(&o, &r, ok);
	return ok ? 0 : 1;
}
