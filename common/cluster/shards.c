/* shards.c - the Redis Cluster engine (shards.h): the slot map, a link per
 * shard primary, the map link, and the loop multiplexer between them. */
#include "shards.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "hosts.h"
#include "log.h"
#include "server.h"
#include "stats.h"

#define NO_OWNER 0xff
#define REFRESH_GAP_MS 200    /* at most one CLUSTER NODES this often */
#define REFRESH_EVERY_MS 5000 /* and one at least this often, for changes nobody told us of */
#define MAP_BYTES (1u << 20)  /* CLUSTER NODES text: ~200 bytes a node */
#define KNOWN_MAX 64          /* nodes the map link may try */

/* A cl_loop of its own for one link: its two fd slots at base, its timer. */
struct vloop {
	struct cl_loop base; /* first */
	struct shards *s;
	int slot0;
	long long at;
};

struct shard {
	struct vloop v;
	struct link *link; /* NULL: a free entry */
	struct cluster_url url;
	bool up;
	bool seen; /* in the map being read */
	bool pending_all; /* its slots are marked in pending already (until the map is read) */
	struct shards *s;
};

struct addr {
	char host[CLUSTER_HOST_MAX + 1];
	int port;
};

struct shards {
	struct cl_loop *loop; /* the host */
	struct cluster_url url;
	struct tls_ctx *tls;
	struct link_limits lim;
	struct shards_handler h;
	const char *hosts; /* --cluster-hosts (hosts.h); NULL: the seeds' hosts only */
	long long host_warn_at; /* an address refused: logged at most this often */
	unsigned host_warn_held;
	/* the map link */
	struct vloop cv;
	struct link *ctl;
	bool ctl_up, asked; /* a CLUSTER NODES is on its way */
	struct addr known[KNOWN_MAX];
	int nknown, next_try;
	struct addr ctl_at; /* the node the map link is made to */
	/* the map */
	struct shard sh[SHARDS_MAX];
	uint8_t owner[CLUSTER_SLOTS];
	uint8_t next_owner[CLUSTER_SLOTS]; /* the map being read */
	uint64_t pending[CLUSTER_SLOTS / 64]; /* slots to subscribe again once the map is read */
	bool map_known, all_up;
	bool want_refresh;
	long long refresh_after, last_refresh, tick_at;
	long long map_warn_at; /* a map refused: logged at most this often */
	unsigned map_warn_held;
	int nfull_warned; /* primaries past SHARDS_MAX in the last map (logged) */
};

/* ---- the multiplexer ---- */

static void rearm(struct shards *s)
{
	long long at = s->tick_at;
	if (s->cv.at && (!at || s->cv.at < at))
		at = s->cv.at;
	for (int i = 0; i < SHARDS_MAX; i++)
		if (s->sh[i].link && s->sh[i].v.at && (!at || s->sh[i].v.at < at))
			at = s->sh[i].v.at;
	if (s->want_refresh && (!at || s->refresh_after < at))
		at = s->refresh_after > 0 ? s->refresh_after : 1;
	cl_timer(s->loop, at);
}

static void v_watch(struct cl_loop *l, int slot, int fd, bool rd, bool wr)
{
	struct vloop *v = (struct vloop *)l;
	cl_watch(v->s->loop, v->slot0 + slot, fd, rd, wr);
}

static void v_timer(struct cl_loop *l, long long at)
{
	struct vloop *v = (struct vloop *)l;
	v->at = at;
	rearm(v->s);
}

static void v_wake(struct cl_loop *l) { cl_wake(((struct vloop *)l)->s->loop); }

static const struct cl_loop_ops v_ops = {v_watch, v_timer, v_wake};

/* ---- the map ---- */

static void set_state(struct shards *s)
{
	int known, up;
	shards_counts(s, &known, &up);
	bool all = s->map_known && known > 0 && up == known;
	for (unsigned i = 0; all && i < CLUSTER_SLOTS; i++)
		if (s->owner[i] == NO_OWNER)
			all = false;
	s->all_up = all;
	s->h.state(s->h.arg, all); /* every time: the counts of shards up change too */
}

