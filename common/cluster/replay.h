/* replay.h - with --cluster-key-file, telling a replay of a stream the
 * receiver has no mark for (first sight; mark.c drops every other replay).
 *
 * Nobody without the key can make an envelope, but anyone on the engine can
 * send a captured one again. Every keyed envelope carries a signed stamp
 * (envelope.h): the sender's clock, unix microseconds, increasing per node
 * (stamp_next). At first sight of a stream:
 *   - old: a stamp further than STAMP_FRESH_US from the receiver's clock,
 *     either way, is refused and makes no mark (captured before the
 *     receiver restarted, or before its mark was forgotten; or the two
 *     clocks disagree: with a key they must agree within the window);
 *   - evicted: the bridge's `seen` forgets the streams seen least recently
 *     at its bound. What it forgets of a sender (origin, boot) on one engine
 *     subscription is kept as a floor, the highest stamp any of its
 *     forgotten streams there had taken: a stamp not above it is a replay of
 *     a forgotten stream, refused (the sender's new streams there are
 *     stamped later: one subscription's envelopes come in their sender's
 *     order). Per subscription, not per sender: one PUBLISH is a pmessage
 *     on each matching pattern, all with the same stamp, so a floor of the
 *     sender raised by one of them (its fan-out alone past `seen`'s bound)
 *     refused the genuine first sight of every later one.
 *   - before_subscribe: Redis sends a message only to the subscriptions
 *     there when it is published, so a genuine first envelope on a
 *     subscription (made at sub, the receiver's clock when its SUBSCRIBE
 *     was queued) was published after it (the bridge applies this rule to
 *     every envelope ahead of its stream's mark too: mark.h mark_ahead). Per sender the receiver learns
 *     off_lb, the highest stamp - arrival (both unix us) of the envelopes
 *     from it whose tag checked (delivered or refused, and the sender's
 *     clock beacons: beacon.h): a lower bound of the sender's clock minus
 *     its own, since nothing arrives before it is stamped (a replay arrives
 *     later still: it cannot raise it, and nobody without the key can make
 *     a stamp). A stamp below sub + off_lb - STAMP_SLACK_US was made
 *     before the subscription, by more than the sender's own queueing
 *     between stamping and Redis taking the PUBLISH: refused. The residual
 *     window is STAMP_SLACK_US plus the smallest stamp-to-arrival delay of
 *     the samples. Replays alone make a low off_lb (a receiver that never
 *     heard the sender alive: it had stopped), so the bridge judges an
 *     envelope by this rule only once its sender's clock is proved by an
 *     answer to a clock request (beacon.h), which is tight within
 *     CLOCK_PROOF_MS; until then it is held, and refused if no proof comes
 *     (warmup.h: offsets_proved). One judged with none (pushed out of the
 *     hold early: a flood, counted) is judged by the age rule and whatever
 *     off_lb was learned.
 * A floor more than the window behind the clock refuses nothing the age
 * rule lets through: it expires (and one is not made at all for a stream
 * idle that long, the usual one to be forgotten). The floors are bounded in
 * entries and bytes; past either the oldest goes (counted), and the replays
 * of that sender's forgotten streams stamped within the window are first
 * sight again.
 * off_lb is the highest sample of the current and the previous period of
 * STAMP_FRESH_US (the receiver's clock, counted from the epoch), so a
 * sender not heard from in that time is unknown again. That also bounds
 * what a clock step does: a sender's stamps run ahead of its clock while
 * it catches up after a step back (stamp_next), its clock after a reset
 * (a step back of the window or more) is lower, and a receiver's own step
 * moves its arrivals; a sample from before such a step may be too high, so
 * that the first envelopes of a subscription made within the step's size
 * are refused (counted), for two periods at most. Senders with an off_lb
 * are bounded like the floors (OFFSET_MAX, OFFSET_BYTES), the one learned
 * from least recently going first (counted).
 *
 * Not thread-safe: the bridge keeps the floors on the link's loop, beside
 * `seen`. */
#ifndef WEFT_CLUSTER_REPLAY_H
#define WEFT_CLUSTER_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "patterns.h"
#include "table.h"

#define STAMP_FRESH_US ((uint64_t)PAT_FRESH_MS * 1000) /* the pattern announcements' window, 30 s */
#define FLOOR_MAX 4096           /* floors (sender and subscription) */
#define FLOOR_BYTES (512u << 10) /* their entries and buckets */
/* A sender's queueing between stamping an envelope and Redis taking its
 * PUBLISH (bridge.c: a queue of 8 MiB, or 4 --max-message, at most: a link
 * of 4 MiB/s or more drains it in that). A first message queued longer than
 * this plus the fastest delivery seen from its sender is refused. */
#define STAMP_SLACK_US 2000000ull
#define OFFSET_MAX FLOOR_MAX   /* senders with an off_lb */
#define OFFSET_BYTES (640u << 10) /* OFFSET_MAX of them, each with when heard and proved */

/* The clock a stamp is read on: unix time, microseconds. */
uint64_t stamp_clock(void);
/* The stamp of this node's next envelope, its last being last and its clock
 * (stamp_clock) now clock: the clock, or one more than the last if the clock
 * did not move on (two in the same microsecond), unless that is the window
 * or more ahead of the clock (it stepped back that far): then the clock
 * again (else every new stream of this node would be refused as old for as
 * long as the step; so only then may a stamp be lower than the one before). */
uint64_t stamp_next(uint64_t last, uint64_t clock);

