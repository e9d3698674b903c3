/* client-proxy against a real Prosody.
 *
 *   test-proxy forward ENCODING   forwarding and replies, with one encoding
 *   test-proxy dispatch NAME      forwarding with one dispatch plugin, and
 *                                 the choice its README entry promises
 *   test-proxy routing            what is not forwarded, and presence
 *   test-proxy lifecycle          signals, stream errors, reconnects, examples
 *   test-proxy check-config       --check-config, --version, --help
 *
 * The target account service@localhost runs two resources, worker-1 and
 * worker-2, inside this process (harness.h); the users are alice and bob.
 * CLIENT_PROXY_BIN and CLIENT_PROXY_PLUGIN_PATH come from meson.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define TIMEOUT_S 2       /* request_timeout for most tests */
#define LONG_TIMEOUT_S 10 /* where a reply must come well before it */
#define REPLY_MS 3000     /* how long to wait for a reply that must come */

static const char *g_encoding = "raw";
static const char *g_dispatch = "random";

typedef struct {
    hx_client_t *w1, *w2; /* service@localhost/worker-1, /worker-2 */
    hx_client_t *alice, *bob;
    hx_client_t *workers[3];
} fx_t;

/* ---- helpers -------------------------------------------------------------- */

static char *echo_payload(const char *text)
{
    return g_strdup_printf("<echo xmlns='urn:example:echo' n='1'>%s"
                           "<nested a='b'>deep</nested></echo>",
                           text);
}

static void assert_error(xmpp_stanza_t *st, const char *expected)
{
    g_autofree char *text = hx_text(st);
    if (!st)
        fail_msg("expected an error %s, got nothing", expected);
    g_autofree char *err = hx_error_of(st);
    if (!err || strcmp(err, expected) != 0 ||
        strcmp(xmpp_stanza_get_type(st), "error") != 0)
        fail_msg("expected error %s, got %s", expected, text);
}

static void dump_log_on_failure(void)
{
    g_autofree char *log = hx_proxy_log();
    fprintf(stderr, "---- client-proxy stderr ----\n%s-----------------------------\n",
            log);
}

/* The token in a `from` of DOMAIN/TOKEN. */
static const char *token_of(const char *from)
{
    size_t n = strlen(HX_DOMAIN);
    if (!from || strncmp(from, HX_DOMAIN "/", n + 1) != 0)
        return NULL;
    return from + n + 1;
}

