/* url.c - parse --cluster's redis:// and rediss:// URLs, strictly: anything
 * this does not understand (a password, a database number, a query) is an
 * error rather than silently ignored. */
#include "url.h"

#include <errno.h>
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

int cluster_url_parse(const char *s, struct cluster_url *u, const char **why)
{
	memset(u, 0, sizeof(*u));
	u->port = 6379;
	if (strncmp(s, "redis://", 8) == 0) {
		s += 8;
	} else if (strncmp(s, "rediss://", 9) == 0) {
		u->tls = true;
		s += 9;
	} else {
		return fail(why, "must start with redis:// or rediss:// (TLS)");
	}
	size_t len = strlen(s);
	if (len && s[len - 1] == '/')
		len--; /* redis://host:6379/ is common enough */
	const char *end = s + len, *h = s, *hend, *colon;
	if (memchr(s, '@', len))
		return fail(why, "user names and passwords are not supported");
	if (memchr(s, '/', len) || memchr(s, '?', len) || memchr(s, '#', len))
		return fail(why, "a path, database number or query is not supported: give redis://HOST:PORT");
	if (*h == '[') { /* [IPv6] */
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
	if (colon && parse_port(colon + 1, end, &u->port) < 0)
		return fail(why, "the port must be 1..65535");
	memcpy(u->host, h, (size_t)(hend - h));
	return 0;
}
