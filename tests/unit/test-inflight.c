/* core/inflight.c: requests from admission to their one reply. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "fake-plugins.h"
#include "inflight.h"
#include "stream.h"
#include "unit-helpers.h"

#define ALICE "alice@example.org/phone"

typedef struct fixture {
    config_t *config;
    plugin_t *jat;
    GPtrArray *sent; /* char *: each stanza sent */
    outbox_t *outbox;
    inflight_t *inflight;
    resource_t worker1, worker2;
} fixture_t;

static void fail_violation(const char *message)
{
    fail_msg("%s", message);
}

static void record(const char *bytes, size_t length, void *userdata)
{
    fixture_t *f = userdata;
    g_ptr_array_add(f->sent, g_strndup(bytes, length));
}

static void init_resource(resource_t *resource, const char *name)
{
    resource->info.name = name;
    g_queue_init(&resource->requests);
}

static int setup(void **state)
{
    fake_world_reset(fail_violation);
    fixture_t *f = g_new0(fixture_t, 1);
    g_autofree char *path = write_temp_file(
        "[component]\ndomain = proxy.example.org\nsecret = s\n"
        "[proxy]\ntarget = service@example.org\nrequest_timeout = 10\n"
        "[limits]\nin_flight = 4\nin_flight_per_sender = 2\n");
    f->config = config_load(path, NULL);
    g_unlink(path);
    assert_non_null(f->config);
    f->jat = plugin_new_builtin(f->config, &fake_jat_descriptor, NULL);
    f->sent = g_ptr_array_new_with_free_func(g_free);
    f->outbox = outbox_new(record, f);
    outbox_up(f->outbox);
    f->inflight = inflight_new(f->config, f->outbox, NULL);
    init_resource(&f->worker1, "worker-1");
    init_resource(&f->worker2, "worker-2");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    request_t *request;
    const stanza_error_t gone = {"cancel", "service-unavailable", NULL};
    while ((request = inflight_earliest(f->inflight)))
        inflight_end(f->inflight, request, NULL, &gone);
    inflight_free(f->inflight);
    outbox_free(f->outbox);
    plugin_unref(f->jat);
    g_ptr_array_free(f->sent, TRUE);
    config_free(f->config);
    fake_world_clear();
    g_free(f);
    return 0;
}

/* Parses XML into a wire stanza for USE, as the stream would deliver it. */
static void with_stanza(const char *xml, void (*use)(const wire_stanza_t *, void *), void *data)
{
    assert_int_equal(stream_parse_stanzas(xml, strlen(xml), use, data), 1);
}

typedef struct start_call {
    fixture_t *f;
    resource_t *resource;
    const char *token; /* NULL: the fake encoding makes one */
    request_t *request;
} start_call_t;

static void do_start(const wire_stanza_t *iq, void *data)
{
    start_call_t *call = data;
    char token[CP_TOKEN_MAX + 1];
    if (call->token)
        g_strlcpy(token, call->token, sizeof token);
    else
        assert_int_equal(plugin_encode(call->f->jat, iq->from, 0, token, sizeof token), CP_OK);
    call->request = inflight_start(call->f->inflight, iq, token, call->f->jat, call->resource,
                                   g_get_monotonic_time());
}

static inflight_admission_t admit(fixture_t *f, const char *sender, const char *id)
{
    return inflight_admit(f->inflight, sender, id, false, g_get_monotonic_time());
}

/* Admits and starts a get from SENDER with ID on RESOURCE. */
static request_t *start(fixture_t *f, const char *sender, const char *id, resource_t *resource)
{
    assert_int_equal(admit(f, sender, id), INFLIGHT_ADMITTED);
    g_autofree char *xml = g_strdup_printf("<iq type='get' id='%s' from='%s' "
                                           "to='proxy.example.org'><q xmlns='urn:x'/></iq>",
                                           id, sender);
    start_call_t call = {f, resource, NULL, NULL};
    with_stanza(xml, do_start, &call);
    assert_non_null(call.request);
    return call.request;
}

