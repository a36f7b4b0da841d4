/* fuzz_outbox.c - libFuzzer target for the outbox (common/core/outbox.c) as every
 * model drives it: copy and shared appends, iovecs, a write in flight that
 * pins what it was given and completes later (io_uring), partial sends,
 * drop-unstarted (a slow consumer) and close, in the order the input says.
 *
 * Oracles, checked after every step:
 * - the byte count equals what the queued msgs hold (it never wraps);
 * - what a pinned write was given is unchanged when it completes (a freed
 *   msg is caught by ASan; a recycled one, as msg.c's cache would hand it to
 *   the next append, by the content check);
 * - the bytes consumed so far are exactly the model stream: whole messages in
 *   order, where a drop removes only messages no byte of which was sent or
 *   pinned;
 * - every msg is freed once the outbox and the test let go of it. */
#include <stdint.h>
#include <sys/uio.h>
#include <stdlib.h>
#include <string.h>

#include "msg.h"
#include "outbox.h"

#define MAXMSG 64    /* units per run */
#define MAXIOV 16    /* as the uring model's SEND_IOV */
#define MAXALL (MAXMSG * 4 * 512) /* bytes appended per run at most */

/* A unit is what the outbox keeps or drops whole: one msg (a shared one, or a
 * private chunk that may have grown by later appends). */
struct unit {
	size_t at, len;  /* its bytes in st.all */
	size_t start;    /* where it begins in the kept stream */
	int dropped;
};

struct state {
	struct outbox o;
	uint8_t all[MAXALL]; /* every byte appended, in order */
	size_t nall;
	struct unit u[MAXMSG];
	int nu;
	size_t kept;                 /* bytes of kept units */
	/* the write in flight */
	int inflight;
	struct iovec iov[MAXIOV];
	int niov;
	size_t given;
	uint8_t snap[MAXIOV * 1024];
	/* what was sent */
	uint8_t out[MAXALL];
	size_t nout;
};

static void check_count(const struct state *st)
{
	struct iovec iov[MAXMSG + 1];
	int n = outbox_iov(&st->o, iov, MAXMSG + 1);
	size_t sum = 0;
	for (int i = 0; i < n; i++)
		sum += iov[i].iov_len;
	if (sum != outbox_bytes(&st->o) || st->o.pinned > st->o.count || outbox_bytes(&st->o) > st->kept)
		abort();
}

/* n bytes leave from iov. */
static void record(struct state *st, const struct iovec *iov, int niov, size_t n)
{
	for (int i = 0; i < niov && n; i++) {
		size_t k = iov[i].iov_len < n ? iov[i].iov_len : n;
		if (st->nout + k > sizeof(st->out))
			abort();
		memcpy(st->out + st->nout, iov[i].iov_base, k);
		st->nout += k;
		n -= k;
	}
}

static void complete(struct state *st, size_t n)
{
	if (!st->inflight)
		return;
	if (n > st->given)
		n = st->given;
	/* the kernel reads what it was given only now: it must be intact */
	size_t off = 0;
	for (int i = 0; i < st->niov; i++) {
		if (memcmp(st->iov[i].iov_base, st->snap + off, st->iov[i].iov_len) != 0)
			abort();
		off += st->iov[i].iov_len;
	}
	record(st, st->iov, st->niov, n);
	outbox_unpin(&st->o);
	outbox_consume(&st->o, n);
	st->inflight = 0;
}

static void start(struct state *st, uint8_t arg)
{
	if (st->inflight)
		return;
	int max = 1 + arg % MAXIOV;
	st->niov = outbox_iov(&st->o, st->iov, max);
	size_t off = 0;
	int k = 0;
	for (; k < st->niov && off + st->iov[k].iov_len <= sizeof(st->snap); k++) {
		memcpy(st->snap + off, st->iov[k].iov_base, st->iov[k].iov_len);
		off += st->iov[k].iov_len;
	}
	st->niov = k;
	if (!k)
		return;
	st->given = off;
	outbox_pin(&st->o, off);
	st->inflight = 1;
}

