/* http_parse.h - a pure, resumable HTTP/1.x request-head parser.
 *
 * In the style of picohttpparser: it is handed (buf, len), never allocates,
 * never reads past buf + len, and fills a request whose strings point into
 * buf. It answers "here is a complete head of N bytes", "partial: offer me
 * more bytes" or an error class the caller maps to a status code.
 *
 * Errors are reported once the line holding them is complete (its LF has
 * arrived), never earlier, so the verdict on a head never depends on how
 * its bytes were split.
 *
 * Resuming: a caller whose previous call on the same head returned
 * HTTP_PARSE_PARTIAL passes the length it offered then as last_len. The
 * parser re-examines the head only when the new bytes complete a line, so a
 * head that trickles in byte by byte is not re-parsed from zero each time,
 * yet a malformed line is still refused as soon as it is complete.
 *
 * Grammar (RFC 9112), kept strict where leniency would let two parsers
 * disagree about where a request ends:
 *   request-line = method SP request-target SP "HTTP/" DIGIT "." DIGIT EOL
 *   field-line   = field-name ":" OWS field-value OWS EOL
 *   EOL          = CRLF or a bare LF; a bare CR is an error
 * Empty lines before the request line are skipped. Obsolete line folding,
 * whitespace before the colon, control characters in a value and an empty
 * method, target or field name are errors. */
#ifndef WEFT_HTTP_PARSE_H
#define WEFT_HTTP_PARSE_H

#include <stddef.h>
#include <sys/types.h>

struct http_header {
	const char *name;
	size_t name_len;
	const char *value; /* without surrounding whitespace */
	size_t value_len;
};

struct http_request {
	const char *method;
	size_t method_len;
	const char *target;
	size_t target_len;
	int major, minor;            /* HTTP/major.minor */
	struct http_header *headers; /* the caller's array */
	size_t num_headers;
};

enum {
	HTTP_PARSE_PARTIAL = -1,     /* no error yet, but the head is not complete */
	HTTP_PARSE_BAD = -2,         /* malformed: 400 */
	HTTP_PARSE_VERSION = -3,     /* well-formed but not HTTP/1.x: 505 */
	HTTP_PARSE_TOO_MANY = -4,    /* more than max_headers fields: 431 */
};

/* Parse the head at the start of [buf, buf+len) into req, with room for
 * max_headers fields in headers[]. Returns the head's length in bytes
 * (request line, fields and the empty line) when complete, else one of the
 * HTTP_PARSE_* codes. req is only meaningful after a positive return. */
ssize_t http_parse_request(const char *buf, size_t len, size_t last_len, struct http_request *req,
                           struct http_header *headers, size_t max_headers);

/* Case-insensitive comparison of [p, p+n) with a NUL-terminated lowercase lit. */
int http_token_eq(const char *p, size_t n, const char *lit);

#endif
