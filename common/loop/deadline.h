/* deadline.h - the one deadline policy, for every model (the event loops
 * through loop_due/loop_expire, threads and pool directly).
 *
 * Three clocks bound a connection: its phase's total deadline (TLS
 * handshake, request head, a last reply's linger: session_deadline_ms), its
 * inactivity limit (idle; while stopping, the drain's quietness:
 * session_idle_limit_ms) counted from its last traffic, and, once stopping,
 * the drain's end (--drain-timeout after the stop signal). */
#ifndef WEFT_DEADLINE_H
#define WEFT_DEADLINE_H

#include <limits.h>
#include <stdbool.h>

struct session;

/* When the connection must next be looked at (now_ms() time; 0 = never).
 * drain_end: 0 while not stopping. */
long long deadline_due(const struct session *s, long long last_ms, long long drain_end);

/* Its time came (now >= deadline_due()): act. True when it must close now
 * (counted); false when it stays to send the last reply its expiry queued
 * (it closes once that is out), or nothing was due after all. A caller that
 * armed a timer at deadline_due() when the connection began to wait, and
 * saw it fire, passes last_ms = DEADLINE_WAITED_OUT. */
bool deadline_expire(struct session *s, long long last_ms, long long now, long long drain_end);
#define DEADLINE_WAITED_OUT LLONG_MIN

/* Accepting failed for want of descriptors or memory (EMFILE, ENFILE,
 * ENOBUFS, ...: server_accept_failed() said so) at failed_at: the listener
 * stays readable, so a model that watched it at once would spin. It is not
 * watched again before the time this returns (the event loops: a loop alarm,
 * loop_accept_failed; threads and pool: their acceptor's poll timeout). */
#define DEADLINE_ACCEPT_BACKOFF_MS 100
static inline long long deadline_accept_retry(long long failed_at) { return failed_at + DEADLINE_ACCEPT_BACKOFF_MS; }

#endif
