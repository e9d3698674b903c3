/* Unit tests for plugins/jat-sealed through its descriptor. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <glib.h>
#include <sodium.h>

#include "base32.h"
#include "base64url.h"
#include "fake-host.h"
#include "jat-checks.h"
#include "jat-formats.h"
#include "temp-file.h"

#define OVERHEAD 33        /* version, 4 bytes of expiry, 12 of siv, 16 of tag */
#define LONGEST_JID 734    /* floor(1023 * 6 / 8) - OVERHEAD */
#define V1_OVERHEAD 45     /* version, 24 bytes of nonce, 4 of expiry, 16 of tag */
#define V1_LONGEST_JID 594 /* floor(1023 * 5 / 8) - V1_OVERHEAD */

static const char *const juliet = "juliet@example.com/balcony";
static const char *const alice = "alice@example.org/phone";                  /* 23 bytes */
static const char *const jitsi = "0a1b2c3d-4e5f@meet.example.org/7f3a9c2e";  /* 39 bytes */

/* Version 1 tokens that jat-sealed.c itself made before issue 14 (at
 * commit 3dfbfff, random nonces), from key files holding JAT_KEY1 or
 * JAT_KEY2: what an upgrade must keep opening. */
static const struct v1_vector {
    int key;
    const char *jid;
    int64_t expires;
    int status; /* decode's today */
    const char *token;
} v1_vectors[] = {
    {JAT_KEY1, "alice@example.org/phone", 4294967295, CP_OK, /* 2106-02-07 */
     "af7nmsn3anq3vogyzztqy4wxgopnevbev4y2ygnpp7b3oai5p7t6muj4jj26fqkqig3wfyzh3kcyzkc4ikc2lbf5"
     "elf6qpj6wh4lmvh6o77q2"},
    {JAT_KEY1, "0a1b2c3d-4e5f@meet.example.org/7f3a9c2e", 4102444800, CP_OK, /* 2100-01-01 */
     "ah3krngz3b5nlvv2siz2fgcdtw3btgt3zjfuqxyujyqhxnvxlutvij7hnvy7vracs5rvsuvzz5tfl5xm44w5gxhq"
     "awwutx5fw2dszva2pfhvb74u2j6hjthlsoz7i5ycc53a6ki"},
    {JAT_KEY1, "jürgen@bücher.example/Gerät", 4294967295, CP_OK,
     "afyp2x7z5mzt476rdpk7vndmf7mcv3hjkonbawphyrn37h5oyppzocuzivukpopyytcqls24o3lev5y7ga5yxuiz"
     "gaarjgcvxnq75wgxixsodpcbtlttpmyv"},
    {JAT_KEY1, "alice@example.org/phone", 1767225600, CP_EEXPIRED, /* 2026-01-01 */
     "agoompzbukiu5criotb3lufzes2l6wtexmf6cn5qtqn36tn4eusf4mx5rxruhilah5voebbidvapryqiai3fm6ct"
     "obtclek4hjpgv54vk57gy"},
    {JAT_KEY1, "0a1b2c3d-4e5f@meet.example.org/7f3a9c2e", 1000000000, CP_EEXPIRED, /* 2001 */
     "ahpnvtqi5ic527gqpyxfrpuezxbue2662m6gnod3pv7dya3h3dr7r4avfcf44vuprgvxkyhmzgxseoddmtfawjiu"
     "ugoczpgqfiig4yjkc7vbmwla3hfg7ogxdra6vpvqmvfrr4y"},
    {JAT_KEY2, "alice@example.org/phone", 4294967295, CP_OK,
     "agzqyo53ouywjjqzzxtxgu46ir525ojrpo5skb23uc4fuyvpy4cmuiet2vanthtf7bwfynqvm7m4spmdbov4xzox"
     "6m557sae5yfxfp63rf224"},
    {JAT_KEY2, "jürgen@bücher.example/Gerät", 4294967295, CP_OK,
     "afpcsv2tszfdtbs4mkuhpyt3xzgztskc2uaqfj6g3dr7yu2e65yfzgy43mjsximup6xgvccf5d5kzmkt5v7gecz7"
     "ocfx7may63r5c2lruocguyikli3frp3f"},
    {JAT_KEY2, "alice@example.org/phone", 1767225600, CP_EEXPIRED,
     "ahteqgkpggfn6vy7nk5rjgbexekp3e5nd7h2i7zpomggkvinx5erm7uj3i7efg3ot3l5yirp5favqvgorijo5e7t"
     "52nyb6hoert73gt2cchns"},
};

