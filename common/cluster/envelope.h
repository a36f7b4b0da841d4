/* envelope.h - what a weft node puts in front of a message it sends to the
 * engine, so that other nodes can tell who sent it and what they missed:
 *
 *     weft1 <origin> <boot> <gen> <seq> <nick>[ <stamp> <tag>]\n<data>
 *
 * origin: 16 lower-case hex digits, the node's random 64-bit id; boot: the
 * node's start time (unix ms); gen: the generation of the sender's sequence
 * table (it starts again when the table is full); seq: this message's number
 * among the origin's messages on this channel, from 1; nick: the sender's
 * chat nick (the line protocol shows it). The data follows the newline
 * unchanged (binary-safe). A text head keeps it readable in redis-cli MONITOR.
 * A marker has the nick "!" (no chat nick can be) and no data: it says
 * "my last message on this channel was seq", so that a loss at the end of a
 * stream is counted too (bridge.c: markers).
 * stamp and tag: with --cluster-key-file only, both or neither. stamp: the
 * sender's clock when it sent it, unix microseconds (decimal, no leading
 * zero), increasing per node (replay.h: stamp_next), so that a
 * receiver with no mark for the stream can still tell an old replay
 * (replay.h); tag: 64 lower-case hex digits, HMAC-SHA256 of the head before
 * it (through the stamp), the channel and the data (sign.h).
 *
 * Decoding is for hostile input: anyone with access to the engine can
 * PUBLISH on a weft channel, so every field is checked and anything else is
 * refused (the bridge counts and drops it). */
#ifndef WEFT_CLUSTER_ENVELOPE_H
#define WEFT_CLUSTER_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ENVELOPE_NICK_MAX 32 /* CHAT_NICK_MAX: a nick travels as chat_valid_nick() allows it */
#define ENVELOPE_TAG_BYTES 32 /* HMAC-SHA256 */
/* Room for the longest head, "weft1 " + 16 + 3 x (" " + 20 digits) + " " + nick
 * + " " + 20 digits of stamp + " " + 64 hex digits of tag + "\n", and a NUL. */
#define ENVELOPE_HEAD_MAX (6 + 16 + 63 + 1 + ENVELOPE_NICK_MAX + 21 + 1 + 2 * ENVELOPE_TAG_BYTES + 1 + 1)

struct envelope {
	uint64_t origin, boot, gen, seq;
	char nick[ENVELOPE_NICK_MAX + 1];
	const char *data; /* decode: points into the input */
	size_t n;
	uint64_t stamp;   /* keyed: the sender's clock (unix us); 0: none (no key) */
	size_t signed_n;  /* decode: bytes of the head the tag covers (through the stamp) */
	bool tagged;      /* decode: a stamp and a tag were there */
	bool marker;      /* a "last seq" marker (nick "!", no data): seq is the
	                     origin's last on this channel; nothing to deliver */
	unsigned char tag[ENVELOPE_TAG_BYTES];
};

/* Write e's head (not the data) to out, which holds ENVELOPE_HEAD_MAX bytes;
 * returns its length. A nick that is not a valid one is sent as "-". The
 * head ends with the nick, or the stamp if e->stamp is not 0, and no
 * newline: the caller signs what is there (envelope_finish) or not
 * (envelope_finish with NULL, and no stamp). */
size_t envelope_head(char *out, const struct envelope *e);
/* Append " <tag in hex>" (tag not NULL) and the newline; returns the new length. */
size_t envelope_finish(char *out, size_t n, const unsigned char *tag);
/* Parse [p, p+n). 0, or -EBADMSG for anything that is not exactly an
 * envelope (a stamp without a tag, a tag without a stamp too). */
int envelope_decode(const char *p, size_t n, struct envelope *e);
/* v in decimal at out (up to 20 bytes, no NUL); returns the length. Once per
 * PUBLISH for the envelope and the command's lengths: snprintf there was over
 * half of a publishing node's user time per message. */
size_t envelope_dec(char *out, uint64_t v);

#endif
