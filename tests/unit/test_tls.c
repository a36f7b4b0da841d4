/* test_tls.c - the TLS transform against a real OpenSSL client.
 *
 * The client is an ordinary SSL object with its own memory BIOs; the test
 * shuttles its ciphertext into tls_conn_input and the cipher outbox back,
 * in whatever pieces a case asks for (down to one byte at a time). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "buf.h"
#include "check.h"
#include "config.h"
#include "log.h"
#include "msg.h"
#include "outbox.h"
#include "stats.h"
#include "tls.h"

struct client {
	SSL *ssl;
	BIO *rbio, *wbio; /* owned by ssl */
};

struct pair {
	struct client cl;
	struct tls_conn *srv;
	struct buf plain;    /* what the server decrypted */
	int srv_rc;          /* last tls_conn_input result */
	size_t step;         /* bytes per tls_conn_input call / client BIO write; 0 = all */
	int first_out;       /* first byte of the server's latest output, -1 = none yet */
};

static SSL_CTX *client_ctx(int min_version, int max_version)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	/* Let the client offer old protocols and ciphers: the server must refuse them. */
	SSL_CTX_set_security_level(ctx, 0);
	SSL_CTX_set_min_proto_version(ctx, min_version);
	SSL_CTX_set_max_proto_version(ctx, max_version);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT);
	return ctx;
}

static void pair_open(struct pair *p, struct tls_ctx *sctx, SSL_CTX *cctx, const char *alpn, size_t alpn_len)
{
	memset(p, 0, sizeof(*p));
	p->cl.ssl = SSL_new(cctx);
	p->cl.rbio = BIO_new(BIO_s_mem());
	p->cl.wbio = BIO_new(BIO_s_mem());
	BIO_set_mem_eof_return(p->cl.rbio, -1);
	SSL_set_bio(p->cl.ssl, p->cl.rbio, p->cl.wbio);
	SSL_set_connect_state(p->cl.ssl);
	SSL_set_tlsext_host_name(p->cl.ssl, "localhost");
	if (alpn)
		SSL_set_alpn_protos(p->cl.ssl, (const unsigned char *)alpn, (unsigned)alpn_len);
	p->srv = tls_conn_new(sctx);
	p->first_out = -1;
}

static void pair_close(struct pair *p)
{
	/* A client freed without close_notify marks its session not resumable. */
	SSL_shutdown(p->cl.ssl);
	ERR_clear_error();
	SSL_free(p->cl.ssl);
	tls_conn_free(p->srv);
	buf_free(&p->plain);
}

/* Client -> server: everything the client wrote, in pieces of p->step. */
static size_t to_server(struct pair *p)
{
	char tmp[65536];
	size_t moved = 0;
	int n;
	while ((n = BIO_read(p->cl.wbio, tmp, sizeof(tmp))) > 0) {
		size_t step = p->step ? p->step : (size_t)n;
		for (size_t off = 0; off < (size_t)n; off += step) {
			size_t k = (size_t)n - off < step ? (size_t)n - off : step;
			int rc = tls_conn_input(p->srv, tmp + off, k, &p->plain);
			if (rc < 0)
				p->srv_rc = rc;
		}
		moved += (size_t)n;
	}
	return moved;
}

/* Server -> client: the cipher outbox, in pieces of p->step. */
static size_t to_client(struct pair *p)
{
	struct outbox *o = tls_conn_cipher(p->srv);
	size_t moved = 0;
	while (!outbox_empty(o)) {
		struct iovec iov[1];
		outbox_iov(o, iov, 1);
		if (!moved)
			p->first_out = ((unsigned char *)iov[0].iov_base)[0];
		size_t k = p->step && p->step < iov[0].iov_len ? p->step : iov[0].iov_len;
		BIO_write(p->cl.rbio, iov[0].iov_base, (int)k);
		outbox_consume(o, k);
		moved += k;
	}
	return moved;
}

