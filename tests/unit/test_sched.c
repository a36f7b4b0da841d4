/* test_sched.c - the coro scheduler (servers/coro/sched.c), on every poller.
 * It keeps no timers any more (a connection's deadline is the runtime's:
 * loop.h "deadlines", tests/unit/test_loop_deadline.c); what it still owns:
 * a task waiting to read resumes with CR_READ when its fd is readable, a
 * task sleeping on nothing (CR_SLEEP) resumes only when poked, with the
 * poke's bits, and the owner's sleep_cap bounds the wait (a poke from
 * after_wait, as the runtime's deadline run pokes an expired connection,
 * reaches a task sleeping with no fd readiness at all). */
#include <stdbool.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "coro/sched.h"

struct probe {
	int runs;
	bool done;
	int waits;     /* after_wait calls */
	int cap_asked; /* sleep_cap calls */
	uint8_t ev[3]; /* what each run after the first saw */
	struct task *t;
};

static int probe_run(struct sched *sch, struct task *t)
{
	struct probe *p = sch->data;
	int run = p->runs++;
	if (run > 0)
		p->ev[run - 1] = t->ev;
	switch (run) {
	case 0:
		return CR_READ; /* readable from the start: resumes with CR_READ */
	case 1:
		return CR_SLEEP; /* nothing but a poke wakes it */
	default:
		return CR_DONE;
	}
}

static void probe_fini(struct sched *sch, struct task *t)
{
	(void)t;
	((struct probe *)sch->data)->done = true;
}

static bool probe_serving(struct sched *sch) { return !((struct probe *)sch->data)->done; }

/* The owner's timers: a short wait, and after the second wait a poke, as
 * the runtime's deadline run pokes a connection it expired. */
static int probe_cap(struct sched *sch, int ms)
{
	struct probe *p = sch->data;
	p->cap_asked++;
	return ms > 5 ? 5 : ms;
}

static void probe_after_wait(struct sched *sch)
{
	struct probe *p = sch->data;
	if (++p->waits == 3 && p->runs == 2)
		sched_poke(sch, p->t, CR_KILL);
}

static const struct task_kind kinds[] = {{probe_run, probe_fini}};

static void read_sleep_poke(const struct loop_poller_ops *ops)
{
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	CHECK(write(sv[1], "x", 1) == 1); /* readable from the start, and stays so */
	struct probe p = {0};
	struct sched sch;
	CHECK(sched_init(&sch, ops, kinds, &p) == 0);
	p.t = sched_spawn(&sch, 0, sv[0], NULL);
	CHECK(p.t != NULL);
	sch.serving = probe_serving;
	sch.sleep_cap = probe_cap;
	sch.after_wait = probe_after_wait;
	CHECK(sched_run(&sch) == 0);
	CHECK(p.runs == 3);
	CHECK(p.ev[0] & CR_READ);
	if (p.ev[1] != CR_KILL)
		fprintf(stderr, "%s: a sleeping task resumed with ev 0x%x, not the poke's\n", ops->name, p.ev[1]);
	CHECK(p.ev[1] == CR_KILL); /* not CR_READ: a sleeping task does not watch its fd */
	CHECK(p.waits >= 3 && p.cap_asked >= 2); /* it slept (bounded by the cap) until the poke */
	sched_fini(&sch);
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	read_sleep_poke(&loop_poller_select);
	read_sleep_poke(&loop_poller_poll);
	read_sleep_poke(&loop_poller_epoll);
	return check_done();
}