/* A version 2 token that jat-sealed.c made when version 2 was written, for
 * alice under JAT_KEY1, expiring 2100-01-01 (0x8b309e00 seconds after
 * 2026), checked against a Python reading of the format (hashlib's BLAKE2b,
 * HChaCha20 by hand, and the cryptography package's ChaCha20-Poly1305)
 * besides jat-formats.c: a change to the format shows here even if
 * jat-formats.c changed with it. */
#define V2_VECTOR_EXPIRES INT64_C(4102444800)
static const char *const v2_vector =
    "AoswngC9jnXhXMD1oSw6-q1Z2Ak1LLrYoNjHY4GMH8iHTKB9bCCqc_wDPJ1wUzDRPbVKnsnRvXc";

/* A version 2 token under KEY_FILL by the documented format. */
static char *v2_token(int key_fill, uint8_t version, int64_t expires, const void *jid,
                      size_t jid_len)
{
    return jat_sealed_v2_token(jat_key_of(key_fill), version, jat_since_2026(expires), NULL, jid,
                               jid_len);
}

/* A version 1 token under KEY_FILL by the documented format, with a random
 * nonce. */
static char *v1_token(int key_fill, uint8_t version, int64_t expires, const void *jid,
                      size_t jid_len)
{
    return jat_sealed_v1_token(jat_key_of(key_fill), version, NULL, (uint32_t)expires, jid,
                               jid_len);
}

static int setup(void **state)
{
    (void)state;
    return sodium_init() < 0 ? -1 : 0;
}

static void descriptor__names__sealed_jat(void **unused)
{
    (void)unused;
    assert_int_equal(cp_plugin_descriptor.kind, CP_PLUGIN_JAT);
    assert_string_equal(cp_plugin_descriptor.name, "sealed");
    assert_null(fake_host_jat_ops()->forget); /* nothing kept per token */
}

static void init__uses__a_random_key_without_a_key_file(void **unused)
{
    (void)unused;
    jat_assert_random_key_when_no_key_file();
}

static void round_trip__keeps__unusual_jids_in_the_base64url_alphabet(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = jat_fixture_with_keys(JAT_KEY1, JAT_NO_KEY);
    for (size_t i = 0; jat_unusual_jids[i] != NULL; i++) {
        char *token = jat_assert_round_trip(fx, jat_unusual_jids[i], jat_in_an_hour());
        jat_assert_base64url_alphabet(token);
        assert_int_equal(token[0], 'A');
        assert_int_equal(strlen(token),
                         pc_base64url_encoded_len(OVERHEAD + strlen(jat_unusual_jids[i])));
        g_free(token);
    }
    jat_fixture_free(fx);
}

/* The token is exactly the documented layout, under the first key: the
 * nonce is made from what is sealed, so there is one token to compare. */
static void encode__writes__version_expiry_siv_ciphertext_and_tag(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = jat_fixture_with_keys(JAT_KEY1, JAT_KEY2);
    const char *jid = "romeo@example.net/orchard";
    int64_t expires = JAT_EPOCH_2026 + 0x01020304;
    char *token = jat_encode_ok(fx, jid, expires);
    char *expected = v2_token(JAT_KEY1, 0x02, expires, jid, strlen(jid));
    assert_string_equal(token, expected);
    g_free(token);
    g_free(expected);

    /* And the one kept from when the format was made. */
    token = jat_encode_ok(fx, alice, V2_VECTOR_EXPIRES);
    assert_string_equal(token, v2_vector);
    expected = v2_token(JAT_KEY1, 0x02, V2_VECTOR_EXPIRES, alice, strlen(alice));
    assert_string_equal(expected, v2_vector);
    g_free(token);
    g_free(expected);
    jat_fixture_free(fx);
}

/* The expiry is the one thing in the clear (authenticated, not hidden):
 * seconds since 2026 in bytes 1..4, clamped as jat-hmac's. */
