/* link.c - the engine connection: connect, TLS, AUTH, read replies, write
 * commands, and come back after a failure.
 *
 * States of the link: BACKOFF (the timer brings the next attempt),
 * RESOLVING (a host name in glibc's resolver threads, getaddrinfo_a; the
 * timer looks at it, so the loop never waits for a resolver), CONNECTING (both sockets connecting, shaking hands or saying hello: AUTH
 * if there is a password, then PING; the timer is the deadline), UP (both
 * connections answered PONG: publishes can flow; each is PINGed every tick
 * and one silent for the connect timeout is a loss). Any failure of either
 * connection closes both and backs off: delay = min(BACKOFF_MIN << attempt,
 * backoff max), then a random point in its upper half, so nodes that lost the
 * engine together do not all come back in the same millisecond. The attempt
 * count goes back to 0 only when the engine has proved usable (both PONGs,
 * and the link stayed up for a tick): an engine that accepts TCP and then
 * refuses (-ERR max number of clients reached, a wrong password) is a failed
 * attempt and the back-off grows. */
#include "link.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "buf.h"
#include "log.h"
#include "outbox.h"
#include "rscan.h"
#include "clock.h"
#include "stats.h"
#include "tls.h"

#define BACKOFF_MIN_MS 50
#define LOG_EVERY_MS 10000 /* link log lines at most this often; the rest are counted */
#define READ_CHUNK 65536
#define READS_PER_EVENT 16 /* then let the other connection and the wake run */
#define PONG_SLACK 4       /* connect timeouts a PONG may take while bytes flow (behind a backlog), */
#define PONG_SLACK_MIN_MS 2000 /* and at least this */

/* At most one log line per LOG_EVERY_MS; the ones held back are counted
 * and the next line says how many. */
struct limiter {
	long long next;
	unsigned held;
};

static bool limiter_ok(struct limiter *m, unsigned *held)
{
	long long now = now_ms();
	if (now < m->next) {
		m->held++;
		return false;
	}
	*held = m->held;
	m->held = 0;
	m->next = now + LOG_EVERY_MS;
	return true;
}

enum cstate { CS_CLOSED, CS_CONNECTING, CS_HANDSHAKE, CS_HELLO, CS_READY };
enum lstate { L_BACKOFF, L_RESOLVING, L_CONNECTING, L_UP };

#define RESOLVE_POLL_MAX_MS 50 /* a pending host name lookup is looked at this often, at most */

/* One host name lookup in glibc's resolver threads (getaddrinfo_a): the
 * loop never waits for a resolver. Its memory is the resolver's until the
 * lookup is over or cancelled. */
struct resolve {
	struct gaicb cb;
	struct addrinfo hints;
	char host[CLUSTER_HOST_MAX + 1];
	char port[8];
	struct resolve *next; /* orphans */
};

struct rconn {
	int fd;
	enum cstate st;
	struct tls_conn *tls;
	redisReader *rd;
	struct outbox out; /* plaintext commands */
	struct buf plain;  /* TLS: decrypted input not yet fed */
	struct rscan scan; /* bounds each reply before hiredis keeps any of it */
	int hello;         /* CS_HELLO: replies still awaited (AUTH, PING) */
	bool auth;         /* CS_HELLO: the first of them is AUTH's */
	long long ping_at; /* up: when the keepalive PING was queued or owed (0: its PONG came) */
	bool ping_owed;    /* up: the PING could not be queued (no memory): queue it at the next tick */
	long long rx_ms;   /* when bytes were last read from the engine */
	bool more;         /* its last read stopped at READS_PER_EVENT or pass_work: read on at the wake */
	bool behind;       /* bytes were left at the end of its last read (cleared at EAGAIN) */
	size_t grace;      /* the largest whole resubscription queued (link_burst): beyond the bound */
	size_t burst;      /* bytes queued in the current link_burst */
	bool over;         /* a send found the queue at its bound: fail the link at the next turn */
	int werr;          /* a send's write failed (errno): the link is lost at the next turn */
};

struct link {
	struct cluster_url url;
	struct tls_ctx *tls;
	struct cl_loop *loop;
	struct link_handler h;
	struct link_limits lim;
	enum lstate st;
	struct rconn c[LINK_CONNS];
	struct resolve *rq; /* L_RESOLVING: the lookup */
	int resolve_wait;   /* ms until the next look at it */
	unsigned attempt;   /* failures since the last time up */
	unsigned epoch;     /* failures ever: a parse loop sees the link dropped under it */
	bool in_up;         /* in a link_burst: what is queued is a whole resubscription */
	uint64_t rng;
	struct limiter fail_log, up_log;
	long long up_since; /* when it was last up */
	char what[300];     /* "redis://host:port", for the log (never the password) */
	/* A read's bytes, parsed before the next read. The link's, not a
	 * _Thread_local: static TLS is carved out of every thread's stack, and
	 * 64 KiB of it in each of the threads model's threads made
	 * --stack-size 64k fail every pthread_create (EINVAL). */
	char chunk[READ_CHUNK];
};

