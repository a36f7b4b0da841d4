/* test_loop_hold.c - the loop runtime's held publishers (common/loop/hold.c,
 * loop.h "holds"): which held connections are offered their input again,
 * when, and that one that ended - its id then reused - is never retried as
 * the old one.
 *
 * Real sessions in chat mode on a real exchange, as in test_loop_write.c:
 * the loop's mailbox is bound to this thread (a subscriber on it is near),
 * a second mailbox is not (a subscriber there is on "another thread": far).
 * A publisher's pipelined RESP PUBLISHes of 1,000 B really leave its
 * subscriber more than --publish-hold behind, so its session really is held
 * (session.h, holds). The model is the test's: a connection is a struct
 * loop_conn and its session; its write hook "sends" what a reading
 * connection has (session_sent, and loop_wrote as a model says a send moved)
 * and hands a held one to loop_hold, as uring's and coro's do. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "clock.h"
#include "config.h"
#include "exchange.h"
#include "loop.h"
#include "owner.h"
#include "server.h"
#include "session.h"

struct tconn {
	struct loop_conn lc; /* first, as in a model's connection */
	struct loop_deadline dl; /* the runtime's (loop.h, deadlines), as a model keeps it */
	struct session *s;
	bool reads;          /* its peer reads: the write hook sends everything */
	int written;         /* times its write hook ran */
	int expired;         /* times m->expired was called for it */
	int order;           /* when its write hook last ran (write_seq) */
};

#define NCONN 6
static struct tconn conns[NCONN];

static struct config cfg;
static struct server srv;
static struct loop l;
static struct owner far; /* another thread's mailbox: never bound here */
static int write_seq;     /* write hooks run so far */

static struct loop_conn *t_conn(struct loop *lp, uint32_t id)
{
	(void)lp;
	return id < NCONN && conns[id].s ? &conns[id].lc : NULL;
}

static struct session *t_session(struct loop *lp, struct loop_conn *lc)
{
	(void)lp;
	return ((struct tconn *)lc)->s;
}

static void t_expired(struct loop *lp, struct loop_conn *lc)
{
	(void)lp;
	((struct tconn *)lc)->expired++;
}

static void t_write(struct loop *lp, struct loop_conn *lc)
{
	struct tconn *c = (struct tconn *)lc;
	c->written++;
	c->order = ++write_seq;
	size_t n = session_pending(c->s);
	if (c->reads && n) {
		session_sent(c->s, n);
		loop_wrote(lp, lc, c->s, n);
	}
	if (session_held(c->s))
		loop_hold(lp, lc);
}

static const struct loop_model model = {.name = "test",
                                        .deadline_off = offsetof(struct tconn, dl),
                                        .conn = t_conn,
                                        .session = t_session,
                                        .expired = t_expired,
                                        .write = t_write};

static void wake(struct owner *o) { (void)o; }
static void no_ready(struct subscriber *sub, void *arg) { (void)sub, (void)arg; }

#define SUB "*2\r\n$9\r\nSUBSCRIBE\r\n$4\r\nnews\r\n"
#define SUBFAR "*2\r\n$9\r\nSUBSCRIBE\r\n$3\r\nfar\r\n"

/* A new connection at id i: a session on the loop's mailbox. */
static void open_conn(int i)
{
	conns[i] = (struct tconn){.lc = {.id = (uint32_t)i}};
	conns[i].s = session_new(&srv, &l.owner, false);
	if (!conns[i].s)
		exit(2);
	conns[i].s->sub.loop_data = &conns[i];
	loop_conn_start(&l, &conns[i].lc);
}

/* Connection i ends (as a model's close: off the lists, then freed). */
static void close_conn(int i)
{
	loop_unlist(&l, &conns[i].lc);
	session_free(conns[i].s);
	conns[i].s = NULL;
}

/* n pipelined PUBLISHes of 1,000 B on channel ch, handed over as one read. */
static void publish(int i, const char *ch, int n)
{
	char one[1100];
	char payload[1001];
	memset(payload, 'x', 1000);
	payload[1000] = 0;
	int len = snprintf(one, sizeof(one), "*3\r\n$7\r\nPUBLISH\r\n$%zu\r\n%s\r\n$1000\r\n%s\r\n", strlen(ch), ch, payload);
	char *buf = malloc((size_t)len * (size_t)n);
	if (!buf)
		exit(2);
	for (int k = 0; k < n; k++)
		memcpy(buf + (size_t)k * (size_t)len, one, (size_t)len);
	loop_input(&l, &conns[i].lc, conns[i].s, buf, (size_t)len * (size_t)n);
	free(buf);
}

static void reset_counts(void)
{
	for (int i = 0; i < NCONN; i++)
		conns[i].written = conns[i].expired = 0;
}

/* Wait (bounded: 2 s) until the hold's alarm is due, then run the alarms:
 * the retry by time. Not a timing assertion: the test only waits for it. */
