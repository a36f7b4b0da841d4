/* htable.c - growing and emptying the chained table (htable.h). */
#include "htable.h"

#include <errno.h>
#include <stdlib.h>

int htable_reserve(struct htable *t)
{
	if (t->n < t->nb)
		return 0;
	size_t nb = t->nb ? t->nb * 2 : 64;
	struct hnode **b = calloc(nb, sizeof(*b));
	if (!b)
		return t->nb ? 0 : -ENOMEM;
	for (size_t i = 0; i < t->nb; i++) {
		for (struct hnode *e = t->b[i], *next; e; e = next) {
			next = e->next;
			e->next = b[e->hash & (nb - 1)];
			b[e->hash & (nb - 1)] = e;
		}
	}
	free(t->b);
	t->b = b;
	t->nb = nb;
	return 0;
}

void htable_remove(struct htable *t, struct hnode *e)
{
	struct hnode **pp = &t->b[e->hash & (t->nb - 1)];
	while (*pp != e)
		pp = &(*pp)->next;
	htable_unlink(t, pp);
}

void htable_free(struct htable *t)
{
	free(t->b);
	t->b = NULL;
	t->nb = t->n = 0;
}
