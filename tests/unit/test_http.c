/* test_http.c - the HTTP protocol through the session seam, no socket.
 *
 * Requests go in with session_input() exactly as a model would hand them
 * over, replies come out through session_iov()/session_sent(). The Date
 * value is masked before comparing, so a second boundary cannot make two
 * runs differ. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "config.h"
#include "deadline.h"
#include "msg.h"
#include "owner.h"
#include "proto.h"
#include "server.h"
#include "session.h"
#include "stats.h"

static struct config cfg;
static struct server srv;
static struct owner own;

static void wake(struct owner *o) { (void)o; }

static struct session *open_s(void)
{
	struct session *s = session_new(&srv, &own, false);
	if (!s)
		abort();
	return s;
}

struct text {
	char *p;
	size_t n;
};

/* Take everything queued for the socket; mask Date values. */
static struct text drain(struct session *s)
{
	struct text t = {NULL, 0};
	struct iovec iov[16];
	int k;
	while ((k = session_iov(s, iov, 16)) > 0) {
		size_t sum = 0;
		for (int i = 0; i < k; i++) {
			t.p = realloc(t.p, t.n + iov[i].iov_len + 1);
			memcpy(t.p + t.n, iov[i].iov_base, iov[i].iov_len);
			t.n += iov[i].iov_len;
			sum += iov[i].iov_len;
		}
		session_sent(s, sum);
	}
	if (!t.p)
		t.p = calloc(1, 1);
	t.p[t.n] = '\0';
	for (char *d = t.p; (d = strstr(d, "\r\nDate: ")) != NULL; d += 8)
		if (t.n - (size_t)(d + 8 - t.p) >= 29)
			memset(d + 8, 'D', 29);
	return t;
}

static struct text roundtrip(const char *in, size_t n, bool *closing)
{
	struct session *s = open_s();
	session_input(s, in, n);
	struct text t = drain(s);
	*closing = s->closing;
	session_free(s);
	return t;
}

static bool has(const struct text *t, const char *needle) { return strstr(t->p, needle) != NULL; }

static int count_of(const char *hay, const char *needle)
{
	int c = 0;
	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		c++;
	return c;
}

#define HELLO_REPLY                                                                                  \
	"HTTP/1.1 200 OK\r\nServer: weft\r\nDate: DDDDDDDDDDDDDDDDDDDDDDDDDDDDD\r\n"                     \
	"Content-Type: text/plain; charset=utf-8\r\nContent-Length: 14\r\n\r\nHello, World!\n"

static void test_get(void)
{
	bool closing;
	const char *req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	struct text t = roundtrip(req, strlen(req), &closing);
	CHECK(strcmp(t.p, HELLO_REPLY) == 0);
	CHECK(!closing);
	free(t.p);
	/* the real Date looks like an IMF-fixdate */
	struct session *s = open_s();
	session_input(s, req, strlen(req));
	struct iovec iov[4];
	int k = session_iov(s, iov, 4);
	CHECK(k >= 1);
	const char *d = strstr(iov[0].iov_base, "Date: ");
	CHECK(d && d[9] == ',' && memcmp(d + 31, " GMT\r\n", 6) == 0);
	session_free(s);
}

/* A session of many requests: the reply must not depend on how the bytes
 * were split, at any single split point or byte by byte. */
static const char pipeline[] =
	"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"
	"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
	"\r\n" /* a stray CRLF after a body, as old clients send: ignored */
	"GET /nope?q=1 HTTP/1.1\r\nHost: x\r\n\r\n"
	"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
	"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-T: 1\r\n\r\n"
	"GET http://x/?a HTTP/1.1\r\nHost: x\r\n\r\n"
	"GET / HTTP/1.1\nHost: x\nConnection: close\n\n"
	"GET / HTTP/1.1\r\nHost: x\r\n\r\n"; /* after close: never answered */