static bool alarm_retry(void)
{
	for (int k = 0; k < 2000 && loop_timeout(&l, 1000) > 0; k++)
		nanosleep(&(struct timespec){0, 1000000}, NULL);
	if (loop_timeout(&l, 1000) > 0)
		return false;
	loop_turn(&l);
	loop_run_due(&l);
	return true;
}

int main(void)
{
	char *argv[] = {"weft", "--model", "test", "--mode", "chat", "--outbox-hard", "64k", "--outbox-soft", "0",
	                "--publish-hold", "8k", NULL};
	if (config_parse(&cfg, 11, argv) != 0)
		return 2;
	srv.cfg = &cfg;
	srv.ex = exchange_new();
	l = (struct loop){.m = &model, .srv = &srv, .wake_fd = -1, .epoch = now_ms()};
	loop_turn(&l);
	owner_init(&l.owner, wake, &l);
	l.owner.limits = server_outbox_limits(&srv);
	owner_init(&far, wake, NULL);
	far.limits = l.owner.limits;
	owner_bind(&l.owner);
	l.posts = owner_posts_here();
	CHECK(loop_conns_reserve(&l, NCONN) == 0 && l.pending_cap >= NCONN && l.held);
	for (int i = 0; i < NCONN; i++)
		open_conn(i);

	/* 0 subscribes to "news" here (near); a session on the other mailbox
	 * subscribes to "far". */
	loop_input(&l, &conns[0].lc, conns[0].s, SUB, strlen(SUB));
	struct session *remote = session_new(&srv, &far, false);
	if (!remote)
		return 2;
	session_input(remote, SUBFAR, strlen(SUBFAR));
	loop_before_sleep(&l);
	CHECK(exchange_subscribers(srv.ex, "news", 4) == 1 && exchange_subscribers(srv.ex, "far", 3) == 1);

	/* Add: 1 publishes 40 KB to 0, which does not read. It is held past
	 * 8 KB with the rest of its input waiting; the write pass hands it to
	 * loop_hold, once however often, and the hold's alarm is armed. */
	publish(1, "news", 100);
	CHECK(session_held(conns[1].s) && !session_held_far(conns[1].s));
	CHECK(!session_want_read(conns[1].s));
	size_t sub_before = session_pending(conns[0].s);
	loop_before_sleep(&l);
	CHECK(loop_held(&conns[1].lc) && l.nheld == 1 && l.held[0] == 1);
	loop_hold(&l, &conns[1].lc);
	CHECK(l.nheld == 1);
	CHECK(loop_timer_armed(&l.hold_retry.t));
	CHECK(session_pending(conns[0].s) > 8000 && session_pending(conns[0].s) < 20000);

	/* No output moved: a turn retries nothing (1 is not written). */
	reset_counts();
	loop_before_sleep(&l);
	CHECK(conns[1].written == 0 && loop_held(&conns[1].lc));

	/* The held publisher's own reply going out is no progress either. */
	conns[1].reads = true;
	loop_pending(&l, &conns[1].lc);
	loop_before_sleep(&l); /* 1 writes its replies (loop_wrote on a held one) */
	reset_counts();
	loop_before_sleep(&l);
	CHECK(conns[1].written == 0 && loop_held(&conns[1].lc) && l.nheld == 1);

	/* Nor is output that cannot be a subscriber catching up: 3's reply to
	 * a PING (far below the hold) going out. Counted, a client pipelining
	 * PINGs on the loop retried 1 at every turn, a message a turn. */
	conns[3].reads = true;
	loop_input(&l, &conns[3].lc, conns[3].s, "*1\r\n$4\r\nPING\r\n", 14);
	loop_before_sleep(&l); /* 3 writes its reply */
	CHECK(conns[3].written == 1 && session_pending(conns[3].s) == 0);
	reset_counts();
	loop_before_sleep(&l);
	CHECK(conns[1].written == 0 && loop_held(&conns[1].lc) && l.nheld == 1);

	/* Retry after progress: 0 starts reading; its write moves output. At
	 * the next turn 1 is retried: offered its input, it publishes more
	 * (0 gets it), its reply is written after 0's delivery, and it is
	 * held again (8 KB more). */
	conns[0].reads = true;
	loop_pending(&l, &conns[0].lc);
	loop_before_sleep(&l); /* 0 sends its 8 KB+: l.wrote */
	CHECK(session_pending(conns[0].s) == 0 && l.nheld == 1);
	reset_counts();
	conns[0].reads = false; /* so the next delivery stays countable */
	loop_before_sleep(&l);
	CHECK(conns[1].written == 1 && conns[0].written == 1);
	CHECK(session_pending(conns[0].s) > 8000); /* the retried input published */
	CHECK(session_held(conns[1].s) && loop_held(&conns[1].lc) && l.nheld == 1);
	CHECK(conns[1].expired == 0);
	(void)sub_before;

	/* Far: 2 publishes to the subscriber on the other mailbox: held for
	 * what another thread must move. A turn with progress (0 reads again)
	 * retries the near one (1) but not 2; the alarm retries both. */
	publish(2, "far", 100);
	CHECK(session_held_far(conns[2].s));
	loop_before_sleep(&l);
	CHECK(loop_held(&conns[2].lc) && l.nheld == 2);
	conns[0].reads = true;
	loop_pending(&l, &conns[0].lc);
	loop_before_sleep(&l); /* l.wrote */
	reset_counts();
	loop_before_sleep(&l);
	CHECK(conns[1].written == 1); /* near: retried */
	CHECK(conns[2].written == 0 && loop_held(&conns[2].lc)); /* far: waits for the time */
	reset_counts();
	owner_drain(&far, no_ready, NULL); /* the other thread takes its mail */
	CHECK(alarm_retry());
	CHECK(!loop_held(&conns[2].lc) && loop_listed(&conns[2].lc) && !loop_held(&conns[1].lc));
	loop_before_sleep(&l);
	CHECK(conns[2].written == 1 && conns[1].written == 1);

	/* Closed, then its id reused: 1 ends while held and leaves the list;
	 * a new connection at id 1 is not retried as the old one (not listed,
	 * not written, its session untouched) when the alarm comes. */
	CHECK(loop_held(&conns[1].lc));
	uint32_t n0 = l.nheld;
	close_conn(1);
	CHECK(l.nheld == n0 - 1);
	for (uint32_t i = 0; i < l.nheld; i++)
		CHECK(l.held[i] != 1);
	open_conn(1);
	CHECK(!loop_held(&conns[1].lc));
	loop_hold(&l, &conns[2].lc); /* keep the alarm armed with someone else on the list */
	reset_counts();
	CHECK(alarm_retry());
	CHECK(!loop_listed(&conns[1].lc) && conns[1].expired == 0);
	loop_before_sleep(&l);
	CHECK(conns[1].written == 0);
	/* ... and when the new one is held itself, it is on the list once. */
	publish(1, "news", 100);
	loop_before_sleep(&l);
	CHECK(loop_held(&conns[1].lc));
	uint32_t ones = 0;
	for (uint32_t i = 0; i < l.nheld; i++)
		ones += l.held[i] == 1;
	CHECK(ones == 1);

	/* The drain's end came while it is held: the retry's policy says close
	 * now, and the model is told (m->expired), then lists it. */
	l.stopping = true;
	l.stop_ms = now_ms() - cfg.drain_timeout_ms - 1;
	reset_counts();
	CHECK(alarm_retry());
	CHECK(conns[1].expired == 1 && loop_listed(&conns[1].lc));
	l.stopping = false;
	loop_before_sleep(&l);

	/* The deadline run, not the retry, offers a held publisher its input
	 * (its deadline is the hold's: SESSION_HOLD_RETRY_MS from its last
	 * activity, looked at LOOP_OVERDUE_MS later). Its input publishes
	 * again: its reply is written after that delivery, as after a retry
	 * (the deliveries are listed only at loop_drain, after the deadline
	 * run listed it). The alarm is kept armed but not due, so that only
	 * the deadline run offers it. */
#define SUBLATE "*2\r\n$9\r\nSUBSCRIBE\r\n$4\r\nlate\r\n"
	loop_input(&l, &conns[4].lc, conns[4].s, SUBLATE, strlen(SUBLATE));
	loop_before_sleep(&l);
	publish(5, "late", 100);
	CHECK(session_held(conns[5].s));
	loop_before_sleep(&l);
	CHECK(loop_held(&conns[5].lc));
	CHECK(loop_alarm_at(&l, &l.hold_retry, now_ms() + 60000) == 0);
	loop_turn(&l);
	loop_conn_deadline(&l, &conns[5].lc, conns[5].s);
	CHECK(loop_timer_armed(&conns[5].dl.timer));
	size_t late_before = session_pending(conns[4].s);
	l.now_at += LOOP_OVERDUE_MS + 50; /* the turn's clock, as loop_turn reads it then */
	l.now += LOOP_OVERDUE_MS + 50;
	loop_run_due(&l);
	CHECK(session_pending(conns[4].s) > late_before); /* offered its input: it published */
	reset_counts();
	loop_before_sleep(&l);
	CHECK(conns[4].written == 1 && conns[5].written == 1);
	CHECK(conns[4].order < conns[5].order); /* the delivery first, then the publisher's reply */

	for (int i = 0; i < NCONN; i++)
		if (conns[i].s)
			close_conn(i);
	CHECK(l.nheld == 0);
	session_free(remote);
	owner_drain(&far, no_ready, NULL);
	loop_drain(&l);
	owner_destroy(&far);
	owner_destroy(&l.owner);
	loop_timers_fini(&l.alarms);
	free(l.pending);
	free(l.held);
	exchange_free(srv.ex);
	return check_done();
}
