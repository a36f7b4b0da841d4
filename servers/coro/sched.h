/* sched.h - a single-threaded scheduler of stackless coroutine tasks (the
 * Python Cookbook's "generators as an alternative to threads", in C).
 *
 * A task is a coroutine (coro.h) plus an fd. Running it returns what it waits
 * for: CR_READ / CR_WRITE / CR_ACCEPT on its fd, CR_SLEEP, CR_AGAIN, or
 * CR_DONE (<= 0) when it has ended. Waiting tasks sit in the read/write
 * waiting sets, which the poller watches; ready ones sit in a FIFO ready
 * queue. The scheduler runs what is ready and sleeps in the poller only when
 * nothing is (like libdill's cr.c), for at most what its owner says
 * (sleep_cap: coro, the runtime's earliest deadline or alarm). It keeps no
 * timers and no clock: a connection's deadline is the runtime's (loop.h,
 * deadlines), which ends a task by poking it (coro: CR_KILL).
 *
 * Everything here belongs to the scheduler's thread. */
#ifndef WEFT_SCHED_H
#define WEFT_SCHED_H

#include <stdbool.h>
#include <stdint.h>

#include "coro.h"
#include "loop.h"
#include "poller.h"
#include "timer.h"

struct sched;

/* Kept small: an idle connection is one of these (40 bytes) plus its
 * session. */
struct task {
	struct loop_conn lc; /* first: a connection's runtime record (loop.h); lc.id is the fd, for every task */
	struct loop_deadline dl; /* a connection's deadline, the runtime's (loop.h, deadlines); unarmed for others */
	struct task *next;   /* ready queue link */
	void *data;          /* the kind's object (a session, a listener) */
	cr_line line, sub;   /* resume points: the task body, an awaited sub-coroutine */
	uint8_t kind : 7;    /* index into the scheduler's kinds */
	uint8_t dead : 1;    /* sched_drop()ped while queued or running: freed when next stepped */
	uint8_t wait;        /* the request it is waiting on; 0 = ready or running */
	uint8_t reg;         /* interest registered with the poller */
	uint8_t ev;          /* why it was resumed (cr_req I/O bits, cr_ev) */
};

_Static_assert(sizeof(struct task) <= 40, "an idle coro connection's task stays 40 bytes");

static inline int task_fd(const struct task *t) { return (int)t->lc.id; }

struct task_kind {
	/* The coroutine: resume and return the next request. */
	int (*run)(struct sched *sch, struct task *t);
	/* The task is over (or the scheduler is freed): release data, close fd. */
	void (*fini)(struct sched *sch, struct task *t);
};

struct sched {
	const struct loop_poller_ops *ops;
	struct loop_poller *poller;
	const struct task_kind *kinds;
	void *data;                 /* the owner of this scheduler */
	struct task **fds;          /* fd -> its task */
	int fds_cap;
	struct task *ready, *ready_tail;
	/* run() returns once this is false (coro: loop_serving). */
	bool (*serving)(struct sched *sch);
	/* Called once a round, after the ready tasks ran and before the poller
	 * may sleep, and after every SCHED_PASS_EVERY tasks of a long round
	 * (may poke tasks: when nothing else was ready, the scheduler then runs
	 * them first). NULL = none. */
	void (*before_sleep)(struct sched *sch);
	/* The owner's timers (the runtime's deadlines and alarms): may lower
	 * the wait's timeout in ms; after_wait runs after every wait, once the
	 * readiness it returned was handed to the tasks (woken, not run yet).
	 * NULL = none. */
	int (*sleep_cap)(struct sched *sch, int timeout_ms);
	void (*after_wait)(struct sched *sch);
	struct task *running;       /* the task being resumed, if any */
	struct loop_poller_event fired[1024];
};

int sched_init(struct sched *sch, const struct loop_poller_ops *ops, const struct task_kind *kinds, void *data);
/* Free every task left (calling its fini) and the scheduler's own memory. */
void sched_fini(struct sched *sch);

/* A new task of kind on fd, queued to run first; NULL on ENOMEM (or an fd
 * past LOOP_CONN_ID_MAX). */
struct task *sched_spawn(struct sched *sch, int kind, int fd, void *data);
/* Resume t soon with bits added to t->ev (mail arrived, stop, kill); a task
 * already ready just sees the bits when it runs. */
void sched_poke(struct sched *sch, struct task *t, uint8_t bits);
/* Change what a waiting task waits for to req (its poller interest now);
 * a task that is queued or running yields its next request itself. 0 or
 * -errno from the poller. */
int sched_rewait(struct sched *sch, struct task *t, int req);
/* End t now, whatever it is doing, without its fini: its fd is no longer
 * watched or mapped to it (it may be closed right after, the number reused).
 * A queued or running task is freed when the scheduler next reaches it. */
void sched_drop(struct sched *sch, struct task *t);
/* Run until serving() says no. 0, or -errno if the poller failed. */
int sched_run(struct sched *sch);

#endif
