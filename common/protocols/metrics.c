/* metrics.c - Prometheus text exposition: stats.h's counters (all but the
 * --cluster ones, which the bridge shows as its source), the gauges every
 * node has, the process_* series, then the registered sources
 * (metrics_src.h). docs/METRICS.md lists every series. */
#include "metrics.h"

#include "metrics_src.h"
#include "procstat.h"
#include "server.h"
#include "stats.h"

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

int metrics_render(const struct server *srv, struct buf *out)
{
	char model[64];
	escape(model, sizeof(model), srv->cfg->model ? srv->cfg->model : "");
	int rc = metrics_counters(out, model, 0, STAT__CLUSTER_FIRST);
	if (rc == 0)
		rc = metrics_appendf(out,
		                     "# HELP weft_connections_open connections open now\n"
		                     "# TYPE weft_connections_open gauge\n"
		                     "weft_connections_open{model=\"%s\"} %llu\n",
		                     model, (unsigned long long)stat_open_conns());
	if (rc == 0)
		rc = metrics_appendf(out,
		                     "# HELP weft_info the running server\n"
		                     "# TYPE weft_info gauge\n"
		                     "weft_info{model=\"%s\",mode=\"%s\",version=\"%s\"} 1\n",
		                     model, srv->cfg->mode == MODE_CHAT ? "chat" : "echo", WEFT_VERSION);
	if (rc == 0)
		rc = procstat_render(out);
	if (rc == 0)
		rc = metrics_sources_render(out, model);
	return rc;
}
