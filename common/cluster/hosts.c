/* hosts.c - the hosts the slot map may send the link to. See hosts.h. */
#include "hosts.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* [p, p + n) as an address (IPv4 or IPv6, brackets not taken): its family
 * and 4 or 16 bytes, or 0. */
static int addr_of(const char *p, size_t n, unsigned char out[16])
{
	char s[64];
	if (n == 0 || n >= sizeof(s))
		return 0;
	memcpy(s, p, n);
	s[n] = '\0';
	if (inet_pton(AF_INET, s, out) == 1)
		return AF_INET;
	if (inet_pton(AF_INET6, s, out) == 1)
		return AF_INET6;
	return 0;
}

/* An IPv4-mapped IPv6 address (::ffff:a.b.c.d, *bits past 96 if given) as
 * the IPv4 one it connects to: ranges of either family judge it as IPv4, so
 * "::/0" (any IPv6) lets no IPv4 host in and "10.0.0.0/8" covers
 * ::ffff:10.1.2.3. */
static int unmap(int fam, unsigned char a[16], long *bits)
{
	static const unsigned char pre[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	if (fam != AF_INET6 || memcmp(a, pre, 12) != 0 || (bits && *bits < 96))
		return fam;
	memmove(a, a + 12, 4);
	if (bits)
		*bits -= 96;
	return AF_INET;
}

/* A name as the URL takes one: letters, digits, '-', '.', '_'. */
static bool is_name(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= '0' && p[i] <= '9') ||
		      p[i] == '-' || p[i] == '.' || p[i] == '_'))
			return false;
	return true;
}

/* One entry [p, p + n): "*", ADDR/BITS or a host. -1: malformed. */
static int entry_allows(const char *p, size_t n, const char *host)
{
	if (n == 0 || n > CLUSTER_HOST_MAX)
		return -1;
	if (n == 1 && *p == '*')
		return 1;
	const char *slash = memchr(p, '/', n);
	unsigned char net[16], a[16];
	if (!slash) { /* a name, or an address: "[::1]", "a b", "h:7000" would never match */
		int fam = addr_of(p, n, net);
		if (!fam && !is_name(p, n))
			return -1;
		if (fam) {
			fam = unmap(fam, net, NULL);
			return unmap(addr_of(host, strlen(host), a), a, NULL) == fam &&
			       memcmp(net, a, fam == AF_INET ? 4 : 16) == 0;
		}
		return strlen(host) == n && strncasecmp(host, p, n) == 0;
	}
	int fam = addr_of(p, (size_t)(slash - p), net);
	size_t bn = n - (size_t)(slash - p) - 1;
	long bits = 0;
	for (size_t i = 0; i < bn; i++) {
		if (slash[1 + i] < '0' || slash[1 + i] > '9' || bits > 128)
			return -1;
		bits = bits * 10 + (slash[1 + i] - '0');
	}
	if (!fam || bn == 0 || bn > 3 || bits > (fam == AF_INET ? 32 : 128))
		return -1;
	fam = unmap(fam, net, &bits);
	if (unmap(addr_of(host, strlen(host), a), a, NULL) != fam)
		return 0;
	for (long i = 0; i < bits; i++)
		if ((net[i / 8] ^ a[i / 8]) & (0x80 >> (i % 8)))
			return 0;
	return 1;
}

static int each(const char *list, const char *host)
{
	int any = 0;
	for (const char *p = list; *p;) {
		size_t n = strcspn(p, ",");
		int r = entry_allows(p, n, host);
		if (r < 0)
			return -1;
		any |= r;
		p += n + (p[n] == ',');
		if (p[-1] == ',' && !*p)
			return -1; /* a trailing comma: an empty entry */
	}
	return any;
}

#define STR_(x) #x
#define STR(x) STR_(x)

int cluster_hosts_check(const char *list, const char **why)
{
	size_t entries = 1;
	for (const char *p = list; (p = strchr(p, ',')); p++)
		entries++;
	if (strlen(list) > CLUSTER_HOSTS_BYTES || entries > CLUSTER_HOSTS_ENTRIES) {
		*why = "too long: at most " STR(CLUSTER_HOSTS_ENTRIES) " entries and " STR(CLUSTER_HOSTS_BYTES)
		       " bytes (list a range, ADDR/BITS, rather than its addresses)";
		return -EINVAL;
	}
	if (!*list || each(list, "") < 0) {
		*why = "a comma-separated list of hosts, ADDR/BITS ranges or * (no empty entry, each at most 255 bytes)";
		return -EINVAL;
	}
	return 0;
}

bool cluster_hosts_allow(const struct cluster_url *u, const char *list, const char *host)
{
	for (int i = 0; i < u->nseeds; i++)
		if (strcasecmp(host, u->seed_host[i]) == 0)
			return true;
	return list && each(list, host) > 0;
}
