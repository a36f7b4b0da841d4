/* tls.h - TLS as a byte transform (OpenSSL with memory BIOs).
 *
 * OpenSSL never sees a socket: the session feeds it ciphertext the model
 * read and takes back ciphertext for the model to write, so every model,
 * io_uring included, gets TLS from this one file (h2o's approach). */
#ifndef WEFT_TLS_H
#define WEFT_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "outbox.h"

struct config;
struct tls_ctx;
struct tls_conn;

/* From --cert/--key, or an ephemeral self-signed certificate (logged) when
 * none was given. NULL after logging why. */
struct tls_ctx *tls_ctx_new(const struct config *cfg);
void tls_ctx_free(struct tls_ctx *ctx);

struct tls_conn *tls_conn_new(struct tls_ctx *ctx);

/* The client side (the --cluster link to a rediss:// engine): verify the
 * peer against ca_file (PEM), or the system store when NULL, unless
 * insecure. NULL after logging why. */
struct tls_ctx *tls_client_ctx_new(const char *ca_file, bool insecure);
/* A client connection to host (a name or an IP address, checked against the
 * certificate when verifying; sent as SNI when a name). */
struct tls_conn *tls_conn_new_client(struct tls_ctx *ctx, const char *host);
/* Client: put the ClientHello in the cipher outbox. 0 or -EPROTO / -ENOMEM. */
int tls_conn_start(struct tls_conn *c);
/* Why the peer's certificate was refused, or NULL if it was not. */
const char *tls_conn_verify_error(const struct tls_conn *c);
void tls_conn_free(struct tls_conn *c);
/* The session's id, so log lines about this connection name it. */
void tls_conn_set_id(struct tls_conn *c, unsigned long long id);

/* Ciphertext in; decrypted plaintext is appended to plain (all of it: no
 * plaintext is left stranded inside OpenSSL). 0, or -EPROTO / -ENOMEM on a
 * fatal error (an alert may be queued in the cipher outbox). */
int tls_conn_input(struct tls_conn *c, const char *p, size_t n, struct buf *plain);
/* Encrypt everything in plain (consuming it) into the cipher outbox; while
 * the handshake is not done, plaintext waits. 0 or -errno. */
int tls_conn_encrypt(struct tls_conn *c, struct outbox *plain);
/* Ciphertext waiting for the socket. */
struct outbox *tls_conn_cipher(struct tls_conn *c);
bool tls_conn_handshaking(const struct tls_conn *c);
/* The peer sent close_notify: its end of stream, like a FIN (it may still read). */
bool tls_conn_peer_closed(const struct tls_conn *c);
/* After the handshake: OpenSSL holds the start of a record whose rest has not
 * arrived (so nothing of it could be decrypted yet). */
bool tls_conn_partial_record(const struct tls_conn *c);
/* Queue close_notify. */
void tls_conn_shutdown(struct tls_conn *c);

#endif
