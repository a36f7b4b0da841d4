/* loop.h - the event-loop runtime: everything an event model needs that is
 * not its I/O style, written once. coro (generators over a poller) and uring
 * (completions on a ring) are built on it; a new event model is a struct
 * loop_model and its recipe.
 *
 * What the runtime does (and where):
 *   group.c     a group of loop threads (--threads N), one ready barrier:
 *               "ready" is logged once every loop is accepting; any loop
 *               failing stops them all.
 *   listen.c    each loop's listeners: loop 0 serves the ones server_init
 *               bound, every other loop its own SO_REUSEPORT socket;
 *               accepting on them and the EMFILE back-off (a loop alarm
 *               pauses and resumes a listener through m->accept).
 *   mailbox.c   the loop's mailbox (owner.h): an eventfd wake-up from other
 *               threads, the drain, and the before-sleep phase.
 *   write.c     the write order (see "connections and the write order"
 *               below): the pending list and the before-sleep write pass.
 *   hold.c      the held publishers (see "holds" below): the list of the
 *               connections whose input waits for their subscribers, and
 *               when each is offered its input again.
 *   conn.c      admitting an accepted connection (limits, refusal,
 *               session; the model's object through m->open, its OOM
 *               path), the walk over the connections (the stop walk, and
 *               the teardown's: m->halt, then m->release for each one
 *               left), and closing one; liveness (loop_serving).
 *   deadline.c  the one deadline policy (handshake and request deadlines,
 *               idle, drain quietness, the drain's end), also used by the
 *               threads and pool models.
 *   poller*.c   the readiness backends (poller.h: select, poll, epoll):
 *               read and write interest per fd, a wait with a timeout.
 *   timer.c     the timer heap (timer.h) of loop_timer records embedded in
 *               their owners; a loop has two: its alarms and its
 *               connections' deadlines.
 *   due.c       the deadlines (see "deadlines" below): the turn's clock,
 *               each connection's deadline scheduled on the loop's heap by
 *               the policy, the wait bound, and the run of what came due
 *               (expiring connections through m->expired and the write
 *               hook, then the alarms).
 *   attach      a non-session fd on a loop (struct loop_watch): the model
 *               calls fn whenever it is readable and/or writable, as its
 *               mask asks. The runtime's own stop signal and mailbox
 *               wake-up are watches, and on every loop the log
 *               reopen's signal pipe (daemon.h); so are the cluster link's sockets.
 *   alarm.c     one-shot timers of non-session code (struct loop_alarm) on
 *               the loop's alarm heap, bounding the wait and run with the
 *               deadlines (due.c).
 *   guest       non-session code hosted on loop 0 of a group (struct
 *               loop_guest: the cluster link, through cluster/link_host.c):
 *               attached after setup, woken from any thread through the
 *               mailbox's eventfd (from its own thread, before it sleeps,
 *               with no wake-up at all), detached before teardown.
 *   host.c      a loop model with no listeners and no sessions, only
 *               watches and alarms: a one-loop group for models that have
 *               no loop of their own (threads, pool) to host the guest on.
 *
 * What a model does (the hooks of struct loop_model): set up its poller or
 * ring, watch fds (for the mask each watch asks, changed by rewatch at any
 * time), serve while loop_serving(), accept while loop_accepting() -
 * loop_accept_some() when a listener is readable, or hand a completion to
 * loop_accepted() / loop_accept_failed() - and arm or disarm its accept when
 * the runtime's back-off says (m->accept), make its connection in m->open
 * with a struct loop_conn embedded first (the runtime finds it by id, m->conn,
 * for the stop walk, m->stop_conn, and the teardown walk, m->release), hand
 * input over with loop_input(), list a connection with loop_pending() when
 * it may have output, write it in its write hook, hand a connection it finds
 * held to loop_hold() and say when a send made progress (loop_wrote),
 * close one the runtime's retry or deadline found expired (m->expired), keep a
 * struct loop_deadline in its connection (m->deadline_off) and say when the
 * connection was active (loop_conn_active) and when its deadline may have
 * moved (loop_conn_deadline), read the turn's clock after its wait
 * (loop_turn), bound the wait by loop_timeout() and call loop_run_due()
 * after the turn's events, and call loop_before_sleep() once per turn,
 * after all of that turn's input and before it waits (Redis' beforeSleep).
 *
 * Where things are decided (not in a model): a timeout - when it is
 * scheduled and what it does, "deadlines" below (the policy: deadline.h); a write and a publish's order - "connections
 * and the write order" below; when a held publisher is offered its input
 * again - "holds" below; when a listener is retried after EMFILE -
 * "accepting, and the EMFILE back-off" below.
 *
 * A loop belongs to its thread; nothing here is thread-safe except the
 * mailbox's wake-up (owner.h) and loop_guest_wake(). */