static void inflight_start__forwards_from_a_token_to_the_resource(void **state)
{
    fixture_t *f = *state;
    request_t *request = start(f, ALICE, "q1", &f->worker1);
    assert_string_equal(request->token, "t1");
    assert_string_equal(request->sender, ALICE);
    assert_ptr_equal(request->resource, &f->worker1);
    assert_int_equal(f->worker1.info.in_flight, 1);
    assert_int_equal(f->sent->len, 1);
    const char *forwarded = f->sent->pdata[0];
    assert_non_null(strstr(forwarded, "from='proxy.example.org/t1'"));
    assert_non_null(strstr(forwarded, "to='service@example.org/worker-1'"));
    assert_non_null(strstr(forwarded, "<q xmlns='urn:x'/>"));
    assert_int_equal(inflight_count(f->inflight), 1);
}

/* Audit, issue 10 #5. */
static void inflight_admit__refuses_a_duplicate_sender_and_id_whatever_the_token(void **state)
{
    fixture_t *f = *state;
    start(f, ALICE, "q1", &f->worker1);
    assert_int_equal(admit(f, ALICE, "q1"),
                     INFLIGHT_DUPLICATE);
    /* Another resource of the same account is another sender. */
    start(f, "alice@example.org/laptop", "q1", &f->worker1);
}

static void inflight_admit__applies_the_limits_until_requests_end(void **state)
{
    fixture_t *f = *state;
    start(f, ALICE, "q1", &f->worker1);
    start(f, ALICE, "q2", &f->worker1);
    assert_int_equal(admit(f, "alice@example.org/laptop", "q3"),
                     INFLIGHT_SENDER_FULL); /* per bare JID */
    start(f, "bob@example.org/pc", "q1", &f->worker2);
    start(f, "dave@example.org/pc", "q1", &f->worker2);
    assert_int_equal(admit(f, "carol@example.org/pc", "q1"),
                     INFLIGHT_FULL);
    const stanza_error_t error = {"wait", "remote-server-timeout", NULL};
    inflight_end(f->inflight, inflight_earliest(f->inflight), NULL, &error);
    assert_int_equal(admit(f, "carol@example.org/pc", "q1"),
                     INFLIGHT_ADMITTED);
    inflight_withdraw(f->inflight, "carol@example.org/pc");
    /* Five admitted in all, whatever ended since; the refusals are not
     * counted. */
    assert_int_equal(inflight_admitted_total(f->inflight), 5);
}

static void inflight_match_reply__names_why_a_reply_matches_nothing(void **state)
{
    fixture_t *f = *state;
    request_t *request = start(f, ALICE, "q1", &f->worker1);
    request_t *found;
    assert_int_equal(inflight_match_reply(f->inflight, "t1", "q1", "worker-1", &found),
                     INFLIGHT_MATCHED);
    assert_ptr_equal(found, request);
    assert_int_equal(inflight_match_reply(f->inflight, "t2", "q1", "worker-1", &found),
                     INFLIGHT_NO_REQUEST);
    assert_int_equal(inflight_match_reply(f->inflight, "t1", "q2", "worker-1", &found),
                     INFLIGHT_NO_REQUEST);
    assert_int_equal(inflight_match_reply(f->inflight, "t1", "q1", "worker-2", &found),
                     INFLIGHT_WRONG_RESOURCE);
    fake_world.fail_decode = true;
    assert_int_equal(inflight_match_reply(f->inflight, "t1", "q1", "worker-1", &found),
                     INFLIGHT_TOKEN_REJECTED);
    fake_world.fail_decode = false;
}

typedef struct end_call {
    fixture_t *f;
    request_t *request;
} end_call_t;