/* FIRST_UNPROVED, FIRST_HOLD_FULL: the bridge's, for a held envelope whose
 * sender's clock was never proved, or that gave way at the hold's bound
 * (warmup.h). */
enum first_sight { FIRST_OK, FIRST_OLD, FIRST_EVICTED, FIRST_BEFORE_SUB, FIRST_UNPROVED, FIRST_HOLD_FULL };

/* FIRST_OLD if stamp is further than STAMP_FRESH_US from now, else FIRST_OK. */
enum first_sight first_sight_age(uint64_t stamp, uint64_t now);

struct floors {
	struct table t; /* origin + boot + subscription (floor_sub): a = the floor (a stamp); the use order is the raise order */
};

/* The floor's engine subscription for a stream: 0 for a channel's (one
 * connection carries them all, in order; over redis-cluster:// the bridge
 * uses the channel's slot instead, bridge.c stream_sub), the pattern's hash (odd) for a
 * pattern's. Two patterns of one hash share a floor: a genuine first sight
 * of one may then be refused as above, nothing else. */
uint64_t floor_sub(const char *pat, size_t pn);
/* A stream of (origin, boot) on subscription sub that had taken stamps up
 * to stamp was forgotten at now (stamp_clock): raise that floor to it. A
 * stamp behind the window makes none. Counts a floor dropped at the bound. */
void floors_raise(struct floors *f, uint64_t origin, uint64_t boot, uint64_t sub, uint64_t stamp, uint64_t now);
/* The first envelope of a stream of (origin, boot) on sub, stamped stamp, at
 * now: FIRST_OK, or why it is a replay (nothing is kept of it). */
enum first_sight first_sight(struct floors *f, uint64_t origin, uint64_t boot, uint64_t sub, uint64_t stamp,
                             uint64_t now);
/* Forget the floors behind the window, oldest raised first. */
void floors_expire(struct floors *f, uint64_t now);
void floors_clear(struct floors *f);

struct offsets {
	struct table t; /* origin + boot: a = the period (now / STAMP_FRESH_US) of the last sample; value: struct off_lb */
};

/* An envelope of (origin, boot) stamped stamp, its tag checked, arrived at
 * now (and mono on the caller's monotonic clock): learn from it (one more
 * than the window off the clock teaches nothing). Counts a sender dropped
 * at the bound. */
void offsets_learn(struct offsets *o, uint64_t origin, uint64_t boot, uint64_t stamp, uint64_t now, uint64_t mono);
/* The sender's off_lb at now into *lb: false if it has none (not heard from
 * in this period or the one before). */
bool offsets_get(struct offsets *o, uint64_t origin, uint64_t boot, uint64_t now, int64_t *lb);
/* A proof (beacon.h: an answer to one of this node's clock requests) of
 * the sender's clock is good for PROOF_KEEP_MS: so long, the proved sample
 * is one of those off_lb is the highest of (its period or the next), and
 * it is tight within CLOCK_PROOF_MS. A sender whose clock is not proved is
 * held (warmup.h): an off_lb learned from what arrives may be made of
 * replays only (a sender that has stopped). */
#define PROOF_KEEP_MS (STAMP_FRESH_US / 1000)
/* A node asks again this long before the proof of a sender it heard from
 * within this long runs out (offsets_renew), so that a live sender's
 * envelopes are not held at each expiry. */
#define PROOF_RENEW_MS 10000
_Static_assert(PROOF_KEEP_MS <= STAMP_FRESH_US / 1000, "a proof lasts no longer than its sample is kept");
/* Whether the sender's off_lb at now was proved within PROOF_KEEP_MS of
 * mono (the caller's monotonic clock, ms). */
bool offsets_proved(struct offsets *o, uint64_t origin, uint64_t boot, uint64_t now, uint64_t mono);
/* A clock answer of the sender, just learned from, proved its off_lb at
 * mono: false if it has none (the bound, no memory). */
bool offsets_prove(struct offsets *o, uint64_t origin, uint64_t boot, uint64_t now, uint64_t mono);
/* A clock request of the sender stamped stamp (its tag checked, learned
 * from at now): whether to answer it, i.e. it is stamped after the last one
 * answered (then it is the last). A node's stamps only grow (stamp_next,
 * across clock steps under STAMP_FRESH_US too), so a captured request
 * replayed is answered at most once: before, a request more than 1 s below
 * the sender's off_lb was refused, and so were all of a node whose clock
 * stepped back, for up to two periods. False if the sender has no off_lb. */
bool offsets_request(struct offsets *o, uint64_t origin, uint64_t boot, uint64_t stamp, uint64_t now);
/* Whether a clock request is due to renew proofs: a sender heard from
 * within PROOF_RENEW_MS has a proof that runs out within PROOF_RENEW_MS.
 * One pass over the senders (OFFSET_MAX at most): once a tick. */
bool offsets_renew(struct offsets *o, uint64_t now, uint64_t mono);
/* The first envelope of a stream on a subscription made at sub (0: not
 * known), after the age and floor rules: FIRST_BEFORE_SUB if its sender
 * has an off_lb and the stamp is below sub + off_lb - STAMP_SLACK_US, else
 * FIRST_OK. */
enum first_sight first_sight_sub(struct offsets *o, uint64_t origin, uint64_t boot, uint64_t stamp, uint64_t sub,
                                 uint64_t now);
void offsets_clear(struct offsets *o);

#endif
