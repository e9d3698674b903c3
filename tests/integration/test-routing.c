/* What client-proxy does not forward, and how presence steers what it
 * does, against a real Prosody: no resource, IQ from the target, messages,
 * presence (unavailable, dnd/xa draining, error), the [proxy] resources
 * filter, and the target's `subscribe`.
 *
 * The fixture (proxy-fixture.h): workers service@localhost/worker-1 and
 * /worker-2 inside this process, users alice and bob.
 */
#include "proxy-fixture.h"

#include <stdio.h>
#include <string.h>

/* Pumps until client-proxy answers a ping from C with something other than
 * Prosody's own "no component" error (wait/remote-server-timeout, sent at
 * once).  Returns the last reply. */
static xmpp_stanza_t *wait_component_up(hx_t *hx, hx_client_t *c, int timeout_ms)
{
    gint64 end = hx_now_ms() + timeout_ms;
    for (;;) {
        xmpp_stanza_t *r = hx_iq(c, HX_DOMAIN, "get", "<ping xmlns='urn:xmpp:ping'/>", 1000);
        g_autofree char *err = r ? hx_error_of(r) : NULL;
        bool prosody_says_no_component =
            r && err && strcmp(err, "wait/remote-server-timeout") == 0 && hx_now_ms() < end;
        if (r && !prosody_says_no_component)
            return r;
        if (hx_now_ms() >= end)
            return r;
        hx_pump(hx, 50);
    }
}

/* Sends N echo requests from alice; counts who handled them. */
static void count_handlers(px_fixture_t *fx, int n, int *by1, int *by2, int *errors)
{
    *by1 = *by2 = *errors = 0;
    for (int i = 0; i < n; i++) {
        xmpp_stanza_t *r = hx_iq(fx->alice, HX_DOMAIN, "get",
                                 "<echo xmlns='urn:example:echo'>c</echo>", PX_REPLY_MS);
        assert_non_null(r);
        const char *by = hx_child_attr(r, "handled-by", HX_ECHO_NS, "resource");
        if (!by)
            (*errors)++;
        else if (strcmp(by, "worker-1") == 0)
            (*by1)++;
        else
            (*by2)++;
    }
}

static void routing__answers_service_unavailable_without_a_resource(void **state)
{
    px_fixture_t *fx = *state;
    xmpp_stanza_t *r = wait_component_up(fx->hx, fx->alice, 8000);
    px_assert_error(r, "cancel/service-unavailable");
    assert_string_equal(xmpp_stanza_get_from(r), HX_DOMAIN);

    g_autofree char *id =
        hx_iq_send(fx->bob, HX_DOMAIN "/x", "set", "<echo xmlns='urn:example:echo'>b</echo>");
    r = hx_wait_reply(fx->bob, id, PX_REPLY_MS);
    px_assert_error(r, "cancel/service-unavailable");
    assert_string_equal(xmpp_stanza_get_id(r), id);
    hx_pump(fx->hx, 200);
    assert_int_equal(hx_count_id(fx->bob, id), 1);
}

static bool subscription_approved(hx_client_t *w, unsigned mark)
{
    for (unsigned i = mark; i < hx_received_count(w); i++) {
        xmpp_stanza_t *st = hx_received(w, i);
        const char *name = xmpp_stanza_get_name(st);
        const char *type = xmpp_stanza_get_type(st);
        const char *from = xmpp_stanza_get_from(st);
        if (strcmp(name, "presence") == 0 && type && strcmp(type, "subscribed") == 0 && from &&
            strcmp(from, HX_DOMAIN) == 0)
            return true;
        /* Or the roster push that follows it. */
        const char *sub = hx_child_attr(st, "item", "jabber:iq:roster", "subscription");
        const char *jid = hx_child_attr(st, "item", "jabber:iq:roster", "jid");
        if (strcmp(name, "iq") == 0 && sub && jid && strcmp(jid, HX_DOMAIN) == 0 &&
            (strcmp(sub, "to") == 0 || strcmp(sub, "both") == 0))
            return true;
    }
    return false;
}

static void routing__approves_the_targets_subscription(void **state)
{
    px_fixture_t *fx = *state;
    unsigned mark = hx_received_count(fx->w1);
    hx_send_presence(fx->w1, "subscribe", NULL, HX_DOMAIN);
    gint64 end = hx_now_ms() + PX_REPLY_MS;
    while (!subscription_approved(fx->w1, mark) && hx_now_ms() < end)
        hx_pump(fx->hx, 20);
    if (!subscription_approved(fx->w1, mark)) {
        px_dump_log(fx);
        fail_msg("the subscription of %s was not approved", HX_TARGET);
    }
}

/* The service's requests go to users' addresses; to the bare domain they
 * are not handled, and reach no resource. */
