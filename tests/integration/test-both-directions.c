/* Both directions through client-proxy with one encoding, against a real
 * Prosody (issue 11): messages each way, the service writing first to an
 * address it received earlier, the service's own requests to users (online
 * and offline), a stranger writing to someone's address, and the service's
 * presence as resources come and go.
 *
 *   test-both-directions ENCODING    (raw, base32, hmac, opaque, sealed)
 *
 * The fixture (proxy-fixture.h): workers service@localhost/worker-1 and
 * /worker-2 inside this process, users alice and bob.  Addresses live
 * ADDRESS_LIFETIME_S here instead of a day.
 */
#include "proxy-fixture.h"

#include <stdio.h>
#include <string.h>

#define ADDRESS_LIFETIME_S 3

/* Whether anyone can write this encoding's addresses (no key, no state). */
static bool writable_by_anyone(const char *encoding)
{
    return strcmp(encoding, "raw") == 0 || strcmp(encoding, "base32") == 0;
}

/* ALICE writes to the service; returns the worker that got the message and
 * the address it came from (g_free it). */
static char *alice_writes(px_fixture_t *fx, const char *body, hx_client_t **worker)
{
    unsigned m1 = hx_received_count(fx->w1), m2 = hx_received_count(fx->w2);
    g_autofree char *xml = g_strdup_printf(
        "<message type='chat' id='a-%s' to='" HX_DOMAIN "'><body>%s</body>"
        "<thread>th-1</thread><mood xmlns='http://jabber.org/protocol/mood'><happy/></mood>"
        "</message>",
        body, body);
    hx_send_xml(fx->alice, xml);
    xmpp_stanza_t *got = NULL;
    for (int i = 0; i < 60 && !got; i++) {
        got = hx_wait_stanza(fx->w1, m1, "message", "chat", NULL, 50);
        *worker = fx->w1;
        if (!got) {
            got = hx_wait_stanza(fx->w2, m2, "message", "chat", NULL, 50);
            *worker = fx->w2;
        }
    }
    assert_non_null(got);
    const char *from = xmpp_stanza_get_from(got);
    assert_true(g_str_has_prefix(from, HX_DOMAIN "/"));
    /* Body, thread and every extension element pass unchanged. */
    char *text = xmpp_stanza_get_text(xmpp_stanza_get_child_by_name(got, "body"));
    assert_string_equal(text, body);
    xmpp_free(hx_ctx(fx->hx), text);
    assert_non_null(xmpp_stanza_get_child_by_name(got, "thread"));
    assert_non_null(
        xmpp_stanza_get_child_by_name_and_ns(got, "mood", "http://jabber.org/protocol/mood"));
    return g_strdup(from);
}

/* WORKER writes BODY to ADDRESS (domain/token). */
static void worker_writes(hx_client_t *worker, const char *address, const char *body)
{
    g_autofree char *xml = g_strdup_printf(
        "<message type='chat' id='w-%s' to='%s'><body>%s</body>"
        "<x xmlns='urn:example:extension' k='v'/></message>",
        body, address, body);
    hx_send_xml(worker, xml);
}

/* USER gets BODY from the bare domain, intact. */
static void assert_user_gets(px_fixture_t *fx, hx_client_t *user, unsigned mark,
                             const char *body)
{
    xmpp_stanza_t *got = hx_wait_stanza(user, mark, "message", "chat", HX_DOMAIN, PX_REPLY_MS);
    assert_non_null(got);
    assert_string_equal(xmpp_stanza_get_from(got), HX_DOMAIN);
    char *text = xmpp_stanza_get_text(xmpp_stanza_get_child_by_name(got, "body"));
    assert_string_equal(text, body);
    xmpp_free(hx_ctx(fx->hx), text);
    assert_non_null(xmpp_stanza_get_child_by_name_and_ns(got, "x", "urn:example:extension"));
}

static void both__a_user_and_the_service_exchange_messages_intact(void **state)
{
    px_fixture_t *fx = *state;
    hx_client_t *worker;
    g_autofree char *address = alice_writes(fx, "hello-service", &worker);
    if (strcmp(fx->suite->encoding, "raw") == 0)
        assert_string_equal(address, HX_DOMAIN "/alice@localhost/desk");
    unsigned mark = hx_received_count(fx->alice);
    worker_writes(worker, address, "hello-alice");
    assert_user_gets(fx, fx->alice, mark, "hello-alice");
}

/* An address stays valid for address_lifetime after it was given out: the
 * service can write first, later.  After it, only the encodings anyone can
 * write still reach the user. */
