/* test_config.c - the command line refuses what cannot work (issue 9):
 * durations that would overflow (2200000 s, nan, inf, hex, exponents),
 * settings each valid alone that cannot work (--read-pause 0, --port equal
 * to --tls-port, a pool ring that wraps int, ...), and a pidfile that does
 * not hold exactly one positive pid_t. Every refusal must name the flag.
 * Issue 20: units as nginx and Redis users write them (5m, 500ms, 10mb),
 * integers without a blank or '+', "did you mean", no path in messages,
 * a warning for a flag the chosen model does not read, --cert alone. */
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

/* Between capture_begin and capture_end, stderr goes into err_text. */
static FILE *capture_file;
static int capture_saved;

static void capture_begin(void)
{
	fflush(stderr);
	capture_file = tmpfile();
	capture_saved = dup(STDERR_FILENO);
	if (!capture_file || capture_saved < 0 || dup2(fileno(capture_file), STDERR_FILENO) < 0)
		abort();
}

static void capture_end(void)
{
	fflush(stderr);
	dup2(capture_saved, STDERR_FILENO);
	close(capture_saved);
	rewind(capture_file);
	size_t n = fread(err_text, 1, sizeof(err_text) - 1, capture_file);
	err_text[n] = '\0';
	fclose(capture_file);
}

/* config_parse(argv0, args...) with stderr captured into err_text. */
static int parse_as(const char *argv0, struct config *cfg, const char *const *args)
{
	char *argv[32] = {(char *)argv0};
	int argc = 1;
	for (; args[argc - 1]; argc++)
		argv[argc] = (char *)args[argc - 1];
	argv[argc] = NULL;
	capture_begin();
	int rc = config_parse(cfg, argc, argv);
	capture_end();
	return rc;
}

