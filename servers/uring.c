/* uring.c - the "uring" model: io_uring with multishot accept, multishot
 * recv into a provided buffer ring, and batched submission; one ring per
 * loop of the runtime (common/loop/; --threads N, SO_REUSEPORT). Recipe:
 * liburing's examples/echo-server.c, grown up: short sends, back-pressure,
 * ENOBUFS, stale completions. The runtime brings the rest: listeners and
 * the EMFILE back-off (uring_accept arms or cancels the multishot accept),
 * the mailbox, admission, the deadlines (loop.h "deadlines": each
 * connection's struct loop_deadline is on the runtime's heap, which bounds
 * the ring's wait; an expiry comes back as uring_expired or uring_write),
 * the turn's clock, the stop, and the teardown walk (after uring_halt exits the ring); its watched fds (stop
 * signal, mailbox wake-up) are poll requests.
 *
 * One loop turn: io_uring_submit_and_wait(1) submits everything queued in
 * the previous turn and waits; every CQE is then handled, which only records
 * what happened (input goes to the session, the buffer goes straight back to
 * the ring, flags change) and lists the connection (loop_pending); last, the
 * runtime's write pass (loop.h, in its write order) brings each listed
 * connection up to date once - send what session_iov() returns, arm or
 * cancel its recv, close it - queuing SQEs for the next turn. A turn
 * hands at most TURN_INPUT bytes of input to sessions (the rest of the CQ
 * waits), so a publisher's input cannot outrun its subscribers' sends; a
 * publisher held for its subscribers (session.h, holds) is the runtime's to
 * retry (loop.h, holds: conn_update hands it over, on_send says when output
 * moved).
 *
 * Per connection: at most one multishot recv and one send in flight (one
 * send keeps the byte order; a short send just leaves the rest in the
 * outbox for the next one). user_data = op | generation | slot. A slot is
 * reused only once all its requests have completed and its generation was
 * bumped, so a CQE with the wrong generation is stale and ignored (after
 * its provided buffer is given back).
 *
 * Testing the unavailable path: WEFT_URING_FORCE_UNAVAILABLE=1 in the
 * environment makes the start-up probe fail exactly like a blocked
 * io_uring_setup (ENOSYS): one error line, exit code 69 (EXIT_UNAVAILABLE). */
#include <errno.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "loop.h"
#include "model.h"
#include "server.h"
#include "session.h"
#include "uring/ring.h"
#include "uring/slots.h"

#define SQ_ENTRIES 1024
#define CQ_ENTRIES 16384    /* room for 10k connections closing at once; beyond, the kernel keeps the overflow (see reap) */
#define BUF_COUNT 256       /* provided buffers per ring, shared by all its connections */
#define BUF_SIZE (16 * 1024)
#define BGID 0
#define MAX_SLEEP_MS 1000   /* the ring's wait is bounded even with no timer (see coro's SCHED_MAX_SLEEP_MS) */
#define REAP_MAX 4096       /* CQEs per turn before updating connections */
/* Input handed to sessions per turn (Redis reads 16 KiB per client per
 * event): the rest of the CQ waits for the next turn, after this turn's
 * output was queued, so a publisher's input cannot outrun its subscribers'
 * sends (one per connection per turn, SEND_IOV iovecs). */
#define TURN_INPUT (128 * 1024)
/* A send carries this many messages of more than 1 KiB (shared, one iovec
 * each; smaller ones are copied into chunks): a turn's input, which may end
 * one buffer past TURN_INPUT, publishes at most one per KiB of it, so one
 * send per turn writes a subscriber everything that turn gave it, and
 * output keeps up with input whatever the message size (64 held 1.1 KB
 * messages to half a turn's input). */
#define SEND_IOV ((TURN_INPUT + BUF_SIZE) / 1024)

/* struct conn, its flags and slots, and the user_data codec: uring/slots.h. */

struct sendv {
	struct msghdr mh;
	struct iovec iov[]; /* as many as the send has */
};

/* The ring's side of the runtime's listener of the same index. */
struct listener {
	bool armed;         /* a multishot accept is outstanding */
	bool cancel_sent;
};

struct uthread {
	struct loop l;         /* first: the runtime's part */
	struct io_uring ring;
	bool ring_ok;
	struct uring_bufs bufs;
	struct listener ls[2]; /* as l.lis */
	struct uring_slots slots;
	size_t turn_in;        /* input bytes handed to sessions this turn */
	unsigned inflight;     /* requests whose last CQE has not arrived */
	bool exiting;
};

