/* rscan.h - a pre-scanner of the RESP2 byte stream from the engine, run on
 * every byte before hiredis's reader sees it.
 *
 * hiredis 0.14 keeps every parsed element of an array until the array is
 * complete and bounds only the bytes it has not parsed yet, so "*100000000"
 * and an endless ":1" grow memory without bound. The link knows what each
 * connection may receive: the subscriber connection arrays of at most 4
 * flat elements (message, pmessage, (p)(un)subscribe acknowledgements) with
 * bulk strings of at most a message and its envelope; the publisher
 * connection integers and status/error lines. The scanner refuses anything
 * else before it is buffered, so one reply costs bounded memory. */
#ifndef WEFT_CLUSTER_RSCAN_H
#define WEFT_CLUSTER_RSCAN_H

#include <stddef.h>
#include <stdint.h>

struct rscan {
	/* limits */
	uint64_t max_elems; /* of an array (0: no arrays with elements) */
	uint64_t max_bulk;  /* bytes of a bulk string (0: no bulk strings) */
	size_t max_line;    /* bytes of a +, -, : line or a length header */
	/* state */
	int st;
	char type;
	int neg;
	uint64_t num;
	size_t line;
	uint64_t left;      /* bulk bytes (with CRLF) still to skip */
	uint64_t elems;     /* elements left in the open array (0: top level) */
};

/* Set the limits and start at the beginning of a reply. */
void rscan_init(struct rscan *s, uint64_t max_elems, uint64_t max_bulk, size_t max_line);
/* Scan [p, p+n). 0, or -EPROTO with why (static) for a reply beyond the limits. */
int rscan_feed(struct rscan *s, const char *p, size_t n, const char **why);

/* As rscan_feed, but stop right after the first top-level reply that ends in
 * [p, p+n): *used is the bytes scanned (n when none ends there). */
int rscan_feed_one(struct rscan *s, const char *p, size_t n, size_t *used, const char **why);

/* Between two top-level replies (nothing of one scanned yet). */
static inline int rscan_at_start(const struct rscan *s) { return s->st == 0 && s->elems == 0; }

/* The fast path for the engine's pushes (message, pmessage, smessage): a
 * whole array of RSCAN_FLAT_MIN..RSCAN_FLAT_MAX non-null bulk strings at the
 * start of [p, p+n), within s's limits, each bulk followed by CRLF. Returns
 * the element count, with el[] pointing into [p, p+n) and *used the array's
 * bytes; 0 for anything else (incomplete, another shape, a header it does not
 * read the way rscan_feed does): the caller then scans it with rscan_feed_one
 * and lets hiredis parse it. s is only read: the array is whole, so the
 * scanner stays at the start of a reply. */
#define RSCAN_FLAT_MIN 3
#define RSCAN_FLAT_MAX 4
struct rscan_str {
	const char *p;
	size_t n;
};
int rscan_flat(const struct rscan *s, const char *p, size_t n, struct rscan_str *el, size_t *used);
/* The same for the publisher connection's reply to each PUBLISH: a whole
 * ":<digits>\r\n" within max_line. Its bytes, with *v the number; 0 for
 * anything else. */
size_t rscan_int(const struct rscan *s, const char *p, size_t n, long long *v);

#endif
