/* test_poller.c - every poller reports each ready fd once per wait, however
 * many are ready: the scan that starts where the last one stopped (fairness)
 * once moved its start as it went, reported a low fd twice and skipped the
 * others, and a lingering client on the highest fd was read a tenth as often
 * as its neighbours during the drain (hostile.drain's endless sender). */
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "poller.h"

#define NSOCK 4

static void each_ready_once(const struct loop_poller_ops *ops)
{
	int sv[NSOCK][2];
	struct loop_poller *p;
	CHECK(ops->create(&p) == 0);
	for (int i = 0; i < NSOCK; i++) {
		CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv[i]) == 0);
		CHECK(write(sv[i][1], "x", 1) == 1); /* readable, and stays so: nothing reads it */
		CHECK(ops->set(p, sv[i][0], 0, LOOP_POLL_IN) == 0);
	}
	for (int round = 0; round < 2 * NSOCK; round++) {
		struct loop_poller_event ev[2 * NSOCK];
		int n = ops->wait(p, 0, ev, 2 * NSOCK);
		int seen[NSOCK] = {0};
		for (int e = 0; e < n; e++)
			for (int i = 0; i < NSOCK; i++)
				if (ev[e].fd == sv[i][0])
					seen[i]++;
		for (int i = 0; i < NSOCK; i++) {
			if (seen[i] != 1)
				fprintf(stderr, "%s: wait %d reported ready fd %d %d times\n", ops->name, round, sv[i][0], seen[i]);
			CHECK(seen[i] == 1);
		}
		CHECK(n == NSOCK);
	}
	ops->destroy(p);
	for (int i = 0; i < NSOCK; i++) {
		close(sv[i][0]);
		close(sv[i][1]);
	}
}

int main(void)
{
	each_ready_once(&loop_poller_select);
	each_ready_once(&loop_poller_poll);
	each_ready_once(&loop_poller_epoll);
	return check_done();
}
