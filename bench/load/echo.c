/* echo.c - `weft-load echo` and `weft-load idle`.
 *
 * Each thread owns a slice of the connections and one epoll loop
 * (edge-triggered, in and out). Message (conn, seq) is a slice of the random
 * pattern (wl.h), so every byte that comes back is checked where it lands.
 *
 * Closed loop: a connection keeps --depth messages in flight; latency runs
 * from the moment a message is issued. Open loop (--rate): message j of a
 * thread is due at t0 + j * period, whatever the server is doing, and its
 * latency runs from that intended time (wrk2's lesson: a stalled server
 * cannot hide its stall by slowing the client down).
 *
 * idle: every connection sends one message, checks the echo, then all are
 * held open (--hold, or until SIGINT/SIGTERM) while the harness reads the
 * server's RSS; --ready-file is written once all are established. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include <unistd.h>

#include "wl.h"

#define RING 1024           /* in-flight messages per connection, open loop */
#define CONNECTING_MAX 256  /* connects in progress per thread during setup */
#define RETRY_NS 200000000u /* reconnect back-off */
#define TICK_NS 50000000u   /* timeout scan period */
#define RBUF (256 * 1024)
#define WBUF (16 * 1024)

struct econn {
	struct wl_io io;
	uint64_t id;     /* global connection number: part of the pattern */
	unsigned idx;    /* index within its thread: open-loop phase */
	uint64_t issued; /* next seq to issue */
	uint64_t wseq, rseq;
	size_t woff, roff;
	uint64_t ts[RING]; /* start (closed) or intended (open) time per seq */
	uint64_t last_progress;
	uint64_t retry_at; /* 0 = not waiting to reconnect */
	bool connecting, up, failed_once;
};

struct ethread {
	const struct wl_opts *o;
	struct econn *c;
	unsigned n;
	int ep;
	SSL_CTX *tls;
	uint64_t quota;       /* messages this thread may issue (UINT64_MAX = none) */
	uint64_t issued_total;
	uint64_t due_cursor;  /* open loop: messages made due so far */
	uint64_t period_ns;   /* open loop: between due messages of this thread */
	uint64_t per_conn;    /* idle: messages per connection */
	bool running;
	struct wl_result r;
	unsigned char *rbuf, *wbuf;
	pthread_t th;
};

/* Shared timeline: set once every thread has connected. */
static pthread_barrier_t setup_done, start_set, hold_ready;
static uint64_t t0, t_warm, t_end;

static void conn_down(struct ethread *t, struct econn *c, uint64_t now)
{
	wl_io_close(&c->io);
	c->up = c->connecting = false;
	c->retry_at = now + RETRY_NS;
	/* In-flight messages are abandoned: their loss was counted by the caller. */
	c->wseq = c->rseq = c->issued;
	c->woff = c->roff = 0;
	(void)t;
}

static void conn_start(struct ethread *t, struct econn *c, uint64_t now)
{
	c->retry_at = 0;
	if (wl_io_connect(&c->io, t->o, t->tls, NULL) < 0 || wl_epoll_add(t->ep, c->io.fd, c) < 0) {
		t->r.connect_failures++;
		conn_down(t, c, now);
		return;
	}
	c->connecting = true;
	c->last_progress = now;
}

/* A failure after the connection was up: count it, reconnect later. */
static void conn_fail(struct ethread *t, struct econn *c, uint64_t now, uint64_t *counter)
{
	(*counter)++;
	if (t->running)
		t->r.reconnects++;
	conn_down(t, c, now);
	c->retry_at = t->running ? now : 0; /* draining: stay down */
}

static bool may_issue(struct ethread *t, struct econn *c, uint64_t now)
{
	const struct wl_opts *o = t->o;
	if (!t->running || !c->up || t->issued_total >= t->quota)
		return false;
	if (t->per_conn && c->issued >= t->per_conn)
		return false;
	uint64_t inflight = c->issued - c->rseq;
	if (o->rate > 0) {
		uint64_t due = t->due_cursor / t->n + (t->due_cursor % t->n > c->idx ? 1 : 0);
		(void)now;
		return c->issued < due && inflight < RING;
	}
	return inflight < (uint64_t)o->depth;
}