static const char *const conn_name[LINK_CONNS] = {"subscriber", "publisher"};

static uint64_t rnd(struct link *l)
{
	uint64_t x = l->rng; /* xorshift64 */
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return l->rng = x;
}

static void set_what(struct link *l)
{
	const struct cluster_url *u = &l->url;
	snprintf(l->what, sizeof(l->what), "%s://%s%s%s:%d", u->tls ? "rediss" : "redis", strchr(u->host, ':') ? "[" : "",
	         u->host, strchr(u->host, ':') ? "]" : "", u->port);
}

struct link *link_new(const struct cluster_url *u, struct tls_ctx *tls, struct cl_loop *loop,
                      const struct link_handler *h, const struct link_limits *lim)
{
	struct link *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->url = *u;
	l->tls = tls;
	l->loop = loop;
	l->h = *h;
	l->lim = *lim;
	l->st = L_BACKOFF;
	for (int i = 0; i < LINK_CONNS; i++)
		l->c[i].fd = -1;
	if (getrandom(&l->rng, sizeof(l->rng), 0) != sizeof(l->rng) || !l->rng)
		l->rng = 0x9e3779b97f4a7c15ULL ^ (uint64_t)now_ms();
	set_what(l);
	return l;
}

void link_retarget(struct link *l, const char *host, int port)
{
	snprintf(l->url.host, sizeof(l->url.host), "%s", host);
	l->url.port = port;
	set_what(l);
}

static void conn_close(struct link *l, int i)
{
	struct rconn *c = &l->c[i];
	c->more = false;
	if (c->fd >= 0) {
		cl_watch(l->loop, i, -1, false, false);
		close(c->fd);
	}
	tls_conn_free(c->tls);
	if (c->rd)
		redisReaderFree(c->rd);
	outbox_free(&c->out);
	buf_free(&c->plain);
	*c = (struct rconn){.fd = -1};
}

/* Lookups that could not be cancelled (a resolver thread is waiting on the
 * network): the resolver still writes to them, so they are kept until they
 * are over (freed by the next lookup) or the process ends. */
static pthread_mutex_t orphans_lock = PTHREAD_MUTEX_INITIALIZER;
static struct resolve *orphans;

static void resolve_free(struct resolve *rq)
{
	if (gai_error(&rq->cb) == 0 && rq->cb.ar_result)
		freeaddrinfo(rq->cb.ar_result);
	free(rq);
}

static void orphans_reap(void)
{
	pthread_mutex_lock(&orphans_lock);
	for (struct resolve **p = &orphans; *p;) {
		struct resolve *rq = *p;
		if (gai_error(&rq->cb) == EAI_INPROGRESS) {
			p = &rq->next;
			continue;
		}
		*p = rq->next;
		resolve_free(rq);
	}
	pthread_mutex_unlock(&orphans_lock);
}

/* Stop waiting for the lookup: never blocks (a stop does not wait for a
 * slow resolver). */
static void resolve_cancel(struct link *l)
{
	struct resolve *rq = l->rq;
	if (!rq)
		return;
	l->rq = NULL;
	int g = gai_cancel(&rq->cb);
	if (g == EAI_CANCELED || g == EAI_ALLDONE) {
		resolve_free(rq);
		return;
	}
	pthread_mutex_lock(&orphans_lock);
	rq->next = orphans;
	orphans = rq;
	pthread_mutex_unlock(&orphans_lock);
}

void link_free(struct link *l)
{
	if (!l)
		return;
	resolve_cancel(l);
	for (int i = 0; i < LINK_CONNS; i++)
		conn_close(l, i);
	free(l);
}

bool link_is_up(const struct link *l) { return l->st == L_UP; }

bool link_behind(const struct link *l)
{
	if (l->st != L_UP)
		return false;
	for (int i = 0; i < LINK_CONNS; i++)
		if (l->c[i].behind)
			return true;
	return false;
}

bool link_log_up(struct link *l, unsigned *held) { return limiter_ok(&l->up_log, held); }

const char *link_what(const struct link *l) { return l->what; }

size_t link_backlog(const struct link *l, enum link_conn conn)
{
	const struct rconn *c = &l->c[conn];
	return outbox_bytes(&c->out) + (c->tls ? outbox_bytes(tls_conn_cipher(c->tls)) : 0);
}

