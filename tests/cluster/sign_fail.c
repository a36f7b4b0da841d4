/* sign_fail.c - an LD_PRELOAD shim for test_engine_hostile.py's
 * test_keyed_marker_not_signed: while the file FAIL_FILE exists,
 * EVP_MD_CTX_new (OpenSSL) returns NULL, as it does when memory runs out,
 * so the node's envelope tags (common/cluster/sign.c) cannot be made.
 * Built by the test into its temporary directory; build-tree only. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <unistd.h>

EVP_MD_CTX *EVP_MD_CTX_new(void)
{
	static EVP_MD_CTX *(*real)(void);
	if (!real)
		real = (EVP_MD_CTX * (*)(void)) dlsym(RTLD_NEXT, "EVP_MD_CTX_new");
	const char *f = getenv("FAIL_FILE");
	if (f && access(f, F_OK) == 0)
		return NULL;
	return real();
}