static void do_end(const wire_stanza_t *reply, void *data)
{
    end_call_t *call = data;
    inflight_end(call->f->inflight, call->request, reply, NULL);
}

static void inflight_end__forwards_the_reply_and_forgets_everything(void **state)
{
    fixture_t *f = *state;
    request_t *request = start(f, ALICE, "q1", &f->worker1);
    g_ptr_array_set_size(f->sent, 0);
    end_call_t call = {f, request};
    with_stanza("<iq type='result' id='q1' from='service@example.org/worker-1' "
                "to='proxy.example.org/t1'><a xmlns='urn:x'>ok</a></iq>",
                do_end, &call);
    assert_int_equal(f->sent->len, 1);
    const char *reply = f->sent->pdata[0];
    assert_non_null(strstr(reply, "from='proxy.example.org'"));
    assert_non_null(strstr(reply, "to='" ALICE "'"));
    assert_non_null(strstr(reply, "<a xmlns='urn:x'>ok</a>"));
    assert_int_equal(inflight_count(f->inflight), 0);
    assert_int_equal(f->worker1.info.in_flight, 0);
    assert_int_equal(fake_world.forgotten, 1);
    assert_true(f->worker1.info.latency_ms >= 0.0);
    assert_int_equal(f->worker1.info.recent_failures, 0);
}

static void inflight_end__answers_an_error_from_the_domain(void **state)
{
    fixture_t *f = *state;
    request_t *request = start(f, ALICE, "q1", &f->worker1);
    g_ptr_array_set_size(f->sent, 0);
    const stanza_error_t error = {"wait", "remote-server-timeout", "late"};
    inflight_end(f->inflight, request, NULL, &error);
    const char *answer = f->sent->pdata[0];
    assert_non_null(strstr(answer, "type='error' id='q1' from='proxy.example.org' to='" ALICE
                                   "'"));
    assert_non_null(strstr(answer, "<remote-server-timeout"));
    assert_int_equal(f->worker1.info.recent_failures, 1);
}

/* A reload replaces the encoding: the request keeps the instance that made
 * its token, which finishes once that request ends. */
static void inflight__keeps_the_encoding_that_made_a_token_until_its_request_ends(void **state)
{
    fixture_t *f = *state;
    request_t *request = start(f, ALICE, "q1", &f->worker1);
    plugin_unref(f->jat);
    f->jat = plugin_new_builtin(f->config, &fake_jat_descriptor, NULL);
    assert_int_equal(fake_world.jat_instances->len, 2);
    request_t *found;
    assert_int_equal(inflight_match_reply(f->inflight, "t1", "q1", "worker-1", &found),
                     INFLIGHT_MATCHED);
    const stanza_error_t error = {"wait", "remote-server-timeout", NULL};
    inflight_end(f->inflight, request, NULL, &error);
    assert_int_equal(fake_world.jat_instances->len, 1);
}

static void inflight_retry__moves_a_request_to_another_resource_with_its_token(void **state)
{
    fixture_t *f = *state;
    request_t *request = start(f, ALICE, "q1", &f->worker1);
    assert_non_null(request->kept);
    g_ptr_array_set_size(f->sent, 0);
    inflight_retry(f->inflight, request, &f->worker2);
    assert_true(request->retried);
    assert_ptr_equal(request->resource, &f->worker2);
    assert_int_equal(f->worker1.info.in_flight, 0);
    assert_int_equal(f->worker2.info.in_flight, 1);
    const char *forwarded = f->sent->pdata[0];
    assert_non_null(strstr(forwarded, "from='proxy.example.org/t1'"));
    assert_non_null(strstr(forwarded, "to='service@example.org/worker-2'"));
    request_t *found;
    assert_int_equal(inflight_match_reply(f->inflight, "t1", "q1", "worker-2", &found),
                     INFLIGHT_MATCHED);
}

