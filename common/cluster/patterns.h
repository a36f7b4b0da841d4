/* patterns.h - patterns across nodes over a Redis Cluster (redis-cluster://).
 *
 * Sharded pub/sub has no patterns, so the nodes tell each other theirs: a
 * node holding patterns SPUBLISHes its whole set (an "announcement") on one
 * control channel every node SSUBSCRIBEs, every PAT_ANNOUNCE_TICKS ticks
 * and at once on a change; a publisher sends each message, besides its
 * SPUBLISH on the channel, one copy to the inbox of each bucket with a
 * remote pattern that matches the channel. A node's inbox is the bucket
 * origin % PAT_BUCKETS; every node SSUBSCRIBEs its own. The receiver delivers
 * an inbox copy to its local pattern subscribers only (the channel copy goes
 * to its exact subscribers, as before).
 *
 * This file keeps the remote side: the table of other nodes' patterns.
 * Every entry expires ttl ms after the last announcement naming it. The
 * table is bounded in entries and bytes; what does not fit makes the
 * announcer's whole bucket match every channel until it expires: a flood of
 * made-up announcements costs copies, never a genuine pattern's messages.
 *
 *   keyed (--cluster-key-file, announcements authenticated): an
 *     announcement replaces the announcer's set whole (a pattern let go
 *     stops its copies at once); an older version than the last is refused.
 *     The version is the announcer's clock (unix ms, rpats_clock; one more
 *     if the clock did not move on), so a replay is refused either way:
 *     further than PAT_FRESH_MS from the receiver's clock, or not newer
 *     than the announcer's floor (its last version), which is kept
 *     PAT_FLOOR_MS after its last announcement, past the time any older
 *     one could still pass as fresh (its patterns expire as before).
 *   not keyed: anyone can announce as anyone, so an announcement only adds
 *     and refreshes; a pattern let go stops its copies when it expires.
 *
 * Not thread-safe: the bridge guards it with its lock. */
#ifndef WEFT_CLUSTER_PATTERNS_H
#define WEFT_CLUSTER_PATTERNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "table.h"

#define PAT_BUCKETS 64            /* inboxes: at most this many copies of one publish */
#define PAT_ANNOUNCE_TICKS 2      /* LINK_TICK_MS each: every 2 s */
#define PAT_TTL_MS 5000           /* the default of rpats.ttl (the bridge's is longer: bridge.c) */
#define PAT_ANN_BYTES 16384       /* one announcement's pattern list; a larger set is announced as "*" */
#define PAT_NAME_MAX 256          /* one pattern (a chat name is at most 200) */
#define PAT_TABLE_MAX 4096        /* remote (node, pattern) entries and nodes */
#define PAT_TABLE_BYTES (1u << 20)
#define PAT_MATCH_WORK (64u << 10) /* bytes of pattern + name globbed per publish; past it, undecided buckets take a copy */
#define PAT_FRESH_MS 30000        /* keyed: a version further than this from the receiver's clock is refused */
#define PAT_FLOOR_MS (2 * PAT_FRESH_MS + 1000) /* keyed: the announcer's last version is kept this long */

struct rpats {
	struct table t;                   /* 'o'+origin+boot: a = last version (keyed: the floor); 'p'+origin+boot+pattern:
	                                     a = version; b = expiry (ms) of both; flags: the bucket */
	uint64_t all_until[PAT_BUCKETS];  /* a bucket that did not fit: every channel until then (ms) */
	uint64_t all_max;                 /* the latest of all_until */
	uint64_t ttl;                     /* ms an announcement lasts (0: PAT_TTL_MS) */
	size_t npats;                     /* 'p' entries */
	uint32_t nb[PAT_BUCKETS];         /* 'p' entries per bucket */
};

/* The outcome of one announcement. */
enum pat_ann { PAT_ANN_OK, PAT_ANN_BAD, PAT_ANN_STALE, PAT_ANN_CLOCK, PAT_ANN_FULL };

/* Take the announcement of (origin, boot), version ver, whose pattern list
 * (patterns separated by one space) is [list, list+n), at now (ms, the
 * expiries' clock) and wall (ms, rpats_clock: keyed only).
 * PAT_ANN_BAD: not a list of patterns (nothing taken); PAT_ANN_STALE (keyed):
 * not newer than the announcer's floor; PAT_ANN_CLOCK (keyed): ver further
 * than PAT_FRESH_MS from wall (an old replay, or the clocks disagree);
 * PAT_ANN_FULL: taken as far as it fit, and the bucket matches everything
 * until it expires. */
enum pat_ann rpats_announce(struct rpats *r, uint64_t origin, uint64_t boot, uint64_t ver, const char *list, size_t n,
                            bool keyed, uint64_t now, uint64_t wall);
/* The clock an announcement's version is read on: unix time, ms. */
uint64_t rpats_clock(void);
/* The version of this node's next announcement, its last being last and
 * its clock (rpats_clock) now clock: the clock, or one more than the last
 * if the clock did not move on, unless that is PAT_FRESH_MS or more ahead
 * of the clock (it stepped back that far): then the clock again. */
uint64_t rpats_next_version(uint64_t last, uint64_t clock);
/* The buckets (bit k: inbox k) with a live remote pattern matching [ch, ch+cn).
 * At most PAT_MATCH_WORK bytes of patterns and name are globbed: a table
 * that would take more (a flood of slow patterns) answers the buckets not
 * decided by then as matching (copies, not CPU, on every publish). */
uint64_t rpats_match(struct rpats *r, const char *ch, size_t cn, uint64_t now);
/* Push every expiry ms later (the time announcements could not flow). */
void rpats_extend(struct rpats *r, uint64_t ms);
/* Forget what expired. */
void rpats_sweep(struct rpats *r, uint64_t now);
void rpats_clear(struct rpats *r);
/* Whether the list is well formed: 1 to PAT_NAME_MAX bytes each, none <= ' '
 * or 0x7f, separated by one space (an empty list is one). */
bool rpats_list_ok(const char *list, size_t n);

#endif
