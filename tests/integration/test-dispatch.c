/* Forwarding through client-proxy with one dispatch plugin, against a real
 * Prosody, and the choice that plugin's README entry promises.
 *
 *   test-dispatch NAME    (random, round-robin, least-pending, sticky,
 *                          priority: each dispatch-* plugin in the tree)
 *
 * The fixture (proxy-fixture.h): workers service@localhost/worker-1 and
 * /worker-2 inside this process, users alice and bob.
 */
#include "proxy-fixture.h"

#include <stdio.h>
#include <string.h>

/* Which worker (1 or 2) handled a request from USER, answered by the echo
 * worker. */
static int handled_by(hx_client_t *user)
{
    xmpp_stanza_t *r =
        hx_iq(user, HX_DOMAIN, "get", "<echo xmlns='urn:example:echo'>d</echo>", PX_REPLY_MS);
    g_autofree char *text = hx_text(r);
    const char *by = r ? hx_child_attr(r, "handled-by", HX_ECHO_NS, "resource") : NULL;
    if (!by)
        fail_msg("no handled-by in %s", text);
    return strcmp(by, "worker-1") == 0 ? 1 : 2;
}

/* ---- what each plugin's README entry promises ----------------------------- */

/* Every 2 requests give each of the 2 resources exactly one. */
static void round_robin_alternates(px_fixture_t *fx)
{
    for (int round = 0; round < 5; round++) {
        int a = handled_by(fx->alice), b = handled_by(fx->alice);
        assert_int_not_equal(a, b);
    }
}

/* One bare JID, one resource, whichever full JID it uses; when that
 * resource leaves, the user moves, and the error is not sticky. */
static void sticky_keeps_a_user_on_one_resource(px_fixture_t *fx)
{
    int first = handled_by(fx->alice);
    for (int i = 0; i < 10; i++)
        assert_int_equal(handled_by(fx->alice), first);
    hx_client_t *alice2 = fx->other = hx_client_connect(fx->hx, "alice", "laptop", false);
    assert_non_null(alice2);
    for (int i = 0; i < 5; i++)
        assert_int_equal(handled_by(alice2), first);
    hx_client_free(alice2);
    fx->other = NULL;
    hx_client_disconnect(first == 1 ? fx->w1 : fx->w2);
    hx_pump(fx->hx, 200);
    assert_int_equal(handled_by(fx->alice), first == 1 ? 2 : 1);
}

/* A resource holding a request gets none while the other is idle. */
static void least_pending_spares_a_busy_resource(px_fixture_t *fx)
{
    px_hold_all(fx);
    g_autofree char *id =
        hx_iq_send(fx->alice, HX_DOMAIN, "get", "<echo xmlns='urn:example:echo'>x</echo>");
    hx_client_t *holder = NULL;
    xmpp_stanza_t *req = hx_take_request(fx->workers, &holder, PX_REPLY_MS);
    assert_non_null(req);
    hx_client_t *idle = holder == fx->w1 ? fx->w2 : fx->w1;
    hx_client_set_mode(idle, HX_ANSWER);
    for (int i = 0; i < 6; i++)
        assert_int_equal(handled_by(fx->bob), idle == fx->w1 ? 1 : 2);
    hx_answer(holder, req, NULL);
    assert_non_null(hx_wait_reply(fx->alice, id, PX_REPLY_MS));
}

/* The highest priority wins; a negative one never gets requests. */
static void priority_prefers_the_highest(px_fixture_t *fx)
{
    hx_send_xml(fx->w1, "<presence><priority>5</priority></presence>");
    hx_send_xml(fx->w2, "<presence><priority>1</priority></presence>");
    hx_pump(fx->hx, 200);
    for (int i = 0; i < 8; i++)
        assert_int_equal(handled_by(fx->alice), 1);
    hx_send_xml(fx->w1, "<presence><priority>-1</priority></presence>");
    hx_pump(fx->hx, 200);
    for (int i = 0; i < 8; i++)
        assert_int_equal(handled_by(fx->alice), 2);
    hx_send_xml(fx->w2, "<presence><priority>-3</priority></presence>");
    hx_pump(fx->hx, 200);
    xmpp_stanza_t *r = hx_iq(fx->alice, HX_DOMAIN, "get",
                             "<echo xmlns='urn:example:echo'>n</echo>", PX_REPLY_MS);
    px_assert_error(r, "cancel/service-unavailable");
}

/* random, or a plugin this test does not know: both get requests. */
static void any_plugin_uses_both_resources(px_fixture_t *fx)
{
    int seen[3] = {0};
    for (int i = 0; i < 24; i++)
        seen[handled_by(fx->alice)]++;
    assert_true(seen[1] > 0 && seen[2] > 0);
}

static const struct {
    const char *dispatch;
    void (*check)(px_fixture_t *fx);
} promises[] = {
    {"round-robin", round_robin_alternates},
    {"sticky", sticky_keeps_a_user_on_one_resource},
    {"least-pending", least_pending_spares_a_busy_resource},
    {"priority", priority_prefers_the_highest},
};

/* ---- tests ---------------------------------------------------------------- */

static void dispatch__answers_each_request_once(void **state)
{
    px_check_forwarding(*state);
}

static void dispatch__chooses_as_its_readme_promises(void **state)
{
    px_fixture_t *fx = *state;
    for (size_t i = 0; i < G_N_ELEMENTS(promises); i++) {
        if (strcmp(fx->suite->dispatch, promises[i].dispatch) == 0) {
            promises[i].check(fx);
            return;
        }
    }
    any_plugin_uses_both_resources(fx);
}

static void dispatch__fails_a_set_at_once_when_its_resource_disconnects(void **state)
{
    px_check_set_fails_when_its_resource_leaves(*state, true);
}

static void dispatch__drops_a_reply_from_the_wrong_sender(void **state)
{
    px_check_wrong_sender_dropped(*state);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DISPATCH-NAME\n", argv[0]);
        return 2;
    }
    px_suite_t suite = {.encoding = "raw", .dispatch = argv[1]};
    const struct CMUnitTest tests[] = {
        PX_TEST(dispatch__answers_each_request_once, &suite),
        PX_TEST(dispatch__chooses_as_its_readme_promises, &suite),
        PX_TEST_LONG(dispatch__fails_a_set_at_once_when_its_resource_disconnects, &suite),
        PX_TEST(dispatch__drops_a_reply_from_the_wrong_sender, &suite),
    };
    if (!px_suite_start(&suite)) {
        px_suite_stop(&suite);
        return 1;
    }
    g_autofree char *name = g_strdup_printf("dispatch-%s", suite.dispatch);
    int rc = cmocka_run_group_tests_name(name, tests, NULL, NULL);
    px_suite_stop(&suite);
    return rc;
}
