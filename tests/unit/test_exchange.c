/* test_exchange.c - the chat exchange without a network: wire forms and
 * sharing, many publisher threads against owner threads that publish to
 * their own sessions (owner_bind: no lock, no wake), subscribe, unsubscribe,
 * attach and detach sessions while messages flow (one order for everyone,
 * nothing lost or doubled, every msg freed), local delivery's bookkeeping,
 * a subscriber that is not a session (channel and pattern messages, its
 * slow() on the hard limit), and the slow-consumer limits of owner_post for
 * sessions, bound and not. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chat.h"
#include "check.h"
#include "config.h"
#include "exchange.h"
#include "msg.h"
#include "owner.h"
#include "server.h"
#include "session.h"
#include "stats.h"

static struct config cfg;
static struct server srv;

static void no_wake(struct owner *o) { (void)o; }
static void no_ready(struct subscriber *sub, void *arg) { (void)sub, (void)arg; }

static void setup(void)
{
	memset(&cfg, 0, sizeof(cfg));
	cfg.max_subs = 1024;
	cfg.max_line = 65536;
	cfg.max_message = 1 << 20;
	cfg.read_pause = 1 << 20;
	cfg.outbox_hard = 32 << 20;
	cfg.outbox_soft = 8 << 20;
	cfg.outbox_soft_ms = 60000;
	memset(&srv, 0, sizeof(srv));
	srv.cfg = &cfg;
	srv.ex = exchange_new();
}

/* A mailbox with the slow-consumer limits the models give theirs: cfg's. */
static void mailbox(struct owner *o, void (*wake)(struct owner *o))
{
	owner_init(o, wake, NULL);
	o->limits = server_outbox_limits(&srv);
}

static struct session *conn(struct owner *o, enum ex_fmt fmt)
{
	struct session *s = session_new(&srv, o, false);
	if (s && chat_attach(s, fmt) < 0) {
		session_free(s);
		return NULL;
	}
	if (s)
		s->sub.loop_data = s;
	return s;
}

static void conn_free(struct session *s)
{
	chat_detach(s);
	session_free(s);
}

static size_t pow2(size_t n)
{
	size_t p = 64;
	while (p < n)
		p *= 2;
	return p;
}

/* Everything s would send, appended to out (which grows); returns its length. */
static size_t take(struct session *s, char **out, size_t *len)
{
	struct iovec iov[8];
	int n;
	while ((n = session_iov(s, iov, 8)) > 0) {
		size_t k = 0;
		for (int i = 0; i < n; i++) {
			/* Grow in powers of two: a realloc per message made this test
			 * quadratic under ASan (whose realloc always copies): 70 s. */
			size_t need = *len + iov[i].iov_len + 1;
			if (!*out || need > pow2(*len + 1))
				*out = realloc(*out, pow2(need));
			memcpy(*out + *len, iov[i].iov_base, iov[i].iov_len);
			*len += iov[i].iov_len;
			k += iov[i].iov_len;
		}
		(*out)[*len] = '\0';
		session_sent(s, k);
	}
	return *len;
}

