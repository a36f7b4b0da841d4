#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/uio.h>
#include <unistd.h>

static enum log_level min_level = LOG_INFO;
static const char *names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

static atomic_int tee_fd = -1; /* start-up errors also go here (log_tee) */

void log_set_level(enum log_level lvl) { min_level = lvl; }
bool log_enabled(enum log_level lvl) { return lvl >= min_level; }

int log_parse_level(const char *s, enum log_level *out)
{
	for (int i = 0; i < 4; i++) {
		if (strcasecmp(s, names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	if (lvl < min_level)
		return;
	char line[1024];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = (int)strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%SZ", &tm);
	n += snprintf(line + n, sizeof(line) - (size_t)n, " weft[%d] %s ", (int)getpid(), names[lvl]);
	int msg = n; /* where the message starts, for the tee */
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	n = m < 0 ? n : (n + m > (int)sizeof(line) - 2 ? (int)sizeof(line) - 2 : n + m);
	line[n++] = '\n';
	/* One write per line so lines from different threads never interleave. */
	ssize_t w = write(STDERR_FILENO, line, (size_t)n);
	(void)w;
	int tee = lvl >= LOG_WARN ? atomic_load(&tee_fd) : -1;
	if (tee >= 0) {
		/* A person reads this once, on the terminal: no time stamp or pid. */
		const char *pre = lvl == LOG_WARN ? "weft: warning: " : "weft: ";
		struct iovec iov[2] = {{(void *)pre, strlen(pre)}, {line + msg, (size_t)(n - msg)}};
		w = writev(tee, iov, 2);
	}
}

void log_tee(int fd) { atomic_store(&tee_fd, fd); }
int log_tee_end(void) { return atomic_exchange(&tee_fd, -1); }

int log_reopen(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	int rc = dup2(fd, STDERR_FILENO) < 0 ? -errno : 0; /* atomic: no line is lost between */
	close(fd);
	return rc;
}

static long long mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void log_rated(struct log_rate *r, enum log_level lvl, const char *fmt, ...)
{
	if (!log_enabled(lvl))
		return;
	long long now = mono_ms(), since = 0;
	unsigned long n = 0;
	pthread_mutex_lock(&r->lock);
	r->unsaid++;
	if (!r->logged || now - r->at >= LOG_RATE_MS) {
		n = r->unsaid;
		since = now - r->at;
		r->at = now;
		r->unsaid = 0;
		r->logged = true;
	}
	pthread_mutex_unlock(&r->lock);
	if (n == 0)
		return;
	char text[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (n == 1)
		log_msg(lvl, "%s", text);
	else
		log_msg(lvl, "%s (x%lu in the last %.1f s)", text, n, (double)since / 1000);
}
