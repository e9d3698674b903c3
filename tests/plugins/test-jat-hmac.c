/* Unit tests for plugins/jat-hmac through its descriptor. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <glib.h>

#include "base32.h"
#include "fake-host.h"
#include "jat-checks.h"

#define HEADER_LEN 21   /* version, 4 bytes of expiry, 16 bytes of MAC */
#define LONGEST_JID 618 /* floor(1023 * 5 / 8) - HEADER_LEN */

#define KEY1 JAT_KEY1
#define KEY2 JAT_KEY2
#define NO_KEY JAT_NO_KEY

/* Builds a token by the documented format alone, under key KEY_FILL. */
static char *forge_token(int key_fill, uint8_t version, uint32_t expires,
                         const void *jid, size_t jid_len)
{
    uint8_t key[32];
    memset(key, key_fill, sizeof key);
    uint8_t bytes[HEADER_LEN + 700];
    uint8_t digest[32];
    gsize digest_len = sizeof digest;
    assert_true(jid_len <= 700);

    GByteArray *data = g_byte_array_new();
    uint8_t head[5] = {version, (uint8_t)(expires >> 24), (uint8_t)(expires >> 16),
                       (uint8_t)(expires >> 8), (uint8_t)expires};
    g_byte_array_append(data, head, 5);
    g_byte_array_append(data, jid, (guint)jid_len);
    GHmac *hmac = g_hmac_new(G_CHECKSUM_SHA256, key, 32);
    g_hmac_update(hmac, data->data, data->len);
    g_hmac_get_digest(hmac, digest, &digest_len);
    g_hmac_unref(hmac);
    g_byte_array_free(data, TRUE);

    memcpy(bytes, head, 5);
    memcpy(bytes + 5, digest, 16);
    memcpy(bytes + HEADER_LEN, jid, jid_len);
    char *token = g_malloc(pc_base32_encoded_len(HEADER_LEN + jid_len) + 1);
    pc_base32_encode(bytes, HEADER_LEN + jid_len, token);
    return token;
}

static void descriptor__names__hmac_jat(void **unused)
{
    (void)unused;
    assert_int_equal(cp_plugin_descriptor.kind, CP_PLUGIN_JAT);
    assert_string_equal(cp_plugin_descriptor.name, "hmac");
}

static void init__uses__a_random_key_without_a_key_file(void **unused)
{
    (void)unused;
    jat_assert_random_key_when_no_key_file();
}

static void round_trip__keeps__unusual_jids_in_the_base32_alphabet(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = jat_fixture_with_keys(KEY1, NO_KEY);
    for (size_t i = 0; jat_unusual_jids[i] != NULL; i++) {
        char *token = jat_assert_round_trip(fx, jat_unusual_jids[i], jat_in_an_hour());
        jat_assert_base32_alphabet(token);
        g_free(token);
    }
    jat_fixture_free(fx);
}

/* The token is exactly the documented layout, under the first key. */
static void encode__writes__version_expiry_truncated_mac_and_jid(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = jat_fixture_with_keys(KEY1, KEY2);
    const char *jid = "romeo@example.net/orchard";
    char *token = jat_encode_ok(fx, jid, 0x01020304);
    char *expected = forge_token(KEY1, 0x01, 0x01020304, jid, strlen(jid));
    assert_string_equal(token, expected);
    g_free(token);
    g_free(expected);
    jat_fixture_free(fx);
}

static void decode__accepts__a_token_built_from_the_documented_format(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = jat_fixture_with_keys(KEY1, NO_KEY);
    const char *jid = "用户@例子.测试/a/b@c";
    char *token = forge_token(KEY1, 0x01, (uint32_t)jat_in_an_hour(), jid, strlen(jid));
    char back[CP_JID_MAX + 1];
    assert_int_equal(fx->ops->decode(fx->state, token, back, sizeof back), CP_OK);
    assert_string_equal(back, jid);
    g_free(token);
    jat_fixture_free(fx);
}

static void encode__fits__the_longest_jid_and_no_longer(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = jat_fixture_with_keys(KEY1, NO_KEY);
    char token[CP_TOKEN_MAX + 1];
    char *jid = jat_jid_of_length(LONGEST_JID);
    char *longest = jat_assert_round_trip(fx, jid, jat_in_an_hour());
    assert_int_equal(strlen(longest), CP_TOKEN_MAX);
    g_free(longest);
    g_free(jid);

    jid = jat_jid_of_length(LONGEST_JID + 1);
    assert_int_equal(fx->ops->encode(fx->state, jid, jat_in_an_hour(), token, sizeof token), CP_ETOOLONG);
    g_free(jid);
    jid = jat_jid_of_length(14 + 1023); /* a 1023-byte resource does not fit */
    assert_int_equal(fx->ops->encode(fx->state, jid, jat_in_an_hour(), token, sizeof token), CP_ETOOLONG);
    g_free(jid);

    /* A larger buffer than promised does not stretch the limit. */
    char big[4 * CP_TOKEN_MAX];
    jid = jat_jid_of_length(LONGEST_JID + 1);
    assert_int_equal(fx->ops->encode(fx->state, jid, jat_in_an_hour(), big, sizeof big), CP_ETOOLONG);
    g_free(jid);
    jid = jat_jid_of_length(CP_JID_MAX);
    assert_int_equal(fx->ops->encode(fx->state, jid, jat_in_an_hour(), big, sizeof big), CP_ETOOLONG);
    g_free(jid);
    jat_fixture_free(fx);
}

