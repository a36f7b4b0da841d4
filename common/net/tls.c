/* tls.c - TLS as a byte transform: OpenSSL with memory BIOs.
 *
 * Each connection's SSL object reads ciphertext from one BIO_s_mem (filled
 * by tls_conn_input with what the model read) and writes ciphertext into
 * another, which is emptied into the connection's cipher outbox after every
 * OpenSSL call. OpenSSL never sees a socket, so the blocking, coroutine and
 * io_uring models all use this file unchanged (the shape of h2o's
 * lib/common/socket.c).
 *
 * One SSL_CTX is shared by every thread (OpenSSL 3 makes that safe); an SSL
 * object is only touched by the thread that owns its session. */
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "config.h"
#include "log.h"
#include "stats.h"

/* Plaintext is moved in pieces this big: one TLS record's worth, so the write
 * BIO never holds more than a record or two before it is emptied. */
#define TLS_CHUNK 16384
#define TLS_AHEAD (4 * TLS_CHUNK) /* ciphertext kept ready for the socket */

/* TLS 1.2: forward secrecy and AEAD only (Mozilla "intermediate"). TLS 1.3
 * suites are all AEAD, so OpenSSL's defaults stand. */
static const char tls12_ciphers[] =
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

static const unsigned char alpn_http11[] = "\x08http/1.1";

struct tls_ctx {
	SSL_CTX *ssl;
};

struct tls_conn {
	SSL *ssl;
	BIO *rbio, *wbio; /* owned by ssl */
	struct outbox cipher;
	unsigned long long id;
	bool established; /* handshake finished */
	bool failed;      /* fatal error: nothing more goes in or out */
	bool peer_closed; /* close_notify received */
};

/* ---- errors -------------------------------------------------------------- */

/* OpenSSL's reason for the oldest queued error (usually the root cause), and
 * an empty queue afterwards so the next call starts clean. */
static const char *ossl_reason(char *out, size_t len, int *code)
{
	unsigned long e = ERR_get_error();
	if (code)
		*code = e ? ERR_GET_REASON(e) : 0;
	const char *r = e ? ERR_reason_error_string(e) : NULL;
	if (e && ERR_SYSTEM_ERROR(e))
		snprintf(out, len, "%s", strerror(ERR_GET_REASON(e)));
	else if (r)
		snprintf(out, len, "%s", r);
	else if (e)
		snprintf(out, len, "OpenSSL error %lu", e);
	else
		snprintf(out, len, "unknown error");
	ERR_clear_error();
	return out;
}

/* ---- the context ----------------------------------------------------------- */

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                       unsigned inlen, void *arg)
{
	(void)ssl, (void)arg;
	unsigned char *sel;
	if (SSL_select_next_proto(&sel, outlen, alpn_http11, sizeof(alpn_http11) - 1, in, inlen) ==
	    OPENSSL_NPN_NEGOTIATED) {
		*out = sel;
		return SSL_TLSEXT_ERR_OK;
	}
	/* A client offering only other protocols (or a RESP client offering
	 * something of its own) still gets a connection, just no ALPN answer. */
	return SSL_TLSEXT_ERR_NOACK;
}

/* No passphrase prompt on the terminal (OpenSSL's default) for an
 * encrypted key: it fails like a key that is not there, and says so. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf, (void)size, (void)rwflag, (void)u;
	return -1;
}

/* The file, open for reading, or NULL after logging which flag's file
 * cannot be read and why. */
static FILE *open_pem(const char *flag, const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		log_error("tls: cannot read %s %s: %s", flag, path, strerror(errno));
	return f;
}

/* --cert and --key (or --cert alone, when its file holds the key too, as
 * docs/TLS.md says). One message per mistake, each naming the file and
 * what to do: a file that cannot be read, a --cert without a certificate,
 * a key file without a key, a --cert file without a key and no --key, a
 * key that does not match the certificate. */
