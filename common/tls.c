/* tls.c - placeholder until the TLS issue lands. */
#include "tls.h"

#include <errno.h>

#include "log.h"

struct tls_ctx *tls_ctx_new(const struct config *cfg)
{
	(void)cfg;
	log_error("tls: not built yet");
	return NULL;
}
void tls_ctx_free(struct tls_ctx *ctx) { (void)ctx; }
struct tls_conn *tls_conn_new(struct tls_ctx *ctx) { (void)ctx; return NULL; }
void tls_conn_free(struct tls_conn *c) { (void)c; }
int tls_conn_input(struct tls_conn *c, const char *p, size_t n, struct buf *plain)
{
	(void)c, (void)p, (void)n, (void)plain;
	return -EPROTO;
}
int tls_conn_encrypt(struct tls_conn *c, struct outbox *plain) { (void)c, (void)plain; return -EPROTO; }
struct outbox *tls_conn_cipher(struct tls_conn *c) { (void)c; return NULL; }
bool tls_conn_handshaking(const struct tls_conn *c) { (void)c; return false; }
void tls_conn_shutdown(struct tls_conn *c) { (void)c; }
