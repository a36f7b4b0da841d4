/* floor.c - the listener, ready line and stop signal of the floor servers
 * (measuring sticks, not servers: see floor.h). */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "floor.h"

static void die(const char *name, const char *what)
{
	fprintf(stderr, "%s: %s: %s\n", name, what, strerror(errno));
	exit(1);
}

int floor_watch(struct floor *f, int fd, void *ptr, uint32_t events, bool add)
{
	struct epoll_event ev = {.events = events, .data.ptr = ptr};
	return epoll_ctl(f->ep, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev);
}

int floor_init(struct floor *f, int argc, char **argv, const char *name, void *(*on_accept)(int fd))
{
	int port = argc > 1 ? atoi(argv[1]) : 0;
	if (argc > 2 || port < 0 || port > 65535) {
		fprintf(stderr, "usage: %s [PORT]   (127.0.0.1 only; 0 = any free port)\n", name);
		exit(2);
	}
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max; /* one descriptor per connection, and no other limit */
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
	sigset_t stop;
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigprocmask(SIG_BLOCK, &stop, NULL);
	*f = (struct floor){.on_accept = on_accept};
	f->sfd = signalfd(-1, &stop, SFD_NONBLOCK | SFD_CLOEXEC);
	f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	f->ep = epoll_create1(EPOLL_CLOEXEC);
	if (f->sfd < 0 || f->lfd < 0 || f->ep < 0)
		die(name, "setup");
	int one = 1;
	setsockopt(f->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	if (bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(f->lfd, 4096) < 0 ||
	    getsockname(f->lfd, (struct sockaddr *)&sa, &len) < 0)
		die(name, "listen on 127.0.0.1");
	if (floor_watch(f, f->lfd, &f->lfd, EPOLLIN, true) < 0 || floor_watch(f, f->sfd, &f->sfd, EPOLLIN, true) < 0)
		die(name, "epoll");
	printf("%s ready: port=%d pid=%d (a measuring stick, not a server)\n", name, ntohs(sa.sin_port), (int)getpid());
	fflush(stdout);
	return 0;
}

static void accept_all(struct floor *f)
{
	for (;;) {
		int fd = accept4(f->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return; /* EAGAIN, or EMFILE: the next wait retries (a floor has no policy) */
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		void *ptr = f->on_accept(fd);
		if (!ptr || floor_watch(f, fd, ptr, EPOLLIN, true) < 0)
			close(fd);
	}
}

int floor_wait(struct floor *f, struct epoll_event *ev, int max)
{
	int n = epoll_wait(f->ep, ev, max, -1);
	if (n < 0 && errno != EINTR) {
		perror("epoll_wait");
		exit(1);
	}
	int kept = 0;
	for (int i = 0; i < n; i++) {
		if (ev[i].data.ptr == &f->lfd)
			accept_all(f);
		else if (ev[i].data.ptr == &f->sfd)
			f->stop = true;
		else
			ev[kept++] = ev[i];
	}
	return f->stop ? 0 : kept;
}
