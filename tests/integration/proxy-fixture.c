/* The fixture of the forward, dispatch, routing and lifecycle tests
 * (proxy-fixture.h): their suite, setups and teardown, and the request
 * helpers and checks they share. */
#include "proxy-fixture.h"

#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

/* ---- suite ---------------------------------------------------------------- */

bool px_suite_start(px_suite_t *suite)
{
    if (!g_file_test(hx_proxy_bin(), G_FILE_TEST_IS_EXECUTABLE)) {
        fprintf(stderr, "CLIENT_PROXY_BIN (%s) is not an executable\n", hx_proxy_bin());
        return false;
    }
    suite->hx = hx_new();
    return hx_prosody_start(hx_prosody_new(suite->hx));
}

void px_suite_stop(px_suite_t *suite)
{
    hx_free(suite->hx);
    suite->hx = NULL;
}

/* ---- client-proxy --------------------------------------------------------- */

void px_dump_log(px_fixture_t *fx)
{
    g_autofree char *log = fx->proxy ? hx_proxy_log(fx->proxy) : g_strdup("");
    fprintf(stderr, "---- client-proxy stderr ----\n%s-----------------------------\n", log);
}

bool px_wait_ready(px_fixture_t *fx, hx_client_t *user, hx_client_t **workers, int timeout_ms)
{
    gint64 end = hx_now_ms() + timeout_ms;
    unsigned before[4] = {0};
    for (int i = 0; workers[i]; i++)
        before[i] = hx_requests_seen(workers[i]);
    /* dispatch-sticky sends all of one user's requests to one resource:
     * there, a resource counts as known once the log names it. */
    bool sticky = strcmp(fx->suite->dispatch, "sticky") == 0;
    for (;;) {
        bool all = true;
        g_autofree char *log = sticky ? hx_proxy_log(fx->proxy) : NULL;
        for (int i = 0; workers[i]; i++)
            all = all && (hx_requests_seen(workers[i]) > before[i] ||
                          (sticky && strstr(log, hx_client_jid(workers[i]))));
        if (all)
            return true;
        if (hx_now_ms() >= end)
            return false;
        xmpp_stanza_t *r =
            hx_iq(user, HX_DOMAIN, "get", "<ping xmlns='urn:xmpp:ping'/>", 1000);
        if (!r || strcmp(xmpp_stanza_get_type(r), "error") == 0)
            hx_pump(fx->hx, 50);
    }
}

int px_start_proxy(px_fixture_t *fx, int request_timeout)
{
    const char *encoding = fx->suite->encoding;
    hx_proxy_opts_t o = {.encoding = encoding,
                         .dispatch = fx->suite->dispatch,
                         .request_timeout = request_timeout};
    g_autofree char *key_group = NULL;
    if (strcmp(encoding, "hmac") == 0 || strcmp(encoding, "sealed") == 0) {
        /* Exercise the key file: one key with an ID, mode 0600. */
        g_autofree char *key = hx_write_file(
            fx->hx, "encoding.key",
            "k1 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", 0600);
        key_group = g_strdup_printf("\n[encoding:%s]\nkey_file = %s\n", encoding, key);
    }
    /* The suite's [proxy] lines follow the harness's own [proxy] lines. */
    g_autofree char *extra = g_strconcat(fx->suite->proxy_lines ? fx->suite->proxy_lines : "",
                                         key_group ? key_group : "", NULL);
    o.extra = extra;
    fx->proxy = hx_proxy_start(fx->hx, &o);
    if (!fx->proxy)
        return -1;
    if (fx->w1 && !px_wait_ready(fx, fx->alice, fx->workers, 8000)) {
        fprintf(stderr, "client-proxy never forwarded to both workers\n");
        px_dump_log(fx);
        return -1;
    }
    return 0;
}

int px_stop_proxy_checked(px_fixture_t *fx)
{
    if (!fx->proxy)
        return 0;
    bool was_running = hx_proxy_running(fx->proxy);
    int status = was_running ? hx_proxy_stop(fx->proxy) : hx_proxy_wait_exit(fx->proxy, 0);
    g_autofree char *log = hx_proxy_log(fx->proxy);
    g_autofree char *report = hx_memcheck_report(log); /* sanitizers, valgrind */
    bool bad_exit = was_running && !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (report || bad_exit) {
        fprintf(stderr, "client-proxy did not stop cleanly (wait status 0x%x)\n",
                (unsigned)status);
        px_dump_log(fx);
        return -1;
    }
    return 0;
}

/* ---- fixtures ------------------------------------------------------------- */

int px_teardown(void **state)
{
    px_fixture_t *fx = *state;
    if (!fx)
        return 0;
    int rc = px_stop_proxy_checked(fx);
    hx_proxy_free(fx->proxy);
    hx_client_free(fx->w1);
    hx_client_free(fx->w2);
    hx_client_free(fx->alice);
    hx_client_free(fx->bob);
    hx_client_free(fx->other);
    /* A test that stopped the suite's Prosody and failed before it started
     * it again: the next test expects it up. */
    hx_prosody_t *prosody = hx_prosody(fx->hx);
    if (hx_prosody_pid(prosody) == 0 && !hx_prosody_start(prosody))
        rc = -1;
    *state = fx->suite;
    g_free(fx);
    return rc;
}

