#include "daemon.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "sdnotify.h"

/* What SIGINT/SIGTERM call (async-signal-safe), set by daemon_signals(). */
static void (*volatile sig_stop)(void *arg); /* volatile: stored after sig_arg */
static void *volatile sig_arg;
static bool detached;         /* we are the daemon; the first process waits for daemon_ready() */
static atomic_bool is_ready;  /* daemon_ready() ran: RELOADING=1 must be followed by READY=1 */

/* SIGHUP and SIGUSR1 reopen --log-file (logrotate renames the file, then
 * signals). A handler may only do what is async-signal-safe, so it writes
 * the signal number to reopen_pipe; whoever serves watches its read end
 * (daemon_reopen_fd: every loop of the loop group, the blocking models'
 * acceptor and drain) and does the work in daemon_reopen_run. No thread of its own. */
static int reopen_pipe[2] = {-1, -1};
static const char *reopen_path; /* --log-file or NULL */

static atomic_bool stop_early; /* SIGTERM/SIGINT came before there was a server to stop */

static void on_signal(int sig)
{
	(void)sig;
	int saved = errno; /* the interrupted code may be about to read errno */
	if (sig_stop)
		sig_stop(sig_arg);
	else
		atomic_store(&stop_early, true);
	errno = saved;
}

void daemon_signals_early(void)
{
	/* No SA_RESTART: a start-up blocked in a system call (open() of a
	 * --cert FIFO) fails with EINTR and exits through its error path,
	 * which removes the pidfile. */
	struct sigaction sa = {0};
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN); /* the start command may be gone: its pipe (log_tee) has no reader */
	signal(SIGHUP, SIG_IGN); /* the log file was just opened: nothing to reopen yet */
	signal(SIGUSR1, SIG_IGN);
	signal(SIGUSR2, SIG_IGN);
}

static void on_reopen_signal(int sig)
{
	int saved = errno;
	unsigned char c = (unsigned char)sig;
	ssize_t w = write(reopen_pipe[1], &c, 1); /* full pipe: a reopen is pending anyway */
	(void)w;
	errno = saved;
}

