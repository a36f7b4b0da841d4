/* server.h - what every model is handed: the configuration, the listening
 * sockets, the shared exchange and TLS context, admission control, and the
 * stop signal.
 *
 * Lifecycle (main.c): server_init -> model->run(srv) -> server_fini.
 * A model calls server_ready() once it is accepting on every listener, then
 * serves until server_stop_fd() becomes readable (SIGTERM/SIGINT or a fatal
 * error), closes its listeners, drains (--drain-timeout) and returns its exit
 * code. */
#ifndef WEFT_SERVER_H
#define WEFT_SERVER_H

#include <stdatomic.h>
#include <stdbool.h>

#include "clock.h" /* now_ms(), which every model reads */
#include "config.h"
#include "stats.h"
#include "subscriber.h"

struct exchange;
struct tls_ctx;

enum refuse_reason { REFUSE_MAX_CONNS, REFUSE_QUEUE_FULL, REFUSE_FD_LIMIT };

struct server {
	const struct config *cfg;
	struct exchange *ex;  /* chat mode (main.c sets it before model->run), else NULL */
	struct tls_ctx *tls;  /* --tls-port, else NULL */
	int port, tls_port;   /* the actual bound ports (tls_port -1 = off) */
	int listen_fd;        /* first plain listener, made by server_init */
	int tls_listen_fd;    /* first TLS listener or -1 */
	int stop_pipe[2];     /* [0] becomes readable, forever, on stop */
	atomic_int open_conns;
	long long start_ms;   /* now_ms() at server_init (INFO's uptime) */
	atomic_bool stopping;
	atomic_bool drain_said; /* server_drain_begins() logged */
};

/* Bind the listeners and set up TLS. 0 or -errno (logged). srv->ex is the
 * composer's (main.c): NULL here. */
int server_init(struct server *srv, const struct config *cfg);
void server_fini(struct server *srv);

/* Another listening socket on the same port, for one more event loop
 * (SO_REUSEPORT; the kernel spreads connections across them). -errno on failure. */
int server_listen_again(struct server *srv, bool tls);

/* Log the ready line: "ready: model=M mode=X port=P tls_port=T pid=N". Call once,
 * when every listener is accepting: it also releases the first process of
 * --daemon and tells systemd READY=1 (daemon_ready). */
void server_ready(struct server *srv, const char *model);

/* A readable fd that never stops being readable once a stop was requested;
 * poll it beside your sockets. */
static inline int server_stop_fd(const struct server *srv) { return srv->stop_pipe[0]; }
static inline bool server_stopping(struct server *srv) { return atomic_load(&srv->stopping); }
/* A loop or the accept thread saw the stop and begins its drain: the first
 * caller logs "drain: ..." with the open connections and tells systemd
 * STOPPING=1; the others return at once. Not signal-safe. */
void server_drain_begins(struct server *srv);
/* Ask every loop to stop (signal-safe). */
void server_request_stop(struct server *srv);

/* Admission: true if one more connection may be served (counts it as open
 * and accepted). Pair every true with one server_conn_closed(), which counts
 * the close under its reason (a session's: session_close_reason()). */
bool server_conn_admit(struct server *srv);
void server_conn_closed(struct server *srv, enum close_reason why);

/* Tell the client why it is refused, in its protocol as far as weft can
 * know it before reading: "-ERR ...\r\n" in chat mode (RESP, readable by nc
 * and redis-cli), "weft: ...\r\n" in echo mode; count it and close fd.
 * Never blocks. */
void server_refuse(struct server *srv, int fd, enum refuse_reason why);

/* --tcp-keepalive on an accepted socket (every model calls it once per
 * connection: loop_accepted, and the blocking models' acceptor). Best effort: a
 * failure is logged at debug and the connection is served anyway. */
void server_keepalive(const struct server *srv, int fd);

/* accept4(SOCK_NONBLOCK|SOCK_CLOEXEC) with counting; returns fd or -errno.
 * On EMFILE/ENFILE the caller must stop accepting for a while (a level-
 * triggered poller would spin otherwise): the loop runtime's back-off,
 * deadline_accept_retry() in common/loop/deadline.h. */
int server_accept(int lfd, bool nonblock);

/* An accept failure that did not come through server_accept() (io_uring's
 * completions): err is an errno, either sign. true: accepting must pause
 * (EMFILE, ENFILE, ENOBUFS, ENOMEM, and what is not known to be one
 * connection's). The transient ones (EAGAIN, EINTR, ECONNABORTED) are
 * ignored; any other is counted in weft_accept_errors_total and logged, at
 * most one line a second for the whole process (log_rated: "accept: Too many
 * open files; ... (x37 in the last 1.0 s)"); a new connection's network
 * error (EPROTO, ENETUNREACH, ... accept(2)) is counted and logged but does
 * not pause: accept again at once. */
bool server_accept_failed(int err);
/* err (either sign) ends one accept, not accepting: EAGAIN, EINTR, or that
 * connection's own error (accept(2)'s network errors, ECONNABORTED). */
bool server_accept_transient(int err);

/* Accept what lfd has queued, max at most (then let other work run), and
 * hand each socket to take(arg, fd), which owns it. 0 when the queue is
 * empty or max was reached; -errno when accepting must pause (EMFILE, ...). */
int server_accept_some(int lfd, bool nonblock, int max, void (*take)(void *arg, int fd), void *arg);

/* The slow-consumer limits (--outbox-hard, --outbox-soft, --outbox-soft-secs)
 * for a mailbox that serves this server's sessions (owner->limits). */
static inline size_t server_half_below(size_t hold, size_t limit)
{
	return limit && limit / 2 < hold ? limit / 2 : hold;
}

/* --publish-hold, at most half of each outbox limit: a publisher is held
 * while a subscriber still has room to catch up before it is judged. */
static inline struct subscriber_limits server_outbox_limits(const struct server *srv)
{
	const struct config *cfg = srv->cfg;
	size_t hold = server_half_below(server_half_below(cfg->publish_hold, cfg->outbox_hard), cfg->outbox_soft);
	return (struct subscriber_limits){cfg->outbox_hard, cfg->outbox_soft, cfg->outbox_soft_ms, hold};
}

#endif
