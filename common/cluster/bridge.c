/* bridge.c - glue between the exchange and the engine link.
 *
 * Three tables (table.h), each bounded in entries and in bytes:
 *   held  ('c'|'p' + name): what local clients hold, whether the engine has
 *         it, and a dirty list of entries whose engine side must change;
 *         guarded by b->lock. An entry lives only while a client holds the
 *         name or the engine has it: while the link is down, a name let go
 *         is forgotten at once. Beyond its bound a new name is not
 *         subscribed on the engine (logged, counted). The node's own names
 *         (a space in them: no client's) are held for good: with a key the
 *         beacon channel (beacon.h), over redis-cluster:// the control
 *         channel and its inbox (patterns.h).
 *   sent  (channel): the next sequence number per channel we publish on;
 *         guarded by b->lock. No entry is made while the link is down. When
 *         full it starts again with a new generation (receivers then start
 *         counting afresh).
 *   seen  (origin + boot + stream): the sequence mark and window received
 *         per sending node and engine subscription (struct mark), and in
 *         the entry's a (keyed) the latest stamp the stream took; link
 *         thread only. When full the streams seen least recently are
 *         forgotten (counted), as few as make room; keyed, what they had
 *         taken raises their sender's floor (replay.h).
 *   floors (origin + boot + subscription, keyed): the floors of replay.h,
 *         bounded in entries and bytes (FLOOR_MAX, FLOOR_BYTES); link thread
 *         only.
 *   offsets (origin + boot, keyed): each sender's off_lb (replay.h), learned
 *         from every envelope whose tag checks (delivered or refused) and
 *         from the senders' clock beacons (beacon.h), bounded likewise
 *         (OFFSET_MAX, OFFSET_BYTES); link thread only. A held entry's a is the clock
 *         (stamp_clock) when its engine subscription was last queued, an
 *         lpat entry's when the pattern was added (not when it was let
 *         go and added again before an announcement said it was gone): a
 *         first envelope on it stamped before that is a replay (replay.h:
 *         before_subscribe).
 * and, keyed, the hold (warmup.h): envelopes of senders whose clock is
 * not proved (by an answer to a clock request: beacon.h), bounded in bytes
 * (HOLD_BYTES); link thread only.
 * and, over redis-cluster://, for patterns across nodes (patterns.h):
 *   lpat  this node's patterns, announced (one per 'p' entry of held),
 *         and those let go since the last announcement sent (LP_GONE).
 *   rp    the other nodes' announced patterns, bounded in entries and
 *         bytes (patterns.c); guarded by b->lock.
 */
#include "bridge.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "beacon.h"
#include "buf.h"
#include "config.h"
#include "envelope.h"
#include "exchange.h"
#include "glob.h"
#include "held.h"
#include "link.h"
#include "log.h"
#include "mark.h"
#include "link_host.h"
#include "metrics_src.h"
#include "options.h"
#include "owner.h"
#include "patterns.h"
#include "hash.h"
#include "replay.h"
#include "shards.h"
#include "sign.h"
#include "slot.h"
#include "clock.h"
#include "stats.h"
#include "table.h"
#include "tls.h"
#include "url.h"
#include "warmup.h"

#define SENT_MAX 65536      /* channels with a sequence number */
#define SENT_BYTES (4u << 20)
#define SEEN_MAX 32768      /* (origin, stream) pairs tracked */
#define SEEN_BYTES (8u << 20)
#define HELD_BYTES (64u << 20) /* names subscribed on the engine, with their keys */
#define SUBS_PER_COMMAND 64 /* names in one (P)SUBSCRIBE on resubscribing */
#define QUEUE_MIN (8u << 20)
/* Local deliveries one read pass of the link makes before the loop writes
 * them (link_limits.pass_work): fewer than one 64 KiB read of publishes
 * makes on a fan-out of 100, so that such a fan-out is written after each
 * read (bench/RESULTS.md, cluster-1x100). */
#define LINK_PASS_DELIVERIES 32768ul

/* redis-cluster:// patterns (patterns.h): the control channel and the
 * inboxes, after the prefix. A chat name has no space, so no client can
 * hold or publish on these. */
#define CTL_NAME " ctl"
#define CTL_LEN 4
#define INBOX_NAME " pin%u"
#define ANNOUNCE_BURST 10   /* changes announced at once per tick (1 s); more wait for the next tick */
#define ANNOUNCE_EMPTY 3     /* empty announcements after the last pattern went (keyed: they clear it) */

/* held entry flags (H_WANT, H_ENGINE, H_DIRTY): held.h */
/* sent entries: b = markers still to send for this channel */
#define MARKERS 3 /* one to three ticks after the last publish: without a key a far one needs two to count */
/* lpat entry flags */
#define LP_GONE 1u /* let go here, no announcement without it sent yet (hook_held) */

struct bridge {
	pthread_mutex_t lock;
	struct exchange *ex;
	const struct config *cfg;
	struct cluster_url url;
	const char *prefix;
	size_t plen;
	uint64_t origin, boot;
	unsigned long delivered; /* local deliveries of the engine's messages (the link's loop only) */
	/* under lock */
	struct table held, sent;
	struct tentry *dirty;
	uint64_t gen;
	struct buf pubq;    /* formatted PUBLISH commands for the link's loop */
	size_t pubq_msgs;
	size_t backlog;     /* the link's unwritten PUBLISH bytes, as of its last turn */
	size_t limit;       /* pubq + backlog at most this */
	uint64_t markers_from; /* the sent table's walk for markers starts at this hash's bucket */
	uint64_t stamp;     /* keyed: the last envelope's stamp (replay.h: stamp_next) */
	struct beacon beacon; /* keyed: when this node's clock beacon is due (beacon.h) */
	bool up;
	/* The link reads slower than the engine queues for it (link_behind):
	 * publishers here are held (owner_pressure_hold; hook_published), on
	 * every model and loop, so that this node's own publishes, which the
	 * engine sends back to it, do not outrun the link's reads until the
	 * engine drops it at its output-buffer limit. Set on the link's loop,
	 * read by publishers. */
	atomic_bool behind;
	struct sign_key *key; /* --cluster-key-file: tag and check envelopes (read-only once started) */
	/* link's loop only */
	struct table seen;
	struct floors floors;
	struct offsets offsets;
	struct warmup warm;    /* keyed: envelopes of senders whose clock is not proved (warmup.h) */
	unsigned beacon_slot;  /* redis-cluster://, keyed: the beacon channel's slot */
	uint64_t sub_now;      /* under lock: the clock when the subscription changes being sent were queued */
	struct link *link;     /* redis:// (one engine), or */
	struct shards *shards; /* redis-cluster:// (sharded pub/sub: shards.h) */
	bool ever_up;
	/* redis-cluster:// patterns (patterns.h), under lock */
	struct rpats rp;          /* other nodes' */
	struct table lpat;        /* this node's (key: the pattern), announced */
	bool pat_changed;         /* announce at the next turn */
	unsigned ann_ticks, ann_left, ann_burst;
	uint64_t ann_ver;
	size_t ann_max;           /* bytes of pattern list in one announcement */
	uint64_t rp_frozen;       /* a shard down since (ms): the remote patterns do not expire meanwhile */
	unsigned bucket;          /* our inbox: origin % PAT_BUCKETS */
	uint16_t inbox_slot[PAT_BUCKETS];
	/* the host loop (link_host.h: loop 0 of the runtime) */
	struct tls_ctx *tls;
	struct cl_host *host;
	/* for /metrics (any thread) */
	atomic_bool m_up;
	atomic_llong m_down_since, m_down_ms;
	atomic_long m_chans, m_pats;
	atomic_int m_shards, m_shards_up;
};

/* Sharded: a queued SPUBLISH is a record [slot u16][length u32][command]. */
#define REC_HEAD 6

/* ---- formatting commands ---- */

/* "<c><v>\r\n" (an array or bulk header) to out. */
static int put_head(struct buf *out, char c, uint64_t v)
{
	char h[24];
	h[0] = c;
	size_t n = 1 + envelope_dec(h + 1, v);
	h[n++] = '\r';
	h[n++] = '\n';
	return buf_append(out, h, n);
}

/* Append the command argv[0..argc) to out, in RESP as hiredis's
 * redisFormatCommandArgv writes it (without its snprintf and its copy). 0 or
 * -ENOMEM, and then out is as it was. */
static int put_cmd(struct buf *out, int argc, const char **argv, const size_t *lens)
{
	size_t at = buf_used(out);
	int rc = put_head(out, '*', (uint64_t)argc);
	for (int i = 0; i < argc && rc == 0; i++)
		if ((rc = put_head(out, '$', lens[i])) == 0 && (rc = buf_append(out, argv[i], lens[i])) == 0)
			rc = buf_append(out, "\r\n", 2);
	if (rc < 0)
		out->len = out->off + at;
	return rc < 0 ? -ENOMEM : 0;
}

/* The engine's name for a held entry ('c'|'p' + name): prefix + name. */
static char *engine_name(const struct bridge *b, const struct tentry *e, size_t *len)
{
	*len = b->plen + e->node.klen - 1;
	char *s = malloc(*len + 1);
	if (s) {
		memcpy(s, b->prefix, b->plen);
		memcpy(s + b->plen, e->key + 1, e->node.klen - 1);
		s[*len] = '\0';
	}
	return s;
}

/* (P)(UN)SUBSCRIBE for up to SUBS_PER_COMMAND entries. */
static int put_subs(struct bridge *b, struct buf *out, const char *verb, struct tentry **v, int n)
{
	const char *argv[SUBS_PER_COMMAND + 1];
	size_t lens[SUBS_PER_COMMAND + 1];
	int rc = 0, k;
	argv[0] = verb;
	lens[0] = strlen(verb);
	for (k = 0; k < n; k++)
		if (!(argv[k + 1] = engine_name(b, v[k], &lens[k + 1])))
			break;
	if (k == n)
		rc = put_cmd(out, n + 1, argv, lens);
	else
		rc = -ENOMEM;
	for (int i = 0; i < k; i++)
		free((char *)argv[i + 1]);
	return rc;
}

/* ---- what was seen: gaps, duplicates ---- */

/* Forget the sequence numbers seen on one engine subscription (a fresh
 * SUBSCRIBE must not count what came while we were not subscribed). */
struct purge {
	const struct tentry *held;
	bool keyed; /* keep the marks (fresh): with a key, what came before is a replay (mark.c) */
};

static void purge_one(struct table *t, struct tentry *e, void *arg)
{
	const struct purge *pu = arg;
	const struct tentry *h = pu->held;
	const char *k = e->key + 16;
	size_t kn = e->node.klen - 16;
	if (kn < h->node.klen || memcmp(k, h->key, h->node.klen) != 0)
		return;
	if (!(h->key[0] == 'c' ? kn == h->node.klen : k[h->node.klen] == '\0'))
		return;
	if (pu->keyed)
		((struct mark *)table_val(e))->fresh = true;
	else
		table_del(t, e);
}

static void purge_seen(struct bridge *b, const struct tentry *held)
{
	if (b->seen.h.n)
		table_each(&b->seen, purge_one, &(struct purge){held, b->key != NULL});
}

/* A stream's first envelope refused as a replay (keyed): counted (messages;
 * markers are not counted as messages anywhere), and one off the clock
 * logged, since that is also what clocks that disagree look like. */
static void refused(const struct envelope *env, enum first_sight fs, uint64_t now)
{
	if (!env->marker)
		stat_inc(fs == FIRST_OLD        ? STAT_cl_replays_old
		         : fs == FIRST_EVICTED  ? STAT_cl_replays_evicted
		         : fs == FIRST_UNPROVED ? STAT_cl_replays_unproved
		         : fs == FIRST_HOLD_FULL ? STAT_cl_replays_hold_full
		                                : STAT_cl_replays_before_sub);
	if (fs == FIRST_OLD) {
		static struct log_rate lr = LOG_RATE_INIT;
		log_rated(&lr, LOG_WARN,
		          "cluster: an envelope of node %016llx is %.1f s off this node's clock: refused (a replay, or the "
		          "clocks disagree: with --cluster-key-file they must agree within %d s)",
		          (unsigned long long)env->origin, ((double)env->stamp - (double)now) / 1e6, PAT_FRESH_MS / 1000);
	}
}

/* The floor's subscription (replay.h floor_sub) of a stream: over
 * redis-cluster:// a channel's is its slot's (even, not 0), not 0: each
 * shard is a connection of its own, so a sender's envelopes on channels of
 * two shards come in no order, and a floor raised by its later streams on
 * a fast shard refused its genuine earlier first message on a slow one.
 * One slot's come from one owner at a time, in order. */
