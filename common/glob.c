/* glob.c - Redis glob patterns matched segment by segment (glob.h has the
 * rules and the cost bound).
 *
 * The pattern is read in place, a token at a time; nothing is compiled or
 * allocated, so a publish against many short patterns costs what reading
 * them costs. Only a middle segment searched in a window longer than
 * NAIVE_MAX builds a Shift-And table, on the stack. */
#include "glob.h"

#include <stdint.h>
#include <string.h>

/* A window at most this long is searched by direct comparison: at worst
 * NAIVE_MAX x the segment, which is what building the table costs anyway. */
#define NAIVE_MAX 256
/* Tokens the Shift-And state holds (in 64-bit words). */
#define SA_WORDS 4
#define SA_MAX (64 * SA_WORDS)

#define NONE SIZE_MAX

/* A run of the pattern between two stars (or an end): pat[a, b) holds n
 * tokens and no '*' token. Classes are parsed against the whole pattern's
 * pn, as Redis does: an unterminated one runs to its end. */
struct seg {
	const char *pat;
	size_t pn, a, b, n;
};

/* Index just past the class that starts at pat[i] == '['. */
static size_t class_end(const char *pat, size_t pn, size_t i)
{
	size_t k = i + 1;
	if (k < pn && pat[k] == '^')
		k++;
	while (k < pn && pat[k] != ']') {
		if (pat[k] == '\\' && k + 1 < pn)
			k += 2;
		else if (k + 2 < pn && pat[k + 1] == '-')
			k += 3;
		else
			k++;
	}
	return k < pn ? k + 1 : pn;
}

/* Index just past the token that starts at pat[i] (i < pn, pat[i] != '*'). */
static inline size_t tok_end(const char *pat, size_t pn, size_t i)
{
	if (pat[i] == '[')
		return class_end(pat, pn, i);
	return pat[i] == '\\' && i + 1 < pn ? i + 2 : i + 1;
}

/* Redis compares range ends as C chars, which are signed on x86-64; doing
 * the same everywhere gives one answer on every platform. */
static int as_char(unsigned char c)
{
	return c < 128 ? c : c - 256;
}

/* If the class at pat[i] == '[' takes c, the index just past it; else 0.
 * One walk both tests and finds the end, in the order Redis reads it. */
static size_t class_take(const char *pat, size_t pn, size_t i, unsigned char c)
{
	size_t k = i + 1;
	bool neg = k < pn && pat[k] == '^', hit = false;
	if (neg)
		k++;
	while (k < pn && pat[k] != ']') {
		if (pat[k] == '\\' && k + 1 < pn) {
			hit |= (unsigned char)pat[k + 1] == c;
			k += 2;
		} else if (k + 2 < pn && pat[k + 1] == '-') {
			int lo = as_char((unsigned char)pat[k]), hi = as_char((unsigned char)pat[k + 2]), v = as_char(c);
			hit |= (v >= lo && v <= hi) || (v >= hi && v <= lo);
			k += 3;
		} else {
			hit |= (unsigned char)pat[k] == c;
			k++;
		}
	}
	if (hit == neg)
		return 0;
	return k < pn ? k + 1 : pn;
}

/* Bytes that stand for themselves: most of any pattern, so the loops below
 * compare them inline and call tok_take only for the rest. */
static bool plain(unsigned char t)
{
	return t != '?' && t != '[' && t != '\\' && t != '*';
}

/* If the token at pat[i] takes the byte c, the index just past it; else 0
 * (no token ends at 0). */
static size_t tok_take(const char *pat, size_t pn, size_t i, unsigned char c)
{
	unsigned char t = (unsigned char)pat[i];
	if (t == '?')
		return i + 1;
	if (t == '[')
		return class_take(pat, pn, i, c);
	if (t == '\\' && i + 1 < pn) /* a trailing backslash is itself */
		return (unsigned char)pat[i + 1] == c ? i + 2 : 0;
	return t == c ? i + 1 : 0;
}

/* Do the tokens pat[a, g->b) match the name from s[k] on? The caller has
 * made sure the name has that many bytes left. */
static bool seg_at(const struct seg *g, size_t a, const char *s, size_t k)
{
	for (size_t i = a; i < g->b; k++) {
		unsigned char t = (unsigned char)g->pat[i], c = (unsigned char)s[k];
		if (plain(t) ? t != c : !(i = tok_take(g->pat, g->pn, i, c)))
			return false;
		if (plain(t))
			i++;
	}
	return true;
}

