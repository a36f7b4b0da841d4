/* sched.c - the coroutine scheduler: ready queue, waiting sets (kept by the
 * poller), and the loop that sleeps in the poller only when nothing is
 * ready. See sched.h. */
#include "sched.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* The poller never sleeps longer than this, even with no timer: a signal that
 * a sanitizer (TSan) deferred because it arrived just before the wait is run
 * when the wait returns, so a SIGTERM is acted on within a second, not never
 * (seen once: a coro --threads 2 TSan daemon ignored SIGTERM for 90 s). */
#define SCHED_MAX_SLEEP_MS 1000

int sched_init(struct sched *sch, const struct loop_poller_ops *ops, const struct task_kind *kinds, void *data)
{
	memset(sch, 0, sizeof(*sch));
	sch->ops = ops;
	sch->kinds = kinds;
	sch->data = data;
	return ops->create(&sch->poller);
}

static int next_timeout(struct sched *sch)
{
	return sch->sleep_cap ? sch->sleep_cap(sch, SCHED_MAX_SLEEP_MS) : SCHED_MAX_SLEEP_MS;
}

/* ---- the ready queue ---- */

static void enqueue(struct sched *sch, struct task *t)
{
	t->next = NULL;
	if (sch->ready_tail)
		sch->ready_tail->next = t;
	else
		sch->ready = t;
	sch->ready_tail = t;
}

void sched_poke(struct sched *sch, struct task *t, uint8_t bits)
{
	t->ev |= bits;
	if (t->wait) {
		t->wait = 0;
		enqueue(sch, t);
	}
}

/* ---- tasks ---- */

struct task *sched_spawn(struct sched *sch, int kind, int fd, void *data)
{
	if (fd < 0 || (unsigned)fd > LOOP_CONN_ID_MAX)
		return NULL; /* lc.id holds it */
	if (fd >= sch->fds_cap) {
		int cap = sch->fds_cap ? sch->fds_cap : 256;
		while (cap <= fd)
			cap *= 2;
		struct task **f = realloc(sch->fds, (size_t)cap * sizeof(*f));
		if (!f)
			return NULL;
		memset(f + sch->fds_cap, 0, (size_t)(cap - sch->fds_cap) * sizeof(*f));
		sch->fds = f;
		sch->fds_cap = cap;
	}
	struct task *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->lc.id = (uint32_t)fd;
	t->data = data;
	t->kind = (uint8_t)kind;
	loop_timer_init(&t->dl.timer); /* a connection's is the runtime's (loop_conn_start) */
	sch->fds[fd] = t;
	enqueue(sch, t);
	return t;
}

static void finish(struct sched *sch, struct task *t)
{
	if (t->reg)
		loop_poller_del(sch->ops, sch->poller, task_fd(t), t->reg);
	sch->fds[task_fd(t)] = NULL;
	sch->kinds[t->kind].fini(sch, t);
	free(t);
}

static int interest(int req)
{
	return ((req & (CR_READ | CR_ACCEPT)) ? LOOP_POLL_IN : 0) | ((req & CR_WRITE) ? LOOP_POLL_OUT : 0);
}

int sched_rewait(struct sched *sch, struct task *t, int req)
{
	if (!t->wait)
		return 0; /* queued or running: it yields again by itself */
	int mask = interest(req);
	if (mask != t->reg) {
		int rc = sch->ops->set(sch->poller, task_fd(t), t->reg, mask);
		if (rc < 0)
			return rc;
		t->reg = (uint8_t)mask;
	}
	t->wait = (uint8_t)req;
	return 0;
}

void sched_drop(struct sched *sch, struct task *t)
{
	if (t->reg)
		loop_poller_del(sch->ops, sch->poller, task_fd(t), t->reg);
	t->reg = 0;
	if (task_fd(t) >= 0 && task_fd(t) < sch->fds_cap && sch->fds[task_fd(t)] == t)
		sch->fds[task_fd(t)] = NULL;
	if (t->wait && sch->running != t) {
		free(t); /* parked: on no queue */
		return;
	}
	t->dead = 1;
}

