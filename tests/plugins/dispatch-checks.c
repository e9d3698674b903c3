#include "dispatch-checks.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fake-host.h"

static const char *const no_attributes[] = {NULL};

const cp_dispatch_request_t dispatch_request = {
    .sender = "juliet@example.com/balcony",
    .type = "get",
    .payload_ns = "urn:example:ping",
    .payload_attributes = no_attributes,
};

dispatch_fixture_t *dispatch_fixture_new(const char *seed, const char *prefix, size_t n)
{
    const char *const config[] = {seed != NULL ? "seed" : NULL, seed, NULL};
    return dispatch_fixture_new_with(config, prefix, n);
}

dispatch_fixture_t *dispatch_fixture_new_with(const char *const *config, const char *prefix,
                                              size_t n)
{
    assert_true(n <= DISPATCH_MAX_RESOURCES);
    dispatch_fixture_t *fx = g_new0(dispatch_fixture_t, 1);
    fx->host = fake_host_new();
    for (const char *const *option = config; option[0] != NULL; option += 2)
        fake_host_set(fx->host, option[0], option[1]);
    fx->ops = fake_host_dispatch_ops();
    int status = fake_host_init_plugin(fx->host, &fx->state);
    if (status != CP_OK)
        fail_msg("init returned %d:\n%s", status, fake_host_transcript(fx->host));
    for (size_t i = 0; i < DISPATCH_MAX_RESOURCES; i++) {
        g_snprintf(fx->names[i], sizeof fx->names[i], "%s%zu", prefix, i);
        fx->resources[i] = (cp_resource_t){.size = sizeof(cp_resource_t), .name = fx->names[i],
                                           .show = ""};
    }
    for (size_t i = 0; i < n; i++)
        fx->candidates[i] = &fx->resources[i];
    fx->n = n;
    return fx;
}

void dispatch_fixture_free(dispatch_fixture_t *fx)
{
    cp_plugin_descriptor.fini(fx->state);
    fake_host_free(fx->host);
    if (fx->shuffle != NULL)
        g_rand_free(fx->shuffle);
    g_free(fx);
}

void dispatch_join(dispatch_fixture_t *fx, size_t r)
{
    assert_true(fx->n < DISPATCH_MAX_RESOURCES);
    if (fx->ops->resource_online != NULL)
        fx->ops->resource_online(fx->state, &fx->resources[r]);
    fx->candidates[fx->n++] = &fx->resources[r];
}

void dispatch_leave(dispatch_fixture_t *fx, size_t r)
{
    for (size_t i = 0; i < fx->n; i++) {
        if (fx->candidates[i] == &fx->resources[r]) {
            if (fx->ops->resource_offline != NULL)
                fx->ops->resource_offline(fx->state, &fx->resources[r]);
            fx->candidates[i] = fx->candidates[--fx->n];
            return;
        }
    }
    fail_msg("%s is not a candidate", fx->names[r]);
}

void dispatch_shuffle(dispatch_fixture_t *fx, GRand *rand)
{
    for (size_t i = fx->n; i > 1; i--) {
        size_t j = (size_t)g_rand_int_range(rand, 0, (gint32)i);
        const cp_resource_t *t = fx->candidates[i - 1];
        fx->candidates[i - 1] = fx->candidates[j];
        fx->candidates[j] = t;
    }
}

int dispatch_select(dispatch_fixture_t *fx, size_t n)
{
    int index = fx->ops->select(fx->state, &dispatch_request, fx->candidates, n);
    if (index < 0 || (size_t)index >= n)
        fail_msg("select among %zu returned %d", n, index);
    return index;
}

/* Selects for REQUEST among CANDIDATES[0..N); returns the resource's number. */
static size_t pick(dispatch_fixture_t *fx, const cp_dispatch_request_t *request,
                   const cp_resource_t *const *candidates, size_t n)
{
    int index = fx->ops->select(fx->state, request, candidates, n);
    if (index < 0 || (size_t)index >= n)
        fail_msg("select among %zu returned %d for %s", n, index, request->sender);
    return (size_t)(candidates[index] - fx->resources);
}

size_t dispatch_pick_among(dispatch_fixture_t *fx, const char *sender,
                           const cp_resource_t *const *candidates, size_t n)
{
    cp_dispatch_request_t request = dispatch_request;
    request.sender = sender;
    return pick(fx, &request, candidates, n);
}

size_t dispatch_pick(dispatch_fixture_t *fx, const char *sender)
{
    cp_dispatch_request_t request = dispatch_request;
    request.sender = sender;
    return dispatch_pick_request(fx, &request);
}

