/* patterns.c - other nodes' patterns, as they announce them (patterns.h). */
#include "patterns.h"

#include <string.h>

#include "clock.h"
#include "glob.h"

#define IDN 17 /* kind, origin, boot */

static void id_key(char *k, char kind, uint64_t origin, uint64_t boot)
{
	k[0] = kind;
	memcpy(k + 1, &origin, 8);
	memcpy(k + 9, &boot, 8);
}

bool rpats_list_ok(const char *list, size_t n)
{
	size_t run = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)list[i];
		if (c == ' ') {
			if (run == 0 || i + 1 == n) /* an empty pattern */
				return false;
			run = 0;
		} else if (c < ' ' || c == 0x7f || ++run > PAT_NAME_MAX) {
			return false;
		}
	}
	return true;
}

static bool fits(const struct rpats *r, size_t kn)
{
	return r->t.h.n < PAT_TABLE_MAX && r->t.bytes + table_entry_bytes(kn, 0) <= PAT_TABLE_BYTES;
}

/* Drop the announcer's patterns another version named (keyed: replaced whole). */
struct older {
	struct rpats *r;
	const char *id; /* origin + boot */
	uint64_t ver;
};

static void drop_older(struct table *t, struct tentry *e, void *arg)
{
	struct older *o = arg;
	if (e->key[0] != 'p' || e->a == o->ver || memcmp(e->key + 1, o->id, IDN - 1) != 0)
		return;
	o->r->nb[e->flags]--;
	table_del(t, e);
	o->r->npats--;
}

uint64_t rpats_clock(void) { return wall_us() / 1000; }

uint64_t rpats_next_version(uint64_t last, uint64_t clock)
{
	/* One more than the last while the clock has not moved on (monotonic),
	 * but never further ahead of the clock than a receiver takes: after a
	 * step back of more than the window (a clock set right after running
	 * ahead) every version would otherwise be refused for as long as the
	 * step. Restarting at the clock is refused as stale only until it
	 * passes the receivers' floors, which a taken version put at most the
	 * window past their clocks: at most PAT_FRESH_MS. */
	return wall_next(last, clock, PAT_FRESH_MS);
}

enum pat_ann rpats_announce(struct rpats *r, uint64_t origin, uint64_t boot, uint64_t ver, const char *list, size_t n,
                            bool keyed, uint64_t now, uint64_t wall)
{
	if (n > PAT_ANN_BYTES || !rpats_list_ok(list, n))
		return PAT_ANN_BAD;
	/* Keyed: a replay older than the window is refused here whatever the
	 * table still holds; one within it by the floor, which outlives it
	 * (PAT_FLOOR_MS: the window on both sides of the last version taken). */
	if (keyed && (ver > wall ? ver - wall : wall - ver) > PAT_FRESH_MS)
		return PAT_ANN_CLOCK;
	unsigned bucket = (unsigned)(origin % PAT_BUCKETS);
	uint64_t ttl = r->ttl ? r->ttl : PAT_TTL_MS, until = now + ttl;
	char key[IDN + PAT_NAME_MAX];
	id_key(key, 'o', origin, boot);
	struct tentry *o = table_get(&r->t, key, IDN);
	if (keyed && o && ver <= o->a)
		return PAT_ANN_STALE; /* a replay: an older set must not replace a newer one */
	if (!o && (!fits(r, IDN) || !(o = table_put(&r->t, key, IDN))))
		goto full;
	o->a = ver;
	o->b = keyed && PAT_FLOOR_MS > ttl ? now + PAT_FLOOR_MS : until;
	o->flags = bucket;
	key[0] = 'p';
	for (size_t i = 0; i < n;) {
		const char *p = list + i, *sp = memchr(p, ' ', n - i);
		size_t pn = sp ? (size_t)(sp - p) : n - i;
		i += pn + 1;
		memcpy(key + IDN, p, pn);
		struct tentry *e = table_get(&r->t, key, IDN + pn);
		if (!e) {
			if (!fits(r, IDN + pn) || !(e = table_put(&r->t, key, IDN + pn)))
				goto full;
			r->npats++;
			r->nb[bucket]++;
		}
		e->a = ver;
		e->b = until;
		e->flags = bucket;
	}
	if (keyed)
		table_each(&r->t, drop_older, &(struct older){r, key + 1, ver});
	return PAT_ANN_OK;
full:
	/* What is there stays (it still matches: more copies, not fewer); the
	 * bucket takes every channel until the announcer's set would expire. */
	r->all_until[bucket] = until;
	r->all_max = until;
	return PAT_ANN_FULL;
}

struct match {
	const char *ch;
	size_t cn;
	uint64_t now, mask;
	size_t work;
};

static void match_one(struct table *t, struct tentry *e, void *arg)
{
	struct match *m = arg;
	(void)t;
	if (e->key[0] != 'p' || e->b < m->now || (m->mask >> e->flags & 1) || m->work > PAT_MATCH_WORK)
		return;
	m->work += e->node.klen - IDN + m->cn;
	if (glob_match(e->key + IDN, e->node.klen - IDN, m->ch, m->cn))
		m->mask |= 1ull << e->flags;
}

uint64_t rpats_match(struct rpats *r, const char *ch, size_t cn, uint64_t now)
{
	struct match m = {ch, cn, now, 0, 0};
	if (!r->npats && r->all_max < now)
		return 0;
	for (unsigned k = 0; k < PAT_BUCKETS; k++)
		if (r->all_until[k] >= now)
			m.mask |= 1ull << k;
	if (r->npats && m.mask != ~0ull)
		table_each(&r->t, match_one, &m);
	if (m.work > PAT_MATCH_WORK) /* not all looked at: every bucket holding a pattern (expired ones too: a copy more) */
		for (unsigned k = 0; k < PAT_BUCKETS; k++)
			if (r->nb[k])
				m.mask |= 1ull << k;
	return m.mask;
}

static void extend_one(struct table *t, struct tentry *e, void *arg)
{
	(void)t;
	e->b += *(const uint64_t *)arg;
}

void rpats_extend(struct rpats *r, uint64_t ms)
{
	table_each(&r->t, extend_one, &ms);
	for (unsigned k = 0; k < PAT_BUCKETS; k++)
		if (r->all_until[k])
			r->all_until[k] += ms;
	if (r->all_max)
		r->all_max += ms;
}

struct sweep {
	struct rpats *r;
	uint64_t now;
};

static void expire_one(struct table *t, struct tentry *e, void *arg)
{
	struct sweep *s = arg;
	if (e->b >= s->now)
		return;
	if (e->key[0] == 'p') {
		s->r->npats--;
		s->r->nb[e->flags]--;
	}
	table_del(t, e);
}

void rpats_sweep(struct rpats *r, uint64_t now)
{
	if (r->t.h.n)
		table_each(&r->t, expire_one, &(struct sweep){r, now});
}

void rpats_clear(struct rpats *r)
{
	table_clear(&r->t);
	*r = (struct rpats){0};
}
