/* session.h - one connection's protocol state, as a model sees it.
 *
 * The seam between models and protocols. A model owns the socket and moves
 * bytes; a session never touches a socket:
 *
 *   bytes read      -> session_input(s, p, n)
 *   peer sent FIN   -> session_eof(s)
 *   bytes to write  <- session_iov(s, iov, max) ... then session_sent(s, n)
 *   write in flight -> session_pin(s, n) ... session_unpin(s), session_sent(s, n)
 *   close when      <- session_done(s)        (closing and nothing left to send)
 *   read only while <- session_want_read(s)   (back-pressure and closing)
 *   inactivity      <- session_idle_limit_ms(s), then session_idle_expired(s)
 *   total deadline  <- session_deadline_ms(s), then session_deadline_expired(s)
 *   on stop         -> session_stop(s)        (drain: see below)
 *
 * With TLS the iov holds ciphertext and input is ciphertext; the protocols
 * never know. A model must call session_iov after every session_input (and
 * after owner_drain delivered mail) and after every session_sent: input can
 * produce output, and so can sending (see back-pressure).
 *
 * Back-pressure (--read-pause): a protocol answers the commands of one read
 * only while session_output_full() is false, and leaves the rest in s->in;
 * session_want_read() is then false. session_sent() answers that waiting
 * input itself once the output is below --read-pause again, without new
 * bytes (so a model needs nothing more than the calls above). An EOF that
 * arrives while commands wait takes effect after they were answered. One
 * command's own reply may pass the threshold; the next waits.
 *
 * Drain on stop: after session_stop(), data already received is still
 * answered; the session counts as quiet once its output is flushed and no
 * input arrived for SESSION_DRAIN_QUIET_MS, and session_idle_limit_ms() then
 * says so; the model closes it at --drain-timeout at the latest. An echo
 * session with a transfer in flight (input waited unanswered at the stop, or
 * arrived after it: drain_busy) is never judged quiet: echo has no message
 * boundary at which the server could end it, and a client merely descheduled
 * for longer than the quiet interval would otherwise find its connection
 * closed and the rest of its echo lost. It is served until its EOF or the
 * drain's end, whichever comes first. Quiet, a session
 * lingers rather than closing at once: closing a socket that then receives
 * input makes the kernel answer with an RST and throw away what the peer has
 * not received yet (its echo). session_linger_step(), called by the model
 * whenever nothing is in flight, closes it (session_done) once the peer has
 * acknowledged every byte, and until then half-closes the socket and reads
 * and discards what arrives, until EOF or the drain's end. Not while input
 * waits unread in the kernel, or once any came during the linger (a held
 * publisher's pipeline, a client still sending): close() with input unread
 * sends an RST instead of the FIN, and the peer's read ends in ECONNRESET
 * even when it has every reply. Such a session is half-closed too, and its
 * input read and discarded until its EOF or the drain's end. A session its
 * protocol ends for the drain (chat's BYE, RESP, HTTP's last reply) lingers
 * the same way once that reply is out: the input still waiting for an answer
 * is dropped, and so are deliveries from then on.
 *
 * Holds (--publish-hold): a PUBLISH that leaves a subscriber with more than
 * the hold unsent (owner_pressure_here) ends the feed as full output does:
 * the rest of the input waits in s->in and session_want_read() is false, so
 * the publisher's socket fills and TCP holds the client back, while the
 * loop writes the subscribers. Its inactivity limit is then
 * SESSION_HOLD_RETRY_MS, and when that passes session_hold_expired() offers
 * the waiting input again, which may hold it again. A publisher is held for at
 * most --publish-hold-secs in a row: a subscriber that does not read stops
 * holding anyone then and meets the outbox limits (once one is dropped, the
 * holds start over), while one that reads catches up long before.
 *
 * Total deadlines: an inactivity limit is reset by every byte, so a client
 * that trickles one byte a second would hold a connection forever. A phase
 * that must end does so by an absolute time, whatever trickles in: the TLS
 * handshake (--handshake-timeout, from the session's start) and a request
 * head (--header-timeout, from its first byte: session_head_begin/_end).
 * A model honours session_deadline_ms() alongside the inactivity limit.
 *
 * Every session belongs to exactly one owner thread (owner.h); only that
 * thread calls these functions. */
