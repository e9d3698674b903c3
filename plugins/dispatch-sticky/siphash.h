/* SipHash-2-4 (Aumasson and Bernstein, 2012), 64-bit output, fed in pieces.
 *
 * dispatch-sticky scores each (sender or room, resource) pair with it: a
 * keyed hash whose outputs look independent, so rendezvous hashing spreads
 * them evenly, and whose key can be kept secret so that nobody outside can
 * aim a crafted JID or room at a chosen resource.
 *
 * Internal to dispatch-sticky; not part of the plugin ABI. */
#ifndef DISPATCH_STICKY_SIPHASH_H
#define DISPATCH_STICKY_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/** A hash in progress.  Plain data: copy it to hash several messages that
 *  share a prefix, feeding the prefix once. */
typedef struct sticky_siphash {
    uint64_t v[4];
    uint64_t tail;   /**< up to 7 bytes not yet compressed, little-endian */
    uint64_t length; /**< bytes fed so far; only its low byte is hashed */
} sticky_siphash_t;

/** Starts a hash under the 128-bit key K0 || K1 (K0 = key bytes 0..7 read
 *  little-endian, K1 = bytes 8..15). */
void sticky_siphash_init(sticky_siphash_t *hash, uint64_t k0, uint64_t k1);

/** Feeds LEN bytes of DATA. */
void sticky_siphash_update(sticky_siphash_t *hash, const void *data, size_t len);

/** Feeds one byte. */
void sticky_siphash_byte(sticky_siphash_t *hash, uint8_t byte);

/** Returns the hash of everything fed.  HASH is left finished: do not feed
 *  it again. */
uint64_t sticky_siphash_final(sticky_siphash_t *hash);

#endif