static void refresh(struct shards *s)
{
	if (!s->want_refresh) {
		s->want_refresh = true;
		long long soon = s->last_refresh + REFRESH_GAP_MS;
		s->refresh_after = soon > now_ms() ? soon : now_ms();
	}
	rearm(s);
}

/* Ask the map link for CLUSTER NODES now, if it can. */
static void ask(struct shards *s)
{
	static const char cmd[] = "*2\r\n$7\r\nCLUSTER\r\n$5\r\nNODES\r\n";
	if (!s->ctl_up || s->asked)
		return;
	if (link_send(s->ctl, LINK_PUB, cmd, sizeof(cmd) - 1) == 0) {
		s->asked = true;
		s->want_refresh = false;
		s->last_refresh = now_ms();
		stat_inc(STAT_cl_map_refreshes);
	}
}

static void mark_pending(struct shards *s, unsigned slot) { s->pending[slot / 64] |= 1ull << (slot % 64); }

static int shard_index(const struct shard *sh) { return (int)(sh - sh->s->sh); }

static void sh_up(void *arg)
{
	struct shard *sh = arg;
	struct shards *s = sh->s;
	sh->up = true;
	s->h.resub(s->h.arg, shard_index(sh), NULL);
	set_state(s);
}

static void sh_down(void *arg)
{
	struct shard *sh = arg;
	sh->up = false;
	stat_inc(STAT_cl_shard_lost);
	set_state(sh->s);
	refresh(sh->s); /* a failover, maybe: who owns its slots now? */
}

static void sh_failed(void *arg) { refresh(((struct shard *)arg)->s); }

static void sh_tick(void *arg) { (void)arg; }

/* "MOVED 1234 host:port" / "ASK 1234 host:port": the slot, or -1. */
static int redirect_slot(const redisReply *r)
{
	const char *p = NULL;
	if (r->len > 6 && strncmp(r->str, "MOVED ", 6) == 0)
		p = r->str + 6;
	else if (r->len > 4 && strncmp(r->str, "ASK ", 4) == 0)
		p = r->str + 4;
	if (!p)
		return -1;
	char *end;
	long v = strtol(p, &end, 10);
	return end != p && v >= 0 && v < CLUSTER_SLOTS ? (int)v : -1;
}

static bool is_word(const redisReply *r, const char *w)
{
	return (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) && r->len == strlen(w) &&
	       memcmp(r->str, w, r->len) == 0;
}

static int sh_reply(void *arg, enum link_conn conn, redisReply *r)
{
	struct shard *sh = arg;
	struct shards *s = sh->s;
	if (r->type == REDIS_REPLY_ERROR) {
		int slot = redirect_slot(r);
		if (conn == LINK_PUB) {
			/* An SPUBLISH the shard does not own (any more): lost, counted
			 * here and as a gap by its receivers. */
			stat_inc(slot >= 0 ? STAT_cl_dropped_moved : STAT_cl_dropped_down);
		} else {
			/* An SSUBSCRIBE refused: subscribe that slot again, or with no
			 * slot named (CLUSTERDOWN, TRYAGAIN) every slot of this shard,
			 * once the map is read again. */
			stat_inc(STAT_cl_slot_moves);
			if (slot >= 0)
				mark_pending(s, (unsigned)slot);
			else if (!sh->pending_all) /* once per map read, not per error: a flood of them costs nothing */
				for (unsigned i = 0; i < CLUSTER_SLOTS; i++)
					if (s->owner[i] == shard_index(sh))
						mark_pending(s, i);
			sh->pending_all |= slot < 0;
		}
		refresh(s);
		return 0;
	}
	if (conn == LINK_PUB)
		return 0; /* :N, the shard's receivers */
	if (r->type != REDIS_REPLY_ARRAY || r->elements < 3) {
		stat_inc(STAT_cl_malformed);
		return 0;
	}
	redisReply **e = r->element;
	if (r->elements == 3 && is_word(e[0], "smessage")) {
		s->h.message(s->h.arg, e[1], e[2]);
	} else if (r->elements == 3 && is_word(e[0], "sunsubscribe")) {
		/* Ours, or the slot moved (the old owner tells its subscribers so): if
		 * we still hold the channel, find its owner and subscribe there. */
		if ((e[1]->type == REDIS_REPLY_STRING) && s->h.wanted(s->h.arg, e[1]->str, e[1]->len)) {
			stat_inc(STAT_cl_slot_moves);
			mark_pending(s, cluster_slot(e[1]->str, e[1]->len));
			refresh(s);
		}
	} else if (!is_word(e[0], "ssubscribe")) {
		stat_inc(STAT_cl_malformed);
	}
	return 0;
}

