/* ws.c - weft-load --ws: the RFC 6455 client side over wl_io, as a browser
 * does it. The upgrade (GET with a random Sec-WebSocket-Key, 101 checked,
 * Sec-WebSocket-Accept = base64(SHA-1(key + GUID)) verified), every frame
 * masked with a fresh random mask, server frames required unmasked, FIN'd
 * text messages, pings answered with pongs, a close frame ends the stream.
 *
 * Reads turn the server's messages back into a byte stream of payloads, so
 * the scenarios verify them as before: echo checks every byte against the
 * pattern and that each message is exactly --size long; chat (lines) gets a
 * '\n' after every message, as the line protocol's replies end. Writes in
 * line mode send each complete line as one text message. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "wl.h"

#define WS_IN_CAP (64 * 1024)
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

struct wl_ws {
	bool lines;        /* chat: a line out is a message, a message in ends with '\n' */
	bool open, closed;
	size_t expect_len; /* echo: every message must be this long (0: any) */
	uint64_t rng;      /* mask generator (xorshift64*, seeded from RAND_bytes) */
	char accept[32];   /* the Sec-WebSocket-Accept the server must send */
	char req[512];
	size_t req_len, req_off;
	unsigned char in[WS_IN_CAP];
	size_t in_len, in_off;
	uint64_t left;     /* payload bytes of the current data frame not yet delivered */
	uint64_t msg_len;  /* bytes of the current message so far */
	bool fin, nl_due;
	unsigned char last;
	unsigned char *out; /* framed bytes not yet written */
	size_t out_len, out_off, out_cap;
	unsigned char mask[4];
	size_t mask_at;
};

int wl_ws_attach(struct wl_io *io, const struct wl_opts *o)
{
	struct wl_ws *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	unsigned char key[16];
	if (RAND_bytes(key, sizeof(key)) != 1 || RAND_bytes((unsigned char *)&w->rng, sizeof(w->rng)) != 1) {
		free(w);
		return -EIO;
	}
	w->rng |= 1;
	w->lines = strcmp(o->cmd, "chat") == 0;
	w->expect_len = w->lines ? 0 : o->size;
	char k64[32], cat[96], sha[EVP_MAX_MD_SIZE];
	unsigned shalen = 0;
	EVP_EncodeBlock((unsigned char *)k64, key, sizeof(key));
	snprintf(cat, sizeof(cat), "%s%s", k64, WS_GUID);
	if (EVP_Digest(cat, strlen(cat), (unsigned char *)sha, &shalen, EVP_sha1(), NULL) != 1) {
		free(w);
		return -EIO;
	}
	EVP_EncodeBlock((unsigned char *)w->accept, (unsigned char *)sha, (int)shalen);
	int n = snprintf(w->req, sizeof(w->req),
			 "GET / HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
			 "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
			 o->host, o->port, k64);
	w->req_len = (size_t)n;
	io->ws = w;
	return 0;
}

void wl_ws_free(struct wl_io *io)
{
	if (io->ws) {
		free(io->ws->out);
		free(io->ws);
		io->ws = NULL;
	}
}

/* The upgrade: 0 done, -EAGAIN, -EPROTO (not a 101 with the right accept). */
int wl_ws_upgrade(struct wl_io *io)
{
	struct wl_ws *w = io->ws;
	while (w->req_off < w->req_len) {
		ssize_t k = wl_io_raw_write(io, w->req + w->req_off, w->req_len - w->req_off);
		if (k < 0)
			return (int)k;
		w->req_off += (size_t)k;
	}
	for (;;) {
		w->in[w->in_len < WS_IN_CAP ? w->in_len : WS_IN_CAP - 1] = 0;
		char *end = w->in_len ? strstr((char *)w->in, "\r\n\r\n") : NULL;
		if (end) {
			*end = 0;
			if (strncmp((char *)w->in, "HTTP/1.1 101", 12) != 0)
				return -EPROTO;
			char *h = strcasestr((char *)w->in, "\r\nSec-WebSocket-Accept:");
			if (!h)
				return -EPROTO;
			h += 23;
			h += strspn(h, " \t");
			size_t al = strlen(w->accept);
			if (strncmp(h, w->accept, al) != 0 || (h[al] != '\r' && h[al] != '\0'))
				return -EPROTO;
			w->in_off = (size_t)(end + 4 - (char *)w->in); /* frames may follow at once */
			w->open = true;
			return 0;
		}
		if (w->in_len >= 4096)
			return -EPROTO; /* no response header is this long */
		ssize_t r = wl_io_raw_read(io, w->in + w->in_len, 4096 - w->in_len);
		if (r == 0)
			return -ECONNRESET;
		if (r < 0)
			return (int)r;
		w->in_len += (size_t)r;
	}
}

