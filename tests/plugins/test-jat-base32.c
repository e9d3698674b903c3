/* Unit tests for plugins/jat-base32 through its descriptor. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <glib.h>

#include "fake-host.h"
#include "jat-checks.h"

/* Longest JID whose base32 fits a resourcepart: floor(1023 * 5 / 8). */
#define LONGEST_JID 639

static int setup(void **state)
{
    *state = jat_fixture_new(NULL);
    return 0;
}

static int teardown(void **state)
{
    jat_fixture_free(*state);
    return 0;
}

static void descriptor__names__base32_jat(void **unused)
{
    (void)unused;
    assert_int_equal(cp_plugin_descriptor.kind, CP_PLUGIN_JAT);
    assert_string_equal(cp_plugin_descriptor.name, "base32");
}

static void encode__writes__lowercase_unpadded_base32_of_the_jid(void **state)
{
    jat_fixture_t *fx = *state;
    /* RFC 4648 vector "foobar", lowercased and unpadded. */
    char *token = jat_assert_round_trip(fx, "foobar", 0);
    assert_string_equal(token, "mzxw6ytboi");
    g_free(token);
    token = jat_assert_round_trip(fx, "a@b/c", 0);
    assert_string_equal(token, "mfagel3d");
    g_free(token);
}

static void round_trip__keeps__unusual_jids_in_the_base32_alphabet(void **state)
{
    jat_fixture_t *fx = *state;
    for (size_t i = 0; jat_unusual_jids[i] != NULL; i++) {
        char *token = jat_assert_round_trip(fx, jat_unusual_jids[i], 0);
        jat_assert_base32_alphabet(token);
        g_free(token);
    }
}

static void encode__fits__the_longest_jid_and_no_longer(void **state)
{
    jat_fixture_t *fx = *state;
    char token[CP_TOKEN_MAX + 1];
    char *jid = jat_jid_of_length(LONGEST_JID);
    char *longest = jat_assert_round_trip(fx, jid, 0);
    assert_int_equal(strlen(longest), CP_TOKEN_MAX);
    jat_assert_base32_alphabet(longest);
    g_free(longest);
    g_free(jid);

    jid = jat_jid_of_length(LONGEST_JID + 1);
    assert_int_equal(fx->ops->encode(fx->state, jid, 0, token, sizeof token), CP_ETOOLONG);
    g_free(jid);
    jid = jat_jid_of_length(14 + 1023); /* a 1023-byte resource */
    assert_int_equal(fx->ops->encode(fx->state, jid, 0, token, sizeof token), CP_ETOOLONG);
    g_free(jid);

    /* A larger buffer than promised does not stretch the limit. */
    char big[4 * CP_TOKEN_MAX];
    jid = jat_jid_of_length(LONGEST_JID + 1);
    assert_int_equal(fx->ops->encode(fx->state, jid, 0, big, sizeof big), CP_ETOOLONG);
    g_free(jid);
}

static void decode__refuses__uppercase_padding_and_trailing_bits(void **state)
{
    jat_fixture_t *fx = *state;
    char jid[CP_JID_MAX + 1];
    assert_int_equal(fx->ops->decode(fx->state, "mfagel3d", jid, sizeof jid), CP_OK);
    assert_string_equal(jid, "a@b/c");
    assert_int_equal(fx->ops->decode(fx->state, "mzxw6ytboi", jid, sizeof jid), CP_OK);
    assert_string_equal(jid, "foobar");
    assert_int_equal(jat_decode_status(fx, "MFAGEL3D"), CP_EBADTOKEN);
    assert_int_equal(jat_decode_status(fx, "mfageL3d"), CP_EBADTOKEN);
    assert_int_equal(jat_decode_status(fx, "mzxw6ytboi======"), CP_EBADTOKEN);
    assert_int_equal(jat_decode_status(fx, "mzxw6ytboi="), CP_EBADTOKEN);
    assert_int_equal(jat_decode_status(fx, "mzxw6ytboj"), CP_EBADTOKEN); /* a spare bit set */
    assert_int_equal(jat_decode_status(fx, "mfagel3"), CP_EBADTOKEN);    /* truncated */
    assert_int_equal(jat_decode_status(fx, "mfagel3da"), CP_EBADTOKEN);  /* extended */
    assert_int_equal(jat_decode_status(fx, "mfagel1d"), CP_EBADTOKEN);   /* '1' is not base32 */
    assert_int_equal(jat_decode_status(fx, ""), CP_EBADTOKEN);
}

static void decode__refuses__tokens_that_decode_to_no_jid(void **state)
{
    jat_fixture_t *fx = *state;
    /* Well-formed base32, but of bytes no JID holds. */
    assert_int_equal(jat_decode_status(fx, "ae"), CP_EBADTOKEN);       /* "\x01" */
    assert_int_equal(jat_decode_status(fx, "meaa"), CP_EBADTOKEN);     /* "a\0" */
    assert_int_equal(jat_decode_status(fx, "74"), CP_EBADTOKEN);       /* "\xff" */
}

static void decode__refuses__tokens_longer_than_a_resourcepart(void **state)
{
    jat_fixture_t *fx = *state;
    char *token = g_strnfill(CP_TOKEN_MAX + 5, 'm');
    assert_int_equal(jat_decode_status(fx, token), CP_EBADTOKEN);
    g_free(token);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(descriptor__names__base32_jat),
        cmocka_unit_test_setup_teardown(encode__writes__lowercase_unpadded_base32_of_the_jid, setup, teardown),
        cmocka_unit_test_setup_teardown(round_trip__keeps__unusual_jids_in_the_base32_alphabet, setup, teardown),
        cmocka_unit_test_setup_teardown(encode__fits__the_longest_jid_and_no_longer, setup, teardown),
        cmocka_unit_test_setup_teardown(decode__refuses__uppercase_padding_and_trailing_bits, setup, teardown),
        cmocka_unit_test_setup_teardown(decode__refuses__tokens_that_decode_to_no_jid, setup, teardown),
        cmocka_unit_test_setup_teardown(decode__refuses__tokens_longer_than_a_resourcepart, setup, teardown),
    };
    return cmocka_run_group_tests_name("jat-base32", tests, NULL, NULL);
}
