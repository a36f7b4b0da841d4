/* test_accept.c - which accept(2) failures pause a listener (the runtime's
 * back-off, common/loop/listen.c) and which are one connection's: a new
 * connection's pending network error (EPROTO, ENETUNREACH, ...) is to be
 * retried at once, as accept(2) says; it paused the listener 100 ms, as
 * running out of descriptors does. No socket: the verdict and the count. */
#include <errno.h>

#include "check.h"
#include "server.h"
#include "stats.h"

int main(void)
{
	static const int again[] = {EAGAIN, EWOULDBLOCK, EINTR, ECONNABORTED};
	static const int one_conn[] = {ENETDOWN, EPROTO, ENOPROTOOPT, EHOSTDOWN, ENONET, EHOSTUNREACH, EOPNOTSUPP, ENETUNREACH};
	static const int pause[] = {EMFILE, ENFILE, ENOBUFS, ENOMEM, EBADF, EINVAL};
	uint64_t errs = stat_sum(STAT_accept_errors);
	for (size_t i = 0; i < sizeof(again) / sizeof(again[0]); i++) {
		CHECK(!server_accept_failed(again[i]) && !server_accept_failed(-again[i]));
		CHECK(server_accept_transient(again[i]));
	}
	CHECK(stat_sum(STAT_accept_errors) == errs); /* not counted */
	for (size_t i = 0; i < sizeof(one_conn) / sizeof(one_conn[0]); i++) {
		CHECK(!server_accept_failed(one_conn[i])); /* accept the next at once */
		CHECK(!server_accept_failed(-one_conn[i]));
		CHECK(server_accept_transient(one_conn[i]) && server_accept_transient(-one_conn[i]));
	}
	CHECK(stat_sum(STAT_accept_errors) == errs + 2 * sizeof(one_conn) / sizeof(one_conn[0])); /* counted */
	errs = stat_sum(STAT_accept_errors);
	for (size_t i = 0; i < sizeof(pause) / sizeof(pause[0]); i++) {
		CHECK(server_accept_failed(pause[i]) && server_accept_failed(-pause[i])); /* back off */
		CHECK(!server_accept_transient(pause[i]));
	}
	CHECK(stat_sum(STAT_accept_errors) == errs + 2 * sizeof(pause) / sizeof(pause[0]));
	return check_done();
}
