/* floor-echo - a measuring stick, not a server: the least a single-threaded
 * epoll echo server can do per round trip. One read() into a shared buffer,
 * one write() of the same bytes; only what the socket would not take is
 * copied aside, and the connection stops reading until it has gone. No
 * limits, no timeouts: bench/compare runs it as the echo cells' floor.
 *
 *     floor-echo [PORT]      (127.0.0.1 only; prints "floor-echo ready: port=P ...") */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "floor.h"

struct conn {
	int fd;
	char *pending; /* bytes read but not yet written back */
	size_t len, off;
};

static struct floor fl;
static char buf[256 * 1024];

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
	free(c->pending);
	free(c);
}

/* Write the pending bytes: 0 all gone, 1 some left, -1 failed. */
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

static void on_event(struct conn *c)
{
	if (c->pending) { /* only EPOLLOUT is armed while bytes wait */
		int rc = flush(c);
		if (rc < 0 || (rc == 0 && floor_watch(&fl, c->fd, c, EPOLLIN, false) < 0))
			conn_close(c);
		return;
	}
	ssize_t n = read(c->fd, buf, sizeof(buf));
	if (n <= 0) {
		if (n == 0 || errno != EAGAIN)
			conn_close(c);
		return;
	}
	ssize_t w = write(c->fd, buf, (size_t)n);
	if (w < 0 && errno != EAGAIN) {
		conn_close(c);
		return;
	}
	if (w == n)
		return;
	c->off = 0;
	c->len = (size_t)n - (size_t)(w > 0 ? w : 0);
	c->pending = malloc(c->len);
	if (!c->pending || floor_watch(&fl, c->fd, c, EPOLLOUT, false) < 0) {
		conn_close(c);
		return;
	}
	memcpy(c->pending, buf + (n - (ssize_t)c->len), c->len);
}

int main(int argc, char **argv)
{
	floor_init(&fl, argc, argv, "floor-echo", on_accept);
	struct epoll_event ev[512];
	while (!fl.stop) {
		int n = floor_wait(&fl, ev, 512);
		for (int i = 0; i < n; i++)
			on_event(ev[i].data.ptr);
	}
	return 0;
}
