/* options.c - checking the cluster's files and times at start, so that a
 * typo is exit 2 with the flag's name rather than a link that never comes up. */
#include "options.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "sign.h"
#include "hosts.h"
#include "url.h"

/* The first line of path into out (at most CLUSTER_PASS_MAX bytes). */
static int read_password(const char *path, char *out, const char **why)
{
	char buf[CLUSTER_PASS_MAX + 2];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		*why = strerror(errno);
		return -errno;
	}
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0) {
		*why = strerror(errno);
		return -EIO;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	size_t len = strlen(buf); /* a NUL ends it early: then it is what comes before */
	if (len == 0 || len > CLUSTER_PASS_MAX) {
		*why = len ? "longer than 511 bytes" : "empty (the password is its first line)";
		return -EINVAL;
	}
	memcpy(out, buf, len + 1);
	memset(buf, 0, sizeof(buf));
	return 0;
}

int cluster_password(const struct config *cfg, struct cluster_url *u, const char **why)
{
	if (u->pass[0])
		return 0;
	if (cfg->cluster_password_file)
		return read_password(cfg->cluster_password_file, u->pass, why);
	const char *env = getenv(CLUSTER_PASSWORD_ENV);
	if (env && *env) {
		if (strlen(env) > CLUSTER_PASS_MAX) {
			*why = "$" CLUSTER_PASSWORD_ENV " is longer than 511 bytes";
			return -EINVAL;
		}
		strcpy(u->pass, env);
	}
	return 0;
}

static int usage(const char *fmt, const char *a, const char *b)
{
	fprintf(stderr, "weft: ");
	fprintf(stderr, fmt, a, b);
	fprintf(stderr, "\n");
	return -EINVAL;
}

static int check_files_and_times(const struct config *cfg)
{
	if (!cfg->cluster) {
		if (cfg->cluster_key_file || cfg->cluster_password_file)
			return usage("--cluster-key-file and --cluster-password-file go with --cluster%s%s", "", "");
		return 0;
	}
	const char *why = NULL;
	struct cluster_url u;
	if (cluster_url_parse(cfg->cluster, &u, &why) < 0)
		return -EINVAL; /* config.c said so */
	if (u.pass[0] && cfg->cluster_password_file)
		return usage("--cluster-password-file and a password in the --cluster URL contradict each other: pick one%s%s",
		             "", "");
	if (cluster_password(cfg, &u, &why) < 0)
		return usage("cannot read --cluster-password-file %s: %s", cfg->cluster_password_file, why);
	memset(u.pass, 0, sizeof(u.pass));
	if (cfg->cluster_key_file) {
		struct sign_key *k;
		if (sign_key_load(cfg->cluster_key_file, &k, &why) < 0)
			return usage("--cluster-key-file %s: %s", cfg->cluster_key_file, why);
		sign_key_free(k);
	}
	if (cfg->cluster_backoff_max_ms < 50 || cfg->cluster_backoff_max_ms > 3600 * 1000)
		return usage("--cluster-backoff-max must be 0.05..3600 seconds%s%s", "", "");
	if (cfg->cluster_connect_timeout_ms < 100 || cfg->cluster_connect_timeout_ms > 3600 * 1000)
		return usage("--cluster-connect-timeout must be 0.1..3600 seconds%s%s", "", "");
	return 0;
}

/* --cluster and its companions; every message names the flag. */
int cluster_options_check(const struct config *cfg)
{
	struct cluster_url u;
	const char *why = NULL, *err = NULL;
	if (!cfg->cluster) {
		if (cfg->cluster_ca || cfg->cluster_insecure)
			err = "--cluster-ca and --cluster-insecure go with --cluster rediss://...";
		else if (cfg->cluster_hosts)
			err = "--cluster-hosts goes with --cluster redis-cluster://...";
	} else if (cluster_url_parse(cfg->cluster, &u, &why) < 0) {
		char shown[600];
		cluster_url_redact(cfg->cluster, shown, sizeof(shown));
		fprintf(stderr, "weft: bad value '%s' for --cluster: %s (e.g. redis://127.0.0.1:6379 or redis-cluster://127.0.0.1:7000,127.0.0.1:7001)\n", shown, why);
		return -EINVAL;
	} else if (cfg->mode != MODE_CHAT) {
		err = "--cluster joins chat channels across nodes: it needs --mode chat (echo mode has nothing to share)";
	} else if (!u.tls && (cfg->cluster_ca || cfg->cluster_insecure)) {
		err = "--cluster-ca and --cluster-insecure are for a rediss:// (TLS) --cluster URL";
	} else if (cfg->cluster_ca && cfg->cluster_insecure) {
		err = "--cluster-ca and --cluster-insecure contradict each other: pick one";
	} else if (cfg->cluster_prefix[strcspn(cfg->cluster_prefix, "*?[]\\")] != '\0' ||
	           strlen(cfg->cluster_prefix) > 64) {
		err = "--cluster-prefix may not hold * ? [ ] or \\ (it is glued in front of patterns) and is at most 64 bytes";
	} else if (cfg->cluster_hosts && !u.sharded) {
		err = "--cluster-hosts is for a redis-cluster:// (sharded) --cluster URL: one Redis names no other host";
	} else if (cfg->cluster_hosts && cluster_hosts_check(cfg->cluster_hosts, &why) < 0) {
		size_t n = strlen(cfg->cluster_hosts); /* a list too long is not echoed whole */
		fprintf(stderr, "weft: bad value '%.200s%s' for --cluster-hosts: %s\n", cfg->cluster_hosts, n > 200 ? "..." : "",
		        why);
		return -EINVAL;
	} else if (cfg->cluster_ca) {
		FILE *f = fopen(cfg->cluster_ca, "r");
		if (!f) {
			fprintf(stderr, "weft: cannot read --cluster-ca %s: %s\n", cfg->cluster_ca, strerror(errno));
			return -EINVAL;
		}
		fclose(f);
	}
	if (err) {
		fprintf(stderr, "weft: %s\n", err);
		return -EINVAL;
	}
	return check_files_and_times(cfg);
}