/* Each token of encode__shows__only_the_expiry_in_the_clear: version 2,
 * and as long as its JID plus the fixed overhead. */
static void assert_version_2_of_juliet(const uint8_t *bytes, size_t n)
{
    assert_int_equal(n, OVERHEAD + strlen(juliet));
    assert_int_equal(bytes[0], 0x02);
}

static void encode__shows__only_the_expiry_in_the_clear(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = jat_fixture_with_keys(JAT_KEY1, JAT_NO_KEY);
    jat_assert_expiry_counted_from_2026(fx, assert_version_2_of_juliet);
    jat_fixture_free(fx);
}

/* Deterministic: the same JID and expiry give the same token (a stable
 * address), anything else another. */
static void encode__gives__one_token_per_jid_and_expiry(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = jat_fixture_with_keys(JAT_KEY1, JAT_NO_KEY);
    jat_assert_one_token_per_jid_and_expiry(fx);
    jat_fixture_free(fx);
}

/* Neither the JID nor any part of it shows, in the token or under it, and
 * tokens for one sender at different times share no siv. */
static void encode__hides__the_jid_in_every_token(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = jat_fixture_with_keys(JAT_KEY1, JAT_NO_KEY);
    const char *jid = "juliet.capulet@example.com/balcony";
    size_t jid_len = strlen(jid);
    GHashTable *seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    GHashTable *sivs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    static const char *const parts[] = {"juliet", "capulet", "example", "balcony"};
    /* The JID's base64url at each of the three alignments a byte can have,
     * in whole groups of four characters (three bytes). */
    char *jid_texts[3];
    for (size_t shift = 0; shift < 3; shift++)
        jid_texts[shift] = jat_base64url((const uint8_t *)jid + shift, jid_len - shift);

    for (int i = 0; i < 200; i++) {
        char *token = jat_assert_round_trip(fx, jid, jat_in_an_hour() + i);
        if (g_hash_table_contains(seen, token))
            fail_msg("token %s was issued twice", token);
        uint8_t bytes[CP_TOKEN_MAX];
        size_t n = jat_text_bytes(JAT_BASE64URL, token, bytes);
        for (size_t p = 0; p < G_N_ELEMENTS(parts); p++) {
            if (strstr(token, parts[p]) != NULL || memmem(bytes, n, parts[p], strlen(parts[p])) != NULL)
                fail_msg("token %s shows \"%s\"", token, parts[p]);
        }
        for (size_t shift = 0; shift < 3; shift++) {
            char probe[5];
            for (size_t at = 0; at + 4 <= strlen(jid_texts[shift]); at += 4) {
                memcpy(probe, jid_texts[shift] + at, 4);
                probe[4] = '\0';
                if (strstr(token, probe) != NULL)
                    fail_msg("token %s holds \"%s\" of the JID's base64url", token, probe);
            }
        }
        char *siv = jat_base64url(bytes + 5, 12);
        if (g_hash_table_contains(sivs, siv))
            fail_msg("siv %s came twice", siv);
        g_hash_table_add(sivs, siv);
        g_hash_table_add(seen, token);
    }
    for (size_t shift = 0; shift < 3; shift++)
        g_free(jid_texts[shift]);
    g_hash_table_destroy(seen);
    g_hash_table_destroy(sivs);
    jat_fixture_free(fx);
}

/* The lengths the issue asked for: 75 and 96 characters (version 1: 109
 * and 135). */
static void encode__writes__75_and_96_characters_for_typical_jids(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = jat_fixture_with_keys(JAT_KEY1, JAT_NO_KEY);
    char *token = jat_assert_round_trip(fx, alice, jat_in_an_hour());
    assert_int_equal(strlen(token), 75);
    g_free(token);
    token = jat_assert_round_trip(fx, jitsi, jat_in_an_hour());
    assert_int_equal(strlen(token), 96);
    g_free(token);
    jat_fixture_free(fx);
}

