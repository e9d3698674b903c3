#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "overload.h"
#include "unit-helpers.h"

#define SECOND G_USEC_PER_SEC

static overload_t *overload_from(const char *limits_group)
{
    g_autofree char *text = g_strdup_printf(VALID_CONFIG "[limits]\n%s", limits_group);
    g_autofree char *path = write_temp_file(text);
    g_autoptr(GError) error = NULL;
    g_autoptr(config_t) config = config_load(path, &error);
    g_unlink(path);
    if (!config)
        fail_msg("%s", error->message);
    return overload_new(config);
}

static void overload__bounds_requests_in_flight_in_all(void **state)
{
    (void)state;
    overload_t *o = overload_from("in_flight = 3\n");
    assert_int_equal(overload_admit(o, "a@x/1", 0), OVERLOAD_ADMITTED);
    assert_int_equal(overload_admit(o, "b@x/1", 0), OVERLOAD_ADMITTED);
    assert_int_equal(overload_admit(o, "c@x/1", 0), OVERLOAD_ADMITTED);
    assert_int_equal(overload_admit(o, "d@x/1", 0), OVERLOAD_FULL);
    overload_release(o, "b@x/1");
    assert_int_equal(overload_admit(o, "d@x/1", 0), OVERLOAD_ADMITTED);
    overload_free(o);
}

static void overload__bounds_each_sender_by_bare_jid(void **state)
{
    (void)state;
    overload_t *o = overload_from("in_flight_per_sender = 2\n");
    assert_int_equal(overload_admit(o, "a@x/phone", 0), OVERLOAD_ADMITTED);
    assert_int_equal(overload_admit(o, "a@x/laptop", 0), OVERLOAD_ADMITTED);
    assert_int_equal(overload_admit(o, "a@x/third", 0), OVERLOAD_SENDER_FULL);
    assert_int_equal(overload_admit(o, "b@x/phone", 0), OVERLOAD_ADMITTED);
    overload_release(o, "a@x/laptop");
    assert_int_equal(overload_admit(o, "a@x/third", 0), OVERLOAD_ADMITTED);
    overload_free(o);
}

static void overload__limits_each_senders_rate_with_a_token_bucket(void **state)
{
    (void)state;
    overload_t *o = overload_from("rate_per_sender = 10\nburst_per_sender = 3\n");
    for (int i = 0; i < 3; i++) {
        assert_int_equal(overload_admit(o, "a@x/1", 0), OVERLOAD_ADMITTED);
        overload_release(o, "a@x/1");
    }
    assert_int_equal(overload_admit(o, "a@x/1", 0), OVERLOAD_RATE);
    assert_int_equal(overload_admit(o, "b@x/1", 0), OVERLOAD_ADMITTED); /* its own bucket */
    /* 10 per second: one more token after 0.1 s, not before. */
    assert_int_equal(overload_admit(o, "a@x/1", SECOND / 20), OVERLOAD_RATE);
    assert_int_equal(overload_admit(o, "a@x/1", SECOND / 10 + 1), OVERLOAD_ADMITTED);
    overload_free(o);
}

static void overload__tracks_a_bounded_number_of_senders_whatever_they_send(void **state)
{
    (void)state;
    overload_t *o = overload_from("in_flight = 10\nrate_per_sender = 1\n");
    /* A flood of one-off senders, each answered at once: their buckets stay
     * part-empty, so they must be swept, not kept. */
    for (int i = 0; i < 200000; i++) {
        char sender[64];
        snprintf(sender, sizeof sender, "flood%d@x/r", i);
        int64_t now = (int64_t)i * 50; /* 20,000 new senders per second */
        if (overload_admit(o, sender, now) == OVERLOAD_ADMITTED)
            overload_release(o, sender);
        assert_true(overload_tracked_senders(o) <= 40);
    }
    /* Idle senders are forgotten once their bucket is full again. */
    assert_int_equal(overload_admit(o, "late@x/r", 1000 * SECOND), OVERLOAD_ADMITTED);
    overload_release(o, "late@x/r");
    overload_free(o);
}

