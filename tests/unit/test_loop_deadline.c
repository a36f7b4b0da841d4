/* test_loop_deadline.c - the loop runtime's connection deadlines
 * (common/loop/due.c, loop.h "deadlines"): arming a connection's deadline
 * by the policy, the lazy move later, the look-again of a connection an
 * expiry left open, the expiry through m->expired, the cancel when a
 * connection ends and the reuse of its id, the LOOP_TIMER_MAX_MS cap, a
 * connection active at every turn still meeting the drain's end, and the
 * turn's clock across its 49.7-day uint32 wrap.
 *
 * Real sessions (echo mode), no socket. The model is the test's: a
 * connection is a struct loop_conn, its struct loop_deadline (found by
 * m->deadline_off, as coro's task and uring's struct conn keep theirs) and
 * its session. The test drives the turn's clock itself (l.now, l.now_at, as
 * loop_turn sets them), so nothing waits for real time. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "clock.h"
#include "config.h"
#include "loop.h"
#include "owner.h"
#include "server.h"
#include "session.h"

struct tconn {
	struct loop_conn lc; /* first, as in a model's connection */
	struct loop_deadline dl;
	struct session *s;
	int expired; /* times m->expired was called for it */
	int written; /* times its write hook ran */
};

#define NCONN 4
#define IDLE 1000 /* --idle-timeout, ms */
static struct tconn conns[NCONN];

static struct config cfg;
static struct server srv;
static struct loop l;

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
	(void)lp;
	((struct tconn *)lc)->written++;
}

static const struct loop_model model = {.name = "test",
                                        .deadline_off = offsetof(struct tconn, dl),
                                        .conn = t_conn,
                                        .session = t_session,
                                        .expired = t_expired,
                                        .write = t_write};

static void wake(struct owner *o) { (void)o; }

/* The turn's clock at now_ms() time t (what loop_turn would have read). */
static void clock_at(long long t)
{
	l.now_at = t;
	l.now = (uint32_t)(t - l.epoch);
}

/* A turn at t: the deadlines due run; the listed connections are written
 * (their write hooks count it). */
static void turn_at(long long t)
{
	clock_at(t);
	loop_run_due(&l);
	loop_write_pending(&l);
}

static void reset_counts(void)
{
	for (int i = 0; i < NCONN; i++)
		conns[i].expired = conns[i].written = 0;
}

/* A new connection at id i, active now. */
static void open_conn(int i)
{
	conns[i] = (struct tconn){.lc = {.id = (uint32_t)i}};
	conns[i].s = session_new(&srv, &l.owner, false);
	if (!conns[i].s)
		exit(2);
	loop_conn_start(&l, &conns[i].lc);
}

/* Connection i ends (as a model's close: off the lists, then freed). */
static void close_conn(int i)
{
	loop_unlist(&l, &conns[i].lc);
	session_free(conns[i].s);
	conns[i].s = NULL;
}

/* A fresh loop whose clock started at epoch, its turn at now_at. */
static void fresh_loop(long long epoch, long long now_at)
{
	l = (struct loop){.m = &model, .srv = &srv, .wake_fd = -1, .epoch = epoch};
	owner_init(&l.owner, wake, &l);
	l.owner.limits = server_outbox_limits(&srv);
	clock_at(now_at);
	if (loop_conns_reserve(&l, NCONN) < 0 || loop_deadlines_reserve(&l, NCONN) < 0)
		exit(2);
}

static void end_loop(void)
{
	for (int i = 0; i < NCONN; i++)
		if (conns[i].s)
			close_conn(i);
	CHECK(l.deadlines.len == 0); /* every record left the heap with its connection */
	owner_destroy(&l.owner);
	loop_timers_fini(&l.deadlines);
	loop_timers_fini(&l.alarms);
	free(l.pending);
	free(l.held);
}

/* The heap's time of a now_ms() time (as due.c arms it). */
static uint32_t heap_time(long long t) { return (uint32_t)(t - l.epoch); }

