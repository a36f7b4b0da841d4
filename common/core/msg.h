/* msg.h - an immutable, reference-counted run of bytes.
 *
 * The outbox of every connection is a queue of msg references. Bytes a
 * protocol writes for one connection live in a msg with refs == 1 that may
 * still grow (msg->cap); a published chat message is encoded once per wire
 * format and the same msg is referenced by every subscriber's outbox. Once a
 * msg has more than one reference it is never written again. */
#ifndef WEFT_MSG_H
#define WEFT_MSG_H

#include <stdatomic.h>
#include <stddef.h>

struct msg {
	atomic_uint refs;
	size_t len; /* bytes used */
	size_t cap; /* bytes allocated in data[] */
	char data[];
};

/* A new msg with refs == 1, len == 0 and room for cap bytes; NULL on ENOMEM. */
struct msg *msg_new(size_t cap);
/* A new msg holding a copy of [p, p+n). */
struct msg *msg_from(const void *p, size_t n);
static inline struct msg *msg_ref(struct msg *m)
{
	atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
	return m;
}
void msg_unref(struct msg *m);
/* This thread keeps up to max freed chunk-sized msgs for reuse (default 32):
 * for a loop thread that fills a chunk for each of many connections per turn. */
void msg_cache_limit(int max);
/* Msgs this thread's cache holds now (for tests). */
int msg_cached_here(void);
/* Live msgs in the process (for tests: returns to its start value when all are freed). */
long msg_live_count(void);

#endif