static void backoff(struct link *l)
{
	unsigned shift = l->attempt < 10 ? l->attempt : 10;
	long long d = (long long)BACKOFF_MIN_MS << shift;
	if (d > l->lim.backoff_max_ms)
		d = l->lim.backoff_max_ms;
	d = d / 2 + (long long)(rnd(l) % (uint64_t)(d / 2 + 1));
	l->attempt++;
	l->st = L_BACKOFF;
	cl_timer(l->loop, now_ms() + d);
}

/* Drop both connections and try again later; why is logged. */
static void fail(struct link *l, enum stat_id counter, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void fail(struct link *l, enum stat_id counter, const char *fmt, ...)
{
	char why[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	bool was_up = l->st == L_UP;
	for (int i = 0; i < LINK_CONNS; i++)
		conn_close(l, i);
	stat_inc(counter);
	l->epoch++;
	/* A link that stayed up a while proved the engine usable: start the
	 * back-off afresh. One lost at once (an engine that answers PING and
	 * then drops us) keeps growing it. */
	if (was_up && now_ms() - l->up_since >= LINK_TICK_MS)
		l->attempt = 0;
	backoff(l);
	/* Rate-limited (a refusing engine must not flood the log). */
	unsigned n;
	if (limiter_ok(&l->fail_log, &n)) {
		char held[64] = "";
		if (n)
			snprintf(held, sizeof(held), "; %u similar lines not logged", n);
		if (was_up)
			log_warn("cluster: link to %s lost: %s; local delivery goes on, reconnecting%s", l->what, why, held);
		else
			log_warn("cluster: cannot reach %s: %s (attempt %u; retrying with backoff)%s", l->what, why, l->attempt,
			         held);
	}
	if (was_up)
		l->h.down(l->h.arg);
	else if (l->h.failed)
		l->h.failed(l->h.arg);
}

/* ---- writing ---- */

static void want(struct link *l, int i)
{
	struct rconn *c = &l->c[i];
	bool wr = c->st == CS_CONNECTING || link_backlog(l, (enum link_conn)i) > 0;
	cl_watch(l->loop, i, c->fd, c->st != CS_CONNECTING, wr);
}

/* Write what is queued (encrypting first under TLS). 0 or -errno. */
static int flush(struct link *l, int i)
{
	struct rconn *c = &l->c[i];
	struct outbox *ob = &c->out;
	if (c->tls) {
		if (tls_conn_encrypt(c->tls, &c->out) < 0)
			return -EPROTO;
		ob = tls_conn_cipher(c->tls);
	}
	while (!outbox_empty(ob)) {
		struct iovec iov[16];
		int k = outbox_iov(ob, iov, 16);
		ssize_t w = writev(c->fd, iov, k);
		if (w < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			return -errno;
		}
		outbox_consume(ob, (size_t)w);
		if (c->tls && outbox_empty(ob) && !outbox_empty(&c->out)) {
			if (tls_conn_encrypt(c->tls, &c->out) < 0)
				return -EPROTO;
		}
	}
	want(l, i);
	return 0;
}

int link_send(struct link *l, enum link_conn conn, const char *p, size_t n)
{
	struct rconn *c = &l->c[conn];
	if (l->st != L_UP)
		return -ENOTCONN;
	/* An engine that does not read a connection (hung, or hostile: it may
	 * keep pushing on it) must not make the queue grow for ever: past its
	 * bound the link is failed, at the next turn (the caller may hold a lock
	 * the down handler takes). */
	size_t bound = l->lim.max_out[conn] + c->grace;
	/* A burst queued in one turn (before the loop flushes it) may pass the
	 * bound while the engine reads well: write what the kernel takes first. */
	if (c->werr)
		return -ENOTCONN;
	int rc = !l->in_up && !c->over && link_backlog(l, conn) + n > bound ? flush(l, conn) : 0;
	if (rc < 0) { /* a write error (EPIPE, ECONNRESET...): the link is lost, not unread */
		c->werr = -rc;
		cl_wake(l->loop);
		return -ENOTCONN;
	}
	if (!l->in_up && (c->over || link_backlog(l, conn) + n > bound)) {
		if (!c->over) {
			c->over = true;
			cl_wake(l->loop);
		}
		return -ENOBUFS;
	}
	if (outbox_append(&c->out, p, n) < 0)
		return -ENOMEM;
	if (l->in_up)
		c->burst += n;
	/* Written by link_flush() (the host's wake, after it queued all it
	 * had), or when the loop reports the socket writable. */
	want(l, conn);
	return 0;
}

enum stat_id link_drop_stat(int rc) { return rc == -ENOTCONN ? STAT_cl_dropped_down : STAT_cl_dropped_full; }

void link_burst(struct link *l, bool on)
{
	l->in_up = on;
	for (int i = 0; i < LINK_CONNS; i++) {
		struct rconn *c = &l->c[i];
		if (!on && c->burst > c->grace)
			c->grace = c->burst;
		c->burst = 0;
	}
}

/* A connection's queue went past its bound (link_send): the link fails
 * (counted, logged, made again). true: it did. */
static bool over_bound(struct link *l)
{
	for (int i = 0; i < LINK_CONNS && l->st == L_UP; i++) {
		if (l->c[i].werr) {
			fail(l, STAT_cl_link_lost, "%s connection: write: %s", conn_name[i], strerror(l->c[i].werr));
			return true;
		}
		if (l->c[i].over) {
			fail(l, STAT_cl_link_unread,
			     "%s connection: more than %zu bytes queued for the engine, which does not read them",
			     conn_name[i], l->lim.max_out[i] + l->c[i].grace);
			return true;
		}
	}
	return false;
}

void link_flush(struct link *l)
{
	if (over_bound(l))
		return;
	for (int i = 0; i < LINK_CONNS && l->st == L_UP; i++) {
		if (link_backlog(l, (enum link_conn)i) == 0)
			continue;
		int rc = flush(l, i);
		if (rc < 0) {
			fail(l, STAT_cl_link_lost, "%s connection: write: %s", conn_name[i], strerror(-rc));
			return;
		}
	}
}

/* ---- connecting ---- */

static int open_socket(struct link *l, int i, const struct addrinfo *ai)
{
	struct rconn *c = &l->c[i];
	c->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
	if (c->fd < 0)
		return -errno;
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(c->fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	c->rd = redisReaderCreate();
	if (!c->rd)
		return -ENOMEM;
	if (i == LINK_SUB) /* message / pmessage / (p)(un)subscribe acks: at most 4 flat elements */
		rscan_init(&c->scan, 4, l->lim.max_bulk, 4096);
	else /* :N, +OK, +PONG, -ERR ... */
		rscan_init(&c->scan, 0, l->lim.pub_bulk, 4096);
	if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS)
		return -errno;
	c->st = CS_CONNECTING;
	want(l, i);
	return 0;
}

/* Both connections to the address ai (the first of the list). */
static void connect_to(struct link *l, const struct addrinfo *ai)
{
	l->st = L_CONNECTING;
	cl_timer(l->loop, now_ms() + l->lim.connect_timeout_ms);
	int rc = 0;
	for (int i = 0; i < LINK_CONNS && rc == 0; i++)
		rc = open_socket(l, i, ai);
	if (rc < 0)
		fail(l, STAT_cl_connect_fail, "connect: %s", strerror(-rc));
}

/* A host name: ask glibc's resolver threads and look at the answer from the
 * timer (resolve_poll); the loop goes on serving meanwhile. */
static void resolve_start(struct link *l, const char *port)
{
	orphans_reap();
	struct resolve *rq = calloc(1, sizeof(*rq));
	if (!rq) {
		fail(l, STAT_cl_connect_fail, "cannot resolve %s: out of memory", l->url.host);
		return;
	}
	snprintf(rq->host, sizeof(rq->host), "%s", l->url.host);
	snprintf(rq->port, sizeof(rq->port), "%s", port);
	rq->hints = (struct addrinfo){.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	rq->cb = (struct gaicb){.ar_name = rq->host, .ar_service = rq->port, .ar_request = &rq->hints};
	struct gaicb *list[1] = {&rq->cb};
	int g = getaddrinfo_a(GAI_NOWAIT, list, 1, NULL);
	if (g != 0) {
		free(rq);
		fail(l, STAT_cl_connect_fail, "cannot resolve %s: %s", l->url.host, gai_strerror(g));
		return;
	}
	l->rq = rq;
	l->st = L_RESOLVING;
	l->resolve_wait = 1;
	cl_timer(l->loop, now_ms() + l->resolve_wait);
}

static void resolve_poll(struct link *l)
{
	struct resolve *rq = l->rq;
	int g = gai_error(&rq->cb);
	if (g == EAI_INPROGRESS) {
		l->resolve_wait = l->resolve_wait * 2 < RESOLVE_POLL_MAX_MS ? l->resolve_wait * 2 : RESOLVE_POLL_MAX_MS;
		cl_timer(l->loop, now_ms() + l->resolve_wait);
		return;
	}
	l->rq = NULL;
	struct addrinfo *ai = g == 0 ? rq->cb.ar_result : NULL;
	free(rq);
	if (!ai) {
		fail(l, STAT_cl_connect_fail, "cannot resolve %s: %s", l->url.host, g ? gai_strerror(g) : "no address");
		return;
	}
	connect_to(l, ai);
	freeaddrinfo(ai);
}

static void attempt(struct link *l)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV | AI_NUMERICHOST}, *ai = NULL;
	char port[8];
	snprintf(port, sizeof(port), "%d", l->url.port);
	/* An address needs no resolver (AI_NUMERICHOST never waits). */
	if (getaddrinfo(l->url.host, port, &hints, &ai) != 0) {
		resolve_start(l, port);
		return;
	}
	connect_to(l, ai);
	freeaddrinfo(ai);
}

void link_start(struct link *l)
{
	log_info("cluster: joining %s", l->what);
	/* The first attempt on the loop's thread too, from the timer. */
	l->st = L_BACKOFF;
	cl_timer(l->loop, now_ms());
}

/* Both ready: the link is up. */
static void check_up(struct link *l)
{
	for (int i = 0; i < LINK_CONNS; i++)
		if (l->c[i].st != CS_READY)
			return;
	l->st = L_UP;
	l->up_since = now_ms();
	cl_timer(l->loop, now_ms() + LINK_TICK_MS);
	link_burst(l, true);
	l->h.up(l->h.arg);
	link_burst(l, false);
}

/* The transport is ready: say hello (AUTH if we have a password, then PING);
 * the connection is ready when the replies are +OK and +PONG. */
static int hello(struct link *l, int i)
{
	struct rconn *c = &l->c[i];
	char *cmd = NULL;
	int n;
	c->auth = l->url.pass[0] != '\0';
	c->hello = c->auth ? 2 : 1;
	c->st = CS_HELLO;
	if (c->auth) {
		const char *argv[3] = {"AUTH", l->url.user, l->url.pass};
		size_t lens[3] = {4, strlen(l->url.user), strlen(l->url.pass)};
		n = l->url.user[0] ? redisFormatCommandArgv(&cmd, 3, argv, lens)
		                   : redisFormatCommandArgv(&cmd, 2, (const char *[]){"AUTH", l->url.pass},
		                                            (size_t[]){4, lens[2]});
		int rc = n < 0 ? -ENOMEM : outbox_append(&c->out, cmd, (size_t)n);
		if (cmd) {
			if (n > 0)
				memset(cmd, 0, (size_t)n); /* the password */
			redisFreeCommand(cmd);
		}
		if (rc < 0)
			return -ENOMEM;
	}
	static const char ping[] = "*1\r\n$4\r\nPING\r\n";
	if (outbox_append(&c->out, ping, sizeof(ping) - 1) < 0)
		return -ENOMEM;
	return flush(l, i);
}

/* A reply during hello. 0, or <0 after failing the link. */
static int hello_reply(struct link *l, int i, const redisReply *r)
{
	struct rconn *c = &l->c[i];
	bool auth = c->auth && c->hello == 2;
	if (r->type == REDIS_REPLY_ERROR) {
		int len = (int)(r->len > 200 ? 200 : r->len);
		if (auth || strncmp(r->str, "NOAUTH", 6) == 0)
			fail(l, STAT_cl_connect_fail_auth, "%s connection: %s: %.*s", conn_name[i],
			     auth ? "the engine refused the credentials" : "the engine wants a password", len, r->str);
		else
			fail(l, STAT_cl_connect_fail, "%s connection: the engine refused: %.*s", conn_name[i], len, r->str);
		return -EPROTO;
	}
	const char *want = auth ? "OK" : "PONG";
	if (r->type != REDIS_REPLY_STATUS || r->len != strlen(want) || memcmp(r->str, want, r->len) != 0) {
		fail(l, STAT_cl_connect_fail, "%s connection: the engine answered %s with something else", conn_name[i],
		     auth ? "AUTH" : "PING");
		return -EPROTO;
	}
	if (--c->hello == 0) {
		c->st = CS_READY;
		check_up(l);
	}
	return 0;
}

/* A connection's TCP connect finished. 0 or -errno. */
static int connected(struct link *l, int i)
{
	struct rconn *c = &l->c[i];
	int err = 0;
	socklen_t len = sizeof(err);
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err)
		return -err;
	if (!l->tls)
		return hello(l, i);
	c->tls = tls_conn_new_client(l->tls, l->url.host);
	if (!c->tls || tls_conn_start(c->tls) < 0)
		return -EPROTO;
	c->st = CS_HANDSHAKE;
	return flush(l, i);
}

