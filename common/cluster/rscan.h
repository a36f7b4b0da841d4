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

#endif
