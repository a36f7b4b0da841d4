/* handshake.c - `weft-load handshake`: new connections per second.
 *
 * --connections slots each loop: connect, TLS handshake (with --tls), one
 * request, the full answer, close. The latency is the whole of that. Without
 * --resume every handshake is full (the client never offers a session); with
 * it, each slot offers the session its previous connection got, and the
 * result counts how many the server actually resumed, because wrk's https
 * numbers silently mix the two.
 *
 * The request is "GET / HTTP/1.1" with Connection: close by default (so nginx
 * is measured the same way as weft), or with --echo one 64-byte pattern
 * message that must come back intact. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "wl.h"

#define ECHO_LEN 64
#define RESP_MAX 65536

enum step { IDLE, CONNECTING, HANDSHAKE, SENDING, READING };

struct slot {
	struct wl_io io;
	uint64_t id, seq;
	enum step step;
	size_t sent, got;
	uint64_t started;
	SSL_SESSION *sess;
	char resp[RESP_MAX];
};

struct hthread {
	const struct wl_opts *o;
	struct slot *s;
	unsigned n;
	int ep;
	SSL_CTX *tls;
	uint64_t quota, begun;
	struct wl_result r;
	pthread_t th;
};

static const char http_req[] = "GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: weft-load\r\nConnection: close\r\n\r\n";
static uint64_t t0, t_warm, t_end;

static void slot_close(struct slot *s)
{
	wl_io_close(&s->io);
	s->step = IDLE;
}

static void slot_fail(struct hthread *t, struct slot *s, uint64_t *counter)
{
	(*counter)++;
	slot_close(s);
	(void)t;
}

static bool may_begin(struct hthread *t, uint64_t now)
{
	return now < t_end && t->begun < t->quota && !atomic_load(&wl_stop);
}

static void slot_begin(struct hthread *t, struct slot *s, uint64_t now)
{
	s->sent = s->got = 0;
	s->started = now;
	s->seq++;
	t->begun++;
	if (wl_io_connect(&s->io, t->o, t->tls, t->o->resume ? s->sess : NULL) < 0 || wl_epoll_add(t->ep, s->io.fd, s) < 0) {
		slot_fail(t, s, &t->r.connect_failures);
		return;
	}
	s->step = CONNECTING;
}

/* A complete HTTP answer: headers plus Content-Length bytes of body. 1 done,
 * 0 need more, -1 not HTTP. */
static int http_complete(const struct slot *s)
{
	if (s->got >= 8 && memcmp(s->resp, "HTTP/1.", 7) != 0)
		return -1;
	const char *end = memmem(s->resp, s->got, "\r\n\r\n", 4);
	if (!end)
		return 0;
	size_t head = (size_t)(end - s->resp) + 4;
	size_t body = 0;
	for (const char *p = s->resp; p < end; p++) {
		if ((p == s->resp || p[-1] == '\n') && strncasecmp(p, "content-length:", 15) == 0) {
			body = strtoul(p + 15, NULL, 10);
			break;
		}
	}
	return s->got >= head + body ? 1 : 0;
}

static void slot_done(struct hthread *t, struct slot *s, uint64_t now)
{
	if (s->io.ssl) {
		if (SSL_session_reused(s->io.ssl))
			t->r.resumed++;
		else
			t->r.full++;
		if (SSL_version(s->io.ssl) == TLS1_3_VERSION)
			t->r.tls13++;
		else
			t->r.tls12++;
		/* A clean close_notify, as a browser sends: OpenSSL will not resume
		 * a session whose connection was dropped without one. */
		SSL_shutdown(s->io.ssl);
		if (t->o->resume) {
			SSL_SESSION *n = SSL_get1_session(s->io.ssl);
			if (n) {
				SSL_SESSION_free(s->sess);
				s->sess = n;
			}
		}
	}
	if (s->started >= t_warm) {
		t->r.ops++;
		t->r.bytes += s->got;
		wl_hist_add(&t->r.hist, now - s->started);
		t->r.t_last = now;
	}
	slot_close(s);
}

static void slot_read(struct hthread *t, struct slot *s, uint64_t now)
{
	for (;;) {
		size_t room = RESP_MAX - s->got;
		if (room == 0) {
			slot_fail(t, s, &t->r.mismatches);
			return;
		}
		ssize_t r = wl_io_read(&s->io, s->resp + s->got, room);
		if (r == -EAGAIN)
			return;
		if (r <= 0) {
			slot_fail(t, s, &t->r.errors);
			return;
		}
		s->got += (size_t)r;
		int done;
		if (t->o->http_request) {
			done = http_complete(s);
		} else {
			if (s->got > ECHO_LEN || !wl_pattern_check(s->id, s->seq, 0, (unsigned char *)s->resp, s->got))
				done = -1;
			else
				done = s->got == ECHO_LEN;
		}
		if (done < 0) {
			slot_fail(t, s, &t->r.mismatches);
			return;
		}
		if (done) {
			slot_done(t, s, now);
			return;
		}
	}
}

