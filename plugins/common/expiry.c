/* Token expiries as seconds from a recent epoch: see expiry.h. */
#include "expiry.h"

#include <glib.h>

uint32_t pc_expiry_clamp(int64_t expires, int64_t epoch)
{
    if (expires <= epoch)
        return 0;
    /* expires > epoch >= 0: the difference cannot overflow. */
    return expires - epoch > UINT32_MAX ? UINT32_MAX : (uint32_t)(expires - epoch);
}

void pc_expiry_put(uint8_t out[PC_EXPIRY_LEN], uint32_t expires)
{
    out[0] = (uint8_t)(expires >> 24);
    out[1] = (uint8_t)(expires >> 16);
    out[2] = (uint8_t)(expires >> 8);
    out[3] = (uint8_t)expires;
}

uint32_t pc_expiry_get(const uint8_t in[PC_EXPIRY_LEN])
{
    return (uint32_t)in[0] << 24 | (uint32_t)in[1] << 16 | (uint32_t)in[2] << 8 | in[3];
}

bool pc_expiry_passed(uint32_t expires, int64_t epoch)
{
    return g_get_real_time() / G_USEC_PER_SEC > epoch + (int64_t)expires;
}
