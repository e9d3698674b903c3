/* Unit tests for plugins/dispatch-random through its descriptor. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <glib.h>

#include "dispatch-checks.h"
#include "fake-host.h"

#define DRAWS 60000

static dispatch_fixture_t *fixture_new(const char *seed)
{
    return dispatch_fixture_new(seed, "res", DISPATCH_MAX_RESOURCES);
}

static void assert_uniform(const char *seed, size_t n)
{
    dispatch_fixture_t *fx = fixture_new(seed);
    unsigned counts[DISPATCH_MAX_RESOURCES] = {0};
    for (unsigned i = 0; i < DRAWS; i++)
        counts[dispatch_select(fx, n)]++;
    dispatch_assert_uniform(counts, n, DRAWS, "seed %s", seed);
    dispatch_fixture_free(fx);
}

static void descriptor__names__random_dispatch(void **unused)
{
    (void)unused;
    dispatch_assert_descriptor("random", false);
}

/* The check that every dispatch test relies on must be able to fail: a
 * visibly skewed count is caught, an even one is not. */
static void chi_square__flags__a_skewed_distribution(void **unused)
{
    (void)unused;
    unsigned skewed3[3] = {20600, 19700, 19700};
    unsigned skewed4[4] = {15750, 14750, 14750, 14750};
    unsigned skewed7[7] = {9100, 8500, 8500, 8500, 8500, 8400, 8500};
    unsigned even3[3] = {20000, 20000, 20000};
    assert_true(dispatch_chi_square(skewed3, 3, DRAWS) > dispatch_critical_0999(2));
    assert_true(dispatch_chi_square(skewed4, 4, DRAWS) > dispatch_critical_0999(3));
    assert_true(dispatch_chi_square(skewed7, 7, DRAWS) > dispatch_critical_0999(6));
    assert_true(dispatch_chi_square(even3, 3, DRAWS) < 1e-9);
}

static void select__is__uniform_over_three(void **unused)
{
    (void)unused;
    assert_uniform("12345", 3);
    assert_uniform("0", 3);
}

static void select__is__uniform_over_seven(void **unused)
{
    (void)unused;
    assert_uniform("12345", 7);
    assert_uniform("4294967295", 7);
}

static void select__stays__in_range_for_every_n(void **unused)
{
    (void)unused;
    dispatch_fixture_t *fx = fixture_new("7");
    for (size_t n = 1; n <= DISPATCH_MAX_RESOURCES; n++) {
        bool seen_last = false;
        for (int i = 0; i < 2000; i++)
            seen_last |= (size_t)dispatch_select(fx, n) == n - 1;
        assert_true(seen_last); /* the top index is reachable, not cut off */
    }
    assert_int_equal(fx->ops->select(fx->state, &dispatch_request, fx->candidates, 0), CP_EDECLINE);
    dispatch_fixture_free(fx);
}

static void select__repeats__its_choices_for_the_same_seed(void **unused)
{
    (void)unused;
    dispatch_assert_seed_repeats_choices();
}

static void init__seeds__from_random_bytes_without_a_seed(void **unused)
{
    (void)unused;
    dispatch_assert_seeded_from_random(64, 100); /* about 16 expected */
}

static void init__refuses__a_malformed_seed(void **unused)
{
    (void)unused;
    static const char *const bad[] = {
        "", "abc", "-1", "1.5", " 1", "1 ", "0x10", "4294967296", "99999999999999999999999",
    };
    dispatch_assert_seeds_refused(bad, G_N_ELEMENTS(bad));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(descriptor__names__random_dispatch),
        cmocka_unit_test(chi_square__flags__a_skewed_distribution),
        cmocka_unit_test(select__is__uniform_over_three),
        cmocka_unit_test(select__is__uniform_over_seven),
        cmocka_unit_test(select__stays__in_range_for_every_n),
        cmocka_unit_test(select__repeats__its_choices_for_the_same_seed),
        cmocka_unit_test(init__seeds__from_random_bytes_without_a_seed),
        cmocka_unit_test(init__refuses__a_malformed_seed),
    };
    return cmocka_run_group_tests_name("dispatch-random", tests, NULL, NULL);
}
