/* Unit tests for plugins/dispatch-priority through its descriptor. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <glib.h>

#include "fake-host.h"

#define MAX_CANDIDATES 16
#define DRAWS 40000

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

/* A fixture with SEED as [dispatch:priority] seed (NULL: none). */
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

static void set_priorities(dispatch_fixture_t *fx, const int *priorities, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fx->resources[i].priority = priorities[i];
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
    case 3: return 16.266;
    case 4: return 18.467;
    default: fail_msg("no critical value for %zu degrees of freedom", degrees);
    }
    return 0;
}

static void descriptor__names__priority_dispatch(void **unused)
{
    (void)unused;
    assert_int_equal(cp_plugin_descriptor.kind, CP_PLUGIN_DISPATCH);
    assert_string_equal(cp_plugin_descriptor.name, "priority");
    const cp_dispatch_ops_t *ops = fake_host_dispatch_ops();
    assert_non_null(ops->select);
    assert_null(ops->resource_online);
    assert_null(ops->resource_offline);
}

/* The check itself must be able to fail: a visibly skewed count is caught. */
static void chi_square__flags__a_skewed_distribution(void **unused)
{
    (void)unused;
    unsigned skewed4[4] = {10500, 9800, 9800, 9900};
    unsigned even4[4] = {10000, 10000, 10000, 10000};
    assert_true(chi_square(skewed4, 4, DRAWS) > critical_0999(3));
    assert_true(chi_square(even4, 4, DRAWS) < 1e-9);
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
        int chosen = fx->ops->select(fx->state, &request, fx->candidates, n);
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
    fixture_free(fx);
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
            int chosen = select_one(fx, 7);
            size_t slot = 0;
            while (slot < 4 && top[slot] != chosen)
                slot++;
            if (slot == 4)
                fail_msg("chose index %d, of priority %d", chosen, priorities[chosen]);
            counts[slot]++;
        }
        double stat = chi_square(counts, 4, DRAWS);
        if (stat >= critical_0999(3))
            fail_msg("seed %s: chi-square %.3f over four tied", seeds[s], stat);

        /* Priority 0 counts as available. */
        set_priorities(fx, zeros, 5);
        unsigned counts5[5] = {0};
        for (unsigned i = 0; i < DRAWS; i++)
            counts5[select_one(fx, 5)]++;
        stat = chi_square(counts5, 5, DRAWS);
        if (stat >= critical_0999(4))
            fail_msg("seed %s: chi-square %.3f over five at 0", seeds[s], stat);
        fixture_free(fx);
    }
}

static void select__declines__when_every_priority_is_negative(void **unused)
{
    (void)unused;
    dispatch_fixture_t *fx = fixture_new("2");
    static const int negative[4] = {-1, -128, -5, -1};
    set_priorities(fx, negative, 4);
    for (size_t n = 1; n <= 4; n++)
        assert_int_equal(fx->ops->select(fx->state, &request, fx->candidates, n), CP_EDECLINE);

    /* One at 0 among negatives always gets it, wherever it is. */
    static const int one_zero[4] = {-1, -128, 0, -1};
    set_priorities(fx, one_zero, 4);
    for (int i = 0; i < 100; i++)
        assert_int_equal(select_one(fx, 4), 2);
    static const int extremes[3] = {-128, 127, 126};
    set_priorities(fx, extremes, 3);
    assert_int_equal(select_one(fx, 3), 1);
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
        cmocka_unit_test(descriptor__names__priority_dispatch),
        cmocka_unit_test(chi_square__flags__a_skewed_distribution),
        cmocka_unit_test(select__picks__the_highest_priority_never_a_negative_one),
        cmocka_unit_test(select__picks__uniformly_among_the_top),
        cmocka_unit_test(select__declines__when_every_priority_is_negative),
        cmocka_unit_test(select__repeats__its_choices_for_the_same_seed),
        cmocka_unit_test(init__seeds__from_random_bytes_without_a_seed),
        cmocka_unit_test(init__refuses__a_malformed_seed),
    };
    return cmocka_run_group_tests_name("dispatch-priority", tests, NULL, NULL);
}
