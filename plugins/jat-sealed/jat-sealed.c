/* jat-sealed: stateless tokens that hide the JID.
 *
 * Version 2, the tokens encode() makes (issue 14, "Shorter tokens"):
 *
 *   token = base64url( version || expires || siv || ciphertext || tag ),
 *           without padding
 *     version     1 byte, 0x02.  Its top six bits are zero, so every
 *                 version 2 token begins with 'A'.
 *     expires     4 bytes, big-endian: unsigned seconds since
 *                 2026-01-01T00:00:00Z (until 2162), in whole seconds as in
 *                 jat-hmac (plugins/common/expiry.h).  Not encrypted, but
 *                 authenticated: version || expires is the AEAD's
 *                 additional data.
 *     siv         12 bytes: the first 12 of BLAKE2b-128(siv key,
 *                 version || expires || jid), a synthetic nonce
 *     ciphertext  the sender's full JID (without a NUL), encrypted with
 *                 XChaCha20-Poly1305-IETF (libsodium) under the AEAD key,
 *                 with the nonce  siv || expires || 8 zero bytes
 *     tag         16 bytes, the Poly1305 tag (libsodium's, whole)
 *
 * Why each choice:
 *   - base64url, not base32: 4/3 of the bytes instead of 8/5, and safe in
 *     a resourcepart (plugins/common/base64url.h).
 *   - A nonce made from what is sealed, not drawn at random, so that it
 *     need not be carried whole: the same JID and expiry give the same
 *     token (deterministic encryption; a stable address is welcome), and
 *     different ones must never share a nonce under one key.  XChaCha20
 *     turns the nonce's first 16 bytes, siv || expires, into a subkey
 *     (HChaCha20), and uses the last 8 (zero here) with it; two tokens
 *     share a keystream and a Poly1305 key only if they share both siv and
 *     expires.  Tokens with the same expires were made in the same second
 *     (or a few, across a reload that changed address_lifetime).  At 10^5
 *     new tokens a second from all the instances that share the key, more
 *     than one client-proxy makes with no server at all (bench/README.md),
 *     the chance that two of one second share a 96-bit siv is
 *     (10^5)^2 / 2 / 2^96 = 2^-63.8, so 2^-35.5 over ten years of one key
 *     (3.2e8 seconds).  Nothing is counted or kept, so no restart or second
 *     instance can repeat a nonce outside this bound.  Carrying expires in
 *     the clear is what makes 12 bytes enough: with expires encrypted,
 *     every token of the key's life would draw from one pool, and a 16-byte
 *     siv would be needed for the same bound (2^-39.3), 4 bytes more.
 *     80 bits would give 2^-19.5, 64 bits about 2^-3.5.
 *   - What a collision would cost: the two JIDs' XOR, and that nonce's
 *     Poly1305 key.  Not a forgery: decode() also recomputes the siv from
 *     what it opened and refuses a token whose siv differs, so a forged
 *     token would need a 96-bit BLAKE2b match besides.
 *   - What expires in the clear reveals: the token's deadline, that is
 *     when it was made plus address_lifetime.  The implementing client
 *     sees a token arrive when it is made, so it learns nothing it did not
 *     know but the operator's address_lifetime.
 *   - What determinism reveals: that two tokens of the same second are
 *     from the same sender, when they are equal.  Version 1's random
 *     nonces hid even that; jat-opaque gives a sender one token for as long
 *     as it lives.
 *   - The tag stays 16 bytes: libsodium's AEADs do not truncate it.
 *
 * Lengths (characters), version 2 against version 1 (and jat-raw):
 *   alice@example.org/phone (23 bytes)                  75 (v1 109, raw 23)
 *   0a1b2c3d-4e5f@meet.example.org/7f3a9c2e (39 bytes)  96 (v1 135, raw 39)
 *   33 bytes more than the JID, before base64url: JIDs up to
 *   floor(1023 * 6 / 8) - 33 = 734 bytes fit (version 1: 594).
 *
 * Version 1, which encode() made until issue 14, still opens until its
 * expiry, so that an upgrade under load loses no address:
 *
 *   token = base32( version || nonce || ciphertext || tag ), lowercase
 *     version     1 byte, 0x01 (every version 1 token begins with 'a');
 *                 also the additional data of the AEAD
 *     nonce       24 random bytes from the host's CSPRNG
 *     ciphertext  expires || jid, encrypted with XChaCha20-Poly1305-IETF
 *                   expires  4 bytes, unsigned seconds since the Unix
 *                            epoch, big-endian
 *                   jid      the sender's full JID, without a NUL
 *     tag         16 bytes, the Poly1305 tag
 *
 * decode() tells them apart by the first character, 'A' or 'a', then
 * checks the version byte under that version's alphabet, as jat-hmac does.
 *
 * Like jat-opaque, the implementing client learns nothing about the sender
 * but the length of the JID (and, from version 2, the token's deadline and
 * which tokens of one second are the same sender's: see above).  Like
 * jat-hmac, there is no state: a token survives a restart and opens in any
 * instance that has its key, and it cannot be forged or altered.
 *
 * Keys: each key from the key file is never used as it is, but through
 * keyed BLAKE2b-256 of all its bytes (libsodium's crypto_generichash), one
 * for each use, keyed with a context string: "client-proxy jat-sealed v1"
 * for version 1's AEAD key, "client-proxy jat-sealed v2 aead" and
 * "client-proxy jat-sealed v2 siv" for version 2's.  So keys longer than 32
 * bytes count in full, a file shared with jat-hmac never has its bytes used
 * raw by both, and no key serves two purposes.
 *
 * Configuration, group [encoding:sealed]:
 *   key_file  path to a key file (see plugins/common/key-file.h): the first
 *             key seals, every key opens.  Without it a random key is made
 *             at start, and tokens issued before a restart are refused after
 *             it. */