static void decode__accepts__a_token_built_from_the_documented_format(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = jat_fixture_with_keys(JAT_KEY1, JAT_NO_KEY);
    const char *jid = "用户@例子.测试/a/b@c";
    char *token = v2_token(JAT_KEY1, 0x02, jat_in_an_hour(), jid, strlen(jid));
    char back[CP_JID_MAX + 1];
    assert_int_equal(fx->ops->decode(fx->state, token, back, sizeof back), CP_OK);
    assert_string_equal(back, jid);
    g_free(token);

    /* The key file's bytes are never the AEAD key itself. */
    uint8_t raw[32];
    memset(raw, JAT_KEY1, sizeof raw);
    uint8_t bytes[OVERHEAD + 5] = {0x02, 0xff, 0xff, 0xff, 0xff};
    uint8_t nonce[24] = {0};
    unsigned long long len = 0;
    randombytes_buf(bytes + 5, 12);
    memcpy(nonce, bytes + 5, 12);
    memcpy(nonce + 12, bytes + 1, 4);
    crypto_aead_xchacha20poly1305_ietf_encrypt(bytes + 17, &len, (const uint8_t *)"a@b/c", 5,
                                               bytes, 5, NULL, nonce, raw);
    char *raw_token = jat_base64url(bytes, sizeof bytes);
    assert_int_equal(jat_decode_status(fx, raw_token), CP_EBADTOKEN);
    g_free(raw_token);
    jat_fixture_free(fx);
}

/* The AEAD alone is not enough: a token that opens but whose siv is not
 * the one its contents give (which only a holder of the key could make)
 * is refused. */
static void decode__refuses__a_token_whose_siv_is_not_its_own(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = jat_fixture_with_keys(JAT_KEY1, JAT_NO_KEY);
    uint32_t later = jat_since_2026(jat_in_an_hour());
    char *genuine = jat_sealed_v2_token(jat_key_of(JAT_KEY1), 0x02, later, NULL, "a@b/c", 5);
    assert_int_equal(jat_decode_status(fx, genuine), CP_OK);
    uint8_t bytes[CP_TOKEN_MAX];
    jat_text_bytes(JAT_BASE64URL, genuine, bytes);
    uint8_t siv[12];
    memcpy(siv, bytes + 5, 12);
    for (size_t i = 0; i < 12 * 8; i++) {
        siv[i / 8] ^= (uint8_t)(1u << (i % 8));
        char *token = jat_sealed_v2_token(jat_key_of(JAT_KEY1), 0x02, later, siv, "a@b/c", 5);
        if (jat_decode_status(fx, token) != CP_EBADTOKEN)
            fail_msg("a token sealed under siv bit %zu flipped was accepted", i);
        g_free(token);
        siv[i / 8] ^= (uint8_t)(1u << (i % 8));
    }
    g_free(genuine);
    jat_fixture_free(fx);
}

/* Keys longer than 32 bytes count in full: two 64-byte keys that differ
 * only in their last byte do not open each other's tokens. */
static void init__uses__every_byte_of_a_long_key(void **unused)
{
    (void)unused;
    char *hex = temp_hex_key(64, 0x5a);
    char *text_a = g_strdup_printf("%s\n", hex);
    hex[127] = 'b'; /* the last byte is now 0x5b */
    char *text_b = g_strdup_printf("%s\n", hex);
    jat_fixture_t *a = jat_fixture_with_key_file(text_a);
    jat_fixture_t *b = jat_fixture_with_key_file(text_b);
    char *token = jat_encode_ok(a, juliet, jat_in_an_hour());
    assert_int_equal(jat_decode_status(a, token), CP_OK);
    assert_int_equal(jat_decode_status(b, token), CP_EBADTOKEN);
    g_free(token);

    /* And tokens made by the documented formats from all 64 bytes open. */
    uint8_t key[64];
    memset(key, 0x5a, sizeof key);
    jat_key_t long_key = {key, sizeof key};
    token = jat_sealed_v2_token(long_key, 0x02, jat_since_2026(jat_in_an_hour()), NULL, "a@b/c", 5);
    assert_int_equal(jat_decode_status(a, token), CP_OK);
    assert_int_equal(jat_decode_status(b, token), CP_EBADTOKEN);
    g_free(token);
    token = jat_sealed_v1_token(long_key, 0x01, NULL, (uint32_t)jat_in_an_hour(), "a@b/c", 5);
    assert_int_equal(jat_decode_status(a, token), CP_OK);
    assert_int_equal(jat_decode_status(b, token), CP_EBADTOKEN);
    g_free(token);
    jat_fixture_free(a);
    jat_fixture_free(b);
    g_free(text_a);
    g_free(text_b);
    g_free(hex);
}