static void readable(struct link *l, int i);

void link_timer(struct link *l)
{
	if (l->st == L_BACKOFF)
		attempt(l);
	else if (l->st == L_RESOLVING)
		resolve_poll(l);
	else if (l->st == L_CONNECTING)
		fail(l, l->tls ? STAT_cl_connect_fail_tls : STAT_cl_connect_fail, "no answer within %.1f s",
		     l->lim.connect_timeout_ms / 1000.0);
	else if (!over_bound(l)) {
		/* An engine that stopped answering (stopped, a connection a middlebox
		 * forgot) reads as up for ever: PING each connection every tick; a
		 * connection that has not answered it and from which nothing at all
		 * was read for the connect timeout is a loss. Under a flood the PONG
		 * waits behind the engine's backlog for us (and the PING behind ours),
		 * so bytes read meanwhile give it longer: PONG_SLACK connect timeouts
		 * (at least PONG_SLACK_MIN_MS).
		 * Not for ever: pushes prove the engine writes, not that it reads (an
		 * engine that never reads the connection and keeps pushing on it);
		 * only the PONG proves that. A PING that cannot be queued (no memory)
		 * is owed: the connection is watched all the same and the PING tried
		 * each tick. */
		static const char ping[] = "*1\r\n$4\r\nPING\r\n";
		long long now = now_ms(), late = (long long)PONG_SLACK * l->lim.connect_timeout_ms;
		if (late < PONG_SLACK_MIN_MS)
			late = PONG_SLACK_MIN_MS;
		for (int i = 0; i < LINK_CONNS; i++) {
			struct rconn *c = &l->c[i];
			long long quiet = now - (c->rx_ms > c->ping_at ? c->rx_ms : c->ping_at);
			bool unanswered = c->ping_at && !c->ping_owed && now - c->ping_at >= late;
			if (c->ping_at && (quiet >= l->lim.connect_timeout_ms || unanswered)) {
				/* What the engine sent may be waiting unread (a loop busy
				 * with clients): read it before judging. */
				unsigned epoch = l->epoch;
				readable(l, i);
				if (l->epoch != epoch)
					return; /* dropped (and counted) by the read */
				quiet = now_ms() - (c->rx_ms > c->ping_at ? c->rx_ms : c->ping_at);
			}
			if (c->ping_at && quiet >= l->lim.connect_timeout_ms) {
				fail(l, STAT_cl_link_lost, "%s connection: no answer to PING within %.1f s", conn_name[i],
				     l->lim.connect_timeout_ms / 1000.0);
				return;
			}
			if (c->ping_at && !c->ping_owed && now_ms() - c->ping_at >= late) {
				fail(l, STAT_cl_link_unread,
				     "%s connection: PING unanswered for %.1f s while the engine sends (it does not read us)",
				     conn_name[i], late / 1000.0);
				return;
			}
			if (!c->ping_at || c->ping_owed) {
				bool queued = link_send(l, (enum link_conn)i, ping, sizeof(ping) - 1) == 0;
				if (!c->ping_at || queued)
					c->ping_at = now;
				c->ping_owed = !queued;
			}
		}
		cl_timer(l->loop, now + LINK_TICK_MS);
		l->h.tick(l->h.arg);
	}
}