static void inflight_earliest__is_the_first_deadline(void **state)
{
    fixture_t *f = *state;
    request_t *first = start(f, ALICE, "q1", &f->worker1);
    request_t *second = start(f, "bob@example.org/pc", "q1", &f->worker1);
    assert_ptr_equal(inflight_earliest(f->inflight), first);
    assert_true(first->deadline <= second->deadline);
    const stanza_error_t error = {"wait", "remote-server-timeout", NULL};
    inflight_end(f->inflight, first, NULL, &error);
    assert_ptr_equal(inflight_earliest(f->inflight), second);
}

typedef struct outbound_call {
    fixture_t *f;
    const char *user;
    request_t *request;
} outbound_call_t;

static void do_start_outbound(const wire_stanza_t *iq, void *data)
{
    outbound_call_t *call = data;
    call->request = inflight_start_outbound(call->f->inflight, iq, "t7", call->user,
                                            g_get_monotonic_time());
}

/* The service asks ALICE through address t7. */
static request_t *start_outbound(fixture_t *f, const char *resource_jid, const char *id)
{
    assert_int_equal(inflight_admit(f->inflight, resource_jid, id, true, g_get_monotonic_time()),
                     INFLIGHT_ADMITTED);
    g_autofree char *xml = g_strdup_printf("<iq type='set' id='%s' from='%s' "
                                           "to='proxy.example.org/t7'><q xmlns='urn:x'/></iq>",
                                           id, resource_jid);
    outbound_call_t call = {f, ALICE, NULL};
    with_stanza(xml, do_start_outbound, &call);
    assert_non_null(call.request);
    return call.request;
}

typedef struct answer_call {
    fixture_t *f;
    request_t *request;
} answer_call_t;

static void do_answer(const wire_stanza_t *reply, void *data)
{
    answer_call_t *call = data;
    call->request = inflight_match_answer(call->f->inflight, reply->id, reply->from);
    if (call->request)
        inflight_end(call->f->inflight, call->request, reply, NULL);
}

/* A resource asks a user: the user sees client-proxy's id from the bare
 * domain, and the resource gets the answer with its own id, from the
 * address it wrote to. */
static void inflight_start_outbound__gives_ids_of_its_own_and_routes_the_answer_back(
    void **state)
{
    fixture_t *f = *state;
    request_t *first = start_outbound(f, "service@example.org/worker-1", "x");
    request_t *second = start_outbound(f, "service@example.org/worker-2", "x");
    assert_string_not_equal(first->wire_id, second->wire_id);
    assert_true(g_str_has_prefix(first->wire_id, INFLIGHT_OUTBOUND_ID_PREFIX));
    const char *sent = f->sent->pdata[0];
    g_autofree char *expected_id = g_strdup_printf("id='%s'", first->wire_id);
    assert_non_null(strstr(sent, expected_id));
    assert_non_null(strstr(sent, "from='proxy.example.org' to='" ALICE "'"));

    /* An answer from anyone else is not the user's. */
    assert_null(inflight_match_answer(f->inflight, first->wire_id, "mallory@example.org/x"));
    g_ptr_array_set_size(f->sent, 0);
    g_autofree char *wire_id = g_strdup(first->wire_id);
    g_autofree char *xml = g_strdup_printf("<iq type='result' id='%s' from='" ALICE
                                           "' to='proxy.example.org'><a xmlns='urn:x'/></iq>",
                                           wire_id);
    answer_call_t call = {f, NULL};
    with_stanza(xml, do_answer, &call);
    assert_non_null(call.request);
    const char *answer = f->sent->pdata[0];
    assert_non_null(strstr(answer, "id='x'"));
    assert_non_null(strstr(answer, "from='proxy.example.org/t7'"));
    assert_non_null(strstr(answer, "to='service@example.org/worker-1'"));
    assert_non_null(strstr(answer, "<a xmlns='urn:x'/>"));
    assert_int_equal(inflight_count(f->inflight), 1);
    /* Answered: the same answer again matches nothing. */
    assert_null(inflight_match_answer(f->inflight, wire_id, ALICE));
}

