/* Deadlines carried inside stateless tokens (jat-hmac, jat-sealed): four
 * bytes, big-endian, unsigned seconds since the Unix epoch (until 2106).
 * Internal to our plugins; not part of the plugin ABI. */
#ifndef PLUGIN_COMMON_EXPIRY_H
#define PLUGIN_COMMON_EXPIRY_H

#include <stdbool.h>
#include <stdint.h>

#define PC_EXPIRY_LEN 4

/** EXPIRES (a request's deadline) clamped into four unsigned bytes: earlier
 *  than asked is allowed ("need not be accepted after"), and a negative one
 *  is already past. */
uint32_t pc_expiry_clamp(int64_t expires);

/** Writes EXPIRES big-endian into OUT[0..4). */
void pc_expiry_put(uint8_t out[PC_EXPIRY_LEN], uint32_t expires);

/** Reads a big-endian deadline from IN[0..4). */
uint32_t pc_expiry_get(const uint8_t in[PC_EXPIRY_LEN]);

/** True when the current time is past EXPIRES. */
bool pc_expiry_passed(uint32_t expires);

#endif