static int parse(struct config *cfg, const char *const *args)
{
	return parse_as("weft", cfg, args);
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
		/* units, any case (nginx's ms s m h d) */
		{"300s", 0, 300000}, {"5m", 0, 300000}, {"1h", 0, 3600000}, {"500ms", 0, 500}, {"1.5m", 0, 90000},
		{"2d", 0, 172800000}, {"7d", 0, 604800000}, {"1.5S", 0, 1500}, {"5M", 0, 300000}, {"500MS", 0, 500},
		{"0s", 0, 0}, {"1.5ms", 0, 1}, {".5h", 0, 1800000}, {"10080m", 0, 604800000}, {"168h", 0, 604800000},
		/* what strtod takes and a duration must not */
		{"nan", -EINVAL, 0}, {"NaN", -EINVAL, 0}, {"inf", -EINVAL, 0}, {"infinity", -EINVAL, 0},
		{"0x10", -EINVAL, 0}, {"1e3", -EINVAL, 0}, {"-1", -EINVAL, 0}, {"+1", -EINVAL, 0},
		{" 1", -EINVAL, 0}, {"1 ", -EINVAL, 0}, {"", -EINVAL, 0}, {".", -EINVAL, 0}, {"1.2.3", -EINVAL, 0},
		{"1x", -EINVAL, 0}, {"1 s", -EINVAL, 0}, {"s", -EINVAL, 0}, {"1sec", -EINVAL, 0}, {"1mss", -EINVAL, 0},
		{"-5m", -EINVAL, 0}, {"+5m", -EINVAL, 0}, {" 5m", -EINVAL, 0}, {"5m ", -EINVAL, 0}, {"nanms", -EINVAL, 0},
		{"1e3s", -EINVAL, 0}, {"0x10s", -EINVAL, 0}, {"1kb", -EINVAL, 0},
		/* out of range: past 7 days (2200000 s was INT_MIN ms), or a positive value under 1 ms */
		{"2200000", -ERANGE, 0}, {"604800.001", -ERANGE, 0}, {"604801", -ERANGE, 0},
		{"99999999999999999999999999", -ERANGE, 0}, {"0.0001", -ERANGE, 0},
		{"8d", -ERANGE, 0}, {"169h", -ERANGE, 0}, {"604800001ms", -ERANGE, 0}, {"0.5ms", -ERANGE, 0},
		{"99999999999999999999d", -ERANGE, 0},
		/* below 1 ms is cut, as from "0.0019" */
		{"7.000000000001d", 0, 604800000},
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

static void test_sizes(void)
{
	static const struct {
		const char *text;
		int rc;
		size_t v;
	} cases[] = {
		{"0", 0, 0}, {"1048576", 0, 1048576}, {"64k", 0, 65536}, {"64kb", 0, 65536}, {"64K", 0, 65536},
		{"64KB", 0, 65536}, {"64Kb", 0, 65536}, {"10mb", 0, 10u << 20}, {"10M", 0, 10u << 20},
		{"1g", 0, 1u << 30}, {"1gb", 0, 1u << 30}, {"1GB", 0, 1u << 30}, {"1024gb", 0, CONFIG_SIZE_MAX},
		{"", -EINVAL, 0}, {" 5", -EINVAL, 0}, {"5 ", -EINVAL, 0}, {"+5", -EINVAL, 0}, {"-1", -EINVAL, 0},
		{"0x10", -EINVAL, 0}, {"nan", -EINVAL, 0}, {"5q", -EINVAL, 0}, {"5kbb", -EINVAL, 0}, {"5 kb", -EINVAL, 0},
		{"kb", -EINVAL, 0}, {"1.5m", -EINVAL, 0}, {"5t", -EINVAL, 0}, {"5ms", -EINVAL, 0},
		{"1025g", -ERANGE, 0}, {"1025gb", -ERANGE, 0}, {"99999999999999999999999", -ERANGE, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t v = 7;
		int rc = config_parse_size(cases[i].text, &v);
		CHECK(rc == cases[i].rc);
		CHECK(rc < 0 ? v == 7 : v == cases[i].v);
		if (rc != cases[i].rc || (rc == 0 && v != cases[i].v))
			fprintf(stderr, "  size '%s': rc %d v %zu\n", cases[i].text, rc, v);
	}
	struct config cfg;
	CHECK(parse(&cfg, ARGS("--max-body", "10mb", "--max-line", "64KB", "--idle-timeout", "5m",
	                       "--drain-timeout", "500ms")) == 0);
	CHECK(cfg.max_body == 10u << 20 && cfg.max_line == 65536 && cfg.idle_timeout_ms == 300000 &&
	      cfg.drain_timeout_ms == 500);
}

/* Integer flags: digits, or '-' and digits; strtol alone took " 5" and "+5". */
static void test_ints(void)
{
	CHECK(refused(ARGS("--port", "+5"), ARGS("--port", "decimal integer")));
	CHECK(refused(ARGS("--port", " 5"), ARGS("--port")));
	CHECK(refused(ARGS("--max-conns", "\t5"), ARGS("--max-conns")));
	CHECK(refused(ARGS("--port", "5 "), ARGS("--port")));
	CHECK(refused(ARGS("--port", "-"), ARGS("--port")));
	CHECK(refused(ARGS("--port", "0x10"), ARGS("--port")));
	CHECK(refused(ARGS("--workers", "99999999999999999999"), ARGS("--workers")));
	struct config cfg;
	CHECK(parse(&cfg, ARGS("--tls-port", "-1", "--port", "0")) == 0 && cfg.tls_port == -1 && cfg.port == 0);
}

/* Messages: "weft", never argv[0]'s path (getopt's own said
 * "/path/to/weft: unrecognized option"), and the flag a typo meant. */
static void test_messages(void)
{
	static const struct {
		const char *arg, *want;
	} cases[] = {
		{"--prot", "did you mean --port?"},          /* swapped letters */
		{"--modle", "did you mean --model?"},
		{"--max-con=5", "max-conns"},                /* getopt takes the unique prefix: not an error */
		{"--idle-timout", "did you mean --idle-timeout?"},
		{"--verison", "did you mean --version?"},
		{"--cert-file", "did you mean --cert?"},     /* an old name with a suffix */
		{"-port", "did you mean --port?"},           /* one dash */
		{"--mod", "did you mean --model or --mode?"}, /* ambiguous prefix */
		{"--xyzzy", "'weft --help' lists every option"},
		{"-x", "unknown option '-x'"},
		{"--daemon=yes", "--daemon takes no value"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config cfg;
		const char *args[] = {cases[i].arg, strchr(cases[i].arg, '=') ? NULL : "5", NULL};
		int rc = parse_as("/some/dir/weft", &cfg, args);
		if (strcmp(cases[i].want, "max-conns") == 0) {
			CHECK(rc == 0 && cfg.max_conns == 5);
			continue;
		}
		CHECK(rc == -EINVAL);
		CHECK(strstr(err_text, cases[i].want) != NULL);
		CHECK(strstr(err_text, "/some/dir") == NULL);
		CHECK(strncmp(err_text, "weft: ", 6) == 0);
		if (rc != -EINVAL || !strstr(err_text, cases[i].want) || strstr(err_text, "/some/dir"))
			fprintf(stderr, "  %s: rc %d, want '%s' in: %s", cases[i].arg, rc, cases[i].want, err_text);
	}
	/* a missing value names the flag and what it takes */
	CHECK(refused(ARGS("--port"), ARGS("--port needs a value")));
}

/* A flag the chosen model does not read is a warning naming the flag and the
 * models that read it; only when given, never for a default. */
static void test_ignored_flags(void)
{
	static const struct {
		const char *model, *flag, *value, *readers;
	} cases[] = {
		{"threads", "--threads", "4", "coro or uring"},
		{"uring", "--poller", "epoll", "--model coro"},
		{"coro", "--workers", "4", "--model pool"},
		{"threads", "--queue", "4", "--model pool"},
		{"coro", "--stack-size", "1m", "threads or pool"},
		{"pool", "--poller", "select", "--model coro"},
		{"pool", "--threads", "2", "coro or uring"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config cfg;
		CHECK(parse(&cfg, ARGS("--model", cases[i].model, cases[i].flag, cases[i].value)) == 0);
		capture_begin();
		int n = config_warn_ignored(&cfg, cases[i].model);
		capture_end();
		CHECK(n == 1);
		CHECK(strstr(err_text, cases[i].flag) && strstr(err_text, cases[i].readers) && strstr(err_text, "warning"));
		if (n != 1 || !strstr(err_text, cases[i].readers))
			fprintf(stderr, "  --model %s %s: %d warnings: %s", cases[i].model, cases[i].flag, n, err_text);
	}
	/* the flags a model reads, and defaults, are not warned about */
	struct config cfg;
	CHECK(parse(&cfg, ARGS("--model", "coro", "--threads", "2", "--poller", "poll")) == 0);
	CHECK(config_warn_ignored(&cfg, "coro") == 0);
	CHECK(parse(&cfg, ARGS("--model", "pool", "--workers", "4", "--queue", "2", "--stack-size", "1m")) == 0);
	CHECK(config_warn_ignored(&cfg, "pool") == 0);
	CHECK(parse(&cfg, ARGS("--model", "threads")) == 0);
	CHECK(config_warn_ignored(&cfg, "threads") == 0);
	CHECK(parse(&cfg, ARGS("--port", "0")) == 0);
	CHECK(config_warn_ignored(&cfg, "uring") == 0);
}

/* The default set-up serves --max-conns: coro over epoll, not select. */
static void test_defaults(void)
{
	struct config cfg;
	CHECK(parse(&cfg, ARGS("--port", "0")) == 0);
	CHECK(strcmp(cfg.model, "coro") == 0 && strcmp(cfg.poller, "epoll") == 0);
}

/* docs/TLS.md: --key may be left out when the --cert file holds the key. */
static void test_cert_key(void)
{
	struct config cfg;
	CHECK(parse(&cfg, ARGS("--tls-port", "0", "--cert", "both.pem")) == 0);
	CHECK(cfg.cert && !cfg.key);
	CHECK(refused(ARGS("--tls-port", "0", "--key", "key.pem"), ARGS("--key", "--cert")));
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
	test_sizes();
	test_ints();
	test_messages();
	test_ignored_flags();
	test_defaults();
	test_cert_key();
	test_pid();
	return check_done();
}
