/* jat-hmac: stateless, tamper-evident tokens.
 *
 * Version 2, the tokens encode() makes (issue 14, "Shorter tokens"):
 *
 *   token = base64url( version || expires || mac || jid ), without padding
 *     version  1 byte, 0x02.  Its top six bits are zero, so every version 2
 *              token begins with 'A'; see "Version 1" for why that matters.
 *     expires  4 bytes, big-endian: unsigned seconds since
 *              2026-01-01T00:00:00Z (until 2162).  Whole seconds, because
 *              the deadline is [proxy] address_lifetime after now and that
 *              may be a few seconds; a coarser unit in 3 bytes would stretch
 *              it by minutes (plugins/common/expiry.h).
 *     mac      the first 8 bytes of HMAC-SHA256(key, version || expires || jid)
 *     jid      the sender's full JID, without a NUL: carried, so that
 *              nothing is kept per token
 *
 * Why each choice:
 *   - base64url, not base32: 6 bits per character instead of 5, so the
 *     token is 4/3 of its bytes, not 8/5.  Resourceparts are case-sensitive
 *     and take '-' and '_', and servers map no ASCII character to another
 *     (plugins/common/base64url.h), so no token can be changed on the way.
 *   - A 64-bit MAC.  A token is an address for address_lifetime (a day by
 *     default, up to ten years), so the question is how likely an online
 *     forgery is over the key's life.  Each guess is one stanza written to
 *     a made-up address, through the server and client-proxy, and is
 *     checked against a MAC no one can compute offline.  At 10^5 guesses a
 *     second, more than either can carry (about 8,800 requests/s through
 *     Prosody in bench/README.md, 170,000/s through client-proxy with no
 *     server at all), a year is 10^5 * 3.16e7 = 2^41.5 guesses, each
 *     accepted with probability 2^-64 per key that verifies: 2^-22.5 a year
 *     with one key, 2^-21.5 with two during a rotation; 2^-19.2 over ten
 *     years with one.  56 bits would give 2^-14.5 a year, 48 bits 2^-6.5.
 *     A success delivers stanzas to a JID of the forger's choosing from the
 *     proxy's domain: what anyone can do with jat-raw tokens.
 *   - The version is in the MAC's input, so a MAC made for one version
 *     never checks in another.
 *
 * Lengths (characters), version 2 against version 1 (and jat-raw):
 *   alice@example.org/phone (23 bytes)                  48 (v1 71, raw 23)
 *   0a1b2c3d-4e5f@meet.example.org/7f3a9c2e (39 bytes)  70 (v1 96, raw 39)
 *   13 bytes more than the JID, before base64url: JIDs up to
 *   floor(1023 * 6 / 8) - 13 = 754 bytes fit (version 1: 618).
 *
 * Version 1, which encode() made until issue 14, still decodes until its
 * expiry, so that an upgrade under load loses no address:
 *
 *   token = base32( version || expires || mac || jid ), lowercase, no padding
 *     version  1 byte, 0x01: every version 1 token begins with 'a'
 *     expires  4 bytes, big-endian: unsigned seconds since the Unix epoch
 *     mac      the first 16 bytes of HMAC-SHA256(key, version || expires || jid)
 *     jid      the sender's full JID, without a NUL
 *
 * decode() tells them apart by the first character: 'A' is version 2,
 * 'a' version 1, anything else no token of ours.  Each then also checks
 * its version byte, under its own alphabet: a version 1 token read as
 * base64url would begin with the byte 0x69 or 0x6a, and a version 2 token
 * is never base32, whose alphabet has no uppercase.
 *
 * The JID is readable by anyone who holds the token (it is only encoded),
 * but a token cannot be forged or altered without the key, and it stops
 * being accepted after its expiry.
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
#include "base64url.h"
#include "const-time.h"
#include "expiry.h"
#include "jid-check.h"
#include "key-file.h"

#define HMAC_RANDOM_KEY_LEN 32
/* The longest MAC of any version, and room for the bytes under any text
 * that fits a resourcepart (767 for base64url, 639 for base32). */
#define HMAC_MAC_MAX 16
#define HMAC_TOKEN_BYTES_MAX (CP_TOKEN_MAX * 6 / 8)

/* What tells one version of the format from another. */
typedef struct hmac_format {
    uint8_t version;  /* the first byte */
    char first_char;  /* what the version makes the token begin with */
    int64_t epoch;    /* expires counts seconds from it */
    size_t mac_len;   /* bytes of HMAC-SHA256 kept */
    bool (*decode_text)(const char *in, size_t in_len, uint8_t *out, size_t out_size,
                        size_t *out_len);
} hmac_format_t;

static const hmac_format_t hmac_v2 = {
    .version = 0x02,
    .first_char = 'A', /* base64url of 000000, the top six bits of 0x02 */
    .epoch = PC_EXPIRY_EPOCH_2026,
    .mac_len = 8,
    .decode_text = pc_base64url_decode,
};

static const hmac_format_t hmac_v1 = {
    .version = 0x01,
    .first_char = 'a', /* base32 of 00000, the top five bits of 0x01 */
    .epoch = PC_EXPIRY_EPOCH_UNIX,
    .mac_len = 16,
    .decode_text = pc_base32_decode,
};