#ifndef WEFT_LOOP_H
#define WEFT_LOOP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "deadline.h"
#include "owner.h"
#include "poller.h"
#include "session.h" /* the sessions the holds are about */
#include "timer.h"

struct loop;
struct server;
struct session;

/* A non-session fd attached to a loop. */
struct loop_watch {
	int fd;
	/* fd is ready as mask asked (got says how): false stops watching it. */
	bool (*fn)(struct loop *l, struct loop_watch *w);
	int mask; /* interest: LOOP_POLL_IN and/or LOOP_POLL_OUT (poller.h) */
	int got;  /* when fn is called: what is ready (an error or hang-up: both) */
	/* the model's bookkeeping (zero before the first watch) */
	void *model;  /* coro: the task watching it */
	int reg_fd;   /* the fd the model watches, valid while reg is not 0 */
	int reg;      /* the interest registered (uring: of the outstanding poll) */
	uint8_t gen;  /* uring: the outstanding poll's generation */
};

/* A one-shot timer on a loop (loop_alarm_at). */
struct loop_alarm {
	struct loop_timer t; /* first */
	void (*fn)(struct loop *l, struct loop_alarm *a);
};

/* Code that is not a session, hosted on loop 0 of the next group
 * (loop_guest_set). Every call is on that loop's thread. */
struct loop_guest {
	/* After the loop's setup, before the ready barrier: watch, arm. 0 or
	 * -errno (the group then fails). */
	int (*attach)(struct loop *l, void *arg);
	/* loop_guest_wake() was called (several calls may make one). */
	void (*wake)(struct loop *l, void *arg);
	/* After the loop served, before its teardown: stop every watch and
	 * alarm (rewatch with mask 0, loop_alarm_at 0). */
	void (*detach)(struct loop *l, void *arg);
	void *arg;
};

/* ---- connections and the write order ----
 *
 * Where a write's order is decided: here, not in a model. A model writes a
 * connection only from its write hook, which the runtime calls in
 * loop_before_sleep() for each connection listed this turn (loop_pending,
 * loop_input, and the mailbox for a subscriber that got mail), in this
 * order:
 *
 *   1. connections whose input did not publish this turn (subscribers, and
 *      every connection that only echoes or answers), in listing order;
 *   2. then the connections whose input published (loop_input saw
 *      owner_posts_here() move), in listing order.
 *
 * So a publisher's own reply goes out after the deliveries its publish made
 * on this loop (the order Redis writes its clients in): the publisher sends
 * its next batch only after they left, a larger one, and each subscriber's
 * write carries more messages. With no publisher listed it is one plain
 * pass. The posts made on this loop are handed over (loop_drain) just
 * before the pass, so every subscriber this turn's input published to is
 * listed by then; mail from other loops is listed when their wake-up is
 * read, and written in the pass that follows.
 *
 * The record is 4 bytes, embedded first in the model's connection (h2o's
 * `super`): id is the model's own index for the connection (uring: its
 * slot; coro: its fd), and the pending list holds ids (4 bytes per id the
 * model reserved), so a model's connection grows by nothing for it
 * (uring's struct conn: lc.id is its slot, 40 bytes as before; coro's
 * task: lc.id is its fd, 40 bytes as before). */

