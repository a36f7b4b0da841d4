/* stats.h - counters, one block per thread, summed on demand (/metrics).
 *
 * A thread adds to its own block without atomic read-modify-write; readers sum
 * every block. Blocks of exited threads are reused, so the set of blocks is
 * bounded by the most threads ever alive at once. Add a counter by adding a
 * line to STATS_LIST; /metrics exposes it with no other change.
 *
 * X(id, prometheus name, labels, help) - several ids may share a name with
 * different labels; the first one's help is used. */
#ifndef WEFT_STATS_H
#define WEFT_STATS_H

#include <stdint.h>

#define STATS_LIST(X)                                                                                \
	X(conn_accepted, "weft_connections_accepted_total", "", "connections accepted")               \
	/* one per close, by reason (enum close_reason's order, after CLOSE_UNSET) */                 \
	X(closed_peer, "weft_connections_closed_total", "reason=\"peer\"", "connections closed, by reason (they sum to every close)") \
	X(closed_quit, "weft_connections_closed_total", "reason=\"quit\"", "")                    \
	X(closed_idle, "weft_connections_closed_total", "reason=\"idle\"", "")                    \
	X(closed_reset, "weft_connections_closed_total", "reason=\"reset\"", "")                  \
	X(closed_drain, "weft_connections_closed_total", "reason=\"drain\"", "")                  \
	X(closed_drain_timeout, "weft_connections_closed_total", "reason=\"drain_timeout\"", "")  \
	X(closed_slow, "weft_connections_closed_total", "reason=\"slow_consumer\"", "")           \
	X(closed_timeout, "weft_connections_closed_total", "reason=\"timeout\"", "")              \
	X(closed_bad_input, "weft_connections_closed_total", "reason=\"bad_input\"", "")          \
	X(closed_error, "weft_connections_closed_total", "reason=\"error\"", "")                  \
	X(refused_max_conns, "weft_connections_refused_total", "reason=\"max_conns\"", "connections refused") \
	X(refused_queue, "weft_connections_refused_total", "reason=\"queue_full\"", "")                \
	X(refused_fd_limit, "weft_connections_refused_total", "reason=\"fd_limit\"", "")               \
	X(accept_errors, "weft_accept_errors_total", "", "accept() failures (EMFILE, ENFILE, ...)")    \
	X(bytes_in, "weft_bytes_received_total", "", "bytes read from sockets")                        \
	X(bytes_out, "weft_bytes_sent_total", "", "bytes written to sockets")                          \
	X(proto_echo, "weft_connections_by_protocol_total", "protocol=\"echo\"", "connections by detected protocol") \
	X(proto_http, "weft_connections_by_protocol_total", "protocol=\"http\"", "")                   \
	X(proto_line, "weft_connections_by_protocol_total", "protocol=\"chat_line\"", "")              \
	X(proto_resp, "weft_connections_by_protocol_total", "protocol=\"resp\"", "")                   \
	X(proto_ws, "weft_connections_by_protocol_total", "protocol=\"websocket\"", "")             \
	X(ws_refused, "weft_websocket_handshakes_refused_total", "", "WebSocket upgrade requests refused (4xx)") \
	X(ws_messages, "weft_websocket_messages_total", "", "WebSocket messages received whole")     \
	X(ws_pings, "weft_websocket_pings_total", "", "WebSocket idle pings sent (--ws-ping)")     \
	X(ws_pong_timeouts, "weft_websocket_ping_timeouts_total", "", "WebSocket connections closed unanswered (--ws-pong-timeout)") \
	X(header_timeouts, "weft_errors_total", "kind=\"header_timeout\"", "errors by kind: what an operator may be paged for") \
	X(oom_errors, "weft_errors_total", "kind=\"out_of_memory\"", "")                               \
	/* every HTTP response once, by status (http.c's count()) */                                 \
	X(http_200, "weft_http_requests_total", "status=\"200\"", "HTTP responses, by status")       \
	X(http_400, "weft_http_requests_total", "status=\"400\"", "")                               \
	X(http_403, "weft_http_requests_total", "status=\"403\"", "")                               \
	X(http_404, "weft_http_requests_total", "status=\"404\"", "")                               \
	X(http_405, "weft_http_requests_total", "status=\"405\"", "")                               \
	X(http_408, "weft_http_requests_total", "status=\"408\"", "")                               \
	X(http_411, "weft_http_requests_total", "status=\"411\"", "")                               \
	X(http_413, "weft_http_requests_total", "status=\"413\"", "")                               \
	X(http_431, "weft_http_requests_total", "status=\"431\"", "")                               \
	X(http_500, "weft_http_requests_total", "status=\"500\"", "")                               \
	X(http_501, "weft_http_requests_total", "status=\"501\"", "")                               \
	X(http_505, "weft_http_requests_total", "status=\"505\"", "")                               \
	X(drain_lingers, "weft_drain_lingers_total", "", "connections half-closed on stop while the peer had not received everything") \
	X(chat_published, "weft_chat_published_total", "", "messages published")                      \
	X(chat_delivered, "weft_chat_delivered_total", "", "message deliveries to subscribers")        \
	X(chat_bad_input, "weft_client_errors_total", "kind=\"chat_bad_input\"", "a client's mistakes, answered with an error (not paging material)") \
	X(chat_too_big, "weft_client_errors_total", "kind=\"chat_too_big\"", "")                              \
	X(chat_channel_too_long, "weft_client_errors_total", "kind=\"chat_channel_too_long\"", "")            \
	X(chat_max_subs, "weft_client_errors_total", "kind=\"chat_max_subs\"", "")                            \
	X(chat_list_truncated, "weft_chat_list_truncated_total", "", "/list replies cut at their channel limit") \
	X(input_paused, "weft_input_paused_total", "", "times input already read waited for output to drain (--read-pause)") \
	X(publisher_holds, "weft_publisher_holds_total", "", "times a publisher's input waited for a subscriber to catch up (--publish-hold)") \
	X(slow_hard, "weft_slow_consumer_disconnects_total", "limit=\"hard\"", "subscribers dropped for not reading") \
	X(slow_soft, "weft_slow_consumer_disconnects_total", "limit=\"soft\"", "")                     \
	X(tls_handshakes, "weft_tls_handshakes_total", "", "TLS handshakes completed")                 \
	X(tls_resumed, "weft_tls_resumed_total", "", "TLS handshakes that resumed a session")          \
	X(tls_failures, "weft_errors_total", "kind=\"tls_handshake\"", "")                             \
	X(tls_timeouts, "weft_errors_total", "kind=\"tls_handshake_timeout\"", "")                     \
	X(ws_protocol_errors, "weft_client_errors_total", "kind=\"ws_protocol\"", "")                       \
	X(ws_bad_utf8, "weft_client_errors_total", "kind=\"ws_utf8\"", "")                                  \
	X(ws_too_big, "weft_client_errors_total", "kind=\"ws_too_big\"", "")                                \
	/* --cluster only, and last (STAT__CLUSTER_FIRST) */                                          \
	X(cl_reconnects, "weft_cluster_reconnects_total", "", "--cluster: links to the engine established after the first") \
	X(cl_connect_fail, "weft_cluster_connect_failures_total", "reason=\"connect\"", "--cluster: attempts to reach the engine that failed") \
	X(cl_connect_fail_tls, "weft_cluster_connect_failures_total", "reason=\"tls\"", "")          \
	X(cl_link_lost, "weft_cluster_connect_failures_total", "reason=\"lost\"", "")                \
	X(cl_connect_fail_auth, "weft_cluster_connect_failures_total", "reason=\"auth\"", "")        \
	X(cl_link_unread, "weft_cluster_connect_failures_total", "reason=\"unread\"", "")          \
	X(cl_protocol, "weft_cluster_protocol_errors_total", "", "--cluster: engine replies refused (not RESP, too large, too many elements); the link was dropped") \
	X(cl_auth_failures, "weft_cluster_auth_failures_total", "", "--cluster-key-file: engine messages with a missing or wrong tag, dropped") \
	X(cl_channel_too_long, "weft_cluster_channel_too_long_total", "", "--cluster: engine messages on a channel longer than --max-channel, dropped") \
	X(cl_state_full, "weft_cluster_state_full_total", "table=\"held\"", "--cluster: bookkeeping refused or started afresh at its byte or entry bound") \
	X(cl_state_full_sent, "weft_cluster_state_full_total", "table=\"sent\"", "")             \
	X(cl_state_full_seen, "weft_cluster_state_full_total", "table=\"seen\"", "")             \
	X(cl_state_full_floors, "weft_cluster_state_full_total", "table=\"floors\"", "")         \
	X(cl_state_full_offsets, "weft_cluster_state_full_total", "table=\"offsets\"", "")       \
	X(cl_seen_evicted, "weft_cluster_seen_evicted_total", "", "--cluster: streams forgotten at the seen table's bound, least recently seen first (with a key a replay of one is refused by its stamp)") \
	X(cl_sent, "weft_cluster_sent_total", "", "--cluster: messages sent to the engine")            \
	X(cl_received, "weft_cluster_received_total", "", "--cluster: messages from the engine delivered here") \
	X(cl_echoes, "weft_cluster_echoes_dropped_total", "", "--cluster: our own messages back from the engine, dropped") \
	X(cl_gaps, "weft_cluster_gaps_total", "", "--cluster: messages from other nodes missed (sequence gaps)") \
	X(cl_duplicates, "weft_cluster_duplicates_dropped_total", "", "--cluster: messages from the engine already seen, dropped") \
	X(cl_replays_old, "weft_cluster_replays_refused_total", "reason=\"old\"", "--cluster-key-file: messages refused as replays: old (over 30 s off this node's clock), evicted (not after what a forgotten stream of its sender took), before_subscribe (made before its subscription), no_memory (no memory for its stream's mark), unproved (held, its sender's clock never proved), full (held, given way at the hold's bound)") \
	X(cl_replays_evicted, "weft_cluster_replays_refused_total", "reason=\"evicted\"", "")        \
	X(cl_replays_before_sub, "weft_cluster_replays_refused_total", "reason=\"before_subscribe\"", "") \
	X(cl_replays_no_memory, "weft_cluster_replays_refused_total", "reason=\"no_memory\"", "") \
	X(cl_replays_unproved, "weft_cluster_replays_refused_total", "reason=\"unproved\"", "") \
	X(cl_replays_hold_full, "weft_cluster_replays_refused_total", "reason=\"full\"", "") \
	X(cl_resyncs, "weft_cluster_seq_resyncs_total", "", "--cluster: sequence numbers out of the ordinary (a late one in the window, a confirmed jump beyond 2^32): forgeries or restarts") \
	X(cl_dropped_down, "weft_cluster_dropped_total", "reason=\"down\"", "--cluster: engine copies not sent") \
	X(cl_dropped_full, "weft_cluster_dropped_total", "reason=\"full\"", "")                      \
	X(cl_dropped_moved, "weft_cluster_dropped_total", "reason=\"moved\"", "")                    \
	X(cl_markers_deferred, "weft_cluster_markers_deferred_total", "", "--cluster: end-of-stream markers put off to the next tick (their room, an eighth of the publish queue, was taken; the link or their shard refused them; or no memory to make them)") \
	X(cl_hosts_refused, "weft_cluster_hosts_refused_total", "", "redis-cluster://: slot map addresses not connected to (their host is not a seed's nor in --cluster-hosts)") \
	X(cl_malformed, "weft_cluster_malformed_total", "", "--cluster: engine messages that were not weft envelopes, dropped") \
	X(cl_map_refreshes, "weft_cluster_map_refreshes_total", "", "redis-cluster://: slot maps read (CLUSTER NODES)") \
	X(cl_slot_moves, "weft_cluster_slot_moves_total", "", "redis-cluster://: subscriptions a shard gave up or refused (an unsolicited sunsubscribe, MOVED): subscribed again on the new owner") \
	X(cl_shard_lost, "weft_cluster_shard_links_lost_total", "", "redis-cluster://: links to a shard primary lost (a failover, a restart)") \
	X(cl_pat_ann_taken, "weft_cluster_pattern_announcements_total", "result=\"taken\"", "redis-cluster://: other nodes' pattern announcements received") \
	X(cl_pat_ann_full, "weft_cluster_pattern_announcements_total", "result=\"full\"", "") \
	X(cl_pat_ann_refused, "weft_cluster_pattern_announcements_total", "result=\"refused\"", "") \
	X(cl_pat_ann_sent, "weft_cluster_pattern_announcements_sent_total", "", "redis-cluster://: this node's pattern announcements sent") \
	X(cl_pat_copies, "weft_cluster_pattern_copies_sent_total", "", "redis-cluster://: copies of a publish sent to an inbox with a matching remote pattern") \
	X(cl_pat_unmatched, "weft_cluster_pattern_copies_unmatched_total", "", "redis-cluster://: inbox copies no local pattern matched (a shared inbox, a pattern let go), dropped") \
	X(cl_beacons_sent, "weft_cluster_beacons_sent_total", "", "--cluster-key-file: clock beacons this node sent (every 2 s while it sent an envelope within 60 s)") \
	X(cl_beacons_ok, "weft_cluster_beacons_total", "result=\"ok\"", "--cluster-key-file: other nodes' clock beacons received: ok (their clock offset learned), old (more than 30 s off this node's clock: a replay, or the clocks disagree), bad (not a beacon, or a missing or wrong tag: a forger, or a node with another key)") \
	X(cl_beacons_old, "weft_cluster_beacons_total", "result=\"old\"", "") \
	X(cl_beacons_bad, "weft_cluster_beacons_total", "result=\"bad\"", "") \
	X(cl_clock_requests_sent, "weft_cluster_clock_requests_sent_total", "", "--cluster-key-file: clock requests this node sent (when it holds an envelope of a sender whose clock is not proved, then each second while it does; when the link comes up; before the proofs of the senders it hears run out)") \
	X(cl_clock_requests_refused, "weft_cluster_clock_requests_refused_total", "", "--cluster-key-file: other nodes' clock requests not answered: stamped no later than the requester's last one (a replay), or whose clock offset could not be learned (more than 30 s off, the offsets' bound, no memory)") \
	X(cl_clock_answers_sent, "weft_cluster_clock_answers_sent_total", "", "--cluster-key-file: other nodes' clock requests this node answered") \
	X(cl_clock_answers_dropped, "weft_cluster_clock_answers_dropped_total", "", "--cluster-key-file: clock requests not answered for the bound of answers a second (a flood of requests)") \
	X(cl_clock_answers_proved, "weft_cluster_clock_answers_total", "result=\"proved\"", "--cluster-key-file: answers to this node's clock requests: proved (its own recent nonce: the sender's clock proved for 30 s), unknown (not a nonce of its last requests: the offset learned only)") \
	X(cl_clock_answers_unknown, "weft_cluster_clock_answers_total", "result=\"unknown\"", "") \
	X(cl_warmup_held, "weft_cluster_warmup_held_total", "", "--cluster-key-file: envelopes of other nodes held back until their sender's clock was proved by an answer to a clock request (a sender new to this node, or not heard from for a while), then judged and delivered, or refused if no proof came (replays_refused reason=unproved)") \
	X(cl_warmup_early_no_memory, "weft_cluster_warmup_early_total", "reason=\"no_memory\"", "--cluster-key-file: held envelopes judged before their sender's clock was proved (a replay among them judged by the age rule and the offset learned only): no memory for a copy")

