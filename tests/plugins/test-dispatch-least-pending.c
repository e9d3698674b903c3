/* Unit tests for plugins/dispatch-least-pending through its descriptor. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <glib.h>

#include "fake-host.h"

#define MAX_CANDIDATES 16
#define DRAWS 42000

typedef struct dispatch_fixture {
    cp_host_t *host;
    void *state;
    const cp_dispatch_ops_t *ops;
    cp_resource_t resources[MAX_CANDIDATES];
    const cp_resource_t *candidates[MAX_CANDIDATES];
    char names[MAX_CANDIDATES][8];
} dispatch_fixture_t;

static const cp_dispatch_request_t request = {
    .sender = "juliet@example.com/balcony",
    .type = "get",
    .payload_ns = "urn:example:ping",
};

/* A fixture with SEED as [dispatch:least-pending] seed (NULL: none). */
static dispatch_fixture_t *fixture_new(const char *seed)
{
    dispatch_fixture_t *fx = g_new0(dispatch_fixture_t, 1);
    fx->host = fake_host_new();
    if (seed != NULL)
        fake_host_set(fx->host, "seed", seed);
    fx->ops = fake_host_dispatch_ops();
    int status = fake_host_init_plugin(fx->host, &fx->state);
    if (status != CP_OK)
        fail_msg("init returned %d:\n%s", status, fake_host_transcript(fx->host));
    for (size_t i = 0; i < MAX_CANDIDATES; i++) {
        g_snprintf(fx->names[i], sizeof fx->names[i], "res%zu", i);
        fx->resources[i] = (cp_resource_t){.size = sizeof(cp_resource_t), .name = fx->names[i],
                                           .show = ""};
        fx->candidates[i] = &fx->resources[i];
    }
    return fx;
}

static void fixture_free(dispatch_fixture_t *fx)
{
    cp_plugin_descriptor.fini(fx->state);
    fake_host_free(fx->host);
    g_free(fx);
}

static void set_in_flight(dispatch_fixture_t *fx, const unsigned *in_flight, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fx->resources[i].in_flight = in_flight[i];
}

static int select_one(dispatch_fixture_t *fx, size_t n)
{
    int index = fx->ops->select(fx->state, &request, fx->candidates, n);
    if (index < 0 || (size_t)index >= n)
        fail_msg("select among %zu returned %d", n, index);
    return index;
}

/* Pearson's chi-square statistic of COUNTS[0..N) against a uniform
 * distribution over TOTAL draws. */
static double chi_square(const unsigned *counts, size_t n, unsigned total)
{
    double expected = (double)total / (double)n;
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        double d = counts[i] - expected;
        sum += d * d / expected;
    }
    return sum;
}

/* Critical values of chi-square at p = 0.999, by degrees of freedom. */
static double critical_0999(size_t degrees)
{
    switch (degrees) {
    case 2: return 13.816;
    case 6: return 22.458;
    default: fail_msg("no critical value for %zu degrees of freedom", degrees);
    }
    return 0;
}

static void descriptor__names__least_pending_dispatch(void **unused)
{
    (void)unused;
    assert_int_equal(cp_plugin_descriptor.kind, CP_PLUGIN_DISPATCH);
    assert_string_equal(cp_plugin_descriptor.name, "least-pending");
    const cp_dispatch_ops_t *ops = fake_host_dispatch_ops();
    assert_non_null(ops->select);
    assert_null(ops->resource_online);
    assert_null(ops->resource_offline);
}

/* The check itself must be able to fail: a visibly skewed count is caught. */
static void chi_square__flags__a_skewed_distribution(void **unused)
{
    (void)unused;
    unsigned skewed3[3] = {14500, 13750, 13750};
    unsigned even3[3] = {14000, 14000, 14000};
    assert_true(chi_square(skewed3, 3, DRAWS) > critical_0999(2));
    assert_true(chi_square(even3, 3, DRAWS) < 1e-9);
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
        int chosen = select_one(fx, n);
        if (fx->resources[chosen].in_flight != least)
            fail_msg("trial %d: chose in_flight %u over %u", trial,
                     fx->resources[chosen].in_flight, least);
    }
    assert_true(ties_seen > 5000); /* the trials did exercise the tie-break */
    g_rand_free(rand);
    fixture_free(fx);
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
            int chosen = select_one(fx, 7);
            if (chosen != 1 && chosen != 3 && chosen != 5)
                fail_msg("chose index %d, which has %u in flight", chosen, mixed[chosen]);
            counts[chosen / 2]++;
        }
        double stat = chi_square(counts, 3, DRAWS);
        if (stat >= critical_0999(2))
            fail_msg("seed %s: chi-square %.3f over three tied", seeds[s], stat);

        set_in_flight(fx, idle, 7);
        unsigned counts7[7] = {0};
        for (unsigned i = 0; i < DRAWS; i++)
            counts7[select_one(fx, 7)]++;
        stat = chi_square(counts7, 7, DRAWS);
        if (stat >= critical_0999(6))
            fail_msg("seed %s: chi-square %.3f over seven idle", seeds[s], stat);
        fixture_free(fx);
    }
}

