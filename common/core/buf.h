/* buf.h - a growable byte buffer with a read offset (input that a protocol
 * has not consumed yet). */
#ifndef WEFT_BUF_H
#define WEFT_BUF_H

#include <stddef.h>

struct buf {
	char *data;
	size_t off; /* first unconsumed byte */
	size_t len; /* end of valid bytes; unconsumed = len - off */
	size_t cap;
};

static inline size_t buf_used(const struct buf *b) { return b->len - b->off; }
static inline const char *buf_head(const struct buf *b) { return b->data + b->off; }
/* Append n bytes; 0 or -ENOMEM. */
int buf_append(struct buf *b, const void *p, size_t n);
void buf_consume(struct buf *b, size_t n);
void buf_free(struct buf *b);

#endif
