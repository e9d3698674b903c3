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
#include "temp-file.h"

#define HEADER_LEN 21   /* version, 4 bytes of expiry, 16 bytes of MAC */
#define LONGEST_JID 618 /* floor(1023 * 5 / 8) - HEADER_LEN */

/* Test keys are 32 bytes, every one the same: KEY1 is 32 bytes of 0x11. */
#define KEY1 0x11
#define KEY2 0x22
#define NO_KEY (-1)

/* A fixture whose key file holds FILE_TEXT (mode 0600). */
static jat_fixture_t *fixture_with_key_file(const char *file_text)
{
    char *path = temp_file_write(file_text, 0600);
    const char *config[] = {"key_file", path, NULL};
    jat_fixture_t *fx = jat_fixture_new(config);
    temp_file_remove(path); /* read at init; not needed after */
    return fx;
}

/* A fixture whose key file holds key FIRST and, unless NO_KEY, SECOND. */
static jat_fixture_t *fixture_with_keys(int first, int second)
{
    char *hex1 = temp_hex_key(32, (unsigned char)first);
    char *hex2 = second != NO_KEY ? temp_hex_key(32, (unsigned char)second) : g_strdup("");
    char *text = g_strdup_printf("one %s\n%s\n", hex1, hex2);
    jat_fixture_t *fx = fixture_with_key_file(text);
    g_free(text);
    g_free(hex1);
    g_free(hex2);
    return fx;
}

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

static char *encode_ok(jat_fixture_t *fx, const char *jid, int64_t expires)
{
    char token[CP_TOKEN_MAX + 1];
    int status = fx->ops->encode(fx->state, jid, expires, token, sizeof token);
    if (status != CP_OK)
        fail_msg("encode(\"%s\") returned %d", jid, status);
    return g_strdup(token);
}

static int64_t in_an_hour(void)
{
    return fake_host_now() + 3600;
}

static void descriptor__names__hmac_jat(void **unused)
{
    (void)unused;
    assert_int_equal(cp_plugin_descriptor.kind, CP_PLUGIN_JAT);
    assert_string_equal(cp_plugin_descriptor.name, "hmac");
}

static void init__warns__that_a_random_key_does_not_survive_a_restart(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = jat_fixture_new(NULL);
    assert_int_equal(fake_host_log_count(fx->host, CP_LOG_WARNING, "will not survive a restart"), 1);
    g_free(jat_assert_round_trip(fx, "juliet@example.com/balcony", in_an_hour()));
    jat_fixture_free(fx);
}

static void init__fails__when_no_random_key_can_be_had(void **unused)
{
    (void)unused;
    cp_host_t *host = fake_host_new();
    void *state = NULL;
    fake_host_break_random(host);
    assert_int_equal(fake_host_init_plugin(host, &state), CP_EFAIL);
    assert_int_equal(fake_host_log_count(host, CP_LOG_ERROR, "random"), 1);
    fake_host_free(host);
}

static void round_trip__keeps__unusual_jids_in_the_base32_alphabet(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = fixture_with_keys(KEY1, NO_KEY);
    for (size_t i = 0; jat_unusual_jids[i] != NULL; i++) {
        char *token = jat_assert_round_trip(fx, jat_unusual_jids[i], in_an_hour());
        jat_assert_base32_alphabet(token);
        g_free(token);
    }
    jat_fixture_free(fx);
}

/* The token is exactly the documented layout, under the first key. */
static void encode__writes__version_expiry_truncated_mac_and_jid(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = fixture_with_keys(KEY1, KEY2);
    const char *jid = "romeo@example.net/orchard";
    char *token = encode_ok(fx, jid, 0x01020304);
    char *expected = forge_token(KEY1, 0x01, 0x01020304, jid, strlen(jid));
    assert_string_equal(token, expected);
    g_free(token);
    g_free(expected);
    jat_fixture_free(fx);
}

static void decode__accepts__a_token_built_from_the_documented_format(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = fixture_with_keys(KEY1, NO_KEY);
    const char *jid = "用户@例子.测试/a/b@c";
    char *token = forge_token(KEY1, 0x01, (uint32_t)in_an_hour(), jid, strlen(jid));
    char back[CP_JID_MAX + 1];
    assert_int_equal(fx->ops->decode(fx->state, token, back, sizeof back), CP_OK);
    assert_string_equal(back, jid);
    g_free(token);
    jat_fixture_free(fx);
}