static void reopen_log(int sig)
{
	const char *name = sig == SIGHUP ? "SIGHUP" : "SIGUSR1";
	if (!reopen_path) {
		log_info("signal: %s: no --log-file to reopen; nothing changes", name);
		return;
	}
	bool ready = atomic_load(&is_ready);
	if (ready) {
		char state[64];
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		snprintf(state, sizeof(state), "RELOADING=1\nMONOTONIC_USEC=%lld",
		         (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
		sdnotify_send(state);
	}
	log_info("log: %s: reopening %s", name, reopen_path); /* the old file's last line */
	int rc = log_reopen(reopen_path);
	if (rc < 0)
		log_error("log: cannot reopen %s: %s; still writing to the old file", reopen_path, strerror(-rc));
	else
		log_info("log: reopened %s on %s", reopen_path, name);
	if (ready)
		sdnotify_send("READY=1");
}

int daemon_reopen_fd(void) { return reopen_pipe[0]; }

void daemon_reopen_run(void)
{
	/* Non-blocking: what is there now, then one reopen per kind of signal
	 * in it, not one per signal: a reopen covers every signal written
	 * before it, and a burst (a full pipe: 64 KiB of them, which a drain on
	 * threads/pool leaves for exit) cost one reopen and two log lines each,
	 * seconds of them. The reads are bounded too; bytes left behind came
	 * before the reopen below, so it covers them (the next call finds them
	 * and reopens once more, harmlessly). */
	/* Every loop watches the pipe: one reads it and reopens at a time, and a
	 * loop that waited finds what that reopen covered already read. */
	static pthread_mutex_t one = PTHREAD_MUTEX_INITIALIZER;
	pthread_mutex_lock(&one);
	unsigned char b[4096];
	bool seen[2] = {false, false}; /* SIGHUP, SIGUSR1 */
	for (int reads = 0; reads < 32;) {
		ssize_t n = read(reopen_pipe[0], b, sizeof(b));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		reads++;
		for (ssize_t i = 0; i < n; i++)
			seen[b[i] != SIGHUP] = true;
	}
	if (seen[0])
		reopen_log(SIGHUP);
	if (seen[1])
		reopen_log(SIGUSR1);
	pthread_mutex_unlock(&one);
}

/* The pipe and the SIGHUP/SIGUSR1 handlers; SIGUSR2 ignored (nginx uses it
 * for a binary upgrade weft does not do: a stray one must not kill). */
static void reopen_start(const char *log_file)
{
	reopen_path = log_file;
	signal(SIGUSR2, SIG_IGN);
	if (pipe2(reopen_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		log_warn("signal: pipe: %s; SIGHUP and SIGUSR1 are ignored", strerror(errno));
		signal(SIGHUP, SIG_IGN);
		signal(SIGUSR1, SIG_IGN);
		return;
	}
	struct sigaction sa = {0};
	sa.sa_handler = on_reopen_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
}

/* After the model: the signals are ignored from now on; a reopen asked for
 * while the server was draining (a loop no longer watching) is done now,
 * before the last lines. */
static void reopen_stop(void)
{
	signal(SIGHUP, SIG_IGN);
	signal(SIGUSR1, SIG_IGN);
	if (reopen_pipe[0] >= 0)
		daemon_reopen_run();
	for (int i = 0; i < 2; i++) {
		if (reopen_pipe[i] >= 0)
			close(reopen_pipe[i]);
		reopen_pipe[i] = -1;
	}
}

void daemon_signals(void (*stop)(void *arg), void *arg, const char *log_file)
{
	sig_arg = arg;
	sig_stop = stop;
	signal(SIGPIPE, SIG_IGN);
	struct sigaction sa = {0};
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	reopen_start(log_file);
	if (atomic_load(&stop_early))
		stop(arg); /* the model sees it at once and drains nothing */
}

void daemon_signals_off(void)
{
	/* Only the main thread takes these signals (daemon_thread_create), and
	 * it runs this: once it returns, no handler can still be running. */
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	sig_stop = NULL;
	reopen_stop();
}

int daemon_thread_create(pthread_t *thr, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
	sigset_t stop, old;
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGHUP);
	sigaddset(&stop, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &stop, &old); /* inherited by the new thread */
	int err = pthread_create(thr, attr, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return err;
}

int daemon_parse_pid(const char *text, size_t n, pid_t *pid)
{
	if (n && text[n - 1] == '\n')
		n--; /* what daemon_pidfile_create writes */
	if (n == 0 || text[0] == '0')
		return -EINVAL; /* empty, "0", or a leading zero: not what we write */
	long long v = 0;
	for (size_t i = 0; i < n; i++) {
		if (text[i] < '0' || text[i] > '9')
			return -EINVAL; /* no sign, blank, suffix or second line */
		v = v * 10 + (text[i] - '0');
		if (v > INT_MAX)
			return -EINVAL; /* a pid_t would truncate it (4294973199 -> 5903) */
	}
	if (v < 2)
		return -EINVAL; /* kill(1) is init; kill(0) and kill(-1) are groups */
	*pid = (pid_t)v;
	return 0;
}

/* The pid in a pidfile: 0, -ENOENT & co. (cannot read), or -EINVAL (the
 * file does not hold exactly one pid). */
static int read_pid(const char *path, pid_t *pid)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	char b[32];
	ssize_t n = read(fd, b, sizeof(b)); /* a pidfile is a dozen bytes: more is not one */
	int err = n < 0 ? -errno : 0;
	close(fd);
	if (err)
		return err;
	if ((size_t)n == sizeof(b))
		return -EINVAL;
	return daemon_parse_pid(b, (size_t)n, pid);
}

int daemon_pidfile_create(const char *path)
{
	for (int tries = 0; tries < 2; tries++) {
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd >= 0) {
			char b[32];
			int n = snprintf(b, sizeof(b), "%d\n", (int)getpid());
			ssize_t w = write(fd, b, (size_t)n);
			close(fd);
			return w == n ? 0 : -EIO;
		}
		if (errno != EEXIST) {
			log_error("pidfile: cannot create %s: %s", path, strerror(errno));
			return -errno;
		}
		pid_t pid;
		int rc = read_pid(path, &pid);
		if (rc == -EINVAL) {
			/* Not a file we wrote: never delete what we cannot read as ours. */
			log_error("pidfile: %s exists and does not hold a pid; remove it if it is stale", path);
			return -EEXIST;
		}
		if (rc == 0 && (kill(pid, 0) == 0 || errno == EPERM)) {
			log_error("pidfile: %s says weft is already running as pid %d; stop it with 'weft stop --pidfile %s'",
			          path, (int)pid, path);
			return -EEXIST;
		}
		if (rc == 0)
			log_warn("pidfile: removing stale %s (pid %d is gone)", path, (int)pid);
		unlink(path);
	}
	return -EEXIST;
}

void daemon_pidfile_remove(const char *path)
{
	pid_t pid;
	if (path && read_pid(path, &pid) == 0 && pid == getpid())
		unlink(path);
}

int daemon_log_open(const char *path)
{
	if (!path)
		return 0;
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0) {
		int err = -errno;
		fprintf(stderr, "weft: cannot open --log-file %s: %s\n", path, strerror(errno));
		return err;
	}
	int term = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
	if (term >= 0)
		log_tee(term); /* start-up errors: on the terminal too, until ready */
	dup2(fd, STDERR_FILENO);
	close(fd);
	return 0;
}

