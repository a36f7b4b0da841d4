/* ws.h - WebSocket (RFC 6455): the upgrade from HTTP and the frame layer.
 *
 * An HTTP request that asks for "Upgrade: websocket" is handed to
 * ws_handshake(), which answers 101 or a 4xx naming what was wrong. After a
 * 101, http.c gives the connection to proto_ws: frames in, frames out, and
 * the mode's protocol in between, one message at a time:
 *
 *   echo: each message comes back as one message with the same opcode;
 *   chat: each text message is one line-protocol command (chat_line.c);
 *         each line the line protocol writes (replies, deliveries, errors)
 *         leaves as one text message (ws_write_lines, via session_write);
 *         a delivery comes framed already, one msg shared by every
 *         WebSocket subscriber (ws_text_msg; exchange.h's EX_WS).
 *
 * Frames are decoded by libwslay's frame API: a codec with no I/O of its
 * own, fed from what the session offers, like TLS's memory BIOs. The rules
 * the codec does not enforce (masking, reserved bits, opcodes, message
 * order, UTF-8, --max-message) are ws.c's. docs/PROTOCOL.md has them all. */
#ifndef WEFT_WS_H
#define WEFT_WS_H

#include <stdbool.h>
#include <stddef.h>

struct session;
struct http_request;

/* Does the request ask to become a WebSocket (an Upgrade field naming
 * "websocket")? */
bool ws_upgrade_asked(const struct http_request *req);
/* Check the upgrade request and queue the answer: 101 (then the caller
 * must call ws_begin once its own state is gone) or a refusal (400, 405,
 * 426) whose body says what was wrong; the caller closes after the flush.
 * Returns the status. */
int ws_handshake(struct session *s, const struct http_request *req, bool has_body);
/* Make s a WebSocket connection (proto_ws) in the server's mode. */
void ws_begin(struct session *s);
/* Chat over WebSocket: bytes the line protocol writes, each complete line
 * framed as one text message (invalid UTF-8 replaced, so a browser never
 * sees it); 0 or -ENOMEM. */
int ws_write_lines(struct session *s, const void *p, size_t n);
/* One line (its LF or CRLF dropped) as one server text frame, head and
 * payload, made valid UTF-8 as ws_write_lines does: the form a publish is
 * encoded in once for all WebSocket subscribers (exchange.h, EX_WS), who
 * share it by reference like the line form. NULL on ENOMEM. */
struct msg;
struct msg *ws_text_msg(const void *line, size_t n);
/* Chat over WebSocket (a no-op otherwise): queue a close frame with code
 * and reason, after what is queued; the session closes after the flush
 * (a reason given before stays its reason). */
void ws_chat_close(struct session *s, unsigned code, const char *why);
/* (Whether our close frame is queued, so that no delivery may follow it
 * (RFC 6455 5.5.1), is chat.h's chat_ws_closed.) */

/* Incremental UTF-8 validation (RFC 3629: no overlongs, no surrogates, at
 * most U+10FFFF), so a text message split anywhere is judged as a whole. */
struct ws_utf8 {
	unsigned char need;   /* continuation bytes still expected */
	unsigned char lo, hi; /* the range the next one must be in */
};
/* false at the first byte that cannot be part of valid UTF-8. */
bool ws_utf8_feed(struct ws_utf8 *u, const unsigned char *p, size_t n);
static inline bool ws_utf8_complete(const struct ws_utf8 *u) { return u->need == 0; }

#endif
