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

/* How many requests had been admitted at the last release, and at the
 * last call. */
static uint64_t admitted_at_release, admitted_at_last_look;

bool allocator_release_when_idle(size_t in_flight, uint64_t admitted_total)
{
    bool quiet = in_flight == 0 && admitted_total == admitted_at_last_look;
    admitted_at_last_look = admitted_total;
    if (!quiet || admitted_total == admitted_at_release)
        return false;
    admitted_at_release = admitted_total;
    malloc_trim(0);
    return true;
}