/* ---- reading ---- */

/* +PONG, or a subscribed connection's ["pong", ""]. */
static bool is_pong(const redisReply *r)
{
	if (r->type == REDIS_REPLY_STATUS)
		return r->len == 4 && memcmp(r->str, "PONG", 4) == 0;
	return r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[0]->type == REDIS_REPLY_STRING &&
	       r->element[0]->len == 4 && memcmp(r->element[0]->str, "pong", 4) == 0;
}

/* Hand out every reply complete in the reader. 0, or -EPROTO: the link was
 * dropped. */
static int replies(struct link *l, int i, unsigned epoch)
{
	struct rconn *c = &l->c[i];
	for (;;) {
		void *reply = NULL;
		if (redisReaderGetReply(c->rd, &reply) != REDIS_OK) {
			stat_inc(STAT_cl_protocol);
			fail(l, l->st == L_UP ? STAT_cl_link_lost : STAT_cl_connect_fail, "%s connection: protocol error: %s",
			     conn_name[i], c->rd->errstr);
			return -EPROTO;
		}
		if (!reply)
			break;
		int rc;
		if (l->st == L_UP && is_pong(reply)) {
			if (!c->ping_owed)
				c->ping_at = 0; /* the keepalive's answer: the engine read it */
			freeReplyObject(reply); /* not the handler's */
			continue;
		}
		if (c->st == CS_HELLO) {
			rc = hello_reply(l, i, reply);
		} else if (l->st != L_UP) {
			fail(l, STAT_cl_connect_fail, "%s connection: the engine spoke before we asked", conn_name[i]);
			rc = -EPROTO;
		} else if ((rc = l->h.reply(l->h.arg, (enum link_conn)i, reply)) < 0) {
			fail(l, STAT_cl_link_lost, "%s connection: unexpected reply from the engine", conn_name[i]);
		}
		freeReplyObject(reply);
		if (rc < 0 || l->epoch != epoch)
			return -EPROTO; /* the link was dropped */
	}
	return 0;
}

