/* Base64url (RFC 4648 section 5: A-Z a-z 0-9 '-' '_'), without padding.
 *
 * Six bits per character where base32 has five, so a token is 4/3 of its
 * bytes rather than 8/5.  Every character is printable ASCII and valid in a
 * JID resourcepart, which is case-sensitive and maps no ASCII character to
 * another (RFC 7622 OpaqueString; RFC 6122 Resourceprep for older servers,
 * whose NFKC and mapping table leave ASCII alone), and none is a space or
 * anything else that software trims from either end: a server passes the
 * text on exactly as written, whatever it begins or ends with.
 *
 * Decoding is strict so that each byte string has exactly one text: it
 * refuses '=', the standard alphabet's '+' and '/', every other character
 * outside the alphabet, lengths no byte string encodes to (1 mod 4), and
 * non-zero bits after the last whole byte.  GLib's g_base64_decode() would
 * do none of this (it skips characters outside its alphabet and knows no
 * '-' or '_'), so this is a small codec of our own, sharing bit-groups.c with base32.c;
 * its tests check it against GLib's encoder.
 *
 * Internal to our plugins; not part of the plugin ABI. */
#ifndef PLUGIN_COMMON_BASE64URL_H
#define PLUGIN_COMMON_BASE64URL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Characters (without the NUL) that LEN bytes encode to: ceil(LEN * 4 / 3). */
size_t pc_base64url_encoded_len(size_t len);

/** The most bytes whose encoding has at most CHARS characters. */
size_t pc_base64url_decoded_max(size_t chars);

/** Writes the encoding of IN[0..LEN) and a NUL into OUT, which must have
 *  at least pc_base64url_encoded_len(LEN) + 1 bytes. */
void pc_base64url_encode(const uint8_t *in, size_t len, char *out);

/** Decodes IN[0..IN_LEN) into OUT (OUT_SIZE bytes) and stores the number of
 *  bytes written in *OUT_LEN.  Returns false, with OUT in an unspecified
 *  state, when IN is not a canonical encoding or does not fit OUT. */
bool pc_base64url_decode(const char *in, size_t in_len, uint8_t *out, size_t out_size,
                         size_t *out_len);

#endif
