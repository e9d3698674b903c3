/* A third-party plugin, built against the installed SDK alone, running in
 * client-proxy against a real Prosody.
 *
 * .ci/sdk-check installs client-proxy into a DESTDIR, builds
 * examples/dispatch-namespace with nothing but the installed header and
 * client-proxy-plugin.pc, and runs this test with:
 *   CLIENT_PROXY_BIN          the installed client-proxy
 *   CLIENT_PROXY_PLUGIN_PATH  the installed plugins directory
 *   SDK_PLUGIN_DIR            where dispatch-namespace.so was built
 * Without SDK_PLUGIN_DIR it is skipped (exit 77), since a plain build has no
 * such plugin.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"

#define REPLY_MS 3000

typedef struct {
    hx_t *hx; /* the group's run, with its Prosody (borrowed) */
    hx_client_t *echo, *ping, *other; /* service@localhost resources */
    hx_client_t *alice;
    hx_proxy_t *proxy;
} fixture_t;

static char *proxy_config_extra(const char *fallback)
{
    return g_strdup_printf("[plugins]\npath = %s\n[dispatch:namespace]\nfallback = %s\n",
                           getenv("SDK_PLUGIN_DIR"), fallback);
}

/* Stops client-proxy (it must exit 0) and frees the clients. */
static int teardown(void **state)
{
    fixture_t *f = *state;
    int status = f->proxy && hx_proxy_running(f->proxy) ? hx_proxy_stop(f->proxy) : 0;
    hx_proxy_free(f->proxy);
    hx_client_free(f->echo);
    hx_client_free(f->ping);
    hx_client_free(f->other);
    hx_client_free(f->alice);
    *state = f->hx;
    g_free(f);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* Three resources of the target, alice, and client-proxy with the plugin,
 * once it knows all three resources. */
static bool fixture_start(fixture_t *f)
{
    f->echo = hx_client_connect(f->hx, "service", "echo-1", true);
    f->ping = hx_client_connect(f->hx, "service", "ping", true);
    f->other = hx_client_connect(f->hx, "service", "other", true);
    f->alice = hx_client_connect(f->hx, "alice", "desk", false);
    if (!f->echo || !f->ping || !f->other || !f->alice)
        return false;

    g_autofree char *extra = proxy_config_extra("decline");
    hx_proxy_opts_t options = {.dispatch = "namespace", .encoding = "hmac", .extra = extra};
    f->proxy = hx_proxy_start(f->hx, &options);
    if (!f->proxy)
        return false;
    g_autofree char *line =
        hx_proxy_wait_log(f->proxy, 0, "service@localhost/other is online", HX_LOG_WAIT_MS);
    g_autofree char *line2 =
        hx_proxy_wait_log(f->proxy, 0, "service@localhost/ping is online", HX_LOG_WAIT_MS);
    g_autofree char *line3 =
        hx_proxy_wait_log(f->proxy, 0, "service@localhost/echo-1 is online", HX_LOG_WAIT_MS);
    if (!line || !line2 || !line3) {
        g_autofree char *log = hx_proxy_log(f->proxy);
        fprintf(stderr, "client-proxy never learnt the resources:\n%s", log);
        return false;
    }
    return true;
}

static int setup(void **state)
{
    fixture_t *f = g_new0(fixture_t, 1);
    f->hx = *state;
    *state = f;
    if (fixture_start(f))
        return 0;
    teardown(state); /* cmocka runs none after a failed setup */
    return -1;
}

/* Sends a request in NS and returns who handled it (0: nobody). */
static hx_client_t *handler_of(fixture_t *f, const char *payload)
{
    unsigned echo = hx_requests_seen(f->echo), ping = hx_requests_seen(f->ping),
             other = hx_requests_seen(f->other);
    xmpp_stanza_t *reply = hx_iq(f->alice, HX_DOMAIN, "get", payload, REPLY_MS);
    assert_non_null(reply);
    assert_string_equal(xmpp_stanza_get_type(reply), "result");
    assert_string_equal(xmpp_stanza_get_from(reply), HX_DOMAIN);
    int handlers = (hx_requests_seen(f->echo) > echo) + (hx_requests_seen(f->ping) > ping) +
                   (hx_requests_seen(f->other) > other);
    assert_int_equal(handlers, 1);
    return hx_requests_seen(f->echo) > echo   ? f->echo
           : hx_requests_seen(f->ping) > ping ? f->ping
                                              : f->other;
}

static void sdk_plugin__routes_each_request_by_its_namespace(void **state)
{
    fixture_t *f = *state;
    for (int i = 0; i < 5; i++) {
        assert_ptr_equal(handler_of(f, "<echo xmlns='" HX_ECHO_NS "'>hi</echo>"), f->echo);
        assert_ptr_equal(handler_of(f, "<ping xmlns='urn:xmpp:ping'/>"), f->ping);
    }
}

static void sdk_plugin__declines_a_namespace_nobody_is_named_after(void **state)
{
    fixture_t *f = *state;
    xmpp_stanza_t *reply = hx_iq(f->alice, HX_DOMAIN, "get",
                                 "<query xmlns='urn:example:weather'/>", REPLY_MS);
    assert_non_null(reply);
    g_autofree char *error = hx_error_of(reply);
    assert_string_equal(error, "cancel/service-unavailable");
}

static void sdk_plugin__reports_its_config_error_with_group_and_key(void **state)
{
    hx_t *hx = *state;
    g_autofree char *extra = proxy_config_extra("sometimes");
    hx_proxy_opts_t options = {.dispatch = "namespace", .encoding = "hmac", .extra = extra};
    g_autofree char *config = hx_proxy_write_config(hx, "bad-fallback.conf", &options);
    char *argv[] = {(char *)hx_proxy_bin(), "--check-config", config, NULL};
    g_autofree char *out = NULL, *err = NULL;
    assert_int_equal(hx_run(hx, argv, &out, &err, 10000), 2);
    g_autofree char *expected = g_strdup_printf(
        "client-proxy: %s: [dispatch:namespace] fallback: expected \"decline\" or \"any\", got "
        "\"sometimes\"\n",
        config);
    assert_string_equal(err, expected);
}

int main(void)
{
    if (!getenv("SDK_PLUGIN_DIR")) {
        printf("skipped: SDK_PLUGIN_DIR is not set (.ci/sdk-check sets it)\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(sdk_plugin__routes_each_request_by_its_namespace, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(sdk_plugin__declines_a_namespace_nobody_is_named_after,
                                        setup, teardown),
        cmocka_unit_test(sdk_plugin__reports_its_config_error_with_group_and_key),
    };
    return cmocka_run_group_tests_name("sdk-plugin", tests, hx_group_setup_prosody,
                                       hx_group_teardown);
}
