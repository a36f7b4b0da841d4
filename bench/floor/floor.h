/* floor.h - what the three floor servers share: a loopback listener, a
 * ready line, a stop signal and one epoll instance.
 *
 * The floor servers are measuring sticks, not servers: each does the least a
 * single-threaded epoll server can do per operation (no limits, no timeouts,
 * no protocol checks), so bench/compare can show what the kernel itself
 * costs on this machine next to weft, nginx and redis-server. Never expose
 * one to anything but a benchmark. */
#ifndef FLOOR_H
#define FLOOR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>

struct floor {
	int ep;   /* level-triggered epoll: listener, signalfd, connections */
	int lfd;  /* listening socket on 127.0.0.1 */
	int sfd;  /* signalfd for SIGTERM and SIGINT */
	bool stop;
	/* Called for every accepted connection (non-blocking, TCP_NODELAY); returns
	 * the epoll data.ptr for it, or NULL to have it closed. */
	void *(*on_accept)(int fd);
};

/* Listen on 127.0.0.1:PORT (argv[1], default 0 = ephemeral), raise the
 * descriptor limit, block the stop signals and print
 * "NAME ready: port=P pid=N (a measuring stick, not a server)" on stdout.
 * 0, or exits with a message on failure. */
int floor_init(struct floor *f, int argc, char **argv, const char *name, void *(*on_accept)(int fd));

/* Wait for events; accepts new connections and notices the stop signal
 * itself. Returns how many connection events were left at the front of ev
 * (0 after a stop: check f->stop). */
int floor_wait(struct floor *f, struct epoll_event *ev, int max);

/* Add fd to the epoll set, or change what it waits for. 0 or -1. */
int floor_watch(struct floor *f, int fd, void *ptr, uint32_t events, bool add);

#endif
