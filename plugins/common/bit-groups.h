/* Bytes written as groups of 5 or 6 bits, one character per group: the
 * part that base32.c and base64url.c share.  Each of them brings its
 * alphabet and its length rules.
 *
 * Internal to our plugins; not part of the plugin ABI. */
#ifndef PLUGIN_COMMON_BIT_GROUPS_H
#define PLUGIN_COMMON_BIT_GROUPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Writes IN[0..LEN) as characters of ALPHABET (2^BITS of them, BITS at
 *  most 7), the last group padded with zero bits, then a NUL, into OUT,
 *  which must have room for ceil(LEN * 8 / BITS) + 1 bytes. */
void pc_bit_groups_encode(const char *alphabet, unsigned bits, const uint8_t *in, size_t len,
                          char *out);

/** Decodes IN[0..IN_LEN), whose characters VALUE maps to BITS-bit groups
 *  (BITS at most 7; VALUE gives -1 for a character outside the alphabet),
 *  into OUT and stores the
 *  number of bytes written in *OUT_LEN.  OUT must have room for
 *  IN_LEN * BITS / 8 bytes.  Returns false when a character is outside the
 *  alphabet or a bit after the last whole byte is set: two texts would
 *  then stand for the same bytes.  It takes any length: a length that
 *  leaves a whole character over (no byte string encodes to it) is for
 *  the caller to refuse, as base32.c and base64url.c do. */
bool pc_bit_groups_decode(int (*value)(unsigned char c), unsigned bits, const char *in,
                          size_t in_len, uint8_t *out, size_t *out_len);

#endif
