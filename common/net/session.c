#include "session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "chat.h"
#include "log.h"
#include "owner.h"
#include "proto.h"
#include "server.h"
#include "stats.h"
#include "tls.h"
#include "ws.h"

#define SESSION_IOV_BATCH 16 /* iovecs per sendmsg() */
#define SESSION_COPY_MAX 1024 /* a delivery up to this size is copied, not referenced */
#define SESSION_IN_KEEP 4096  /* an empty input buffer up to this size stays for the next partial command */

static atomic_ullong next_id = 1;

/* For the debug close line: the reason under which /metrics counts the
 * close (weft_connections_closed_total's label). */
static const char *close_reason_name(const struct session *s)
{
	static const char *const names[] = {
		[CLOSE_UNSET] = "error",  [CLOSE_PEER] = "peer",   [CLOSE_QUIT] = "quit",
		[CLOSE_IDLE] = "idle",    [CLOSE_RESET] = "reset", [CLOSE_DRAIN] = "drain",
		[CLOSE_DRAIN_TIMEOUT] = "drain_timeout", [CLOSE_SLOW_CONSUMER] = "slow_consumer",
		[CLOSE_TIMEOUT] = "timeout", [CLOSE_BAD_INPUT] = "bad_input", [CLOSE_ERROR] = "error",
	};
	return names[session_close_reason(s)];
}

void session_log_open(const struct session *s, int fd)
{
	if (!log_enabled(LOG_DEBUG))
		return; /* no getpeername() per connection unless someone reads it */
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;
	bool v4 = true;
	if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0) {
		v4 = ss.ss_family == AF_INET;
		const void *a = v4 ? (const void *)&((struct sockaddr_in *)&ss)->sin_addr
		                   : (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr;
		inet_ntop(ss.ss_family, a, host, sizeof(host));
		port = ntohs(v4 ? ((struct sockaddr_in *)&ss)->sin_port : ((struct sockaddr_in6 *)&ss)->sin6_port);
	}
	log_debug("conn %u: open from %s%s%s:%d%s", s->id, v4 ? "" : "[", host, v4 ? "" : "]", port,
	          s->tls ? " on the TLS port" : "");
}

struct session *session_new(struct server *srv, struct owner *owner, bool tls)
{
	struct session *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->srv = srv;
	s->sub.owner = owner;
	s->id = (uint32_t)atomic_fetch_add_explicit(&next_id, 1, memory_order_relaxed) & 0x3fffffffu;
	s->start_ms = now_ms();
	if (tls) {
		s->tls = srv->tls ? tls_conn_new(srv->tls) : NULL;
		if (!s->tls) {
			free(s);
			return NULL;
		}
		tls_conn_set_id(s->tls, s->id);
	}
	return s;
}

void session_free(struct session *s)
{
	if (!s)
		return;
	if (log_enabled(LOG_DEBUG))
		log_debug("conn %u: closed (%s)", s->id, close_reason_name(s));
	if (s->proto && s->proto->fini)
		s->proto->fini(s);
	owner_forget(&s->sub);
	outbox_free(&s->out);
	buf_free(&s->in);
	tls_conn_free(s->tls);
	free(s);
}

int session_write(struct session *s, const void *p, size_t n)
{
	if (s->chat && s->chat->ws) /* WebSocket chat: each line leaves as a text message */
		return ws_write_lines(s, p, n);
	if (outbox_append(&s->out, p, n) == 0)
		return 0;
	stat_inc(STAT_oom_errors);
	session_close_for(s, CLOSE_ERROR);
	return -ENOMEM;
}

int session_write_msg(struct session *s, struct msg *m)
{
	if (s->lingering)
		return 0; /* its write side is done (or about to be): a late delivery would reset it */
	if (chat_ws_closed(s->chat))
		return 0; /* a WebSocket that sent its close frame: no data frame may follow it */
	/* m is in this subscriber's wire format already (chat over WebSocket:
	 * framed, EX_WS), so it goes to the outbox as it is. Small messages are
	 * copied next to what is already queued, so one write carries many
	 * deliveries (Redis copies replies into a client's buffer the same way);
	 * large ones are shared by reference. */
	int rc = m->len <= SESSION_COPY_MAX ? outbox_append(&s->out, m->data, m->len) : outbox_append_msg(&s->out, m);
	if (rc == 0)
		return 0;
	stat_inc(STAT_oom_errors);
	session_close_for(s, CLOSE_ERROR);
	return -ENOMEM;
}

