/* Choosing the best-scoring candidate, ties broken fairly.
 * Internal to our plugins; not part of the plugin ABI. */
#ifndef PLUGIN_COMMON_PICK_BEST_H
#define PLUGIN_COMMON_PICK_BEST_H

#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#include <client-proxy/plugin.h>

/** How good a candidate is: the higher, the better. */
typedef int64_t (*pc_score_fn)(const cp_resource_t *resource);

/** Returns the index of a candidate among CANDIDATES[0..N) (N >= 1; only
 *  the first G_MAXINT32 are considered) with the highest SCORE, chosen
 *  uniformly among those that share it with one draw from RAND (none when
 *  only one has it).  Returns CP_EDECLINE, without drawing, when N is 0 or
 *  the highest score is below FLOOR. */
int pc_pick_best(GRand *rand, const cp_resource_t *const *candidates, size_t n,
                 pc_score_fn score, int64_t floor);

#endif
