/* mark.h - what a receiver remembers of one stream (origin, boot, engine
 * subscription, channel): the last sequence number taken and a window
 * before it, to count gaps and drop duplicates without letting a forged
 * envelope cost a genuine message. The rules are in mark.c. */
#ifndef WEFT_CLUSTER_MARK_H
#define WEFT_CLUSTER_MARK_H

#include <stdbool.h>
#include <stdint.h>

#include "envelope.h"

#define SEQ_WIN 64
#define SEQ_GAP_MAX (1ull << 32) /* a confirmed jump further than this is a restart, not a gap */

struct mark {
	bool used;             /* zeroed: a stream not seen yet */
	uint64_t last, gen;
	uint64_t cand;         /* no key: a far number not yet confirmed (0: none) */
	uint16_t cand_fp;
	bool cand_marker;      /* cand came from a marker (not a delivered message) */
	bool fresh;            /* keyed: a fresh engine subscription; the next number ahead restarts the window, no gap */
	uint64_t bits;         /* bit i: last - i was seen */
	uint16_t fp[SEQ_WIN];  /* fingerprint of the payload seen at seq % SEQ_WIN */
};

/* An envelope of the stream m arrived (m zeroed: the first). true: deliver
 * it; false: a duplicate (counted) or a marker (never delivered). Counts
 * gaps, duplicates and resyncs (stats.h). keyed: envelopes are
 * authenticated (--cluster-key-file), so the strict rules apply. */
bool mark_arrive(struct mark *m, const struct envelope *env, bool keyed);
/* Keyed: env is ahead of the mark m (zeroed: none yet), which mark_arrive
 * would take (a marker: move the mark to), not drop as a replay. */
bool mark_ahead(const struct mark *m, const struct envelope *env);

#endif