/* The first process of --daemon, with out the terminal: the daemon died
 * before it was ready. Its exit status is ours to read: as a subreaper we
 * inherit it when the middle process exits. */
static int report_early_exit(int out, pid_t middle, bool said)
{
	int st = 0;
	waitpid(middle, &st, 0);
	pid_t pid = -1;
	for (int i = 0; i < 200 && pid <= 0; i++) { /* it closed the pipe by exiting: ~at once */
		pid = waitpid(-1, &st, WNOHANG);
		if (pid == 0)
			usleep(10000);
		else if (pid < 0 && errno != EINTR)
			break;
	}
	if (pid <= 0) {
		dprintf(out, "weft: the daemon exited before it was ready (exit status unknown)\n");
		return 1;
	}
	if (WIFSIGNALED(st)) {
		dprintf(out, "weft: the daemon (pid %d) was killed by signal %d (%s) before it was ready\n", (int)pid,
		        WTERMSIG(st), strsignal(WTERMSIG(st)));
		return 1;
	}
	int code = WIFEXITED(st) ? WEXITSTATUS(st) : 1;
	if (!said) /* else its own error line said why */
		dprintf(out, "weft: the daemon (pid %d) exited with status %d before it was ready\n", (int)pid, code);
	return code ? code : 1;
}

/* The first process of --daemon: relay what the daemon says on fd (its
 * warnings and errors) to the terminal until a NUL byte (ready: exit 0) or
 * EOF (it died: its exit status). */
static int wait_ready(int fd, pid_t middle)
{
	int out = log_tee_end();
	if (out < 0)
		out = STDERR_FILENO; /* no --log-file: stderr is still the terminal */
	long long end = (long long)time(NULL) + DAEMON_READY_TIMEOUT_S;
	bool said = false;
	for (;;) {
		long long left = end - (long long)time(NULL);
		struct pollfd pfd = {fd, POLLIN, 0};
		int n = left > 0 ? poll(&pfd, 1, (int)(left * 1000)) : 0;
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0) {
			dprintf(out, "weft: the daemon is not ready after %d s; it keeps starting (see the log, or weft stop)\n",
			        DAEMON_READY_TIMEOUT_S);
			return 1;
		}
		char b[1024];
		ssize_t r = n < 0 ? -1 : read(fd, b, sizeof(b));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return report_early_exit(out, middle, said);
		char *nul = memchr(b, '\0', (size_t)r);
		size_t text = nul ? (size_t)(nul - b) : (size_t)r;
		if (text && write(out, b, text) > 0)
			said = true;
		if (nul) {
			waitpid(middle, NULL, 0);
			return 0;
		}
	}
}

