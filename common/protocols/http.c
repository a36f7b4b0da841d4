/* http.c - HTTP/1.1 as a protocol: framing, routes, limits, keep-alive.
 *
 * Once detect.c has seen a request line, every byte of the connection is
 * HTTP. feed() runs a small state machine over what the session offers:
 *
 *   HEAD --(no body)--> answer --> HEAD
 *   HEAD --Content-Length--> BODY --> answer
 *   HEAD --chunked--> CHUNK_SIZE -> CHUNK_DATA -> CHUNK_END -> ... -> TRAILER --> answer
 *
 * A head is parsed by http_parse.c only once it is complete (it is resumed
 * with last_len, so one that trickles in is not re-parsed from zero). A
 * body never waits in the protocol longer than it must: a POST with a
 * Content-Length is answered with its head at once and its bytes are
 * streamed into the outbox as they arrive; a chunked POST is decoded into
 * a buffer capped at --max-body, because the reply carries a Content-Length;
 * bodies of other requests are discarded as they arrive. Pipelined requests
 * are answered in order because each is answered before the next is read,
 * and only while the output is below --read-pause: the rest waits in the
 * session until the client has read (session.h), so pipelined GET /metrics
 * cannot grow a connection's output beyond about --read-pause.
 * Everything the routes, limits and status codes mean is in docs/HTTP.md. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chat_page.h"
#include "http_parse.h"
#include "metrics.h"
#include "proto.h"
#include "server.h"
#include "session.h"
#include "stats.h"
#include "ws.h"

#define HELLO_BODY "Hello, World!\n"
#define TEXT_PLAIN "text/plain; charset=utf-8"
#define ALLOW_HEADER "Allow: GET, HEAD, POST\r\n"
/* A chunk-size line with extensions: generous, but never unbounded. */
#define CHUNK_LINE_MAX 1024
/* Our response heads: status, Server, Date, Content-Type, Content-Length,
 * Connection and extra fields (at most CHAT_PAGE_HEADERS_MAX), all of
 * bounded length. */
#define RESP_HEAD_MAX (256 + CHAT_PAGE_HEADERS_MAX)
#define RESP_SMALL_BODY 256

enum state { ST_HEAD, ST_BODY, ST_CHUNK_SIZE, ST_CHUNK_DATA, ST_CHUNK_END, ST_TRAILER };
enum route { R_HELLO, R_CHAT_PAGE, R_METRICS, R_NOT_FOUND, R_NOT_ALLOWED, R_ECHO_BUFFERED, R_ECHO_STREAMED };

struct http_conn {
	enum state st;
	size_t last_len;   /* bytes of a partial head offered last time */
	/* the request being read */
	enum route route;
	bool head_only;    /* HEAD: no body in the reply */
	bool keep_alive;
	bool http10;       /* HTTP/1.0 peers need "Connection: keep-alive" said */
	size_t left;       /* body bytes, or bytes of this chunk, still to come */
	size_t body_total; /* chunked: declared chunk bytes so far (--max-body) */
	size_t trailer;    /* chunked: trailer bytes so far (--max-head) */
	struct buf body;   /* R_ECHO_BUFFERED: the decoded body */
	bool stopping;     /* server is draining: close after the current reply */
	bool upgraded;     /* a 101 went out: the rest of the stream is WebSocket (ws.h) */
	size_t max_headers;
	struct http_header hdrs[]; /* one array per connection: parsing allocates nothing */
};

/* What the fields of a head say about framing and the connection. */
struct head_info {
	int hosts;
	bool has_length, length_huge, length_too_big, chunked, te_other, te_seen;
	size_t length;
	bool conn_close, conn_keep_alive, expect_continue;
};

/* ---- writing responses ---- */

struct out {
	char *p;
	size_t n;
};

static void add(struct out *o, const char *s, size_t n)
{
	memcpy(o->p + o->n, s, n);
	o->n += n;
}

static void add_str(struct out *o, const char *s) { add(o, s, strlen(s)); }

static void add_num(struct out *o, size_t v)
{
	char d[24];
	int i = sizeof(d);
	do
		d[--i] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	add(o, d + i, sizeof(d) - (size_t)i);
}

