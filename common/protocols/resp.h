/* resp.h - what resp.c (the RESP2 parser and pub/sub commands) shares with
 * resp_intro.c (PUBSUB, CLIENT, INFO): a parsed command and the reply
 * writers. Only the connection's owner thread calls these. */
#ifndef WEFT_RESP_H
#define WEFT_RESP_H

#include <stdbool.h>
#include <stddef.h>

struct session;

struct resp_arg {
	size_t off, len;
};

/* A parsed command, read in place: argument i is base[v[i].off ...]. */
struct resp_argv {
	const char *base;
	const struct resp_arg *v;
	int c;
};

static inline const char *resp_arg_p(const struct resp_argv *a, int i) { return a->base + a->v[i].off; }
static inline size_t resp_arg_n(const struct resp_argv *a, int i) { return a->v[i].len; }
/* Is argument i the word (ASCII case-insensitive)? */
bool resp_is(const struct resp_argv *a, int i, const char *word);

void resp_put_bulk(struct session *s, const char *p, size_t n);
void resp_put_int(struct session *s, long long v);
/* "-<text>\r\n"; CR and LF inside become spaces, as Redis does. */
void resp_put_err(struct session *s, const char *text);
/* Redis' error for a command RESP2 refuses while subscribed; name is its
 * full name ("publish", "pubsub|numpat"). */
void resp_not_in_context(struct session *s, const char *name);

/* resp_intro.c; resp.c has checked the command's own arity. */
void resp_pubsub(struct session *s, const struct resp_argv *a);
void resp_client(struct session *s, const struct resp_argv *a);
void resp_info(struct session *s, const struct resp_argv *a);

#endif
