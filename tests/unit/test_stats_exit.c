/* test_stats_exit.c - a stat_add() on a thread after its counter block was
 * released (issue 9, "a stat_add after a thread's key destructor").
 *
 * stats.c gives each thread a block and puts it back on a free list from a
 * pthread key destructor. Another key's destructor that runs later on the
 * same exiting thread (glibc runs them in key order) may still count
 * something. It used to write into the released block, which by then may
 * serve a new thread: two threads doing load + store on one counter lose
 * updates. Now such late adds go to a shared block, atomically.
 *
 * The check: thread A counts from a later key's destructor while thread B,
 * started only after A's block was released (so B is handed that block),
 * counts at the same time. Nothing may be lost. Before the fix this fails
 * only when the two really interleave (likely on two cores, not certain on
 * one); after it, the sum is exact whatever the interleaving. */
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>

#include "check.h"
#include "stats.h"

#define ID STAT_cl_resyncs /* any counter nothing else in this test touches */
#define ADDS 2000000

static pthread_key_t late_key;
static sem_t released, b_started;

static void late_destructor(void *p)
{
	(void)p;
	/* stats' key was created first, so its destructor has run: A's block
	 * is on the free list. Let B take it, then count alongside B. */
	sem_post(&released);
	sem_wait(&b_started);
	for (int i = 0; i < ADDS; i++)
		stat_inc(ID);
}

static void *thread_a(void *arg)
{
	(void)arg;
	stat_inc(ID);
	pthread_setspecific(late_key, &late_key); /* any non-NULL value: the destructor runs */
	return NULL;
}

static void *thread_b(void *arg)
{
	(void)arg;
	stat_inc(ID); /* takes the block A released */
	sem_post(&b_started);
	for (int i = 1; i < ADDS; i++)
		stat_inc(ID);
	return NULL;
}

int main(void)
{
	stat_add(STAT_bytes_in, 0); /* creates stats' key before ours */
	uint64_t before = stat_sum(ID);
	sem_init(&released, 0, 0);
	sem_init(&b_started, 0, 0);
	CHECK(pthread_key_create(&late_key, late_destructor) == 0);
	pthread_t a, b;
	CHECK(pthread_create(&a, NULL, thread_a, NULL) == 0);
	sem_wait(&released);
	CHECK(pthread_create(&b, NULL, thread_b, NULL) == 0);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	uint64_t got = stat_sum(ID) - before, want = 1 + 2 * (uint64_t)ADDS;
	CHECK(got == want);
	if (got != want)
		fprintf(stderr, "  %llu of %llu counts kept\n", (unsigned long long)got, (unsigned long long)want);
	/* a later thread still counts into a block of its own */
	CHECK(pthread_create(&b, NULL, thread_b, NULL) == 0);
	pthread_join(b, NULL);
	CHECK(stat_sum(ID) - before == want + ADDS);
	return check_done();
}
