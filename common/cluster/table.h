/* table.h - the bridge's three bookkeeping sets (names held, sequence numbers
 * sent, sequence numbers seen) on core's chained hash table (htable.h), with
 * the entries' memory counted. Each entry carries the few fields those need.
 * Not thread-safe: the owner of a table provides the locking. A zeroed
 * struct table is an empty one. */
#ifndef WEFT_CLUSTER_TABLE_H
#define WEFT_CLUSTER_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "htable.h"

struct tentry {
	struct hnode node;    /* chain, hash, klen */
	struct tentry *dirty; /* the bridge's list of entries to tell the engine about */
	struct tentry *older, *newer; /* a table with lru: the use order */
	uint64_t a, b;        /* the user's */
	unsigned flags;       /* the user's */
	unsigned vsize;       /* bytes of value after the key (table_val) */
	char key[];
};

struct table {
	struct htable h; /* h.n: the number of entries */
	size_t bytes;    /* entries and buckets allocated: what the owner bounds */
	bool lru;        /* keep the use order (table_touch, table_oldest); set before the first put */
	struct tentry *oldest, *newest;
};

/* The entry for [k, k+n), or NULL. */
struct tentry *table_get(struct table *t, const void *k, size_t n);
/* The entry for [k, k+n), made (zeroed) if missing; NULL on ENOMEM. */
struct tentry *table_put(struct table *t, const void *k, size_t n);
/* The same with vsize zeroed bytes of the owner's beside the key (table_val);
 * the entry remembers its vsize. */
struct tentry *table_put_v(struct table *t, const void *k, size_t n, size_t vsize);
/* The vsize bytes given to table_put_v, 8-byte aligned. */
void *table_val(struct tentry *e);
/* What an entry with an n-byte key and vsize bytes of value costs (the
 * owner's bound is checked before it adds one). */
size_t table_entry_bytes(size_t n, size_t vsize);
/* lru: e was used now (a new entry is the newest already). */
void table_touch(struct table *t, struct tentry *e);
/* lru: the entry used least recently, or NULL. */
struct tentry *table_oldest(const struct table *t);
/* Unlink and free e. */
void table_del(struct table *t, struct tentry *e);
/* Call fn for each entry; fn may table_del the entry it is given. */
void table_each(struct table *t, void (*fn)(struct table *t, struct tentry *e, void *arg), void *arg);
/* The same, from the bucket of hash from on (wrapping round): a walk that
 * may stop early (a budget) resumes where the last one stopped. */
void table_each_from(struct table *t, uint64_t from, void (*fn)(struct table *t, struct tentry *e, void *arg),
                     void *arg);
/* Free every entry (and the bucket array). */
void table_clear(struct table *t);

#endif
