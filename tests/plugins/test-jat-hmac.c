/* Unit tests for plugins/jat-hmac through its descriptor. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <glib.h>

#include "base32.h"
#include "base64url.h"
#include "fake-host.h"
#include "jat-checks.h"
#include "jat-formats.h"

#define HEADER_LEN 13      /* version, 4 bytes of expiry, 8 bytes of MAC */
#define LONGEST_JID 754    /* floor(1023 * 6 / 8) - HEADER_LEN */
#define V1_HEADER_LEN 21   /* version, 4 bytes of expiry, 16 bytes of MAC */
#define V1_LONGEST_JID 618 /* floor(1023 * 5 / 8) - V1_HEADER_LEN */

#define KEY1 JAT_KEY1
#define KEY2 JAT_KEY2
#define NO_KEY JAT_NO_KEY

static const char *const juliet = "juliet@example.com/balcony";
static const char *const alice = "alice@example.org/phone";                  /* 23 bytes */
static const char *const jitsi = "0a1b2c3d-4e5f@meet.example.org/7f3a9c2e";  /* 39 bytes */

/* Version 1 tokens that jat-hmac.c itself made before issue 14 (at commit
 * 3dfbfff), from key files holding KEY1 or KEY2: what an upgrade must keep
 * reading, not merely what jat-formats.c thinks the old code wrote. */
static const struct v1_vector {
    int key;
    const char *jid;
    int64_t expires;
    int status; /* decode's today */
    const char *token;
} v1_vectors[] = {
    {KEY1, "alice@example.org/phone", 4294967295, CP_OK, /* 2106-02-07 */
     "ah7777776h6g4mwjo4wd7cj2mv2ynpmxxvqwy2ldmvagk6dbnvygyzjon5zgol3qnbxw4zi"},
    {KEY1, "0a1b2c3d-4e5f@meet.example.org/7f3a9c2e", 4102444800, CP_OK, /* 2100-01-01 */
     "ah2imvya5p3tywvvzl5mtdwzfmkoxt5q7iygcmlcgjrtgzbngrstkzsanvswk5bomv4gc3lqnrss433sm4xtozrtme4wgmtf"},
    {KEY1, "jürgen@bücher.example/Gerät", 4294967295, CP_OK,
     "ah777777mlk3p353xxdwlzfdkr6eyrpgu5vmhpdsm5sw4qdcyo6gg2dfoixgk6dbnvygyzjpi5sxfq5eoq"},
    {KEY1, "alice@example.org/phone", 1767225600, CP_EEXPIRED, /* 2026-01-01 */
     "afuvloia2537lqm3gijzrtujdrxinqc7o5qwy2ldmvagk6dbnvygyzjon5zgol3qnbxw4zi"},
    {KEY1, "0a1b2c3d-4e5f@meet.example.org/7f3a9c2e", 1000000000, CP_EEXPIRED, /* 2001 */
     "ae5zvsqaljabfs2j3q2irqgpttvqlykckeygcmlcgjrtgzbngrstkzsanvswk5bomv4gc3lqnrss433sm4xtozrtme4wgmtf"},
    {KEY2, "alice@example.org/phone", 4294967295, CP_OK,
     "ah7777775l7pobcje7cuhmqmnlwl3lziyrqwy2ldmvagk6dbnvygyzjon5zgol3qnbxw4zi"},
    {KEY2, "jürgen@bücher.example/Gerät", 4294967295, CP_OK,
     "ah777777n5os4bhki6izoowmdqe5insp5nvmhpdsm5sw4qdcyo6gg2dfoixgk6dbnvygyzjpi5sxfq5eoq"},
    {KEY2, "alice@example.org/phone", 1767225600, CP_EEXPIRED,
     "afuvloiawpkwlv3dn3uoqtzvucaq2mrgx5qwy2ldmvagk6dbnvygyzjon5zgol3qnbxw4zi"},
};

/* A version 2 token that jat-hmac.c made when version 2 was written, for
 * alice under KEY1, expiring 2100-01-01 (0x8b309e00 seconds after 2026),
 * checked against Python's hmac and base64 modules besides jat-formats.c:
 * a change to the format shows here even if jat-formats.c changed with it. */
#define V2_VECTOR_EXPIRES INT64_C(4102444800)
static const char *const v2_vector =
    "AoswngC0g3pOhJM7mGFsaWNlQGV4YW1wbGUub3JnL3Bob25l";