static int load_files(SSL_CTX *ssl, const struct config *cfg)
{
	char why[256];
	const char *key_flag = cfg->key ? "--key" : "--cert";
	const char *key = cfg->key ? cfg->key : cfg->cert;
	if (!cfg->cert) {
		log_error("tls: --key %s given without --cert: give the certificate chain with --cert FILE", cfg->key);
		return -EINVAL;
	}
	FILE *f = open_pem("--cert", cfg->cert);
	if (!f)
		return -EINVAL;
	fclose(f);
	if (SSL_CTX_use_certificate_chain_file(ssl, cfg->cert) != 1) {
		log_error("tls: --cert %s holds no PEM certificate (%s): give the certificate chain, leaf first",
		          cfg->cert, ossl_reason(why, sizeof(why), NULL));
		return -EINVAL;
	}
	if (!(f = open_pem(key_flag, key)))
		return -EINVAL;
	EVP_PKEY *pkey = PEM_read_PrivateKey(f, NULL, no_passphrase, NULL);
	fclose(f);
	if (!pkey) {
		ERR_clear_error(); /* OpenSSL's reason ("no start line", "unsupported") says less than we do */
		if (cfg->key)
			log_error("tls: --key %s holds no PEM private key: give the unencrypted PEM key the certificate was "
			          "made with", key);
		else
			log_error("tls: --cert %s holds no private key: give the key file with --key FILE, or append the PEM "
			          "private key to %s", key, key);
		return -EINVAL;
	}
	int ok = SSL_CTX_use_PrivateKey(ssl, pkey) == 1 && SSL_CTX_check_private_key(ssl) == 1;
	EVP_PKEY_free(pkey);
	if (!ok) {
		log_error("tls: the private key in %s does not match the certificate in --cert %s (%s): give the key "
		          "the certificate was made with", key, cfg->cert, ossl_reason(why, sizeof(why), NULL));
		return -EINVAL;
	}
	log_info("tls: certificate %s, key %s", cfg->cert, key);
	return 0;
}

static EVP_PKEY *make_p256_key(void)
{
	EVP_PKEY *pkey = NULL;
	EVP_PKEY_CTX *kctx = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, NULL);
	if (kctx && EVP_PKEY_keygen_init(kctx) == 1 &&
	    EVP_PKEY_CTX_set_ec_paramgen_curve_nid(kctx, NID_X9_62_prime256v1) == 1)
		EVP_PKEY_keygen(kctx, &pkey);
	EVP_PKEY_CTX_free(kctx);
	return pkey;
}

static int add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX v3;
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	int ok = ext && X509_add_ext(x, ext, -1) == 1;
	X509_EXTENSION_free(ext);
	return ok ? 0 : -1;
}