/* Run the handshake to completion (or failure); 1 if both sides finished. */
static int handshake(struct pair *p)
{
	for (int round = 0; round < 100; round++) {
		int r = SSL_do_handshake(p->cl.ssl);
		int cerr = r == 1 ? 0 : SSL_get_error(p->cl.ssl, r);
		size_t moved = to_server(p) + to_client(p);
		if (r == 1 && !tls_conn_handshaking(p->srv))
			return 1;
		if (p->srv_rc < 0 || (cerr != 0 && cerr != SSL_ERROR_WANT_READ))
			return 0;
		if (!moved && r == 1)
			break;
	}
	ERR_clear_error();
	return 0;
}

/* The client reads everything the server has sent; appends to out. */
static void client_read(struct pair *p, struct buf *out)
{
	char tmp[16384];
	size_t got;
	to_client(p);
	while (SSL_read_ex(p->cl.ssl, tmp, sizeof(tmp), &got) == 1)
		buf_append(out, tmp, got);
	to_server(p); /* e.g. key updates; harmless otherwise */
	ERR_clear_error();
}

static void fill(char *b, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (char)((i * 31 + seed) ^ (i >> 8));
}

/* Server echoes what it decrypted back through tls_conn_encrypt. */
static int echo_back(struct pair *p)
{
	struct outbox o = {0};
	outbox_append(&o, buf_head(&p->plain), buf_used(&p->plain));
	buf_consume(&p->plain, buf_used(&p->plain));
	int rc = tls_conn_encrypt(p->srv, &o);
	int drained = outbox_empty(&o);
	outbox_free(&o);
	return rc == 0 && drained;
}

static struct tls_ctx *ephemeral_ctx(void)
{
	struct config cfg;
	memset(&cfg, 0, sizeof(cfg));
	return tls_ctx_new(&cfg);
}

static void test_handshake_and_echo(struct tls_ctx *sctx)
{
	SSL_CTX *cctx = client_ctx(TLS1_2_VERSION, 0);
	struct pair p;
	uint64_t hs = stat_sum(STAT_tls_handshakes);
	static const char alpn[] = "\x02h2\x08http/1.1";
	pair_open(&p, sctx, cctx, alpn, sizeof(alpn) - 1);
	CHECK(tls_conn_handshaking(p.srv));
	CHECK(handshake(&p));
	CHECK(!tls_conn_handshaking(p.srv));
	CHECK(stat_sum(STAT_tls_handshakes) == hs + 1);
	CHECK(SSL_version(p.cl.ssl) == TLS1_3_VERSION);

	const unsigned char *sel = NULL;
	unsigned sel_len = 0;
	SSL_get0_alpn_selected(p.cl.ssl, &sel, &sel_len);
	CHECK(sel_len == 8 && memcmp(sel, "http/1.1", 8) == 0);

	size_t w;
	CHECK(SSL_write_ex(p.cl.ssl, "hello\n", 6, &w) == 1);
	to_server(&p);
	CHECK(p.srv_rc == 0);
	CHECK(buf_used(&p.plain) == 6 && memcmp(buf_head(&p.plain), "hello\n", 6) == 0);
	CHECK(echo_back(&p));
	struct buf back = {0};
	client_read(&p, &back);
	CHECK(buf_used(&back) == 6 && memcmp(buf_head(&back), "hello\n", 6) == 0);
	buf_free(&back);

	/* close_notify reaches the client as a clean end of stream. */
	tls_conn_shutdown(p.srv);
	tls_conn_shutdown(p.srv); /* once only */
	CHECK(!outbox_empty(tls_conn_cipher(p.srv)));
	to_client(&p);
	char tmp[16];
	size_t got;
	CHECK(SSL_read_ex(p.cl.ssl, tmp, sizeof(tmp), &got) == 0);
	CHECK(SSL_get_error(p.cl.ssl, 0) == SSL_ERROR_ZERO_RETURN);
	/* After close_notify no more plaintext goes out. */
	struct outbox o = {0};
	outbox_append(&o, "late", 4);
	CHECK(tls_conn_encrypt(p.srv, &o) < 0);
	outbox_free(&o);
	pair_close(&p);
	SSL_CTX_free(cctx);
}

