/* Base32 (RFC 4648 section 6 alphabet), lowercase, without padding.
 *
 * Decoding is strict so that each byte string has exactly one token: it
 * refuses uppercase, '=', characters outside the alphabet, lengths no byte
 * string encodes to, and non-zero bits after the last whole byte.
 *
 * Internal to our plugins; not part of the plugin ABI. */
#ifndef PLUGIN_COMMON_BASE32_H
#define PLUGIN_COMMON_BASE32_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Characters (without the NUL) that LEN bytes encode to. */
size_t pc_base32_encoded_len(size_t len);

/** Writes the encoding of IN[0..LEN) and a NUL into OUT, which must have
 *  at least pc_base32_encoded_len(LEN) + 1 bytes. */
void pc_base32_encode(const uint8_t *in, size_t len, char *out);

/** Decodes IN[0..IN_LEN) into OUT (OUT_SIZE bytes) and stores the number of
 *  bytes written in *OUT_LEN.  Returns false, with OUT in an unspecified
 *  state, when IN is not a canonical encoding or does not fit OUT. */
bool pc_base32_decode(const char *in, size_t in_len, uint8_t *out, size_t out_size,
                      size_t *out_len);

#endif