static void shard_drop(struct shards *s, int i)
{
	struct shard *sh = &s->sh[i];
	link_free(sh->link);
	sh->link = NULL;
	sh->up = false;
	sh->v.at = 0;
}

static int shard_find(struct shards *s, const char *host, int port)
{
	for (int i = 0; i < SHARDS_MAX; i++)
		if (s->sh[i].link && s->sh[i].url.port == port && strcmp(s->sh[i].url.host, host) == 0)
			return i;
	return -1;
}

static int shard_add(struct shards *s, const char *host, int port)
{
	for (int i = 0; i < SHARDS_MAX; i++) {
		struct shard *sh = &s->sh[i];
		if (sh->link)
			continue;
		sh->url = s->url;
		snprintf(sh->url.host, sizeof(sh->url.host), "%s", host);
		sh->url.port = port;
		sh->s = s;
		sh->v = (struct vloop){.base = {&v_ops}, .s = s, .slot0 = 2 + 2 * i};
		struct link_handler lh = {.up = sh_up, .down = sh_down, .tick = sh_tick, .reply = sh_reply,
		                          .arg = sh, .failed = sh_failed};
		struct link_limits lim = s->lim;
		lim.pub_bulk = 0;
		sh->link = link_new(&sh->url, s->tls, &sh->v.base, &lh, &lim);
		if (!sh->link)
			return -1;
		link_start(sh->link);
		return i;
	}
	return -1;
}

/* One "host:port@cport[,hostname]" (IPv6 hosts have colons: the port is
 * after the last one before '@'). The host may be empty (":7000@17000": a
 * node that has met no other does not know its address). */
static bool parse_addr(const char *p, size_t n, struct addr *a)
{
	const char *at = memchr(p, '@', n);
	size_t hn = at ? (size_t)(at - p) : n;
	const char *colon = NULL;
	for (size_t i = 0; i < hn; i++)
		if (p[i] == ':')
			colon = p + i;
	if (!colon || (size_t)(colon - p) > CLUSTER_HOST_MAX)
		return false;
	long port = 0;
	for (const char *q = colon + 1; q < p + hn; q++) {
		if (*q < '0' || *q > '9' || port > 65535)
			return false;
		port = port * 10 + (*q - '0');
	}
	if (port < 1 || port > 65535)
		return false;
	memcpy(a->host, p, (size_t)(colon - p));
	a->host[colon - p] = '\0';
	a->port = (int)port;
	return true;
}

static bool has_flag(const char *flags, size_t n, const char *f)
{
	size_t fl = strlen(f);
	for (const char *p = flags; p < flags + n;) {
		const char *c = memchr(p, ',', (size_t)(flags + n - p));
		size_t k = c ? (size_t)(c - p) : (size_t)(flags + n - p);
		if (k == fl && memcmp(p, f, k) == 0)
			return true;
		p += k + 1;
	}
	return false;
}

/* Up to 5 decimal digits, nothing else (not strtol: it skips white space,
 * past the line's end too, and reads "junk" as 0). */
static bool parse_num(const char *p, size_t n, long *v)
{
	if (n < 1 || n > 5)
		return false;
	*v = 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		*v = *v * 10 + (p[i] - '0');
	}
	return true;
}

/* One slot token: "N" or "A-B" ("[N->-id]" / "[N-<-id]", migrations in
 * flight, and anything else: false). */
static bool parse_slots(const char *p, size_t n, long *lo, long *hi)
{
	const char *dash = memchr(p, '-', n);
	if (!dash)
		return parse_num(p, n, lo) && (*hi = *lo, true);
	return parse_num(p, (size_t)(dash - p), lo) && parse_num(dash + 1, n - (size_t)(dash - p) - 1, hi);
}

