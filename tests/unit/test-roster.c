/* core/roster.c: resources from presence, and the candidates dispatch sees. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "fake-plugins.h"
#include "roster.h"
#include "stream.h"
#include "unit-helpers.h"

typedef struct fixture {
    config_t *config;
    plugin_t *dispatch;
    roster_t *roster;
} fixture_t;

static void fail_violation(const char *message)
{
    fail_msg("%s", message);
}

static config_t *load(const char *proxy_lines)
{
    g_autofree char *text = g_strdup_printf("[component]\ndomain = proxy.example.org\n"
                                            "secret = s\n[proxy]\ntarget = service@example.org\n%s",
                                            proxy_lines);
    g_autofree char *path = write_temp_file(text);
    config_t *config = config_load(path, NULL);
    g_unlink(path);
    assert_non_null(config);
    return config;
}

static int setup_with(void **state, const char *proxy_lines)
{
    fake_world_reset(fail_violation);
    fixture_t *f = g_new0(fixture_t, 1);
    f->config = load(proxy_lines);
    f->dispatch = plugin_new_builtin(f->config, &fake_dispatch_descriptor, NULL);
    assert_non_null(f->dispatch);
    f->roster = roster_new(f->config, f->dispatch);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, "");
}

static int setup_filtered(void **state)
{
    return setup_with(state, "resources = worker-*\n");
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    GPtrArray *all = roster_list(f->roster);
    for (guint i = 0; i < all->len; i++)
        roster_remove(f->roster, all->pdata[i]);
    g_ptr_array_free(all, TRUE);
    roster_free(f->roster);
    plugin_unref(f->dispatch);
    config_free(f->config);
    fake_world_clear();
    g_free(f);
    return 0;
}

typedef struct presence_call {
    roster_t *roster;
    const char *name;
} presence_call_t;

static void deliver(const wire_stanza_t *stanza, void *data)
{
    presence_call_t *call = data;
    roster_presence_available(call->roster, call->name, stanza);
}

/* Resource NAME sends an available presence with CHILDREN. */
static resource_t *presence(fixture_t *f, const char *name, const char *children)
{
    g_autofree char *xml = g_strdup_printf(
        "<presence from='service@example.org/%s' to='proxy.example.org'>%s</presence>", name,
        children);
    presence_call_t call = {f->roster, name};
    assert_int_equal(stream_parse_stanzas(xml, strlen(xml), deliver, &call), 1);
    resource_t *resource = roster_lookup(f->roster, name);
    assert_non_null(resource);
    return resource;
}

static resource_t *choose(fixture_t *f)
{
    const cp_dispatch_request_t request = {.sender = "a@b/c", .type = "get"};
    return roster_choose(f->roster, &request, NULL);
}

static void roster_presence_available__adds_once_then_updates_show_and_priority(void **state)
{
    fixture_t *f = *state;
    resource_t *first = presence(f, "worker-1", "<priority>5</priority>");
    assert_string_equal(first->info.show, "");
    assert_int_equal(first->info.priority, 5);
    resource_t *again = presence(f, "worker-1", "<show>away</show><priority> -1 </priority>");
    assert_ptr_equal(first, again);
    assert_string_equal(again->info.show, "away");
    assert_int_equal(again->info.priority, -1);
    /* A show RFC 6120 does not know reads as plainly available. */
    presence(f, "worker-1", "<show>bogus</show>");
    assert_string_equal(again->info.show, "");
    assert_int_equal(roster_count(f->roster), 1);
    assert_int_equal(fake_world.online_calls, 1);
}

static void roster__offers_a_draining_resource_no_new_request(void **state)
{
    fixture_t *f = *state;
    presence(f, "worker-1", "");
    presence(f, "worker-2", "<show>dnd</show>");
    presence(f, "worker-3", "<show>xa</show>");
    assert_int_equal(roster_candidate_count(f->roster), 1);
    for (int i = 0; i < 5; i++)
        assert_string_equal(choose(f)->info.name, "worker-1");
    presence(f, "worker-2", "<show>chat</show>");
    assert_int_equal(roster_candidate_count(f->roster), 2);
}

static void roster__offers_only_resources_that_match_the_filter(void **state)
{
    fixture_t *f = *state;
    presence(f, "worker-1", "");
    presence(f, "videobridge", "");
    assert_int_equal(roster_count(f->roster), 2);
    assert_int_equal(roster_candidate_count(f->roster), 1);
    fake_world.preferred = "videobridge";
    assert_string_equal(choose(f)->info.name, "worker-1");
}

static void roster_choose__returns_null_when_the_strategy_declines_or_none_is_online(
    void **state)
{
    fixture_t *f = *state;
    assert_null(choose(f));
    presence(f, "worker-1", "");
    fake_world.decline = true;
    assert_null(choose(f));
    fake_world.decline = false;
    assert_non_null(choose(f));
}

static void roster__stops_offering_a_resource_that_is_leaving(void **state)
{
    fixture_t *f = *state;
    resource_t *leaving = presence(f, "worker-1", "");
    presence(f, "worker-2", "");
    roster_set_leaving(f->roster, leaving);
    for (int i = 0; i < 5; i++) {
        fake_world.pick = (unsigned)i;
        assert_string_equal(choose(f)->info.name, "worker-2");
    }
    roster_remove(f->roster, leaving);
    assert_int_equal(fake_world.offline_calls, 1);
    assert_null(roster_lookup(f->roster, "worker-1"));
}

/* Candidacy changes in O(1): many resources come and go in any order, and
 * the candidates stay exactly those that may take a request. */