void session_close_after_flush(struct session *s)
{
	/* with TLS, session_iov queues close_notify after the plaintext */
	session_close_for(s, s->stopping ? CLOSE_DRAIN : CLOSE_QUIT);
}

void session_close_for(struct session *s, enum close_reason why)
{
	if (!s->close_why)
		s->close_why = why;
	s->closing = 1;
}

enum close_reason session_close_reason(const struct session *s)
{
	if (s->close_why)
		return (enum close_reason)s->close_why;
	/* Closed by the model without a verdict from the session: a drain's
	 * end, an EOF it saw, or its own failure (a poll error, ...). */
	return s->stopping ? CLOSE_DRAIN : s->eof ? CLOSE_PEER : CLOSE_ERROR;
}

static const struct proto *mode_proto(const struct server *srv)
{
	return srv->cfg->mode == MODE_CHAT ? &proto_chat_line : &proto_echo;
}

static int start(struct session *s, const struct proto *p)
{
	s->proto = p;
	if (log_enabled(LOG_DEBUG))
		log_debug("conn %u: protocol %s", s->id, p->name);
	if (!p->head_timeout)
		s->head_ms = 0; /* the bytes detection waited on were no request head */
	stat_inc(p->counter);
	if (p->init && p->init(s) < 0) {
		stat_inc(STAT_oom_errors);
		s->proto = NULL;
		session_close_for(s, CLOSE_ERROR);
		return -ENOMEM;
	}
	return 0;
}

/* Still within --publish-hold-secs of the start of this run of holds? */
static bool hold_allowed(const struct session *s)
{
	if (!s->hold_run)
		return true;
	if (s->hold_spent)
		return false; /* and stays so: the 15-bit clock comes round again after 32.7 s */
	unsigned mask = (1u << SESSION_HOLD_CLOCK_BITS) - 1;
	unsigned elapsed = ((unsigned)now_ms() - s->hold_at) & mask;
	return elapsed < (unsigned)s->srv->cfg->publish_hold_ms; /* 1..CONFIG_HOLD_MS_MAX */
}

/* After a feed: did a PUBLISH in it leave a subscriber far behind? Then the
 * rest of the input waits (see holds in session.h). A run of holds ends when
 * the pressure does, or when a subscriber was dropped: the one that did not
 * read is gone, and those that read are protected again. */
static void note_hold(struct session *s)
{
	unsigned p = owner_pressure_here();
	if (!(p & OWNER_PRESSURE_HOLD) || (p & OWNER_PRESSURE_DROP)) {
		s->hold_run = 0;
		s->hold_spent = 0;
		return;
	}
	bool allowed = hold_allowed(s);
	if (!s->hold_run) {
		s->hold_run = 1;
		s->hold_at = (unsigned)now_ms() & ((1u << SESSION_HOLD_CLOCK_BITS) - 1);
	}
	if (!allowed)
		s->hold_spent = 1;
	if (allowed && !s->closing) {
		s->held = 1;
		s->held_far = (p & OWNER_PRESSURE_FAR) != 0;
		stat_inc(STAT_publisher_holds);
	}
}

/* The protocol consumes what it can of [p, p+n); returns bytes used. */
static size_t feed(struct session *s, const char *p, size_t n)
{
	owner_pressure_clear();
	unsigned long posts = owner_posts_here();
	s->feeding = 1;
	size_t used = s->proto->feed(s, p, n);
	s->feeding = 0;
	/* Held: nothing could be answered. Nothing posted (the partial command
	 * a read leaves at the end of the buffer, a PING): nothing learnt of the
	 * subscribers. Either way no news, and the run goes on; ending it there
	 * restarted it every few messages, holding a pipelining publisher for as
	 * long as a subscriber that does not read stayed under the limits. */
	if (!s->held && (owner_posts_here() != posts || (owner_pressure_here() & OWNER_PRESSURE_HOLD)))
		note_hold(s); /* a publish the cluster link is behind on holds even when nobody here got it */
	return used;
}

/* Offer [p, p+n) to the protocol (detecting it first); returns bytes used. */
static size_t dispatch(struct session *s, const char *p, size_t n)
{
	if (!s->proto) {
		const struct proto *d = proto_detect(s->srv, p, n);
		if (!d)
			return 0;
		if (start(s, d) < 0)
			return n;
	}
	return feed(s, p, n);
}

