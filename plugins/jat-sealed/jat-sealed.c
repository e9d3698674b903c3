/* jat-sealed: stateless tokens that hide the JID.
 *
 *   token = base32( version || nonce || ciphertext || tag )
 *     version     1 byte, 0x01; also the additional data of the AEAD
 *     nonce       24 random bytes from the host's CSPRNG, new for each token
 *     ciphertext  expires || jid, encrypted with XChaCha20-Poly1305-IETF
 *                   expires  4 bytes, unsigned seconds since the Unix epoch,
 *                            big-endian
 *                   jid      the sender's full JID, without a NUL
 *     tag         16 bytes, the Poly1305 tag
 *
 * 45 bytes more than the JID, before base32, so the longest JID that fits a
 * 1023-character resourcepart is floor(1023 * 5 / 8) - 45 = 594 bytes.
 *
 * Like jat-opaque, the implementing client learns nothing about the sender
 * (only the length of the JID, from the length of the token).  Like
 * jat-hmac, there is no state: a token survives a restart and opens in any
 * instance that has its key, and it cannot be forged or altered.  A 192-bit
 * random nonce is safe to pick at random for every token (a 96-bit one
 * would not be, after billions of tokens under one key).
 *
 * The AEAD key is BLAKE2b-256 of the whole key from the key file, keyed
 * with the context string "client-proxy jat-sealed v1" (libsodium's
 * crypto_generichash): keys longer than 32 bytes count in full, and a file
 * shared with jat-hmac never has its bytes used raw by both.
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
#include "expiry.h"
#include "jid-check.h"
#include "key-file.h"

#define SEALED_VERSION 0x01
#define SEALED_NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES /* 24 */
#define SEALED_TAG_LEN crypto_aead_xchacha20poly1305_ietf_ABYTES      /* 16 */
#define SEALED_KEY_LEN crypto_aead_xchacha20poly1305_ietf_KEYBYTES    /* 32 */
/* Bytes before the ciphertext: the version and the nonce. */
#define SEALED_HEAD_LEN (1 + SEALED_NONCE_LEN)
/* All that is not the JID: 1 + 24 + 4 + 16 = 45 bytes. */
#define SEALED_OVERHEAD (SEALED_HEAD_LEN + PC_EXPIRY_LEN + SEALED_TAG_LEN)
/* The most bytes whose base32 still fits a resourcepart (639)... */
#define SEALED_TOKEN_BYTES_MAX (CP_TOKEN_MAX * 5 / 8)
/* ...which leaves this much for the JID (594 bytes). */
#define SEALED_JID_MAX (SEALED_TOKEN_BYTES_MAX - SEALED_OVERHEAD)
#define SEALED_RANDOM_KEY_LEN 32
#define SEALED_KDF_CONTEXT "client-proxy jat-sealed v1"

/* One derived AEAD key. */
typedef uint8_t sealed_key_t[SEALED_KEY_LEN];

typedef struct sealed_state {
    const cp_host_api_t *api; /* borrowed from the host until fini() */
    cp_host_t *host;
    sealed_key_t *keys;       /* owned, wiped in fini(); keys[0] seals */
    size_t key_count;         /* >= 1; every key opens */
} sealed_state_t;

/* The AEAD key for KEY: BLAKE2b-256 of all its bytes, keyed by the context
 * string.  Returns false only if libsodium refuses the lengths. */
static bool sealed_derive_key(const pc_key_t *key, sealed_key_t out)
{
    G_STATIC_ASSERT(sizeof SEALED_KDF_CONTEXT - 1 >= crypto_generichash_KEYBYTES_MIN);
    G_STATIC_ASSERT(sizeof SEALED_KDF_CONTEXT - 1 <= crypto_generichash_KEYBYTES_MAX);
    return crypto_generichash(out, SEALED_KEY_LEN, key->bytes, key->len,
                              (const unsigned char *)SEALED_KDF_CONTEXT,
                              sizeof SEALED_KDF_CONTEXT - 1) == 0;
}

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
    sealed->keys = g_new0(sealed_key_t, ring->count);
    sealed->key_count = ring->count;
    bool derived = true;
    for (size_t i = 0; i < ring->count; i++)
        derived &= sealed_derive_key(&ring->keys[i], sealed->keys[i]);
    pc_key_ring_free(ring); /* wipes the raw keys: only the derived ones are kept */
    if (!derived) {
        api->log(host, CP_LOG_ERROR, "cannot derive the encryption keys");
        sealed_fini(sealed);
        return CP_EFAIL;
    }
    *state = sealed;
    return CP_OK;
}

