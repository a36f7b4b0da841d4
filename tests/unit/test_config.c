/* test_config.c - the command line refuses what cannot work (issue 9):
 * durations that would overflow (2200000 s, nan, inf, hex, exponents),
 * settings each valid alone that cannot work (--read-pause 0, --port equal
 * to --tls-port, a pool ring that wraps int, ...), and a pidfile that does
 * not hold exactly one positive pid_t. Every refusal must name the flag. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "config.h"
#include "daemon.h"

static char err_text[4096];

/* config_parse(argv...) with stderr captured into err_text. */
static int parse(struct config *cfg, const char *const *args)
{
	char *argv[32] = {"weft"};
	int argc = 1;
	for (; args[argc - 1]; argc++)
		argv[argc] = (char *)args[argc - 1];
	argv[argc] = NULL;
	fflush(stderr);
	FILE *tmp = tmpfile();
	int saved = dup(STDERR_FILENO);
	if (!tmp || saved < 0 || dup2(fileno(tmp), STDERR_FILENO) < 0)
		abort();
	int rc = config_parse(cfg, argc, argv);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(tmp);
	size_t n = fread(err_text, 1, sizeof(err_text) - 1, tmp);
	err_text[n] = '\0';
	fclose(tmp);
	return rc;
}

/* Refused with a message that names every flag in names (NULL-ended). */
static int refused(const char *const *args, const char *const *names)
{
	struct config cfg;
	if (parse(&cfg, args) != -EINVAL) {
		fprintf(stderr, "  accepted: %s %s\n", args[0], args[1] ? args[1] : "");
		return 0;
	}
	for (; *names; names++)
		if (!strstr(err_text, *names)) {
			fprintf(stderr, "  message for %s does not name %s: %s", args[0], *names, err_text);
			return 0;
		}
	return 1;
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static void test_secs(void)
{
	static const struct {
		const char *text;
		int rc, ms;
	} cases[] = {
		{"0", 0, 0}, {"300", 0, 300000}, {"1.5", 0, 1500}, {".25", 0, 250}, {"5.", 0, 5000},
		{"0.001", 0, 1}, {"0.0019", 0, 1}, {"604800", 0, 604800000}, {"604800.000", 0, 604800000},
		{"0.0000", 0, 0},
		/* what strtod takes and a duration must not */
		{"nan", -EINVAL, 0}, {"NaN", -EINVAL, 0}, {"inf", -EINVAL, 0}, {"infinity", -EINVAL, 0},
		{"0x10", -EINVAL, 0}, {"1e3", -EINVAL, 0}, {"-1", -EINVAL, 0}, {"+1", -EINVAL, 0},
		{" 1", -EINVAL, 0}, {"1 ", -EINVAL, 0}, {"", -EINVAL, 0}, {".", -EINVAL, 0}, {"1.2.3", -EINVAL, 0},
		{"1s", -EINVAL, 0},
		/* out of range: past 7 days (2200000 s was INT_MIN ms), or a positive value under 1 ms */
		{"2200000", -ERANGE, 0}, {"604800.001", -ERANGE, 0}, {"604801", -ERANGE, 0},
		{"99999999999999999999999999", -ERANGE, 0}, {"0.0001", -ERANGE, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int ms = -7;
		int rc = config_parse_secs(cases[i].text, &ms);
		CHECK(rc == cases[i].rc);
		CHECK(rc < 0 ? ms == -7 : ms == cases[i].ms);
		if (rc != cases[i].rc || (rc == 0 && ms != cases[i].ms))
			fprintf(stderr, "  '%s': rc %d ms %d\n", cases[i].text, rc, ms);
	}
}

static void test_duration_flags(void)
{
	static const char *const flags[] = {"--idle-timeout", "--drain-timeout", "--outbox-soft-secs",
	                                    "--handshake-timeout", "--header-timeout"};
	static const char *const bad[] = {"2200000", "nan", "inf", "-1", "0x10", "1e9", "0.0001"};
	for (size_t f = 0; f < sizeof(flags) / sizeof(flags[0]); f++) {
		for (size_t b = 0; b < sizeof(bad) / sizeof(bad[0]); b++)
			CHECK(refused(ARGS(flags[f], bad[b]), ARGS(flags[f], "604800")));
		struct config cfg;
		CHECK(parse(&cfg, ARGS(flags[f], "604800")) == 0);
	}
	struct config cfg;
	CHECK(parse(&cfg, ARGS("--drain-timeout", "604800", "--idle-timeout", "0.5")) == 0);
	CHECK(cfg.drain_timeout_ms == 604800000 && cfg.idle_timeout_ms == 500);
	CHECK(cfg.drain_timeout_ms == CONFIG_MS_MAX && CONFIG_MS_MAX <= INT_MAX);
}

static void test_settings_that_cannot_work(void)
{
	CHECK(refused(ARGS("--read-pause", "0"), ARGS("--read-pause")));
	CHECK(refused(ARGS("--port", "7123", "--tls-port", "7123"), ARGS("--port", "--tls-port")));
	CHECK(refused(ARGS("--workers", "0"), ARGS("--workers")));
	CHECK(refused(ARGS("--workers", "100001"), ARGS("--workers")));
	CHECK(refused(ARGS("--queue", "-1"), ARGS("--queue")));
	/* workers + queue + 1 wrapped int in pool.c's ring */
	CHECK(refused(ARGS("--model", "pool", "--queue", "2147483647"), ARGS("--queue")));
	CHECK(refused(ARGS("--threads", "0"), ARGS("--threads")));
	CHECK(refused(ARGS("--threads", "100000"), ARGS("--threads")));
	CHECK(refused(ARGS("--max-conns", "0"), ARGS("--max-conns")));
	CHECK(refused(ARGS("--backlog", "-5"), ARGS("--backlog")));
	CHECK(refused(ARGS("--max-subs", "0"), ARGS("--max-subs")));
	CHECK(refused(ARGS("--max-headers", "0"), ARGS("--max-headers")));
	CHECK(refused(ARGS("--max-headers", "100000000"), ARGS("--max-headers")));
	CHECK(refused(ARGS("--stack-size", "2g"), ARGS("--stack-size")));
	CHECK(refused(ARGS("--max-head", "10"), ARGS("--max-head")));
	CHECK(refused(ARGS("--max-line", "1"), ARGS("--max-line")));
	CHECK(refused(ARGS("--max-message", "0"), ARGS("--max-message")));
	/* sizes: at most 1024g (sums of limits never wrap), digits only */
	CHECK(refused(ARGS("--max-message", "18446744073709551615"), ARGS("--max-message")));
	CHECK(refused(ARGS("--read-pause", " -1"), ARGS("--read-pause")));
	CHECK(refused(ARGS("--max-body", "+5"), ARGS("--max-body")));

	struct config cfg;
	CHECK(parse(&cfg, ARGS("--port", "0", "--tls-port", "0")) == 0); /* two ephemeral ports */
	CHECK(parse(&cfg, ARGS("--port", "7123", "--tls-port", "7124")) == 0);
	CHECK(parse(&cfg, ARGS("--model", "pool", "--workers", "100000", "--queue", "1000000")) == 0);
	CHECK(parse(&cfg, ARGS("--read-pause", "1", "--max-message", "1024g")) == 0);
	CHECK(cfg.read_pause == 1 && cfg.max_message == CONFIG_SIZE_MAX);
	size_t sz;
	CHECK(config_parse_size("1025g", &sz) == -ERANGE);
	CHECK(config_parse_size(" 5", &sz) == -EINVAL);
	CHECK(config_parse_size("5q", &sz) == -EINVAL);
	CHECK(config_parse_size("99999999999999999999999", &sz) == -ERANGE);
	CHECK(config_parse_size("1024g", &sz) == 0 && sz == CONFIG_SIZE_MAX);
}

static void test_pid(void)
{
	static const struct {
		const char *text;
		int rc, pid;
	} cases[] = {
		{"5903\n", 0, 5903}, {"5903", 0, 5903}, {"2\n", 0, 2}, {"2147483647\n", 0, INT_MAX},
		{"4294973199\n", -EINVAL, 0}, /* truncated to 5903 by a pid_t cast */
		{"4294967295\n", -EINVAL, 0}, /* (pid_t)-1: kill(-1) signals every process */
		{"2147483648\n", -EINVAL, 0}, {"99999999999999999999999\n", -EINVAL, 0},
		{"12abc\n", -EINVAL, 0}, {"-1\n", -EINVAL, 0}, {"0\n", -EINVAL, 0}, {"1\n", -EINVAL, 0},
		{"+12\n", -EINVAL, 0}, {" 12\n", -EINVAL, 0}, {"12 \n", -EINVAL, 0}, {"012\n", -EINVAL, 0},
		{"12\n\n", -EINVAL, 0}, {"12\r\n", -EINVAL, 0}, {"12\n13\n", -EINVAL, 0}, {"", -EINVAL, 0},
		{"\n", -EINVAL, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		pid_t pid = -7;
		int rc = daemon_parse_pid(cases[i].text, strlen(cases[i].text), &pid);
		CHECK(rc == cases[i].rc);
		CHECK(rc < 0 ? pid == -7 : pid == cases[i].pid);
		if (rc != cases[i].rc)
			fprintf(stderr, "  pidfile '%s': rc %d pid %d\n", cases[i].text, rc, (int)pid);
	}
	/* a NUL inside is not a digit either */
	pid_t pid;
	CHECK(daemon_parse_pid("12\0" "3", 4, &pid) == -EINVAL);
}

int main(void)
{
	test_secs();
	test_duration_flags();
	test_settings_that_cannot_work();
	test_pid();
	return check_done();
}