#ifndef WEFT_SESSION_H
#define WEFT_SESSION_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "buf.h"
#include "outbox.h"
#include "stats.h"
#include "subscriber.h"

struct server;
struct owner;
struct proto;
struct tls_conn;

#define SESSION_DRAIN_QUIET_MS 200
/* A held publisher's input is offered again this often (uring also after a
 * turn in which output moved): a poll, but the subscriber that fell below
 * --publish-hold still has nearly that much queued when the retry finds it,
 * so a reader starves only above hold / 2 ms (1 GB/s at the default). */
#define SESSION_HOLD_RETRY_MS 2
#define SESSION_HOLD_CLOCK_BITS 15 /* a hold's start, in ms mod 2^15: 32.7 s > CONFIG_HOLD_MS_MAX */
#define SESSION_LINGER_CHECK_MS 20  /* a lingering session looks again whether the peer has everything */
#define SESSION_SLOW_LINGER_MS 2000 /* a dropped slow consumer gets this long to take its error line */

struct session {
	struct server *srv;
	const struct proto *proto; /* NULL until detected */
	void *pstate;              /* the protocol's own state */
	struct outbox out;         /* plaintext replies, in order */
	struct buf in;             /* plaintext the protocol has not consumed */
	struct tls_conn *tls;      /* NULL on the plain port */
	struct chat_conn *chat;    /* chat mode: subscriptions etc. (chat.h) */
	/* Numbers connections in the log and guest nicks; wraps after 2^30
	 * (kept small: with the flags below it fills one word). */
	uint32_t id : 30;
	bool closing : 1;          /* close once out is flushed */
	bool eof : 1;              /* peer half-closed */
	bool stopping : 1;         /* server is draining */
	bool tls_failed : 1;
	bool in_paused : 1;        /* s->in holds input that waits for the output to drain */
	bool record_clock : 1;     /* head_ms runs for a TLS record that is not complete yet */
	unsigned close_why : 4;    /* enum close_reason: the first reason to close wins */
	bool held : 1;             /* input waits for subscribers it published to (see holds) */
	bool hold_run : 1;         /* every feed that posted since hold_at met pressure */
	bool feeding : 1;          /* the protocol is consuming input now */
	bool lingering : 1;        /* stopping and quiet: closes once the peer has all (see drain) */
	bool shut_wr : 1;          /* ... half-closed meanwhile */
	bool linger_in : 1;        /* ... input waited unread or came: lingers to its EOF (see drain) */
	bool hold_spent : 1;       /* this run of holds lasted --publish-hold-secs: no more holds in it */
	bool drain_busy : 1;       /* stopping: input came after the stop (or waited at it): not judged quiet */
	bool held_far : 1;         /* held for what another thread must move (see holds) */
	/* now_ms() when hold_run began, mod 2^15 (holds last <= 30 s); 15 bits,
	 * so that it and the flags above fill the word with id */
	unsigned hold_at : SESSION_HOLD_CLOCK_BITS;
	/* What the exchange and mailbox see of a chat session (subscriber.h;
	 * chat.c fills its ops). sub.loop_data is the model's own
	 * per-connection object (the task owner_drain's ready() must wake);
	 * sessions never touch it. */
	struct subscriber sub;
	/* total deadlines (now_ms() times) */
	long long start_ms;        /* session_new(): the handshake counts from here */
	long long head_ms;         /* first byte of the request head being read; 0 = none */
	long long linger_ms;       /* a deadline passed and its reply is queued: close by then */
};

struct session *session_new(struct server *srv, struct owner *owner, bool tls);
/* Logs at debug "conn N: closed (REASON)". */
void session_free(struct session *s);
/* At debug level: "conn N: open from ADDR:PORT" (the model has the fd). */
void session_log_open(const struct session *s, int fd);

/* Bytes from the socket. Never fails: errors make the session closing (an
 * error reply may be queued first). */
