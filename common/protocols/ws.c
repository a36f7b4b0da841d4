/* ws.c - WebSocket frames (RFC 6455 section 5) as a protocol: proto_ws.
 *
 * libwslay's frame API decodes (but a whole small frame, which fast_frame
 * decodes the same way, faster): it pulls bytes through recv_cb from what
 * feed() is offered (into its own 4 KiB buffer), unmasks them and hands
 * back pieces of one frame at a time; it already refuses 64-bit lengths
 * with the top bit set, lengths not in their shortest form and control
 * frames that are long (> 125) or fragmented. Its event API would own the
 * message queue and the reassembly without bounds we control, so the rest
 * of the rules live here: client frames must be masked, reserved bits and
 * unknown opcodes are errors (1002), data frames of two messages must not
 * interleave (1002), text must be UTF-8 as a whole (1007), a message may
 * not outgrow --max-message (1009, checked against each frame's declared
 * length before its payload is kept).
 *
 * Back-pressure as every protocol: no new input is pulled while the output
 * is at --read-pause, and the codec is handed one frame at a time (recv_cb),
 * so what it holds is never more than the rest of the current frame: at most
 * one message or control frame is answered with the output full, and the
 * rest of a flood or a pipeline waits in the session (session.h). */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <wslay/wslay.h>

#include "chat.h"
#include "msg.h"
#include "proto.h"
#include "server.h"
#include "session.h"
#include "stats.h"
#include "ws.h"

enum { WS_NORMAL = 1000, WS_GOING_AWAY = 1001, WS_PROTOCOL = 1002, WS_UNSUPPORTED = 1003,
       WS_BAD_DATA = 1007, WS_TOO_BIG = 1009 };

#define WS_CTL_MAX 125 /* control payloads (RFC 6455 5.5) */

struct ws_conn {
	wslay_frame_context_ptr fr;
	const char *rp;       /* the bytes feed() was offered, for recv_cb */
	size_t rn, rused;
	bool pull;            /* recv_cb may take more of them */
	uint64_t wire_left;   /* bytes of the frame being handed over that the codec has not had yet */
	bool closed;          /* our close frame is queued: nothing more is read */
	bool out_broken;      /* out of memory while framing: nothing more is written */
	bool ping_out;        /* an idle ping went out and nothing came back since */
	bool busy;            /* ws_feed runs: the codec stays until it returns */
	uint64_t left;        /* payload bytes of the current frame still to come */
	uint8_t op;           /* the current frame's opcode */
	bool fin;
	uint8_t msg_op;       /* the message being assembled: text or binary; 0 = none */
	struct ws_utf8 utf8;  /* its UTF-8 state, for text */
	struct buf msg;       /* its payload so far */
	size_t msg_len;       /* declared bytes of its frames so far (--max-message) */
	unsigned char ctl[WS_CTL_MAX];
	size_t ctl_n;
	struct buf line;      /* chat: a partial output line */
	void *inner;          /* chat: the line protocol's own state */
};

/* ---- the codec: lent to a connection while it is inside a frame ----
 *
 * A wslay frame context is 4.2 KiB (its 4 KiB input buffer), most of what an
 * idle WebSocket would cost. Between frames it holds nothing (recv_cb hands
 * it one frame at a time), so a connection takes one when it reads a frame
 * that is not whole and small (fast_frame decodes those) and gives it back
 * when it is between frames again: each thread keeps one spare, an idle
 * connection none. The
 * callbacks find their connection in codec_user, not in wslay's user
 * pointer, as the context serves whoever holds it. */
static _Thread_local struct ws_conn *codec_user;
static pthread_key_t spare_key;
static pthread_once_t spare_once = PTHREAD_ONCE_INIT;

static void spare_free(void *fr) { wslay_frame_context_free(fr); }
static void spare_init(void) { (void)pthread_key_create(&spare_key, spare_free); }

static const struct wslay_frame_callbacks ws_callbacks;

