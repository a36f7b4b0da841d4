/* listen.c - each loop's listeners. Loop 0 serves the sockets server_init
 * bound (so a single loop needs no SO_REUSEPORT); every other loop binds its
 * own on the same port and the kernel spreads connections across them. */
#include <unistd.h>

#include "loop.h"
#include "server.h"

static int add(struct loop *l, int fd, bool tls, bool owned)
{
	if (fd < 0)
		return fd;
	l->lis[l->nlis++] = (struct loop_listener){fd, tls, owned};
	return 0;
}

int loop_listeners_open(struct loop *l)
{
	struct server *srv = l->srv;
	bool first = l->index == 0;
	int rc = add(l, first ? srv->listen_fd : server_listen_again(srv, false), false, !first);
	if (rc == 0 && srv->tls_listen_fd >= 0)
		rc = add(l, first ? srv->tls_listen_fd : server_listen_again(srv, true), true, !first);
	return rc;
}

void loop_listener_close(struct loop *l, int i)
{
	struct loop_listener *li = &l->lis[i];
	if (li->fd < 0)
		return;
	close(li->fd);
	if (!li->owned)
		*(li->tls ? &l->srv->tls_listen_fd : &l->srv->listen_fd) = -1;
	li->fd = -1;
}