static void scheduling(void)
{
	long long t0 = now_ms();
	fresh_loop(t0, t0);
	CHECK(l.pending_cap >= NCONN && l.deadlines.cap >= NCONN); /* reserved */

	/* Arm: a new connection's idle deadline is last activity + IDLE. */
	open_conn(0);
	CHECK(!loop_timer_armed(&conns[0].dl.timer));
	loop_conn_deadline(&l, &conns[0].lc, conns[0].s);
	CHECK(loop_timer_armed(&conns[0].dl.timer) && conns[0].dl.timer.at == heap_time(t0 + IDLE));
	turn_at(t0 + IDLE - 1);
	CHECK(conns[0].written == 0 && conns[0].expired == 0 && !conns[0].s->closing);

	/* Lazy move later: activity at +500 re-arms nothing (the timer stays
	 * at +IDLE); when it fires, nothing is due yet: it is re-armed at the
	 * new time, the connection untouched. */
	clock_at(t0 + 500);
	loop_conn_active(&l, &conns[0].lc);
	loop_conn_deadline(&l, &conns[0].lc, conns[0].s);
	CHECK(conns[0].dl.timer.at == heap_time(t0 + IDLE)); /* not moved: lazily */
	CHECK(loop_conn_last(&l, &conns[0].lc) == t0 + 500);
	turn_at(t0 + IDLE);
	if (conns[0].written || conns[0].s->closing)
		fprintf(stderr, "lazy move: the connection was judged at its old deadline\n");
	CHECK(conns[0].written == 0 && conns[0].expired == 0 && !conns[0].s->closing);
	CHECK(loop_timer_armed(&conns[0].dl.timer) && conns[0].dl.timer.at == heap_time(t0 + 500 + IDLE));

	/* Its time comes: idle, nothing queued, it stays to close politely
	 * (the policy's answer: not now). It is listed (its write hook runs)
	 * and looked at again LOOP_OVERDUE_MS later, not at every turn. */
	reset_counts();
	turn_at(t0 + 500 + IDLE);
	CHECK(conns[0].written == 1 && conns[0].expired == 0 && conns[0].s->closing);
	CHECK(loop_timer_armed(&conns[0].dl.timer) &&
	      conns[0].dl.timer.at == heap_time(t0 + 500 + IDLE + LOOP_OVERDUE_MS));
	reset_counts();
	turn_at(t0 + 500 + IDLE + 1);
	CHECK(conns[0].written == 0); /* not every turn */
	/* Look again: still open and still idle, now it must close: m->expired,
	 * then listed (the write hook closes it), and no deadline any more. */
	turn_at(t0 + 500 + IDLE + LOOP_OVERDUE_MS);
	CHECK(conns[0].expired == 1 && conns[0].written == 1);
	CHECK(!loop_timer_armed(&conns[0].dl.timer));
	close_conn(0);

	/* Cancel on close, and the id reused: 1 is armed and ends; a new
	 * connection at id 1 is not judged by the old one's deadline. */
	clock_at(t0 + 2000);
	open_conn(1);
	loop_conn_deadline(&l, &conns[1].lc, conns[1].s);
	CHECK(loop_timer_armed(&conns[1].dl.timer) && l.deadlines.len == 1);
	close_conn(1);
	CHECK(l.deadlines.len == 0);
	clock_at(t0 + 2500);
	open_conn(1);
	reset_counts();
	turn_at(t0 + 2000 + IDLE); /* the old one's time */
	CHECK(conns[1].written == 0 && conns[1].expired == 0 && !conns[1].s->closing);
	CHECK(loop_conn_last(&l, &conns[1].lc) == t0 + 2500);
	loop_conn_deadline(&l, &conns[1].lc, conns[1].s);
	CHECK(conns[1].dl.timer.at == heap_time(t0 + 2500 + IDLE));
	close_conn(1);

	/* The cap: an idle limit of 20 days is armed LOOP_TIMER_MAX_MS ahead,
	 * and re-armed (not judged) when that comes. */
	cfg.idle_timeout_ms = 20 * 24 * 3600 * 1000;
	clock_at(t0 + 3000);
	open_conn(2);
	loop_conn_deadline(&l, &conns[2].lc, conns[2].s);
	CHECK(conns[2].dl.timer.at == heap_time(t0 + 3000 + LOOP_TIMER_MAX_MS));
	reset_counts();
	turn_at(t0 + 3000 + LOOP_TIMER_MAX_MS);
	CHECK(conns[2].written == 0 && !conns[2].s->closing);
	CHECK(loop_timer_armed(&conns[2].dl.timer) &&
	      conns[2].dl.timer.at == heap_time(t0 + 3000 + cfg.idle_timeout_ms));
	close_conn(2);
	cfg.idle_timeout_ms = IDLE;

	/* Active at every turn (a peer sending without end) during a drain:
	 * the drain's end still cuts it. Its quiet limit never comes; the
	 * drain's end is absolute. */
	long long t1 = t0 + 4000;
	clock_at(t1);
	open_conn(3);
	l.stopping = true;
	l.stop_ms = t1;
	session_stop(conns[3].s);
	reset_counts();
	long long t;
	for (t = t1; t < t1 + cfg.drain_timeout_ms + 1000 && !conns[3].expired; t += 50) {
		clock_at(t);
		loop_conn_active(&l, &conns[3].lc); /* input at every turn */
		loop_conn_deadline(&l, &conns[3].lc, conns[3].s);
		turn_at(t);
	}
	CHECK(conns[3].expired == 1 && t - 50 == t1 + cfg.drain_timeout_ms);
	CHECK(conns[3].s->close_why == CLOSE_DRAIN_TIMEOUT);
	l.stopping = false;
	end_loop();
}

