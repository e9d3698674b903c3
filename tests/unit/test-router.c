/* The router, with the network replaced at the send seam and both plugin
 * kinds replaced by the recording fakes of tests/fakes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <strophe.h>

#include "config.h"
#include "fake-plugins.h"
#include "log.h"
#include "metrics.h"
#include "plugin-loader.h"
#include "router.h"
#include "stream.h"
#include "unit-helpers.h"

#define DOMAIN "proxy.example.org"
#define TARGET "service@example.org"
#define ALICE "alice@example.org/phone"
#define STANZAS_NS "urn:ietf:params:xml:ns:xmpp-stanzas"

/* The fakes report a broken promise of the host as a failed test. */
static void fail_violation(const char *message)
{
    fail_msg("%s", message);
}

/* ---- Fixture ------------------------------------------------------------- */

typedef struct fixture {
    xmpp_ctx_t *ctx;
    config_t *config;
    plugin_t *dispatch, *jat;
    router_t *router;
    GPtrArray *sent;          /* stanzas passed to the send seam, parsed */
    GPtrArray *sent_text;     /* and as they were sent */
    int64_t last_deadline;    /* from the deadline callback */
    metrics_t *metrics;
} fixture_t;

/* Keeps what was sent as a tree, for the assertions to read. */
static void record_send(const char *bytes, size_t length, void *userdata)
{
    fixture_t *f = userdata;
    char *text = g_strndup(bytes, length);
    xmpp_stanza_t *stanza = xmpp_stanza_new_from_string(f->ctx, text);
    assert_non_null(stanza);
    g_ptr_array_add(f->sent, stanza);
    g_ptr_array_add(f->sent_text, text);
}

static void record_deadline(int64_t deadline, void *userdata)
{
    fixture_t *f = userdata;
    f->last_deadline = deadline;
}

static void release(gpointer stanza)
{
    xmpp_stanza_release(stanza);
}

/* Extra [proxy] lines for the next setup(). */
static const char *extra_proxy_config = "";
/* Extra [component] lines for the next setup(). */
static const char *extra_component_config = "";

static int setup(void **state)
{
    fixture_t *f = g_new0(fixture_t, 1);
    fake_world_reset(fail_violation);

    /* Debug level, so that the log lines' reads of stanzas run too. */
    log_set_level(CP_LOG_DEBUG);
    xmpp_initialize();
    f->ctx = xmpp_ctx_new(NULL, NULL);
    g_autofree char *text = g_strdup_printf(
        "[component]\ndomain = " DOMAIN "\nsecret = s\n%s[proxy]\ntarget = " TARGET "\n"
        "request_timeout = 30\n%s", extra_component_config, extra_proxy_config);
    g_autofree char *path = write_temp_file(text);
    f->config = config_load(path, NULL);
    g_unlink(path);
    assert_non_null(f->config);
    f->dispatch = plugin_new_builtin(f->config, &fake_dispatch_descriptor, NULL);
    f->jat = plugin_new_builtin(f->config, &fake_jat_descriptor, NULL);
    assert_non_null(f->dispatch);
    assert_non_null(f->jat);
    f->sent = g_ptr_array_new_with_free_func(release);
    f->sent_text = g_ptr_array_new_with_free_func(g_free);
    f->metrics = metrics_new();
    const router_callbacks_t callbacks = {record_send, record_deadline, f, f->metrics};
    f->router = router_new(f->config, f->dispatch, f->jat, &callbacks);
    router_connected(f->router);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    router_free(f->router);
    metrics_free(f->metrics);
    plugin_unref(f->jat);
    plugin_unref(f->dispatch);
    config_free(f->config);
    g_ptr_array_free(f->sent, TRUE);
    g_ptr_array_free(f->sent_text, TRUE);
    xmpp_ctx_free(f->ctx);
    xmpp_shutdown();
    fake_world_clear();
    g_free(f);
    return 0;
}

static void handle_parsed(const wire_stanza_t *stanza, void *userdata)
{
    fixture_t *f = userdata;
    router_handle(f->router, stanza);
}

/* Feeds the router one stanza written as XML (printf-style), parsed as the
 * stream parser would. */