static void issue(struct ethread *t, struct econn *c, uint64_t now)
{
	while (may_issue(t, c, now)) {
		uint64_t seq = c->issued++;
		if (t->o->rate > 0)
			c->ts[seq % RING] = t0 + (seq * t->n + c->idx) * t->period_ns;
		else
			c->ts[seq % RING] = now;
		if (c->rseq == seq)
			c->last_progress = now; /* the timeout clock starts with the first message in flight */
		t->issued_total++;
	}
}

/* Contiguous bytes of message (id, seq) from offset at. */
static size_t msg_slice(const struct econn *c, uint64_t seq, size_t at, size_t size, const unsigned char **p)
{
	size_t pos = (wl_pattern_off(c->id, seq) + at) % WL_PATTERN_LEN;
	size_t k = size - at;
	if (k > WL_PATTERN_LEN - pos)
		k = WL_PATTERN_LEN - pos;
	*p = wl_pattern + pos;
	return k;
}

/* Collect what is issued but unwritten into iov; returns the count. */
static int gather(const struct ethread *t, const struct econn *c, struct iovec *iov, int max, size_t *total)
{
	size_t size = t->o->size;
	uint64_t seq = c->wseq;
	size_t at = c->woff;
	int n = 0;
	*total = 0;
	while (n < max && seq < c->issued && *total < RBUF) {
		const unsigned char *p;
		size_t k = msg_slice(c, seq, at, size, &p);
		iov[n].iov_base = (void *)p;
		iov[n].iov_len = k;
		n++;
		*total += k;
		at += k;
		if (at == size) {
			seq++;
			at = 0;
		}
	}
	return n;
}

static void advance_write(struct ethread *t, struct econn *c, size_t w)
{
	size_t size = t->o->size;
	while (w > 0) {
		size_t k = size - c->woff;
		if (k > w)
			k = w;
		c->woff += k;
		w -= k;
		if (c->woff == size) {
			c->wseq++;
			c->woff = 0;
		}
	}
}

/* WebSocket: each issued message one masked text frame; its bytes go out
 * whole, so woff stays 0. 0, or -1 after the connection failed. */
static int conn_write_ws(struct ethread *t, struct econn *c, uint64_t now)
{
	size_t size = t->o->size;
	for (;;) {
		int rc = wl_ws_flush(&c->io);
		if (rc == -EAGAIN)
			return 0;
		if (rc < 0 || c->wseq >= c->issued) {
			if (rc < 0)
				conn_fail(t, c, now, &t->r.errors);
			return rc < 0 ? -1 : 0;
		}
		while (c->wseq < c->issued && wl_ws_pending(&c->io) < WBUF) {
			if (wl_ws_frame_begin(&c->io, 1, size) < 0) {
				conn_fail(t, c, now, &t->r.errors);
				return -1;
			}
			for (size_t at = 0; at < size;) {
				const unsigned char *p;
				size_t k = msg_slice(c, c->wseq, at, size, &p);
				wl_ws_frame_data(&c->io, p, k);
				at += k;
			}
			c->wseq++;
		}
	}
}

/* 0, or -1 after the connection failed. */
static int conn_write(struct ethread *t, struct econn *c, uint64_t now)
{
	if (c->io.ws)
		return conn_write_ws(t, c, now);
	struct iovec iov[64];
	while (c->wseq < c->issued) {
		size_t total;
		int n = gather(t, c, iov, 64, &total);
		ssize_t w;
		if (c->io.ssl) {
			/* Coalesce: one TLS record for many small messages. A retry after
			 * WANT_WRITE rebuilds the same leading bytes, as OpenSSL requires. */
			size_t len = 0;
			for (int i = 0; i < n && len < WBUF; i++) {
				size_t k = iov[i].iov_len < WBUF - len ? iov[i].iov_len : WBUF - len;
				memcpy(t->wbuf + len, iov[i].iov_base, k);
				len += k;
			}
			w = wl_io_write(&c->io, t->wbuf, len);
		} else {
			w = writev(c->io.fd, iov, n);
			if (w < 0)
				w = (errno == EAGAIN || errno == EWOULDBLOCK) ? -EAGAIN : -errno;
		}
		if (w == -EAGAIN)
			return 0;
		if (w < 0) {
			conn_fail(t, c, now, &t->r.errors);
			return -1;
		}
		advance_write(t, c, (size_t)w);
	}
	return 0;
}

