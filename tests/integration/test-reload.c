/* Reloading the configuration (SIGHUP) under load, against a real Prosody.
 *
 * alice keeps LOAD_IN_FLIGHT requests in flight the whole time; mid-way the
 * test rewrites client-proxy's configuration and sends SIGHUP.  Every request
 * must get exactly one reply, a result (none lost, none misrouted, none
 * answered twice), and the change must show in the tokens the workers see.
 * Requests held by a worker across a change must still be routed when they
 * are answered later: their token was made by the old encoding or key.
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

#include "harness.h"

#define LOAD_IN_FLIGHT 8
#define LOAD_MS 1500      /* load before and after the change, each */
#define REPLY_MS 3000
#define KEY_A "a 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"
#define KEY_B "b ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100\n"

typedef struct {
    hx_t *hx; /* the group's run, with its Prosody (borrowed) */
    hx_client_t *w1, *w2, *alice;
    hx_client_t *workers[3];
    char *key_file;
    hx_proxy_t *proxy; /* the test's client-proxy, or NULL */
} fixture_t;

/* ---- load --------------------------------------------------------------- */

typedef struct {
    GPtrArray *ids;       /* every request sent */
    GPtrArray *in_flight; /* those not answered yet (borrowed from ids) */
    unsigned results;
} load_t;

static void load_send(fixture_t *f, load_t *load)
{
    char *id = hx_iq_send(f->alice, HX_DOMAIN, "get", "<echo xmlns='" HX_ECHO_NS "'>x</echo>");
    g_ptr_array_add(load->ids, id);
    g_ptr_array_add(load->in_flight, id);
}

/* Keeps LOAD_IN_FLIGHT requests in flight for MS milliseconds; with REFILL
 * false, only collects the replies to those in flight, until there are none. */
static void load_pump(fixture_t *f, load_t *load, int ms, bool refill)
{
    gint64 end = hx_now_ms() + ms;
    while (refill && load->in_flight->len < LOAD_IN_FLIGHT)
        load_send(f, load);
    while (hx_now_ms() < end && (refill || load->in_flight->len > 0)) {
        hx_pump(f->hx, 5);
        for (guint i = 0; i < load->in_flight->len;) {
            const char *id = load->in_flight->pdata[i];
            if (hx_count_id(f->alice, id) == 0) {
                i++;
                continue;
            }
            xmpp_stanza_t *reply = hx_wait_reply(f->alice, id, 0);
            if (!reply || strcmp(xmpp_stanza_get_type(reply), "result") != 0) {
                g_autofree char *text = hx_text(reply);
                fail_msg("request %s got %s", id, text ? text : "nothing");
            }
            load->results++;
            g_ptr_array_remove_index_fast(load->in_flight, i);
            if (refill)
                load_send(f, load);
        }
    }
}

static void load_run(fixture_t *f, load_t *load, int ms)
{
    load_pump(f, load, ms, true);
}

/* Lets the requests in flight finish, so that a worker told to hold
 * requests holds only the one the test sends next. */
static void load_settle(fixture_t *f, load_t *load)
{
    load_pump(f, load, REPLY_MS, false);
    assert_int_equal(load->in_flight->len, 0);
}

/* Waits for the last replies, then checks that each request got exactly one. */
static void load_finish(fixture_t *f, load_t *load)
{
    gint64 end = hx_now_ms() + REPLY_MS;
    while (hx_now_ms() < end) {
        bool all = true;
        for (guint i = 0; i < load->in_flight->len && all; i++)
            all = hx_count_id(f->alice, load->in_flight->pdata[i]) > 0;
        if (all)
            break;
        hx_pump(f->hx, 10);
    }
    hx_pump(f->hx, 300); /* room for a duplicate to show */
    for (guint i = 0; i < load->ids->len; i++) {
        const char *id = load->ids->pdata[i];
        int replies = hx_count_id(f->alice, id);
        if (replies != 1)
            fail_msg("request %s got %d replies", id, replies);
        xmpp_stanza_t *reply = hx_wait_reply(f->alice, id, 0);
        assert_string_equal(xmpp_stanza_get_type(reply), "result");
        assert_string_equal(xmpp_stanza_get_from(reply), HX_DOMAIN);
    }
    printf("load: %u requests, each answered exactly once\n", load->ids->len);
    g_ptr_array_free(load->in_flight, TRUE);
    g_ptr_array_free(load->ids, TRUE);
}

