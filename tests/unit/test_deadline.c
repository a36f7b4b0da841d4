/* test_deadline.c - the runtime's one deadline policy (common/loop/deadline.c)
 * as a table: a session in a given state, last active at LAST, asked
 * deadline_due() and then, at a given time, deadline_expire(); each row says
 * when it is due, whether it must close now, and what the expiry left behind
 * (closing, its close reason, lingering, held).
 *
 * Real sessions (session_new, echo mode), no socket: the state a row needs
 * is set on the session the way the session layer sets it (stopping, held,
 * head clock, queued output from real input). */
#include <stdlib.h>
#include <sys/uio.h>
#include <string.h>

#include "check.h"
#include "config.h"
#include "deadline.h"
#include "owner.h"
#include "server.h"
#include "session.h"

static struct config cfg;
static struct server srv;
static struct owner own;

static void wake(struct owner *o) { (void)o; }

#define LAST 100000LL /* the row's last traffic (now_ms() scale) */
#define IDLE 1000     /* --idle-timeout, ms */
#define DRAIN 5000    /* --drain-timeout, ms */
#define HEAD 500      /* --header-timeout, ms */

enum { PENDING = 1, STOPPING = 2, HELD = 4, LINGERING = 8, SLOW = 16, HEAD_CLOCK = 32, LINGER_REPLY = 64,
       NO_IDLE = 128, CLOSING = 256 };

struct row {
	const char *what;
	int state;
	long long drain_end; /* 0: not stopping */
	long long due;       /* deadline_due(); 0 = never */
	long long at;        /* when deadline_expire is asked */
	bool waited_out;     /* the caller's timer fired (DEADLINE_WAITED_OUT) */
	bool close;          /* deadline_expire's answer */
	bool closing;        /* s->closing after it */
	int why;             /* s->close_why after it (-1: not checked) */
	bool lingering;      /* s->lingering after it */
	bool held;           /* s->held after it */
};

static const struct row rows[] = {
	{"idle: due at last + idle, not before", 0, 0, LAST + IDLE, LAST + IDLE - 1, false, false, false, CLOSE_UNSET, false, false},
	{"idle, nothing queued: closes once its bye is out", 0, 0, LAST + IDLE, LAST + IDLE, false, false, true, CLOSE_IDLE, false, false},
	{"idle with output stuck: closes now", PENDING, 0, LAST + IDLE, LAST + IDLE + 5, false, true, true, CLOSE_IDLE, false, false},
	{"already closing, idle: still bounded, closes now", CLOSING, 0, LAST + IDLE, LAST + IDLE, false, true, true, -1, false, false},
	{"a model's timer fired early: WAITED_OUT is idle", 0, 0, LAST + IDLE, LAST + 10, true, false, true, CLOSE_IDLE, false, false},
	{"no --idle-timeout: never due", NO_IDLE, 0, 0, LAST + 1000000, false, false, false, CLOSE_UNSET, false, false},
	{"request head clock: the sooner deadline", HEAD_CLOCK, 0, LAST + 200 + HEAD, LAST + 200 + HEAD - 1, false, false, false, CLOSE_UNSET, false, false},
	{"a queued reply's linger deadline: closes at it", LINGER_REPLY, 0, LAST + 300, LAST + 300, false, true, true, CLOSE_TIMEOUT, false, false},
	{"held publisher: retried, not idle", HELD, 0, LAST + SESSION_HOLD_RETRY_MS, LAST + SESSION_HOLD_RETRY_MS, false, false, false, CLOSE_UNSET, false, false},
	{"dropped slow consumer: gets its linger", SLOW | PENDING, 0, LAST + SESSION_SLOW_LINGER_MS, LAST + SESSION_SLOW_LINGER_MS, false, true, true, -1, false, false},
	{"drain, quiet: lingers, not closed", STOPPING, LAST + DRAIN, LAST + SESSION_DRAIN_QUIET_MS, LAST + SESSION_DRAIN_QUIET_MS, false, false, false, CLOSE_UNSET, true, false},
	{"drain, quiet, not yet", STOPPING, LAST + DRAIN, LAST + SESSION_DRAIN_QUIET_MS, LAST + SESSION_DRAIN_QUIET_MS - 1, false, false, false, CLOSE_UNSET, false, false},
	{"drain with output: due at the drain's end", STOPPING | PENDING, LAST + 3000, LAST + 3000, LAST + 2999, false, false, false, CLOSE_UNSET, false, false},
	{"drain's end passed: cut", STOPPING | PENDING, LAST + 3000, LAST + 3000, LAST + 3000, false, true, true, CLOSE_DRAIN_TIMEOUT, false, false},
	{"lingering in the drain: looked at often", STOPPING | LINGERING, LAST + DRAIN, LAST + SESSION_LINGER_CHECK_MS, LAST + SESSION_LINGER_CHECK_MS, false, false, false, CLOSE_UNSET, true, false},
};

