/* hosts.h - which hosts the sharded engine's slot map may send the link to
 * (redis-cluster://). CLUSTER NODES names every node by host and port, and
 * the link connects there and sends AUTH (the password): a compromised node
 * could name any host. By default only the seeds' hosts (any port on them:
 * a Redis Cluster on one machine runs several); --cluster-hosts adds hosts
 * by name or address, address ranges as ADDR/BITS, or "*" (any). Names are
 * compared as written, not resolved (the map names nodes by address: list
 * the addresses, or seed with them). Pure: no resolving, no I/O. */
#ifndef WEFT_CLUSTER_HOSTS_H
#define WEFT_CLUSTER_HOSTS_H

#include <stdbool.h>

#include "url.h"

/* Every map read judges each node against every entry: the list is bounded. */
#define CLUSTER_HOSTS_ENTRIES 256
#define CLUSTER_HOSTS_BYTES 8192

/* 0, or -EINVAL with *why (a static string): list is comma-separated hosts,
 * ADDR/BITS ranges (IPv4 or IPv6) or "*", at most CLUSTER_HOSTS_ENTRIES of
 * them and CLUSTER_HOSTS_BYTES in all. */
int cluster_hosts_check(const char *list, const char **why);
/* Whether the link may go to host: a seed's host, or one list (NULL: none)
 * allows. */
bool cluster_hosts_allow(const struct cluster_url *u, const char *list, const char *host);

#endif
