#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
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

static long read_pid(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -errno;
	long pid = -1;
	if (fscanf(f, "%ld", &pid) != 1)
		pid = -EINVAL;
	fclose(f);
	return pid;
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
		long pid = read_pid(path);
		if (pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM)) {
			log_error("pidfile: %s says weft is already running as pid %ld; stop it with 'weft stop --pidfile %s'",
			          path, pid, path);
			return -EEXIST;
		}
		log_warn("pidfile: removing stale %s (pid %ld is gone)", path, pid);
		unlink(path);
	}
	return -EEXIST;
}

void daemon_pidfile_remove(const char *path)
{
	if (path && read_pid(path) == (long)getpid())
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
	double timeout = 30;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		if (c == 'p')
			path = optarg;
		else if (c == 't')
			timeout = atof(optarg);
		else {
			printf("usage: weft stop --pidfile FILE [--timeout SEC]\n"
			       "Sends SIGTERM to the weft daemon whose pid is in FILE and waits (default 30 s) for it to exit.\n");
			return c == 'h' ? 0 : 2;
		}
	}
	if (!path) {
		fprintf(stderr, "weft stop: --pidfile FILE is required\n");
		return 2;
	}
	long pid = read_pid(path);
	if (pid <= 0) {
		fprintf(stderr, "weft stop: cannot read a pid from %s: %s\n", path, strerror(pid == -EINVAL ? EINVAL : (int)-pid));
		return 1;
	}
	if (kill((pid_t)pid, SIGTERM) < 0) {
		fprintf(stderr, "weft stop: pid %ld from %s: %s (stale pidfile? remove it)\n", pid, path, strerror(errno));
		return 1;
	}
	for (int i = 0; i < (int)(timeout * 20); i++) {
		if (kill((pid_t)pid, 0) < 0 && errno == ESRCH)
			return 0;
		usleep(50000);
	}
	fprintf(stderr, "weft stop: pid %ld still running after %.0f s\n", pid, timeout);
	return 1;
}
