/* test_core.c - buf, msg, outbox, protocol detection and the /metrics sources. */
#include <errno.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>
#include <sys/uio.h>

#include "buf.h"
#include "check.h"
#include "config.h"
#include "metrics_src.h"
#include "msg.h"
#include "outbox.h"
#include "proto.h"
#include "server.h"

static void test_buf(void)
{
	struct buf b = {0};
	char big[10000];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)i;
	CHECK(buf_append(&b, big, 100) == 0);
	buf_consume(&b, 60);
	CHECK(buf_used(&b) == 40 && memcmp(buf_head(&b), big + 60, 40) == 0);
	CHECK(buf_append(&b, big, sizeof(big)) == 0);
	CHECK(buf_used(&b) == 40 + sizeof(big));
	CHECK(memcmp(buf_head(&b) + 40, big, sizeof(big)) == 0);
	buf_consume(&b, buf_used(&b));
	CHECK(buf_used(&b) == 0);
	buf_free(&b);
}

/* Drain an outbox through iovecs in odd-sized steps and compare with want. */
static int drain_equals(struct outbox *o, const char *want, size_t n)
{
	size_t got = 0, step = 1;
	while (!outbox_empty(o)) {
		struct iovec iov[4];
		int k = outbox_iov(o, iov, 4);
		if (k <= 0)
			return 0;
		size_t take = step < iov[0].iov_len ? step : iov[0].iov_len;
		if (got + take > n || memcmp(iov[0].iov_base, want + got, take) != 0)
			return 0;
		got += take;
		outbox_consume(o, take);
		step = step * 3 + 1;
	}
	return got == n;
}

static void test_outbox(void)
{
	long live0 = msg_live_count();
	struct outbox o = {0};
	char data[50000];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)(i * 7);
	struct msg *shared = msg_from("SHARED", 6);
	CHECK(outbox_append(&o, data, 10) == 0);
	CHECK(outbox_append_msg(&o, shared) == 0);
	CHECK(outbox_append(&o, data + 10, sizeof(data) - 10) == 0);
	CHECK(atomic_load(&shared->refs) == 2);
	CHECK(outbox_bytes(&o) == sizeof(data) + 6);
	char want[sizeof(data) + 6];
	memcpy(want, data, 10);
	memcpy(want + 10, "SHARED", 6);
	memcpy(want + 16, data + 10, sizeof(data) - 10);
	CHECK(drain_equals(&o, want, sizeof(want)));
	CHECK(atomic_load(&shared->refs) == 1);
	/* the shared msg is never appended to */
	CHECK(outbox_append_msg(&o, shared) == 0);
	CHECK(outbox_append(&o, "x", 1) == 0);
	CHECK(shared->len == 6);
	CHECK(drain_equals(&o, "SHAREDx", 7));
	for (int i = 0; i < 100; i++)
		CHECK(outbox_append_msg(&o, shared) == 0); /* grows the ring */
	CHECK(o.cap >= 100);
	outbox_free(&o);
	CHECK(o.cap == 0 && o.count == 0 && outbox_empty(&o));

	/* One queued msg lives in the struct; a drained ring is freed, so an
	 * idle outbox holds no heap. */
	CHECK(outbox_append(&o, "ab", 2) == 0);
	CHECK(o.count == 1 && o.cap == 0);
	CHECK(outbox_append(&o, "cd", 2) == 0); /* appended into the same msg */
	CHECK(o.count == 1 && o.cap == 0);
	CHECK(outbox_append_msg(&o, shared) == 0);
	CHECK(o.count == 2 && o.cap > 0);
	CHECK(outbox_append(&o, "ef", 2) == 0);
	CHECK(drain_equals(&o, "abcdSHAREDef", 12));
	CHECK(o.count == 0 && o.cap == 0);

	/* The tail of a partly sent head still grows; iov starts past what was sent. */
	CHECK(outbox_append(&o, "hello", 5) == 0);
	outbox_consume(&o, 2);
	CHECK(outbox_append(&o, " world", 6) == 0);
	CHECK(o.count == 1);
	CHECK(drain_equals(&o, "llo world", 9));

	/* Dropping unstarted msgs keeps a partly sent head whole and nothing after it. */
	CHECK(outbox_append(&o, "12345", 5) == 0);
	CHECK(outbox_append_msg(&o, shared) == 0);
	CHECK(outbox_append_msg(&o, shared) == 0);
	outbox_consume(&o, 1);
	outbox_drop_unstarted(&o);
	CHECK(o.count == 1 && outbox_bytes(&o) == 4);
	CHECK(atomic_load(&shared->refs) == 1);
	CHECK(outbox_append(&o, "!", 1) == 0); /* the kept head is no longer appended to */
	CHECK(drain_equals(&o, "2345!", 5));
	/* ... and with nothing started, everything goes. */
	CHECK(outbox_append_msg(&o, shared) == 0);
	CHECK(outbox_append(&o, "xyz", 3) == 0);
	outbox_drop_unstarted(&o);
	CHECK(o.count == 0 && o.cap == 0 && outbox_empty(&o));

	/* A send in flight pins what it was given: a drop keeps those msgs (and
	 * their references) even when none of their bytes has been sent yet. */
	struct iovec iov[4];
	CHECK(outbox_append_msg(&o, shared) == 0);
	CHECK(outbox_append(&o, "abc", 3) == 0);
	CHECK(outbox_append_msg(&o, shared) == 0);
	CHECK(outbox_iov(&o, iov, 2) == 2);
	outbox_pin(&o, 6 + 3);
	CHECK(o.pinned == 2);
	outbox_drop_unstarted(&o);
	CHECK(o.count == 2 && outbox_bytes(&o) == 9);
	CHECK(atomic_load(&shared->refs) == 2);
	CHECK(memcmp(iov[0].iov_base, "SHARED", 6) == 0 && memcmp(iov[1].iov_base, "abc", 3) == 0);
	outbox_unpin(&o);
	outbox_consume(&o, 4); /* a short send: the rest was never sent */
	outbox_drop_unstarted(&o); /* keeps only the partly sent msg */
	CHECK(o.count == 1 && outbox_bytes(&o) == 2 && o.pinned == 0);
	CHECK(drain_equals(&o, "ED", 2));
	/* A pin covering part of a msg pins all of it; consuming unpins as it pops. */
	CHECK(outbox_append_msg(&o, shared) == 0);
	CHECK(outbox_append_msg(&o, shared) == 0);
	CHECK(outbox_append_msg(&o, shared) == 0);
	outbox_pin(&o, 7);
	CHECK(o.pinned == 2);
	outbox_consume(&o, 6);
	CHECK(o.pinned == 1);
	outbox_drop_unstarted(&o);
	CHECK(o.count == 1 && outbox_bytes(&o) == 6);
	outbox_unpin(&o);
	outbox_free(&o);
	msg_unref(shared);
	CHECK(msg_live_count() == live0);
}