int daemon_detach(const struct config *cfg)
{
	int st[2];
	if (pipe2(st, O_CLOEXEC) < 0) {
		log_error("daemon: pipe: %s", strerror(errno));
		return -errno;
	}
	/* Without it we still start; only a crash's exit status goes unreported. */
	prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	pid_t pid = fork();
	if (pid < 0) {
		int err = -errno;
		log_error("daemon: fork: %s", strerror(errno));
		return err;
	}
	if (pid > 0) {
		close(st[1]);
		_exit(wait_ready(st[0], pid));
	}
	close(st[0]);
	setsid();
	pid = fork();
	if (pid < 0) {
		log_error("daemon: fork: %s", strerror(errno));
		_exit(1);
	}
	if (pid > 0)
		_exit(0); /* the session leader goes, so we can never regain a terminal */
	daemon_signals_early(); /* before the pidfile: 'weft stop' may come from now on */
	umask(022);
	int null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		if (!cfg->log_file)
			dup2(null, STDERR_FILENO);
		if (null > 2)
			close(null);
	}
	/* From now until ready, warnings and errors go to the first process,
	 * which prints them on the terminal (the log has them too). */
	int term = log_tee_end();
	if (term >= 0)
		close(term);
	log_tee(st[1]);
	detached = true;
	return daemon_pidfile_create(cfg->pidfile);
}

void daemon_ready(void)
{
	atomic_store(&is_ready, true);
	char state[64];
	snprintf(state, sizeof(state), "READY=1\nMAINPID=%d", (int)getpid());
	sdnotify_send(state);
	int fd = log_tee_end();
	if (fd < 0)
		return;
	if (detached) {
		ssize_t w = write(fd, "", 1); /* the NUL: the first process exits 0 */
		(void)w;
	}
	/* Its EOF, without a descriptor number a late log line could find reused. */
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (null >= 0) {
		dup3(null, fd, O_CLOEXEC);
		close(null);
	} else {
		close(fd);
	}
}

int daemon_stop_cmd(int argc, char **argv)
{
	static const struct option lo[] = {{"pidfile", required_argument, NULL, 'p'},
	                                   {"timeout", required_argument, NULL, 't'},
	                                   {"help", no_argument, NULL, 'h'},
	                                   {0}};
	const char *path = NULL;
	int timeout_ms = 30000;
	int c;
	optind = 1;
	opterr = 0; /* getopt's messages would say "stop:", its argv[0] */
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		if (c == 'p') {
			path = optarg;
		} else if (c == 't' && config_parse_secs(optarg, &timeout_ms) == 0) {
			continue;
		} else if (c == 't') {
			fprintf(stderr, "weft stop: bad value '%s' for --timeout: a duration (30, 30s, 1m, 500ms), 0..%lld s\n",
			        optarg, CONFIG_SECS_MAX);
			return 2;
		} else {
			if (c == '?')
				fprintf(stderr, "weft stop: unknown option or missing value: '%s'\n", argv[optind - 1]);
			printf("usage: weft stop --pidfile FILE [--timeout SEC]\n"
			       "Sends SIGTERM to the weft daemon whose pid is in FILE and waits (default 30 s) for it to exit.\n");
			return c == 'h' ? 0 : 2;
		}
	}
	if (!path) {
		fprintf(stderr, "weft stop: --pidfile FILE is required\n");
		return 2;
	}
	pid_t pid;
	int rc = read_pid(path, &pid);
	if (rc == -EINVAL) {
		fprintf(stderr, "weft stop: %s does not hold a pid (one decimal number 2..%d and a newline); "
		        "nothing was signalled\n", path, INT_MAX);
		return 1;
	}
	if (rc < 0) {
		fprintf(stderr, "weft stop: cannot read a pid from %s: %s\n", path, strerror(-rc));
		return 1;
	}
	if (kill(pid, SIGTERM) < 0) {
		fprintf(stderr, "weft stop: pid %d from %s: %s (stale pidfile? remove it)\n", (int)pid, path, strerror(errno));
		return 1;
	}
	for (long long waited = 0; waited <= timeout_ms; waited += 50) {
		if (kill(pid, 0) < 0 && errno == ESRCH)
			return 0;
		usleep(50000);
	}
	fprintf(stderr, "weft stop: pid %d still running after %d.%03d s\n", (int)pid, timeout_ms / 1000,
	        timeout_ms % 1000);
	return 1;
}
