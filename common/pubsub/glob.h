/* glob.h - Redis glob patterns (PSUBSCRIBE), matched in time linear in the
 * name.
 *
 * The rules are those of Redis' stringmatchlen() as of 7.0, case-sensitive,
 * every byte significant (a pattern or name may hold any byte, NUL included):
 *
 *   *        any run of bytes, empty included; a run of '*' is one '*'
 *   ?        any one byte
 *   [abc]    one byte of the set; [^abc] one byte not in it
 *   [a-z]    a range; reversed ends are swapped ([z-a] is [a-z]); the ends
 *            compare as C chars do on x86-64 Redis, i.e. signed: [a-\xff]
 *            is \xff..a (the bytes \xff, \x00..a), not a..\xff
 *   \x       the byte x, also inside a class ([\]] is ']'); a '\' that is
 *            the last byte of the pattern (or of an unterminated class) is a
 *            literal backslash
 *   [        a class without its ']' runs to the end of the pattern ("[ab"
 *            is [ab]); "[]" is the empty class (matches nothing), "[^]" any
 *            byte; a range end may be ']' ("[a-]b" is the range ]..a plus b,
 *            still unterminated)
 *
 * and, as in Redis, the empty name matches only the empty pattern (not
 * even "*"). Redis also gives up on a pattern that nests more than 1000
 * '*' while matching; a weft name (at most CHAT_NAME_MAX = 200 bytes)
 * cannot reach that, so it is not imitated.
 *
 * Cost: every token but '*' takes one byte, so a pattern is segments
 * separated by stars, and glob rules let each segment take its leftmost
 * place: the first segment is compared at the start of the name, each
 * middle one is searched left to right from where the previous one ended,
 * and the last one is compared at the end; nothing is tried twice. A
 * search in a window of at most 256 bytes compares directly; a longer one
 * runs a bit-parallel Shift-And over the segment's tokens (one 64-bit word
 * for up to 64 tokens, four for up to 256). For a pattern of pn bytes
 * whose middle segments have at most m <= 256 tokens, a match of a name of
 * sn bytes costs at most
 *
 *     O(256 * pn  +  sn * ceil(m / 64))
 *
 * simple steps: linear in sn, never backtracking. For weft's names (pn <=
 * CHAT_NAME_MAX = 200, so m <= 200) that is at most about 51k steps of set
 * up plus, per byte of the name, ~11 instructions (one word) or ~28 (four
 * words): a 1 MB name against a 200-byte pattern takes a few ms. (A middle
 * segment longer than 256 tokens, possible only in a pattern longer than
 * weft allows, is searched with its first 256 tokens and the rest compared
 * at each candidate: O(sn * m) at worst.) Nothing is allocated; the
 * Shift-And table (8 KiB at most) is on the stack. */
#ifndef WEFT_GLOB_H
#define WEFT_GLOB_H

#include <stdbool.h>
#include <stddef.h>

/* Does the name [s, s+sn) match the pattern [pat, pat+pn)? */
bool glob_match(const char *pat, size_t pn, const char *s, size_t sn);

#endif
