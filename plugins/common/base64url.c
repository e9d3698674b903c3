/* base64url without padding (RFC 4648 §5), for tokens: see base64url.h. */
#include "base64url.h"

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Value of C in the alphabet, or -1.  Written out rather than as a table so
 * that what is refused ('+', '/', '=') plainly is. */
static int base64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

size_t pc_base64url_encoded_len(size_t len)
{
    /* ceil(len * 4 / 3), written so that it cannot overflow. */
    return len / 3 * 4 + (len % 3 * 4 + 2) / 3;
}

size_t pc_base64url_decoded_max(size_t chars)
{
    /* A length of 1 mod 4 encodes nothing: its last character is spare. */
    return chars / 4 * 3 + (chars % 4 == 1 ? 0 : chars % 4 * 3 / 4);
}

void pc_base64url_encode(const uint8_t *in, size_t len, char *out)
{
    uint32_t buffer = 0; /* holds at most 13 pending bits */
    unsigned bits = 0;
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        buffer = (buffer << 8) | in[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = alphabet[(buffer >> bits) & 0x3f];
        }
    }
    if (bits > 0)
        out[o++] = alphabet[(buffer << (6 - bits)) & 0x3f];
    out[o] = '\0';
}

bool pc_base64url_decode(const char *in, size_t in_len, uint8_t *out, size_t out_size,
                         size_t *out_len)
{
    /* A length of 1 (mod 4) leaves 6 bits over: a whole character that no
     * byte string produces. */
    if (in_len % 4 == 1)
        return false;
    if (pc_base64url_decoded_max(in_len) > out_size)
        return false;

    uint32_t buffer = 0;
    unsigned bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < in_len; i++) {
        int v = base64url_value((unsigned char)in[i]);
        if (v < 0)
            return false;
        buffer = (buffer << 6) | (uint32_t)v;
        bits += 6;
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