/* The chunk cache: a thread keeps 32 freed chunks unless it asked for more
 * (a worker must not keep megabytes after one burst). Run on fresh threads. */
static void *cache_burst(void *arg)
{
	int limit = (int)(long)arg;
	if (limit)
		msg_cache_limit(limit);
	struct msg *m[300];
	for (int i = 0; i < 300; i++)
		m[i] = msg_new(4096);
	for (int i = 0; i < 300; i++)
		msg_unref(m[i]);
	return (void *)(long)msg_cached_here();
}

static int burst_on_thread(int limit)
{
	pthread_t th;
	void *r = NULL;
	pthread_create(&th, NULL, cache_burst, (void *)(long)limit);
	pthread_join(th, &r);
	return (int)(long)r;
}

static void test_msg_cache(void)
{
	long live0 = msg_live_count();
	CHECK(burst_on_thread(0) == 32);
	CHECK(burst_on_thread(1024) == 300);
	CHECK(burst_on_thread(100) == 100);
	CHECK(msg_live_count() == live0);
}

static void test_detect(void)
{
	struct config cfg;
	char *argv[] = {"weft", NULL};
	CHECK(config_parse(&cfg, 1, argv) == 0);
	struct server srv = {.cfg = &cfg};
	const char *req = "GET /x HTTP/1.1\r\nHost: a\r\n\r\n";
	/* every prefix of a request line is undecided, the full line is HTTP */
	size_t line = strlen("GET /x HTTP/1.1\r\n");
	for (size_t i = 1; i < line; i++)
		CHECK(proto_detect(&srv, req, i) == NULL);
	CHECK(proto_detect(&srv, req, line) == &proto_http);
	CHECK(proto_detect(&srv, "hello\n", 6) == &proto_echo);
	CHECK(proto_detect(&srv, "GETX", 4) == &proto_echo);
	CHECK(proto_detect(&srv, "GET  ", 5) == &proto_echo);
	CHECK(proto_detect(&srv, "GET / FTP", 9) == &proto_echo);
	CHECK(proto_detect(&srv, "POST /a HTTP/1.0\n", 17) == &proto_http);
	CHECK(proto_detect(&srv, "\x00\x01", 2) == &proto_echo);
	cfg.no_http = true;
	CHECK(proto_detect(&srv, req, line) == &proto_echo);
	cfg.no_http = false;
	cfg.mode = MODE_CHAT;
	CHECK(proto_detect(&srv, "*1\r\n", 4) == &proto_resp);
	CHECK(proto_detect(&srv, "join x\n", 7) == &proto_chat_line);
	CHECK(proto_detect(&srv, req, line) == &proto_http);
	/* a long target without a space is not a request line forever */
	cfg.max_head = 64;
	char longt[200] = "GET /";
	memset(longt + 5, 'a', sizeof(longt) - 5);
	CHECK(proto_detect(&srv, longt, sizeof(longt)) == &proto_chat_line);
}