static void receive(fixture_t *f, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void receive(fixture_t *f, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    g_autofree char *xml = g_strdup_vprintf(fmt, args);
    va_end(args);
    assert_int_equal(stream_parse_stanzas(xml, strlen(xml), handle_parsed, f), 1);
}

static void online(fixture_t *f, const char *resource)
{
    receive(f, "<presence from='" TARGET "/%s' to='" DOMAIN "'/>", resource);
}

static void clear_sent(fixture_t *f)
{
    g_ptr_array_set_size(f->sent, 0);
    g_ptr_array_set_size(f->sent_text, 0);
}

static xmpp_stanza_t *only_sent(fixture_t *f)
{
    assert_int_equal(f->sent->len, 1);
    return f->sent->pdata[0];
}

static void assert_attr(xmpp_stanza_t *stanza, const char *name, const char *expected)
{
    const char *value = xmpp_stanza_get_attribute(stanza, name);
    if (!expected) {
        if (value)
            fail_msg("attribute %s is \"%s\", expected none", name, value);
        return;
    }
    if (!value || strcmp(value, expected) != 0)
        fail_msg("attribute %s is \"%s\", expected \"%s\"", name, value ? value : "(none)",
                 expected);
}

/* STANZA is an error NAME from FROM to TO answering ID, with TYPE and
 * CONDITION. */
static void assert_error_from(xmpp_stanza_t *stanza, const char *from, const char *name,
                              const char *to, const char *id, const char *type,
                              const char *condition)
{
    assert_string_equal(xmpp_stanza_get_name(stanza), name);
    assert_attr(stanza, "type", "error");
    assert_attr(stanza, "from", from);
    assert_attr(stanza, "to", to);
    assert_attr(stanza, "id", id);
    xmpp_stanza_t *error = xmpp_stanza_get_child_by_name(stanza, "error");
    assert_non_null(error);
    assert_attr(error, "type", type);
    xmpp_stanza_t *cond = xmpp_stanza_get_child_by_name_and_ns(error, condition, STANZAS_NS);
    if (!cond)
        fail_msg("error has no <%s/>", condition);
}

/* As assert_error_from(), from the bare domain as most answers come. */
static void assert_error(xmpp_stanza_t *stanza, const char *name, const char *to, const char *id,
                         const char *type, const char *condition)
{
    assert_error_from(stanza, DOMAIN, name, to, id, type, condition);
}

/* Sends a ping from ALICE with ID and returns the forwarded stanza. */
static xmpp_stanza_t *request(fixture_t *f, const char *id)
{
    clear_sent(f);
    receive(f,
            "<iq type='get' id='%s' from='" ALICE "' to='" DOMAIN "' xml:lang='en' "
            "xmlns='jabber:component:accept'>"
            "<ping xmlns='urn:xmpp:ping'/></iq>",
            id);
    return only_sent(f);
}

/* ---- Tests --------------------------------------------------------------- */

static void router_connected__probes_then_subscribes_then_announces(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(f->sent->len, 3);
    assert_attr(f->sent->pdata[0], "type", "probe");
    assert_attr(f->sent->pdata[1], "type", "subscribe");
    assert_attr(f->sent->pdata[2], "type", NULL);
    for (int i = 0; i < 3; i++) {
        assert_attr(f->sent->pdata[i], "to", TARGET);
        assert_attr(f->sent->pdata[i], "from", DOMAIN);
    }
}

static void router__forwards_a_request_to_a_resource_from_the_token(void **state)
{
    fixture_t *f = *state;
    int64_t before = g_get_monotonic_time();
    online(f, "worker-1");
    xmpp_stanza_t *forwarded = request(f, "q1");
    assert_string_equal(xmpp_stanza_get_name(forwarded), "iq");
    assert_attr(forwarded, "type", "get");
    assert_attr(forwarded, "id", "q1");
    assert_attr(forwarded, "to", TARGET "/worker-1");
    assert_attr(forwarded, "from", DOMAIN "/t1");
    /* The sender's language goes along; the stream's namespace does not. */
    const char *text = g_ptr_array_index(f->sent_text, f->sent_text->len - 1);
    assert_non_null(strstr(text, " xml:lang='en'"));
    assert_null(strstr(text, "jabber:component:accept"));
    assert_non_null(xmpp_stanza_get_child_by_name_and_ns(forwarded, "ping", "urn:xmpp:ping"));
    assert_int_equal(router_pending_count(f->router), 1);
    assert_true(f->last_deadline >= before + 30 * G_USEC_PER_SEC); /* request_timeout */
}

static void router__forwards_requests_to_any_resource_of_the_domain(void **state)
{
    fixture_t *f = *state;
    online(f, "worker-1");
    clear_sent(f);
    receive(f, "<iq type='set' id='s1' from='" ALICE "' to='" DOMAIN "/anything'>"
               "<q xmlns='urn:example'/></iq>");
    assert_attr(only_sent(f), "to", TARGET "/worker-1");
}

static void router__routes_the_reply_to_the_sender_from_the_bare_domain(void **state)
{
    fixture_t *f = *state;
    online(f, "worker-1");
    request(f, "q1");
    clear_sent(f);
    receive(f, "<iq type='result' id='q1' from='" TARGET "/worker-1' to='" DOMAIN "/t1' "
               "xml:lang='de' xmlns='jabber:component:accept'>"
               "<answer xmlns='urn:example'>42</answer></iq>");
    xmpp_stanza_t *reply = only_sent(f);
    assert_attr(reply, "type", "result");
    assert_attr(reply, "id", "q1");
    assert_attr(reply, "to", ALICE);
    assert_attr(reply, "from", DOMAIN);
    const char *text = g_ptr_array_index(f->sent_text, 0);
    assert_non_null(strstr(text, " xml:lang='de'"));
    assert_null(strstr(text, "jabber:component:accept"));
    assert_non_null(strstr(text, "<answer xmlns='urn:example'>42</answer></iq>"));
    assert_non_null(xmpp_stanza_get_child_by_name_and_ns(reply, "answer", "urn:example"));
    assert_int_equal(router_pending_count(f->router), 0);
    assert_int_equal(fake_world.forgotten, 1);
}

static void router__routes_an_error_reply_too(void **state)
{
    fixture_t *f = *state;
    online(f, "worker-1");
    request(f, "q1");
    clear_sent(f);
    receive(f, "<iq type='error' id='q1' from='" TARGET "/worker-1' to='" DOMAIN "/t1'>"
               "<error type='cancel'><item-not-found xmlns='" STANZAS_NS "'/></error></iq>");
    assert_error(only_sent(f), "iq", ALICE, "q1", "cancel", "item-not-found");
    assert_int_equal(router_pending_count(f->router), 0);
}

static void router__answers_service_unavailable_when_no_resource_is_online(void **state)
{
    fixture_t *f = *state;
    xmpp_stanza_t *reply = request(f, "q1");
    assert_error(reply, "iq", ALICE, "q1", "cancel", "service-unavailable");
    assert_int_equal(router_pending_count(f->router), 0);
}

static void router__answers_service_unavailable_when_the_strategy_declines(void **state)
{
    fixture_t *f = *state;
    online(f, "worker-1");
    fake_world.decline = true;
    assert_error(request(f, "q1"), "iq", ALICE, "q1", "cancel", "service-unavailable");
}

static void router__answers_an_error_when_the_sender_cannot_be_encoded(void **state)
{
    fixture_t *f = *state;
    online(f, "worker-1");
    fake_world.fail_encode = true;
    assert_error(request(f, "q1"), "iq", ALICE, "q1", "cancel", "internal-server-error");
    assert_int_equal(router_pending_count(f->router), 0);
}

static void router__fails_at_once_when_the_chosen_resource_goes_offline(void **state)
{
    fixture_t *f = *state;
    online(f, "worker-1");
    online(f, "worker-2");
    fake_world.preferred = "worker-2";
    request(f, "q1");
    clear_sent(f);
    receive(f, "<presence type='unavailable' from='" TARGET "/worker-1' to='" DOMAIN "'/>");
    assert_int_equal(f->sent->len, 0); /* not the resource that has it */
    receive(f, "<presence type='unavailable' from='" TARGET "/worker-2' to='" DOMAIN "'/>");
    assert_error(only_sent(f), "iq", ALICE, "q1", "cancel", "service-unavailable");
    assert_int_equal(router_pending_count(f->router), 0);
    assert_int_equal(router_resource_count(f->router), 0);
    assert_int_equal(fake_world.offline_calls, 2);
}

static void router__times_out_and_then_drops_the_late_reply(void **state)
{
    fixture_t *f = *state;
    online(f, "worker-1");
    request(f, "q1");
    clear_sent(f);
    router_expire(f->router, g_get_monotonic_time() + 29 * G_USEC_PER_SEC);
    assert_int_equal(f->sent->len, 0);
    router_expire(f->router, g_get_monotonic_time() + 31 * G_USEC_PER_SEC);
    assert_error(only_sent(f), "iq", ALICE, "q1", "wait", "remote-server-timeout");
    assert_int_equal(router_next_deadline(f->router), -1);

    clear_sent(f);
    receive(f, "<iq type='result' id='q1' from='" TARGET "/worker-1' to='" DOMAIN "/t1'/>");
    assert_int_equal(f->sent->len, 0);
}

static void router__drops_a_reply_with_a_forged_token(void **state)
{
    fixture_t *f = *state;
    online(f, "worker-1");
    request(f, "q1");
    clear_sent(f);
    receive(f, "<iq type='result' id='q1' from='" TARGET "/worker-1' to='" DOMAIN "/t99'/>");
    receive(f, "<iq type='result' id='q1' from='" TARGET "/worker-1' to='" DOMAIN "'/>");
    assert_int_equal(f->sent->len, 0);
    assert_int_equal(router_pending_count(f->router), 1);
}

static void router__drops_a_reply_from_anyone_but_the_resource_asked(void **state)
{
    fixture_t *f = *state;
    online(f, "worker-1");
    online(f, "worker-2");
    fake_world.preferred = "worker-1";
    request(f, "q1");
    clear_sent(f);
    receive(f, "<iq type='result' id='q1' from='mallory@example.org/x' to='" DOMAIN "/t1'/>");
    receive(f, "<iq type='result' id='q1' from='" TARGET "' to='" DOMAIN "/t1'/>");
    receive(f, "<iq type='result' id='q1' from='" TARGET "/worker-2' to='" DOMAIN "/t1'/>");
    assert_int_equal(f->sent->len, 0);
    assert_int_equal(router_pending_count(f->router), 1);
}

static void router__drops_a_reply_to_another_senders_token(void **state)
{
    fixture_t *f = *state;
    online(f, "worker-1");
    request(f, "q1");                        /* alice: token t1 */
    clear_sent(f);
    receive(f, "<iq type='get' id='b1' from='bob@example.org/pc' to='" DOMAIN "'>"
               "<ping xmlns='urn:xmpp:ping'/></iq>"); /* bob: token t2 */
    clear_sent(f);
    /* A valid token, but not the one alice's request went out with. */
    receive(f, "<iq type='result' id='q1' from='" TARGET "/worker-1' to='" DOMAIN "/t2'/>");
    assert_int_equal(f->sent->len, 0);
    assert_int_equal(router_pending_count(f->router), 2);
}

/* Keyed on the sender and the id: the fake, like opaque or sealed, makes
 * a new token for the same sender each time (audit, issue 10 #5). */
static void router__refuses_a_second_request_with_an_id_in_flight_whatever_the_encoding(
    void **state)
{
    fixture_t *f = *state;
    online(f, "worker-1");
    request(f, "q1");
    assert_error(request(f, "q1"), "iq", ALICE, "q1", "modify", "bad-request");
    assert_int_equal(router_pending_count(f->router), 1);
    assert_int_equal(fake_world.forgotten, 0); /* refused before a token was made */
    /* Another sender may use the same id. */
    clear_sent(f);
    receive(f, "<iq type='get' id='q1' from='bob@example.org/pc' to='" DOMAIN "'>"
               "<ping xmlns='urn:xmpp:ping'/></iq>");
    assert_int_equal(router_pending_count(f->router), 2);
}

/* Stanzas over WIRE_STANZA_MAX arrive without their bytes: still one
 * answer for every request. */
static void router__answers_requests_and_replies_too_large_to_relay(void **state)
{
    fixture_t *f = *state;
    online(f, "worker-1");
    GString *big = g_string_new(NULL);
    while (big->len <= WIRE_STANZA_MAX)
        g_string_append(big, "0123456789abcdef");

    clear_sent(f);
    receive(f, "<iq type='set' id='big' from='" ALICE "' to='" DOMAIN "'><q xmlns='urn:x'>%s"
               "</q></iq>", big->str);
    assert_error(only_sent(f), "iq", ALICE, "big", "modify", "not-acceptable");
    assert_int_equal(router_pending_count(f->router), 0);

    request(f, "q1");
    clear_sent(f);
    receive(f, "<iq type='result' id='q1' from='" TARGET "/worker-1' to='" DOMAIN "/t1'>"
               "<answer xmlns='urn:x'>%s</answer></iq>", big->str);
    assert_error(only_sent(f), "iq", ALICE, "q1", "cancel", "not-acceptable");
    assert_int_equal(router_pending_count(f->router), 0);
    assert_int_equal(fake_world.forgotten, 1);
    g_string_free(big, TRUE);
}

static void router__refuses_malformed_requests(void **state)
{
    fixture_t *f = *state;
    online(f, "worker-1");
    clear_sent(f);
    receive(f, "<iq type='get' id='e1' from='" ALICE "' to='" DOMAIN "'/>");
    assert_error(only_sent(f), "iq", ALICE, "e1", "modify", "bad-request");
    clear_sent(f);
    receive(f, "<iq type='fetch' id='e2' from='" ALICE "' to='" DOMAIN "'><x xmlns='y'/></iq>");
    assert_error(only_sent(f), "iq", ALICE, "e2", "modify", "bad-request");
    clear_sent(f);
    receive(f, "<iq type='get' from='" ALICE "' to='" DOMAIN "'><x xmlns='y'/></iq>");
    assert_error(only_sent(f), "iq", ALICE, NULL, "modify", "bad-request");
    clear_sent(f);
    receive(f, "<iq type='get' id='e3' to='" DOMAIN "'><x xmlns='y'/></iq>");
    assert_int_equal(f->sent->len, 0); /* no sender: nobody to answer */
    assert_int_equal(router_pending_count(f->router), 0);
}

static void router__answers_feature_not_implemented_to_the_targets_requests(void **state)
{
    fixture_t *f = *state;
    online(f, "worker-1");
    clear_sent(f);
    receive(f, "<iq type='get' id='own' from='" TARGET "/worker-1' to='" DOMAIN "'>"
               "<ping xmlns='urn:xmpp:ping'/></iq>");
    assert_error(only_sent(f), "iq", TARGET "/worker-1", "own", "cancel",
                 "feature-not-implemented");
}

/* Issue 11: a user's message goes to one resource, from the user's
 * address; with none online, the user hears service-unavailable; an error
 * that answers nothing the service sent is never answered. */
static void router__forwards_a_users_message_to_one_resource_and_never_answers_errors(
    void **state)
{
    fixture_t *f = *state;
    clear_sent(f);
    receive(f, "<message id='m1' from='" ALICE "' to='" DOMAIN "'><body>hi</body></message>");
    assert_error(only_sent(f), "message", ALICE, "m1", "cancel", "service-unavailable");
    online(f, "worker-1");
    clear_sent(f);
    receive(f, "<message type='chat' id='m2' from='" ALICE "' to='" DOMAIN "/anything'>"
               "<body>hi</body><thread>t</thread><x xmlns='urn:x'/></message>");
    xmpp_stanza_t *forwarded = only_sent(f);
    assert_attr(forwarded, "from", DOMAIN "/t1");
    assert_attr(forwarded, "to", TARGET "/worker-1");
    assert_attr(forwarded, "type", "chat");
    assert_non_null(strstr(f->sent_text->pdata[0], "<body>hi</body><thread>t</thread>"
                                                   "<x xmlns='urn:x'/>"));
    assert_string_equal(fake_world.last_request.type, "chat");
    assert_int_equal(fake_world.forgotten, 1); /* forwarded: unpinned at once */
    clear_sent(f);
    receive(f, "<message type='error' id='m3' from='" ALICE "' to='" DOMAIN "'/>");
    assert_int_equal(f->sent->len, 0);
}

static void router__tracks_presence_show_and_priority(void **state)
{
    fixture_t *f = *state;
    receive(f, "<presence from='" TARGET "/w' to='" DOMAIN "'><show>dnd</show>"
               "<priority>-5</priority></presence>");
    assert_int_equal(router_resource_count(f->router), 1);
    assert_int_equal(fake_world.online_calls, 1);
    receive(f, "<presence from='" TARGET "/w' to='" DOMAIN "'><show>bogus</show></presence>");
    assert_int_equal(router_resource_count(f->router), 1);
    assert_int_equal(fake_world.online_calls, 1); /* an update, not a new resource */
    receive(f, "<presence from='stranger@example.org/x' to='" DOMAIN "'/>");
    assert_int_equal(router_resource_count(f->router), 1);
}

/* Audit, issue 10 #3: an error presence from one resource removes that
 * resource only. */
static void router__presence_error_from_a_resource_removes_that_resource_only(void **state)
{
    fixture_t *f = *state;
    online(f, "worker-1");
    online(f, "worker-2");
    fake_world.preferred = "worker-1";
    request(f, "q1");
    clear_sent(f);
    receive(f, "<presence type='error' from='" TARGET "/worker-1' to='" DOMAIN "'/>");
    /* The get moves to worker-2, as when worker-1 goes offline. */
    assert_int_equal(f->sent->len, 1);
    assert_attr(only_sent(f), "to", TARGET "/worker-2");
    assert_int_equal(router_resource_count(f->router), 1);
    assert_int_equal(router_pending_count(f->router), 1);
}

/* Audit, issue 10 #3: an error presence from the target's bare JID (our
 * probe or subscription bounced) removes nobody, and client-proxy asks
 * again, later and later, until a resource is available. */
static void router__presence_error_from_the_target_asks_again_with_backoff(void **state)
{
    fixture_t *f = *state;
    int64_t before = g_get_monotonic_time();
    online(f, "worker-1");
    online(f, "worker-2");
    request(f, "q1");
    clear_sent(f);
    receive(f, "<presence type='error' from='" TARGET "' to='" DOMAIN "'/>");
    assert_int_equal(f->sent->len, 0);
    assert_int_equal(router_resource_count(f->router), 2);
    assert_int_equal(router_pending_count(f->router), 1);

    int64_t previous_gap = 0;
    for (int round = 0; round < 3; round++) {
        int64_t now = g_get_monotonic_time();
        int64_t due = router_next_deadline(f->router);
        assert_true(due > 0 && due < now + 30 * G_USEC_PER_SEC); /* before q1's timeout */
        assert_true(due - now > previous_gap);                   /* later each time */
        previous_gap = due - now;
        clear_sent(f);
        router_expire(f->router, due);
        assert_int_equal(f->sent->len, 2);
        assert_attr(f->sent->pdata[0], "type", "probe");
        assert_attr(f->sent->pdata[1], "type", "subscribe");
    }
    /* A resource available again: no more probes. */
    online(f, "worker-3");
    int64_t q1_deadline = router_next_deadline(f->router);
    assert_true(q1_deadline >= before + 30 * G_USEC_PER_SEC); /* q1's request_timeout */
}

static void router__approves_the_targets_subscription_and_answers_its_probe(void **state)
{
    fixture_t *f = *state;
    clear_sent(f);
    receive(f, "<presence type='subscribe' from='" TARGET "' to='" DOMAIN "'/>");
    assert_attr(only_sent(f), "type", "subscribed");
    assert_attr(only_sent(f), "to", TARGET);
    clear_sent(f);
    receive(f, "<presence type='probe' from='" TARGET "' to='" DOMAIN "'/>");
    assert_attr(only_sent(f), "type", NULL);
}

static void router_shutdown__answers_every_request_then_says_goodbye(void **state)
{
    fixture_t *f = *state;
    online(f, "worker-1");
    request(f, "q1");
    request(f, "q2");
    clear_sent(f);
    router_shutdown(f->router);
    assert_int_equal(f->sent->len, 3);
    assert_error(f->sent->pdata[0], "iq", ALICE, "q1", "cancel", "service-unavailable");
    assert_error(f->sent->pdata[1], "iq", ALICE, "q2", "cancel", "service-unavailable");
    assert_attr(f->sent->pdata[2], "type", "unavailable");
    assert_int_equal(router_pending_count(f->router), 0);
}

static void router_disconnected__answers_in_flight_requests_once_reconnected(void **state)
{
    fixture_t *f = *state;
    online(f, "worker-1");
    request(f, "q1");
    clear_sent(f);
    router_disconnected(f->router, NULL, 0);
    assert_int_equal(f->sent->len, 0);
    assert_int_equal(router_pending_count(f->router), 0);
    assert_int_equal(router_resource_count(f->router), 0);

    router_connected(f->router);
    assert_int_equal(f->sent->len, 4);
    assert_error(f->sent->pdata[0], "iq", ALICE, "q1", "wait", "remote-server-timeout");
    assert_attr(f->sent->pdata[1], "type", "probe");
}

static void router__never_offers_a_draining_resource(void **state)
{
    fixture_t *f = *state;
    online(f, "worker-1");
    online(f, "worker-2");
    fake_world.preferred = "worker-2";
    request(f, "q1"); /* worker-2 has a request in flight */
    receive(f, "<presence from='" TARGET "/worker-2' to='" DOMAIN "'><show>dnd</show></presence>");
    for (int i = 0; i < 5; i++) {
        g_autofree char *id = g_strdup_printf("n%d", i);
        assert_attr(request(f, id), "to", TARGET "/worker-1");
        assert_int_equal(fake_world.last_n, 1);
    }
    /* Its reply to what it had is still routed. */
    clear_sent(f);
    receive(f, "<iq type='result' id='q1' from='" TARGET "/worker-2' to='" DOMAIN "/t1'/>");
    assert_attr(only_sent(f), "to", ALICE);

    receive(f, "<presence from='" TARGET "/worker-1' to='" DOMAIN "'><show>xa</show></presence>");
    assert_error(request(f, "none"), "iq", ALICE, "none", "cancel", "service-unavailable");
    receive(f, "<presence from='" TARGET "/worker-2' to='" DOMAIN "'><show>away</show></presence>");
    assert_attr(request(f, "back"), "to", TARGET "/worker-2");
}

/* Runs a test with extra [component] lines and extra [proxy] (or later)
 * lines in the configuration. */
#define WITH_CONFIG(name, component_lines, proxy_lines) \
    static int setup_##name(void **state)               \
    {                                                   \
        extra_component_config = component_lines;       \
        extra_proxy_config = proxy_lines;               \
        int status = setup(state);                      \
        extra_component_config = "";                    \
        extra_proxy_config = "";                        \
        return status;                                  \
    }

WITH_CONFIG(with_filter, "", "resources = worker-*;backup\n")

static void router__offers_only_resources_that_match_the_filter(void **state)
{
    fixture_t *f = *state;
    online(f, "gajim");
    online(f, "backup-1");
    assert_error(request(f, "q0"), "iq", ALICE, "q0", "cancel", "service-unavailable");
    online(f, "worker-7");
    online(f, "backup");
    for (int i = 0; i < 4; i++) {
        g_autofree char *id = g_strdup_printf("q%d", i + 1);
        request(f, id);
        assert_int_equal(fake_world.last_n, 2);
    }
    fake_world.preferred = "backup";
    assert_attr(request(f, "q9"), "to", TARGET "/backup");
}

static void router__retries_a_get_once_on_another_resource(void **state)
{
    fixture_t *f = *state;
    online(f, "worker-1");
    online(f, "worker-2");
    fake_world.preferred = "worker-2";
    assert_attr(request(f, "q1"), "to", TARGET "/worker-2");
    clear_sent(f);
    receive(f, "<presence type='unavailable' from='" TARGET "/worker-2' to='" DOMAIN "'/>");
    xmpp_stanza_t *retried = only_sent(f);
    assert_attr(retried, "to", TARGET "/worker-1");
    assert_attr(retried, "from", DOMAIN "/t1");
    assert_attr(retried, "id", "q1");
    assert_non_null(xmpp_stanza_get_child_by_name_and_ns(retried, "ping", "urn:xmpp:ping"));

    /* Only once: when worker-1 goes too, the sender gets the error. */
    online(f, "worker-3");
    clear_sent(f);
    receive(f, "<presence type='unavailable' from='" TARGET "/worker-1' to='" DOMAIN "'/>");
    assert_error(only_sent(f), "iq", ALICE, "q1", "cancel", "service-unavailable");
    assert_int_equal(router_pending_count(f->router), 0);
}

static void router__routes_the_reply_of_a_retried_get(void **state)
{
    fixture_t *f = *state;
    online(f, "worker-1");
    online(f, "worker-2");
    fake_world.preferred = "worker-2";
    request(f, "q1");
    receive(f, "<presence type='unavailable' from='" TARGET "/worker-2' to='" DOMAIN "'/>");
    clear_sent(f);
    receive(f, "<iq type='result' id='q1' from='" TARGET "/worker-1' to='" DOMAIN "/t1'/>");
    assert_attr(only_sent(f), "to", ALICE);
    assert_int_equal(router_pending_count(f->router), 0);
}

static void router__never_retries_a_set(void **state)
{
    fixture_t *f = *state;
    online(f, "worker-1");
    online(f, "worker-2");
    fake_world.preferred = "worker-2";
    clear_sent(f);
    receive(f, "<iq type='set' id='s1' from='" ALICE "' to='" DOMAIN "'><q xmlns='urn:x'/></iq>");
    assert_attr(only_sent(f), "to", TARGET "/worker-2");
    clear_sent(f);
    receive(f, "<presence type='unavailable' from='" TARGET "/worker-2' to='" DOMAIN "'/>");
    assert_error(only_sent(f), "iq", ALICE, "s1", "cancel", "service-unavailable");
}

WITH_CONFIG(no_retry, "", "retry_get = false\n")

#define INSTANCE "i1." DOMAIN

WITH_CONFIG(instance_domain, "instance_domain = " INSTANCE "\n", "")

/* Several instances share DOMAIN: what comes back to this one goes to its
 * own domain, and what users see still comes from DOMAIN. */
static void router__uses_its_instance_domain_for_what_must_come_back(void **state)
{
    fixture_t *f = *state;
    for (int i = 0; i < 3; i++)
        assert_attr(f->sent->pdata[i], "from", INSTANCE);
    receive(f, "<presence from='" TARGET "/worker-1' to='" INSTANCE "'/>");
    xmpp_stanza_t *forwarded = request(f, "q1");
    assert_attr(forwarded, "from", INSTANCE "/t1");

    clear_sent(f);
    receive(f, "<iq type='result' id='q1' from='" TARGET "/worker-1' to='" INSTANCE "/t1'/>");
    xmpp_stanza_t *reply = only_sent(f);
    assert_attr(reply, "from", DOMAIN);
    assert_attr(reply, "to", ALICE);

    /* Subscriptions are answered from the domain they were made to. */
    clear_sent(f);
    receive(f, "<presence type='subscribe' from='" TARGET "' to='" DOMAIN "'/>");
    assert_attr(only_sent(f), "from", DOMAIN);
    clear_sent(f);
    receive(f, "<presence type='subscribe' from='" TARGET "' to='" INSTANCE "'/>");
    assert_attr(only_sent(f), "from", INSTANCE);

    /* Anything else is not ours. */
    clear_sent(f);
    receive(f, "<iq type='get' id='x' from='" ALICE "' to='i2." DOMAIN "'><q xmlns='urn:x'/></iq>");
    assert_int_equal(f->sent->len, 0);
}
WITH_CONFIG(bench_after_two, "", "unhealthy_after = 2\n")
WITH_CONFIG(one_in_flight, "", "[limits]\nin_flight = 1\n")
WITH_CONFIG(rate_limited, "", "[limits]\nrate_per_sender = 1\nburst_per_sender = 1\n")

static void router__does_not_retry_when_told_not_to(void **state)
{
    fixture_t *f = *state;
    online(f, "worker-1");
    online(f, "worker-2");
    fake_world.preferred = "worker-2";
    request(f, "q1");
    clear_sent(f);
    receive(f, "<presence type='unavailable' from='" TARGET "/worker-2' to='" DOMAIN "'/>");
    assert_error(only_sent(f), "iq", ALICE, "q1", "cancel", "service-unavailable");
}

static void router__benches_a_silent_resource_until_it_answers_a_ping(void **state)
{
    fixture_t *f = *state;
    online(f, "worker-1");
    online(f, "worker-2");
    fake_world.preferred = "worker-1";
    for (int i = 0; i < 2; i++) {
        g_autofree char *id = g_strdup_printf("lost%d", i);
        assert_attr(request(f, id), "to", TARGET "/worker-1");
        clear_sent(f);
        router_expire(f->router, router_next_deadline(f->router));
    }
    /* The second timeout benched it and pinged it. */
    assert_int_equal(f->sent->len, 2);
    xmpp_stanza_t *ping = f->sent->pdata[1];
    assert_attr(ping, "type", "get");
    assert_attr(ping, "to", TARGET "/worker-1");
    assert_attr(ping, "from", DOMAIN);
    assert_non_null(xmpp_stanza_get_child_by_name_and_ns(ping, "ping", "urn:xmpp:ping"));
    g_autofree char *ping_id = g_strdup(xmpp_stanza_get_id(ping));

    assert_attr(request(f, "q"), "to", TARGET "/worker-2");
    assert_int_equal(fake_world.last_n, 1);

    /* An error, or a reply to another id, does not bring it back. */
    receive(f, "<iq type='error' id='%s' from='" TARGET "/worker-1' to='" DOMAIN "'/>", ping_id);
    receive(f, "<iq type='result' id='cp-health-999' from='" TARGET "/worker-1' to='" DOMAIN "'/>");
    assert_attr(request(f, "q2"), "to", TARGET "/worker-2");
    /* Its answer to the ping does. */
    receive(f, "<iq type='result' id='%s' from='" TARGET "/worker-1' to='" DOMAIN "'/>", ping_id);
    assert_attr(request(f, "q3"), "to", TARGET "/worker-1");
    assert_int_equal(fake_world.last_n, 2);
}

static void router__pings_a_benched_resource_again_until_it_answers(void **state)
{
    fixture_t *f = *state;
    online(f, "worker-1");
    for (int i = 0; i < 2; i++) {
        g_autofree char *id = g_strdup_printf("lost%d", i);
        request(f, id);
        router_expire(f->router, router_next_deadline(f->router));
    }
    int64_t next = router_next_deadline(f->router);
    assert_true(next > g_get_monotonic_time());
    clear_sent(f);
    router_expire(f->router, next);
    assert_attr(only_sent(f), "to", TARGET "/worker-1");
    assert_string_not_equal(xmpp_stanza_get_id(only_sent(f)), "");
}

static void router__answers_resource_constraint_beyond_the_bound(void **state)
{
    fixture_t *f = *state;
    online(f, "worker-1");
    assert_attr(request(f, "q1"), "to", TARGET "/worker-1");
    assert_error(request(f, "q2"), "iq", ALICE, "q2", "wait", "resource-constraint");
    receive(f, "<iq type='result' id='q1' from='" TARGET "/worker-1' to='" DOMAIN "/t1'/>");
    assert_attr(request(f, "q3"), "to", TARGET "/worker-1");
}

static void router__answers_policy_violation_beyond_the_rate(void **state)
{
    fixture_t *f = *state;
    online(f, "worker-1");
    assert_attr(request(f, "q1"), "to", TARGET "/worker-1");
    assert_error(request(f, "q2"), "iq", ALICE, "q2", "wait", "policy-violation");
}

/* Audit, issue 10 #4: every get or set that reaches client-proxy gets one
 * reply, also when addressed to a user at its domain, where nobody lives. */
static void router__answers_service_unavailable_for_a_user_at_the_domain(void **state)
{
    fixture_t *f = *state;
    online(f, "worker-1");
    clear_sent(f);
    receive(f, "<iq type='get' id='u1' from='" ALICE "' to='bob@" DOMAIN "'>"
               "<ping xmlns='urn:xmpp:ping'/></iq>");
    assert_error_from(only_sent(f), "bob@" DOMAIN, "iq", ALICE, "u1", "cancel",
                      "service-unavailable");
    clear_sent(f);
    receive(f, "<iq type='set' id='u2' from='" ALICE "' to='bob@" DOMAIN "/res'>"
               "<x xmlns='urn:x'/></iq>");
    assert_error_from(only_sent(f), "bob@" DOMAIN "/res", "iq", ALICE, "u2", "cancel",
                      "service-unavailable");
    /* Never answer an answer. */
    clear_sent(f);
    receive(f, "<iq type='result' id='u3' from='" ALICE "' to='bob@" DOMAIN "'/>");
    receive(f, "<iq type='error' id='u4' from='" ALICE "' to='bob@" DOMAIN "'/>");
    assert_int_equal(f->sent->len, 0);
    assert_int_equal(router_pending_count(f->router), 0);
}

/* Audit, issue 10 #6: a request that comes while the stream closes for a
 * reload is answered on the next stream. */
static void router__answers_on_the_next_stream_what_came_while_this_one_closed(void **state)
{
    fixture_t *f = *state;
    online(f, "worker-1");
    router_pause(f->router, true);
    router_disconnected(f->router, NULL, 0); /* our closing tag is out */
    clear_sent(f);
    receive(f, "<iq type='get' id='late' from='" ALICE "' to='" DOMAIN "'>"
               "<ping xmlns='urn:xmpp:ping'/></iq>");
    assert_int_equal(f->sent->len, 0);
    router_pause(f->router, false);
    router_connected(f->router);
    assert_error(f->sent->pdata[0], "iq", ALICE, "late", "wait", "service-unavailable");
}

/* Audit, issue 10 #6: while stopping, every request that still comes is
 * answered at once. */
static void router__answers_service_unavailable_to_requests_while_stopping(void **state)
{
    fixture_t *f = *state;
    online(f, "worker-1");
    router_shutdown(f->router);
    clear_sent(f);
    receive(f, "<iq type='get' id='s1' from='" ALICE "' to='" DOMAIN "'>"
               "<ping xmlns='urn:xmpp:ping'/></iq>");
    assert_error(only_sent(f), "iq", ALICE, "s1", "cancel", "service-unavailable");
}

/* Audit, issue 10 #2: the answers held for requests that were in flight
 * when the stream dropped survive a reload that changes the stream. */
static void router__keeps_held_answers_across_a_reload_that_changes_the_stream(void **state)
{
    fixture_t *f = *state;
    online(f, "worker-1");
    request(f, "q1");
    clear_sent(f);
    router_disconnected(f->router, NULL, 0);
    assert_int_equal(f->sent->len, 0);

    g_autofree char *path = write_temp_file(
        "[component]\ndomain = " DOMAIN "\nsecret = other\nserver = localhost\nport = 5348\n"
        "[proxy]\ntarget = " TARGET "\n");
    g_autoptr(config_t) changed = config_load(path, NULL);
    g_unlink(path);
    assert_non_null(changed);
    router_reconfigure(f->router, changed, f->dispatch, f->jat);
    router_connected(f->router);
    assert_error(f->sent->pdata[0], "iq", ALICE, "q1", "wait", "remote-server-timeout");
}

/* Audit, issue 10 #7: a reply the stream took but never wrote (the server
 * closed in the same read) goes out on the next stream. */
static void router__sends_on_the_next_stream_what_a_dying_stream_never_wrote(void **state)
{
    fixture_t *f = *state;
    const char unsent[] = "<iq type='result' id='r1' from='" DOMAIN "' to='" ALICE "'/>";
    router_disconnected(f->router, unsent, sizeof unsent - 1);
    clear_sent(f);
    router_connected(f->router);
    assert_string_equal(f->sent_text->pdata[0], unsent);
}

/* Review: a forward the dying stream never wrote is ended as failed (its
 * sender is told remote-server-timeout); it must not run on the next stream
 * anyway.  The answer beside it still goes out. */
static void router__drops_the_requests_a_dying_stream_never_wrote_and_keeps_its_answers(
    void **state)
{
    fixture_t *f = *state;
    online(f, "worker-1");
    request(f, "q1");
    GString *forward = g_string_new(f->sent_text->pdata[f->sent_text->len - 1]);
    g_string_append(forward, "<iq type='result' id='r1' from='" DOMAIN "' to='" ALICE "'/>"
                             "<iq type='get' id='cp-ping-1' from='" DOMAIN "' to='" TARGET
                             "/worker-1'><ping xmlns='urn:xmpp:ping'/></iq>");
    router_disconnected(f->router, forward->str, forward->len);
    g_string_free(forward, TRUE);
    clear_sent(f);
    router_connected(f->router);
    int answers = 0, errors_to_alice = 0, requests = 0;
    for (guint i = 0; i < f->sent_text->len; i++) {
        const char *text = f->sent_text->pdata[i];
        answers += strstr(text, "id='r1'") != NULL;
        errors_to_alice += strstr(text, "remote-server-timeout") != NULL;
        requests += strstr(text, "type='get'") != NULL && strstr(text, "to='" TARGET "/") != NULL;
    }
    assert_int_equal(answers, 1);
    assert_int_equal(errors_to_alice, 1);
    assert_int_equal(requests, 0);
}


/* ---- Issue 11: both directions ------------------------------------------ */

/* Alice asks once, so that her address is t1 and worker-1 knows it. */
static void alice_has_address_t1(fixture_t *f)
{
    online(f, "worker-1");
    request(f, "q1");
    receive(f, "<iq type='result' id='q1' from='" TARGET "/worker-1' to='" DOMAIN "/t1'/>");
    clear_sent(f);
}

static void router__sends_the_services_message_to_the_user_from_the_bare_domain(void **state)
{
    fixture_t *f = *state;
    alice_has_address_t1(f);
    receive(f, "<message type='chat' id='w1' from='" TARGET "/worker-1' to='" DOMAIN "/t1'>"
               "<body>hello</body><x xmlns='urn:x'/></message>");
    xmpp_stanza_t *sent = only_sent(f);
    assert_attr(sent, "from", DOMAIN);
    assert_attr(sent, "to", ALICE);
    assert_attr(sent, "id", "w1");
    assert_non_null(strstr(f->sent_text->pdata[0], "<body>hello</body><x xmlns='urn:x'/>"));
}

static void router__routes_a_bounce_back_to_the_resource_that_sent_the_message(void **state)
{
    fixture_t *f = *state;
    alice_has_address_t1(f);
    online(f, "worker-2");
    receive(f, "<message id='w1' from='" TARGET "/worker-2' to='" DOMAIN "/t1'>"
               "<body>hello</body></message>");
    clear_sent(f);
    receive(f, "<message type='error' id='w1' from='" ALICE "' to='" DOMAIN "'>"
               "<error type='cancel'><service-unavailable "
               "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>");
    xmpp_stanza_t *bounce = only_sent(f);
    assert_attr(bounce, "type", "error");
    assert_attr(bounce, "from", DOMAIN "/t1");
    assert_attr(bounce, "to", TARGET "/worker-2");
    /* Once only. */
    clear_sent(f);
    receive(f, "<message type='error' id='w1' from='" ALICE "' to='" DOMAIN "'/>");
    assert_int_equal(f->sent->len, 0);
}

static void router__drops_the_bounce_of_a_users_message(void **state)
{
    fixture_t *f = *state;
    alice_has_address_t1(f);
    receive(f, "<message type='error' id='m1' from='" TARGET "/worker-1' to='" DOMAIN "/t1'/>");
    assert_int_equal(f->sent->len, 0);
}

/* No open relay: a stranger writing to Alice's address reaches the
 * service, as the stranger. */
static void router__treats_a_strangers_stanza_to_an_address_as_the_strangers_own(void **state)
{
    fixture_t *f = *state;
    alice_has_address_t1(f);
    receive(f, "<message id='s1' from='mallory@example.org/x' to='" DOMAIN "/t1'>"
               "<body>hi</body></message>");
    xmpp_stanza_t *sent = only_sent(f);
    assert_attr(sent, "to", TARGET "/worker-1");
    assert_attr(sent, "from", DOMAIN "/t2");
    clear_sent(f);
    receive(f, "<iq type='get' id='s2' from='mallory@example.org/x' to='" DOMAIN "/t1'>"
               "<ping xmlns='urn:xmpp:ping'/></iq>");
    assert_attr(only_sent(f), "to", TARGET "/worker-1");
    assert_attr(only_sent(f), "from", DOMAIN "/t3"); /* each use its own token here */
}

/* Only resources that [proxy] resources allows write to addresses. */
static void router__keeps_resources_the_filter_leaves_out_from_writing_to_users(void **state)
{
    fixture_t *f = *state;
    alice_has_address_t1(f);
    receive(f, "<message id='v1' from='" TARGET "/videobridge' to='" DOMAIN "/t1'>"
               "<body>x</body></message>");
    assert_int_equal(f->sent->len, 0);
    receive(f, "<iq type='set' id='v2' from='" TARGET "/videobridge' to='" DOMAIN "/t1'>"
               "<x xmlns='urn:x'/></iq>");
    assert_error(only_sent(f), "iq", TARGET "/videobridge", "v2", "cancel",
                 "feature-not-implemented");
}

static void router__sends_the_services_request_to_the_user_and_its_answer_back(void **state)
{
    fixture_t *f = *state;
    alice_has_address_t1(f);
    receive(f, "<iq type='get' id='x1' from='" TARGET "/worker-1' to='" DOMAIN "/t1'>"
               "<query xmlns='jabber:iq:version'/></iq>");
    xmpp_stanza_t *sent = only_sent(f);
    assert_attr(sent, "from", DOMAIN);
    assert_attr(sent, "to", ALICE);
    g_autofree char *wire_id = g_strdup(xmpp_stanza_get_id(sent));
    assert_string_not_equal(wire_id, "x1");
    assert_int_equal(router_pending_count(f->router), 1);

    clear_sent(f);
    receive(f, "<iq type='result' id='%s' from='mallory@example.org/x' to='" DOMAIN "'/>",
            wire_id);
    assert_int_equal(f->sent->len, 0); /* not from the user asked */
    receive(f, "<iq type='result' id='%s' from='" ALICE "' to='" DOMAIN "'>"
               "<query xmlns='jabber:iq:version'><name>x</name></query></iq>",
            wire_id);
    xmpp_stanza_t *back = only_sent(f);
    assert_attr(back, "id", "x1");
    assert_attr(back, "from", DOMAIN "/t1");
    assert_attr(back, "to", TARGET "/worker-1");
    assert_attr(back, "type", "result");
    assert_int_equal(router_pending_count(f->router), 0);
}

static void router__answers_the_service_once_when_its_request_gets_no_answer(void **state)
{
    fixture_t *f = *state;
    alice_has_address_t1(f);
    receive(f, "<iq type='get' id='x1' from='" TARGET "/worker-1' to='" DOMAIN "/t1'>"
               "<ping xmlns='urn:xmpp:ping'/></iq>");
    receive(f, "<iq type='get' id='x2' from='" TARGET "/worker-1' to='" DOMAIN "/t1'>"
               "<ping xmlns='urn:xmpp:ping'/></iq>");
    clear_sent(f);
    router_expire(f->router, g_get_monotonic_time() + 31 * G_USEC_PER_SEC);
    assert_int_equal(f->sent->len, 2);
    assert_error_from(f->sent->pdata[0], DOMAIN "/t1", "iq", TARGET "/worker-1", "x1", "wait",
                      "remote-server-timeout");
    /* The other, when the stream drops, once it is back. */
    receive(f, "<iq type='get' id='x3' from='" TARGET "/worker-1' to='" DOMAIN "/t1'>"
               "<ping xmlns='urn:xmpp:ping'/></iq>");
    clear_sent(f);
    router_disconnected(f->router, NULL, 0);
    router_connected(f->router);
    assert_error_from(f->sent->pdata[0], DOMAIN "/t1", "iq", TARGET "/worker-1", "x3",
                      "cancel", "service-unavailable");
    assert_int_equal(router_pending_count(f->router), 0);
}

static void router__answers_item_not_found_for_an_address_nobody_has(void **state)
{
    fixture_t *f = *state;
    online(f, "worker-1");
    clear_sent(f);
    receive(f, "<iq type='get' id='x1' from='" TARGET "/worker-1' to='" DOMAIN "/t99'>"
               "<ping xmlns='urn:xmpp:ping'/></iq>");
    assert_error_from(only_sent(f), DOMAIN "/t99", "iq", TARGET "/worker-1", "x1", "cancel",
                      "item-not-found");
    clear_sent(f);
    receive(f, "<message id='m1' from='" TARGET "/worker-1' to='" DOMAIN "/t99'><body>x</body>"
               "</message>");
    assert_error_from(only_sent(f), DOMAIN "/t99", "message", TARGET "/worker-1", "m1",
                      "cancel", "item-not-found");
}

static void router__tells_subscribed_users_when_the_service_comes_and_goes(void **state)
{
    fixture_t *f = *state;
    clear_sent(f);
    receive(f, "<presence type='subscribe' from='alice@example.org' to='" DOMAIN "'/>");
    assert_int_equal(f->sent->len, 2);
    assert_attr(f->sent->pdata[0], "type", "subscribed");
    assert_attr(f->sent->pdata[0], "to", "alice@example.org");
    assert_attr(f->sent->pdata[1], "type", "unavailable"); /* no resource yet */
    receive(f, "<presence type='probe' from='bob@example.org/pc' to='" DOMAIN "'/>");
    clear_sent(f);
    online(f, "worker-1");
    assert_int_equal(f->sent->len, 2);
    assert_attr(f->sent->pdata[0], "type", NULL);
    assert_attr(f->sent->pdata[0], "from", DOMAIN);
    clear_sent(f);
    online(f, "worker-2"); /* still available: nothing to tell */
    assert_int_equal(f->sent->len, 0);
    receive(f, "<presence type='unsubscribe' from='bob@example.org/pc' to='" DOMAIN "'/>");
    assert_attr(only_sent(f), "type", "unsubscribed");
    clear_sent(f);
    receive(f, "<presence type='unavailable' from='" TARGET "/worker-1' to='" DOMAIN "'/>");
    assert_int_equal(f->sent->len, 0);
    receive(f, "<presence type='unavailable' from='" TARGET "/worker-2' to='" DOMAIN "'/>");
    assert_attr(only_sent(f), "type", "unavailable");
    assert_attr(only_sent(f), "to", "alice@example.org");
    /* Other presence is not relayed to the resources. */
    clear_sent(f);
    receive(f, "<presence from='alice@example.org/phone' to='" DOMAIN "'/>");
    assert_int_equal(f->sent->len, 0);
}

/* ---- Issue 12: hold, refusals, discovery by ping ------------------------- */

WITH_CONFIG(with_hold, "", "hold = 10\n")

/* While no resource can take it, a request waits for one (Jicofo
 * restarting) and goes to the first that comes, in arrival order. */
static void router__holds_requests_until_a_resource_comes_online(void **state)
{
    fixture_t *f = *state;
    clear_sent(f);
    receive(f, "<iq type='set' id='h1' from='" ALICE "' to='" DOMAIN "'><c xmlns='urn:x'/></iq>");
    receive(f, "<iq type='set' id='h2' from='bob@example.org/pc' to='" DOMAIN "'>"
               "<c xmlns='urn:x'/></iq>");
    assert_int_equal(f->sent->len, 0);
    assert_int_equal(router_pending_count(f->router), 2);
    online(f, "worker-1");
    assert_int_equal(f->sent->len, 2);
    assert_attr(f->sent->pdata[0], "id", "h1");
    assert_attr(f->sent->pdata[0], "to", TARGET "/worker-1");
    assert_attr(f->sent->pdata[1], "id", "h2");
    clear_sent(f);
    receive(f, "<iq type='result' id='h1' from='" TARGET "/worker-1' to='" DOMAIN "/t1'/>");
    assert_attr(only_sent(f), "to", ALICE);
}

/* The hold runs out: cancel/service-unavailable, once. */
static void router__answers_service_unavailable_when_the_hold_runs_out(void **state)
{
    fixture_t *f = *state;
    clear_sent(f);
    int64_t before = g_get_monotonic_time();
    receive(f, "<iq type='set' id='h1' from='" ALICE "' to='" DOMAIN "'><c xmlns='urn:x'/></iq>");
    int64_t due = router_next_deadline(f->router);
    assert_true(due >= before + 10 * G_USEC_PER_SEC); /* the hold */
    router_expire(f->router, due - 1);
    assert_int_equal(f->sent->len, 0);
    router_expire(f->router, due);
    assert_error(only_sent(f), "iq", ALICE, "h1", "cancel", "service-unavailable");
    clear_sent(f);
    online(f, "worker-1");
    assert_int_equal(f->sent->len, 0);
    assert_int_equal(router_pending_count(f->router), 0);
}

/* Review: dropping the resources one by one when the stream goes changes
 * the candidates; a strategy may then accept a held request it declined,
 * which must not be forwarded on a stream that is going away. */
static void router__places_no_held_request_while_it_stops_or_loses_the_stream(void **state)
{
    fixture_t *f = *state;
    receive(f, "<iq type='get' id='h1' from='" ALICE "' to='" DOMAIN "'><c xmlns='urn:x'/></iq>");
    receive(f, "<iq type='get' id='h2' from='" ALICE "' to='" DOMAIN "'><c xmlns='urn:x'/></iq>");
    fake_world.decline = true;
    online(f, "worker-1");
    online(f, "worker-2");
    fake_world.decline = false;
    fake_world.decline_unless_alone = true; /* as soon as one is left */
    assert_int_equal(router_held_count(f->router), 2);
    clear_sent(f);

    router_disconnected(f->router, NULL, 0);
    router_connected(f->router);
    for (guint i = 0; i < f->sent->len; i++)
        if (g_strcmp0(xmpp_stanza_get_name(f->sent->pdata[i]), "iq") == 0)
            fail_msg("an IQ went out after the stream was lost: %s",
                     (const char *)f->sent_text->pdata[i]);
    assert_int_equal(router_held_count(f->router), 2);

    fake_world.decline_unless_alone = false;
    fake_world.decline = true;
    online(f, "worker-1");
    online(f, "worker-2");
    fake_world.decline = false;
    fake_world.decline_unless_alone = true;
    clear_sent(f);
    router_shutdown(f->router);
    int forwards = 0, refusals = 0;
    for (guint i = 0; i < f->sent->len; i++) {
        xmpp_stanza_t *stanza = f->sent->pdata[i];
        forwards += g_strcmp0(xmpp_stanza_get_type(stanza), "get") == 0;
        refusals += g_strcmp0(xmpp_stanza_get_type(stanza), "error") == 0;
    }
    assert_int_equal(forwards, 0);
    assert_int_equal(refusals, 2);
}

static void router__answers_held_requests_when_it_stops(void **state)
{
    fixture_t *f = *state;
    receive(f, "<iq type='get' id='h1' from='" ALICE "' to='" DOMAIN "'><c xmlns='urn:x'/></iq>");
    clear_sent(f);
    router_shutdown(f->router);
    assert_error(f->sent->pdata[0], "iq", ALICE, "h1", "cancel", "service-unavailable");
    assert_int_equal(router_pending_count(f->router), 0);
}

/* A resource that answers it did not process a request (a videobridge
 * logged in as Jitsi's focus): tried once elsewhere, get or set. */
static void router__tries_another_resource_when_one_did_not_process_a_request(void **state)
{
    fixture_t *f = *state;
    online(f, "worker-1");
    online(f, "videobridge");
    fake_world.preferred = "videobridge";
    clear_sent(f);
    receive(f, "<iq type='set' id='c1' from='" ALICE "' to='" DOMAIN "'><c xmlns='urn:x'/></iq>");
    assert_attr(only_sent(f), "to", TARGET "/videobridge");
    clear_sent(f);
    receive(f, "<iq type='error' id='c1' from='" TARGET "/videobridge' to='" DOMAIN "/t1'>"
               "<error type='cancel'><feature-not-implemented "
               "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>");
    assert_attr(only_sent(f), "to", TARGET "/worker-1");
    assert_attr(only_sent(f), "type", "set");
    clear_sent(f);
    receive(f, "<iq type='result' id='c1' from='" TARGET "/worker-1' to='" DOMAIN "/t1'/>");
    assert_attr(only_sent(f), "to", ALICE);
    assert_attr(only_sent(f), "type", "result");
}

/* Only once: a second refusal goes to the sender; an error that is not a
 * refusal goes to the sender at once. */
static void router__passes_on_the_second_refusal_and_any_other_error(void **state)
{
    fixture_t *f = *state;
    online(f, "worker-1");
    online(f, "worker-2");
    fake_world.preferred = "worker-1";
    request(f, "c1");
    clear_sent(f);
    receive(f, "<iq type='error' id='c1' from='" TARGET "/worker-1' to='" DOMAIN "/t1'>"
               "<error type='cancel'><service-unavailable "
               "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>");
    assert_attr(only_sent(f), "to", TARGET "/worker-2");
    clear_sent(f);
    receive(f, "<iq type='error' id='c1' from='" TARGET "/worker-2' to='" DOMAIN "/t1'>"
               "<error type='cancel'><service-unavailable "
               "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>");
    assert_error(only_sent(f), "iq", ALICE, "c1", "cancel", "service-unavailable");
    request(f, "c2");
    clear_sent(f);
    receive(f, "<iq type='error' id='c2' from='" TARGET "/worker-1' to='" DOMAIN "/t2'>"
               "<error type='modify'><bad-request "
               "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>");
    assert_error(only_sent(f), "iq", ALICE, "c2", "modify", "bad-request");
}

WITH_CONFIG(with_refusal_bench, "", "unhealthy_after = 2\n")

/* After unhealthy_after refusals in a row that another resource then
 * processed, the resource is benched like one that times out. */
static void router__benches_a_resource_that_keeps_refusing(void **state)
{
    fixture_t *f = *state;
    online(f, "worker-1");
    online(f, "videobridge");
    for (int i = 1; i <= 2; i++) {
        fake_world.preferred = "videobridge";
        g_autofree char *id = g_strdup_printf("c%d", i);
        request(f, id);
        g_autofree char *token = g_strdup(strrchr(xmpp_stanza_get_from(only_sent(f)), '/') + 1);
        clear_sent(f);
        receive(f, "<iq type='error' id='%s' from='" TARGET "/videobridge' to='" DOMAIN "/%s'>"
                   "<error type='cancel'><feature-not-implemented "
                   "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
                id, token);
        assert_attr(only_sent(f), "to", TARGET "/worker-1");
        receive(f, "<iq type='result' id='%s' from='" TARGET "/worker-1' to='" DOMAIN "/%s'/>",
                id, token);
    }
    /* Benched: pinged, and no longer offered. */
    fake_world.preferred = "videobridge";
    request(f, "c3");
    assert_attr(only_sent(f), "to", TARGET "/worker-1");
}

/* A request every resource refuses (one nobody serves) benches nobody: no
 * sender may take the service down by asking what it does not do. */
static void router__benches_nobody_for_a_request_every_resource_refuses(void **state)
{
    fixture_t *f = *state;
    online(f, "worker-1");
    online(f, "worker-2");
    for (int i = 1; i <= 4; i++) {
        fake_world.preferred = i % 2 ? "worker-1" : "worker-2";
        g_autofree char *id = g_strdup_printf("u%d", i);
        request(f, id);
        g_autofree char *token = g_strdup(strrchr(xmpp_stanza_get_from(only_sent(f)), '/') + 1);
        for (int leg = 0; leg < 2; leg++) {
            const char *to = xmpp_stanza_get_to(f->sent->pdata[0]);
            g_autofree char *resource = g_strdup(strrchr(to, '/') + 1);
            clear_sent(f);
            receive(f, "<iq type='error' id='%s' from='" TARGET "/%s' to='" DOMAIN "/%s'>"
                       "<error type='cancel'><feature-not-implemented "
                       "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
                    id, resource, token);
        }
        assert_error(only_sent(f), "iq", ALICE, id, "cancel", "feature-not-implemented");
    }
    assert_true(router_serving(f->router));
    fake_world.preferred = NULL;
    fake_world.pick = 1;
    request(f, "u5");
    fake_world.pick = 0;
    request(f, "u6");
    assert_int_equal(fake_world.last_n, 2); /* both still offered */
}

WITH_CONFIG(with_ping_discovery, "",
            "discovery = ping\nresources = focus1;focus2\nping_interval = 10\nping_timeout = 5\n")

static xmpp_stanza_t *sent_ping_to(fixture_t *f, const char *to)
{
    for (guint i = 0; i < f->sent->len; i++) {
        xmpp_stanza_t *stanza = f->sent->pdata[i];
        const char *id = xmpp_stanza_get_id(stanza);
        if (g_strcmp0(xmpp_stanza_get_to(stanza), to) == 0 && id &&
            g_str_has_prefix(id, "cp-discover-"))
            return stanza;
    }
    return NULL;
}

/* discovery = ping: no subscription; the named resources are pinged, and
 * one is online while it answers. */
static void router__discovers_resources_by_ping_without_a_subscription(void **state)
{
    fixture_t *f = *state;
    for (guint i = 0; i < f->sent->len; i++)
        if (g_strcmp0(xmpp_stanza_get_name(f->sent->pdata[i]), "presence") == 0)
            assert_true(g_strcmp0(xmpp_stanza_get_type(f->sent->pdata[i]), "subscribe") != 0 &&
                        g_strcmp0(xmpp_stanza_get_type(f->sent->pdata[i]), "probe") != 0);
    xmpp_stanza_t *ping1 = sent_ping_to(f, TARGET "/focus1");
    xmpp_stanza_t *ping2 = sent_ping_to(f, TARGET "/focus2");
    assert_non_null(ping1);
    assert_non_null(ping2);
    g_autofree char *id1 = g_strdup(xmpp_stanza_get_id(ping1));
    g_autofree char *id2 = g_strdup(xmpp_stanza_get_id(ping2));
    receive(f, "<iq type='result' id='%s' from='" TARGET "/focus1' to='" DOMAIN "'/>", id1);
    receive(f, "<iq type='error' id='%s' from='" TARGET "/focus2' to='" DOMAIN "'/>", id2);
    assert_int_equal(router_resource_count(f->router), 1);
    request(f, "q1");
    assert_attr(only_sent(f), "to", TARGET "/focus1");

    /* Presence says nothing under discovery = ping. */
    receive(f, "<presence type='unavailable' from='" TARGET "/focus1' to='" DOMAIN "'/>");
    assert_int_equal(router_resource_count(f->router), 1);

    /* The next round: focus1 does not answer within ping_timeout, and its
     * request is answered. */
    clear_sent(f);
    router_expire(f->router, g_get_monotonic_time() + 10 * G_USEC_PER_SEC);
    assert_non_null(sent_ping_to(f, TARGET "/focus1"));
    clear_sent(f);
    router_expire(f->router, g_get_monotonic_time() + 16 * G_USEC_PER_SEC);
    assert_int_equal(router_resource_count(f->router), 0);
    assert_error(f->sent->pdata[0], "iq", ALICE, "q1", "cancel", "service-unavailable");
}

/* Review: a reload may bring work due sooner (new pings, a retired encoding
 * to release); the router tells its owner's timer at once. */
static void router__tells_its_timer_the_next_deadline_after_a_reconfigure(void **state)
{
    fixture_t *f = *state; /* discovery = ping: its pings are due */
    f->last_deadline = -2;
    router_reconfigure(f->router, f->config, f->dispatch, f->jat);
    assert_true(f->last_deadline >= 0);
    assert_int_equal(f->last_deadline, router_next_deadline(f->router));
}

static void count_line(const char *line, void *userdata)
{
    GPtrArray *lines = userdata;
    g_ptr_array_add(lines, g_strdup(line));
}

static unsigned lines_with(GPtrArray *lines, const char *text)
{
    unsigned n = 0;
    for (guint i = 0; i < lines->len; i++)
        n += strstr(lines->pdata[i], text) != NULL;
    return n;
}

/* Review: a hung resource takes every request it holds along, and any user
 * can send from a JID the encoding cannot write: neither floods the log. */
static void router__limits_the_lines_about_each_request_that_fails(void **state)
{
    fixture_t *f = *state;
    GPtrArray *lines = g_ptr_array_new_with_free_func(g_free);
    log_set_sink(count_line, lines);
    online(f, "worker-1");
    fake_world.fail_encode = true;
    for (int i = 0; i < 100; i++)
        receive(f, "<message from='user%d@example.org/x' to='" DOMAIN "'><body>hi</body>"
                   "</message>", i);
    assert_int_equal(lines_with(lines, "cannot encode"), LOG_LIMIT_BURST);

    fake_world.fail_encode = false;
    for (int i = 0; i < 100; i++) {
        g_autofree char *id = g_strdup_printf("q%d", i);
        request(f, id);
    }
    router_expire(f->router, g_get_monotonic_time() + 31 * G_USEC_PER_SEC);
    assert_int_equal(router_pending_count(f->router), 0);
    assert_int_equal(lines_with(lines, "timed out on"), LOG_LIMIT_BURST);
    log_set_sink(NULL, NULL);
    g_ptr_array_free(lines, TRUE);
}

/* Issue 13: what the router did shows in the exposition text. */
static void router__counts_requests_by_direction_and_outcome(void **state)
{
    fixture_t *f = *state;
    receive(f, "<iq type='get' id='n1' from='" ALICE "' to='" DOMAIN "'><q xmlns='urn:x'/></iq>");
    online(f, "worker-1");
    request(f, "q1");
    receive(f, "<iq type='result' id='q1' from='" TARGET "/worker-1' to='" DOMAIN "/t1'/>");
    request(f, "q2");
    receive(f, "<iq type='result' id='nope' from='" TARGET "/worker-1' to='" DOMAIN "/t9'/>");
    receive(f, "<message type='chat' id='m1' from='" ALICE "' to='" DOMAIN "'><body>x</body>"
               "</message>");
    GString *text = g_string_new(NULL);
    GArray *storage = g_array_new(FALSE, FALSE, sizeof(metrics_resource_t));
    metrics_snapshot_t snapshot;
    router_snapshot(f->router, &snapshot, storage);
    metrics_render(f->metrics, &snapshot, text);
    const char *const expected[] = {
        "client_proxy_requests_total{direction=\"inbound\",outcome=\"result\"} 1\n",
        "client_proxy_requests_total{direction=\"inbound\",outcome=\"service-unavailable\"} 1\n",
        "client_proxy_requests_in_flight{direction=\"inbound\"} 1\n",
        "client_proxy_resources{state=\"online\"} 1\n",
        "client_proxy_resource_requests_in_flight{resource=\"worker-1\"} 1\n",
        "client_proxy_messages_total{direction=\"inbound\",outcome=\"forwarded\"} 1\n",
        "client_proxy_dropped_stanzas_total{reason=\"no_request_in_flight\"} 1\n",
        "client_proxy_request_duration_seconds_count{direction=\"inbound\"} 1\n",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(expected); i++)
        if (!strstr(text->str, expected[i]))
            fail_msg("no \"%s\" in:\n%s", expected[i], text->str);
    g_array_free(storage, TRUE);
    g_string_free(text, TRUE);
}

int main(void)
{

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(router_connected__probes_then_subscribes_then_announces),
        T(router__counts_requests_by_direction_and_outcome),
        T(router__limits_the_lines_about_each_request_that_fails),
        cmocka_unit_test_setup_teardown(router__holds_requests_until_a_resource_comes_online,
                                        setup_with_hold, teardown),
        cmocka_unit_test_setup_teardown(router__answers_service_unavailable_when_the_hold_runs_out,
                                        setup_with_hold, teardown),
        cmocka_unit_test_setup_teardown(router__answers_held_requests_when_it_stops,
                                        setup_with_hold, teardown),
        cmocka_unit_test_setup_teardown(
            router__places_no_held_request_while_it_stops_or_loses_the_stream, setup_with_hold,
            teardown),
        T(router__tries_another_resource_when_one_did_not_process_a_request),
        T(router__passes_on_the_second_refusal_and_any_other_error),
        cmocka_unit_test_setup_teardown(router__benches_a_resource_that_keeps_refusing,
                                        setup_with_refusal_bench, teardown),
        cmocka_unit_test_setup_teardown(
            router__benches_nobody_for_a_request_every_resource_refuses, setup_with_refusal_bench,
            teardown),
        cmocka_unit_test_setup_teardown(router__discovers_resources_by_ping_without_a_subscription,
                                        setup_with_ping_discovery, teardown),
        cmocka_unit_test_setup_teardown(
            router__tells_its_timer_the_next_deadline_after_a_reconfigure,
            setup_with_ping_discovery, teardown),
        T(router__sends_the_services_message_to_the_user_from_the_bare_domain),
        T(router__routes_a_bounce_back_to_the_resource_that_sent_the_message),
        T(router__drops_the_bounce_of_a_users_message),
        T(router__treats_a_strangers_stanza_to_an_address_as_the_strangers_own),
        cmocka_unit_test_setup_teardown(
            router__keeps_resources_the_filter_leaves_out_from_writing_to_users, setup_with_filter,
            teardown),
        T(router__sends_the_services_request_to_the_user_and_its_answer_back),
        T(router__answers_the_service_once_when_its_request_gets_no_answer),
        T(router__answers_item_not_found_for_an_address_nobody_has),
        T(router__tells_subscribed_users_when_the_service_comes_and_goes),
        T(router__answers_service_unavailable_for_a_user_at_the_domain),
        T(router__answers_on_the_next_stream_what_came_while_this_one_closed),
        T(router__answers_service_unavailable_to_requests_while_stopping),
        T(router__keeps_held_answers_across_a_reload_that_changes_the_stream),
        T(router__sends_on_the_next_stream_what_a_dying_stream_never_wrote),
        T(router__drops_the_requests_a_dying_stream_never_wrote_and_keeps_its_answers),
        T(router__forwards_a_request_to_a_resource_from_the_token),
        T(router__forwards_requests_to_any_resource_of_the_domain),
        T(router__routes_the_reply_to_the_sender_from_the_bare_domain),
        T(router__routes_an_error_reply_too),
        T(router__answers_service_unavailable_when_no_resource_is_online),
        T(router__answers_service_unavailable_when_the_strategy_declines),
        T(router__answers_an_error_when_the_sender_cannot_be_encoded),
        T(router__fails_at_once_when_the_chosen_resource_goes_offline),
        T(router__times_out_and_then_drops_the_late_reply),
        T(router__drops_a_reply_with_a_forged_token),
        T(router__drops_a_reply_from_anyone_but_the_resource_asked),
        T(router__drops_a_reply_to_another_senders_token),
        T(router__refuses_a_second_request_with_an_id_in_flight_whatever_the_encoding),
        T(router__refuses_malformed_requests),
        T(router__answers_requests_and_replies_too_large_to_relay),
        T(router__answers_feature_not_implemented_to_the_targets_requests),
        T(router__forwards_a_users_message_to_one_resource_and_never_answers_errors),
        T(router__tracks_presence_show_and_priority),
        T(router__presence_error_from_a_resource_removes_that_resource_only),
        T(router__presence_error_from_the_target_asks_again_with_backoff),
        T(router__approves_the_targets_subscription_and_answers_its_probe),
        T(router_shutdown__answers_every_request_then_says_goodbye),
        T(router_disconnected__answers_in_flight_requests_once_reconnected),
        T(router__never_offers_a_draining_resource),
        cmocka_unit_test_setup_teardown(router__offers_only_resources_that_match_the_filter,
                                        setup_with_filter, teardown),
        T(router__retries_a_get_once_on_another_resource),
        T(router__routes_the_reply_of_a_retried_get),
        T(router__never_retries_a_set),
        cmocka_unit_test_setup_teardown(router__does_not_retry_when_told_not_to,
                                        setup_no_retry, teardown),
        cmocka_unit_test_setup_teardown(router__uses_its_instance_domain_for_what_must_come_back,
                                        setup_instance_domain, teardown),
        cmocka_unit_test_setup_teardown(router__benches_a_silent_resource_until_it_answers_a_ping,
                                        setup_bench_after_two, teardown),
        cmocka_unit_test_setup_teardown(router__pings_a_benched_resource_again_until_it_answers,
                                        setup_bench_after_two, teardown),
        cmocka_unit_test_setup_teardown(router__answers_resource_constraint_beyond_the_bound,
                                        setup_one_in_flight, teardown),
        cmocka_unit_test_setup_teardown(router__answers_policy_violation_beyond_the_rate,
                                        setup_rate_limited, teardown),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
