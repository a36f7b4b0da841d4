/* fuzz_rscan.c - libFuzzer target for the cluster link's RESP pre-scanner
 * (common/cluster/rscan.c) against hiredis's reader, as the link runs them:
 * the input split where its first byte says, each piece scanned first and fed
 * to hiredis only if the scanner let it through.
 *
 * Oracles: whatever hiredis builds from bytes the scanner accepted respects
 * the subscriber connection's limits (an array of at most 4 elements, no
 * nested array, bulk strings of at most MAXBULK bytes), and hiredis never
 * holds more parsed elements than that at once. A refusal is fine: the link
 * drops the connection. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "rscan.h"

#define MAXELEMS 4
#define MAXBULK 64

static void check(const redisReply *r, int depth)
{
	if (r->type == REDIS_REPLY_STRING && r->len > MAXBULK)
		abort();
	if (r->type != REDIS_REPLY_ARRAY)
		return;
	if (depth > 0 || r->elements > MAXELEMS)
		abort();
	for (size_t i = 0; i < r->elements; i++)
		check(r->element[i], depth + 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t step = (size_t)data[0] % 17 + 1;
	data++;
	size--;
	struct rscan s;
	rscan_init(&s, MAXELEMS, MAXBULK, 64);
	redisReader *rd = redisReaderCreate();
	if (!rd)
		return 0;
	for (size_t at = 0; at < size; at += step) {
		size_t n = size - at < step ? size - at : step;
		const char *why;
		if (rscan_feed(&s, (const char *)data + at, n, &why) < 0)
			break; /* the link drops the connection here */
		if (redisReaderFeed(rd, (const char *)data + at, n) != REDIS_OK)
			break;
		void *reply = NULL;
		int rc;
		while ((rc = redisReaderGetReply(rd, &reply)) == REDIS_OK && reply) {
			check(reply, 0);
			freeReplyObject(reply);
			reply = NULL;
		}
		if (rc != REDIS_OK)
			break; /* a protocol error hiredis saw: dropped too */
		/* An incomplete reply: hiredis holds at most the open array's elements. */
		if (rd->ridx > 1 || (rd->ridx >= 0 && rd->rstack[0].elements > MAXELEMS))
			abort();
	}
	redisReaderFree(rd);
	return 0;
}
