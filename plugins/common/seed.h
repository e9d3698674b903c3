/* The "seed" option of the dispatch strategies.
 * Internal to our plugins; not part of the plugin ABI. */
#ifndef PLUGIN_COMMON_SEED_H
#define PLUGIN_COMMON_SEED_H

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

#include <client-proxy/plugin.h>

/** Reads the optional "seed" option of the plugin's group: a decimal
 *  unsigned integer of at most MAX (UINT32_MAX or UINT64_MAX, say).  Returns
 *  CP_OK and sets *SEED and *GIVEN (0 and false when the option is absent),
 *  or reports the value through api->config_error() and returns CP_EINVAL. */
int pc_read_seed(const cp_host_api_t *api, cp_host_t *host, uint64_t max, uint64_t *seed,
                 bool *given);

/** A Mersenne Twister for fair, reproducible choices: seeded with the
 *  32-bit "seed" option when it is given, else from the host's CSPRNG.
 *  Returns CP_OK and stores a new GRand (g_rand_free() it) in *RAND;
 *  CP_EINVAL after config_error(), or CP_EFAIL after log(). */
int pc_rand_from_config(const cp_host_api_t *api, cp_host_t *host, GRand **rand);

#endif