static void both__the_service_writes_first_to_an_address_it_received_earlier(void **state)
{
    px_fixture_t *fx = *state;
    g_autofree char *token = px_forward_once(fx, fx->alice, "get", HX_DOMAIN, "remember-me");
    g_autofree char *address = g_strdup_printf(HX_DOMAIN "/%s", token);
    hx_pump(fx->hx, (ADDRESS_LIFETIME_S - 2) * 1000); /* "an hour later" */
    unsigned mark = hx_received_count(fx->alice);
    worker_writes(fx->w1, address, "still-there");
    assert_user_gets(fx, fx->alice, mark, "still-there");

    hx_pump(fx->hx, (ADDRESS_LIFETIME_S + 1) * 1000);
    mark = hx_received_count(fx->alice);
    unsigned worker_mark = hx_received_count(fx->w1);
    worker_writes(fx->w1, address, "too-late");
    if (writable_by_anyone(fx->suite->encoding)) {
        assert_user_gets(fx, fx->alice, mark, "too-late");
    } else {
        xmpp_stanza_t *bounce =
            hx_wait_stanza(fx->w1, worker_mark, "message", "error", HX_DOMAIN, PX_REPLY_MS);
        assert_non_null(bounce);
        px_assert_error(bounce, "cancel/item-not-found");
        assert_string_equal(xmpp_stanza_get_from(bounce), address);
    }
}

/* The IQ get that ALICE received after *MARK, from the bare domain; *MARK
 * moves past it. */
static xmpp_stanza_t *alice_request(px_fixture_t *fx, unsigned *mark)
{
    xmpp_stanza_t *got = hx_wait_stanza(fx->alice, *mark, "iq", "get", HX_DOMAIN, PX_REPLY_MS);
    assert_non_null(got);
    assert_string_equal(xmpp_stanza_get_from(got), HX_DOMAIN);
    while (hx_received(fx->alice, *mark) != got)
        (*mark)++;
    (*mark)++;
    return got;
}

static void both__the_service_asks_a_user_and_gets_the_answer_with_its_own_id(void **state)
{
    px_fixture_t *fx = *state;
    g_autofree char *token = px_forward_once(fx, fx->alice, "get", HX_DOMAIN, "learn-me");
    g_autofree char *address = g_strdup_printf(HX_DOMAIN "/%s", token);
    unsigned mark = hx_received_count(fx->alice);
    /* Two resources with the same id: client-proxy's own ids keep them
     * apart. */
    g_autofree char *xml1 = g_strdup_printf("<iq type='get' id='same' to='%s'>"
                                            "<query xmlns='jabber:iq:version'/></iq>",
                                            address);
    hx_send_xml(fx->w1, xml1);
    hx_send_xml(fx->w2, xml1);
    for (int n = 0; n < 2; n++) {
        xmpp_stanza_t *asked = alice_request(fx, &mark);
        assert_string_not_equal(xmpp_stanza_get_id(asked), "same");
        g_autofree char *reply = g_strdup_printf(
            "<iq type='result' id='%s' to='" HX_DOMAIN "'><query xmlns='jabber:iq:version'>"
            "<name>alice's client %d</name></query></iq>",
            xmpp_stanza_get_id(asked), n);
        hx_send_xml(fx->alice, reply);
    }
    hx_client_t *workers[] = {fx->w1, fx->w2};
    for (int i = 0; i < 2; i++) {
        xmpp_stanza_t *answer = hx_wait_reply(workers[i], "same", PX_REPLY_MS);
        assert_non_null(answer);
        assert_string_equal(xmpp_stanza_get_type(answer), "result");
        assert_string_equal(xmpp_stanza_get_from(answer), address);
        assert_non_null(xmpp_stanza_get_child_by_name_and_ns(answer, "query", "jabber:iq:version"));
        hx_pump(fx->hx, 100);
        assert_int_equal(hx_count_id(workers[i], "same"), 1);
    }
}

static void both__the_service_asking_an_offline_user_gets_an_error(void **state)
{
    px_fixture_t *fx = *state;
    g_autofree char *token = px_forward_once(fx, fx->alice, "get", HX_DOMAIN, "then-leave");
    g_autofree char *address = g_strdup_printf(HX_DOMAIN "/%s", token);
    hx_client_disconnect(fx->alice);
    hx_pump(fx->hx, 300);
    g_autofree char *xml = g_strdup_printf("<iq type='get' id='gone' to='%s'>"
                                           "<ping xmlns='urn:xmpp:ping'/></iq>",
                                           address);
    hx_send_xml(fx->w1, xml);
    xmpp_stanza_t *answer = hx_wait_reply(fx->w1, "gone", PX_REPLY_MS);
    assert_non_null(answer);
    assert_string_equal(xmpp_stanza_get_type(answer), "error");
    assert_string_equal(xmpp_stanza_get_from(answer), address);
    hx_pump(fx->hx, 200);
    assert_int_equal(hx_count_id(fx->w1, "gone"), 1);
}

/* No open relay: bob writing to alice's address reaches the service, as
 * bob, and alice gets nothing. */
