/* beacon.c - when a node sends a clock beacon, and what one looks like. */
#include "beacon.h"

#include <errno.h>
#include <string.h>

bool beacon_active(const struct beacon *bc, uint64_t now)
{
	/* A stamp ahead of the clock (stamp_next catching up after a step
	 * back) is as recent as can be. */
	return bc->active && (bc->active >= now || now - bc->active <= BEACON_ACTIVE_US);
}

bool beacon_due(struct beacon *bc, uint64_t now)
{
	if (++bc->ticks < BEACON_TICKS)
		return false;
	bc->ticks = 0;
	return beacon_active(bc, now);
}

static void put_hex(char *out, uint64_t v)
{
	for (int i = CLOCK_NONCE_HEX - 1; i >= 0; i--, v >>= 4)
		out[i] = "0123456789abcdef"[v & 15];
}

/* 16 lower-case hex digits (what put_hex writes, nothing else). */
static bool get_hex(const char *p, uint64_t *v)
{
	uint64_t x = 0;
	for (int i = 0; i < CLOCK_NONCE_HEX; i++) {
		char c = p[i];
		if (c >= '0' && c <= '9')
			x = x << 4 | (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			x = x << 4 | (uint64_t)(c - 'a' + 10);
		else
			return false;
	}
	*v = x;
	return true;
}

size_t beacon_make_clock(struct beacon *bc, char *out, const struct sign_key *k, uint64_t origin, uint64_t boot,
                         uint64_t stamp, const struct beacon_clock *ck)
{
	struct envelope env = {.origin = origin, .boot = boot, .seq = bc->n + 1, .stamp = stamp};
	unsigned char tag[ENVELOPE_TAG_BYTES];
	char data[CLOCK_REQ_MAX];
	size_t dn = 0;
	if (ck && ck->kind == BEACON_REQUEST) {
		data[0] = '?';
		put_hex(data + 1, ck->nonce);
		dn = CLOCK_REQ_LEN;
		for (unsigned i = 0; i < ck->targets && i < CLOCK_TARGETS; i++, dn += CLOCK_NONCE_HEX)
			put_hex(data + dn, ck->target[i]);
	} else if (ck && ck->kind == BEACON_ANSWER) {
		data[0] = '!';
		put_hex(data + 1, ck->requester);
		put_hex(data + 1 + CLOCK_NONCE_HEX, ck->nonce);
		dn = CLOCK_ANS_LEN;
	}
	size_t hn = envelope_head(out, &env); /* nick "-": an empty one is not valid */
	if (sign_tag(k, out, hn, BEACON_NAME, BEACON_LEN, data, dn, tag) < 0)
		return 0;
	bc->n++;
	hn = envelope_finish(out, hn, tag);
	memcpy(out + hn, data, dn);
	return hn + dn;
}

size_t beacon_make(struct beacon *bc, char *out, const struct sign_key *k, uint64_t origin, uint64_t boot,
                   uint64_t stamp)
{
	return beacon_make_clock(bc, out, k, origin, boot, stamp, NULL);
}

bool beacon_clock(const struct envelope *env, struct beacon_clock *ck)
{
	*ck = (struct beacon_clock){.kind = BEACON_PLAIN};
	if (!env->n)
		return true;
	if (env->n >= CLOCK_REQ_LEN && env->n <= CLOCK_REQ_MAX && (env->n - CLOCK_REQ_LEN) % CLOCK_NONCE_HEX == 0 &&
	    env->data[0] == '?') {
		ck->kind = BEACON_REQUEST;
		ck->targets = (unsigned)((env->n - CLOCK_REQ_LEN) / CLOCK_NONCE_HEX);
		for (unsigned i = 0; i < ck->targets; i++)
			if (!get_hex(env->data + CLOCK_REQ_LEN + i * CLOCK_NONCE_HEX, &ck->target[i]))
				return false;
		return get_hex(env->data + 1, &ck->nonce);
	}
	if (env->n == CLOCK_ANS_LEN && env->data[0] == '!') {
		ck->kind = BEACON_ANSWER;
		return get_hex(env->data + 1, &ck->requester) && get_hex(env->data + 1 + CLOCK_NONCE_HEX, &ck->nonce);
	}
	return false;
}

bool beacon_asks(const struct beacon_clock *ck, uint64_t origin)
{
	for (unsigned i = 0; i < ck->targets; i++)
		if (ck->target[i] == origin)
			return true;
	return !ck->targets;
}

void beacon_asked(struct beacon *bc, uint64_t nonce, uint64_t mono)
{
	bc->ask[bc->ask_next] = nonce;
	bc->ask_at[bc->ask_next] = mono ? mono : 1;
	bc->ask_next = (bc->ask_next + 1) % CLOCK_ASKS;
}

void beacon_asks_clear(struct beacon *bc)
{
	memset(bc->ask_at, 0, sizeof(bc->ask_at));
	bc->ask_next = 0;
}

bool beacon_asked_for(const struct beacon *bc, uint64_t nonce, uint64_t mono)
{
	for (unsigned i = 0; i < CLOCK_ASKS; i++)
		if (bc->ask_at[i] && bc->ask[i] == nonce && mono >= bc->ask_at[i] && mono - bc->ask_at[i] <= CLOCK_PROOF_MS)
			return true;
	return false;
}

bool beacon_answer_ok(struct beacon *bc, uint64_t requester, uint64_t nonce, bool *dropped)
{
	*dropped = false;
	for (unsigned i = 0; i < CLOCK_SEEN; i++)
		if (bc->seen_req[i] == requester && bc->seen_nonce[i] == nonce)
			return false; /* answered already: a replay of the request */
	if (bc->answers >= CLOCK_ANSWERS) {
		*dropped = true; /* not remembered: the requester asks again at its next tick */
		return false;
	}
	bc->answers++;
	bc->seen_req[bc->seen_next] = requester;
	bc->seen_nonce[bc->seen_next] = nonce;
	bc->seen_next = (bc->seen_next + 1) % CLOCK_SEEN;
	return true;
}

enum beacon_check beacon_check(const struct sign_key *k, const char *p, size_t n, struct envelope *env)
{
	struct beacon_clock ck;
	if (envelope_decode(p, n, env) < 0 || env->marker || !beacon_clock(env, &ck))
		return BEACON_MALFORMED;
	int rc = env->tagged ? sign_check(k, p, env->signed_n, BEACON_NAME, BEACON_LEN, env->data, env->n, env->tag)
	                     : -EBADMSG;
	return rc == 0 ? BEACON_OK : rc == -ENOMEM ? BEACON_NO_MEMORY : BEACON_BAD_TAG;
}
