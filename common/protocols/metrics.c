/* metrics.c - Prometheus text exposition of stats.h's counters.
 *
 * Several counter ids may share one metric name with different labels, and
 * STATS_LIST does not keep them adjacent; the format wants each family in
 * one group, so families are gathered by name here. */
#include "metrics.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "bridge.h"
#include "exchange.h"
#include "server.h"
#include "stats.h"

static int appendf(struct buf *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int appendf(struct buf *out, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line))
		return -EINVAL; /* every line we print is short; longer is a bug */
	return buf_append(out, line, (size_t)n);
}

/* A label value as the format wants it: \, " and newline escaped. */
static void escape(char *dst, size_t cap, const char *s)
{
	size_t j = 0;
	for (; *s && j + 2 < cap; s++) {
		char c = *s == '\n' ? 'n' : *s;
		if (*s == '\\' || *s == '"' || *s == '\n')
			dst[j++] = '\\';
		dst[j++] = c;
	}
	dst[j] = '\0';
}

static int family(struct buf *out, enum stat_id first, const char *model)
{
	const struct stat_info *fi = &stat_info[first];
	int rc = appendf(out, "# HELP %s %s\n# TYPE %s counter\n", fi->name, fi->help, fi->name);
	for (int i = first; rc == 0 && i < STAT__COUNT; i++) {
		const struct stat_info *si = &stat_info[i];
		if (strcmp(si->name, fi->name) != 0)
			continue;
		rc = appendf(out, "%s{model=\"%s\"%s%s} %llu\n", si->name, model, si->labels[0] ? "," : "",
		             si->labels, (unsigned long long)stat_sum((enum stat_id)i));
	}
	return rc;
}

static bool named_before(int i)
{
	for (int j = 0; j < i; j++)
		if (strcmp(stat_info[j].name, stat_info[i].name) == 0)
			return true;
	return false;
}

/* Chat mode: what the exchange holds now (this node's, with --cluster). */
static int exchange_gauges(const struct server *srv, struct buf *out, const char *model)
{
	struct exchange_counts k = exchange_counts(srv->ex);
	const struct {
		const char *name, *help;
		size_t v;
	} g[] = {
		{"weft_chat_channels", "channels with at least one subscriber", k.channels},
		{"weft_chat_patterns", "distinct patterns with at least one subscriber", k.patterns},
		{"weft_chat_subscriptions", "channel and pattern subscriptions of all connections", k.subscriptions},
	};
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < sizeof(g) / sizeof(g[0]); i++)
		rc = appendf(out, "# HELP %s %s\n# TYPE %s gauge\n%s{model=\"%s\"} %zu\n", g[i].name, g[i].help, g[i].name,
		             g[i].name, model, g[i].v);
	return rc;
}

int metrics_render(const struct server *srv, struct buf *out)
{
	char model[64];
	escape(model, sizeof(model), srv->cfg->model ? srv->cfg->model : "");
	int rc = 0;
	for (int i = 0; rc == 0 && i < STAT__COUNT; i++)
		if (!named_before(i))
			rc = family(out, (enum stat_id)i, model);
	if (rc == 0)
		rc = appendf(out,
		             "# HELP weft_connections_open connections open now\n"
		             "# TYPE weft_connections_open gauge\n"
		             "weft_connections_open{model=\"%s\"} %llu\n",
		             model, (unsigned long long)stat_open_conns());
	if (rc == 0)
		rc = appendf(out,
		             "# HELP weft_info the running server\n"
		             "# TYPE weft_info gauge\n"
		             "weft_info{model=\"%s\",mode=\"%s\",version=\"%s\"} 1\n",
		             model, srv->cfg->mode == MODE_CHAT ? "chat" : "echo", WEFT_VERSION);
	if (rc == 0 && srv->ex)
		rc = exchange_gauges(srv, out, model);
	if (rc == 0 && srv->bridge)
		rc = bridge_metrics(srv->bridge, out, model);
	return rc;
}