static void encode__fits__the_longest_jid_and_no_longer(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = fixture_with_keys(KEY1, NO_KEY);
    char token[CP_TOKEN_MAX + 1];
    char *jid = jat_jid_of_length(LONGEST_JID);
    char *longest = jat_assert_round_trip(fx, jid, in_an_hour());
    assert_int_equal(strlen(longest), CP_TOKEN_MAX);
    g_free(longest);
    g_free(jid);

    jid = jat_jid_of_length(LONGEST_JID + 1);
    assert_int_equal(fx->ops->encode(fx->state, jid, in_an_hour(), token, sizeof token), CP_ETOOLONG);
    g_free(jid);
    jid = jat_jid_of_length(14 + 1023); /* a 1023-byte resource does not fit */
    assert_int_equal(fx->ops->encode(fx->state, jid, in_an_hour(), token, sizeof token), CP_ETOOLONG);
    g_free(jid);

    /* A larger buffer than promised does not stretch the limit. */
    char big[4 * CP_TOKEN_MAX];
    jid = jat_jid_of_length(LONGEST_JID + 1);
    assert_int_equal(fx->ops->encode(fx->state, jid, in_an_hour(), big, sizeof big), CP_ETOOLONG);
    g_free(jid);
    jid = jat_jid_of_length(CP_JID_MAX);
    assert_int_equal(fx->ops->encode(fx->state, jid, in_an_hour(), big, sizeof big), CP_ETOOLONG);
    g_free(jid);
    jat_fixture_free(fx);
}

static void decode__refuses__every_single_bit_flip_of_the_token(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = fixture_with_keys(KEY1, NO_KEY);
    char *token = encode_ok(fx, "juliet@example.com/balcony", in_an_hour());
    size_t len = strlen(token);
    unsigned tried = 0;
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            token[i] ^= (char)(1 << bit);
            int status = jat_decode_status(fx, token);
            if (status != CP_EBADTOKEN)
                fail_msg("flip of bit %d of character %zu gave %d", bit, i, status);
            token[i] ^= (char)(1 << bit);
            tried++;
        }
    }
    assert_int_equal(tried, len * 8);
    assert_int_equal(jat_decode_status(fx, token), CP_OK); /* and the original still works */
    g_free(token);
    jat_fixture_free(fx);
}

/* Flips in the characters are mostly caught by base32; flips in the bytes
 * under it, re-encoded canonically, must be caught by the MAC. */
static void decode__refuses__every_single_bit_flip_of_the_decoded_bytes(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = fixture_with_keys(KEY1, NO_KEY);
    char *token = encode_ok(fx, "juliet@example.com/balcony", in_an_hour());
    uint8_t bytes[700];
    size_t n = 0;
    assert_true(pc_base32_decode(token, strlen(token), bytes, sizeof bytes, &n));
    for (size_t i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit++) {
            char tampered[CP_TOKEN_MAX + 1];
            bytes[i] ^= (uint8_t)(1u << bit);
            pc_base32_encode(bytes, n, tampered);
            if (jat_decode_status(fx, tampered) != CP_EBADTOKEN)
                fail_msg("flip of bit %d of byte %zu was not refused", bit, i);
            bytes[i] ^= (uint8_t)(1u << bit);
        }
    }
    g_free(token);
    jat_fixture_free(fx);
}

static void decode__refuses__truncated_and_extended_tokens(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = fixture_with_keys(KEY1, NO_KEY);
    char *token = encode_ok(fx, "juliet@example.com/balcony", in_an_hour());
    size_t len = strlen(token);
    for (size_t cut = 0; cut < len; cut++) {
        char *prefix = g_strndup(token, cut);
        if (jat_decode_status(fx, prefix) != CP_EBADTOKEN)
            fail_msg("token cut to %zu characters was not refused", cut);
        g_free(prefix);
    }
    const char *alphabet = "abcdefghijklmnopqrstuvwxyz234567";
    for (size_t extra = 1; extra <= 8; extra++) {
        for (size_t c = 0; c < 32; c++) {
            char *longer = g_strdup_printf("%s%.*s", token, (int)extra, "aaaaaaaa");
            longer[len + extra - 1] = alphabet[c];
            if (jat_decode_status(fx, longer) != CP_EBADTOKEN)
                fail_msg("token extended by \"%s\" was not refused", longer + len);
            g_free(longer);
        }
    }
    /* Bytes appended under the base32 (a longer JID) break the MAC too. */
    uint8_t bytes[700];
    size_t n = 0;
    char longer[CP_TOKEN_MAX + 1];
    assert_true(pc_base32_decode(token, len, bytes, sizeof bytes, &n));
    bytes[n] = 'x';
    pc_base32_encode(bytes, n + 1, longer);
    assert_int_equal(jat_decode_status(fx, longer), CP_EBADTOKEN);
    g_free(token);
    jat_fixture_free(fx);
}