/* The protocol used n bytes of s->in. Input waits there only while a command
 * is partial: once none waits, a buffer grown for a large one (a 1 MiB RESP
 * bulk that came in pieces) goes, or every connection that ever sent one
 * would keep that much for the rest of its life. */
static void in_consume(struct session *s, size_t n)
{
	buf_consume(&s->in, n);
	if (buf_used(&s->in) == 0 && s->in.cap > SESSION_IN_KEEP)
		buf_free(&s->in);
}

/* After a feed: does input wait for the output to drain? (A partial command
 * left while the output is full counts too: offered again after the drain,
 * it is simply still partial.) */
static void note_pause(struct session *s)
{
	bool paused = !s->closing && buf_used(&s->in) && session_output_full(s);
	if (paused && !s->in_paused)
		stat_inc(STAT_input_paused);
	s->in_paused = paused;
}

static void feed_plain(struct session *s, const char *p, size_t n)
{
	if (s->closing)
		return; /* after an error or QUIT the rest is not read */
	if (buf_used(&s->in) == 0) {
		size_t used = dispatch(s, p, n);
		if (used < n && !s->closing && buf_append(&s->in, p + used, n - used) < 0) {
			stat_inc(STAT_oom_errors);
			session_close_for(s, CLOSE_ERROR);
		}
		note_pause(s);
		return;
	}
	if (n && buf_append(&s->in, p, n) < 0) {
		stat_inc(STAT_oom_errors);
		session_close_for(s, CLOSE_ERROR);
		return;
	}
	/* Bytes that still arrive while paused (a model may have had a read in
	 * flight) only queue: the protocol would not answer them yet. */
	if (!s->in_paused)
		in_consume(s, dispatch(s, buf_head(&s->in), buf_used(&s->in)));
	note_pause(s);
}

/* Bytes detection waits on may be a request line: part of a head, bounded
 * as one (HTTP's feed takes the clock over, others stop it in start()). */
static void feed_detect(struct session *s, const char *p, size_t n)
{
	feed_plain(s, p, n);
	if (!s->proto && buf_used(&s->in))
		session_head_begin(s);
}

/* Undecided bytes (at EOF, or when their head deadline passed) belong to the
 * mode's protocol. */
static void adopt_mode_proto(struct session *s)
{
	if (start(s, mode_proto(s->srv)) == 0)
		in_consume(s, feed(s, buf_head(&s->in), buf_used(&s->in)));
}

void session_input(struct session *s, const char *p, size_t n)
{
	stat_add(STAT_bytes_in, n);
	if (s->lingering) {
		s->linger_in = 1; /* still sending: it lingers to its EOF or the drain's end */
		return;           /* read only so that closing sends no RST */
	}
	if (s->stopping)
		s->drain_busy = 1; /* a transfer in flight: see drain_quiet_allowed */
	if (!s->tls) {
		feed_detect(s, p, n);
		return;
	}
	struct buf plain = {0};
	int rc = tls_conn_input(s->tls, p, n, &plain);
	if (buf_used(&plain) && s->record_clock) {
		s->record_clock = 0; /* the record arrived whole */
		s->head_ms = 0;
	}
	if (buf_used(&plain))
		feed_detect(s, buf_head(&plain), buf_used(&plain));
	buf_free(&plain);
	/* A record trickled byte by byte decrypts to nothing until it is whole,
	 * so no protocol sees it start: it gets the head's total deadline here
	 * (unless a head's clock already runs, which bounds it anyway). */
	if (rc == 0 && !s->head_ms && !s->closing && tls_conn_partial_record(s->tls)) {
		session_head_begin(s);
		s->record_clock = 1;
	}
	if (rc < 0) {
		s->tls_failed = 1;
		session_close_for(s, CLOSE_BAD_INPUT); /* counted in tls.c */
	} else if (tls_conn_peer_closed(s->tls) && !s->eof) {
		session_eof(s); /* close_notify ends the stream as a FIN does */
	}
}