#define LOOP_CONN_ID_MAX ((1u << 24) - 1)

struct loop_conn {
	uint32_t id : 24;   /* the model's index for it, <= LOOP_CONN_ID_MAX */
	uint32_t flags : 8; /* LOOP_CONN_*: the runtime's */
};

enum {
	LOOP_CONN_PENDING = 1 << 0,   /* on the pending list */
	LOOP_CONN_PUBLISHED = 1 << 1, /* its input published this turn: written in the second pass */
	LOOP_CONN_HELD = 1 << 2,      /* on the held list (loop_hold) */
};

/* A concurrency model built on the runtime: its I/O style. */
struct loop_model {
	const char *name;
	size_t size; /* bytes per loop: the model's struct, which begins with struct loop */
	/* On the loop's thread, before the ready barrier: make the poller or
	 * ring and start accepting on l->lis. 0 or -errno (logged). */
	int (*setup)(struct loop *l);
	/* Watch w->fd for w->mask until fn returns false or the loop ends.
	 * 0 or -errno. */
	int (*watch)(struct loop *l, struct loop_watch *w);
	/* w->fd or w->mask changed (or w is new: then as watch()). Mask 0 or
	 * fd -1 stops watching at once: the old fd may be closed right after
	 * and w reused. Also from inside w->fn. 0 or -errno. */
	int (*rewatch)(struct loop *l, struct loop_watch *w);
	/* Serve until the loop is stopped and every connection is gone.
	 * 0 or -errno (the group then stops). */
	int (*serve)(struct loop *l);
	/* Teardown, after serve (or a failed setup), in three steps. First
	 * halt: the kernel lets go of the model's memory (exit the ring: a send
	 * in flight reads its session's bytes until it completes). NULL for a
	 * readiness model: its poller reads nothing of ours. Then the runtime
	 * walks the connections still live (only after a fatal error: a loop
	 * that served to the end has none) and closes each, through release.
	 * Last, teardown frees what setup made. */
	void (*halt)(struct loop *l);
	/* The teardown walk reached lc (conn()'s, already off the pending list):
	 * free the model's connection, and say which session and fd it had
	 * (the runtime frees and closes those: loop_close). Other connections
	 * must stay findable by conn(). NULL for a model with no connections
	 * (host.c). */
	struct session *(*release)(struct loop *l, struct loop_conn *lc, int *fd);
	void (*teardown)(struct loop *l);
	/* loop_accepted admitted a connection: make the model's connection for
	 * session s on fd (its record first; s->sub.loop_data is the model's)
	 * and start or list it. false: no memory (the runtime closes it). */
	bool (*open)(struct loop *l, struct session *s, int fd);
	/* The live connection whose loop_conn.id is id (its record first), or
	 * NULL when there is none. */
	struct loop_conn *(*conn)(struct loop *l, uint32_t id);
	/* lc's session (lc: a live connection, conn()'s). */
	struct session *(*session)(struct loop *l, struct loop_conn *lc);
	/* The runtime's retry of a held connection (see holds) asked the
	 * deadline policy, which said lc must close now (loop_expire true):
	 * close it as the model's own deadline would (nothing of its session
	 * runs any more). lc is listed right after (its write hook follows). */
	void (*expired)(struct loop *l, struct loop_conn *lc);
	/* The write pass reached lc (listed, now off the list): write what its
	 * session has (or queue the write), and bring the connection up to date
	 * (close it when done, wait for room, read again). */
	void (*write)(struct loop *l, struct loop_conn *lc);
	/* Where the model's connection keeps its struct loop_deadline: bytes
	 * from its struct loop_conn (see "deadlines"). 0: the model keeps no
	 * connection deadlines (host.c, a test's model). */
	size_t deadline_off;
	/* Accept on listener li again (on), or stop watching it for now (off,
	 * the listener stays open): the runtime's EMFILE back-off decides when
	 * (loop_accept_failed, a loop alarm); the model only arms or disarms its
	 * accept. Called only while not stopping, on an open listener. */
	void (*accept)(struct loop *l, int li, bool on);
	/* The stop signal: stop accepting (loop_listener_close). The runtime
	 * then walks the connections (stop_conn). */
	void (*stop)(struct loop *l);
	/* The stop walk reached lc (a live connection, conn()'s): session_stop()
	 * it, unless it is closing already, and let it run (its deadlines are
	 * now the drain's). NULL for a model with no connections. */
	void (*stop_conn)(struct loop *l, struct loop_conn *lc);
};