/* w->fr, taken from the spare or made; false on ENOMEM. */
static bool codec_take(struct ws_conn *w)
{
	if (w->fr)
		return true;
	pthread_once(&spare_once, spare_init);
	w->fr = pthread_getspecific(spare_key);
	if (w->fr) {
		(void)pthread_setspecific(spare_key, NULL);
		return true;
	}
	return wslay_frame_context_init(&w->fr, &ws_callbacks, NULL) == 0 || (w->fr = NULL, false);
}

/* Give w->fr back if it is between frames (else it stays: its state is the
 * frame under way). One that failed or was closed on is not lent again. */
static void codec_give(struct ws_conn *w)
{
	if (!w->fr || w->busy || w->left || w->wire_left)
		return;
	if (!w->closed && !w->out_broken && !pthread_getspecific(spare_key) &&
	    pthread_setspecific(spare_key, w->fr) == 0) {
		w->fr = NULL;
		return;
	}
	if (w->fr)
		wslay_frame_context_free(w->fr);
	w->fr = NULL;
}

/* ---- output: frames go to the outbox as they are (not through the line
 * framing that session_write applies in chat mode) ----
 *
 * A server's frame head (RFC 6455 5.2: FIN, opcode, never masked, the
 * length in its shortest form) is at most 10 bytes and written here, not by
 * the codec: wslay_frame_send would need a 4 KiB context to write these few
 * bytes, and hands head and payload over in two calls to gather again. */
#define WS_HEAD_MAX 10

/* The head of a final, unmasked frame of n payload bytes at h; its size. */
static size_t frame_head(unsigned char *h, uint8_t op, size_t n)
{
	size_t k = 0;
	h[k++] = (unsigned char)(0x80 | op); /* FIN */
	if (n < 126) {
		h[k++] = (unsigned char)n;
	} else if (n <= 0xFFFF) {
		h[k++] = 126;
		h[k++] = (unsigned char)(n >> 8);
		h[k++] = (unsigned char)n;
	} else {
		h[k++] = 127;
		for (int i = 7; i >= 0; i--)
			h[k++] = (unsigned char)((uint64_t)n >> (8 * i));
	}
	return k;
}

/* The codec only decodes (frame_head writes every frame out). */
static ssize_t send_cb(const uint8_t *data, size_t len, int flags, void *user)
{
	(void)data, (void)len, (void)flags, (void)user;
	return WSLAY_ERR_CALLBACK_FAILURE; /* never called */
}

/* Bytes of the frame that starts at [p, p+n), head and payload; 0 while its
 * head is not all there. (The codec judges the head; this only measures.) */
static uint64_t frame_size(const unsigned char *p, size_t n)
{
	if (n < 2)
		return 0;
	size_t head = 2 + (p[1] & 0x80 ? 4 : 0);
	uint64_t len = p[1] & 0x7F;
	size_t ext = len == 126 ? 2 : len == 127 ? 8 : 0;
	if (n < head + ext)
		return 0;
	if (ext)
		len = 0;
	for (size_t i = 0; i < ext; i++)
		len = len << 8 | p[2 + i];
	return len > UINT64_MAX - head - ext ? UINT64_MAX : head + ext + len;
}

/* The codec gets no byte of a frame before the one it is on is all handed
 * over: otherwise its 4 KiB buffer holds a pipeline of small frames (372
 * "/list" commands) that ws_feed must answer whole, output full or not. A
 * head not yet complete waits in the session (at most 14 bytes). */
static ssize_t recv_cb(uint8_t *buf, size_t len, int flags, void *user)
{
	(void)flags;
	(void)user;
	struct ws_conn *w = codec_user;
	const unsigned char *p = (const unsigned char *)w->rp + w->rused;
	size_t k = w->rn - w->rused;
	if (!w->pull || k == 0)
		return WSLAY_ERR_WOULDBLOCK; /* wslay: "nothing more now" */
	if (w->wire_left == 0 && (w->wire_left = frame_size(p, k)) == 0)
		return WSLAY_ERR_WOULDBLOCK;
	if (k > len)
		k = len;
	if (k > w->wire_left)
		k = (size_t)w->wire_left;
	memcpy(buf, p, k);
	w->rused += k;
	w->wire_left -= k;
	return (ssize_t)k;
}

