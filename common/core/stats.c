#include "stats.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdlib.h>

const struct stat_info stat_info[STAT__COUNT] = {
#define X(id, name, labels, help) {name, labels, help},
	STATS_LIST(X)
#undef X
};

struct block {
	_Atomic uint64_t v[STAT__COUNT];
	struct block *next_all;  /* every block ever made */
	struct block *next_free; /* blocks of threads that exited */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct block *all;
static struct block *free_blocks;
static _Atomic(struct block *) all_head; /* readers walk this without the lock */
static pthread_key_t key;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static _Thread_local struct block *mine;
/* A thread past its key destructor (another key's destructor counting
 * something as the thread exits): its block may already serve a new thread,
 * so it adds here instead, atomically. */
static _Thread_local bool exited;
static struct block late;

static void release(void *p)
{
	struct block *b = p;
	mine = NULL; /* it is on the free list now: never touch it again */
	exited = true;
	pthread_mutex_lock(&lock);
	b->next_free = free_blocks;
	free_blocks = b;
	pthread_mutex_unlock(&lock);
}

static void make_key(void) { pthread_key_create(&key, release); }

static struct block *get(void)
{
	if (mine)
		return mine;
	pthread_once(&once, make_key);
	pthread_mutex_lock(&lock);
	struct block *b = free_blocks;
	if (b) {
		free_blocks = b->next_free;
	} else {
		b = calloc(1, sizeof(*b));
		if (!b)
			abort(); /* a few hundred bytes per thread; nothing sane to do */
		b->next_all = all;
		all = b;
		atomic_store_explicit(&all_head, b, memory_order_release);
	}
	pthread_mutex_unlock(&lock);
	pthread_setspecific(key, b);
	mine = b;
	return b;
}

void stat_add(enum stat_id id, uint64_t v)
{
	if (!mine && exited) {
		/* Not get(): a new block set in a destructor would be released
		 * only if the destructor pass runs again, and leaked otherwise. */
		atomic_fetch_add_explicit(&late.v[id], v, memory_order_relaxed);
		return;
	}
	/* Only this thread writes its block, so load + store is enough; the
	 * atomics keep concurrent readers well defined. */
	_Atomic uint64_t *c = &get()->v[id];
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v, memory_order_relaxed);
}

uint64_t stat_sum(enum stat_id id)
{
	uint64_t s = atomic_load_explicit(&late.v[id], memory_order_relaxed);
	for (struct block *b = atomic_load_explicit(&all_head, memory_order_acquire); b; b = b->next_all)
		s += atomic_load_explicit(&b->v[id], memory_order_relaxed);
	return s;
}

uint64_t stat_closed_total(void)
{
	uint64_t s = 0;
	for (int why = CLOSE_PEER; why <= CLOSE_ERROR; why++)
		s += stat_sum(stat_closed((enum close_reason)why));
	return s;
}