static void test_pipeline_splits(void)
{
	bool closing;
	struct text whole = roundtrip(pipeline, sizeof(pipeline) - 1, &closing);
	CHECK(closing);
	CHECK(count_of(whole.p, "HTTP/1.1 200 OK") == 5 + 1); /* GET, HEAD, 2 POST, absolute GET, last GET */
	CHECK(count_of(whole.p, "HTTP/1.1 404 Not Found") == 1);
	CHECK(count_of(whole.p, "HTTP/1.1 405 Method Not Allowed") == 1);
	CHECK(has(&whole, "Allow: GET, HEAD, POST\r\n"));
	CHECK(has(&whole, "Content-Length: 5\r\n\r\nhello"));
	CHECK(has(&whole, "Content-Length: 12\r\n\r\nhello, world"));
	CHECK(count_of(whole.p, "Connection: close") == 1);
	/* order: the HEAD reply (no body) comes right before the echo */
	const char *h = strstr(whole.p, "Hello, World!\nHTTP/1.1 200 OK");
	CHECK(h && strstr(h + 14, "Content-Length: 14\r\n\r\nHTTP/1.1 200 OK"));
	/* the last reply is the close one, and nothing follows it */
	size_t tail = strlen("Connection: close\r\n\r\nHello, World!\n");
	CHECK(whole.n > tail && strcmp(whole.p + whole.n - tail, "Connection: close\r\n\r\nHello, World!\n") == 0);

	int same_split = 1, same_trickle = 1;
	for (size_t k = 1; k < sizeof(pipeline) - 1; k++) {
		struct session *s = open_s();
		session_input(s, pipeline, k);
		session_input(s, pipeline + k, sizeof(pipeline) - 1 - k);
		struct text t = drain(s);
		if (t.n != whole.n || memcmp(t.p, whole.p, t.n) != 0) {
			if (same_split)
				fprintf(stderr, "split at %zu differs\n", k);
			same_split = 0;
		}
		free(t.p);
		session_free(s);
	}
	struct session *s = open_s();
	for (size_t k = 0; k < sizeof(pipeline) - 1; k++)
		session_input(s, pipeline + k, 1);
	struct text t = drain(s);
	same_trickle = t.n == whole.n && memcmp(t.p, whole.p, t.n) == 0;
	free(t.p);
	session_free(s);
	CHECK(same_split);
	CHECK(same_trickle);
	free(whole.p);
}

struct refusal {
	const char *in;
	const char *status;
};

