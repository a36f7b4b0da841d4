/* fuzz_http.c - libFuzzer target for the HTTP parser and protocol.
 *
 * The input is a byte stream from a client. Three oracles beside the
 * sanitizers:
 *  - the head parser, given an exact-size heap copy (ASan sees any
 *    over-read), agrees with itself when resumed from a split point (except
 *    that resuming may postpone an error until a line ends), and whatever
 *    it returns points inside the input;
 *  - the protocol answers the same bytes whether they arrive at once or cut
 *    at split points taken from the input (Date masked; replies with
 *    /metrics, whose counters move between runs, are not compared);
 *  - no msg outlives its session. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "http_parse.h"
#include "msg.h"
#include "owner.h"
#include "proto.h"
#include "server.h"
#include "session.h"

static struct config cfg;
static struct server srv;
static struct owner own;

static void wake(struct owner *o) { (void)o; }

static void setup(void)
{
	char *argv[] = {"weft", "--model", "fuzz", "--max-head", "512", "--max-body", "4096", "--max-headers", "8", NULL};
	if (config_parse(&cfg, 9, argv) != 0)
		abort();
	srv.cfg = &cfg;
	owner_init(&own, wake, NULL);
}

static void check_parser(const uint8_t *data, size_t size, size_t split)
{
	char *buf = malloc(size ? size : 1);
	memcpy(buf, data, size);
	struct http_header h[8];
	struct http_request req;
	ssize_t whole = http_parse_request(buf, size, 0, &req, h, 8);
	if (whole > 0) {
		if ((size_t)whole > size || req.method < buf || req.target + req.target_len > buf + whole)
			abort();
		for (size_t i = 0; i < req.num_headers; i++)
			if (h[i].name < buf || h[i].value + h[i].value_len > buf + whole)
				abort();
	}
	if (split && split < size) {
		ssize_t first = http_parse_request(buf, split, 0, &req, h, 8);
		ssize_t resumed = first == HTTP_PARSE_PARTIAL ? http_parse_request(buf, size, split, &req, h, 8) : whole;
		/* resuming may postpone an error to the next line end, nothing else */
		if (resumed != whole && !(resumed == HTTP_PARSE_PARTIAL && whole < 0))
			abort();
		if (first > 0 && first != whole)
			abort(); /* a complete head does not change with what follows */
	}
	free(buf);
}

/* Everything the session queued, with Date values masked. */
static char *replies(struct session *s, size_t *n)
{
	char *out = NULL;
	*n = 0;
	struct iovec iov[8];
	int k;
	while ((k = session_iov(s, iov, 8)) > 0) {
		size_t sum = 0;
		for (int i = 0; i < k; i++) {
			out = realloc(out, *n + iov[i].iov_len + 1);
			memcpy(out + *n, iov[i].iov_base, iov[i].iov_len);
			*n += iov[i].iov_len;
			sum += iov[i].iov_len;
		}
		session_sent(s, sum);
	}
	if (!out)
		out = calloc(1, 1);
	out[*n] = '\0';
	for (char *d = out; (d = memmem(d, *n - (size_t)(d - out), "\r\nDate: ", 8)) != NULL; d += 8)
		if (*n - (size_t)(d + 8 - out) >= 29)
			memset(d + 8, 'D', 29);
	return out;
}

/* Feed data cut at the given points (an empty list: at once). */
static char *run(const uint8_t *data, size_t size, const size_t *cuts, int ncuts, size_t *n)
{
	struct session *s = session_new(&srv, &own, false);
	if (!s)
		abort();
	/* straight to HTTP: detection is test_core's business, and the fuzzer
	 * should not spend its time on inputs that would be echoed */
	s->proto = &proto_http;
	if (proto_http.init(s) < 0)
		abort();
	size_t at = 0;
	for (int i = 0; i <= ncuts; i++) {
		size_t end = i < ncuts ? cuts[i] : size;
		if (end > at) {
			/* an exact-size copy, so ASan sees reads past what was offered */
			char *piece = malloc(end - at);
			memcpy(piece, data + at, end - at);
			session_input(s, piece, end - at);
			free(piece);
			at = end;
		}
	}
	session_eof(s);
	char *out = replies(s, n);
	session_free(s);
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	if (!ready) {
		setup();
		ready = 1;
	}
	long live = msg_live_count();
	/* split points come from the data itself, so the fuzzer can steer them */
	size_t cuts[4];
	int ncuts = 0;
	size_t seed = size ? data[size - 1] * 31u + data[0] : 0;
	for (size_t at = 0; ncuts < 4 && size; ncuts++) {
		at += 1 + (seed = seed * 1103515245u + 12345u) % (size / 3 + 1);
		if (at >= size)
			break;
		cuts[ncuts] = at;
	}
	check_parser(data, size, ncuts ? cuts[0] : 0);
	size_t n1, n2;
	char *a = run(data, size, NULL, 0, &n1);
	char *b = run(data, size, cuts, ncuts, &n2);
	if (!memmem(a, n1, "# HELP", 6) && !memmem(b, n2, "# HELP", 6) && (n1 != n2 || memcmp(a, b, n1) != 0)) {
		fprintf(stderr, "cuts:");
		for (int i = 0; i < ncuts; i++)
			fprintf(stderr, " %zu", cuts[i]);
		fprintf(stderr, "\n--- at once:\n%s\n--- split:\n%s\n", a, b);
		abort(); /* the reply depended on how the bytes were split */
	}
	free(a);
	free(b);
	if (msg_live_count() != live)
		abort();
	return 0;
}
