/* Forwarding through client-proxy with one encoding, against a real
 * Prosody: both legs of a request and its reply, the token, dispatch to
 * both resources, a resource leaving mid-request, timeouts and late
 * replies, forged tokens and wrong senders.
 *
 *   test-forward ENCODING    (raw, base32, hmac, opaque, sealed)
 *
 * The fixture (proxy-fixture.h): workers service@localhost/worker-1 and
 * /worker-2 inside this process, users alice and bob.
 */
#include "proxy-fixture.h"

#include <stdio.h>
#include <string.h>

static void forward__answers_each_request_once(void **state)
{
    px_check_forwarding(*state);
}

static void forward__uses_both_resources(void **state)
{
    px_fixture_t *fx = *state;
    unsigned s1 = hx_requests_seen(fx->w1), s2 = hx_requests_seen(fx->w2);
    for (int i = 0; i < 24; i++) {
        g_autofree char *text = g_strdup_printf("n%d", i);
        g_free(px_forward_once(fx, fx->alice, "get", HX_DOMAIN, text));
    }
    assert_true(hx_requests_seen(fx->w1) > s1);
    assert_true(hx_requests_seen(fx->w2) > s2);
}

static void forward__fails_a_set_at_once_when_its_resource_disconnects(void **state)
{
    px_check_set_fails_when_its_resource_leaves(*state, true);
}

static void forward__fails_a_set_at_once_when_its_resource_goes_unavailable(void **state)
{
    px_check_set_fails_when_its_resource_leaves(*state, false);
}

/* The resource holding a get goes offline: the get is retried once on the
 * other resource, which answers it, well before request_timeout. */
static void check_get_retried_when_its_resource_leaves(px_fixture_t *fx, bool disconnect)
{
    px_hold_all(fx);
    g_autofree char *payload = px_echo_payload("retried");
    g_autofree char *id = hx_iq_send(fx->alice, HX_DOMAIN, "get", payload);
    hx_client_t *holder = NULL;
    xmpp_stanza_t *req = hx_take_request(fx->workers, &holder, PX_REPLY_MS);
    assert_non_null(req);
    hx_client_t *other = holder == fx->w1 ? fx->w2 : fx->w1;
    unsigned seen = hx_requests_seen(other);
    hx_client_set_mode(other, HX_ANSWER);
    if (disconnect)
        hx_client_disconnect(holder);
    else
        hx_send_presence(holder, "unavailable", NULL, NULL);
    /* A result, not the remote-server-timeout request_timeout would give:
     * the resource's leaving sent the get on. */
    xmpp_stanza_t *r = hx_wait_reply(fx->alice, id, PX_LONG_TIMEOUT_S * 1000);
    assert_non_null(r);
    assert_string_equal(xmpp_stanza_get_type(r), "result");
    assert_string_equal(hx_child_attr(r, "handled-by", HX_ECHO_NS, "resource"),
                        hx_client_resource(other));
    assert_int_equal(hx_requests_seen(other), seen + 1);
    hx_pump(fx->hx, 300);
    assert_int_equal(hx_count_id(fx->alice, id), 1);
}

static void forward__retries_a_get_when_its_resource_disconnects(void **state)
{
    check_get_retried_when_its_resource_leaves(*state, true);
}

static void forward__retries_a_get_when_its_resource_goes_unavailable(void **state)
{
    check_get_retried_when_its_resource_leaves(*state, false);
}

static void forward__times_out_then_drops_the_late_reply(void **state)
{
    px_fixture_t *fx = *state;
    px_hold_all(fx);
    g_autofree char *payload = px_echo_payload("slow");
    gint64 t0 = hx_now_ms();
    g_autofree char *id = hx_iq_send(fx->alice, HX_DOMAIN, "get", payload);
    hx_client_t *holder = NULL;
    xmpp_stanza_t *req = hx_take_request(fx->workers, &holder, PX_REPLY_MS);
    assert_non_null(req);
    xmpp_stanza_t *r = hx_wait_reply(fx->alice, id, PX_TIMEOUT_S * 1000 + 15000);
    gint64 took = hx_now_ms() - t0;
    px_assert_error(r, "wait/remote-server-timeout");
    assert_string_equal(xmpp_stanza_get_from(r), HX_DOMAIN);
    /* Never before request_timeout (a loaded machine can only make it later,
     * so there is no upper bound here but the wait's). */
    if (took < PX_TIMEOUT_S * 1000 - 300)
        fail_msg("timeout error after %lld ms, request_timeout is %d s", (long long)took,
                 PX_TIMEOUT_S);

    /* The late answer: dropped, never a second reply. */
    size_t mark = hx_proxy_log_mark(fx->proxy);
    hx_answer(holder, req, NULL);
    g_autofree char *line = hx_proxy_wait_log(fx->proxy, mark, "drop", HX_LOG_WAIT_MS);
    if (!line) {
        px_dump_log(fx);
        fail_msg("the late reply was not logged as dropped");
    }
    hx_pump(fx->hx, 200);
    assert_int_equal(hx_count_id(fx->alice, id), 1);
}

