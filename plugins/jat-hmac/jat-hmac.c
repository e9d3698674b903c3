/* jat-hmac: stateless, tamper-evident tokens.
 *
 *   token = base32( version || expires || mac || jid )
 *     version  1 byte, 0x01
 *     expires  4 bytes, unsigned seconds since the Unix epoch, big-endian
 *     mac      the first 16 bytes of HMAC-SHA256(key, version || expires || jid)
 *     jid      the sender's full JID, without a NUL
 *
 * The JID is readable by anyone who holds the token (it is only encoded),
 * but a token cannot be forged or altered without the key, and it stops
 * being accepted after its request's deadline.
 *
 * Configuration, group [encoding:hmac]:
 *   key_file  path to a key file (see plugins/common/key-file.h).  Without
 *             it a random key is made at start, and tokens issued before a
 *             restart are refused after it. */
#include <stdbool.h>
#include <string.h>

#include <glib.h>
#include <sodium.h>

#include <client-proxy/plugin.h>

#include "base32.h"
#include "const-time.h"
#include "expiry.h"
#include "jid-check.h"
#include "key-file.h"

#define HMAC_VERSION 0x01
#define HMAC_EXPIRES_LEN PC_EXPIRY_LEN
#define HMAC_MAC_LEN 16
#define HMAC_HEADER_LEN (1 + HMAC_EXPIRES_LEN + HMAC_MAC_LEN)
/* The most bytes whose base32 still fits a resourcepart... */
#define HMAC_TOKEN_BYTES_MAX (CP_TOKEN_MAX * 5 / 8)
/* ...which leaves this much for the JID (618 bytes). */
#define HMAC_JID_MAX (HMAC_TOKEN_BYTES_MAX - HMAC_HEADER_LEN)
#define HMAC_RANDOM_KEY_LEN 32

typedef struct hmac_state {
    const cp_host_api_t *api; /* borrowed from the host until fini() */
    cp_host_t *host;
    pc_key_ring_t *keys;      /* owned; keys[0] signs, every key verifies */
    /* Owned; one per key, already keyed: a token copies one instead of
     * hashing the key again.  libsodium's HMAC-SHA256 rather than GLib's:
     * the same MAC in about 60% of the time (bench/README.md). */
    crypto_auth_hmacsha256_state *keyed;
} hmac_state_t;

