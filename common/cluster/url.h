/* url.h - the engine's address from --cluster: redis://HOST[:PORT] or
 * rediss://HOST[:PORT] (TLS). HOST is a name, an IPv4 address or [an IPv6
 * one]; PORT defaults to 6379. Pure: no resolving, no I/O. */
#ifndef WEFT_CLUSTER_URL_H
#define WEFT_CLUSTER_URL_H

#include <stdbool.h>

#define CLUSTER_HOST_MAX 255

struct cluster_url {
	bool tls;                       /* rediss:// */
	char host[CLUSTER_HOST_MAX + 1]; /* without the brackets of an IPv6 literal */
	int port;
};

/* 0, or -EINVAL with *why saying what is wrong (a static string). */
int cluster_url_parse(const char *s, struct cluster_url *u, const char **why);

#endif