/* Each is refused and the connection closes after the reply. */
static const struct refusal refusals[] = {
	{"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n", "400 Bad Request"},
	{"GET / HTTP/1.1\r\n\r\n", "400 Bad Request"}, /* HTTP/1.1 without Host */
	{"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "400 Bad Request"},
	{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\n", "400 Bad Request"},
	{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", "400 Bad Request"},
	{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "400 Bad Request"},
	{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", "400 Bad Request"},
	{"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", "400 Bad Request"},
	{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", "501 Not Implemented"},
	{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "501 Not Implemented"},
	{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "400 Bad Request"},
	{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX", "400 Bad Request"},
	{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1 x\r\n", "400 Bad Request"},
	{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nno colon\r\n\r\n", "400 Bad Request"},
	{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n", "413 Content Too Large"},
	{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 17\r\n\r\n", "413 Content Too Large"}, /* max_body 16 */
	{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 17\r\nContent-Length: 17\r\n\r\n", "413 Content Too Large"},
	{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789abcdef\r\n1\r\n", "413 Content Too Large"},
	{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffffffff\r\n", "413 Content Too Large"},
	{"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", "431 Request Header Fields Too Large"},
	{"GET / HTTP/1.1\r\nHost: a\r\nX: 0123456789012345678901234567890123456789012345678901234567890123456789"
	 "0123456789012345678901234567890123456789\r\n\r\n", "431 Request Header Fields Too Large"},
	{"GET / HTTP/1.1\r\nHost: a\r\nX: 0123456789012345678901234567890123456789012345678901234567890123456789"
	 "0123456789012345678901234567890123456789", "431 Request Header Fields Too Large"}, /* never ends */
	{"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/2.0\r\n\r\n", "505 HTTP Version Not Supported"},
	{"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET  / HTTP/1.1\r\n\r\n", "400 Bad Request"},
	{"GET / HTTP/1.1\r\nHost: a\r\n\r\n\x16\x03\x01\r\n\r\n", "400 Bad Request"},
};

static void test_refusals(void)
{
	size_t max_body = cfg.max_body, max_head = cfg.max_head;
	int max_headers = cfg.max_headers;
	cfg.max_body = 16;
	cfg.max_head = 128;
	cfg.max_headers = 4;
	for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
		const struct refusal *r = &refusals[i];
		bool closing;
		struct text t = roundtrip(r->in, strlen(r->in), &closing);
		char want[80];
		snprintf(want, sizeof(want), "HTTP/1.1 %s\r\n", r->status);
		const char *last = NULL;
		for (const char *p = t.p; (p = strstr(p, "HTTP/1.1 ")) != NULL; p++)
			last = p;
		bool ok = last && strncmp(last, want, strlen(want)) == 0 && strstr(last, "Connection: close\r\n") && closing;
		CHECK(ok);
		if (!ok)
			fprintf(stderr, "  case %zu: closing=%d reply:\n%s\n", i, closing, t.p);
		free(t.p);
	}
	cfg.max_body = max_body;
	cfg.max_head = max_head;
	cfg.max_headers = max_headers;
}

static void test_versions_and_connection(void)
{
	bool closing;
	const char *r10 = "GET / HTTP/1.0\r\n\r\n";
	struct text t = roundtrip(r10, strlen(r10), &closing);
	CHECK(closing && has(&t, "Connection: close\r\n") && has(&t, "Hello, World!"));
	free(t.p);
	const char *r10k = "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\nGET / HTTP/1.0\r\n\r\n";
	t = roundtrip(r10k, strlen(r10k), &closing);
	CHECK(closing && count_of(t.p, "Connection: keep-alive\r\n") == 1 && count_of(t.p, "Connection: close\r\n") == 1);
	free(t.p);
	const char *r11 = "GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, CLOSE\r\n\r\n";
	t = roundtrip(r11, strlen(r11), &closing);
	CHECK(closing && has(&t, "Connection: close\r\n"));
	free(t.p);
	const char *r19 = "GET / HTTP/1.9\r\nHost: a\r\n\r\n"; /* a later 1.x is spoken to as 1.1 */
	t = roundtrip(r19, strlen(r19), &closing);
	CHECK(!closing && strcmp(t.p, HELLO_REPLY) == 0);
	free(t.p);
	const char *cl2 = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\nok";
	t = roundtrip(cl2, strlen(cl2), &closing); /* equal repeated lengths are one length */
	CHECK(!closing && has(&t, "200 OK") && has(&t, "\r\n\r\nok"));
	free(t.p);
	const char *nf10 = "GET /nope HTTP/1.0\r\n\r\n"; /* an error that keeps a connection still says close */
	t = roundtrip(nf10, strlen(nf10), &closing);
	CHECK(closing && has(&t, "404 Not Found") && has(&t, "Connection: close\r\n"));
	free(t.p);
	const char *na = "DELETE / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
	t = roundtrip(na, strlen(na), &closing);
	CHECK(closing && has(&t, "405 Method Not Allowed") && has(&t, "Connection: close\r\n"));
	free(t.p);
	const char *head = "HEAD /nope HTTP/1.1\r\nHost: a\r\n\r\n";
	t = roundtrip(head, strlen(head), &closing);
	CHECK(!closing && has(&t, "404 Not Found") && has(&t, "Content-Length: 10\r\n\r\n") &&
	      t.p[t.n - 1] == '\n' && t.p[t.n - 2] == '\r');
	free(t.p);
}

static void test_expect_continue(void)
{
	bool closing;
	const char *r = "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi";
	struct text t = roundtrip(r, strlen(r), &closing);
	CHECK(strncmp(t.p, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n", 41) == 0 && has(&t, "\r\n\r\nhi"));
	free(t.p);
	cfg.max_body = 1;
	t = roundtrip(r, strlen(r), &closing); /* refused before the body is sent: no 100 */
	CHECK(strncmp(t.p, "HTTP/1.1 413", 12) == 0 && closing);
	free(t.p);
	cfg.max_body = 8 << 20;
}

/* A big body is streamed: nothing waits in the session's input buffer and
 * the reply grows as the body arrives. */
static void test_streamed_body(void)
{
	enum { N = 1 << 20, PIECE = 1000 };
	char *body = malloc(N);
	for (size_t i = 0; i < N; i++)
		body[i] = (char)(i * 31 + 7);
	struct session *s = open_s();
	const char *head = "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 1048576\r\n\r\n";
	session_input(s, head, strlen(head));
	int buffered = 0, grows = 1;
	size_t before = session_pending(s);
	for (size_t off = 0; off < N; off += PIECE) {
		size_t k = N - off < PIECE ? N - off : PIECE;
		session_input(s, body + off, k);
		if (buf_used(&s->in))
			buffered = 1;
		if (session_pending(s) != before + off + k)
			grows = 0;
	}
	CHECK(!buffered);
	CHECK(grows);
	struct text t = drain(s);
	const char *b = strstr(t.p, "\r\n\r\n");
	CHECK(b && t.n - (size_t)(b + 4 - t.p) == N && memcmp(b + 4, body, N) == 0);
	CHECK(has(&t, "Content-Length: 1048576\r\n") && !s->closing);
	free(t.p);
	/* the connection still serves the next request */
	session_input(s, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 27);
	t = drain(s);
	CHECK(strcmp(t.p, HELLO_REPLY) == 0);
	free(t.p);
	session_free(s);
	free(body);
}

/* A chunked body beyond --max-body is refused when the chunk size says so,
 * not after buffering it. */
static void test_chunked_limit(void)
{
	cfg.max_body = 1000;
	struct session *s = open_s();
	const char *head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
	session_input(s, head, strlen(head));
	char chunk[600];
	memset(chunk, 'z', sizeof(chunk));
	session_input(s, "258\r\n", 5); /* 600 */
	session_input(s, chunk, sizeof(chunk));
	session_input(s, "\r\n258\r\n", 7);
	struct text t = drain(s);
	CHECK(strncmp(t.p, "HTTP/1.1 413", 12) == 0 && s->closing);
	free(t.p);
	session_free(s);
	cfg.max_body = 8 << 20;
}

static long metric(const char *text, const char *line_start)
{
	const char *p = strstr(text, line_start);
	return p ? strtol(p + strlen(line_start), NULL, 10) : -1;
}

static void test_metrics(void)
{
	struct session *s = open_s();
	const char *m = "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n";
	session_input(s, m, strlen(m));
	struct text a = drain(s);
	CHECK(has(&a, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
	long n1 = metric(a.p, "weft_http_requests_total{model=\"test\",status=\"200\"} ");
	long e1 = metric(a.p, "weft_http_requests_total{model=\"test\",status=\"404\"} ");
	session_input(s, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n", 28);
	session_input(s, m, strlen(m));
	struct text b = drain(s);
	long n2 = metric(b.p, "weft_http_requests_total{model=\"test\",status=\"200\"} ");
	long e2 = metric(b.p, "weft_http_requests_total{model=\"test\",status=\"404\"} ");
	CHECK(n1 >= 1 && n2 == n1 + 1); /* each response once, under its own status */
	CHECK(e1 >= 0 && e2 == e1 + 1);
	/* one HELP/TYPE per family, its samples grouped right after */
	CHECK(count_of(b.p, "# TYPE weft_connections_closed_total counter\n") == 1);
	const char *t = strstr(b.p, "# TYPE weft_connections_closed_total counter\n");
	const char *last = NULL;
	for (const char *p = b.p; (p = strstr(p, "\nweft_connections_closed_total{")) != NULL; p++)
		last = p;
	const char *next_family = t ? strstr(t, "# HELP") : NULL;
	CHECK(t && last && (!next_family || last < next_family));
	CHECK(has(&b, "# TYPE weft_connections_open gauge\nweft_connections_open{model=\"test\"} "));
	CHECK(has(&b, "weft_connections_closed_total{model=\"test\",reason=\"reset\"} "));
	CHECK(has(&b, "\nprocess_resident_memory_bytes "));
	CHECK(!has(&b, "weft_cluster_")); /* no bridge registered its source */
	/* HEAD /metrics: the same head, no body */
	session_input(s, "HEAD /metrics HTTP/1.1\r\nHost: a\r\n\r\n", 35);
	struct text h = drain(s);
	CHECK(strncmp(h.p, "HTTP/1.1 200 OK", 15) == 0 && h.n > 4 && strcmp(h.p + h.n - 4, "\r\n\r\n") == 0);
	free(a.p);
	free(b.p);
	free(h.p);
	session_free(s);
}

static void test_stop(void)
{
	struct session *idle = open_s();
	session_input(idle, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 27);
	session_stop(idle);
	CHECK(idle->closing);
	struct text t = drain(idle);
	CHECK(strcmp(t.p, HELLO_REPLY) == 0);
	free(t.p);
	session_free(idle);

	struct session *busy = open_s();
	session_input(busy, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n", 63);
	session_stop(busy);
	CHECK(!busy->closing);
	session_input(busy, "0\r\n\r\n", 5);
	t = drain(busy);
	CHECK(busy->closing && has(&t, "Connection: close\r\n") && has(&t, "\r\n\r\nhi"));
	free(t.p);
	session_free(busy);
}

/* Half a request, then the peer goes: nothing is answered, nothing leaks. */
static void test_half_request(void)
{
	long live = msg_live_count();
	struct session *s = open_s();
	session_input(s, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", 62);
	session_reset(s);
	session_free(s);
	s = open_s();
	session_input(s, "GET / HTTP/1.1\r\nHo", 18);
	session_eof(s);
	struct text t = drain(s);
	CHECK(t.n == 0 && session_done(s));
	free(t.p);
	session_free(s);
	CHECK(msg_live_count() == live);
}

static enum close_reason reason_after(const char *in, void (*then)(struct session *))
{
	struct session *s = open_s();
	session_input(s, in, strlen(in));
	if (then)
		then(s);
	struct text t = drain(s);
	free(t.p);
	enum close_reason why = session_close_reason(s);
	session_free(s);
	return why;
}

static void idle_out(struct session *s) { session_idle_expired(s); }
static void peer_fin(struct session *s) { session_eof(s); }
static void peer_rst(struct session *s) { session_reset(s); }
static void stop(struct session *s) { session_stop(s); }
static void stop_then_idle(struct session *s)
{
	session_stop(s);
	session_idle_expired(s);
}
static void head_deadline(struct session *s) { session_deadline_expired(s); }
static void drain_end(struct session *s)
{
	session_stop(s);
	deadline_expire(s, now_ms(), now_ms(), now_ms()); /* the drain's end is now */
}

/* Every close gets one reason, the first it was given (the conformance
 * suite test_metrics.py counts them on every model; this covers the ones a
 * client cannot script: drain, drain_timeout, a header timeout). */
static void test_close_reasons(void)
{
	const char *get = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
	CHECK(reason_after(get, peer_fin) == CLOSE_PEER);
	CHECK(reason_after(get, idle_out) == CLOSE_IDLE);
	CHECK(reason_after(get, peer_rst) == CLOSE_RESET);
	CHECK(reason_after("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", NULL) == CLOSE_QUIT);
	CHECK(reason_after("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", peer_rst) == CLOSE_QUIT);
	CHECK(reason_after("GET / HTTP/1.1\r\n\r\n", NULL) == CLOSE_BAD_INPUT); /* no Host: 400 */
	CHECK(reason_after("GET / HTTP/1.1\r\nHost: a\r\n", head_deadline) == CLOSE_TIMEOUT); /* the 408 */
	CHECK(reason_after(get, stop) == CLOSE_DRAIN);
	CHECK(reason_after(get, stop_then_idle) == CLOSE_DRAIN);
	CHECK(reason_after("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\nab", drain_end) ==
	      CLOSE_DRAIN_TIMEOUT);
	CHECK(reason_after(get, NULL) == CLOSE_ERROR); /* closed by a model with no verdict: its failure */
}

int main(void)
{
	char *argv[] = {"weft", "--model", "test", NULL};
	if (config_parse(&cfg, 3, argv) != 0)
		return 2;
	srv.cfg = &cfg;
	owner_init(&own, wake, NULL);
	test_get();
	test_pipeline_splits();
	test_refusals();
	test_versions_and_connection();
	test_expect_continue();
	test_streamed_body();
	test_chunked_limit();
	test_metrics();
	test_stop();
	test_half_request();
	test_close_reasons();
	owner_destroy(&own);
	return check_done();
}
