/* config.h - the command line, shared by every model.
 *
 * One table (config.c) lists every flag with its default and help text;
 * --help prints it, so the help can never drift from the parser. */
#ifndef WEFT_CONFIG_H
#define WEFT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

enum weft_mode { MODE_ECHO, MODE_CHAT };

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
	int idle_timeout_ms;     /* 0 = never */
	int drain_timeout_ms;    /* on SIGTERM/SIGINT */
	size_t read_pause;       /* stop reading while this much output is unsent */
	size_t max_head;         /* HTTP request line + headers */
	size_t max_body;         /* HTTP body */
	int max_headers;         /* HTTP header count */
	size_t max_line;         /* chat line / RESP inline */
	size_t max_message;      /* chat message, RESP bulk */
	int max_subs;            /* chat subscriptions per connection */
	size_t outbox_hard;      /* chat: disconnect a subscriber above this */
	size_t outbox_soft;      /* chat: ... or above this for outbox_soft_ms */
	int outbox_soft_ms;
	/* TLS */
	int tls_port;            /* -1 = off, 0 = ephemeral */
	const char *cert, *key;
	int handshake_timeout_ms;
	int header_timeout_ms;   /* HTTP: a request head in total, from its first byte; 0 = never */
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
/* Human-readable size "1048576" / "64k" / "8m" / "1g"; 0 or -EINVAL. */
int config_parse_size(const char *s, size_t *out);

#endif
