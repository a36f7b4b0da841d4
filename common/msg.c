#include "msg.h"

#include <stdlib.h>
#include <string.h>

static atomic_long live;

struct msg *msg_new(size_t cap)
{
	struct msg *m = malloc(sizeof(*m) + cap);
	if (!m)
		return NULL;
	atomic_init(&m->refs, 1);
	m->len = 0;
	m->cap = cap;
	atomic_fetch_add_explicit(&live, 1, memory_order_relaxed);
	return m;
}

struct msg *msg_from(const void *p, size_t n)
{
	struct msg *m = msg_new(n);
	if (m) {
		memcpy(m->data, p, n);
		m->len = n;
	}
	return m;
}

void msg_unref(struct msg *m)
{
	if (!m)
		return;
	if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1) {
		atomic_fetch_sub_explicit(&live, 1, memory_order_relaxed);
		free(m);
	}
}

long msg_live_count(void) { return atomic_load_explicit(&live, memory_order_relaxed); }