static struct session *make(const struct row *r)
{
	cfg.idle_timeout_ms = (r->state & NO_IDLE) ? 0 : IDLE;
	struct session *s = session_new(&srv, &own, false);
	if (!s)
		abort();
	if (r->state & PENDING) {
		static const char line[] = "hello, are you there?\n";
		session_input(s, line, sizeof(line) - 1); /* echo mode: queued back */
	}
	if (r->state & STOPPING)
		session_stop(s);
	if (r->state & HELD)
		s->held = 1;
	if (r->state & LINGERING)
		s->lingering = 1;
	if (r->state & SLOW)
		s->sub.slow_closed = true;
	if (r->state & HEAD_CLOCK)
		s->head_ms = LAST + 200;
	if (r->state & LINGER_REPLY)
		s->linger_ms = LAST + 300;
	if (r->state & CLOSING)
		session_close_for(s, CLOSE_PEER);
	return s;
}

static void table(void)
{
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *r = &rows[i];
		struct session *s = make(r);
		int bad = 0;
		if ((r->state & PENDING) && !session_pending(s))
			bad |= 1; /* the row's precondition did not hold */
		long long due = deadline_due(s, LAST, r->drain_end);
		if (due != r->due)
			bad |= 2;
		bool close = deadline_expire(s, r->waited_out ? DEADLINE_WAITED_OUT : LAST, r->at, r->drain_end);
		if (close != r->close)
			bad |= 4;
		if (s->closing != r->closing)
			bad |= 8;
		if (r->why >= 0 && (int)s->close_why != r->why)
			bad |= 16;
		if (s->lingering != r->lingering)
			bad |= 32;
		if (s->held != r->held)
			bad |= 64;
		if (bad)
			fprintf(stderr, "row %zu (%s): mismatch 0x%x (due %lld, close %d, closing %d, why %d, lingering %d, held %d)\n",
			        i, r->what, bad, due, close, s->closing, s->close_why, s->lingering, s->held);
		CHECK(bad == 0);
		session_free(s);
	}
}

/* Flush what s has queued, as a model's sends would. */
static void flush(struct session *s)
{
	struct iovec iov[8];
	int n;
	while ((n = session_iov(s, iov, 8)) > 0)
		for (int i = 0; i < n; i++)
			session_sent(s, iov[i].iov_len);
}

/* The stop reaching a session its peer ended already (EOF, still closing):
 * nothing more is queued (the WebSocket's close frame, chat's BYE). With TLS
 * its close_notify may be out by then (uring: its send in flight), and
 * output queued after it could never be sent: pending for good, it held the
 * drain to --drain-timeout. */
static void stop_after_peer_close(void)
{
	cfg.idle_timeout_ms = IDLE;
	struct session *s = session_new(&srv, &own, false);
	if (!s)
		abort();
	static const char up[] = "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	                         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
	session_input(s, up, sizeof(up) - 1);
	CHECK(session_pending(s) > 0); /* the 101 */
	flush(s);
	CHECK(!s->closing);
	session_eof(s);
	CHECK(s->closing && s->close_why == CLOSE_PEER);
	size_t before = session_pending(s);
	session_stop(s);
	CHECK(session_pending(s) == before);
	CHECK(s->close_why == CLOSE_PEER);
	flush(s);
	CHECK(session_done(s));
	session_free(s);
}

int main(void)
{
	char *argv[] = {"weft", "--model", "test", NULL};
	if (config_parse(&cfg, 3, argv) != 0)
		return 2;
	cfg.drain_timeout_ms = DRAIN;
	cfg.header_timeout_ms = HEAD;
	srv.cfg = &cfg;
	owner_init(&own, wake, NULL);
	table();
	stop_after_peer_close();
	owner_destroy(&own);
	return check_done();
}
