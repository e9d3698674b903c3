/* Bytes as groups of 5 or 6 bits: see bit-groups.h. */
#include "bit-groups.h"

void pc_bit_groups_encode(const char *alphabet, unsigned bits, const uint8_t *in, size_t len,
                          char *out)
{
    const uint32_t mask = (1u << bits) - 1;
    uint32_t buffer = 0; /* holds at most bits + 7 pending bits */
    unsigned pending = 0;
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        buffer = (buffer << 8) | in[i];
        pending += 8;
        while (pending >= bits) {
            pending -= bits;
            out[o++] = alphabet[(buffer >> pending) & mask];
        }
    }
    if (pending > 0)
        out[o++] = alphabet[(buffer << (bits - pending)) & mask];
    out[o] = '\0';
}

bool pc_bit_groups_decode(int (*value)(unsigned char c), unsigned bits, const char *in,
                          size_t in_len, uint8_t *out, size_t *out_len)
{
    uint32_t buffer = 0;
    unsigned pending = 0;
    size_t o = 0;
    for (size_t i = 0; i < in_len; i++) {
        int v = value((unsigned char)in[i]);
        if (v < 0)
            return false;
        buffer = (buffer << bits) | (uint32_t)v;
        pending += bits;
        if (pending >= 8) {
            pending -= 8;
            out[o++] = (uint8_t)(buffer >> pending);
        }
    }
    if ((buffer & ((1u << pending) - 1)) != 0)
        return false;
    *out_len = o;
    return true;
}
