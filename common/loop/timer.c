/* timer.c - the runtime's timer heap. See timer.h. */
#include "timer.h"

#include <errno.h>
#include <stdlib.h>

static void put(struct loop_timers *ts, int i, struct loop_timer *t)
{
	ts->h[i] = t;
	t->idx = i;
}

static void sift_up(struct loop_timers *ts, int i)
{
	struct loop_timer *t = ts->h[i];
	while (i > 0) {
		int up = (i - 1) / 2;
		if (!loop_time_before(t->at, ts->h[up]->at))
			break;
		put(ts, i, ts->h[up]);
		i = up;
	}
	put(ts, i, t);
}

static void sift_down(struct loop_timers *ts, int i)
{
	struct loop_timer *t = ts->h[i];
	for (;;) {
		int c = 2 * i + 1;
		if (c >= ts->len)
			break;
		if (c + 1 < ts->len && loop_time_before(ts->h[c + 1]->at, ts->h[c]->at))
			c++;
		if (!loop_time_before(ts->h[c]->at, t->at))
			break;
		put(ts, i, ts->h[c]);
		i = c;
	}
	put(ts, i, t);
}

int loop_timers_reserve(struct loop_timers *ts, int n)
{
	if (n <= ts->cap)
		return 0;
	struct loop_timer **h = realloc(ts->h, (size_t)n * sizeof(*h));
	if (!h)
		return -ENOMEM;
	ts->h = h;
	ts->cap = n;
	return 0;
}

int loop_timers_arm(struct loop_timers *ts, struct loop_timer *t, uint32_t at)
{
	if (t->idx >= 0) {
		bool sooner = loop_time_before(at, t->at);
		t->at = at;
		if (sooner)
			sift_up(ts, t->idx);
		else
			sift_down(ts, t->idx);
		return 0;
	}
	if (ts->len == ts->cap && loop_timers_reserve(ts, ts->cap ? ts->cap * 2 : 64) < 0)
		return -ENOMEM;
	t->at = at;
	put(ts, ts->len++, t);
	sift_up(ts, t->idx);
	return 0;
}

void loop_timers_cancel(struct loop_timers *ts, struct loop_timer *t)
{
	int i = t->idx;
	if (i < 0)
		return;
	t->idx = -1;
	struct loop_timer *last = ts->h[--ts->len];
	if (last == t)
		return;
	put(ts, i, last);
	sift_up(ts, i);
	sift_down(ts, last->idx);
}

struct loop_timer *loop_timers_pop_due(struct loop_timers *ts, uint32_t now)
{
	if (!ts->len || loop_time_before(now, ts->h[0]->at))
		return NULL;
	struct loop_timer *t = ts->h[0];
	loop_timers_cancel(ts, t);
	return t;
}

int loop_timers_timeout(const struct loop_timers *ts, uint32_t now, int max)
{
	if (!ts->len)
		return max;
	int32_t d = (int32_t)(ts->h[0]->at - now);
	return d <= 0 ? 0 : d < max ? (int)d : max;
}

void loop_timers_fini(struct loop_timers *ts)
{
	free(ts->h);
	ts->h = NULL;
	ts->len = ts->cap = 0;
}