/* Resume t once and file it where its request says. */
static void step(struct sched *sch, struct task *t)
{
	if (t->dead) {
		free(t);
		return;
	}
	sch->running = t;
	int req = sch->kinds[t->kind].run(sch, t);
	sch->running = NULL;
	t->ev = 0;
	if (t->dead) {
		free(t);
		return;
	}
	if (req <= 0) {
		finish(sch, t);
		return;
	}
	if (req & CR_AGAIN) {
		enqueue(sch, t); /* still registered: a level-triggered report is ignored */
		return;
	}
	int mask = interest(req);
	if (mask != t->reg) {
		int rc = sch->ops->set(sch->poller, task_fd(t), t->reg, mask);
		if (rc < 0) {
			log_warn("coro: %s cannot watch fd %d: %s", sch->ops->name, task_fd(t), strerror(-rc));
			finish(sch, t);
			return;
		}
		t->reg = (uint8_t)mask;
	}
	t->wait = (uint8_t)req;
}

/* before_sleep also runs after every this many tasks of a round: a round
 * of a thousand readable connections then holds at most this many outputs
 * at once (the loop's write pass writes them), as few output chunks as
 * when each task wrote its own (idle memory per connection stays flat). */
#define SCHED_PASS_EVERY 4

static void run_ready(struct sched *sch)
{
	/* Run only what is ready now: what these runs make ready waits for the
	 * next round, after a look at the poller. */
	struct task *t = sch->ready;
	sch->ready = sch->ready_tail = NULL;
	unsigned ran = 0;
	while (t) {
		struct task *next = t->next;
		step(sch, t);
		t = next;
		if (t && sch->before_sleep && ++ran % SCHED_PASS_EVERY == 0)
			sch->before_sleep(sch);
	}
}

static void dispatch(struct sched *sch, const struct loop_poller_event *e)
{
	struct task *t = e->fd < sch->fds_cap ? sch->fds[e->fd] : NULL;
	if (!t)
		return;
	int got = ((e->mask & LOOP_POLL_IN) ? CR_READ | CR_ACCEPT : 0) | ((e->mask & LOOP_POLL_OUT) ? CR_WRITE : 0);
	if (t->wait & got)
		sched_poke(sch, t, (uint8_t)(t->wait & got));
}

int sched_run(struct sched *sch)
{
	while (sch->serving(sch)) {
		run_ready(sch);
		if (!sch->serving(sch))
			break;
		if (sch->before_sleep) {
			bool idle = !sch->ready;
			sch->before_sleep(sch); /* the loop's write pass: it may make tasks ready */
			if (idle && sch->ready)
				continue;
		}
		int timeout = sch->ready ? 0 : next_timeout(sch);
		int n = sch->ops->wait(sch->poller, timeout, sch->fired, (int)(sizeof(sch->fired) / sizeof(sch->fired[0])));
		if (n < 0 && n != -EINTR) {
			log_error("coro: %s failed: %s", sch->ops->name, strerror(-n));
			return n;
		}
		for (int i = 0; i < n; i++)
			dispatch(sch, &sch->fired[i]);
		if (sch->after_wait)
			sch->after_wait(sch);
	}
	return 0;
}

void sched_fini(struct sched *sch)
{
	for (struct task *t = sch->ready, *next; t; t = next) {
		next = t->next;
		if (t->dead)
			free(t); /* dropped: mapped to no fd any more */
	}
	for (int fd = 0; fd < sch->fds_cap; fd++)
		if (sch->fds[fd])
			finish(sch, sch->fds[fd]);
	free(sch->fds);
	if (sch->poller)
		sch->ops->destroy(sch->poller);
	memset(sch, 0, sizeof(*sch));
}