static uint64_t stream_sub(const struct bridge *b, const char *pat, size_t pn, const char *ch, size_t cn)
{
	if (pat || !b->shards)
		return floor_sub(pat, pn);
	char small[512];
	char *name = b->plen + cn <= sizeof(small) ? small : malloc(b->plen + cn);
	if (!name)
		return 0; /* no memory: the one floor of every channel (a genuine first sight may be refused, counted) */
	memcpy(name, b->prefix, b->plen);
	memcpy(name + b->plen, ch, cn);
	uint64_t sub = ((uint64_t)cluster_slot(name, b->plen + cn) + 1) << 1;
	if (name != small)
		free(name);
	return sub;
}

/* No memory for a stream's key or its mark in `seen` (counted): whether to
 * deliver its envelope all the same. A marker, never: it is not a message
 * (it reached the subscribers as an empty one, counted as received), and
 * what it would have counted is counted by the stream's next number.
 * Without a key, a message yes: nothing here may let a single forged
 * envelope cost a genuine message (mark.c), and a mark that cannot be read
 * or made says nothing either way (a duplicate may then pass, as past the
 * window). With a key, no: without the mark a replay cannot be told from
 * the genuine envelope, and one who can push this node short of memory (or
 * a node under memory pressure) would see every replay of the moment
 * delivered (refused and counted as reason="no_memory"). */
static bool track_no_memory(const struct bridge *b, const struct envelope *env)
{
	stat_inc(STAT_oom_errors);
	if (env->marker)
		return false;
	if (!b->key)
		return true;
	stat_inc(STAT_cl_replays_no_memory);
	return false;
}

/* With a key, whether the envelope's tag (over head's first signed_n bytes,
 * channel [ch, ch+cn)) is right: a wrong or missing one is counted as an
 * authentication failure. One that could not be checked (no memory for
 * the HMAC, sign_check) is not: it was counted as forged, a genuine
 * envelope dropped for this node's want of memory. It cannot be taken
 * unchecked either, so it is refused as track_no_memory refuses one. */
static bool checked(const struct bridge *b, const struct envelope *env, const char *head, const char *ch, size_t cn)
{
	if (!b->key)
		return true;
	int rc = env->tagged ? sign_check(b->key, head, env->signed_n, ch, cn, env->data, env->n, env->tag) : -EBADMSG;
	if (rc == -ENOMEM)
		return track_no_memory(b, env);
	if (rc < 0)
		stat_inc(STAT_cl_auth_failures);
	return rc == 0;
}

/* false: a duplicate or a replay, drop it. Counts gaps. sub: when the
 * subscription it came on was made (0: not known); now: the clock as it is
 * judged (stamp_clock, read once an envelope: learn(), or once a release of
 * the hold; 0 without a key); arrived: when it came, if it was
 * held since (warmup.h; else 0: now): its age is reckoned then (a genuine
 * one must not grow old in the hold), its sender's off_lb now. */
static bool track(struct bridge *b, const struct envelope *env, const char *pat, size_t pn, const char *ch, size_t cn,
                  uint64_t sub, uint64_t now, uint64_t arrived)
{
	char small[512];
	size_t n = 18 + pn + cn;
	char *key = n <= sizeof(small) ? small : malloc(n);
	if (!key)
		return track_no_memory(b, env);
	memcpy(key, &env->origin, 8);
	memcpy(key + 8, &env->boot, 8);
	n = 16;
	key[n++] = pat ? 'p' : 'c';
	if (pat) {
		memcpy(key + n, pat, pn);
		n += pn;
		key[n++] = '\0';
	}
	memcpy(key + n, ch, cn);
	n += cn;
	/* At its bound the streams seen least recently are forgotten, as few as
	 * make room (each at most once: O(1) a stream, amortized), not the
	 * whole table: with a key, a cleared table took every replay of an
	 * active stream as first sight. With a key a stream seen first is
	 * judged by its stamp (replay.h), and a forgotten one leaves its
	 * sender's floor. */
	struct tentry *e = table_get(&b->seen, key, n);
	uint64_t at = arrived ? arrived : now;
	enum first_sight fs = FIRST_OK;
	if (e) {
		table_touch(&b->seen, e);
		/* Ahead of the mark (a replay behind it is the mark's): published
		 * before the subscription it came on is a replay too, e.g. one sent
		 * while the link was down or the channel was left (fresh: kept from an
		 * earlier subscription, so judged like a first sight but for floors). */
		const struct mark *m = table_val(e);
		if (b->key && mark_ahead(m, env)) {
			fs = m->fresh ? first_sight_age(env->stamp, at) : FIRST_OK;
			if (fs == FIRST_OK)
				fs = first_sight_sub(&b->offsets, env->origin, env->boot, env->stamp, sub, now);
		}
	} else if (b->key) {
		fs = first_sight(&b->floors, env->origin, env->boot, stream_sub(b, pat, pn, ch, cn), env->stamp, at);
		if (fs == FIRST_OK)
			fs = first_sight_sub(&b->offsets, env->origin, env->boot, env->stamp, sub, now);
	}
	if (fs != FIRST_OK) {
		if (key != small)
			free(key);
		refused(env, fs, at);
		return false;
	}
	if (!e) {
		size_t need = table_entry_bytes(n, sizeof(struct mark)), gone = 0;
		struct tentry *o;
		while ((b->seen.h.n >= SEEN_MAX || b->seen.bytes + need > SEEN_BYTES) && (o = table_oldest(&b->seen))) {
			if (b->key) { /* the key: origin, boot, 'c' channel | 'p' pattern '\0' channel */
				uint64_t origin, boot;
				memcpy(&origin, o->key, 8);
				memcpy(&boot, o->key + 8, 8);
				const char *op = o->key + 17, *z = o->key[16] == 'p' ? memchr(op, '\0', o->node.klen - 17) : NULL;
				uint64_t osub = z ? floor_sub(op, (size_t)(z - op))
				                  : stream_sub(b, NULL, 0, op, o->node.klen - 17);
				floors_raise(&b->floors, origin, boot, osub, o->a, now);
			}
			table_del(&b->seen, o);
			gone++;
		}
		if (gone) {
			stat_inc(STAT_cl_state_full_seen);
			stat_add(STAT_cl_seen_evicted, gone);
		}
		e = table_put_v(&b->seen, key, n, sizeof(struct mark));
	}
	if (key != small)
		free(key);
	if (!e)
		return track_no_memory(b, env);
	if (env->stamp > e->a)
		e->a = env->stamp; /* the latest stamp taken, for a floor (an older one is a replay the mark drops) */
	return mark_arrive(table_val(e), env, b->key != NULL);
}

/* ---- the exchange's hooks (any thread) ---- */

static void hook_held(void *arg, bool pattern, const char *name, size_t n, bool on)
{
	struct bridge *b = arg;
	char small[256];
	char *key = n + 1 <= sizeof(small) ? small : malloc(n + 1);
	if (!key) {
		log_error("cluster: out of memory: %s %.*s not changed on the engine", pattern ? "pattern" : "channel",
		          (int)(n > 200 ? 200 : n), name);
		return;
	}
	key[0] = pattern ? 'p' : 'c';
	memcpy(key + 1, name, n);
	bool wake = false, full = false;
	pthread_mutex_lock(&b->lock);
	struct tentry *e = table_get(&b->held, key, n + 1);
	if (on && !e) {
		if (b->held.bytes + table_entry_bytes(n + 1, 0) > HELD_BYTES)
			full = true;
		else
			e = table_put(&b->held, key, n + 1);
	}
	if (e) {
		e->flags = on ? e->flags | H_WANT : e->flags & ~H_WANT;
		if (!b->up) {
			/* Down: on_up subscribes whatever is held then, so there is
			 * nothing to tell the engine and nothing to keep of a name let go. */
			if (!(e->flags & (H_WANT | H_ENGINE | H_DIRTY)))
				table_del(&b->held, e);
		} else if (!(e->flags & H_DIRTY)) {
			e->flags |= H_DIRTY;
			e->dirty = b->dirty;
			b->dirty = e;
			wake = true;
		}
	}
	if (b->shards && pattern) { /* the set this node announces (patterns.h) */
		struct tentry *l = table_get(&b->lpat, name, n);
		if (on && e && l && (l->flags & LP_GONE)) {
			l->flags &= ~LP_GONE; /* back before its going was announced: its copies never stopped */
		} else if (on && e && !l) {
			if ((l = table_put(&b->lpat, name, n)))
				l->a = stamp_clock(); /* before it is announced: no copy for it was sent before that */
			else
				stat_inc(STAT_oom_errors); /* not announced: its remote messages do not come */
		} else if (!on && l && !(l->flags & LP_GONE)) {
			/* Kept, with its time, until an announcement that says it is
			 * gone is sent (bounded: past that, one let go goes at once): held
			 * again before that (a PUNSUBSCRIBE and PSUBSCRIBE read at
			 * once), the other nodes never stopped sending its copies, and
			 * one sent before the PSUBSCRIBE and delayed on its shard was
			 * refused as before_subscribe against a new time (over redis://
			 * nothing is sent to the engine then, and the subscription's
			 * time stays too). */
			if (b->up && b->lpat.bytes <= HELD_BYTES)
				l->flags |= LP_GONE;
			else
				table_del(&b->lpat, l);
		}
		b->pat_changed = true;
		b->ann_left = ANNOUNCE_EMPTY;
		wake = wake || b->up;
	}
	pthread_mutex_unlock(&b->lock);
	if (full) {
		stat_inc(STAT_cl_state_full);
		log_error("cluster: %u MiB of names held already: %s %.*s not subscribed on the engine (local delivery works)",
		          HELD_BYTES >> 20, pattern ? "pattern" : "channel", (int)(n > 200 ? 200 : n), name);
	} else if (on && !e) {
		log_error("cluster: out of memory: %s %.*s not subscribed on the engine", pattern ? "pattern" : "channel",
		          (int)(n > 200 ? 200 : n), name);
	}
	if (key != small)
		free(key);
	if (wake)
		cl_wake(cl_host_loop(b->host));
}

/* The stamp of the next envelope sent (under b->lock: every envelope is
 * made under it, on any thread, so one counter serves them all and the
 * stamps follow the order they are queued in): 0 (none) without a key. */
static uint64_t ctl_stamp(struct bridge *b)
{
	if (!b->key)
		return 0;
	return b->stamp = stamp_next(b->stamp, stamp_clock());
}

/* A message's or a marker's: one a client could be given, so this node's
 * clock beacons go on for a while (beacon.h). */
static uint64_t next_stamp(struct bridge *b) { return b->beacon.active = ctl_stamp(b); }

/* The next sequence number for a publish on ch (under b->lock, link up). */
static uint64_t next_seq(struct bridge *b, const char *ch, size_t cn, uint64_t *gen)
{
	if ((b->sent.h.n >= SENT_MAX || b->sent.bytes + table_entry_bytes(cn, 0) > SENT_BYTES) &&
	    !table_get(&b->sent, ch, cn)) {
		stat_inc(STAT_cl_state_full_sent);
		table_clear(&b->sent);
		b->gen++;
	}
	*gen = b->gen;
	struct tentry *e = table_put(&b->sent, ch, cn);
	if (!e) { /* no memory to remember it: a new generation says "start afresh" */
		b->gen++;
		return 1;
	}
	e->b = MARKERS;
	return ++e->a;
}

/* Sharded, under b->lock: one copy of a publish on ch (the envelope head hn
 * bytes, the data n) to each inbox with a remote pattern matching ch
 * (patterns.h): "<ch> <envelope>", SPUBLISHed after the channel's copy. */