#include <stdbool.h>
#include <string.h>

#include <glib.h>
#include <sodium.h>

#include <client-proxy/plugin.h>

#include "base32.h"
#include "base64url.h"
#include "const-time.h"
#include "expiry.h"
#include "jid-check.h"
#include "key-file.h"

#define SEALED_NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES /* 24 */
#define SEALED_TAG_LEN crypto_aead_xchacha20poly1305_ietf_ABYTES      /* 16 */
#define SEALED_KEY_LEN crypto_aead_xchacha20poly1305_ietf_KEYBYTES    /* 32 */
#define SEALED_RANDOM_KEY_LEN 32

/* Version 2. */
#define SEALED_V2 0x02
#define SEALED_V2_FIRST_CHAR 'A' /* base64url of 000000, the top six bits of 0x02 */
#define SEALED_SIV_LEN 12
/* The additional data: version || expires. */
#define SEALED_V2_AD_LEN (1 + PC_EXPIRY_LEN)
/* Bytes before the ciphertext: the additional data and the siv. */
#define SEALED_V2_HEAD_LEN (SEALED_V2_AD_LEN + SEALED_SIV_LEN)
/* All that is not the JID: 1 + 4 + 12 + 16 = 33 bytes. */
#define SEALED_V2_OVERHEAD (SEALED_V2_HEAD_LEN + SEALED_TAG_LEN)
/* The most bytes whose base64url still fits a resourcepart (767)... */
#define SEALED_V2_BYTES_MAX (CP_TOKEN_MAX * 6 / 8)
/* ...which leaves this much for the JID (734 bytes). */
#define SEALED_JID_MAX (SEALED_V2_BYTES_MAX - SEALED_V2_OVERHEAD)
#define SEALED_V2_AEAD_CONTEXT "client-proxy jat-sealed v2 aead"
#define SEALED_V2_SIV_CONTEXT "client-proxy jat-sealed v2 siv"

/* Version 1. */
#define SEALED_V1 0x01
#define SEALED_V1_FIRST_CHAR 'a' /* base32 of 00000, the top five bits of 0x01 */
/* Bytes before the ciphertext: the version and the nonce. */
#define SEALED_V1_HEAD_LEN (1 + SEALED_NONCE_LEN)
/* All that is not the JID: 1 + 24 + 4 + 16 = 45 bytes. */
#define SEALED_V1_OVERHEAD (SEALED_V1_HEAD_LEN + PC_EXPIRY_LEN + SEALED_TAG_LEN)
/* The most bytes whose base32 still fits a resourcepart (639). */
#define SEALED_V1_BYTES_MAX (CP_TOKEN_MAX * 5 / 8)
#define SEALED_V1_CONTEXT "client-proxy jat-sealed v1"