/* The turn's clock wraps (uint32 ms) 49.7 days after the loop started:
 * activity before the wrap keeps its age after it, an idle deadline across
 * the wrap fires when it is due (not at once, not never), and a connection
 * active right after the wrap is not 49.7 days idle. */
static void wrap(void)
{
	long long t0 = now_ms();
	long long epoch = t0 - ((1LL << 32) - 300); /* l.now wraps 300 ms after t0 */
	fresh_loop(epoch, t0);
	CHECK(l.now == (uint32_t)-300);
	open_conn(0);
	loop_conn_deadline(&l, &conns[0].lc, conns[0].s);
	clock_at(t0 + 400);
	CHECK(l.now == 100); /* wrapped */
	CHECK(loop_conn_last(&l, &conns[0].lc) == t0);
	open_conn(1); /* active right after the wrap */
	CHECK(loop_conn_last(&l, &conns[1].lc) == t0 + 400);
	loop_conn_deadline(&l, &conns[1].lc, conns[1].s);
	CHECK(conns[1].dl.timer.at == heap_time(t0 + 400 + IDLE)); /* idle from now, not 49.7 days ago */
	reset_counts();
	turn_at(t0 + IDLE - 1);
	CHECK(conns[0].written == 0 && conns[1].written == 0 && !conns[1].s->closing);
	turn_at(t0 + IDLE);
	CHECK(conns[0].written == 1 && conns[0].s->closing); /* its idle expiry, on time */
	CHECK(conns[1].written == 0 && !conns[1].s->closing);
	/* the heap's order after the wrap: 0's look-again, then 1's idle */
	CHECK(loop_timers_first(&l.deadlines) == &conns[0].dl.timer);
	CHECK(conns[0].dl.timer.at == heap_time(t0 + IDLE + LOOP_OVERDUE_MS));
	CHECK(loop_time_before(conns[0].dl.timer.at, conns[1].dl.timer.at));
	turn_at(t0 + 400 + IDLE);
	CHECK(conns[1].written == 1 && conns[1].s->closing);
	end_loop();
}

int main(void)
{
	char *argv[] = {"weft", "--model", "test", NULL};
	if (config_parse(&cfg, 3, argv) != 0)
		return 2;
	cfg.idle_timeout_ms = IDLE;
	srv.cfg = &cfg;
	scheduling();
	wrap();
	return check_done();
}