/* A node of the map on a host not allowed (hosts.h): not connected to, so
 * its slots have no owner. Counted; logged at most once per 10 s. */
static void refuse_host(struct shards *s, const struct addr *a)
{
	stat_inc(STAT_cl_hosts_refused);
	long long now = now_ms();
	if (now < s->host_warn_at) {
		s->host_warn_held++;
		return;
	}
	char more[64] = "";
	if (s->host_warn_held)
		snprintf(more, sizeof(more), "; %u similar lines not logged", s->host_warn_held);
	log_warn("cluster: the slot map names %s:%d, not a seed's host nor in --cluster-hosts: not connected to "
	         "(it would get the password)%s",
	         a->host, a->port, more);
	s->host_warn_at = now + 10000;
	s->host_warn_held = 0;
}

/* The CLUSTER NODES text: who owns which slot. */
static void read_map(struct shards *s, const char *text, size_t len)
{
	uint8_t *owner = s->next_owner;
	memset(owner, NO_OWNER, CLUSTER_SLOTS);
	for (int i = 0; i < SHARDS_MAX; i++)
		s->sh[i].seen = false;
	int nknown = 0, nfull = 0;
	for (const char *line = text, *end = text + len; line < end;) {
		const char *nl = memchr(line, '\n', (size_t)(end - line));
		const char *le = nl ? nl : end;
		const char *f[9];
		size_t fn[9];
		int k = 0;
		const char *p = line;
		while (p < le && k < 8) { /* then p is at the slots */
			const char *sp = memchr(p, ' ', (size_t)(le - p));
			const char *fe = sp ? sp : le;
			f[k] = p;
			fn[k++] = (size_t)(fe - p);
			p = fe + 1;
		}
		struct addr a;
		bool ok = k == 8 && parse_addr(f[1], fn[1], &a) && !has_flag(f[2], fn[2], "noaddr") &&
		          !has_flag(f[2], fn[2], "handshake");
		/* No host: only the node answering can mean itself so (a cluster of
		 * one primary); it is the one the map link is made to. */
		if (ok && !a.host[0])
			ok = has_flag(f[2], fn[2], "myself") && (memcpy(a.host, s->ctl_at.host, sizeof(a.host)), true);
		if (ok && shard_find(s, a.host, a.port) < 0 && !cluster_hosts_allow(&s->url, s->hosts, a.host)) {
			refuse_host(s, &a); /* no connection there: it would get our AUTH */
			ok = false;
		}
		if (ok) {
			if (nknown < KNOWN_MAX)
				s->known[nknown++] = a;
			if (has_flag(f[2], fn[2], "master") && p < le) {
				int i = shard_find(s, a.host, a.port);
				if (i < 0 && (i = shard_add(s, a.host, a.port)) < 0)
					nfull++;
				if (i >= 0) {
					s->sh[i].seen = true;
					/* the slots: "N", "A-B"; "[N->-id]" / "[N-<-id]" are migrations in flight */
					while (p < le) {
						const char *sp = memchr(p, ' ', (size_t)(le - p));
						const char *fe = sp ? sp : le;
						long lo, hi;
						if (parse_slots(p, (size_t)(fe - p), &lo, &hi))
							for (long x = lo; x <= hi && x < CLUSTER_SLOTS; x++)
								owner[x] = (uint8_t)i;
						p = fe + 1;
					}
				}
			}
		}
		line = le + 1;
	}
	if (nknown)
		s->nknown = nknown;
	if (nfull && nfull != s->nfull_warned)
		log_warn("cluster: the map names more than %d primaries: %d not used (their slots are not served)",
		         SHARDS_MAX, nfull);
	s->nfull_warned = nfull; /* said again when that changes, not at every read of the same map */
	/* Slots whose owner changed: subscribe their channels on the new owner. */
	for (unsigned x = 0; x < CLUSTER_SLOTS; x++)
		if (owner[x] != s->owner[x] && owner[x] != NO_OWNER && s->map_known)
			mark_pending(s, x);
	memcpy(s->owner, owner, CLUSTER_SLOTS);
	for (int i = 0; i < SHARDS_MAX; i++)
		if (s->sh[i].link && !s->sh[i].seen) {
			log_info("cluster: %s owns no slot any more; its link is closed", link_what(s->sh[i].link));
			shard_drop(s, i);
		}
	bool first = !s->map_known;
	s->map_known = true;
	if (first) {
		int known, up;
		shards_counts(s, &known, &up);
		log_info("cluster: slot map read: %d primaries", known);
		s->tick_at = now_ms() + LINK_TICK_MS;
	}
	/* An owner that is up subscribes its pending slots now; one that is not
	 * subscribes all of its slots when its link comes up. */
	for (int i = 0; i < SHARDS_MAX; i++)
		if (s->sh[i].link && s->sh[i].up) {
			link_burst(s->sh[i].link, true); /* a resubscription: not held to the queue's bound */
			s->h.resub(s->h.arg, i, s->pending);
			link_burst(s->sh[i].link, false);
		}
	memset(s->pending, 0, sizeof(s->pending));
	for (int i = 0; i < SHARDS_MAX; i++)
		s->sh[i].pending_all = false;
	set_state(s);
	rearm(s);
}

