/* fuzz_glob.c - libFuzzer target for common/pubsub/glob.c: every answer must be the
 * reference matcher's (glob_ref.h, Redis' rules walked plainly), and no
 * byte outside the pattern or the name may be read (both are exact-size heap
 * copies, so ASan sees a read past either end).
 *
 * Input: [flags] [pattern length, 2 bytes little-endian] [pattern] [body].
 * The name starts with the body repeated flags & 63 times (at least once
 * without flag 0x40), so short inputs reach long names (a Shift-And search needs a window over 256 bytes)
 * and periodic ones, where near misses are the rule. With flag 0x40 the
 * pattern itself, written out with bytes of the body (each '*' takes 0-3 of
 * them, '?' and each class one it takes), follows: random bytes would
 * rarely match a long pattern, and this puts a match at the far end of a
 * long name. Flag 0x80 then changes one byte of the name. Sizes are cut so
 * that the reference, O(pattern x name), stays fast. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "glob.h"
#include "glob_ref.h"

#define PATTERN_MAX 300      /* past the Shift-And automaton's 256 tokens */
#define REF_CELLS (1u << 18) /* (pattern + 1) x (name + 1) */

struct name {
	char *s;
	size_t n, cap;
	const uint8_t *fill; /* bytes to write the pattern out with */
	size_t fn, fi;
};

static void put(struct name *nm, uint8_t c)
{
	if (nm->n < nm->cap)
		nm->s[nm->n++] = (char)c;
}

static uint8_t fill(struct name *nm)
{
	return nm->fn ? nm->fill[nm->fi++ % nm->fn] : 'a';
}

/* A byte the class at p[*pi] takes (the filler's if it does), leaving *pi on
 * the class's last byte; a byte it refuses if it takes none. */
static uint8_t class_byte(struct glob_ref *r, size_t *pi, uint8_t f)
{
	size_t at = *pi;
	if (glob_ref_class(r, pi, f))
		return f;
	for (unsigned c = 0; c < 256; c++) {
		size_t k = at;
		if (glob_ref_class(r, &k, (unsigned char)c))
			return (uint8_t)c;
	}
	return f;
}

/* Append a name the pattern matches (unless it has an empty class). */
static void write_out(struct name *nm, const char *p, size_t pn)
{
	struct glob_ref r = {(const unsigned char *)p, NULL, pn, 0, NULL};
	for (size_t i = 0; i < pn; i++) {
		uint8_t c = (uint8_t)p[i];
		if (c == '*') {
			for (unsigned k = fill(nm) % 4; k; k--)
				put(nm, fill(nm));
		} else if (c == '?') {
			put(nm, fill(nm));
		} else if (c == '[') {
			put(nm, class_byte(&r, &i, fill(nm)));
		} else {
			if (c == '\\' && i + 1 < pn)
				c = (uint8_t)p[++i];
			put(nm, c);
		}
	}
}

static void report(const char *p, size_t pn, const char *s, size_t sn, int ref)
{
	fprintf(stderr, "glob_match differs from the reference (%d) on pattern[%zu] '", ref, pn);
	fwrite(p, 1, pn, stderr);
	fprintf(stderr, "' name[%zu] '", sn);
	fwrite(s, 1, sn < 300 ? sn : 300, stderr);
	fprintf(stderr, "%s'\n", sn < 300 ? "" : "...");
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 3)
		return 0;
	uint8_t flags = data[0];
	size_t pn = (data[1] | (size_t)data[2] << 8) % (PATTERN_MAX + 1);
	data += 3;
	size -= 3;
	if (pn > size)
		pn = size;
	const uint8_t *body = data + pn;
	size_t bn = size - pn, reps = (flags & 63) + !(flags & 0x40);
	char *p = malloc(pn ? pn : 1);
	struct name nm = {.cap = REF_CELLS / (pn + 1) - 1, .fill = body, .fn = bn};
	nm.s = malloc(nm.cap);
	if (!p || !nm.s)
		abort();
	memcpy(p, data, pn);
	for (size_t i = 0; i < bn * reps; i++)
		put(&nm, body[i % bn]);
	if (flags & 0x40)
		write_out(&nm, p, pn);
	if ((flags & 0x80) && nm.n) {
		size_t at = (size_t)fill(&nm) << 8;
		at = (at | fill(&nm)) % nm.n;
		nm.s[at] = (char)(nm.s[at] ^ (1 + fill(&nm) % 255));
	}
	char *s = malloc(nm.n ? nm.n : 1); /* exact size */
	if (!s)
		abort();
	memcpy(s, nm.s, nm.n);
	int ref = glob_ref_match(p, pn, s, nm.n);
	if (ref < 0)
		abort();
	if (glob_match(p, pn, s, nm.n) != (ref == 1))
		report(p, pn, s, nm.n, ref);
	free(nm.s);
	free(s);
	free(p);
	return 0;
}
