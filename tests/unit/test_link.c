/* test_link.c - the engine link's state machine (cluster/link.c) against a
 * fake host loop (a cl_loop that only records what the link asks: which fds
 * for read / write, when its timer is due, wakes). The test is the loop: it
 * polls the watched fds and calls link_io, and fires the timer by calling
 * link_timer whenever one is armed (no waiting for it). The engine is the
 * test too: a real listening socket on 127.0.0.1 that answers each
 * connection's PING as the scenario says. Rounds are bounded; nothing here
 * asserts a duration. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "check.h"
#include "clock.h"
#include "link.h"
#include "stats.h"
#include "url.h"

/* ---- the fake host loop ---- */

struct fake {
	struct cl_loop base; /* first */
	struct {
		int fd;
		bool rd, wr;
	} s[CL_LOOP_SLOTS];
	long long at;     /* the timer, 0 = none */
	long long set_ms; /* now_ms() when it was set */
	int wakes;
};

static void f_watch(struct cl_loop *l, int slot, int fd, bool rd, bool wr)
{
	struct fake *f = (struct fake *)l;
	f->s[slot].fd = fd;
	f->s[slot].rd = rd;
	f->s[slot].wr = wr;
}
static void f_timer(struct cl_loop *l, long long at)
{
	struct fake *f = (struct fake *)l;
	f->at = at;
	f->set_ms = now_ms();
}
static void f_wake(struct cl_loop *l) { ((struct fake *)l)->wakes++; }
static const struct cl_loop_ops fake_ops = {f_watch, f_timer, f_wake};

static void fake_init(struct fake *f)
{
	memset(f, 0, sizeof(*f));
	f->base.ops = &fake_ops;
	for (int i = 0; i < CL_LOOP_SLOTS; i++)
		f->s[i].fd = -1;
}

static int watched(const struct fake *f)
{
	int n = 0;
	for (int i = 0; i < LINK_CONNS; i++)
		n += f->s[i].fd >= 0;
	return n;
}

/* ---- the handler ---- */

static int ups, downs, fails, replies;
static void on_up(void *arg) { (void)arg, ups++; }
static void on_down(void *arg) { (void)arg, downs++; }
static void on_tick(void *arg) { (void)arg; }
static void on_failed(void *arg) { (void)arg, fails++; }
static int on_reply(void *arg, enum link_conn c, struct redisReply *r) { (void)arg, (void)c, (void)r, replies++; return 0; }

/* The engine's pushes the handler saw on the subscriber connection: each
 * "message" whose channel and payload are as sent, and how many of them came
 * straight from the bytes read (the byte after a string is the wire's CR;
 * hiredis ends its copy with a NUL). */
static int pushes, pushes_direct, pushes_bad;
static int on_push(void *arg, enum link_conn c, struct redisReply *r)
{
	(void)arg;
	replies++;
	if (c != LINK_SUB || r->type != REDIS_REPLY_ARRAY || r->elements != 3)
		return 0;
	redisReply **e = r->element;
	if (e[0]->type != REDIS_REPLY_STRING || e[0]->len != 7 || memcmp(e[0]->str, "message", 7) != 0)
		return 0; /* an acknowledgement */
	bool ok = e[1]->type == REDIS_REPLY_STRING && e[1]->len == 3 && memcmp(e[1]->str, "w:a", 3) == 0 &&
	          e[2]->type == REDIS_REPLY_STRING && e[2]->len == 5 && memcmp(e[2]->str, "hello", 5) == 0;
	pushes++;
	pushes_bad += !ok;
	pushes_direct += ok && e[2]->str[e[2]->len] == '\r';
	return 0;
}

/* ---- the engine ---- */

enum answer { PONG, REFUSE, SILENT, DRIBBLE };

struct engine {
	int lfd, port;
	int c[8];
	int nc;
	enum answer answer;
};

static void engine_open(struct engine *e)
{
	memset(e, 0, sizeof(*e));
	e->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	CHECK(bind(e->lfd, (struct sockaddr *)&a, sizeof(a)) == 0);
	CHECK(listen(e->lfd, 16) == 0);
	CHECK(getsockname(e->lfd, (struct sockaddr *)&a, &len) == 0);
	e->port = ntohs(a.sin_port);
}

static void engine_drop(struct engine *e)
{
	for (int i = 0; i < e->nc; i++)
		close(e->c[i]);
	e->nc = 0;
}