static void select__handles__one_candidate_and_none(void **unused)
{
    (void)unused;
    dispatch_fixture_t *fx = fixture_new("3");
    fx->resources[0].in_flight = 12;
    assert_int_equal(select_one(fx, 1), 0);
    fx->resources[0].in_flight = UINT32_MAX;
    fx->resources[1].in_flight = UINT32_MAX;
    assert_in_range(select_one(fx, 2), 0, 1);
    assert_int_equal(fx->ops->select(fx->state, &request, fx->candidates, 0), CP_EDECLINE);
    fixture_free(fx);
}

static void select__repeats__its_choices_for_the_same_seed(void **unused)
{
    (void)unused;
    dispatch_fixture_t *a = fixture_new("42");
    dispatch_fixture_t *b = fixture_new("42");
    dispatch_fixture_t *c = fixture_new("43");
    unsigned differ_from_c = 0;
    for (int i = 0; i < 1000; i++) {
        int x = select_one(a, 7);
        assert_int_equal(select_one(b, 7), x);
        differ_from_c += select_one(c, 7) != x;
    }
    assert_true(differ_from_c > 500); /* another seed, another sequence */
    fixture_free(a);
    fixture_free(b);
    fixture_free(c);
}

static void init__seeds__from_random_bytes_without_a_seed(void **unused)
{
    (void)unused;
    dispatch_fixture_t *a = fixture_new(NULL);
    dispatch_fixture_t *b = fixture_new(NULL);
    unsigned same = 0;
    for (int i = 0; i < 1000; i++)
        same += select_one(a, MAX_CANDIDATES) == select_one(b, MAX_CANDIDATES);
    assert_true(same < 200); /* about 62 expected; equal seeds would give 1000 */
    fixture_free(a);
    fixture_free(b);

    cp_host_t *host = fake_host_new();
    void *state = NULL;
    fake_host_break_random(host);
    assert_int_equal(fake_host_init_plugin(host, &state), CP_EFAIL);
    assert_int_equal(fake_host_log_count(host, CP_LOG_ERROR, "random"), 1);
    fake_host_free(host);
}

static void init__refuses__a_malformed_seed(void **unused)
{
    (void)unused;
    static const char *const bad[] = {
        "", "abc", "-1", "1.5", " 1", "1 ", "0x10", "4294967296", "99999999999999999999999",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        cp_host_t *host = fake_host_new();
        void *state = NULL;
        fake_host_set(host, "seed", bad[i]);
        int status = fake_host_init_plugin(host, &state);
        if (status != CP_EINVAL)
            fail_msg("seed \"%s\": init returned %d", bad[i], status);
        assert_int_equal(fake_host_error_count(host), 1);
        if (!fake_host_has_error(host, "seed", "not an unsigned integer"))
            fail_msg("seed \"%s\": %s", bad[i], fake_host_transcript(host));
        fake_host_free(host);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(descriptor__names__least_pending_dispatch),
        cmocka_unit_test(chi_square__flags__a_skewed_distribution),
        cmocka_unit_test(select__never_picks__a_busier_resource),
        cmocka_unit_test(select__spreads__ties_evenly),
        cmocka_unit_test(select__handles__one_candidate_and_none),
        cmocka_unit_test(select__repeats__its_choices_for_the_same_seed),
        cmocka_unit_test(init__seeds__from_random_bytes_without_a_seed),
        cmocka_unit_test(init__refuses__a_malformed_seed),
    };
    return cmocka_run_group_tests_name("dispatch-least-pending", tests, NULL, NULL);
}