/* RFC 9110 IMF-fixdate, formatted once per second per thread. */
static const char *http_date(void)
{
	static _Thread_local time_t sec;
	static _Thread_local char text[40];
	static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	time_t now = time(NULL);
	struct tm tm;
	if ((now != sec || !text[0]) && gmtime_r(&now, &tm)) {
		snprintf(text, sizeof(text), "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday % 7],
		         tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
		sec = now;
	}
	return text;
}

static const char *reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 431: return "Request Header Fields Too Large";
	case 501: return "Not Implemented";
	case 505: return "HTTP Version Not Supported";
	default: return "Internal Server Error";
	}
}

/* Every response once, under its status. */
static void count(int status)
{
	switch (status) {
	case 200: stat_inc(STAT_http_200); break;
	case 400: stat_inc(STAT_http_400); break;
	case 403: stat_inc(STAT_http_403); break;
	case 404: stat_inc(STAT_http_404); break;
	case 405: stat_inc(STAT_http_405); break;
	case 408: stat_inc(STAT_http_408); break;
	case 411: stat_inc(STAT_http_411); break;
	case 413: stat_inc(STAT_http_413); break;
	case 431: stat_inc(STAT_http_431); break;
	case 500: stat_inc(STAT_http_500); break;
	case 501: stat_inc(STAT_http_501); break;
	case 505: stat_inc(STAT_http_505); break;
	}
}

struct reply {
	int status;
	const char *ctype;
	const char *extra; /* whole header lines, or NULL */
	size_t length;     /* Content-Length */
	const char *body;  /* what to send of it (NULL for HEAD or streamed) */
	size_t body_n;
	bool close;
};

/* Head and a small body go to the outbox in one copy, from the stack: the
 * fast path allocates nothing of its own. */
static void respond(struct session *s, const struct http_conn *h, const struct reply *r)
{
	char b[RESP_HEAD_MAX + RESP_SMALL_BODY];
	struct out o = {b, 0};
	char code[4] = {(char)('0' + r->status / 100), (char)('0' + r->status / 10 % 10), (char)('0' + r->status % 10), ' '};
	add_str(&o, "HTTP/1.1 ");
	add(&o, code, 4);
	add_str(&o, reason(r->status));
	add_str(&o, "\r\nServer: weft\r\nDate: ");
	add_str(&o, http_date());
	add_str(&o, "\r\nContent-Type: ");
	add_str(&o, r->ctype);
	add_str(&o, "\r\nContent-Length: ");
	add_num(&o, r->length);
	if (r->close)
		add_str(&o, "\r\nConnection: close");
	else if (h->http10)
		add_str(&o, "\r\nConnection: keep-alive");
	add_str(&o, "\r\n");
	if (r->extra)
		add_str(&o, r->extra);
	add_str(&o, "\r\n");
	if (r->body_n && r->body_n <= sizeof(b) - o.n) {
		add(&o, r->body, r->body_n);
		session_write(s, b, o.n);
	} else {
		session_write(s, b, o.n);
		if (r->body_n)
			session_write(s, r->body, r->body_n);
	}
}

static void error_reply(struct session *s, struct http_conn *h, int status, const char *extra, bool close)
{
	char body[64];
	int n = snprintf(body, sizeof(body), "%s\n", reason(status));
	count(status);
	struct reply r = {status, TEXT_PLAIN, extra, (size_t)n, h->head_only ? NULL : body,
	                  h->head_only ? 0 : (size_t)n, close};
	respond(s, h, &r);
	if (close && status == 500)
		session_close_for(s, CLOSE_ERROR); /* our failure (out of memory), not the client's */
	if (close)
		session_close_after_flush(s);
}

/* A request we cannot go on from: answer, close after the flush, and tell
 * feed() that everything offered is used up. */
static size_t fail(struct session *s, struct http_conn *h, int status)
{
	if (status != 500) /* 500 is ours: error_reply says so */
		session_close_for(s, CLOSE_BAD_INPUT);
	error_reply(s, h, status, NULL, true);
	return SIZE_MAX;
}

/* ---- answering ---- */

