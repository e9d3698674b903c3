/* Unit tests for plugins/jat-raw through its descriptor. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <glib.h>

#include "fake-host.h"
#include "jat-checks.h"

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

static void descriptor__names__raw_jat(void **unused)
{
    (void)unused;
    assert_int_equal(cp_plugin_descriptor.kind, CP_PLUGIN_JAT);
    assert_string_equal(cp_plugin_descriptor.name, "raw");
    assert_int_equal(cp_plugin_descriptor.abi_minor, CP_PLUGIN_ABI_MINOR);
}

static void encode__writes__the_full_jid_verbatim(void **state)
{
    jat_fixture_t *fx = *state;
    char *token = jat_assert_round_trip(fx, "juliet@example.com/balcony", 0);
    assert_string_equal(token, "juliet@example.com/balcony");
    g_free(token);
}

static void round_trip__keeps__unusual_jids(void **state)
{
    jat_fixture_t *fx = *state;
    for (size_t i = 0; jat_unusual_jids[i] != NULL; i++) {
        char *token = jat_assert_round_trip(fx, jat_unusual_jids[i], 0);
        assert_string_equal(token, jat_unusual_jids[i]);
        g_free(token);
    }
}

static void encode__fits__a_jid_of_exactly_cp_token_max_bytes(void **state)
{
    jat_fixture_t *fx = *state;
    char *jid = jat_jid_of_length(CP_TOKEN_MAX);
    g_free(jat_assert_round_trip(fx, jid, 0));
    g_free(jid);
}

static void encode__returns__etoolong_past_cp_token_max(void **state)
{
    jat_fixture_t *fx = *state;
    char token[CP_TOKEN_MAX + 1];
    char *jid = jat_jid_of_length(CP_TOKEN_MAX + 1);
    assert_int_equal(fx->ops->encode(fx->state, jid, 0, token, sizeof token), CP_ETOOLONG);
    g_free(jid);
    /* A 1023-byte resource never fits: the JID around it is longer. */
    jid = jat_jid_of_length(14 + 1023);
    assert_int_equal(fx->ops->encode(fx->state, jid, 0, token, sizeof token), CP_ETOOLONG);
    g_free(jid);
}

/* The host may pass more than CP_TOKEN_MAX + 1 bytes; the limit is still
 * what a resourcepart holds, not the buffer. */
static void encode__keeps__cp_token_max_with_a_larger_buffer(void **state)
{
    jat_fixture_t *fx = *state;
    char big[4 * CP_TOKEN_MAX];
    char *jid = jat_jid_of_length(CP_TOKEN_MAX + 1);
    assert_int_equal(fx->ops->encode(fx->state, jid, 0, big, sizeof big), CP_ETOOLONG);
    g_free(jid);
}

static void encode__refuses__an_empty_jid(void **state)
{
    jat_fixture_t *fx = *state;
    char token[CP_TOKEN_MAX + 1];
    assert_int_equal(fx->ops->encode(fx->state, "", 0, token, sizeof token), CP_EFAIL);
}

static void decode__refuses__empty_overlong_and_control_characters(void **state)
{
    jat_fixture_t *fx = *state;
    assert_int_equal(jat_decode_status(fx, ""), CP_EBADTOKEN);
    char *jid = jat_jid_of_length(CP_TOKEN_MAX + 1);
    assert_int_equal(jat_decode_status(fx, jid), CP_EBADTOKEN);
    jid[CP_TOKEN_MAX] = '\0';
    assert_int_equal(jat_decode_status(fx, jid), CP_OK);
    g_free(jid);

    static const char *const bad[] = {
        "user@example.org/a\tb", "user@example.org/a\nb", "user@example.org/\x01",
        "user@example.org/\x7f", "user@example.org/\xc2\x85", /* U+0085, a C1 control */
        "user@example.org/\xff", "user@example.org/\xc3",     /* not UTF-8 */
        "user@example.org/\xed\xa0\x80",                      /* a UTF-16 surrogate */
    };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        if (jat_decode_status(fx, bad[i]) != CP_EBADTOKEN)
            fail_msg("bad token #%zu was accepted", i);
    }
}

static void init__succeeds__even_without_random_bytes(void **unused)
{
    (void)unused;
    cp_host_t *host = fake_host_new();
    void *state = NULL;
    fake_host_break_random(host);
    assert_int_equal(fake_host_init_plugin(host, &state), CP_OK);
    assert_int_equal(fake_host_error_count(host), 0);
    cp_plugin_descriptor.fini(state);
    fake_host_free(host);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(descriptor__names__raw_jat),
        cmocka_unit_test_setup_teardown(encode__writes__the_full_jid_verbatim, setup, teardown),
        cmocka_unit_test_setup_teardown(round_trip__keeps__unusual_jids, setup, teardown),
        cmocka_unit_test_setup_teardown(encode__fits__a_jid_of_exactly_cp_token_max_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(encode__returns__etoolong_past_cp_token_max, setup, teardown),
        cmocka_unit_test_setup_teardown(encode__keeps__cp_token_max_with_a_larger_buffer, setup, teardown),
        cmocka_unit_test_setup_teardown(encode__refuses__an_empty_jid, setup, teardown),
        cmocka_unit_test_setup_teardown(decode__refuses__empty_overlong_and_control_characters, setup, teardown),
        cmocka_unit_test(init__succeeds__even_without_random_bytes),
    };
    return cmocka_run_group_tests_name("jat-raw", tests, NULL, NULL);
}