static int sealed_encode(void *state, const char *jid, int64_t expires, char *token,
                         size_t token_size)
{
    sealed_state_t *sealed = state;
    uint8_t plain[PC_EXPIRY_LEN + SEALED_JID_MAX];
    uint8_t bytes[SEALED_TOKEN_BYTES_MAX];
    size_t jid_len = strnlen(jid, SEALED_JID_MAX + 1);

    if (jid_len == 0)
        return CP_EFAIL;
    if (jid_len > SEALED_JID_MAX || pc_base32_encoded_len(SEALED_OVERHEAD + jid_len) >= token_size)
        return CP_ETOOLONG;

    bytes[0] = SEALED_VERSION;
    if (sealed->api->random_bytes(sealed->host, bytes + 1, SEALED_NONCE_LEN) != CP_OK) {
        sealed->api->log(sealed->host, CP_LOG_ERROR, "cannot get random bytes for a nonce");
        return CP_EFAIL;
    }
    pc_expiry_put(plain, pc_expiry_clamp(expires));
    memcpy(plain + PC_EXPIRY_LEN, jid, jid_len);

    unsigned long long sealed_len = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(bytes + SEALED_HEAD_LEN, &sealed_len,
                                               plain, PC_EXPIRY_LEN + jid_len,
                                               bytes, 1, /* the version as additional data */
                                               NULL, bytes + 1, sealed->keys[0]);
    sodium_memzero(plain, sizeof plain);
    g_assert(sealed_len == PC_EXPIRY_LEN + jid_len + SEALED_TAG_LEN);
    pc_base32_encode(bytes, SEALED_OVERHEAD + jid_len, token);
    return CP_OK;
}

static int sealed_decode(void *state, const char *token, char *jid, size_t jid_size)
{
    sealed_state_t *sealed = state;
    uint8_t bytes[SEALED_TOKEN_BYTES_MAX];
    uint8_t plain[PC_EXPIRY_LEN + SEALED_JID_MAX];
    size_t token_len = strnlen(token, CP_TOKEN_MAX + 1);
    size_t n = 0;

    if (token_len > CP_TOKEN_MAX || !pc_base32_decode(token, token_len, bytes, sizeof bytes, &n))
        return CP_EBADTOKEN;
    /* At least one byte of JID: we never seal an empty one. */
    if (n <= SEALED_OVERHEAD || bytes[0] != SEALED_VERSION)
        return CP_EBADTOKEN;

    /* Each key either opens the token or leaves PLAIN unused; which one did
     * (or that none did) shows only in the status. */
    bool opened = false;
    for (size_t i = 0; i < sealed->key_count && !opened; i++) {
        opened = crypto_aead_xchacha20poly1305_ietf_decrypt(
                     plain, NULL, NULL, bytes + SEALED_HEAD_LEN, n - SEALED_HEAD_LEN,
                     bytes, 1, bytes + 1, sealed->keys[i]) == 0;
    }
    int status = CP_EBADTOKEN;
    if (opened) {
        /* Expiry only now: an unauthenticated deadline means nothing. */
        if (pc_expiry_passed(pc_expiry_get(plain)))
            status = CP_EEXPIRED;
        else
            status = pc_jid_write(plain + PC_EXPIRY_LEN, n - SEALED_OVERHEAD, jid, jid_size);
    }
    sodium_memzero(plain, sizeof plain);
    return status;
}

static const cp_jat_ops_t sealed_ops = {
    .size = sizeof(cp_jat_ops_t),
    .encode = sealed_encode,
    .decode = sealed_decode,
    .forget = NULL,
};

CP_PLUGIN_DEFINE(CP_PLUGIN_JAT, "sealed",
                 "token carries the sender's JID and deadline encrypted with "
                 "XChaCha20-Poly1305: stateless, tamper-evident and secret",
                 sealed_init, sealed_fini, &sealed_ops);