/* The fixture with WORKERS and USERS connected and, unless REQUEST_TIMEOUT
 * is 0, client-proxy started.  A setup that fails frees what it made:
 * cmocka runs no teardown then, and the next test must not meet it. */
static int setup_with(void **state, bool workers, bool users, int request_timeout)
{
    px_fixture_t *fx = g_new0(px_fixture_t, 1);
    fx->suite = *state;
    fx->hx = fx->suite->hx;
    *state = fx;
    bool connected = true;
    if (workers) {
        fx->w1 = hx_client_connect(fx->hx, "service", "worker-1", true);
        fx->w2 = hx_client_connect(fx->hx, "service", "worker-2", true);
        fx->workers[0] = fx->w1;
        fx->workers[1] = fx->w2;
        connected = fx->w1 && fx->w2;
    }
    if (users) {
        fx->alice = hx_client_connect(fx->hx, "alice", "desk", false);
        fx->bob = hx_client_connect(fx->hx, "bob", "phone", false);
        connected = connected && fx->alice && fx->bob;
    }
    if (connected && (request_timeout == 0 || px_start_proxy(fx, request_timeout) == 0))
        return 0;
    px_teardown(state);
    return -1;
}

int px_setup(void **state)
{
    return setup_with(state, true, true, PX_TIMEOUT_S);
}

int px_setup_long(void **state)
{
    return setup_with(state, true, true, PX_LONG_TIMEOUT_S);
}

int px_setup_users(void **state)
{
    return setup_with(state, false, true, PX_TIMEOUT_S);
}

int px_setup_bare(void **state)
{
    return setup_with(state, false, false, 0);
}

/* ---- requests and replies ------------------------------------------------- */

char *px_echo_payload(const char *text)
{
    return g_strdup_printf("<echo xmlns='urn:example:echo' n='1'>%s"
                           "<nested a='b'>deep</nested></echo>",
                           text);
}

void px_assert_error(xmpp_stanza_t *st, const char *expected)
{
    g_autofree char *text = hx_text(st);
    if (!st)
        fail_msg("expected an error %s, got nothing", expected);
    g_autofree char *err = hx_error_of(st);
    if (!err || strcmp(err, expected) != 0 || strcmp(xmpp_stanza_get_type(st), "error") != 0)
        fail_msg("expected error %s, got %s", expected, text);
}

void px_hold_all(px_fixture_t *fx)
{
    hx_client_set_mode(fx->w1, HX_HOLD);
    hx_client_set_mode(fx->w2, HX_HOLD);
}

/* The token in a `from` of DOMAIN/TOKEN. */
static const char *token_of(const char *from)
{
    size_t n = strlen(HX_DOMAIN);
    if (!from || strncmp(from, HX_DOMAIN "/", n + 1) != 0)
        return NULL;
    return from + n + 1;
}

static xmpp_stanza_t *find_request(hx_client_t *w, const char *id)
{
    for (unsigned i = 0; i < hx_requests_seen(w); i++) {
        xmpp_stanza_t *r = hx_request_seen(w, i);
        if (strcmp(xmpp_stanza_get_id(r), id) == 0)
            return r;
    }
    return NULL;
}

char *px_forward_once(px_fixture_t *fx, hx_client_t *user, const char *type, const char *to,
                      const char *text)
{
    unsigned seen1 = hx_requests_seen(fx->w1), seen2 = hx_requests_seen(fx->w2);
    g_autofree char *payload = px_echo_payload(text);
    g_autofree char *id = hx_iq_send(user, to, type, payload);
    xmpp_stanza_t *r = hx_wait_reply(user, id, PX_REPLY_MS);
    g_autofree char *rtext = hx_text(r);
    if (!r)
        fail_msg("no reply to %s", id);
    if (strcmp(xmpp_stanza_get_type(r), "result") != 0)
        fail_msg("expected a result, got %s", rtext);

    /* The user's leg: from the bare domain, same id, payload echoed. */
    assert_string_equal(xmpp_stanza_get_from(r), HX_DOMAIN);
    assert_string_equal(xmpp_stanza_get_to(r), hx_client_jid(user));
    assert_string_equal(xmpp_stanza_get_id(r), id);
    const char *echoed = hx_echo_text(r);
    assert_non_null(echoed);
    assert_string_equal(echoed, text);
    assert_string_equal(hx_child_attr(r, "nested", NULL, "a"), "b");
    assert_string_equal(hx_child_attr(r, "echo", HX_ECHO_NS, "n"), "1");

    /* The worker's leg: exactly one worker got it, to its full JID, from
     * DOMAIN/TOKEN, with the same id, type and payload. */
    const char *handled_by = hx_child_attr(r, "handled-by", HX_ECHO_NS, "resource");
    assert_non_null(handled_by);
    bool by1 = strcmp(handled_by, "worker-1") == 0;
    hx_client_t *w = by1 ? fx->w1 : fx->w2;
    assert_int_equal(hx_requests_seen(fx->w1) - seen1 + hx_requests_seen(fx->w2) - seen2, 1);
    xmpp_stanza_t *req = find_request(w, id);
    g_autofree char *req_text = hx_text(req);
    if (!req)
        fail_msg("%s did not see request %s", handled_by, id);
    assert_string_equal(xmpp_stanza_get_to(req), hx_client_jid(w));
    assert_string_equal(xmpp_stanza_get_type(req), type);
    const char *token = token_of(xmpp_stanza_get_from(req));
    if (!token || !*token)
        fail_msg("the worker saw no DOMAIN/TOKEN sender: %s", req_text);
    const char *req_echo = hx_echo_text(req);
    assert_string_equal(req_echo, text);
    assert_string_equal(hx_child_attr(req, "nested", NULL, "a"), "b");
    assert_string_equal(hx_child_attr(r, "handled-by", HX_ECHO_NS, "from"),
                        xmpp_stanza_get_from(req));
    /* Exactly one reply. */
    hx_pump(fx->hx, 100);
    assert_int_equal(hx_count_id(user, id), 1);
    return g_strdup(token);
}