static void queue_copies(struct bridge *b, const char *ch, size_t cn, const char *head, size_t hn, const char *data,
                         size_t n)
{
	uint64_t mask = rpats_match(&b->rp, ch, cn, b->rp_frozen ? b->rp_frozen : (uint64_t)now_ms());
	if (!mask)
		return;
	char *payload = malloc(cn + 1 + hn + n);
	if (!payload) {
		stat_inc(STAT_oom_errors);
		return;
	}
	memcpy(payload, ch, cn);
	payload[cn] = ' ';
	memcpy(payload + cn + 1, head, hn);
	memcpy(payload + cn + 1 + hn, data, n);
	char chan[128];
	for (unsigned k = 0; k < PAT_BUCKETS; k++) {
		if (!(mask >> k & 1))
			continue;
		if (buf_used(&b->pubq) + b->backlog + cn + n > b->limit || b->plen + 16 > sizeof(chan)) {
			stat_inc(STAT_cl_dropped_full);
			continue;
		}
		int cl = snprintf(chan, sizeof(chan), "%s" INBOX_NAME, b->prefix, k);
		const char *argv[3] = {"SPUBLISH", chan, payload};
		size_t lens[3] = {8, (size_t)cl, cn + 1 + hn + n};
		size_t rec = buf_used(&b->pubq);
		if (buf_append(&b->pubq, "\0\0\0\0\0\0", REC_HEAD) == 0 && put_cmd(&b->pubq, 3, argv, lens) == 0) {
			char *h = (char *)buf_head(&b->pubq) + rec;
			uint32_t len = (uint32_t)(buf_used(&b->pubq) - rec - REC_HEAD);
			memcpy(h, &b->inbox_slot[k], 2);
			memcpy(h + 2, &len, 4);
			stat_inc(STAT_cl_pat_copies);
		} else {
			b->pubq.len = b->pubq.off + rec;
			stat_inc(STAT_oom_errors);
		}
	}
	free(payload);
}

/* Would the engine send a publish on ch back to this node (under b->lock)?
 * Only then does holding its publisher while the link reads behind help the
 * link: anyone who can publish on the engine can put the link behind by
 * flooding a channel held here, and that must not hold the publishers of
 * every other channel on the node. Any pattern held counts (not matched
 * here); no memory for the key counts too. */
static bool comes_back(struct bridge *b, const char *ch, size_t cn)
{
	if (atomic_load_explicit(&b->m_pats, memory_order_relaxed) > 0)
		return true;
	char small[256];
	char *key = cn + 1 <= sizeof(small) ? small : malloc(cn + 1);
	if (!key)
		return true;
	key[0] = 'c';
	memcpy(key + 1, ch, cn);
	const struct tentry *e = table_get(&b->held, key, cn + 1);
	if (key != small)
		free(key);
	return e && (e->flags & (H_WANT | H_ENGINE));
}

static void hook_published(void *arg, const char *ch, size_t cn, const char *from, const char *data, size_t n)
{
	struct bridge *b = arg;
	/* A name starting with a space is the node's own (the beacon channel,
	 * over redis-cluster:// the control channel and the inboxes): no client
	 * can subscribe to one, but a RESP PUBLISH takes any bulk string, and
	 * the node would sign the client's message there as its own (every
	 * keyed node counting a bad beacon, a refused announcement). It reaches
	 * this node's clients only, as no remote client could have it anyway
	 * (engine_message drops such names). */
	if (cn && ch[0] == ' ')
		return;
	struct envelope env = {.origin = b->origin, .boot = b->boot};
	memcpy(env.nick, from, strnlen(from, sizeof(env.nick) - 1)); /* as snprintf "%s" would, without its cost */
	bool wake = false;
	pthread_mutex_lock(&b->lock);
	if (!b->up) {
		/* A channel we published on goes on counting, so that receivers see
		 * the loss as a gap; a new one takes no state while down. */
		struct tentry *e = table_get(&b->sent, ch, cn);
		if (e) {
			e->a++;
			e->b = MARKERS; /* the markers after the link is back say how many */
		}
		stat_inc(STAT_cl_dropped_down);
		pthread_mutex_unlock(&b->lock);
		return;
	}
	/* This one goes; the publisher's next input waits (session.h, holds)
	 * while the link reads behind the engine, or while its queue is a
	 * quarter full: the link's loop is not keeping up (a loop busy with its
	 * own clients, or not scheduled), so a publisher on another loop or
	 * thread is paused before its engine copies are dropped and before the
	 * engine's copies of them back to us pile up unread. */
	if ((atomic_load_explicit(&b->behind, memory_order_relaxed) && comes_back(b, ch, cn)) ||
	    buf_used(&b->pubq) + b->backlog > b->limit / 4)
		owner_pressure_hold();
	env.seq = next_seq(b, ch, cn, &env.gen);
	if (buf_used(&b->pubq) + b->backlog + n > b->limit) {
		stat_inc(STAT_cl_dropped_full);
		owner_pressure_dropped(); /* its holds start over (owner.h) */
	} else {
		char head[ENVELOPE_HEAD_MAX];
		unsigned char tag[ENVELOPE_TAG_BYTES];
		env.stamp = next_stamp(b);
		size_t hn = envelope_head(head, &env);
		bool tagged = b->key && sign_tag(b->key, head, hn, ch, cn, data, n, tag) == 0;
		hn = envelope_finish(head, hn, tagged ? tag : NULL);
		char *chan = malloc(b->plen + cn), *payload = malloc(hn + n);
		const char *argv[3] = {b->shards ? "SPUBLISH" : "PUBLISH", chan, payload};
		size_t lens[3] = {b->shards ? 8 : 7, b->plen + cn, hn + n};
		size_t rec = buf_used(&b->pubq);
		if (chan && payload) {
			memcpy(chan, b->prefix, b->plen);
			memcpy(chan + b->plen, ch, cn);
			memcpy(payload, head, hn);
			memcpy(payload + hn, data, n);
		}
		wake = buf_used(&b->pubq) == 0;
		if (b->key && !tagged) { /* no memory for the HMAC: an untagged copy would only be dropped */
			stat_inc(STAT_cl_dropped_full);
			stat_inc(STAT_oom_errors);
			wake = false;
		} else if (chan && payload && (!b->shards || buf_append(&b->pubq, "\0\0\0\0\0\0", REC_HEAD) == 0) &&
		           put_cmd(&b->pubq, 3, argv, lens) == 0) {
			if (b->shards) { /* the record's head: the slot and the command's length */
				char *h = (char *)buf_head(&b->pubq) + rec;
				uint16_t slot = (uint16_t)cluster_slot(chan, b->plen + cn);
				uint32_t len = (uint32_t)(buf_used(&b->pubq) - rec - REC_HEAD);
				memcpy(h, &slot, 2);
				memcpy(h + 2, &len, 4);
				queue_copies(b, ch, cn, head, hn, data, n);
			}
			b->pubq_msgs++;
			stat_inc(STAT_cl_sent);
		} else {
			if (buf_used(&b->pubq) > rec) /* a record head without its command */
				b->pubq.len = b->pubq.off + rec;
			stat_inc(STAT_cl_dropped_full);
			stat_inc(STAT_oom_errors);
			wake = false;
		}
		free(chan);
		free(payload);
	}
	pthread_mutex_unlock(&b->lock);
	if (wake)
		cl_wake(cl_host_loop(b->host));
}

/* ---- the link's side (the link's loop) ---- */

static void set_engine(struct bridge *b, struct tentry *e, bool on)
{
	if (on == !!(e->flags & H_ENGINE))
		return;
	e->flags = on ? e->flags | H_ENGINE : e->flags & ~H_ENGINE;
	if (e->key[1] == ' ') /* the control channel, our inbox (patterns.h), the beacon channel (beacon.h): not a client's */
		return;
	atomic_fetch_add(e->key[0] == 'p' ? &b->m_pats : &b->m_chans, on ? 1 : -1);
}

/* Everything held, (P)SUBSCRIBEd in batches (the link's loop, under b->lock). */
struct resub {
	struct bridge *b;
	uint64_t now; /* the subscriptions' time: nothing published while the link was down comes */
	struct tentry *v[2][SUBS_PER_COMMAND];
	int n[2];
	size_t total[2];
	struct buf out;
	int err;
	struct tentry *retry; /* not sent (no memory): dirty, for the next turn or tick (held_sync) */
};

/* e's SUBSCRIBE could not be queued: not on the engine, dirty. It used to
 * stay marked as on the engine unsent, missing until the next reconnect. */
static void resub_retry(struct resub *r, struct tentry *e)
{
	set_engine(r->b, e, false);
	e->flags |= H_DIRTY;
	e->dirty = r->retry;
	r->retry = e;
}

static void resub_flush(struct resub *r, int kind)
{
	if (r->n[kind] && put_subs(r->b, &r->out, kind ? "PSUBSCRIBE" : "SUBSCRIBE", r->v[kind], r->n[kind]) < 0) {
		r->err = -ENOMEM;
		for (int i = 0; i < r->n[kind]; i++)
			resub_retry(r, r->v[kind][i]);
	}
	r->n[kind] = 0;
}

/* The resubscription was not queued: every entry it held goes back. */
static void resub_unsent(struct table *t, struct tentry *e, void *arg)
{
	(void)t;
	if ((e->flags & (H_WANT | H_ENGINE | H_DIRTY)) == (H_WANT | H_ENGINE))
		resub_retry(arg, e);
}

static void resub_one(struct table *t, struct tentry *e, void *arg)
{
	struct resub *r = arg;
	e->flags &= ~H_DIRTY;
	e->dirty = NULL;
	if (!(e->flags & H_WANT)) {
		set_engine(r->b, e, false);
		table_del(t, e);
		return;
	}
	int kind = e->key[0] == 'p';
	e->a = r->now;
	r->v[kind][r->n[kind]++] = e;
	r->total[kind] += e->key[1] != ' '; /* the beacon channel is not a client's */
	set_engine(r->b, e, true);
	if (r->n[kind] == SUBS_PER_COMMAND)
		resub_flush(r, kind);
}

/* The slot of a held channel's engine name. */
static unsigned held_slot(const struct bridge *b, const struct tentry *e)
{
	char small[512];
	size_t n;
	if (b->plen + e->node.klen - 1 <= sizeof(small)) {
		memcpy(small, b->prefix, b->plen);
		memcpy(small + b->plen, e->key + 1, e->node.klen - 1);
		return cluster_slot(small, b->plen + e->node.klen - 1);
	}
	char *name = engine_name(b, e, &n);
	unsigned slot = name ? cluster_slot(name, n) : 0;
	free(name);
	return slot;
}

/* Sharded: a subscription change goes to the slot's owner, one channel a
 * command (no CROSSSLOT); an owner that is down subscribes everything of
 * its slots when it is back (shards.h). Patterns are not on the engine
 * (sharded pub/sub has none): they are announced (patterns.h), and what was
 * seen on them is forgotten as for a fresh subscription. */
static int held_put(void *arg, struct buf *out, struct tentry *e, bool want)
{
	struct bridge *b = arg;
	bool pat = e->key[0] == 'p';
	if (b->shards)
		return pat ? 1 : put_subs(b, out, want ? "SSUBSCRIBE" : "SUNSUBSCRIBE", &e, 1);
	return put_subs(b, out, want ? (pat ? "PSUBSCRIBE" : "SUBSCRIBE") : (pat ? "PUNSUBSCRIBE" : "UNSUBSCRIBE"), &e, 1);
}

static int held_send(void *arg, struct tentry *e, struct buf *out)
{
	struct bridge *b = arg;
	if (b->shards)
		return shards_send(b->shards, held_slot(b, e), LINK_SUB, buf_head(out), buf_used(out));
	return link_send(b->link, LINK_SUB, buf_head(out), buf_used(out));
}

static void held_done(void *arg, struct tentry *e, bool want)
{
	struct bridge *b = arg;
	if (want)
		e->a = b->sub_now;
	set_engine(b, e, want);
	purge_seen(b, e);
}

/* Sharded: each queued SPUBLISH to its slot's owner, in order. */
static void sync_sharded_pub(struct bridge *b)
{
	const char *p = buf_head(&b->pubq), *end = p + buf_used(&b->pubq);
	while (end - p >= REC_HEAD) {
		uint16_t slot;
		uint32_t len;
		memcpy(&slot, p, 2);
		memcpy(&len, p + 2, 4);
		p += REC_HEAD;
		int rc = shards_send(b->shards, slot, LINK_PUB, p, len);
		if (rc < 0) /* the owner down: "down"; its queue at the bound, no memory: "full" (it was all "down") */
			stat_inc(link_drop_stat(rc));
		p += len;
	}
}

