/* Checks on JIDs read back from untrusted tokens.
 * Internal to our plugins; not part of the plugin ABI. */
#ifndef PLUGIN_COMMON_JID_CHECK_H
#define PLUGIN_COMMON_JID_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** True when S[0..LEN) is non-empty, valid UTF-8 and holds no control
 *  character (Unicode Cc: U+0000..U+001F, U+007F..U+009F), none of which
 *  any part of a JID may contain (RFC 7622, PRECIS). */
bool pc_jid_bytes_plausible(const char *s, size_t len);

/** Writes BYTES[0..LEN), the JID read back from a token that our own key
 *  authenticated, into JID (JID_SIZE bytes) with a NUL.  Returns CP_OK;
 *  CP_EBADTOKEN when it is empty or holds a NUL (which would cut it short
 *  silently; we never issue one); or CP_ETOOLONG when it does not fit, which
 *  means the host broke its promise of CP_JID_MAX + 1 bytes. */
int pc_jid_write(const uint8_t *bytes, size_t len, char *jid, size_t jid_size);

#endif