/* Set bit j in the table row of every byte the token at pat[i] takes. */
static void sa_add(uint64_t *tab, size_t w, size_t j, const struct seg *g, size_t i)
{
	uint64_t bit = 1ULL << (j % 64);
	size_t v = j / 64;
	const char *pat = g->pat;
	if (pat[i] != '?' && pat[i] != '[') {
		unsigned char c = (unsigned char)(pat[i] == '\\' && i + 1 < g->pn ? pat[i + 1] : pat[i]);
		tab[c * w + v] |= bit;
		return;
	}
	for (unsigned c = 0; c < 256; c++)
		if (tok_take(pat, g->pn, i, (unsigned char)c))
			tab[c * w + v] |= bit;
}

/* Shift-And: after byte x, bit j of the state says tokens 0..j match the
 * name ending at x, so each byte costs ceil(n/64) shifts and ands whatever
 * the segment holds. Only its first SA_MAX tokens are in the automaton; the
 * rest of a longer one is compared where the automaton reports them. */
static size_t sa_find(const struct seg *g, const char *s, size_t lo, size_t hi)
{
	size_t n = g->n < SA_MAX ? g->n : SA_MAX, w = (n + 63) / 64, i = g->a;
	uint64_t tab[256 * SA_WORDS];
	memset(tab, 0, 256 * w * sizeof(*tab));
	for (size_t j = 0; j < n; j++, i = tok_end(g->pat, g->pn, i))
		sa_add(tab, w, j, g, i);
	size_t tail = g->n - n, topw = (n - 1) / 64;
	uint64_t d[SA_WORDS] = {0}, top = 1ULL << ((n - 1) % 64);
	for (size_t x = lo; x + 1 + tail <= hi; x++) {
		const uint64_t *t = &tab[(unsigned char)s[x] * w];
		uint64_t carry = 1;
		for (size_t v = 0; v < w; v++) {
			uint64_t out = d[v] >> 63;
			d[v] = ((d[v] << 1) | carry) & t[v];
			carry = out;
		}
		if ((d[topw] & top) && (!tail || seg_at(g, i, s, x + 1)))
			return x + 1 + tail;
	}
	return NONE;
}

/* Where the leftmost occurrence of g in s[lo, hi) ends, or NONE. */
static size_t seg_find(const struct seg *g, const char *s, size_t lo, size_t hi)
{
	if (hi - lo < g->n)
		return NONE;
	if (hi - lo > NAIVE_MAX)
		return sa_find(g, s, lo, hi);
	unsigned char f = (unsigned char)g->pat[g->a];
	bool lit = plain(f);
	for (size_t k = lo; k <= hi - g->n; k++)
		if ((!lit || (unsigned char)s[k] == f) && seg_at(g, g->a, s, k))
			return k + g->n;
	return NONE;
}

/* The pattern from its first star at pat[i], the name from s[k]. Every token
 * but '*' takes one byte, so the segments between stars fit if and only if
 * each fits at its leftmost place after the one before (an earlier end never
 * leaves less room for the rest), and the last one fits at the end of the
 * name after them. Kept out of line so that glob_match, which most short
 * names leave within a few bytes, does not pay this one's register saves. */
__attribute__((noinline)) static bool match_stars(const char *pat, size_t pn, const char *s, size_t sn, size_t i, size_t k)
{
	struct seg g = {.pat = pat, .pn = pn};
	for (;;) {
		while (i < pn && pat[i] == '*')
			i++;
		if (i == pn)
			return true;
		g.a = i;
		for (g.b = i, g.n = 0; g.b < pn && pat[g.b] != '*'; g.b = tok_end(pat, pn, g.b))
			g.n++;
		if (g.b == pn)
			return sn - k >= g.n && seg_at(&g, g.a, s, sn - g.n);
		k = seg_find(&g, s, k, sn);
		if (k == NONE)
			return false;
		i = g.b;
	}
}

bool glob_match(const char *pat, size_t pn, const char *s, size_t sn)
{
	if (sn == 0) /* Redis: nothing, not even "*", matches the empty name */
		return pn == 0;
	size_t i = 0, k = 0; /* the first segment, at the start of the name */
	for (; i < pn; k++) {
		unsigned char t = (unsigned char)pat[i];
		if (t == '*')
			return match_stars(pat, pn, s, sn, i, k);
		if (k == sn)
			return false;
		if (plain(t) ? t != (unsigned char)s[k] : !(i = tok_take(pat, pn, i, (unsigned char)s[k])))
			return false;
		if (plain(t))
			i++;
	}
	return k == sn;
}