/* One key of the file, as the keys each use derives from it. */
typedef struct sealed_keys {
    uint8_t v1_aead[SEALED_KEY_LEN]; /* opens version 1 tokens */
    uint8_t aead[SEALED_KEY_LEN];    /* seals and opens version 2 */
    uint8_t siv[SEALED_KEY_LEN];     /* keys version 2's synthetic nonce */
} sealed_keys_t;

typedef struct sealed_state {
    const cp_host_api_t *api; /* borrowed from the host until fini() */
    cp_host_t *host;
    sealed_keys_t *keys;      /* owned, wiped in fini(); keys[0] seals */
    size_t key_count;         /* >= 1; every key opens */
} sealed_state_t;

/* The key for one use of KEY: BLAKE2b-256 of all its bytes, keyed by the
 * context string CONTEXT.  Returns false only if libsodium refuses the
 * lengths. */
static bool sealed_derive_key(const pc_key_t *key, const char *context,
                              uint8_t out[SEALED_KEY_LEN])
{
    return crypto_generichash(out, SEALED_KEY_LEN, key->bytes, key->len,
                              (const unsigned char *)context, strlen(context)) == 0;
}

/* Every context string is a BLAKE2b key of a length libsodium takes. */
#define SEALED_CONTEXT_FITS(context)                                               \
    G_STATIC_ASSERT(sizeof(context) - 1 >= crypto_generichash_KEYBYTES_MIN &&      \
                    sizeof(context) - 1 <= crypto_generichash_KEYBYTES_MAX)
SEALED_CONTEXT_FITS(SEALED_V1_CONTEXT);
SEALED_CONTEXT_FITS(SEALED_V2_AEAD_CONTEXT);
SEALED_CONTEXT_FITS(SEALED_V2_SIV_CONTEXT);

static void sealed_fini(void *state)
{
    sealed_state_t *sealed = state;
    sodium_memzero(sealed->keys, sealed->key_count * sizeof sealed->keys[0]);
    g_free(sealed->keys);
    g_free(sealed);
}

static int sealed_init(const cp_host_api_t *api, cp_host_t *host, void **state)
{
    if (sodium_init() < 0) {
        api->log(host, CP_LOG_ERROR, "cannot initialise libsodium");
        return CP_EFAIL;
    }

    pc_key_ring_t *ring = NULL;
    int status = pc_key_ring_from_config(api, host, SEALED_RANDOM_KEY_LEN, &ring);
    if (status != CP_OK)
        return status;

    sealed_state_t *sealed = g_new0(sealed_state_t, 1);
    sealed->api = api;
    sealed->host = host;
    sealed->keys = g_new0(sealed_keys_t, ring->count);
    sealed->key_count = ring->count;
    bool derived = true;
    for (size_t i = 0; i < ring->count; i++) {
        const pc_key_t *key = &ring->keys[i];
        derived &= sealed_derive_key(key, SEALED_V1_CONTEXT, sealed->keys[i].v1_aead);
        derived &= sealed_derive_key(key, SEALED_V2_AEAD_CONTEXT, sealed->keys[i].aead);
        derived &= sealed_derive_key(key, SEALED_V2_SIV_CONTEXT, sealed->keys[i].siv);
    }
    pc_key_ring_free(ring); /* wipes the raw keys: only the derived ones are kept */
    if (!derived) {
        api->log(host, CP_LOG_ERROR, "cannot derive the encryption keys");
        sealed_fini(sealed);
        return CP_EFAIL;
    }
    *state = sealed;
    return CP_OK;
}

