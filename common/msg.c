#include "msg.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static atomic_long live;

/* A small per-thread cache of MSG_CACHE_SIZE-byte msgs, so a keep-alive
 * connection that sends one small reply at a time (the outbox's usual chunk)
 * does not go to malloc per reply. A msg may be freed on another thread than
 * the one that made it; it simply joins that thread's cache. */
#define MSG_CACHE_SIZE 4096
#define MSG_CACHE_MAX 32

struct msg_cache {
	struct msg *m[MSG_CACHE_MAX];
	int n;
};
static _Thread_local struct msg_cache cache;
static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void cache_release(void *p)
{
	struct msg_cache *c = p;
	while (c->n)
		free(c->m[--c->n]);
}

static void cache_key_make(void) { pthread_key_create(&cache_key, cache_release); }

struct msg *msg_new(size_t cap)
{
	struct msg *m;
	if (cap == MSG_CACHE_SIZE && cache.n) {
		m = cache.m[--cache.n];
	} else {
		m = malloc(sizeof(*m) + cap);
		if (!m)
			return NULL;
		m->cap = cap;
	}
	atomic_init(&m->refs, 1);
	m->len = 0;
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
	if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1)
		return;
	atomic_fetch_sub_explicit(&live, 1, memory_order_relaxed);
	if (m->cap == MSG_CACHE_SIZE && cache.n < MSG_CACHE_MAX) {
		if (cache.n == 0) {
			/* make sure a thread's cache is freed when the thread exits */
			pthread_once(&cache_once, cache_key_make);
			pthread_setspecific(cache_key, &cache);
		}
		cache.m[cache.n++] = m;
		return;
	}
	free(m);
}

long msg_live_count(void) { return atomic_load_explicit(&live, memory_order_relaxed); }