struct loop_listener {
	int fd;      /* -1 once closed */
	bool tls;
	bool owned;  /* ours (SO_REUSEPORT); else srv's, borrowed by loop 0 */
	bool paused; /* the EMFILE back-off: not accepting until retry fires */
	struct loop_alarm retry;
};

struct loop {
	const struct loop_model *m;
	struct server *srv;
	int index;
	struct loop_listener lis[2];
	int nlis;
	unsigned live;        /* connections admitted and not closed (loop_accepted, loop_close) */
	int fd_limit;         /* the model's (setup): accepted fds >= it are refused; 0 = none */
	bool stopping;
	long long stop_ms;    /* when the stop signal arrived */
	/* the mailbox */
	struct owner owner;
	int wake_fd;          /* eventfd */
	unsigned long posts;  /* owner_posts_here() at the last drain */
	/* the write pass (write.c) */
	uint32_t *pending;    /* ids listed this turn, in listing order */
	uint32_t npending, pending_cap;
	bool published;       /* a listed connection has LOOP_CONN_PUBLISHED */
	/* the held publishers (hold.c) */
	uint32_t *held;       /* ids with LOOP_CONN_HELD, each once; room for every id (pending_cap) */
	uint32_t nheld;
	bool wrote;           /* a subscriber's send that can end a hold made progress this turn (loop_wrote) */
	struct loop_alarm hold_retry; /* SESSION_HOLD_RETRY_MS after a hold: retry them all */
	struct loop_watch wake_w, stop_w;
	struct loop_watch reopen_w; /* SIGHUP/SIGUSR1's pipe (daemon_reopen_fd; every loop of the server's group), else fd -1 */
	/* the turn's clock (loop_turn): ms since epoch, and as a now_ms() time */
	long long epoch;
	uint32_t now;         /* wraps 49.7 days after the start: see "deadlines" */
	long long now_at;
	/* alarms (loop_alarm_at) on the loop's clock */
	struct loop_timers alarms;
	/* the connections' deadlines (struct loop_deadline, loop_conn_deadline) */
	struct loop_timers deadlines;
	/* the guest (loop 0 only) */
	const struct loop_guest *guest;
	atomic_bool guest_mail; /* loop_guest_wake() since its last wake() */
	/* the group */
	struct loop_group *group;
	pthread_t thr;
	bool started;
	int rc;
};

/* Run n loops of model m (loop 0 on the calling thread) until the stop
 * signal and the drain are over. Returns the exit code: 0, or 1. */
int loop_group_run(struct server *srv, const struct loop_model *m, int n);

/* ---- the guest ---- */

/* Before the model runs (main.c's compose): g is hosted on loop 0 of the
 * next group that runs (a model's own, or loop_host_start's). NULL: none. */
void loop_guest_set(const struct loop_guest *g);
/* Any thread: call l's guest->wake soon. From l's own thread it only marks
 * (loop_before_sleep runs it); from another it writes l's mailbox eventfd
 * once until the guest ran. */
void loop_guest_wake(struct loop *l);
/* internal: run the guest's wake if it was asked for. */
void loop_guest_mail(struct loop *l);

/* For a model with no loop of its own (threads, pool): if a guest is set,
 * start a one-loop group of the host model (host.c: watches and alarms,
 * no listeners) on a thread of its own to host it. It serves through the
 * model's drain until loop_host_stop(), which the model calls once none of
 * its threads can publish any more, and which joins it. 0 or -errno. */
