/* glob.c - Redis glob patterns matched segment by segment (glob.h has the
 * rules and the cost bound).
 *
 * The pattern is read in place, a token at a time; nothing is compiled or
 * allocated, so a publish against many short patterns costs what reading
 * them costs. Only a middle segment searched in a window longer than
 * NAIVE_MAX builds a Shift-And table, on the stack. */
#include "glob.h"

#include <stdint.h>

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

/* Shift-And: after byte x, a set bit for token j says tokens 0..j match the
 * name ending at x, whatever the segment holds: a shift, an or and an and
 * per word and byte. The segment sits at the top of the state, its last
 * token in the top bit; the state starts, and every row of the table has,
 * all the bits below its first token set, so a 1 always shifts into that
 * token's bit (a prefix that takes anything) and no mask is needed. These return the first x
 * where the last token in the automaton matches and the tail (the tokens
 * past it, if any) matches after it, or NONE.
 *
 * One word: segments of up to 64 tokens, the common case. */
static size_t sa_scan1(const uint64_t *tab, const uint64_t *below, const struct seg *g, size_t tail_at, size_t tail,
                       const char *s, size_t lo, size_t hi)
{
	uint64_t d = below[0];
	for (size_t x = lo; x + 1 + tail <= hi; x++) {
		d = ((d << 1) | 1) & tab[(unsigned char)s[x]];
		if ((d >> 63) && (!tail || seg_at(g, tail_at, s, x + 1)))
			return x;
	}
	return NONE;
}

/* Four words, held in registers; each takes the top bit of the one below
 * as it shifts. */
static size_t sa_scan4(const uint64_t *tab, const uint64_t *below, const struct seg *g, size_t tail_at, size_t tail,
                       const char *s, size_t lo, size_t hi)
{
	uint64_t d0 = below[0], d1 = below[1], d2 = below[2], d3 = below[3];
	for (size_t x = lo; x + 1 + tail <= hi; x++) {
		const uint64_t *t = &tab[(unsigned char)s[x] * SA_WORDS];
		d3 = ((d3 << 1) | (d2 >> 63)) & t[3];
		d2 = ((d2 << 1) | (d1 >> 63)) & t[2];
		d1 = ((d1 << 1) | (d0 >> 63)) & t[1];
		d0 = ((d0 << 1) | 1) & t[0];
		if ((d3 >> 63) && (!tail || seg_at(g, tail_at, s, x + 1)))
			return x;
	}
	return NONE;
}

/* The automaton holds a segment's first SA_MAX tokens; the rest of a longer
 * one is compared where the automaton reports them. */
static size_t sa_find(const struct seg *g, const char *s, size_t lo, size_t hi)
{
	size_t n = g->n < SA_MAX ? g->n : SA_MAX, w = n <= 64 ? 1 : SA_WORDS, first = 64 * w - n, i = g->a;
	uint64_t tab[256 * SA_WORDS], below[SA_WORDS];
	for (size_t v = 0; v < w; v++) /* the bits below the first token's */
		below[v] = first >= 64 * (v + 1) ? ~0ULL : first <= 64 * v ? 0 : (1ULL << (first % 64)) - 1;
	for (size_t c = 0; c < 256; c++)
		for (size_t v = 0; v < w; v++)
			tab[c * w + v] = below[v];
	for (size_t j = 0; j < n; j++, i = tok_end(g->pat, g->pn, i))
		sa_add(tab, w, first + j, g, i);
	size_t tail = g->n - n;
	size_t x = w == 1 ? sa_scan1(tab, below, g, i, tail, s, lo, hi) : sa_scan4(tab, below, g, i, tail, s, lo, hi);
	return x == NONE ? NONE : x + 1 + tail;
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
