/* echo.c - every byte comes back, in order, whatever the chunking. */
#include "proto.h"
#include "session.h"

static size_t echo_feed(struct session *s, const char *p, size_t n)
{
	session_write(s, p, n);
	return n;
}

const struct proto proto_echo = {
	.name = "echo",
	.counter = STAT_proto_echo,
	.feed = echo_feed,
};
