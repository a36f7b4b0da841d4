/* rscan.c - the RESP2 pre-scanner (rscan.h): a byte-at-a-time state machine
 * over headers, skipping bulk bodies whole. It checks sizes and shapes only;
 * hiredis still parses and validates everything it lets through. */
#include "rscan.h"

#include <errno.h>
#include <string.h>

enum { S_TYPE, S_LINE, S_LF, S_BULK };

void rscan_init(struct rscan *s, uint64_t max_elems, uint64_t max_bulk, size_t max_line)
{
	*s = (struct rscan){.max_elems = max_elems, .max_bulk = max_bulk, .max_line = max_line, .st = S_TYPE};
}

/* One element (or a whole top-level reply) is complete. */
static void done(struct rscan *s)
{
	if (s->elems)
		s->elems--;
	s->st = S_TYPE;
}

static int refuse(const char **why, const char *what)
{
	*why = what;
	return -EPROTO;
}

/* A header line ended: act on its type. */
static int header(struct rscan *s, const char **why)
{
	if (s->type == '$') {
		if (s->neg) {
			done(s);
			return 0;
		}
		if (s->num > s->max_bulk)
			return refuse(why, "a bulk string larger than any message may be");
		s->left = s->num + 2;
		s->st = S_BULK;
		return 0;
	}
	if (s->type == '*') {
		if (s->neg || s->num == 0) {
			done(s);
			return 0;
		}
		if (s->num > s->max_elems)
			return refuse(why, "an array with more elements than this connection's replies have");
		s->elems = s->num;
		s->st = S_TYPE;
		return 0;
	}
	done(s);
	return 0;
}

static int scan(struct rscan *s, const char *p, size_t n, size_t *used, const char **why)
{
	const char *start = p, *end = p + n;
	while (p < end) {
		char c = *p;
		switch (s->st) {
		case S_TYPE:
			if (c != '+' && c != '-' && c != ':' && c != '$' && c != '*')
				return refuse(why, "not a RESP2 reply");
			if (c == '*' && s->elems)
				return refuse(why, "a nested array");
			s->type = c;
			s->neg = 0;
			s->num = 0;
			s->line = 0;
			s->st = S_LINE;
			p++;
			break;
		case S_LINE:
			if (c == '\r') {
				s->st = S_LF;
			} else if (++s->line > s->max_line) {
				return refuse(why, "a reply line too long");
			} else if (s->type == '$' || s->type == '*') {
				if (c == '-' && s->line == 1)
					s->neg = 1;
				else if (c < '0' || c > '9' || s->num > (UINT64_MAX - 9) / 10)
					return refuse(why, "a bad length");
				else
					s->num = s->num * 10 + (uint64_t)(c - '0');
			}
			p++;
			break;
		case S_LF:
			if (c != '\n')
				return refuse(why, "a CR without LF");
			p++;
			if (header(s, why) < 0)
				return -EPROTO;
			break;
		case S_BULK: {
			uint64_t k = (uint64_t)(end - p) < s->left ? (uint64_t)(end - p) : s->left;
			p += k;
			s->left -= k;
			if (s->left == 0)
				done(s);
			break;
		}
		}
		if (used && s->st == S_TYPE && s->elems == 0) { /* only done() gets here: a reply ended */
			*used = (size_t)(p - start);
			return 0;
		}
	}
	if (used)
		*used = n;
	return 0;
}

int rscan_feed(struct rscan *s, const char *p, size_t n, const char **why) { return scan(s, p, n, NULL, why); }

int rscan_feed_one(struct rscan *s, const char *p, size_t n, size_t *used, const char **why)
{
	return scan(s, p, n, used, why);
}

/* "<digits>\r\n" at *p (before end), at most max_line digits: the number, and
 * *p past the CRLF; -1 if it is not that (or would not fit in 19 digits). */
static int64_t flat_len(const char **p, const char *end, size_t max_line)
{
	const char *q = *p;
	int64_t v = 0;
	size_t k = 0;
	for (; q < end && *q >= '0' && *q <= '9'; q++, k++) {
		if (k == 18 || k == max_line)
			return -1;
		v = v * 10 + (*q - '0');
	}
	if (k == 0 || end - q < 2 || q[0] != '\r' || q[1] != '\n')
		return -1;
	*p = q + 2;
	return v;
}

int rscan_flat(const struct rscan *s, const char *p, size_t n, struct rscan_str *el, size_t *used)
{
	const char *q = p, *end = p + n;
	if (n < 4 || q[0] != '*' || q[2] != '\r' || q[3] != '\n')
		return 0;
	int k = q[1] - '0';
	if (k < RSCAN_FLAT_MIN || k > RSCAN_FLAT_MAX || (uint64_t)k > s->max_elems)
		return 0;
	q += 4;
	for (int i = 0; i < k; i++) {
		if (q == end || *q != '$')
			return 0;
		q++;
		int64_t len = flat_len(&q, end, s->max_line);
		if (len < 0 || (uint64_t)len > s->max_bulk || end - q < len + 2 || q[len] != '\r' || q[len + 1] != '\n')
			return 0;
		el[i] = (struct rscan_str){q, (size_t)len};
		q += len + 2;
	}
	*used = (size_t)(q - p);
	return k;
}

size_t rscan_int(const struct rscan *s, const char *p, size_t n, long long *v)
{
	const char *q = p + 1;
	if (n < 4 || p[0] != ':')
		return 0;
	int64_t x = flat_len(&q, p + n, s->max_line);
	if (x < 0)
		return 0;
	*v = x;
	return (size_t)(q - p);
}
