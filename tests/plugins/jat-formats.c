#include "jat-formats.h"

#include <setjmp.h>
#include <stdarg.h>
#include <string.h>

#include <cmocka.h>
#include <glib.h>
#include <sodium.h>

#include "base32.h"

#define JAT_BYTES_MAX 800 /* room for the bytes of any token */

jat_key_t jat_key_of(int fill)
{
    static uint8_t keys[256][32];
    assert_in_range(fill, 0, 255);
    memset(keys[fill], fill, sizeof keys[fill]);
    return (jat_key_t){keys[fill], sizeof keys[fill]};
}

uint32_t jat_since_2026(int64_t time)
{
    if (time <= JAT_EPOCH_2026)
        return 0;
    return time - JAT_EPOCH_2026 > UINT32_MAX ? UINT32_MAX : (uint32_t)(time - JAT_EPOCH_2026);
}

char *jat_base64url(const uint8_t *bytes, size_t len)
{
    char *text = g_base64_encode(bytes, len);
    for (char *p = text; *p != '\0'; p++) {
        if (*p == '+')
            *p = '-';
        else if (*p == '/')
            *p = '_';
        else if (*p == '=')
            *p = '\0';
    }
    return text;
}

static void put_be32(uint8_t *out, uint32_t value)
{
    out[0] = (uint8_t)(value >> 24);
    out[1] = (uint8_t)(value >> 16);
    out[2] = (uint8_t)(value >> 8);
    out[3] = (uint8_t)value;
}

/* HMAC-SHA256 by GLib of VERSION || EXPIRES || JID, under KEY. */
static void hmac_of(jat_key_t key, uint8_t version, uint32_t expires, const void *jid,
                    size_t jid_len, uint8_t digest[32])
{
    uint8_t head[5] = {version};
    gsize digest_len = 32;
    put_be32(head + 1, expires);
    GHmac *hmac = g_hmac_new(G_CHECKSUM_SHA256, key.bytes, key.len);
    g_hmac_update(hmac, head, sizeof head);
    g_hmac_update(hmac, jid, (gssize)jid_len);
    g_hmac_get_digest(hmac, digest, &digest_len);
    g_hmac_unref(hmac);
    assert_int_equal(digest_len, 32);
}

/* version || expires || the first MAC_LEN bytes of the HMAC || jid, into BYTES. */
static size_t hmac_bytes(jat_key_t key, uint8_t version, uint32_t expires, size_t mac_len,
                         const void *jid, size_t jid_len, uint8_t bytes[JAT_BYTES_MAX])
{
    uint8_t digest[32];
    assert_true(5 + mac_len + jid_len <= JAT_BYTES_MAX);
    hmac_of(key, version, expires, jid, jid_len, digest);
    bytes[0] = version;
    put_be32(bytes + 1, expires);
    memcpy(bytes + 5, digest, mac_len);
    memcpy(bytes + 5 + mac_len, jid, jid_len);
    return 5 + mac_len + jid_len;
}

char *jat_hmac_v1_token(jat_key_t key, uint8_t version, uint32_t expires, const void *jid,
                        size_t jid_len)
{
    uint8_t bytes[JAT_BYTES_MAX];
    size_t n = hmac_bytes(key, version, expires, 16, jid, jid_len, bytes);
    char *token = g_malloc(pc_base32_encoded_len(n) + 1);
    pc_base32_encode(bytes, n, token);
    return token;
}

char *jat_hmac_v2_token(jat_key_t key, uint8_t version, uint32_t expires, const void *jid,
                        size_t jid_len)
{
    uint8_t bytes[JAT_BYTES_MAX];
    size_t n = hmac_bytes(key, version, expires, 8, jid, jid_len, bytes);
    return jat_base64url(bytes, n);
}

/* The key for one use of KEY: keyed BLAKE2b-256 with CONTEXT as its key. */
static void derive(jat_key_t key, const char *context, uint8_t out[32])
{
    assert_int_equal(crypto_generichash(out, 32, key.bytes, key.len,
                                        (const unsigned char *)context, strlen(context)),
                     0);
}

char *jat_sealed_v1_token(jat_key_t key, uint8_t version, const uint8_t *nonce,
                          uint32_t expires, const void *jid, size_t jid_len)
{
    uint8_t aead_key[32];
    uint8_t plain[JAT_BYTES_MAX];
    uint8_t bytes[JAT_BYTES_MAX];
    unsigned long long len = 0;

    assert_true(45 + jid_len <= JAT_BYTES_MAX);
    derive(key, "client-proxy jat-sealed v1", aead_key);
    put_be32(plain, expires);
    memcpy(plain + 4, jid, jid_len);
    bytes[0] = version;
    if (nonce != NULL)
        memcpy(bytes + 1, nonce, 24);
    else
        randombytes_buf(bytes + 1, 24);
    crypto_aead_xchacha20poly1305_ietf_encrypt(bytes + 25, &len, plain, 4 + jid_len, bytes, 1,
                                               NULL, bytes + 1, aead_key);
    assert_int_equal(len, 4 + jid_len + 16);
    char *token = g_malloc(pc_base32_encoded_len(45 + jid_len) + 1);
    pc_base32_encode(bytes, 45 + jid_len, token);
    return token;
}

char *jat_sealed_v2_token(jat_key_t key, uint8_t version, uint32_t expires, const uint8_t *siv,
                          const void *jid, size_t jid_len)
{
    uint8_t aead_key[32], siv_key[32];
    uint8_t bytes[JAT_BYTES_MAX];
    uint8_t nonce[24] = {0};
    uint8_t digest[16];
    unsigned long long len = 0;

    assert_true(33 + jid_len <= JAT_BYTES_MAX);
    derive(key, "client-proxy jat-sealed v2 aead", aead_key);
    derive(key, "client-proxy jat-sealed v2 siv", siv_key);
    bytes[0] = version;
    put_be32(bytes + 1, expires);

    /* siv: BLAKE2b-128 of version || expires || jid under the siv key, cut to 12. */
    uint8_t *input = g_malloc(5 + jid_len);
    memcpy(input, bytes, 5);
    memcpy(input + 5, jid, jid_len);
    assert_int_equal(crypto_generichash(digest, sizeof digest, input, 5 + jid_len, siv_key,
                                        sizeof siv_key),
                     0);
    g_free(input);
    memcpy(bytes + 5, siv != NULL ? siv : digest, 12);

    /* nonce: siv || expires || 8 zero bytes. */
    memcpy(nonce, bytes + 5, 12);
    memcpy(nonce + 12, bytes + 1, 4);
    crypto_aead_xchacha20poly1305_ietf_encrypt(bytes + 17, &len, jid, jid_len, bytes, 5, NULL,
                                               nonce, aead_key);
    assert_int_equal(len, jid_len + 16);
    return jat_base64url(bytes, 33 + jid_len);
}
