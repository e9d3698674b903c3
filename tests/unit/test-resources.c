#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "resources.h"

static void resources_update__adds_once_and_then_updates(void **state)
{
    (void)state;
    resource_set_t *set = resources_new();
    bool added;
    resource_t *first = resources_update(set, "worker-1", "", 5, &added);
    assert_true(added);
    resource_t *again = resources_update(set, "worker-1", "dnd", -1, &added);
    assert_false(added);
    assert_ptr_equal(first, again);
    assert_string_equal(again->info.show, "dnd");
    assert_int_equal(again->info.priority, -1);
    assert_int_equal(resources_count(set), 1);
    assert_ptr_equal(resources_lookup(set, "worker-1"), first);
    assert_null(resources_lookup(set, "worker-2"));
    resources_free(set);
}

static void resources_all__lists_each_online_resource_once(void **state)
{
    (void)state;
    resource_set_t *set = resources_new();
    bool added;
    resources_update(set, "a", "", 0, &added);
    resource_t *b = resources_update(set, "b", "", 0, &added);
    resources_update(set, "c", "away", 0, &added);
    resources_remove(set, b);

    size_t n;
    const cp_resource_t *const *all = resources_all(set, &n);
    assert_int_equal(n, 2);
    bool seen_a = false, seen_c = false;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(all[i]->size, sizeof(cp_resource_t));
        seen_a |= g_str_equal(all[i]->name, "a");
        seen_c |= g_str_equal(all[i]->name, "c");
    }
    assert_true(seen_a && seen_c);
    assert_null(resources_lookup(set, "b"));
    resources_free(set);
}

static void resources_record_outcome__counts_recent_failures_and_averages_latency(void **state)
{
    (void)state;
    resource_set_t *set = resources_new();
    bool added;
    resource_t *r = resources_update(set, "a", "", 0, &added);
    resources_record_outcome(r, false, 10000);
    assert_true(r->info.latency_ms > 9.99 && r->info.latency_ms < 10.01);
    resources_record_outcome(r, false, 20000);
    assert_true(r->info.latency_ms > 11.99 && r->info.latency_ms < 12.01);
    resources_record_outcome(r, true, -1);
    resources_record_outcome(r, true, -1);
    assert_int_equal(r->info.recent_failures, 2);
    /* Only the last 16 outcomes count. */
    for (int i = 0; i < 16; i++)
        resources_record_outcome(r, false, 1000);
    assert_int_equal(r->info.recent_failures, 0);
    resources_free(set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(resources_update__adds_once_and_then_updates),
        cmocka_unit_test(resources_all__lists_each_online_resource_once),
        cmocka_unit_test(resources_record_outcome__counts_recent_failures_and_averages_latency),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