static void routing__refuses_the_targets_iq_to_the_bare_domain(void **state)
{
    px_fixture_t *fx = *state;
    unsigned s2 = hx_requests_seen(fx->w2), s1 = hx_requests_seen(fx->w1);
    xmpp_stanza_t *r =
        hx_iq(fx->w1, HX_DOMAIN, "get", "<ping xmlns='urn:xmpp:ping'/>", PX_REPLY_MS);
    px_assert_error(r, "cancel/feature-not-implemented");
    hx_pump(fx->hx, 200);
    assert_int_equal(hx_requests_seen(fx->w1), s1);
    assert_int_equal(hx_requests_seen(fx->w2), s2);
}

/* A user's message to the domain, bare or not, reaches one resource, from
 * the user's address (issue 11; it used to be answered with an error). */
static void routing__forwards_a_users_message_to_one_resource(void **state)
{
    px_fixture_t *fx = *state;
    const char *const to[] = {HX_DOMAIN, HX_DOMAIN "/res"};
    for (int i = 0; i < 2; i++) {
        unsigned m1 = hx_received_count(fx->w1), m2 = hx_received_count(fx->w2);
        g_autofree char *xml = g_strdup_printf("<message to='%s' id='m%d' type='chat'>"
                                               "<body>hi</body></message>",
                                               to[i], i);
        hx_send_xml(fx->alice, xml);
        xmpp_stanza_t *got = NULL;
        for (int tries = 0; tries < 60 && !got; tries++) {
            got = hx_wait_stanza(fx->w1, m1, "message", "chat", HX_DOMAIN "/", 50);
            if (!got)
                got = hx_wait_stanza(fx->w2, m2, "message", "chat", HX_DOMAIN "/", 50);
        }
        assert_non_null(got);
        g_autofree char *id = g_strdup_printf("m%d", i);
        assert_string_equal(xmpp_stanza_get_id(got), id);
        assert_string_equal(xmpp_stanza_get_from(got), HX_DOMAIN "/alice@localhost/desk");
    }
}

static void routing__stops_and_resumes_with_a_resources_presence(void **state)
{
    px_fixture_t *fx = *state;
    int by1, by2, errors;
    hx_send_presence(fx->w1, "unavailable", NULL, NULL);
    hx_pump(fx->hx, 200);
    count_handlers(fx, 12, &by1, &by2, &errors);
    assert_int_equal(by1, 0);
    assert_int_equal(errors, 0);
    assert_int_equal(by2, 12);

    hx_send_presence(fx->w1, NULL, NULL, NULL);
    hx_client_t *only1[] = {fx->w1, NULL};
    assert_true(px_wait_ready(fx, fx->alice, only1, 5000));
}

/* README: a resource whose show is dnd or xa is draining: it gets no new
 * requests, but what it holds is still routed back when it answers. */
static void routing__drains_a_resource_that_is_dnd_or_xa(void **state)
{
    px_fixture_t *fx = *state;
    px_hold_all(fx);
    /* Get a request held by worker-1. */
    g_autofree char *held_id = NULL;
    xmpp_stanza_t *held = NULL;
    for (int i = 0; i < 30 && !held; i++) {
        g_autofree char *id =
            hx_iq_send(fx->alice, HX_DOMAIN, "get", "<echo xmlns='urn:example:echo'>h</echo>");
        hx_client_t *holder = NULL;
        xmpp_stanza_t *req = hx_take_request(fx->workers, &holder, PX_REPLY_MS);
        assert_non_null(req);
        if (holder == fx->w1) {
            held = req;
            held_id = g_strdup(id);
        } else {
            hx_answer(holder, req, NULL);
            assert_non_null(hx_wait_reply(fx->alice, id, PX_REPLY_MS));
        }
    }
    assert_non_null(held);
    hx_client_set_mode(fx->w1, HX_ANSWER);
    hx_client_set_mode(fx->w2, HX_ANSWER);

    hx_send_presence(fx->w1, NULL, "dnd", NULL);
    hx_pump(fx->hx, 200);
    int by1, by2, errors;
    count_handlers(fx, 10, &by1, &by2, &errors);
    assert_int_equal(by1, 0);
    assert_int_equal(by2, 10);

    /* Still answering what it has. */
    hx_answer(fx->w1, held, NULL);
    xmpp_stanza_t *r = hx_wait_reply(fx->alice, held_id, PX_REPLY_MS);
    g_autofree char *text = hx_text(r);
    if (!r || strcmp(xmpp_stanza_get_type(r), "result") != 0)
        fail_msg("the draining resource's reply was not routed: %s", text);

    /* "away" is not draining; plain available takes requests again. */
    hx_send_presence(fx->w1, NULL, "away", NULL);
    hx_client_t *only1[] = {fx->w1, NULL};
    assert_true(px_wait_ready(fx, fx->alice, only1, 5000));
    hx_send_presence(fx->w1, NULL, "xa", NULL);
    hx_pump(fx->hx, 200);
    count_handlers(fx, 6, &by1, &by2, &errors);
    assert_int_equal(by1, 0);
    hx_send_presence(fx->w1, NULL, NULL, NULL);
    assert_true(px_wait_ready(fx, fx->alice, only1, 5000));
}