/* The end of the peer's stream, once no input waits for the output. */
static void finish_eof(struct session *s)
{
	if (!s->proto && buf_used(&s->in) && !s->closing)
		adopt_mode_proto(s);
	if (!s->closing) /* before eof(): whatever it queues, the peer ended it */
		s->close_why = CLOSE_PEER;
	if (s->proto && s->proto->eof && !s->closing)
		s->proto->eof(s);
	session_close_for(s, CLOSE_PEER);
}

void session_eof(struct session *s)
{
	s->eof = 1;
	if (s->lingering) {
		session_close_for(s, CLOSE_DRAIN); /* the peer has read what it wanted */
		return;
	}
	if (!s->in_paused) /* else resume() finishes it: the waiting commands are answered first */
		finish_eof(s);
}

/* The output drained below --read-pause: answer the input that waited for
 * it. This can queue output again (and pause again); the caller's model
 * writes it, as it writes after any session_sent(). */
static void resume(struct session *s)
{
	if (!s->in_paused || s->closing || s->lingering || session_output_full(s))
		return;
	s->in_paused = 0;
	feed_plain(s, NULL, 0);
	if (s->eof && !s->in_paused && !s->closing)
		finish_eof(s);
}

int session_iov(struct session *s, struct iovec *iov, int max)
{
	if (!s->tls)
		return outbox_iov(&s->out, iov, max);
	if (!outbox_empty(&s->out) && tls_conn_encrypt(s->tls, &s->out) < 0)
		session_close_for(s, CLOSE_ERROR);
	if ((s->closing || s->lingering) && outbox_empty(&s->out) && !s->tls_failed)
		tls_conn_shutdown(s->tls);
	return outbox_iov(tls_conn_cipher(s->tls), iov, max);
}

/* What the socket reads from: with TLS the ciphertext, else the plaintext. */
static struct outbox *wire(struct session *s) { return s->tls ? tls_conn_cipher(s->tls) : &s->out; }

void session_sent(struct session *s, size_t n)
{
	stat_add(STAT_bytes_out, n);
	size_t pause = s->srv->cfg->read_pause;
	bool was_full = session_pending(s) >= pause;
	outbox_consume(wire(s), n);
	/* A record's clock does not run while we would not read its rest. */
	if (s->record_clock && was_full && session_pending(s) < pause)
		s->head_ms = now_ms();
	resume(s);
	if (s->chat) /* publishers on other threads read it for the slow-consumer limits */
		atomic_store_explicit(&s->sub.unsent, session_pending(s), memory_order_relaxed);
}

void session_pin(struct session *s, size_t n) { outbox_pin(wire(s), n); }

void session_unpin(struct session *s) { outbox_unpin(wire(s)); }

int session_send(struct session *s, int fd, bool *wrote)
{
	struct iovec iov[SESSION_IOV_BATCH];
	int n;
	while ((n = session_iov(s, iov, SESSION_IOV_BATCH)) > 0) {
		size_t want = 0;
		for (int i = 0; i < n; i++)
			want += iov[i].iov_len;
		/* One segment (an echo, a reply) is a send(): sendmsg would copy a
		 * msghdr and an iovec array in from user space for it. */
		struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
		ssize_t w = n == 1 ? send(fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL | MSG_DONTWAIT)
		                   : sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 1;
			session_reset(s); /* ECONNRESET, EPIPE, ... */
			return -1;
		}
		session_sent(s, (size_t)w);
		if (wrote)
			*wrote = true;
		if ((size_t)w < want)
			return 1; /* short write: the socket buffer is full */
	}
	session_linger_step(s, fd);
	return 0;
}

/* A protocol ended it for the drain (chat's BYE, RESP, HTTP's Connection:
 * close) and its last reply is out: it lingers as a quiet one does, since
 * the peer may still be sending (pipelined commands, lines typed during a
 * pause), and closing with input unread or arriving sends an RST. What
 * waited for the output is not answered now: it is read and discarded. */
static void linger_after_drain_close(struct session *s)
{
	if (!s->closing || !s->stopping || s->close_why != CLOSE_DRAIN || s->eof || s->tls_failed ||
	    session_pending(s))
		return;
	s->closing = 0;
	s->lingering = 1;
	s->in_paused = 0;
	s->held = 0;
	in_consume(s, buf_used(&s->in));
}