/* 1 MiB each way, in big pieces (TLS 1.2) or one byte at a time (TLS 1.3). */
static void test_bulk(struct tls_ctx *sctx, int version, size_t total, size_t step)
{
	SSL_CTX *cctx = client_ctx(version, version);
	struct pair p;
	pair_open(&p, sctx, cctx, NULL, 0);
	p.step = step;
	CHECK(handshake(&p));
	CHECK(SSL_version(p.cl.ssl) == version);
	char *data = malloc(total);
	fill(data, total, (unsigned)step);
	size_t off = 0;
	struct buf back = {0};
	while (off < total) {
		size_t k = total - off < 40000 ? total - off : 40000;
		size_t w = 0;
		CHECK(SSL_write_ex(p.cl.ssl, data + off, k, &w) == 1 && w == k);
		off += k;
		to_server(&p);
		/* echo immediately: this interleaves encrypt with input */
		if (!echo_back(&p))
			break;
		client_read(&p, &back);
	}
	CHECK(p.srv_rc == 0);
	CHECK(buf_used(&back) == total);
	CHECK(buf_used(&back) == total && memcmp(buf_head(&back), data, total) == 0);
	buf_free(&back);
	free(data);
	pair_close(&p);
	SSL_CTX_free(cctx);
}

/* Several records delivered at once must all come out of one input call
 * (nothing stranded in SSL_pending). */
static void test_no_stranding(struct tls_ctx *sctx)
{
	SSL_CTX *cctx = client_ctx(TLS1_2_VERSION, 0);
	struct pair p;
	pair_open(&p, sctx, cctx, NULL, 0);
	CHECK(handshake(&p));
	size_t w;
	char big[50000];
	fill(big, sizeof(big), 7);
	SSL_write_ex(p.cl.ssl, "one ", 4, &w);
	SSL_write_ex(p.cl.ssl, big, sizeof(big), &w); /* four records */
	SSL_write_ex(p.cl.ssl, " three", 6, &w);
	char all[200000];
	int n = BIO_read(p.cl.wbio, all, sizeof(all));
	CHECK(n > (int)sizeof(big));
	CHECK(tls_conn_input(p.srv, all, (size_t)n, &p.plain) == 0);
	CHECK(buf_used(&p.plain) == 4 + sizeof(big) + 6);
	CHECK(memcmp(buf_head(&p.plain) + 4, big, sizeof(big)) == 0);
	CHECK(memcmp(buf_head(&p.plain) + 4 + sizeof(big), " three", 6) == 0);
	pair_close(&p);
	SSL_CTX_free(cctx);
}

/* The client's close_notify is its end of stream: the data before it is
 * delivered, and replies can still go out (a half-close, like a FIN). */
static void test_peer_close_notify(struct tls_ctx *sctx)
{
	SSL_CTX *cctx = client_ctx(TLS1_2_VERSION, 0);
	struct pair p;
	pair_open(&p, sctx, cctx, NULL, 0);
	CHECK(handshake(&p));
	size_t w;
	SSL_write_ex(p.cl.ssl, "bye\n", 4, &w);
	CHECK(SSL_shutdown(p.cl.ssl) == 0);
	CHECK(!tls_conn_peer_closed(p.srv));
	to_server(&p);
	CHECK(p.srv_rc == 0);
	CHECK(tls_conn_peer_closed(p.srv));
	CHECK(buf_used(&p.plain) == 4 && memcmp(buf_head(&p.plain), "bye\n", 4) == 0);
	CHECK(echo_back(&p));
	tls_conn_shutdown(p.srv);
	struct buf back = {0};
	client_read(&p, &back);
	CHECK(buf_used(&back) == 4 && memcmp(buf_head(&back), "bye\n", 4) == 0);
	CHECK(SSL_get_error(p.cl.ssl, 0) == SSL_ERROR_ZERO_RETURN);
	CHECK(SSL_shutdown(p.cl.ssl) == 1); /* both close_notifies seen */
	buf_free(&back);
	pair_close(&p);
	SSL_CTX_free(cctx);
}

