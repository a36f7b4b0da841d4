/* procstat.c - process_* series (procstat.h). No allocation per scrape:
 * the /proc files are read into stack buffers. */
#include "procstat.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "metrics_src.h"

/* The whole of a small /proc file, NUL-terminated; length or -errno. */
static ssize_t read_small(const char *path, char *dst, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t n = 0;
	ssize_t r;
	while (n + 1 < cap && (r = read(fd, dst + n, cap - 1 - n)) > 0)
		n += (size_t)r;
	close(fd);
	dst[n] = '\0';
	return (ssize_t)n;
}

/* /proc/self/stat fields after the command name (which may hold spaces
 * and parentheses, so we start after the last ')'): field 3 (state) is
 * index 0 here. */
struct self_stat {
	unsigned long long utime, stime, starttime; /* clock ticks */
};

static int read_self_stat(struct self_stat *st)
{
	char text[1024];
	if (read_small("/proc/self/stat", text, sizeof(text)) < 0)
		return -EIO;
	char *p = strrchr(text, ')');
	if (!p)
		return -EIO;
	/* state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt
	 * cmajflt utime stime cutime cstime priority nice num_threads
	 * itrealvalue starttime */
	int n = sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d %llu",
	               &st->utime, &st->stime, &st->starttime);
	return n == 3 ? 0 : -EIO;
}

/* The boot time (seconds since the epoch) never changes while we run: read
 * once. /proc/stat can be long (a line per CPU, the interrupt counts), so
 * it is read line by line; this is the one allocation, made once. */
static long long boot_time = -1;
static pthread_once_t boot_once = PTHREAD_ONCE_INIT;

static void read_boot_time(void)
{
	FILE *f = fopen("/proc/stat", "re");
	if (!f)
		return;
	char *line = NULL;
	size_t cap = 0;
	while (getline(&line, &cap, f) > 0)
		if (sscanf(line, "btime %lld", &boot_time) == 1)
			break;
	free(line);
	fclose(f);
}

static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -errno;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* not the descriptor opendir itself held */
}

int procstat_render(struct buf *out)
{
	long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	int rc = 0;
	char statm[256];
	unsigned long long vm_pages, rss_pages;
	if (read_small("/proc/self/statm", statm, sizeof(statm)) > 0 &&
	    sscanf(statm, "%llu %llu", &vm_pages, &rss_pages) == 2)
		rc = metrics_appendf(out,
		                     "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
		                     "# TYPE process_resident_memory_bytes gauge\n"
		                     "process_resident_memory_bytes %llu\n"
		                     "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
		                     "# TYPE process_virtual_memory_bytes gauge\n"
		                     "process_virtual_memory_bytes %llu\n",
		                     rss_pages * (unsigned long long)page, vm_pages * (unsigned long long)page);
	struct self_stat st;
	if (rc == 0 && tick > 0 && read_self_stat(&st) == 0) {
		pthread_once(&boot_once, read_boot_time);
		rc = metrics_appendf(out,
		                     "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
		                     "# TYPE process_cpu_seconds_total counter\n"
		                     "process_cpu_seconds_total %.2f\n",
		                     (double)(st.utime + st.stime) / (double)tick);
		if (rc == 0 && boot_time >= 0)
			rc = metrics_appendf(out,
			                     "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n"
			                     "# TYPE process_start_time_seconds gauge\n"
			                     "process_start_time_seconds %.2f\n",
			                     (double)boot_time + (double)st.starttime / (double)tick);
	}
	int fds = open_fds();
	if (rc == 0 && fds >= 0)
		rc = metrics_appendf(out,
		                     "# HELP process_open_fds Number of open file descriptors.\n"
		                     "# TYPE process_open_fds gauge\n"
		                     "process_open_fds %d\n",
		                     fds);
	struct rlimit rl;
	if (rc == 0 && getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		rc = metrics_appendf(out,
		                     "# HELP process_max_fds Maximum number of open file descriptors.\n"
		                     "# TYPE process_max_fds gauge\n"
		                     "process_max_fds %llu\n",
		                     (unsigned long long)rl.rlim_cur);
	return rc;
}
