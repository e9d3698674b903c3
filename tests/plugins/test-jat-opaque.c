/* Unit tests for plugins/jat-opaque through its descriptor. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <glib.h>

#include "fake-host.h"
#include "jat-checks.h"

#define TOKEN_LEN 26 /* base32 of 16 bytes */

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

static int64_t a_minute_ago(void)
{
    return fake_host_now() - 60;
}

static void descriptor__names__opaque_jat_with_forget(void **unused)
{
    (void)unused;
    assert_int_equal(cp_plugin_descriptor.kind, CP_PLUGIN_JAT);
    assert_string_equal(cp_plugin_descriptor.name, "opaque");
    assert_non_null(fake_host_jat_ops()->forget);
}

static void round_trip__keeps__unusual_jids_behind_26_base32_characters(void **state)
{
    jat_fixture_t *fx = *state;
    for (size_t i = 0; jat_unusual_jids[i] != NULL; i++) {
        char *token = jat_assert_round_trip(fx, jat_unusual_jids[i], jat_in_an_hour());
        jat_assert_base32_alphabet(token);
        assert_int_equal(strlen(token), TOKEN_LEN);
        g_free(token);
    }
}

/* Each token is its sender's address (plugin.h, "Addresses"): one JID has
 * one token while it lives, and another JID another one. */