/* A reply read without hiredis (below) to the handler, on a link that is up.
 * 0, or -EPROTO: the link was dropped. */
static int direct_reply(struct link *l, int i, redisReply *r, unsigned epoch)
{
	if (l->h.reply(l->h.arg, (enum link_conn)i, r) < 0) {
		fail(l, STAT_cl_link_lost, "%s connection: unexpected reply from the engine", conn_name[i]);
		return -EPROTO;
	}
	return l->epoch != epoch ? -EPROTO : 0;
}

/* The replies that are nearly all the link carries: an engine push read by
 * rscan_flat (message, pmessage, smessage), or a PUBLISH's count read by
 * rscan_int, handed to the handler as hiredis would have built it, without
 * hiredis: its reader allocated and freed an object per element and copied
 * every byte, a third of the link's user time per message. The strings point
 * into the input and end at their length (no NUL), valid during the call
 * only. The bytes it took (0: none, the slow path reads on), or -EPROTO. */
static long fast_reply(struct link *l, int i, const char *p, size_t n, unsigned epoch)
{
	struct rscan_str el[RSCAN_FLAT_MAX];
	size_t k = 0;
	int ne = rscan_flat(&l->c[i].scan, p, n, el, &k);
	if (ne > 0) {
		redisReply e[RSCAN_FLAT_MAX], *v[RSCAN_FLAT_MAX];
		for (int j = 0; j < ne; j++) {
			e[j] = (redisReply){.type = REDIS_REPLY_STRING, .len = el[j].n, .str = (char *)el[j].p};
			v[j] = &e[j];
		}
		redisReply top = {.type = REDIS_REPLY_ARRAY, .elements = (size_t)ne, .element = v};
		return direct_reply(l, i, &top, epoch) < 0 ? -EPROTO : (long)k;
	}
	long long x;
	if ((k = rscan_int(&l->c[i].scan, p, n, &x)) > 0) {
		redisReply r = {.type = REDIS_REPLY_INTEGER, .integer = x};
		return direct_reply(l, i, &r, epoch) < 0 ? -EPROTO : (long)k;
	}
	return 0;
}

