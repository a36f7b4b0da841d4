/* warmup.c - the queue of envelopes held until their sender's clock is
 * proved (warmup.h): one list in arrival order, and one per sender (its
 * bytes, for the bound: the largest holder gives way). */
#include "warmup.h"

#include <stdlib.h>
#include <string.h>

/* A sender's part of the hold (the value of its entry in w->senders). */
struct held_sender {
	size_t bytes;
	struct held_env *head, *tail; /* by snext, oldest first */
	uint64_t asked;               /* its clock last asked for (ms, monotonic; 0: not yet) */
};

#define SKEY 16

static void skey(char *k, uint64_t origin, uint64_t boot)
{
	memcpy(k, &origin, 8);
	memcpy(k + 8, &boot, 8);
}

void warmup_init(struct warmup *w, size_t max)
{
	*w = (struct warmup){.max = max > HOLD_BYTES ? max : HOLD_BYTES};
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

/* With a sender's entry, in case it is a new sender's. */
bool warmup_fits(const struct warmup *w, size_t bytes)
{
	return w->bytes + w->senders.bytes + bytes + table_entry_bytes(SKEY, sizeof(struct held_sender)) <= w->max;
}

bool warmup_hold(struct warmup *w, const struct envelope *env, bool inbox, const char *pat, size_t pn,
                 const char *ch, size_t cn, uint64_t now, uint64_t wall, uint64_t sub)
{
	char k[SKEY];
	skey(k, env->origin, env->boot);
	struct tentry *se = table_get(&w->senders, k, SKEY);
	if (!se && !(se = table_put_v(&w->senders, k, SKEY, sizeof(struct held_sender))))
		return false;
	size_t bytes = warmup_cost(pn, cn, env->n);
	struct held_env *h = malloc(bytes);
	struct held_sender *s = table_val(se);
	if (!h) {
		if (!s->head)
			table_del(&w->senders, se);
		return false;
	}
	*h = (struct held_env){.bytes = bytes, .at = now, .wall = wall, .sub = sub, .env = *env, .inbox = inbox,
	                       .pn = pn, .cn = cn, .sender = se};
	char *m = h->mem;
	h->pat = pat ? memcpy(m, pat, pn) : NULL;
	m += pn;
	h->ch = memcpy(m, ch, cn);
	m += cn;
	if (env->n)
		memcpy(m, env->data, env->n);
	h->env.data = m;
	h->prev = w->tail;
	if (w->tail)
		w->tail->next = h;
	else
		w->head = h;
	w->tail = h;
	if (s->tail)
		s->tail->snext = h;
	else
		s->head = h;
	s->tail = h;
	s->bytes += bytes;
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

/* Take the oldest of its sender h (the head of its sender's list) off both
 * lists. */
static struct held_env *take(struct warmup *w, struct held_env *h)
{
	struct held_sender *s = table_val(h->sender);
	if (h->prev)
		h->prev->next = h->next;
	else
		w->head = h->next;
	if (h->next)
		h->next->prev = h->prev;
	else
		w->tail = h->prev;
	s->head = h->snext;
	if (!s->head)
		s->tail = NULL;
	s->bytes -= h->bytes;
	w->bytes -= h->bytes;
	if (!s->head)
		table_del(&w->senders, h->sender);
	h->next = h->prev = h->snext = NULL;
	h->sender = NULL;
	return h;
}

struct held_env *warmup_take(struct warmup *w) { return w->head ? take(w, w->head) : NULL; }

struct held_env *warmup_take_of(struct warmup *w, uint64_t origin, uint64_t boot)
{
	char k[SKEY];
	skey(k, origin, boot);
	struct tentry *se = w->senders.h.n ? table_get(&w->senders, k, SKEY) : NULL;
	struct held_env *out = NULL, **ot = &out;
	while (se) { /* the sender's own list: the others' are not walked */
		struct held_sender *s = table_val(se);
		bool last = s->head == s->tail;
		struct held_env *h = take(w, s->head); /* frees se after the last */
		*ot = h;
		ot = &h->next;
		if (last)
			break;
	}
	return out;
}

struct largest {
	struct tentry *e;
	size_t bytes;
};

static void largest_one(struct table *t, struct tentry *e, void *arg)
{
	struct largest *l = arg;
	const struct held_sender *s = table_val(e);
	(void)t;
	if (s->bytes > l->bytes)
		*l = (struct largest){e, s->bytes};
}

struct held_env *warmup_take_largest(struct warmup *w)
{
	struct largest l = {0};
	if (w->senders.h.n)
		table_each(&w->senders, largest_one, &l);
	return l.e ? take(w, ((struct held_sender *)table_val(l.e))->head) : NULL;
}

bool warmup_ask_first(struct warmup *w, uint64_t origin, uint64_t boot, uint64_t now)
{
	char k[SKEY];
	skey(k, origin, boot);
	struct tentry *se = w->senders.h.n ? table_get(&w->senders, k, SKEY) : NULL;
	struct held_sender *s = se ? table_val(se) : NULL;
	if (!s || s->asked)
		return false;
	s->asked = now ? now : 1;
	return true;
}

struct asks {
	uint64_t now, *out;
	unsigned n, max;
	bool cut;      /* one due was left for the next tick: from is its hash */
	uint64_t from;
};

static void ask_one(struct table *t, struct tentry *e, void *arg)
{
	struct asks *a = arg;
	struct held_sender *s = table_val(e);
	(void)t;
	if (s->asked && a->now >= s->asked && a->now - s->asked < WARMUP_ASK_MS)
		return;
	if (a->n == a->max) {
		if (!a->cut) { /* the next tick starts here: those behind get their turn */
			a->cut = true;
			a->from = e->node.hash;
		}
		return;
	}
	uint64_t origin;
	memcpy(&origin, e->key, 8);
	a->out[a->n++] = origin;
	s->asked = a->now ? a->now : 1;
}

unsigned warmup_asks(struct warmup *w, uint64_t now, uint64_t *out, unsigned max)
{
	struct asks a = {now, out, 0, max, false, 0};
	if (w->senders.h.n)
		table_each_from(&w->senders, w->ask_from, ask_one, &a);
	if (a.cut)
		w->ask_from = a.from;
	return a.n;
}

void warmup_clear(struct warmup *w)
{
	struct held_env *h;
	while ((h = warmup_take(w)))
		free(h);
	table_clear(&w->senders);
}