static struct uthread *of(struct loop *l) { return (struct uthread *)l; }

/* ---- slots (uring/slots.h) ---- */

static struct conn *conn_at(struct uthread *t, uint32_t slot) { return slots_at(&t->slots, slot); }
static uint32_t nslots(const struct uthread *t) { return slots_count(&t->slots); }

/* The live connection a CQE belongs to, or NULL if it is stale. */
static struct conn *conn_from(struct uthread *t, uint64_t ud) { return slots_from(&t->slots, ud); }

static int slots_more(struct uthread *t)
{
	uint32_t total = nslots(t) + SLOT_CHUNK;
	/* Sized with the slots, so listing or holding a connection (mark_dirty,
	 * loop_hold) never has to allocate. */
	if (loop_conns_reserve(&t->l, total) < 0)
		return -ENOMEM;
	/* ... and the runtime's deadline heap, so arming a connection's deadline never fails */
	if (loop_deadlines_reserve(&t->l, (int)total) < 0)
		return -ENOMEM;
	return slots_grow(&t->slots);
}

static struct conn *slot_alloc(struct uthread *t)
{
	if (t->slots.free_head == NO_SLOT && slots_more(t) < 0)
		return NULL;
	struct conn *c = slots_take(&t->slots);
	loop_conn_start(&t->l, &c->lc);
	return c;
}

static void slot_free(struct uthread *t, struct conn *c) { slots_put(&t->slots, c); }

/* c must be brought up to date this turn: the runtime's write pass calls
 * uring_write for it (loop.h: the write order). */
static void mark_dirty(struct uthread *t, struct conn *c) { loop_pending(&t->l, &c->lc); }

/* ---- SQEs ---- */

static struct io_uring_sqe *sqe_get(struct uthread *t, uint64_t ud)
{
	struct io_uring_sqe *sqe;
	/* A full SQ mid-turn (e.g. a burst of accepts): submit early. */
	while (!(sqe = io_uring_get_sqe(&t->ring))) {
		int rc = io_uring_submit(&t->ring);
		if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
			log_error("uring: io_uring_submit: %s", strerror(-rc));
			abort(); /* no SQE means no way to make progress or to clean up */
		}
	}
	io_uring_sqe_set_data64(sqe, ud);
	t->inflight++;
	return sqe;
}

static void cancel_ud(struct uthread *t, uint64_t target)
{
	io_uring_prep_cancel64(sqe_get(t, ud_make(OP_CANCEL, 0, 0)), target, 0);
}

static void arm_recv(struct uthread *t, struct conn *c)
{
	struct io_uring_sqe *sqe = sqe_get(t, conn_ud(c, OP_RECV));
	io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
	c->flags |= F_RECV;
}

static void arm_accept(struct uthread *t, int li)
{
	struct io_uring_sqe *sqe = sqe_get(t, ud_make(OP_ACCEPT, 0, (uint32_t)li));
	io_uring_prep_multishot_accept(sqe, t->l.lis[li].fd, NULL, NULL, SOCK_CLOEXEC);
	t->ls[li].armed = true;
}

static void arm_watch(struct uthread *t, struct loop_watch *w)
{
	io_uring_prep_poll_add(sqe_get(t, watch_ud(w)), w->fd, loop_poll_events(w->mask));
	w->reg = w->mask;
	w->reg_fd = w->fd;
}

/* ---- connections ---- */

