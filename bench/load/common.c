/* common.c - weft-load's clock, histogram, results, payload pattern and the
 * plain/TLS connection layer shared by every scenario. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "wl.h"

atomic_bool wl_stop;

uint64_t wl_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- histogram ----
 * Values below 128 get a bucket each; above, every power of two is split in
 * 64 linear sub-buckets (HdrHistogram's layout with 2 significant digits). */

static unsigned bucket_of(uint64_t v)
{
	if (v < 128)
		return (unsigned)v;
	unsigned msb = 63u - (unsigned)__builtin_clzll(v);
	unsigned shift = msb - WL_HIST_SUB_BITS;
	unsigned top = (unsigned)(v >> shift); /* 64..127 */
	return 128 + (shift - 1) * 64 + (top - 64);
}

static uint64_t bucket_upper(unsigned i)
{
	if (i < 128)
		return i;
	unsigned shift = (i - 128) / 64 + 1;
	uint64_t top = (i - 128) % 64 + 64;
	return ((top + 1) << shift) - 1;
}

void wl_hist_init(struct wl_hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

void wl_hist_add(struct wl_hist *h, uint64_t v)
{
	h->b[bucket_of(v)]++;
	h->count++;
	h->sum += v;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

void wl_hist_merge(struct wl_hist *into, const struct wl_hist *from)
{
	for (unsigned i = 0; i < WL_HIST_BUCKETS; i++)
		into->b[i] += from->b[i];
	into->count += from->count;
	into->sum += from->sum;
	if (from->min < into->min)
		into->min = from->min;
	if (from->max > into->max)
		into->max = from->max;
}

uint64_t wl_hist_quantile(const struct wl_hist *h, double q)
{
	if (h->count == 0)
		return 0;
	uint64_t want = (uint64_t)(q * (double)h->count + 0.5);
	if (want < 1)
		want = 1;
	uint64_t seen = 0;
	for (unsigned i = 0; i < WL_HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= want) {
			uint64_t v = bucket_upper(i);
			return v > h->max ? h->max : v;
		}
	}
	return h->max;
}

/* ---- results ---- */

void wl_result_init(struct wl_result *r)
{
	memset(r, 0, sizeof(*r));
	wl_hist_init(&r->hist);
}

void wl_result_merge(struct wl_result *into, const struct wl_result *from)
{
	into->ops += from->ops;
	into->bytes += from->bytes;
	into->published += from->published;
	into->expected += from->expected;
	into->mismatches += from->mismatches;
	into->count_mismatches += from->count_mismatches;
	into->lost += from->lost;
	into->duplicates += from->duplicates;
	into->reordered += from->reordered;
	into->errors += from->errors;
	into->timeouts += from->timeouts;
	into->reconnects += from->reconnects;
	into->connect_failures += from->connect_failures;
	into->resumed += from->resumed;
	into->full += from->full;
	into->tls12 += from->tls12;
	into->tls13 += from->tls13;
	into->established += from->established;
	into->unsent += from->unsent;
	if (from->t_first && (!into->t_first || from->t_first < into->t_first))
		into->t_first = from->t_first;
	if (from->t_last > into->t_last)
		into->t_last = from->t_last;
	wl_hist_merge(&into->hist, &from->hist);
}

uint64_t wl_result_bad(const struct wl_result *r)
{
	return r->mismatches + r->count_mismatches + r->lost + r->duplicates + r->reordered + r->errors + r->timeouts + r->connect_failures;
}

/* ---- payload pattern ---- */

unsigned char wl_pattern[WL_PATTERN_LEN + WL_PATTERN_TAIL];

static uint64_t mix64(uint64_t x)
{
	/* splitmix64 finaliser: cheap and well spread */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

void wl_pattern_init(void)
{
	uint64_t s = 0x5eed;
	for (unsigned i = 0; i < WL_PATTERN_LEN; i++) {
		s += 0x9e3779b97f4a7c15ull;
		wl_pattern[i] = (unsigned char)(mix64(s) >> 56);
	}
	memcpy(wl_pattern + WL_PATTERN_LEN, wl_pattern, WL_PATTERN_TAIL);
}

void wl_pattern_ascii(void)
{
	for (unsigned i = 0; i < WL_PATTERN_LEN; i++)
		wl_pattern[i] = (unsigned char)(0x21 + wl_pattern[i] % 94);
	memcpy(wl_pattern + WL_PATTERN_LEN, wl_pattern, WL_PATTERN_TAIL);
}

/* First bytes weft must not mistake for the start of an HTTP request (or a
 * RESP array in chat mode). */
static bool bad_first(unsigned char c)
{
	return strchr("GHPDOTC*", c) != NULL && c != 0;
}

uint32_t wl_pattern_off(uint64_t conn, uint64_t seq)
{
	uint32_t off = (uint32_t)(mix64(conn * 0x100000001b3ull ^ mix64(seq)) % WL_PATTERN_LEN);
	while (bad_first(wl_pattern[off]))
		off = (off + 1) % WL_PATTERN_LEN;
	return off;
}

bool wl_pattern_check(uint64_t conn, uint64_t seq, size_t at, const unsigned char *p, size_t n)
{
	size_t pos = (wl_pattern_off(conn, seq) + at) % WL_PATTERN_LEN;
	while (n > 0) {
		size_t k = WL_PATTERN_LEN - pos;
		if (k > n)
			k = n;
		if (memcmp(p, wl_pattern + pos, k) != 0)
			return false;
		p += k;
		n -= k;
		pos = 0;
	}
	return true;
}

/* ---- connections ---- */

SSL_CTX *wl_tls_ctx(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	/* Sessions are kept by the caller (handshake --resume), not a cache. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	return ctx;
}

static int resolve(const struct wl_opts *o, struct sockaddr_storage *sa, socklen_t *len)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *ai = NULL;
	char port[16];
	snprintf(port, sizeof(port), "%d", o->port);
	if (getaddrinfo(o->host, port, &hints, &ai) != 0 || !ai)
		return -EINVAL;
	memcpy(sa, ai->ai_addr, ai->ai_addrlen);
	*len = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

int wl_io_connect(struct wl_io *io, const struct wl_opts *o, SSL_CTX *tls, SSL_SESSION *resume)
{
	struct sockaddr_storage sa;
	socklen_t len;
	io->fd = -1;
	io->ssl = NULL;
	io->ws = NULL;
	io->connected = false;
	if (resolve(o, &sa, &len) < 0)
		return -EINVAL;
	int fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&sa, len) < 0 && errno != EINPROGRESS) {
		int e = -errno;
		close(fd);
		return e;
	}
	io->fd = fd;
	if (tls) {
		io->ssl = SSL_new(tls);
		if (!io->ssl) {
			wl_io_close(io);
			return -ENOMEM;
		}
		SSL_set_fd(io->ssl, fd);
		SSL_set_tlsext_host_name(io->ssl, "localhost");
		if (resume)
			SSL_set_session(io->ssl, resume);
		SSL_set_connect_state(io->ssl);
	}
	if (o->ws && wl_ws_attach(io, o) < 0) {
		wl_io_close(io);
		return -ENOMEM;
	}
	return 0;
}

int wl_io_connected(struct wl_io *io)
{
	if (io->connected)
		return 0;
	int err = 0;
	socklen_t l = sizeof(err);
	if (getsockopt(io->fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0)
		return -errno;
	if (err == EINPROGRESS || err == EALREADY)
		return -EAGAIN;
	if (err)
		return -err;
	/* SO_ERROR is 0 both when connected and while still connecting. */
	struct sockaddr_storage peer;
	socklen_t pl = sizeof(peer);
	if (getpeername(io->fd, (struct sockaddr *)&peer, &pl) < 0)
		return errno == ENOTCONN ? -EAGAIN : -errno;
	io->connected = true;
	return 0;
}

static int ssl_fail(SSL *ssl, int rc)
{
	switch (SSL_get_error(ssl, rc)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return -EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		ERR_clear_error();
		return errno ? -errno : -ECONNRESET;
	default:
		ERR_clear_error();
		return -EPROTO;
	}
}

int wl_io_handshake(struct wl_io *io)
{
	if (io->ssl && !SSL_is_init_finished(io->ssl)) {
		int rc = SSL_do_handshake(io->ssl);
		if (rc != 1) {
			rc = ssl_fail(io->ssl, rc);
			return rc == 0 ? -ECONNRESET : rc;
		}
	}
	return io->ws ? wl_ws_upgrade(io) : 0;
}

ssize_t wl_io_read(struct wl_io *io, void *p, size_t n)
{
	return io->ws ? wl_ws_read(io, p, n) : wl_io_raw_read(io, p, n);
}

ssize_t wl_io_write(struct wl_io *io, const void *p, size_t n)
{
	return io->ws ? wl_ws_write_lines(io, p, n) : wl_io_raw_write(io, p, n);
}

ssize_t wl_io_raw_read(struct wl_io *io, void *p, size_t n)
{
	if (io->ssl) {
		size_t got = 0;
		int rc = SSL_read_ex(io->ssl, p, n, &got);
		return rc == 1 ? (ssize_t)got : ssl_fail(io->ssl, rc);
	}
	ssize_t r = read(io->fd, p, n);
	if (r < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : -errno;
	io->short_read = !io->peer_closed && r > 0 && (size_t)r < n;
	return r;
}

void wl_io_events(struct wl_io *io, uint32_t events)
{
	if (io->fd >= 0 && (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
		io->peer_closed = true;
		io->short_read = false;
	}
}

ssize_t wl_io_raw_write(struct wl_io *io, const void *p, size_t n)
{
	if (io->ssl) {
		size_t put = 0;
		int rc = SSL_write_ex(io->ssl, p, n, &put);
		if (rc == 1)
			return (ssize_t)put;
		rc = ssl_fail(io->ssl, rc);
		return rc == 0 ? -EPIPE : rc;
	}
	ssize_t w = send(io->fd, p, n, MSG_NOSIGNAL);
	if (w < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : -errno;
	return w;
}

void wl_io_close(struct wl_io *io)
{
	wl_ws_free(io);
	if (io->ssl) {
		SSL_free(io->ssl);
		io->ssl = NULL;
	}
	if (io->fd >= 0) {
		close(io->fd);
		io->fd = -1;
	}
	io->connected = false;
	io->short_read = io->peer_closed = false;
}

int wl_epoll_add(int ep, int fd, void *ptr)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = ptr};
	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

int wl_epoll_wait(int ep, void *events, int max, int64_t timeout_ns)
{
	static atomic_bool no_pwait2;
	if (timeout_ns < 0)
		timeout_ns = 0;
	if (!atomic_load(&no_pwait2)) {
		struct timespec ts = {.tv_sec = timeout_ns / 1000000000, .tv_nsec = timeout_ns % 1000000000};
		int n = epoll_pwait2(ep, events, max, &ts, NULL);
		if (n >= 0 || errno == EINTR)
			return n < 0 ? 0 : n;
		if (errno != ENOSYS && errno != EPERM)
			return -errno;
		atomic_store(&no_pwait2, true); /* old kernel or a seccomp filter */
	}
	int n = epoll_wait(ep, events, max, (int)((timeout_ns + 999999) / 1000000));
	return n < 0 ? (errno == EINTR ? 0 : -errno) : n;
}