static void inflight_end_outbound__answers_every_outbound_request_and_only_those(void **state)
{
    fixture_t *f = *state;
    start(f, ALICE, "q1", &f->worker1);
    start_outbound(f, "service@example.org/worker-1", "x");
    start_outbound(f, "service@example.org/worker-2", "y");
    g_ptr_array_set_size(f->sent, 0);
    const stanza_error_t error = {"cancel", "service-unavailable", NULL};
    inflight_end_outbound(f->inflight, &error);
    assert_int_equal(f->sent->len, 2);
    assert_non_null(strstr(f->sent->pdata[0], "from='proxy.example.org/t7'"));
    assert_non_null(strstr(f->sent->pdata[0], "<service-unavailable"));
    assert_int_equal(inflight_count(f->inflight), 1);
}

/* One resource cannot starve the users: the service's own requests get
 * half of [limits] in_flight at most. */
static void inflight_admit__keeps_half_the_room_for_users(void **state)
{
    fixture_t *f = *state;
    /* in_flight = 4: two outbound at most. */
    start_outbound(f, "service@example.org/worker-1", "x");
    start_outbound(f, "service@example.org/worker-2", "x");
    assert_int_equal(inflight_admit(f->inflight, "service@example.org/worker-3", "y", true,
                                    g_get_monotonic_time()),
                     INFLIGHT_FULL);
    start(f, ALICE, "q1", &f->worker1);
    start(f, "bob@example.org/pc", "q1", &f->worker1);
}

/* [proxy] hold: a request waits for a resource, keeps its deadline, and
 * is placed in arrival order. */
typedef struct hold_call {
    fixture_t *f;
    int64_t hold_until;
    int64_t arrived; /* monotonic µs; 0: now */
    request_t *request;
} hold_call_t;

static void do_hold(const wire_stanza_t *iq, void *data)
{
    hold_call_t *call = data;
    call->request = inflight_hold(call->f->inflight, iq, call->hold_until,
                                  call->arrived ? call->arrived : g_get_monotonic_time());
}

static request_t *hold_since(fixture_t *f, const char *sender, const char *id,
                             int64_t hold_until, int64_t arrived)
{
    assert_int_equal(admit(f, sender, id), INFLIGHT_ADMITTED);
    g_autofree char *xml = g_strdup_printf("<iq type='set' id='%s' from='%s' "
                                           "to='proxy.example.org'><q xmlns='urn:x'/></iq>",
                                           id, sender);
    hold_call_t call = {f, hold_until, arrived, NULL};
    with_stanza(xml, do_hold, &call);
    assert_non_null(call.request);
    return call.request;
}

static request_t *hold(fixture_t *f, const char *sender, const char *id, int64_t hold_until)
{
    return hold_since(f, sender, id, hold_until, 0);
}

