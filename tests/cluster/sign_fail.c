/* sign_fail.c - an LD_PRELOAD shim for test_engine_hostile.py's
 * test_keyed_marker_not_signed (a sender's tags) and
 * test_keyed_check_out_of_memory_is_not_forged (a receiver's checks): while the file FAIL_FILE exists,
 * EVP_MAC_final (OpenSSL) fails, as it does when memory runs out (HMAC's
 * final step copies the outer digest state into a new context), so the
 * node's envelope tags (common/cluster/sign.c) cannot be made. Built by
 * the test into its temporary directory; build-tree only. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <unistd.h>

int EVP_MAC_final(EVP_MAC_CTX *ctx, unsigned char *out, size_t *outl, size_t outsize)
{
	static int (*real)(EVP_MAC_CTX *, unsigned char *, size_t *, size_t);
	if (!real)
		real = (int (*)(EVP_MAC_CTX *, unsigned char *, size_t *, size_t))dlsym(RTLD_NEXT, "EVP_MAC_final");
	const char *f = getenv("FAIL_FILE");
	if (f && access(f, F_OK) == 0)
		return 0;
	return real(ctx, out, outl, outsize);
}