static int genmask_cb(uint8_t *buf, size_t len, void *user)
{
	(void)user;
	memset(buf, 0, len); /* a server never masks (RFC 6455 5.1); never called */
	return 0;
}

static const struct wslay_frame_callbacks ws_callbacks = {send_cb, recv_cb, genmask_cb};

/* A frame's head and payload are queued in one append: the outbox keeps
 * or drops whole appends (a slow consumer's drop), so a frame is never cut
 * between its head and its payload. */
static void send_frame(struct session *s, struct ws_conn *w, uint8_t op, const void *p, size_t n)
{
	if (w->out_broken || w->closed) /* nothing follows our close frame (RFC 6455 5.5.1) */
		return;
	unsigned char stack[1024];
	unsigned char *f = n <= sizeof(stack) - WS_HEAD_MAX ? stack : malloc(n + WS_HEAD_MAX);
	int rc = -ENOMEM;
	if (f) {
		size_t k = frame_head(f, op, n);
		if (n)
			memcpy(f + k, p, n);
		rc = outbox_append(&s->out, f, k + n);
		if (f != stack)
			free(f);
	}
	if (rc < 0) {
		stat_inc(STAT_oom_errors);
		session_close_for(s, CLOSE_ERROR);
		w->out_broken = true; /* a frame is lost: none may follow */
	}
}

static void send_close(struct session *s, struct ws_conn *w, unsigned code, const char *why)
{
	unsigned char b[WS_CTL_MAX];
	size_t n = strlen(why);
	if (n > sizeof(b) - 2)
		n = sizeof(b) - 2;
	b[0] = (unsigned char)(code >> 8);
	b[1] = (unsigned char)code;
	memcpy(b + 2, why, n);
	send_frame(s, w, WSLAY_CONNECTION_CLOSE, b, n + 2);
	w->closed = true; /* from now on nothing is framed: lines and deliveries are dropped */
	if (s->chat)
		s->chat->ws_closed = true; /* session_write_msg's check */
	session_close_after_flush(s);
}

void ws_chat_close(struct session *s, unsigned code, const char *why)
{
	struct ws_conn *w = s->chat ? s->chat->ws : NULL;
	if (w && !w->closed && !w->out_broken)
		send_close(s, w, code, why);
}

/* The peer broke the protocol: tell it why and close. */
static void fail(struct session *s, struct ws_conn *w, unsigned code, enum stat_id st, const char *why)
{
	stat_inc(st);
	session_close_for(s, CLOSE_BAD_INPUT); /* counted so, though the close frame goes out first */
	send_close(s, w, code, why);
}

/* ---- chat: lines the line protocol writes become text messages ---- */

/* [p, p+n) as valid UTF-8: 0 when it is so already (fixed untouched), 1 when
 * fixed holds it with each byte that cannot be part of it replaced by
 * U+FFFD, -ENOMEM. */
static int utf8_fix(struct buf *fixed, const unsigned char *p, size_t n)
{
	struct ws_utf8 u = {0};
	if (ws_utf8_feed(&u, p, n) && ws_utf8_complete(&u))
		return 0;
	size_t start = 0; /* of the sequence being checked */
	u = (struct ws_utf8){0};
	for (size_t i = 0; i < n; i++) {
		if (ws_utf8_feed(&u, p + i, 1)) {
			if (ws_utf8_complete(&u) && buf_append(fixed, p + start, i + 1 - start) < 0)
				return -ENOMEM;
			if (ws_utf8_complete(&u))
				start = i + 1;
			continue;
		}
		if (buf_append(fixed, "\xEF\xBF\xBD", 3) < 0)
			return -ENOMEM;
		u = (struct ws_utf8){0};
		if (i > start) /* the byte that broke a sequence may start the next one */
			i--;
		start = i + 1;
	}
	if (start < n && buf_append(fixed, "\xEF\xBF\xBD", 3) < 0)
		return -ENOMEM;
	return 1;
}

