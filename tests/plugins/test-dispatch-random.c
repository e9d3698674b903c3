/* Unit tests for plugins/dispatch-random through its descriptor. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <glib.h>

#include "fake-host.h"

#define MAX_CANDIDATES 64
#define DRAWS 60000

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

/* A fixture with SEED as [dispatch:random] seed (NULL: none). */
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

static void assert_uniform(const char *seed, size_t n)
{
    dispatch_fixture_t *fx = fixture_new(seed);
    unsigned counts[MAX_CANDIDATES] = {0};
    for (unsigned i = 0; i < DRAWS; i++)
        counts[select_one(fx, n)]++;
    double stat = chi_square(counts, n, DRAWS);
    if (stat >= critical_0999(n - 1))
        fail_msg("chi-square %.3f for n = %zu is past the 0.999 critical value", stat, n);
    fixture_free(fx);
}

static void descriptor__names__random_dispatch(void **unused)
{
    (void)unused;
    assert_int_equal(cp_plugin_descriptor.kind, CP_PLUGIN_DISPATCH);
    assert_string_equal(cp_plugin_descriptor.name, "random");
    const cp_dispatch_ops_t *ops = fake_host_dispatch_ops();
    assert_non_null(ops->select);
    assert_null(ops->resource_online);
    assert_null(ops->resource_offline);
}

/* The check itself must be able to fail: a visibly skewed count is caught. */
static void chi_square__flags__a_skewed_distribution(void **unused)
{
    (void)unused;
    unsigned skewed3[3] = {20600, 19700, 19700};
    unsigned skewed7[7] = {9100, 8500, 8500, 8500, 8500, 8400, 8500};
    unsigned even3[3] = {20000, 20000, 20000};
    assert_true(chi_square(skewed3, 3, DRAWS) > critical_0999(2));
    assert_true(chi_square(skewed7, 7, DRAWS) > critical_0999(6));
    assert_true(chi_square(even3, 3, DRAWS) < 1e-9);
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
    for (size_t n = 1; n <= MAX_CANDIDATES; n++) {
        bool seen_last = false;
        for (int i = 0; i < 2000; i++)
            seen_last |= (size_t)select_one(fx, n) == n - 1;
        assert_true(seen_last); /* the top index is reachable, not cut off */
    }
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
        same += select_one(a, 64) == select_one(b, 64);
    assert_true(same < 100); /* about 16 expected; equal seeds would give 1000 */
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
