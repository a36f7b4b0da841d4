/* blocking.h - what the two blocking models (threads, pool) share: serving
 * ONE connection on the calling thread until it closes, and the acceptor
 * loop that hands accepted sockets on.
 *
 * The recipes differ only in the hand-off: `threads` starts a thread per
 * connection (servers/threads.c), `pool` queues the connection for one of N
 * workers (servers/pool.c). Everything a thread does with its connection is
 * the same, so it lives here once.
 *
 * A serving thread blocks in poll() on three things: its socket, its mailbox
 * eventfd (chat delivery from other threads, owner.h) and the server's stop
 * fd, with the session's inactivity limit as the timeout. */
#ifndef WEFT_BLOCKING_H
#define WEFT_BLOCKING_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "owner.h"

struct server;

/* Shared by every thread of one model. */
struct blocking {
	struct server *srv;
	atomic_llong drain_end; /* CLOCK_MONOTONIC ms; 0 until someone saw the stop */
};

/* One serving thread's own resources, reused across the connections it serves. */
struct blocking_worker {
	struct blocking *b;
	struct owner owner; /* the mailbox of the session being served */
	int efd;            /* eventfd the owner's wake() writes; -1 outside chat mode */
	char *rbuf;
	bool owner_ok;
};

void blocking_init(struct blocking *b, struct server *srv);

/* The moment every draining connection closes at the latest: set, once, by
 * the first thread that sees the stop (now + --drain-timeout). */
long long blocking_drain_end(struct blocking *b);

/* 0 or -errno; blocking_worker_fini() undoes a failed init too. */
int blocking_worker_init(struct blocking_worker *w, struct blocking *b);
void blocking_worker_fini(struct blocking_worker *w);

/* Serve an admitted connection until it closes; then close fd and call
 * server_conn_closed(). */
void blocking_serve(struct blocking_worker *w, int fd, bool tls);

/* Called by the acceptor with each accepted (blocking) socket; it owns fd. */
typedef void blocking_handoff(void *arg, int fd, bool tls);

/* Report ready as `model`, accept on every listener until the stop, then
 * close the listeners and start the drain clock. 0, or -errno if poll()
 * failed (the stop has then been requested). */
int blocking_accept_loop(struct blocking *b, const char *model, blocking_handoff *handoff, void *arg);

/* A condition variable on CLOCK_MONOTONIC, for blocking_wait_zero(). */
int blocking_cond_init(pthread_cond_t *cond);

/* With lock held: wait until *count is 0. The threads counted are bounded by
 * the drain, so this waits until the drain end plus a little; past that it
 * logs what is late and keeps waiting (freeing under a live thread would be
 * worse than a late exit). */
void blocking_wait_zero(struct blocking *b, pthread_mutex_t *lock, pthread_cond_t *cond, const int *count,
                        const char *what);

#endif