static void send_next(struct uthread *t, struct conn *c)
{
	struct iovec iov[SEND_IOV];
	int n = session_iov(c->s, iov, SEND_IOV);
	if (n <= 0)
		return;
	struct sendv *sv = n > 1 ? malloc(sizeof(*sv) + (size_t)n * sizeof(iov[0])) : NULL;
	struct io_uring_sqe *sqe = sqe_get(t, conn_ud(c, OP_SEND));
	size_t len = iov[0].iov_len;
	if (sv) {
		memcpy(sv->iov, iov, (size_t)n * sizeof(iov[0]));
		sv->mh = (struct msghdr){.msg_iov = sv->iov, .msg_iovlen = (size_t)n};
		io_uring_prep_sendmsg(sqe, c->fd, &sv->mh, MSG_NOSIGNAL);
		c->sv = sv;
		for (int i = 1; i < n; i++)
			len += iov[i].iov_len;
	} else {
		/* One segment (or no memory for the vector: send the first only). */
		io_uring_prep_send(sqe, c->fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
	}
	/* The kernel reads these bytes whenever the socket has room, maybe long
	 * after a slow consumer was dropped: they stay put until on_send. */
	session_pin(c->s, len);
	c->flags |= F_SEND;
}

/* Stop everything on c; conn_update frees it once nothing is in flight. */
static void conn_close(struct uthread *t, struct conn *c)
{
	if (c->flags & F_CLOSING)
		return;
	c->flags |= F_CLOSING;
	loop_conn_deadline_cancel(&t->l, &c->lc); /* no deadline: it ends as its requests do */
	/* close() alone would not end requests that hold the file, and a send
	 * in flight still reads the session's outbox: cancel, then free. By
	 * user_data, a hash lookup; cancelling by fd scans every poll request,
	 * which made closing 10k connections quadratic. */
	if ((c->flags & F_RECV) && !(c->flags & F_RECV_CANCEL)) {
		cancel_ud(t, conn_ud(c, OP_RECV));
		c->flags |= F_RECV_CANCEL;
	}
	if (c->flags & F_SEND)
		cancel_ud(t, conn_ud(c, OP_SEND));
}

static void conn_fail(struct uthread *t, struct conn *c)
{
	if (c->flags & F_CLOSING)
		return;
	session_reset(c->s);
	conn_close(t, c);
}

/* Nothing of c's is in flight any more: the runtime closes it (its
 * session, its fd), and uring_release frees the slot. */
static void conn_finish(struct uthread *t, struct conn *c) { loop_conn_close(&t->l, &c->lc); }

static void conn_update(struct uthread *t, struct conn *c)
{
	if (!(c->flags & F_CLOSING)) {
		if (!(c->flags & F_SEND))
			send_next(t, c);
		if (!(c->flags & F_SEND))
			session_linger_step(c->s, c->fd);
		if (!(c->flags & F_SEND) && session_done(c->s))
			conn_close(t, c);
	}
	if (c->flags & F_CLOSING) {
		if (!(c->flags & (F_RECV | F_SEND)))
			conn_finish(t, c);
		return;
	}
	/* Back-pressure: read only while the session wants input. A recv being
	 * cancelled is re-armed when its last CQE arrives, not before. */
	bool want = session_want_read(c->s);
	if (session_held(c->s))
		loop_hold(&t->l, &c->lc); /* the runtime retries it (loop.h, holds) */
	if (want && !(c->flags & F_RECV)) {
		arm_recv(t, c);
	} else if (!want && (c->flags & F_RECV) && !(c->flags & F_RECV_CANCEL)) {
		cancel_ud(t, conn_ud(c, OP_RECV));
		c->flags |= F_RECV_CANCEL;
	}
	loop_conn_deadline(&t->l, &c->lc, c->s); /* the runtime's: loop.h, deadlines */
}

/* The runtime admitted a connection (loop_accepted): its slot. */
static bool uring_open(struct loop *l, struct session *s, int fd)
{
	struct uthread *t = of(l);
	struct conn *c = slot_alloc(t);
	if (!c)
		return false;
	s->sub.loop_data = c;
	c->s = s;
	c->fd = fd;
	mark_dirty(t, c); /* arms its recv */
	return true;
}

/* ---- completions ---- */

static void on_recv(struct uthread *t, const struct io_uring_cqe *cqe)
{
	struct conn *c = conn_from(t, cqe->user_data);
	if (c && !(cqe->flags & IORING_CQE_F_MORE))
		c->flags &= ~(F_RECV | F_RECV_CANCEL); /* ended: ENOBUFS, EOF, error or cancel */
	if (cqe->flags & IORING_CQE_F_BUFFER) {
		unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
		if (c && cqe->res > 0 && !(c->flags & F_CLOSING)) {
			loop_input(&t->l, &c->lc, c->s, uring_bufs_at(&t->bufs, bid), (size_t)cqe->res);
			t->turn_in += (size_t)cqe->res;
			loop_conn_active(&t->l, &c->lc);
		}
		uring_bufs_recycle(&t->bufs, bid); /* the session copied what it keeps */
	}
	if (!c)
		return;
	if (!(c->flags & F_CLOSING)) {
		if (cqe->res == 0)
			session_eof(c->s);
		/* ENOBUFS: every buffer was taken; they are all back by the end of
		 * this turn, and conn_update re-arms. Never a reason to drop. */
		else if (cqe->res < 0 && cqe->res != -ENOBUFS && cqe->res != -ECANCELED)
			conn_fail(t, c);
	}
	mark_dirty(t, c);
}

static void on_send(struct uthread *t, const struct io_uring_cqe *cqe)
{
	struct conn *c = conn_from(t, cqe->user_data);
	if (!c)
		return;
	c->flags &= ~F_SEND;
	free(c->sv);
	c->sv = NULL;
	session_unpin(c->s);
	if (!(c->flags & F_CLOSING)) {
		if (cqe->res > 0) {
			size_t before = session_pending(c->s);
			session_sent(c->s, (size_t)cqe->res); /* short or not: the rest stays queued */
			loop_conn_active(&t->l, &c->lc);
			loop_wrote(&t->l, &c->lc, c->s, before); /* output moved: the runtime's cue for near holds */
		} else {
			conn_fail(t, c); /* EPIPE, ECONNRESET, ... */
		}
	}
	mark_dirty(t, c);
}

static void cancel_accept(struct uthread *t, int li)
{
	if (t->ls[li].armed && !t->ls[li].cancel_sent) {
		cancel_ud(t, ud_make(OP_ACCEPT, 0, (uint32_t)li));
		t->ls[li].cancel_sent = true;
	}
}

/* The runtime's EMFILE back-off: arm the multishot accept again, or cancel
 * it (one being cancelled is re-armed by on_accept, if accepting by then). */
static void uring_accept(struct loop *l, int li, bool on)
{
	struct uthread *t = of(l);
	if (!on)
		cancel_accept(t, li);
	else if (!t->ls[li].armed)
		arm_accept(t, li);
}

static void on_accept(struct uthread *t, const struct io_uring_cqe *cqe)
{
	int li = (int)ud_slot(cqe->user_data);
	if (!(cqe->flags & IORING_CQE_F_MORE))
		t->ls[li].armed = t->ls[li].cancel_sent = false;
	if (cqe->res >= 0)
		loop_accepted(&t->l, cqe->res, t->l.lis[li].tls);
	else if (cqe->res != -ECANCELED)
		loop_accept_failed(&t->l, li, cqe->res); /* EMFILE, ...: the runtime pauses li */
	if (!t->ls[li].armed && loop_accepting(&t->l, li))
		arm_accept(t, li);
}

/* The runtime's stop: no more accepts (the connections: uring_stop_conn). */
static void uring_stop(struct loop *l)
{
	for (int li = 0; li < l->nlis; li++) {
		cancel_accept(of(l), li);
		loop_listener_close(l, li); /* the socket goes once the accept lets go of it */
	}
}

/* The runtime's stop walk (uring_conn's connections): every session is told
 * and drains; conn_update (the write pass) brings each up to date. */
static void uring_stop_conn(struct loop *l, struct loop_conn *lc)
{
	struct conn *c = (struct conn *)lc;
	if (!(c->flags & F_CLOSING)) {
		session_stop(c->s);
		mark_dirty(of(l), c);
	}
}

static void on_watch(struct uthread *t, const struct io_uring_cqe *cqe)
{
	struct loop_watch *w = ud_watch(cqe->user_data);
	if (ud_watch_gen(cqe->user_data) != w->gen || !w->reg)
		return; /* a poll removed since (rewatch) */
	w->reg = 0; /* one-shot: it is over */
	if (cqe->res < 0 && (t->exiting || cqe->res == -ECANCELED))
		return; /* cancelled on the way out */
	/* an error: both, to let fn find it */
	w->got = cqe->res < 0 ? LOOP_POLL_IN | LOOP_POLL_OUT : loop_poll_got((unsigned)cqe->res);
	/* fn may rewatch (then a poll may be out already: w->reg) */
	if (w->fn(&t->l, w) && !t->exiting && !w->reg && w->mask && w->fd >= 0)
		arm_watch(t, w);
}

static void handle(struct uthread *t, const struct io_uring_cqe *cqe)
{
	switch (ud_op(cqe->user_data)) {
	case OP_ACCEPT:
		on_accept(t, cqe);
		break;
	case OP_RECV:
		on_recv(t, cqe);
		break;
	case OP_SEND:
		on_send(t, cqe);
		break;
	case OP_WATCH:
		on_watch(t, cqe);
		break;
	case OP_CANCEL:
		break; /* the cancelled request reports for itself */
	}
}

/* Handle what has completed. io_uring_peek_cqe enters the kernel to flush
 * the overflow list when IORING_SQ_CQ_OVERFLOW is set, so a CQ that
 * overflowed (10k connections closing at once) loses nothing. */
static void reap(struct uthread *t)
{
	struct io_uring_cqe *cqe;
	t->turn_in = 0;
	for (unsigned n = 0; n < REAP_MAX && t->turn_in < TURN_INPUT && io_uring_peek_cqe(&t->ring, &cqe) == 0; n++) {
		struct io_uring_cqe c = *cqe;
		io_uring_cqe_seen(&t->ring, cqe);
		if (!(c.flags & IORING_CQE_F_MORE))
			t->inflight--;
		handle(t, &c);
	}
}

/* Last act: cancel the ring's own requests (watches) and let
 * the loop run until every request has reported. */
static void begin_exit(struct uthread *t)
{
	t->exiting = true;
	io_uring_prep_cancel64(sqe_get(t, ud_make(OP_CANCEL, 0, 0)), 0, IORING_ASYNC_CANCEL_ANY);
}

static int uring_serve(struct loop *l)
{
	struct uthread *t = of(l);
	int ret = 0;
	int idle_waits = 0;
	while (!(t->exiting && t->inflight == 0)) {
		int rc;
		if (t->exiting) {
			struct __kernel_timespec ts = {.tv_sec = 1};
			struct io_uring_cqe *cqe;
			rc = io_uring_submit_and_wait_timeout(&t->ring, &cqe, 1, &ts, NULL);
			if (rc == -ETIME && ++idle_waits >= 3) {
				log_warn("uring: %u request(s) never completed; exiting anyway", t->inflight);
				break;
			}
		} else {
			/* Until a completion or the earliest connection deadline or alarm. */
			int ms = loop_timeout(l, MAX_SLEEP_MS);
			struct __kernel_timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000LL};
			struct io_uring_cqe *cqe;
			rc = io_uring_submit_and_wait_timeout(&t->ring, &cqe, 1, &ts, NULL);
		}
		if (rc < 0 && rc != -EINTR && rc != -ETIME && rc != -EAGAIN && rc != -EBUSY) {
			log_error("uring: io_uring_enter: %s", strerror(-rc));
			ret = rc;
			break;
		}
		loop_turn(l); /* the turn's clock: activity and deadlines */
		reap(t);
		if (!t->exiting)
			loop_run_due(l); /* the deadlines due (uring_expired, uring_write), the alarms */
		loop_before_sleep(l); /* the holds, the mailbox, then every connection touched this turn (uring_write) */
		if (!loop_serving(l) && !t->exiting)
			begin_exit(t);
	}
	return ret;
}

