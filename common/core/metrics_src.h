/* metrics_src.h - what /metrics is made of: the counters (stats.h) and the
 * sources a composer registers at start (the cluster bridge with --cluster,
 * and any other part that has gauges of its own), plus the helpers every
 * source writes the exposition with.
 *
 * Contract: sources are registered before any thread that can serve
 * /metrics starts (server_init / main.c, before model->run), so a scrape
 * reads the table without a lock; thread creation orders the writes before
 * every read. The first render seals the table: a later metrics_register is
 * refused with -EBUSY, so breaking the contract fails loudly instead of
 * racing. metrics_sources_clear() runs after the loops are gone (teardown)
 * and unseals. A source's arg must outlive every scrape, i.e. the loops. */
#ifndef WEFT_METRICS_SRC_H
#define WEFT_METRICS_SRC_H

#include "buf.h"
#include "stats.h"

#define METRICS_SRC_MAX 8 /* a handful of parts; more is a bug */

/* Append whole families (HELP, TYPE, samples, each labelled model="...")
 * to out. 0 or -errno; -errno stops the scrape (the client gets a 500). */
typedef int metrics_src_fn(void *arg, struct buf *out, const char *model);

/* 0, -ENOSPC past METRICS_SRC_MAX, -EBUSY once a scrape has run. name
 * appears only in the log, for a source that fails. */
int metrics_register(const char *name, metrics_src_fn *fn, void *arg);
/* Forget every source (teardown, once no loop can scrape). */
void metrics_sources_clear(void);
/* Every registered source, in registration order. 0 or the first -errno. */
int metrics_sources_render(struct buf *out, const char *model);

/* Helpers for sources. One line of at most 511 bytes (longer is a bug:
 * -EINVAL). 0 or -errno. */
int metrics_appendf(struct buf *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The counter families of stats ids [first, end): one HELP/TYPE per name,
 * then every id of that name, in STATS_LIST order. 0 or -errno. */
int metrics_counters(struct buf *out, const char *model, enum stat_id first, enum stat_id end);

#endif