/* One line as one text message (its bytes made valid UTF-8). */
static void frame_line(struct session *s, struct ws_conn *w, const unsigned char *p, size_t n)
{
	struct buf fixed = {0};
	int rc = utf8_fix(&fixed, p, n);
	if (rc == 0)
		send_frame(s, w, WSLAY_TEXT_FRAME, p, n);
	else if (rc > 0)
		send_frame(s, w, WSLAY_TEXT_FRAME, buf_head(&fixed), buf_used(&fixed));
	buf_free(&fixed);
	if (rc < 0) {
		stat_inc(STAT_oom_errors);
		session_close_for(s, CLOSE_ERROR);
		w->out_broken = true; /* this connection sends nothing more */
	}
}

/* A publish's frame, written once for every WebSocket subscriber. */
struct msg *ws_text_msg(const void *line, size_t n)
{
	const unsigned char *p = line;
	if (n && p[n - 1] == '\n')
		n--;
	if (n && p[n - 1] == '\r')
		n--;
	struct buf fixed = {0};
	int rc = utf8_fix(&fixed, p, n);
	if (rc < 0) {
		buf_free(&fixed);
		return NULL;
	}
	if (rc > 0) {
		p = (const unsigned char *)buf_head(&fixed);
		n = buf_used(&fixed);
	}
	struct msg *m = msg_new(WS_HEAD_MAX + n);
	if (m) {
		unsigned char *h = (unsigned char *)m->data;
		size_t k = frame_head(h, WSLAY_TEXT_FRAME, n);
		memcpy(h + k, p, n);
		m->len = k + n;
	}
	buf_free(&fixed);
	return m;
}

int ws_write_lines(struct session *s, const void *data, size_t n)
{
	struct ws_conn *w = s->chat->ws;
	if (w->closed)
		return 0; /* after our close frame: dropped */
	const unsigned char *p = data, *end = p + n;
	/* Not "until closing": a slow consumer is closing already when its
	 * error line is written, and that line must still go out. */
	while (p < end && !w->out_broken) {
		const unsigned char *nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			break;
		const unsigned char *q = p;
		size_t k = (size_t)(nl - p);
		if (buf_used(&w->line)) { /* the line began in an earlier write */
			if (buf_append(&w->line, p, k) < 0)
				goto oom;
			q = (const unsigned char *)buf_head(&w->line);
			k = buf_used(&w->line);
		}
		if (k && q[k - 1] == '\r')
			k--;
		frame_line(s, w, q, k);
		buf_free(&w->line);
		p = nl + 1;
	}
	if (p < end && buf_append(&w->line, p, (size_t)(end - p)) < 0)
		goto oom;
	return w->out_broken ? -ENOMEM : 0;
oom:
	stat_inc(STAT_oom_errors);
	session_close_for(s, CLOSE_ERROR);
	w->out_broken = true;
	return -ENOMEM;
}

/* Run the line protocol with its own state in s->pstate. */
#define WITH_INNER(s, w, call)            \
	do {                                  \
		(s)->pstate = (w)->inner;         \
		call;                             \
		(w)->inner = (s)->pstate;         \
		(s)->pstate = (w);                \
	} while (0)

/* ---- input ---- */

static bool chat_mode(const struct session *s) { return s->srv->cfg->mode == MODE_CHAT; }

/* A whole message: [p, p+n) is w->msg's, or the frame piece itself when the
 * message came in one (nothing was copied, and no buffer is kept). */
