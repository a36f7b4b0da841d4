/* test_glob.c - common/pubsub/glob.c: Redis' documented examples and the edge rules
 * of its stringmatchlen() (each case below was also asked of a real Redis
 * 7.0.15 through PSUBSCRIBE/PUBLISH when this was written), the long-name
 * paths (Shift-And over 1 to 4 words and a segment longer than the
 * automaton), random cases against the reference matcher fuzz/glob_ref.h,
 * and a 1 MB channel against four 200-byte hostile patterns, which must be
 * answered right (the time is printed, not asserted). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../fuzz/glob_ref.h"
#include "check.h"
#include "glob.h"

struct gcase {
	const char *pat, *s;
	size_t pn, sn; /* 0: strlen (for patterns and names holding NUL) */
	bool want;
};

static const struct gcase cases[] = {
	/* the examples of Redis' KEYS / PSUBSCRIBE documentation */
	{"h?llo", "hello", 0, 0, true},
	{"h?llo", "hallo", 0, 0, true},
	{"h?llo", "hxllo", 0, 0, true},
	{"h?llo", "hllo", 0, 0, false},
	{"h*llo", "hllo", 0, 0, true},
	{"h*llo", "heeeello", 0, 0, true},
	{"h[ae]llo", "hello", 0, 0, true},
	{"h[ae]llo", "hallo", 0, 0, true},
	{"h[ae]llo", "hillo", 0, 0, false},
	{"h[^e]llo", "hallo", 0, 0, true},
	{"h[^e]llo", "hbllo", 0, 0, true},
	{"h[^e]llo", "hello", 0, 0, false},
	{"h[a-b]llo", "hallo", 0, 0, true},
	{"h[a-b]llo", "hbllo", 0, 0, true},
	{"h[a-b]llo", "hcllo", 0, 0, false},
	{"news.*", "news.art.figurative", 0, 0, true},
	{"news.*", "news", 0, 0, false},
	{"*", "anything", 0, 0, true},
	{"n*", "news", 0, 0, true},
	{"n*", "snow", 0, 0, false},
	/* stars */
	{"*", "", 0, 0, false}, /* Redis: nothing matches the empty name ... */
	{"**", "", 0, 0, false},
	{"", "", 0, 0, true}, /* ... but the empty pattern */
	{"", "a", 0, 0, false},
	{"**", "a", 0, 0, true},
	{"a*", "a", 0, 0, true},
	{"a**", "a", 0, 0, true},
	{"*a", "a", 0, 0, true},
	{"*a*", "a", 0, 0, true},
	{"a*b", "ab", 0, 0, true},
	{"a*b", "a", 0, 0, false},
	{"ab*", "a", 0, 0, false},
	{"a*b*c", "aXXbYYc", 0, 0, true},
	{"a*b*c", "aXXbYY", 0, 0, false},
	{"a*b*c", "abcbc", 0, 0, true},
	{"*ab*ab", "abab", 0, 0, true},
	{"*ab*ab", "aba", 0, 0, false},
	{"*aba*aba", "ababa", 0, 0, false}, /* the segments may not overlap */
	{"*aba*aba", "abaaba", 0, 0, true},
	{"*?", "a", 0, 0, true},
	{"?*?", "a", 0, 0, false},
	{"?*?", "ab", 0, 0, true},
	{"*a*a*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab", 0, 0, true},
	{"*a*a*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0, 0, false},
	/* escapes */
	{"a\\*b", "a*b", 0, 0, true},
	{"a\\*b", "axb", 0, 0, false},
	{"a\\*", "a", 0, 0, false},
	{"\\?", "?", 0, 0, true},
	{"\\?", "x", 0, 0, false},
	{"\\a", "a", 0, 0, true},
	{"\\\\", "\\", 0, 0, true},
	{"x\\", "x\\", 0, 0, true}, /* a trailing backslash is itself */
	{"\\", "\\", 0, 0, true},
	{"*\\", "ab\\", 0, 0, true},
	{"\\[a]", "[a]", 0, 0, true},
	{"\\[a]", "a", 0, 0, false},
	/* classes */
	{"[\\]]", "]", 0, 0, true},
	{"[\\^a]", "^", 0, 0, true},
	{"[^\\^]", "^", 0, 0, false},
	{"[a\\-z]", "-", 0, 0, true},
	{"[a\\-z]", "b", 0, 0, false},
	{"[*]", "*", 0, 0, true},
	{"[*]", "a", 0, 0, false},
	{"a[*]", "a", 0, 0, false},
	{"[?]", "x", 0, 0, false},
	{"[]", "]", 0, 0, false}, /* the empty class */
	{"[]]", "]", 0, 0, false},
	{"[]]", "]]", 0, 0, false},
	{"[^]", "x", 0, 0, true},
	{"[^]", "]", 0, 0, true},
	{"[^]]", "x]", 0, 0, true},
	{"[b-a]", "a", 0, 0, true}, /* reversed ranges are swapped */
	{"[z-a]", "m", 0, 0, true},
	{"[z-a]", "A", 0, 0, false},
	{"[a-a]", "a", 0, 0, true},
	{"[-a]", "-", 0, 0, true},
	{"[a-]", "-", 0, 0, false}, /* "a-]" is a range to ']', the class goes on */
	{"[a-]", "]", 0, 0, true},
	{"[a-]", "^", 0, 0, true},
	{"[a-]b", "b", 0, 0, true},
	{"[a-]b", "]b", 0, 0, false},
	{"[a-\\]", "\\", 0, 0, true}, /* a range from \ up to a */
	{"[a-\\]", "b", 0, 0, false},
	{"[\\a-z]", "b", 0, 0, false}, /* \a is a, then '-' and 'z' */
	{"[\\a-z]", "-", 0, 0, true},
	{"[\\a-z]", "a", 0, 0, true},
	{"[\\a-z]", "]", 0, 0, false},
	{"[a-c-e]", "d", 0, 0, false},
	{"[a-c-e]", "-", 0, 0, true},
	{"[a-c-e]", "e", 0, 0, true},
	/* an unterminated class takes the rest of the pattern */
	{"[abc", "a", 0, 0, true},
	{"[abc", "c", 0, 0, true},
	{"[abc", "ab", 0, 0, false},
	{"[", "a", 0, 0, false},
	{"[", "[", 0, 0, false},
	{"[^", "a", 0, 0, true},
	{"[^", "", 0, 0, false},
	{"[a*", "*", 0, 0, true},
	{"[a*", "ab", 0, 0, false},
	{"[\\", "\\", 0, 0, true}, /* a '\' ending the class is itself */
	{"[a\\", "\\", 0, 0, true},
	{"[\\]", "]", 0, 0, true},
	{"[\\]", "\\", 0, 0, false},
	{"x[\\]]", "x]", 0, 0, true},
	/* any byte: NUL and high bytes are compared as they are ... */
	{"a\0b", "a\0b", 3, 3, true},
	{"a?b", "a\0b", 0, 3, true},
	{"a\0b", "a\0c", 3, 3, false},
	{"*\0", "xy\0", 2, 3, true},
	{"\xe9t\xe9", "\xe9t\xe9", 0, 0, true},
	/* ... but range ends are signed chars, as in Redis on x86-64 */
	{"[a-\xff]", "\xff", 0, 0, true},
	{"[a-\xff]", "\x01", 0, 0, true},
	{"[a-\xff]", "b", 0, 0, false},
	{"[a-\xff]", "\x80", 0, 0, false},
	{"[\x01-\x80]", "\x90", 0, 0, true},
	{"[\x01-\x80]", "a", 0, 0, false},
	{"[\x80-\xff]", "\x90", 0, 0, true},
	{"[\x80-\xff]", "a", 0, 0, false},
	/* case-sensitive */
	{"News", "news", 0, 0, false},
	{"[A-Z]", "a", 0, 0, false},
};

static bool one(const struct gcase *c)
{
	size_t pn = c->pn ? c->pn : strlen(c->pat), sn = c->sn ? c->sn : strlen(c->s);
	/* exact-size copies, so a read past either end shows under ASan */
	char *p = malloc(pn ? pn : 1), *s = malloc(sn ? sn : 1);
	memcpy(p, c->pat, pn);
	memcpy(s, c->s, sn);
	bool got = glob_match(p, pn, s, sn);
	int ref = glob_ref_match(p, pn, s, sn);
	free(p);
	free(s);
	if (got != c->want || ref != c->want)
		fprintf(stderr, "  case '%s' vs '%s': glob %d, reference %d, want %d\n", c->pat, c->s, got, ref, c->want);
	return got == c->want && ref == c->want;
}

static void test_cases(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		CHECK(one(&cases[i]));
}

static char *filled(size_t n, char c)
{
	char *p = malloc(n);
	memset(p, c, n);
	return p;
}

static bool gm(const char *p, const char *s, size_t sn) { return glob_match(p, strlen(p), s, sn); }

/* Names longer than NAIVE_MAX: the middle segments go through Shift-And. */
static void test_long(void)
{
	size_t n = 5000;
	char *s = filled(n, 'a');
	char pat[400];
	/* a segment of k tokens ending in 'b', for k across the word edges */
	static const size_t ks[] = {1, 2, 63, 64, 65, 127, 128, 129, 200, 255, 256, 257, 300};
	for (size_t i = 0; i < sizeof(ks) / sizeof(ks[0]); i++) {
		size_t k = ks[i];
		pat[0] = '*';
		memset(pat + 1, 'a', k - 1);
		memcpy(pat + k, "b*", 3);
		CHECK(!gm(pat, s, n)); /* no 'b' at all */
		s[n - 2] = 'b'; /* far right */
		CHECK(gm(pat, s, n));
		s[n - 2] = 'a';
		s[k - 1] = 'b'; /* the leftmost place it fits */
		CHECK(gm(pat, s, n));
		s[k - 1] = 'a';
		if (k > 1) {
			s[k - 2] = 'b'; /* one 'a' short */
			CHECK(!gm(pat, s, n));
			s[k - 2] = 'a';
		}
	}
	/* a segment past the automaton (300 tokens) ends where its tail ends */
	memset(s, 'x', n);
	memset(s, 'a', 299);
	s[299] = 'b';
	pat[0] = '*';
	memset(pat + 1, 'a', 299);
	memcpy(pat + 300, "b*b*", 5);
	CHECK(!gm(pat, s, n));
	s[1000] = 'b';
	CHECK(gm(pat, s, n));
	/* the second of two middle segments must start after the first ends */
	memset(s, 'x', n);
	memcpy(s + 3000, "abab", 4);
	CHECK(gm("*aba*bab*", s, n) == false);
	memcpy(s + 4000, "bab", 3);
	CHECK(gm("*aba*bab*", s, n));
	/* classes and '?' in the automaton */
	memset(s, 'q', n);
	memcpy(s + 4321, "x7-Z", 4);
	CHECK(gm("*[w-y][0-9]?[^a-z]*", s, n));
	CHECK(!gm("*[w-y][0-9]?[^A-Z]*", s, n));
	CHECK(gm("q*[w-y][0-9]?[^a-z]*q", s, n));
	CHECK(!gm("q*[w-y][0-9]?[^a-z]*z", s, n));
	free(s);
}

static uint64_t rng = 88172645463325252ULL;
static unsigned rnd(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned)(rng % n);
}