static void roster__keeps_the_candidates_exact_as_many_resources_come_and_go(void **state)
{
    fixture_t *f = *state;
    enum { N = 2000 };
    for (int i = 0; i < N; i++) {
        g_autofree char *name = g_strdup_printf("w%d", i);
        presence(f, name, i % 3 == 0 ? "<show>dnd</show>" : "");
    }
    size_t expected = N - (N + 2) / 3;
    assert_int_equal(roster_candidate_count(f->roster), expected);
    for (int i = 0; i < N; i += 2) {
        g_autofree char *name = g_strdup_printf("w%d", i);
        resource_t *resource = roster_lookup(f->roster, name);
        roster_set_leaving(f->roster, resource);
        roster_remove(f->roster, resource);
        if (i % 3 != 0)
            expected--;
    }
    assert_int_equal(roster_candidate_count(f->roster), expected);
    for (size_t pick = 0; pick < expected; pick++) {
        fake_world.pick = (unsigned)pick;
        resource_t *chosen = choose(f);
        assert_non_null(chosen);
        assert_int_equal(chosen->candidate_slot, (int)pick);
        assert_string_equal(chosen->info.show, "");
    }
}

/* A retry elsewhere shows the strategy the roster's own list without the
 * resource that failed, not a copy of it: with ten thousand resources,
 * one leaving retries each of its requests, and a copy per retry made
 * that quadratic. */
static void roster_choose__elsewhere_shows_the_strategy_its_own_list_without_copying(
    void **state)
{
    fixture_t *f = *state;
    enum { N = 10000 };
    for (int i = 0; i < N; i++) {
        g_autofree char *name = g_strdup_printf("w%d", i);
        presence(f, name, "");
    }
    const cp_dispatch_request_t request = {.sender = "a@b/c", .type = "get"};
    assert_non_null(roster_choose(f->roster, &request, NULL));
    const cp_resource_t *const *own_list = fake_world.last_candidates;
    for (int i = 0; i < N; i += 997) {
        g_autofree char *name = g_strdup_printf("w%d", i);
        resource_t *failed = roster_lookup(f->roster, name);
        int slot = failed->candidate_slot;
        /* Its own slot (where the last candidate stands in for it), then
         * near the end, where it stepped out to. */
        const unsigned picks[] = {(unsigned)slot, N - 2, N - 3};
        for (unsigned k = 0; k < G_N_ELEMENTS(picks); k++) {
            fake_world.pick = picks[k];
            resource_t *chosen = roster_choose(f->roster, &request, failed);
            assert_non_null(chosen);
            assert_ptr_not_equal(chosen, failed);
            /* The strategy's pick, not whatever holds its slot once the
             * list is restored. */
            assert_string_equal(chosen->info.name, fake_world.chosen);
            assert_ptr_equal(fake_world.last_candidates, own_list);
            assert_int_equal(fake_world.last_n, N - 1);
        }
        /* Everything is where it was. */
        assert_int_equal(failed->candidate_slot, slot);
        fake_world.pick = (unsigned)slot;
        assert_ptr_equal(roster_choose(f->roster, &request, NULL), failed);
        fake_world.pick = N - 1;
        assert_int_equal(roster_choose(f->roster, &request, NULL)->candidate_slot, N - 1);
    }
}

/* The only candidate, set aside, leaves none: the strategy is not asked. */
static void roster_choose__elsewhere_than_the_only_candidate_finds_none(void **state)
{
    fixture_t *f = *state;
    resource_t *only = presence(f, "w1", "");
    fake_world.last_n = 0;
    const cp_dispatch_request_t request = {.sender = "a@b/c", .type = "get"};
    assert_null(roster_choose(f->roster, &request, only));
    assert_int_equal(fake_world.last_n, 0);
    assert_ptr_equal(choose(f), only);
}

static void roster_record_outcome__counts_recent_failures_and_averages_latency(void **state)
{
    fixture_t *f = *state;
    resource_t *r = presence(f, "a", "");
    roster_record_outcome(r, false, 10000);
    assert_true(r->info.latency_ms > 9.99 && r->info.latency_ms < 10.01);
    roster_record_outcome(r, false, 20000);
    assert_true(r->info.latency_ms > 11.99 && r->info.latency_ms < 12.01);
    roster_record_outcome(r, true, -1);
    roster_record_outcome(r, true, -1);
    assert_int_equal(r->info.recent_failures, 2);
    /* Only the last 16 outcomes count. */
    for (int i = 0; i < 16; i++)
        roster_record_outcome(r, false, 1000);
    assert_int_equal(r->info.recent_failures, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            roster_presence_available__adds_once_then_updates_show_and_priority, setup, teardown),
        cmocka_unit_test_setup_teardown(roster__offers_a_draining_resource_no_new_request, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(roster__offers_only_resources_that_match_the_filter,
                                        setup_filtered, teardown),
        cmocka_unit_test_setup_teardown(
            roster_choose__returns_null_when_the_strategy_declines_or_none_is_online, setup,
            teardown),
        cmocka_unit_test_setup_teardown(roster__stops_offering_a_resource_that_is_leaving, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            roster__keeps_the_candidates_exact_as_many_resources_come_and_go, setup, teardown),
        cmocka_unit_test_setup_teardown(
            roster_choose__elsewhere_shows_the_strategy_its_own_list_without_copying, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            roster_choose__elsewhere_than_the_only_candidate_finds_none, setup, teardown),
        cmocka_unit_test_setup_teardown(
            roster_record_outcome__counts_recent_failures_and_averages_latency, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
