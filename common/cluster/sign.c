/* sign.c - HMAC-SHA256 envelope tags with OpenSSL 3's EVP_MAC.
 *
 * Preparing an HMAC for a key (fetching HMAC and SHA-256 from the provider,
 * hashing the key's inner and outer pads) costs far more than tagging an
 * envelope: a context made per envelope (EVP_DigestSignInit with an HMAC
 * EVP_PKEY, as this file did) took ~3.3 us of CPU a tag, ten times the
 * hashing, and most of a keyed publish's or receipt's cost. So the key's
 * context is prepared once, at load (tmpl), and only ever copied. A tag
 * takes a spare context, ready like a fresh copy of tmpl, and gives it back
 * restarted with EVP_MAC_init without a key (HMAC's own reinit: a copy of
 * the inner pad's digest state): ~0.31 us a tag (a copy of tmpl per tag,
 * EVP_MAC_CTX_dup, was ~0.6 us). 100,000 tags of a 55-byte head and 64
 * bytes of data, CPU time, OpenSSL 3.0.
 *
 * Tags are made and checked on several threads at once (publishers, under
 * the bridge's lock, while the link's loop checks what arrives), so tmpl is
 * read-only once loaded and each context is used by one caller at a time:
 * taken from the spares under a mutex (held for a pop or a push, never over
 * a tag), or copied from tmpl when none is spare. SIGN_SPARE are kept at
 * most; the bridge tags on two threads at once at most (one under its
 * lock, and the link's loop checking), and more callers than the spares
 * would each copy tmpl and free their copy after. */
#include "sign.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#define SIGN_SPARE 8

struct sign_key {
	EVP_MAC_CTX *tmpl; /* HMAC-SHA256 initialised with the key: copied, never used */
	pthread_mutex_t lock;
	EVP_MAC_CTX *spare[SIGN_SPARE]; /* ready for a tag, like a fresh copy of tmpl */
	int nspare;
};

/* HMAC-SHA256 with the key [p, p + n): NULL if OpenSSL cannot make it. */
static EVP_MAC_CTX *prepare(const unsigned char *p, size_t n)
{
	char digest[] = "SHA256";
	OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
	                       OSSL_PARAM_construct_end()};
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
	EVP_MAC_free(mac); /* the context holds its own reference */
	if (ctx && EVP_MAC_init(ctx, p, n, params) != 1) {
		EVP_MAC_CTX_free(ctx);
		ctx = NULL;
	}
	return ctx;
}

int sign_key_load(const char *path, struct sign_key **out, const char **why)
{
	unsigned char buf[SIGN_KEY_MAX + 2];
	struct stat st;
	ssize_t n = 0, r;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	*out = NULL;
	if (fd < 0) {
		*why = strerror(errno);
		return -errno;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		*why = "not a regular file";
		return -EINVAL;
	}
	if (st.st_mode & 077) {
		close(fd);
		*why = "readable or writable by group or others: chmod 600 it (the key is a secret)";
		return -EPERM;
	}
	while (n < (ssize_t)sizeof(buf) && (r = read(fd, buf + n, sizeof(buf) - (size_t)n)) > 0)
		n += r;
	close(fd);
	if (n > 0 && buf[n - 1] == '\n')
		n--;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	if (n < SIGN_KEY_MIN || n > SIGN_KEY_MAX) {
		OPENSSL_cleanse(buf, sizeof(buf));
		*why = "the key must be 32 to 4096 bytes of secret (e.g. openssl rand -hex 32 > FILE)";
		return -EINVAL;
	}
	struct sign_key *k = calloc(1, sizeof(*k));
	if (k)
		k->tmpl = prepare(buf, (size_t)n);
	OPENSSL_cleanse(buf, sizeof(buf));
	if (!k || !k->tmpl || pthread_mutex_init(&k->lock, NULL) != 0) {
		if (k)
			EVP_MAC_CTX_free(k->tmpl);
		free(k);
		*why = "OpenSSL could not prepare HMAC-SHA256 with it (out of memory?)";
		return -ENOMEM;
	}
	*out = k;
	return 0;
}

void sign_key_free(struct sign_key *k)
{
	if (!k)
		return;
	for (int i = 0; i < k->nspare; i++)
		EVP_MAC_CTX_free(k->spare[i]);
	EVP_MAC_CTX_free(k->tmpl);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

/* A context ready for a tag: a spare, or a copy of tmpl (NULL: no memory).
 * The key is const to its users; only the spares change, under the lock. */
static EVP_MAC_CTX *take(const struct sign_key *ck)
{
	struct sign_key *k = (struct sign_key *)ck;
	EVP_MAC_CTX *c = NULL;
	pthread_mutex_lock(&k->lock);
	if (k->nspare)
		c = k->spare[--k->nspare];
	pthread_mutex_unlock(&k->lock);
	return c ? c : EVP_MAC_CTX_dup(k->tmpl);
}

/* Give c back after a tag: restarted with the key (EVP_MAC_init with no key
 * keeps it), a spare while there is room; freed if either fails. */
static void give_back(const struct sign_key *ck, EVP_MAC_CTX *c)
{
	struct sign_key *k = (struct sign_key *)ck;
	bool kept = false;
	if (EVP_MAC_init(c, NULL, 0, NULL) == 1) {
		pthread_mutex_lock(&k->lock);
		if (k->nspare < SIGN_SPARE) {
			k->spare[k->nspare++] = c;
			kept = true;
		}
		pthread_mutex_unlock(&k->lock);
	}
	if (!kept)
		EVP_MAC_CTX_free(c);
}

int sign_tag(const struct sign_key *k, const char *head, size_t hn, const char *ch, size_t cn, const char *data,
             size_t n, unsigned char tag[ENVELOPE_TAG_BYTES])
{
	unsigned char len[8];
	for (int i = 0; i < 8; i++)
		len[i] = (unsigned char)((uint64_t)cn >> (8 * i));
	EVP_MAC_CTX *ctx = take(k);
	if (!ctx)
		return -ENOMEM;
	size_t tn = 0;
	bool ok = EVP_MAC_update(ctx, (const unsigned char *)head, hn) == 1 && EVP_MAC_update(ctx, len, sizeof(len)) == 1 &&
	          EVP_MAC_update(ctx, (const unsigned char *)ch, cn) == 1 &&
	          EVP_MAC_update(ctx, (const unsigned char *)data, n) == 1 &&
	          EVP_MAC_final(ctx, tag, &tn, ENVELOPE_TAG_BYTES) == 1 && tn == ENVELOPE_TAG_BYTES;
	if (ok) {
		give_back(k, ctx);
		return 0;
	}
	EVP_MAC_CTX_free(ctx); /* in whatever state the failure left it */
	return -EPROTO;
}

int sign_check(const struct sign_key *k, const char *head, size_t hn, const char *ch, size_t cn, const char *data,
               size_t n, const unsigned char tag[ENVELOPE_TAG_BYTES])
{
	unsigned char want[ENVELOPE_TAG_BYTES];
	/* A tag that could not be made says nothing of the envelope's: it
	 * used to be taken as a wrong one, so that a genuine envelope dropped
	 * for want of memory was counted as forged. */
	if (sign_tag(k, head, hn, ch, cn, data, n, want) < 0)
		return -ENOMEM;
	return CRYPTO_memcmp(want, tag, sizeof(want)) == 0 ? 0 : -EBADMSG;
}
