/* metrics_src.c - /metrics sources and the exposition helpers (metrics_src.h). */
#include "metrics_src.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

struct source {
	const char *name;
	metrics_src_fn *fn;
	void *arg;
};

/* Written before the loops start, read by them without a lock (see the
 * contract in the header). */
static struct source sources[METRICS_SRC_MAX];
static int nsources;
static atomic_bool sealed;

int metrics_register(const char *name, metrics_src_fn *fn, void *arg)
{
	if (atomic_load_explicit(&sealed, memory_order_relaxed))
		return -EBUSY;
	if (nsources == METRICS_SRC_MAX)
		return -ENOSPC;
	sources[nsources++] = (struct source){name, fn, arg};
	return 0;
}

void metrics_sources_clear(void)
{
	nsources = 0;
	atomic_store_explicit(&sealed, false, memory_order_relaxed);
}

int metrics_sources_render(struct buf *out, const char *model)
{
	atomic_store_explicit(&sealed, true, memory_order_relaxed);
	for (int i = 0; i < nsources; i++) {
		int rc = sources[i].fn(sources[i].arg, out, model);
		if (rc < 0) {
			log_warn("metrics: source %s failed: %s", sources[i].name, strerror(-rc));
			return rc;
		}
	}
	return 0;
}

int metrics_appendf(struct buf *out, const char *fmt, ...)
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

/* Several ids may share one name with different labels, and STATS_LIST
 * does not keep them adjacent; the format wants each family in one group,
 * so families are gathered by name. */
static int family(struct buf *out, const char *model, int first, int end)
{
	const struct stat_info *fi = &stat_info[first];
	int rc = metrics_appendf(out, "# HELP %s %s\n# TYPE %s counter\n", fi->name, fi->help, fi->name);
	for (int i = first; rc == 0 && i < end; i++) {
		const struct stat_info *si = &stat_info[i];
		if (strcmp(si->name, fi->name) != 0)
			continue;
		rc = metrics_appendf(out, "%s{model=\"%s\"%s%s} %llu\n", si->name, model, si->labels[0] ? "," : "",
		                     si->labels, (unsigned long long)stat_sum((enum stat_id)i));
	}
	return rc;
}

static bool named_before(int first, int i)
{
	for (int j = first; j < i; j++)
		if (strcmp(stat_info[j].name, stat_info[i].name) == 0)
			return true;
	return false;
}

int metrics_counters(struct buf *out, const char *model, enum stat_id first, enum stat_id end)
{
	int rc = 0;
	for (int i = first; rc == 0 && i < (int)end; i++)
		if (!named_before(first, i))
			rc = family(out, model, i, end);
	return rc;
}
