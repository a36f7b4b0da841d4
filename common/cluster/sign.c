/* sign.c - HMAC-SHA256 envelope tags (OpenSSL's EVP_DigestSign with an HMAC
 * key: the same calls on OpenSSL 1.1.1 and 3.x, none deprecated). */
#include "sign.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

struct sign_key {
	EVP_PKEY *pkey;
};

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
		k->pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_HMAC, NULL, buf, (size_t)n);
	OPENSSL_cleanse(buf, sizeof(buf));
	if (!k || !k->pkey) {
		free(k);
		*why = "out of memory";
		return -ENOMEM;
	}
	*out = k;
	return 0;
}

void sign_key_free(struct sign_key *k)
{
	if (!k)
		return;
	EVP_PKEY_free(k->pkey);
	free(k);
}

int sign_tag(const struct sign_key *k, const char *head, size_t hn, const char *ch, size_t cn, const char *data,
             size_t n, unsigned char tag[ENVELOPE_TAG_BYTES])
{
	unsigned char len[8];
	for (int i = 0; i < 8; i++)
		len[i] = (unsigned char)((uint64_t)cn >> (8 * i));
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t tn = ENVELOPE_TAG_BYTES;
	int ok = ctx && EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k->pkey) == 1 &&
	         EVP_DigestSignUpdate(ctx, head, hn) == 1 && EVP_DigestSignUpdate(ctx, len, sizeof(len)) == 1 &&
	         EVP_DigestSignUpdate(ctx, ch, cn) == 1 && EVP_DigestSignUpdate(ctx, data, n) == 1 &&
	         EVP_DigestSignFinal(ctx, tag, &tn) == 1 && tn == ENVELOPE_TAG_BYTES;
	int rc = ok ? 0 : ctx ? -EPROTO : -ENOMEM;
	EVP_MD_CTX_free(ctx);
	return rc;
}

bool sign_check(const struct sign_key *k, const char *head, size_t hn, const char *ch, size_t cn, const char *data,
                size_t n, const unsigned char tag[ENVELOPE_TAG_BYTES])
{
	unsigned char want[ENVELOPE_TAG_BYTES];
	return sign_tag(k, head, hn, ch, cn, data, n, want) == 0 && CRYPTO_memcmp(want, tag, sizeof(want)) == 0;
}
