/* table.h - a small chained hash table of byte-string keys, for the bridge's
 * three bookkeeping sets (names held, sequence numbers sent, sequence numbers
 * seen). Each entry carries the few fields those need. Not thread-safe: the
 * owner of a table provides the locking. */
#ifndef WEFT_CLUSTER_TABLE_H
#define WEFT_CLUSTER_TABLE_H

#include <stddef.h>
#include <stdint.h>

struct tentry {
	struct tentry *next;  /* chain */
	struct tentry *dirty; /* the bridge's list of entries to tell the engine about */
	uint64_t hash;
	uint64_t a, b;        /* the user's */
	unsigned flags;       /* the user's */
	size_t klen;
	char key[];
};

struct table {
	struct tentry **b;
	size_t nb, n;
};

/* The entry for [k, k+n), or NULL. */
struct tentry *table_get(struct table *t, const void *k, size_t n);
/* The entry for [k, k+n), made (zeroed) if missing; NULL on ENOMEM. */
struct tentry *table_put(struct table *t, const void *k, size_t n);
/* Unlink and free e. */
void table_del(struct table *t, struct tentry *e);
/* Call fn for each entry; fn may table_del the entry it is given. */
void table_each(struct table *t, void (*fn)(struct table *t, struct tentry *e, void *arg), void *arg);
/* Free every entry (and the bucket array). */
void table_clear(struct table *t);

#endif