static void encode__fits__the_longest_jid_and_no_longer(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = jat_fixture_with_keys(JAT_KEY1, JAT_NO_KEY);
    char token[CP_TOKEN_MAX + 1];
    char *jid = jat_jid_of_length(LONGEST_JID);
    char *longest = jat_assert_round_trip(fx, jid, jat_in_an_hour());
    assert_int_equal(strlen(longest), CP_TOKEN_MAX);
    g_free(longest);
    g_free(jid);

    jid = jat_jid_of_length(LONGEST_JID + 1);
    assert_int_equal(fx->ops->encode(fx->state, jid, jat_in_an_hour(), token, sizeof token),
                     CP_ETOOLONG);
    g_free(jid);

    /* A larger buffer than promised does not stretch the limit. */
    char big[4 * CP_TOKEN_MAX];
    jid = jat_jid_of_length(LONGEST_JID + 1);
    assert_int_equal(fx->ops->encode(fx->state, jid, jat_in_an_hour(), big, sizeof big),
                     CP_ETOOLONG);
    g_free(jid);
    jid = jat_jid_of_length(CP_JID_MAX);
    assert_int_equal(fx->ops->encode(fx->state, jid, jat_in_an_hour(), big, sizeof big),
                     CP_ETOOLONG);
    g_free(jid);
    /* A smaller one than promised is refused rather than overrun. */
    assert_int_equal(fx->ops->encode(fx->state, "a@b/c", jat_in_an_hour(), token, 51),
                     CP_ETOOLONG);
    assert_int_equal(fx->ops->encode(fx->state, "a@b/c", jat_in_an_hour(), token, 52), CP_OK);
    assert_int_equal(fx->ops->encode(fx->state, "", jat_in_an_hour(), token, sizeof token),
                     CP_EFAIL);
    jat_fixture_free(fx);
}

static void decode__refuses__every_single_bit_flip(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = jat_fixture_with_keys(JAT_KEY1, JAT_NO_KEY);
    char *token = jat_encode_ok(fx, juliet, jat_in_an_hour());
    jat_assert_tampering_refused(fx, JAT_BASE64URL, token, CP_OK);
    g_free(token);
    token = jat_encode_ok(fx, juliet, fake_host_now() - 10);
    jat_assert_tampering_refused(fx, JAT_BASE64URL, token, CP_EEXPIRED); /* altering one is forgery */
    g_free(token);
    jat_fixture_free(fx);
}

static void decode__refuses__truncated_extended_recased_and_padded_tokens(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = jat_fixture_with_keys(JAT_KEY1, JAT_NO_KEY);
    char *token = jat_encode_ok(fx, juliet, jat_in_an_hour());
    jat_assert_reshaping_refused(fx, JAT_BASE64URL, token);
    g_free(token);
    /* One with '-' or '_' in it, for the standard alphabet's '+' and '/'. */
    for (int i = 0;; i++) {
        assert_true(i < 1000);
        token = jat_encode_ok(fx, juliet, jat_in_an_hour() + i);
        if (strpbrk(token, "-_") != NULL)
            break;
        g_free(token);
    }
    jat_assert_reshaping_refused(fx, JAT_BASE64URL, token);
    g_free(token);
    jat_fixture_free(fx);
}

static void decode__returns__eexpired_for_a_genuine_past_deadline(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = jat_fixture_with_keys(JAT_KEY1, JAT_NO_KEY);
    jat_assert_deadlines_kept(fx);
    jat_fixture_free(fx);
}

/* The expiry is in the clear but authenticated: moving an expired token's
 * deadline forward is forgery, not expiry. */
