/* Unit tests for plugins/dispatch-least-pending through its descriptor. */
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
#define DRAWS 42000

static dispatch_fixture_t *fixture_new(const char *seed)
{
    return dispatch_fixture_new(seed, "res", MAX_CANDIDATES);
}

static void set_in_flight(dispatch_fixture_t *fx, const unsigned *in_flight, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fx->resources[i].in_flight = in_flight[i];
}

static void descriptor__names__least_pending_dispatch(void **unused)
{
    (void)unused;
    dispatch_assert_descriptor("least-pending", false);
}

static void select__never_picks__a_busier_resource(void **unused)
{
    (void)unused;
    dispatch_fixture_t *fx = fixture_new("31337");
    GRand *rand = g_rand_new_with_seed(5);
    unsigned ties_seen = 0;
    for (int trial = 0; trial < 20000; trial++) {
        size_t n = (size_t)g_rand_int_range(rand, 1, MAX_CANDIDATES + 1);
        /* Small values, so that ties are common; sometimes large ones. */
        unsigned top = g_rand_boolean(rand) ? 4 : 100000;
        unsigned least = UINT32_MAX;
        for (size_t i = 0; i < n; i++) {
            fx->resources[i].in_flight = (unsigned)g_rand_int_range(rand, 0, (gint32)top);
            least = MIN(least, fx->resources[i].in_flight);
        }
        unsigned at_least = 0;
        for (size_t i = 0; i < n; i++)
            at_least += fx->resources[i].in_flight == least;
        ties_seen += at_least > 1;
        int chosen = dispatch_select(fx, n);
        if (fx->resources[chosen].in_flight != least)
            fail_msg("trial %d: chose in_flight %u over %u", trial,
                     fx->resources[chosen].in_flight, least);
    }
    assert_true(ties_seen > 5000); /* the trials did exercise the tie-break */
    g_rand_free(rand);
    dispatch_fixture_free(fx);
}

static void select__spreads__ties_evenly(void **unused)
{
    (void)unused;
    /* Three tied at 1 (indices 1, 3, 5) among busier ones. */
    static const unsigned mixed[7] = {3, 1, 5, 1, 2, 1, 9};
    static const unsigned idle[7] = {0, 0, 0, 0, 0, 0, 0};
    static const char *const seeds[] = {"1", "777"};
    for (size_t s = 0; s < G_N_ELEMENTS(seeds); s++) {
        dispatch_fixture_t *fx = fixture_new(seeds[s]);
        set_in_flight(fx, mixed, 7);
        unsigned counts[3] = {0};
        for (unsigned i = 0; i < DRAWS; i++) {
            int chosen = dispatch_select(fx, 7);
            if (chosen != 1 && chosen != 3 && chosen != 5)
                fail_msg("chose index %d, which has %u in flight", chosen, mixed[chosen]);
            counts[chosen / 2]++;
        }
        dispatch_assert_uniform(counts, 3, DRAWS, "seed %s, three tied", seeds[s]);

        set_in_flight(fx, idle, 7);
        unsigned counts7[7] = {0};
        for (unsigned i = 0; i < DRAWS; i++)
            counts7[dispatch_select(fx, 7)]++;
        dispatch_assert_uniform(counts7, 7, DRAWS, "seed %s, seven idle", seeds[s]);
        dispatch_fixture_free(fx);
    }
}

static void select__handles__one_candidate_and_none(void **unused)
{
    (void)unused;
    dispatch_fixture_t *fx = fixture_new("3");
    fx->resources[0].in_flight = 12;
    assert_int_equal(dispatch_select(fx, 1), 0);
    fx->resources[0].in_flight = UINT32_MAX;
    fx->resources[1].in_flight = UINT32_MAX;
    assert_in_range(dispatch_select(fx, 2), 0, 1);
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
        cmocka_unit_test(descriptor__names__least_pending_dispatch),
        cmocka_unit_test(select__never_picks__a_busier_resource),
        cmocka_unit_test(select__spreads__ties_evenly),
        cmocka_unit_test(select__handles__one_candidate_and_none),
        cmocka_unit_test(select__repeats__its_choices_for_the_same_seed),
        cmocka_unit_test(init__seeds__from_random_bytes_without_a_seed),
        cmocka_unit_test(init__refuses__a_malformed_seed),
    };
    return cmocka_run_group_tests_name("dispatch-least-pending", tests, NULL, NULL);
}
