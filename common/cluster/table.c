/* table.c - the bridge's tables on core's htable, counting their bytes. */
#include "table.h"

#include <stdlib.h>
#include <string.h>

#include "hash.h"

/* A zeroed table is empty: tell it where an entry's key is before use. */
static void ready(struct table *t)
{
	t->h.key_off = offsetof(struct tentry, key);
}

struct tentry *table_get(struct table *t, const void *k, size_t n)
{
	ready(t);
	return (struct tentry *)htable_find(&t->h, k, n, hash_bytes(k, n));
}

/* The value sits after the key and its NUL, aligned for uint64_t. */
static size_t val_off(size_t n) { return (n + 1 + 7) & ~(size_t)7; }

void *table_val(struct tentry *e) { return e->key + val_off(e->node.klen); }

size_t table_entry_bytes(size_t n, size_t vsize) { return sizeof(struct tentry) + val_off(n) + vsize; }

struct tentry *table_put(struct table *t, const void *k, size_t n) { return table_put_v(t, k, n, 0); }

/* e becomes the most recently used (the use order's newest end). */
static void lru_push(struct table *t, struct tentry *e)
{
	e->older = t->newest;
	if (t->newest)
		t->newest->newer = e;
	else
		t->oldest = e;
	t->newest = e;
}

struct tentry *table_put_v(struct table *t, const void *k, size_t n, size_t vsize)
{
	ready(t);
	size_t nb = t->h.nb;
	if (htable_reserve(&t->h) < 0)
		return NULL;
	t->bytes += (t->h.nb - nb) * sizeof(*t->h.b);
	uint64_t h = hash_bytes(k, n);
	struct hnode **pp = htable_slot(&t->h, k, n, h);
	if (*pp)
		return (struct tentry *)*pp;
	size_t sz = table_entry_bytes(n, vsize);
	struct tentry *e = calloc(1, sz);
	if (!e)
		return NULL;
	t->bytes += sz;
	e->vsize = vsize;
	e->node.hash = h;
	e->node.klen = n;
	memcpy(e->key, k, n);
	htable_link(&t->h, pp, &e->node);
	if (t->lru)
		lru_push(t, e);
	return e;
}

static void lru_unlink(struct table *t, struct tentry *e)
{
	if (e->older)
		e->older->newer = e->newer;
	else
		t->oldest = e->newer;
	if (e->newer)
		e->newer->older = e->older;
	else
		t->newest = e->older;
	e->older = e->newer = NULL;
}

void table_touch(struct table *t, struct tentry *e)
{
	if (!t->lru || t->newest == e)
		return;
	lru_unlink(t, e);
	lru_push(t, e);
}

struct tentry *table_oldest(const struct table *t) { return t->oldest; }

void table_del(struct table *t, struct tentry *e)
{
	htable_remove(&t->h, &e->node);
	if (t->lru)
		lru_unlink(t, e);
	t->bytes -= table_entry_bytes(e->node.klen, e->vsize);
	free(e);
}

void table_each(struct table *t, void (*fn)(struct table *t, struct tentry *e, void *arg), void *arg)
{
	for (size_t i = 0; i < t->h.nb; i++) {
		for (struct hnode *e = t->h.b[i], *next; e; e = next) {
			next = e->next;
			fn(t, (struct tentry *)e, arg);
		}
	}
}

void table_each_from(struct table *t, uint64_t from, void (*fn)(struct table *t, struct tentry *e, void *arg),
                     void *arg)
{
	for (size_t k = 0; k < t->h.nb; k++) {
		size_t i = (size_t)((from + k) & (t->h.nb - 1));
		for (struct hnode *e = t->h.b[i], *next; e; e = next) {
			next = e->next;
			fn(t, (struct tentry *)e, arg);
		}
	}
}

void table_clear(struct table *t)
{
	for (size_t i = 0; i < t->h.nb; i++) {
		for (struct hnode *e = t->h.b[i], *next; e; e = next) {
			next = e->next;
			free(e);
		}
	}
	htable_free(&t->h);
	bool lru = t->lru;
	*t = (struct table){.lru = lru};
}