/* A self-signed leaf for localhost, valid from an hour ago for a year. */
static X509 *make_self_signed(EVP_PKEY *pkey)
{
	X509 *x = X509_new();
	unsigned char serial[16];
	BIGNUM *bn = NULL;
	int ok = x && RAND_bytes(serial, sizeof(serial)) == 1;
	serial[0] &= 0x7f; /* a positive serial */
	ok = ok && (bn = BN_bin2bn(serial, sizeof(serial), NULL)) != NULL;
	ok = ok && X509_set_version(x, 2) == 1 && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
	ok = ok && X509_gmtime_adj(X509_getm_notBefore(x), -3600) && X509_gmtime_adj(X509_getm_notAfter(x), 365L * 86400);
	X509_NAME *name = x ? X509_get_subject_name(x) : NULL;
	ok = ok && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0) == 1;
	ok = ok && X509_set_issuer_name(x, name) == 1 && X509_set_pubkey(x, pkey) == 1;
	ok = ok && add_ext(x, NID_basic_constraints, "critical,CA:FALSE") == 0;
	ok = ok && add_ext(x, NID_key_usage, "critical,digitalSignature") == 0;
	ok = ok && add_ext(x, NID_ext_key_usage, "serverAuth") == 0;
	ok = ok && add_ext(x, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1") == 0;
	ok = ok && X509_sign(x, pkey, EVP_sha256()) > 0;
	BN_free(bn);
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

static void fingerprint(X509 *x, char *out, size_t len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	size_t o = 0;
	out[0] = 0;
	if (X509_digest(x, EVP_sha256(), md, &n) != 1)
		return;
	for (unsigned i = 0; i < n && o + 4 <= len; i++)
		o += (size_t)snprintf(out + o, len - o, i ? ":%02X" : "%02X", md[i]);
}

static int use_ephemeral(SSL_CTX *ssl)
{
	char why[256], fp[3 * EVP_MAX_MD_SIZE + 1];
	EVP_PKEY *pkey = make_p256_key();
	X509 *x = pkey ? make_self_signed(pkey) : NULL;
	int rc = -ENOMEM;
	if (!x) {
		log_error("tls: cannot make a self-signed certificate: %s", ossl_reason(why, sizeof(why), NULL));
	} else if (SSL_CTX_use_certificate(ssl, x) != 1 || SSL_CTX_use_PrivateKey(ssl, pkey) != 1) {
		log_error("tls: cannot use the self-signed certificate: %s", ossl_reason(why, sizeof(why), NULL));
	} else {
		fingerprint(x, fp, sizeof(fp));
		log_warn("tls: no --cert/--key given: using an ephemeral self-signed certificate for localhost "
		         "(EC P-256, SHA-256 fingerprint %s); clients must skip verification (curl -k)", fp);
		rc = 0;
	}
	X509_free(x);
	EVP_PKEY_free(pkey);
	return rc;
}

static int configure(SSL_CTX *ssl)
{
	static const unsigned char sid_ctx[] = "weft";
	if (SSL_CTX_set_min_proto_version(ssl, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(ssl, tls12_ciphers) != 1 ||
	    SSL_CTX_set_session_id_context(ssl, sid_ctx, sizeof(sid_ctx) - 1) != 1)
		return -EINVAL;
	SSL_CTX_set_options(ssl, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* Resumption through tickets only: stateless, so no session cache shared
	 * (and locked) between threads, and nothing that grows with clients. */
	SSL_CTX_clear_options(ssl, SSL_OP_NO_TICKET);
	SSL_CTX_set_session_cache_mode(ssl, SSL_SESS_CACHE_OFF);
	/* Idle connections give their 16 KiB record buffers back. */
	SSL_CTX_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_alpn_select_cb(ssl, alpn_select, NULL);
	return 0;
}

struct tls_ctx *tls_ctx_new(const struct config *cfg)
{
	char why[256];
	struct tls_ctx *ctx = calloc(1, sizeof(*ctx));
	if (!ctx) {
		log_error("tls: out of memory");
		return NULL;
	}
	/* No OPENSSL_cleanup() from an atexit handler: the kernel frees a
	 * process faster, and under load that handler sometimes crashed ASan
	 * builds inside OpenSSL 3.0's own thread-state teardown
	 * (OPENSSL_thread_stop -> EVP_RAND_CTX_free), after every connection
	 * had already been closed. */
	OPENSSL_init_ssl(OPENSSL_INIT_NO_ATEXIT, NULL);
	ERR_clear_error();
	ctx->ssl = SSL_CTX_new(TLS_server_method());
	if (!ctx->ssl || configure(ctx->ssl) < 0) {
		log_error("tls: cannot set up OpenSSL: %s", ossl_reason(why, sizeof(why), NULL));
		goto fail;
	}
	if ((cfg->cert || cfg->key) ? load_files(ctx->ssl, cfg) < 0 : use_ephemeral(ctx->ssl) < 0)
		goto fail;
	return ctx;
fail:
	tls_ctx_free(ctx);
	return NULL;
}

void tls_ctx_free(struct tls_ctx *ctx)
{
	if (!ctx)
		return;
	SSL_CTX_free(ctx->ssl);
	free(ctx);
}

/* ---- the client side (--cluster rediss://) ------------------------------------ */

static int handshake(struct tls_conn *c);
static int flush_wbio(struct tls_conn *c);

struct tls_ctx *tls_client_ctx_new(const char *ca_file, bool insecure)
{
	char why[256];
	struct tls_ctx *ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return NULL;
	OPENSSL_init_ssl(OPENSSL_INIT_NO_ATEXIT, NULL);
	ERR_clear_error();
	ctx->ssl = SSL_CTX_new(TLS_client_method());
	if (!ctx->ssl || SSL_CTX_set_min_proto_version(ctx->ssl, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(ctx->ssl, tls12_ciphers) != 1) {
		log_error("tls: cannot set up an OpenSSL client: %s", ossl_reason(why, sizeof(why), NULL));
		goto fail;
	}
	SSL_CTX_set_mode(ctx->ssl, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (insecure) {
		SSL_CTX_set_verify(ctx->ssl, SSL_VERIFY_NONE, NULL);
		return ctx;
	}
	SSL_CTX_set_verify(ctx->ssl, SSL_VERIFY_PEER, NULL);
	if (ca_file ? SSL_CTX_load_verify_locations(ctx->ssl, ca_file, NULL) != 1
	            : SSL_CTX_set_default_verify_paths(ctx->ssl) != 1) {
		log_error("tls: cannot load CA certificates from %s: %s", ca_file ? ca_file : "the system store",
		          ossl_reason(why, sizeof(why), NULL));
		goto fail;
	}
	return ctx;
fail:
	tls_ctx_free(ctx);
	return NULL;
}

struct tls_conn *tls_conn_new_client(struct tls_ctx *ctx, const char *host)
{
	struct tls_conn *c = tls_conn_new(ctx);
	if (!c)
		return NULL;
	unsigned char ip[16];
	bool is_ip = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
	int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), host)
	               : SSL_set_tlsext_host_name(c->ssl, host) == 1 && SSL_set1_host(c->ssl, host) == 1;
	if (!ok) {
		ERR_clear_error();
		tls_conn_free(c);
		return NULL;
	}
	SSL_set_connect_state(c->ssl);
	return c;
}

int tls_conn_start(struct tls_conn *c)
{
	int rc = handshake(c);
	if (flush_wbio(c) < 0)
		return -ENOMEM;
	return rc < 0 ? rc : 0;
}

const char *tls_conn_verify_error(const struct tls_conn *c)
{
	long v = SSL_get_verify_result(c->ssl);
	return v == X509_V_OK ? NULL : X509_verify_cert_error_string(v);
}

/* ---- one connection -------------------------------------------------------- */

struct tls_conn *tls_conn_new(struct tls_ctx *ctx)
{
	struct tls_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->ssl = SSL_new(ctx->ssl);
	c->rbio = BIO_new(BIO_s_mem());
	c->wbio = BIO_new(BIO_s_mem());
	if (!c->ssl || !c->rbio || !c->wbio) {
		BIO_free(c->rbio);
		BIO_free(c->wbio);
		SSL_free(c->ssl);
		free(c);
		ERR_clear_error();
		return NULL;
	}
	/* An empty read BIO means "want more", not end of file. */
	BIO_set_mem_eof_return(c->rbio, -1);
	SSL_set_bio(c->ssl, c->rbio, c->wbio); /* ssl owns both now */
	SSL_set_accept_state(c->ssl);
	return c;
}

void tls_conn_set_id(struct tls_conn *c, unsigned long long id) { c->id = id; }

void tls_conn_free(struct tls_conn *c)
{
	if (!c)
		return;
	SSL_free(c->ssl); /* frees both BIOs */
	outbox_free(&c->cipher);
	free(c);
}

struct outbox *tls_conn_cipher(struct tls_conn *c) { return &c->cipher; }

bool tls_conn_handshaking(const struct tls_conn *c) { return !c->established; }

bool tls_conn_peer_closed(const struct tls_conn *c) { return c->peer_closed; }

/* Move whatever OpenSSL wrote (records, alerts) into the cipher outbox. */
static int flush_wbio(struct tls_conn *c)
{
	char tmp[TLS_CHUNK];
	while (BIO_ctrl_pending(c->wbio) > 0) {
		int n = BIO_read(c->wbio, tmp, sizeof(tmp));
		if (n <= 0)
			break;
		if (outbox_append(&c->cipher, tmp, (size_t)n) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* What a browser or curl gets for http:// on the TLS port (like nginx's
 * "plain HTTP request was sent to HTTPS port"), instead of a silent close. */
static const char http_on_tls_port[] =
	"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 42\r\nConnection: close\r\n\r\n"
	"This is a TLS port: use https:// instead.\n";

/* A fatal error: log why, keep any alert OpenSSL queued, refuse from now on. */
static int conn_fail(struct tls_conn *c, int err)
{
	char why[256];
	int code = 0;
	if (err == SSL_ERROR_SSL)
		ossl_reason(why, sizeof(why), &code);
	else
		snprintf(why, sizeof(why), "%s", err == SSL_ERROR_SYSCALL ? "unexpected end of input" : "internal error");
	ERR_clear_error();
	/* A client decides how often this happens: per connection at debug,
	 * at info one line a second at most with its count (log_rated). */
	static struct log_rate failed_rate = LOG_RATE_INIT, error_rate = LOG_RATE_INIT;
	if (!c->established) {
		stat_inc(STAT_tls_failures);
		log_debug("tls: handshake failed on connection %llu: %s", c->id, why);
		log_rated(&failed_rate, LOG_INFO, "tls: handshake failed: %s", why);
	} else {
		log_debug("tls: error on connection %llu: %s", c->id, why);
		log_rated(&error_rate, LOG_INFO, "tls: error on a connection: %s", why);
	}
	c->failed = true;
	flush_wbio(c);
	if (code == SSL_R_HTTP_REQUEST && outbox_empty(&c->cipher))
		outbox_append(&c->cipher, http_on_tls_port, sizeof(http_on_tls_port) - 1);
	return -EPROTO;
}

static void established(struct tls_conn *c)
{
	const unsigned char *alpn = NULL;
	unsigned alpn_len = 0;
	c->established = true;
	stat_inc(STAT_tls_handshakes);
	if (SSL_session_reused(c->ssl))
		stat_inc(STAT_tls_resumed);
	SSL_get0_alpn_selected(c->ssl, &alpn, &alpn_len);
	log_debug("tls: connection %llu: %s %s%s alpn=%.*s", c->id, SSL_get_version(c->ssl),
	          SSL_get_cipher_name(c->ssl), SSL_session_reused(c->ssl) ? " resumed" : "", (int)alpn_len,
	          alpn ? (const char *)alpn : "");
}

/* Drive the handshake; 1 when done, 0 when it needs more input, <0 on failure. */
static int handshake(struct tls_conn *c)
{
	ERR_clear_error();
	int r = SSL_do_handshake(c->ssl);
	if (r == 1) {
		established(c);
		return 1;
	}
	int err = SSL_get_error(c->ssl, r);
	if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
		return 0;
	return conn_fail(c, err);
}

/* Every byte of plaintext OpenSSL can give now (records that arrived
 * together are all decrypted, so nothing waits in SSL_pending). */
static int read_plain(struct tls_conn *c, struct buf *plain)
{
	char tmp[TLS_CHUNK];
	for (;;) {
		size_t got = 0;
		ERR_clear_error();
		if (SSL_read_ex(c->ssl, tmp, sizeof(tmp), &got) == 1) {
			if (buf_append(plain, tmp, got) < 0)
				return -ENOMEM;
			continue;
		}
		int err = SSL_get_error(c->ssl, 0);
		if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
			return 0;
		if (err == SSL_ERROR_ZERO_RETURN) {
			c->peer_closed = true; /* the peer's end of stream; it may still read */
			return 0;
		}
		return conn_fail(c, err);
	}
}

int tls_conn_input(struct tls_conn *c, const char *p, size_t n, struct buf *plain)
{
	if (c->failed)
		return -EPROTO;
	while (n) {
		int k = n > INT_MAX ? INT_MAX : (int)n;
		if (BIO_write(c->rbio, p, k) != k) {
			ERR_clear_error();
			return -ENOMEM;
		}
		p += k;
		n -= (size_t)k;
	}
	int rc = c->established ? 1 : handshake(c);
	if (rc == 1)
		rc = read_plain(c, plain);
	/* Handshake messages, tickets, alerts: whatever OpenSSL answered. */
	if (flush_wbio(c) < 0 && rc == 0)
		rc = -ENOMEM;
	return rc < 0 ? rc : 0;
}

int tls_conn_encrypt(struct tls_conn *c, struct outbox *plain)
{
	if (c->failed)
		return -EPROTO;
	if (!c->established)
		return 0; /* replies queued before the handshake wait for it */
	if (SSL_get_shutdown(c->ssl) & SSL_SENT_SHUTDOWN)
		return -EPIPE;
	/* Encrypt only a little ahead of the socket: plaintext waits in the
	 * session's outbox as shared message references (cheaper than a private
	 * ciphertext copy), and a dropped slow consumer's unsent messages can
	 * still be dropped (ciphertext cannot: records are sequenced). */
	while (!outbox_empty(plain) && outbox_bytes(&c->cipher) < TLS_AHEAD) {
		struct iovec iov[1];
		if (outbox_iov(plain, iov, 1) != 1)
			break;
		size_t len = iov[0].iov_len < TLS_CHUNK ? iov[0].iov_len : TLS_CHUNK;
		size_t done = 0;
		ERR_clear_error();
		if (SSL_write_ex(c->ssl, iov[0].iov_base, len, &done) != 1) {
			int err = SSL_get_error(c->ssl, 0);
			if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
				/* OpenSSL wants this very write again, same bytes and
				 * length, after the next input: a slow consumer's drop
				 * must not take them away meanwhile. */
				outbox_pin(plain, len);
				break;
			}
			return conn_fail(c, err);
		}
		outbox_unpin(plain);
		outbox_consume(plain, done);
		if (flush_wbio(c) < 0)
			return -ENOMEM;
	}
	return flush_wbio(c);
}

bool tls_conn_partial_record(const struct tls_conn *c)
{
	/* tls_conn_input decrypts all it can, so what is still buffered (in the
	 * read BIO or in OpenSSL's record buffer) is an incomplete record. */
	return c->established && !c->failed && (BIO_ctrl_pending(c->rbio) > 0 || SSL_has_pending(c->ssl));
}

void tls_conn_shutdown(struct tls_conn *c)
{
	/* Nothing to say to a peer that never finished the handshake or broke
	 * the protocol; close_notify is sent once. */
	if (c->failed || !c->established || (SSL_get_shutdown(c->ssl) & SSL_SENT_SHUTDOWN))
		return;
	ERR_clear_error();
	SSL_shutdown(c->ssl);
	ERR_clear_error();
	flush_wbio(c);
}