void session_input(struct session *s, const char *p, size_t n);
void session_eof(struct session *s);
/* Socket bytes to write now; returns iov count (0 = nothing). */
int session_iov(struct session *s, struct iovec *iov, int max);
void session_sent(struct session *s, size_t n);
/* For models whose writes complete later (io_uring): the first n bytes of
 * session_iov() were handed to the kernel, which may read them until the
 * write completes; they are neither freed nor reused until session_unpin()
 * (call it when the write completes, before session_sent). */
void session_pin(struct session *s, size_t n);
void session_unpin(struct session *s);
/* For models that write with non-blocking sendmsg(): session_iov +
 * session_sent until the output is all out (0) or the socket is full (1);
 * -1 on a socket error, after session_reset(). *wrote (may be NULL) is set
 * when any byte went out. */
int session_send(struct session *s, int fd, bool *wrote);
/* For every model, when no write is in flight on fd: the drain's linger. */
void session_linger_step(struct session *s, int fd);
/* Unsent bytes (plain + cipher): what back-pressure and slow-consumer limits see. */
size_t session_pending(const struct session *s);
bool session_want_read(const struct session *s);
/* Input waits for subscribers (see holds): not readable, not finished. */
static inline bool session_held(const struct session *s) { return s->held; }
/* Held for what another thread must move: a subscriber on another loop or
 * thread, or the cluster link (OWNER_PRESSURE_FAR). Nothing this loop
 * writes can end such a hold, so a model that retries a hold early when
 * its own output moved (uring) retries this one only by time
 * (SESSION_HOLD_RETRY_MS): else a publisher on one loop outruns a link or
 * subscriber on another by one message per turn of its own loop. */
static inline bool session_held_far(const struct session *s) { return s->held && s->held_far; }
/* Quiet while stopping, waiting for the peer to have everything (see drain). */
static inline bool session_lingering(const struct session *s) { return s->lingering && !s->closing; }
/* For protocols: unsent output reached --read-pause; stop answering (return
 * what was consumed) until the session offers the rest again. */
bool session_output_full(const struct session *s);
bool session_done(const struct session *s);
/* Current inactivity limit in ms (idle, drain-quiet, slow linger); 0 = none. */
int session_idle_limit_ms(const struct session *s);
/* The model saw no traffic for session_idle_limit_ms(): count it, close.
 * Unless session_held(): then session_hold_expired() (deadline.c decides).
 * True when it stays open instead: the protocol queued a keepalive (a
 * WebSocket ping), to be sent as any output; the limit is asked again. */
bool session_idle_expired(struct session *s);
/* A held publisher's retry came: offer its waiting input again. */
void session_hold_expired(struct session *s);
/* When the current phase (handshake, request head) must be over, in now_ms()
 * time; 0 = no such deadline now (also while draining: the drain rules). */
long long session_deadline_ms(const struct session *s);
/* now_ms() reached session_deadline_ms(): counts it (tls_timeouts,
 * header_timeouts) and acts. True: close now. False: carry on as usual - a
 * reply (408) may be queued with the session closing, or the phase just
 * ended; session_deadline_ms() then says what bounds the rest. */
bool session_deadline_expired(struct session *s);
void session_stop(struct session *s);
/* The connection reset or failed on a socket error: closes it for that
 * reason (unless it had one already); free it next. */
void session_reset(struct session *s);

/* For protocols: queue reply bytes / a shared message; close after flush.
 * session_close_after_flush is the normal end the client asked for (QUIT,
 * Connection: close) or, while stopping, the drain; session_close_for
 * names another reason (bad input, slow consumer, ...). The first reason
 * given is the one counted (weft_connections_closed_total{reason}). */
int session_write(struct session *s, const void *p, size_t n);
int session_write_msg(struct session *s, struct msg *m);
void session_close_after_flush(struct session *s);
void session_close_for(struct session *s, enum close_reason why);
/* For models, before freeing: the reason to count this close under (the
 * one given, else: stopping -> drain, peer's EOF -> peer, else error). */
enum close_reason session_close_reason(const struct session *s);
/* A request head began arriving (idempotent: the first byte counts) / is
 * complete. While one is open, --header-timeout bounds it in total and the
 * protocol's head_timeout() answers when it passes. */
void session_head_begin(struct session *s);
void session_head_end(struct session *s);

#include <string.h>
static inline int session_puts(struct session *s, const char *str) { return session_write(s, str, strlen(str)); }

#endif