static void answer_metrics(struct session *s, struct http_conn *h, bool close)
{
	struct buf m = {0};
	if (metrics_render(s->srv, &m) < 0) {
		buf_free(&m);
		stat_inc(STAT_oom_errors);
		error_reply(s, h, 500, NULL, true);
		return;
	}
	count(200);
	struct reply r = {200, METRICS_CONTENT_TYPE, NULL, buf_used(&m), h->head_only ? NULL : buf_head(&m),
	                  h->head_only ? 0 : buf_used(&m), close};
	respond(s, h, &r);
	buf_free(&m);
}

static void answer(struct session *s, struct http_conn *h)
{
	bool close = !h->keep_alive || h->stopping;
	struct reply r = {200, TEXT_PLAIN, NULL, 0, NULL, 0, close};
	switch (h->route) {
	case R_HELLO:
		count(200);
		r.length = sizeof(HELLO_BODY) - 1;
		r.body = h->head_only ? NULL : HELLO_BODY;
		r.body_n = h->head_only ? 0 : r.length;
		respond(s, h, &r);
		break;
	case R_METRICS:
		answer_metrics(s, h, close);
		break;
	case R_CHAT_PAGE: { /* a browser's way in (chat_page.c) */
		char extra[CHAT_PAGE_HEADERS_MAX];
		count(200);
		chat_page_headers(extra, sizeof(extra));
		r.ctype = CHAT_PAGE_TYPE;
		r.extra = extra;
		const char *body = chat_page_body(&r.length);
		r.body = h->head_only ? NULL : body;
		r.body_n = h->head_only ? 0 : r.length;
		respond(s, h, &r);
		break;
	}
	case R_NOT_FOUND:
		error_reply(s, h, 404, NULL, close);
		break;
	case R_NOT_ALLOWED:
		error_reply(s, h, 405, ALLOW_HEADER, close);
		break;
	case R_ECHO_BUFFERED:
		count(200);
		r.ctype = "application/octet-stream";
		r.length = r.body_n = buf_used(&h->body);
		r.body = r.body_n ? buf_head(&h->body) : NULL; /* an empty buf has no data */
		respond(s, h, &r);
		buf_free(&h->body); /* an idle connection keeps no body buffer */
		break;
	case R_ECHO_STREAMED:
		break; /* head and body are out already */
	}
	if (close)
		session_close_after_flush(s);
}

static void end_request(struct session *s, struct http_conn *h)
{
	answer(s, h);
	h->st = ST_HEAD;
}

/* ---- the head ---- */

static bool name_is(const struct http_header *f, const char *lit) { return http_token_eq(f->name, f->name_len, lit); }

/* Content-Length: 1*DIGIT, nothing else (no sign, no list). */
static int parse_length(const struct http_header *f, struct head_info *hi, size_t max_body)
{
	size_t v = 0;
	bool big = false;
	if (f->value_len == 0)
		return -1;
	for (size_t i = 0; i < f->value_len; i++) {
		unsigned c = (unsigned char)f->value[i] - '0';
		if (c > 9)
			return -1;
		if (v > (SIZE_MAX - c) / 10)
			big = true; /* still a valid number, just larger than any limit */
		else
			v = v * 10 + c;
	}
	if (hi->has_length && (big != hi->length_huge || (!big && v != hi->length)))
		return -1; /* two different lengths: the request cannot be framed */
	hi->has_length = true;
	hi->length = v;
	hi->length_huge = big;
	hi->length_too_big = big || v > max_body;
	return 0;
}

/* Connection: a comma-separated list of options. */
static void parse_connection(const struct http_header *f, struct head_info *hi)
{
	const char *p = f->value, *end = f->value + f->value_len;
	while (p < end) {
		const char *q = memchr(p, ',', (size_t)(end - p));
		const char *e = q ? q : end;
		const char *a = p, *b = e;
		while (a < b && (*a == ' ' || *a == '\t'))
			a++;
		while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
			b--;
		if (http_token_eq(a, (size_t)(b - a), "close"))
			hi->conn_close = true;
		else if (http_token_eq(a, (size_t)(b - a), "keep-alive"))
			hi->conn_keep_alive = true;
		p = q ? q + 1 : end;
	}
}