static void both__a_stranger_writing_to_an_address_reaches_the_service(void **state)
{
    px_fixture_t *fx = *state;
    g_autofree char *token = px_forward_once(fx, fx->alice, "get", HX_DOMAIN, "mine");
    g_autofree char *address = g_strdup_printf(HX_DOMAIN "/%s", token);
    unsigned alice_mark = hx_received_count(fx->alice);
    unsigned m1 = hx_received_count(fx->w1), m2 = hx_received_count(fx->w2);
    g_autofree char *xml = g_strdup_printf(
        "<message type='chat' id='relay' to='%s'><body>relay me</body></message>", address);
    hx_send_xml(fx->bob, xml);
    xmpp_stanza_t *got = NULL;
    for (int i = 0; i < 60 && !got; i++) {
        got = hx_wait_stanza(fx->w1, m1, "message", "chat", NULL, 50);
        if (!got)
            got = hx_wait_stanza(fx->w2, m2, "message", "chat", NULL, 50);
    }
    assert_non_null(got);
    assert_string_not_equal(xmpp_stanza_get_from(got), address);
    if (strcmp(fx->suite->encoding, "raw") == 0)
        assert_string_equal(xmpp_stanza_get_from(got), HX_DOMAIN "/bob@localhost/phone");
    hx_pump(fx->hx, 300);
    assert_null(hx_wait_stanza(fx->alice, alice_mark, "message", NULL, NULL, 1));
}

/* With raw, whose addresses anyone can write, the service may write to a
 * user it never heard from. */
static void both__the_service_writes_to_a_user_it_never_heard_from(void **state)
{
    px_fixture_t *fx = *state;
    if (!writable_by_anyone(fx->suite->encoding))
        skip();
    const char *address = strcmp(fx->suite->encoding, "raw") == 0
                              ? HX_DOMAIN "/bob@localhost/phone"
                              : HX_DOMAIN "/mjxweqdmn5rwc3din5zxil3qnbxw4zi"; /* base32 of bob@localhost/phone */
    unsigned mark = hx_received_count(fx->bob);
    worker_writes(fx->w1, address, "out-of-the-blue");
    assert_user_gets(fx, fx->bob, mark, "out-of-the-blue");
}

static bool presence_from_domain(hx_client_t *c, unsigned mark, const char *type)
{
    return hx_wait_stanza(c, mark, "presence", type, HX_DOMAIN, PX_REPLY_MS) != NULL;
}

/* A user who subscribes hears the service's presence, and hears it change
 * as resources come and go. */
static void both__a_subscribed_user_sees_the_service_come_and_go(void **state)
{
    px_fixture_t *fx = *state;
    /* Like any client: the roster first, then available, so that the
     * server delivers presence to this resource. */
    assert_non_null(hx_iq(fx->alice, "alice@localhost", "get", "<query xmlns='jabber:iq:roster'/>",
                          PX_REPLY_MS));
    hx_send_presence(fx->alice, NULL, NULL, NULL);
    unsigned mark = hx_received_count(fx->alice);
    hx_send_presence(fx->alice, "subscribe", NULL, HX_DOMAIN);
    assert_true(presence_from_domain(fx->alice, mark, "available"));

    mark = hx_received_count(fx->alice);
    hx_send_presence(fx->w1, "unavailable", NULL, NULL);
    hx_pump(fx->hx, 300);
    assert_null(hx_wait_stanza(fx->alice, mark, "presence", "unavailable", HX_DOMAIN, 1));
    hx_send_presence(fx->w2, "unavailable", NULL, NULL);
    assert_true(presence_from_domain(fx->alice, mark, "unavailable"));

    mark = hx_received_count(fx->alice);
    hx_send_presence(fx->w2, NULL, NULL, NULL);
    assert_true(presence_from_domain(fx->alice, mark, "available"));
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s ENCODING\n", argv[0]);
        return 2;
    }
    g_autofree char *lines = g_strdup_printf("address_lifetime = %d\n", ADDRESS_LIFETIME_S);
    px_suite_t suite = {.encoding = argv[1], .dispatch = "random", .proxy_lines = lines};
    const struct CMUnitTest tests[] = {
        PX_TEST(both__a_user_and_the_service_exchange_messages_intact, &suite),
        PX_TEST(both__the_service_writes_first_to_an_address_it_received_earlier, &suite),
        PX_TEST(both__the_service_asks_a_user_and_gets_the_answer_with_its_own_id, &suite),
        PX_TEST(both__the_service_asking_an_offline_user_gets_an_error, &suite),
        PX_TEST(both__a_stranger_writing_to_an_address_reaches_the_service, &suite),
        PX_TEST(both__the_service_writes_to_a_user_it_never_heard_from, &suite),
        PX_TEST(both__a_subscribed_user_sees_the_service_come_and_go, &suite),
    };
    if (!px_suite_start(&suite)) {
        px_suite_stop(&suite);
        return 1;
    }
    g_autofree char *name = g_strdup_printf("both-%s", suite.encoding);
    int rc = cmocka_run_group_tests_name(name, tests, NULL, NULL);
    px_suite_stop(&suite);
    return rc;
}
