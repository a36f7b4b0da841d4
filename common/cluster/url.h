/* url.h - the engine's address from --cluster: redis://[USER:PASSWORD@]HOST[:PORT]
 * or rediss://... (TLS), or redis-cluster://[USER:PASSWORD@]HOST[:PORT][,HOST[:PORT]...]
 * (rediss-cluster:// with TLS): a Redis Cluster reached through these seeds. HOST is a name, an IPv4 address or [an IPv6 one];
 * PORT defaults to 6379; USER may be empty (redis://:PASSWORD@HOST: the
 * default user), USER and PASSWORD may be %-encoded. Pure: no resolving, no
 * I/O. */
#ifndef WEFT_CLUSTER_URL_H
#define WEFT_CLUSTER_URL_H

#include <stdbool.h>
#include <stddef.h>

#define CLUSTER_HOST_MAX 255
#define CLUSTER_USER_MAX 255
#define CLUSTER_PASS_MAX 511
#define CLUSTER_SEEDS_MAX 8

struct cluster_url {
	bool tls;                       /* rediss:// */
	char host[CLUSTER_HOST_MAX + 1]; /* without the brackets of an IPv6 literal */
	int port;
	char user[CLUSTER_USER_MAX + 1]; /* "" = the default user */
	char pass[CLUSTER_PASS_MAX + 1]; /* "" = no AUTH (unless from a file or the environment) */
	/* redis-cluster:// / rediss-cluster://: a Redis Cluster (sharded pub/sub);
	 * its seeds (host/port above is the first of them). */
	bool sharded;
	int nseeds;
	char seed_host[CLUSTER_SEEDS_MAX][CLUSTER_HOST_MAX + 1];
	int seed_port[CLUSTER_SEEDS_MAX];
};

/* 0, or -EINVAL with *why saying what is wrong (a static string). */
int cluster_url_parse(const char *s, struct cluster_url *u, const char **why);
/* s with any password replaced by "***", for messages (out holds n bytes). */
void cluster_url_redact(const char *s, char *out, size_t n);

#endif
