/* test_htable.c - core's chained hash table (htable.h) through the cluster
 * bridge's table (table.h), its other user besides the exchange: every key
 * found after the buckets double, deleted ones gone, keys that differ only
 * in length or in one byte kept apart, the byte count back to the buckets
 * once the entries are gone, and a zeroed table usable as it is. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "htable.h"
#include "table.h"

#define N 5000

static void count(struct table *t, struct tentry *e, void *arg)
{
	(void)t;
	(void)e;
	(*(size_t *)arg)++;
}

static void drop_odd(struct table *t, struct tentry *e, void *arg)
{
	(void)arg;
	if (e->a % 2)
		table_del(t, e);
}

int main(void)
{
	struct table t = {0};
	CHECK(table_get(&t, "x", 1) == NULL); /* no buckets yet */
	char k[32];
	for (size_t i = 0; i < N; i++) {
		int n = snprintf(k, sizeof(k), "key-%zu", i);
		struct tentry *e = table_put_v(&t, k, (size_t)n, 8);
		CHECK(e != NULL);
		if (e)
			e->a = i;
	}
	CHECK(t.h.n == N);
	CHECK(t.h.nb >= N && (t.h.nb & (t.h.nb - 1)) == 0); /* doubled, a power of two */
	size_t found = 0;
	for (size_t i = 0; i < N; i++) {
		int n = snprintf(k, sizeof(k), "key-%zu", i);
		struct tentry *e = table_get(&t, k, (size_t)n);
		found += e && e->a == i && e->node.klen == (size_t)n && memcmp(e->key, k, (size_t)n) == 0;
	}
	CHECK(found == N);
	CHECK(table_put(&t, "key-7", 5) == table_get(&t, "key-7", 5)); /* present: the same entry */
	CHECK(t.h.n == N);
	CHECK(table_get(&t, "key-7", 4) == NULL);  /* a prefix is another key */
	CHECK(table_get(&t, "key-7\0", 6) == NULL); /* so is a longer one */
	CHECK(table_get(&t, "kez-7", 5) == NULL);

	size_t seen = 0;
	table_each(&t, count, &seen);
	CHECK(seen == N);
	table_each(&t, drop_odd, NULL); /* fn may delete the entry it is given */
	CHECK(t.h.n == N / 2);
	found = 0;
	for (size_t i = 0; i < N; i++) {
		int n = snprintf(k, sizeof(k), "key-%zu", i);
		struct tentry *e = table_get(&t, k, (size_t)n);
		found += i % 2 ? e == NULL : e != NULL && e->a == i;
	}
	CHECK(found == N);
	table_each(&t, drop_odd, NULL);
	for (size_t i = 0; i < N; i += 2) {
		int n = snprintf(k, sizeof(k), "key-%zu", i);
		struct tentry *e = table_get(&t, k, (size_t)n);
		if (e)
			table_del(&t, e);
	}
	CHECK(t.h.n == 0);
	CHECK(t.bytes == t.h.nb * sizeof(struct hnode *)); /* only the buckets are left */
	table_clear(&t);
	CHECK(t.h.nb == 0 && t.h.b == NULL && t.bytes == 0);
	return check_done();
}
