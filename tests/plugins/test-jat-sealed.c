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
#include "fake-host.h"
#include "jat-checks.h"
#include "temp-file.h"

#define OVERHEAD 45     /* version, 24 bytes of nonce, 4 of expiry, 16 of tag */
#define LONGEST_JID 594 /* floor(1023 * 5 / 8) - OVERHEAD */
#define BYTES_MAX 700   /* room for any token's bytes in these tests */
#define KDF_CONTEXT "client-proxy jat-sealed v1"

static const char *const juliet = "juliet@example.com/balcony";

/* Builds a token by the documented format alone: KEY (KEY_LEN bytes, as in
 * the key file) through keyed BLAKE2b, then XChaCha20-Poly1305 over
 * expires || jid with VERSION as additional data. */
static char *forge_token_with(const uint8_t *key, size_t key_len, uint8_t version,
                              uint32_t expires, const void *jid, size_t jid_len)
{
    uint8_t aead_key[32];
    assert_int_equal(crypto_generichash(aead_key, sizeof aead_key, key, key_len,
                                        (const unsigned char *)KDF_CONTEXT, strlen(KDF_CONTEXT)),
                     0);
    assert_true(jid_len <= BYTES_MAX - OVERHEAD);
    uint8_t plain[BYTES_MAX];
    plain[0] = (uint8_t)(expires >> 24);
    plain[1] = (uint8_t)(expires >> 16);
    plain[2] = (uint8_t)(expires >> 8);
    plain[3] = (uint8_t)expires;
    memcpy(plain + 4, jid, jid_len);

    uint8_t bytes[BYTES_MAX];
    bytes[0] = version;
    randombytes_buf(bytes + 1, 24);
    unsigned long long len = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(bytes + 25, &len, plain, 4 + jid_len, bytes, 1,
                                               NULL, bytes + 1, aead_key);
    assert_int_equal(len, 4 + jid_len + 16);
    char *token = g_malloc(pc_base32_encoded_len(OVERHEAD + jid_len) + 1);
    pc_base32_encode(bytes, OVERHEAD + jid_len, token);
    return token;
}

/* The same, under a test key of 32 bytes of KEY_FILL. */
static char *forge_token(int key_fill, uint8_t version, uint32_t expires, const void *jid,
                         size_t jid_len)
{
    uint8_t key[32];
    memset(key, key_fill, sizeof key);
    return forge_token_with(key, sizeof key, version, expires, jid, jid_len);
}