static int out_reserve(struct wl_ws *w, size_t more)
{
	if (w->out_off == w->out_len)
		w->out_off = w->out_len = 0;
	if (w->out_len + more <= w->out_cap)
		return 0;
	size_t cap = w->out_cap ? w->out_cap : 4096;
	while (cap < w->out_len + more)
		cap *= 2;
	unsigned char *p = realloc(w->out, cap);
	if (!p)
		return -ENOMEM;
	w->out = p;
	w->out_cap = cap;
	return 0;
}

int wl_ws_frame_begin(struct wl_io *io, int opcode, size_t len)
{
	struct wl_ws *w = io->ws;
	if (out_reserve(w, 14 + len) < 0)
		return -ENOMEM;
	unsigned char *h = w->out + w->out_len;
	size_t n = 0;
	h[n++] = (unsigned char)(0x80 | opcode);
	if (len < 126) {
		h[n++] = (unsigned char)(0x80 | len);
	} else if (len <= 0xffff) {
		h[n++] = 0x80 | 126;
		h[n++] = (unsigned char)(len >> 8);
		h[n++] = (unsigned char)len;
	} else {
		h[n++] = 0x80 | 127;
		for (int i = 7; i >= 0; i--)
			h[n++] = (unsigned char)((uint64_t)len >> (8 * i));
	}
	/* A fresh mask per frame, as browsers do (xorshift64*: unpredictable
	 * enough for a load generator; browsers use a CSPRNG). */
	w->rng ^= w->rng >> 12;
	w->rng ^= w->rng << 25;
	w->rng ^= w->rng >> 27;
	uint32_t m = (uint32_t)((w->rng * 0x2545F4914F6CDD1Dull) >> 32);
	memcpy(w->mask, &m, 4);
	memcpy(h + n, w->mask, 4);
	n += 4;
	w->mask_at = 0;
	w->out_len += n;
	return 0;
}

void wl_ws_frame_data(struct wl_io *io, const void *p, size_t n)
{
	struct wl_ws *w = io->ws;
	const unsigned char *s = p;
	unsigned char *d = w->out + w->out_len;
	for (size_t i = 0; i < n; i++)
		d[i] = s[i] ^ w->mask[(w->mask_at + i) & 3];
	w->mask_at += n;
	w->out_len += n;
}

int wl_ws_flush(struct wl_io *io)
{
	struct wl_ws *w = io->ws;
	while (w->out_off < w->out_len) {
		ssize_t k = wl_io_raw_write(io, w->out + w->out_off, w->out_len - w->out_off);
		if (k < 0)
			return (int)k;
		w->out_off += (size_t)k;
	}
	return 0;
}

size_t wl_ws_pending(const struct wl_io *io)
{
	return io->ws->out_len - io->ws->out_off;
}

/* Line mode: each complete line of p is one text message (without its
 * line end). Returns the bytes taken (whole lines), or -EAGAIN while earlier
 * frames are still unsent. */
ssize_t wl_ws_write_lines(struct wl_io *io, const void *p, size_t n)
{
	int rc = wl_ws_flush(io);
	if (rc < 0)
		return rc;
	const char *s = p, *end = s + n;
	size_t took = 0;
	while (s < end && took < 256 * 1024) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		if (!nl)
			break;
		size_t k = (size_t)(nl - s);
		if (k && s[k - 1] == '\r')
			k--;
		if (wl_ws_frame_begin(io, 1, k) < 0)
			return -ENOMEM;
		wl_ws_frame_data(io, s, k);
		took += (size_t)(nl + 1 - s);
		s = nl + 1;
	}
	rc = wl_ws_flush(io);
	if (rc < 0 && rc != -EAGAIN)
		return rc;
	return (ssize_t)took;
}

