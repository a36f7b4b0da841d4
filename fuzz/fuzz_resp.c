/* fuzz_resp.c - libFuzzer target for the RESP2 parser and pub/sub commands
 * (common/protocols/resp.c) over a real exchange (see chat_harness.h for the oracles).
 * The input is a client's byte stream after a leading '*' (detection would
 * not pick RESP otherwise). The replies must be identical whether the bytes
 * arrive at once or cut at a split point taken from the input. */
#include "chat_harness.h"

static void same_bytes(const char *a, size_t an, const char *b, size_t bn)
{
	if (an != bn || (an && memcmp(a, b, an) != 0))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_one(&proto_resp, size && data[0] == '*' ? "" : "*", data, size, same_bytes);
	return 0;
}
