/* Key files for the keyed encodings (jat-hmac, jat-sealed).
 *
 * Format: a text file, one key per line, written as hex digits (at least 64,
 * an even number: 32 bytes or more), optionally preceded by a key id of 1-16
 * characters from [A-Za-z0-9._-] and a single space.  '#' starts a comment,
 * on a line of its own or after a key; blank lines are ignored.  The first
 * key signs (or seals); every key verifies (or opens), so a new key can be
 * rolled out as a second line before it is moved to the first.
 *
 * The file must not be accessible to group or others (mode & 077 == 0).
 * Key bytes are wiped when freed and never appear in error messages.
 *
 * Internal to our plugins; not part of the plugin ABI. */
#ifndef PLUGIN_COMMON_KEY_FILE_H
#define PLUGIN_COMMON_KEY_FILE_H

#include <stddef.h>
#include <stdint.h>

#include <client-proxy/plugin.h>

#define PC_KEY_MIN_BYTES 32
#define PC_KEY_ID_MAX 16

typedef struct pc_key {
    char id[PC_KEY_ID_MAX + 1]; /**< "" when the line had no id */
    uint8_t *bytes;             /**< owned by the key ring, wiped on free */
    size_t len;                 /**< >= PC_KEY_MIN_BYTES */
} pc_key_t;

typedef struct pc_key_ring {
    pc_key_t *keys; /**< keys[0] signs; all verify */
    size_t count;   /**< >= 1 */
} pc_key_ring_t;

/** Reads the key file at PATH.  On success returns a new key ring, which the
 *  caller frees with pc_key_ring_free().  On failure returns NULL and stores
 *  in *ERROR a new string (free with g_free()) that names PATH and, for a
 *  malformed line, its number. */
pc_key_ring_t *pc_key_ring_load(const char *path, char **error);

/** Builds a ring of one key from LEN bytes copied from BYTES.  Never fails
 *  (GLib aborts on out of memory).  Free with pc_key_ring_free(). */
pc_key_ring_t *pc_key_ring_from_bytes(const void *bytes, size_t len);

/** Wipes and frees RING.  NULL is allowed. */
void pc_key_ring_free(pc_key_ring_t *ring);

/** The keys of a plugin: loaded from the file named by its "key_file"
 *  option, or, when that is absent, one key of RANDOM_LEN bytes from the
 *  host's CSPRNG, with a warning that tokens will not survive a restart.
 *  Returns CP_OK and stores the ring in *RING (pc_key_ring_free() it);
 *  CP_EINVAL after api->config_error() on key_file; CP_EFAIL after log(). */
int pc_key_ring_from_config(const cp_host_api_t *api, cp_host_t *host, size_t random_len,
                            pc_key_ring_t **ring);

#endif