/* ---- the map link ---- */

static void ctl_up(void *arg)
{
	struct shards *s = arg;
	s->ctl_up = true;
	s->asked = false;
	s->want_refresh = true;
	ask(s);
}

static void ctl_down(void *arg)
{
	struct shards *s = arg;
	s->ctl_up = false;
	s->asked = false;
}

/* The map link's node cannot be reached: try the next one the last map
 * named, then the seeds (the named ones may all be gone: a cluster moved to
 * new addresses behind the same seed names). */
static void ctl_failed(void *arg)
{
	struct shards *s = arg;
	int n = s->nknown + s->url.nseeds;
	if (n <= 1)
		return;
	s->next_try = (s->next_try + 1) % n;
	if (s->next_try < s->nknown)
		s->ctl_at = s->known[s->next_try];
	else {
		int i = s->next_try - s->nknown;
		snprintf(s->ctl_at.host, sizeof(s->ctl_at.host), "%s", s->url.seed_host[i]);
		s->ctl_at.port = s->url.seed_port[i];
	}
	link_retarget(s->ctl, s->ctl_at.host, s->ctl_at.port);
}

static void ctl_tick(void *arg) { (void)arg; }

static int ctl_reply(void *arg, enum link_conn conn, redisReply *r)
{
	struct shards *s = arg;
	if (conn != LINK_PUB)
		return 0; /* the map link's subscriber connection says nothing */
	s->asked = false;
	if (r->type == REDIS_REPLY_STRING) {
		read_map(s, r->str, r->len);
	} else {
		/* Not a cluster node (or refused): drop the link, the back-off grows.
		 * Logged at most once per 10 s, with the count held back. */
		long long now = now_ms();
		if (now >= s->map_warn_at) {
			char more[64] = "";
			if (s->map_warn_held)
				snprintf(more, sizeof(more), "; %u similar lines not logged", s->map_warn_held);
			log_warn("cluster: CLUSTER NODES on %s: %.*s (redis-cluster:// needs a Redis Cluster node; one Redis is "
			         "redis://)%s",
			         link_what(s->ctl), (int)(r->len > 200 ? 200 : r->len), r->str ? r->str : "not a string", more);
			s->map_warn_at = now + 10000;
			s->map_warn_held = 0;
		} else {
			s->map_warn_held++;
		}
		return -EPROTO;
	}
	if (s->want_refresh)
		rearm(s);
	return 0;
}

/* ---- the rest ---- */

