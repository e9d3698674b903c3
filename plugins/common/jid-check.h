/* Checks on JIDs read back from untrusted tokens.
 * Internal to our plugins; not part of the plugin ABI. */
#ifndef PLUGIN_COMMON_JID_CHECK_H
#define PLUGIN_COMMON_JID_CHECK_H

#include <stdbool.h>
#include <stddef.h>

/** True when S[0..LEN) is non-empty, valid UTF-8 and holds no control
 *  character (Unicode Cc: U+0000..U+001F, U+007F..U+009F), none of which
 *  any part of a JID may contain (RFC 7622, PRECIS). */
bool pc_jid_bytes_plausible(const char *s, size_t len);

#endif