static void overload__forgets_a_sender_with_nothing_in_flight_without_rate_limit(void **state)
{
    (void)state;
    overload_t *o = overload_from("");
    assert_int_equal(overload_admit(o, "a@x/1", 0), OVERLOAD_ADMITTED);
    assert_int_equal(overload_tracked_senders(o), 1);
    overload_release(o, "a@x/1");
    assert_int_equal(overload_tracked_senders(o), 0);
    overload_free(o);
}

/* No timing: the work of eviction is counted, in senders examined.  A
 * table of 4,000 senders, full of one-off senders whose buckets are still
 * refilling, meets a million more: each admission may examine only a few. */
static void overload_admit__is_o1_amortised_with_a_million_senders(void **state)
{
    (void)state;
    overload_t *o = overload_from("in_flight = 1000\nrate_per_sender = 1\n");
    const size_t tracked_max = 1000 * 4; /* TRACKED_PER_IN_FLIGHT */
    size_t admitted = 0;
    for (int i = 0; i < 1000000; i++) {
        char sender[64];
        snprintf(sender, sizeof sender, "flood%d@x/r", i);
        int64_t now = (int64_t)i * 50; /* 20,000 new senders per second */
        if (overload_admit(o, sender, now) == OVERLOAD_ADMITTED) {
            admitted++;
            overload_release(o, sender);
        }
        assert_true(overload_tracked_senders(o) <= tracked_max);
        size_t examined = overload_senders_examined(o);
        if (examined > 40 * (size_t)(i + 1))
            fail_msg("%zu senders examined for %d admissions", examined, i + 1);
    }
    /* Each second about tracked_max senders' buckets fill again and they
     * are forgotten, making room for as many new ones. */
    assert_in_range(admitted, 45 * tracked_max, 55 * tracked_max);
    overload_free(o);
}

/* A sender whose bucket takes long to refill must not keep those that
 * refill sooner, and went quiet after it, from being forgotten. */
static void overload__forgets_quick_refillers_behind_a_slow_one(void **state)
{
    (void)state;
    overload_t *o = overload_from("in_flight = 1\nrate_per_sender = 1\nburst_per_sender = 100\n");
    for (int i = 0; i < 100; i++) {
        assert_int_equal(overload_admit(o, "heavy@x/r", 0), OVERLOAD_ADMITTED);
        overload_release(o, "heavy@x/r"); /* its bucket is empty: 100 s to refill */
    }
    for (int i = 0; i < 3; i++) {
        char sender[64];
        snprintf(sender, sizeof sender, "light%d@x/r", i);
        assert_int_equal(overload_admit(o, sender, 1), OVERLOAD_ADMITTED);
        overload_release(o, sender); /* one token short: 1 s to refill */
    }
    assert_int_equal(overload_tracked_senders(o), 4);
    assert_int_equal(overload_admit(o, "new@x/r", SECOND / 2), OVERLOAD_FULL);
    assert_int_equal(overload_admit(o, "new@x/r", 2 * SECOND), OVERLOAD_ADMITTED);
    overload_release(o, "new@x/r");
    /* The heavy sender is still remembered, its bucket still part-empty. */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(overload_admit(o, "heavy@x/r", 2 * SECOND), OVERLOAD_ADMITTED);
        overload_release(o, "heavy@x/r");
    }
    assert_int_equal(overload_admit(o, "heavy@x/r", 2 * SECOND), OVERLOAD_RATE);
    overload_free(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(overload__bounds_requests_in_flight_in_all),
        cmocka_unit_test(overload__bounds_each_sender_by_bare_jid),
        cmocka_unit_test(overload__limits_each_senders_rate_with_a_token_bucket),
        cmocka_unit_test(overload__tracks_a_bounded_number_of_senders_whatever_they_send),
        cmocka_unit_test(overload__forgets_a_sender_with_nothing_in_flight_without_rate_limit),
        cmocka_unit_test(overload_admit__is_o1_amortised_with_a_million_senders),
        cmocka_unit_test(overload__forgets_quick_refillers_behind_a_slow_one),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