static void slot_event(struct hthread *t, struct slot *s, uint64_t now)
{
	int rc;
	switch (s->step) {
	case IDLE:
		return;
	case CONNECTING:
		rc = wl_io_connected(&s->io);
		if (rc == -EAGAIN)
			return;
		if (rc < 0) {
			slot_fail(t, s, &t->r.connect_failures);
			return;
		}
		s->step = HANDSHAKE;
		/* fall through */
	case HANDSHAKE:
		rc = wl_io_handshake(&s->io);
		if (rc == -EAGAIN)
			return;
		if (rc < 0) {
			slot_fail(t, s, &t->r.errors);
			return;
		}
		s->step = SENDING;
		/* fall through */
	case SENDING: {
		const void *req = t->o->http_request ? (const void *)http_req : (const void *)(wl_pattern + wl_pattern_off(s->id, s->seq));
		size_t len = t->o->http_request ? sizeof(http_req) - 1 : ECHO_LEN;
		while (s->sent < len) {
			ssize_t w = wl_io_write(&s->io, (const char *)req + s->sent, len - s->sent);
			if (w == -EAGAIN)
				return;
			if (w < 0) {
				slot_fail(t, s, &t->r.errors);
				return;
			}
			s->sent += (size_t)w;
		}
		s->step = READING;
	}
		/* fall through */
	case READING:
		slot_read(t, s, now);
		return;
	}
}

static void *thread_main(void *arg)
{
	struct hthread *t = arg;
	uint64_t limit = (uint64_t)(t->o->timeout_s * 1e9);
	uint64_t drain_until = 0;
	t->r.t_first = t_warm;
	for (;;) {
		uint64_t now = wl_now_ns();
		bool busy = false;
		for (unsigned i = 0; i < t->n; i++) {
			struct slot *s = &t->s[i];
			if (s->step != IDLE && now - s->started > limit)
				slot_fail(t, s, &t->r.timeouts);
			if (s->step == IDLE && may_begin(t, now)) {
				slot_begin(t, s, now);
				slot_event(t, s, now);
			}
			busy |= s->step != IDLE;
		}
		if (!may_begin(t, now)) {
			if (!drain_until)
				drain_until = now + limit;
			if (!busy || now >= drain_until)
				break;
		}
		struct epoll_event ev[256];
		int n = wl_epoll_wait(t->ep, ev, 256, 10000000);
		now = wl_now_ns();
		for (int i = 0; i < n; i++) {
			struct slot *s = ev[i].data.ptr;
			/* A slot closed and reopened in this batch may see a stale event:
			 * slot_event only acts on what the socket says now. */
			slot_event(t, s, now);
		}
	}
	for (unsigned i = 0; i < t->n; i++) {
		if (t->s[i].step != IDLE)
			t->r.timeouts++;
		slot_close(&t->s[i]);
	}
	return NULL;
}

int wl_handshake_run(const struct wl_opts *o, struct wl_result *r)
{
	unsigned nt = (unsigned)(o->threads < o->conns ? o->threads : o->conns);
	struct hthread *ts = calloc(nt, sizeof(*ts));
	SSL_CTX *tls = o->tls ? wl_tls_ctx() : NULL;
	int rc = (!ts || (o->tls && !tls)) ? -ENOMEM : 0;
	uint64_t total = o->count ? o->count : UINT64_MAX;
	unsigned first = 0;
	for (unsigned i = 0; ts && i < nt; i++)
		ts[i].ep = -1;
	for (unsigned i = 0; rc == 0 && i < nt; i++) {
		struct hthread *t = &ts[i];
		t->o = o;
		t->tls = tls;
		t->n = (unsigned)o->conns / nt + (i < (unsigned)o->conns % nt);
		t->quota = total == UINT64_MAX ? UINT64_MAX : total / nt + (i < total % nt);
		wl_result_init(&t->r);
		t->ep = epoll_create1(EPOLL_CLOEXEC);
		t->s = calloc(t->n, sizeof(*t->s));
		if (t->ep < 0 || !t->s) {
			rc = -ENOMEM;
			break;
		}
		for (unsigned k = 0; k < t->n; k++) {
			t->s[k].io.fd = -1;
			t->s[k].id = first + k;
		}
		first += t->n;
	}
	if (rc == 0) {
		t0 = wl_now_ns();
		t_warm = t0 + (uint64_t)(o->warmup_s * 1e9);
		t_end = t_warm + (uint64_t)(o->duration_s * 1e9);
		for (unsigned i = 0; i < nt; i++)
			if (pthread_create(&ts[i].th, NULL, thread_main, &ts[i]) != 0) {
				fprintf(stderr, "weft-load: could not start all threads\n");
				exit(3);
			}
		for (unsigned i = 0; i < nt; i++) {
			pthread_join(ts[i].th, NULL);
			wl_result_merge(r, &ts[i].r);
		}
	}
	for (unsigned i = 0; ts && i < nt; i++) {
		for (unsigned k = 0; ts[i].s && k < ts[i].n; k++)
			SSL_SESSION_free(ts[i].s[k].sess);
		if (ts[i].ep >= 0)
			close(ts[i].ep);
		free(ts[i].s);
	}
	free(ts);
	SSL_CTX_free(tls);
	return rc;
}
