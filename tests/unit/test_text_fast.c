/* test_text_fast.c - the word-at-a-time paths of the per-publish text work:
 * exchange_line_escape (the line form's escapes) and ws_utf8_feed (WebSocket
 * UTF-8 validation) against byte-by-byte oracles written from their rules,
 * on random text (mostly ASCII, with every kind of byte that matters placed
 * at every offset of an 8-byte word) and fed whole or split anywhere. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "exchange.h"
#include "ws.h"

/* The line form's rule (exchange.h): backslash, CR, LF and every other
 * control byte but TAB escaped; DEL too. */
static size_t oracle_escape(char *out, const unsigned char *p, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = p[i];
		char e[8];
		int l;
		if (c == '\\')
			l = snprintf(e, sizeof(e), "\\\\");
		else if (c == '\n')
			l = snprintf(e, sizeof(e), "\\n");
		else if (c == '\r')
			l = snprintf(e, sizeof(e), "\\r");
		else if ((c < 0x20 && c != '\t') || c == 0x7f)
			l = snprintf(e, sizeof(e), "\\x%02x", c);
		else
			l = snprintf(e, sizeof(e), "%c", c);
		memcpy(out + k, e, (size_t)l);
		k += (size_t)l;
	}
	return k;
}

/* RFC 3629 as a table walk: the length of the sequence a lead byte starts
 * and the range of its second byte; later bytes 80..BF. Returns whether
 * [p, p+n) is a prefix of valid UTF-8 (*complete: and ends on a boundary). */
static int oracle_utf8(const unsigned char *p, size_t n, int *complete)
{
	size_t i = 0;
	while (i < n) {
		unsigned char c = p[i];
		size_t len;
		unsigned lo = 0x80, hi = 0xBF;
		if (c < 0x80)
			len = 1;
		else if (c >= 0xC2 && c <= 0xDF)
			len = 2;
		else if (c >= 0xE0 && c <= 0xEF)
			len = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
		else if (c >= 0xF0 && c <= 0xF4)
			len = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
		else
			return 0;
		for (size_t k = 1; k < len; k++) {
			if (i + k == n) {
				*complete = 0;
				return 1;
			}
			unsigned b = p[i + k];
			if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF))
				return 0;
		}
		i += len;
	}
	*complete = 1;
	return 1;
}

static uint64_t rng = 88172645463325252ull;
static unsigned rnd(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned)(rng % n);
}

/* Mostly printable ASCII; now and then a byte from the interesting set. */
static void fill(unsigned char *p, size_t n, const unsigned char *odd, size_t nodd, unsigned odds)
{
	for (size_t i = 0; i < n; i++)
		p[i] = rnd(odds) == 0 ? odd[rnd((unsigned)nodd)] : (unsigned char)(0x20 + rnd(95));
}

static void test_escape(void)
{
	static const unsigned char odd[] = {'\\', '\n', '\r', '\t', 0, 1, 0x1f, 0x20, 0x7e, 0x7f, 0x80, 0x5b, 0x5d, 0xff};
	unsigned char in[200];
	char got[800], want[800];
	int bad = 0;
	for (int it = 0; it < 200000; it++) {
		size_t n = rnd(sizeof(in));
		fill(in, n, odd, sizeof(odd), it % 3 == 0 ? 2 : 40);
		size_t w = oracle_escape(want, in, n);
		size_t c = exchange_line_escape(NULL, (const char *)in, n);
		size_t g = exchange_line_escape(got, (const char *)in, n);
		if (c != w || g != w || memcmp(got, want, w) != 0)
			bad++;
	}
	CHECK(bad == 0);
	/* each interesting byte at each offset of a word, alone in ASCII */
	bad = 0;
	for (size_t k = 0; k < sizeof(odd); k++)
		for (size_t at = 0; at < 24; at++) {
			memset(in, 'a', 24);
			in[at] = odd[k];
			size_t w = oracle_escape(want, in, 24);
			size_t g = exchange_line_escape(got, (const char *)in, 24);
			if (g != w || memcmp(got, want, w) != 0)
				bad++;
		}
	CHECK(bad == 0);
	char e[8];
	CHECK(exchange_line_escape(e, "\x01", 1) == 4 && memcmp(e, "\\x01", 4) == 0);
	CHECK(exchange_line_escape(e, "\x7f", 1) == 4 && memcmp(e, "\\x7f", 4) == 0);
	CHECK(exchange_line_escape(e, "a\\b", 3) == 4 && memcmp(e, "a\\\\b", 4) == 0);
	CHECK(exchange_line_escape(e, "\t", 1) == 1 && e[0] == '\t');
}

static void test_utf8(void)
{
	static const unsigned char odd[] = {0x80, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF,
	                                    0x9F, 0xA0, 0x90, 0x8F, 0x00, 0x7F};
	unsigned char in[160];
	int bad = 0, valid = 0;
	for (int it = 0; it < 300000; it++) {
		size_t n = rnd(sizeof(in));
		fill(in, n, odd, sizeof(odd), it % 2 ? 3 : 60);
		/* sometimes a valid multi-byte character at a random place */
		if (n >= 4 && it % 5 == 0)
			memcpy(in + rnd((unsigned)n - 3), "\xF0\x9F\x98\x80", 4);
		int complete = 0;
		int want = oracle_utf8(in, n, &complete);
		valid += want && complete;
		/* whole */
		struct ws_utf8 u = {0};
		bool ok = ws_utf8_feed(&u, in, n);
		if (ok != (bool)want || (ok && ws_utf8_complete(&u) != (bool)complete))
			bad++;
		/* split at a random point: the verdict is the same */
		size_t cut = n ? rnd((unsigned)n + 1) : 0;
		u = (struct ws_utf8){0};
		ok = ws_utf8_feed(&u, in, cut) && ws_utf8_feed(&u, in + cut, n - cut);
		if (ok != (bool)want || (ok && ws_utf8_complete(&u) != (bool)complete))
			bad++;
	}
	CHECK(bad == 0);
	CHECK(valid > 1000); /* the random text did reach the valid cases */
	/* a multi-byte character straddling a word boundary after ASCII */
	struct ws_utf8 u = {0};
	CHECK(ws_utf8_feed(&u, (const unsigned char *)"abcdefg\xC3\xA9xyz1234567", 18) && ws_utf8_complete(&u));
	u = (struct ws_utf8){0};
	CHECK(!ws_utf8_feed(&u, (const unsigned char *)"abcdefgh\xC3" "abcdefgh", 17)); /* lead then ASCII */
	u = (struct ws_utf8){0};
	CHECK(ws_utf8_feed(&u, (const unsigned char *)"abcdefgh\xE2\x82", 10) && !ws_utf8_complete(&u));
}

int main(void)
{
	test_escape();
	test_utf8();
	return check_done();
}
