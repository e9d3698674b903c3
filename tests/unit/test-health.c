/* core/health.c: benching a resource that stops answering, and pinging it
 * until it answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "health.h"
#include "outbox.h"
#include "roster.h"
#include "unit-helpers.h"

typedef struct fixture {
    config_t *config;
    GPtrArray *sent; /* char *: each stanza sent */
    outbox_t *outbox;
    health_t *health;
    resource_t resource;
} fixture_t;

static void record(const char *bytes, size_t length, void *userdata)
{
    fixture_t *f = userdata;
    g_ptr_array_add(f->sent, g_strndup(bytes, length));
}

static int setup(void **state)
{
    fixture_t *f = g_new0(fixture_t, 1);
    g_autofree char *path = write_temp_file(
        "[component]\ndomain = proxy.example.org\nsecret = s\n"
        "[proxy]\ntarget = service@example.org\nrequest_timeout = 10\nunhealthy_after = 2\n");
    f->config = config_load(path, NULL);
    g_unlink(path);
    assert_non_null(f->config);
    f->sent = g_ptr_array_new_with_free_func(g_free);
    f->outbox = outbox_new(record, f);
    outbox_up(f->outbox);
    f->health = health_new(f->config, f->outbox);
    f->resource.info.name = "worker-1";
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    health_forget(f->health, &f->resource);
    health_free(f->health);
    outbox_free(f->outbox);
    g_ptr_array_free(f->sent, TRUE);
    config_free(f->config);
    g_free(f);
    return 0;
}

/* The id of the ping sent last, parsed out of its bytes. */
static char *last_ping_id(fixture_t *f)
{
    assert_true(f->sent->len > 0);
    const char *ping = f->sent->pdata[f->sent->len - 1];
    assert_non_null(strstr(ping, "<ping xmlns='urn:xmpp:ping'/>"));
    assert_non_null(strstr(ping, "to='service@example.org/worker-1'"));
    const char *id = strstr(ping, "id='") + 4;
    return g_strndup(id, (gsize)(strchr(id, '\'') - id));
}

static void health__benches_after_unhealthy_after_timeouts_in_a_row(void **state)
{
    fixture_t *f = *state;
    assert_false(health_note_failure(f->health, &f->resource, "timed out"));
    health_note_answer(&f->resource); /* an answer breaks the row */
    assert_false(health_note_failure(f->health, &f->resource, "timed out"));
    assert_false(health_is_benched(&f->resource));
    assert_int_equal(f->sent->len, 0);
    assert_true(health_note_failure(f->health, &f->resource, "timed out"));
    assert_true(health_is_benched(&f->resource));
    g_autofree char *id = last_ping_id(f);
    assert_true(g_str_has_prefix(id, HEALTH_PING_ID_PREFIX));
    assert_true(health_next_due(f->health) > g_get_monotonic_time());
}

static void health__ends_the_bench_only_on_a_result_to_the_ping_owed(void **state)
{
    fixture_t *f = *state;
    health_note_failure(f->health, &f->resource, "timed out");
    health_note_failure(f->health, &f->resource, "timed out");
    g_autofree char *id = last_ping_id(f);
    assert_false(health_note_ping_reply(f->health, &f->resource, "cp-health-999", "result"));
    assert_false(health_note_ping_reply(f->health, &f->resource, id, "error"));
    assert_true(health_is_benched(&f->resource));
    assert_true(health_note_ping_reply(f->health, &f->resource, id, "result"));
    assert_false(health_is_benched(&f->resource));
    assert_int_equal(health_next_due(f->health), -1);
}

static void health_ping_due__pings_again_when_the_last_went_unanswered(void **state)
{
    fixture_t *f = *state;
    health_note_failure(f->health, &f->resource, "timed out");
    health_note_failure(f->health, &f->resource, "timed out");
    g_autofree char *first = last_ping_id(f);
    int64_t due = health_next_due(f->health);
    health_ping_due(f->health, due - 1);
    assert_int_equal(f->sent->len, 1);
    health_ping_due(f->health, due);
    assert_int_equal(f->sent->len, 2);
    g_autofree char *second = last_ping_id(f);
    assert_string_not_equal(first, second);
    /* Only the newest ping counts. */
    assert_false(health_note_ping_reply(f->health, &f->resource, first, "result"));
    assert_true(health_note_ping_reply(f->health, &f->resource, second, "result"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(health__benches_after_unhealthy_after_timeouts_in_a_row,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(health__ends_the_bench_only_on_a_result_to_the_ping_owed,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(health_ping_due__pings_again_when_the_last_went_unanswered,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