/* Replies queued before the handshake finished wait, then go out. */
static void test_plain_waits_for_handshake(struct tls_ctx *sctx)
{
	SSL_CTX *cctx = client_ctx(TLS1_2_VERSION, 0);
	struct pair p;
	pair_open(&p, sctx, cctx, NULL, 0);
	struct outbox o = {0};
	outbox_append(&o, "early", 5);
	CHECK(tls_conn_encrypt(p.srv, &o) == 0);
	CHECK(outbox_bytes(&o) == 5);
	CHECK(outbox_empty(tls_conn_cipher(p.srv)));
	CHECK(handshake(&p));
	CHECK(tls_conn_encrypt(p.srv, &o) == 0 && outbox_empty(&o));
	struct buf back = {0};
	client_read(&p, &back);
	CHECK(buf_used(&back) == 5 && memcmp(buf_head(&back), "early", 5) == 0);
	buf_free(&back);
	outbox_free(&o);
	pair_close(&p);
	SSL_CTX_free(cctx);
}

/* Capture log lines written to stderr while fn runs. */
static FILE *capture_begin(int *saved)
{
	FILE *f = tmpfile();
	fflush(stderr);
	*saved = dup(STDERR_FILENO);
	dup2(fileno(f), STDERR_FILENO);
	return f;
}

static int capture_end(FILE *f, int saved, const char *want)
{
	char text[8192];
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(f);
	size_t n = fread(text, 1, sizeof(text) - 1, f);
	text[n] = 0;
	fclose(f);
	fputs(text, stderr); /* still visible when a case fails */
	return strstr(text, want) != NULL;
}

static int first_byte_is_alert(struct tls_conn *c)
{
	struct iovec iov[1];
	struct outbox *o = tls_conn_cipher(c);
	return outbox_iov(o, iov, 1) == 1 && ((unsigned char *)iov[0].iov_base)[0] == 0x15;
}

static void test_old_versions_refused(struct tls_ctx *sctx)
{
	int versions[] = {TLS1_VERSION, TLS1_1_VERSION};
	for (int i = 0; i < 2; i++) {
		SSL_CTX *cctx = client_ctx(versions[i], versions[i]);
		struct pair p;
		uint64_t failures = stat_sum(STAT_tls_failures);
		pair_open(&p, sctx, cctx, NULL, 0);
		tls_conn_set_id(p.srv, 4242);
		int saved;
		FILE *f = capture_begin(&saved);
		CHECK(!handshake(&p));
		CHECK(capture_end(f, saved, "tls: handshake failed on connection 4242: unsupported protocol"));
		CHECK(p.srv_rc == -EPROTO);
		CHECK(stat_sum(STAT_tls_failures) == failures + 1);
		CHECK(p.first_out == 0x15); /* the client was told: protocol_version alert */
		pair_close(&p);
		SSL_CTX_free(cctx);
	}
}

/* TLS 1.2 without forward secrecy or AEAD: no shared cipher. */
static void test_weak_ciphers_refused(struct tls_ctx *sctx)
{
	const char *weak[] = {"AES128-GCM-SHA256", "ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES128-SHA256"};
	for (int i = 0; i < 3; i++) {
		SSL_CTX *cctx = client_ctx(TLS1_2_VERSION, TLS1_2_VERSION);
		CHECK(SSL_CTX_set_cipher_list(cctx, weak[i]) == 1);
		struct pair p;
		pair_open(&p, sctx, cctx, NULL, 0);
		CHECK(!handshake(&p));
		CHECK(p.srv_rc == -EPROTO);
		pair_close(&p);
		SSL_CTX_free(cctx);
	}
	ERR_clear_error();
}