enum stat_id {
#define X(id, name, labels, help) STAT_##id,
	STATS_LIST(X)
#undef X
	STAT__COUNT
};

struct stat_info {
	const char *name, *labels, *help;
};
extern const struct stat_info stat_info[STAT__COUNT];

/* Add v to this thread's counter. */
void stat_add(enum stat_id id, uint64_t v);
static inline void stat_inc(enum stat_id id) { stat_add(id, 1); }
/* Sum over every thread (a consistent-enough snapshot for monitoring). */
uint64_t stat_sum(enum stat_id id);

/* Why a connection closed: each close is counted once, under exactly one
 * reason (server_conn_closed), so the reasons sum to every close. Only
 * error is the server's fault; bad_input, timeout and slow_consumer are the
 * client's; the rest are how connections normally end (docs/METRICS.md). */
enum close_reason {
	CLOSE_UNSET,         /* not decided yet (a session's initial state) */
	CLOSE_PEER,          /* the client closed (FIN, TLS close_notify) */
	CLOSE_QUIT,          /* the client asked (QUIT, /quit, Connection: close) */
	CLOSE_IDLE,          /* --idle-timeout */
	CLOSE_RESET,         /* the socket failed: RST, EPIPE */
	CLOSE_DRAIN,         /* the server is stopping, and the connection was done */
	CLOSE_DRAIN_TIMEOUT, /* the server is stopping, and --drain-timeout cut it */
	CLOSE_SLOW_CONSUMER, /* --outbox-hard / --outbox-soft */
	CLOSE_TIMEOUT,       /* --header-timeout, --handshake-timeout */
	CLOSE_BAD_INPUT,     /* a protocol error or failed TLS handshake ends it */
	CLOSE_ERROR,         /* the server's own failure: out of memory, no thread */
};
static inline enum stat_id stat_closed(enum close_reason why)
{
	return (enum stat_id)(STAT_closed_peer + (why == CLOSE_UNSET ? CLOSE_ERROR : why) - CLOSE_PEER);
}
_Static_assert(STAT_closed_error - STAT_closed_peer == CLOSE_ERROR - CLOSE_PEER, "STATS_LIST and close_reason disagree");

/* Connections closed (every reason) / open now (accepted - closed). */
uint64_t stat_closed_total(void);
static inline uint64_t stat_open_conns(void) { return stat_sum(STAT_conn_accepted) - stat_closed_total(); }

/* The --cluster counters come last: only a node with a bridge shows them
 * (the bridge renders them as its /metrics source). */
#define STAT__CLUSTER_FIRST STAT_cl_reconnects

#endif