/* ---- the runtime's hooks ---- */

/* The mailbox wake-up is an eventfd watched by a poll request. Chosen over
 * IORING_OP_MSG_RING because a wake may come from any thread, ring or not:
 * MSG_RING needs a ring on the sender's side and would only go out at that
 * ring's next submit, while the eventfd write is immediate and thread-safe. */
static int uring_watch(struct loop *l, struct loop_watch *w)
{
	arm_watch(of(l), w);
	return 0;
}

/* A new fd, none, or more interest: remove the outstanding poll (for an old
 * fd the kernel holds the socket until then) and arm one under a new
 * generation, so the old one's completion is known stale. Less interest
 * leaves it: its completion re-arms with the mask of then. */
static int uring_rewatch(struct loop *l, struct loop_watch *w)
{
	struct uthread *t = of(l);
	if (w->reg && (w->reg_fd != w->fd || (w->mask & ~w->reg) || w->fd < 0)) {
		if (!t->exiting) /* exiting: everything was cancelled already */
			io_uring_prep_poll_remove(sqe_get(t, ud_make(OP_CANCEL, 0, 0)), watch_ud(w));
		w->reg = 0;
		w->gen++;
	}
	if (w->fd < 0 || !w->mask || t->exiting || w->reg)
		return 0;
	arm_watch(t, w);
	return 0;
}