char *px_expect_dropped(px_fixture_t *fx, hx_client_t *from, xmpp_stanza_t *req, const char *to)
{
    size_t mark = hx_proxy_log_mark(fx->proxy);
    hx_answer(from, req, to);
    char *line = hx_proxy_wait_log(fx->proxy, mark, "drop", HX_LOG_WAIT_MS);
    if (!line) {
        px_dump_log(fx);
        fail_msg("a reply from %s to %s was not logged as dropped", hx_client_jid(from), to);
    }
    return line;
}

/* ---- checks that the forward and dispatch tests both run ------------------ */

void px_check_forwarding(px_fixture_t *fx)
{
    const char *encoding = fx->suite->encoding;
    g_autofree char *ta = px_forward_once(fx, fx->alice, "get", HX_DOMAIN, "hello");
    g_free(px_forward_once(fx, fx->alice, "set", HX_DOMAIN, "set it"));
    g_free(px_forward_once(fx, fx->alice, "get", HX_DOMAIN "/any-resource", "via resource"));
    g_autofree char *tb = px_forward_once(fx, fx->bob, "get", HX_DOMAIN, "from bob");

    if (strcmp(encoding, "raw") == 0) {
        assert_string_equal(ta, hx_client_jid(fx->alice));
        assert_string_equal(tb, hx_client_jid(fx->bob));
    } else {
        assert_null(strstr(ta, "alice"));
        assert_null(strstr(tb, "bob"));
        if (strcmp(encoding, "hmac") == 0 || strcmp(encoding, "opaque") == 0 ||
            strcmp(encoding, "sealed") == 0)
            assert_null(strstr(ta, "localhost"));
    }
    assert_string_not_equal(ta, tb);
}

void px_check_set_fails_when_its_resource_leaves(px_fixture_t *fx, bool disconnect)
{
    px_hold_all(fx);
    g_autofree char *payload = px_echo_payload("held");
    g_autofree char *id = hx_iq_send(fx->alice, HX_DOMAIN, "set", payload);
    hx_client_t *holder = NULL;
    xmpp_stanza_t *req = hx_take_request(fx->workers, &holder, PX_REPLY_MS);
    assert_non_null(req);
    if (disconnect)
        hx_client_disconnect(holder);
    else
        hx_send_presence(holder, "unavailable", NULL, NULL);
    /* service-unavailable, not the remote-server-timeout request_timeout
     * would give: the resource's leaving ended the request. */
    xmpp_stanza_t *r = hx_wait_reply(fx->alice, id, PX_LONG_TIMEOUT_S * 1000);
    px_assert_error(r, "cancel/service-unavailable");
    assert_string_equal(xmpp_stanza_get_from(r), HX_DOMAIN);
    hx_pump(fx->hx, 300);
    assert_int_equal(hx_count_id(fx->alice, id), 1);
}

void px_check_wrong_sender_dropped(px_fixture_t *fx)
{
    px_hold_all(fx);
    g_autofree char *id =
        hx_iq_send(fx->alice, HX_DOMAIN, "get", "<echo xmlns='urn:example:echo'>a</echo>");
    hx_client_t *holder = NULL;
    xmpp_stanza_t *req = hx_take_request(fx->workers, &holder, PX_REPLY_MS);
    assert_non_null(req);
    hx_client_t *other = holder == fx->w1 ? fx->w2 : fx->w1;

    /* The other resource of the target, with the right token and id. */
    g_autofree char *l1 = px_expect_dropped(fx, other, req, NULL);
    /* A user who is not the target at all. */
    g_autofree char *l2 = px_expect_dropped(fx, fx->bob, req, NULL);
    print_message("logged: %s\n        %s\n", l1, l2);

    xmpp_stanza_t *r = hx_wait_reply(fx->alice, id, PX_TIMEOUT_S * 1000 + 3000);
    px_assert_error(r, "wait/remote-server-timeout");
    hx_pump(fx->hx, 200);
    assert_int_equal(hx_count_id(fx->alice, id), 1);
}
