/* options.h - the cluster flags that need more than a parse: the key file,
 * the engine's password (URL, file or environment), the back-off and connect
 * time-outs, and the --cluster URL itself. main.c calls the check right after
 * config_parse (config.c knows no cluster grammar); the bridge resolves the
 * password. */
#ifndef WEFT_CLUSTER_OPTIONS_H
#define WEFT_CLUSTER_OPTIONS_H

struct config;
struct cluster_url;

#define CLUSTER_PASSWORD_ENV "WEFT_CLUSTER_PASSWORD"

/* --cluster and its companions: usage errors on stderr, naming the flag
 * (exit 2 at start). 0 or -EINVAL. */
int cluster_options_check(const struct config *cfg);
/* Fill u->pass from --cluster-password-file or the environment when the URL
 * has none. 0, or -errno with *why (a static string). */
int cluster_password(const struct config *cfg, struct cluster_url *u, const char **why);

#endif
