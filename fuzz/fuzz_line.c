/* fuzz_line.c - libFuzzer target for the netcat chat line protocol
 * (common/protocols/chat_line.c) over a real exchange (see chat_harness.h for the
 * oracles). Whole or split, the same lines come back: deliveries of one's own
 * messages go through the mailbox and may interleave differently with the
 * replies, so the lines are compared as sorted sets, and each must end in LF. */
#include "chat_harness.h"

static int cmp_line(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The LF-terminated lines of [p, p+n), sorted; aborts on a missing LF. */
static char **lines(const char *p, size_t n, size_t *count)
{
	char **v = NULL;
	*count = 0;
	for (size_t i = 0; i < n;) {
		const char *nl = memchr(p + i, '\n', n - i);
		if (!nl)
			abort();
		v = realloc(v, (*count + 1) * sizeof(*v));
		v[(*count)++] = strndup(p + i, (size_t)(nl - p) - i);
		i = (size_t)(nl - p) + 1;
	}
	if (*count)
		qsort(v, *count, sizeof(*v), cmp_line);
	return v;
}

static void same_lines(const char *a, size_t an, const char *b, size_t bn)
{
	size_t na, nb;
	char **la = lines(a, an, &na), **lb = lines(b, bn, &nb);
	if (na != nb)
		abort();
	for (size_t i = 0; i < na; i++) {
		if (strcmp(la[i], lb[i]) != 0)
			abort();
		free(la[i]);
		free(lb[i]);
	}
	free(la);
	free(lb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_one(&proto_chat_line, "", data, size, same_lines);
	return 0;
}
