/* mark.c - sequence marks: gaps, duplicates, and forged numbers.
 *
 * Per stream: the mark and a window of the last SEQ_WIN sequence numbers.
 * Redis delivers one publisher's messages in order, so genuinely a stream
 * only moves forward, by one or (after a loss) by a jump.
 *
 * Without a key anyone on the engine can forge an envelope, so nothing a
 * single envelope says may make a genuine one look like a duplicate:
 *   - a number within the window ahead moves the mark (the ones skipped are
 *     gaps); a number within the window behind that was not seen is taken
 *     (late: only a forgery moves the mark past genuine messages, counted as
 *     a resync); one that was seen is a duplicate only if its payload's
 *     fingerprint matches too (a forged same-number message is delivered,
 *     the genuine one as well);
 *   - a number further away either way moves nothing: it is delivered, and
 *     only when the next message of the stream follows it (seq + 1) is the
 *     jump taken as real (a link down for a while, or a restart), its gap
 *     counted. A forged far number is thus one delivered forgery.
 * With a key nobody can forge one, only replay: anything not ahead of the
 * mark is a duplicate (even a number never seen: Redis keeps a publisher's
 * order, so a genuine one cannot arrive late), anything ahead moves it (gaps
 * counted). A fresh SUBSCRIBE keeps the mark (fresh): what was published
 * before it is still a replay, and the first number ahead restarts the
 * window without counting what came while we were not subscribed.
 *
 * Markers (envelope.h) move the mark without being delivered: within the
 * window (or with a key) at once, counting what was missed up to them;
 * further (without a key) only once confirmed, like a far message. */

#include "mark.h"

#include <string.h>

#include "hash.h"
#include "stats.h"

static uint16_t fingerprint(const struct envelope *env)
{
	uint64_t h = hash_bytes(env->data, env->n) ^ hash_bytes(env->nick, strlen(env->nick));
	return (uint16_t)(h ^ h >> 16 ^ h >> 32 ^ h >> 48);
}

static void mark_reset(struct mark *m, uint64_t seq, uint64_t gen, uint16_t fp)
{
	*m = (struct mark){.used = true, .last = seq, .gen = gen, .bits = 1};
	m->fp[seq % SEQ_WIN] = fp;
}

/* Move the mark ahead to seq (d = seq - last <= SEQ_WIN). */
static void mark_advance(struct mark *m, uint64_t seq, uint16_t fp)
{
	uint64_t d = seq - m->last;
	m->bits = (d >= 64 ? 0 : m->bits << d) | 1;
	m->last = seq;
	m->fp[seq % SEQ_WIN] = fp;
	if (m->cand <= seq)
		m->cand = 0;
}

/* A far number is confirmed (the stream went on from it): count the gap up
 * to it and restart the window there. */
static void mark_confirm(struct mark *m)
{
	uint64_t c = m->cand, missing = c > m->last ? c - m->last - (m->cand_marker ? 0 : 1) : 0;
	if (c > m->last && missing < SEQ_GAP_MAX)
		stat_add(STAT_cl_gaps, missing);
	else
		stat_inc(STAT_cl_resyncs);
	bool seen = !m->cand_marker;
	mark_reset(m, c, m->gen, m->cand_fp);
	if (!seen)
		m->bits = 0;
}

/* false: a duplicate, drop it. Counts gaps. */
static bool mark_take(struct mark *m, const struct envelope *env, bool keyed)
{
	uint64_t seq = env->seq;
	uint16_t fp = fingerprint(env);
	if (seq > m->last && seq - m->last <= (keyed ? SEQ_GAP_MAX : SEQ_WIN)) {
		if (seq - m->last > 1)
			stat_add(STAT_cl_gaps, seq - m->last - 1);
		if (seq - m->last > SEQ_WIN) { /* keyed: a long gap; start the window afresh */
			m->last = seq - 1;
			m->bits = 0;
		}
		mark_advance(m, seq, fp);
		return true;
	}
	if (keyed && seq <= m->last) { /* Redis keeps a publisher's order: behind the mark is a replay */
		stat_inc(STAT_cl_duplicates);
		return false;
	}
	if (seq <= m->last && m->last - seq < SEQ_WIN) {
		uint64_t bit = 1ull << (m->last - seq);
		if ((m->bits & bit) && (keyed || m->fp[seq % SEQ_WIN] == fp)) {
			stat_inc(STAT_cl_duplicates);
			return false;
		}
		if (!keyed)
			stat_inc(STAT_cl_resyncs); /* a forgery on either side of this one */
		if (!(m->bits & bit)) {
			m->bits |= bit;
			m->fp[seq % SEQ_WIN] = fp;
		}
		return true;
	}
	if (keyed) {
		stat_inc(STAT_cl_resyncs); /* more than 2^32 ahead: a restart, not a gap */
		mark_reset(m, seq, m->gen, fp);
		return true;
	}
	if (m->cand && seq == m->cand + 1) { /* the far jump is confirmed */
		mark_confirm(m);
		mark_advance(m, seq, fp);
		return true;
	}
	m->cand = seq;
	m->cand_fp = fp;
	m->cand_marker = false;
	return true;
}

bool mark_arrive(struct mark *m, const struct envelope *env, bool keyed)
{
	if (keyed && m->used && m->fresh) { /* kept across a fresh SUBSCRIBE, so what came before is a replay */
		if (env->gen < m->gen || (env->gen == m->gen && env->seq <= m->last)) {
			if (!env->marker)
				stat_inc(STAT_cl_duplicates);
			return false;
		}
		mark_reset(m, env->seq, env->gen, env->marker ? 0 : fingerprint(env)); /* what came while away: no gap */
		if (env->marker)
			m->bits = 0;
		return !env->marker;
	}
	if (env->marker) { /* nothing to deliver: only count what the mark has not seen */
		if (m->used && keyed && env->gen < m->gen) {
			/* a replay from an older generation: nothing to count */
		} else if (!m->used || m->gen != env->gen) {
			mark_reset(m, env->seq, env->gen, 0);
			m->bits = 0; /* a marker is not a message: its number was not seen */
		} else if (env->seq > m->last && (keyed || env->seq - m->last <= SEQ_WIN)) {
			uint64_t d = env->seq - m->last;
			stat_add(STAT_cl_gaps, d);
			m->last = env->seq;
			m->bits = d >= 64 ? 0 : m->bits << d;
			if (m->cand <= m->last)
				m->cand = 0;
		} else if (!keyed && env->seq > m->last) { /* far ahead: as a far message, it counts once confirmed */
			if (m->cand == env->seq) {
				mark_confirm(m);
			} else {
				m->cand = env->seq;
				m->cand_fp = 0;
				m->cand_marker = true;
			}
		}
		return false;
	}
	if (!m->used || m->gen != env->gen) { /* first sight, or a new generation */
		if (m->used && keyed && env->gen < m->gen) {
			stat_inc(STAT_cl_duplicates); /* a replay from an older generation */
			return false;
		}
		mark_reset(m, env->seq, env->gen, fingerprint(env));
		return true;
	}
	return mark_take(m, env, keyed);
}

bool mark_ahead(const struct mark *m, const struct envelope *env)
{
	return !m->used || env->gen > m->gen || (env->gen == m->gen && env->seq > m->last);
}