/* Random patterns over a small alphabet with every special byte, against
 * names made of the same bytes, short ones and (to reach Shift-And) long
 * ones, compared with the reference. */
static void test_random(void)
{
	static const char alpha[] = "ab*?[]^-\\";
	char pat[80], s[1200];
	int bad = 0;
	for (int iter = 0; iter < 20000; iter++) {
		size_t pn = rnd(24), sn = iter % 4 == 0 ? 300 + rnd(900) : rnd(16);
		for (size_t i = 0; i < pn; i++)
			pat[i] = alpha[rnd(sizeof(alpha) - 1)];
		for (size_t i = 0; i < sn; i++)
			s[i] = alpha[rnd(iter % 3 ? 2 : sizeof(alpha) - 1)];
		int ref = glob_ref_match(pat, pn, s, sn);
		if (ref < 0 || glob_match(pat, pn, s, sn) != ref) {
			if (bad++ < 5)
				fprintf(stderr, "  random: '%.*s' vs '%.*s': reference %d\n", (int)pn, pat, (int)(sn < 60 ? sn : 60), s,
				        ref);
		}
	}
	CHECK(bad == 0);
}

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* The attack from issue 9: a 1 MB channel against 4 patterns of 200 bytes
 * that cost a backtracking matcher pattern x channel steps each. */