static void encode__gives__one_jid_one_hidden_token_while_it_lives(void **state)
{
    jat_fixture_t *fx = *state;
    char *a = jat_encode_ok(fx, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@example.org/r", jat_in_an_hour());
    char *b = jat_encode_ok(fx, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@example.org/r", jat_in_an_hour());
    char *c = jat_encode_ok(fx, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@example.org/s", jat_in_an_hour());
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    assert_null(strstr(a, "aaaaa"));
    fx->ops->forget(fx->state, a);
    fx->ops->forget(fx->state, b);
    fx->ops->forget(fx->state, c);
    g_free(a);
    g_free(b);
    g_free(c);
}

static void round_trip__keeps__a_1023_byte_resource_and_the_longest_jid(void **state)
{
    jat_fixture_t *fx = *state;
    char token[CP_TOKEN_MAX + 1];
    char *jid = jat_jid_of_length(14 + 1023);
    g_free(jat_assert_round_trip(fx, jid, jat_in_an_hour()));
    g_free(jid);

    /* A 1023-byte resource of multi-byte characters. */
    GString *wide = g_string_new("ü@bücher.example/");
    for (int i = 0; i < 341; i++)
        g_string_append(wide, "€"); /* 3 bytes each: 1023 */
    g_free(jat_assert_round_trip(fx, wide->str, jat_in_an_hour()));
    g_string_free(wide, TRUE);

    jid = jat_jid_of_length(CP_JID_MAX);
    g_free(jat_assert_round_trip(fx, jid, jat_in_an_hour()));
    g_free(jid);
    jid = jat_jid_of_length(CP_JID_MAX + 1);
    assert_int_equal(fx->ops->encode(fx->state, jid, jat_in_an_hour(), token, sizeof token), CP_ETOOLONG);
    g_free(jid);
}

static void decode__refuses__unknown_and_altered_tokens(void **state)
{
    jat_fixture_t *fx = *state;
    char *token = jat_encode_ok(fx, "juliet@example.com/balcony", jat_in_an_hour());
    assert_int_equal(jat_decode_status(fx, "aaaaaaaaaaaaaaaaaaaaaaaaaa"), CP_EBADTOKEN);
    assert_int_equal(jat_decode_status(fx, ""), CP_EBADTOKEN);
    char *upper = g_ascii_strup(token, -1);
    assert_int_equal(jat_decode_status(fx, upper), CP_EBADTOKEN);
    char *longer = g_strdup_printf("%sa", token);
    assert_int_equal(jat_decode_status(fx, longer), CP_EBADTOKEN);
    char *shorter = g_strndup(token, TOKEN_LEN - 1);
    assert_int_equal(jat_decode_status(fx, shorter), CP_EBADTOKEN);
    for (size_t i = 0; i < TOKEN_LEN; i++) {
        for (int bit = 0; bit < 8; bit++) {
            token[i] ^= (char)(1 << bit);
            if (jat_decode_status(fx, token) != CP_EBADTOKEN)
                fail_msg("flip of bit %d of character %zu was not refused", bit, i);
            token[i] ^= (char)(1 << bit);
        }
    }
    assert_int_equal(jat_decode_status(fx, token), CP_OK);
    g_free(upper);
    g_free(longer);
    g_free(shorter);
    g_free(token);
}

static void decode__refuses__tokens_of_another_instance(void **state)
{
    jat_fixture_t *fx = *state;
    jat_fixture_t *other = jat_fixture_new(NULL);
    char *token = jat_encode_ok(other, "juliet@example.com/balcony", jat_in_an_hour());
    assert_int_equal(jat_decode_status(fx, token), CP_EBADTOKEN);
    assert_int_equal(jat_decode_status(other, token), CP_OK);
    g_free(token);
    jat_fixture_free(other);
}

/* A pinned token (its request in flight) says it expired; once its
 * request ended, it is gone. */
static void decode__returns__eexpired_until_an_expired_token_is_forgotten(void **state)
{
    jat_fixture_t *fx = *state;
    char *token = jat_encode_ok(fx, "juliet@example.com/balcony", a_minute_ago());
    assert_int_equal(jat_decode_status(fx, token), CP_EEXPIRED);
    assert_int_equal(jat_decode_status(fx, token), CP_EEXPIRED);
    fx->ops->forget(fx->state, token);
    assert_int_equal(jat_decode_status(fx, token), CP_EBADTOKEN);
    g_free(token);
}

/* From ABI 1.1, forget() ends the request, not the address. */
static void forget__keeps__the_token_as_an_address_until_it_expires(void **state)
{
    jat_fixture_t *fx = *state;
    char *token = jat_encode_ok(fx, "juliet@example.com/balcony", jat_in_an_hour());
    fx->ops->forget(fx->state, token);
    assert_int_equal(jat_decode_status(fx, token), CP_OK);
    fx->ops->forget(fx->state, token);                        /* once more is harmless */
    fx->ops->forget(fx->state, "aaaaaaaaaaaaaaaaaaaaaaaaaa"); /* so is an unknown one */
    fx->ops->forget(fx->state, "");
    assert_int_equal(jat_decode_status(fx, token), CP_OK);
    g_free(token);
}

/* Beyond the host's address_limit(), the least recently used unpinned
 * addresses go first: given out, or written to, counts as a use. */
static void forget__drops__the_least_recently_used_beyond_the_limit(void **state)
{
    (void)state;
    cp_host_t *host = fake_host_new();
    fake_host_set_address_limit(host, 3);
    jat_fixture_t fx = {.host = host, .ops = fake_host_jat_ops()};
    assert_int_equal(fake_host_init_plugin(host, &fx.state), CP_OK);
    char *tokens[5];
    for (int i = 0; i < 5; i++) {
        g_autofree char *jid = g_strdup_printf("user%d@example.org/r", i);
        tokens[i] = jat_encode_ok(&fx, jid, jat_in_an_hour());
    }
    /* All pinned: none may go. */
    for (int i = 0; i < 5; i++)
        assert_int_equal(jat_decode_status(&fx, tokens[i]), CP_OK);
    for (int i = 0; i < 4; i++)
        fx.ops->forget(fx.state, tokens[i]);
    /* Unpinned 0..3, at most three kept: 0 went.  4 is still pinned. */
    assert_int_equal(jat_decode_status(&fx, tokens[0]), CP_EBADTOKEN);
    assert_int_equal(jat_decode_status(&fx, tokens[1]), CP_OK); /* now the most recent */
    fx.ops->forget(fx.state, tokens[4]);                       /* 2 is the oldest now */
    assert_int_equal(jat_decode_status(&fx, tokens[2]), CP_EBADTOKEN);
    assert_int_equal(jat_decode_status(&fx, tokens[1]), CP_OK);
    assert_int_equal(jat_decode_status(&fx, tokens[3]), CP_OK);
    assert_int_equal(jat_decode_status(&fx, tokens[4]), CP_OK);
    for (int i = 0; i < 5; i++)
        g_free(tokens[i]);
    cp_plugin_descriptor.fini(fx.state);
    fake_host_free(host);
}

/* Memory stays bounded by the limit however many senders come and go. */
static void encode__keeps__the_table_within_the_limit_whatever_the_senders(void **state)
{
    (void)state;
    cp_host_t *host = fake_host_new();
    fake_host_set_address_limit(host, 100);
    jat_fixture_t fx = {.host = host, .ops = fake_host_jat_ops()};
    assert_int_equal(fake_host_init_plugin(host, &fx.state), CP_OK);
    char *first = NULL;
    for (int i = 0; i < 20000; i++) {
        g_autofree char *jid = g_strdup_printf("user%d@example.org/r", i);
        char *token = jat_encode_ok(&fx, jid, jat_in_an_hour());
        fx.ops->forget(fx.state, token);
        if (!first)
            first = token;
        else
            g_free(token);
    }
    assert_int_equal(jat_decode_status(&fx, first), CP_EBADTOKEN);
    g_free(first);
    cp_plugin_descriptor.fini(fx.state);
    fake_host_free(host);
}

/* Expired addresses leave as soon as nothing pins them; live ones stay. */
static void forget__drops__expired_addresses_and_keeps_live_ones(void **state)
{
    jat_fixture_t *fx = *state;
    GPtrArray *live = g_ptr_array_new_with_free_func(g_free);
    GPtrArray *dead = g_ptr_array_new_with_free_func(g_free);
    for (int i = 0; i < 20; i++) {
        g_autofree char *jid = g_strdup_printf("juliet%d@example.com/balcony", i);
        g_ptr_array_add(live, jat_encode_ok(fx, jid, jat_in_an_hour()));
        fx->ops->forget(fx->state, g_ptr_array_index(live, live->len - 1));
    }
    for (int i = 0; i < 500; i++) {
        g_autofree char *jid = g_strdup_printf("romeo%d@example.net/orchard", i);
        g_ptr_array_add(dead, jat_encode_ok(fx, jid, a_minute_ago()));
        fx->ops->forget(fx->state, g_ptr_array_index(dead, dead->len - 1));
    }
    for (guint i = 0; i < dead->len; i++)
        assert_int_equal(jat_decode_status(fx, g_ptr_array_index(dead, i)), CP_EBADTOKEN);
    for (guint i = 0; i < live->len; i++)
        assert_int_equal(jat_decode_status(fx, g_ptr_array_index(live, i)), CP_OK);
    g_ptr_array_free(live, TRUE);
    g_ptr_array_free(dead, TRUE);
}

static void encode__fails__without_random_bytes(void **unused)
{
    (void)unused;
    cp_host_t *host = fake_host_new();
    void *state = NULL;
    char token[CP_TOKEN_MAX + 1];
    assert_int_equal(fake_host_init_plugin(host, &state), CP_OK);
    fake_host_break_random(host);
    const cp_jat_ops_t *ops = fake_host_jat_ops();
    assert_int_equal(ops->encode(state, "a@b/c", 0, token, sizeof token), CP_EFAIL);
    assert_int_equal(fake_host_log_count(host, CP_LOG_ERROR, "random"), 1);
    cp_plugin_descriptor.fini(state);
    fake_host_free(host);
}

static void fini__frees__tokens_never_forgotten(void **unused)
{
    (void)unused;
    /* Checked by valgrind and ASan: fini must free what is left. */
    jat_fixture_t *fx = jat_fixture_new(NULL);
    for (int i = 0; i < 10; i++)
        g_free(jat_encode_ok(fx, "juliet@example.com/balcony", jat_in_an_hour()));
    jat_fixture_free(fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(descriptor__names__opaque_jat_with_forget),
        cmocka_unit_test_setup_teardown(round_trip__keeps__unusual_jids_behind_26_base32_characters, setup, teardown),
        cmocka_unit_test_setup_teardown(encode__gives__one_jid_one_hidden_token_while_it_lives, setup, teardown),
        cmocka_unit_test_setup_teardown(round_trip__keeps__a_1023_byte_resource_and_the_longest_jid, setup, teardown),
        cmocka_unit_test_setup_teardown(decode__refuses__unknown_and_altered_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(decode__refuses__tokens_of_another_instance, setup, teardown),
        cmocka_unit_test_setup_teardown(decode__returns__eexpired_until_an_expired_token_is_forgotten, setup, teardown),
        cmocka_unit_test_setup_teardown(forget__keeps__the_token_as_an_address_until_it_expires, setup, teardown),
        cmocka_unit_test(forget__drops__the_least_recently_used_beyond_the_limit),
        cmocka_unit_test_setup_teardown(forget__drops__expired_addresses_and_keeps_live_ones, setup, teardown),
        cmocka_unit_test(encode__keeps__the_table_within_the_limit_whatever_the_senders),
        cmocka_unit_test(encode__fails__without_random_bytes),
        cmocka_unit_test(fini__frees__tokens_never_forgotten),
    };
    return cmocka_run_group_tests_name("jat-opaque", tests, NULL, NULL);
}
