/* sched.c - the coroutine scheduler: ready queue, waiting sets (kept by the
 * poller), timers, and the loop that sleeps in the poller only when nothing
 * is ready. See sched.h. */
#include "sched.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "clock.h"

#define MAX_WAIT_MS LOOP_TIMER_MAX_MS /* deadlines stay within half the clock's range */

/* Times are uint32 ms since the epoch; compare them wrap-safe. */
static bool before(uint32_t a, uint32_t b) { return loop_time_before(a, b); }

/* The turn's clock: read once after each poll. */
static void clock_read(struct sched *sch)
{
	sch->now_at = now_ms();
	sch->now = (uint32_t)(sch->now_at - sch->epoch) + 1;
}

int sched_init(struct sched *sch, const struct loop_poller_ops *ops, const struct task_kind *kinds, void *data)
{
	memset(sch, 0, sizeof(*sch));
	sch->ops = ops;
	sch->kinds = kinds;
	sch->data = data;
	sch->epoch = now_ms();
	clock_read(sch);
	return ops->create(&sch->poller);
}

/* ---- timers: the runtime's heap (timer.h), one record per task ---- */

static struct task *task_of(struct loop_timer *tm) { return (struct task *)((char *)tm - offsetof(struct task, timer)); }

static void set_deadline(struct sched *sch, struct task *t, uint32_t d)
{
	d = d ? d : 1;
	if (t->deadline && !before(d, t->deadline))
		return; /* this wait is already bounded sooner */
	t->deadline = d;
	if (!loop_timer_armed(&t->timer)) {
		if (loop_timers_arm(&sch->timers, &t->timer, d) < 0)
			log_warn("coro: no memory for a timer; a deadline is lost");
	} else if (before(d, t->timer.at)) {
		loop_timers_arm(&sch->timers, &t->timer, d);
	} /* else: later than the key; re-keyed when the key comes due */
}

void sched_deadline(struct sched *sch, struct task *t, uint32_t ms)
{
	set_deadline(sch, t, sch->now + (ms < MAX_WAIT_MS ? ms : MAX_WAIT_MS));
}

/* An absolute now_ms() time on the scheduler's scale (its uint32 wraps the
 * same way), at most MAX_WAIT_MS ahead of the turn's clock: read once per
 * wake-up, not at each wait (two clock reads per echoed message); the bound
 * only keeps deadlines inside half the clock's range, and the turn's clock
 * is never ahead of now. */
static uint32_t sched_time(const struct sched *sch, long long at_ms)
{
	long long d = at_ms - sch->epoch + 1, now = sch->now_at - sch->epoch + 1;
	if (d - now > MAX_WAIT_MS)
		d = now + MAX_WAIT_MS;
	return (uint32_t)d;
}

void sched_deadline_at(struct sched *sch, struct task *t, long long at_ms) { set_deadline(sch, t, sched_time(sch, at_ms)); }

void sched_deadline_move(struct sched *sch, struct task *t, long long at_ms)
{
	if (!at_ms) {
		t->deadline = 0; /* an armed timer finds nothing to do when it fires */
		return;
	}
	uint32_t d = sched_time(sch, at_ms);
	t->deadline = d ? d : 1;
	if (!loop_timer_armed(&t->timer)) {
		if (loop_timers_arm(&sch->timers, &t->timer, t->deadline) < 0)
			log_warn("coro: no memory for a timer; a deadline is lost");
	} else if (before(t->deadline, t->timer.at)) {
		loop_timers_arm(&sch->timers, &t->timer, t->deadline);
	} /* else: later than the key; re-keyed when the key comes due */
}

/* ms until the earliest timer, -1 if none. */
/* The poller never sleeps longer than this, even with no timer: a signal that
 * a sanitizer (TSan) deferred because it arrived just before the wait is run
 * when the wait returns, so a SIGTERM is acted on within a second, not never
 * (seen once: a coro --threads 2 TSan daemon ignored SIGTERM for 90 s). */
#define SCHED_MAX_SLEEP_MS 1000

static int next_timeout(struct sched *sch)
{
	int ms = loop_timers_timeout(&sch->timers, sch->now, SCHED_MAX_SLEEP_MS);
	return sch->sleep_cap ? sch->sleep_cap(sch, ms) : ms;
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

static void expire_timers(struct sched *sch)
{
	struct loop_timer *tm;
	while ((tm = loop_timers_first(&sch->timers)) && !before(sch->now, tm->at)) {
		struct task *t = task_of(tm);
		if (t->deadline && before(sch->now, t->deadline)) {
			loop_timers_arm(&sch->timers, tm, t->deadline); /* the deadline moved later since */
			continue;
		}
		loop_timers_cancel(&sch->timers, tm);
		/* Also when its fd made it ready this round (then it is queued and
		 * just sees the bit): a socket readable at every look would otherwise
		 * never time out, and a peer sending without end would outlive the
		 * drain's end. */
		if (t->deadline)
			sched_poke(sch, t, CR_TIMEOUT);
		t->deadline = 0;
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
	loop_timer_init(&t->timer);
	sch->fds[fd] = t;
	enqueue(sch, t);
	return t;
}

static void finish(struct sched *sch, struct task *t)
{
	if (t->reg)
		loop_poller_del(sch->ops, sch->poller, task_fd(t), t->reg);
	sch->fds[task_fd(t)] = NULL;
	loop_timers_cancel(&sch->timers, &t->timer);
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
	loop_timers_cancel(&sch->timers, &t->timer);
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
	t->deadline = 0; /* a deadline bounds one wait; the run sets the next */
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
		clock_read(sch);
		if (n < 0 && n != -EINTR) {
			log_error("coro: %s failed: %s", sch->ops->name, strerror(-n));
			return n;
		}
		for (int i = 0; i < n; i++)
			dispatch(sch, &sch->fired[i]);
		expire_timers(sch);
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
	loop_timers_fini(&sch->timers);
	if (sch->poller)
		sch->ops->destroy(sch->poller);
	memset(sch, 0, sizeof(*sch));
}