size_t dispatch_pick_request(dispatch_fixture_t *fx, const cp_dispatch_request_t *request)
{
    if (fx->shuffle != NULL)
        dispatch_shuffle(fx, fx->shuffle);
    return pick(fx, request, fx->candidates, fx->n);
}

double dispatch_chi_square(const unsigned *counts, size_t n, unsigned total)
{
    double expected = (double)total / (double)n;
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        double d = counts[i] - expected;
        sum += d * d / expected;
    }
    return sum;
}

double dispatch_critical_0999(size_t degrees)
{
    static const double critical[] = {
        0, 10.828, 13.816, 16.266, 18.467, 20.515, 22.458, 24.322, 26.124, 27.877, 29.588,
    };
    if (degrees == 0 || degrees >= G_N_ELEMENTS(critical))
        fail_msg("no critical value for %zu degrees of freedom", degrees);
    return critical[degrees];
}

void dispatch_assert_uniform(const unsigned *counts, size_t n, unsigned total, const char *fmt,
                             ...)
{
    double stat = dispatch_chi_square(counts, n, total);
    if (stat >= dispatch_critical_0999(n - 1)) {
        va_list args;
        va_start(args, fmt);
        char *what = g_strdup_vprintf(fmt, args);
        va_end(args);
        fail_msg("%s: chi-square %.3f over %zu is past the 0.999 critical value", what, stat, n);
        g_free(what); /* not reached: fail_msg() jumps out */
    }
}

void dispatch_assert_descriptor(const char *name, bool presence_hooks)
{
    assert_int_equal(cp_plugin_descriptor.kind, CP_PLUGIN_DISPATCH);
    assert_string_equal(cp_plugin_descriptor.name, name);
    const cp_dispatch_ops_t *ops = fake_host_dispatch_ops();
    assert_non_null(ops->select);
    assert_int_equal(ops->resource_online != NULL, presence_hooks);
    assert_int_equal(ops->resource_offline != NULL, presence_hooks);
}

void dispatch_assert_seeds_refused(const char *const *bad, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        cp_host_t *host = fake_host_new();
        void *state = NULL;
        fake_host_set(host, "seed", bad[i]);
        int status = fake_host_init_plugin(host, &state);
        if (status != CP_EINVAL)
            fail_msg("seed \"%s\": init returned %d", bad[i], status);
        assert_int_equal(fake_host_error_count(host), 1);
        if (!fake_host_has_error(host, "seed", "not an unsigned integer"))
            fail_msg("seed \"%s\": %s", bad[i], fake_host_transcript(host));
        /* A seed is a secret: the error never quotes it. */
        if (*bad[i] && strstr(fake_host_transcript(host), bad[i]))
            fail_msg("seed \"%s\" quoted: %s", bad[i], fake_host_transcript(host));
        fake_host_free(host);
    }
}

void dispatch_assert_seed_repeats_choices(void)
{
    dispatch_fixture_t *a = dispatch_fixture_new("42", "res", DISPATCH_MAX_RESOURCES);
    dispatch_fixture_t *b = dispatch_fixture_new("42", "res", DISPATCH_MAX_RESOURCES);
    dispatch_fixture_t *c = dispatch_fixture_new("43", "res", DISPATCH_MAX_RESOURCES);
    unsigned differ_from_c = 0;
    for (int i = 0; i < 1000; i++) {
        int x = dispatch_select(a, 7);
        assert_int_equal(dispatch_select(b, 7), x);
        differ_from_c += dispatch_select(c, 7) != x;
    }
    assert_true(differ_from_c > 500); /* another seed, another sequence */
    dispatch_fixture_free(a);
    dispatch_fixture_free(b);
    dispatch_fixture_free(c);
}

void dispatch_assert_seeded_from_random(size_t n, unsigned max_same)
{
    dispatch_fixture_t *a = dispatch_fixture_new(NULL, "res", DISPATCH_MAX_RESOURCES);
    dispatch_fixture_t *b = dispatch_fixture_new(NULL, "res", DISPATCH_MAX_RESOURCES);
    unsigned same = 0;
    for (int i = 0; i < 1000; i++)
        same += dispatch_select(a, n) == dispatch_select(b, n);
    if (same >= max_same) /* about 1000 / n expected; equal seeds would give 1000 */
        fail_msg("two unseeded instances agreed %u times in 1000 among %zu", same, n);
    dispatch_fixture_free(a);
    dispatch_fixture_free(b);

    cp_host_t *host = fake_host_new();
    void *state = NULL;
    fake_host_break_random(host);
    assert_int_equal(fake_host_init_plugin(host, &state), CP_EFAIL);
    assert_int_equal(fake_host_log_count(host, CP_LOG_ERROR, "random"), 1);
    fake_host_free(host);
}