int loop_host_start(struct server *srv);
int loop_host_stop(struct server *srv); /* the host group's exit code: 0 or 1 */
bool loop_host_done(void);              /* internal: host.c's serve ends */

/* ---- alarms ---- */

/* Call a->fn at at_ms (now_ms() clock) on l's thread; 0 disarms. Moving an
 * armed alarm never fails; arming one may (-ENOMEM, logged). */
int loop_alarm_at(struct loop *l, struct loop_alarm *a, long long at_ms);
/* (The model bounds its wait by them and runs them when due through
 * loop_timeout() and loop_run_due(), with the connections' deadlines: see
 * "deadlines".) */

/* ---- connections ---- */

/* A socket just accepted on l (a TLS listener's or not): refused past
 * l->fd_limit; else admitted (--max-conns; refused with a reason
 * otherwise), its session made, owned by l's mailbox, and handed to
 * m->open. Refused or out of memory (the session, or m->open): fd is
 * closed and counted. The one way a model takes a connection. */
void loop_accepted(struct loop *l, int fd, bool tls);

/* ---- accepting, and the EMFILE back-off (listen.c) ----
 *
 * Where the back-off is decided: here, not in a model. An accept that fails
 * for want of descriptors (EMFILE, ENFILE, ENOBUFS, ...) leaves the listener
 * readable, so watching it again at once spins. The runtime then pauses the
 * listener (m->accept off), arms a loop alarm at deadline_accept_retry()
 * (deadline.h: 100 ms later) and, when it fires, resumes it (m->accept on).
 * A model only asks loop_accepting() before it accepts or re-arms. */

/* A readiness model's listener li is readable: accept at most max (then let
 * other work run), each through loop_accepted; on a failure that must wait,
 * the back-off above. Nothing while li is not accepting. */
void loop_accept_some(struct loop *l, int li, int max);

/* A completion model's accept on li failed with err (either sign): counted
 * and logged (server_accept_failed); the back-off when it must wait. */
void loop_accept_failed(struct loop *l, int li, int err);

/* May the model accept on (or re-arm) listener li now? */
static inline bool loop_accepting(const struct loop *l, int li)
{
	return !l->stopping && l->lis[li].fd >= 0 && !l->lis[li].paused;
}

/* The connection is over: free its session, close fd. */
void loop_close(struct loop *l, struct session *s, int fd);

/* lc is over and nothing of it is in flight: off the pending list, the
 * model's object freed (m->release), then loop_close. The teardown walk's
 * way, and a model's own if it likes (uring's). */
void loop_conn_close(struct loop *l, struct loop_conn *lc);

/* Liveness, written once: a model serves while this is true - until the
 * stop signal, then until the last connection admitted on l is closed. */
static inline bool loop_serving(const struct loop *l) { return !l->stopping || l->live > 0; }

/* Call fn on every live connection of l (m->conn() for each id the model
 * reserved, loop_conns_reserve): the stop walk, and any other. fn may list
 * or wake a connection; free only the one it was handed (the teardown's). */
void loop_conns_each(struct loop *l, void (*fn)(struct loop *l, struct loop_conn *lc));

/* internal (group.c): after serve, m->halt, then close every connection
 * left (m->release), m->teardown, and the loop's own listeners and alarms. */
void loop_teardown(struct loop *l);