static load_t load_new(void)
{
    return (load_t){.ids = g_ptr_array_new_with_free_func(g_free),
                    .in_flight = g_ptr_array_new()};
}

/* ---- client-proxy's configuration ------------------------------------------ */

static char *config_extra(fixture_t *f, const char *more)
{
    return g_strdup_printf("[encoding:hmac]\nkey_file = %s\n%s", f->key_file, more ? more : "");
}

static void start(fixture_t *f, const char *dispatch, const char *encoding)
{
    g_autofree char *extra = config_extra(f, NULL);
    hx_proxy_opts_t options = {.dispatch = dispatch, .encoding = encoding,
                               .request_timeout = 5, .extra = extra};
    f->proxy = hx_proxy_start(f->hx, &options);
    assert_non_null(f->proxy);
    g_autofree char *one =
        hx_proxy_wait_log(f->proxy, 0, "service@localhost/worker-1 is online", HX_LOG_WAIT_MS);
    g_autofree char *two =
        hx_proxy_wait_log(f->proxy, 0, "service@localhost/worker-2 is online", HX_LOG_WAIT_MS);
    assert_non_null(one);
    assert_non_null(two);
}

/* Rewrites the running client-proxy's file, sends SIGHUP, and waits for the
 * line that ends the reload (EXPECT). */
static void reload(fixture_t *f, const char *dispatch, const char *encoding, const char *more,
                   const char *expect)
{
    g_autofree char *extra = config_extra(f, more);
    hx_proxy_opts_t options = {.dispatch = dispatch, .encoding = encoding,
                               .request_timeout = 5, .extra = extra};
    size_t mark = hx_proxy_log_mark(f->proxy);
    hx_proxy_rewrite_config(f->proxy, &options);
    hx_proxy_signal(f->proxy, SIGHUP);
    g_autofree char *line = hx_proxy_wait_log(f->proxy, mark, expect, HX_LOG_WAIT_MS);
    if (!line) {
        g_autofree char *log = hx_proxy_log(f->proxy);
        fail_msg("no \"%s\" after SIGHUP:\n%s", expect, log + mark);
    }
}

/* The token in the last request WORKER saw. */
static const char *last_token(hx_client_t *worker)
{
    unsigned n = hx_requests_seen(worker);
    assert_true(n > 0);
    const char *from = xmpp_stanza_get_from(hx_request_seen(worker, n - 1));
    return strchr(from, '/') + 1;
}

/* Checks that both workers' latest tokens are raw JIDs (or are not). */
static void assert_latest_tokens_raw(fixture_t *f, bool raw)
{
    assert_true((strchr(last_token(f->w1), '@') != NULL) == raw);
    assert_true((strchr(last_token(f->w2), '@') != NULL) == raw);
}

/* Sends one request and returns the held request a worker got (and which). */
static xmpp_stanza_t *send_held(fixture_t *f, hx_client_t **holder, char **id)
{
    hx_client_set_mode(f->w1, HX_HOLD);
    hx_client_set_mode(f->w2, HX_HOLD);
    *id = hx_iq_send(f->alice, HX_DOMAIN, "get", "<echo xmlns='" HX_ECHO_NS "'>held</echo>");
    xmpp_stanza_t *request = hx_take_request(f->workers, holder, REPLY_MS);
    assert_non_null(request);
    hx_client_set_mode(f->w1, HX_ANSWER);
    hx_client_set_mode(f->w2, HX_ANSWER);
    return request;
}

static void assert_held_reply_routed(fixture_t *f, hx_client_t *holder, xmpp_stanza_t *request,
                                     const char *id)
{
    hx_answer(holder, request, NULL);
    xmpp_stanza_t *reply = hx_wait_reply(f->alice, id, REPLY_MS);
    assert_non_null(reply);
    assert_string_equal(xmpp_stanza_get_type(reply), "result");
    hx_pump(f->hx, 200);
    assert_int_equal(hx_count_id(f->alice, id), 1);
}

/* ---- tests ------------------------------------------------------------------- */

static void reload__switches_raw_to_hmac_under_load(void **state)
{
    fixture_t *f = *state;
    start(f, "random", "raw");
    load_t load = load_new();
    load_run(f, &load, LOAD_MS);
    assert_latest_tokens_raw(f, true); /* raw: the JID itself */

    hx_client_t *holder;
    g_autofree char *held_id = NULL;
    load_settle(f, &load);
    xmpp_stanza_t *held = send_held(f, &holder, &held_id);
    reload(f, "random", "hmac", NULL, "reload: done");
    load_run(f, &load, LOAD_MS);
    assert_latest_tokens_raw(f, false); /* hmac: base32 */
    assert_held_reply_routed(f, holder, held, held_id);
    load_finish(f, &load);
}

