/* warmup.c - the queue of envelopes held until their sender's clock is
 * proved (warmup.h). */
#include "warmup.h"

#include <stdlib.h>
#include <string.h>

void warmup_init(struct warmup *w, size_t max)
{
	*w = (struct warmup){.max = max > HOLD_BYTES ? max : HOLD_BYTES};
	w->tail = &w->head;
}

void warmup_start(struct warmup *w, uint64_t now) { w->up_since = now ? now : 1; }

void warmup_tick(struct warmup *w, uint64_t now, bool up)
{
	if (!up)
		w->up_since = 0;
	else if (!w->up_since)
		w->up_since = now ? now : 1;
}

size_t warmup_cost(size_t pn, size_t cn, size_t n) { return sizeof(struct held_env) + pn + cn + n; }

bool warmup_fits(const struct warmup *w, size_t bytes) { return w->bytes + bytes <= w->max; }

bool warmup_hold(struct warmup *w, const struct envelope *env, bool inbox, const char *pat, size_t pn,
                 const char *ch, size_t cn, uint64_t now, uint64_t wall, uint64_t sub)
{
	size_t bytes = warmup_cost(pn, cn, env->n);
	struct held_env *h = malloc(bytes);
	if (!h)
		return false;
	h->next = NULL;
	h->bytes = bytes;
	h->at = now;
	h->wall = wall;
	h->sub = sub;
	h->env = *env;
	h->inbox = inbox;
	char *m = h->mem;
	h->pat = pat ? memcpy(m, pat, pn) : NULL;
	h->pn = pn;
	m += pn;
	h->ch = memcpy(m, ch, cn);
	h->cn = cn;
	m += cn;
	if (env->n)
		memcpy(m, env->data, env->n);
	h->env.data = m;
	*w->tail = h;
	w->tail = &h->next;
	w->bytes += bytes;
	return true;
}

bool warmup_due(const struct warmup *w, uint64_t now)
{
	if (!w->head || !w->up_since)
		return false;
	uint64_t from = w->head->at > w->up_since ? w->head->at : w->up_since;
	return now >= from && now - from >= WARMUP_MS;
}

struct held_env *warmup_take(struct warmup *w)
{
	struct held_env *h = w->head;
	if (!h)
		return NULL;
	if (!(w->head = h->next))
		w->tail = &w->head;
	w->bytes -= h->bytes;
	h->next = NULL;
	return h;
}

struct held_env *warmup_take_of(struct warmup *w, uint64_t origin, uint64_t boot)
{
	struct held_env *out = NULL, **ot = &out, **pp = &w->head;
	while (*pp) { /* one pass: a full hold is tens of thousands */
		struct held_env *h = *pp;
		if (h->env.origin != origin || h->env.boot != boot) {
			pp = &h->next;
			continue;
		}
		*pp = h->next;
		w->bytes -= h->bytes;
		h->next = NULL;
		*ot = h;
		ot = &h->next;
	}
	w->tail = pp;
	return out;
}

void warmup_clear(struct warmup *w)
{
	struct held_env *h;
	while ((h = warmup_take(w)))
		free(h);
}