static void message_done(struct session *s, struct ws_conn *w, const char *p, size_t n)
{
	stat_inc(STAT_ws_messages);
	if (!n)
		p = ""; /* an empty message may have no buffer */
	if (!chat_mode(s)) {
		send_frame(s, w, w->msg_op, p, n);
	} else if (w->msg_op != WSLAY_TEXT_FRAME) {
		fail(s, w, WS_UNSUPPORTED, STAT_ws_protocol_errors, "chat takes text messages");
	} else {
		if (n && p[n - 1] == '\n') /* a trailing LF is allowed, as nc sends it */
			n--;
		if (memchr(p, '\n', n)) {
			session_puts(s, "ERR one command per WebSocket message\n"); /* framed by ws_write_lines */
			stat_inc(STAT_chat_bad_input);
		} else {
			WITH_INNER(s, w, chat_line_one(s, p, n));
			/* /quit closes after its BYE: as a WebSocket does (RFC 6455
			 * 7.1.1), or a browser sees an abnormal closure (1006). */
			if (s->closing && !w->closed && !w->out_broken)
				send_close(s, w, WS_NORMAL, "");
		}
	}
	w->msg_op = 0;
	w->msg_len = 0;
	buf_free(&w->msg); /* only a message in pieces had one: an idle connection keeps none */
}

/* A close frame from the peer: answer with the same code (RFC 6455 5.5.1). */
static void close_received(struct session *s, struct ws_conn *w)
{
	if (w->ctl_n == 0) {
		send_close(s, w, WS_NORMAL, "");
		return;
	}
	unsigned code = w->ctl_n >= 2 ? (unsigned)w->ctl[0] << 8 | w->ctl[1] : 0; /* 1 byte: no code */
	bool known = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
	struct ws_utf8 u = {0};
	if (!known)
		fail(s, w, WS_PROTOCOL, STAT_ws_protocol_errors, "invalid close code");
	else if (!ws_utf8_feed(&u, w->ctl + 2, w->ctl_n - 2) || !ws_utf8_complete(&u))
		fail(s, w, WS_BAD_DATA, STAT_ws_bad_utf8, "close reason is not UTF-8");
	else
		send_close(s, w, code, "");
}

static void control_done(struct session *s, struct ws_conn *w)
{
	if (w->op == WSLAY_PING)
		send_frame(s, w, WSLAY_PONG, w->ctl, w->ctl_n);
	else if (w->op == WSLAY_CONNECTION_CLOSE)
		close_received(s, w);
	/* a pong needs nothing */
}

/* The first piece of a frame: is the frame allowed here? */
static bool frame_begins(struct session *s, struct ws_conn *w, const struct wslay_frame_iocb *io)
{
	w->op = io->opcode;
	w->fin = io->fin;
	w->left = io->payload_length;
	w->ctl_n = 0;
	if (!io->mask)
		return fail(s, w, WS_PROTOCOL, STAT_ws_protocol_errors, "client frames must be masked"), false;
	if (io->rsv)
		return fail(s, w, WS_PROTOCOL, STAT_ws_protocol_errors, "reserved bits set (no extension was agreed)"), false;
	if (wslay_is_ctrl_frame(io->opcode)) {
		if (io->opcode > WSLAY_PONG)
			return fail(s, w, WS_PROTOCOL, STAT_ws_protocol_errors, "unknown opcode"), false;
		return true; /* wslay checked length and FIN */
	}
	if (io->opcode > WSLAY_BINARY_FRAME)
		return fail(s, w, WS_PROTOCOL, STAT_ws_protocol_errors, "unknown opcode"), false;
	if ((io->opcode == WSLAY_CONTINUATION_FRAME) != (w->msg_op != 0))
		return fail(s, w, WS_PROTOCOL, STAT_ws_protocol_errors,
		            w->msg_op ? "a new message began inside a fragmented one" : "continuation without a message"),
		       false;
	size_t max = s->srv->cfg->max_message;
	if (io->payload_length > max - w->msg_len)
		return fail(s, w, WS_TOO_BIG, STAT_ws_too_big, "message too big (weft --max-message)"), false;
	w->msg_len += (size_t)io->payload_length;
	if (!w->msg_op) {
		w->msg_op = io->opcode;
		w->utf8 = (struct ws_utf8){0};
	}
	return true;
}