/* The same token with its last character changed. */
static char *tampered(const char *from)
{
    char *t = g_strdup(from);
    size_t len = strlen(t);
    char *last = &t[len - 1];
    *last = *last == 'A' ? 'B' : 'A';
    return t;
}

static void forward__drops_a_forged_token(void **state)
{
    px_fixture_t *fx = *state;
    px_hold_all(fx);
    /* bob's request gives a valid token of someone else. */
    g_autofree char *bob_id =
        hx_iq_send(fx->bob, HX_DOMAIN, "get", "<echo xmlns='urn:example:echo'>b</echo>");
    hx_client_t *bob_holder = NULL;
    xmpp_stanza_t *bob_req = hx_take_request(fx->workers, &bob_holder, PX_REPLY_MS);
    assert_non_null(bob_req);

    g_autofree char *id =
        hx_iq_send(fx->alice, HX_DOMAIN, "get", "<echo xmlns='urn:example:echo'>a</echo>");
    hx_client_t *holder = NULL;
    xmpp_stanza_t *req = hx_take_request(fx->workers, &holder, PX_REPLY_MS);
    assert_non_null(req);
    const char *from = xmpp_stanza_get_from(req);

    g_autofree char *changed = tampered(from);
    g_autofree char *l1 = px_expect_dropped(fx, holder, req, changed);
    g_autofree char *l2 = px_expect_dropped(fx, holder, req, HX_DOMAIN "/%%%not-a-token");
    /* alice's id with bob's token: neither of them may get it. */
    g_autofree char *l4 = px_expect_dropped(fx, holder, req, xmpp_stanza_get_from(bob_req));
    print_message("logged: %s\n        %s\n        %s\n", l1, l2, l4);

    xmpp_stanza_t *r = hx_wait_reply(fx->alice, id, PX_TIMEOUT_S * 1000 + 3000);
    px_assert_error(r, "wait/remote-server-timeout");
    xmpp_stanza_t *rb = hx_wait_reply(fx->bob, bob_id, PX_TIMEOUT_S * 1000 + 3000);
    px_assert_error(rb, "wait/remote-server-timeout");
    hx_pump(fx->hx, 200);
    assert_int_equal(hx_count_id(fx->alice, id), 1);
    assert_int_equal(hx_count_id(fx->bob, id), 0);
    assert_int_equal(hx_count_id(fx->bob, bob_id), 1);
}

static void forward__drops_a_reply_from_the_wrong_sender(void **state)
{
    px_check_wrong_sender_dropped(*state);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s ENCODING\n", argv[0]);
        return 2;
    }
    px_suite_t suite = {.encoding = argv[1], .dispatch = "random"};
    const struct CMUnitTest tests[] = {
        PX_TEST(forward__answers_each_request_once, &suite),
        PX_TEST(forward__uses_both_resources, &suite),
        PX_TEST_LONG(forward__fails_a_set_at_once_when_its_resource_disconnects, &suite),
        PX_TEST_LONG(forward__fails_a_set_at_once_when_its_resource_goes_unavailable, &suite),
        PX_TEST_LONG(forward__retries_a_get_when_its_resource_disconnects, &suite),
        PX_TEST_LONG(forward__retries_a_get_when_its_resource_goes_unavailable, &suite),
        PX_TEST(forward__times_out_then_drops_the_late_reply, &suite),
        PX_TEST(forward__drops_a_forged_token, &suite),
        PX_TEST(forward__drops_a_reply_from_the_wrong_sender, &suite),
    };
    if (!px_suite_start(&suite)) {
        px_suite_stop(&suite);
        return 1;
    }
    g_autofree char *name = g_strdup_printf("forward-%s", suite.encoding);
    int rc = cmocka_run_group_tests_name(name, tests, NULL, NULL);
    px_suite_stop(&suite);
    return rc;
}