static void test_forms(void)
{
	long live0 = msg_live_count();
	struct owner o;
	mailbox(&o, no_wake); /* not bound: every post is mail, as from another thread */
	struct session *a = conn(&o, EX_RESP), *b = conn(&o, EX_RESP), *l = conn(&o, EX_LINE), *p = conn(&o, EX_RESP);
	CHECK(chat_subscribe(a, "news", 4, false) == 1);
	CHECK(chat_subscribe(a, "news", 4, false) == 0);
	CHECK(chat_subscribe(b, "news", 4, false) == 1);
	CHECK(chat_subscribe(l, "news", 4, false) == 1);
	CHECK(chat_subscribe(p, "n*", 2, true) == 1);
	CHECK(chat_subscribe(p, "news", 4, false) == 1);
	CHECK(exchange_subscribers(srv.ex, "news", 4) == 4);
	CHECK(exchange_publish(srv.ex, "news", 4, "bob", "hi\nthere\\", 9) == 5);
	CHECK(exchange_publish(srv.ex, "other", 5, "bob", "x", 1) == 0);
	/* one RESP message msg shared by a, b and p's channel subscription */
	CHECK(a->sub.mail_count == 1 && b->sub.mail_count == 1);
	CHECK(a->sub.mail[0] == b->sub.mail[0] && p->sub.mail[0] == a->sub.mail[0]);
	CHECK(atomic_load(&a->sub.mail[0]->refs) == 3);
	CHECK(p->sub.mail_count == 2 && p->sub.mail[1] != p->sub.mail[0]);
	owner_drain(&o, no_ready, NULL);
	char *out = NULL;
	size_t len = 0;
	take(a, &out, &len);
	const char want[] = "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$9\r\nhi\nthere\\\r\n";
	CHECK(len == sizeof(want) - 1 && memcmp(out, want, len) == 0);
	len = 0;
	take(l, &out, &len);
	CHECK(len && strcmp(out, "MSG news bob hi\\nthere\\\\\n") == 0);
	len = 0;
	take(p, &out, &len);
	const char pwant[] = "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$9\r\nhi\nthere\\\r\n"
	                     "*4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$9\r\nhi\nthere\\\r\n";
	CHECK(len == sizeof(pwant) - 1 && memcmp(out, pwant, len) == 0);
	free(out);
	CHECK(chat_unsubscribe(a, "news", 4, false) == 1);
	CHECK(chat_unsubscribe(a, "news", 4, false) == 0);
	CHECK(exchange_subscribers(srv.ex, "news", 4) == 3);
	/* --max-subs */
	cfg.max_subs = 2;
	CHECK(chat_subscribe(a, "x1", 2, false) == 1);
	CHECK(chat_subscribe(a, "x2", 2, true) == 1);
	CHECK(chat_subscribe(a, "x3", 2, false) == -ENOSPC);
	cfg.max_subs = 1024;
	conn_free(a);
	conn_free(b);
	conn_free(l);
	conn_free(p);
	CHECK(exchange_subscribers(srv.ex, "news", 4) == 0);
	owner_destroy(&o);
	CHECK(msg_live_count() == live0);
}

/* A stand-in for ws_text_msg (the WebSocket layer is not linked here):
 * "WS[" + the line without its LF + "]". */
static struct msg *fake_frame(const void *line, size_t n)
{
	struct msg *m = msg_new(n + 3);
	if (m) {
		memcpy(m->data, "WS[", 3);
		memcpy(m->data + 3, line, n - 1);
		m->data[n + 2] = ']';
		m->len = n + 3;
	}
	return m;
}

/* The line protocol's /psub: a line or WebSocket subscriber of a pattern
 * gets PMSG <pattern> <channel> <from> <text>, one msg per pattern shared by
 * its subscribers of that format, beside the channel's MSG; from the engine
 * (exchange_publish_remote) the same. */
static void test_pattern_lines(void)
{
	long live0 = msg_live_count();
	struct owner o;
	mailbox(&o, no_wake);
	exchange_set_ws_framer(fake_frame);
	struct session *l = conn(&o, EX_LINE), *l2 = conn(&o, EX_LINE), *w = conn(&o, EX_WS);
	CHECK(chat_subscribe(l, "news", 4, false) == 1);
	CHECK(chat_subscribe(l, "n*", 2, true) == 1);
	CHECK(chat_subscribe(l, "*s", 2, true) == 1);
	CHECK(chat_subscribe(l2, "n*", 2, true) == 1);
	CHECK(chat_subscribe(w, "n*", 2, true) == 1);
	CHECK(chat_subscribe(w, "zz*", 3, true) == 1);
	CHECK(exchange_publish(srv.ex, "news", 4, "bob", "a\\b\n", 4) == 5);
	CHECK(l->sub.mail_count == 3 && l2->sub.mail_count == 1 && w->sub.mail_count == 1);
	CHECK(l->sub.mail[1] == l2->sub.mail[0]); /* n*'s line form, shared */
	CHECK(exchange_publish_remote(srv.ex, "n*", 2, "news", 4, "eve", "r", 1) == 3);
	CHECK(exchange_publish_remote(srv.ex, "zz*", 3, "news", 4, "eve", "r", 1) == 0); /* does not match */
	owner_drain(&o, no_ready, NULL);
	char *out = NULL;
	size_t len = 0;
	take(l, &out, &len);
	CHECK(len && strcmp(out, "MSG news bob a\\\\b\\n\n"
	                         "PMSG n* news bob a\\\\b\\n\n"
	                         "PMSG *s news bob a\\\\b\\n\n"
	                         "PMSG n* news eve r\n") == 0);
	len = 0;
	take(l2, &out, &len);
	CHECK(len && strcmp(out, "PMSG n* news bob a\\\\b\\n\nPMSG n* news eve r\n") == 0);
	len = 0;
	take(w, &out, &len);
	CHECK(len && strcmp(out, "WS[PMSG n* news bob a\\\\b\\n]WS[PMSG n* news eve r]") == 0);
	free(out);
	CHECK(chat_unsubscribe(l, "n*", 2, true) == 1);
	CHECK(exchange_publish(srv.ex, "news", 4, "bob", "x", 1) == 4);
	owner_drain(&o, no_ready, NULL);
	out = NULL;
	len = 0;
	take(l, &out, &len);
	CHECK(len && strcmp(out, "MSG news bob x\nPMSG *s news bob x\n") == 0);
	/* A channel only a RESP PUBLISH or another node can name: escaped, so
	 * its newline cannot end the line and forge a MSG, nor its space shift
	 * the words; a name a line client could use stays verbatim. */
	CHECK(exchange_publish_remote(srv.ex, "*s", 2, "n\nMSG a b\ts", 11, "eve", "r", 1) == 1);
	CHECK(exchange_publish(srv.ex, "a\\s", 3, "bob", "y", 1) == 1);
	owner_drain(&o, no_ready, NULL);
	len = 0;
	take(l, &out, &len);
	CHECK(len && strcmp(out, "PMSG *s n\\nMSG\\x20a\\x20b\\x09s eve r\nPMSG *s a\\s bob y\n") == 0);
	free(out);
	conn_free(l);
	conn_free(l2);
	conn_free(w);
	CHECK(exchange_counts(srv.ex).patterns == 0);
	exchange_set_ws_framer(NULL);
	owner_destroy(&o);
	CHECK(msg_live_count() == live0);
}

