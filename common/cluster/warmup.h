/* warmup.h - with --cluster-key-file, the envelopes a node holds back
 * until their sender's clock is proved (issue 18).
 *
 * The rule before_subscribe (replay.h) needs the sender's off_lb to be
 * tight: learned from a sample the sender made lately, not only from what
 * arrives, which anyone who can PUBLISH on the engine may have captured and
 * sent again (a replay arrives late: its sample is low, and an off_lb made
 * of replays alone lets through every replay published before a
 * subscription). A sender that is alive proves its clock by answering a
 * clock request (beacon.h): the answer carries the requester's fresh nonce,
 * so it was stamped after the request, and its sample is tight within
 * CLOCK_PROOF_MS. A sender that has stopped never answers: the replays of
 * its last 30 s (a node that restarts, or one whose link was down when the
 * sender was last alive, never heard a genuine sample of it) are refused.
 * Beacons alone cannot tell the two: a replayed beacon is one more low
 * sample.
 *
 * So, at any time, every authenticated envelope (message or marker, on a
 * channel, a pattern or an inbox copy) of a sender whose clock is not
 * proved (replay.h: offsets_proved, a proof is good for PROOF_KEEP_MS) is
 * learned from and held here, in arrival order, and the bridge sends a
 * clock request (at once, then each tick while anything is held). The
 * sender's answer proves it: everything held of it is judged then, in
 * order (a sender's later envelopes are held behind its earlier ones, so
 * its order is kept). What is still held WARMUP_MS after it came, counted
 * only while the link (its beacon channel) is up, has no proof: refused,
 * counted (weft_cluster_replays_refused_total{reason="unproved"}). A node
 * asks again before the proofs of the senders it hears expire (replay.h:
 * offsets_renew), so a live sender's envelopes are held only when it is
 * new to the node, or quiet for a while: one round trip through the engine.
 *
 * The deadline is counted from the later of its arrival and the moment the
 * link was last up again (a held one waits a whole WARMUP_MS after a down:
 * judging at a down let anyone who can PUBLISH end the hold at will, since
 * a bulk string larger than any message drops the link). Each held one is
 * judged on the subscription it came on (over redis-cluster:// a shard's
 * link may be lost and made again in the hold; judged on the new one a
 * genuine one was refused as sent before it), its age as at arrival.
 *
 * Bounded in bytes (HOLD_BYTES, or one largest envelope, and the senders'
 * entries): when one would not fit, the oldest held of the sender that
 * holds the most bytes is refused, counted (reason="full"), until it fits.
 * A flood of replays (of a stopped sender: it never answers) is that
 * sender, and gives way; a live sender new to the node holds one round
 * trip's worth, and to push it out a flood would need captures of more
 * distinct stopped senders than the bound holds of its envelopes. With no
 * memory for a copy, every held one and then it are judged at once, by the
 * rules without a proof (counted: weft_cluster_warmup_early_total). The
 * bridge's SIGTERM frees them: its clients are going.
 *
 * Not thread-safe: the bridge keeps it on the link's loop. */
#ifndef WEFT_CLUSTER_WARMUP_H
#define WEFT_CLUSTER_WARMUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "beacon.h"
#include "envelope.h"
#include "link.h"
#include "table.h"

/* How long an unproved sender's envelope waits for the proof: the request
 * is sent again each tick (BEACON_TICKS of them and a margin), so a live
 * sender has answered several by then. */
#define WARMUP_MARGIN_MS 1000
#define WARMUP_MS ((uint64_t)BEACON_TICKS * LINK_TICK_MS + WARMUP_MARGIN_MS)
_Static_assert(WARMUP_MS > CLOCK_PROOF_MS, "a held one outlives its first request's proof");
/* A held sender is asked for at most so often (a tick, less the ticks' jitter). */
#define WARMUP_ASK_MS (LINK_TICK_MS * 9 / 10)
/* What the hold keeps: a few seconds of a busy cluster's remote traffic
 * for a node's clients, well inside what one link's read queue holds. */
#define HOLD_BYTES (4u << 20)

struct held_env {
	struct held_env *next, *prev; /* the hold's list, in arrival order */
	struct held_env *snext;       /* its sender's */
	struct tentry *sender;        /* its sender's entry (warmup.c) */
	size_t bytes;
	uint64_t at;        /* held at (ms, monotonic) */
	uint64_t wall;      /* and on the stamps' clock (stamp_clock): its age is reckoned then */
	uint64_t sub;       /* when the subscription it came on was made (an inbox copy: the inbox's; 0: not known) */
	struct envelope env; /* data points into mem */
	bool inbox;          /* an inbox copy (redis-cluster://): its patterns are found when judged */
	const char *pat, *ch; /* into mem; pat NULL: a channel's message */
	size_t pn, cn;
	char mem[];
};

struct warmup {
	uint64_t up_since; /* the link (its beacon channel) up since then (ms, monotonic; 0: down, or not yet) */
	struct held_env *head, *tail;
	struct table senders; /* origin + boot: its bytes and list (warmup.c) */
	uint64_t ask_from;    /* warmup_asks's walk starts at this hash's bucket (a turn for each) */
	size_t bytes, max;    /* bytes: of the envelopes; with senders.bytes within max */
};

/* A hold of up to max bytes (at least HOLD_BYTES), the link not up yet. */
void warmup_init(struct warmup *w, size_t max);
/* The beacon channel is subscribed afresh at now (the link, or over
 * redis-cluster:// its shard's link, is up): the deadlines run from now. */
void warmup_start(struct warmup *w, uint64_t now);
/* A tick at now; up: the link (every shard's) is up. While it is not, no
 * deadline runs out: each starts again when it is back. */
void warmup_tick(struct warmup *w, uint64_t now, bool up);
/* Whether a copy of bytes would fit now (with a new sender's entry). */
size_t warmup_cost(size_t pn, size_t cn, size_t n);
bool warmup_fits(const struct warmup *w, size_t bytes);
/* Append a copy of the envelope (its data too), arrived at now (ms,
 * monotonic) and wall (stamp_clock) on a subscription made at sub; false:
 * no memory. */
bool warmup_hold(struct warmup *w, const struct envelope *env, bool inbox, const char *pat, size_t pn,
                 const char *ch, size_t cn, uint64_t now, uint64_t wall, uint64_t sub);
/* Whether the oldest held one's deadline has passed at now: WARMUP_MS since
 * it came and since the link was last up again, the link up. */
bool warmup_due(const struct warmup *w, uint64_t now);
/* The oldest held one, taken off the queue (the caller frees it), or NULL. */
struct held_env *warmup_take(struct warmup *w);
/* Every held one of (origin, boot), taken off the queue: a list in their
 * order (next; the caller frees each), or NULL. O(their number). */
struct held_env *warmup_take_of(struct warmup *w, uint64_t origin, uint64_t boot);
/* The oldest held one of the sender that holds the most bytes, taken off
 * the queue (the caller frees it), or NULL: what gives way at the bound.
 * O(the senders held). */
struct held_env *warmup_take_largest(struct warmup *w);
/* Right after warmup_hold: whether (origin, boot) was never asked for
 * since it is held (then it is, at now): its first request goes at once. */
bool warmup_ask_first(struct warmup *w, uint64_t origin, uint64_t boot, uint64_t now);
/* At a tick: the origins (up to max, into out) of the held senders not
 * asked for within WARMUP_ASK_MS, each asked for at now; past max, the
 * next tick's walk starts at the first one left (each gets its turn). */
unsigned warmup_asks(struct warmup *w, uint64_t now, uint64_t *out, unsigned max);
void warmup_clear(struct warmup *w);

#endif
