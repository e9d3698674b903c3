/* core/jid.c: splitting, joining, comparing and checking JIDs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "jid.h"

static void jid_bare_length__stops_at_the_first_slash(void **state)
{
    (void)state;
    assert_int_equal(jid_bare_length("alice@example.org/phone"), strlen("alice@example.org"));
    assert_int_equal(jid_bare_length("alice@example.org"), strlen("alice@example.org"));
    /* A resourcepart may itself hold slashes: only the first one splits. */
    assert_int_equal(jid_bare_length("proxy.example.org/bob@example.org/pc"),
                     strlen("proxy.example.org"));
    assert_int_equal(jid_bare_length(""), 0);
}

static void jid_resource__is_everything_after_the_first_slash(void **state)
{
    (void)state;
    assert_string_equal(jid_resource("alice@example.org/phone"), "phone");
    assert_string_equal(jid_resource("proxy.example.org/bob@example.org/pc"),
                        "bob@example.org/pc");
    assert_string_equal(jid_resource("example.org/"), "");
    assert_null(jid_resource("alice@example.org"));
}

static void jid_bare_equal__ignores_ascii_case_and_the_resource(void **state)
{
    (void)state;
    assert_true(jid_bare_equal("Service@Example.org/worker-1", "service@example.org"));
    assert_true(jid_bare_equal("service@example.org", "SERVICE@example.org"));
    assert_false(jid_bare_equal("service@example.org.evil/x", "service@example.org"));
    assert_false(jid_bare_equal("service@example.or", "service@example.org"));
    assert_false(jid_bare_equal("", "service@example.org"));
}

static void jid_equal__ignores_case_in_the_bare_part_only(void **state)
{
    (void)state;
    assert_true(jid_equal("Alice@Example.org/Phone", "alice@example.org/Phone"));
    assert_false(jid_equal("alice@example.org/Phone", "alice@example.org/phone"));
    assert_false(jid_equal("alice@example.org/phone", "alice@example.org"));
    assert_true(jid_equal("example.org", "EXAMPLE.org"));
    assert_false(jid_equal("alice@example.org/a/b", "alice@example.org/a"));
}

static void jid_split_bare__copies_what_fits_and_refuses_the_rest(void **state)
{
    (void)state;
    char bare[32];
    assert_true(jid_split_bare("alice@example.org/phone", bare, sizeof bare));
    assert_string_equal(bare, "alice@example.org");

    char tiny[8];
    assert_false(jid_split_bare("alice@example.org/phone", tiny, sizeof tiny));
    assert_string_equal(tiny, "");
    /* Exactly the size less the terminator fits. */
    assert_true(jid_split_bare("a@b.org/x", tiny, sizeof tiny));
    assert_string_equal(tiny, "a@b.org");
}

static void jid_join__writes_bare_slash_resource_truncated_to_fit(void **state)
{
    (void)state;
    char full[64];
    jid_join(full, sizeof full, "service@example.org", "worker-1");
    assert_string_equal(full, "service@example.org/worker-1");

    char small[12];
    jid_join(small, sizeof small, "service@example.org", "worker-1");
    assert_int_equal(strlen(small), sizeof small - 1);
}

static void jid_is_domain__refuses_what_a_domainpart_cannot_hold(void **state)
{
    (void)state;
    assert_true(jid_is_domain("proxy.example.org"));
    assert_true(jid_is_domain("localhost"));
    const char *const bad[] = {"", "a b", "a/b", "a@b", "a:5222", "a'b", "a\"b", "a&b",
                               "a<b", "a>b", "a\tb", "a\x7f"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_false(jid_is_domain(bad[i]));

    char longest[1025];
    memset(longest, 'a', 1023);
    longest[1023] = '\0';
    assert_true(jid_is_domain(longest));
    longest[1023] = 'a';
    longest[1024] = '\0';
    assert_false(jid_is_domain(longest));
}

static void jid_is_bare__needs_a_localpart_and_a_domain(void **state)
{
    (void)state;
    assert_true(jid_is_bare("service@example.org"));
    assert_false(jid_is_bare("example.org"));
    assert_false(jid_is_bare("@example.org"));
    assert_false(jid_is_bare("service@"));
    assert_false(jid_is_bare("service@example.org/worker"));
    assert_false(jid_is_bare("a b@example.org"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(jid_bare_length__stops_at_the_first_slash),
        cmocka_unit_test(jid_resource__is_everything_after_the_first_slash),
        cmocka_unit_test(jid_bare_equal__ignores_ascii_case_and_the_resource),
        cmocka_unit_test(jid_equal__ignores_case_in_the_bare_part_only),
        cmocka_unit_test(jid_split_bare__copies_what_fits_and_refuses_the_rest),
        cmocka_unit_test(jid_join__writes_bare_slash_resource_truncated_to_fit),
        cmocka_unit_test(jid_is_domain__refuses_what_a_domainpart_cannot_hold),
        cmocka_unit_test(jid_is_bare__needs_a_localpart_and_a_domain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
