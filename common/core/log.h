/* log.h - leveled logging to stderr (or the --log-file after daemonizing).
 *
 * Lines look like "2026-11-25T10:00:00Z weft[1234] INFO ready: ...". Tests and
 * users grep for the word after the level, so keep messages "topic: detail". */
#ifndef WEFT_LOG_H
#define WEFT_LOG_H

#include <pthread.h>
#include <stdbool.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level lvl);
/* True if a line at lvl is written: check it before formatting anything
 * costly (a peer address) on a hot path. */
bool log_enabled(enum log_level lvl);
/* Parse "debug|info|warn|error"; returns 0 or -EINVAL. */
int log_parse_level(const char *s, enum log_level *out);
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Until log_tee_end(), lines at WARN and above are also written to fd as
 * "weft: MESSAGE" (no time stamp): start-up errors reach the terminal, or the
 * first process of --daemon waiting on a pipe, even when stderr is the
 * --log-file. log_tee_end() returns the fd (the caller's again) or -1; a
 * thread that was writing a line as it was called may still write to it
 * once, so keep the number open (on /dev/null) rather than closing it. */
void log_tee(int fd);
int log_tee_end(void);

/* Point stderr at path again, appending (log rotation: SIGHUP). Lines are
 * single write()s to fd 2, so each lands whole in the old or the new file.
 * 0 or -errno. */
int log_reopen(const char *path);

/* Rate-limited lines for events that repeat as long as their cause lasts
 * (accept errors, refused clients, slow consumers): one limiter per kind of
 * event (static, LOG_RATE_INIT) lets a line through at most every
 * LOG_RATE_MS, and that line says how many events it stands for:
 * "MESSAGE (x37 in the last 1.0 s)". Events below the log level cost one
 * comparison; counters in /metrics count every event. */
#define LOG_RATE_MS 1000
struct log_rate {
	pthread_mutex_t lock;
	long long at;         /* when the last line was logged, ms (monotonic) */
	unsigned long unsaid; /* events since then */
	bool logged;
};
#define LOG_RATE_INIT {.lock = PTHREAD_MUTEX_INITIALIZER}
void log_rated(struct log_rate *r, enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