static void reload__switches_hmac_to_opaque_under_load(void **state)
{
    fixture_t *f = *state;
    start(f, "random", "hmac");
    load_t load = load_new();
    load_run(f, &load, LOAD_MS);
    size_t hmac_length = strlen(last_token(f->w1));

    hx_client_t *holder;
    g_autofree char *held_id = NULL;
    load_settle(f, &load);
    xmpp_stanza_t *held = send_held(f, &holder, &held_id);
    reload(f, "random", "opaque", NULL, "reload: done");
    load_run(f, &load, LOAD_MS);
    assert_int_equal(strlen(last_token(f->w1)), 26); /* 128 random bits */
    assert_int_equal(strlen(last_token(f->w2)), 26);
    assert_true(hmac_length > 26);
    assert_held_reply_routed(f, holder, held, held_id);
    load_finish(f, &load);
}

static void reload__rotates_the_hmac_key_under_load(void **state)
{
    fixture_t *f = *state;
    start(f, "random", "hmac");
    load_t load = load_new();
    load_run(f, &load, LOAD_MS);

    /* A request whose token key A signed, held across the rotation. */
    hx_client_t *holder;
    g_autofree char *held_id = NULL;
    load_settle(f, &load);
    xmpp_stanza_t *held = send_held(f, &holder, &held_id);

    /* Rotation by prepending: B signs, A still verifies. */
    g_free(hx_write_file(f->hx, "hmac.key", KEY_B KEY_A, 0600));
    reload(f, "random", "hmac", NULL, "reload: done");
    load_run(f, &load, LOAD_MS);

    /* Then A is retired: only B remains.  The held request keeps the
     * instance that made its token, so its reply is still routed. */
    g_free(hx_write_file(f->hx, "hmac.key", KEY_B, 0600));
    reload(f, "random", "hmac", NULL, "reload: done");
    load_run(f, &load, LOAD_MS);
    assert_held_reply_routed(f, holder, held, held_id);
    load_finish(f, &load);
}

static void reload__switches_strategy_under_load(void **state)
{
    fixture_t *f = *state;
    start(f, "random", "hmac");
    load_t load = load_new();
    load_run(f, &load, LOAD_MS);
    reload(f, "round-robin", "hmac", NULL, "reload: done");
    load_run(f, &load, LOAD_MS);
    load_finish(f, &load);

    /* Round-robin alternates strictly: one at a time, the workers take turns. */
    unsigned before1 = hx_requests_seen(f->w1), before2 = hx_requests_seen(f->w2);
    for (int i = 0; i < 10; i++) {
        xmpp_stanza_t *reply = hx_iq(f->alice, HX_DOMAIN, "get",
                                     "<echo xmlns='" HX_ECHO_NS "'>rr</echo>", REPLY_MS);
        assert_non_null(reply);
    }
    assert_int_equal(hx_requests_seen(f->w1) - before1, 5);
    assert_int_equal(hx_requests_seen(f->w2) - before2, 5);
}

static void reload__keeps_the_running_configuration_when_refused(void **state)
{
    fixture_t *f = *state;
    start(f, "random", "raw");
    load_t load = load_new();
    load_run(f, &load, LOAD_MS / 2);
    reload(f, "random", "nonexistent", NULL, "reload refused");
    reload(f, "random", "hmac", "[bogus]\nkey = 1\n", "reload refused");
    load_run(f, &load, LOAD_MS / 2);
    assert_latest_tokens_raw(f, true); /* still raw */
    load_finish(f, &load);
    assert_true(hx_proxy_running(f->proxy));
}

static void reload__never_logs_the_secret(void **state)
{
    fixture_t *f = *state;
    start(f, "random", "raw");
    g_autofree char *extra = config_extra(f, NULL);
    hx_proxy_opts_t options = {.secret = "a-new-secret-42", .encoding = "raw",
                               .request_timeout = 5, .extra = extra};
    size_t mark = hx_proxy_log_mark(f->proxy);
    hx_proxy_rewrite_config(f->proxy, &options);
    hx_proxy_signal(f->proxy, SIGHUP);
    /* Prosody knows only the old secret: the new stream is refused. */
    g_autofree char *line = hx_proxy_wait_log(f->proxy, mark, "not-authorized", HX_LOG_WAIT_MS);
    assert_non_null(line);
    g_autofree char *log = hx_proxy_log(f->proxy);
    assert_non_null(strstr(log, "reload: [component] secret"));
    assert_null(strstr(log, "a-new-secret-42"));
    assert_null(strstr(log, HX_SECRET));
}