/* One piece of the current frame's payload. */
static void frame_piece(struct session *s, struct ws_conn *w, const uint8_t *p, size_t n)
{
	w->left -= n;
	if (wslay_is_ctrl_frame(w->op)) {
		memcpy(w->ctl + w->ctl_n, p, n); /* wslay bounds a control payload by 125 */
		w->ctl_n += n;
		if (w->left == 0)
			control_done(s, w);
		return;
	}
	if (w->msg_op == WSLAY_TEXT_FRAME && !ws_utf8_feed(&w->utf8, p, n)) {
		fail(s, w, WS_BAD_DATA, STAT_ws_bad_utf8, "text message is not UTF-8");
		return;
	}
	bool whole = !w->left && w->fin && !buf_used(&w->msg); /* the message is this piece: no copy */
	if (n && !whole && buf_append(&w->msg, p, n) < 0) {
		stat_inc(STAT_oom_errors);
		session_close_for(s, CLOSE_ERROR);
		return;
	}
	if (w->left || !w->fin)
		return;
	if (w->msg_op == WSLAY_TEXT_FRAME && !ws_utf8_complete(&w->utf8))
		fail(s, w, WS_BAD_DATA, STAT_ws_bad_utf8, "text message is not UTF-8");
	else if (whole)
		message_done(s, w, (const char *)p, n);
	else
		message_done(s, w, buf_head(&w->msg), buf_used(&w->msg));
}

/* ---- decoding a whole small frame without the codec ----
 *
 * Measured (callgrind, 64 B echo over 100 connections on coro): taking the
 * codec, wslay_frame_recv (which unmasks byte by byte, a modulo each) and
 * recv_cb's copy into its buffer were 1,200 of the 3,300 user-space
 * instructions per message. A frame that is all in the bytes offered, short
 * and well formed as the codec judges a head, is decoded here instead, with
 * the same result: the codec, between frames, would take it in one recv_cb
 * and hand it back as one piece. Anything else (a frame in pieces, a 64-bit
 * length, a head the codec refuses, a payload over WS_FAST_MAX) is the
 * codec's. */
#define WS_FAST_MAX 1024

static void unmask(unsigned char *d, const unsigned char *s, size_t n, const unsigned char key[4])
{
	uint32_t k4;
	memcpy(&k4, key, 4);
	uint64_t k8 = (uint64_t)k4 << 32 | k4; /* the key twice in memory order, whatever the byte order */
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t v;
		memcpy(&v, s + i, 8);
		v ^= k8;
		memcpy(d + i, &v, 8);
	}
	for (; i < n; i++)
		d[i] = s[i] ^ key[i & 3];
}

/* The frame at [q, q+size) (size: frame_size's, all of it offered): false
 * if it is not one the codec would take whole without complaint. */
static bool fast_frame(struct wslay_frame_iocb *io, unsigned char *pl, const unsigned char *q, uint64_t size)
{
	size_t len = q[1] & 0x7F, head = 2;
	bool ctl = (q[0] & 0x08) != 0; /* wslay_is_ctrl_frame(), a macro without parentheses */
	if (!(q[1] & 0x80) || len == 127)
		return false; /* unmasked (refused by frame_begins), or a 64-bit length */
	if (len == 126) {
		len = (size_t)q[2] << 8 | q[3];
		head = 4;
		if (len < 126 || len > WS_FAST_MAX || ctl)
			return false; /* not its shortest form, or a long control frame: the codec fails it */
	}
	if (ctl && !(q[0] & 0x80))
		return false; /* a fragmented control frame: the codec fails it */
	if (size != head + 4 + len)
		return false; /* cannot be (frame_size measured the same head) */
	*io = (struct wslay_frame_iocb){.fin = q[0] >> 7, .rsv = (q[0] >> 4) & 7, .opcode = q[0] & 0x0F, .mask = 1,
	                                .payload_length = len, .data = pl, .data_length = len};
	unmask(pl, q + head + 4, len, q + head);
	return true;
}