/* Send the dirty entries' changes and the queued publishes (under b->lock). */
static void sync_engine(struct bridge *b)
{
	/* A change that could not be queued (no memory) stays dirty: the next
	 * turn or tick sends it. It used to be marked as on the engine unsent,
	 * and stayed missing until the link was made again. */
	const struct held_ops ops = {held_put, held_send, held_done, b->shards != NULL};
	if (b->dirty)
		b->sub_now = stamp_clock(); /* before any is queued */
	size_t kept = held_sync(&b->held, &b->dirty, &ops, b);
	if (kept) { /* every turn while memory lacks: one line a second at most */
		static struct log_rate oom_log = LOG_RATE_INIT;
		stat_add(STAT_oom_errors, kept);
		log_rated(&oom_log, LOG_ERROR, "cluster: out of memory: %zu subscription changes for the engine wait for the next tick",
		          kept);
	}
	int rc;
	if (buf_used(&b->pubq)) {
		if (b->shards)
			sync_sharded_pub(b);
		else if ((rc = link_send(b->link, LINK_PUB, buf_head(&b->pubq), buf_used(&b->pubq))) < 0)
			stat_add(link_drop_stat(rc), b->pubq_msgs);
		buf_free(&b->pubq);
		b->pubq = (struct buf){0};
		b->pubq_msgs = 0;
	}
	b->backlog = b->shards ? shards_backlog(b->shards) : link_backlog(b->link, LINK_PUB);
}

static void clock_request(struct bridge *b, const uint64_t *target, unsigned n);
static void clock_answer(struct bridge *b, const struct envelope *req, uint64_t nonce, uint64_t now);
static void clock_proved(struct bridge *b, const struct envelope *ans, uint64_t nonce);

static void on_up(void *arg)
{
	struct bridge *b = arg;
	struct resub r = {.b = b, .now = stamp_clock()};
	if (b->key) /* the beacon channel is subscribed again below, with everything held */
		warmup_start(&b->warm, (uint64_t)now_ms());
	pthread_mutex_lock(&b->lock);
	b->up = true;
	table_each(&b->held, resub_one, &r);
	resub_flush(&r, 0);
	resub_flush(&r, 1);
	if (buf_used(&r.out) && link_send(b->link, LINK_SUB, buf_head(&r.out), buf_used(&r.out)) < 0) {
		r.err = -ENOMEM;
		table_each(&b->held, resub_unsent, &r);
	}
	b->dirty = r.retry;
	sync_engine(b); /* publishes queued since, and what was not queued above (no memory) */
	if (b->key) { /* the link is up afresh: ask the senders for their clocks (warmup.h) */
		beacon_asks_clear(&b->beacon);
		clock_request(b, NULL, 0);
	}
	pthread_mutex_unlock(&b->lock);
	buf_free(&r.out);
	long long down = now_ms() - atomic_load(&b->m_down_since);
	atomic_fetch_add(&b->m_down_ms, down);
	atomic_store(&b->m_up, true);
	if (b->ever_up)
		stat_inc(STAT_cl_reconnects);
	unsigned held;
	char more[64] = "";
	if (link_log_up(b->link, &held)) {
		if (held)
			snprintf(more, sizeof(more), " (%u earlier link-up lines not logged)", held);
		log_info("cluster: link up to %s://%s:%d after %.1f s down; %s %zu channels and %zu patterns%s%s",
		         b->url.tls ? "rediss" : "redis", b->url.host, b->url.port, (double)down / 1000,
		         b->ever_up ? "resubscribed" : "subscribed", r.total[0], r.total[1],
		         r.err ? " (out of memory: some wait for the next tick)" : "", more);
	}
	b->ever_up = true;
}

static void engine_forget(struct table *t, struct tentry *e, void *arg)
{
	struct bridge *b = arg;
	set_engine(b, e, false);
	e->flags &= ~H_DIRTY;
	e->dirty = NULL;
	if (!(e->flags & H_WANT))
		table_del(t, e);
}

/* Markers: one, two and three ticks (LINK_TICK_MS) after a channel's last publish
 * (or after the link is back, for one published on while it was down), tell
 * the receivers the last sequence number, so that a loss at the very end of
 * a stream is counted too (a marker the link, or over redis-cluster:// the
 * channel's shard, refuses stays due until it takes it). Only for channels that were
 * active: the table is bounded, so is this. */
struct markers {
	struct bridge *b;
	struct buf out;
	int err;
	size_t room; /* bytes of markers (both kinds) this tick may still queue */
	bool any;    /* a channel's markers went this tick */
	bool put_off; /* one was put off: from is its hash */
	uint64_t from;
};

/* Markers may fill the publisher queue to an eighth of its bound, no more:
 * a flood of announcements makes 64 inbox markers per active channel and
 * tick, and they must not take genuine publishes' room (those are dropped
 * at the bound, and their publishers held from a quarter). A channel whose
 * markers do not fit waits for the next tick, its count unspent (counted);
 * the first of a tick always fits, so that none waits for ever. */
#define MARKER_SHARE 8
#define INBOX_CMD_MAX 64 /* an inbox marker's SPUBLISH besides its payload and the prefix */

/* Sharded: the marker (head hn bytes) of channel ch to each inbox of mask
 * (those a copy of ch would go to now), "<ch> <marker>" like a copy, so
 * that a pattern's stream counts a loss at its very end too (patterns.h).
 * Not a copy: not counted as one. An inbox whose copies stopped meanwhile
 * (the pattern let go) gets none, as it wants none. *refused: an inbox's
 * shard refused it (down, or its queue full). */
static int marker_copies(struct markers *mk, uint64_t mask, const char *ch, size_t cn, const char *head, size_t hn,
                         bool *refused)
{
	struct bridge *b = mk->b;
	char chan[128], *payload = malloc(cn + 1 + hn);
	if (!payload)
		return -ENOMEM;
	memcpy(payload, ch, cn);
	payload[cn] = ' ';
	memcpy(payload + cn + 1, head, hn);
	int err = 0;
	for (unsigned k = 0; k < PAT_BUCKETS && !err; k++) {
		int cl = snprintf(chan, sizeof(chan), "%s" INBOX_NAME, b->prefix, k);
		if (!(mask >> k & 1) || cl < 0 || (size_t)cl >= sizeof(chan))
			continue;
		const char *argv[3] = {"SPUBLISH", chan, payload};
		size_t lens[3] = {8, (size_t)cl, cn + 1 + hn};
		struct buf out = {0};
		if (!(err = put_cmd(&out, 3, argv, lens)) &&
		    shards_send(b->shards, b->inbox_slot[k], LINK_PUB, buf_head(&out), buf_used(&out)) < 0)
			*refused = true;
		buf_free(&out);
	}
	free(payload);
	return err;
}

static void marker_one(struct table *t, struct tentry *e, void *arg)
{
	struct markers *mk = arg;
	struct bridge *b = mk->b;
	(void)t;
	if (!e->b || mk->err)
		return;
	struct envelope env = {.origin = b->origin, .boot = b->boot, .gen = b->gen, .seq = e->a, .marker = true,
	                       .stamp = next_stamp(b)};
	char head[ENVELOPE_HEAD_MAX];
	unsigned char tag[ENVELOPE_TAG_BYTES];
	size_t hn = envelope_head(head, &env);
	/* What this channel's markers take of the queue, at most. */
	uint64_t mask = 0;
	if (b->shards)
		mask = rpats_match(&b->rp, e->key, e->node.klen, b->rp_frozen ? b->rp_frozen : (uint64_t)now_ms());
	size_t need = (size_t)(1 + __builtin_popcountll(mask)) *
	              (INBOX_CMD_MAX + b->plen + e->node.klen + 1 + ENVELOPE_HEAD_MAX);
	if (mk->any && need > mk->room) {
		mk->room = 0;
		if (!mk->put_off) { /* the next tick starts here: channels behind busy ones get their turn */
			mk->put_off = true;
			mk->from = e->node.hash;
		}
		stat_inc(STAT_cl_markers_deferred); /* e->b unspent: the next tick sends it */
		return;
	}
	bool tagged = b->key && sign_tag(b->key, head, hn, e->key, e->node.klen, "", 0, tag) == 0;
	if (b->key && !tagged) { /* no tag (no memory): put off, unspent (it used to be spent, uncounted) */
		stat_inc(STAT_cl_markers_deferred);
		stat_inc(STAT_oom_errors);
		return;
	}
	hn = envelope_finish(head, hn, tagged ? tag : NULL);
	char *chan = malloc(b->plen + e->node.klen);
	size_t at = buf_used(&mk->out);
	if (chan) {
		memcpy(chan, b->prefix, b->plen);
		memcpy(chan + b->plen, e->key, e->node.klen);
		const char *argv[3] = {b->shards ? "SPUBLISH" : "PUBLISH", chan, head};
		size_t lens[3] = {b->shards ? 8 : 7, b->plen + e->node.klen, hn};
		mk->err = put_cmd(&mk->out, 3, argv, lens);
	}
	if (!chan || mk->err) {
		/* No memory to make it: put off, unspent, like one without its tag
		 * (it was spent unmade, so that the loss of a publish dropped for
		 * the same want of memory, the stream's last, was never counted).
		 * The rest of the tick waits too (mk->err, counted once). */
		free(chan);
		mk->err = -ENOMEM;
		stat_inc(STAT_cl_markers_deferred);
		return;
	}
	mk->any = true;
	mk->room = need < mk->room ? mk->room - need : 0;
	e->b--;
	if (b->shards) { /* to the channel's owner, at once */
		/* A shard that refuses it (its link down, its queue full) would
		 * have it lost, uncounted: a marker spent while the channel's shard
		 * was down for its three ticks never told that the messages
		 * published meanwhile (dropped, "down") were the stream's last. It
		 * stays due instead (unspent, counted as put off) and goes at a
		 * later tick, once the shard takes it; the room it took bounds the
		 * retries of a tick. An inbox's refusal keeps it due too: sent
		 * again, it is a duplicate to those that took it (a marker not
		 * ahead of the mark changes nothing: mark.c). */
		bool refused = shards_send(b->shards, cluster_slot(chan, b->plen + e->node.klen), LINK_PUB,
		                           buf_head(&mk->out) + at, buf_used(&mk->out) - at) < 0;
		buf_free(&mk->out);
		mk->out = (struct buf){0};
		if (mask && (mk->err = marker_copies(mk, mask, e->key, e->node.klen, head, hn, &refused)) < 0)
			refused = true; /* no memory for the inboxes' copies: those not sent wait, as a refused one */
		if (refused) {
			e->b++;
			stat_inc(STAT_cl_markers_deferred);
		}
	} else {
		/* redis://: at once too, and kept due if the link refuses it (its
		 * queue past its bound, the link lost, no memory). The tick's
		 * markers went in one batch, each spent as it was made: a refused
		 * batch lost them all, uncounted, and with them the count of a
		 * loss at the very end of their streams. The rest of the tick
		 * waits (counted as put off), from this one on at the next. */
		int rc = link_send(b->link, LINK_PUB, buf_head(&mk->out), buf_used(&mk->out));
		buf_consume(&mk->out, buf_used(&mk->out));
		if (rc < 0) {
			e->b++;
			stat_inc(STAT_cl_markers_deferred);
			mk->room = 0;
			if (!mk->put_off) {
				mk->put_off = true;
				mk->from = e->node.hash;
			}
			if (rc == -ENOMEM)
				mk->err = rc; /* counted once, by on_tick */
		}
	}
	free(chan);
}

/* Sharded, under b->lock: SPUBLISH this node's pattern set on the control
 * channel, an envelope (nick "-", seq: the version) whose data is the
 * patterns separated by spaces; "*" when they do not fit in one. */
struct lp {
	struct buf *out;
	size_t max;
	bool over;
	size_t held; /* patterns listed (not LP_GONE) */
};

static void lpat_one(struct table *t, struct tentry *e, void *arg)
{
	struct lp *lp = arg;
	(void)t;
	if (e->flags & LP_GONE)
		return; /* let go: this announcement says it is gone */
	lp->held++;
	if (lp->over)
		return;
	if (buf_used(lp->out) + 1 + e->node.klen > lp->max ||
	    (buf_used(lp->out) && buf_append(lp->out, " ", 1) < 0) || buf_append(lp->out, e->key, e->node.klen) < 0)
		lp->over = true;
}

static void lpat_gone(struct table *t, struct tentry *e, void *arg)
{
	(void)arg;
	if (e->flags & LP_GONE)
		table_del(t, e);
}

