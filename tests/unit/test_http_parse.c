/* test_http_parse.c - the HTTP request-head parser, at every split point.
 *
 * Every input is placed so that its last byte is the last readable byte
 * before a PROT_NONE page: a read past the length the parser was given
 * faults instead of passing quietly. Each request is parsed whole, resumed
 * byte by byte with last_len, and split in two at every offset; all three
 * must agree. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"
#include "http_parse.h"

#define MAX_HEADERS 8

static char *guard_base;
static size_t guard_span, page;

/* Copy [p, p+n) so it ends right at the guard page; returns the copy. */
static const char *guarded(const char *p, size_t n)
{
	if (n + page > guard_span) {
		if (guard_base)
			munmap(guard_base, guard_span + page);
		guard_span = (n / page + 2) * page;
		guard_base = mmap(NULL, guard_span + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (guard_base == MAP_FAILED || mprotect(guard_base + guard_span, page, PROT_NONE) != 0)
			abort();
	}
	char *dst = guard_base + guard_span - n;
	memcpy(dst, p, n);
	return dst;
}

static ssize_t parse(const char *p, size_t n, size_t last_len, struct http_request *req, struct http_header *h)
{
	return http_parse_request(guarded(p, n), n, last_len, req, h, MAX_HEADERS);
}

/* Byte by byte, resuming with last_len: the first non-partial answer. */
static ssize_t parse_trickle(const char *p, size_t n, size_t *at)
{
	struct http_request req;
	struct http_header h[MAX_HEADERS];
	size_t last = 0;
	for (size_t k = 1; k <= n; k++) {
		ssize_t r = parse(p, k, last, &req, h);
		if (r != HTTP_PARSE_PARTIAL) {
			*at = k;
			return r;
		}
		last = k;
	}
	*at = n;
	return HTTP_PARSE_PARTIAL;
}

struct good {
	const char *in;
	size_t head;                 /* expected head length (the rest is a pipelined tail) */
	const char *method, *target; /* expected */
	int minor;
	size_t nh;
	const char *h0name, *h0value; /* first field, if any */
};

static const struct good goods[] = {
	{"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 27, "GET", "/", 1, 1, "Host", "a"},
	{"GET / HTTP/1.1\nHost: a\n\n", 24, "GET", "/", 1, 1, "Host", "a"},
	{"HEAD /x?y=1 HTTP/1.0\r\n\r\n", 24, "HEAD", "/x?y=1", 0, 0, NULL, NULL},
	{"\r\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 30, "GET", "/", 1, 1, "Host", "a"},
	{"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello", 51, "POST", "/echo", 1, 2, "Host", "h"},
	{"GET / HTTP/1.1\r\nX-Empty:\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\n", 37, "GET", "/", 1, 2, "X-Empty", ""},
	{"GET / HTTP/1.1\r\nX:  \t spaced  value \t \r\n\r\n", 42, "GET", "/", 1, 1, "X", "spaced  value"},
	{"M-SEARCH * HTTP/1.1\r\n!#$%&'*+-.^_`|~0aZ: v\r\n\r\n", 46, "M-SEARCH", "*", 1, 1, "!#$%&'*+-.^_`|~0aZ", "v"},
	{"GET http://h/p HTTP/1.9\r\nA: \x80\xff obs\r\n\r\n", 38, "GET", "http://h/p", 9, 1, "A", "\x80\xff obs"},
};

struct bad {
	const char *in;
	size_t n;
	ssize_t want;
};

#define S(lit) lit, sizeof(lit) - 1

static const struct bad bads[] = {
	{S("GET  / HTTP/1.1\r\n\r\n"), HTTP_PARSE_BAD},       /* two spaces */
	{S(" GET / HTTP/1.1\r\n\r\n"), HTTP_PARSE_BAD},       /* leading space */
	{S("GET /\x01 HTTP/1.1\r\n\r\n"), HTTP_PARSE_BAD},    /* control in target */
	{S("GET / HTTP/1.1 \r\n\r\n"), HTTP_PARSE_BAD},       /* trailing space */
	{S("GET / HTTP/1.1\rX\r\n\r\n"), HTTP_PARSE_BAD},     /* bare CR */
	{S("GET / HTTP/1.1\r\nA: b\rc\r\n\r\n"), HTTP_PARSE_BAD},
	{S("GET / HTTP/1.1\r\nA : b\r\n\r\n"), HTTP_PARSE_BAD}, /* space before colon */
	{S("GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n"), HTTP_PARSE_BAD}, /* obs-fold */
	{S("GET / HTTP/1.1\r\n: b\r\n\r\n"), HTTP_PARSE_BAD},   /* empty name */
	{S("GET / HTTP/1.1\r\nA\r\n\r\n"), HTTP_PARSE_BAD},     /* no colon */
	{S("GET / HTTP/1.1\r\nA: \x01\r\n\r\n"), HTTP_PARSE_BAD},
	{S("GET / HTTP/1.1\r\nA: \x7f\r\n\r\n"), HTTP_PARSE_BAD},
	{S("GET / HTTP/1.1\r\nA: \0\r\n\r\n"), HTTP_PARSE_BAD},
	{S("GET / HTTP/1.10\r\n\r\n"), HTTP_PARSE_BAD},
	{S("GET / HTTP/11\r\n\r\n"), HTTP_PARSE_BAD},
	{S("GET / http/1.1\r\n\r\n"), HTTP_PARSE_BAD},
	{S("G(T / HTTP/1.1\r\n\r\n"), HTTP_PARSE_BAD},
	{S("GET / HTTP/2.0\r\n\r\n"), HTTP_PARSE_VERSION},
	{S("GET / HTTP/0.9\r\nA: b\r\n\r\n"), HTTP_PARSE_VERSION},
	{S("GET / HTTP/1.1\r\nA:1\r\nB:2\r\nC:3\r\nD:4\r\nE:5\r\nF:6\r\nG:7\r\nH:8\r\nI:9\r\n\r\n"), HTTP_PARSE_TOO_MANY},
};

static void check_good(const struct good *g)
{
	size_t n = strlen(g->in);
	struct http_request req;
	struct http_header h[MAX_HEADERS];
	ssize_t r = parse(g->in, n, 0, &req, h);
	CHECK(r == (ssize_t)g->head);
	if (r != (ssize_t)g->head) {
		fprintf(stderr, "  input %s: got %zd\n", g->in, r);
		return;
	}
	CHECK(req.method_len == strlen(g->method) && memcmp(req.method, g->method, req.method_len) == 0);
	CHECK(req.target_len == strlen(g->target) && memcmp(req.target, g->target, req.target_len) == 0);
	CHECK(req.major == 1 && req.minor == g->minor);
	CHECK(req.num_headers == g->nh);
	if (g->h0name && req.num_headers) {
		CHECK(req.headers[0].name_len == strlen(g->h0name) && memcmp(req.headers[0].name, g->h0name, req.headers[0].name_len) == 0);
		CHECK(req.headers[0].value_len == strlen(g->h0value) &&
		      memcmp(req.headers[0].value, g->h0value, req.headers[0].value_len) == 0);
	}
	/* every proper prefix of the head is partial, with or without resuming */
	int prefix_ok = 1, split_ok = 1;
	for (size_t k = 0; k < g->head; k++) {
		if (parse(g->in, k, 0, &req, h) != HTTP_PARSE_PARTIAL)
			prefix_ok = 0;
		if (k && (parse(g->in, k, 0, &req, h) != HTTP_PARSE_PARTIAL || parse(g->in, n, k, &req, h) != r))
			split_ok = 0;
	}
	CHECK(prefix_ok);
	CHECK(split_ok);
	size_t at;
	CHECK(parse_trickle(g->in, n, &at) == r && at == g->head);
}

static void check_bad(const struct bad *b)
{
	size_t n = b->n;
	struct http_request req;
	struct http_header h[MAX_HEADERS];
	ssize_t r = parse(b->in, n, 0, &req, h);
	CHECK(r == b->want);
	if (r != b->want)
		fprintf(stderr, "  input %s: got %zd want %zd\n", b->in, r, b->want);
	/* prefixes are partial until the error shows; never a success */
	int ok = 1;
	for (size_t k = 0; k < n; k++) {
		ssize_t p = parse(b->in, k, 0, &req, h);
		if (p != HTTP_PARSE_PARTIAL && p != b->want)
			ok = 0;
		if (k && parse(b->in, n, k, &req, h) != b->want)
			ok = 0;
	}
	CHECK(ok);
	size_t at;
	CHECK(parse_trickle(b->in, n, &at) == b->want);
}

/* A slow head is refused as soon as the offending line is complete. */
static void test_early_error(void)
{
	const char *in = "GET / HTTP/1.1\r\nBad Header: x\r\nHost: a\r\n";
	size_t at;
	CHECK(parse_trickle(in, strlen(in), &at) == HTTP_PARSE_BAD);
	CHECK(at == strlen("GET / HTTP/1.1\r\nBad Header: x\r\n")); /* at its line end, not later */
}

/* Errors wait for their line's LF; last_len skips calls that bring none. */
static void test_resume_skips(void)
{
	struct http_request req;
	struct http_header h[MAX_HEADERS];
	const char *in = "GET\x01/ HTTP/1.1\r\n";
	CHECK(parse(in, strlen(in) - 2, 0, &req, h) == HTTP_PARSE_PARTIAL);
	CHECK(parse(in, strlen(in) - 1, 0, &req, h) == HTTP_PARSE_PARTIAL);
	CHECK(parse(in, strlen(in), 0, &req, h) == HTTP_PARSE_BAD);
	/* with last_len, a call that brings no LF is not parsed at all: a
	 * complete head passed off as already seen stays partial */
	const char *ok = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
	const char *lie = "GET\x01/ HTTP/1.1\r\nX";
	CHECK(parse(lie, strlen(lie), 0, &req, h) == HTTP_PARSE_BAD);
	CHECK(parse(lie, strlen(lie), strlen(lie) - 1, &req, h) == HTTP_PARSE_PARTIAL);
	CHECK(parse(ok, 26, 17, &req, h) == HTTP_PARSE_PARTIAL);
	CHECK(parse(ok, 26, 0, &req, h) == HTTP_PARSE_PARTIAL);
	CHECK(parse(ok, 27, 26, &req, h) == 27);
	CHECK(parse("GET / HTTP/1.1\r\nHost: a\r\n\r", 27, 16, &req, h) == HTTP_PARSE_PARTIAL);
}

static void test_token_eq(void)
{
	CHECK(http_token_eq("Content-Length", 14, "content-length"));
	CHECK(http_token_eq("CHUNKED", 7, "chunked"));
	CHECK(!http_token_eq("chunke", 6, "chunked"));
	CHECK(!http_token_eq("chunkedx", 8, "chunked"));
	CHECK(http_token_eq("", 0, ""));
}

int main(void)
{
	page = (size_t)sysconf(_SC_PAGESIZE);
	for (size_t i = 0; i < sizeof(goods) / sizeof(goods[0]); i++)
		check_good(&goods[i]);
	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++)
		check_bad(&bads[i]);
	test_early_error();
	test_resume_skips();
	test_token_eq();
	/* the guard page itself works: this would fault if it did not */
	CHECK(guarded("x", 1)[0] == 'x');
	return check_done();
}
