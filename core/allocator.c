/* glibc's malloc tuned for bursts of requests: see allocator.h. */
#include "allocator.h"

#include <malloc.h>

bool allocator_tune(void)
{
    /* Setting either turns off glibc's own raising of both, so both are
     * set. */
    return mallopt(M_MMAP_THRESHOLD, ALLOCATOR_MMAP_THRESHOLD) == 1 &&
           mallopt(M_TRIM_THRESHOLD, ALLOCATOR_TRIM_THRESHOLD) == 1;
}

/* Requests were in flight since the last release. */
static bool busy_since_release;

bool allocator_release_when_idle(size_t in_flight)
{
    if (in_flight > 0) {
        busy_since_release = true;
        return false;
    }
    if (!busy_since_release)
        return false;
    busy_since_release = false;
    malloc_trim(0);
    return true;
}