/* Writes the siv of AD (version || expires) and JID under KEY into SIV. */
static void sealed_siv(const uint8_t key[SEALED_KEY_LEN], const uint8_t ad[SEALED_V2_AD_LEN],
                       const uint8_t *jid, size_t jid_len, uint8_t siv[SEALED_SIV_LEN])
{
    uint8_t digest[crypto_generichash_BYTES_MIN]; /* 16: BLAKE2b-128, cut to 12 */
    crypto_generichash_state hash;

    G_STATIC_ASSERT(SEALED_SIV_LEN <= crypto_generichash_BYTES_MIN);
    crypto_generichash_init(&hash, key, SEALED_KEY_LEN, sizeof digest);
    crypto_generichash_update(&hash, ad, SEALED_V2_AD_LEN);
    crypto_generichash_update(&hash, jid, jid_len);
    crypto_generichash_final(&hash, digest, sizeof digest);
    memcpy(siv, digest, SEALED_SIV_LEN);
    sodium_memzero(digest, sizeof digest);
    sodium_memzero(&hash, sizeof hash);
}

/* The whole nonce of a version 2 token from its first bytes (HEAD):
 * siv || expires || 8 zero bytes. */
static void sealed_v2_nonce(const uint8_t head[SEALED_V2_HEAD_LEN],
                            uint8_t nonce[SEALED_NONCE_LEN])
{
    memset(nonce, 0, SEALED_NONCE_LEN);
    memcpy(nonce, head + SEALED_V2_AD_LEN, SEALED_SIV_LEN);
    memcpy(nonce + SEALED_SIV_LEN, head + 1, PC_EXPIRY_LEN);
}

/* Makes version 2 tokens only. */
static int sealed_encode(void *state, const char *jid, int64_t expires, char *token,
                         size_t token_size)
{
    sealed_state_t *sealed = state;
    const sealed_keys_t *keys = &sealed->keys[0];
    uint8_t bytes[SEALED_V2_BYTES_MAX];
    uint8_t nonce[SEALED_NONCE_LEN];
    size_t jid_len = strnlen(jid, SEALED_JID_MAX + 1);

    if (jid_len == 0)
        return CP_EFAIL;
    if (jid_len > SEALED_JID_MAX ||
        pc_base64url_encoded_len(SEALED_V2_OVERHEAD + jid_len) >= token_size)
        return CP_ETOOLONG;

    bytes[0] = SEALED_V2;
    pc_expiry_put(bytes + 1, pc_expiry_clamp(expires, PC_EXPIRY_EPOCH_2026));
    sealed_siv(keys->siv, bytes, (const uint8_t *)jid, jid_len, bytes + SEALED_V2_AD_LEN);
    sealed_v2_nonce(bytes, nonce);

    unsigned long long sealed_len = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(bytes + SEALED_V2_HEAD_LEN, &sealed_len,
                                               (const uint8_t *)jid, jid_len,
                                               bytes, SEALED_V2_AD_LEN,
                                               NULL, nonce, keys->aead);
    g_assert(sealed_len == jid_len + SEALED_TAG_LEN);
    pc_base64url_encode(bytes, SEALED_V2_OVERHEAD + jid_len, token);
    return CP_OK;
}

