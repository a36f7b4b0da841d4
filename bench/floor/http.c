/* floor-http - a measuring stick, not a server: the least a single-threaded
 * epoll server can do per keep-alive HTTP request. It parses nothing: it
 * counts "\r\n\r\n" (the end of a request head; bodies are not supported)
 * and writes that many copies of one canned 200 response, a whole pipelined
 * batch in one write(). No limits, no timeouts: bench/compare runs it as the
 * HTTP cells' floor, next to weft and nginx.
 *
 *     floor-http [PORT]      (127.0.0.1 only; prints "floor-http ready: port=P ...") */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "floor.h"

/* The same body as weft's and the nginx anchor's GET /. */
static const char RESP[] = "HTTP/1.1 200 OK\r\nServer: floor\r\nContent-Type: text/plain\r\n"
			   "Content-Length: 14\r\n\r\nHello, World!\n";
#define RESP_LEN (sizeof(RESP) - 1)
#define COPIES 256

struct conn {
	int fd;
	unsigned match; /* how much of "\r\n\r\n" the last bytes read matched */
	size_t owed;    /* response bytes still to write */
	size_t phase;   /* where in a response the next byte to write is */
	bool want_out;
};

static struct floor fl;
static char canned[COPIES * RESP_LEN]; /* responses back to back: any run is one write */
static char buf[64 * 1024];

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
	free(c);
}

static size_t count_heads(struct conn *c, const char *p, size_t n)
{
	size_t heads = 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] == "\r\n\r\n"[c->match])
			c->match++;
		else
			c->match = p[i] == '\r';
		if (c->match == 4) {
			heads++;
			c->match = 0;
		}
	}
	return heads;
}

/* Write what is owed: 0 done or would block, -1 failed. */
static int answer(struct conn *c)
{
	while (c->owed > 0) {
		size_t k = sizeof(canned) - c->phase;
		ssize_t w = write(c->fd, canned + c->phase, c->owed < k ? c->owed : k);
		if (w < 0)
			return errno == EAGAIN ? 0 : -1;
		c->owed -= (size_t)w;
		c->phase = (c->phase + (size_t)w) % RESP_LEN;
	}
	return 0;
}

static void on_event(struct conn *c, uint32_t events)
{
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		ssize_t n = read(c->fd, buf, sizeof(buf));
		if (n == 0 || (n < 0 && errno != EAGAIN)) {
			conn_close(c);
			return;
		}
		if (n > 0)
			c->owed += count_heads(c, buf, (size_t)n) * RESP_LEN;
	}
	if (answer(c) < 0) {
		conn_close(c);
		return;
	}
	bool want_out = c->owed > 0;
	if (want_out != c->want_out) {
		c->want_out = want_out;
		if (floor_watch(&fl, c->fd, c, EPOLLIN | (want_out ? EPOLLOUT : 0), false) < 0)
			conn_close(c);
	}
}

int main(int argc, char **argv)
{
	for (size_t i = 0; i < COPIES; i++)
		memcpy(canned + i * RESP_LEN, RESP, RESP_LEN);
	floor_init(&fl, argc, argv, "floor-http", on_accept);
	struct epoll_event ev[512];
	while (!fl.stop) {
		int n = floor_wait(&fl, ev, 512);
		for (int i = 0; i < n; i++)
			on_event(ev[i].data.ptr, ev[i].events);
	}
	return 0;
}
