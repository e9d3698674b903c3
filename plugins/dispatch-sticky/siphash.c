/* SipHash-2-4, written from the specification (the SipHash paper, 2012). */
#include "siphash.h"

static inline uint64_t rotl(uint64_t x, unsigned b)
{
    return (x << b) | (x >> (64 - b));
}

static inline void sip_round(uint64_t v[4])
{
    v[0] += v[1];
    v[1] = rotl(v[1], 13);
    v[1] ^= v[0];
    v[0] = rotl(v[0], 32);
    v[2] += v[3];
    v[3] = rotl(v[3], 16);
    v[3] ^= v[2];
    v[0] += v[3];
    v[3] = rotl(v[3], 21);
    v[3] ^= v[0];
    v[2] += v[1];
    v[1] = rotl(v[1], 17);
    v[1] ^= v[2];
    v[2] = rotl(v[2], 32);
}

/* Two compression rounds per 8-byte word: the "2" of SipHash-2-4. */
static void compress(uint64_t v[4], uint64_t m)
{
    v[3] ^= m;
    sip_round(v);
    sip_round(v);
    v[0] ^= m;
}

void sticky_siphash_init(sticky_siphash_t *hash, uint64_t k0, uint64_t k1)
{
    hash->v[0] = k0 ^ UINT64_C(0x736f6d6570736575);
    hash->v[1] = k1 ^ UINT64_C(0x646f72616e646f6d);
    hash->v[2] = k0 ^ UINT64_C(0x6c7967656e657261);
    hash->v[3] = k1 ^ UINT64_C(0x7465646279746573);
    hash->tail = 0;
    hash->length = 0;
}

void sticky_siphash_byte(sticky_siphash_t *hash, uint8_t byte)
{
    /* Bytes fill the word little-endian whatever the host's byte order. */
    hash->tail |= (uint64_t)byte << (8 * (hash->length % 8));
    hash->length++;
    if (hash->length % 8 == 0) {
        compress(hash->v, hash->tail);
        hash->tail = 0;
    }
}

void sticky_siphash_update(sticky_siphash_t *hash, const void *data, size_t len)
{
    const uint8_t *bytes = data;
    for (size_t i = 0; i < len; i++)
        sticky_siphash_byte(hash, bytes[i]);
}

uint64_t sticky_siphash_final(sticky_siphash_t *hash)
{
    /* The last word: the leftover bytes and the length modulo 256 on top. */
    compress(hash->v, hash->tail | (hash->length & 0xff) << 56);
    hash->v[2] ^= 0xff;
    for (int i = 0; i < 4; i++) /* the "4": finalization rounds */
        sip_round(hash->v);
    return hash->v[0] ^ hash->v[1] ^ hash->v[2] ^ hash->v[3];
}
