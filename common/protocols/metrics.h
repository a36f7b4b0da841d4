/* metrics.h - the server's counters in Prometheus text exposition format
 * (version 0.0.4), as served on GET /metrics. */
#ifndef WEFT_METRICS_H
#define WEFT_METRICS_H

#include "buf.h"

struct server;

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Append the exposition to out: every STATS_LIST counter summed over all
 * threads (one family per name, its lines grouped as the format requires),
 * the open-connection gauge and an info gauge, each labelled with the
 * model. 0 or -ENOMEM. */
int metrics_render(const struct server *srv, struct buf *out);

#endif