static void announce(struct bridge *b)
{
	struct buf list = {0};
	struct lp lp = {&list, b->ann_max, false, 0};
	table_each(&b->lpat, lpat_one, &lp);
	bool gone = lp.held < b->lpat.h.n; /* let go, not yet announced as gone */
	if (!lp.held && !gone && !b->ann_left) {
		buf_free(&list);
		return;
	}
	if (!lp.held && b->ann_left)
		b->ann_left--;
	if (lp.over) {
		buf_free(&list);
		list = (struct buf){0};
		if (buf_append(&list, "*", 1) < 0) {
			stat_inc(STAT_oom_errors);
			return;
		}
	}
	b->ann_ver = rpats_next_version(b->ann_ver, rpats_clock()); /* with a key an old one is refused as a replay */
	struct envelope env = {.origin = b->origin, .boot = b->boot, .seq = b->ann_ver, .stamp = ctl_stamp(b)};
	char head[ENVELOPE_HEAD_MAX];
	unsigned char tag[ENVELOPE_TAG_BYTES];
	size_t hn = envelope_head(head, &env);
	const char *data = buf_used(&list) ? buf_head(&list) : "";
	bool tagged = b->key && sign_tag(b->key, head, hn, CTL_NAME, CTL_LEN, data, buf_used(&list), tag) == 0;
	char chan[128], *payload = malloc(ENVELOPE_HEAD_MAX + buf_used(&list));
	int cl = snprintf(chan, sizeof(chan), "%s" CTL_NAME, b->prefix);
	if ((b->key && !tagged) || !payload || cl < 0 || (size_t)cl >= sizeof(chan)) {
		stat_inc(STAT_oom_errors);
	} else {
		hn = envelope_finish(head, hn, tagged ? tag : NULL);
		memcpy(payload, head, hn);
		memcpy(payload + hn, data, buf_used(&list));
		const char *argv[3] = {"SPUBLISH", chan, payload};
		size_t lens[3] = {8, (size_t)cl, hn + buf_used(&list)};
		struct buf out = {0};
		if (put_cmd(&out, 3, argv, lens) == 0 &&
		    shards_send(b->shards, cluster_slot(chan, (size_t)cl), LINK_PUB, buf_head(&out), buf_used(&out)) == 0) {
			stat_inc(STAT_cl_pat_ann_sent);
			/* Announced as gone now: held again, a pattern gets a new
			 * time. Only once sent: while the control channel's shard
			 * is down (-ENOTCONN) the other nodes go on sending its
			 * copies, and one held again keeps its time, as within a
			 * turn. */
			if (gone)
				table_each(&b->lpat, lpat_gone, NULL);
		}
		buf_free(&out);
	}
	free(payload);
	buf_free(&list);
	b->pat_changed = false;
	b->ann_ticks = 0;
}

/* ---- clock beacons (beacon.h), keyed only ---- */

/* An envelope whose tag checked (the link's loop): what it says of its
 * sender's clock (replay.h: off_lb), whether it is then delivered or
 * refused. Only after the tag check: nobody without the key can make a
 * stamp, so every sample is a genuine stamp minus an arrival after it was
 * made; a replay arrives later than its original and lowers the sample,
 * which cannot raise the highest. Before the envelope is judged: its own
 * sample never refuses it (that would take stamp < sub + stamp - now -
 * STAMP_SLACK_US, an arrival before its subscription was made). */
static uint64_t learn(struct bridge *b, const struct envelope *env)
{
	uint64_t now = b->key ? stamp_clock() : 0;
	if (b->key)
		offsets_learn(&b->offsets, env->origin, env->boot, env->stamp, now, (uint64_t)now_ms());
	return now; /* the envelope's clock: its track() takes it (read once an envelope) */
}

/* A message on the beacon channel (the link's loop): another node's clock,
 * and its clock request (answered) or its answer to one of ours (beacon.h).
 * Nothing of it is delivered. */
static void on_beacon(struct bridge *b, const char *p, size_t n)
{
	struct envelope env;
	enum beacon_check r = beacon_check(b->key, p, n, &env);
	if (r != BEACON_OK) { /* counted here only: a node with another key sends a steady stream */
		stat_inc(r == BEACON_NO_MEMORY ? STAT_oom_errors : STAT_cl_beacons_bad); /* not checked: not bad */
		return;
	}
	if (env.origin == b->origin && env.boot == b->boot)
		return; /* our own */
	if (first_sight_age(env.stamp, stamp_clock()) != FIRST_OK) {
		stat_inc(STAT_cl_beacons_old); /* teaches nothing (offsets_learn would ignore it) */
		return;
	}
	uint64_t now = learn(b, &env);
	stat_inc(STAT_cl_beacons_ok);
	struct beacon_clock ck;
	if (beacon_clock(&env, &ck) && ck.kind == BEACON_REQUEST) {
		if (beacon_asks(&ck, b->origin)) /* one that names others is theirs */
			clock_answer(b, &env, ck.nonce, now);
	}
	else if (ck.kind == BEACON_ANSWER && ck.requester == b->origin)
		clock_proved(b, &env, ck.nonce);
}

/* The beacon channel, held for good (keyed): subscribed with the held
 * names whenever the link (or its shard's link) is made. */
static int beacon_channel(struct bridge *b)
{
	pthread_mutex_lock(&b->lock);
	struct tentry *e = table_put(&b->held, "c" BEACON_NAME, BEACON_LEN + 1);
	if (e)
		e->flags = H_WANT;
	pthread_mutex_unlock(&b->lock);
	return e ? 0 : -ENOMEM;
}

/* Under b->lock, the link up: publish a beacon of this node with the
 * clock request or answer ck (NULL: a plain one) on the beacon channel.
 * false if it was not queued (no memory, the link down). */
static bool beacon_send(struct bridge *b, const struct beacon_clock *ck)
{
	char head[BEACON_MAX], chan[128];
	size_t hn = beacon_make_clock(&b->beacon, head, b->key, b->origin, b->boot, ctl_stamp(b), ck);
	int cl = snprintf(chan, sizeof(chan), "%s" BEACON_NAME, b->prefix);
	struct buf out = {0};
	const char *argv[3] = {b->shards ? "SPUBLISH" : "PUBLISH", chan, head};
	size_t lens[3] = {b->shards ? 8 : 7, (size_t)cl, hn};
	int rc = -ENOMEM;
	if (!hn || cl < 0 || (size_t)cl >= sizeof(chan) || put_cmd(&out, 3, argv, lens) < 0)
		stat_inc(STAT_oom_errors); /* a beacon: the next one is due in BEACON_TICKS; a request: asked again */
	else
		rc = b->shards ? shards_send(b->shards, cluster_slot(chan, (size_t)cl), LINK_PUB, buf_head(&out), buf_used(&out))
		               : link_send(b->link, LINK_PUB, buf_head(&out), buf_used(&out));
	buf_free(&out);
	return rc == 0;
}

/* At a tick, under b->lock, the link up: this node's beacon if it is due. */
static void beacon_tick(struct bridge *b)
{
	beacon_answers_tick(&b->beacon);
	if (!b->key || !beacon_due(&b->beacon, stamp_clock()))
		return;
	if (beacon_send(b, NULL))
		stat_inc(STAT_cl_beacons_sent);
}

/* Under b->lock, keyed, the link up: a clock request with a fresh nonce
 * (beacon.h) to every active sender (n 0), or to the n senders of target,
 * CLOCK_TARGETS a request (one nonce for all): the answers prove their
 * senders' clocks (warmup.h). A request naming the senders held is
 * answered by them only: one to all, each answer delivered to every node,
 * made anyone who replays a stopped sender's capture (a held sender that
 * never answers) cost every active node an answer a second. */
static void clock_request(struct bridge *b, const uint64_t *target, unsigned n)
{
	struct beacon_clock ck = {.kind = BEACON_REQUEST};
	if (getrandom(&ck.nonce, sizeof(ck.nonce), 0) != sizeof(ck.nonce))
		return; /* asked again at the next tick while anything is held */
	beacon_asked(&b->beacon, ck.nonce, (uint64_t)now_ms());
	unsigned i = 0;
	do {
		ck.targets = n - i < CLOCK_TARGETS ? n - i : CLOCK_TARGETS;
		if (ck.targets) /* target NULL: to all */
			memcpy(ck.target, target + i, ck.targets * sizeof(*target));
		i += ck.targets;
		if (beacon_send(b, &ck))
			stat_inc(STAT_cl_clock_requests_sent);
	} while (i < n);
}

/* Another node's clock request to this one or to all (the link's loop), its
 * tag checked and its sample learned at now: answer it at once if this node
 * is active (an inactive one has nothing to prove), each request once,
 * CLOCK_ANSWERS a tick at most. Not if it is stamped no later than the last
 * one of its sender (replay.h offsets_request): a replay, whose answer
 * would prove nothing (the last CLOCK_SEEN answered were remembered only,
 * and anyone who can PUBLISH replays more captures than that in turn). */
static void clock_answer(struct bridge *b, const struct envelope *req, uint64_t nonce, uint64_t now)
{
	if (!offsets_request(&b->offsets, req->origin, req->boot, req->stamp, now)) {
		stat_inc(STAT_cl_clock_requests_refused); /* no off_lb: no memory for it, answered when asked again */
		return;
	}
	bool dropped = false;
	pthread_mutex_lock(&b->lock);
	if (b->up && beacon_active(&b->beacon, stamp_clock()) &&
	    beacon_answer_ok(&b->beacon, req->origin, nonce, &dropped)) {
		struct beacon_clock ck = {.kind = BEACON_ANSWER, .requester = req->origin, .nonce = nonce};
		if (beacon_send(b, &ck))
			stat_inc(STAT_cl_clock_answers_sent);
	}
	pthread_mutex_unlock(&b->lock);
	if (dropped)
		stat_inc(STAT_cl_clock_answers_dropped);
}

static void judge_held(struct bridge *b, struct held_env *h);

/* An answer to this node (the link's loop), its sample just learned: if it
 * carries one of the nonces of our last requests, come within
 * CLOCK_PROOF_MS of it, it was made after the request: its sender's clock
 * is proved (replay.h: PROOF_KEEP_MS), and what is held of it judged now,
 * in order (warmup.h). */
static void clock_proved(struct bridge *b, const struct envelope *ans, uint64_t nonce)
{
	uint64_t mono = (uint64_t)now_ms();
	pthread_mutex_lock(&b->lock);
	bool ours = beacon_asked_for(&b->beacon, nonce, mono);
	pthread_mutex_unlock(&b->lock);
	uint64_t now = stamp_clock();
	bool again = ours && offsets_proved(&b->offsets, ans->origin, ans->boot, now, mono);
	if (!ours || !offsets_prove(&b->offsets, ans->origin, ans->boot, now, mono)) {
		stat_inc(STAT_cl_clock_answers_unknown); /* taught the offset only */
		return;
	}
	stat_inc(STAT_cl_clock_answers_proved);
	/* Proved already (a second answer, a replay of one within its second,
	 * or a renewal): nothing of it is held since, so no walk of the hold,
	 * which a stream of replayed answers would make one per answer. */
	if (again)
		return;
	struct held_env *h = warmup_take_of(&b->warm, ans->origin, ans->boot);
	while (h) {
		struct held_env *next = h->next;
		judge_held(b, h);
		h = next;
	}
}

static void warm_release(struct bridge *b, bool all, enum stat_id early);

static void on_tick(void *arg)
{
	struct bridge *b = arg;
	struct markers mk = {.b = b};
	bool renew = false;
	uint64_t asks[CLOCK_TICK_ASKS];
	unsigned nasks = 0;
	if (b->key) {
		/* The held envelopes' deadlines run while the beacon channel's link
		 * is up (warmup.h); those past it are refused (those of a quiet
		 * moment wait for this). A request to the senders held (their
		 * answers may have come before the beacon channel was listened to,
		 * on another connection, or been lost or dropped for the answers'
		 * rate), and one to all before the proofs of the senders heard
		 * from run out. */
		uint64_t mono = (uint64_t)now_ms();
		warmup_tick(&b->warm, mono, b->shards ? shards_slot_up(b->shards, b->beacon_slot) : link_is_up(b->link));
		warm_release(b, false, STAT__COUNT);
		nasks = warmup_asks(&b->warm, mono, asks, CLOCK_TICK_ASKS);
		renew = offsets_renew(&b->offsets, stamp_clock(), mono);
	}
	pthread_mutex_lock(&b->lock);
	if (b->up && b->shards) {
		uint64_t now = (uint64_t)now_ms();
		if (!b->rp_frozen)
			rpats_sweep(&b->rp, now);
		b->ann_burst = 0;
		if (++b->ann_ticks >= PAT_ANNOUNCE_TICKS || b->pat_changed)
			announce(b);
	}
	if (b->up) {
		sync_engine(b); /* the publishes first: a marker follows what it counts */
		size_t backlog = b->shards ? shards_backlog(b->shards) : link_backlog(b->link, LINK_PUB);
		mk.room = b->limit / MARKER_SHARE > backlog ? b->limit / MARKER_SHARE - backlog : 0;
		mk.any = !mk.room; /* no room: even the first waits */
		table_each_from(&b->sent, b->markers_from, marker_one, &mk);
		if (mk.put_off)
			b->markers_from = mk.from;
		beacon_tick(b);
		if (nasks)
			clock_request(b, asks, nasks);
		if (renew)
			clock_request(b, NULL, 0);
		b->backlog = b->shards ? shards_backlog(b->shards) : link_backlog(b->link, LINK_PUB);
	}
	pthread_mutex_unlock(&b->lock);
	buf_free(&mk.out);
	if (mk.err)
		stat_inc(STAT_oom_errors);
}