static size_t ws_feed(struct session *s, const char *p, size_t n)
{
	struct ws_conn *w = s->pstate;
	w->rp = p;
	w->rn = n;
	w->rused = 0;
	struct ws_conn *was = codec_user;
	w->busy = true;
	while (!s->closing && !w->closed) {
		/* What the codec holds is always decoded (a reply waits on it);
		 * new input only while the output has room. */
		w->pull = !session_output_full(s);
		struct wslay_frame_iocb io;
		if (!w->left && !w->wire_left) { /* between frames: the codec, if held, holds nothing */
			const unsigned char *q = (const unsigned char *)p + w->rused;
			size_t k = n - w->rused;
			uint64_t size = w->pull ? frame_size(q, k) : 0;
			unsigned char pl[WS_FAST_MAX];
			if (!size)
				break; /* no input wanted, or no whole head: recv_cb would say so */
			if (size <= k && fast_frame(&io, pl, q, size)) {
				w->rused += (size_t)size;
				w->ping_out = false;
				if (!frame_begins(s, w, &io))
					break;
				frame_piece(s, w, pl, io.data_length);
				continue;
			}
		}
		if (!codec_take(w)) {
			stat_inc(STAT_oom_errors);
			session_close_for(s, CLOSE_ERROR);
			break;
		}
		codec_user = w;
		ssize_t r = wslay_frame_recv(w->fr, &io);
		codec_user = was;
		if (r == WSLAY_ERR_WANT_READ)
			break;
		if (r < 0) {
			fail(s, w, WS_PROTOCOL, STAT_ws_protocol_errors, "malformed frame");
			break;
		}
		w->ping_out = false; /* the peer is there: a pong or anything else */
		if (w->left == 0 && !frame_begins(s, w, &io))
			break;
		frame_piece(s, w, io.data, io.data_length);
	}
	w->rp = NULL;
	w->busy = false;
	codec_give(w);
	return s->closing || w->closed ? n : w->rused;
}

static void ws_eof(struct session *s)
{
	(void)s; /* the stream ended without a close frame (1006 on the peer's side): nothing to answer */
}

static void ws_stop(struct session *s)
{
	struct ws_conn *w = s->pstate;
	if (w->inner)
		WITH_INNER(s, w, proto_chat_line.stop(s));
	if (!w->closed)
		send_close(s, w, WS_GOING_AWAY, "server shutting down");
}

/* ---- inactivity: idle pings (--ws-ping, --ws-pong-timeout) ---- */

/* A WebSocket is pinged after --ws-ping without input, unless the session's
 * own limit (--idle-timeout; none for a chat subscriber) comes first. */
static int ws_idle_limit(const struct session *s, int limit)
{
	const struct ws_conn *w = s->pstate;
	const struct config *cfg = s->srv->cfg;
	if (!cfg->ws_ping_ms || w->closed || w->out_broken)
		return limit;
	if (w->ping_out)
		return cfg->ws_pong_timeout_ms;
	return limit && limit <= cfg->ws_ping_ms ? limit : cfg->ws_ping_ms;
}

/* Close for inactivity with a close frame first, where the socket takes it
 * (deadline.c closes at once a connection whose output is stuck). */
static void close_idle(struct session *s, struct ws_conn *w, const char *why)
{
	session_close_for(s, CLOSE_IDLE);
	if (!w->closed && !w->out_broken)
		send_close(s, w, WS_GOING_AWAY, why);
}