/* Writes the truncated MAC of DATA[0..LEN) under the key of KEYED into MAC. */
static void hmac_compute(const crypto_auth_hmacsha256_state *keyed, const uint8_t *data,
                         size_t len, uint8_t mac[HMAC_MAC_LEN])
{
    uint8_t digest[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state hmac = *keyed;

    crypto_auth_hmacsha256_update(&hmac, data, len);
    crypto_auth_hmacsha256_final(&hmac, digest);
    memcpy(mac, digest, HMAC_MAC_LEN);
    sodium_memzero(digest, sizeof digest);
    sodium_memzero(&hmac, sizeof hmac);
}

/* Builds the MAC input, version || expires || jid, into BUF: the token's
 * layout minus the MAC, so that both are filled from one place. */
static size_t hmac_signed_data(uint8_t *buf, uint32_t expires, const uint8_t *jid, size_t jid_len)
{
    buf[0] = HMAC_VERSION;
    pc_expiry_put(buf + 1, expires);
    memcpy(buf + 1 + HMAC_EXPIRES_LEN, jid, jid_len);
    return 1 + HMAC_EXPIRES_LEN + jid_len;
}

static int hmac_init(const cp_host_api_t *api, cp_host_t *host, void **state)
{
    if (sodium_init() < 0) {
        api->log(host, CP_LOG_ERROR, "cannot initialise libsodium");
        return CP_EFAIL;
    }
    pc_key_ring_t *keys = NULL;
    int status = pc_key_ring_from_config(api, host, HMAC_RANDOM_KEY_LEN, &keys);
    if (status != CP_OK)
        return status;

    hmac_state_t *hmac = g_new0(hmac_state_t, 1);
    hmac->api = api;
    hmac->host = host;
    hmac->keys = keys;
    hmac->keyed = g_new0(crypto_auth_hmacsha256_state, keys->count);
    for (size_t i = 0; i < keys->count; i++)
        crypto_auth_hmacsha256_init(&hmac->keyed[i], keys->keys[i].bytes, keys->keys[i].len);
    *state = hmac;
    return CP_OK;
}

static void hmac_fini(void *state)
{
    hmac_state_t *hmac = state;
    sodium_memzero(hmac->keyed, hmac->keys->count * sizeof *hmac->keyed);
    g_free(hmac->keyed);
    pc_key_ring_free(hmac->keys);
    g_free(hmac);
}

static int hmac_encode(void *state, const char *jid, int64_t expires, char *token,
                       size_t token_size)
{
    hmac_state_t *hmac = state;
    uint8_t signed_data[1 + HMAC_EXPIRES_LEN + HMAC_JID_MAX];
    uint8_t bytes[HMAC_TOKEN_BYTES_MAX];
    size_t jid_len = strnlen(jid, HMAC_JID_MAX + 1);

    if (jid_len == 0)
        return CP_EFAIL;
    if (jid_len > HMAC_JID_MAX || pc_base32_encoded_len(HMAC_HEADER_LEN + jid_len) >= token_size)
        return CP_ETOOLONG;
    uint32_t expires32 = pc_expiry_clamp(expires);

    size_t signed_len = hmac_signed_data(signed_data, expires32, (const uint8_t *)jid, jid_len);
    memcpy(bytes, signed_data, 1 + HMAC_EXPIRES_LEN);
    hmac_compute(&hmac->keyed[0], signed_data, signed_len, bytes + 1 + HMAC_EXPIRES_LEN);
    memcpy(bytes + HMAC_HEADER_LEN, jid, jid_len);
    pc_base32_encode(bytes, HMAC_HEADER_LEN + jid_len, token);
    return CP_OK;
}

static int hmac_decode(void *state, const char *token, char *jid, size_t jid_size)
{
    hmac_state_t *hmac = state;
    uint8_t bytes[HMAC_TOKEN_BYTES_MAX];
    uint8_t signed_data[1 + HMAC_EXPIRES_LEN + HMAC_JID_MAX];
    size_t token_len = strnlen(token, CP_TOKEN_MAX + 1);
    size_t n = 0;

    if (token_len > CP_TOKEN_MAX || !pc_base32_decode(token, token_len, bytes, sizeof bytes, &n))
        return CP_EBADTOKEN;
    if (n <= HMAC_HEADER_LEN || bytes[0] != HMAC_VERSION)
        return CP_EBADTOKEN;

    const uint8_t *mac = bytes + 1 + HMAC_EXPIRES_LEN;
    const uint8_t *jid_bytes = bytes + HMAC_HEADER_LEN;
    size_t jid_len = n - HMAC_HEADER_LEN;
    uint32_t expires = pc_expiry_get(bytes + 1);
    size_t signed_len = hmac_signed_data(signed_data, expires, jid_bytes, jid_len);

    /* Try every key, even after a match, so that the time taken does not
     * tell which key (if any) matched. */
    bool genuine = false;
    for (size_t i = 0; i < hmac->keys->count; i++) {
        uint8_t expected[HMAC_MAC_LEN];
        hmac_compute(&hmac->keyed[i], signed_data, signed_len, expected);
        genuine |= pc_const_time_equal(expected, mac, HMAC_MAC_LEN);
    }
    if (!genuine)
        return CP_EBADTOKEN;
    /* Expiry only now: an unauthenticated deadline means nothing. */
    if (pc_expiry_passed(expires))
        return CP_EEXPIRED;
    return pc_jid_write(jid_bytes, jid_len, jid, jid_size);
}

static const cp_jat_ops_t hmac_ops = {
    .size = sizeof(cp_jat_ops_t),
    .encode = hmac_encode,
    .decode = hmac_decode,
    .forget = NULL,
};

CP_PLUGIN_DEFINE(CP_PLUGIN_JAT, "hmac",
                 "token carries the sender's JID and deadline under an HMAC-SHA256: "
                 "stateless and tamper-evident, not secret",
                 hmac_init, hmac_fini, &hmac_ops);