static void complete(struct ethread *t, struct econn *c, uint64_t now)
{
	uint64_t start = c->ts[c->rseq % RING];
	if (start >= t_warm) {
		t->r.ops++;
		t->r.bytes += t->o->size;
		wl_hist_add(&t->r.hist, now > start ? now - start : 0);
		t->r.t_last = now;
	}
	c->rseq++;
	c->roff = 0;
}

/* Verify received bytes against the pattern. 0, or -1 after a mismatch. */
static int consume(struct ethread *t, struct econn *c, const unsigned char *p, size_t n, uint64_t now)
{
	size_t size = t->o->size;
	while (n > 0) {
		/* Never more back than was sent: extra bytes are a mismatch too. */
		if (c->rseq > c->wseq || (c->rseq == c->wseq && c->roff >= c->woff)) {
			conn_fail(t, c, now, &t->r.mismatches);
			return -1;
		}
		size_t k = size - c->roff;
		if (k > n)
			k = n;
		if (!wl_pattern_check(c->id, c->rseq, c->roff, p, k)) {
			conn_fail(t, c, now, &t->r.mismatches);
			return -1;
		}
		c->roff += k;
		p += k;
		n -= k;
		if (c->roff == size)
			complete(t, c, now);
	}
	c->last_progress = now;
	return 0;
}

static int conn_read(struct ethread *t, struct econn *c, uint64_t now)
{
	for (;;) {
		ssize_t r = wl_io_read(&c->io, t->rbuf, RBUF);
		if (r == -EAGAIN)
			return 0;
		if (r <= 0) {
			conn_fail(t, c, now, &t->r.errors);
			return -1;
		}
		if (consume(t, c, t->rbuf, (size_t)r, now) < 0)
			return -1;
		issue(t, c, now);
		if (conn_write(t, c, now) < 0)
			return -1;
	}
}

/* Finish connecting (TCP, then TLS). 0 when up, 1 still in progress, -1 failed. */
static int conn_finish_setup(struct ethread *t, struct econn *c, uint64_t now)
{
	int rc = wl_io_connected(&c->io);
	if (rc == 0)
		rc = wl_io_handshake(&c->io);
	if (rc == -EAGAIN)
		return 1;
	if (rc < 0) {
		t->r.connect_failures++;
		conn_down(t, c, now);
		if (!t->running)
			c->retry_at = 0; /* setup: retried when the run starts */
		return -1;
	}
	c->connecting = false;
	c->up = true;
	c->last_progress = now;
	return 0;
}

static void conn_event(struct ethread *t, struct econn *c, uint64_t now)
{
	if (c->io.fd < 0)
		return;
	if (c->connecting && conn_finish_setup(t, c, now) != 0)
		return;
	if (!c->up)
		return;
	issue(t, c, now);
	if (conn_write(t, c, now) < 0)
		return;
	conn_read(t, c, now);
}

static void poll_once(struct ethread *t, int64_t timeout_ns)
{
	struct epoll_event ev[256];
	int n = wl_epoll_wait(t->ep, ev, 256, timeout_ns);
	uint64_t now = wl_now_ns();
	for (int i = 0; i < n; i++) {
		struct econn *c = ev[i].data.ptr;
		wl_io_events(&c->io, ev[i].events);
		conn_event(t, c, now);
	}
}

/* Connect every connection of this thread, a bounded number at a time. */
static void setup(struct ethread *t)
{
	uint64_t deadline = wl_now_ns() + (uint64_t)(t->o->timeout_s * 1e9);
	unsigned next = 0;
	for (;;) {
		uint64_t now = wl_now_ns();
		unsigned pending = 0, settled = 0;
		for (unsigned i = 0; i < next; i++) {
			pending += t->c[i].connecting;
			settled += !t->c[i].connecting;
		}
		while (next < t->n && pending < CONNECTING_MAX) {
			conn_start(t, &t->c[next++], now);
			pending++;
		}
		if ((settled == t->n && next == t->n) || now >= deadline || atomic_load(&wl_stop))
			break;
		poll_once(t, 10000000);
	}
	for (unsigned i = 0; i < t->n; i++) {
		struct econn *c = &t->c[i];
		if (c->connecting) { /* never finished: a failure, retried during the run */
			t->r.connect_failures++;
			conn_down(t, c, wl_now_ns());
		}
		c->retry_at = c->up ? 0 : 1;
	}
}

