/* table.c - chained hash table of byte keys (FNV-1a), doubling when full. */
#include "table.h"

#include <stdlib.h>
#include <string.h>

#include "hash.h"

static struct tentry **slot(struct table *t, const void *k, size_t n, uint64_t h)
{
	struct tentry **pp = &t->b[h & (t->nb - 1)];
	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->hash == h && (*pp)->klen == n && memcmp((*pp)->key, k, n) == 0)
			break;
	return pp;
}

struct tentry *table_get(struct table *t, const void *k, size_t n)
{
	return t->nb ? *slot(t, k, n, hash_bytes(k, n)) : NULL;
}

/* Double the buckets when there are as many entries; failing only costs speed. */
static void grow(struct table *t)
{
	size_t nb = t->nb ? t->nb * 2 : 64;
	struct tentry **b = calloc(nb, sizeof(*b));
	if (!b)
		return;
	for (size_t i = 0; i < t->nb; i++) {
		for (struct tentry *e = t->b[i], *next; e; e = next) {
			next = e->next;
			e->next = b[e->hash & (nb - 1)];
			b[e->hash & (nb - 1)] = e;
		}
	}
	free(t->b);
	t->bytes += (nb - t->nb) * sizeof(*b);
	t->b = b;
	t->nb = nb;
}

/* The value sits after the key and its NUL, aligned for uint64_t. */
static size_t val_off(size_t n) { return (n + 1 + 7) & ~(size_t)7; }

void *table_val(struct tentry *e) { return e->key + val_off(e->klen); }

size_t table_entry_bytes(size_t n, size_t vsize) { return sizeof(struct tentry) + val_off(n) + vsize; }

struct tentry *table_put(struct table *t, const void *k, size_t n) { return table_put_v(t, k, n, 0); }

struct tentry *table_put_v(struct table *t, const void *k, size_t n, size_t vsize)
{
	if (t->n >= t->nb)
		grow(t);
	if (!t->nb)
		return NULL;
	uint64_t h = hash_bytes(k, n);
	struct tentry **pp = slot(t, k, n, h);
	if (*pp)
		return *pp;
	size_t sz = table_entry_bytes(n, vsize);
	struct tentry *e = calloc(1, sz);
	if (!e)
		return NULL;
	t->bytes += sz;
	e->vsize = vsize;
	e->hash = h;
	e->klen = n;
	memcpy(e->key, k, n);
	*pp = e;
	t->n++;
	return e;
}

void table_del(struct table *t, struct tentry *e)
{
	struct tentry **pp = &t->b[e->hash & (t->nb - 1)];
	while (*pp != e)
		pp = &(*pp)->next;
	*pp = e->next;
	t->n--;
	t->bytes -= table_entry_bytes(e->klen, e->vsize);
	free(e);
}

void table_each(struct table *t, void (*fn)(struct table *t, struct tentry *e, void *arg), void *arg)
{
	for (size_t i = 0; i < t->nb; i++) {
		for (struct tentry *e = t->b[i], *next; e; e = next) {
			next = e->next;
			fn(t, e, arg);
		}
	}
}

void table_clear(struct table *t)
{
	for (size_t i = 0; i < t->nb; i++) {
		for (struct tentry *e = t->b[i], *next; e; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(t->b);
	*t = (struct table){0};
}
