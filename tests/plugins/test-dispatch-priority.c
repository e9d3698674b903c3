/* Unit tests for plugins/dispatch-priority through its descriptor. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <glib.h>

#include "dispatch-checks.h"
#include "fake-host.h"

#define MAX_CANDIDATES 16
#define DRAWS 40000

static dispatch_fixture_t *fixture_new(const char *seed)
{
    return dispatch_fixture_new(seed, "res", MAX_CANDIDATES);
}

static void set_priorities(dispatch_fixture_t *fx, const int *priorities, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fx->resources[i].priority = priorities[i];
}

static void descriptor__names__priority_dispatch(void **unused)
{
    (void)unused;
    dispatch_assert_descriptor("priority", false);
}

/* Random priorities, ties common: the choice always has the highest, and
 * the request is declined exactly when that is negative. */
static void select__picks__the_highest_priority_never_a_negative_one(void **unused)
{
    (void)unused;
    dispatch_fixture_t *fx = fixture_new("8");
    GRand *rand = g_rand_new_with_seed(11);
    unsigned declined = 0;
    for (int trial = 0; trial < 20000; trial++) {
        size_t n = (size_t)g_rand_int_range(rand, 1, MAX_CANDIDATES + 1);
        bool wide = g_rand_boolean(rand);
        int highest = INT32_MIN;
        for (size_t i = 0; i < n; i++) {
            fx->resources[i].priority =
                wide ? g_rand_int_range(rand, -128, 128) : g_rand_int_range(rand, -3, 2);
            highest = MAX(highest, fx->resources[i].priority);
        }
        int chosen = fx->ops->select(fx->state, &dispatch_request, fx->candidates, n);
        if (highest < 0) {
            assert_int_equal(chosen, CP_EDECLINE);
            declined++;
            continue;
        }
        if (chosen < 0 || (size_t)chosen >= n)
            fail_msg("trial %d: select among %zu returned %d", trial, n, chosen);
        if (fx->resources[chosen].priority != highest)
            fail_msg("trial %d: chose priority %d over %d", trial,
                     fx->resources[chosen].priority, highest);
    }
    assert_true(declined > 500 && declined < 10000); /* both branches exercised */
    g_rand_free(rand);
    dispatch_fixture_free(fx);
}

static void select__picks__uniformly_among_the_top(void **unused)
{
    (void)unused;
    /* Four tied at 5 (indices 0, 2, 4, 5), others lower. */
    static const int priorities[7] = {5, 1, 5, -1, 5, 5, 0};
    static const int top[4] = {0, 2, 4, 5};
    static const int zeros[5] = {0, 0, 0, 0, 0};
    static const char *const seeds[] = {"1", "4294967295"};
    for (size_t s = 0; s < G_N_ELEMENTS(seeds); s++) {
        dispatch_fixture_t *fx = fixture_new(seeds[s]);
        set_priorities(fx, priorities, 7);
        unsigned counts[4] = {0};
        for (unsigned i = 0; i < DRAWS; i++) {
            int chosen = dispatch_select(fx, 7);
            size_t slot = 0;
            while (slot < 4 && top[slot] != chosen)
                slot++;
            if (slot == 4)
                fail_msg("chose index %d, of priority %d", chosen, priorities[chosen]);
            counts[slot]++;
        }
        dispatch_assert_uniform(counts, 4, DRAWS, "seed %s, four tied", seeds[s]);

        /* Priority 0 counts as available. */
        set_priorities(fx, zeros, 5);
        unsigned counts5[5] = {0};
        for (unsigned i = 0; i < DRAWS; i++)
            counts5[dispatch_select(fx, 5)]++;
        dispatch_assert_uniform(counts5, 5, DRAWS, "seed %s, five at 0", seeds[s]);
        dispatch_fixture_free(fx);
    }
}

static void select__declines__when_every_priority_is_negative(void **unused)
{
    (void)unused;
    dispatch_fixture_t *fx = fixture_new("2");
    static const int negative[4] = {-1, -128, -5, -1};
    set_priorities(fx, negative, 4);
    for (size_t n = 1; n <= 4; n++)
        assert_int_equal(fx->ops->select(fx->state, &dispatch_request, fx->candidates, n), CP_EDECLINE);

    /* One at 0 among negatives always gets it, wherever it is. */
    static const int one_zero[4] = {-1, -128, 0, -1};
    set_priorities(fx, one_zero, 4);
    for (int i = 0; i < 100; i++)
        assert_int_equal(dispatch_select(fx, 4), 2);
    static const int extremes[3] = {-128, 127, 126};
    set_priorities(fx, extremes, 3);
    assert_int_equal(dispatch_select(fx, 3), 1);
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
    dispatch_assert_seeded_from_random(MAX_CANDIDATES, 200); /* about 62 expected */
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
        cmocka_unit_test(descriptor__names__priority_dispatch),
        cmocka_unit_test(select__picks__the_highest_priority_never_a_negative_one),
        cmocka_unit_test(select__picks__uniformly_among_the_top),
        cmocka_unit_test(select__declines__when_every_priority_is_negative),
        cmocka_unit_test(select__repeats__its_choices_for_the_same_seed),
        cmocka_unit_test(init__seeds__from_random_bytes_without_a_seed),
        cmocka_unit_test(init__refuses__a_malformed_seed),
    };
    return cmocka_run_group_tests_name("dispatch-priority", tests, NULL, NULL);
}
