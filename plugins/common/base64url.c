/* base64url without padding (RFC 4648 §5), for tokens: see base64url.h. */
#include "base64url.h"

#include "bit-groups.h"

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
    pc_bit_groups_encode(alphabet, 6, in, len, out);
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
    return pc_bit_groups_decode(base64url_value, 6, in, in_len, out, out_len);
}
