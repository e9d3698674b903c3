/* Deadlines carried inside stateless tokens (jat-hmac, jat-sealed): four
 * bytes, big-endian, unsigned seconds since an epoch.  The first token
 * formats count from the Unix epoch (until 2106-02-07); the second from
 * 2026-01-01, which takes the same four bytes to 2162-02-07.
 *
 * Why whole seconds in four bytes, and not a coarser unit in three: the
 * deadline is [proxy] address_lifetime after now, which may be as short as
 * request_timeout (seconds), and an address should die when its lifetime is
 * over.  Three bytes would reach fifty years only in units of 95 s or more,
 * stretching a short lifetime by minutes, to save 1.33 characters of base64.
 *
 * Internal to our plugins; not part of the plugin ABI. */
#ifndef PLUGIN_COMMON_EXPIRY_H
#define PLUGIN_COMMON_EXPIRY_H

#include <stdbool.h>
#include <stdint.h>

#define PC_EXPIRY_LEN 4

/** Epochs, in seconds since the Unix epoch. */
#define PC_EXPIRY_EPOCH_UNIX INT64_C(0)
#define PC_EXPIRY_EPOCH_2026 INT64_C(1767225600) /* 2026-01-01T00:00:00Z */

/** EXPIRES (seconds since the Unix epoch) as seconds since EPOCH (>= 0),
 *  clamped into four unsigned bytes: earlier than asked is allowed
 *  ("need not decode after"), and one before EPOCH is already past. */
uint32_t pc_expiry_clamp(int64_t expires, int64_t epoch);

/** Writes EXPIRES big-endian into OUT[0..4). */
void pc_expiry_put(uint8_t out[PC_EXPIRY_LEN], uint32_t expires);

/** Reads a big-endian deadline from IN[0..4). */
uint32_t pc_expiry_get(const uint8_t in[PC_EXPIRY_LEN]);

/** True when the current time is past EXPIRES seconds after EPOCH. */
bool pc_expiry_passed(uint32_t expires, int64_t epoch);

#endif