void session_linger_step(struct session *s, int fd)
{
	linger_after_drain_close(s);
	if (!s->lingering || s->closing || session_pending(s))
		return;
	int unacked = 0, unread = 0;
	if (ioctl(fd, SIOCOUTQ, &unacked) < 0 || ioctl(fd, SIOCINQ, &unread) < 0) {
		session_close_for(s, CLOSE_DRAIN);
		return;
	}
	if (unread > 0)
		s->linger_in = 1; /* close() now would send an RST, not the FIN (see drain) */
	if (unacked == 0 && !s->linger_in) {
		session_close_for(s, CLOSE_DRAIN); /* the peer has every byte: closing now loses nothing */
		return;
	}
	if (!s->shut_wr) {
		s->shut_wr = 1;
		stat_inc(STAT_drain_lingers);
		shutdown(fd, SHUT_WR); /* the peer reads to our FIN, then closes: its EOF ends the linger */
	}
}

size_t session_pending(const struct session *s)
{
	return outbox_bytes(&s->out) + (s->tls ? outbox_bytes(tls_conn_cipher(s->tls)) : 0);
}

bool session_output_full(const struct session *s)
{
	if (session_pending(s) >= s->srv->cfg->read_pause || s->held)
		return true;
	/* mid-feed: the PUBLISH just answered left a subscriber behind */
	return s->feeding && (owner_pressure_here() & OWNER_PRESSURE_HOLD) && hold_allowed(s);
}

bool session_want_read(const struct session *s)
{
	/* in_paused: the input read already waits; reading more would only grow s->in */
	return !s->closing && !s->eof && !s->in_paused && !session_output_full(s);
}

bool session_done(const struct session *s)
{
	return s->closing && session_pending(s) == 0;
}

/* A subscriber's output over the limit the mailbox judges it by: the soft
 * one, or the hard one where there is no soft one (0 and 0: never). */
static bool session_stuck(const struct session *s)
{
	const struct config *cfg = s->srv->cfg;
	size_t limit = cfg->outbox_soft ? cfg->outbox_soft : cfg->outbox_hard;
	return limit && session_pending(s) > limit;
}

/* --idle-timeout, but for a chat subscriber (see below). */
static int own_idle_limit(const struct session *s)
{
	return s->chat && chat_count(s->chat) && !session_stuck(s) ? 0 : s->srv->cfg->idle_timeout_ms;
}

/* May the drain judge s quiet (and so end it) after SESSION_DRAIN_QUIET_MS?
 * Not an echo stream in flight: its client may be descheduled (or stopped)
 * mid-transfer for longer than that and then send more, and echo has no
 * boundary at which a close would lose nothing; it ends at its own EOF or at
 * --drain-timeout. Other protocols end their sessions for the drain
 * themselves (chat's BYE, RESP, HTTP's last reply). */
static bool drain_quiet_allowed(const struct session *s)
{
	return !(s->drain_busy && s->proto == &proto_echo);
}

int session_idle_limit_ms(const struct session *s)
{
	const struct config *cfg = s->srv->cfg;
	if (s->sub.slow_closed)
		return SESSION_SLOW_LINGER_MS;
	if (s->held)
		return SESSION_HOLD_RETRY_MS; /* then session_hold_expired, not idle */
	if (s->lingering)
		return SESSION_LINGER_CHECK_MS; /* then the model's session_linger_step */
	if (s->stopping)
		return session_pending(s) || !drain_quiet_allowed(s) ? cfg->drain_timeout_ms : SESSION_DRAIN_QUIET_MS;
	/* A subscriber waits for messages, and a quiet channel is normal: as
	 * Redis does for pub/sub clients, no idle limit while it holds a
	 * subscription (TCP keepalive, --tcp-keepalive, finds dead peers). It is
	 * asked again at every wait, so an UNSUBSCRIBE of the last one brings the
	 * limit back, counted from that command. Not while more than the soft
	 * limit (else the hard one) waits unsent: that subscriber is not quiet
	 * but stuck, keepalive cannot see it (its kernel answers the probes), and
	 * the --outbox-soft verdict needs another message that may never come.
	 * Any output at all would be the wrong test: a delivery to a subscriber
	 * quiet for longer than the limit is pending until its send completes
	 * (uring: a later completion), and the idle clock, which runs from the
	 * last read or write, would cut it right then. */
	int limit = own_idle_limit(s); /* a handshake's own bound is its total deadline */
	return s->proto && s->proto->idle_limit ? s->proto->idle_limit(s, limit) : limit; /* a WebSocket pings */
}

