/* Base32 for tokens: see base32.h. */
#include "base32.h"

#include "bit-groups.h"

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
    pc_bit_groups_encode(alphabet, 5, in, len, out);
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
    return pc_bit_groups_decode(base32_value, 5, in, in_len, out, out_len);
}
