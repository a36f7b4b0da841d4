/* fuzz_ws.c - libFuzzer target for the WebSocket frame path (common/protocols/ws.c
 * over libwslay's frame codec), in echo and chat mode. The input is what a
 * client sends after the 101. Oracles beside the sanitizers:
 *  - echo mode answers the same bytes whether the input arrives at once,
 *    cut at a split point taken from the input, or byte by byte (whole
 *    small frames are decoded by ws.c, cut ones by the codec), with a tiny
 *    --read-pause so the back-pressure path (input waiting in the session)
 *    runs too;
 *  - every server frame is well formed: unmasked, no reserved bits, a known
 *    opcode, control frames whole and <= 125 bytes, text valid UTF-8 (chat
 *    lines from any input included), nothing after a close frame;
 *  - no msg outlives its session and chat leaves no subscription behind. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "exchange.h"
#include "msg.h"
#include "owner.h"
#include "proto.h"
#include "server.h"
#include "session.h"
#include "ws.h"

static struct config cfg_echo, cfg_chat;
static struct server srv_echo, srv_chat;
static struct owner own;

static void wake(struct owner *o) { (void)o; }
static void ready(struct subscriber *sub, void *arg) { (void)sub, (void)arg; }

static void setup(void)
{
	char *echo[] = {"weft", "--max-message", "4096", "--read-pause", "64", NULL};
	char *chat[] = {"weft", "--mode", "chat", "--max-message", "4096", "--max-line", "256", NULL};
	if (config_parse(&cfg_echo, 5, echo) != 0 || config_parse(&cfg_chat, 7, chat) != 0)
		abort();
	srv_echo.cfg = &cfg_echo;
	srv_chat.cfg = &cfg_chat;
	srv_chat.ex = exchange_new();
	exchange_set_ws_framer(ws_text_msg);
	owner_init(&own, wake, NULL);
}

/* Everything s sends (sending lets waiting input be answered, session.h). */
static char *drain(struct session *s, size_t *len, char *out)
{
	struct iovec iov[16];
	int n;
	owner_drain(&own, ready, NULL);
	while ((n = session_iov(s, iov, 16)) > 0) {
		for (int i = 0; i < n; i++) {
			out = realloc(out, *len + iov[i].iov_len + 1);
			memcpy(out + *len, iov[i].iov_base, iov[i].iov_len);
			*len += iov[i].iov_len;
			session_sent(s, iov[i].iov_len);
		}
	}
	return out;
}

/* The input in two pieces cut at split, or (split == SIZE_MAX) one byte at
 * a time: then every frame with a payload reaches ws.c cut, and goes through
 * the codec rather than fast_frame's decoding of whole frames. */
static char *run(struct server *srv, const uint8_t *data, size_t size, size_t split, size_t *len)
{
	struct session *s = session_new(srv, &own, false);
	ws_begin(s);
	char *out = NULL;
	*len = 0;
	size_t cuts[3] = {0, split, size};
	for (size_t i = 0; split == SIZE_MAX && i < size; i++) {
		session_input(s, (const char *)data + i, 1);
		out = drain(s, len, out);
	}
	for (int i = 0; split != SIZE_MAX && i < 2; i++) {
		if (cuts[i + 1] > cuts[i])
			session_input(s, (const char *)data + cuts[i], cuts[i + 1] - cuts[i]);
		out = drain(s, len, out);
	}
	session_eof(s);
	out = drain(s, len, out);
	session_free(s);
	return out;
}

static void check_frames(const unsigned char *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		if (n - i < 2)
			abort();
		unsigned op = p[i] & 0x0f, fin = p[i] >> 7;
		if ((p[i] & 0x70) || (p[i + 1] & 0x80)) /* reserved bits; masked */
			abort();
		uint64_t len = p[i + 1] & 0x7f;
		i += 2;
		if (len >= 126) {
			size_t k = len == 126 ? 2 : 8;
			if (n - i < k)
				abort();
			len = 0;
			for (size_t j = 0; j < k; j++)
				len = len << 8 | p[i + j];
			i += k;
		}
		if (len > n - i || !fin || (op != 1 && op != 2 && op != 8 && op != 10) || (op >= 8 && len > 125))
			abort();
		struct ws_utf8 u = {0};
		if (op == 1 && (!ws_utf8_feed(&u, p + i, (size_t)len) || !ws_utf8_complete(&u)))
			abort();
		i += (size_t)len;
		if (op == 8 && i != n)
			abort(); /* nothing after our close */
	}
}

static void count_cb(const char *name, size_t n, size_t subs, void *arg)
{
	(void)name, (void)n;
	*(size_t *)arg += subs;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready_once;
	if (!ready_once++)
		setup();
	if (size == 0)
		return 0;
	long live0 = msg_live_count();
	size_t split = data[size - 1] % size;
	size_t a_len, b_len, c_len;
	char *a = run(&srv_echo, data, size, 0, &a_len);
	char *b = run(&srv_echo, data, size, split, &b_len);
	if (a_len != b_len || (a_len && memcmp(a, b, a_len) != 0))
		abort();
	free(b);
	b = run(&srv_echo, data, size, SIZE_MAX, &b_len);
	if (a_len != b_len || (a_len && memcmp(a, b, a_len) != 0))
		abort();
	check_frames((const unsigned char *)a, a_len);
	char *c = run(&srv_chat, data, size, split, &c_len);
	check_frames((const unsigned char *)c, c_len);
	free(a);
	free(b);
	free(c);
	size_t subs = 0;
	exchange_each_channel(srv_chat.ex, count_cb, &subs);
	if (subs != 0 || msg_live_count() != live0)
		abort();
	return 0;
}