static int message_end(struct wl_ws *w)
{
	if (w->expect_len && w->msg_len != w->expect_len)
		return -EPROTO; /* the server split or joined messages */
	if (w->lines && (w->msg_len == 0 || w->last != '\n'))
		w->nl_due = true;
	w->msg_len = 0;
	return 0;
}

/* One frame header (and a whole control frame) from in: 1 parsed, 0 incomplete, <0 error. */
static int parse_header(struct wl_io *io, struct wl_ws *w)
{
	const unsigned char *p = w->in + w->in_off;
	size_t have = w->in_len - w->in_off;
	if (have < 2)
		return 0;
	if (p[0] & 0x70 || p[1] & 0x80)
		return -EPROTO; /* reserved bits (no extension was negotiated) or a masked server frame */
	int op = p[0] & 0x0f;
	bool fin = p[0] & 0x80;
	uint64_t len = p[1] & 0x7f;
	size_t hl = 2;
	if (len == 126) {
		if (have < 4)
			return 0;
		len = (uint64_t)p[2] << 8 | p[3];
		hl = 4;
	} else if (len == 127) {
		if (have < 10)
			return 0;
		len = 0;
		for (int i = 0; i < 8; i++)
			len = len << 8 | p[2 + i];
		hl = 10;
	}
	if (op >= 8) { /* control: whole, at most 125 bytes */
		if (!fin || len > 125)
			return -EPROTO;
		if (have < hl + len)
			return 0;
		if (op == 9) { /* ping: pong with the same payload */
			if (wl_ws_frame_begin(io, 10, len) < 0)
				return -ENOMEM;
			wl_ws_frame_data(io, p + hl, len);
			int rc = wl_ws_flush(io);
			if (rc < 0 && rc != -EAGAIN)
				return rc;
		} else if (op == 8) {
			w->closed = true;
		} else if (op != 10) {
			return -EPROTO;
		}
		w->in_off += hl + len;
		return 1;
	}
	if (op != 0 && op != 1 && op != 2)
		return -EPROTO;
	if (w->expect_len && len > w->expect_len)
		return -EPROTO;
	w->in_off += hl;
	w->left = len;
	w->fin = fin;
	if (len == 0 && fin)
		return message_end(w) < 0 ? -EPROTO : 1;
	return 1;
}

ssize_t wl_ws_read(struct wl_io *io, void *buf, size_t n)
{
	struct wl_ws *w = io->ws;
	unsigned char *p = buf;
	size_t got = 0;
	for (;;) {
		if (w->nl_due) {
			if (got == n)
				return (ssize_t)got;
			p[got++] = '\n';
			w->nl_due = false;
		}
		if (w->left > 0 && w->in_len > w->in_off) {
			size_t k = w->in_len - w->in_off;
			if (k > w->left)
				k = (size_t)w->left;
			if (k > n - got)
				k = n - got;
			if (k == 0)
				return (ssize_t)got;
			memcpy(p + got, w->in + w->in_off, k);
			w->in_off += k;
			w->left -= k;
			w->msg_len += k;
			w->last = p[got + k - 1];
			got += k;
			if (w->left == 0 && w->fin && message_end(w) < 0)
				return -EPROTO;
			continue;
		}
		if (w->left == 0 && !w->closed) {
			int rc = parse_header(io, w);
			if (rc < 0)
				return rc;
			if (rc > 0)
				continue;
		}
		if (got > 0)
			return (ssize_t)got;
		if (w->closed)
			return 0;
		if (w->in_off == w->in_len) {
			w->in_off = w->in_len = 0;
		} else if (w->in_off > 0) {
			memmove(w->in, w->in + w->in_off, w->in_len - w->in_off);
			w->in_len -= w->in_off;
			w->in_off = 0;
		}
		if (io->short_read) { /* the last read drained the socket: wait for epoll's next edge */
			io->short_read = false;
			return -EAGAIN;
		}
		ssize_t r = wl_io_raw_read(io, w->in + w->in_len, WS_IN_CAP - w->in_len);
		if (r <= 0)
			return r;
		w->in_len += (size_t)r;
	}
}