static void test_garbage(struct tls_ctx *sctx)
{
	/* A handshake record whose body is not a ClientHello. */
	static const char junk[] = "\x16\x03\x01\x00\x08\x01\x00\x00\x04zzzz";
	struct tls_conn *c = tls_conn_new(sctx);
	struct buf plain = {0};
	uint64_t failures = stat_sum(STAT_tls_failures);
	CHECK(tls_conn_input(c, junk, sizeof(junk) - 1, &plain) == -EPROTO);
	CHECK(first_byte_is_alert(c));
	CHECK(stat_sum(STAT_tls_failures) == failures + 1);
	CHECK(tls_conn_input(c, "more", 4, &plain) == -EPROTO); /* stays failed */
	CHECK(buf_used(&plain) == 0);
	/* No close_notify after a failure. */
	size_t before = outbox_bytes(tls_conn_cipher(c));
	tls_conn_shutdown(c);
	CHECK(outbox_bytes(tls_conn_cipher(c)) == before);
	tls_conn_free(c);

	/* Random bytes that are not a record at all. */
	char noise[300];
	fill(noise, sizeof(noise), 99);
	noise[0] = 0x42;
	c = tls_conn_new(sctx);
	CHECK(tls_conn_input(c, noise, sizeof(noise), &plain) == -EPROTO);
	CHECK(stat_sum(STAT_tls_failures) == failures + 2);
	tls_conn_free(c);
	buf_free(&plain);
}