/* ---- deadlines (due.c) ----
 *
 * Where a timeout is scheduled and decided: here, not in a model. When a
 * connection must be looked at, and what happens then, is the deadline
 * policy's (deadline.h: the TLS handshake's and the request head's
 * deadlines, a last reply's linger, idle, a hold's expiry, the drain's
 * quietness and its end), applied with the loop's drain clock (loop_due,
 * loop_expire below). The runtime schedules it and runs it: one heap per
 * loop (l->deadlines, timer.h) of the connections' struct loop_deadline,
 * each embedded in the model's connection, m->deadline_off bytes from its
 * struct loop_conn (12 bytes the models kept already for their own timers:
 * coro's task and uring's struct conn stay 40 bytes). The heap's array
 * grows as deadlines are armed (arming one that is not armed may then fail
 * for want of memory: logged, that deadline is lost), unless the model
 * reserved room for every connection it can have (loop_deadlines_reserve:
 * uring, with its slots).
 *
 * The turn's clock. A model calls loop_turn() once per turn, right after
 * its wait and before it handles what the wait returned: the one clock read
 * a turn makes for its events. Activity, due times and the expiry run of
 * that turn are all on it (l->now, l->now_at). l->now is ms since l->epoch
 * as a uint32 and wraps 49.7 days after the loop started, so a connection's
 * last activity (a uint32 of l->now) is turned back into a now_ms() time
 * only as an age - now_at minus how far it is behind now, modulo 2^32
 * (loop_conn_last) - never as epoch + last, which after the wrap made every
 * connection look 49.7 days idle (closed as idle at its first look, its
 * handshake and drain deadlines never the earliest, a slowloris held to
 * --idle-timeout). An age is exact up to 49.7 days (an older one reads
 * modulo that: only a connection with no idle limit gets so old, and then
 * the drain's quietness could misjudge it, as younger: it then waits at
 * most to the drain's end). Due times on the heap are at most
 * LOOP_TIMER_MAX_MS (12 days) ahead and compared wrap-safe (timer.h).
 *
 * What a model does:
 *   - loop_conn_start() when it makes a connection (no deadline, active now);
 *   - loop_conn_active() when the connection is active as the model counts
 *     activity (uring: a recv or a send completed; coro: its task waits
 *     again, or the write pass wrote it);
 *   - loop_conn_deadline() after it brought the connection up to date (its
 *     session's phase may have moved a deadline);
 *   - loop_conn_deadline_cancel() when it begins to close the connection
 *     (uring: cancels in flight); loop_unlist() cancels it too;
 *   - bounds its wait by loop_timeout() (the earliest deadline or alarm),
 *     and after loop_turn() and the turn's events calls loop_run_due().
 *
 * How a deadline is armed (loop_conn_deadline), at loop_due() for the
 * connection's last activity, unless:
 *   - the timer is armed sooner: a later due time (traffic since) moves it
 *     lazily - it fires at the earlier time, finds nothing due yet and is
 *     re-armed then: a heap operation per deadline, not one per event;
 *   - the due time passed already (an expiry left the connection open to
 *     send its last reply), or the connection is held and due within
 *     LOOP_OVERDUE_MS (the hold retry offers it its input meanwhile: see
 *     holds): looked at again LOOP_OVERDUE_MS later, not at every turn;
 *   - it is further than LOOP_TIMER_MAX_MS ahead: looked at again then.
 *
 * What runs when one comes (loop_run_due, after the turn's events): for each
 * connection due by the turn's clock, in due order, loop_due() again - none
 * any more: nothing (the model's next loop_conn_deadline arms one); later
 * (moved): re-armed; due: loop_expire(). True calls m->expired (the model
 * closes it: nothing of its session runs any more); false (it stays to send
 * what the expiry queued, or nothing was due after all) re-arms it by the
 * rules above. Either way it is listed (loop_pending), so its write hook
 * sends what the expiry queued, or closes it - after the deliveries its
 * input made, if the expiry was a hold's that offered it its input and it
 * published (as the hold's retry does: see holds). Then the alarms due run.
 *
 * So a connection readable at every turn still meets its absolute deadlines
 * (handshake, head, the drain's end): the heap does not care what the
 * model's connection waits for. */

#define LOOP_OVERDUE_MS 100 /* an expired connection left open, or a held one: looked at again this much later */

struct loop_deadline {
	struct loop_timer timer; /* on l->deadlines: when the policy looks at it next */
	uint32_t last;           /* its last activity on the turn's clock (l->now) */
};

/* After the wait, before the turn's events: read the clock (once a turn). */
void loop_turn(struct loop *l);
/* ms until the earliest deadline or alarm (0 if one is due), at most max:
 * the model's wait bound. */
