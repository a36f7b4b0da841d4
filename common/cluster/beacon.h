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
 * clocks may be up to 30 s apart. A receiver has no off_lb for a sender
 * yet in its first beacon period after its link comes up (after it
 * started, or a link down for 30 to 60 s and more): it holds back that
 * sender's envelopes until a beacon period has passed (warmup.h: WARMUP_MS
 * is this period and a margin). What is left: an engine that holds up or
 * suppresses the beacons (compromised, or someone who can delay messages),
 * and the STAMP_SLACK_US slack itself.
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

struct beacon {
	uint64_t active; /* the stamp of this node's last message or marker (0: none); the
	                    bridge sets it (pattern announcements and beacons do not count) */
	uint64_t n;      /* beacons made */
	unsigned ticks;
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

enum beacon_check { BEACON_OK, BEACON_MALFORMED, BEACON_BAD_TAG, BEACON_NO_MEMORY };
/* Decode [p, p+n) from the beacon channel into *env and check its tag
 * (BEACON_NO_MEMORY: it could not be checked, sign_check). */
enum beacon_check beacon_check(const struct sign_key *k, const char *p, size_t n, struct envelope *env);

#endif
