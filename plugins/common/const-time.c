#include "const-time.h"

#include <stdint.h>

bool pc_const_time_equal(const void *a, const void *b, size_t len)
{
    /* volatile keeps the compiler from turning the loop into an early exit. */
    const volatile uint8_t *x = a;
    const volatile uint8_t *y = b;
    volatile uint8_t diff = 0;

    for (size_t i = 0; i < len; i++)
        diff |= x[i] ^ y[i];
    return diff == 0;
}
