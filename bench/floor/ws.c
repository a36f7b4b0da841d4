/* floor-ws - a measuring stick, not a server: the least a single-threaded
 * epoll WebSocket echo server must do per message. The upgrade (find
 * Sec-WebSocket-Key, SHA-1 and base64 it with OpenSSL, answer 101), then per
 * read: parse each frame header, unmask the payload into the reply (eight
 * bytes at a time) behind an unmasked header, and write all replies of the
 * read at once. Pings get pongs, a close is echoed and ends the connection.
 * No limits, no timeouts and none of the checks RFC 6455 asks of a server
 * (UTF-8 of text, reserved bits, control frame sizes, fragmentation rules):
 * weft's cost above this line includes them. bench/compare runs it as the
 * ws-echo cells' floor.
 *
 *     floor-ws [PORT]      (127.0.0.1 only; prints "floor-ws ready: port=P ...") */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "floor.h"

#define BUF (256 * 1024)

struct conn {
	int fd;
	bool open;      /* upgraded */
	bool closing;   /* a close was echoed: close once written */
	char *in;       /* a partial request or frame kept from the last read */
	size_t in_len;
	char *pending;  /* reply bytes the socket would not take yet */
	size_t len, off;
};

static struct floor fl;
static char buf[BUF + 16], out[BUF + BUF / 2 + 64];

static void *on_accept(int fd)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (c)
		c->fd = fd;
	return c;
}

static void conn_close(struct conn *c)
{
	close(c->fd);
	free(c->in);
	free(c->pending);
	free(c);
}

static int flush(struct conn *c)
{
	while (c->off < c->len) {
		ssize_t w = write(c->fd, c->pending + c->off, c->len - c->off);
		if (w < 0)
			return errno == EAGAIN ? 1 : -1;
		c->off += (size_t)w;
	}
	free(c->pending);
	c->pending = NULL;
	c->len = c->off = 0;
	return 0;
}

/* Write n bytes of out; keep what the socket would not take. 0, or -1 to close. */
static int send_out(struct conn *c, size_t n)
{
	ssize_t w = write(c->fd, out, n);
	if (w < 0 && errno != EAGAIN)
		return -1;
	if ((size_t)(w > 0 ? w : 0) == n)
		return 0;
	c->off = 0;
	c->len = n - (size_t)(w > 0 ? w : 0);
	c->pending = malloc(c->len);
	if (!c->pending || floor_watch(&fl, c->fd, c, EPOLLOUT, false) < 0)
		return -1;
	memcpy(c->pending, out + (n - c->len), c->len);
	return 0;
}