static void decode__refuses__every_single_bit_flip(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = jat_fixture_with_keys(KEY1, NO_KEY);
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
    jat_fixture_t *fx = jat_fixture_with_keys(KEY1, NO_KEY);
    char *token = jat_encode_ok(fx, "juliet@example.com/balcony", jat_in_an_hour());
    jat_assert_reshaping_refused(fx, token);
    g_free(token);
    jat_fixture_free(fx);
}

static void decode__returns__eexpired_for_a_genuine_past_deadline(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = jat_fixture_with_keys(KEY1, NO_KEY);
    jat_assert_deadlines_kept(fx);
    jat_fixture_free(fx);
}

/* The MAC is checked before the deadline: moving an expired token's
 * deadline forward is forgery, not expiry. */
static void decode__refuses__an_expired_token_with_its_deadline_moved(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = jat_fixture_with_keys(KEY1, NO_KEY);
    char *token = jat_encode_ok(fx, "juliet@example.com/balcony", fake_host_now() - 10);
    uint8_t bytes[700];
    size_t n = 0;
    char moved[CP_TOKEN_MAX + 1];
    assert_true(pc_base32_decode(token, strlen(token), bytes, sizeof bytes, &n));
    uint8_t deadline_top = bytes[1];
    bytes[1] = 0xff; /* expires in 2105 */
    pc_base32_encode(bytes, n, moved);
    assert_int_equal(jat_decode_status(fx, moved), CP_EBADTOKEN);
    /* Any other alteration of an expired token is forgery too. */
    bytes[1] = deadline_top;
    for (size_t i = 5; i < n; i++) {
        bytes[i] ^= 0x01;
        pc_base32_encode(bytes, n, moved);
        if (jat_decode_status(fx, moved) != CP_EBADTOKEN)
            fail_msg("expired token altered at byte %zu was not refused as forged", i);
        bytes[i] ^= 0x01;
    }
    pc_base32_encode(bytes, n, moved);
    assert_string_equal(moved, token); /* the control: unaltered, it is merely expired */
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

static void decode__refuses__genuine_tokens_of_another_version_or_shape(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = jat_fixture_with_keys(KEY1, NO_KEY);
    uint32_t later = (uint32_t)jat_in_an_hour();
    char *token = forge_token(KEY1, 0x02, later, "a@b/c", 5);
    assert_int_equal(jat_decode_status(fx, token), CP_EBADTOKEN);
    g_free(token);
    token = forge_token(KEY1, 0x01, later, "", 0); /* no JID at all */
    assert_int_equal(jat_decode_status(fx, token), CP_EBADTOKEN);
    g_free(token);
    token = forge_token(KEY1, 0x01, later, "a@b/c\0d", 7); /* a NUL would cut it short */
    assert_int_equal(jat_decode_status(fx, token), CP_EBADTOKEN);
    g_free(token);
    token = forge_token(KEY1, 0x01, later, "a@b/c", 5); /* the control: this one is fine */
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
        cmocka_unit_test(descriptor__names__hmac_jat),
        cmocka_unit_test(init__uses__a_random_key_without_a_key_file),
        cmocka_unit_test(round_trip__keeps__unusual_jids_in_the_base32_alphabet),
        cmocka_unit_test(encode__writes__version_expiry_truncated_mac_and_jid),
        cmocka_unit_test(decode__accepts__a_token_built_from_the_documented_format),
        cmocka_unit_test(encode__fits__the_longest_jid_and_no_longer),
        cmocka_unit_test(decode__refuses__every_single_bit_flip),
        cmocka_unit_test(decode__refuses__truncated_extended_uppercase_and_padded_tokens),
        cmocka_unit_test(decode__returns__eexpired_for_a_genuine_past_deadline),
        cmocka_unit_test(decode__refuses__an_expired_token_with_its_deadline_moved),
        cmocka_unit_test(decode__refuses__tokens_under_another_key),
        cmocka_unit_test(decode__accepts__tokens_under_any_key_of_the_file),
        cmocka_unit_test(decode__refuses__genuine_tokens_of_another_version_or_shape),
        cmocka_unit_test(init__refuses__bad_key_files_naming_key_file),
        cmocka_unit_test(init__never__logs_key_bytes),
    };
    return cmocka_run_group_tests_name("jat-hmac", tests, NULL, NULL);
}
