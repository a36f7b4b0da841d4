/* test_drain_oom.c - owner_drain() when memory runs short (issue 9).
 *
 * owner_drain takes every queued subscriber under the owner lock into an
 * array it grows with realloc. When that realloc failed, it used to stop with
 * the rest still queued and `signalled` false: publishers wake the owner only
 * when `signalled` is false *and* they post, so subscribers that got no more
 * mail were never delivered. Now the first subscribers need no allocation and
 * a failed growth wakes the owner again, so the next drain delivers the rest.
 * The subscribers are plain counters (subscriber.h): the mailbox alone.
 *
 * Linked with -Wl,--wrap=realloc (tests/unit/CMakeLists.txt): the next
 * realloc fails when fail_next_realloc is set, so the out-of-memory path
 * runs for real. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "msg.h"
#include "owner.h"

void *__real_realloc(void *p, size_t n);
void *__wrap_realloc(void *p, size_t n);

static int fail_next_realloc;

void *__wrap_realloc(void *p, size_t n)
{
	if (fail_next_realloc) {
		fail_next_realloc = 0;
		return NULL;
	}
	return __real_realloc(p, n);
}

static int wakes;
static void count_wake(struct owner *o) { (void)o, wakes++; }
static void no_ready(struct subscriber *sub, void *arg) { (void)sub, (void)arg; }

/* A subscriber that only counts what it was given (and never sends it). */
struct counter {
	struct subscriber sub;
	size_t got;
};

static void count_deliver(struct subscriber *sub, struct msg *m) { ((struct counter *)sub)->got += m->len; }
static size_t count_pending(const struct subscriber *sub) { return ((const struct counter *)sub)->got; }
static void count_slow(struct subscriber *sub, bool soft)
{
	(void)sub, (void)soft;
	CHECK(!"slow");
}
static const struct subscriber_ops counter_ops = {count_deliver, count_pending, count_slow};

#define NSESS 100 /* more than any drain takes without allocating */

static void test_failed_growth_delivers_later(void)
{
	struct owner o;
	owner_init(&o, count_wake, NULL);
	o.limits = (struct subscriber_limits){.hard = 32 << 20, .soft = 8 << 20, .soft_ms = 60000};
	static struct counter s[NSESS];
	struct msg *m = msg_from("hello\n", 6);
	CHECK(m != NULL);
	for (int i = 0; i < NSESS; i++) {
		s[i].sub = (struct subscriber){.owner = &o, .ops = &counter_ops};
		CHECK(owner_post(&s[i].sub, m) == 0);
	}
	CHECK(wakes == 1); /* one wake for the whole batch */

	fail_next_realloc = 1; /* the drain's first growth fails */
	owner_drain(&o, no_ready, NULL);
	CHECK(fail_next_realloc == 0); /* the drain did need to grow, and failed */
	int delivered = 0;
	for (int i = 0; i < NSESS; i++)
		delivered += s[i].got == 6;
	CHECK(delivered > 0 && delivered < NSESS);
	/* Nothing more is posted: only the owner's own wake can bring it back. */
	CHECK(wakes == 2);
	if (wakes == 2) {
		owner_drain(&o, no_ready, NULL);
		delivered = 0;
		for (int i = 0; i < NSESS; i++)
			delivered += s[i].got == 6;
	}
	CHECK(delivered == NSESS);
	if (delivered != NSESS)
		fprintf(stderr, "  %d of %d subscribers got their mail\n", delivered, NSESS);
	CHECK(wakes == 2); /* an ordinary drain wakes nobody */

	for (int i = 0; i < NSESS; i++)
		owner_forget(&s[i].sub);
	msg_unref(m);
	owner_destroy(&o);
}

int main(void)
{
	test_failed_growth_delivers_later();
	return check_done();
}