/* The upgrade: bytes used, 0 incomplete, -1 bad. */
static long upgrade(struct conn *c, char *p, size_t n, size_t *outn)
{
	p[n] = 0;
	char *end = strstr(p, "\r\n\r\n");
	if (!end)
		return n > 8192 ? -1 : 0;
	char *k = strcasestr(p, "\r\nSec-WebSocket-Key:");
	if (!k || k > end)
		return -1;
	k += 20;
	k += strspn(k, " \t");
	size_t kl = strcspn(k, " \t\r");
	char cat[128];
	unsigned char sha[EVP_MAX_MD_SIZE], acc[64];
	unsigned shalen = 0;
	if (kl > 64)
		return -1;
	memcpy(cat, k, kl);
	memcpy(cat + kl, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11", 36);
	if (EVP_Digest(cat, kl + 36, sha, &shalen, EVP_sha1(), NULL) != 1)
		return -1;
	EVP_EncodeBlock(acc, sha, (int)shalen);
	static const char head[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
				   "Sec-WebSocket-Accept: ";
	size_t al = strlen((char *)acc);
	memcpy(out, head, sizeof(head) - 1);
	memcpy(out + sizeof(head) - 1, acc, al);
	memcpy(out + sizeof(head) - 1 + al, "\r\n\r\n", 4);
	*outn = sizeof(head) - 1 + al + 4;
	c->open = true;
	return (long)(end + 4 - p);
}

static void unmask(char *d, const char *s, size_t n, const unsigned char m[4])
{
	uint64_t m8;
	uint32_t m4;
	memcpy(&m4, m, 4);
	m8 = (uint64_t)m4 << 32 | m4;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t v;
		memcpy(&v, s + i, 8);
		v ^= m8;
		memcpy(d + i, &v, 8);
	}
	for (; i < n; i++)
		d[i] = s[i] ^ (char)m[i & 3];
}

/* Frames from p: replies appended to out at *o. Returns bytes used (whole frames). */
static size_t frames(struct conn *c, const char *p, size_t n, size_t *o)
{
	size_t used = 0;
	while (n - used >= 6 && !c->closing) {
		const unsigned char *h = (const unsigned char *)p + used;
		uint64_t len = h[1] & 0x7f;
		size_t hl = 2;
		if (len == 126) {
			hl = 4;
			if (n - used < hl + 4)
				break;
			len = (uint64_t)h[2] << 8 | h[3];
		} else if (len == 127) {
			hl = 10;
			if (n - used < hl + 4)
				break;
			len = 0;
			for (int i = 0; i < 8; i++)
				len = len << 8 | h[2 + i];
		}
		if (n - used < hl + 4 + len || *o + 10 + len > sizeof(out))
			break; /* the rest of this frame comes with a later read */
		int op = h[0] & 0x0f;
		if (op == 9)
			op = 10; /* ping -> pong */
		else if (op == 8)
			c->closing = true;
		if (op != 10 || (h[0] & 0x0f) == 9) {
			unsigned char *r = (unsigned char *)out + *o;
			size_t rl = 0;
			r[rl++] = (unsigned char)((h[0] & 0x80) | op);
			if (len < 126) {
				r[rl++] = (unsigned char)len;
			} else if (len <= 0xffff) {
				r[rl++] = 126;
				r[rl++] = (unsigned char)(len >> 8);
				r[rl++] = (unsigned char)len;
			} else {
				r[rl++] = 127;
				for (int i = 7; i >= 0; i--)
					r[rl++] = (unsigned char)(len >> (8 * i));
			}
			unmask(out + *o + rl, p + used + hl + 4, len, h + hl);
			*o += rl + len;
		}
		used += hl + 4 + len;
	}
	return used;
}

static void on_event(struct conn *c)
{
	if (c->pending) { /* only EPOLLOUT is armed while bytes wait */
		int rc = flush(c);
		if (rc < 0 || (rc == 0 && (c->closing || floor_watch(&fl, c->fd, c, EPOLLIN, false) < 0)))
			conn_close(c);
		return;
	}
	size_t have = c->in_len;
	if (have)
		memcpy(buf, c->in, have);
	ssize_t n = read(c->fd, buf + have, BUF - have);
	if (n <= 0) {
		if (n == 0 || errno != EAGAIN)
			conn_close(c);
		return;
	}
	have += (size_t)n;
	size_t o = 0, used = 0;
	if (!c->open) {
		long u = upgrade(c, buf, have, &o);
		if (u < 0) {
			conn_close(c);
			return;
		}
		used = (size_t)u;
	}
	if (c->open)
		used += frames(c, buf + used, have - used, &o);
	size_t rest = have - used;
	if (rest != c->in_len) {
		free(c->in);
		c->in = rest ? malloc(rest) : NULL;
		if (rest && !c->in) {
			conn_close(c);
			return;
		}
	}
	if (rest)
		memcpy(c->in, buf + used, rest);
	c->in_len = rest;
	if (rest == BUF) { /* a frame larger than the buffer: not for a floor */
		conn_close(c);
		return;
	}
	if (o && send_out(c, o) < 0) {
		conn_close(c);
		return;
	}
	if (c->closing && !c->pending)
		conn_close(c);
}

int main(int argc, char **argv)
{
	floor_init(&fl, argc, argv, "floor-ws", on_accept);
	struct epoll_event ev[512];
	while (!fl.stop) {
		int n = floor_wait(&fl, ev, 512);
		for (int i = 0; i < n; i++)
			on_event(ev[i].data.ptr);
	}
	return 0;
}
