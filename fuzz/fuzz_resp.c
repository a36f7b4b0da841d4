/* fuzz_resp.c - libFuzzer target for the RESP2 parser and pub/sub commands
 * (common/protocols/resp.c) over a real exchange (see chat_harness.h for the oracles).
 * The input is a client's byte stream after a leading '*' (detection would
 * not pick RESP otherwise). The replies must be identical whether the bytes
 * arrive at once or cut at a split point taken from the input, unless the
 * input names INFO or CLIENT: their replies carry live values (counters,
 * uptime, connection ids) that differ between the two runs by design, so
 * such inputs are still run (sanitizers, the watcher, leaks) but their
 * replies are not compared. */
#include "chat_harness.h"

static void same_bytes(const char *a, size_t an, const char *b, size_t bn)
{
	if (an != bn || (an && memcmp(a, b, an) != 0))
		abort();
}

static void any_bytes(const char *a, size_t an, const char *b, size_t bn)
{
	(void)a, (void)an, (void)b, (void)bn;
}

/* Does the input hold word, in any case? */
static bool names(const uint8_t *data, size_t size, const char *word)
{
	size_t w = strlen(word);
	for (size_t i = 0; i + w <= size; i++)
		if (strncasecmp((const char *)data + i, word, w) == 0)
			return true;
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	bool live = names(data, size, "info") || names(data, size, "client");
	fuzz_one(&proto_resp, size && data[0] == '*' ? "" : "*", data, size, live ? any_bytes : same_bytes);
	return 0;
}