static bool ws_idle(struct session *s, int limit)
{
	struct ws_conn *w = s->pstate;
	if (w->ping_out) {
		stat_inc(STAT_ws_pong_timeouts);
		close_idle(s, w, "no pong within --ws-pong-timeout");
		return false;
	}
	if (ws_idle_limit(s, limit) == limit) { /* the session's own limit came first: --idle-timeout */
		close_idle(s, w, "idle for --idle-timeout");
		return false;
	}
	if (session_pending(s)) { /* it took none of its output for --ws-ping: a ping would wait behind it */
		stat_inc(STAT_ws_pong_timeouts);
		close_idle(s, w, "no progress for --ws-ping");
		return false;
	}
	send_frame(s, w, WSLAY_PING, "weft", 4);
	w->ping_out = true;
	stat_inc(STAT_ws_pings);
	return !s->closing;
}

static void ws_fini(struct session *s)
{
	struct ws_conn *w = s->pstate;
	if (!w)
		return;
	if (s->chat)
		s->chat->ws = NULL;
	if (w->inner)
		WITH_INNER(s, w, proto_chat_line.fini(s));
	if (w->fr)
		wslay_frame_context_free(w->fr);
	buf_free(&w->msg);
	buf_free(&w->line);
	free(w);
	s->pstate = NULL;
}

static int ws_init(struct session *s)
{
	struct ws_conn *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	/* w->fr: taken when a frame is read or written (codec_take) */
	s->pstate = w;
	if (chat_mode(s)) {
		int rc = 0;
		WITH_INNER(s, w, rc = proto_chat_line.init(s));
		if (rc < 0) {
			ws_fini(s);
			return rc;
		}
		s->chat->ws = w; /* from now on the line protocol's lines are framed */
		s->chat->fmt = EX_WS; /* and deliveries come framed (ws_text_msg), shared */
	}
	return 0;
}

const struct proto proto_ws = {
	.name = "websocket",
	.counter = STAT_proto_ws,
	.init = ws_init,
	.feed = ws_feed,
	.eof = ws_eof,
	.stop = ws_stop,
	.idle_limit = ws_idle_limit,
	.idle = ws_idle,
	.fini = ws_fini,
};

void ws_begin(struct session *s)
{
	s->proto = &proto_ws;
	stat_inc(STAT_proto_ws);
	if (ws_init(s) < 0) {
		stat_inc(STAT_oom_errors);
		s->proto = NULL;
		session_close_for(s, CLOSE_ERROR);
	}
}

/* ---- UTF-8 ---- */

bool ws_utf8_feed(struct ws_utf8 *u, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		/* ASCII, eight bytes at a time: chat text mostly is, and every publish
		 * is validated three times (its message in, its delivery frame, its
		 * reply). */
		while (!u->need && n - i >= 8) {
			uint64_t x;
			memcpy(&x, p + i, 8);
			if (x & 0x8080808080808080ull)
				break;
			i += 8;
		}
		if (i == n)
			break;
		unsigned char c = p[i];
		if (u->need) {
			if (c < u->lo || c > u->hi)
				return false;
			u->need--;
			u->lo = 0x80;
			u->hi = 0xBF;
			continue;
		}
		if (c < 0x80)
			continue;
		u->lo = 0x80;
		u->hi = 0xBF;
		if (c >= 0xC2 && c <= 0xDF)
			u->need = 1;
		else if (c >= 0xE0 && c <= 0xEF) {
			u->need = 2;
			if (c == 0xE0)
				u->lo = 0xA0; /* overlong */
			else if (c == 0xED)
				u->hi = 0x9F; /* surrogates */
		} else if (c >= 0xF0 && c <= 0xF4) {
			u->need = 3;
			if (c == 0xF0)
				u->lo = 0x90; /* overlong */
			else if (c == 0xF4)
				u->hi = 0x8F; /* above U+10FFFF */
		} else
			return false;
	}
	return true;
}