/* Read the fields that decide framing; returns 0 or the status to refuse with. */
static int inspect(const struct http_request *req, struct head_info *hi, size_t max_body)
{
	*hi = (struct head_info){0};
	for (size_t i = 0; i < req->num_headers; i++) {
		const struct http_header *f = &req->headers[i];
		if (name_is(f, "host")) {
			hi->hosts++;
		} else if (name_is(f, "content-length")) {
			if (parse_length(f, hi, max_body) < 0)
				return 400;
		} else if (name_is(f, "transfer-encoding")) {
			/* exactly one coding, "chunked"; anything else we cannot decode */
			if (!hi->te_seen && http_token_eq(f->value, f->value_len, "chunked"))
				hi->chunked = true;
			else
				hi->te_other = true;
			hi->te_seen = true;
		} else if (name_is(f, "connection")) {
			parse_connection(f, hi);
		} else if (name_is(f, "expect")) {
			hi->expect_continue = http_token_eq(f->value, f->value_len, "100-continue");
		}
	}
	if (hi->hosts > 1 || (req->minor >= 1 && hi->hosts == 0))
		return 400; /* RFC 9112 3.2 */
	if (hi->te_seen && (req->minor == 0 || hi->has_length))
		return 400; /* RFC 9112 6.1: ambiguous framing, a smuggling vector */
	if (hi->te_other)
		return 501;
	if (hi->has_length && hi->length_too_big)
		return 413;
	return 0;
}

/* The path of an origin-form or absolute-form target, without the query. */
static void target_path(const struct http_request *req, const char **path, size_t *len)
{
	const char *p = req->target, *end = req->target + req->target_len;
	if (*p != '/') {
		const char *sep = NULL;
		for (const char *q = p; q + 3 <= end; q++)
			if (q[0] == ':' && q[1] == '/' && q[2] == '/') {
				sep = q + 3;
				break;
			}
		if (sep) { /* absolute-form: skip scheme and authority */
			p = memchr(sep, '/', (size_t)(end - sep));
			if (!p)
				p = end;
		}
	}
	const char *q = memchr(p, '?', (size_t)(end - p));
	*path = p;
	*len = (size_t)((q ? q : end) - p);
}

static bool method_is(const struct http_request *req, const char *m)
{
	return req->method_len == strlen(m) && memcmp(req->method, m, req->method_len) == 0;
}

static enum route route(const struct http_request *req)
{
	if (method_is(req, "POST"))
		return R_ECHO_STREAMED;
	if (!method_is(req, "GET") && !method_is(req, "HEAD"))
		return R_NOT_ALLOWED;
	const char *path;
	size_t n;
	target_path(req, &path, &n);
	if (n == 0 || (n == 1 && path[0] == '/'))
		return R_HELLO;
	if (n == 8 && memcmp(path, "/metrics", 8) == 0)
		return R_METRICS;
	if (n == 5 && memcmp(path, "/chat", 5) == 0)
		return R_CHAT_PAGE;
	return R_NOT_FOUND;
}

/* A complete, well-formed head: decide framing and route, answer what can
 * be answered now. Returns 0 or SIZE_MAX after fail(). */
static size_t start_request(struct session *s, struct http_conn *h, const struct http_request *req)
{
	struct head_info hi;
	h->head_only = method_is(req, "HEAD");
	h->http10 = req->minor == 0;
	int status = inspect(req, &hi, s->srv->cfg->max_body);
	if (status)
		return fail(s, h, status);
	h->keep_alive = !hi.conn_close && (req->minor >= 1 || hi.conn_keep_alive);
	if (ws_upgrade_asked(req)) { /* WebSocket: 101 or a refusal (ws_handshake.c) */
		int ws = ws_handshake(s, req, hi.chunked || hi.length > 0);
		count(ws);
		if (ws == 101)
			h->upgraded = true;
		else
			session_close_after_flush(s);
		return ws == 101 ? 0 : SIZE_MAX;
	}
	h->route = route(req);
	bool has_body = hi.chunked || hi.length > 0;
	if (has_body && hi.expect_continue && req->minor >= 1)
		session_puts(s, "HTTP/1.1 100 Continue\r\n\r\n");
	if (hi.chunked) {
		if (h->route == R_ECHO_STREAMED)
			h->route = R_ECHO_BUFFERED;
		h->body_total = 0;
		h->st = ST_CHUNK_SIZE;
		return 0;
	}
	if (h->route == R_ECHO_STREAMED) {
		count(200);
		struct reply r = {200, "application/octet-stream", NULL, hi.length, NULL, 0, !h->keep_alive || h->stopping};
		respond(s, h, &r);
	}
	h->left = hi.length;
	if (h->left)
		h->st = ST_BODY;
	else
		end_request(s, h);
	return 0;
}