/* Open loop: make due every message whose intended time has come. */
static int64_t advance_due(struct ethread *t, uint64_t now)
{
	if (t->o->rate <= 0 || !t->running)
		return TICK_NS;
	while (t->due_cursor < t->quota && t0 + t->due_cursor * t->period_ns <= now) {
		struct econn *c = &t->c[t->due_cursor % t->n];
		t->due_cursor++;
		issue(t, c, now);
		conn_write(t, c, now);
	}
	if (t->due_cursor >= t->quota)
		return TICK_NS;
	int64_t wait = (int64_t)(t0 + t->due_cursor * t->period_ns) - (int64_t)now;
	return wait < (int64_t)TICK_NS ? wait : (int64_t)TICK_NS;
}

/* Timeouts and reconnects; true while something is still in flight. */
static bool scan(struct ethread *t, uint64_t now, bool draining_done)
{
	uint64_t limit = (uint64_t)(t->o->timeout_s * 1e9);
	bool busy = false;
	for (unsigned i = 0; i < t->n; i++) {
		struct econn *c = &t->c[i];
		if (c->up && c->rseq < c->issued) {
			if (draining_done || now - c->last_progress > limit) {
				/* every message still in flight is a timeout */
				t->r.timeouts += c->issued - c->rseq - 1;
				conn_fail(t, c, now, &t->r.timeouts);
				continue;
			}
			busy = true;
		}
		if (!c->up && !c->connecting && c->retry_at && now >= c->retry_at && t->running)
			conn_start(t, c, now);
	}
	return busy;
}

static bool thread_finished(const struct ethread *t)
{
	if (t->per_conn) {
		for (unsigned i = 0; i < t->n; i++)
			if (t->c[i].up && t->c[i].issued < t->per_conn)
				return false;
		return true;
	}
	return t->issued_total >= t->quota;
}

static void run_loop(struct ethread *t)
{
	uint64_t last_scan = 0, drain_until = 0;
	for (unsigned i = 0; i < t->n; i++)
		conn_event(t, &t->c[i], wl_now_ns());
	for (;;) {
		uint64_t now = wl_now_ns();
		if (t->running && (now >= t_end || atomic_load(&wl_stop) || thread_finished(t))) {
			t->running = false;
			if (t->o->rate > 0) {
				/* What the schedule says was due by now, minus what went out. */
				uint64_t due = (now - t0) / t->period_ns;
				if (due > t->quota)
					due = t->quota;
				t->r.unsent = due > t->issued_total ? due - t->issued_total : 0;
			}
			drain_until = now + (uint64_t)(t->o->timeout_s * 1e9);
		}
		int64_t wait = advance_due(t, now);
		if (now - last_scan >= TICK_NS || !t->running) {
			bool busy = scan(t, now, !t->running && now >= drain_until);
			last_scan = now;
			if (!t->running && !busy)
				return;
		}
		if (!t->running)
			wait = TICK_NS / 5;
		poll_once(t, wait);
	}
}

/* idle: keep every connection open until --hold ends or we are stopped;
 * a connection the server closes meanwhile is an error. */
static void hold(struct ethread *t)
{
	uint64_t until = wl_now_ns() + (uint64_t)(t->o->hold_s * 1e9);
	while (wl_now_ns() < until && !atomic_load(&wl_stop)) {
		struct epoll_event ev[256];
		int n = wl_epoll_wait(t->ep, ev, 256, 100000000);
		for (int i = 0; i < n; i++) {
			struct econn *c = ev[i].data.ptr;
			if (c->io.fd < 0)
				continue;
			wl_io_events(&c->io, ev[i].events);
			ssize_t r = wl_io_read(&c->io, t->rbuf, RBUF);
			if (r == 0 || (r < 0 && r != -EAGAIN)) {
				t->r.errors++;
				conn_down(t, c, wl_now_ns());
			}
		}
	}
}