static void inflight_hold__waits_in_arrival_order_then_goes_with_its_deadline(void **state)
{
    fixture_t *f = *state;
    int64_t now = g_get_monotonic_time();
    request_t *first = hold(f, ALICE, "h1", now + 60 * G_USEC_PER_SEC);
    request_t *second = hold(f, "bob@example.org/pc", "h1", now + 60 * G_USEC_PER_SEC);
    assert_int_equal(inflight_held_count(f->inflight), 2);
    assert_int_equal(f->sent->len, 0);
    /* request_timeout (10 s) comes before the hold's end. */
    assert_true(inflight_expiry(first) == first->deadline);
    assert_ptr_equal(inflight_oldest_held(f->inflight), first);
    /* A duplicate of a held request is a duplicate. */
    assert_int_equal(admit(f, ALICE, "h1"), INFLIGHT_DUPLICATE);

    char token[CP_TOKEN_MAX + 1];
    assert_int_equal(plugin_encode(f->jat, ALICE, 0, token, sizeof token), CP_OK);
    int64_t deadline = first->deadline;
    assert_true(inflight_place_held(f->inflight, first, token, f->jat, &f->worker1));
    assert_false(first->held);
    assert_int_equal(first->deadline, deadline);
    assert_ptr_equal(inflight_oldest_held(f->inflight), second);
    assert_non_null(strstr(f->sent->pdata[0], "to='service@example.org/worker-1'"));
    assert_non_null(strstr(f->sent->pdata[0], "<q xmlns='urn:x'/>"));
    request_t *found;
    assert_int_equal(inflight_match_reply(f->inflight, token, "h1", "worker-1", &found),
                     INFLIGHT_MATCHED);

    const stanza_error_t error = {"cancel", "service-unavailable", NULL};
    g_ptr_array_set_size(f->sent, 0);
    inflight_end_held(f->inflight, &error);
    assert_int_equal(inflight_held_count(f->inflight), 0);
    assert_non_null(strstr(f->sent->pdata[0], "to='bob@example.org/pc'"));
    assert_int_equal(inflight_count(f->inflight), 1);
}

/* Review: a resource's latency (which strategies and admins read) is how
 * long it took, not how long the request waited before it got there. */
static void inflight_end__counts_a_resources_latency_from_when_it_got_the_request(void **state)
{
    fixture_t *f = *state;
    int64_t now = g_get_monotonic_time();
    request_t *request = hold_since(f, ALICE, "h1", now + 60 * G_USEC_PER_SEC,
                                    now - 8 * G_USEC_PER_SEC); /* held for 8 s */
    char token[CP_TOKEN_MAX + 1];
    assert_int_equal(plugin_encode(f->jat, ALICE, 0, token, sizeof token), CP_OK);
    assert_true(inflight_place_held(f->inflight, request, token, f->jat, &f->worker1));
    end_call_t call = {f, request};
    g_autofree char *reply = g_strdup_printf("<iq type='result' id='h1' "
                                             "from='service@example.org/worker-1' "
                                             "to='proxy.example.org/%s'/>",
                                             token);
    with_stanza(reply, do_end, &call);
    assert_int_equal(inflight_count(f->inflight), 0);
    assert_true(f->worker1.info.latency_ms >= 0.0);
    assert_true(f->worker1.info.latency_ms < 8000.0);
}

static void inflight_expiry__is_the_end_of_the_hold_when_sooner(void **state)
{
    fixture_t *f = *state;
    int64_t soon = g_get_monotonic_time() + G_USEC_PER_SEC;
    request_t *held = hold(f, ALICE, "h1", soon);
    assert_int_equal(inflight_expiry(held), soon);
    assert_ptr_equal(inflight_earliest(f->inflight), held);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(inflight_start__forwards_from_a_token_to_the_resource),
        T(inflight_admit__refuses_a_duplicate_sender_and_id_whatever_the_token),
        T(inflight_admit__applies_the_limits_until_requests_end),
        T(inflight_match_reply__names_why_a_reply_matches_nothing),
        T(inflight_end__forwards_the_reply_and_forgets_everything),
        T(inflight_end__answers_an_error_from_the_domain),
        T(inflight__keeps_the_encoding_that_made_a_token_until_its_request_ends),
        T(inflight_retry__moves_a_request_to_another_resource_with_its_token),
        T(inflight_earliest__is_the_first_deadline),
        T(inflight_start_outbound__gives_ids_of_its_own_and_routes_the_answer_back),
        T(inflight_end_outbound__answers_every_outbound_request_and_only_those),
        T(inflight_admit__keeps_half_the_room_for_users),
        T(inflight_hold__waits_in_arrival_order_then_goes_with_its_deadline),
        T(inflight_end__counts_a_resources_latency_from_when_it_got_the_request),
        T(inflight_expiry__is_the_end_of_the_hold_when_sooner),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
