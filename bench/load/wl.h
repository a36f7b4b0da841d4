/* wl.h - weft-load's shared pieces: options, clock, latency histogram,
 * the connection I/O layer (plain or OpenSSL), the payload pattern and the
 * per-run result that every scenario fills and main.c prints as JSON.
 *
 * Every scenario runs its own epoll loop per thread and stops by itself:
 * a run is bounded by --duration and --count, and its drain by --timeout. */
#ifndef WL_H
#define WL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/ssl.h>

/* ---- options ---- */

struct wl_opts {
	const char *cmd; /* echo | chat | handshake | idle */
	const char *host;
	int port;
	int conns;
	int threads;
	double duration_s;
	uint64_t count;   /* 0 = no bound but the duration */
	double warmup_s;
	double timeout_s; /* no progress this long = timeout; also the drain bound */
	const char *json_path;
	const char *label;
	bool tls;
	bool quiet;
	/* echo */
	size_t size;
	int depth;
	double rate; /* > 0: open loop at this many messages/s in total */
	/* chat */
	int subscribers, channels, publishers, window;
	bool resp;
	uint64_t backlog;
	int pub_port;     /* publishers connect here instead of --port (another cluster node) */
	double settle_s;  /* wait this long after every subscriber is confirmed, before publishing */
	const char *chan_prefix; /* channel k is <prefix><k> [wl]: two runs on one cluster stay apart */
	/* handshake */
	bool resume;
	bool http_request;
	/* --ws: WebSocket (echo, chat) */
	bool ws;
	/* idle */
	double hold_s;
	const char *ready_file;
};

/* ---- clock ---- */

uint64_t wl_now_ns(void);

/* ---- latency histogram: log-linear buckets, ~1.6 % resolution ---- */

#define WL_HIST_SUB_BITS 6
#define WL_HIST_BUCKETS (128 + 57 * 64)

struct wl_hist {
	uint64_t count, sum, min, max;
	uint64_t b[WL_HIST_BUCKETS];
};

void wl_hist_init(struct wl_hist *h);
void wl_hist_add(struct wl_hist *h, uint64_t v);
void wl_hist_merge(struct wl_hist *into, const struct wl_hist *from);
/* Value at quantile q (0..1]: the upper edge of its bucket, capped at max. */
uint64_t wl_hist_quantile(const struct wl_hist *h, double q);

/* ---- results ---- */

struct wl_result {
	uint64_t ops;        /* completed round trips / deliveries / handshakes */
	uint64_t bytes;      /* payload bytes verified */
	uint64_t published;  /* chat */
	uint64_t expected;   /* chat: deliveries that should have arrived */
	uint64_t mismatches; /* wrong bytes (echo), corrupt payloads (chat) */
	uint64_t count_mismatches; /* chat: a PUBLISH reply naming another receiver count than the run's subscribers */
	uint64_t lost, duplicates, reordered; /* chat, per publisher */
	uint64_t errors;     /* resets, unexpected EOF, error replies, protocol errors */
	uint64_t timeouts;   /* no answer within --timeout */
	uint64_t reconnects;
	uint64_t connect_failures;
	uint64_t resumed, full; /* handshake */
	uint64_t tls12, tls13;  /* handshake: the protocol version each negotiated */
	uint64_t established;   /* idle */
	uint64_t unsent;        /* open loop: due before the end but never sent (the client fell behind) */
	uint64_t t_first, t_last; /* measured window (ns, monotonic) */
	struct wl_hist hist;
};

void wl_result_init(struct wl_result *r);
void wl_result_merge(struct wl_result *into, const struct wl_result *from);
/* Verification errors make weft-load exit non-zero. */
uint64_t wl_result_bad(const struct wl_result *r);

/* ---- connection I/O: plain socket or TLS over it ---- */

struct wl_ws;

struct wl_io {
	int fd;
	SSL *ssl;
	struct wl_ws *ws; /* --ws: WebSocket framing over this connection (ws.c) */
	bool connected; /* TCP connect finished */
	/* The last plain read returned less than it asked for: the socket's
	 * receive queue was empty then, and edge-triggered epoll reports the
	 * next bytes that arrive, so the read that would only say EAGAIN can be
	 * skipped (as nginx does). Never set under TLS, which reads by record. */
	bool short_read;
	/* epoll said the peer closed (EPOLLRDHUP, HUP, ERR): a FIN that came
	 * with the last bytes brings no later edge, so reads go on until one
	 * says 0 and short_read is never set (nginx's pending_eof). */
	bool peer_closed;
};