static struct loop_conn *uring_conn(struct loop *l, uint32_t id)
{
	struct conn *c = id < nslots(of(l)) ? conn_at(of(l), id) : NULL;
	return c && (c->flags & F_LIVE) ? &c->lc : NULL;
}

/* The write pass reached c (in the runtime's order): send, re-arm or cancel
 * its recv, close it. */
static void uring_write(struct loop *l, struct loop_conn *lc)
{
	conn_update(of(l), (struct conn *)lc); /* live: uring_conn's */
}

static struct session *uring_session(struct loop *l, struct loop_conn *lc)
{
	(void)l;
	return ((struct conn *)lc)->s;
}

/* The runtime's retry of a hold found c expired: close it (uring_write,
 * which follows, frees it once nothing is in flight). */
static void uring_expired(struct loop *l, struct loop_conn *lc) { conn_close(of(l), (struct conn *)lc); }

static int uring_setup(struct loop *l)
{
	struct uthread *t = of(l);
	slots_init(&t->slots);
	int rc = uring_ring_init(&t->ring, SQ_ENTRIES, CQ_ENTRIES);
	if (rc < 0) {
		log_error("uring: ring %d: io_uring_setup: %s", l->index, strerror(-rc));
		return rc;
	}
	t->ring_ok = true;
	rc = uring_bufs_init(&t->bufs, &t->ring, BUF_COUNT, BUF_SIZE, BGID);
	if (rc < 0) {
		log_error("uring: ring %d: provided buffers: %s", l->index, strerror(-rc));
		return rc;
	}
	for (int li = 0; li < l->nlis; li++)
		arm_accept(t, li);
	rc = io_uring_submit(&t->ring); /* accepting before the group says ready */
	if (rc < 0)
		log_error("uring: ring %d: io_uring_submit: %s", l->index, strerror(-rc));
	return rc < 0 ? rc : 0;
}