static void test_hostile(void)
{
	size_t n = 1 << 20;
	char *s = filled(n, 'a'), p[4][201];
	memcpy(s + n - 2, "N2", 2); /* only p[1] ends like this */
	for (int i = 0; i < 4; i++) {
		p[i][0] = '*';
		memset(p[i] + 1, 'a', 199);
		p[i][200] = 0;
	}
	memcpy(p[0] + 198, "N1", 2); /* suffix segment, no match */
	memcpy(p[1] + 198, "N2", 2); /* suffix segment, match */
	memcpy(p[2] + 197, "N3*", 3); /* 198-token middle segment: 4 words */
	memcpy(p[3] + 1, "a?a[ab]", 7);
	memcpy(p[3] + 198, "M*", 2); /* middle segment with ? and a class */
	bool want[4] = {false, true, false, false}, got[4];
	double t0 = now();
	for (int i = 0; i < 4; i++)
		got[i] = glob_match(p[i], 200, s, n);
	double ms = (now() - t0) * 1000;
	for (int i = 0; i < 4; i++)
		CHECK(got[i] == want[i]);
	memcpy(s + n / 2, "N3", 2);
	CHECK(glob_match(p[2], 200, s, n)); /* now the middle one is found */
	printf("1 MB channel vs 4 x 200-byte patterns: %.2f ms\n", ms);
	free(s);
}

int main(void)
{
	test_cases();
	test_long();
	test_random();
	test_hostile();
	return check_done();
}