static void *thread_main(void *arg)
{
	struct ethread *t = arg;
	setup(t);
	if (pthread_barrier_wait(&setup_done) == PTHREAD_BARRIER_SERIAL_THREAD) {
		t0 = wl_now_ns();
		t_warm = t0 + (uint64_t)(t->o->warmup_s * 1e9);
		t_end = t_warm + (uint64_t)(t->o->duration_s * 1e9);
	}
	pthread_barrier_wait(&start_set);
	t->r.t_first = t_warm;
	t->running = true;
	run_loop(t);
	if (t->per_conn) {
		for (unsigned i = 0; i < t->n; i++)
			t->r.established += t->c[i].up && t->c[i].rseq >= t->per_conn;
		if (pthread_barrier_wait(&hold_ready) == PTHREAD_BARRIER_SERIAL_THREAD && t->o->ready_file) {
			FILE *f = fopen(t->o->ready_file, "w");
			if (f)
				fclose(f);
		}
		hold(t);
	}
	for (unsigned i = 0; i < t->n; i++)
		wl_io_close(&t->c[i].io);
	return NULL;
}

static void thread_free(struct ethread *t)
{
	if (t->ep >= 0)
		close(t->ep);
	free(t->c);
	free(t->rbuf);
	free(t->wbuf);
}

static int run(const struct wl_opts *o, struct wl_result *r, uint64_t per_conn)
{
	unsigned nt = (unsigned)(o->threads < o->conns ? o->threads : o->conns);
	struct ethread *ts = calloc(nt, sizeof(*ts));
	SSL_CTX *tls = o->tls ? wl_tls_ctx() : NULL;
	if (!ts || (o->tls && !tls)) {
		free(ts);
		SSL_CTX_free(tls);
		return -ENOMEM;
	}
	pthread_barrier_init(&setup_done, NULL, nt);
	pthread_barrier_init(&start_set, NULL, nt);
	pthread_barrier_init(&hold_ready, NULL, nt);
	uint64_t total = o->count ? o->count : UINT64_MAX;
	unsigned first = 0;
	int rc = 0;
	for (unsigned i = 0; i < nt; i++) {
		struct ethread *t = &ts[i];
		t->o = o;
		t->tls = tls;
		t->per_conn = per_conn;
		t->n = (unsigned)o->conns / nt + (i < (unsigned)o->conns % nt);
		t->quota = total == UINT64_MAX ? UINT64_MAX : total / nt + (i < total % nt);
		if (o->rate > 0)
			t->period_ns = (uint64_t)(1e9 * nt / o->rate);
		wl_result_init(&t->r);
		t->ep = epoll_create1(EPOLL_CLOEXEC);
		t->c = calloc(t->n, sizeof(*t->c));
		t->rbuf = malloc(RBUF);
		t->wbuf = malloc(WBUF);
		if (t->ep < 0 || !t->c || !t->rbuf || !t->wbuf) {
			rc = -ENOMEM;
			break;
		}
		for (unsigned k = 0; k < t->n; k++) {
			t->c[k].io.fd = -1;
			t->c[k].id = first + k;
			t->c[k].idx = k;
		}
		first += t->n;
	}
	unsigned started = 0;
	for (; rc == 0 && started < nt; started++)
		if (pthread_create(&ts[started].th, NULL, thread_main, &ts[started]) != 0)
			rc = -EAGAIN;
	if (rc < 0 && started > 0) {
		/* Partial start would deadlock the barriers; there is no clean way
		 * back, so say so and give up. */
		fprintf(stderr, "weft-load: could not start all threads\n");
		exit(3);
	}
	for (unsigned i = 0; i < started; i++) {
		pthread_join(ts[i].th, NULL);
		wl_result_merge(r, &ts[i].r);
	}
	for (unsigned i = 0; i < nt; i++)
		thread_free(&ts[i]);
	pthread_barrier_destroy(&setup_done);
	pthread_barrier_destroy(&start_set);
	pthread_barrier_destroy(&hold_ready);
	free(ts);
	SSL_CTX_free(tls);
	return rc;
}

int wl_echo_run(const struct wl_opts *o, struct wl_result *r)
{
	return run(o, r, 0);
}

int wl_idle_run(const struct wl_opts *o, struct wl_result *r)
{
	return run(o, r, 1);
}