static void engine_close(struct engine *e)
{
	engine_drop(e);
	if (e->lfd >= 0)
		close(e->lfd);
	e->lfd = -1;
}

/* Accept what is waiting; answer each PING that arrived. */
static void engine_serve(struct engine *e)
{
	int fd;
	while (e->lfd >= 0 && e->nc < 8 && (fd = accept4(e->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
		e->c[e->nc++] = fd;
	for (int i = 0; i < e->nc; i++) {
		char b[256];
		ssize_t r = read(e->c[i], b, sizeof(b));
		if (r <= 0)
			continue;
		if (e->answer == DRIBBLE) /* a reply still coming, no PONG yet */
			continue;
		const char *ans = e->answer == PONG ? "+PONG\r\n" : e->answer == REFUSE ? "-ERR max number of clients reached\r\n" : "";
		for (const char *p = b; (p = memmem(p, (size_t)(b + r - p), "PING", 4)); p += 4)
			if (*ans && write(e->c[i], ans, strlen(ans)) < 0)
				CHECK(!"engine write");
	}
}

/* ---- the loop ---- */

/* One turn: poll the watched fds (10 ms at most), hand what is ready to the
 * link, serve the engine. */
static void turn(struct fake *f, struct link *l, struct engine *e)
{
	struct pollfd p[LINK_CONNS];
	int map[LINK_CONNS], n = 0;
	for (int i = 0; i < LINK_CONNS; i++) {
		if (f->s[i].fd < 0 || !(f->s[i].rd || f->s[i].wr))
			continue;
		p[n] = (struct pollfd){f->s[i].fd, (short)((f->s[i].rd ? POLLIN : 0) | (f->s[i].wr ? POLLOUT : 0)), 0};
		map[n++] = i;
	}
	if (poll(p, (nfds_t)n, 10) > 0) {
		for (int k = 0; k < n; k++) {
			short re = p[k].revents;
			if (!re || f->s[map[k]].fd != p[k].fd)
				continue;
			bool err = re & (POLLERR | POLLHUP);
			link_io(l, map[k], err || (re & POLLIN), err || (re & POLLOUT));
		}
	}
	engine_serve(e);
}

/* Fire the timer now (the fake loop is the clock). */
static bool fire(struct fake *f, struct link *l)
{
	if (!f->at)
		return false;
	f->at = 0;
	link_timer(l);
	return true;
}

/* Turns until cond, at most 500 (about 5 s when nothing happens). */
#define RUN_UNTIL(f, l, e, cond)                                                                   \
	do {                                                                                       \
		for (int round_ = 0; round_ < 500 && !(cond); round_++)                            \
			turn(f, l, e);                                                             \
	} while (0)

static size_t max_out = 1 << 20; /* the links' bound of queued bytes per connection */

/* A link to url_text with the test's handler: replies to reply (on_reply
 * counts them, on_push checks pushes), a read pass bounded by pass_work of
 * work (0: no bound). */
static struct link *new_link_with(struct fake *f, const char *url_text, int timeout_ms,
                                  int (*reply)(void *, enum link_conn, struct redisReply *),
                                  unsigned long (*work)(void *), unsigned long pass_work)
{
	struct cluster_url u;
	const char *why = NULL;
	CHECK(cluster_url_parse(url_text, &u, &why) == 0);
	struct link_handler h = {.up = on_up, .down = on_down, .tick = on_tick, .reply = reply, .failed = on_failed, .work = work};
	struct link_limits lim = {.max_reply = 1 << 20, .max_bulk = 1 << 20, .backoff_max_ms = 5000, .connect_timeout_ms = timeout_ms,
	                          .max_out = {max_out, max_out}, .pass_work = pass_work};
	return link_new(&u, NULL, &f->base, &h, &lim);
}

static struct link *new_link_timeout(struct fake *f, const char *url_text, int timeout_ms)
{
	return new_link_with(f, url_text, timeout_ms, on_reply, NULL, 0);
}

static struct link *new_link(struct fake *f, const char *url_text) { return new_link_timeout(f, url_text, 2000); }

static void reset_counts(void) { ups = downs = fails = replies = pushes = pushes_direct = pushes_bad = 0; }

/* A fresh fake loop and engine, and the engine's URL in url. */
static void open_engine(struct fake *f, struct engine *e, char *url, size_t un)
{
	fake_init(f);
	engine_open(e);
	reset_counts();
	snprintf(url, un, "redis://127.0.0.1:%d", e->port);
}

/* Start l and run the loop until it is up. */
static void bring_up(struct fake *f, struct link *l, struct engine *e)
{
	link_start(l);
	CHECK(fire(f, l));
	RUN_UNTIL(f, l, e, link_is_up(l));
	CHECK(link_is_up(l));
}

/* The engine's end of the link's subscriber connection. */
static int engine_sub(const struct fake *f, const struct engine *e)
{
	struct sockaddr_in a, b;
	socklen_t la = sizeof(a), lb = sizeof(b);
	CHECK(getsockname(f->s[LINK_SUB].fd, (struct sockaddr *)&a, &la) == 0);
	for (int i = 0; i < e->nc; i++)
		if (getpeername(e->c[i], (struct sockaddr *)&b, &lb) == 0 && a.sin_port == b.sin_port)
			return e->c[i];
	CHECK(!"the subscriber connection at the engine");
	return -1;
}

static void put(int fd, const char *p, size_t n) { CHECK(write(fd, p, n) == (ssize_t)n); }

/* Pushes on a link that is up: read straight from the bytes after the hello
 * (whose +PONG went through hiredis) and after a reply hiredis read (a
 * subscribe acknowledgement, an integer element), and the same pushes split
 * at every byte across two reads, with a whole one before the cut: each
 * handed out once, intact, the link up all along. */
static void test_pushes(void)
{
	struct fake f;
	struct engine e;
	char url[64];
	open_engine(&f, &e, url, sizeof(url));
	struct link *l = new_link_with(&f, url, 2000, on_push, NULL, 0);
	bring_up(&f, l, &e);
	int fd = engine_sub(&f, &e);
	static const char msg[] = "*3\r\n$7\r\nmessage\r\n$3\r\nw:a\r\n$5\r\nhello\r\n";
	static const char ack[] = "*3\r\n$9\r\nsubscribe\r\n$3\r\nw:a\r\n:1\r\n";
	const size_t mn = sizeof(msg) - 1;
	put(fd, msg, mn);
	RUN_UNTIL(&f, l, &e, pushes == 1);
	CHECK(pushes == 1 && pushes_direct == 1 && pushes_bad == 0);
	put(fd, ack, sizeof(ack) - 1);
	put(fd, msg, mn);
	RUN_UNTIL(&f, l, &e, pushes == 2);
	CHECK(pushes == 2 && pushes_direct == 2 && pushes_bad == 0); /* the ack (an integer in it) went through hiredis */
	for (size_t cut = 1; cut < mn; cut++) {
		char two[2 * sizeof(msg)];
		memcpy(two, msg, mn);
		memcpy(two + mn, msg, mn);
		int want = pushes + 2;
		put(fd, two, mn + cut);
		for (int k = 0; k < 3; k++)
			turn(&f, l, &e);
		put(fd, two + mn + cut, mn - cut);
		RUN_UNTIL(&f, l, &e, pushes == want);
		CHECK(pushes == want && pushes_bad == 0 && link_is_up(l));
	}
	int direct = pushes_direct;
	put(fd, msg, mn); /* after the last split: straight from the bytes again */
	RUN_UNTIL(&f, l, &e, pushes == 2 * (int)mn + 1);
	CHECK(pushes_direct == direct + 1 && pushes_bad == 0 && link_is_up(l) && downs == 0);
	link_free(l);
	engine_close(&e);
}

/* connect -> PING/PONG on both connections -> up; a lost connection -> down
 * and a back-off timer; firing it reconnects. */
static void test_up_down_reconnect(void)
{
	struct fake f;
	struct engine e;
	char url[64];
	open_engine(&f, &e, url, sizeof(url));
	struct link *l = new_link(&f, url);
	link_start(l);
	CHECK(f.at != 0 && watched(&f) == 0); /* the first attempt comes from the timer */
	CHECK(fire(&f, l));
	CHECK(watched(&f) == 2);
	CHECK(f.s[LINK_SUB].wr && !f.s[LINK_SUB].rd); /* connecting: writable means connected */
	CHECK(f.at != 0);                              /* the connect deadline */
	RUN_UNTIL(&f, l, &e, link_is_up(l));
	CHECK(link_is_up(l) && ups == 1 && downs == 0 && fails == 0);
	CHECK(e.nc == 2);
	CHECK(f.s[LINK_SUB].rd && f.s[LINK_PUB].rd);
	CHECK(!f.s[LINK_SUB].wr && !f.s[LINK_PUB].wr); /* nothing queued: no write interest */
	long long now = now_ms();
	CHECK(f.at >= now && f.at <= now + LINK_TICK_MS); /* the tick */

	/* A command queued: write interest until it is out. */
	static const char cmd[] = "*2\r\n$9\r\nSUBSCRIBE\r\n$1\r\nx\r\n";
	CHECK(link_send(l, LINK_SUB, cmd, sizeof(cmd) - 1) == 0);
	CHECK(f.s[LINK_SUB].wr);
	RUN_UNTIL(&f, l, &e, !f.s[LINK_SUB].wr);
	CHECK(!f.s[LINK_SUB].wr && link_backlog(l, LINK_SUB) == 0);

	/* The engine drops us: down, both closed, back-off armed. */
	uint64_t lost = stat_sum(STAT_cl_link_lost);
	engine_drop(&e);
	RUN_UNTIL(&f, l, &e, !link_is_up(l));
	CHECK(!link_is_up(l) && downs == 1 && fails == 0);
	CHECK(stat_sum(STAT_cl_link_lost) == lost + 1);
	CHECK(watched(&f) == 0 && f.at != 0);
	CHECK(link_send(l, LINK_PUB, cmd, sizeof(cmd) - 1) == -ENOTCONN);

	/* The timer brings the next attempt, and the link is up again. */
	CHECK(fire(&f, l));
	RUN_UNTIL(&f, l, &e, link_is_up(l));
	CHECK(link_is_up(l) && ups == 2);
	link_free(l);
	CHECK(watched(&f) == 0); /* free stops watching before it closes */
	engine_close(&e);
}

/* An engine that accepts and refuses at once is a failed connect (not up and
 * lost), and the back-off grows with each. */
static void test_refused_is_a_failed_connect(void)
{
	struct fake f;
	struct engine e;
	char url[64];
	fake_init(&f);
	engine_open(&e);
	e.answer = REFUSE;
	reset_counts();
	snprintf(url, sizeof(url), "redis://127.0.0.1:%d", e.port);
	struct link *l = new_link(&f, url);
	link_start(l);
	uint64_t failed = stat_sum(STAT_cl_connect_fail);
	long long delay[3];
	for (int k = 0; k < 3; k++) {
		CHECK(fire(&f, l));
		RUN_UNTIL(&f, l, &e, fails == k + 1);
		CHECK(fails == k + 1 && ups == 0 && downs == 0);
		CHECK(watched(&f) == 0);
		delay[k] = f.at - f.set_ms;
		engine_drop(&e);
	}
	CHECK(stat_sum(STAT_cl_connect_fail) == failed + 3);
	/* 50 << attempt, jittered in its upper half: [25, 50], [50, 100], [100, 200] ms
	 * (the link and the fake read the clock apart: a few ms of slack below) */
	CHECK(delay[0] >= 20 && delay[0] <= 50);
	CHECK(delay[1] >= 45 && delay[1] <= 100);
	CHECK(delay[2] >= 95 && delay[2] <= 200);
	link_free(l);
	engine_close(&e);
}

/* Nobody listening: the connect fails, is counted, and backs off. */
static void test_connect_refused(void)
{
	struct fake f;
	struct engine e;
	char url[64];
	fake_init(&f);
	engine_open(&e);
	snprintf(url, sizeof(url), "redis://127.0.0.1:%d", e.port);
	engine_close(&e); /* the port is free again: nobody listens */
	reset_counts();
	struct link *l = new_link(&f, url);
	link_start(l);
	CHECK(fire(&f, l));
	RUN_UNTIL(&f, l, &e, fails > 0);
	CHECK(fails == 1 && ups == 0 && watched(&f) == 0 && f.at != 0);
	link_free(l);
}

/* A host name: looked up in the background (the timer polls it), then
 * connected like an address. */
static void test_host_name(void)
{
	struct fake f;
	struct engine e;
	char url[64];
	fake_init(&f);
	engine_open(&e);
	reset_counts();
	snprintf(url, sizeof(url), "redis://localhost:%d", e.port);
	struct link *l = new_link(&f, url);
	link_start(l);
	CHECK(fire(&f, l));
	/* Resolving: no socket yet, the timer looks again. */
	int rounds = 0;
	while (watched(&f) == 0 && f.at && fails == 0 && rounds++ < 500) {
		usleep(1000);
		fire(&f, l);
	}
	RUN_UNTIL(&f, l, &e, link_is_up(l) || fails);
	/* localhost may be ::1 first on some hosts, where nobody listens: that is a
	 * failed connect, which proves the lookup finished too. */
	CHECK(link_is_up(l) || fails == 1);
	link_free(l);
	engine_close(&e);
}

/* A stop while a lookup is pending does not wait for it. */
static void test_free_while_resolving(void)
{
	struct fake f;
	fake_init(&f);
	reset_counts();
	struct link *l = new_link(&f, "redis://engine.invalid:6379");
	link_start(l);
	CHECK(fire(&f, l));
	link_free(l); /* cancelled or left to the resolver; never waited for */
	CHECK(watched(&f) == 0);
}

/* Turns until the connect timeout (ms) has passed since start (bounded by
 * RUN_UNTIL's rounds). */
#define RUN_PAST(f, l, e, start, ms) RUN_UNTIL(f, l, e, now_ms() - (start) > (ms))

/* The keepalive: a PING each tick; a connection from which nothing was read
 * for the connect timeout since is lost. Bytes count even when no whole reply
 * came (a large message arriving under a flood, with the PONG behind it), and
 * an answer waiting unread when the tick comes is read before judging. */
static void test_keepalive(void)
{
	struct fake f;
	struct engine e;
	char url[64];
	open_engine(&f, &e, url, sizeof(url));
	struct link *l = new_link_timeout(&f, url, 100);
	bring_up(&f, l, &e);

	/* A reply the engine dribbles byte by byte, never whole: alive. */
	e.answer = DRIBBLE;
	CHECK(fire(&f, l)); /* the tick: PINGs queued */
	for (int i = 0; i < e.nc; i++)
		CHECK(write(e.c[i], "+", 1) == 1);
	long long start = now_ms();
	for (int k = 0; k < 3; k++) {
		RUN_PAST(&f, l, &e, start, 60);
		for (int i = 0; i < e.nc; i++)
			CHECK(write(e.c[i], "y", 1) == 1);
		start = now_ms();
	}
	RUN_PAST(&f, l, &e, start, 20);
	CHECK(fire(&f, l)); /* > the timeout since the PING, < since the last byte */
	CHECK(link_is_up(l) && downs == 0 && replies == 0);

	/* The reply ends and the PONG follows, unread when the tick comes: read,
	 * not lost. */
	for (int i = 0; i < e.nc; i++)
		CHECK(write(e.c[i], "\r\n+PONG\r\n", 9) == 9);
	start = now_ms();
	while (now_ms() - start <= 150) /* no turns: the loop is busy elsewhere */
		usleep(10000);
	CHECK(fire(&f, l));
	CHECK(link_is_up(l) && downs == 0);
	CHECK(replies == 2); /* "+yyy" on each */

	/* Silent: the next PING goes unanswered and nothing comes: lost. */
	e.answer = SILENT;
	uint64_t lost = stat_sum(STAT_cl_link_lost);
	RUN_UNTIL(&f, l, &e, f.s[LINK_SUB].wr == false && f.s[LINK_PUB].wr == false); /* the PINGs out */
	start = now_ms();
	RUN_PAST(&f, l, &e, start, 150);
	CHECK(fire(&f, l));
	CHECK(!link_is_up(l) && downs == 1);
	CHECK(stat_sum(STAT_cl_link_lost) == lost + 1);
	link_free(l);
	engine_close(&e);
}

/* A write that fails (the engine reset the connection) while a send flushes
 * a queue that would pass the bound is a link lost, not an engine that does
 * not read us (reason="unread" is for a queue at its bound): it was counted
 * as unread and logged "more than N bytes queued...". */
static void test_write_error(void)
{
	struct fake f;
	struct engine e;
	char url[64];
	open_engine(&f, &e, url, sizeof(url));
	max_out = 4096;
	struct link *l = new_link(&f, url);
	max_out = 1 << 20;
	link_start(l);
	CHECK(fire(&f, l));
	RUN_UNTIL(&f, l, &e, link_is_up(l));
	CHECK(link_is_up(l) && e.nc == 2);
	/* The engine resets the publisher connection (no turn of the loop sees it). */
	struct sockaddr_in a, b;
	socklen_t la = sizeof(a), lb = sizeof(b);
	CHECK(getsockname(f.s[LINK_PUB].fd, (struct sockaddr *)&a, &la) == 0);
	for (int i = 0; i < e.nc; i++) {
		if (getpeername(e.c[i], (struct sockaddr *)&b, &lb) == 0 && a.sin_port == b.sin_port) {
			struct linger lg = {1, 0};
			CHECK(setsockopt(e.c[i], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) == 0);
			close(e.c[i]);
			e.c[i] = e.c[--e.nc];
			break;
		}
	}
	CHECK(e.nc == 1);
	usleep(20000); /* the reset arrives */
	static char big[8192];
	memset(big, 'x', sizeof(big));
	uint64_t lost = stat_sum(STAT_cl_link_lost), unread = stat_sum(STAT_cl_link_unread);
	CHECK(link_send(l, LINK_PUB, big, 100) == 0); /* queued, not written yet */
	int rc = link_send(l, LINK_PUB, big, sizeof(big)); /* past the bound: the queue is written first, and fails */
	CHECK(rc == -ENOTCONN);
	CHECK(link_drop_stat(rc) == STAT_cl_dropped_down); /* a publish refused now: "down" */
	link_read_more(l, true); /* the wake it asked for */
	CHECK(!link_is_up(l) && downs == 1);
	CHECK(stat_sum(STAT_cl_link_lost) == lost + 1);
	CHECK(stat_sum(STAT_cl_link_unread) == unread);
	/* A queue at its bound with an engine that reads nothing is still unread. */
	CHECK(fire(&f, l));
	RUN_UNTIL(&f, l, &e, link_is_up(l));
	CHECK(link_is_up(l));
	e.answer = SILENT;
	rc = 0;
	for (int k = 0; k < 4096 && rc == 0; k++) /* bounded: the kernel's buffers, then the bound */
		rc = link_send(l, LINK_PUB, big, sizeof(big));
	CHECK(rc == -ENOBUFS);
	CHECK(link_drop_stat(rc) == STAT_cl_dropped_full && link_drop_stat(-ENOMEM) == STAT_cl_dropped_full);
	link_read_more(l, true);
	CHECK(!link_is_up(l) && downs == 2);
	CHECK(stat_sum(STAT_cl_link_unread) == unread + 1 && stat_sum(STAT_cl_link_lost) == lost + 1);
	link_free(l);
	engine_close(&e);
}

/* A read pass stops once the handler's work count grew by pass_work: the
 * deliveries one pass makes wait in the loop's output until its write pass,
 * so the link reads on at the next readiness report, not to EAGAIN first.
 * Three 64 KiB reads' worth of pushes is waiting; one readiness report hands
 * out at least pass_work of them and not all, asks for no wake (the socket
 * still reads as ready), and says the link is behind; the turns after hand
 * out the rest, the link up all along. */
static unsigned long pass_count(void *arg) { (void)arg; return (unsigned long)pushes; }

static void test_pass_bound(void)
{
	struct fake f;
	struct engine e;
	char url[64];
	open_engine(&f, &e, url, sizeof(url));
	struct link *l = new_link_with(&f, url, 2000, on_push, pass_count, 100);
	bring_up(&f, l, &e);
	int fd = engine_sub(&f, &e);
	static const char msg[] = "*3\r\n$7\r\nmessage\r\n$3\r\nw:a\r\n$5\r\nhello\r\n";
	const size_t mn = sizeof(msg) - 1;
	enum { N = 3 * 65536 / (sizeof(msg) - 1) };
	static char all[N * (sizeof(msg) - 1)];
	for (size_t i = 0; i < N; i++)
		memcpy(all + i * mn, msg, mn);
	int big = 1 << 20;
	CHECK(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big)) == 0);
	CHECK(setsockopt(f.s[LINK_SUB].fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big)) == 0);
	put(fd, all, sizeof(all));
	struct pollfd p = {f.s[LINK_SUB].fd, POLLIN, 0};
	CHECK(poll(&p, 1, 2000) == 1);
	int wakes = f.wakes;
	link_io(l, LINK_SUB, true, false);
	CHECK(pushes >= 100 && pushes < N);
	CHECK(f.wakes == wakes && link_behind(l));
	RUN_UNTIL(&f, l, &e, pushes == N);
	CHECK(pushes == N && pushes_bad == 0 && link_is_up(l) && downs == 0);
	link_free(l);
	engine_close(&e);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN); /* as weft does: a write to a reset socket is EPIPE */
	test_write_error();
	test_up_down_reconnect();
	test_refused_is_a_failed_connect();
	test_connect_refused();
	test_host_name();
	test_free_while_resolving();
	test_keepalive();
	test_pushes();
	test_pass_bound();
	return check_done();
}
