/* htable.h - one chained hash table of byte-string keys (FNV-1a, power-of-two
 * buckets, doubling when there are as many entries as buckets), intrusive:
 * an entry embeds a struct hnode and keeps its key bytes at a fixed offset
 * from it (htable_init's key_off), so a lookup compares keys with no call.
 * The exchange's channels and the cluster bridge's bookkeeping tables use it.
 * Not thread-safe: the owner locks. Entries are the owner's to allocate and
 * free; the table owns only its bucket array. */
#ifndef WEFT_HTABLE_H
#define WEFT_HTABLE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "hash.h"

struct hnode {
	struct hnode *next; /* chain */
	uint64_t hash;
	size_t klen;
};

struct htable {
	struct hnode **b;
	size_t nb, n;
	size_t key_off; /* key bytes at (char *)node + key_off */
};

/* An empty table (no buckets yet) whose entries keep their key at key_off
 * bytes from their hnode. */
static inline void htable_init(struct htable *t, size_t key_off)
{
	*t = (struct htable){.key_off = key_off};
}

static inline const char *htable_key(const struct htable *t, const struct hnode *e)
{
	return (const char *)e + t->key_off;
}

/* Where the entry for [k, k+n) with hash h is, or would be linked: *slot is
 * it or NULL. The table must have buckets (htable_reserve). */
static inline struct hnode **htable_slot(struct htable *t, const void *k, size_t n, uint64_t h)
{
	struct hnode **pp = &t->b[h & (t->nb - 1)];
	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->hash == h && (*pp)->klen == n && memcmp(htable_key(t, *pp), k, n) == 0)
			break;
	return pp;
}

/* The entry for [k, k+n) with hash h (hash_bytes(k, n)), or NULL. */
static inline struct hnode *htable_find(struct htable *t, const void *k, size_t n, uint64_t h)
{
	return t->nb ? *htable_slot(t, k, n, h) : NULL;
}

/* Room for one more entry: doubles the buckets (64 at first) when there are
 * as many entries; failing to grow only costs speed. 0, or -ENOMEM when the
 * table has no buckets at all. */
int htable_reserve(struct htable *t);
/* Link e (hash and klen set, key at key_off) at slot, from htable_slot with
 * no htable_reserve between. */
static inline void htable_link(struct htable *t, struct hnode **slot, struct hnode *e)
{
	e->next = NULL;
	*slot = e;
	t->n++;
}
/* Unlink the entry at *slot. */
static inline void htable_unlink(struct htable *t, struct hnode **slot)
{
	*slot = (*slot)->next;
	t->n--;
}
/* Unlink e, which is in t. */
void htable_remove(struct htable *t, struct hnode *e);
/* Free the bucket array (the entries are the owner's: walk them first). */
void htable_free(struct htable *t);

#endif