static void decode__refuses__an_expired_token_with_its_deadline_moved(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = jat_fixture_with_keys(JAT_KEY1, JAT_NO_KEY);
    char *token = jat_encode_ok(fx, juliet, fake_host_now() - 10);
    assert_int_equal(jat_decode_status(fx, token), CP_EEXPIRED);
    uint8_t bytes[CP_TOKEN_MAX];
    size_t n = jat_text_bytes(JAT_BASE64URL, token, bytes);
    for (size_t i = 1; i < 5; i++) {
        for (int bit = 0; bit < 8; bit++) {
            bytes[i] ^= (uint8_t)(1u << bit);
            char *moved = jat_bytes_text(JAT_BASE64URL, bytes, n);
            if (jat_decode_status(fx, moved) != CP_EBADTOKEN)
                fail_msg("expired token with bit %d of expiry byte %zu flipped was not refused",
                         bit, i);
            g_free(moved);
            bytes[i] ^= (uint8_t)(1u << bit);
        }
    }
    bytes[1] = 0xff; /* a century later */
    char *moved = jat_bytes_text(JAT_BASE64URL, bytes, n);
    assert_int_equal(jat_decode_status(fx, moved), CP_EBADTOKEN);
    g_free(moved);
    g_free(token);
    jat_fixture_free(fx);
}

static void decode__refuses__tokens_under_another_key(void **unused)
{
    (void)unused;
    jat_assert_other_keys_refused();
}

static void decode__accepts__tokens_under_any_key_of_the_file(void **unused)
{
    (void)unused;
    jat_assert_every_key_of_the_file_opens();
}

/* A restart, or a second instance, reads the same key file: tokens issued
 * by one open in the other, both ways, also after the first is gone. */
static void decode__accepts__tokens_from_another_instance_with_the_same_key_file(void **unused)
{
    (void)unused;
    char *hex = temp_hex_key(48, 0x37);
    char *text = g_strdup_printf("# shared\nk1 %s\n", hex);
    char *path = temp_file_write(text, 0600);
    const char *config[] = {"key_file", path, NULL};
    jat_fixture_t *first = jat_fixture_new(config);
    jat_fixture_t *second = jat_fixture_new(config);

    for (size_t i = 0; jat_unusual_jids[i] != NULL; i++) {
        char back[CP_JID_MAX + 1];
        char *token = jat_encode_ok(first, jat_unusual_jids[i], jat_in_an_hour());
        assert_int_equal(second->ops->decode(second->state, token, back, sizeof back), CP_OK);
        assert_string_equal(back, jat_unusual_jids[i]);
        g_free(token);
    }
    char *token = jat_encode_ok(second, juliet, jat_in_an_hour());
    jat_fixture_free(first); /* the process that issued nothing here stops... */
    jat_fixture_free(second); /* ...and so does the one that issued it */
    jat_fixture_t *restarted = jat_fixture_new(config);
    assert_int_equal(jat_decode_status(restarted, token), CP_OK);
    g_free(token);
    jat_fixture_free(restarted);
    temp_file_remove(path);
    g_free(text);
    g_free(hex);
}

static void decode__refuses__genuine_tokens_of_another_version_or_shape(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = jat_fixture_with_keys(JAT_KEY1, JAT_NO_KEY);
    int64_t later = jat_in_an_hour();
    const struct {
        char *token;
        int status;
    } cases[] = {
        /* Version 2's layout under other version bytes, 0x01 included: the
         * first character is still 'A', but the byte says otherwise. */
        {v2_token(JAT_KEY1, 0x01, later, "a@b/c", 5), CP_EBADTOKEN},
        {v2_token(JAT_KEY1, 0x00, later, "a@b/c", 5), CP_EBADTOKEN},
        {v2_token(JAT_KEY1, 0x03, later, "a@b/c", 5), CP_EBADTOKEN},
        {v2_token(JAT_KEY1, 0x02, later, "", 0), CP_EBADTOKEN},          /* no JID at all */
        {v2_token(JAT_KEY1, 0x02, later, "a@b/c\0d", 7), CP_EBADTOKEN},  /* a NUL would cut it short */
        {v2_token(JAT_KEY1, 0x02, later, "a@b/c", 5), CP_OK},            /* the control */
        /* And version 1's, as it always was. */
        {v1_token(JAT_KEY1, 0x02, later, "a@b/c", 5), CP_EBADTOKEN},
        {v1_token(JAT_KEY1, 0x01, later, "", 0), CP_EBADTOKEN},
        {v1_token(JAT_KEY1, 0x01, later, "a@b/c\0d", 7), CP_EBADTOKEN},
        {v1_token(JAT_KEY1, 0x01, later, "a@b/c", 5), CP_OK},            /* the control */
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        int status = jat_decode_status(fx, cases[i].token);
        if (status != cases[i].status)
            fail_msg("case %zu (\"%s\"): decode gave %d, not %d", i, cases[i].token, status,
                     cases[i].status);
        g_free(cases[i].token);
    }
    jat_fixture_free(fx);
}

