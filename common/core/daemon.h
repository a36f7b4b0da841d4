/* daemon.h - process lifecycle: signals, daemonizing, the pidfile, 'weft stop'. */
#ifndef WEFT_DAEMON_H
#define WEFT_DAEMON_H

struct server;
struct config;

#include <pthread.h>
#include <stddef.h>
#include <sys/types.h>

/* SIGPIPE ignored; SIGINT/SIGTERM -> server_request_stop(srv). */
void daemon_signals(struct server *srv);
/* After the model stopped: SIGINT/SIGTERM are ignored from now on, so a late
 * one cannot touch the server being torn down (or main's returned frame). */
void daemon_signals_off(void);
/* pthread_create() for every thread a model starts: the new thread blocks
 * SIGINT and SIGTERM, so the stop signals always reach the main thread and
 * never a worker asleep in a futex (where a sanitizer runtime may hold a
 * signal back until that thread next wakes). Returns pthread_create's error. */
int daemon_thread_create(pthread_t *thr, const pthread_attr_t *attr, void *(*fn)(void *), void *arg);
/* Double fork + setsid; the first process exits 0 once the pidfile exists.
 * Redirects stdio to /dev/null and stderr to --log-file. 0 or -errno. */
int daemon_detach(const struct config *cfg);
/* Create the pidfile exclusively (a stale one, whose pid is gone, is
 * replaced with a warning). 0 or -errno (logged). */
int daemon_pidfile_create(const char *path);
void daemon_pidfile_remove(const char *path);
/* The pidfile's text (n bytes) as a pid: decimal digits only, no leading
 * zero, an optional final newline, 2..INT_MAX. Anything else (a sign, a
 * blank, a suffix, a value a pid_t would truncate, 0, 1) is -EINVAL, so
 * 'weft stop' never signals a pid it did not read exactly. */
int daemon_parse_pid(const char *text, size_t n, pid_t *pid);
/* 'weft stop --pidfile F': SIGTERM the pid in F and wait for it to exit.
 * Returns the process exit code. */
int daemon_stop_cmd(int argc, char **argv);

#endif