static void decode__refuses__uppercase_and_padded_tokens(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = fixture_with_keys(KEY1, NO_KEY);
    char *token = encode_ok(fx, "juliet@example.com/balcony", in_an_hour());
    char *upper = g_ascii_strup(token, -1);
    assert_int_equal(jat_decode_status(fx, upper), CP_EBADTOKEN);
    char *padded = g_strdup_printf("%s=", token);
    assert_int_equal(jat_decode_status(fx, padded), CP_EBADTOKEN);
    g_free(upper);
    g_free(padded);
    g_free(token);
    jat_fixture_free(fx);
}

static void decode__returns__eexpired_for_a_genuine_past_deadline(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = fixture_with_keys(KEY1, NO_KEY);
    int64_t now = fake_host_now();
    char *token = encode_ok(fx, "juliet@example.com/balcony", now - 10);
    assert_int_equal(jat_decode_status(fx, token), CP_EEXPIRED);
    g_free(token);
    token = encode_ok(fx, "juliet@example.com/balcony", -5); /* clamped to 1970 */
    assert_int_equal(jat_decode_status(fx, token), CP_EEXPIRED);
    g_free(token);
    token = encode_ok(fx, "juliet@example.com/balcony", now + 60);
    assert_int_equal(jat_decode_status(fx, token), CP_OK);
    g_free(token);
    token = encode_ok(fx, "juliet@example.com/balcony", INT64_MAX); /* clamped to 2106 */
    assert_int_equal(jat_decode_status(fx, token), CP_OK);
    g_free(token);
    jat_fixture_free(fx);
}

/* The MAC is checked before the deadline: moving an expired token's
 * deadline forward is forgery, not expiry. */
static void decode__refuses__an_expired_token_with_its_deadline_moved(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = fixture_with_keys(KEY1, NO_KEY);
    char *token = encode_ok(fx, "juliet@example.com/balcony", fake_host_now() - 10);
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
    jat_fixture_t *a = fixture_with_keys(KEY1, NO_KEY);
    jat_fixture_t *b = fixture_with_keys(KEY2, NO_KEY);
    char *token = encode_ok(a, "juliet@example.com/balcony", in_an_hour());
    assert_int_equal(jat_decode_status(a, token), CP_OK);
    assert_int_equal(jat_decode_status(b, token), CP_EBADTOKEN);
    g_free(token);
    jat_fixture_free(a);
    jat_fixture_free(b);

    /* Two random keys differ too. */
    a = jat_fixture_new(NULL);
    b = jat_fixture_new(NULL);
    token = encode_ok(a, "juliet@example.com/balcony", in_an_hour());
    assert_int_equal(jat_decode_status(b, token), CP_EBADTOKEN);
    g_free(token);
    jat_fixture_free(a);
    jat_fixture_free(b);
}

static void decode__accepts__tokens_under_any_key_of_the_file(void **unused)
{
    (void)unused;
    jat_fixture_t *new_only = fixture_with_keys(KEY2, NO_KEY);
    jat_fixture_t *rotating = fixture_with_keys(KEY1, KEY2); /* signs with KEY1 */
    jat_fixture_t *old_only = fixture_with_keys(KEY1, NO_KEY);

    char *token = encode_ok(new_only, "juliet@example.com/balcony", in_an_hour());
    char back[CP_JID_MAX + 1];
    assert_int_equal(rotating->ops->decode(rotating->state, token, back, sizeof back), CP_OK);
    assert_string_equal(back, "juliet@example.com/balcony");
    g_free(token);

    /* The first key signs: old_only accepts, new_only does not. */
    token = encode_ok(rotating, "romeo@example.net/orchard", in_an_hour());
    assert_int_equal(jat_decode_status(old_only, token), CP_OK);
    assert_int_equal(jat_decode_status(new_only, token), CP_EBADTOKEN);
    g_free(token);

    jat_fixture_free(new_only);
    jat_fixture_free(rotating);
    jat_fixture_free(old_only);
}