static void on_down(void *arg)
{
	struct bridge *b = arg;
	/* What is held stays held (warmup.h): each is judged on the
	 * subscription it came on, its deadline a whole WARMUP_MS after the link
	 * is back (judged here, anyone who can PUBLISH ended the hold at will: a
	 * bulk string larger than any message drops the link). */
	if (b->key)
		warmup_tick(&b->warm, (uint64_t)now_ms(), false);
	atomic_store(&b->m_down_since, now_ms());
	atomic_store(&b->m_up, false);
	pthread_mutex_lock(&b->lock);
	b->up = false;
	table_each(&b->held, engine_forget, b);
	b->dirty = NULL;
	stat_add(STAT_cl_dropped_down, b->pubq_msgs);
	buf_free(&b->pubq);
	b->pubq = (struct buf){0};
	b->pubq_msgs = 0;
	b->backlog = 0;
	pthread_mutex_unlock(&b->lock);
}

static bool is_str(const redisReply *r) { return r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS; }

static bool word(const redisReply *r, const char *w)
{
	return is_str(r) && r->len == strlen(w) && memcmp(r->str, w, r->len) == 0;
}

/* [p, n) minus our prefix; false if it does not start with it. */
static bool strip(const struct bridge *b, const redisReply *r, const char **p, size_t *n)
{
	if (!is_str(r) || r->len < b->plen || memcmp(r->str, b->prefix, b->plen) != 0)
		return false;
	*p = r->str + b->plen;
	*n = r->len - b->plen;
	return true;
}

/* Whether this node holds the channel ('c') or pattern ('p') on the engine
 * (the link's loop), and since when in *sub. */
static bool held_on_engine(struct bridge *b, char kind, const char *name, size_t n, uint64_t *sub)
{
	char small[256];
	char *key = n + 1 <= sizeof(small) ? small : malloc(n + 1);
	if (!key)
		return false;
	key[0] = kind;
	memcpy(key + 1, name, n);
	pthread_mutex_lock(&b->lock);
	const struct tentry *e = table_get(&b->held, key, n + 1);
	bool on = e && (e->flags & H_ENGINE);
	*sub = on ? e->a : 0;
	pthread_mutex_unlock(&b->lock);
	if (key != small)
		free(key);
	return on;
}

/* An authenticated envelope of another node on a channel (p NULL) or as a
 * pmessage of pattern p, its engine subscription made at sub: judged
 * (track) and delivered here. */
static void deliver_engine(struct bridge *b, const struct envelope *env, const char *p, size_t pn, const char *c,
                           size_t cn, uint64_t sub, uint64_t now, uint64_t arrived)
{
	if (!track(b, env, p, pn, c, cn, sub, now, arrived))
		return;
	stat_inc(STAT_cl_received);
	long got = exchange_publish_remote(b->ex, p, pn, c, cn, env->nick, env->data, env->n);
	if (got > 0)
		b->delivered += (unsigned long)got;
}

static bool warm_hold(struct bridge *b, const struct envelope *env, bool inbox, const char *p, size_t pn,
                      const char *c, size_t cn, uint64_t sub, uint64_t wall);

/* A `message` or `pmessage` from the engine. */
static void engine_message(struct bridge *b, const redisReply *pat, const redisReply *ch, const redisReply *payload)
{
	const char *p = NULL, *c;
	size_t pn = 0, cn;
	struct envelope env;
	if ((pat && !strip(b, pat, &p, &pn)) || !strip(b, ch, &c, &cn) || !is_str(payload)) {
		stat_inc(STAT_cl_malformed);
		return;
	}
	if (cn > b->cfg->max_channel) { /* no local client could have published it; nothing is kept of it */
		stat_inc(STAT_cl_channel_too_long);
		return;
	}
	/* A reserved name (a space: no client's): the beacon channel's message,
	 * or a pmessage of it under a client's pattern ("*" matches it), which
	 * no client may get. */
	if (cn && c[0] == ' ') {
		if (!p && b->key && cn == BEACON_LEN && memcmp(c, BEACON_NAME, BEACON_LEN) == 0)
			on_beacon(b, payload->str, payload->len);
		return;
	}
	/* Not a subscription of ours (in flight after an UNSUBSCRIBE, or an
	 * engine making it up: the pattern is not signed): nobody here can
	 * receive it, and no state may be kept for it. */
	uint64_t sub;
	if (!(p ? held_on_engine(b, 'p', p, pn, &sub) : held_on_engine(b, 'c', c, cn, &sub)))
		return;
	/* Nor is a pmessage on a channel its pattern does not match (the
	 * exchange would not deliver it): a compromised engine has every genuine
	 * envelope of the cluster, and each under a held pattern made a `seen`
	 * entry, evicting the streams of real subscriptions. */
	if (p && !glob_match(p, pn, c, cn))
		return;
	if (envelope_decode(payload->str, payload->len, &env) < 0) {
		stat_inc(STAT_cl_malformed);
		return;
	}
	if (!checked(b, &env, payload->str, c, cn))
		return;
	if (env.origin == b->origin && env.boot == b->boot) {
		if (!env.marker)
			stat_inc(STAT_cl_echoes); /* delivered here already, when it was published */
		return;
	}
	uint64_t now = learn(b, &env);
	if (!warm_hold(b, &env, false, p, pn, c, cn, sub, now))
		deliver_engine(b, &env, p, pn, c, cn, sub, now, 0);
}

static int on_reply(void *arg, enum link_conn conn, redisReply *r)
{
	struct bridge *b = arg;
	if (r->type == REDIS_REPLY_ERROR) {
		log_warn("cluster: the engine said on the %s connection: %.*s", conn == LINK_SUB ? "subscriber" : "publisher",
		         (int)(r->len > 200 ? 200 : r->len), r->str);
		return conn == LINK_SUB ? -EPROTO : 0; /* a refused SUBSCRIBE leaves us deaf: start again */
	}
	if (conn == LINK_PUB)
		return 0; /* :N, the engine's receivers of a PUBLISH: not ours to report */
	if (r->type != REDIS_REPLY_ARRAY || r->elements < 3) {
		stat_inc(STAT_cl_malformed);
		return 0;
	}
	redisReply **e = r->element;
	if (r->elements == 3 && word(e[0], "message"))
		engine_message(b, NULL, e[1], e[2]);
	else if (r->elements == 4 && word(e[0], "pmessage"))
		engine_message(b, e[1], e[2], e[3]);
	else if (!(word(e[0], "subscribe") || word(e[0], "psubscribe") || word(e[0], "unsubscribe") ||
	           word(e[0], "punsubscribe")))
		stat_inc(STAT_cl_malformed);
	return 0;
}

/* ---- the sharded engine's side (the link's loop) ---- */

/* Another node's pattern set on the control channel (patterns.h). */
static void on_announce(struct bridge *b, const char *p, size_t n)
{
	struct envelope env;
	if (envelope_decode(p, n, &env) < 0 || env.marker) {
		stat_inc(STAT_cl_pat_ann_refused);
		return;
	}
	int rc = !b->key     ? 0
	         : env.tagged ? sign_check(b->key, p, env.signed_n, CTL_NAME, CTL_LEN, env.data, env.n, env.tag)
	                      : -EBADMSG;
	if (rc < 0) { /* could not be checked (no memory): not counted as forged (checked()) */
		stat_inc(rc == -ENOMEM ? STAT_oom_errors : STAT_cl_auth_failures);
		stat_inc(STAT_cl_pat_ann_refused);
		return;
	}
	if (env.origin == b->origin && env.boot == b->boot)
		return; /* our own */
	learn(b, &env);
	uint64_t wall = rpats_clock();
	pthread_mutex_lock(&b->lock);
	/* While frozen, at the frozen time: the thaw gives every entry the time
	 * since the freeze, which one announced meanwhile never lost. */
	enum pat_ann r = rpats_announce(&b->rp, env.origin, env.boot, env.seq, env.data, env.n, b->key != NULL,
	                                b->rp_frozen ? b->rp_frozen : (uint64_t)now_ms(), wall);
	pthread_mutex_unlock(&b->lock);
	if (r == PAT_ANN_CLOCK) {
		static struct log_rate lr = LOG_RATE_INIT;
		log_rated(&lr, LOG_WARN,
		          "cluster: a pattern announcement of node %016llx is %.1f s off this node's clock: refused (a replay, "
		          "or the clocks disagree: with --cluster-key-file they must agree within %d s)",
		          (unsigned long long)env.origin, ((double)env.seq - (double)wall) / 1000, PAT_FRESH_MS / 1000);
	}
	stat_inc(r == PAT_ANN_OK ? STAT_cl_pat_ann_taken : r == PAT_ANN_FULL ? STAT_cl_pat_ann_full : STAT_cl_pat_ann_refused);
}

/* The local patterns matching ch, as [u32 length][u64 time added][pattern]... in out (under b->lock). */
struct lmatch {
	const char *ch;
	size_t cn;
	struct buf *out;
	int err;
};

static void lmatch_one(struct table *t, struct tentry *e, void *arg)
{
	struct lmatch *m = arg;
	(void)t;
	uint32_t len = (uint32_t)e->node.klen;
	/* One LP_GONE too: its copies still come, and are tracked (delivered
	 * to nobody here), as a pmessage is over one Redis while the
	 * PUNSUBSCRIBE is not sent: a replay of one is then a duplicate. */
	if (!m->err && glob_match(e->key, e->node.klen, m->ch, m->cn) &&
	    (buf_append(m->out, &len, 4) < 0 || buf_append(m->out, &e->a, 8) < 0 || buf_append(m->out, e->key, len) < 0))
		m->err = -ENOMEM;
}

/* A copy in our inbox, "<channel> <envelope>": to the local subscribers of
 * each pattern of ours matching the channel, as a pmessage of each (its
 * sequence tracked per pattern and channel, like one Redis's pmessages). */
static void deliver_inbox(struct bridge *b, const struct envelope *env, const char *c, size_t cn, uint64_t now,
                          uint64_t arrived, uint64_t isub);

static void on_inbox(struct bridge *b, const char *p, size_t n)
{
	const char *sp = memchr(p, ' ', n < b->cfg->max_channel + 1 ? n : b->cfg->max_channel + 1);
	struct envelope env;
	if (!sp) {
		stat_inc(n > b->cfg->max_channel ? STAT_cl_channel_too_long : STAT_cl_malformed);
		return;
	}
	const char *c = p;
	size_t cn = (size_t)(sp - p);
	if (!cn || envelope_decode(sp + 1, n - cn - 1, &env) < 0) {
		stat_inc(STAT_cl_malformed);
		return;
	}
	/* A marker (the channel's last sequence number) is tracked like a copy
	 * and never delivered (track() is false for it). */
	if (!checked(b, &env, sp + 1, c, cn))
		return;
	if (env.origin == b->origin && env.boot == b->boot)
		return; /* a copy for another node of our inbox: delivered here when published */
	uint64_t now = learn(b, &env);
	/* A copy came on the inbox's subscription too: one sent while it was
	 * lost (the inbox shard's link down, resubscribed when back) never came
	 * then, and a capture of it replayed after is before that subscription
	 * (the pattern's time alone let it through, ahead of its mark). */
	char inbox[128];
	int in = snprintf(inbox, sizeof(inbox), INBOX_NAME, b->bucket);
	uint64_t isub = 0;
	if (in <= 0 || (size_t)in >= sizeof(inbox) || !held_on_engine(b, 'c', inbox, (size_t)in, &isub))
		isub = 0;
	if (!warm_hold(b, &env, true, NULL, 0, c, cn, isub, now))
		deliver_inbox(b, &env, c, cn, now, 0, isub);
}

/* An authenticated inbox copy of another node on channel c, come on the
 * inbox's subscription made at isub (0: not known): judged and delivered
 * once per local pattern matching it. */
