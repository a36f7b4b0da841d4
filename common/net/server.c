#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "sdnotify.h"
#include "stats.h"
#include "tls.h"

static int parse_addr(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		*len = sizeof(*a4);
		return 0;
	}
	if (strcmp(host, "localhost") == 0)
		host = "127.0.0.1";
	if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		*len = sizeof(*a4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*a6);
		return 0;
	}
	return -EINVAL;
}

/* A non-blocking listening socket on host:port; returns fd or -errno. */
static int listen_on(const struct config *cfg, int port, bool reuseport)
{
	struct sockaddr_storage ss;
	socklen_t len;
	if (parse_addr(cfg->host, port, &ss, &len) < 0)
		return -EINVAL;
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		goto fail;
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, cfg->backlog) < 0)
		goto fail;
	return fd;
fail:;
	int err = -errno;
	close(fd);
	return err;
}

static int bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -1;
	return ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
	                                     : ((struct sockaddr_in6 *)&ss)->sin6_port);
}

static bool want_reuseport(const struct config *cfg) { return cfg->reuseport || cfg->threads > 1; }

int server_init(struct server *srv, const struct config *cfg)
{
	memset(srv, 0, sizeof(*srv));
	srv->cfg = cfg;
	srv->listen_fd = srv->tls_listen_fd = -1;
	srv->stop_pipe[0] = srv->stop_pipe[1] = -1;
	srv->tls_port = -1;
	srv->start_ms = now_ms();
	if (pipe2(srv->stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		log_error("startup: pipe: %s", strerror(errno));
		return -errno;
	}
	int fd = listen_on(cfg, cfg->port, want_reuseport(cfg));
	if (fd < 0) {
		log_error("startup: cannot listen on %s port %d: %s%s", cfg->host, cfg->port, strerror(-fd),
		          fd == -EADDRINUSE ? " (another server has it; pick another --port, or 0)" : "");
		return fd;
	}
	srv->listen_fd = fd;
	srv->port = bound_port(fd);
	if (cfg->tls_port >= 0) {
		srv->tls = tls_ctx_new(cfg);
		if (!srv->tls)
			return -EINVAL;
		fd = listen_on(cfg, cfg->tls_port, want_reuseport(cfg));
		if (fd < 0) {
			log_error("startup: cannot listen on %s TLS port %d: %s", cfg->host, cfg->tls_port, strerror(-fd));
			return fd;
		}
		srv->tls_listen_fd = fd;
		srv->tls_port = bound_port(fd);
	}
	return 0;
}

void server_fini(struct server *srv)
{
	if (srv->listen_fd >= 0)
		close(srv->listen_fd);
	if (srv->tls_listen_fd >= 0)
		close(srv->tls_listen_fd);
	for (int i = 0; i < 2; i++)
		if (srv->stop_pipe[i] >= 0)
			close(srv->stop_pipe[i]);
	tls_ctx_free(srv->tls);
	srv->tls = NULL;
}

int server_listen_again(struct server *srv, bool tls)
{
	int fd = listen_on(srv->cfg, tls ? srv->tls_port : srv->port, true);
	if (fd < 0)
		log_error("startup: another listener on port %d: %s", tls ? srv->tls_port : srv->port, strerror(-fd));
	return fd;
}

void server_ready(struct server *srv, const char *model)
{
	const struct config *cfg = srv->cfg;
	log_info("ready: model=%s mode=%s host=%s port=%d tls_port=%d pid=%d", model,
	         cfg->mode == MODE_CHAT ? "chat" : "echo", cfg->host, srv->port, srv->tls_port, (int)getpid());
	daemon_ready(); /* the waiting first process of --daemon, and systemd, learn it now */
}

void server_drain_begins(struct server *srv)
{
	if (atomic_exchange(&srv->drain_said, true))
		return; /* every loop and thread sees the stop: one line */
	int ms = srv->cfg->drain_timeout_ms;
	log_info("drain: stopping; %d connections open, closing within --drain-timeout %d.%03d s",
	         atomic_load(&srv->open_conns), ms / 1000, ms % 1000);
	sdnotify_send("STOPPING=1");
}

void server_request_stop(struct server *srv)
{
	atomic_store(&srv->stopping, true);
	char c = 1;
	ssize_t w = write(srv->stop_pipe[1], &c, 1); /* signal-safe */
	(void)w;
}

bool server_conn_admit(struct server *srv)
{
	if (atomic_fetch_add(&srv->open_conns, 1) >= srv->cfg->max_conns) {
		atomic_fetch_sub(&srv->open_conns, 1);
		return false;
	}
	stat_inc(STAT_conn_accepted);
	return true;
}

void server_conn_closed(struct server *srv, enum close_reason why)
{
	atomic_fetch_sub(&srv->open_conns, 1);
	stat_inc(stat_closed(why));
}

/* One line a second at most per reason, with the count (log_rated): a full
 * server refuses clients as fast as they come. */
static void refuse_log(const struct server *srv, enum refuse_reason why)
{
	static struct log_rate rates[3] = {LOG_RATE_INIT, LOG_RATE_INIT, LOG_RATE_INIT};
	const struct config *cfg = srv->cfg;
	switch (why) {
	case REFUSE_MAX_CONNS:
		log_rated(&rates[why], LOG_INFO, "refused: a client: %d connections open, the limit (--max-conns %d)",
		          atomic_load(&srv->open_conns), cfg->max_conns);
		break;
	case REFUSE_QUEUE_FULL:
		log_rated(&rates[why], LOG_INFO, "refused: a client: all --workers %d busy and --queue %d full",
		          cfg->workers, cfg->queue);
		break;
	case REFUSE_FD_LIMIT:
		log_rated(&rates[why], LOG_INFO,
		          "refused: a client: its descriptor is past what the select() poller can watch (--poller epoll has no such limit)");
		break;
	}
}

/* Was fd accepted on the TLS listener? Asked only when refusing. */
static bool on_tls_port(const struct server *srv, int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (srv->tls_port < 0 || getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return false;
	int port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
	                                           : ((struct sockaddr_in *)&ss)->sin_port);
	return port == srv->tls_port;
}

/* A fatal internal_error alert, the only thing a TLS client can read before
 * a handshake: a plain-text line would be "wrong version number" to it. */
static const char tls_refusal_alert[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x50};

void server_refuse(struct server *srv, int fd, enum refuse_reason why)
{
	refuse_log(srv, why);
	static const enum stat_id counted[] = {[REFUSE_MAX_CONNS] = STAT_refused_max_conns,
	                                       [REFUSE_QUEUE_FULL] = STAT_refused_queue,
	                                       [REFUSE_FD_LIMIT] = STAT_refused_fd_limit};
	stat_inc(counted[why]);
	/* Best effort, never blocking: a fresh socket's send buffer has room. */
	ssize_t w;
	if (on_tls_port(srv, fd)) {
		w = send(fd, tls_refusal_alert, sizeof(tls_refusal_alert), MSG_DONTWAIT | MSG_NOSIGNAL);
		(void)w;
		close(fd);
		return;
	}
	/* Nothing was read yet, so the mode is all weft knows of the client's
	 * protocol: chat clients (redis-cli, nc) read a RESP error, which is a
	 * readable line too; an echo client gets a plain line, not RESP. */
	const char *head = srv->cfg->mode == MODE_CHAT ? "-ERR " : "weft: ";
	char msg[200];
	int n = 0;
	switch (why) {
	case REFUSE_MAX_CONNS:
		n = snprintf(msg, sizeof(msg), "%smax number of clients reached (weft --max-conns %d)\r\n", head,
		             srv->cfg->max_conns);
		break;
	case REFUSE_QUEUE_FULL:
		n = snprintf(msg, sizeof(msg), "%sserver busy: all workers taken and the queue is full (weft --queue %d)\r\n",
		             head, srv->cfg->queue);
		break;
	case REFUSE_FD_LIMIT:
		n = snprintf(msg, sizeof(msg),
		             "%sserver busy: descriptor limit of the select() poller reached (weft --poller epoll has none)\r\n",
		             head);
		break;
	}
	w = send(fd, msg, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
	(void)w;
	close(fd);
}

/* Accept errors repeat as long as their cause lasts (EMFILE: until a client
 * leaves), on every listener of every loop, about ten times a second each
 * (the back-off: common/loop/deadline.h): one limiter for the whole process (log_rated);
 * weft_accept_errors_total counts every one. */
static struct log_rate accept_log = LOG_RATE_INIT;

static void accept_log_error(int err)
{
	bool fds = err == EMFILE || err == ENFILE;
	log_rated(&accept_log, LOG_WARN, "accept: %s%s", strerror(err),
	          fds ? "; out of descriptors: raise ulimit -n or lower --max-conns" : "");
}

/* accept(2): Linux passes a new connection's pending network error on as
 * accept's, and the next connection may be fine: "treat them like EAGAIN by
 * retrying" (ENETDOWN, EPROTO, ENOPROTOOPT, EHOSTDOWN, ENONET, EHOSTUNREACH,
 * EOPNOTSUPP, ENETUNREACH; and ECONNABORTED): the connection is gone from
 * the queue. They paused the listener 100 ms, as for EMFILE. */
static bool one_connection(int err)
{
	switch (err) {
	case ECONNABORTED: case ENETDOWN: case EPROTO: case ENOPROTOOPT: case EHOSTDOWN: case ENONET:
	case EHOSTUNREACH: case EOPNOTSUPP: case ENETUNREACH:
		return true;
	default:
		return false;
	}
}

bool server_accept_transient(int err)
{
	err = err < 0 ? -err : err;
	return err == EAGAIN || err == EWOULDBLOCK || err == EINTR || one_connection(err);
}

bool server_accept_failed(int err)
{
	err = err < 0 ? -err : err;
	if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR || err == ECONNABORTED)
		return false;
	stat_inc(STAT_accept_errors);
	accept_log_error(err);
	return !one_connection(err);
}

/* Redis' anetKeepAlive: the first probe after `secs` of silence, then one
 * every secs/3, and the peer is dead after 3 unanswered: about 2 x secs in
 * all. The kernel takes at most 32767 s for each (MAX_TCP_KEEPIDLE). */
#define KEEPALIVE_SECS_MAX 32767
#define KEEPALIVE_PROBES 3

void server_keepalive(const struct server *srv, int fd)
{
	int ms = srv->cfg->tcp_keepalive_ms;
	if (ms <= 0)
		return;
	int secs = (ms + 999) / 1000;
	secs = secs < KEEPALIVE_SECS_MAX ? secs : KEEPALIVE_SECS_MAX;
	int one = 1, intvl = secs / KEEPALIVE_PROBES ? secs / KEEPALIVE_PROBES : 1, cnt = KEEPALIVE_PROBES;
	if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &secs, sizeof(secs)) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl)) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt)) < 0)
		log_debug("tcp keepalive on fd %d: %s", fd, strerror(errno));
}

int server_accept(int lfd, bool nonblock)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0));
	if (fd >= 0) {
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		return fd;
	}
	int err = errno;
	server_accept_failed(err);
	return -err;
}

int server_accept_some(int lfd, bool nonblock, int max, void (*take)(void *arg, int fd), void *arg)
{
	for (int i = 0; i < max; i++) {
		int fd = server_accept(lfd, nonblock);
		if (fd == -EAGAIN || fd == -EWOULDBLOCK)
			return 0;
		if (fd < 0 && server_accept_transient(fd)) /* that connection's error: the next may be fine */
			continue;
		if (fd < 0)
			return fd;
		take(arg, fd);
	}
	return 0;
}
