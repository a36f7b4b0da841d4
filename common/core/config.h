/* config.h - the command line, shared by every model.
 *
 * One table (config.c) lists every flag with its default and help text;
 * --help prints it, so the help can never drift from the parser. */
#ifndef WEFT_CONFIG_H
#define WEFT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

enum weft_mode { MODE_ECHO, MODE_CHAT };

/* Durations (SEC flags) are 0 or 1 ms .. 7 days, stored as int ms: the
 * bound keeps every consumer's arithmetic in range (int, poll()'s timeout,
 * uring's uint32 ms clock, coro's 2^30 ms wait cap; see config.c). */
#define CONFIG_SECS_MAX 604800LL
#define CONFIG_MS_MAX (CONFIG_SECS_MAX * 1000)
#define CONFIG_HOLD_MS_MAX 30000 /* --publish-hold-secs: session.h keeps a hold's start in 15 bits */
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
	int tcp_keepalive_ms;    /* accepted sockets: SO_KEEPALIVE idle time; 0 = off */
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
	size_t publish_hold;     /* chat: hold a publisher while a subscriber it feeds has this much unsent */
	int publish_hold_ms;     /* chat: ... for at most this long in a row */
	/* TLS */
	int tls_port;            /* -1 = off, 0 = ephemeral */
	const char *cert, *key;
	int handshake_timeout_ms;
	int header_timeout_ms;   /* HTTP: a request head in total, from its first byte; 0 = never */
	/* WebSocket */
	int ws_ping_ms;          /* ping a WebSocket silent this long; 0 = never */
	int ws_pong_timeout_ms;  /* ... and close it if nothing comes back within this */
	const char *ws_origin;   /* comma-separated Origin allow-list; NULL = any */
	/* cluster (chat mode): join an engine, see docs/CLUSTER.md */
	const char *cluster;        /* redis://HOST:PORT or rediss://...; NULL = alone */
	const char *cluster_ca;     /* rediss: CA bundle to verify the engine with */
	bool cluster_insecure;      /* rediss: do not verify the engine's certificate */
	const char *cluster_prefix; /* engine channel prefix, no glob specials */
	const char *cluster_key_file;      /* shared secret: envelopes are HMAC-tagged */
	const char *cluster_password_file; /* the engine's AUTH password (else the URL's, else $WEFT_CLUSTER_PASSWORD) */
	const char *cluster_hosts;         /* redis-cluster: hosts the map may name besides the seeds'; NULL = none */
	int cluster_backoff_max_ms;        /* reconnect back-off cap */
	int cluster_connect_timeout_ms;    /* connect + TLS + AUTH + PING within this */
	/* process */
	bool daemon;
	const char *pidfile;
	const char *log_file;
	int log_level;           /* enum log_level */
	/* bit i: row i of the option table was on the command line (not a default) */
	unsigned long long given;
};

/* What config_parse asks of its caller besides running. */
enum {
	CONFIG_DONE = 1,            /* it printed --version: exit 0 */
	CONFIG_SHOW_HELP,           /* --help: config_usage(), exit 0 */
	CONFIG_SHOW_MAN,            /* --help-man (hidden): config_man(), exit 0 */
	CONFIG_SHOW_COMPLETION,     /* --help-completion (hidden): config_completion() */
};

/* Fill cfg from argv. Returns 0 to run, one of the above, or -EINVAL after
 * printing what was wrong (exit 2). Messages say "weft", never argv[0]'s
 * path; an unknown flag gets "did you mean --x?". */
int config_parse(struct config *cfg, int argc, char **argv);
/* Flags given on the command line that this model does not read (the option
 * table's models column): one warning line each on stderr. Returns how many. */
int config_warn_ignored(const struct config *cfg, const char *model);

/* The models, for what is generated from the option table (config_doc.c). */
struct config_model {
	const char *name;
	const char *recipe;
};
/* --help on stdout; the man page (troff) and a bash completion script, both
 * generated from the same table at build time (CMakeLists.txt). */
void config_usage(const struct config_model *models, size_t n);
void config_man(const struct config_model *models, size_t n);
void config_completion(const struct config_model *models, size_t n);

/* A size: digits with an optional unit, any case: k or kb (1024), m or mb,
 * g or gb (nginx's meaning; Redis's kb/mb/gb agree), at most
 * CONFIG_SIZE_MAX: "1048576", "64k", "10mb", "1G". 0, -EINVAL (not a size,
 * including blanks, a sign, hex) or -ERANGE. */
int config_parse_size(const char *s, size_t *out);
/* A duration into ms: digits with an optional fraction and an optional unit
 * ms, s, m, h or d, any case (nginx's; none = seconds): "300", "1.5",
 * "300s", "5m", "1h", "500ms", "1.5m". Below 1 ms is cut; 0 or
 * 1 ms .. CONFIG_MS_MAX. No sign, exponent, hex, nan or inf (strtod takes all
 * of them). 0, -EINVAL or -ERANGE. */
int config_parse_secs(const char *s, int *ms);

#endif