static void deliver_inbox(struct bridge *b, const struct envelope *env, const char *c, size_t cn, uint64_t now,
                          uint64_t arrived, uint64_t isub)
{
	struct buf pats = {0};
	struct lmatch m = {c, cn, &pats, 0};
	pthread_mutex_lock(&b->lock);
	table_each(&b->lpat, lmatch_one, &m);
	pthread_mutex_unlock(&b->lock);
	if (m.err)
		stat_inc(STAT_oom_errors);
	if (!buf_used(&pats) && !env->marker)
		stat_inc(STAT_cl_pat_unmatched);
	const char *q = buf_head(&pats), *end = q + buf_used(&pats);
	while (end - q >= 12) {
		uint32_t pn;
		uint64_t sub;
		memcpy(&pn, q, 4);
		memcpy(&sub, q + 4, 8);
		if (isub > sub)
			sub = isub;
		q += 12;
		if (track(b, env, q, pn, c, cn, sub, now, arrived)) {
			stat_inc(STAT_cl_received);
			exchange_publish_remote(b->ex, q, pn, c, cn, env->nick, env->data, env->n);
		}
		q += pn;
	}
	buf_free(&pats);
}

/* ---- the hold (warmup.h; keyed; the link's loop) ---- */

/* A held envelope judged and delivered as if it had just arrived, with the
 * offsets learned meanwhile, but for its age and the subscription it came
 * on (reckoned when it came): over redis-cluster:// its shard's link may be
 * lost and made again in the hold, the channel subscribed again later, and
 * judged on that a genuine one was refused as sent before it (a replay
 * sent before the subscription it came on is refused all the same). One
 * let go meanwhile has nobody here to get it, and no state is kept for it,
 * as in engine_message. */
static void judge_held(struct bridge *b, struct held_env *h)
{
	uint64_t sub, now = stamp_clock(); /* keyed: only a keyed node holds */
	if (h->inbox)
		deliver_inbox(b, &h->env, h->ch, h->cn, now, h->wall, h->sub);
	else if (h->pat ? held_on_engine(b, 'p', h->pat, h->pn, &sub) : held_on_engine(b, 'c', h->ch, h->cn, &sub))
		deliver_engine(b, &h->env, h->pat, h->pn, h->ch, h->cn, h->sub, now, h->wall);
	free(h);
}

/* What is held past its deadline (warmup.h), in order: refused, its
 * sender's clock never proved (a sender that has stopped does not answer);
 * all: everything held judged now, by the rules without a proof, each
 * counted in early. */
static void warm_release(struct bridge *b, bool all, enum stat_id early)
{
	uint64_t now = (uint64_t)now_ms();
	for (;;) {
		bool due = warmup_due(&b->warm, now);
		if (!due && !all)
			return;
		struct held_env *h = warmup_take(&b->warm);
		if (!h)
			return;
		if (!due) {
			stat_inc(early);
			judge_held(b, h);
		} else if (offsets_proved(&b->offsets, h->env.origin, h->env.boot, stamp_clock(), now)) {
			judge_held(b, h); /* proved since, and this one was not taken then (no off_lb then) */
		} else {
			refused(&h->env, FIRST_UNPROVED, stamp_clock());
			free(h);
		}
	}
}

/* An authenticated envelope of another node (its off_lb just learned from
 * it at wall), come on a subscription made at sub: true if held back until
 * its sender's clock is proved (warmup.h), false to judge it now. What is
 * past its deadline goes first; a sender's later envelopes stay held
 * behind its earlier ones, so its order is kept. */
static bool warm_hold(struct bridge *b, const struct envelope *env, bool inbox, const char *p, size_t pn,
                      const char *c, size_t cn, uint64_t sub, uint64_t wall)
{
	if (!b->key)
		return false;
	uint64_t now = (uint64_t)now_ms();
	warm_release(b, false, STAT__COUNT);
	/* Proved; or off the clock by more than the age rule's window, which
	 * refuses it now if it is a first sight (a proof would not help it). */
	if (offsets_proved(&b->offsets, env->origin, env->boot, wall, now) ||
	    first_sight_age(env->stamp, wall) != FIRST_OK)
		return false;
	size_t cost = warmup_cost(pn, cn, env->n);
	struct held_env *h;
	while (!warmup_fits(&b->warm, cost) && (h = warmup_take_largest(&b->warm))) {
		refused(&h->env, FIRST_HOLD_FULL, wall); /* the largest holder gives way: a flood's sender (warmup.h) */
		free(h);
	}
	if (warmup_hold(&b->warm, env, inbox, p, pn, c, cn, now, wall, sub)) {
		stat_inc(STAT_cl_warmup_held);
		/* A sender held afresh is asked for at once (at most one request
		 * every CLOCK_ASK_GAP_MS: the nonces of CLOCK_PROOF_MS are kept),
		 * then at each tick while it is held. */
		pthread_mutex_lock(&b->lock);
		uint64_t last = beacon_last_asked(&b->beacon);
		if (b->up && (!last || now < last || now - last >= CLOCK_ASK_GAP_MS) &&
		    warmup_ask_first(&b->warm, env->origin, env->boot, now))
			clock_request(b, &env->origin, 1);
		pthread_mutex_unlock(&b->lock);
		return true;
	}
	stat_inc(STAT_oom_errors);
	warm_release(b, true, STAT_cl_warmup_early_no_memory); /* the earlier ones first: the order */
	stat_inc(STAT_cl_warmup_early_no_memory);
	return false;
}

static void sh_message(void *arg, const redisReply *ch, const redisReply *payload)
{
	struct bridge *b = arg;
	if (is_str(ch) && ch->len > b->plen && ch->str[b->plen] == ' ' && memcmp(ch->str, b->prefix, b->plen) == 0) {
		char inbox[128];
		int in = snprintf(inbox, sizeof(inbox), INBOX_NAME, b->bucket);
		const char *name = ch->str + b->plen;
		size_t nn = ch->len - b->plen;
		if (!is_str(payload))
			stat_inc(STAT_cl_malformed);
		else if (nn == CTL_LEN && memcmp(name, CTL_NAME, CTL_LEN) == 0)
			on_announce(b, payload->str, payload->len);
		else if (nn == (size_t)in && memcmp(name, inbox, nn) == 0)
			on_inbox(b, payload->str, payload->len);
		else if (b->key && nn == BEACON_LEN && memcmp(name, BEACON_NAME, BEACON_LEN) == 0)
			on_beacon(b, payload->str, payload->len);
		else
			stat_inc(STAT_cl_malformed);
		return;
	}
	engine_message(arg, NULL, ch, payload);
}

static bool sh_wanted(void *arg, const char *ch, size_t n)
{
	struct bridge *b = arg;
	if (n < b->plen || memcmp(ch, b->prefix, b->plen) != 0 || n - b->plen + 1 > b->cfg->max_channel + 1)
		return false;
	size_t kn = n - b->plen + 1;
	char small[256];
	char *key = kn <= sizeof(small) ? small : malloc(kn);
	if (!key)
		return true; /* look it up again: costs a map read at most */
	key[0] = 'c';
	memcpy(key + 1, ch + b->plen, n - b->plen);
	pthread_mutex_lock(&b->lock);
	struct tentry *e = table_get(&b->held, key, kn);
	bool held = e && (e->flags & H_WANT);
	pthread_mutex_unlock(&b->lock);
	if (key != small)
		free(key);
	return held;
}

struct sresub {
	struct bridge *b;
	uint64_t now; /* slots NULL: the shard's link was made again; nothing published on it meanwhile comes */
	int shard;
	const uint64_t *slots;
	struct sent_sub {
		unsigned slot;
		struct tentry *e;
	} *v;
	size_t n, cap;
	int err;
};

static void sresub_one(struct table *t, struct tentry *e, void *arg)
{
	struct sresub *r = arg;
	(void)t;
	if (e->key[0] != 'c' || !(e->flags & H_WANT) || r->err)
		return;
	unsigned slot = held_slot(r->b, e);
	if (shards_owner(r->b->shards, slot) != r->shard || (r->slots && !(r->slots[slot / 64] >> (slot % 64) & 1)))
		return;
	if (r->n == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 64;
		void *v = realloc(r->v, cap * sizeof(*r->v));
		if (!v) {
			r->err = -ENOMEM;
			return;
		}
		r->v = v;
		r->cap = cap;
	}
	r->v[r->n++] = (struct sent_sub){slot, e};
}

static int by_slot(const void *a, const void *b)
{
	unsigned x = ((const struct sent_sub *)a)->slot, y = ((const struct sent_sub *)b)->slot;
	return x < y ? -1 : x > y;
}

/* Subscribe on shard every held channel of its slots (or of those set in
 * slots), SSUBSCRIBE grouped by slot: one command names one slot's channels
 * only (else CROSSSLOT). A resubscription keeps what was seen, so what was
 * lost meanwhile counts as gaps. */
static void sh_resub(void *arg, int shard, const uint64_t *slots)
{
	struct bridge *b = arg;
	struct sresub r = {.b = b, .now = stamp_clock(), .shard = shard, .slots = slots};
	struct buf out = {0};
	size_t total = 0;
	unsigned bs = b->beacon_slot;
	bool warm = b->key && shards_owner(b->shards, bs) == shard && (!slots || (slots[bs / 64] >> (bs % 64) & 1));
	if (warm)
		warmup_start(&b->warm, (uint64_t)now_ms()); /* the beacon channel is subscribed afresh below: deadlines from now */
	pthread_mutex_lock(&b->lock);
	table_each(&b->held, sresub_one, &r);
	if (r.n)
		qsort(r.v, r.n, sizeof(*r.v), by_slot);
	for (size_t i = 0; i < r.n;) {
		struct tentry *batch[SUBS_PER_COMMAND];
		size_t k = 0;
		unsigned slot = r.v[i].slot;
		while (i < r.n && k < SUBS_PER_COMMAND && r.v[i].slot == slot) {
			if (!slots) /* moved slots: the old owner's subscription went on meanwhile, keep its time */
				r.v[i].e->a = r.now;
			set_engine(b, r.v[i].e, true);
			batch[k++] = r.v[i++].e;
		}
		/* -ENOTCONN: the owner is down; it subscribes its slots when it is up */
		if (put_subs(b, &out, "SSUBSCRIBE", batch, (int)k) < 0 ||
		    shards_send(b->shards, slot, LINK_SUB, buf_head(&out), buf_used(&out)) == -ENOMEM)
			r.err = -ENOMEM;
		else
			total += k;
		buf_free(&out);
		out = (struct buf){0};
	}
	if (warm) { /* the beacon channel is up afresh: ask the senders for their clocks */
		beacon_asks_clear(&b->beacon);
		clock_request(b, NULL, 0);
	}
	pthread_mutex_unlock(&b->lock);
	free(r.v);
	if (r.err)
		log_error("cluster: some channels could not be subscribed again on a shard (out of memory); they are "
		          "retried when its link is next made");
	else if (total && slots)
		log_info("cluster: %zu channels of moved slots subscribed again", total);
}

static void sh_tick(void *arg) { on_tick(arg); }

static void sh_state(void *arg, bool up)
{
	struct bridge *b = arg;
	int known, nup;
	shards_counts(b->shards, &known, &nup);
	atomic_store(&b->m_shards, known);
	atomic_store(&b->m_shards_up, nup);
	/* Called once the map is known: from then on subscription changes go to
	 * the owners (one that is down subscribes its slots' channels when it
	 * is up) and publishes to theirs (dropped and counted for one that is
	 * down). Before, nothing is kept of names let go, and a shard coming up
	 * subscribes whatever is held then. */
	pthread_mutex_lock(&b->lock);
	bool first = !b->up;
	b->up = true;
	/* A shard down (the control channel's, perhaps): announcements may not
	 * flow, so nothing announced expires until every shard is back, and then
	 * everything gets the time it was down. */
	if (!up && !b->rp_frozen)
		b->rp_frozen = (uint64_t)now_ms();
	else if (up && b->rp_frozen) {
		rpats_extend(&b->rp, (uint64_t)now_ms() - b->rp_frozen);
		b->rp_frozen = 0;
	}
	if (first)
		sync_engine(b);
	pthread_mutex_unlock(&b->lock);
	if (up == atomic_load(&b->m_up))
		return;
	if (up) {
		long long down = now_ms() - atomic_load(&b->m_down_since);
		atomic_fetch_add(&b->m_down_ms, down);
		if (b->ever_up)
			stat_inc(STAT_cl_reconnects);
		log_info("cluster: every shard up (%d primaries) after %.1f s", known, (double)down / 1000);
		b->ever_up = true;
	} else {
		atomic_store(&b->m_down_since, now_ms());
		log_warn("cluster: %d of %d shard primaries up; publishes to the others are dropped and counted until the "
		         "map names a reachable owner", nup, known);
	}
	atomic_store(&b->m_up, up);
}