static int sealed_decode_v2(sealed_state_t *sealed, const char *token, size_t token_len,
                            char *jid, size_t jid_size)
{
    uint8_t bytes[SEALED_V2_BYTES_MAX];
    uint8_t plain[SEALED_JID_MAX];
    uint8_t nonce[SEALED_NONCE_LEN];
    size_t n = 0;

    if (!pc_base64url_decode(token, token_len, bytes, sizeof bytes, &n))
        return CP_EBADTOKEN;
    /* At least one byte of JID: we never seal an empty one. */
    if (n <= SEALED_V2_OVERHEAD || bytes[0] != SEALED_V2)
        return CP_EBADTOKEN;
    size_t jid_len = n - SEALED_V2_OVERHEAD;
    sealed_v2_nonce(bytes, nonce);

    /* Each key either opens the token or leaves PLAIN unused; which one did
     * (or that none did) shows only in the status.  The key that opens it
     * must also have made its siv: see the top.  The loop stops at that key
     * (jat-hmac tries them all): a forgery, which no key opens, is tried
     * against every key anyway, and the time of a genuine token tells only
     * which key of the ring sealed it, which its holder learns nothing from. */
    bool opened = false;
    for (size_t i = 0; i < sealed->key_count && !opened; i++) {
        const sealed_keys_t *keys = &sealed->keys[i];
        if (crypto_aead_xchacha20poly1305_ietf_decrypt(
                plain, NULL, NULL, bytes + SEALED_V2_HEAD_LEN, n - SEALED_V2_HEAD_LEN,
                bytes, SEALED_V2_AD_LEN, nonce, keys->aead) != 0)
            continue;
        uint8_t siv[SEALED_SIV_LEN];
        sealed_siv(keys->siv, bytes, plain, jid_len, siv);
        opened = pc_const_time_equal(siv, bytes + SEALED_V2_AD_LEN, SEALED_SIV_LEN);
    }
    int status = CP_EBADTOKEN;
    if (opened) {
        /* Expiry only now: an unauthenticated deadline means nothing. */
        if (pc_expiry_passed(pc_expiry_get(bytes + 1), PC_EXPIRY_EPOCH_2026))
            status = CP_EEXPIRED;
        else
            status = pc_jid_write(plain, jid_len, jid, jid_size);
    }
    sodium_memzero(plain, sizeof plain);
    return status;
}

static int sealed_decode_v1(sealed_state_t *sealed, const char *token, size_t token_len,
                            char *jid, size_t jid_size)
{
    uint8_t bytes[SEALED_V1_BYTES_MAX];
    uint8_t plain[SEALED_V1_BYTES_MAX];
    size_t n = 0;

    if (!pc_base32_decode(token, token_len, bytes, sizeof bytes, &n))
        return CP_EBADTOKEN;
    /* At least one byte of JID: we never sealed an empty one. */
    if (n <= SEALED_V1_OVERHEAD || bytes[0] != SEALED_V1)
        return CP_EBADTOKEN;

    /* As in version 2, only the status tells whether a key opened it. */
    bool opened = false;
    for (size_t i = 0; i < sealed->key_count && !opened; i++) {
        opened = crypto_aead_xchacha20poly1305_ietf_decrypt(
                     plain, NULL, NULL, bytes + SEALED_V1_HEAD_LEN, n - SEALED_V1_HEAD_LEN,
                     bytes, 1, bytes + 1, sealed->keys[i].v1_aead) == 0;
    }
    int status = CP_EBADTOKEN;
    if (opened) {
        /* Expiry only now: an unauthenticated deadline means nothing. */
        if (pc_expiry_passed(pc_expiry_get(plain), PC_EXPIRY_EPOCH_UNIX))
            status = CP_EEXPIRED;
        else
            status = pc_jid_write(plain + PC_EXPIRY_LEN, n - SEALED_V1_OVERHEAD, jid, jid_size);
    }
    sodium_memzero(plain, sizeof plain);
    return status;
}

static int sealed_decode(void *state, const char *token, char *jid, size_t jid_size)
{
    sealed_state_t *sealed = state;
    size_t token_len = strnlen(token, CP_TOKEN_MAX + 1);

    if (token_len > CP_TOKEN_MAX)
        return CP_EBADTOKEN;
    /* The first character tells the versions apart (see the top). */
    if (token[0] == SEALED_V2_FIRST_CHAR)
        return sealed_decode_v2(sealed, token, token_len, jid, jid_size);
    if (token[0] == SEALED_V1_FIRST_CHAR)
        return sealed_decode_v1(sealed, token, token_len, jid, jid_size);
    return CP_EBADTOKEN;
}

static const cp_jat_ops_t sealed_ops = {
    .size = sizeof(cp_jat_ops_t),
    .encode = sealed_encode,
    .decode = sealed_decode,
    .forget = NULL,
};

CP_PLUGIN_DEFINE(CP_PLUGIN_JAT, "sealed",
                 "token carries the sender's JID encrypted with XChaCha20-Poly1305, and its "
                 "deadline: stateless, tamper-evident and secret",
                 sealed_init, sealed_fini, &sealed_ops);