static void decode__refuses__genuine_tokens_of_another_version_or_shape(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = fixture_with_keys(KEY1, NO_KEY);
    uint32_t later = (uint32_t)in_an_hour();
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

/* Asserts init refuses a key file holding TEXT (with MODE), reporting it on
 * key_file with a message that names the path and contains NEEDLE. */
static void assert_key_file_refused(const char *text, mode_t mode, const char *needle)
{
    char *path = temp_file_write(text, mode);
    cp_host_t *host = fake_host_new();
    void *state = NULL;
    fake_host_set(host, "key_file", path);
    int status = fake_host_init_plugin(host, &state);
    if (status != CP_EINVAL)
        fail_msg("init returned %d, not CP_EINVAL", status);
    assert_int_equal(fake_host_error_count(host), 1);
    if (!fake_host_has_error(host, "key_file", path) || !fake_host_has_error(host, "key_file", needle))
        fail_msg("expected a key_file error naming %s with \"%s\", got:\n%s", path, needle,
                 fake_host_transcript(host));
    fake_host_free(host);
    temp_file_remove(path);
}

static void init__refuses__bad_key_files_naming_key_file(void **unused)
{
    (void)unused;
    char *good = temp_hex_key(32, 0x42), *short_key = temp_hex_key(31, 0x42);
    char *text = g_strdup_printf("%s\n", short_key);
    assert_key_file_refused(text, 0600, "line 1: the key is 31 bytes");
    g_free(text);

    text = g_strdup_printf("%s\n%sa\n", good, good); /* odd count on line 2 */
    assert_key_file_refused(text, 0600, "line 2: the key has an odd number");
    g_free(text);

    text = g_strdup_printf("# rotated monthly\nkey/1 %s\n", good);
    assert_key_file_refused(text, 0600, "line 2: key id may only hold");
    g_free(text);

    text = g_strdup_printf("%s\n", good);
    assert_key_file_refused(text, 0644, "accessible to group or others");
    assert_key_file_refused(text, 0604, "accessible to group or others");
    g_free(text);

    assert_key_file_refused("# nothing yet\n", 0600, "holds no key");
    g_free(good);
    g_free(short_key);
}

static void init__refuses__a_missing_or_empty_key_file_setting(void **unused)
{
    (void)unused;
    cp_host_t *host = fake_host_new();
    void *state = NULL;
    fake_host_set(host, "key_file", "/nonexistent/cp-test/hmac.keys");
    assert_int_equal(fake_host_init_plugin(host, &state), CP_EINVAL);
    assert_true(fake_host_has_error(host, "key_file", "cannot open /nonexistent/cp-test/hmac.keys"));
    fake_host_free(host);

    host = fake_host_new();
    fake_host_set(host, "key_file", "");
    assert_int_equal(fake_host_init_plugin(host, &state), CP_EINVAL);
    assert_true(fake_host_has_error(host, "key_file", "is empty"));
    fake_host_free(host);
}

static void init__never__logs_key_bytes(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = fixture_with_keys(KEY1, NO_KEY);
    assert_int_equal(fake_host_log_count(fx->host, CP_LOG_INFO, "loaded 1 key(s)"), 1);
    assert_null(strstr(fake_host_transcript(fx->host), "1111111111"));
    jat_fixture_free(fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(descriptor__names__hmac_jat),
        cmocka_unit_test(init__warns__that_a_random_key_does_not_survive_a_restart),
        cmocka_unit_test(init__fails__when_no_random_key_can_be_had),
        cmocka_unit_test(round_trip__keeps__unusual_jids_in_the_base32_alphabet),
        cmocka_unit_test(encode__writes__version_expiry_truncated_mac_and_jid),
        cmocka_unit_test(decode__accepts__a_token_built_from_the_documented_format),
        cmocka_unit_test(encode__fits__the_longest_jid_and_no_longer),
        cmocka_unit_test(decode__refuses__every_single_bit_flip_of_the_token),
        cmocka_unit_test(decode__refuses__every_single_bit_flip_of_the_decoded_bytes),
        cmocka_unit_test(decode__refuses__truncated_and_extended_tokens),
        cmocka_unit_test(decode__refuses__uppercase_and_padded_tokens),
        cmocka_unit_test(decode__returns__eexpired_for_a_genuine_past_deadline),
        cmocka_unit_test(decode__refuses__an_expired_token_with_its_deadline_moved),
        cmocka_unit_test(decode__refuses__tokens_under_another_key),
        cmocka_unit_test(decode__accepts__tokens_under_any_key_of_the_file),
        cmocka_unit_test(decode__refuses__genuine_tokens_of_another_version_or_shape),
        cmocka_unit_test(init__refuses__bad_key_files_naming_key_file),
        cmocka_unit_test(init__refuses__a_missing_or_empty_key_file_setting),
        cmocka_unit_test(init__never__logs_key_bytes),
    };
    return cmocka_run_group_tests_name("jat-hmac", tests, NULL, NULL);
}
