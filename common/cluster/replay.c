/* replay.c - stamps, the first-sight age rule and the eviction floors. */
#include "replay.h"

#include <string.h>

#include "clock.h"
#include "hash.h"
#include "stats.h"

uint64_t stamp_clock(void) { return wall_us(); }

uint64_t stamp_next(uint64_t last, uint64_t clock) { return wall_next(last, clock, STAMP_FRESH_US); }

enum first_sight first_sight_age(uint64_t stamp, uint64_t now)
{
	return (stamp > now ? stamp - now : now - stamp) > STAMP_FRESH_US ? FIRST_OLD : FIRST_OK;
}

#define FKEY 24

static void fkey(char *k, uint64_t origin, uint64_t boot, uint64_t sub)
{
	memcpy(k, &origin, 8);
	memcpy(k + 8, &boot, 8);
	memcpy(k + 16, &sub, 8);
}

uint64_t floor_sub(const char *pat, size_t pn) { return pat ? hash_bytes(pat, pn) | 1 : 0; }

/* A floor this far behind refuses nothing first_sight_age lets through. */
static bool expired(uint64_t floor, uint64_t now) { return floor < now && now - floor > STAMP_FRESH_US; }

void floors_expire(struct floors *f, uint64_t now)
{
	struct tentry *o;
	while ((o = table_oldest(&f->t)) && expired(o->a, now))
		table_del(&f->t, o);
}

void floors_raise(struct floors *f, uint64_t origin, uint64_t boot, uint64_t sub, uint64_t stamp, uint64_t now)
{
	if (expired(stamp, now))
		return;
	if (!f->t.h.n)
		f->t.lru = true; /* a zeroed struct floors is an empty one */
	floors_expire(f, now);
	char k[FKEY];
	fkey(k, origin, boot, sub);
	struct tentry *e = table_get(&f->t, k, FKEY);
	if (e) {
		if (stamp > e->a)
			e->a = stamp;
		table_touch(&f->t, e);
		return;
	}
	size_t need = table_entry_bytes(FKEY, 0);
	struct tentry *o;
	while ((f->t.h.n >= FLOOR_MAX || f->t.bytes + need > FLOOR_BYTES) && (o = table_oldest(&f->t))) {
		table_del(&f->t, o);
		stat_inc(STAT_cl_state_full_floors); /* its sender's forgotten streams are first sight again */
	}
	if ((e = table_put(&f->t, k, FKEY)))
		e->a = stamp;
	else
		stat_inc(STAT_oom_errors);
}

enum first_sight first_sight(struct floors *f, uint64_t origin, uint64_t boot, uint64_t sub, uint64_t stamp,
                             uint64_t now)
{
	if (first_sight_age(stamp, now) != FIRST_OK)
		return FIRST_OLD;
	if (!f->t.h.n)
		return FIRST_OK;
	char k[FKEY];
	fkey(k, origin, boot, sub);
	struct tentry *e = table_get(&f->t, k, FKEY);
	if (!e)
		return FIRST_OK;
	if (expired(e->a, now)) {
		table_del(&f->t, e);
		return FIRST_OK;
	}
	return stamp <= e->a ? FIRST_EVICTED : FIRST_OK;
}

void floors_clear(struct floors *f) { table_clear(&f->t); }

/* ---- off_lb: the learned lower bound of a sender's clock offset ---- */

struct off_lb {
	int64_t cur, prev; /* the highest sample of the entry's period (a), of the one before it (none: INT64_MIN) */
	uint64_t heard;    /* the caller's monotonic clock when it was last learned from: offsets_renew */
	uint64_t proved;   /* and when a clock answer proved it (0: never since it started): offsets_prove */
	uint64_t last_req; /* the stamp of its last clock request answered (0: none since it started): offsets_request */
};

static uint64_t period(uint64_t now) { return now / STAMP_FRESH_US; }

/* Learned from in this period or the one before (a clock that stepped
 * back behind the entry's period too: start it afresh). */
static bool current(const struct tentry *e, uint64_t p) { return e->a == p || e->a + 1 == p; }

static void offsets_expire(struct offsets *o, uint64_t now)
{
	struct tentry *e;
	while ((e = table_oldest(&o->t)) && !current(e, period(now)))
		table_del(&o->t, e);
}