void session_hold_expired(struct session *s)
{
	s->held = 0;
	resume(s); /* may hold it again */
}

bool session_idle_expired(struct session *s)
{
	if (s->lingering)
		return false; /* only the drain's end bounds it: the model looks at it again */
	if (s->stopping && !s->closing && !s->eof && session_pending(s) == 0 && drain_quiet_allowed(s)) {
		s->lingering = 1; /* quiet: session_linger_step closes it, or lingers */
		return false;
	}
	if (!s->stopping && !s->sub.slow_closed && !s->closing && s->proto && s->proto->idle &&
	    s->proto->idle(s, own_idle_limit(s)))
		return true; /* a WebSocket ping went out */
	/* Quiet during drain is the normal end of a connection on stop; a
	 * dropped slow consumer has its reason already. */
	session_close_for(s, s->sub.slow_closed ? CLOSE_SLOW_CONSUMER : s->stopping ? CLOSE_DRAIN : CLOSE_IDLE);
	return false;
}

long long session_deadline_ms(const struct session *s)
{
	const struct config *cfg = s->srv->cfg;
	if (s->stopping || s->sub.slow_closed)
		return 0;
	if (s->linger_ms)
		return s->linger_ms;
	if (s->closing)
		return 0;
	if (s->tls && tls_conn_handshaking(s->tls))
		return cfg->handshake_timeout_ms > 0 ? s->start_ms + cfg->handshake_timeout_ms : 0;
	if (s->head_ms && cfg->header_timeout_ms > 0)
		return s->head_ms + cfg->header_timeout_ms;
	return 0;
}

bool session_deadline_expired(struct session *s)
{
	if (s->linger_ms) {
		session_close_for(s, CLOSE_TIMEOUT);
		return true; /* its reply had its chance (counted when it was queued) */
	}
	if (s->tls && tls_conn_handshaking(s->tls)) {
		stat_inc(STAT_tls_timeouts);
		static struct log_rate handshake_rate = LOG_RATE_INIT; /* a client decides how often: see tls.c */
		log_debug("tls: handshake timeout on connection %llu", (unsigned long long)s->id);
		log_rated(&handshake_rate, LOG_INFO, "tls: handshake not finished within --handshake-timeout; closing");
		session_close_for(s, CLOSE_TIMEOUT);
		return true;
	}
	s->head_ms = 0;
	if (s->record_clock) {
		stat_inc(STAT_header_timeouts);
		static struct log_rate record_rate = LOG_RATE_INIT;
		log_debug("tls: a record not complete within --header-timeout on connection %llu; closing",
		          (unsigned long long)s->id);
		log_rated(&record_rate, LOG_INFO, "tls: a record not complete within --header-timeout; closing");
		session_close_for(s, CLOSE_TIMEOUT);
		return true;
	}
	if (!s->proto) {
		/* Still possibly a request line: too slow for HTTP, so it is not. */
		adopt_mode_proto(s);
		return false;
	}
	stat_inc(STAT_header_timeouts);
	session_close_for(s, CLOSE_TIMEOUT); /* first: the 408 it queues closes for this reason */
	if (s->proto->head_timeout) /* set for every protocol that starts a head clock */
		s->proto->head_timeout(s);
	s->linger_ms = now_ms() + SESSION_SLOW_LINGER_MS; /* a total bound on sending it, too */
	return false;
}

void session_head_begin(struct session *s)
{
	if (!s->head_ms)
		s->head_ms = now_ms();
}

void session_head_end(struct session *s) { s->head_ms = 0; }

void session_stop(struct session *s)
{
	if (s->stopping)
		return;
	s->stopping = 1;
	s->drain_busy = buf_used(&s->in) > 0; /* input waits for an answer: mid-transfer */
	/* Closing already (the peer's EOF, QUIT, a fault): it has said its last,
	 * and with TLS its close_notify may be out, after which a protocol's
	 * goodbye (a close frame, BYE) could never be sent: pending for good,
	 * it held the drain to its end where the model sends asynchronously
	 * (uring: the stop arrived while close_notify was in flight). */
	if (s->proto && s->proto->stop && !s->closing)
		s->proto->stop(s);
	linger_after_drain_close(s); /* nothing left to send: it lingers now (else after the flush) */
}

void session_reset(struct session *s)
{
	session_close_for(s, CLOSE_RESET);
}
