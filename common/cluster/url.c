/* url.c - parse --cluster's redis:// and rediss:// URLs, strictly: anything
 * this does not understand (a database number, a query) is an error rather
 * than silently ignored. */
#include "url.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static bool host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
	       c == '_';
}

static int fail(const char **why, const char *what)
{
	*why = what;
	return -EINVAL;
}

/* [p, end) is digits making 1..65535. */
static int parse_port(const char *p, const char *end, int *port)
{
	long v = 0;
	if (p == end || end - p > 5)
		return -EINVAL;
	for (; p < end; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		v = v * 10 + (*p - '0');
	}
	if (v < 1 || v > 65535)
		return -EINVAL;
	*port = (int)v;
	return 0;
}

static int unhex(char c) { return c >= '0' && c <= '9' ? c - '0' : (c | 32) >= 'a' && (c | 32) <= 'f' ? (c | 32) - 'a' + 10 : -1; }

/* %-decode [p, end) into out (max bytes + NUL). 0 or -EINVAL. */
static int decode(const char *p, const char *end, char *out, size_t max)
{
	size_t k = 0;
	for (; p < end; p++) {
		int c = (unsigned char)*p;
		if (c == '%') {
			if (end - p < 3 || unhex(p[1]) < 0 || unhex(p[2]) < 0)
				return -EINVAL;
			c = unhex(p[1]) << 4 | unhex(p[2]);
			p += 2;
		}
		if (c == 0 || k == max)
			return -EINVAL;
		out[k++] = (char)c;
	}
	out[k] = '\0';
	return 0;
}

/* Where the authority's USER:PASSWORD@ ends (after the last '@' before any
 * '/'), or s if there is none. */
static const char *after_userinfo(const char *s)
{
	const char *at = NULL;
	for (const char *p = s; *p && *p != '/' && *p != '?' && *p != '#'; p++)
		if (*p == '@')
			at = p;
	return at ? at + 1 : s;
}

void cluster_url_redact(const char *s, char *out, size_t n)
{
	const char *scheme = strstr(s, "://");
	const char *start = scheme ? scheme + 3 : s, *host = after_userinfo(start);
	const char *colon = memchr(start, ':', (size_t)(host - start));
	if (host == start || !colon) {
		snprintf(out, n, "%s", s);
		return;
	}
	snprintf(out, n, "%.*s:***@%s", (int)(colon - s), s, host);
}

/* One HOST[:PORT] in [s, end): host into host (CLUSTER_HOST_MAX + 1 bytes),
 * *port set only when given. 0 or -EINVAL with *why. */
static int parse_hostport(const char *s, const char *end, char *host, int *port, const char **why)
{
	size_t len = (size_t)(end - s);
	const char *h = s, *hend, *colon;
	if (memchr(s, '@', len))
		return fail(why, "'@' after the host");
	if (memchr(s, '/', len) || memchr(s, '?', len) || memchr(s, '#', len))
		return fail(why, "a path, database number or query is not supported: give redis://HOST:PORT");
	if (len && *h == '[') { /* [IPv6] */
		hend = memchr(h, ']', len);
		if (!hend)
			return fail(why, "an IPv6 address needs its closing ']'");
		h++;
		colon = hend + 1 < end ? hend + 1 : NULL;
		if (colon && *colon != ':')
			return fail(why, "expected ':PORT' after the IPv6 address");
		for (const char *p = h; p < hend; p++)
			if (!(host_char(*p) || *p == ':'))
				return fail(why, "bad character in the IPv6 address");
	} else {
		colon = memchr(h, ':', len);
		hend = colon ? colon : end;
		for (const char *p = h; p < hend; p++)
			if (!host_char(*p))
				return fail(why, "the host may hold only letters, digits, '-', '.' and '_' (IPv6 goes in [])");
	}
	if (hend == h)
		return fail(why, "no host");
	if ((size_t)(hend - h) > CLUSTER_HOST_MAX)
		return fail(why, "host name too long");
	if (colon && parse_port(colon + 1, end, port) < 0)
		return fail(why, "the port must be 1..65535");
	memcpy(host, h, (size_t)(hend - h));
	host[hend - h] = '\0';
	return 0;
}

int cluster_url_parse(const char *s, struct cluster_url *u, const char **why)
{
	memset(u, 0, sizeof(*u));
	u->port = 6379;
	if (strncmp(s, "redis://", 8) == 0) {
		s += 8;
	} else if (strncmp(s, "rediss://", 9) == 0) {
		u->tls = true;
		s += 9;
	} else if (strncmp(s, "redis-cluster://", 16) == 0) {
		u->sharded = true;
		s += 16;
	} else if (strncmp(s, "rediss-cluster://", 17) == 0) {
		u->sharded = u->tls = true;
		s += 17;
	} else {
		return fail(why, "must start with redis://, rediss:// (TLS), redis-cluster:// or rediss-cluster:// (Redis "
		                 "Cluster, sharded pub/sub)");
	}
	const char *host = after_userinfo(s);
	if (host != s) {
		const char *colon = memchr(s, ':', (size_t)(host - 1 - s));
		if (!colon)
			return fail(why, "give the credentials as USER:PASSWORD@ or :PASSWORD@ (the default user)");
		if (decode(s, colon, u->user, CLUSTER_USER_MAX) < 0 || decode(colon + 1, host - 1, u->pass, CLUSTER_PASS_MAX) < 0)
			return fail(why, "bad user or password (at most 255 and 511 bytes, %XX escapes, no NUL)");
		if (!u->pass[0])
			return fail(why, "an empty password");
		s = host;
	}
	size_t len = strlen(s);
	if (len && s[len - 1] == '/')
		len--; /* redis://host:6379/ is common enough */
	const char *end = s + len;
	if (!u->sharded) {
		if (memchr(s, ',', len))
			return fail(why, "several hosts are for redis-cluster:// (a Redis Cluster's seeds)");
		return parse_hostport(s, end, u->host, &u->port, why);
	}
	/* redis-cluster://HOST[:PORT][,HOST[:PORT]...]: seeds, the first also in host/port. */
	for (const char *p = s; p <= end;) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		const char *e = comma ? comma : end;
		if (u->nseeds == CLUSTER_SEEDS_MAX)
			return fail(why, "at most 8 seed nodes");
		u->seed_port[u->nseeds] = 6379;
		if (parse_hostport(p, e, u->seed_host[u->nseeds], &u->seed_port[u->nseeds], why) < 0)
			return -EINVAL;
		u->nseeds++;
		p = e + 1;
	}
	memcpy(u->host, u->seed_host[0], sizeof(u->host));
	u->port = u->seed_port[0];
	return 0;
}
