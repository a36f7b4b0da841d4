#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "server.h"

static struct server *sig_srv;

static void on_signal(int sig)
{
	(void)sig;
	int saved = errno; /* the interrupted code may be about to read errno */
	if (sig_srv)
		server_request_stop(sig_srv);
	errno = saved;
}

void daemon_signals(struct server *srv)
{
	sig_srv = srv;
	signal(SIGPIPE, SIG_IGN);
	struct sigaction sa = {0};
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

void daemon_signals_off(void)
{
	/* Only the main thread takes these signals (daemon_thread_create), and
	 * it runs this: once it returns, no handler can still be running. */
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	sig_srv = NULL;
}

int daemon_thread_create(pthread_t *thr, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
	sigset_t stop, old;
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
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

int daemon_detach(const struct config *cfg)
{
	int ready[2];
	if (pipe(ready) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0) {
		/* The original process: wait until the daemon says it has its pidfile. */
		close(ready[1]);
		char c = 0;
		ssize_t r = read(ready[0], &c, 1);
		_exit(r == 1 && c == 'y' ? 0 : 1);
	}
	close(ready[0]);
	setsid();
	pid = fork();
	if (pid < 0)
		_exit(1);
	if (pid > 0)
		_exit(0); /* the session leader goes, so we can never regain a terminal */
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
	int rc = daemon_pidfile_create(cfg->pidfile);
	ssize_t w = write(ready[1], rc == 0 ? "y" : "n", 1);
	(void)w;
	close(ready[1]);
	return rc;
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
