/* http_parse.c - the HTTP/1.x request-head parser (contract in http_parse.h).
 *
 * One forward pass with a cursor that is compared with the end before every
 * read, so any prefix of a valid head answers PARTIAL and nothing past
 * buf + len is ever touched (the unit test runs it against a guard page). */
#include "http_parse.h"

#include <stdbool.h>
#include <string.h>

/* RFC 9110 tchar: the characters of methods and field names. */
static bool is_tchar(unsigned char c)
{
	unsigned char l = c | 0x20;
	if ((l >= 'a' && l <= 'z') || (c >= '0' && c <= '9'))
		return true;
	switch (c) {
	case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
	case '-': case '.': case '^': case '_': case '`': case '|': case '~':
		return true;
	}
	return false;
}

/* What detect.c accepts too: anything visible, and obs-text. */
static bool is_target_char(unsigned char c)
{
	return c > 0x20 && c != 0x7f;
}

/* At an end of line: consume it and return 1; elsewhere 0; or an error. */
static int eol(const char **pp, const char *end)
{
	const char *p = *pp;
	if (p == end)
		return HTTP_PARSE_PARTIAL;
	if (*p == '\n') {
		*pp = p + 1;
		return 1;
	}
	if (*p != '\r')
		return 0;
	if (p + 1 == end)
		return HTTP_PARSE_PARTIAL;
	if (p[1] != '\n')
		return HTTP_PARSE_BAD; /* a bare CR ends nothing */
	*pp = p + 2;
	return 1;
}

/* A run of bytes accepted by ok(), ended by the byte stop; 0 or an error. */
static int span(const char **pp, const char *end, bool (*ok)(unsigned char), char stop,
                const char **s, size_t *n)
{
	const char *p = *pp;
	while (p < end && ok((unsigned char)*p))
		p++;
	if (p == end)
		return HTTP_PARSE_PARTIAL;
	if (p == *pp || *p != stop)
		return HTTP_PARSE_BAD;
	*s = *pp;
	*n = (size_t)(p - *pp);
	*pp = p + 1;
	return 0;
}

static int version(const char **pp, const char *end, struct http_request *req)
{
	static const char want[] = "HTTP/#.#"; /* # = one digit */
	const char *p = *pp;
	for (size_t i = 0; i < sizeof(want) - 1; i++, p++) {
		if (p == end)
			return HTTP_PARSE_PARTIAL;
		unsigned char c = (unsigned char)*p;
		if (want[i] == '#' ? (c < '0' || c > '9') : c != (unsigned char)want[i])
			return HTTP_PARSE_BAD;
	}
	req->major = p[-3] - '0';
	req->minor = p[-1] - '0';
	int rc = eol(&p, end);
	if (rc <= 0)
		return rc == 0 ? HTTP_PARSE_BAD : rc;
	*pp = p;
	return req->major == 1 ? 0 : HTTP_PARSE_VERSION;
}

static int request_line(const char **pp, const char *end, struct http_request *req)
{
	int rc = span(pp, end, is_tchar, ' ', &req->method, &req->method_len);
	if (rc == 0)
		rc = span(pp, end, is_target_char, ' ', &req->target, &req->target_len);
	if (rc == 0)
		rc = version(pp, end, req);
	return rc;
}

static int field_line(const char **pp, const char *end, struct http_header *h)
{
	/* a leading SP/HT (obs-fold) or SP before the colon fails here */
	int rc = span(pp, end, is_tchar, ':', &h->name, &h->name_len);
	if (rc < 0)
		return rc;
	const char *p = *pp;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	const char *v = p, *vend = p;
	for (;; p++) {
		if (p == end)
			return HTTP_PARSE_PARTIAL;
		unsigned char c = (unsigned char)*p;
		if (c == '\r' || c == '\n')
			break;
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return HTTP_PARSE_BAD;
		if (c != ' ' && c != '\t')
			vend = p + 1;
	}
	h->value = v;
	h->value_len = (size_t)(vend - v);
	rc = eol(&p, end);
	if (rc < 0)
		return rc;
	*pp = p;
	return 0;
}

/* Errors are reported only once the line holding them is complete (has its
 * LF): a head's verdict then depends only on its complete lines, however
 * its bytes arrived, and resuming can skip any call that brought no LF. */
static ssize_t settle(int rc, const char *line, const char *end)
{
	if (rc == HTTP_PARSE_PARTIAL || memchr(line, '\n', (size_t)(end - line)))
		return rc;
	return HTTP_PARSE_PARTIAL;
}

ssize_t http_parse_request(const char *buf, size_t len, size_t last_len, struct http_request *req,
                           struct http_header *headers, size_t max_headers)
{
	if (last_len && last_len < len && !memchr(buf + last_len, '\n', len - last_len))
		return HTTP_PARSE_PARTIAL; /* no new complete line: the answer is unchanged */
	const char *p = buf, *end = buf + len, *line = buf;
	int rc;
	while ((rc = eol(&p, end)) == 1)
		line = p; /* empty lines before a request line are ignored (RFC 9112 2.2) */
	if (rc == 0)
		rc = request_line(&p, end, req);
	if (rc < 0)
		return settle(rc, line, end);
	req->headers = headers;
	req->num_headers = 0;
	for (;;) {
		line = p;
		rc = eol(&p, end);
		if (rc == 1)
			return p - buf;
		if (rc == 0 && req->num_headers == max_headers)
			rc = HTTP_PARSE_TOO_MANY;
		if (rc == 0)
			rc = field_line(&p, end, &headers[req->num_headers]);
		if (rc < 0)
			return settle(rc, line, end);
		req->num_headers++;
	}
}

int http_token_eq(const char *p, size_t n, const char *lit)
{
	for (size_t i = 0; i < n; i++, lit++) {
		unsigned char c = (unsigned char)p[i];
		if (*lit == '\0' || (c >= 'A' && c <= 'Z' ? c | 0x20 : c) != (unsigned char)*lit)
			return 0;
	}
	return *lit == '\0';
}