/* [proxy] resources keeps another program logged in as the target account
 * out of rotation: it gets no request, whatever the strategy draws. */
static void routing__keeps_unmatched_resources_out_of_rotation(void **state)
{
    px_fixture_t *fx = *state;
    hx_client_t *gajim = fx->other = hx_client_connect(fx->hx, "service", "gajim", true);
    assert_non_null(gajim);
    hx_proxy_opts_t o = {.encoding = fx->suite->encoding,
                         .dispatch = fx->suite->dispatch,
                         .request_timeout = PX_TIMEOUT_S,
                         .extra = "resources = worker-*\n"};
    /* In place of the fixture's client-proxy, which has no filter. */
    hx_proxy_free(fx->proxy);
    fx->proxy = hx_proxy_start(fx->hx, &o);
    assert_non_null(fx->proxy);
    g_autofree char *line =
        hx_proxy_wait_log(fx->proxy, 0, "service@localhost/gajim does not match", HX_LOG_WAIT_MS);
    assert_non_null(line);
    assert_true(px_wait_ready(fx, fx->alice, fx->workers, 8000));

    unsigned w1 = hx_requests_seen(fx->w1), w2 = hx_requests_seen(fx->w2);
    for (int i = 0; i < 20; i++) {
        g_autofree char *payload = px_echo_payload("filtered");
        xmpp_stanza_t *r = hx_iq(fx->alice, HX_DOMAIN, "get", payload, PX_REPLY_MS);
        assert_non_null(r);
        assert_string_equal(xmpp_stanza_get_type(r), "result");
    }
    assert_int_equal(hx_requests_seen(gajim), 0);
    assert_true(hx_requests_seen(fx->w1) > w1);
    assert_true(hx_requests_seen(fx->w2) > w2);
    hx_client_free(gajim);
    fx->other = NULL;
}

static void routing__forgets_a_resource_after_a_presence_error(void **state)
{
    px_fixture_t *fx = *state;
    hx_send_xml(fx->w1, "<presence type='error' to='proxy.localhost'>"
                        "<error type='cancel'><remote-server-not-found "
                        "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>"
                        "</presence>");
    hx_pump(fx->hx, 200);
    int by1, by2, errors;
    count_handlers(fx, 10, &by1, &by2, &errors);
    print_message("after presence error: worker-1 %d, worker-2 %d, errors %d\n", by1, by2,
                  errors);
    assert_int_equal(by1, 0);
}

static void routing__answers_service_unavailable_when_the_last_resource_leaves(void **state)
{
    px_fixture_t *fx = *state;
    hx_client_disconnect(fx->w1);
    hx_client_disconnect(fx->w2);
    hx_pump(fx->hx, 300);
    xmpp_stanza_t *r = hx_iq(fx->alice, HX_DOMAIN, "get",
                             "<echo xmlns='urn:example:echo'>x</echo>", PX_REPLY_MS);
    px_assert_error(r, "cancel/service-unavailable");
    /* And back: both resources are learned again. */
    assert_true(hx_client_reconnect(fx->w1));
    assert_true(hx_client_reconnect(fx->w2));
    assert_true(px_wait_ready(fx, fx->alice, fx->workers, 5000));
}

int main(void)
{
    px_suite_t suite = {.encoding = "raw", .dispatch = "random"};
    const struct CMUnitTest tests[] = {
        PX_TEST_USERS(routing__answers_service_unavailable_without_a_resource, &suite),
        PX_TEST(routing__approves_the_targets_subscription, &suite),
        PX_TEST(routing__refuses_the_targets_iq_to_the_bare_domain, &suite),
        PX_TEST(routing__forwards_a_users_message_to_one_resource, &suite),
        PX_TEST(routing__stops_and_resumes_with_a_resources_presence, &suite),
        PX_TEST(routing__drains_a_resource_that_is_dnd_or_xa, &suite),
        PX_TEST(routing__keeps_unmatched_resources_out_of_rotation, &suite),
        PX_TEST(routing__forgets_a_resource_after_a_presence_error, &suite),
        PX_TEST(routing__answers_service_unavailable_when_the_last_resource_leaves, &suite),
    };
    if (!px_suite_start(&suite)) {
        px_suite_stop(&suite);
        return 1;
    }
    int rc = cmocka_run_group_tests_name("routing", tests, NULL, NULL);
    px_suite_stop(&suite);
    return rc;
}
