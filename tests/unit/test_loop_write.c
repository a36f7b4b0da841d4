/* test_loop_write.c - the loop runtime's write order (common/loop/write.c,
 * loop.h "connections and the write order"): which connections the
 * before-sleep pass hands the model's write hook, and in what order.
 *
 * Real sessions in chat mode on a real exchange, their mailbox the loop's
 * own and bound to this thread (as a loop's is): a RESP PUBLISH handed over
 * with loop_input() really publishes, its subscriber really gets the
 * delivery through the drain. The model is the test's: a connection is a
 * struct loop_conn and its session, and its write hook records the order
 * and sends nothing (the order is what is tested, not the bytes). */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "config.h"
#include "exchange.h"
#include "loop.h"
#include "owner.h"
#include "server.h"
#include "session.h"

struct tconn {
	struct loop_conn lc; /* first, as in a model's connection */
	struct session *s;
};

#define NCONN 6
static struct tconn conns[NCONN];
static int order[64], norder;
static int relist = -1; /* the write hook lists this connection once, then forgets it */

static struct config cfg;
static struct server srv;
static struct loop l;

static struct loop_conn *t_conn(struct loop *lp, uint32_t id)
{
	(void)lp;
	return id < NCONN && conns[id].s ? &conns[id].lc : NULL;
}

static void t_write(struct loop *lp, struct loop_conn *lc)
{
	struct tconn *c = (struct tconn *)lc;
	CHECK(!loop_listed(lc)); /* off the list before the hook runs */
	if (norder < 64)
		order[norder++] = (int)lc->id;
	if (relist >= 0) {
		int r = relist;
		relist = -1;
		loop_pending(lp, &conns[r].lc);
	}
	(void)c;
}

static const struct loop_model model = {.name = "test", .conn = t_conn, .write = t_write};

static void wake(struct owner *o) { (void)o; }

static void input(int i, const char *cmd) { loop_input(&l, &conns[i].lc, conns[i].s, cmd, strlen(cmd)); }

/* The pass wrote exactly want[0..n) in that order. */
static bool wrote(const int *want, int n)
{
	bool ok = norder == n && memcmp(order, want, (size_t)n * sizeof(*want)) == 0;
	if (!ok) {
		fprintf(stderr, "wrote:");
		for (int i = 0; i < norder; i++)
			fprintf(stderr, " %d", order[i]);
		fprintf(stderr, "\n");
	}
	norder = 0;
	return ok;
}

#define SUB "*2\r\n$9\r\nSUBSCRIBE\r\n$4\r\nnews\r\n"
#define PUB "*3\r\n$7\r\nPUBLISH\r\n$4\r\nnews\r\n$2\r\nhi\r\n"
#define PING "*1\r\n$4\r\nPING\r\n"

int main(void)
{
	char *argv[] = {"weft", "--model", "test", "--mode", "chat", NULL};
	if (config_parse(&cfg, 5, argv) != 0)
		return 2;
	srv.cfg = &cfg;
	srv.ex = exchange_new();
	l = (struct loop){.m = &model, .srv = &srv, .wake_fd = -1};
	owner_init(&l.owner, wake, &l);
	l.owner.limits = server_outbox_limits(&srv);
	owner_bind(&l.owner);
	l.posts = owner_posts_here();
	CHECK(loop_conns_reserve(&l, NCONN) == 0 && l.pending_cap >= NCONN);
	for (int i = 0; i < NCONN; i++) {
		conns[i].lc.id = (uint32_t)i;
		conns[i].s = session_new(&srv, &l.owner, false);
		if (!conns[i].s)
			return 2;
		conns[i].s->sub.loop_data = &conns[i];
	}

	/* Connections 1 and 2 subscribe: a plain turn, written in listing order. */
	input(2, SUB);
	input(1, SUB);
	loop_before_sleep(&l);
	CHECK(wrote((int[]){2, 1}, 2));
	CHECK(exchange_subscribers(srv.ex, "news", 4) == 2);

	/* One turn: 0 publishes (listed first), 3 pings, then the drain lists
	 * the subscribers. The publisher is written last, after everything its
	 * publish gave output to; the others keep their listing order. */
	input(0, PUB);
	CHECK(conns[0].lc.flags & LOOP_CONN_PUBLISHED);
	input(3, PING);
	CHECK(!(conns[3].lc.flags & LOOP_CONN_PUBLISHED));
	loop_before_sleep(&l);
	CHECK(wrote((int[]){3, 2, 1, 0}, 4));
	CHECK(conns[0].lc.flags == 0 && !l.published && l.npending == 0);

	/* Without a publish the flag is not left behind: the next turn with 0
	 * is a plain one. */
	input(0, PING);
	input(4, PING);
	loop_before_sleep(&l);
	CHECK(wrote((int[]){0, 4}, 2));

	/* Listed twice: written once. */
	loop_pending(&l, &conns[5].lc);
	loop_pending(&l, &conns[4].lc);
	loop_pending(&l, &conns[5].lc);
	CHECK(l.npending == 2);
	loop_before_sleep(&l);
	CHECK(wrote((int[]){5, 4}, 2));

	/* A connection going away while listed is taken off; the rest keep
	 * their order. Unlisting one that is not listed changes nothing. */
	loop_pending(&l, &conns[3].lc);
	loop_pending(&l, &conns[4].lc);
	loop_pending(&l, &conns[5].lc);
	loop_unlist(&l, &conns[4].lc);
	loop_unlist(&l, &conns[1].lc);
	CHECK(l.npending == 2 && !loop_listed(&conns[4].lc));
	loop_before_sleep(&l);
	CHECK(wrote((int[]){3, 5}, 2));

	/* Two publishers and a subscriber listed between them: the subscribers
	 * first, then both publishers in their order. */
	input(5, PUB);
	loop_pending(&l, &conns[3].lc);
	input(0, PUB);
	loop_before_sleep(&l);
	CHECK(wrote((int[]){3, 2, 1, 5, 0}, 5));

	/* A write that lists another connection: reached in the same pass. */
	relist = 4;
	loop_pending(&l, &conns[3].lc);
	loop_before_sleep(&l);
	CHECK(wrote((int[]){3, 4}, 2) && l.npending == 0);

	/* Ids are bounded by what the record holds. */
	CHECK(loop_conns_reserve(&l, LOOP_CONN_ID_MAX + 2u) < 0);

	for (int i = 0; i < NCONN; i++)
		session_free(conns[i].s);
	loop_drain(&l);
	owner_destroy(&l.owner);
	free(l.pending);
	exchange_free(srv.ex);
	return check_done();
}
