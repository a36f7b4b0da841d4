/* envelope.c - encode and (hostile-input-safe) decode the engine envelope. */
#include "envelope.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "chat.h"

_Static_assert(ENVELOPE_NICK_MAX == CHAT_NICK_MAX, "a nick travels as chat_valid_nick() allows it");

static const char magic[] = "weft1 ";

static const char hexd[] = "0123456789abcdef";

size_t envelope_dec(char *out, uint64_t v)
{
	char t[20];
	size_t k = 0;
	do {
		t[k++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (size_t i = 0; i < k; i++)
		out[i] = t[k - 1 - i];
	return k;
}

size_t envelope_head(char *out, const struct envelope *e)
{
	size_t nl = strnlen(e->nick, sizeof(e->nick));
	const char *nick = e->marker ? "!" : chat_valid_nick(e->nick, nl) ? e->nick : "-";
	if (nick != e->nick)
		nl = 1;
	size_t n = sizeof(magic) - 1;
	memcpy(out, magic, n);
	for (int i = 15; i >= 0; i--)
		out[n++] = hexd[e->origin >> (4 * i) & 15];
	out[n++] = ' ';
	n += envelope_dec(out + n, e->boot);
	out[n++] = ' ';
	n += envelope_dec(out + n, e->gen);
	out[n++] = ' ';
	n += envelope_dec(out + n, e->seq);
	out[n++] = ' ';
	memcpy(out + n, nick, nl);
	n += nl;
	if (e->stamp) {
		out[n++] = ' ';
		n += envelope_dec(out + n, e->stamp);
	}
	return n;
}

size_t envelope_finish(char *out, size_t n, const unsigned char *tag)
{
	if (tag) {
		out[n++] = ' ';
		for (int i = 0; i < ENVELOPE_TAG_BYTES; i++) {
			out[n++] = hexd[tag[i] >> 4];
			out[n++] = hexd[tag[i] & 15];
		}
	}
	out[n++] = '\n';
	return n;
}

static int hexval(char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1; }

/* Hex (exactly 16 digits) or decimal (1..20 digits, no overflow), then sep. */
static const char *num(const char *p, const char *end, bool hex, uint64_t *v)
{
	uint64_t x = 0;
	const char *start = p;
	for (; p < end; p++) {
		unsigned d;
		char c = *p;
		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (hex && c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else
			break;
		if (hex) {
			x = x << 4 | d;
		} else {
			if (x > (UINT64_MAX - d) / 10)
				return NULL;
			x = x * 10 + d;
		}
		if (p - start >= (hex ? 16 : 20))
			return NULL;
	}
	if (hex ? p - start != 16 : p == start)
		return NULL;
	if (p == end || *p != ' ')
		return NULL;
	*v = x;
	return p + 1;
}

int envelope_decode(const char *p, size_t n, struct envelope *e)
{
	const char *end = p + n, *start = p;
	memset(e, 0, sizeof(*e));
	if (n < sizeof(magic) - 1 || memcmp(p, magic, sizeof(magic) - 1) != 0)
		return -EBADMSG;
	p += sizeof(magic) - 1;
	if (!(p = num(p, end, true, &e->origin)) || !(p = num(p, end, false, &e->boot)) ||
	    !(p = num(p, end, false, &e->gen)) || !(p = num(p, end, false, &e->seq)))
		return -EBADMSG;
	/* The nick ends at a space (a stamp and a tag follow) or the newline. */
	const char *q = p;
	while (q < end && q - p <= ENVELOPE_NICK_MAX && *q != ' ' && *q != '\n')
		q++;
	e->marker = q - p == 1 && *p == '!';
	if (q == end || q - p > ENVELOPE_NICK_MAX || !(e->marker || chat_valid_nick(p, (size_t)(q - p))) || e->seq == 0)
		return -EBADMSG;
	memcpy(e->nick, p, (size_t)(q - p));
	e->signed_n = (size_t)(q - start);
	if (*q == ' ') { /* a stamp (decimal, no leading zero) and a tag: both or neither */
		if (end - q < 2 || q[1] == '0' || !(q = num(q + 1, end, false, &e->stamp)))
			return -EBADMSG;
		e->signed_n = (size_t)(q - 1 - start);
		if (end - q < 2 * ENVELOPE_TAG_BYTES + 1 || q[2 * ENVELOPE_TAG_BYTES] != '\n')
			return -EBADMSG;
		for (int i = 0; i < ENVELOPE_TAG_BYTES; i++) {
			int hi = hexval(q[2 * i]), lo = hexval(q[2 * i + 1]);
			if (hi < 0 || lo < 0)
				return -EBADMSG;
			e->tag[i] = (unsigned char)(hi << 4 | lo);
		}
		e->tagged = true;
		q += 2 * ENVELOPE_TAG_BYTES;
	}
	e->data = q + 1;
	e->n = (size_t)(end - e->data);
	if (e->marker && e->n)
		return -EBADMSG;
	return 0;
}