/* hiredis holds nothing: no bytes unparsed, no reply begun. Its last
 * redisReaderGetReply that found no reply (each replies() ends with one)
 * leaves it at ridx 0 with an empty first task, not at -1: ridx == -1 alone
 * held only until the hello's first reply, and kept the path below off. */
static bool reader_idle(const redisReader *rd)
{
	return rd->pos == rd->len && (rd->ridx == -1 || (rd->ridx == 0 && rd->rstack[0].type < 0));
}

/* Feed plaintext to the reader and hand out every complete reply: an engine
 * push or a count whole in [p, p+n) straight from the bytes (fast_reply), anything else
 * one reply at a time through the scanner's bounds and hiredis. */
static int parse(struct link *l, int i, const char *p, size_t n)
{
	struct rconn *c = &l->c[i];
	const char *why;
	unsigned epoch = l->epoch;
	while (n) {
		size_t k;
		long got;
		if (l->st == L_UP && c->st == CS_READY && rscan_at_start(&c->scan) && reader_idle(c->rd) &&
		    (got = fast_reply(l, i, p, n, epoch)) != 0) {
			if (got < 0)
				return -EPROTO;
			p += got;
			n -= (size_t)got;
			continue;
		}
		if (rscan_feed_one(&c->scan, p, n, &k, &why) < 0) {
			stat_inc(STAT_cl_protocol);
			fail(l, l->st == L_UP ? STAT_cl_link_lost : STAT_cl_connect_fail, "%s connection: protocol error: %s",
			     conn_name[i], why);
			return -EPROTO;
		}
		if (redisReaderFeed(c->rd, p, k) != REDIS_OK)
			return -ENOMEM;
		p += k;
		n -= k;
		int rc = replies(l, i, epoch);
		if (rc < 0)
			return rc;
	}
	if (c->rd->len - c->rd->pos > l->lim.max_reply) {
		stat_inc(STAT_cl_protocol);
		fail(l, STAT_cl_link_lost, "%s connection: a reply larger than %zu bytes", conn_name[i], l->lim.max_reply);
		return -EPROTO;
	}
	return 0;
}

/* Bytes arrived on connection i: through TLS if any, then to the reader once
 * the link is up (before that, only the handshake can be talking). */
