/* bridge.h - chat across weft nodes through an engine (--cluster).
 *
 * The bridge sits beside the exchange (exchange.h's hook): it subscribes on
 * the engine to exactly the channels and patterns this node's clients hold,
 * sends a copy of every local publish (with an envelope: envelope.h), and
 * hands what the engine sends back to the exchange for this node's
 * subscribers only. Local delivery never waits for it: see docs/CLUSTER.md
 * for the guarantees.
 *
 * Threads: the hooks run on whichever thread a client's command runs on and
 * take the bridge lock (after the exchange lock, never the other way round);
 * everything else runs on the loop that hosts the link (link_host.h: loop 0
 * of the model's group, or the host group for threads and pool), which calls
 * into the exchange only without the bridge lock. An engine message for that
 * loop's own subscribers is delivered as a local publish there; other
 * loops' go through their mailboxes. */
#ifndef WEFT_CLUSTER_BRIDGE_H
#define WEFT_CLUSTER_BRIDGE_H

struct bridge;
struct buf;
struct config;
struct exchange;
struct loop_guest;

/* Hook into ex and make the link (it connects once a loop hosts it, in the
 * background: the node serves at once whether or not the engine is there).
 * NULL after logging why. */
struct bridge *bridge_start(struct exchange *ex, const struct config *cfg);
/* The link's host, for loop_guest_set() before the model runs. */
const struct loop_guest *bridge_guest(struct bridge *b);
/* After the model returned (the loop let the link go): free everything
 * (any link state). */
void bridge_stop(struct bridge *b);
/* A /metrics source (metrics_src.h; arg is the bridge): the weft_cluster_*
 * counters (stats.h, from STAT__CLUSTER_FIRST on) and gauges. Registered
 * only with --cluster, so a node without it shows no weft_cluster_ series.
 * 0 or -errno. */
int bridge_metrics(void *bridge, struct buf *out, const char *model);

#endif
