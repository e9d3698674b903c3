#include "base32.h"

static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";

/* Value of C in the alphabet, or -1.  Written out rather than as a table so
 * that uppercase is plainly refused. */
static int base32_value(unsigned char c)
{
    if (c >= 'a' && c <= 'z')
        return c - 'a';
    if (c >= '2' && c <= '7')
        return c - '2' + 26;
    return -1;
}

size_t pc_base32_encoded_len(size_t len)
{
    /* ceil(len * 8 / 5), written so that it cannot overflow. */
    return len / 5 * 8 + (len % 5 * 8 + 4) / 5;
}

void pc_base32_encode(const uint8_t *in, size_t len, char *out)
{
    uint32_t buffer = 0; /* holds at most 12 pending bits */
    unsigned bits = 0;
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        buffer = (buffer << 8) | in[i];
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            out[o++] = alphabet[(buffer >> bits) & 0x1f];
        }
    }
    if (bits > 0)
        out[o++] = alphabet[(buffer << (5 - bits)) & 0x1f];
    out[o] = '\0';
}

bool pc_base32_decode(const char *in, size_t in_len, uint8_t *out, size_t out_size,
                      size_t *out_len)
{
    /* Lengths 1, 3 and 6 (mod 8) leave 5, 7 or 6 bits over: at least one
     * whole character that no byte string produces. */
    switch (in_len % 8) {
    case 1: case 3: case 6:
        return false;
    default:
        break;
    }
    size_t need = in_len / 8 * 5 + in_len % 8 * 5 / 8;
    if (need > out_size)
        return false;

    uint32_t buffer = 0;
    unsigned bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < in_len; i++) {
        int v = base32_value((unsigned char)in[i]);
        if (v < 0)
            return false;
        buffer = (buffer << 5) | (uint32_t)v;
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(buffer >> bits);
        }
    }
    /* The bits after the last whole byte must be zero, or two tokens
     * would stand for the same bytes. */
    if ((buffer & ((1u << bits) - 1)) != 0)
        return false;
    *out_len = o;
    return true;
}