/* ---- the loop's handler ---- */

static void note_behind(struct bridge *b)
{
	bool behind = b->shards ? shards_behind(b->shards) : link_behind(b->link);
	atomic_store_explicit(&b->behind, behind, memory_order_relaxed);
}

static void loop_io(void *arg, int slot, bool rd, bool wr)
{
	struct bridge *b = arg;
	if (b->shards) {
		shards_io(b->shards, slot, rd, wr);
		note_behind(b);
		if (slot >= 2 && slot % 2 == LINK_PUB) {
			pthread_mutex_lock(&b->lock);
			b->backlog = shards_backlog(b->shards);
			pthread_mutex_unlock(&b->lock);
		}
		return;
	}
	link_io(b->link, slot, rd, wr);
	note_behind(b);
	if (slot == LINK_PUB && link_is_up(b->link)) {
		pthread_mutex_lock(&b->lock);
		b->backlog = link_backlog(b->link, LINK_PUB);
		pthread_mutex_unlock(&b->lock);
	}
}

static void loop_timer(void *arg)
{
	struct bridge *b = arg;
	if (b->shards)
		shards_timer(b->shards);
	else
		link_timer(b->link);
	note_behind(b);
}

static void loop_wake(void *arg)
{
	struct bridge *b = arg;
	if (b->shards)
		shards_read_more(b->shards);
	else
		link_read_more(b->link, true);
	note_behind(b);
	if (b->shards ? !b->up : !link_is_up(b->link))
		return;
	pthread_mutex_lock(&b->lock);
	sync_engine(b);
	if (b->shards && b->pat_changed && b->ann_burst < ANNOUNCE_BURST) {
		b->ann_burst++; /* a client flapping a pattern costs the others at most this many a second */
		announce(b);
	}
	pthread_mutex_unlock(&b->lock);
	if (b->link) { /* the batch goes out now, not a loop turn later */
		link_flush(b->link);
		if (link_is_up(b->link)) {
			pthread_mutex_lock(&b->lock);
			b->backlog = link_backlog(b->link, LINK_PUB);
			pthread_mutex_unlock(&b->lock);
		}
	}
}

/* ---- start, stop, metrics ---- */

/* Sharded: the control channel and our inbox, held for good (patterns.h):
 * subscribed like a client's channel on their slots' owners. */
static int pattern_channels(struct bridge *b)
{
	char name[64];
	size_t big = b->cfg->max_message > b->cfg->max_channel ? b->cfg->max_message : b->cfg->max_channel;
	b->ann_max = big < PAT_ANN_BYTES ? big : PAT_ANN_BYTES; /* within every node's max_bulk */
	b->bucket = (unsigned)(b->origin % PAT_BUCKETS);
	/* Longer than an announcement period plus the time the link takes to
	 * find a hung shard (a PING each tick, answered within the connect
	 * timeout): a control channel's shard that hangs freezes the expiry
	 * (sh_state) before an announcement made just before it expires. */
	b->rp.ttl = 2 * PAT_ANNOUNCE_TICKS * LINK_TICK_MS + (uint64_t)b->cfg->cluster_connect_timeout_ms + 2 * LINK_TICK_MS;
	for (unsigned k = 0; k < PAT_BUCKETS; k++) {
		char chan[128];
		int n = snprintf(chan, sizeof(chan), "%s" INBOX_NAME, b->prefix, k);
		if (n < 0 || (size_t)n >= sizeof(chan))
			return -EINVAL;
		b->inbox_slot[k] = (uint16_t)cluster_slot(chan, (size_t)n);
	}
	for (int i = 0; i < 2; i++) {
		int n = i ? snprintf(name, sizeof(name), "c" INBOX_NAME, b->bucket) : snprintf(name, sizeof(name), "c" CTL_NAME);
		struct tentry *e = table_put(&b->held, name, (size_t)n);
		if (!e)
			return -ENOMEM;
		e->flags = H_WANT;
	}
	return 0;
}

const struct loop_guest *bridge_guest(struct bridge *b) { return cl_host_guest(b->host); }

static unsigned long delivered(void *arg) { return ((struct bridge *)arg)->delivered; }

static uint64_t boot_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct bridge *bridge_start(struct exchange *ex, const struct config *cfg)
{
	struct bridge *b = calloc(1, sizeof(*b));
	const char *why = NULL;
	if (!b)
		return NULL;
	pthread_mutex_init(&b->lock, NULL);
	b->ex = ex;
	b->cfg = cfg;
	b->prefix = cfg->cluster_prefix;
	b->plen = strlen(b->prefix);
	b->boot = boot_ms();
	b->seen.lru = true;
	warmup_init(&b->warm, warmup_cost(cfg->max_channel, cfg->max_channel, cfg->max_message)); /* one of each fits */
	b->limit = QUEUE_MIN > 4 * cfg->max_message ? QUEUE_MIN : 4 * cfg->max_message;
	atomic_store(&b->m_down_since, now_ms());
	if (cluster_url_parse(cfg->cluster, &b->url, &why) < 0) { /* config.c checked it */
		log_error("cluster: --cluster %s: %s", cfg->cluster, why);
		goto fail;
	}
	if (getrandom(&b->origin, sizeof(b->origin), 0) != sizeof(b->origin)) {
		log_error("cluster: getrandom: %s", strerror(errno));
		goto fail;
	}
	if (b->url.tls && !(b->tls = tls_client_ctx_new(cfg->cluster_ca, cfg->cluster_insecure)))
		goto fail;
	if (b->url.tls && cfg->cluster_insecure)
		log_warn("cluster: --cluster-insecure: the engine's certificate is not verified");
	if (cluster_password(cfg, &b->url, &why) < 0) { /* config.c checked it; the file may have changed since */
		log_error("cluster: --cluster-password-file: %s", why);
		goto fail;
	}
	if (cfg->cluster_key_file && sign_key_load(cfg->cluster_key_file, &b->key, &why) < 0) {
		log_error("cluster: --cluster-key-file %s: %s", cfg->cluster_key_file, why);
		goto fail;
	}
	b->host = cl_host_new();
	/* One reply holds a message (at most --max-message, more is not ours),
	 * its channel and pattern, an envelope and RESP framing; one bulk string
	 * of it at most the message and its envelope. */
	struct link_limits lim = {
		.max_reply = cfg->max_message + 2 * cfg->max_channel + ENVELOPE_HEAD_MAX + 1024 + b->plen * 2,
		.max_bulk = (cfg->max_message > cfg->max_channel ? cfg->max_message : cfg->max_channel) + ENVELOPE_HEAD_MAX +
		            b->plen + 1024 + cfg->max_channel + 1, /* an inbox copy: "<channel> <envelope>" */
		.backoff_max_ms = cfg->cluster_backoff_max_ms,
		.connect_timeout_ms = cfg->cluster_connect_timeout_ms,
		/* The subscriber connection: subscription changes beyond the whole
		 * resubscription at link up (its grace, bounded by HELD_BYTES); the
		 * publisher connection: the publish queue and a tick's markers. */
		.max_out = {[LINK_SUB] = QUEUE_MIN, [LINK_PUB] = b->limit + SENT_BYTES + QUEUE_MIN},
		.pass_work = LINK_PASS_DELIVERIES,
	};
	struct link_handler lh = {.up = on_up, .down = on_down, .tick = on_tick, .reply = on_reply, .arg = b,
	                          .work = delivered};
	struct shards_handler sh = {.message = sh_message, .wanted = sh_wanted, .resub = sh_resub, .tick = sh_tick,
	                            .state = sh_state, .arg = b};
	if (!b->host ||
	    (b->url.sharded ? !(b->shards = shards_new(&b->url, cfg->cluster_hosts, b->tls, cl_host_loop(b->host), &sh, &lim))
	                    : !(b->link = link_new(&b->url, b->tls, cl_host_loop(b->host), &lh, &lim)))) {
		log_error("cluster: out of memory");
		goto fail;
	}
	cl_host_set_handler(b->host, &(struct cl_handler){loop_io, loop_timer, loop_wake, b});
	exchange_set_hook(ex, &(struct exchange_hook){hook_held, hook_published, b});
	log_info("cluster: node %016llx boot %llu, engine channels prefixed '%s'; envelopes %s%s", (unsigned long long)b->origin,
	         (unsigned long long)b->boot, b->prefix, b->key ? "authenticated (HMAC-SHA256)" : "not authenticated",
	         b->url.pass[0] ? "; AUTH with a password" : "");
	if (b->shards && b->key) {
		char chan[128];
		int cl = snprintf(chan, sizeof(chan), "%s" BEACON_NAME, b->prefix);
		b->beacon_slot = cl > 0 && (size_t)cl < sizeof(chan) ? cluster_slot(chan, (size_t)cl) : 0;
	}
	if ((b->shards && pattern_channels(b) < 0) || (b->key && beacon_channel(b) < 0)) {
		log_error("cluster: out of memory");
		exchange_set_hook(ex, &(struct exchange_hook){0});
		goto fail;
	}
	/* Recorded by the host until a loop attaches it (bridge_guest). */
	if (b->shards)
		shards_start(b->shards);
	else
		link_start(b->link);
	return b;
fail:
	bridge_stop(b);
	return NULL;
}

void bridge_stop(struct bridge *b)
{
	if (!b)
		return;
	link_free(b->link);
	shards_free(b->shards);
	cl_host_free(b->host);
	tls_ctx_free(b->tls);
	sign_key_free(b->key);
	memset(b->url.pass, 0, sizeof(b->url.pass));
	table_clear(&b->held);
	table_clear(&b->sent);
	table_clear(&b->seen);
	floors_clear(&b->floors);
	offsets_clear(&b->offsets);
	warmup_clear(&b->warm); /* the node stops: its clients are going, nobody gets these */
	table_clear(&b->lpat);
	rpats_clear(&b->rp);
	buf_free(&b->pubq);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

int bridge_metrics(void *bridge, struct buf *out, const char *model)
{
	struct bridge *b = bridge;
	int rc = metrics_counters(out, model, STAT__CLUSTER_FIRST, STAT__COUNT);
	if (rc < 0)
		return rc;
	bool up = atomic_load(&b->m_up);
	long long down = atomic_load(&b->m_down_ms) + (up ? 0 : now_ms() - atomic_load(&b->m_down_since));
	char text[1024];
	int n = snprintf(text, sizeof(text),
	                 "# HELP weft_cluster_link_up 1 while the link to the engine (--cluster) is up\n"
	                 "# TYPE weft_cluster_link_up gauge\n"
	                 "weft_cluster_link_up{model=\"%s\"} %d\n"
	                 "# HELP weft_cluster_disconnected_seconds_total time without a link to the engine\n"
	                 "# TYPE weft_cluster_disconnected_seconds_total counter\n"
	                 "weft_cluster_disconnected_seconds_total{model=\"%s\"} %.3f\n"
	                 "# HELP weft_cluster_subscriptions engine subscriptions this node holds for its clients\n"
	                 "# TYPE weft_cluster_subscriptions gauge\n"
	                 "weft_cluster_subscriptions{model=\"%s\",kind=\"channel\"} %ld\n"
	                 "weft_cluster_subscriptions{model=\"%s\",kind=\"pattern\"} %ld\n",
	                 model, up, model, (double)down / 1000, model, atomic_load(&b->m_chans), model,
	                 atomic_load(&b->m_pats));
	if (n < 0 || (size_t)n >= sizeof(text))
		return -EINVAL;
	if (b->url.sharded) {
		int k = snprintf(text + n, sizeof(text) - (size_t)n,
		                 "# HELP weft_cluster_shards redis-cluster://: shard primaries in the slot map, and those linked\n"
		                 "# TYPE weft_cluster_shards gauge\n"
		                 "weft_cluster_shards{model=\"%s\",state=\"known\"} %d\n"
		                 "weft_cluster_shards{model=\"%s\",state=\"up\"} %d\n",
		                 model, atomic_load(&b->m_shards), model, atomic_load(&b->m_shards_up));
		if (k < 0 || (size_t)k >= sizeof(text) - (size_t)n)
			return -EINVAL;
		n += k;
	}
	return buf_append(out, text, (size_t)n);
}