struct shards *shards_new(const struct cluster_url *u, const char *hosts, struct tls_ctx *tls, struct cl_loop *loop,
                          const struct shards_handler *h, const struct link_limits *lim)
{
	struct shards *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->loop = loop;
	s->url = *u;
	s->tls = tls;
	s->lim = *lim;
	s->h = *h;
	s->hosts = hosts;
	memset(s->owner, NO_OWNER, sizeof(s->owner));
	snprintf(s->ctl_at.host, sizeof(s->ctl_at.host), "%s", u->host);
	s->ctl_at.port = u->port;
	s->cv = (struct vloop){.base = {&v_ops}, .s = s, .slot0 = 0};
	struct link_limits cl = *lim;
	cl.pub_bulk = MAP_BYTES;
	if (cl.max_reply < MAP_BYTES + 64)
		cl.max_reply = MAP_BYTES + 64;
	struct link_handler lh = {.up = ctl_up, .down = ctl_down, .tick = ctl_tick, .reply = ctl_reply, .arg = s,
	                          .failed = ctl_failed};
	if (!(s->ctl = link_new(&s->url, tls, &s->cv.base, &lh, &cl))) {
		free(s);
		return NULL;
	}
	return s;
}

void shards_free(struct shards *s)
{
	if (!s)
		return;
	for (int i = 0; i < SHARDS_MAX; i++)
		link_free(s->sh[i].link);
	link_free(s->ctl);
	free(s);
}

void shards_start(struct shards *s) { link_start(s->ctl); }

void shards_io(struct shards *s, int slot, bool rd, bool wr)
{
	if (slot < 2) {
		link_io(s->ctl, slot, rd, wr);
		return;
	}
	int i = slot / 2 - 1;
	if (i < SHARDS_MAX && s->sh[i].link)
		link_io(s->sh[i].link, slot % 2, rd, wr);
}

void shards_read_more(struct shards *s)
{
	link_read_more(s->ctl, false);
	for (int i = 0; i < SHARDS_MAX; i++)
		if (s->sh[i].link)
			link_read_more(s->sh[i].link, false);
}

void shards_timer(struct shards *s)
{
	long long now = now_ms();
	if (s->cv.at && s->cv.at <= now) {
		s->cv.at = 0;
		link_timer(s->ctl);
	}
	for (int i = 0; i < SHARDS_MAX; i++) {
		struct shard *sh = &s->sh[i];
		if (sh->link && sh->v.at && sh->v.at <= now) {
			sh->v.at = 0;
			link_timer(sh->link);
		}
	}
	if (s->tick_at && s->tick_at <= now) {
		s->tick_at = now + LINK_TICK_MS;
		if (now - s->last_refresh >= REFRESH_EVERY_MS || !s->all_up)
			refresh(s);
		s->h.tick(s->h.arg);
	}
	if (s->want_refresh && s->refresh_after <= now)
		ask(s);
	if (s->want_refresh && !s->ctl_up)
		s->refresh_after = now + REFRESH_GAP_MS; /* asked when the map link is up */
	rearm(s);
}

int shards_owner(const struct shards *s, unsigned slot)
{
	uint8_t o = s->owner[slot & (CLUSTER_SLOTS - 1)];
	return o == NO_OWNER ? -1 : o;
}

bool shards_slot_up(const struct shards *s, unsigned slot)
{
	int i = shards_owner(s, slot);
	return i >= 0 && s->sh[i].link && s->sh[i].up;
}

int shards_send(struct shards *s, unsigned slot, enum link_conn conn, const char *p, size_t n)
{
	int i = shards_owner(s, slot);
	if (i < 0 || !s->sh[i].link || !s->sh[i].up)
		return -ENOTCONN;
	return link_send(s->sh[i].link, conn, p, n);
}

size_t shards_backlog(const struct shards *s)
{
	size_t n = 0;
	for (int i = 0; i < SHARDS_MAX; i++)
		if (s->sh[i].link)
			n += link_backlog(s->sh[i].link, LINK_PUB);
	return n;
}

bool shards_behind(const struct shards *s)
{
	for (int i = 0; i < SHARDS_MAX; i++)
		if (s->sh[i].link && link_behind(s->sh[i].link))
			return true;
	return false;
}

void shards_counts(const struct shards *s, int *known, int *up)
{
	*known = *up = 0;
	for (int i = 0; i < SHARDS_MAX; i++)
		if (s->sh[i].link) {
			++*known;
			*up += s->sh[i].up;
		}
}