static void test_config(void)
{
	struct config cfg;
	size_t sz;
	CHECK(config_parse_size("64k", &sz) == 0 && sz == 65536);
	CHECK(config_parse_size("2m", &sz) == 0 && sz == 2u << 20);
	CHECK(config_parse_size("-1", &sz) < 0);
	CHECK(config_parse_size("12q", &sz) < 0);
	char *a1[] = {"weft", "--model", "pool", "--workers", "4", "--idle-timeout", "1.5", NULL};
	CHECK(config_parse(&cfg, 7, a1) == 0);
	CHECK(cfg.workers == 4 && cfg.idle_timeout_ms == 1500 && strcmp(cfg.model, "pool") == 0);
	char *a2[] = {"weft", "--port", "70000", NULL};
	CHECK(config_parse(&cfg, 3, a2) < 0);
	char *a3[] = {"weft", "--daemon", NULL};
	CHECK(config_parse(&cfg, 2, a3) < 0); /* needs --pidfile */
}

static int src_a(void *arg, struct buf *out, const char *model)
{
	(void)arg;
	return metrics_appendf(out, "# HELP a_total a\n# TYPE a_total counter\na_total{model=\"%s\"} 1\n", model);
}

static int src_fail(void *arg, struct buf *out, const char *model)
{
	(void)out;
	(void)model;
	return -*(int *)arg;
}

/* metrics_src.h: sources render in order; the first scrape seals the table;
 * teardown clears it; a failing source fails the scrape. */
static void test_metrics_sources(void)
{
	struct buf b = {0};
	CHECK(metrics_register("a", src_a, NULL) == 0);
	CHECK(metrics_sources_render(&b, "m") == 0);
	CHECK(buf_used(&b) && strstr(buf_head(&b), "a_total{model=\"m\"} 1\n") != NULL);
	CHECK(metrics_register("late", src_a, NULL) == -EBUSY); /* after a scrape: refused, not racing */
	metrics_sources_clear();
	buf_free(&b);
	CHECK(metrics_sources_render(&b, "m") == 0 && buf_used(&b) == 0);
	metrics_sources_clear();
	int err = EIO;
	for (int i = 0; i < METRICS_SRC_MAX; i++)
		CHECK(metrics_register("x", i == 1 ? src_fail : src_a, &err) == 0);
	CHECK(metrics_register("one too many", src_a, NULL) == -ENOSPC);
	CHECK(metrics_sources_render(&b, "m") == -EIO);
	metrics_sources_clear();
	buf_free(&b);
	/* the --cluster counters are not in the core range */
	b = (struct buf){0};
	CHECK(metrics_counters(&b, "m", 0, STAT__CLUSTER_FIRST) == 0);
	CHECK(buf_used(&b) && strstr(buf_head(&b), "weft_cluster_") == NULL);
	CHECK(strstr(buf_head(&b), "weft_connections_closed_total{model=\"m\",reason=\"idle\"} ") != NULL);
	buf_free(&b);
}

int main(void)
{
	test_buf();
	test_outbox();
	test_msg_cache();
	test_detect();
	test_config();
	test_metrics_sources();
	return check_done();
}
