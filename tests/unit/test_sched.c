/* test_sched.c - the coro scheduler's deadlines (servers/coro/sched.c), on
 * every poller: a task whose deadline passed while it waited resumes with
 * CR_TIMEOUT, also when its fd became ready in the same round. A socket a
 * client keeps readable at every look (a lingering peer sending without end
 * during the drain) must still meet the drain's end: coro's conn_ended acts
 * only on CR_TIMEOUT. */
#include <stdbool.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "coro/sched.h"

struct probe {
	int runs;
	bool done;
	uint8_t ev; /* what the second run saw */
};

static int probe_run(struct sched *sch, struct task *t)
{
	struct probe *p = sch->data;
	if (p->runs++ == 0) {
		sched_deadline(sch, t, 1);
		usleep(20 * 1000); /* the deadline passes before the poller looks: both are due at once */
		return CR_READ;
	}
	p->ev = t->ev;
	return CR_DONE;
}

static void probe_fini(struct sched *sch, struct task *t)
{
	(void)t;
	((struct probe *)sch->data)->done = true;
}

static bool probe_serving(struct sched *sch) { return !((struct probe *)sch->data)->done; }

static const struct task_kind kinds[] = {{probe_run, probe_fini}};

static void readable_and_due(const struct loop_poller_ops *ops)
{
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	CHECK(write(sv[1], "x", 1) == 1); /* readable from the start, and stays so */
	struct probe p = {0};
	struct sched sch;
	CHECK(sched_init(&sch, ops, kinds, &p) == 0);
	CHECK(sched_spawn(&sch, 0, sv[0], NULL) != NULL);
	sch.serving = probe_serving;
	CHECK(sched_run(&sch) == 0);
	CHECK(p.runs == 2);
	CHECK(p.ev & CR_READ);
	if (!(p.ev & CR_TIMEOUT))
		fprintf(stderr, "%s: readable and past its deadline, resumed without CR_TIMEOUT\n", ops->name);
	CHECK(p.ev & CR_TIMEOUT);
	sched_fini(&sch);
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	readable_and_due(&loop_poller_select);
	readable_and_due(&loop_poller_poll);
	readable_and_due(&loop_poller_epoll);
	return check_done();
}