/* The same token with one character changed. */
static char *tampered(const char *from)
{
    char *t = g_strdup(from);
    size_t len = strlen(t);
    char *last = &t[len - 1];
    *last = *last == 'A' ? 'B' : 'A';
    return t;
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

/* Pumps until client-proxy answers a ping from C with something other than
 * Prosody's own "no component" error (wait/remote-server-timeout, sent at
 * once).  Returns the last reply. */
static xmpp_stanza_t *wait_component_up(hx_client_t *c, int timeout_ms)
{
    gint64 end = hx_now_ms() + timeout_ms;
    for (;;) {
        xmpp_stanza_t *r = hx_iq(c, HX_DOMAIN, "get",
                                 "<ping xmlns='urn:xmpp:ping'/>", 1000);
        g_autofree char *err = r ? hx_error_of(r) : NULL;
        bool prosody_says_no_component =
            r && err && strcmp(err, "wait/remote-server-timeout") == 0 &&
            hx_now_ms() < end;
        if (r && !prosody_says_no_component)
            return r;
        if (hx_now_ms() >= end)
            return r;
        hx_pump(50);
    }
}

/* Waits until client-proxy forwards to every worker in WORKERS (NULL-ended,
 * all in HX_ANSWER mode): it is connected and knows those resources. */
static bool wait_ready(hx_client_t *user, hx_client_t **workers, int timeout_ms)
{
    gint64 end = hx_now_ms() + timeout_ms;
    unsigned before[4] = {0};
    for (int i = 0; workers[i]; i++)
        before[i] = hx_requests_seen(workers[i]);
    /* dispatch-sticky sends all of one user's requests to one resource:
     * there, a resource counts as known once the log names it. */
    bool sticky = strcmp(g_dispatch, "sticky") == 0;
    for (;;) {
        bool all = true;
        g_autofree char *log = sticky ? hx_proxy_log() : NULL;
        for (int i = 0; workers[i]; i++)
            all = all && (hx_requests_seen(workers[i]) > before[i] ||
                          (sticky && strstr(log, hx_client_jid(workers[i]))));
        if (all)
            return true;
        if (hx_now_ms() >= end)
            return false;
        xmpp_stanza_t *r = hx_iq(user, HX_DOMAIN, "get",
                                 "<ping xmlns='urn:xmpp:ping'/>", 1000);
        if (!r || strcmp(xmpp_stanza_get_type(r), "error") == 0)
            hx_pump(50);
    }
}

/* ---- fixtures ------------------------------------------------------------- */

static int group_setup(void **state)
{
    (void)state;
    if (!g_file_test(hx_proxy_bin(), G_FILE_TEST_IS_EXECUTABLE)) {
        fprintf(stderr, "CLIENT_PROXY_BIN (%s) is not an executable\n",
                hx_proxy_bin());
        return -1;
    }
    return hx_group_start_prosody(state);
}

static fx_t *fx_new(bool workers)
{
    fx_t *fx = g_new0(fx_t, 1);
    if (workers) {
        fx->w1 = hx_client_connect("service", "worker-1", true);
        fx->w2 = hx_client_connect("service", "worker-2", true);
        fx->workers[0] = fx->w1;
        fx->workers[1] = fx->w2;
    }
    fx->alice = hx_client_connect("alice", "desk", false);
    fx->bob = hx_client_connect("bob", "phone", false);
    return fx;
}

static int start_proxy(fx_t *fx, int request_timeout)
{
    hx_proxy_opts_t o = {.encoding = g_encoding,
                         .dispatch = g_dispatch,
                         .request_timeout = request_timeout};
    g_autofree char *extra = NULL;
    if (strcmp(g_encoding, "hmac") == 0 || strcmp(g_encoding, "sealed") == 0) {
        /* Exercise the key file: one key with an ID, mode 0600. */
        g_autofree char *key = hx_write_file(
            "encoding.key",
            "k1 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n",
            0600);
        extra = g_strdup_printf("\n[encoding:%s]\nkey_file = %s\n", g_encoding, key);
        o.extra = extra;
    }
    if (hx_proxy_start(&o) <= 0)
        return -1;
    if (fx->w1 && !wait_ready(fx->alice, fx->workers, 8000)) {
        fprintf(stderr, "client-proxy never forwarded to both workers\n");
        dump_log_on_failure();
        return -1;
    }
    return 0;
}

static int setup_timeout(void **state, int request_timeout)
{
    fx_t *fx = fx_new(true);
    *state = fx;
    if (!fx->w1 || !fx->w2 || !fx->alice || !fx->bob)
        return -1;
    return start_proxy(fx, request_timeout);
}

static int setup(void **state)
{
    return setup_timeout(state, TIMEOUT_S);
}

static int setup_long(void **state)
{
    return setup_timeout(state, LONG_TIMEOUT_S);
}

static int setup_no_workers(void **state)
{
    fx_t *fx = fx_new(false);
    *state = fx;
    if (!fx->alice || !fx->bob)
        return -1;
    return start_proxy(fx, TIMEOUT_S);
}

/* Stops client-proxy and checks that it shut down cleanly: exit 0 on
 * SIGTERM, and no sanitizer report in its log.  Returns -1 otherwise. */
static int stop_proxy_checked(void)
{
    bool was_running = hx_proxy_running();
    int status = was_running ? hx_proxy_stop() : hx_proxy_wait_exit(0);
    g_autofree char *log = hx_proxy_log();
    g_autofree char *report = hx_memcheck_report(log); /* sanitizers, valgrind */
    bool bad_exit = was_running && !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (report || bad_exit) {
        fprintf(stderr, "client-proxy did not stop cleanly (wait status 0x%x)\n",
                (unsigned)status);
        dump_log_on_failure();
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    int rc = stop_proxy_checked();
    if (fx) {
        hx_client_free(fx->w1);
        hx_client_free(fx->w2);
        hx_client_free(fx->alice);
        hx_client_free(fx->bob);
        g_free(fx);
    }
    return rc;
}

static void hold_all(fx_t *fx)
{
    hx_client_set_mode(fx->w1, HX_HOLD);
    hx_client_set_mode(fx->w2, HX_HOLD);
}

/* ---- forwarding, per encoding -------------------------------------------- */

/* One request from USER of TYPE to TO is forwarded and answered; checks both
 * legs.  Returns the token the worker saw (g_free it). */
static char *forward_once(fx_t *fx, hx_client_t *user, const char *type,
                          const char *to, const char *text)
{
    unsigned seen1 = hx_requests_seen(fx->w1), seen2 = hx_requests_seen(fx->w2);
    g_autofree char *payload = echo_payload(text);
    g_autofree char *id = hx_iq_send(user, to, type, payload);
    xmpp_stanza_t *r = hx_wait_reply(user, id, REPLY_MS);
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
    hx_pump(100);
    assert_int_equal(hx_count_id(user, id), 1);
    return g_strdup(token);
}

static void forward_and_reply(void **state)
{
    fx_t *fx = *state;
    g_autofree char *ta = forward_once(fx, fx->alice, "get", HX_DOMAIN, "hello");
    g_autofree char *ta2 = forward_once(fx, fx->alice, "set", HX_DOMAIN, "set it");
    g_autofree char *ta3 = forward_once(fx, fx->alice, "get",
                                        HX_DOMAIN "/any-resource", "via resource");
    g_autofree char *tb = forward_once(fx, fx->bob, "get", HX_DOMAIN, "from bob");

    if (strcmp(g_encoding, "raw") == 0) {
        assert_string_equal(ta, hx_client_jid(fx->alice));
        assert_string_equal(tb, hx_client_jid(fx->bob));
    } else {
        assert_null(strstr(ta, "alice"));
        assert_null(strstr(tb, "bob"));
        if (strcmp(g_encoding, "hmac") == 0 || strcmp(g_encoding, "opaque") == 0 ||
            strcmp(g_encoding, "sealed") == 0)
            assert_null(strstr(ta, "localhost"));
    }
    assert_string_not_equal(ta, tb);
}

static void dispatch_uses_both_resources(void **state)
{
    fx_t *fx = *state;
    unsigned s1 = hx_requests_seen(fx->w1), s2 = hx_requests_seen(fx->w2);
    for (int i = 0; i < 24; i++) {
        g_autofree char *text = g_strdup_printf("n%d", i);
        g_autofree char *t = forward_once(fx, fx->alice, "get", HX_DOMAIN, text);
    }
    assert_true(hx_requests_seen(fx->w1) > s1);
    assert_true(hx_requests_seen(fx->w2) > s2);
}

/* The resource holding a set goes offline: cancel/service-unavailable at
 * once, not after request_timeout (a set may not be idempotent: no retry). */
static void offline_midrequest(fx_t *fx, bool disconnect)
{
    hold_all(fx);
    g_autofree char *payload = echo_payload("held");
    g_autofree char *id = hx_iq_send(fx->alice, HX_DOMAIN, "set", payload);
    hx_client_t *holder = NULL;
    xmpp_stanza_t *req = hx_take_request(fx->workers, &holder, REPLY_MS);
    assert_non_null(req);
    gint64 t0 = hx_now_ms();
    if (disconnect)
        hx_client_disconnect(holder);
    else
        hx_send_presence(holder, "unavailable", NULL, NULL);
    xmpp_stanza_t *r = hx_wait_reply(fx->alice, id, LONG_TIMEOUT_S * 1000);
    gint64 took = hx_now_ms() - t0;
    assert_error(r, "cancel/service-unavailable");
    assert_string_equal(xmpp_stanza_get_from(r), HX_DOMAIN);
    if (took > 1500)
        fail_msg("the error took %lld ms (request_timeout is %d s)",
                 (long long)took, LONG_TIMEOUT_S);
    hx_pump(300);
    assert_int_equal(hx_count_id(fx->alice, id), 1);
}

static void resource_disconnects_midrequest(void **state)
{
    offline_midrequest(*state, true);
}

/* The resource holding a get goes offline: the get is retried once on the
 * other resource, which answers it, well before request_timeout. */
static void get_retried_midrequest(fx_t *fx, bool disconnect)
{
    hold_all(fx);
    g_autofree char *payload = echo_payload("retried");
    g_autofree char *id = hx_iq_send(fx->alice, HX_DOMAIN, "get", payload);
    hx_client_t *holder = NULL;
    xmpp_stanza_t *req = hx_take_request(fx->workers, &holder, REPLY_MS);
    assert_non_null(req);
    hx_client_t *other = holder == fx->w1 ? fx->w2 : fx->w1;
    unsigned seen = hx_requests_seen(other);
    hx_client_set_mode(other, HX_ANSWER);
    gint64 t0 = hx_now_ms();
    if (disconnect)
        hx_client_disconnect(holder);
    else
        hx_send_presence(holder, "unavailable", NULL, NULL);
    xmpp_stanza_t *r = hx_wait_reply(fx->alice, id, LONG_TIMEOUT_S * 1000);
    gint64 took = hx_now_ms() - t0;
    assert_non_null(r);
    assert_string_equal(xmpp_stanza_get_type(r), "result");
    assert_string_equal(hx_child_attr(r, "handled-by", HX_ECHO_NS, "resource"),
                        hx_client_resource(other));
    assert_int_equal(hx_requests_seen(other), seen + 1);
    if (took > 1500)
        fail_msg("the retry took %lld ms (request_timeout is %d s)", (long long)took,
                 LONG_TIMEOUT_S);
    hx_pump(300);
    assert_int_equal(hx_count_id(fx->alice, id), 1);
}

static void get_retried_when_resource_disconnects(void **state)
{
    get_retried_midrequest(*state, true);
}

static void get_retried_when_resource_goes_unavailable(void **state)
{
    get_retried_midrequest(*state, false);
}

static void resource_unavailable_midrequest(void **state)
{
    offline_midrequest(*state, false);
}

static void timeout_then_late_reply_dropped(void **state)
{
    fx_t *fx = *state;
    hold_all(fx);
    g_autofree char *payload = echo_payload("slow");
    gint64 t0 = hx_now_ms();
    g_autofree char *id = hx_iq_send(fx->alice, HX_DOMAIN, "get", payload);
    hx_client_t *holder = NULL;
    xmpp_stanza_t *req = hx_take_request(fx->workers, &holder, REPLY_MS);
    assert_non_null(req);
    xmpp_stanza_t *r = hx_wait_reply(fx->alice, id, TIMEOUT_S * 1000 + 3000);
    gint64 took = hx_now_ms() - t0;
    assert_error(r, "wait/remote-server-timeout");
    assert_string_equal(xmpp_stanza_get_from(r), HX_DOMAIN);
    if (took < TIMEOUT_S * 1000 - 300 || took > TIMEOUT_S * 1000 + 1500)
        fail_msg("timeout error after %lld ms, request_timeout is %d s",
                 (long long)took, TIMEOUT_S);

    /* The late answer: dropped, never a second reply. */
    size_t mark = hx_proxy_log_mark();
    hx_answer(holder, req, NULL);
    g_autofree char *line = hx_proxy_wait_log(mark, "drop", 2000);
    if (!line) {
        dump_log_on_failure();
        fail_msg("the late reply was not logged as dropped");
    }
    hx_pump(200);
    assert_int_equal(hx_count_id(fx->alice, id), 1);
}

/* Sends ANSWER_AS a reply to REQ with `to` = TO, expects it dropped with a
 * log line, and returns that line (g_free it). */
static char *expect_dropped(hx_client_t *from, xmpp_stanza_t *req,
                            const char *to)
{
    size_t mark = hx_proxy_log_mark();
    hx_answer(from, req, to);
    char *line = hx_proxy_wait_log(mark, "drop", 2000);
    if (!line) {
        dump_log_on_failure();
        fail_msg("a reply from %s to %s was not logged as dropped",
                 hx_client_jid(from), to);
    }
    return line;
}

static void forged_token_dropped(void **state)
{
    fx_t *fx = *state;
    hold_all(fx);
    /* bob's request gives a valid token of someone else. */
    g_autofree char *bob_id = hx_iq_send(fx->bob, HX_DOMAIN, "get",
                                         "<echo xmlns='urn:example:echo'>b</echo>");
    hx_client_t *bob_holder = NULL;
    xmpp_stanza_t *bob_req = hx_take_request(fx->workers, &bob_holder, REPLY_MS);
    assert_non_null(bob_req);

    g_autofree char *id = hx_iq_send(fx->alice, HX_DOMAIN, "get",
                                     "<echo xmlns='urn:example:echo'>a</echo>");
    hx_client_t *holder = NULL;
    xmpp_stanza_t *req = hx_take_request(fx->workers, &holder, REPLY_MS);
    assert_non_null(req);
    const char *from = xmpp_stanza_get_from(req);

    g_autofree char *changed = tampered(from);
    g_autofree char *l1 = expect_dropped(holder, req, changed);
    g_autofree char *l2 = expect_dropped(holder, req, HX_DOMAIN "/%%%not-a-token");
    /* alice's id with bob's token: neither of them may get it. */
    g_autofree char *l4 = expect_dropped(holder, req, xmpp_stanza_get_from(bob_req));
    print_message("logged: %s\n        %s\n        %s\n", l1, l2, l4);

    xmpp_stanza_t *r = hx_wait_reply(fx->alice, id, TIMEOUT_S * 1000 + 3000);
    assert_error(r, "wait/remote-server-timeout");
    xmpp_stanza_t *rb = hx_wait_reply(fx->bob, bob_id, TIMEOUT_S * 1000 + 3000);
    assert_error(rb, "wait/remote-server-timeout");
    hx_pump(200);
    assert_int_equal(hx_count_id(fx->alice, id), 1);
    assert_int_equal(hx_count_id(fx->bob, id), 0);
    assert_int_equal(hx_count_id(fx->bob, bob_id), 1);
}

static void wrong_sender_dropped(void **state)
{
    fx_t *fx = *state;
    hold_all(fx);
    g_autofree char *id = hx_iq_send(fx->alice, HX_DOMAIN, "get",
                                     "<echo xmlns='urn:example:echo'>a</echo>");
    hx_client_t *holder = NULL;
    xmpp_stanza_t *req = hx_take_request(fx->workers, &holder, REPLY_MS);
    assert_non_null(req);
    hx_client_t *other = holder == fx->w1 ? fx->w2 : fx->w1;

    /* The other resource of the target, with the right token and id. */
    g_autofree char *l1 = expect_dropped(other, req, NULL);
    /* A user who is not the target at all. */
    g_autofree char *l2 = expect_dropped(fx->bob, req, NULL);
    print_message("logged: %s\n        %s\n", l1, l2);

    xmpp_stanza_t *r = hx_wait_reply(fx->alice, id, TIMEOUT_S * 1000 + 3000);
    assert_error(r, "wait/remote-server-timeout");
    hx_pump(200);
    assert_int_equal(hx_count_id(fx->alice, id), 1);
}

/* ---- each dispatch plugin's documented choice (README) ------------------- */

/* Which worker handled a request answered by the echo worker. */
static int handled_by(fx_t *fx, hx_client_t *user)
{
    xmpp_stanza_t *r = hx_iq(user, HX_DOMAIN, "get",
                             "<echo xmlns='urn:example:echo'>d</echo>", REPLY_MS);
    g_autofree char *text = hx_text(r);
    const char *by = r ? hx_child_attr(r, "handled-by", HX_ECHO_NS, "resource")
                       : NULL;
    if (!by)
        fail_msg("no handled-by in %s", text);
    (void)fx;
    return strcmp(by, "worker-1") == 0 ? 1 : 2;
}

static void dispatch_choice(void **state)
{
    fx_t *fx = *state;
    if (strcmp(g_dispatch, "round-robin") == 0) {
        /* Every 2 requests give each of the 2 resources exactly one. */
        for (int round = 0; round < 5; round++) {
            int a = handled_by(fx, fx->alice), b = handled_by(fx, fx->alice);
            assert_int_not_equal(a, b);
        }
    } else if (strcmp(g_dispatch, "sticky") == 0) {
        /* One bare JID, one resource, whichever full JID it uses. */
        int first = handled_by(fx, fx->alice);
        for (int i = 0; i < 10; i++)
            assert_int_equal(handled_by(fx, fx->alice), first);
        hx_client_t *alice2 = hx_client_connect("alice", "laptop", false);
        assert_non_null(alice2);
        for (int i = 0; i < 5; i++)
            assert_int_equal(handled_by(fx, alice2), first);
        hx_client_free(alice2);
        /* Its resource leaves: alice moves, and the error is not sticky. */
        hx_client_disconnect(first == 1 ? fx->w1 : fx->w2);
        hx_pump(200);
        assert_int_equal(handled_by(fx, fx->alice), first == 1 ? 2 : 1);
    } else if (strcmp(g_dispatch, "least-pending") == 0) {
        /* A resource holding a request gets none while the other is idle. */
        hx_client_set_mode(fx->w1, HX_HOLD);
        hx_client_set_mode(fx->w2, HX_HOLD);
        g_autofree char *id = hx_iq_send(fx->alice, HX_DOMAIN, "get",
                                         "<echo xmlns='urn:example:echo'>x</echo>");
        hx_client_t *holder = NULL;
        xmpp_stanza_t *req = hx_take_request(fx->workers, &holder, REPLY_MS);
        assert_non_null(req);
        hx_client_t *idle = holder == fx->w1 ? fx->w2 : fx->w1;
        hx_client_set_mode(idle, HX_ANSWER);
        for (int i = 0; i < 6; i++)
            assert_int_equal(handled_by(fx, fx->bob), idle == fx->w1 ? 1 : 2);
        hx_answer(holder, req, NULL);
        assert_non_null(hx_wait_reply(fx->alice, id, REPLY_MS));
    } else if (strcmp(g_dispatch, "priority") == 0) {
        /* The highest priority wins; a negative one never gets requests. */
        hx_send_xml(fx->w1, "<presence><priority>5</priority></presence>");
        hx_send_xml(fx->w2, "<presence><priority>1</priority></presence>");
        hx_pump(200);
        for (int i = 0; i < 8; i++)
            assert_int_equal(handled_by(fx, fx->alice), 1);
        hx_send_xml(fx->w1, "<presence><priority>-1</priority></presence>");
        hx_pump(200);
        for (int i = 0; i < 8; i++)
            assert_int_equal(handled_by(fx, fx->alice), 2);
        hx_send_xml(fx->w2, "<presence><priority>-3</priority></presence>");
        hx_pump(200);
        xmpp_stanza_t *r = hx_iq(fx->alice, HX_DOMAIN, "get",
                                 "<echo xmlns='urn:example:echo'>n</echo>",
                                 REPLY_MS);
        assert_error(r, "cancel/service-unavailable");
    } else {
        /* random, or a plugin this test does not know: both get requests. */
        int seen[3] = {0};
        for (int i = 0; i < 24; i++)
            seen[handled_by(fx, fx->alice)]++;
        assert_true(seen[1] > 0 && seen[2] > 0);
    }
}

/* ---- routing: what is not forwarded, and presence ------------------------- */

static void no_resource_service_unavailable(void **state)
{
    fx_t *fx = *state;
    xmpp_stanza_t *r = wait_component_up(fx->alice, 8000);
    assert_error(r, "cancel/service-unavailable");
    assert_string_equal(xmpp_stanza_get_from(r), HX_DOMAIN);

    g_autofree char *id = hx_iq_send(fx->bob, HX_DOMAIN "/x", "set",
                                     "<echo xmlns='urn:example:echo'>b</echo>");
    r = hx_wait_reply(fx->bob, id, REPLY_MS);
    assert_error(r, "cancel/service-unavailable");
    assert_string_equal(xmpp_stanza_get_id(r), id);
    hx_pump(200);
    assert_int_equal(hx_count_id(fx->bob, id), 1);
}

static void iq_from_target_not_implemented(void **state)
{
    fx_t *fx = *state;
    unsigned s2 = hx_requests_seen(fx->w2), s1 = hx_requests_seen(fx->w1);
    xmpp_stanza_t *r = hx_iq(fx->w1, HX_DOMAIN, "get",
                             "<ping xmlns='urn:xmpp:ping'/>", REPLY_MS);
    assert_error(r, "cancel/feature-not-implemented");
    r = hx_iq(fx->w2, HX_DOMAIN "/someone", "set",
              "<echo xmlns='urn:example:echo'>x</echo>", REPLY_MS);
    assert_error(r, "cancel/feature-not-implemented");
    hx_pump(200);
    assert_int_equal(hx_requests_seen(fx->w1), s1);
    assert_int_equal(hx_requests_seen(fx->w2), s2);
}

static void message_to_component_error(void **state)
{
    fx_t *fx = *state;
    unsigned mark = hx_received_count(fx->alice);
    hx_send_xml(fx->alice, "<message to='proxy.localhost' id='m1' type='chat'>"
                           "<body>hi</body></message>");
    xmpp_stanza_t *m = hx_wait_stanza(fx->alice, mark, "message", "error",
                                      HX_DOMAIN, REPLY_MS);
    assert_error(m, "cancel/feature-not-implemented");
    assert_string_equal(xmpp_stanza_get_id(m), "m1");

    mark = hx_received_count(fx->bob);
    hx_send_xml(fx->bob, "<message to='proxy.localhost/res' id='m2'>"
                         "<body>hi</body></message>");
    m = hx_wait_stanza(fx->bob, mark, "message", "error", HX_DOMAIN, REPLY_MS);
    assert_error(m, "cancel/feature-not-implemented");
    assert_string_equal(xmpp_stanza_get_id(m), "m2");
}

/* Sends N echo requests from alice; counts who handled them. */
static void count_handlers(fx_t *fx, int n, int *by1, int *by2, int *errors)
{
    *by1 = *by2 = *errors = 0;
    for (int i = 0; i < n; i++) {
        xmpp_stanza_t *r = hx_iq(fx->alice, HX_DOMAIN, "get",
                                 "<echo xmlns='urn:example:echo'>c</echo>",
                                 REPLY_MS);
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

static void presence_unavailable_then_available(void **state)
{
    fx_t *fx = *state;
    int by1, by2, errors;
    hx_send_presence(fx->w1, "unavailable", NULL, NULL);
    hx_pump(200);
    count_handlers(fx, 12, &by1, &by2, &errors);
    assert_int_equal(by1, 0);
    assert_int_equal(errors, 0);
    assert_int_equal(by2, 12);

    hx_send_presence(fx->w1, NULL, NULL, NULL);
    hx_client_t *only1[] = {fx->w1, NULL};
    assert_true(wait_ready(fx->alice, only1, 5000));
}

/* README: a resource whose show is dnd or xa is draining: it gets no new
 * requests, but what it holds is still routed back when it answers. */
static void presence_dnd_drains_resource(void **state)
{
    fx_t *fx = *state;
    hx_client_set_mode(fx->w1, HX_HOLD);
    hx_client_set_mode(fx->w2, HX_HOLD);
    /* Get a request held by worker-1. */
    g_autofree char *held_id = NULL;
    xmpp_stanza_t *held = NULL;
    for (int i = 0; i < 30 && !held; i++) {
        g_autofree char *id = hx_iq_send(fx->alice, HX_DOMAIN, "get",
                                         "<echo xmlns='urn:example:echo'>h</echo>");
        hx_client_t *holder = NULL;
        xmpp_stanza_t *req = hx_take_request(fx->workers, &holder, REPLY_MS);
        assert_non_null(req);
        if (holder == fx->w1) {
            held = req;
            held_id = g_strdup(id);
        } else {
            hx_answer(holder, req, NULL);
            assert_non_null(hx_wait_reply(fx->alice, id, REPLY_MS));
        }
    }
    assert_non_null(held);
    hx_client_set_mode(fx->w1, HX_ANSWER);
    hx_client_set_mode(fx->w2, HX_ANSWER);

    hx_send_presence(fx->w1, NULL, "dnd", NULL);
    hx_pump(200);
    int by1, by2, errors;
    count_handlers(fx, 10, &by1, &by2, &errors);
    assert_int_equal(by1, 0);
    assert_int_equal(by2, 10);

    /* Still answering what it has. */
    hx_answer(fx->w1, held, NULL);
    xmpp_stanza_t *r = hx_wait_reply(fx->alice, held_id, REPLY_MS);
    g_autofree char *text = hx_text(r);
    if (!r || strcmp(xmpp_stanza_get_type(r), "result") != 0)
        fail_msg("the draining resource's reply was not routed: %s", text);

    /* "away" is not draining; plain available takes requests again. */
    hx_send_presence(fx->w1, NULL, "away", NULL);
    hx_client_t *only1[] = {fx->w1, NULL};
    assert_true(wait_ready(fx->alice, only1, 5000));
    hx_send_presence(fx->w1, NULL, "xa", NULL);
    hx_pump(200);
    count_handlers(fx, 6, &by1, &by2, &errors);
    assert_int_equal(by1, 0);
    hx_send_presence(fx->w1, NULL, NULL, NULL);
    assert_true(wait_ready(fx->alice, only1, 5000));
}

static void presence_error_forgets_resource(void **state)
{
    fx_t *fx = *state;
    hx_send_xml(fx->w1, "<presence type='error' to='proxy.localhost'>"
                        "<error type='cancel'><remote-server-not-found "
                        "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>"
                        "</presence>");
    hx_pump(200);
    int by1, by2, errors;
    count_handlers(fx, 10, &by1, &by2, &errors);
    print_message("after presence error: worker-1 %d, worker-2 %d, errors %d\n",
                  by1, by2, errors);
    assert_int_equal(by1, 0);
}

static void last_presence_gone_service_unavailable(void **state)
{
    fx_t *fx = *state;
    hx_client_disconnect(fx->w1);
    hx_client_disconnect(fx->w2);
    hx_pump(300);
    xmpp_stanza_t *r = hx_iq(fx->alice, HX_DOMAIN, "get",
                             "<echo xmlns='urn:example:echo'>x</echo>", REPLY_MS);
    assert_error(r, "cancel/service-unavailable");
    /* And back: both resources are learned again. */
    assert_true(hx_client_reconnect(fx->w1));
    assert_true(hx_client_reconnect(fx->w2));
    assert_true(wait_ready(fx->alice, fx->workers, 5000));
}

static bool subscription_approved(hx_client_t *w, unsigned mark)
{
    for (unsigned i = mark; i < hx_received_count(w); i++) {
        xmpp_stanza_t *st = hx_received(w, i);
        const char *name = xmpp_stanza_get_name(st);
        const char *type = xmpp_stanza_get_type(st);
        const char *from = xmpp_stanza_get_from(st);
        if (strcmp(name, "presence") == 0 && type &&
            strcmp(type, "subscribed") == 0 && from &&
            strcmp(from, HX_DOMAIN) == 0)
            return true;
        /* Or the roster push that follows it. */
        const char *sub = hx_child_attr(st, "item", "jabber:iq:roster",
                                        "subscription");
        const char *jid = hx_child_attr(st, "item", "jabber:iq:roster", "jid");
        if (strcmp(name, "iq") == 0 && sub && jid &&
            strcmp(jid, HX_DOMAIN) == 0 &&
            (strcmp(sub, "to") == 0 || strcmp(sub, "both") == 0))
            return true;
    }
    return false;
}

static void subscribe_from_target_approved(void **state)
{
    fx_t *fx = *state;
    unsigned mark = hx_received_count(fx->w1);
    hx_send_presence(fx->w1, "subscribe", NULL, HX_DOMAIN);
    gint64 end = hx_now_ms() + REPLY_MS;
    while (!subscription_approved(fx->w1, mark) && hx_now_ms() < end)
        hx_pump(20);
    if (!subscription_approved(fx->w1, mark)) {
        dump_log_on_failure();
        fail_msg("the subscription of %s was not approved", HX_TARGET);
    }
}

/* ---- lifecycle ------------------------------------------------------------ */

static void sigterm_answers_pending(void **state)
{
    fx_t *fx = *state;
    hold_all(fx);
    g_autofree char *id = hx_iq_send(fx->alice, HX_DOMAIN, "get",
                                     "<echo xmlns='urn:example:echo'>p</echo>");
    assert_non_null(hx_take_request(fx->workers, NULL, REPLY_MS));
    unsigned m1 = hx_received_count(fx->w1), m2 = hx_received_count(fx->w2);

    hx_proxy_signal(SIGTERM);
    xmpp_stanza_t *r = hx_wait_reply(fx->alice, id, REPLY_MS);
    assert_error(r, "cancel/service-unavailable");
    assert_string_equal(xmpp_stanza_get_from(r), HX_DOMAIN);
    /* The target sees client-proxy go unavailable. */
    assert_non_null(hx_wait_stanza(fx->w1, m1, "presence", "unavailable",
                                   HX_DOMAIN, REPLY_MS));
    assert_non_null(hx_wait_stanza(fx->w2, m2, "presence", "unavailable",
                                   HX_DOMAIN, REPLY_MS));
    int status = hx_proxy_wait_exit(5000);
    if (status == -1)
        fail_msg("client-proxy still runs 5 s after SIGTERM");
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    hx_pump(200);
    assert_int_equal(hx_count_id(fx->alice, id), 1);
}

static void sigint_exits_zero(void **state)
{
    (void)state;
    hx_proxy_signal(SIGINT);
    int status = hx_proxy_wait_exit(5000);
    if (status == -1)
        fail_msg("client-proxy still runs 5 s after SIGINT");
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void stream_error_named(const char *domain, const char *secret,
                               const char *condition)
{
    hx_proxy_opts_t o = {.domain = domain, .secret = secret};
    assert_true(hx_proxy_start(&o) > 0);
    g_autofree char *line = hx_proxy_wait_log(0, condition, 5000);
    if (!line) {
        dump_log_on_failure();
        fail_msg("stderr never mentioned %s", condition);
    }
    print_message("logged: %s\n", line);
    assert_int_equal(stop_proxy_checked(), 0);
}

static void wrong_secret_not_authorized(void **state)
{
    (void)state;
    stream_error_named(HX_DOMAIN, "wrong-secret", "not-authorized");
}

static void unknown_domain_host_unknown(void **state)
{
    (void)state;
    stream_error_named("nosuch.localhost", HX_SECRET, "host-unknown");
}

/* Pumps until a line after MARK in the log contains one of WORDS (case
 * insensitive); returns it (g_free it) or NULL. */
static char *wait_log_any(size_t mark, const char *const *words, int timeout_ms)
{
    gint64 end = hx_now_ms() + timeout_ms;
    do {
        for (const char *const *w = words; *w; w++) {
            char *line = hx_proxy_wait_log(mark, *w, 0);
            if (line)
                return line;
        }
        hx_pump(20);
    } while (hx_now_ms() < end);
    return NULL;
}

static void prosody_restart_reconnects(void **state)
{
    fx_t *fx = *state;
    size_t mark = hx_proxy_log_mark();
    assert_true(hx_prosody_restart());
    const char *words[] = {"lost", "dropped", "closed", "disconnect", "reset", NULL};
    g_autofree char *line = wait_log_any(mark, words, 3000);
    if (!line) {
        dump_log_on_failure();
        fail_msg("client-proxy did not say that the stream dropped");
    }
    print_message("logged: %s\n", line);
    assert_true(hx_client_reconnect(fx->w1));
    assert_true(hx_client_reconnect(fx->w2));
    assert_true(hx_client_reconnect(fx->alice));
    if (!wait_ready(fx->alice, fx->workers, 15000)) {
        dump_log_on_failure();
        fail_msg("no forwarding to both resources after the restart");
    }
    g_autofree char *t = forward_once(fx, fx->alice, "get", HX_DOMAIN, "again");
    assert_true(hx_proxy_running());
}

/* Times (ms since T0) at which the log after MARK gained its 1st, 2nd, ...
 * line containing NEEDLE, up to N of them or until END_MS. */
static int watch_log(size_t mark, const char *needle, gint64 t0, gint64 *at,
                     int n, gint64 end_ms)
{
    int seen = 0;
    while (seen < n && hx_now_ms() < end_ms) {
        g_autofree char *log = hx_proxy_log();
        int count = 0;
        for (const char *p = strlen(log) > mark ? log + mark : ""; (p = strstr(p, needle));
             p++)
            count++;
        while (seen < count && seen < n)
            at[seen++] = hx_now_ms() - t0;
        hx_pump(10);
    }
    return seen;
}

static void server_down_at_start_then_up(void **state)
{
    fx_t *fx = *state;
    hx_proxy_stop();
    hx_prosody_stop();
    hx_proxy_opts_t o = {0};
    gint64 t0 = hx_now_ms();
    assert_true(hx_proxy_start(&o) > 0);
    const char *words[] = {"cannot", "could not", "refused", "unreachable",
                           "fail", NULL};
    g_autofree char *line = wait_log_any(0, words, 2000);
    if (!line) {
        dump_log_on_failure();
        fail_msg("nothing on stderr about the unreachable server");
    }
    print_message("logged: %s\n", line);

    /* Retries: the first after about 1 s, then about twice as long. */
    gint64 at[3] = {0};
    int n = watch_log(0, "connecting to", t0, at, 3, t0 + 5000);
    g_autofree char *log = hx_proxy_log();
    if (n < 3)
        fail_msg("%d connection attempts in 5 s:\n%s", n, log);
    gint64 gap1 = at[1] - at[0], gap2 = at[2] - at[1];
    print_message("attempts at %lld, %lld, %lld ms\n", (long long)at[0],
                  (long long)at[1], (long long)at[2]);
    if (gap1 < 600 || gap1 > 2000 || gap2 < 1200 || gap2 > 3500 || gap2 <= gap1)
        fail_msg("retry gaps %lld ms then %lld ms, expected ~1 s then ~2 s:\n%s",
                 (long long)gap1, (long long)gap2, log);
    assert_true(hx_proxy_running());

    assert_true(hx_prosody_restart());
    gint64 up = hx_now_ms();
    assert_true(hx_client_reconnect(fx->w1));
    assert_true(hx_client_reconnect(fx->w2));
    assert_true(hx_client_reconnect(fx->alice));
    if (!wait_ready(fx->alice, fx->workers, 15000)) {
        dump_log_on_failure();
        fail_msg("no forwarding after the server came up");
    }
    print_message("forwarding %lld ms after the server came up\n",
                  (long long)(hx_now_ms() - up));
}

/* The README demo: the example service and the example user, through
 * client-proxy. */
static void examples_work_through_proxy(void **state)
{
    fx_t *fx = *state;
    const char *svc = g_getenv("IMPLEMENTING_CLIENT_BIN");
    const char *usr = g_getenv("USER_REQUEST_BIN");
    if (!svc || !usr)
        skip();
    /* Only the example's resources may be online. */
    hx_client_disconnect(fx->w1);
    hx_client_disconnect(fx->w2);

    g_autofree char *port = g_strdup_printf("%d", hx_c2s_port());
    g_autofree char *out = g_build_filename(hx_dir(), "example.out", NULL);
    char *svc_argv[] = {(char *)svc, "--jid", HX_TARGET, "--password",
                        HX_PASSWORD, "--server", "127.0.0.1", "--port", port,
                        "--resource", "ex-1", "--resource", "ex-2", NULL};
    pid_t pid = hx_spawn(svc_argv, out);
    assert_true(pid > 0);

    char *argv[] = {(char *)usr, "--jid", "alice@localhost", "--password",
                    HX_PASSWORD, "--server", "127.0.0.1", "--port", port,
                    "--to", HX_DOMAIN, "--count", "4", "--timeout", "10", NULL};
    g_autofree char *uout = NULL, *uerr = NULL;
    int rc = -1;
    /* The example needs a moment to log in and be learned. */
    for (int attempt = 0; attempt < 20 && rc != 0; attempt++) {
        g_free(uout);
        g_free(uerr);
        rc = hx_run(argv, &uout, &uerr, 15000);
        if (rc != 0)
            hx_pump(250);
    }
    int status = hx_spawn_stop(pid, 3000);
    g_autofree char *svc_out = NULL;
    g_file_get_contents(out, &svc_out, NULL, NULL);
    print_message("user-request:\n%s%s\nimplementing-client:\n%s\n", uout, uerr,
                  svc_out);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(uout, "handled by ex-"));
    assert_non_null(strstr(uout, "seen as " HX_DOMAIN "/"));
    assert_non_null(strstr(svc_out, "<- get from " HX_DOMAIN "/"));
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_true(hx_client_reconnect(fx->w1));
    assert_true(hx_client_reconnect(fx->w2));
}

/* ---- --check-config ------------------------------------------------------- */

static int check_config(const char *path, char **err)
{
    char *args[] = {"--check-config", (char *)path, NULL};
    g_autofree char *out = NULL;
    int rc = hx_proxy_run(args, &out, err, 30000);
    g_autofree char *report = hx_memcheck_report(*err);
    if (report)
        fail_msg("client-proxy --check-config %s: %s\n%s", path, report, *err);
    return rc;
}

/* Exit 2 and exactly one line on stderr containing every NEEDLE. */
static void assert_rejected(const char *path, const char *const *needles)
{
    g_autofree char *err = NULL;
    int rc = check_config(path, &err);
    print_message("stderr: %s", err);
    assert_int_equal(rc, 2);
    g_autofree char *trimmed = g_strdup(err);
    g_strchomp(trimmed);
    if (!*trimmed || strchr(trimmed, '\n'))
        fail_msg("expected one line on stderr, got:\n%s", err);
    for (const char *const *n = needles; *n; n++) {
        if (!strstr(trimmed, *n))
            fail_msg("stderr does not name \"%s\": %s", *n, trimmed);
    }
}

static void check_config_good(void **state)
{
    (void)state;
    g_autofree char *key = hx_write_file(
        "good.key",
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n",
        0600);
    const char *encodings[] = {"raw", "base32", "hmac", "opaque", "sealed"};
    for (size_t i = 0; i < G_N_ELEMENTS(encodings); i++) {
        bool keyed = strcmp(encodings[i], "hmac") == 0 || strcmp(encodings[i], "sealed") == 0;
        g_autofree char *extra =
            keyed ? g_strdup_printf("[encoding:%s]\nkey_file = %s\n", encodings[i], key)
                  : NULL;
        hx_proxy_opts_t o = {.encoding = encodings[i], .port = 5347,
                             .extra = extra};
        g_autofree char *name = g_strdup_printf("good-%s.conf", encodings[i]);
        g_autofree char *path = hx_proxy_write_config(name, &o);
        g_autofree char *err = NULL;
        int rc = check_config(path, &err);
        if (rc != 0)
            fail_msg("%s: exit %d, stderr: %s", encodings[i], rc, err);
    }
    /* hmac without a key file is good too. */
    hx_proxy_opts_t o = {.encoding = "hmac", .port = 5347};
    g_autofree char *path = hx_proxy_write_config("good-hmac-nokey.conf", &o);
    g_autofree char *err = NULL;
    int rc = check_config(path, &err);
    if (rc != 0)
        fail_msg("hmac without key_file: exit %d, stderr: %s", rc, err);
}

static void check_config_missing_file(void **state)
{
    (void)state;
    g_autofree char *path = g_build_filename(hx_dir(), "nosuch.conf", NULL);
    const char *needles[] = {path, NULL};
    assert_rejected(path, needles);
}

static void check_config_missing_key(void **state)
{
    (void)state;
    g_autofree char *path = hx_write_file(
        "missing-target.conf",
        "[component]\ndomain = proxy.localhost\nsecret = s\nserver = 127.0.0.1\n"
        "port = 5347\n\n[proxy]\ndispatch = random\nencoding = raw\n"
        "request_timeout = 2\n",
        0600);
    const char *needles[] = {path, "proxy", "target", NULL};
    assert_rejected(path, needles);

    g_autofree char *path2 = hx_write_file(
        "missing-secret.conf",
        "[component]\ndomain = proxy.localhost\nserver = 127.0.0.1\n"
        "port = 5347\n\n[proxy]\ntarget = service@localhost\ndispatch = random\n"
        "encoding = raw\nrequest_timeout = 2\n",
        0600);
    const char *needles2[] = {path2, "component", "secret", NULL};
    assert_rejected(path2, needles2);
}

static void check_config_unknown_plugin(void **state)
{
    (void)state;
    hx_proxy_opts_t o = {.encoding = "nosuch", .port = 5347};
    g_autofree char *path = hx_proxy_write_config("unknown-encoding.conf", &o);
    const char *needles[] = {path, "proxy", "encoding", NULL};
    assert_rejected(path, needles);

    hx_proxy_opts_t o2 = {.dispatch = "nosuch", .port = 5347};
    g_autofree char *path2 = hx_proxy_write_config("unknown-dispatch.conf", &o2);
    const char *needles2[] = {path2, "proxy", "dispatch", NULL};
    assert_rejected(path2, needles2);
}

static void check_config_bad_key_file_mode(void **state)
{
    (void)state;
    g_autofree char *key = hx_write_file(
        "open.key",
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n",
        0644);
    g_autofree char *extra =
        g_strdup_printf("[encoding:hmac]\nkey_file = %s\n", key);
    hx_proxy_opts_t o = {.encoding = "hmac", .port = 5347, .extra = extra};
    g_autofree char *path = hx_proxy_write_config("open-key.conf", &o);
    const char *needles[] = {path, "encoding:hmac", "key_file", NULL};
    assert_rejected(path, needles);
}

static void version_and_help(void **state)
{
    (void)state;
    char *v[] = {"--version", NULL};
    g_autofree char *out = NULL, *err = NULL;
    assert_int_equal(hx_proxy_run(v, &out, &err, 30000), 0);
    assert_non_null(strstr(out, "client-proxy"));
    char *h[] = {"--help", NULL};
    g_autofree char *hout = NULL, *herr = NULL;
    assert_int_equal(hx_proxy_run(h, &hout, &herr, 30000), 0);
    assert_non_null(strstr(hout, "--config"));
    assert_non_null(strstr(hout, "--check-config"));
}

static int setup_dir(void **state)
{
    (void)state;
    hx_init();
    return 0;
}

/* ---- main ----------------------------------------------------------------- */

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
#define T_LONG(f) cmocka_unit_test_setup_teardown(f, setup_long, teardown)

/* [proxy] resources keeps another program logged in as the target account
 * out of rotation: it gets no request, whatever the strategy draws. */
static void filter_keeps_other_resources_out(void **state)
{
    fx_t *fx = *state;
    hx_client_t *gajim = hx_client_connect("service", "gajim", true);
    assert_non_null(gajim);
    hx_proxy_opts_t o = {.encoding = g_encoding, .dispatch = g_dispatch,
                         .request_timeout = TIMEOUT_S, .extra = "resources = worker-*\n"};
    assert_true(hx_proxy_start(&o) > 0);
    g_autofree char *line = hx_proxy_wait_log(0, "service@localhost/gajim does not match", 8000);
    assert_non_null(line);
    assert_true(wait_ready(fx->alice, fx->workers, 8000));

    unsigned w1 = hx_requests_seen(fx->w1), w2 = hx_requests_seen(fx->w2);
    for (int i = 0; i < 20; i++) {
        g_autofree char *payload = echo_payload("filtered");
        xmpp_stanza_t *r = hx_iq(fx->alice, HX_DOMAIN, "get", payload, REPLY_MS);
        assert_non_null(r);
        assert_string_equal(xmpp_stanza_get_type(r), "result");
    }
    assert_int_equal(hx_requests_seen(gajim), 0);
    assert_true(hx_requests_seen(fx->w1) > w1);
    assert_true(hx_requests_seen(fx->w2) > w2);
    hx_client_free(gajim);
}

int main(int argc, char **argv)
{
    const char *group = argc > 1 ? argv[1] : "";
    if (strcmp(group, "forward") == 0 && argc > 2) {
        g_encoding = argv[2];
        const struct CMUnitTest tests[] = {
            T(forward_and_reply),
            T(dispatch_uses_both_resources),
            T_LONG(resource_disconnects_midrequest),
            T_LONG(resource_unavailable_midrequest),
            T_LONG(get_retried_when_resource_disconnects),
            T_LONG(get_retried_when_resource_goes_unavailable),
            T(timeout_then_late_reply_dropped),
            T(forged_token_dropped),
            T(wrong_sender_dropped),
        };
        g_autofree char *name = g_strdup_printf("forward-%s", g_encoding);
        return cmocka_run_group_tests_name(name, tests, group_setup,
                                           hx_group_cleanup);
    }
    if (strcmp(group, "dispatch") == 0 && argc > 2) {
        g_dispatch = argv[2];
        const struct CMUnitTest tests[] = {
            T(forward_and_reply),
            T(dispatch_choice),
            T_LONG(resource_disconnects_midrequest),
            T(wrong_sender_dropped),
        };
        g_autofree char *name = g_strdup_printf("dispatch-%s", g_dispatch);
        return cmocka_run_group_tests_name(name, tests, group_setup,
                                           hx_group_cleanup);
    }
    if (strcmp(group, "routing") == 0) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(no_resource_service_unavailable,
                                            setup_no_workers, teardown),
            T(subscribe_from_target_approved),
            T(iq_from_target_not_implemented),
            T(message_to_component_error),
            T(presence_unavailable_then_available),
            T(presence_dnd_drains_resource),
            T(filter_keeps_other_resources_out),
            T(presence_error_forgets_resource),
            T(last_presence_gone_service_unavailable),
        };
        return cmocka_run_group_tests_name("routing", tests, group_setup,
                                           hx_group_cleanup);
    }
    if (strcmp(group, "lifecycle") == 0) {
        const struct CMUnitTest tests[] = {
            T(sigterm_answers_pending),
            T(sigint_exits_zero),
            cmocka_unit_test(wrong_secret_not_authorized),
            cmocka_unit_test(unknown_domain_host_unknown),
            T(prosody_restart_reconnects),
            T(server_down_at_start_then_up),
            T(examples_work_through_proxy),
        };
        return cmocka_run_group_tests_name("lifecycle", tests, group_setup,
                                           hx_group_cleanup);
    }
    if (strcmp(group, "check-config") == 0) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(check_config_good),
            cmocka_unit_test(check_config_missing_file),
            cmocka_unit_test(check_config_missing_key),
            cmocka_unit_test(check_config_unknown_plugin),
            cmocka_unit_test(check_config_bad_key_file_mode),
            cmocka_unit_test(version_and_help),
        };
        return cmocka_run_group_tests_name("check-config", tests, setup_dir,
                                           hx_group_cleanup);
    }
    fprintf(stderr, "usage: %s forward ENCODING | dispatch NAME | routing | "
                    "lifecycle | "
                    "check-config\n",
            argv[0]);
    return 2;
}
