/* config.h - the command line, shared by every model.
 *
 * One table (config.c) lists every flag with its default and help text;
 * --help prints it, so the help can never drift from the parser. */
#ifndef WEFT_CONFIG_H
#define WEFT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

enum weft_mode { MODE_ECHO, MODE_CHAT };

/* Durations (SEC flags) are 0 or 0.001 .. 7 days, stored as int ms: the
 * bound keeps every consumer's arithmetic in range (int, poll()'s timeout,
 * uring's uint32 ms clock, coro's 2^30 ms wait cap; see config.c). */
#define CONFIG_SECS_MAX 604800LL
#define CONFIG_MS_MAX (CONFIG_SECS_MAX * 1000)
/* Sizes (BYTES flags) are at most 1024g, so sums of a few never wrap. */
#define CONFIG_SIZE_MAX (1ULL << 40)
#define CONFIG_SIZE_MAX_TEXT "1024g"
/* Model knobs: workers + queue + 1 (pool's ring) stays far inside int. */
#define CONFIG_WORKERS_MAX 100000
#define CONFIG_QUEUE_MAX 1000000
#define CONFIG_STACK_MAX (1LL << 30)
/* HTTP: room for this many fields is reserved per connection (Apache's cap). */
#define CONFIG_HEADERS_MAX 32767

struct config {
	/* what to run */
	const char *model;  /* threads | pool | coro | uring */
	enum weft_mode mode;
	bool no_http;       /* never switch a connection to HTTP */
	/* where */
	const char *host;
	int port;           /* 0 = ephemeral; the ready line says which */
	int backlog;
	bool reuseport;
	/* model knobs */
	int threads;        /* coro, uring: schedulers / rings on one port */
	int workers;        /* pool */
	int queue;          /* pool: connections waiting for a worker */
	size_t stack_size;  /* threads */
	const char *poller; /* coro: select | poll | epoll */
	/* limits */
	int max_conns;
	int idle_timeout_ms;     /* 0 = never; every *_ms is 0..CONFIG_MS_MAX */
	int drain_timeout_ms;    /* on SIGTERM/SIGINT */
	size_t read_pause;       /* stop reading while this much output is unsent (>= 1) */
	size_t max_head;         /* HTTP request line + headers */
	size_t max_body;         /* HTTP body */
	int max_headers;         /* HTTP header count */
	size_t max_line;         /* chat line / RESP inline */
	size_t max_message;      /* chat message, RESP bulk */
	size_t max_channel;      /* chat: channel name in a PUBLISH */
	int max_subs;            /* chat subscriptions per connection */
	size_t outbox_hard;      /* chat: disconnect a subscriber above this */
	size_t outbox_soft;      /* chat: ... or above this for outbox_soft_ms */
	int outbox_soft_ms;
	/* TLS */
	int tls_port;            /* -1 = off, 0 = ephemeral */
	const char *cert, *key;
	int handshake_timeout_ms;
	int header_timeout_ms;   /* HTTP: a request head in total, from its first byte; 0 = never */
	/* cluster (chat mode): join an engine, see docs/CLUSTER.md */
	const char *cluster;        /* redis://HOST:PORT or rediss://...; NULL = alone */
	const char *cluster_ca;     /* rediss: CA bundle to verify the engine with */
	bool cluster_insecure;      /* rediss: do not verify the engine's certificate */
	const char *cluster_prefix; /* engine channel prefix, no glob specials */
	const char *cluster_key_file;      /* shared secret: envelopes are HMAC-tagged */
	const char *cluster_password_file; /* the engine's AUTH password (else the URL's, else $WEFT_CLUSTER_PASSWORD) */
	int cluster_backoff_max_ms;        /* reconnect back-off cap */
	int cluster_connect_timeout_ms;    /* connect + TLS + AUTH + PING within this */
	/* process */
	bool daemon;
	const char *pidfile;
	const char *log_file;
	int log_level;           /* enum log_level */
};

/* Fill cfg from argv. Returns 0 to run, 1 if it printed --help/--version
 * (exit 0), or -EINVAL after printing what was wrong (exit 2). */
int config_parse(struct config *cfg, int argc, char **argv);
void config_usage(void);
/* Human-readable size "1048576" / "64k" / "8m" / "1g", at most
 * CONFIG_SIZE_MAX; 0, -EINVAL (not a size) or -ERANGE. */
int config_parse_size(const char *s, size_t *out);
/* Seconds "300" / "1.5" / ".25" into ms: digits with an optional fraction
 * (ms resolution), 0 or 1 ms .. CONFIG_MS_MAX. No sign, exponent, hex, nan
 * or inf (strtod takes all of them). 0, -EINVAL or -ERANGE. */
int config_parse_secs(const char *s, int *ms);

#endif
