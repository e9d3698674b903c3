/* client-proxy's life against a real Prosody: SIGTERM with a request in
 * flight, SIGINT, the stream errors not-authorized and host-unknown,
 * Prosody restarted, the server down at start and the retry timing, and
 * the examples through client-proxy.
 *
 * The fixture (proxy-fixture.h): workers service@localhost/worker-1 and
 * /worker-2 inside this process, users alice and bob.
 */
#include "proxy-fixture.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

/* Pumps until a line after MARK in FX's client-proxy log contains one of
 * WORDS (NULL-terminated, case insensitive); returns it (g_free it) or
 * NULL. */
static char *wait_log_any(px_fixture_t *fx, size_t mark, const char *const *words,
                          int timeout_ms)
{
    gint64 end = hx_now_ms() + timeout_ms;
    do {
        for (const char *const *w = words; *w; w++) {
            char *line = hx_proxy_wait_log(fx->proxy, mark, *w, 0);
            if (line)
                return line;
        }
        hx_pump(fx->hx, 20);
    } while (hx_now_ms() < end);
    return NULL;
}

/* Pumps until the log of FX's client-proxy has N lines containing NEEDLE,
 * or TIMEOUT_MS passed; returns how many it has. */
static int wait_log_count(px_fixture_t *fx, const char *needle, int n, int timeout_ms)
{
    gint64 end = hx_now_ms() + timeout_ms;
    int count;
    for (;;) {
        g_autofree char *log = hx_proxy_log(fx->proxy);
        count = 0;
        for (const char *p = log; (p = strstr(p, needle)); p++)
            count++;
        if (count >= n || hx_now_ms() >= end)
            return count;
        hx_pump(fx->hx, 10);
    }
}

static void lifecycle__answers_pending_requests_on_sigterm(void **state)
{
    px_fixture_t *fx = *state;
    px_hold_all(fx);
    g_autofree char *id =
        hx_iq_send(fx->alice, HX_DOMAIN, "get", "<echo xmlns='urn:example:echo'>p</echo>");
    assert_non_null(hx_take_request(fx->workers, NULL, PX_REPLY_MS));
    unsigned m1 = hx_received_count(fx->w1), m2 = hx_received_count(fx->w2);

    hx_proxy_signal(fx->proxy, SIGTERM);
    xmpp_stanza_t *r = hx_wait_reply(fx->alice, id, PX_REPLY_MS);
    px_assert_error(r, "cancel/service-unavailable");
    assert_string_equal(xmpp_stanza_get_from(r), HX_DOMAIN);
    /* The target sees client-proxy go unavailable. */
    assert_non_null(
        hx_wait_stanza(fx->w1, m1, "presence", "unavailable", HX_DOMAIN, PX_REPLY_MS));
    assert_non_null(
        hx_wait_stanza(fx->w2, m2, "presence", "unavailable", HX_DOMAIN, PX_REPLY_MS));
    int status = hx_proxy_wait_exit(fx->proxy, 5000);
    if (status == -1)
        fail_msg("client-proxy still runs 5 s after SIGTERM");
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    hx_pump(fx->hx, 200);
    assert_int_equal(hx_count_id(fx->alice, id), 1);
}

