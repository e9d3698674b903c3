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
