/* detect.c - which protocol a connection speaks, from its first bytes.
 *
 * HTTP: the bytes are, or may still become, a request line
 * "METHOD SP target SP HTTP/D.D" followed by LF or CRLF, with METHOD one of
 * the methods below and D one digit. Any version counts, so that a client
 * speaking one we do not (HTTP/2.0, HTTP/9.9, the prior-knowledge HTTP/2
 * preface "PRI * HTTP/2.0") gets http.c's 505 rather than its bytes echoed.
 * Until the line is complete (or clearly is not one), we wait; a line
 * longer than --max-head is not HTTP. --no-http disables this.
 * Otherwise echo mode is echo, and chat mode is RESP when the first byte is
 * '*' (what every Redis client sends) and the line protocol for anything else. */
#include <stdbool.h>
#include <string.h>

#include "proto.h"
#include "server.h"

/* PRI is HTTP/2's connection preface (RFC 9113 3.4), never an HTTP/1 method. */
static const char *const methods[] = {"GET",   "HEAD",  "POST",    "PUT", "DELETE", "OPTIONS",
                                      "PATCH", "TRACE", "CONNECT", "PRI"};

enum verdict { NO, MAYBE, YES };

static enum verdict match_lit(const char *p, size_t n, const char *lit, size_t *used)
{
	size_t l = strlen(lit);
	size_t k = n < l ? n : l;
	if (memcmp(p, lit, k) != 0)
		return NO;
	*used = k;
	return k == l ? YES : MAYBE;
}

static enum verdict request_line(const char *p, size_t n, size_t max)
{
	size_t i = 0, u = 0;
	enum verdict v = NO;
	for (size_t m = 0; m < sizeof(methods) / sizeof(methods[0]); m++) {
		v = match_lit(p, n, methods[m], &u);
		if (v == YES && (n == u || p[u] == ' '))
			break;
		if (v == MAYBE)
			return MAYBE;
		v = NO;
	}
	if (v == NO)
		return NO;
	i = u;
	if (i == n)
		return MAYBE;
	i++; /* SP */
	size_t t = i;
	while (i < n && p[i] != ' ') {
		unsigned char c = (unsigned char)p[i];
		if (c <= 0x20 || c == 0x7f)
			return NO;
		if (i >= max)
			return NO;
		i++;
	}
	if (i == n)
		return i < max ? MAYBE : NO;
	if (i == t)
		return NO;
	i++; /* SP */
	v = match_lit(p + i, n - i, "HTTP/", &u);
	if (v != YES)
		return v;
	i += u;
	for (const char *d = "#.#"; *d; d++, i++) { /* # = one digit */
		if (i == n)
			return MAYBE;
		if (*d == '#' ? (p[i] < '0' || p[i] > '9') : p[i] != *d)
			return NO;
	}
	if (i == n)
		return MAYBE;
	if (p[i] == '\n')
		return YES;
	if (p[i] != '\r')
		return NO;
	i++;
	if (i == n)
		return MAYBE;
	return p[i] == '\n' ? YES : NO;
}

const struct proto *proto_detect(const struct server *srv, const char *p, size_t n)
{
	const struct config *cfg = srv->cfg;
	if (n == 0)
		return NULL;
	if (!cfg->no_http) {
		switch (request_line(p, n, cfg->max_head)) {
		case YES:
			return &proto_http;
		case MAYBE:
			return NULL;
		case NO:
			break;
		}
	}
	if (cfg->mode == MODE_ECHO)
		return &proto_echo;
	return p[0] == '*' ? &proto_resp : &proto_chat_line;
}