int loop_timeout(struct loop *l, int max);
/* After the turn's events: the deadlines due (as above), then the alarms due. */
void loop_run_due(struct loop *l);

static inline struct loop_deadline *loop_conn_dl(const struct loop *l, struct loop_conn *lc)
{
	return (struct loop_deadline *)((char *)lc + l->m->deadline_off);
}

/* A new connection: no deadline armed, active now. */
static inline void loop_conn_start(struct loop *l, struct loop_conn *lc)
{
	struct loop_deadline *d = loop_conn_dl(l, lc);
	loop_timer_init(&d->timer);
	d->last = l->now;
}

/* lc is active now (the turn's clock). */
static inline void loop_conn_active(struct loop *l, struct loop_conn *lc) { loop_conn_dl(l, lc)->last = l->now; }

/* lc's last activity as a now_ms() time (an age on the turn's clock: no
 * wrap, see above). */
static inline long long loop_conn_last(const struct loop *l, struct loop_conn *lc)
{
	return l->now_at - (uint32_t)(l->now - loop_conn_dl(l, lc)->last);
}

/* Arm lc's deadline for its session s by the policy, as above. */
void loop_conn_deadline(struct loop *l, struct loop_conn *lc, const struct session *s);
/* lc has no deadline any more (it is closing). */
void loop_conn_deadline_cancel(struct loop *l, struct loop_conn *lc);
/* Room for n armed deadlines, so that arming never fails below that. 0 or -ENOMEM. */
int loop_deadlines_reserve(struct loop *l, int n);

/* The deadline policy (deadline.h) with the loop's drain clock: when the
 * connection, last active at last_ms, must next be looked at (0 = never)... */
long long loop_due(const struct loop *l, const struct session *s, long long last_ms);

/* ... and, once that time came, whether it must close now (see
 * deadline_expire; LOOP_WAITED_OUT for a model whose timer fired). */
bool loop_expire(struct loop *l, struct session *s, long long last_ms, long long now);
#define LOOP_WAITED_OUT DEADLINE_WAITED_OUT

/* ---- the write order (write.c; see "connections and the write order") ---- */

/* Room on the pending list for every id below n, so that listing never
 * fails: a model calls it before it hands out such an id. 0 or -ENOMEM. */
int loop_conns_reserve(struct loop *l, uint32_t n);

/* lc's session may have output: list it for this turn's write pass (once;
 * listing it again changes nothing). */
static inline void loop_pending(struct loop *l, struct loop_conn *lc)
{
	if (lc->flags & LOOP_CONN_PENDING)
		return;
	lc->flags |= LOOP_CONN_PENDING;
	l->pending[l->npending++] = lc->id;
}

static inline bool loop_listed(const struct loop_conn *lc) { return lc->flags & LOOP_CONN_PENDING; }

/* List lc after something of its session ran that may have published on
 * this loop (its input, a hold's retry, a deadline's expiry), posts being
 * owner_posts_here() read before: if that moved, lc is written after the
 * deliveries it made (the second pass). The one place that rule is kept. */
static inline void loop_pending_since(struct loop *l, struct loop_conn *lc, unsigned long posts)
{
	if (owner_posts_here() != posts) {
		lc->flags |= LOOP_CONN_PUBLISHED;
		l->published = true;
	}
	loop_pending(l, lc);
}

/* Bytes read on lc: hand them to its session s and list lc; when the input
 * published, lc is written after the connections it published to. */
void loop_input(struct loop *l, struct loop_conn *lc, struct session *s, const char *p, size_t n);

/* lc is going away: off the pending list, off the held list, and its
 * deadline cancelled (the model calls it before freeing a connection that
 * may be listed, held or armed). */
void loop_unlist(struct loop *l, struct loop_conn *lc);

/* Call m->write() for every listed connection, in the order above. */
void loop_write_pending(struct loop *l);

