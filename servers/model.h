/* model.h - a concurrency model: one way of running sessions on sockets.
 *
 * A model owns its threads, loops and sockets, and nothing else: protocols
 * come through session.h, chat delivery through owner.h. run() is called
 * with the listeners bound (srv->listen_fd, srv->tls_listen_fd); it calls
 * server_ready() once accepting, serves until server_stop_fd() is readable,
 * drains within --drain-timeout, frees everything and returns the exit code. */
#ifndef WEFT_MODEL_H
#define WEFT_MODEL_H

struct server;

struct model {
	const char *name;
	const char *recipe; /* one line for --help and the log */
	int (*run)(struct server *srv);
};

/* model_<name> for every MODEL(name, ...) in models.def, the one list. */
#define MODEL(name, loop, bench_args) extern const struct model model_##name;
#include "models.def"

#define EXIT_UNAVAILABLE 69 /* sysexits EX_UNAVAILABLE: e.g. io_uring blocked */

#endif
