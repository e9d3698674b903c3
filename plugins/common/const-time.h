/* Comparison whose running time does not depend on the bytes compared.
 * Internal to our plugins; not part of the plugin ABI. */
#ifndef PLUGIN_COMMON_CONST_TIME_H
#define PLUGIN_COMMON_CONST_TIME_H

#include <stdbool.h>
#include <stddef.h>

/** True when A and B (LEN bytes each) are equal.  Reads every byte whatever
 *  the first difference, so it is safe for comparing MACs. */
bool pc_const_time_equal(const void *a, const void *b, size_t len);

#endif
