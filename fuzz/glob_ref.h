/* glob_ref.h - the reference glob matcher that fuzz_glob.c and
 * tests/unit/test_glob.c hold common/pubsub/glob.c to: Redis' stringmatchlen()
 * rules written as plainly as possible, walking the pattern byte by byte and
 * at each '*' trying the rest at every later place in the name. It shares no
 * code with glob.c, and is slow on purpose (a memo of failed tries keeps it
 * polynomial: O(pn * sn) tries), so callers bound their sizes.
 *
 * What it does at each byte, as Redis does:
 *   '*'   collapse a run; last in the pattern: match; else try the rest at
 *         every position of the name that is left (never at its end)
 *   '?'   take one byte
 *   '['   '^' first negates; then until ']': "\x" is x (if the pattern has a
 *         byte after the '\'), "a-b" is a range when two more bytes follow
 *         (ends compared as signed chars, swapped if reversed), anything else
 *         is itself; the end of the pattern ends the class
 *   '\'   the next byte, if there is one; else a backslash
 * and after the byte that empties the name, stars are skipped; the match
 * holds when both pattern and name are used up. An empty name therefore
 * matches only an empty pattern. */
#ifndef WEFT_GLOB_REF_H
#define WEFT_GLOB_REF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

struct glob_ref {
	const unsigned char *p, *s;
	size_t pn, sn;
	uint8_t *tried; /* (pn + 1) x (sn + 1): 1 = no match from here */
};

/* At p[*pi] == '[' with the name's byte c: does the class take c? Leaves
 * *pi on the class's last byte (its ']', or the pattern's last byte). */
static bool glob_ref_class(const struct glob_ref *r, size_t *pi, unsigned char c)
{
	size_t i = *pi + 1;
	bool neg = i < r->pn && r->p[i] == '^', hit = false;
	if (neg)
		i++;
	for (;; i++) {
		if (i >= r->pn) {
			i = r->pn - 1;
			break;
		}
		if (r->p[i] == '\\' && i + 1 < r->pn) {
			i++;
			hit = hit || r->p[i] == c;
		} else if (r->p[i] == ']') {
			break;
		} else if (i + 2 < r->pn && r->p[i + 1] == '-') {
			signed char a = (signed char)r->p[i], b = (signed char)r->p[i + 2], x = (signed char)c;
			if (a > b) {
				signed char t = a;
				a = b;
				b = t;
			}
			hit = hit || (x >= a && x <= b);
			i += 2;
		} else {
			hit = hit || r->p[i] == c;
		}
	}
	*pi = i;
	return neg ? !hit : hit;
}

static bool glob_ref_from(struct glob_ref *r, size_t pi, size_t si)
{
	while (pi < r->pn && si < r->sn) {
		unsigned char pc = r->p[pi], c = r->s[si];
		if (pc == '*') {
			while (pi + 1 < r->pn && r->p[pi + 1] == '*')
				pi++;
			if (pi + 1 == r->pn)
				return true;
			for (; si < r->sn; si++) {
				uint8_t *t = &r->tried[(pi + 1) * (r->sn + 1) + si];
				if (!*t && glob_ref_from(r, pi + 1, si))
					return true;
				*t = 1;
			}
			return false;
		}
		if (pc == '[') {
			if (!glob_ref_class(r, &pi, c))
				return false;
		} else if (pc != '?') {
			if (pc == '\\' && pi + 1 < r->pn)
				pc = r->p[++pi];
			if (pc != c)
				return false;
		}
		pi++;
		si++;
		if (si == r->sn)
			while (pi < r->pn && r->p[pi] == '*')
				pi++;
	}
	return pi == r->pn && si == r->sn;
}

/* 1 match, 0 no match, -1 out of memory. */
static int glob_ref_match(const void *pat, size_t pn, const void *s, size_t sn)
{
	struct glob_ref r = {pat, s, pn, sn, calloc((pn + 1) * (sn + 1), 1)};
	if (!r.tried)
		return -1;
	int m = glob_ref_from(&r, 0, 0);
	free(r.tried);
	return m;
}

#endif
