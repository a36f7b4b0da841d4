/* warmup.h - with --cluster-key-file, the envelopes a node holds back in
 * the first beacon period after its link comes up (issue 18).
 *
 * The rule before_subscribe (replay.h) needs the sender's off_lb, which is
 * tight only once the receiver has had a genuine envelope or beacon of the
 * sender (beacon.h: every 2 s from a sender active within 60 s). A node
 * whose link just came up (it started, or a link down past the offsets'
 * two periods) knows nobody: its clients reconnect and resubscribe in
 * exactly those seconds, and anyone who can PUBLISH on the engine replayed
 * envelopes captured in the last 30 s, judged by the age rule only and
 * delivered to the new subscribers. Learning from the replay itself does
 * not help: it arrives late, its sample is low. Only the highest sample
 * over a period that holds a genuine beacon is tight, and genuine beacons
 * cannot be suppressed by someone who can only PUBLISH: so the node waits
 * one beacon period.
 *
 * The warm-up starts whenever the beacon channel is subscribed afresh (the
 * link is up; over redis-cluster:// its shard's link) and lasts WARMUP_MS;
 * before that (the node just started, or its link is down) it is on too.
 * A sender is also trusted, for the rest of the warm-up, once it answered
 * one of this node's clock requests made in it (beacon.h): its held
 * envelopes are judged then, in order (the other senders' stay held).
 * A sender is trusted if its off_lb has been learned without a break since
 * before trust_before: the last moment from which the link had been up for
 * a whole WARMUP_MS (advanced each tick while up and not warming, frozen
 * while down or warming). Not simply "known when the warm-up started": a
 * link lost during a warm-up and back would then trust an off_lb learned
 * only from replays. During a warm-up every authenticated envelope (message
 * or marker) of an untrusted sender is learned from and held here in
 * arrival order; its later ones stay untrusted, so are held behind it (a
 * sender's order is kept). At the warm-up's end, or WARMUP_MS after an
 * envelope was held (whichever comes first: a beacon channel whose shard
 * stays down delays nothing for longer), each is judged and delivered as
 * if it had just arrived, with the off_lb learned meanwhile, but for its
 * age and its subscription: reckoned when it came (a genuine one must not
 * grow too old in the hold, nor be refused as sent before a subscription
 * made again after it came: over redis-cluster:// its shard's link lost
 * and made again in the hold).
 *
 * Bounded in bytes (HOLD_BYTES, or one largest envelope): when one would
 * not fit, the oldest are judged at once, in order, until it fits
 * (counted); with no memory for its copy, every held one and then it are
 * judged at once (counted). Kept when the link goes down: each is judged
 * on the subscription it came on, so one made again when the link is back
 * costs no genuine one, and judging them at the down let anyone who can
 * PUBLISH end the hold at will (a bulk string larger than any message
 * drops the link: a protocol error). The bridge's SIGTERM frees them: its
 * clients are going. Never dropped for room: a flood of replays
 * would then cost genuine messages; such a flood reopens the window for the
 * envelopes it pushes out early, which the counter shows.
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

/* One beacon period (BEACON_TICKS ticks: a sender's beacon leaves within
 * it) and a margin for the beacon's way through the engine and the ticks of
 * the two nodes not lining up. */
#define WARMUP_MARGIN_MS 1000
#define WARMUP_MS ((uint64_t)BEACON_TICKS * LINK_TICK_MS + WARMUP_MARGIN_MS)
_Static_assert(WARMUP_MS > (uint64_t)BEACON_TICKS * LINK_TICK_MS, "a warm-up holds a whole beacon period");
/* What a warm-up holds: an active cluster's ~3 s of remote traffic for a
 * node's clients, well inside what one link's read queue holds. */
#define HOLD_BYTES (4u << 20)
#define WARM_NEVER UINT64_MAX /* until: the beacon channel not subscribed yet */

struct held_env {
	struct held_env *next;
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
	uint64_t until;        /* warming while now < until (ms, monotonic) */
	uint64_t started;      /* the last warm-up started then (ms, monotonic; 0: none yet): an off_lb
	                          proved since is trusted, and what is held waits a whole warm-up from it */
	uint64_t trust_before; /* an off_lb learned since no later than this is trusted (0: none) */
	struct held_env *head, **tail;
	size_t bytes, max;
};

/* A warm-up holding up to max bytes (at least HOLD_BYTES), not started. */
void warmup_init(struct warmup *w, size_t max);
/* The link (its beacon channel) is up at now: a warm-up starts. */
void warmup_start(struct warmup *w, uint64_t now);
/* The link is down (or not all of it up): no trust is gained meanwhile. */
void warmup_stop(struct warmup *w);
/* A tick at now, the link up: the trust an off_lb earns moves on. */
void warmup_tick(struct warmup *w, uint64_t now);
bool warmup_active(const struct warmup *w, uint64_t now);
/* Whether an off_lb learned since since is trusted. */
static inline bool warmup_trusts(const struct warmup *w, uint64_t since) { return since <= w->trust_before; }
/* Whether an off_lb proved by a clock answer at proved (0: never) is
 * trusted: proved in this warm-up (beacon.h: the answer was made after a
 * request of it). */
static inline bool warmup_proves(const struct warmup *w, uint64_t proved)
{
	return proved && w->until != WARM_NEVER && proved >= w->started;
}
/* Whether a copy of bytes would fit now. */
size_t warmup_cost(size_t pn, size_t cn, size_t n);
bool warmup_fits(const struct warmup *w, size_t bytes);
/* Append a copy of the envelope (its data too), arrived at now (ms,
 * monotonic) and wall (stamp_clock) on a subscription made at sub; false:
 * no memory. */
bool warmup_hold(struct warmup *w, const struct envelope *env, bool inbox, const char *pat, size_t pn,
                 const char *ch, size_t cn, uint64_t now, uint64_t wall, uint64_t sub);
/* Whether the oldest held one is due at now: the warm-up is over, or it
 * was held WARMUP_MS ago and the last warm-up started as long ago (one
 * held over a link down waits a whole beacon period after it is back). */
bool warmup_due(const struct warmup *w, uint64_t now);
/* The oldest held one, taken off the queue (the caller frees it), or NULL. */
struct held_env *warmup_take(struct warmup *w);
/* Every held one of (origin, boot), taken off the queue: a list in their
 * order (next; the caller frees each), or NULL. */
struct held_env *warmup_take_of(struct warmup *w, uint64_t origin, uint64_t boot);
void warmup_clear(struct warmup *w);

#endif