/* ---- Version 1 ---------------------------------------------------------- */

/* Each vector opens, with its JID, or is expired, under a key file that
 * lists its key, first or second. */
static void decode__accepts__version_1_tokens_the_old_code_made(void **unused)
{
    (void)unused;
    jat_fixture_t *rotating = jat_fixture_with_keys(JAT_KEY2, JAT_KEY1);
    for (size_t i = 0; i < G_N_ELEMENTS(v1_vectors); i++) {
        const struct v1_vector *v = &v1_vectors[i];
        char back[CP_JID_MAX + 1];
        int status = rotating->ops->decode(rotating->state, v->token, back, sizeof back);
        if (status != v->status)
            fail_msg("version 1 vector %zu: decode gave %d, not %d", i, status, v->status);
        if (status == CP_OK)
            assert_string_equal(back, v->jid);
        jat_assert_base32_alphabet(v->token);
        assert_int_equal(v->token[0], 'a');
        assert_int_equal(strlen(v->token), pc_base32_encoded_len(V1_OVERHEAD + strlen(v->jid)));
    }
    jat_fixture_free(rotating);
}

/* jat-formats.c writes version 1 as the old code did: given each vector's
 * nonce, it makes the vector, byte for byte. */
static void version_1__is__what_jat_formats_builds(void **unused)
{
    (void)unused;
    for (size_t i = 0; i < G_N_ELEMENTS(v1_vectors); i++) {
        const struct v1_vector *v = &v1_vectors[i];
        uint8_t bytes[CP_TOKEN_MAX];
        jat_text_bytes(JAT_BASE32, v->token, bytes);
        char *token = jat_sealed_v1_token(jat_key_of(v->key), 0x01, bytes + 1,
                                          (uint32_t)v->expires, v->jid, strlen(v->jid));
        assert_string_equal(token, v->token);
        g_free(token);
    }
}

/* Refused once expired (the vectors above past 2026-01-01, and fresh ones
 * a few seconds either side of now), and under a file without their key. */
static void decode__refuses__version_1_tokens_once_expired_or_under_another_key(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = jat_fixture_with_keys(JAT_KEY1, JAT_NO_KEY);
    int64_t now = fake_host_now();
    char *token = v1_token(JAT_KEY1, 0x01, now + 60, juliet, strlen(juliet));
    assert_int_equal(jat_decode_status(fx, token), CP_OK);
    g_free(token);
    token = v1_token(JAT_KEY1, 0x01, now - 10, juliet, strlen(juliet));
    assert_int_equal(jat_decode_status(fx, token), CP_EEXPIRED);
    g_free(token);
    token = v1_token(JAT_KEY1, 0x01, 0, juliet, strlen(juliet));
    assert_int_equal(jat_decode_status(fx, token), CP_EEXPIRED);
    g_free(token);

    jat_fixture_t *only_key2 = jat_fixture_with_keys(JAT_KEY2, JAT_NO_KEY);
    for (size_t i = 0; i < G_N_ELEMENTS(v1_vectors); i++) {
        const struct v1_vector *v = &v1_vectors[i];
        jat_fixture_t *mine = v->key == JAT_KEY1 ? fx : only_key2;
        jat_fixture_t *other = v->key == JAT_KEY1 ? only_key2 : fx;
        assert_int_equal(jat_decode_status(mine, v->token), v->status);
        assert_int_equal(jat_decode_status(other, v->token), CP_EBADTOKEN);
    }
    jat_fixture_free(only_key2);
    jat_fixture_free(fx);
}

static void decode__refuses__every_single_bit_flip_of_a_version_1_token(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = jat_fixture_with_keys(JAT_KEY1, JAT_NO_KEY);
    jat_assert_tampering_refused(fx, JAT_BASE32, v1_vectors[0].token, CP_OK);
    jat_assert_tampering_refused(fx, JAT_BASE32, v1_vectors[3].token, CP_EEXPIRED);
    jat_assert_reshaping_refused(fx, JAT_BASE32, v1_vectors[0].token);
    jat_fixture_free(fx);
}

