/* beacon.h - clock beacons (--cluster-key-file): a keyed node that sent
 * anything lately tells every other node its clock, so that each knows its
 * off_lb (replay.h) before a replay of one of its envelopes can reach it.
 *
 * The rule before_subscribe (replay.h) refuses a replay captured before a
 * subscription was made only if the receiver has an off_lb for the sender,
 * and a receiver learns one only from the sender's envelopes it gets: a
 * sender heard from on no channel it holds (it publishes elsewhere, the
 * receiver just started, or the sender restarted with a new boot) had
 * none, and the age rule alone let through, up to 30 s after capture, a
 * message published before the victim subscribed. So every keyed node
 * subscribes one more channel (the prefix and BEACON_NAME: a chat name has
 * no space, so no client can hold or publish on it), and a node that sent
 * a message or a marker within the last BEACON_ACTIVE_US publishes on it,
 * every BEACON_TICKS ticks, a beacon (a node that only announces patterns
 * sends none: a replayed announcement reaches no client, and patterns.h
 * refuses it by its own floor):
 *
 *     weft1 <origin> <boot> 0 <n> - <stamp> <tag>\n
 *
 * an envelope with no data (n counts the node's beacons from 1), stamped
 * and tagged like a message on that channel (sign.h). A receiver checks it
 * and learns off_lb from it, as from any authenticated envelope; nothing of
 * it reaches a client, and nothing is kept of it beyond the offsets table
 * (one entry per sender, bounded: replay.h).
 *
 * Why these values: a replay is refused as before_subscribe only if its
 * stamp is more than STAMP_SLACK_US (2 s) before the subscription, so by the
 * time it is judged (after the subscription) its original is more than 2 s
 * old; a beacon every 2 s (BEACON_TICKS of LINK_TICK_MS) went out after it
 * by then, and has arrived unless the engine delays it (its delay lowers
 * the sample: it widens the slack, never refuses a genuine message). A
 * sender quiet for BEACON_ACTIVE_US (60 s) has nothing a receiver takes:
 * the age rule refuses a stamp 30 s off the receiver's clock, and the two
 * clocks may be up to 30 s apart. But beacons alone cannot tell a live
 * sender from one that has stopped: a receiver that never heard it alive
 * (it started after, or its link was down) learns its off_lb from replays
 * only, of its envelopes and its beacons alike, each sample low. So a
 * receiver judges a sender's envelopes only once its clock is proved by an
 * answer to a clock request (below), and holds them until then (warmup.h).
 * What is left: an engine that holds up or suppresses beacons and answers
 * (compromised: it can drop messages anyway), and the STAMP_SLACK_US slack
 * itself.
 *
 * Clock requests (issue 18): a node asks the senders to prove their
 * clocks. Its request and the answers are beacons with a short data field,
 * signed with it (sign.h, on the beacon channel):
 *
 *     ?<nonce>                 a request: 16 hex digits, random (getrandom)
 *     !<requester><nonce>      an answer: the requester's origin and its
 *                              nonce, 16 hex digits each
 *
 * (lower case, exactly these lengths; anything else is not a beacon); a
 * request may name, after the nonce, up to CLOCK_TARGETS senders (their
 * origins, 16 hex digits each): only they answer it. A keyed node sends a
 * request to all when its link comes up and at a tick before the proofs of
 * senders it hears run out (replay.h: offsets_renew); one naming the sender
 * when it holds an envelope of a sender whose clock is not proved (at once,
 * at most one request every CLOCK_ASK_GAP_MS), and at each tick one naming
 * the senders it still holds (its SUBSCRIBE and its PUBLISH go on different
 * connections: the first request's answers may come before it listens; an
 * answer may be dropped). Named, not to all: a stopped sender's replay is
 * held at every node, and a request to all made every active node answer.
 * A keyed node active within BEACON_ACTIVE_US (an inactive one has nothing
 * to prove) answers a valid request of another node that names it or no
 * one at once, each (requester, nonce) at most once (the last CLOCK_SEEN
 * it answered) and CLOCK_ANSWERS a tick at most (the rest dropped,
 * counted), and only one stamped after the requester's last request
 * (replay.h: offsets_request; a replay, whose answer would prove nothing:
 * more than CLOCK_SEEN captures replayed in turn each came as new). An
 * answer carrying one of the requester's last CLOCK_ASKS nonces, come
 * within CLOCK_PROOF_MS of that request, was stamped after the request was
 * made: its sender is alive and its sample genuine and fresh (a replay of
 * it that came in that time is at most CLOCK_PROOF_MS lower), and the
 * requester takes its clock as proved for PROOF_KEEP_MS (replay.h). Any
 * other answer teaches the offset like any beacon, and no proof. A node of
 * a version before clock requests never answers: a keyed node of this
 * version refuses its envelopes (counted, reason="unproved"), so a keyed
 * cluster is upgraded whole.
 *
 * Cost: each active node publishes one beacon (~140 bytes) every 2 s, which
 * the engine delivers to every keyed node: active publishers x nodes / 2
 * deliveries a second (100 x 100 nodes: 5,000/s; over redis-cluster:// all
 * on the beacon channel's shard), and an HMAC per beacon each way.
 *
 * Not thread-safe: the bridge keeps its struct beacon under its lock. */
#ifndef WEFT_CLUSTER_BEACON_H
#define WEFT_CLUSTER_BEACON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "envelope.h"
#include "replay.h"
#include "sign.h"

#define BEACON_NAME " clk" /* after the prefix: the beacon channel */
#define BEACON_LEN 4
#define BEACON_TICKS 2 /* every 2 s (LINK_TICK_MS each): STAMP_SLACK_US, see above */
#define BEACON_ACTIVE_US (2 * STAMP_FRESH_US)