static int input(struct link *l, int i, const char *p, size_t n)
{
	struct rconn *c = &l->c[i];
	if (c->tls) {
		bool was_handshaking = tls_conn_handshaking(c->tls);
		if (tls_conn_input(c->tls, p, n, &c->plain) < 0) {
			const char *v = tls_conn_verify_error(c->tls);
			if (was_handshaking) {
				fail(l, STAT_cl_connect_fail_tls, "TLS handshake failed%s%s", v ? ": certificate refused: " : "",
				     v ? v : " (see the tls: line above)");
			} else {
				fail(l, l->st == L_UP ? STAT_cl_link_lost : STAT_cl_connect_fail_tls, "TLS error");
			}
			return -EPROTO;
		}
		int rc = flush(l, i);
		if (rc == 0 && was_handshaking && !tls_conn_handshaking(c->tls))
			rc = hello(l, i);
		if (rc < 0) {
			fail(l, l->st == L_UP ? STAT_cl_link_lost : STAT_cl_connect_fail, "%s connection: write: %s",
			     conn_name[i], strerror(-rc));
			return -EPROTO;
		}
		if (c->st < CS_HELLO || buf_used(&c->plain) == 0)
			return 0;
		rc = parse(l, i, buf_head(&c->plain), buf_used(&c->plain));
		if (rc == 0)
			buf_consume(&c->plain, buf_used(&c->plain));
		return rc;
	}
	return parse(l, i, p, n);
}

/* The work a read pass left for the loop reached its bound. */
static bool sated(const struct link *l, unsigned long work0)
{
	return l->h.work && l->lim.pass_work && l->h.work(l->h.arg) - work0 >= l->lim.pass_work;
}

static void readable(struct link *l, int i)
{
	unsigned long work0 = l->h.work ? l->h.work(l->h.arg) : 0;
	for (int k = 0; k < READS_PER_EVENT && l->c[i].fd >= 0; k++) {
		ssize_t r = read(l->c[i].fd, l->chunk, sizeof(l->chunk));
		if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
			l->c[i].behind = false;
			return;
		}
		if (r <= 0) {
			fail(l, l->st == L_UP ? STAT_cl_link_lost : STAT_cl_connect_fail, "%s connection: %s", conn_name[i],
			     r == 0 ? "closed by the engine" : strerror(errno));
			return;
		}
		l->c[i].rx_ms = now_ms();
		if (input(l, i, l->chunk, (size_t)r) < 0)
			return;
		/* What this pass delivered waits in the loop's output until its
		 * write pass, which runs only after the wake. Reading on to
		 * EAGAIN first (a fan-out of 100 took in ~2,300 messages a turn:
		 * ~23 MB of output copied before any of it was written, far past
		 * the caches) cost more per delivery than a local publisher's
		 * one 64 KiB read a turn: stop here, bytes left (behind), and
		 * let the loop write (bench/RESULTS.md, cluster-1x100).
		 * No wake asked: the socket is still readable, so the loop's next
		 * turn reports it (a poll, one-shot or level-triggered, sees the
		 * bytes left), after the write pass; any wake meanwhile reads on. */
		if (sated(l, work0)) {
			l->c[i].more = true;
			l->c[i].behind = true;
			return;
		}
	}
	/* Bytes may be left. A host loop's next readiness report can be many
	 * turns away (uring: the poll completion queues behind a flood's
	 * receives), while the engine's copies of this node's own publishes keep
	 * coming: at one budget per report the engine's output buffer for us
	 * grew past its limit and it dropped the link. Read on at the wake, which
	 * the loop runs before it sleeps, every turn. */
	if (l->c[i].fd >= 0) {
		l->c[i].more = true;
		l->c[i].behind = true;
		cl_wake(l->loop);
	}
}

void link_read_more(struct link *l, bool up)
{
	if (over_bound(l))
		return;
	for (int i = 0; i < LINK_CONNS; i++) {
		if (l->c[i].more || (up && l->st == L_UP)) {
			l->c[i].more = false;
			if (l->c[i].fd >= 0 && l->c[i].st != CS_CONNECTING)
				readable(l, i);
		}
	}
}

void link_io(struct link *l, int i, bool rd, bool wr)
{
	struct rconn *c = &l->c[i];
	if (c->fd < 0)
		return;
	if (c->st == CS_CONNECTING) {
		if (!wr && !rd)
			return;
		int rc = connected(l, i);
		if (rc < 0)
			fail(l, rc == -EPROTO ? STAT_cl_connect_fail_tls : STAT_cl_connect_fail, "connect: %s",
			     rc == -EPROTO ? "TLS setup failed" : strerror(-rc));
		return;
	}
	if (wr) {
		int rc = flush(l, i);
		if (rc < 0) {
			fail(l, l->st == L_UP ? STAT_cl_link_lost : STAT_cl_connect_fail, "%s connection: write: %s",
			     conn_name[i], strerror(-rc));
			return;
		}
	}
	if (rd && c->fd >= 0)
		readable(l, i);
}