/* Bytes before the JID: version, expires and MAC. */
static size_t hmac_header_len(const hmac_format_t *format)
{
    return 1 + PC_EXPIRY_LEN + format->mac_len;
}

/* The longest JID that version 2 takes (754 bytes). */
#define HMAC_JID_MAX (CP_TOKEN_MAX * 6 / 8 - (1 + PC_EXPIRY_LEN + 8))

typedef struct hmac_state {
    const cp_host_api_t *api; /* borrowed from the host until fini() */
    cp_host_t *host;
    pc_key_ring_t *keys;      /* owned; keys[0] signs, every key verifies */
    /* Owned; one per key, already keyed: a token copies one instead of
     * hashing the key again.  libsodium's HMAC-SHA256 rather than GLib's:
     * the same MAC in about 60% of the time (bench/README.md). */
    crypto_auth_hmacsha256_state *keyed;
} hmac_state_t;

/* Writes the MAC of FORMAT over version || expires || jid, under the key
 * of KEYED, into MAC (format->mac_len bytes). */
static void hmac_compute(const crypto_auth_hmacsha256_state *keyed, const hmac_format_t *format,
                         uint32_t expires, const uint8_t *jid, size_t jid_len, uint8_t *mac)
{
    uint8_t head[1 + PC_EXPIRY_LEN];
    uint8_t digest[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state hmac = *keyed;

    head[0] = format->version;
    pc_expiry_put(head + 1, expires);
    crypto_auth_hmacsha256_update(&hmac, head, sizeof head);
    crypto_auth_hmacsha256_update(&hmac, jid, jid_len);
    crypto_auth_hmacsha256_final(&hmac, digest);
    memcpy(mac, digest, format->mac_len);
    sodium_memzero(digest, sizeof digest);
    sodium_memzero(&hmac, sizeof hmac);
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

/* Makes version 2 tokens only. */
static int hmac_encode(void *state, const char *jid, int64_t expires, char *token,
                       size_t token_size)
{
    hmac_state_t *hmac = state;
    const hmac_format_t *format = &hmac_v2;
    size_t header_len = hmac_header_len(format);
    uint8_t bytes[HMAC_TOKEN_BYTES_MAX];
    size_t jid_len = strnlen(jid, HMAC_JID_MAX + 1);

    if (jid_len == 0)
        return CP_EFAIL;
    if (jid_len > HMAC_JID_MAX || pc_base64url_encoded_len(header_len + jid_len) >= token_size)
        return CP_ETOOLONG;
    uint32_t expires32 = pc_expiry_clamp(expires, format->epoch);

    bytes[0] = format->version;
    pc_expiry_put(bytes + 1, expires32);
    hmac_compute(&hmac->keyed[0], format, expires32, (const uint8_t *)jid, jid_len,
                 bytes + 1 + PC_EXPIRY_LEN);
    memcpy(bytes + header_len, jid, jid_len);
    pc_base64url_encode(bytes, header_len + jid_len, token);
    return CP_OK;
}

/* Decodes TOKEN (TOKEN_LEN characters) as a token of FORMAT. */
static int hmac_decode_format(hmac_state_t *hmac, const hmac_format_t *format, const char *token,
                              size_t token_len, char *jid, size_t jid_size)
{
    uint8_t bytes[HMAC_TOKEN_BYTES_MAX];
    size_t header_len = hmac_header_len(format);
    size_t n = 0;

    if (!format->decode_text(token, token_len, bytes, sizeof bytes, &n))
        return CP_EBADTOKEN;
    if (n <= header_len || bytes[0] != format->version)
        return CP_EBADTOKEN;

    const uint8_t *mac = bytes + 1 + PC_EXPIRY_LEN;
    const uint8_t *jid_bytes = bytes + header_len;
    size_t jid_len = n - header_len;
    uint32_t expires = pc_expiry_get(bytes + 1);

    /* Try every key, even after a match, so that the time taken does not
     * tell which key (if any) matched. */
    bool genuine = false;
    for (size_t i = 0; i < hmac->keys->count; i++) {
        uint8_t expected[HMAC_MAC_MAX];
        hmac_compute(&hmac->keyed[i], format, expires, jid_bytes, jid_len, expected);
        genuine |= pc_const_time_equal(expected, mac, format->mac_len);
    }
    if (!genuine)
        return CP_EBADTOKEN;
    /* Expiry only now: an unauthenticated deadline means nothing. */
    if (pc_expiry_passed(expires, format->epoch))
        return CP_EEXPIRED;
    return pc_jid_write(jid_bytes, jid_len, jid, jid_size);
}

static int hmac_decode(void *state, const char *token, char *jid, size_t jid_size)
{
    hmac_state_t *hmac = state;
    size_t token_len = strnlen(token, CP_TOKEN_MAX + 1);

    if (token_len > CP_TOKEN_MAX)
        return CP_EBADTOKEN;
    /* The first character tells the versions apart (see the top). */
    if (token[0] == hmac_v2.first_char)
        return hmac_decode_format(hmac, &hmac_v2, token, token_len, jid, jid_size);
    if (token[0] == hmac_v1.first_char)
        return hmac_decode_format(hmac, &hmac_v1, token, token_len, jid, jid_size);
    return CP_EBADTOKEN;
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