static void lifecycle__exits_zero_on_sigint(void **state)
{
    px_fixture_t *fx = *state;
    hx_proxy_signal(fx->proxy, SIGINT);
    int status = hx_proxy_wait_exit(fx->proxy, 5000);
    if (status == -1)
        fail_msg("client-proxy still runs 5 s after SIGINT");
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* client-proxy with DOMAIN and SECRET logs CONDITION, the stream error
 * Prosody answers with, and still stops cleanly. */
static void check_stream_error_named(px_fixture_t *fx, const char *domain, const char *secret,
                                     const char *condition)
{
    hx_proxy_opts_t o = {.domain = domain, .secret = secret};
    fx->proxy = hx_proxy_start(fx->hx, &o);
    assert_non_null(fx->proxy);
    g_autofree char *line = hx_proxy_wait_log(fx->proxy, 0, condition, HX_LOG_WAIT_MS);
    if (!line) {
        px_dump_log(fx);
        fail_msg("stderr never mentioned %s", condition);
    }
    print_message("logged: %s\n", line);
    assert_int_equal(px_stop_proxy_checked(fx), 0);
}

static void lifecycle__logs_not_authorized_for_a_wrong_secret(void **state)
{
    check_stream_error_named(*state, HX_DOMAIN, "wrong-secret", "not-authorized");
}

static void lifecycle__logs_host_unknown_for_an_unknown_domain(void **state)
{
    check_stream_error_named(*state, "nosuch.localhost", HX_SECRET, "host-unknown");
}

static void lifecycle__reconnects_after_a_server_restart(void **state)
{
    px_fixture_t *fx = *state;
    size_t mark = hx_proxy_log_mark(fx->proxy);
    assert_true(hx_prosody_restart(hx_prosody(fx->hx)));
    const char *words[] = {"lost", "dropped", "closed", "disconnect", "reset", NULL};
    g_autofree char *line = wait_log_any(fx, mark, words, HX_LOG_WAIT_MS);
    if (!line) {
        px_dump_log(fx);
        fail_msg("client-proxy did not say that the stream dropped");
    }
    print_message("logged: %s\n", line);
    assert_true(hx_client_reconnect(fx->w1));
    assert_true(hx_client_reconnect(fx->w2));
    assert_true(hx_client_reconnect(fx->alice));
    if (!px_wait_ready(fx, fx->alice, fx->workers, 15000)) {
        px_dump_log(fx);
        fail_msg("no forwarding to both resources after the restart");
    }
    g_free(px_forward_once(fx, fx->alice, "get", HX_DOMAIN, "again"));
    assert_true(hx_proxy_running(fx->proxy));
}

static void lifecycle__retries_until_the_server_comes_up(void **state)
{
    px_fixture_t *fx = *state;
    hx_prosody_t *prosody = hx_prosody(fx->hx);
    /* In place of the fixture's client-proxy: one that starts while the
     * server is down. */
    hx_proxy_free(fx->proxy);
    fx->proxy = NULL;
    hx_prosody_stop(prosody);
    hx_proxy_opts_t o = {0};
    fx->proxy = hx_proxy_start(fx->hx, &o);
    assert_non_null(fx->proxy);
    const char *words[] = {"cannot", "could not", "refused", "unreachable", "fail", NULL};
    g_autofree char *line = wait_log_any(fx, 0, words, HX_LOG_WAIT_MS);
    if (!line) {
        px_dump_log(fx);
        fail_msg("nothing on stderr about the unreachable server");
    }
    print_message("logged: %s\n", line);

    /* Retries: the first after about 1 s, then about twice as long. The
     * delays checked are the ones client-proxy chose and logged, not times
     * measured here, so that a loaded machine cannot fail the test; the
     * clock only bounds the wait. */
    int n = wait_log_count(fx, "connecting to", 3, 30000);
    g_autofree char *log = hx_proxy_log(fx->proxy);
    if (n < 3)
        fail_msg("%d connection attempts in 30 s:\n%s", n, log);
    double delay[2];
    const char *p = log;
    for (int i = 0; i < 2; i++) {
        p = strstr(p, "reconnecting in ");
        if (!p || sscanf(p, "reconnecting in %lf s", &delay[i]) != 1)
            fail_msg("no retry delay %d in the log:\n%s", i + 1, log);
        p++;
    }
    print_message("retry delays %.1f s then %.1f s\n", delay[0], delay[1]);
    if (delay[0] < 0.7 || delay[0] > 1.3 || delay[1] < 1.5 || delay[1] > 2.5)
        fail_msg("retry delays %.1f s then %.1f s, expected 1 s then 2 s (+-20%%):\n%s",
                 delay[0], delay[1], log);
    assert_true(hx_proxy_running(fx->proxy));

    assert_true(hx_prosody_restart(prosody));
    gint64 up = hx_now_ms();
    assert_true(hx_client_reconnect(fx->w1));
    assert_true(hx_client_reconnect(fx->w2));
    assert_true(hx_client_reconnect(fx->alice));
    if (!px_wait_ready(fx, fx->alice, fx->workers, 15000)) {
        px_dump_log(fx);
        fail_msg("no forwarding after the server came up");
    }
    print_message("forwarding %lld ms after the server came up\n",
                  (long long)(hx_now_ms() - up));
}

/* The README demo: the example service and the example user, through
 * client-proxy. */
static void lifecycle__serves_the_examples(void **state)
{
    px_fixture_t *fx = *state;
    const char *svc = g_getenv("IMPLEMENTING_CLIENT_BIN");
    const char *usr = g_getenv("USER_REQUEST_BIN");
    if (!svc || !usr)
        skip();
    /* Only the example's resources may be online. */
    hx_client_disconnect(fx->w1);
    hx_client_disconnect(fx->w2);

    g_autofree char *port = g_strdup_printf("%d", hx_c2s_port(fx->hx));
    g_autofree char *out = g_build_filename(hx_dir(fx->hx), "example.out", NULL);
    char *svc_argv[] = {(char *)svc,  "--jid",    HX_TARGET,  "--password", HX_PASSWORD,
                        "--server",   "127.0.0.1", "--port",  port,         "--resource",
                        "ex-1",       "--resource", "ex-2",   NULL};
    pid_t pid = hx_spawn(fx->hx, svc_argv, out);
    assert_true(pid > 0);

    char *argv[] = {(char *)usr, "--jid",      "alice@localhost", "--password", HX_PASSWORD,
                    "--server",  "127.0.0.1",  "--port",          port,         "--to",
                    HX_DOMAIN,   "--count",    "4",               "--timeout",  "10",
                    NULL};
    g_autofree char *uout = NULL, *uerr = NULL;
    int rc = -1;
    /* The example needs a moment to log in and be learned. */
    for (int attempt = 0; attempt < 20 && rc != 0; attempt++) {
        g_free(uout);
        g_free(uerr);
        rc = hx_run(fx->hx, argv, &uout, &uerr, 15000);
        if (rc != 0)
            hx_pump(fx->hx, 250);
    }
    int status = hx_spawn_stop(fx->hx, pid, 3000);
    g_autofree char *svc_out = NULL;
    g_file_get_contents(out, &svc_out, NULL, NULL);
    print_message("user-request:\n%s%s\nimplementing-client:\n%s\n", uout, uerr, svc_out);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(uout, "handled by ex-"));
    assert_non_null(strstr(uout, "seen as " HX_DOMAIN "/"));
    assert_non_null(strstr(svc_out, "<- get from " HX_DOMAIN "/"));
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_true(hx_client_reconnect(fx->w1));
    assert_true(hx_client_reconnect(fx->w2));
}

int main(void)
{
    px_suite_t suite = {.encoding = "raw", .dispatch = "random"};
    const struct CMUnitTest tests[] = {
        PX_TEST(lifecycle__answers_pending_requests_on_sigterm, &suite),
        PX_TEST(lifecycle__exits_zero_on_sigint, &suite),
        PX_TEST_BARE(lifecycle__logs_not_authorized_for_a_wrong_secret, &suite),
        PX_TEST_BARE(lifecycle__logs_host_unknown_for_an_unknown_domain, &suite),
        PX_TEST(lifecycle__reconnects_after_a_server_restart, &suite),
        PX_TEST(lifecycle__retries_until_the_server_comes_up, &suite),
        PX_TEST(lifecycle__serves_the_examples, &suite),
    };
    if (!px_suite_start(&suite)) {
        px_suite_stop(&suite);
        return 1;
    }
    int rc = cmocka_run_group_tests_name("lifecycle", tests, NULL, NULL);
    px_suite_stop(&suite);
    return rc;
}
