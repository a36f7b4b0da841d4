/* sign.h - envelope authentication with a shared secret (--cluster-key-file).
 *
 * Every node of a cluster given the same key tags each envelope with
 * HMAC-SHA256(key, head up to the stamp || channel length (8 bytes, LE) ||
 * channel || data): origin, boot, generation, sequence, nick, stamp, channel
 * and payload are all covered, so nobody without the key can forge or alter
 * one. A replay of a genuine envelope still verifies: the bridge's sequence
 * marks drop it as a duplicate, or at a stream's first sight its stamp
 * (replay.h; see bridge.c: track).
 *
 * The key's HMAC is prepared once, at load; tags may be made and checked on
 * any number of threads at once (sign.c). */
#ifndef WEFT_CLUSTER_SIGN_H
#define WEFT_CLUSTER_SIGN_H

#include <stdbool.h>
#include <stddef.h>

#include "envelope.h"

#define SIGN_KEY_MIN 32  /* bytes of secret at least */
#define SIGN_KEY_MAX 4096

struct sign_key;

/* Read the key file: at least SIGN_KEY_MIN bytes (a final newline is not
 * part of it), not readable or writable by group or others (like ssh with a
 * private key). 0 and *out, or -errno with *why set (a static string or
 * strerror). */
int sign_key_load(const char *path, struct sign_key **out, const char **why);
void sign_key_free(struct sign_key *k);
/* The tag of one envelope. 0 or -ENOMEM/-EPROTO. */
int sign_tag(const struct sign_key *k, const char *head, size_t hn, const char *ch, size_t cn, const char *data,
             size_t n, unsigned char tag[ENVELOPE_TAG_BYTES]);
/* Whether tag is the right one (in constant time): 0 if it is, -EBADMSG if
 * not, -ENOMEM if it could not be checked (the right tag could not be made:
 * OpenSSL short of memory), which says nothing of the envelope. */
int sign_check(const struct sign_key *k, const char *head, size_t hn, const char *ch, size_t cn, const char *data,
               size_t n, const unsigned char tag[ENVELOPE_TAG_BYTES]);

#endif