/* ---- many threads ---- */

#define PUBLISHERS 3
#define OWNERS 3
#define PER_OWNER 6 /* sessions: 0 and 1 stay, the rest churn */
#define MESSAGES 3000

static atomic_bool publishing_done, owners_stop_publishing;
static atomic_int owners_quiet, owners_published; /* owners done; owners that published once */

struct owner_thread {
	struct owner o;
	pthread_t thr;
	int id;
	struct session *s[PER_OWNER];
	char *out[PER_OWNER];
	size_t len[PER_OWNER];
	unsigned rnd;
	int published; /* its own messages, delivered locally to its sessions */
	bool quiet;
};

static void *publisher(void *arg)
{
	int id = (int)(long)arg;
	char m[32];
	for (int i = 0; i < MESSAGES; i++) {
		int n = snprintf(m, sizeof(m), "p%d:%d", id, i);
		exchange_publish(srv.ex, "c", 1, "pub", m, (size_t)n);
	}
	return NULL;
}

static void owner_step(struct owner_thread *t, bool churn)
{
	if (churn && !atomic_load(&owners_stop_publishing)) {
		char m[32];
		int n = snprintf(m, sizeof(m), "p%d:%d", PUBLISHERS + t->id, t->published++);
		exchange_publish(srv.ex, "c", 1, "pub", m, (size_t)n);
		if (t->published == 1)
			atomic_fetch_add(&owners_published, 1);
	} else if (churn && !t->quiet) {
		t->quiet = true; /* after its last publish, in program order */
		atomic_fetch_add(&owners_quiet, 1);
	}
	owner_drain(&t->o, no_ready, NULL);
	for (int i = 0; i < PER_OWNER; i++)
		take(t->s[i], &t->out[i], &t->len[i]);
	if (!churn)
		return;
	t->rnd = t->rnd * 1103515245 + 12345;
	int i = 2 + (int)((t->rnd >> 16) % (PER_OWNER - 2));
	switch ((t->rnd >> 8) % 3) {
	case 0: /* detach and free a whole session, attach a new one */
		conn_free(t->s[i]);
		t->s[i] = conn(&t->o, i % 2 ? EX_RESP : EX_LINE);
		chat_subscribe(t->s[i], "c", 1, false);
		break;
	case 1:
		chat_unsubscribe(t->s[i], "c", 1, false);
		break;
	default:
		chat_subscribe(t->s[i], "c", 1, false);
		break;
	}
}

static void *owner_main(void *arg)
{
	struct owner_thread *t = arg;
	owner_bind(&t->o);
	while (!atomic_load(&publishing_done)) {
		owner_step(t, true);
		struct timespec ts = {0, 50000};
		nanosleep(&ts, NULL);
	}
	owner_step(t, false); /* the last mail */
	return NULL;
}

/* The message payloads (p<id>:<seq>) in a line or RESP stream, in order;
 * returns how many, or -1 if the stream is malformed. */