static void decode__accepts__a_version_1_token_of_the_longest_jid(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = jat_fixture_with_keys(JAT_KEY1, JAT_NO_KEY);
    char *jid = jat_jid_of_length(V1_LONGEST_JID);
    char *token = v1_token(JAT_KEY1, 0x01, jat_in_an_hour(), jid, V1_LONGEST_JID);
    assert_int_equal(strlen(token), CP_TOKEN_MAX);
    char back[CP_JID_MAX + 1];
    assert_int_equal(fx->ops->decode(fx->state, token, back, sizeof back), CP_OK);
    assert_string_equal(back, jid);
    g_free(token);
    g_free(jid);
    jat_fixture_free(fx);
}

/* A version 1 token under JAT_KEY1, for jat_assert_versions_apart(). */
static char *v1_under_key1(int64_t expires, const char *jid, size_t jid_len)
{
    return v1_token(JAT_KEY1, 0x01, expires, jid, jid_len);
}

/* The first character says which version a token is, and nothing can be
 * read as the other: a version 1 token's bytes, or its text, never pass as
 * version 2, nor the other way round. */
static void decode__never__reads_one_version_as_the_other(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = jat_fixture_with_keys(JAT_KEY1, JAT_NO_KEY);
    char *genuine = jat_encode_ok(fx, juliet, jat_in_an_hour());
    jat_assert_versions_apart(fx, v1_under_key1, genuine);
    g_free(genuine);
    jat_fixture_free(fx);
}

static void init__refuses__bad_key_files_naming_key_file(void **unused)
{
    (void)unused;
    jat_assert_bad_key_files_refused();
}

static void init__never__logs_key_bytes(void **unused)
{
    (void)unused;
    jat_assert_key_bytes_never_logged();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(descriptor__names__sealed_jat),
        cmocka_unit_test(init__uses__a_random_key_without_a_key_file),
        cmocka_unit_test(round_trip__keeps__unusual_jids_in_the_base64url_alphabet),
        cmocka_unit_test(encode__writes__version_expiry_siv_ciphertext_and_tag),
        cmocka_unit_test(encode__shows__only_the_expiry_in_the_clear),
        cmocka_unit_test(encode__gives__one_token_per_jid_and_expiry),
        cmocka_unit_test(encode__hides__the_jid_in_every_token),
        cmocka_unit_test(encode__writes__75_and_96_characters_for_typical_jids),
        cmocka_unit_test(decode__accepts__a_token_built_from_the_documented_format),
        cmocka_unit_test(decode__refuses__a_token_whose_siv_is_not_its_own),
        cmocka_unit_test(init__uses__every_byte_of_a_long_key),
        cmocka_unit_test(encode__fits__the_longest_jid_and_no_longer),
        cmocka_unit_test(decode__refuses__every_single_bit_flip),
        cmocka_unit_test(decode__refuses__truncated_extended_recased_and_padded_tokens),
        cmocka_unit_test(decode__returns__eexpired_for_a_genuine_past_deadline),
        cmocka_unit_test(decode__refuses__an_expired_token_with_its_deadline_moved),
        cmocka_unit_test(decode__refuses__tokens_under_another_key),
        cmocka_unit_test(decode__accepts__tokens_under_any_key_of_the_file),
        cmocka_unit_test(decode__accepts__tokens_from_another_instance_with_the_same_key_file),
        cmocka_unit_test(decode__refuses__genuine_tokens_of_another_version_or_shape),
        cmocka_unit_test(decode__accepts__version_1_tokens_the_old_code_made),
        cmocka_unit_test(version_1__is__what_jat_formats_builds),
        cmocka_unit_test(decode__refuses__version_1_tokens_once_expired_or_under_another_key),
        cmocka_unit_test(decode__refuses__every_single_bit_flip_of_a_version_1_token),
        cmocka_unit_test(decode__accepts__a_version_1_token_of_the_longest_jid),
        cmocka_unit_test(decode__never__reads_one_version_as_the_other),
        cmocka_unit_test(init__refuses__bad_key_files_naming_key_file),
        cmocka_unit_test(init__never__logs_key_bytes),
    };
    return cmocka_run_group_tests_name("jat-sealed", tests, setup, NULL);
}
