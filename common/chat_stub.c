/* chat_stub.c - placeholder until the chat issue lands. */
#include "proto.h"
#include "session.h"

static size_t chat_feed(struct session *s, const char *p, size_t n)
{
	(void)p;
	session_puts(s, "-ERR chat mode is not built yet\r\n");
	session_close_after_flush(s);
	return n;
}

const struct proto proto_chat_line = {.name = "chat_line", .counter = STAT_proto_line, .feed = chat_feed};
const struct proto proto_resp = {.name = "resp", .counter = STAT_proto_resp, .feed = chat_feed};
