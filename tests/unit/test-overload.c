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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(overload__bounds_requests_in_flight_in_all),
        cmocka_unit_test(overload__bounds_each_sender_by_bare_jid),
        cmocka_unit_test(overload__limits_each_senders_rate_with_a_token_bucket),
        cmocka_unit_test(overload__tracks_a_bounded_number_of_senders_whatever_they_send),
        cmocka_unit_test(overload__forgets_a_sender_with_nothing_in_flight_without_rate_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