/* What epoll reported for io (before its reads). */
void wl_io_events(struct wl_io *io, uint32_t events);

/* TLS client context (verification off: weft makes a self-signed cert). */
SSL_CTX *wl_tls_ctx(void);
/* Start a non-blocking connect; 0 or -errno. */
int wl_io_connect(struct wl_io *io, const struct wl_opts *o, SSL_CTX *tls, SSL_SESSION *resume);
/* Finish the TCP connect after EPOLLOUT: 0, -EAGAIN, or -errno. */
int wl_io_connected(struct wl_io *io);
/* TLS handshake step: 0 done, -EAGAIN, -EPROTO. Plain: always 0. */
int wl_io_handshake(struct wl_io *io);
/* > 0 bytes, 0 = EOF, -EAGAIN, or -errno. */
ssize_t wl_io_read(struct wl_io *io, void *p, size_t n);
ssize_t wl_io_write(struct wl_io *io, const void *p, size_t n);
void wl_io_close(struct wl_io *io);
/* epoll: register fd edge-triggered for in and out; data.ptr = ptr. */
int wl_epoll_add(int ep, int fd, void *ptr);
/* Wait up to timeout_ns (epoll_pwait2 where available). */
int wl_epoll_wait(int ep, void *events, int max, int64_t timeout_ns);

/* The socket (or TLS) itself, under any WebSocket framing. */
ssize_t wl_io_raw_read(struct wl_io *io, void *p, size_t n);
ssize_t wl_io_raw_write(struct wl_io *io, const void *p, size_t n);

/* ---- WebSocket client (ws.c): with --ws, wl_io_connect attaches it,
 * wl_io_handshake does the upgrade after TLS, wl_io_read returns the
 * messages' payloads (line mode: each followed by '\n'), and wl_io_write
 * (line mode, chat) sends each complete line as one masked text message. ---- */

int wl_ws_attach(struct wl_io *io, const struct wl_opts *o);
void wl_ws_free(struct wl_io *io);
int wl_ws_upgrade(struct wl_io *io);
/* A masked frame: begin (header and a fresh mask), then exactly len bytes of data. */
int wl_ws_frame_begin(struct wl_io *io, int opcode, size_t len);
void wl_ws_frame_data(struct wl_io *io, const void *p, size_t n);
/* Write out framed bytes: 0 all sent, -EAGAIN, -errno. */
int wl_ws_flush(struct wl_io *io);
size_t wl_ws_pending(const struct wl_io *io);
ssize_t wl_ws_write_lines(struct wl_io *io, const void *p, size_t n);
ssize_t wl_ws_read(struct wl_io *io, void *p, size_t n);
/* Make the pattern printable ASCII (text messages must be UTF-8). */
void wl_pattern_ascii(void);

/* ---- echo payload pattern ----
 * Message (conn, seq) is a slice of a fixed random block starting at an offset
 * hashed from (conn, seq), so a dropped, duplicated, reordered or corrupted
 * byte shows up as a mismatch. The slice never starts with a byte that begins
 * an HTTP method (weft would wait to detect HTTP) or '*'. */

#define WL_PATTERN_LEN 131071u
#define WL_PATTERN_TAIL 65536u /* a copy of the head: short slices never wrap */

extern unsigned char wl_pattern[WL_PATTERN_LEN + WL_PATTERN_TAIL];
void wl_pattern_init(void);
uint32_t wl_pattern_off(uint64_t conn, uint64_t seq);
/* Compare [p, p+n) with bytes [at, at+n) of message (conn, seq): true if equal. */
bool wl_pattern_check(uint64_t conn, uint64_t seq, size_t at, const unsigned char *p, size_t n);

/* ---- scenarios: each fills r and returns 0, or -errno on a setup failure ---- */

int wl_echo_run(const struct wl_opts *o, struct wl_result *r);
int wl_chat_run(const struct wl_opts *o, struct wl_result *r);
int wl_handshake_run(const struct wl_opts *o, struct wl_result *r);
int wl_idle_run(const struct wl_opts *o, struct wl_result *r);

/* Set by SIGINT/SIGTERM: finish the run early, still report. */
extern atomic_bool wl_stop;

#endif