/* The bytes under TOKEN; returns their number. */
static size_t token_bytes(const char *token, uint8_t bytes[BYTES_MAX])
{
    size_t n = 0;
    assert_true(pc_base32_decode(token, strlen(token), bytes, BYTES_MAX, &n));
    return n;
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

static void round_trip__keeps__unusual_jids_in_the_base32_alphabet(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = jat_fixture_with_keys(JAT_KEY1, JAT_NO_KEY);
    for (size_t i = 0; jat_unusual_jids[i] != NULL; i++) {
        char *token = jat_assert_round_trip(fx, jat_unusual_jids[i], jat_in_an_hour());
        jat_assert_base32_alphabet(token);
        assert_int_equal(strlen(token), pc_base32_encoded_len(OVERHEAD + strlen(jat_unusual_jids[i])));
        g_free(token);
    }
    jat_fixture_free(fx);
}

/* Each token has a fresh nonce, so two for one sender are unrelated, and
 * neither the JID nor any part of it shows, in the token or under it. */
static void encode__hides__the_jid_behind_a_fresh_nonce_every_time(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = jat_fixture_with_keys(JAT_KEY1, JAT_NO_KEY);
    const char *jid = "juliet.capulet@example.com/balcony";
    int64_t expires = jat_in_an_hour(); /* one deadline for all: only the nonce differs */
    GHashTable *seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    char *jid_base32 = g_malloc(pc_base32_encoded_len(strlen(jid)) + 1);
    pc_base32_encode((const uint8_t *)jid, strlen(jid), jid_base32);
    static const char *const parts[] = {"juliet", "capulet", "example", "balcony"};

    for (int i = 0; i < 200; i++) {
        char *token = jat_assert_round_trip(fx, jid, expires);
        if (g_hash_table_contains(seen, token))
            fail_msg("token %s was issued twice", token);
        uint8_t bytes[BYTES_MAX];
        size_t n = token_bytes(token, bytes);
        for (size_t p = 0; p < G_N_ELEMENTS(parts); p++) {
            if (strstr(token, parts[p]) != NULL || memmem(bytes, n, parts[p], strlen(parts[p])) != NULL)
                fail_msg("token %s shows \"%s\"", token, parts[p]);
        }
        /* Nor its base32 (whole groups of 8 characters, 5 bytes each). */
        char probe[9];
        for (size_t at = 0; at + 8 <= strlen(jid_base32); at += 8) {
            memcpy(probe, jid_base32 + at, 8);
            probe[8] = '\0';
            if (strstr(token, probe) != NULL)
                fail_msg("token %s holds \"%s\" of the JID's base32", token, probe);
        }
        g_hash_table_add(seen, token);
    }
    g_free(jid_base32);
    g_hash_table_destroy(seen);
    jat_fixture_free(fx);
}

static void decode__accepts__a_token_built_from_the_documented_format(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = jat_fixture_with_keys(JAT_KEY1, JAT_NO_KEY);
    const char *jid = "用户@例子.测试/a/b@c";
    char *token = forge_token(JAT_KEY1, 0x01, (uint32_t)jat_in_an_hour(), jid, strlen(jid));
    char back[CP_JID_MAX + 1];
    assert_int_equal(fx->ops->decode(fx->state, token, back, sizeof back), CP_OK);
    assert_string_equal(back, jid);
    g_free(token);

    /* The key file's bytes are never the AEAD key itself. */
    uint8_t raw[32];
    memset(raw, JAT_KEY1, sizeof raw);
    uint8_t plain[4 + 5] = {0xff, 0xff, 0xff, 0xff, 'a', '@', 'b', '/', 'c'};
    uint8_t bytes[OVERHEAD + 5];
    unsigned long long len = 0;
    bytes[0] = 0x01;
    randombytes_buf(bytes + 1, 24);
    crypto_aead_xchacha20poly1305_ietf_encrypt(bytes + 25, &len, plain, sizeof plain, bytes, 1,
                                               NULL, bytes + 1, raw);
    char raw_token[CP_TOKEN_MAX + 1];
    pc_base32_encode(bytes, sizeof bytes, raw_token);
    assert_int_equal(jat_decode_status(fx, raw_token), CP_EBADTOKEN);
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

    /* And a token made by the documented format from all 64 bytes opens. */
    uint8_t key[64];
    memset(key, 0x5a, sizeof key);
    token = forge_token_with(key, sizeof key, 0x01, (uint32_t)jat_in_an_hour(), "a@b/c", 5);
    assert_int_equal(jat_decode_status(a, token), CP_OK);
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
    assert_int_equal(fx->ops->encode(fx->state, "a@b/c", jat_in_an_hour(), token, 80),
                     CP_ETOOLONG);
    assert_int_equal(fx->ops->encode(fx->state, "", jat_in_an_hour(), token, sizeof token),
                     CP_EFAIL);
    jat_fixture_free(fx);
}

static void decode__refuses__every_single_bit_flip(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = jat_fixture_with_keys(JAT_KEY1, JAT_NO_KEY);
    char *token = jat_encode_ok(fx, "juliet@example.com/balcony", jat_in_an_hour());
    jat_assert_tampering_refused(fx, token, CP_OK);
    g_free(token);
    token = jat_encode_ok(fx, "juliet@example.com/balcony", fake_host_now() - 10);
    jat_assert_tampering_refused(fx, token, CP_EEXPIRED); /* altering one is forgery */
    g_free(token);
    jat_fixture_free(fx);
}

static void decode__refuses__truncated_extended_uppercase_and_padded_tokens(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = jat_fixture_with_keys(JAT_KEY1, JAT_NO_KEY);
    char *token = jat_encode_ok(fx, "juliet@example.com/balcony", jat_in_an_hour());
    jat_assert_reshaping_refused(fx, token);
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
    uint32_t later = (uint32_t)jat_in_an_hour();
    char *token = forge_token(JAT_KEY1, 0x02, later, "a@b/c", 5);
    assert_int_equal(jat_decode_status(fx, token), CP_EBADTOKEN);
    g_free(token);
    token = forge_token(JAT_KEY1, 0x01, later, "", 0); /* no JID at all */
    assert_int_equal(jat_decode_status(fx, token), CP_EBADTOKEN);
    g_free(token);
    token = forge_token(JAT_KEY1, 0x01, later, "a@b/c\0d", 7); /* a NUL would cut it short */
    assert_int_equal(jat_decode_status(fx, token), CP_EBADTOKEN);
    g_free(token);
    token = forge_token(JAT_KEY1, 0x01, later, "a@b/c", 5); /* the control: this one is fine */
    assert_int_equal(jat_decode_status(fx, token), CP_OK);
    g_free(token);
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
        cmocka_unit_test(round_trip__keeps__unusual_jids_in_the_base32_alphabet),
        cmocka_unit_test(encode__hides__the_jid_behind_a_fresh_nonce_every_time),
        cmocka_unit_test(decode__accepts__a_token_built_from_the_documented_format),
        cmocka_unit_test(init__uses__every_byte_of_a_long_key),
        cmocka_unit_test(encode__fits__the_longest_jid_and_no_longer),
        cmocka_unit_test(decode__refuses__every_single_bit_flip),
        cmocka_unit_test(decode__refuses__truncated_extended_uppercase_and_padded_tokens),
        cmocka_unit_test(decode__returns__eexpired_for_a_genuine_past_deadline),
        cmocka_unit_test(decode__refuses__tokens_under_another_key),
        cmocka_unit_test(decode__accepts__tokens_under_any_key_of_the_file),
        cmocka_unit_test(decode__accepts__tokens_from_another_instance_with_the_same_key_file),
        cmocka_unit_test(decode__refuses__genuine_tokens_of_another_version_or_shape),
        cmocka_unit_test(init__refuses__bad_key_files_naming_key_file),
        cmocka_unit_test(init__never__logs_key_bytes),
    };
    return cmocka_run_group_tests_name("jat-sealed", tests, setup, NULL);
}
