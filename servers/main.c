/* main.c - parse the command line, become a daemon if asked, bind the
 * listeners, compose the layers (the exchange, the cluster bridge hooked into
 * it, their metrics sources) and hand the server to the chosen model. */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bridge.h"
#include "config.h"
#include "daemon.h"
#include "exchange.h"
#include "log.h"
#include "loop.h"
#include "metrics_src.h"
#include "model.h"
#include "options.h"
#include "server.h"
#include "ws.h"

/* In models.def's order: --help lists them so, the error names them so. */
static const struct model *const models[] = {
#define MODEL(name, loop, bench_args) &model_##name,
#include "models.def"
};
#define NMODELS (sizeof(models) / sizeof(models[0]))

static const struct model *find_model(const char *name)
{
	for (size_t i = 0; i < NMODELS; i++)
		if (strcmp(models[i]->name, name) == 0)
			return models[i];
	return NULL;
}

/* "choose a, b or c", from the table, so a new model is named here too. */
static void unknown_model(const char *name)
{
	fprintf(stderr, "weft: unknown --model '%s': choose ", name);
	for (size_t i = 0; i < NMODELS; i++)
		fprintf(stderr, "%s%s", i == 0 ? "" : i + 1 == NMODELS ? " or " : ", ", models[i]->name);
	fputc('\n', stderr);
}

/* What config_parse asked for instead of a run: --help and what the build
 * generates from the option table, each with the models list. Exit code. */
static int show(int what)
{
	struct config_model list[NMODELS];
	for (size_t i = 0; i < NMODELS; i++)
		list[i] = (struct config_model){models[i]->name, models[i]->recipe};
	if (what == CONFIG_SHOW_HELP)
		config_usage(list, NMODELS);
	else if (what == CONFIG_SHOW_MAN)
		config_man(list, NMODELS);
	else if (what == CONFIG_SHOW_COMPLETION)
		config_completion(list, NMODELS);
	return 0;
}

/* glibc gives the top of its heap back to the kernel whenever 128 KiB of it
 * is free (its dynamic default), and a server frees most replies right after
 * sending them: with the wrong heap layout (the TLS context loaded first)
 * every 64 KiB echo had its memory unmapped and faulted back in, 12.8 page
 * faults per round trip, and uring at 10 connections ran 2.9k round trips/s
 * instead of 40k. Keep up to 16 MiB of free heap (a burst's worth) and serve
 * allocations below 1 MiB from the heap. */
static void tune_malloc(void)
{
	mallopt(M_TRIM_THRESHOLD, 16 << 20);
	mallopt(M_MMAP_THRESHOLD, 1 << 20);
}

/* Chat mode: the exchange every loop publishes into and, with --cluster, the
 * bridge hooked into it (it connects in the background: serving starts at
 * once), and their metrics sources: only here, so a node without --cluster
 * has no weft_cluster_ series, an echo node no chat gauges. 0 or -errno. */
static int compose(struct server *srv, struct bridge **bridge)
{
	const struct config *cfg = srv->cfg;
	if (cfg->mode != MODE_CHAT)
		return 0;
	srv->ex = exchange_new();
	if (!srv->ex)
		return -ENOMEM;
	exchange_set_ws_framer(ws_text_msg);
	if (cfg->cluster && !(*bridge = bridge_start(srv->ex, cfg)))
		return -EINVAL;
	if (*bridge) /* the link runs on loop 0 of the model's loops (or the host loop: threads, pool) */
		loop_guest_set(bridge_guest(*bridge));
	int rc = metrics_register("chat", exchange_metrics, srv->ex);
	if (rc == 0 && *bridge)
		rc = metrics_register("cluster", bridge_metrics, *bridge);
	if (rc < 0)
		log_error("startup: cannot register the chat metrics: %s", strerror(-rc));
	return rc;
}

/* After the model returned (no loop can scrape or publish any more). */
static void decompose(struct server *srv, struct bridge *bridge)
{
	metrics_sources_clear();
	bridge_stop(bridge); /* before the exchange it hooks into */
	exchange_free(srv->ex);
	srv->ex = NULL;
}

/* SIGINT/SIGTERM (daemon_signals): async-signal-safe. */
static void request_stop(void *srv)
{
	server_request_stop(srv);
}

/* Descriptors are the connection limit; take what the hard limit allows. */
static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "stop") == 0)
		return daemon_stop_cmd(argc - 1, argv + 1);

	struct config cfg;
	int rc = config_parse(&cfg, argc, argv);
	if (rc > 0)
		return show(rc);
	if (rc < 0 || cluster_options_check(&cfg) < 0)
		return 2;
	const struct model *model = find_model(cfg.model);
	if (!model) {
		unknown_model(cfg.model);
		return 2;
	}
	config_warn_ignored(&cfg, model->name); /* before --log-file and --daemon take stderr */
	log_set_level((enum log_level)cfg.log_level);
	if (daemon_log_open(cfg.log_file) < 0)
		return 1;
	/* --daemon returns here in the daemon; the first process waits for its
	 * server_ready() (or its death) and exits with what it learnt. */
	if (cfg.daemon) {
		if (daemon_detach(&cfg) < 0)
			return 1;
	} else {
		daemon_signals_early();
		if (cfg.pidfile && daemon_pidfile_create(cfg.pidfile) < 0)
			return 1;
	}
	raise_nofile();
	tune_malloc();

	struct server srv;
	struct bridge *bridge = NULL;
	rc = server_init(&srv, &cfg);
	if (rc == 0)
		rc = compose(&srv, &bridge);
	if (rc == 0) {
		daemon_signals(request_stop, &srv, cfg.log_file);
		rc = model->run(&srv);
		/* A late SIGTERM (a second `weft stop`) must not reach srv, which
		 * lives in this frame, after it is torn down or main returned. */
		daemon_signals_off();
		log_info("stopped: model=%s exit=%d", model->name, rc);
	} else {
		rc = 1;
	}
	decompose(&srv, bridge);
	server_fini(&srv);
	daemon_pidfile_remove(cfg.pidfile);
	return rc;
}
