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
 *               bound, every other loop its own SO_REUSEPORT socket.
 *   mailbox.c   the loop's mailbox (owner.h): an eventfd wake-up from other
 *               threads, the drain, and the before-sleep phase that hands the
 *               model the connections this turn's input gave output to.
 *   conn.c      admitting a connection (limits, refusal, session) and
 *               closing it.
 *   deadline.c  the one deadline policy (handshake and request deadlines,
 *               idle, drain quietness, the drain's end), also used by the
 *               threads and pool models.
 *   poller*.c   the readiness backends (poller.h: select, poll, epoll):
 *               read and write interest per fd, a wait with a timeout.
 *   timer.c     one timer heap (timer.h) of loop_timer records embedded in
 *               their owners: coro's tasks, uring's connections. When a
 *               connection's timer fires is the deadline policy's answer.
 *   attach      a non-session fd on a loop (struct loop_watch): the model
 *               calls fn whenever it is readable and/or writable, as its
 *               mask asks. The runtime's own stop signal and mailbox
 *               wake-up are watches; so are the cluster link's sockets.
 *   alarms      one-shot timers of non-session code (struct loop_alarm) on
 *               the loop's own timer heap (timer.h); the model bounds its
 *               wait by the earliest and runs them when due.
 *   guest       non-session code hosted on loop 0 of a group (struct
 *               loop_guest: the cluster link, through cluster/link_host.c):
 *               attached after setup, woken from any thread through the
 *               mailbox's eventfd (from its own thread, before it sleeps,
 *               with no wake-up at all), detached before teardown.
 *   host.c      a loop model with no listeners and no sessions, only
 *               watches and alarms: a one-loop group for models that have
 *               no loop of their own (threads, pool) to host the guest on.
 *
 * What a model does: set up its poller or ring, watch fds (for the mask each
 * watch asks, changed by rewatch at any time), turn readiness or completions
 * into session_input / session_iov / session_sent, bound its wait by
 * loop_alarms_timeout() and call loop_alarms_run() after it, and call
 * loop_before_sleep() once per turn, after all of that turn's input and
 * before it writes and waits (Redis' beforeSleep).
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
	/* Free what setup made; also after a failed setup. */
	void (*teardown)(struct loop *l);
	/* The connection whose session's sub.loop_data is conn has output now. */
	void (*ready)(struct loop *l, void *conn);
	/* The stop signal: stop accepting (loop_listener_close), session_stop()
	 * every connection and let it run (its deadlines are now the drain's). */
	void (*stop)(struct loop *l);
};

struct loop_listener {
	int fd;     /* -1 once closed */
	bool tls;
	bool owned; /* ours (SO_REUSEPORT); else srv's, borrowed by loop 0 */
};

struct loop {
	const struct loop_model *m;
	struct server *srv;
	int index;
	struct loop_listener lis[2];
	int nlis;
	unsigned live;        /* connections admitted and not closed */
	bool stopping;
	long long stop_ms;    /* when the stop signal arrived */
	/* the mailbox */
	struct owner owner;
	int wake_fd;          /* eventfd */
	unsigned long posts;  /* owner_posts_here() at the last drain */
	struct loop_watch wake_w, stop_w;
	/* alarms (loop_alarm_at) on the loop's clock: ms since epoch */
	struct loop_timers alarms;
	long long epoch;
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
/* The model: ms until the earliest alarm (0 if one is due), at most max... */
int loop_alarms_timeout(struct loop *l, int max);
/* ... and, after each wait, run the ones due. */
void loop_alarms_run(struct loop *l);

/* ---- connections ---- */

/* A socket just accepted on l: admit it (--max-conns; refused with a reason
 * otherwise) and make its session, owned by l's mailbox. NULL when it was
 * refused or out of memory: fd is closed and the refusal counted. */
struct session *loop_admit(struct loop *l, int fd, bool tls);

/* The connection is over: free its session, close fd. */
void loop_close(struct loop *l, struct session *s, int fd);

/* The deadline policy (deadline.h) with the loop's drain clock: when the
 * connection, last active at last_ms, must next be looked at (0 = never)... */
long long loop_due(const struct loop *l, const struct session *s, long long last_ms);

/* ... and, once that time came, whether it must close now (see
 * deadline_expire; LOOP_WAITED_OUT for a model whose timer fired). */
bool loop_expire(struct loop *l, struct session *s, long long last_ms, long long now);
#define LOOP_WAITED_OUT DEADLINE_WAITED_OUT

/* ---- mailbox ---- */

/* Deliver queued mail now: m->ready() for each connection that got any. */
void loop_drain(struct loop *l);

/* Once per turn, after the turn's input, before writing and sleeping:
 * hand the model the connections this loop published to. */
static inline void loop_before_sleep(struct loop *l)
{
	if (atomic_load_explicit(&l->guest_mail, memory_order_relaxed))
		loop_guest_mail(l);
	if (owner_posts_here() != l->posts)
		loop_drain(l);
}

/* ---- listeners ---- */

/* Stop accepting on listener i: close it (srv's copy is forgotten too). */
void loop_listener_close(struct loop *l, int i);

/* internal to the runtime */
int loop_listeners_open(struct loop *l);
int loop_mailbox_open(struct loop *l);
void loop_mailbox_close(struct loop *l);

#endif
