/* beacon.c - when a node sends a clock beacon, and what one looks like. */
#include "beacon.h"

#include <errno.h>
#include <string.h>

bool beacon_due(struct beacon *bc, uint64_t now)
{
	if (++bc->ticks < BEACON_TICKS)
		return false;
	bc->ticks = 0;
	/* A stamp ahead of the clock (stamp_next catching up after a step
	 * back) is as recent as can be. */
	return bc->active && (bc->active >= now || now - bc->active <= BEACON_ACTIVE_US);
}

size_t beacon_make(struct beacon *bc, char *out, const struct sign_key *k, uint64_t origin, uint64_t boot,
                   uint64_t stamp)
{
	struct envelope env = {.origin = origin, .boot = boot, .seq = bc->n + 1, .stamp = stamp};
	unsigned char tag[ENVELOPE_TAG_BYTES];
	size_t hn = envelope_head(out, &env); /* nick "-": an empty one is not valid */
	if (sign_tag(k, out, hn, BEACON_NAME, BEACON_LEN, "", 0, tag) < 0)
		return 0;
	bc->n++;
	return envelope_finish(out, hn, tag);
}

enum beacon_check beacon_check(const struct sign_key *k, const char *p, size_t n, struct envelope *env)
{
	if (envelope_decode(p, n, env) < 0 || env->marker || env->n)
		return BEACON_MALFORMED;
	int rc = env->tagged ? sign_check(k, p, env->signed_n, BEACON_NAME, BEACON_LEN, env->data, env->n, env->tag)
	                     : -EBADMSG;
	return rc == 0 ? BEACON_OK : rc == -ENOMEM ? BEACON_NO_MEMORY : BEACON_BAD_TAG;
}