/* A version 2 token under KEY_FILL by the documented format. */
static char *v2_token(int key_fill, uint8_t version, int64_t expires, const char *jid)
{
    return jat_hmac_v2_token(jat_key_of(key_fill), version, jat_since_2026(expires), jid,
                             strlen(jid));
}

/* A version 1 token under KEY_FILL by the documented format. */
static char *v1_token(int key_fill, uint8_t version, int64_t expires, const void *jid,
                      size_t jid_len)
{
    return jat_hmac_v1_token(jat_key_of(key_fill), version, (uint32_t)expires, jid, jid_len);
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

static void round_trip__keeps__unusual_jids_in_the_base64url_alphabet(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = jat_fixture_with_keys(KEY1, NO_KEY);
    for (size_t i = 0; jat_unusual_jids[i] != NULL; i++) {
        char *token = jat_assert_round_trip(fx, jat_unusual_jids[i], jat_in_an_hour());
        jat_assert_base64url_alphabet(token);
        assert_int_equal(token[0], 'A');
        assert_int_equal(strlen(token),
                         pc_base64url_encoded_len(HEADER_LEN + strlen(jat_unusual_jids[i])));
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
    int64_t expires = JAT_EPOCH_2026 + 0x01020304;
    char *token = jat_encode_ok(fx, jid, expires);
    char *expected = v2_token(KEY1, 0x02, expires, jid);
    assert_string_equal(token, expected);
    g_free(token);
    g_free(expected);

    /* And the one kept from when the format was made. */
    token = jat_encode_ok(fx, alice, V2_VECTOR_EXPIRES);
    assert_string_equal(token, v2_vector);
    expected = v2_token(KEY1, 0x02, V2_VECTOR_EXPIRES, alice);
    assert_string_equal(expected, v2_vector);
    g_free(token);
    g_free(expected);
    jat_fixture_free(fx);
}

/* Seconds since 2026-01-01, four bytes: before 2026 is 0 (long past), and
 * anything after 2162-02-07 is clamped to it. */
static void encode__counts__the_expiry_in_seconds_since_2026(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = jat_fixture_with_keys(KEY1, NO_KEY);
    jat_assert_expiry_counted_from_2026(fx, NULL);
    jat_fixture_free(fx);
}

/* The same JID and expiry give the same token: a stable address. */
static void encode__gives__one_token_per_jid_and_expiry(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = jat_fixture_with_keys(KEY1, NO_KEY);
    jat_assert_one_token_per_jid_and_expiry(fx);
    jat_fixture_free(fx);
}

/* The lengths the issue asked for: 48 and 70 characters (version 1: 71
 * and 96). */
static void encode__writes__48_and_70_characters_for_typical_jids(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = jat_fixture_with_keys(KEY1, NO_KEY);
    char *token = jat_assert_round_trip(fx, alice, jat_in_an_hour());
    assert_int_equal(strlen(token), 48);
    g_free(token);
    token = jat_assert_round_trip(fx, jitsi, jat_in_an_hour());
    assert_int_equal(strlen(token), 70);
    g_free(token);
    jat_fixture_free(fx);
}

static void decode__accepts__a_token_built_from_the_documented_format(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = jat_fixture_with_keys(KEY1, NO_KEY);
    const char *jid = "用户@例子.测试/a/b@c";
    char *token = v2_token(KEY1, 0x02, jat_in_an_hour(), jid);
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
    /* A smaller one than promised is refused rather than overrun. */
    assert_int_equal(fx->ops->encode(fx->state, "a@b/c", jat_in_an_hour(), token, 24),
                     CP_ETOOLONG);
    assert_int_equal(fx->ops->encode(fx->state, "", jat_in_an_hour(), token, sizeof token),
                     CP_EFAIL);
    jat_fixture_free(fx);
}

static void decode__refuses__every_single_bit_flip(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = jat_fixture_with_keys(KEY1, NO_KEY);
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
    jat_fixture_t *fx = jat_fixture_with_keys(KEY1, NO_KEY);
    char *token = jat_encode_ok(fx, juliet, jat_in_an_hour());
    jat_assert_reshaping_refused(fx, JAT_BASE64URL, token);
    g_free(token);
    /* One with '-' or '_' in it, for the standard alphabet's '+' and '/'. */
    for (int i = 0;; i++) {
        assert_true(i < 1000);
        char *jid = g_strdup_printf("%s-%d", juliet, i);
        token = jat_encode_ok(fx, jid, jat_in_an_hour());
        g_free(jid);
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
    jat_fixture_t *fx = jat_fixture_with_keys(KEY1, NO_KEY);
    jat_assert_deadlines_kept(fx);
    jat_fixture_free(fx);
}

/* The MAC is checked before the deadline: moving an expired token's
 * deadline forward is forgery, not expiry.  In either version. */
static void assert_moved_deadline_refused(jat_fixture_t *fx, jat_coding_t coding,
                                          const char *token)
{
    uint8_t bytes[CP_TOKEN_MAX];
    size_t n = jat_text_bytes(coding, token, bytes);
    assert_int_equal(jat_decode_status(fx, token), CP_EEXPIRED);
    uint8_t deadline_top = bytes[1];
    bytes[1] = 0xff; /* expires more than a century later */
    char *moved = jat_bytes_text(coding, bytes, n);
    assert_int_equal(jat_decode_status(fx, moved), CP_EBADTOKEN);
    g_free(moved);
    /* Any other alteration of an expired token is forgery too. */
    bytes[1] = deadline_top;
    for (size_t i = 5; i < n; i++) {
        bytes[i] ^= 0x01;
        moved = jat_bytes_text(coding, bytes, n);
        if (jat_decode_status(fx, moved) != CP_EBADTOKEN)
            fail_msg("expired token altered at byte %zu was not refused as forged", i);
        g_free(moved);
        bytes[i] ^= 0x01;
    }
    moved = jat_bytes_text(coding, bytes, n);
    assert_string_equal(moved, token); /* the control: unaltered, it is merely expired */
    g_free(moved);
}

static void decode__refuses__an_expired_token_with_its_deadline_moved(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = jat_fixture_with_keys(KEY1, NO_KEY);
    char *token = jat_encode_ok(fx, juliet, fake_host_now() - 10);
    assert_moved_deadline_refused(fx, JAT_BASE64URL, token);
    g_free(token);
    token = v1_token(KEY1, 0x01, fake_host_now() - 10, juliet, strlen(juliet));
    assert_moved_deadline_refused(fx, JAT_BASE32, token);
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
    int64_t later = jat_in_an_hour();
    const struct {
        char *token;
        int status;
    } cases[] = {
        /* Version 2's layout under other version bytes, 0x01 included: the
         * first character is still 'A', but the byte says otherwise. */
        {v2_token(KEY1, 0x01, later, "a@b/c"), CP_EBADTOKEN},
        {v2_token(KEY1, 0x00, later, "a@b/c"), CP_EBADTOKEN},
        {v2_token(KEY1, 0x03, later, "a@b/c"), CP_EBADTOKEN},
        {v2_token(KEY1, 0x02, later, ""), CP_EBADTOKEN},        /* no JID at all */
        {jat_hmac_v2_token(jat_key_of(KEY1), 0x02, jat_since_2026(later), "a@b/c\0d", 7),
         CP_EBADTOKEN},                                         /* a NUL would cut it short */
        {v2_token(KEY1, 0x02, later, "a@b/c"), CP_OK},          /* the control */
        /* And version 1's, as it always was. */
        {v1_token(KEY1, 0x02, later, "a@b/c", 5), CP_EBADTOKEN},
        {v1_token(KEY1, 0x01, later, "", 0), CP_EBADTOKEN},
        {v1_token(KEY1, 0x01, later, "a@b/c\0d", 7), CP_EBADTOKEN},
        {v1_token(KEY1, 0x01, later, "a@b/c", 5), CP_OK},       /* the control */
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

/* Each vector decodes, with its JID, or is expired, under a key file that
 * lists its key, first or second. */
static void decode__accepts__version_1_tokens_the_old_code_made(void **unused)
{
    (void)unused;
    jat_fixture_t *rotating = jat_fixture_with_keys(KEY2, KEY1);
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
    }
    jat_fixture_free(rotating);
}

/* jat-formats.c writes version 1 as the old code did: its tokens are the
 * vectors, byte for byte. */
static void version_1__is__what_jat_formats_builds(void **unused)
{
    (void)unused;
    for (size_t i = 0; i < G_N_ELEMENTS(v1_vectors); i++) {
        const struct v1_vector *v = &v1_vectors[i];
        char *token = v1_token(v->key, 0x01, v->expires, v->jid, strlen(v->jid));
        assert_string_equal(token, v->token);
        g_free(token);
    }
}

/* Refused once expired (the vectors above past 2026-01-01, and fresh ones
 * a few seconds either side of now), and under a file without their key. */
static void decode__refuses__version_1_tokens_once_expired_or_under_another_key(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = jat_fixture_with_keys(KEY1, NO_KEY);
    int64_t now = fake_host_now();
    char *token = v1_token(KEY1, 0x01, now + 60, juliet, strlen(juliet));
    assert_int_equal(jat_decode_status(fx, token), CP_OK);
    g_free(token);
    token = v1_token(KEY1, 0x01, now - 10, juliet, strlen(juliet));
    assert_int_equal(jat_decode_status(fx, token), CP_EEXPIRED);
    g_free(token);
    token = v1_token(KEY1, 0x01, 0, juliet, strlen(juliet));
    assert_int_equal(jat_decode_status(fx, token), CP_EEXPIRED);
    g_free(token);

    jat_fixture_t *only_key2 = jat_fixture_with_keys(KEY2, NO_KEY);
    for (size_t i = 0; i < G_N_ELEMENTS(v1_vectors); i++) {
        const struct v1_vector *v = &v1_vectors[i];
        jat_fixture_t *mine = v->key == KEY1 ? fx : only_key2;
        jat_fixture_t *other = v->key == KEY1 ? only_key2 : fx;
        assert_int_equal(jat_decode_status(mine, v->token), v->status);
        assert_int_equal(jat_decode_status(other, v->token), CP_EBADTOKEN);
    }
    jat_fixture_free(only_key2);
    jat_fixture_free(fx);
}

static void decode__refuses__every_single_bit_flip_of_a_version_1_token(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = jat_fixture_with_keys(KEY1, NO_KEY);
    jat_assert_tampering_refused(fx, JAT_BASE32, v1_vectors[0].token, CP_OK);
    jat_assert_tampering_refused(fx, JAT_BASE32, v1_vectors[3].token, CP_EEXPIRED);
    jat_assert_reshaping_refused(fx, JAT_BASE32, v1_vectors[0].token);
    jat_fixture_free(fx);
}

static void decode__accepts__a_version_1_token_of_the_longest_jid(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = jat_fixture_with_keys(KEY1, NO_KEY);
    char *jid = jat_jid_of_length(V1_LONGEST_JID);
    char *token = v1_token(KEY1, 0x01, jat_in_an_hour(), jid, V1_LONGEST_JID);
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
    return v1_token(KEY1, 0x01, expires, jid, jid_len);
}

/* The first character says which version a token is, and nothing can be
 * read as the other: a version 1 token's bytes, or its text, never pass as
 * version 2, nor the other way round. */
static void decode__never__reads_one_version_as_the_other(void **unused)
{
    (void)unused;
    jat_fixture_t *fx = jat_fixture_with_keys(KEY1, NO_KEY);
    jat_assert_versions_apart(fx, v1_under_key1, v2_vector);
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
        cmocka_unit_test(round_trip__keeps__unusual_jids_in_the_base64url_alphabet),
        cmocka_unit_test(encode__writes__version_expiry_truncated_mac_and_jid),
        cmocka_unit_test(encode__counts__the_expiry_in_seconds_since_2026),
        cmocka_unit_test(encode__gives__one_token_per_jid_and_expiry),
        cmocka_unit_test(encode__writes__48_and_70_characters_for_typical_jids),
        cmocka_unit_test(decode__accepts__a_token_built_from_the_documented_format),
        cmocka_unit_test(encode__fits__the_longest_jid_and_no_longer),
        cmocka_unit_test(decode__refuses__every_single_bit_flip),
        cmocka_unit_test(decode__refuses__truncated_extended_recased_and_padded_tokens),
        cmocka_unit_test(decode__returns__eexpired_for_a_genuine_past_deadline),
        cmocka_unit_test(decode__refuses__an_expired_token_with_its_deadline_moved),
        cmocka_unit_test(decode__refuses__tokens_under_another_key),
        cmocka_unit_test(decode__accepts__tokens_under_any_key_of_the_file),
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
    return cmocka_run_group_tests_name("jat-hmac", tests, NULL, NULL);
}