static void test_plain_http(struct tls_ctx *sctx)
{
	static const char req[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
	struct tls_conn *c = tls_conn_new(sctx);
	struct buf plain = {0};
	tls_conn_set_id(c, 77);
	int saved;
	FILE *f = capture_begin(&saved);
	CHECK(tls_conn_input(c, req, sizeof(req) - 1, &plain) == -EPROTO);
	CHECK(capture_end(f, saved, "tls: handshake failed on connection 77: http request"));
	CHECK(buf_used(&plain) == 0);
	/* The browser or curl user is told in words they can read. */
	struct iovec iov[1];
	CHECK(outbox_iov(tls_conn_cipher(c), iov, 1) == 1 && iov[0].iov_len > 12 &&
	      memcmp(iov[0].iov_base, "HTTP/1.1 400", 12) == 0);
	CHECK(tls_conn_input(c, "x", 1, &plain) == -EPROTO);
	tls_conn_free(c);
	buf_free(&plain);
}

/* A second connection presenting the first one's ticket resumes. */
static void test_resumption(struct tls_ctx *sctx, int version)
{
	SSL_CTX *cctx = client_ctx(version, version);
	struct pair p;
	pair_open(&p, sctx, cctx, NULL, 0);
	CHECK(handshake(&p));
	/* TLS 1.3 tickets arrive after the handshake: read them. */
	struct buf back = {0};
	client_read(&p, &back);
	SSL_SESSION *sess = SSL_get1_session(p.cl.ssl);
	CHECK(sess != NULL && SSL_SESSION_is_resumable(sess));
	CHECK(!SSL_session_reused(p.cl.ssl));
	pair_close(&p);

	uint64_t resumed = stat_sum(STAT_tls_resumed), hs = stat_sum(STAT_tls_handshakes);
	pair_open(&p, sctx, cctx, NULL, 0);
	SSL_set_session(p.cl.ssl, sess);
	CHECK(handshake(&p));
	CHECK(SSL_session_reused(p.cl.ssl));
	CHECK(stat_sum(STAT_tls_resumed) == resumed + 1);
	CHECK(stat_sum(STAT_tls_handshakes) == hs + 1);
	pair_close(&p);
	SSL_SESSION_free(sess);
	buf_free(&back);
	SSL_CTX_free(cctx);
}

/* Clients offering no ALPN, or only protocols we lack, still connect. */
static void test_alpn_optional(struct tls_ctx *sctx)
{
	static const char only_h2[] = "\x02h2";
	SSL_CTX *cctx = client_ctx(TLS1_2_VERSION, 0);
	for (int i = 0; i < 2; i++) {
		struct pair p;
		pair_open(&p, sctx, cctx, i ? only_h2 : NULL, i ? 3 : 0);
		CHECK(handshake(&p));
		const unsigned char *sel = NULL;
		unsigned sel_len = 0;
		SSL_get0_alpn_selected(p.cl.ssl, &sel, &sel_len);
		CHECK(sel_len == 0);
		pair_close(&p);
	}
	SSL_CTX_free(cctx);
}

/* Renegotiation is refused: a TLS 1.2 client asking for it gets a
 * no_renegotiation alert, and the connection itself stays up. */
static void test_no_renegotiation(struct tls_ctx *sctx)
{
	SSL_CTX *cctx = client_ctx(TLS1_2_VERSION, TLS1_2_VERSION);
	struct pair p;
	pair_open(&p, sctx, cctx, NULL, 0);
	CHECK(handshake(&p));
	CHECK(SSL_renegotiate(p.cl.ssl) == 1);
	SSL_do_handshake(p.cl.ssl);
	to_server(&p);
	CHECK(p.srv_rc == 0);
	CHECK(first_byte_is_alert(p.srv));
	CHECK(!tls_conn_handshaking(p.srv));
	ERR_clear_error();
	pair_close(&p);
	SSL_CTX_free(cctx);
}

/* Writes a fresh self-signed P-256 certificate and key as PEM files. */
static int write_pem_pair(const char *cert_path, const char *key_path, int wrong_key)
{
	EVP_PKEY *k = EVP_EC_gen("P-256"), *k2 = wrong_key ? EVP_EC_gen("P-256") : NULL;
	X509 *x = X509_new();
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC, (const unsigned char *)"test", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_set_pubkey(x, k);
	X509_sign(x, k, EVP_sha256());
	FILE *fc = fopen(cert_path, "w"), *fk = fopen(key_path, "w");
	int ok = fc && fk && PEM_write_X509(fc, x) && PEM_write_PrivateKey(fk, k2 ? k2 : k, NULL, NULL, 0, NULL, NULL);
	if (fc)
		fclose(fc);
	if (fk)
		fclose(fk);
	X509_free(x);
	EVP_PKEY_free(k);
	EVP_PKEY_free(k2);
	return ok ? 0 : -1;
}

static void test_cert_files(void)
{
	char dir[] = "/tmp/weft-test-tls-XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	char cert[64], key[64], bad_key[64];
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	snprintf(bad_key, sizeof(bad_key), "%s/other.pem", dir);
	CHECK(write_pem_pair(cert, key, 0) == 0);

	struct config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.cert = cert;
	cfg.key = key;
	struct tls_ctx *ctx = tls_ctx_new(&cfg);
	CHECK(ctx != NULL);
	if (ctx) {
		SSL_CTX *cctx = client_ctx(TLS1_2_VERSION, 0);
		struct pair p;
		pair_open(&p, ctx, cctx, NULL, 0);
		CHECK(handshake(&p));
		X509 *peer = SSL_get1_peer_certificate(p.cl.ssl);
		char cn[32] = "";
		if (peer)
			X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, sizeof(cn));
		CHECK(strcmp(cn, "test") == 0);
		X509_free(peer);
		pair_close(&p);
		SSL_CTX_free(cctx);
		tls_ctx_free(ctx);
	}

	/* Chain and key in one file: --key may be left out. */
	char both[64];
	snprintf(both, sizeof(both), "%s/both.pem", dir);
	FILE *out = fopen(both, "w"), *in;
	const char *parts[] = {cert, key};
	for (int i = 0; i < 2 && out; i++) {
		char chunk[4096];
		size_t n;
		if ((in = fopen(parts[i], "r")) != NULL) {
			while ((n = fread(chunk, 1, sizeof(chunk), in)) > 0)
				fwrite(chunk, 1, n, out);
			fclose(in);
		}
	}
	if (out)
		fclose(out);
	cfg.cert = both;
	cfg.key = NULL;
	ctx = tls_ctx_new(&cfg);
	CHECK(ctx != NULL);
	tls_ctx_free(ctx);
	unlink(both);

	int saved;
	FILE *f = capture_begin(&saved);
	cfg.cert = NULL;
	cfg.key = key;
	CHECK(tls_ctx_new(&cfg) == NULL);
	CHECK(capture_end(f, saved, "without --cert"));

	f = capture_begin(&saved);
	cfg.cert = "/nonexistent/weft-cert.pem";
	CHECK(tls_ctx_new(&cfg) == NULL);
	CHECK(capture_end(f, saved, "/nonexistent/weft-cert.pem: No such file or directory"));

	CHECK(write_pem_pair(cert, bad_key, 1) == 0);
	f = capture_begin(&saved);
	cfg.cert = cert;
	cfg.key = bad_key;
	CHECK(tls_ctx_new(&cfg) == NULL);
	CHECK(capture_end(f, saved, "key values mismatch"));

	cfg.key = cert; /* a certificate is not a key */
	f = capture_begin(&saved);
	CHECK(tls_ctx_new(&cfg) == NULL);
	CHECK(capture_end(f, saved, "holds no PEM private key"));

	cfg.key = NULL; /* --cert alone, and its file holds no key: say to give --key */
	f = capture_begin(&saved);
	CHECK(tls_ctx_new(&cfg) == NULL);
	CHECK(capture_end(f, saved, "holds no private key: give the key file with --key FILE"));

	unlink(cert);
	unlink(key);
	unlink(bad_key);
	rmdir(dir);
}