#define CLOCK_NONCE_HEX 16
#define CLOCK_TARGETS 32 /* senders a request may name */
#define CLOCK_REQ_LEN (1 + CLOCK_NONCE_HEX)
#define CLOCK_REQ_MAX (CLOCK_REQ_LEN + CLOCK_TARGETS * CLOCK_NONCE_HEX)
#define CLOCK_ANS_LEN (1 + 2 * CLOCK_NONCE_HEX)
#define BEACON_MAX (ENVELOPE_HEAD_MAX + CLOCK_REQ_MAX) /* a beacon and its data */
_Static_assert(CLOCK_REQ_MAX >= CLOCK_ANS_LEN, "BEACON_MAX holds an answer");
#define CLOCK_ASKS 12       /* a requester's last nonces an answer may carry: CLOCK_PROOF_MS of them */
#define CLOCK_ASK_GAP_MS 250 /* a requester's requests between ticks, at most one so often */
#define CLOCK_PROOF_MS 2000 /* an answer proves its sender's clock within this of its request */
_Static_assert(CLOCK_ASKS * CLOCK_ASK_GAP_MS >= CLOCK_PROOF_MS + 1000, "the nonces of CLOCK_PROOF_MS are kept");
#define CLOCK_SEEN 256      /* requests answered, remembered (requester, nonce): more than a tick's */
#define CLOCK_TICK_ASKS (4 * CLOCK_TARGETS) /* senders held asked for at a tick, at most */
#define CLOCK_ANSWERS 128   /* answers sent per tick at most: a sender proved at as many nodes a second */
_Static_assert(CLOCK_SEEN > CLOCK_ANSWERS, "a tick's answers are remembered");

enum beacon_kind { BEACON_PLAIN, BEACON_REQUEST, BEACON_ANSWER };

struct beacon_clock {
	enum beacon_kind kind;
	uint64_t requester; /* an answer's */
	uint64_t nonce;     /* a request's or an answer's */
	unsigned targets;   /* a request's: the senders it names (0: every active one) */
	uint64_t target[CLOCK_TARGETS];
};

/* Whether the request ck asks origin to answer. */
bool beacon_asks(const struct beacon_clock *ck, uint64_t origin);

struct beacon {
	uint64_t active; /* the stamp of this node's last message or marker (0: none); the
	                    bridge sets it (pattern announcements and beacons do not count) */
	uint64_t n;      /* beacons made */
	unsigned ticks;
	/* requests this node made (nonce, when: ms, monotonic; 0: none) */
	uint64_t ask[CLOCK_ASKS], ask_at[CLOCK_ASKS];
	unsigned ask_next;
	/* requests this node answered, and the answers of this tick */
	uint64_t seen_req[CLOCK_SEEN], seen_nonce[CLOCK_SEEN];
	unsigned seen_next, answers;
};

/* One tick of the link, its clock (stamp_clock) now: whether to send a
 * beacon now (every BEACON_TICKS ticks while a message or marker was
 * stamped within BEACON_ACTIVE_US). */
bool beacon_due(struct beacon *bc, uint64_t now);
/* Write the beacon of (origin, boot) stamped stamp, tagged with k, to out
 * (ENVELOPE_HEAD_MAX bytes); returns its length, or 0 if the tag could not
 * be made (no memory). */
size_t beacon_make(struct beacon *bc, char *out, const struct sign_key *k, uint64_t origin, uint64_t boot,
                   uint64_t stamp);
/* The same with the clock request or answer ck (BEACON_PLAIN: none) after
 * it, to out (BEACON_MAX bytes): the beacon and its data, or 0. */
size_t beacon_make_clock(struct beacon *bc, char *out, const struct sign_key *k, uint64_t origin, uint64_t boot,
                         uint64_t stamp, const struct beacon_clock *ck);
/* Whether this node sent a message or a marker within BEACON_ACTIVE_US of now. */
bool beacon_active(const struct beacon *bc, uint64_t now);
/* A request made at mono (ms) with nonce: remembered (the oldest of
 * CLOCK_ASKS goes). */
void beacon_asked(struct beacon *bc, uint64_t nonce, uint64_t mono);
/* When this node last made a request (ms, monotonic; 0: none since the
 * last beacon_asks_clear). */
static inline uint64_t beacon_last_asked(const struct beacon *bc)
{
	return bc->ask_at[(bc->ask_next + CLOCK_ASKS - 1) % CLOCK_ASKS];
}
/* Forget the requests made (the link came up afresh). */
void beacon_asks_clear(struct beacon *bc);
/* Whether nonce is one of this node's requests made within CLOCK_PROOF_MS
 * of mono. */
bool beacon_asked_for(const struct beacon *bc, uint64_t nonce, uint64_t mono);
/* Whether to answer the request (requester, nonce) now: not answered
 * before (then remembered) and room this tick; *dropped set if refused for
 * the rate. */
bool beacon_answer_ok(struct beacon *bc, uint64_t requester, uint64_t nonce, bool *dropped);
/* A tick: the answers' budget is full again. */
static inline void beacon_answers_tick(struct beacon *bc) { bc->answers = 0; }

enum beacon_check { BEACON_OK, BEACON_MALFORMED, BEACON_BAD_TAG, BEACON_NO_MEMORY };
/* Decode [p, p+n) from the beacon channel into *env and check its tag
 * (BEACON_NO_MEMORY: it could not be checked, sign_check); a data field
 * must be a clock request or answer (beacon_clock). */
enum beacon_check beacon_check(const struct sign_key *k, const char *p, size_t n, struct envelope *env);
/* What a decoded beacon's data is into *ck: false if none of the above. */
bool beacon_clock(const struct envelope *env, struct beacon_clock *ck);

#endif