void offsets_learn(struct offsets *o, uint64_t origin, uint64_t boot, uint64_t stamp, uint64_t now, uint64_t mono)
{
	if (first_sight_age(stamp, now) != FIRST_OK)
		return; /* also keeps the difference small */
	if (!o->t.h.n)
		o->t.lru = true;
	int64_t v = stamp >= now ? (int64_t)(stamp - now) : -(int64_t)(now - stamp);
	uint64_t p = period(now);
	char k[FKEY];
	fkey(k, origin, boot, 0); /* per sender: no subscription */
	struct tentry *e = table_get(&o->t, k, FKEY);
	if (e) {
		struct off_lb *l = table_val(e);
		if (e->a == p) {
			if (v > l->cur)
				l->cur = v;
		} else {
			if (e->a + 1 != p)
				l->proved = l->last_req = 0; /* started afresh: what it knew is gone */
			l->prev = e->a + 1 == p ? l->cur : INT64_MIN;
			l->cur = v;
			e->a = p;
		}
		l->heard = mono;
		table_touch(&o->t, e);
		return;
	}
	offsets_expire(o, now);
	size_t need = table_entry_bytes(FKEY, sizeof(struct off_lb));
	struct tentry *x;
	while ((o->t.h.n >= OFFSET_MAX || o->t.bytes + need > OFFSET_BYTES) && (x = table_oldest(&o->t))) {
		table_del(&o->t, x);
		stat_inc(STAT_cl_state_full_offsets); /* that sender is unknown again: the age rule only */
	}
	if (!(e = table_put_v(&o->t, k, FKEY, sizeof(struct off_lb)))) {
		stat_inc(STAT_oom_errors);
		return;
	}
	e->a = p;
	*(struct off_lb *)table_val(e) = (struct off_lb){v, INT64_MIN, mono, 0, 0};
}

bool offsets_get(struct offsets *o, uint64_t origin, uint64_t boot, uint64_t now, int64_t *lb)
{
	if (!o->t.h.n)
		return false;
	char k[FKEY];
	fkey(k, origin, boot, 0); /* per sender: no subscription */
	struct tentry *e = table_get(&o->t, k, FKEY);
	uint64_t p = period(now);
	if (!e || !current(e, p))
		return false;
	const struct off_lb *l = table_val(e);
	*lb = e->a == p && l->prev > l->cur ? l->prev : l->cur;
	return true;
}

static struct off_lb *offsets_cur(struct offsets *o, uint64_t origin, uint64_t boot, uint64_t now)
{
	if (!o->t.h.n)
		return NULL;
	char k[FKEY];
	fkey(k, origin, boot, 0);
	struct tentry *e = table_get(&o->t, k, FKEY);
	return e && current(e, period(now)) ? table_val(e) : NULL;
}

static bool proof_good(const struct off_lb *l, uint64_t mono)
{
	return l->proved && mono >= l->proved && mono - l->proved < PROOF_KEEP_MS;
}

bool offsets_proved(struct offsets *o, uint64_t origin, uint64_t boot, uint64_t now, uint64_t mono)
{
	const struct off_lb *l = offsets_cur(o, origin, boot, now);
	return l && proof_good(l, mono);
}

bool offsets_prove(struct offsets *o, uint64_t origin, uint64_t boot, uint64_t now, uint64_t mono)
{
	struct off_lb *l = offsets_cur(o, origin, boot, now);
	if (l)
		l->proved = mono ? mono : 1;
	return l != NULL;
}

bool offsets_request(struct offsets *o, uint64_t origin, uint64_t boot, uint64_t stamp, uint64_t now)
{
	struct off_lb *l = offsets_cur(o, origin, boot, now);
	if (!l || stamp <= l->last_req)
		return false;
	l->last_req = stamp;
	return true;
}

struct renew {
	uint64_t now, mono;
	bool due;
};

static void renew_one(struct table *t, struct tentry *e, void *arg)
{
	struct renew *r = arg;
	const struct off_lb *l = table_val(e);
	(void)t;
	if (!r->due && current(e, period(r->now)) && proof_good(l, r->mono) &&
	    r->mono - l->proved >= PROOF_KEEP_MS - PROOF_RENEW_MS && r->mono >= l->heard &&
	    r->mono - l->heard <= PROOF_RENEW_MS)
		r->due = true;
}

bool offsets_renew(struct offsets *o, uint64_t now, uint64_t mono)
{
	struct renew r = {now, mono, false};
	if (o->t.h.n)
		table_each(&o->t, renew_one, &r);
	return r.due;
}

enum first_sight first_sight_sub(struct offsets *o, uint64_t origin, uint64_t boot, uint64_t stamp, uint64_t sub,
                                 uint64_t now)
{
	int64_t lb;
	if (!sub || !offsets_get(o, origin, boot, now, &lb))
		return FIRST_OK;
	/* All three within a few windows of each other (the age rule, and sub
	 * is a recent clock reading): no overflow in signed arithmetic. */
	int64_t least = (int64_t)sub + lb - (int64_t)STAMP_SLACK_US;
	return (int64_t)stamp < least ? FIRST_BEFORE_SUB : FIRST_OK;
}

void offsets_clear(struct offsets *o) { table_clear(&o->t); }