static void test_ephemeral_certificate(struct tls_ctx *sctx)
{
	SSL_CTX *cctx = client_ctx(TLS1_2_VERSION, 0);
	struct pair p;
	pair_open(&p, sctx, cctx, NULL, 0);
	CHECK(handshake(&p));
	X509 *peer = SSL_get1_peer_certificate(p.cl.ssl);
	CHECK(peer != NULL);
	if (peer) {
		CHECK(X509_check_host(peer, "localhost", 0, 0, NULL) == 1);
		CHECK(X509_check_ip_asc(peer, "127.0.0.1", 0) == 1);
		CHECK(X509_check_ip_asc(peer, "::1", 0) == 1);
		CHECK(X509_check_host(peer, "example.com", 0, 0, NULL) != 1);
		X509_free(peer);
	}
	pair_close(&p);
	SSL_CTX_free(cctx);
}

int main(void)
{
	int saved;
	FILE *f = capture_begin(&saved);
	struct tls_ctx *sctx = ephemeral_ctx();
	CHECK(capture_end(f, saved, "ephemeral self-signed certificate"));
	CHECK(sctx != NULL);
	if (!sctx)
		return check_done();
	long msgs = msg_live_count();
	log_set_level(LOG_DEBUG); /* the lines naming a connection (tls.c) are at debug */
	test_handshake_and_echo(sctx);
	test_bulk(sctx, TLS1_2_VERSION, 1 << 20, 0);
	test_bulk(sctx, TLS1_3_VERSION, 1 << 20, 0);
	test_bulk(sctx, TLS1_3_VERSION, 20000, 1);
	test_bulk(sctx, TLS1_2_VERSION, 20000, 1);
	test_no_stranding(sctx);
	test_plain_waits_for_handshake(sctx);
	test_peer_close_notify(sctx);
	test_old_versions_refused(sctx);
	test_weak_ciphers_refused(sctx);
	test_garbage(sctx);
	test_plain_http(sctx);
	test_resumption(sctx, TLS1_3_VERSION);
	test_resumption(sctx, TLS1_2_VERSION);
	test_alpn_optional(sctx);
	test_no_renegotiation(sctx);
	test_ephemeral_certificate(sctx);
	test_cert_files();
	CHECK(msg_live_count() == msgs);
	tls_ctx_free(sctx);
	return check_done();
}
