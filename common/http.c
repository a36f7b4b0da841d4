/* http.c - placeholder until the HTTP issue lands: answers 501. */
#include "proto.h"
#include "session.h"

static size_t http_feed(struct session *s, const char *p, size_t n)
{
	(void)p;
	session_puts(s, "HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
	session_close_after_flush(s);
	return n;
}

const struct proto proto_http = {.name = "http", .counter = STAT_proto_http, .feed = http_feed};