static int payloads(const char *p, size_t n, bool resp, char ***out)
{
	int k = 0;
	*out = NULL;
	for (size_t i = 0; i < n;) {
		const char *start, *end;
		if (resp) {
			const char pre[] = "*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$";
			if (n - i < sizeof(pre) || memcmp(p + i, pre, sizeof(pre) - 1) != 0)
				return -1;
			size_t len = strtoul(p + i + sizeof(pre) - 1, (char **)&start, 10);
			start += 2;
			end = start + len;
			i = (size_t)(end - p) + 2;
		} else {
			if (strncmp(p + i, "MSG c pub ", 10) != 0)
				return -1;
			start = p + i + 10;
			end = memchr(start, '\n', n - (size_t)(start - p));
			if (!end)
				return -1;
			i = (size_t)(end - p) + 1;
		}
		*out = realloc(*out, (size_t)(k + 1) * sizeof(**out));
		(*out)[k++] = strndup(start, (size_t)(end - start));
	}
	return k;
}

static void free_payloads(char **v, int n)
{
	for (int i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Every payload of sub appears in ref, in the same order. */
static bool subsequence(char **sub, int ns, char **ref, int nr)
{
	int j = 0;
	for (int i = 0; i < ns; i++) {
		while (j < nr && strcmp(ref[j], sub[i]) != 0)
			j++;
		if (j == nr)
			return false;
		j++;
	}
	return true;
}

static void test_threads(void)
{
	long live0 = msg_live_count();
	static struct owner_thread ot[OWNERS];
	atomic_store(&publishing_done, false);
	atomic_store(&owners_stop_publishing, false);
	atomic_store(&owners_quiet, 0);
	atomic_store(&owners_published, 0);
	for (int t = 0; t < OWNERS; t++) {
		mailbox(&ot[t].o, no_wake);
		ot[t].id = t;
		ot[t].rnd = (unsigned)t * 7919u + 1;
		for (int i = 0; i < PER_OWNER; i++) {
			ot[t].s[i] = conn(&ot[t].o, i % 2 ? EX_RESP : EX_LINE);
			CHECK(chat_subscribe(ot[t].s[i], "c", 1, false) == 1);
		}
	}
	for (int t = 0; t < OWNERS; t++)
		pthread_create(&ot[t].thr, NULL, owner_main, &ot[t]);
	pthread_t pub[PUBLISHERS];
	for (long p = 0; p < PUBLISHERS; p++)
		pthread_create(&pub[p], NULL, publisher, (void *)p);
	for (int p = 0; p < PUBLISHERS; p++)
		pthread_join(pub[p], NULL);
	/* Every owner publishes while the others deliver (on a busy machine the
	 * publishers can finish before an owner thread ran once: wait, at most
	 * 10 s, and the check below says so if one never did). */
	for (int w = 0; w < 100000 && atomic_load(&owners_published) < OWNERS; w++) {
		struct timespec ts = {0, 100000};
		nanosleep(&ts, NULL);
	}
	/* The owners stop publishing first, so each one's last drain sees
	 * everything any of them published. */
	atomic_store(&owners_stop_publishing, true);
	while (atomic_load(&owners_quiet) < OWNERS) {
		struct timespec ts = {0, 100000};
		nanosleep(&ts, NULL);
	}
	atomic_store(&publishing_done, true);
	for (int t = 0; t < OWNERS; t++)
		pthread_join(ot[t].thr, NULL);

	/* the stable subscribers all saw every message once, in one order */
	char **ref = NULL;
	int nref = payloads(ot[0].out[0], ot[0].len[0], false, &ref);
	int own = 0;
	for (int t = 0; t < OWNERS; t++) {
		CHECK(ot[t].published > 0);
		own += ot[t].published;
	}
	CHECK(nref == PUBLISHERS * MESSAGES + own);
	int next[PUBLISHERS + OWNERS] = {0};
	bool per_pub_order = nref > 0;
	for (int i = 0; i < nref; i++) {
		int id, seq;
		if (sscanf(ref[i], "p%d:%d", &id, &seq) != 2 || id < 0 || id >= PUBLISHERS + OWNERS || seq != next[id]++)
			per_pub_order = false;
	}
	CHECK(per_pub_order);
	for (int t = 0; t < OWNERS; t++) {
		for (int i = 0; i < PER_OWNER; i++) {
			char **v;
			int n = payloads(ot[t].out[i], ot[t].len[i], i % 2, &v);
			CHECK(n >= 0);
			if (i < 2)
				CHECK(n == nref && subsequence(v, n, ref, nref));
			else
				CHECK(subsequence(v, n, ref, n > 0 ? nref : 0));
			free_payloads(v, n > 0 ? n : 0);
			conn_free(ot[t].s[i]);
			free(ot[t].out[i]);
		}
		owner_destroy(&ot[t].o);
	}
	free_payloads(ref, nref > 0 ? nref : 0);
	CHECK(exchange_subscribers(srv.ex, "c", 1) == 0);
	CHECK(msg_live_count() == live0);
}

/* ---- local delivery (owner_bind) ---- */

static int wakes;
static void count_wake(struct owner *o) { (void)o, wakes++; }

struct readied {
	struct session *v[8];
	int n;
	bool free_them;
};

static void note_ready(struct subscriber *sub, void *arg)
{
	struct readied *r = arg;
	struct session *s = sub->loop_data; /* as a model finds its connection */
	if (r->n < 8)
		r->v[r->n++] = s;
	if (r->free_them)
		conn_free(s);
}

static void *foreign_publish(void *arg)
{
	exchange_publish(srv.ex, "c", 1, "x", arg, strlen(arg));
	return NULL;
}

static void publish_elsewhere(const char *m)
{
	pthread_t th;
	pthread_create(&th, NULL, foreign_publish, (void *)m);
	pthread_join(th, NULL);
}

static void test_local(void)
{
	long live0 = msg_live_count();
	struct owner o;
	mailbox(&o, count_wake);
	owner_bind(&o);
	wakes = 0;
	struct session *a = conn(&o, EX_LINE), *b = conn(&o, EX_LINE);
	chat_subscribe(a, "c", 1, false);
	chat_subscribe(b, "c", 1, false);
	/* From the owner's own thread: straight into the output, copied (a
	 * small message leaves no msg behind), no mail, no wake. */
	CHECK(exchange_publish(srv.ex, "c", 1, "x", "m1", 2) == 2);
	CHECK(a->sub.mail_count == 0 && session_pending(a) == strlen("MSG c x m1\n") && wakes == 0);
	CHECK(msg_live_count() == live0 + 2); /* a's and b's output chunks, nothing shared */
	struct readied r = {0};
	owner_drain(&o, note_ready, &r);
	CHECK(r.n == 2 && r.v[0] != r.v[1] && (r.v[0] == a || r.v[0] == b) && (r.v[1] == a || r.v[1] == b));
	r.n = 0;
	owner_drain(&o, note_ready, &r);
	CHECK(r.n == 0); /* told once */

	/* Mail from another thread goes first: a later local post queues behind it. */
	publish_elsewhere("m2");
	CHECK(a->sub.mail_count == 1 && wakes == 1);
	CHECK(exchange_publish(srv.ex, "c", 1, "x", "m3", 2) == 2);
	CHECK(a->sub.mail_count == 2);
	owner_drain(&o, note_ready, &r);
	char *out = NULL;
	size_t len = 0;
	take(a, &out, &len);
	CHECK(len && strcmp(out, "MSG c x m1\nMSG c x m2\nMSG c x m3\n") == 0);
	len = 0;
	take(b, &out, &len);

	/* A large message is shared by reference, not copied. */
	char big[3000];
	memset(big, 'y', sizeof(big));
	CHECK(exchange_publish(srv.ex, "c", 1, "x", big, sizeof(big)) == 2);
	CHECK(msg_live_count() == live0 + 1); /* one msg, shared by a and b */

	/* A session freed while noted is forgotten: on the local list ... */
	conn_free(b);
	r.n = 0;
	owner_drain(&o, note_ready, &r);
	CHECK(r.n == 1 && r.v[0] == a);
	/* ... and while the drain walks the lists: a is on both (local first,
	 * then mail), and ready() frees it the first time it is told. */
	b = conn(&o, EX_LINE);
	chat_subscribe(b, "c", 1, false);
	len = 0;
	take(a, &out, &len);
	CHECK(exchange_publish(srv.ex, "c", 1, "x", "m4", 2) == 2);
	publish_elsewhere("m5");
	CHECK(a->sub.mail_count == 1 && a->sub.local_queued);
	r = (struct readied){.free_them = true};
	owner_drain(&o, note_ready, &r);
	CHECK(r.n == 2); /* a and b once each (ASan: never after the free) */
	free(out);
	owner_bind(NULL);
	owner_destroy(&o);
	CHECK(exchange_subscribers(srv.ex, "c", 1) == 0);
	CHECK(msg_live_count() == live0);
}

/* ---- a subscriber that is not a session ---- */

/* Appends every delivery to a buffer and never sends: the exchange and the
 * mailbox through the interface alone (subscriber.h). */
struct bufsub {
	struct subscriber sub;
	char *data;
	size_t len;
	int slow_calls, readied;
	bool slow_soft;
};

static void bufsub_deliver(struct subscriber *sub, struct msg *m)
{
	struct bufsub *b = (struct bufsub *)sub;
	char *d = realloc(b->data, b->len + m->len + 1);
	if (!d)
		abort();
	memcpy(d + b->len, m->data, m->len);
	b->len += m->len;
	d[b->len] = '\0';
	b->data = d;
}

static size_t bufsub_pending(const struct subscriber *sub) { return ((const struct bufsub *)sub)->len; }

static void bufsub_slow(struct subscriber *sub, bool soft)
{
	struct bufsub *b = (struct bufsub *)sub;
	b->slow_calls++;
	b->slow_soft = soft;
}

static const struct subscriber_ops bufsub_ops = {bufsub_deliver, bufsub_pending, bufsub_slow};

static void bufsub_ready(struct subscriber *sub, void *arg)
{
	(void)arg;
	((struct bufsub *)sub->loop_data)->readied++;
}

static void bufsub_init(struct bufsub *b, struct owner *o, size_t hard)
{
	memset(b, 0, sizeof(*b));
	b->sub.owner = o;
	b->sub.ops = &bufsub_ops;
	b->sub.loop_data = b;
	o->limits = (struct subscriber_limits){.hard = hard}; /* the mailbox's limits */
}

static void test_not_a_session(void)
{
	long live0 = msg_live_count();
	uint64_t hard0 = stat_sum(STAT_slow_hard);
	struct owner o;
	mailbox(&o, count_wake); /* not bound: mail and one wake */
	wakes = 0;
	struct bufsub b;
	bufsub_init(&b, &o, 1000);
	CHECK(exchange_subscribe(srv.ex, &b.sub, EX_RESP, "news", 4) == 1);
	CHECK(exchange_psubscribe(srv.ex, &b.sub, EX_RESP, "n*", 2) == 1);
	CHECK(exchange_psubscribe(srv.ex, &b.sub, EX_RESP, "n*", 2) == 0);
	CHECK(exchange_subscribers(srv.ex, "news", 4) == 1);
	CHECK(exchange_publish(srv.ex, "news", 4, "bob", "hi", 2) == 2);
	CHECK(exchange_publish(srv.ex, "other", 5, "bob", "x", 1) == 0);
	CHECK(b.len == 0 && b.sub.mail_count == 2 && wakes == 1); /* queued, not delivered */
	owner_drain(&o, bufsub_ready, NULL);
	const char want[] = "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n"
	                    "*4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$2\r\nhi\r\n";
	CHECK(b.len == sizeof(want) - 1 && b.data && memcmp(b.data, want, b.len) == 0);
	CHECK(b.readied == 1 && b.slow_calls == 0);

	/* The hard limit: it never reads, so pending grows until a post is
	 * refused; then slow() is called once, by the drain, and nothing more
	 * is delivered. */
	char m[100];
	memset(m, 'x', sizeof(m));
	int refused = -1;
	for (int i = 0; i < 20; i++) {
		CHECK(exchange_publish(srv.ex, "news", 4, "p", m, sizeof(m)) == 2); /* refused ones count too */
		if (refused < 0 && b.sub.slow)
			refused = i;
		owner_drain(&o, bufsub_ready, NULL);
	}
	CHECK(refused >= 2 && refused <= 4); /* ~270 bytes a publish, 1000 allowed */
	CHECK(b.slow_calls == 1 && !b.slow_soft && b.sub.slow_closed);
	CHECK(b.len <= 1000 && stat_sum(STAT_slow_hard) == hard0); /* the policy (and its counter) is the subscriber's */
	CHECK(exchange_unsubscribe(srv.ex, &b.sub, "news", 4) == 1);
	CHECK(exchange_punsubscribe(srv.ex, &b.sub, "n*", 2) == 1);
	owner_forget(&b.sub);
	free(b.data);

	/* On its own bound loop: delivered at once, no mail, no wake; the
	 * drain only says who has output. */
	owner_bind(&o);
	wakes = 0;
	bufsub_init(&b, &o, 0);
	CHECK(exchange_psubscribe(srv.ex, &b.sub, EX_LINE, "*", 1) == 1);
	CHECK(exchange_publish(srv.ex, "c", 1, "x", "m1", 2) == 1);
	CHECK(b.sub.mail_count == 0 && b.data && strcmp(b.data, "PMSG * c x m1\n") == 0 && wakes == 0);
	owner_drain(&o, bufsub_ready, NULL);
	CHECK(b.readied == 1);
	CHECK(exchange_punsubscribe(srv.ex, &b.sub, "*", 1) == 1);
	owner_forget(&b.sub);
	free(b.data);
	owner_bind(NULL);
	owner_destroy(&o);
	CHECK(msg_live_count() == live0);
}

/* ---- slow consumers ---- */

static void test_slow(bool bound)
{
	long live0 = msg_live_count();
	uint64_t hard0 = stat_sum(STAT_slow_hard), soft0 = stat_sum(STAT_slow_soft);
	struct owner o;
	mailbox(&o, no_wake);
	if (bound)
		owner_bind(&o); /* local posts: the verdict comes from the real output */
	cfg.outbox_hard = 10000;
	cfg.outbox_soft = 0;
	o.limits = server_outbox_limits(&srv);
	struct session *slow = conn(&o, EX_LINE), *fast = conn(&o, EX_RESP);
	chat_subscribe(slow, "c", 1, false);
	chat_subscribe(fast, "c", 1, false);
	char m[1000];
	memset(m, 'x', sizeof(m));
	char *out = NULL;
	size_t len = 0;
	int refused = -1;
	for (int i = 0; i < 100; i++) {
		CHECK(exchange_publish(srv.ex, "c", 1, "p", m, sizeof(m)) == 2);
		if (refused < 0 && slow->sub.slow)
			refused = i;
		owner_drain(&o, no_ready, NULL);
		len = 0;
		take(fast, &out, &len); /* fast reads; slow never does */
		CHECK(len > sizeof(m));
	}
	/* ~1 KB per message: refused at the tenth, never queued beyond the limit */
	CHECK(refused >= 8 && refused <= 10);
	CHECK(slow->sub.slow_closed && slow->closing);
	CHECK(session_pending(slow) < cfg.outbox_hard);
	CHECK(stat_sum(STAT_slow_hard) == hard0 + 1);
	len = 0;
	take(slow, &out, &len);
	CHECK(len && strstr(out, "ERR slow consumer") && out[len - 1] == '\n');
	CHECK(!strstr(out, "MSG c p")); /* nothing it had not started receiving */
	conn_free(slow);

	/* soft: over the soft limit for longer than outbox_soft_ms */
	cfg.outbox_hard = 1 << 20;
	cfg.outbox_soft = 3000;
	cfg.outbox_soft_ms = 300; /* not 30: a loaded machine (a parallel suite) can stall the test that long */
	o.limits = server_outbox_limits(&srv);
	chat_unsubscribe(fast, "c", 1, false);
	slow = conn(&o, EX_RESP);
	chat_subscribe(slow, "c", 1, false);
	for (int i = 0; i < 5; i++)
		exchange_publish(srv.ex, "c", 1, "p", m, sizeof(m));
	owner_drain(&o, no_ready, NULL);
	CHECK(!slow->sub.slow); /* over the soft limit, but not for long yet */
	struct timespec ts = {0, 310 * 1000000};
	nanosleep(&ts, NULL);
	exchange_publish(srv.ex, "c", 1, "p", m, sizeof(m));
	owner_drain(&o, no_ready, NULL);
	CHECK(slow->sub.slow_closed && stat_sum(STAT_slow_soft) == soft0 + 1);
	len = 0;
	take(slow, &out, &len);
	CHECK(len && strstr(out, "-ERR slow consumer") != NULL);
	conn_free(slow);
	conn_free(fast);
	free(out);
	owner_destroy(&o);
	cfg.outbox_hard = 32 << 20;
	cfg.outbox_soft = 8 << 20;
	cfg.outbox_soft_ms = 60000;
	owner_bind(NULL);
	CHECK(msg_live_count() == live0);
}

/* exchange_counts (PUBSUB NUMPAT, INFO, the /metrics gauges): a channel or
 * pattern counts once however many hold it, a subscription once per holder;
 * repeats and removals of what is not held change nothing. Nothing is
 * published, so the subscribers need no owner. */
static void test_counts(void)
{
	struct exchange *ex = exchange_new();
	struct subscriber a = {0}, b = {0};
	struct exchange_counts k = exchange_counts(ex);
	CHECK(k.channels == 0 && k.patterns == 0 && k.subscriptions == 0);
	CHECK(exchange_subscribe(ex, &a, EX_RESP, "news", 4) == 1);
	CHECK(exchange_subscribe(ex, &b, EX_LINE, "news", 4) == 1);
	CHECK(exchange_subscribe(ex, &a, EX_RESP, "news", 4) == 0);
	CHECK(exchange_subscribe(ex, &a, EX_RESP, "sport", 5) == 1);
	CHECK(exchange_psubscribe(ex, &a, EX_RESP, "n*", 2) == 1);
	CHECK(exchange_psubscribe(ex, &b, EX_RESP, "n*", 2) == 1);
	CHECK(exchange_psubscribe(ex, &b, EX_RESP, "n*", 2) == 0);
	k = exchange_counts(ex);
	CHECK(k.channels == 2 && k.patterns == 1 && k.subscriptions == 5);
	CHECK(exchange_unsubscribe(ex, &b, "sport", 5) == 0);
	CHECK(exchange_punsubscribe(ex, &a, "x*", 2) == 0);
	CHECK(exchange_unsubscribe(ex, &a, "news", 4) == 1);
	CHECK(exchange_punsubscribe(ex, &a, "n*", 2) == 1);
	k = exchange_counts(ex);
	CHECK(k.channels == 2 && k.patterns == 1 && k.subscriptions == 3);
	CHECK(exchange_unsubscribe(ex, &b, "news", 4) == 1);
	CHECK(exchange_unsubscribe(ex, &a, "sport", 5) == 1);
	CHECK(exchange_punsubscribe(ex, &b, "n*", 2) == 1);
	k = exchange_counts(ex);
	CHECK(k.channels == 0 && k.patterns == 0 && k.subscriptions == 0);
	exchange_free(ex);
}

/* Holds: a post that leaves a subscriber with more than the hold unsent
 * (--publish-hold, at most half of each outbox limit) puts the posting
 * thread under pressure, before the limit refuses anything; a refusal says
 * DROP. A thread not bound to the subscriber's owner is told FAR too: its
 * own writes cannot end that hold (session_held_far). */
static void test_pressure(bool bound)
{
	long live0 = msg_live_count();
	struct owner o;
	mailbox(&o, no_wake);
	if (bound)
		owner_bind(&o);
	cfg.outbox_hard = 10000;
	cfg.outbox_soft = 0;
	cfg.publish_hold = 2 << 20;
	o.limits = server_outbox_limits(&srv);
	CHECK(o.limits.hold == 5000); /* half the hard limit, below --publish-hold */
	struct session *s = conn(&o, EX_LINE);
	chat_subscribe(s, "c", 1, false);
	char m[1000];
	memset(m, 'x', sizeof(m));
	int held = -1, dropped = -1;
	for (int i = 0; i < 15; i++) {
		owner_pressure_clear();
		exchange_publish(srv.ex, "c", 1, "p", m, sizeof(m));
		unsigned p = owner_pressure_here();
		if (held < 0 && (p & OWNER_PRESSURE_HOLD))
			held = i;
		CHECK(!(p & OWNER_PRESSURE_FAR) == (bound || !(p & OWNER_PRESSURE_HOLD)));
		if (dropped < 0 && (p & OWNER_PRESSURE_DROP))
			dropped = i;
		CHECK(!(p & OWNER_PRESSURE_DROP) || dropped == i); /* said once: then it is condemned */
		owner_drain(&o, no_ready, NULL);
	}
	/* ~1 KB per message: pressure from the fifth, refused at the tenth */
	CHECK(held >= 4 && held <= 5);
	CHECK(dropped >= 8 && dropped <= 10);
	conn_free(s);

	/* the soft limit halves it too; 0 never holds */
	cfg.outbox_soft = 3000;
	CHECK(server_outbox_limits(&srv).hold == 1500);
	cfg.publish_hold = 0;
	o.limits = server_outbox_limits(&srv);
	CHECK(o.limits.hold == 0);
	s = conn(&o, EX_LINE);
	chat_subscribe(s, "c", 1, false);
	owner_pressure_clear();
	for (int i = 0; i < 2; i++)
		exchange_publish(srv.ex, "c", 1, "p", m, sizeof(m));
	CHECK(!(owner_pressure_here() & OWNER_PRESSURE_HOLD));
	owner_drain(&o, no_ready, NULL);
	conn_free(s);
	owner_destroy(&o);
	/* the cluster link's: behind holds from afar; a copy dropped at its full
	 * queue starts the holds over as a refused subscriber does */
	owner_pressure_clear();
	owner_pressure_hold();
	CHECK(owner_pressure_here() == (OWNER_PRESSURE_HOLD | OWNER_PRESSURE_FAR));
	owner_pressure_dropped();
	CHECK(owner_pressure_here() & OWNER_PRESSURE_DROP);
	owner_pressure_clear();
	cfg.outbox_hard = 32 << 20;
	cfg.outbox_soft = 8 << 20;
	owner_bind(NULL);
	CHECK(msg_live_count() == live0);
}

int main(void)
{
	setup();
	test_forms();
	test_pattern_lines();
	test_threads();
	test_local();
	test_not_a_session();
	test_slow(false);
	test_slow(true);
	test_counts();
	test_pressure(false);
	test_pressure(true);
	exchange_free(srv.ex);
	return check_done();
}