/* What outbox_drop_unstarted must do, on the model: drop every unit no byte
 * of which was sent or handed to the write in flight. */
static void model_drop(struct state *st)
{
	size_t pinned_to = st->nout + (st->inflight ? st->given : 0);
	for (int i = 0; i < st->nu; i++) {
		struct unit *u = &st->u[i];
		if (!u->dropped && u->start >= pinned_to) {
			u->dropped = 1;
			st->kept -= u->len;
		}
	}
}

/* The bytes sent are the kept units' bytes, in order. */
static void check_output(const struct state *st)
{
	size_t k = 0;
	for (int i = 0; i < st->nu && k < st->nout; i++) {
		const struct unit *u = &st->u[i];
		if (u->dropped)
			continue;
		size_t n = u->len < st->nout - k ? u->len : st->nout - k;
		if (memcmp(st->out + k, st->all + u->at, n) != 0)
			abort();
		k += n;
	}
	if (k != st->nout)
		abort();
}

static void append(struct state *st, struct msg **keep, int *nkeep, int shared, uint8_t arg)
{
	size_t len = (size_t)arg * 4 + 1;
	if (st->nu == MAXMSG || st->nall + len > sizeof(st->all))
		return;
	uint8_t *p = st->all + st->nall;
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(arg + i + st->nall);
	unsigned before = st->o.count;
	if (shared) {
		struct msg *m = msg_from(p, len);
		if (!m || outbox_append_msg(&st->o, m) < 0)
			abort();
		keep[(*nkeep)++] = m;
	} else if (outbox_append(&st->o, p, len) < 0) {
		abort();
	}
	if (st->o.count == before) { /* it went into the tail msg: that unit grew */
		struct unit *t = &st->u[st->nu - 1];
		if (st->nu == 0 || t->dropped || t->at + t->len != st->nall)
			abort();
		t->len += len;
	} else {
		st->u[st->nu++] = (struct unit){.at = st->nall, .len = len, .start = st->kept};
	}
	st->kept += len;
	st->nall += len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	long live0 = msg_live_count();
	static struct state st;
	memset(&st, 0, sizeof(st));
	struct msg *keep[MAXMSG];
	int nkeep = 0;
	for (size_t i = 0; i + 1 < size; i += 2) {
		uint8_t op = data[i] % 7, arg = data[i + 1];
		switch (op) {
		case 0: /* a reply, copied (may land in the tail msg) */
		case 1: /* a publish: a shared msg the test references too */
			append(&st, keep, &nkeep, op == 1, arg);
			break;
		case 2: /* a write goes in flight with up to arg % 16 + 1 iovecs */
			start(&st, arg);
			break;
		case 3: /* it completes, having sent arg/255 of what it was given */
			complete(&st, st.given * arg / 255);
			break;
		case 4: /* a synchronous write (blocking / coro models) */
			if (!st.inflight) {
				struct iovec iov[MAXIOV];
				int n = outbox_iov(&st.o, iov, MAXIOV);
				size_t have = 0;
				for (int k = 0; k < n; k++)
					have += iov[k].iov_len;
				size_t w = have * arg / 255;
				record(&st, iov, n, w);
				outbox_consume(&st.o, w);
			}
			break;
		case 5: /* a slow consumer is dropped, then others allocate */
			model_drop(&st);
			outbox_drop_unstarted(&st.o);
			for (int k = 0; k < 4; k++) {
				struct msg *m = msg_new(4096);
				if (m) {
					memset(m->data, 0xEE, 4096);
					msg_unref(m);
				}
			}
			break;
		case 6: /* the test lets go of a shared msg */
			if (nkeep)
				msg_unref(keep[--nkeep]);
			break;
		}
		check_count(&st);
		check_output(&st);
	}
	complete(&st, st.given); /* a model frees only once its write completed */
	check_output(&st);
	outbox_free(&st.o);
	while (nkeep)
		msg_unref(keep[--nkeep]);
	if (msg_live_count() != live0)
		abort();
	return 0;
}
