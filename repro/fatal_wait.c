/* fatal_wait.c - an LD_PRELOAD shim for fatal_wait.py: once the file
 * FAIL_FILE exists, every wait of a loop fails with EIO (epoll_wait, poll,
 * select: coro's pollers; io_uring_submit_and_wait_timeout: uring's ring),
 * so the runtime's teardown walk (loop_teardown: m->halt, then m->release
 * for each connection left) runs with connections live. With FAIL_ONE set,
 * only the first thread that waits after the file appears fails (one loop of
 * --threads N; the others are stopped by the group). Build-tree only. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <unistd.h>

static int failer; /* the failing thread's id, with FAIL_ONE */

static int failing(void)
{
	const char *f = getenv("FAIL_FILE");
	if (!f || access(f, F_OK) != 0)
		return 0;
	if (!getenv("FAIL_ONE"))
		return 1;
	int me = (int)syscall(SYS_gettid), none = 0;
	__atomic_compare_exchange_n(&failer, &none, me, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
	return __atomic_load_n(&failer, __ATOMIC_SEQ_CST) == me;
}

#define REAL(name) static __typeof__(name) *real; if (!real) real = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)

int epoll_wait(int epfd, struct epoll_event *ev, int n, int timeout)
{
	REAL(epoll_wait);
	if (failing()) {
		errno = EIO;
		return -1;
	}
	return real(epfd, ev, n, timeout);
}

int poll(struct pollfd *fds, nfds_t n, int timeout)
{
	REAL(poll);
	if (failing()) {
		errno = EIO;
		return -1;
	}
	return real(fds, n, timeout);
}

int select(int n, fd_set *rd, fd_set *wr, fd_set *ex, struct timeval *tv)
{
	REAL(select);
	if (failing()) {
		errno = EIO;
		return -1;
	}
	return real(n, rd, wr, ex, tv);
}

int io_uring_submit_and_wait_timeout(struct io_uring *ring, struct io_uring_cqe **cqe, unsigned wait_nr,
                                     struct __kernel_timespec *ts, sigset_t *sigmask)
{
	REAL(io_uring_submit_and_wait_timeout);
	if (failing())
		return -EIO;
	return real(ring, cqe, wait_nr, ts, sigmask);
}