/* Only the first --max-head bytes are ever parsed, and a head that would
 * outgrow them is parsed once more from the start before it is refused:
 * so the verdict (400 or 431) does not depend on how the bytes arrived. */
static size_t feed_head(struct session *s, struct http_conn *h, const char *p, size_t n)
{
	size_t max_head = s->srv->cfg->max_head;
	size_t len = n < max_head ? n : max_head;
	struct http_request req;
	ssize_t r = http_parse_request(p, len, n >= max_head ? 0 : h->last_len, &req, h->hdrs, h->max_headers);
	if (r == HTTP_PARSE_PARTIAL) {
		if (n >= max_head)
			return fail(s, h, 431);
		h->last_len = n;
		session_head_begin(s); /* --header-timeout counts from its first byte */
		return 0;
	}
	session_head_end(s);
	h->last_len = 0;
	h->head_only = false;
	h->http10 = false;
	if (r < 0)
		return fail(s, h, r == HTTP_PARSE_TOO_MANY ? 431 : r == HTTP_PARSE_VERSION ? 505 : 400);
	size_t rc = start_request(s, h, &req);
	return rc ? rc : (size_t)r;
}

/* ---- bodies ---- */

static size_t feed_body(struct session *s, struct http_conn *h, const char *p, size_t n)
{
	size_t k = n < h->left ? n : h->left;
	if (h->route == R_ECHO_STREAMED)
		session_write(s, p, k);
	h->left -= k;
	if (h->left == 0)
		end_request(s, h);
	return k;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* chunk-size [ BWS ";" chunk-ext ] EOL; the extension is ignored. */
static size_t feed_chunk_size(struct session *s, struct http_conn *h, const char *p, size_t n)
{
	const char *nl = memchr(p, '\n', n < CHUNK_LINE_MAX ? n : CHUNK_LINE_MAX);
	if (!nl)
		return n >= CHUNK_LINE_MAX ? fail(s, h, 400) : 0;
	size_t i = 0, size = 0;
	int v;
	size_t rem = s->srv->cfg->max_body - h->body_total;
	for (; p + i < nl && (v = hexval(p[i])) >= 0; i++) {
		if ((size_t)v > rem || size > (rem - (size_t)v) / 16)
			return fail(s, h, 413); /* checked before it could overflow */
		size = size * 16 + (size_t)v;
	}
	if (i == 0)
		return fail(s, h, 400);
	const char *q = p + i;
	while (q < nl && (*q == ' ' || *q == '\t'))
		q++;
	if (q < nl && *q == ';')
		while (q < nl && *q != '\r' && ((unsigned char)*q >= 0x20 || *q == '\t') && *q != 0x7f)
			q++;
	if (q < nl && *q == '\r')
		q++;
	if (q != nl)
		return fail(s, h, 400);
	h->body_total += size;
	h->left = size;
	h->trailer = 0;
	h->st = size ? ST_CHUNK_DATA : ST_TRAILER;
	return (size_t)(nl - p) + 1;
}

static size_t feed_chunk_data(struct session *s, struct http_conn *h, const char *p, size_t n)
{
	size_t k = n < h->left ? n : h->left;
	if (h->route == R_ECHO_BUFFERED && buf_append(&h->body, p, k) < 0) {
		stat_inc(STAT_oom_errors);
		error_reply(s, h, 500, NULL, true);
		return SIZE_MAX;
	}
	h->left -= k;
	if (h->left == 0)
		h->st = ST_CHUNK_END;
	return k;
}

static size_t feed_chunk_end(struct session *s, struct http_conn *h, const char *p, size_t n)
{
	size_t k = p[0] == '\r' ? 2 : 1;
	if (n < k)
		return 0;
	if (p[k - 1] != '\n')
		return fail(s, h, 400);
	h->st = ST_CHUNK_SIZE;
	return k;
}

/* Trailer fields are read and dropped, within --max-head; an empty line ends
 * the request. */
static size_t feed_trailer(struct session *s, struct http_conn *h, const char *p, size_t n)
{
	size_t room = s->srv->cfg->max_head - h->trailer; /* each line fitted, so trailer <= max_head */
	const char *nl = memchr(p, '\n', n < room ? n : room);
	if (!nl)
		return n >= room ? fail(s, h, 431) : 0;
	size_t len = (size_t)(nl - p) + 1;
	size_t text = len - 1 - (len >= 2 && p[len - 2] == '\r');
	for (size_t i = 0; i < text; i++) {
		unsigned char c = (unsigned char)p[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return fail(s, h, 400);
	}
	if (text == 0)
		end_request(s, h);
	else if (!memchr(p, ':', text))
		return fail(s, h, 400);
	h->trailer += len;
	return len;
}

/* ---- the protocol ---- */

static size_t step(struct session *s, struct http_conn *h, const char *p, size_t n)
{
	switch (h->st) {
	case ST_HEAD: return feed_head(s, h, p, n);
	case ST_BODY: return feed_body(s, h, p, n);
	case ST_CHUNK_SIZE: return feed_chunk_size(s, h, p, n);
	case ST_CHUNK_DATA: return feed_chunk_data(s, h, p, n);
	case ST_CHUNK_END: return feed_chunk_end(s, h, p, n);
	case ST_TRAILER: return feed_trailer(s, h, p, n);
	}
	return fail(s, h, 500);
}

static void http_fini(struct session *s);

static size_t http_feed(struct session *s, const char *p, size_t n)
{
	struct http_conn *h = s->pstate;
	size_t used = 0;
	/* Back-pressure between steps (a request, or a piece of a streamed body). */
	while (used < n && !s->closing && !session_output_full(s)) {
		size_t k = step(s, h, p + used, n - used);
		if (k == SIZE_MAX)
			return n; /* refused: the rest is not read */
		if (k == 0)
			break;
		used += k;
		if (h->upgraded) { /* hand the connection, and what followed the head, to WebSocket */
			http_fini(s);
			ws_begin(s);
			return s->closing ? n : used + s->proto->feed(s, p + used, n - used);
		}
	}
	return used;
}

static int http_init(struct session *s)
{
	size_t max = (size_t)s->srv->cfg->max_headers;
	struct http_conn *h = calloc(1, sizeof(*h) + max * sizeof(h->hdrs[0]));
	if (!h)
		return -ENOMEM;
	h->max_headers = max;
	s->pstate = h;
	return 0;
}

/* Draining: an idle keep-alive connection closes now; one in the middle of
 * a request closes after its reply (which says "Connection: close"). */
static void http_stop(struct session *s)
{
	struct http_conn *h = s->pstate;
	h->stopping = true;
	if (h->st == ST_HEAD && h->last_len == 0 && buf_used(&s->in) == 0)
		session_close_after_flush(s);
}

/* The head did not arrive within --header-timeout of its first byte: the
 * slowloris defence (nginx's client_header_timeout). */
static void http_head_timeout(struct session *s)
{
	struct http_conn *h = s->pstate;
	h->head_only = false; /* left from the previous request: this one was never read */
	h->http10 = false;
	error_reply(s, h, 408, NULL, true);
}

static void http_fini(struct session *s)
{
	struct http_conn *h = s->pstate;
	if (!h)
		return;
	buf_free(&h->body);
	free(h);
	s->pstate = NULL;
}

const struct proto proto_http = {
	.name = "http",
	.counter = STAT_proto_http,
	.init = http_init,
	.feed = http_feed,
	.stop = http_stop,
	.head_timeout = http_head_timeout,
	.fini = http_fini,
};