/* Review: a reload that fixes a wrong target is the very case where requests
 * are held ([proxy] hold) with nowhere to go.  The new stream must not wait
 * for them: they wait on across it, and its resources answer them. */
static void reload__places_held_requests_on_the_new_stream_without_waiting_for_the_hold(
    void **state)
{
    fixture_t *f = *state;
    hx_proxy_opts_t wrong = {.target = "nobody@localhost", .request_timeout = 60,
                             .extra = "hold = 60\n"};
    f->proxy = hx_proxy_start(f->hx, &wrong);
    assert_non_null(f->proxy);
    g_autofree char *up = hx_proxy_wait_log(f->proxy, 0, "connected to 127.0.0.1", HX_LOG_WAIT_MS);
    assert_non_null(up);
    g_autofree char *id =
        hx_iq_send(f->alice, HX_DOMAIN, "get", "<echo xmlns='" HX_ECHO_NS "'>held</echo>");
    hx_pump(f->hx, 300);
    assert_int_equal(hx_count_id(f->alice, id), 0); /* held, not refused */

    hx_proxy_opts_t right = {.request_timeout = 60, .extra = "hold = 60\n"};
    size_t mark = hx_proxy_log_mark(f->proxy);
    hx_proxy_rewrite_config(f->proxy, &right);
    hx_proxy_signal(f->proxy, SIGHUP);
    g_autofree char *reconnecting =
        hx_proxy_wait_log(f->proxy, mark, "reload: connecting with the new", HX_LOG_WAIT_MS);
    if (!reconnecting) {
        g_autofree char *log = hx_proxy_log(f->proxy);
        fail_msg("the reload waited for the held request:\n%s", log + mark);
    }
    xmpp_stanza_t *reply = hx_wait_reply(f->alice, id, 8000);
    assert_non_null(reply);
    assert_string_equal(xmpp_stanza_get_type(reply), "result");
    hx_pump(f->hx, 200);
    assert_int_equal(hx_count_id(f->alice, id), 1);
}

/* ---- fixture ------------------------------------------------------------------ */

/* Stops the test's client-proxy (it must exit 0 with no sanitizer or
 * valgrind report) and frees the clients. */
static int teardown(void **state)
{
    fixture_t *f = *state;
    int status = f->proxy && hx_proxy_running(f->proxy) ? hx_proxy_stop(f->proxy) : 0;
    g_autofree char *log = f->proxy ? hx_proxy_log(f->proxy) : g_strdup("");
    g_autofree char *report = hx_memcheck_report(log); /* sanitizers, valgrind */
    bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0 && !report;
    if (!clean)
        fprintf(stderr, "client-proxy did not stop cleanly (0x%x):\n%s", (unsigned)status, log);
    hx_proxy_free(f->proxy);
    hx_client_free(f->w1);
    hx_client_free(f->w2);
    hx_client_free(f->alice);
    g_free(f->key_file);
    *state = f->hx;
    g_free(f);
    return clean ? 0 : -1;
}

/* The workers and alice; each test starts its client-proxy. */
static int setup(void **state)
{
    fixture_t *f = g_new0(fixture_t, 1);
    f->hx = *state;
    *state = f;
    f->w1 = hx_client_connect(f->hx, "service", "worker-1", true);
    f->w2 = hx_client_connect(f->hx, "service", "worker-2", true);
    f->alice = hx_client_connect(f->hx, "alice", "desk", false);
    f->workers[0] = f->w1;
    f->workers[1] = f->w2;
    f->key_file = hx_write_file(f->hx, "hmac.key", KEY_A, 0600);
    if (f->w1 && f->w2 && f->alice)
        return 0;
    teardown(state); /* cmocka runs none after a failed setup */
    return -1;
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(reload__switches_raw_to_hmac_under_load),
        T(reload__switches_hmac_to_opaque_under_load),
        T(reload__rotates_the_hmac_key_under_load),
        T(reload__switches_strategy_under_load),
        T(reload__keeps_the_running_configuration_when_refused),
        T(reload__never_logs_the_secret),
        T(reload__places_held_requests_on_the_new_stream_without_waiting_for_the_hold),
    };
#undef T
    return cmocka_run_group_tests_name("reload", tests, hx_group_setup_prosody, hx_group_teardown);
}