/* Teardown, first: after this the kernel reads none of our memory (a send
 * still in flight, after a fatal ring error, read its session's outbox until
 * now); the runtime then closes what is left (uring_release). */
static void uring_halt(struct loop *l)
{
	struct uthread *t = of(l);
	bool clean = t->inflight == 0;
	if (t->ring_ok && clean)
		uring_bufs_fini(&t->bufs, &t->ring);
	if (t->ring_ok)
		io_uring_queue_exit(&t->ring);
	if (!clean)
		uring_bufs_fini(&t->bufs, NULL);
	t->ring_ok = false;
}

/* The runtime closes c (conn_finish, or the teardown walk): free its slot. */
static struct session *uring_release(struct loop *l, struct loop_conn *lc, int *fd)
{
	struct uthread *t = of(l);
	struct conn *c = (struct conn *)lc;
	struct session *s = c->s;
	*fd = c->fd;
	free(c->sv);
	slot_free(t, c);
	return s;
}

static void uring_teardown(struct loop *l)
{
	struct uthread *t = of(l);
	slots_fini(&t->slots);
}

static const struct loop_model uring_loop = {
	.name = "uring",
	.size = sizeof(struct uthread),
	.deadline_off = offsetof(struct conn, dl),
	.setup = uring_setup,
	.watch = uring_watch,
	.rewatch = uring_rewatch,
	.serve = uring_serve,
	.halt = uring_halt,
	.release = uring_release,
	.teardown = uring_teardown,
	.open = uring_open,
	.conn = uring_conn,
	.session = uring_session,
	.expired = uring_expired,
	.write = uring_write,
	.accept = uring_accept,
	.stop = uring_stop,
	.stop_conn = uring_stop_conn,
};

static int run(struct server *srv)
{
	int rc = uring_probe();
	if (rc == -ENOSYS || rc == -EPERM || rc == -EACCES || rc == -EOPNOTSUPP)
		return EXIT_UNAVAILABLE;
	if (rc < 0)
		return 1;
	log_info("uring: %d ring(s), %d x %d KiB provided buffers each", srv->cfg->threads, BUF_COUNT, BUF_SIZE / 1024);
	return loop_group_run(srv, &uring_loop, srv->cfg->threads);
}

const struct model model_uring = {
	.name = "uring",
	.recipe = "io_uring: multishot accept, multishot recv into a provided buffer ring, batched submission, a ring per thread",
	.run = run,
};
