/* daemon.h - process lifecycle: signals, daemonizing, the pidfile, 'weft stop'. */
#ifndef WEFT_DAEMON_H
#define WEFT_DAEMON_H

struct config;

#include <pthread.h>
#include <stddef.h>
#include <sys/types.h>

/* SIGPIPE ignored; SIGINT/SIGTERM -> stop(arg), from the handler, so stop
 * must be async-signal-safe (main.c passes server_request_stop); SIGHUP and
 * SIGUSR1 reopen log_file (--log-file: the handler only writes to a pipe,
 * whoever serves watches daemon_reopen_fd and calls daemon_reopen_run),
 * harmless without one; SIGUSR2 ignored. */
void daemon_signals(void (*stop)(void *arg), void *arg, const char *log_file);
/* Readable when a SIGHUP or SIGUSR1 came (non-blocking; -1 before
 * daemon_signals or without the pipe): every loop of the loop group watches
 * it, the blocking models' acceptor polls it, and their drain's wait looks
 * at it. */
int daemon_reopen_fd(void);
/* Do the reopens asked for, on the caller's thread: one per kind of signal
 * that came since the last call, however many came (a reopen covers them).
 * Thread-safe: one caller at a time reads the pipe and reopens. */
void daemon_reopen_run(void);
/* From before the pidfile until daemon_signals(): SIGINT/SIGTERM only note
 * the stop (daemon_signals() then stops the server at once) and interrupt a
 * blocked start-up, SIGHUP/SIGUSR1/SIGUSR2/SIGPIPE are ignored: start-up is never
 * killed by a signal with the pidfile left behind. daemon_detach() calls it
 * in the daemon; the foreground calls it itself. */
void daemon_signals_early(void);
/* After the model stopped: SIGINT/SIGTERM/SIGHUP/SIGUSR1 are ignored from now
 * on, so a late one cannot touch the server being torn down (or main's
 * returned frame); a reopen still pending is done first. */
void daemon_signals_off(void);
/* pthread_create() for every thread a model starts: the new thread blocks
 * SIGINT, SIGTERM, SIGHUP and SIGUSR1, so they always reach the main thread and
 * never a worker asleep in a futex (where a sanitizer runtime may hold a
 * signal back until that thread next wakes). Returns pthread_create's error. */
int daemon_thread_create(pthread_t *thr, const pthread_attr_t *attr, void *(*fn)(void *), void *arg);
/* --log-file: open it (an error goes to the terminal: -errno) and make it
 * stderr; until daemon_ready() warnings and errors go to the terminal too. */
int daemon_log_open(const char *path);
/* Double fork + setsid, then the pidfile; returns in the daemon (0, or
 * -errno: exit). The first process waits until the daemon calls
 * daemon_ready() (exit 0) or dies (its exit status, 1 if it had none),
 * printing the daemon's warnings and errors on its stderr meanwhile, so a
 * start-up failure (a busy port, a bad certificate) shows on the terminal
 * with a non-zero exit. It gives up after DAEMON_READY_TIMEOUT_S (exit 1,
 * the daemon keeps starting). Stdio goes to /dev/null, stderr to --log-file. */
#define DAEMON_READY_TIMEOUT_S 60
int daemon_detach(const struct config *cfg);
/* Every listener accepts (server_ready): release the first process of
 * --daemon, stop copying errors to the terminal, tell systemd READY=1. */
void daemon_ready(void);
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