/* ---- holds (hold.c) ----
 *
 * Where a held publisher's retry is decided: here, not in a model. A
 * session is held (session.h, "holds") when its PUBLISH left a subscriber
 * too far behind: the rest of its input waits and it reads nothing until
 * it is offered that input again (the deadline policy's hold expiry,
 * loop_expire). The model only tells the runtime what it sees: a
 * connection whose session is held after its update (loop_hold), and a
 * send that made progress (loop_wrote). The runtime keeps the held
 * connections' ids (l->held, room for every id: loop_conns_reserve) and
 * retries them:
 *
 *   - near holds after a turn in which a send of a connection not held,
 *     with more than the hold unsent (a subscriber that can hold one), made
 *     progress (loop_before_sleep, before the drain and the write pass), so
 *     input follows output (a held publisher's own replies do not count);
 *   - every hold, near or far, by a loop alarm SESSION_HOLD_RETRY_MS after
 *     the list stopped being empty (re-armed while any is held).
 *
 * A publisher held for what another thread moves (session_held_far: a
 * subscriber on another loop, the cluster link) is retried by time only:
 * this loop's sends say nothing about it, and retried at every busy turn
 * it would publish a message a turn past its hold and outrun the other
 * loop's subscriber (or the link) to its limits.
 *
 * A retry takes the connection off the list, asks the deadline policy
 * (loop_expire with LOOP_WAITED_OUT: the hold's expiry, or the drain's end
 * or a phase's deadline if one came; true calls m->expired), and lists it
 * (loop_pending; written after its deliveries if its input published), so
 * the model's write hook carries on - and hands it to loop_hold again if
 * it is still held. While it is held, the retry is its deadline too: a
 * model need not wake it for the hold (coro's task waits without re-arming
 * its deadline; the deadline run may look at it too: see deadlines).
 *
 * A connection leaves the list when it ends (loop_unlist), so an id freed
 * and reused is never retried as the old connection. */

/* lc's session is held (session_held): retried as above. Once: holding it
 * again changes nothing. */
void loop_hold(struct loop *l, struct loop_conn *lc);

static inline bool loop_held(const struct loop_conn *lc) { return lc->flags & LOOP_CONN_HELD; }

/* A send of lc's (its session s, which had before bytes unsent) made
 * progress: bytes went out. Only a send that can be a held publisher's
 * subscriber catching up paces the near retries: one by a session that had
 * more than the hold unsent (a subscriber holds a publisher only then,
 * owner.c's note_pressure). Any other output - a PING's reply on the same
 * loop - says nothing about the holds: counted, it retried a publisher held
 * for a subscriber that does not read at every busy turn, a message a turn.
 * Nor do a held publisher's own replies: not while it is on the list, nor
 * while its session is held again by the retry that listed it (its write
 * hook may run before it is handed to loop_hold). */
void loop_wrote(struct loop *l, const struct loop_conn *lc, const struct session *s, size_t before);

/* internal: the turn's retry (loop_before_sleep, when any is held). */
void loop_holds_turn(struct loop *l);

/* ---- mailbox ---- */

/* Deliver queued mail now: list each connection that got any. */
void loop_drain(struct loop *l);

/* Once per turn, after the turn's input and before sleeping: retry the
 * near holds if output moved (see holds), hand over what this loop
 * published to itself (the drain lists its subscribers), then the write
 * pass. */
static inline void loop_before_sleep(struct loop *l)
{
	if (atomic_load_explicit(&l->guest_mail, memory_order_relaxed))
		loop_guest_mail(l);
	if (l->nheld)
		loop_holds_turn(l);
	l->wrote = false;
	if (owner_posts_here() != l->posts)
		loop_drain(l);
	if (l->npending)
		loop_write_pending(l);
}

/* ---- listeners ---- */

/* Stop accepting on listener i: close it (srv's copy is forgotten too). */
void loop_listener_close(struct loop *l, int i);

/* internal to the runtime */
int loop_listeners_open(struct loop *l);
int loop_mailbox_open(struct loop *l);
void loop_mailbox_close(struct loop *l);

#endif
