/* sdnotify.c - sd_notify(3) written out instead of linking libsystemd: the
 * protocol is one datagram to the AF_UNIX socket named by $NOTIFY_SOCKET
 * ("@name" for the abstract namespace), which systemd documents as a stable
 * interface to implement directly; a library for it would be the server's
 * only systemd dependency, needed at link time on machines without systemd,
 * for twenty lines. */
#include "sdnotify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int sdnotify_send(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	if (!path || !*path)
		return 0;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || n >= sizeof(sa.sun_path))
		return -EAFNOSUPPORT; /* vsock: and friends are for VMs, not for us */
	memcpy(sa.sun_path, path, n);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	int rc = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, len) < 0 ? -errno : 0;
	close(fd);
	return rc;
}
