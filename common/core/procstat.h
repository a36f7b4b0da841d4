/* procstat.h - the process_* series of the Prometheus client conventions
 * (resident and virtual memory, open and maximum descriptors, CPU seconds,
 * start time), read from /proc/self and getrlimit at each scrape. */
#ifndef WEFT_PROCSTAT_H
#define WEFT_PROCSTAT_H

#include "buf.h"

/* Append the families to out; unlabelled, as every Prometheus client
 * library writes them, so stock dashboards work. A value that cannot be
 * read leaves its family out. 0 or -errno. */
int procstat_render(struct buf *out);

#endif
