/* The harness itself, before any client-proxy is involved: Prosody starts
 * and stops, accounts log in, a component with the right secret connects and
 * one with a wrong secret is refused, Prosody restarts on the same ports and
 * data, and the temporary directory and Prosody are gone after a failed test
 * and after SIGTERM. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

/* ---- an in-process component, only to check the server side ------------- */

typedef struct {
    hx_t *hx;
    xmpp_conn_t *conn;
    int state; /* 0 connecting, 1 connected, 2 disconnected */
    char *stream_error;
    int messages;
} component_t;

static void component_cb(xmpp_conn_t *conn, xmpp_conn_event_t ev, int error,
                         xmpp_stream_error_t *se, void *data)
{
    (void)conn;
    (void)error;
    component_t *c = data;
    if (ev == XMPP_CONN_CONNECT) {
        c->state = 1;
        return;
    }
    c->state = 2;
    if (se && !c->stream_error) {
        /* The condition is the name of the error's first child. */
        const char *cond = "?";
        for (xmpp_stanza_t *ch = se->stanza ? xmpp_stanza_get_children(se->stanza)
                                            : NULL;
             ch; ch = xmpp_stanza_get_next(ch)) {
            if (xmpp_stanza_is_tag(ch) &&
                strcmp(xmpp_stanza_get_name(ch), "text") != 0) {
                cond = xmpp_stanza_get_name(ch);
                break;
            }
        }
        c->stream_error = g_strdup(cond);
    }
}

static void ignore_cb(xmpp_conn_t *conn, xmpp_conn_event_t ev, int error,
                      xmpp_stream_error_t *se, void *data)
{
    (void)conn;
    (void)ev;
    (void)error;
    (void)se;
    (void)data;
}

static int component_stanza(xmpp_conn_t *conn, xmpp_stanza_t *st, void *data)
{
    (void)conn;
    component_t *c = data;
    if (strcmp(xmpp_stanza_get_name(st), "message") == 0)
        c->messages++;
    return 1;
}

static bool component_settled(void *arg)
{
    return ((component_t *)arg)->state != 0;
}

/* Connects a component with SECRET; it is stored in *OUT at once, so that
 * the teardown frees it when an assertion here fails. */
static component_t *component_connect(hx_t *hx, const char *secret, component_t **out)
{
    component_t *c = g_new0(component_t, 1);
    *out = c;
    c->hx = hx;
    c->conn = xmpp_conn_new(hx_ctx(hx));
    xmpp_conn_set_jid(c->conn, HX_DOMAIN);
    /* libstrophe 0.12.2 leaves a component connection without its
     * stream-management state and crashes on the first send or disconnect
     * (notes/libstrophe.md).  A client connect to "" allocates it, then fails
     * at once.  It needs the JID set first, or it fails before that. */
    int rc = xmpp_connect_client(c->conn, "", 1, ignore_cb, NULL);
    assert_int_not_equal(rc, XMPP_EOK);
    assert_true(xmpp_conn_is_disconnected(c->conn));
    xmpp_conn_set_pass(c->conn, secret);
    xmpp_handler_add(c->conn, component_stanza, NULL, NULL, NULL, c);
    rc = xmpp_connect_component(c->conn, "127.0.0.1",
                                (unsigned short)hx_prosody_component_port(hx_prosody(hx)),
                                component_cb, c);
    assert_int_equal(rc, XMPP_EOK);
    hx_pump_until(hx, component_settled, c, 5000);
    return c;
}

static bool component_gone(void *arg)
{
    return ((component_t *)arg)->state == 2;
}

static void component_free(component_t *c)
{
    if (!c)
        return;
    if (c->state == 1) {
        xmpp_disconnect(c->conn);
        hx_pump_until(c->hx, component_gone, c, 3000);
    }
    xmpp_conn_release(c->conn);
    g_free(c->stream_error);
    g_free(c);
}

/* ---- fixture --------------------------------------------------------------
 * What a test connects, freed by the teardown even when the test fails. */

typedef struct {
    hx_t *hx; /* the group's run, with its Prosody (borrowed) */
    hx_client_t *worker, *alice;
    component_t *component;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = g_new0(fixture_t, 1);
    f->hx = *state;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    hx_client_free(f->alice);
    hx_client_free(f->worker);
    component_free(f->component);
    *state = f->hx;
    g_free(f);
    return 0;
}

/* ---- tests ---------------------------------------------------------------- */

static void harness__logs_accounts_in_and_lets_them_talk(void **state)
{
    fixture_t *f = *state;
    hx_client_t *w = f->worker = hx_client_connect(f->hx, "service", "worker-1", true);
    hx_client_t *alice = f->alice = hx_client_connect(f->hx, "alice", "desk", false);
    assert_non_null(w);
    assert_non_null(alice);
    assert_string_equal(hx_client_jid(alice), "alice@localhost/desk");

    xmpp_stanza_t *r = hx_iq(alice, "service@localhost/worker-1", "get",
                             "<echo xmlns='urn:example:echo'>hi</echo>", 3000);
    assert_non_null(r);
    assert_string_equal(xmpp_stanza_get_type(r), "result");
    assert_string_equal(
        hx_child_attr(r, "handled-by", HX_ECHO_NS, "resource"), "worker-1");
    assert_string_equal(hx_child_attr(r, "handled-by", HX_ECHO_NS, "from"),
                        "alice@localhost/desk");

    r = hx_iq(alice, "service@localhost/worker-1", "get",
              "<ping xmlns='urn:xmpp:ping'/>", 3000);
    assert_non_null(r);
    assert_string_equal(xmpp_stanza_get_type(r), "result");

    r = hx_iq(alice, "service@localhost/worker-1", "set",
              "<other xmlns='urn:example:other'/>", 3000);
    assert_non_null(r);
    g_autofree char *err = hx_error_of(r);
    assert_string_equal(err, "cancel/feature-not-implemented");

    /* A held request waits for the test. */
    hx_client_set_mode(w, HX_HOLD);
    g_autofree char *id = hx_iq_send(alice, "service@localhost/worker-1", "get",
                                     "<echo xmlns='urn:example:echo'>x</echo>");
    hx_client_t *workers[] = {w, NULL}, *holder = NULL;
    xmpp_stanza_t *req = hx_take_request(workers, &holder, 3000);
    assert_non_null(req);
    assert_ptr_equal(holder, w);
    assert_null(hx_wait_reply(alice, id, 200));
    hx_answer(w, req, NULL);
    assert_non_null(hx_wait_reply(alice, id, 3000));
}

static void harness__connects_a_component_with_the_right_secret(void **state)
{
    fixture_t *f = *state;
    component_t *c = component_connect(f->hx, HX_SECRET, &f->component);
    assert_int_equal(c->state, 1);

    hx_client_t *alice = f->alice = hx_client_connect(f->hx, "alice", "desk", false);
    assert_non_null(alice);
    hx_send_xml(alice, "<message to='proxy.localhost'><body>hi</body></message>");
    for (int i = 0; i < 100 && c->messages == 0; i++)
        hx_pump(f->hx, 10);
    assert_int_equal(c->messages, 1);
}

static void harness__refuses_a_component_with_a_wrong_secret(void **state)
{
    fixture_t *f = *state;
    component_t *c = component_connect(f->hx, "wrong", &f->component);
    hx_pump_until(f->hx, component_gone, c, 3000);
    assert_int_equal(c->state, 2);
    assert_non_null(c->stream_error);
    assert_string_equal(c->stream_error, "not-authorized");
}

static void harness__restarts_prosody_on_the_same_ports(void **state)
{
    fixture_t *f = *state;
    hx_prosody_t *prosody = hx_prosody(f->hx);
    int c2s = hx_prosody_c2s_port(prosody);
    hx_client_t *alice = f->alice = hx_client_connect(f->hx, "alice", "desk", false);
    assert_non_null(alice);
    assert_true(hx_prosody_restart(prosody));
    assert_int_equal(hx_prosody_c2s_port(prosody), c2s);
    assert_false(hx_client_connected(alice));
    assert_true(hx_client_reconnect(alice));
}

/* ---- cleanup after failure and after SIGTERM -------------------------------
 * The test binary runs itself as a child in a mode that starts Prosody,
 * prints "DIR PID", and then fails an assertion or hangs until killed. */

static void child__fails_on_purpose(void **state)
{
    hx_t *hx = *state;
    printf("%s %d\n", hx_dir(hx), (int)hx_prosody_pid(hx_prosody(hx)));
    fflush(stdout);
    assert_true(false);
}

static int child_main(const char *mode)
{
    if (strcmp(mode, "--child-fail") == 0) {
        const struct CMUnitTest t[] = {cmocka_unit_test(child__fails_on_purpose)};
        return cmocka_run_group_tests_name("child", t, hx_group_setup_prosody,
                                           hx_group_teardown);
    }
    /* --child-hang: the run is never freed; only the emergency cleanup can
     * stop Prosody and remove the directory. */
    hx_t *hx = hx_new();
    hx_prosody_t *prosody = hx_prosody_new(hx);
    if (!hx_prosody_start(prosody))
        return 3;
    printf("%s %d\n", hx_dir(hx), (int)hx_prosody_pid(prosody));
    fflush(stdout);
    for (;;)
        hx_pump(hx, 100);
}

static bool pid_gone(pid_t pid)
{
    if (kill(pid, 0) != 0)
        return errno == ESRCH;
    /* A zombie waiting for its reaper counts as gone. */
    g_autofree char *path = g_strdup_printf("/proc/%d/stat", (int)pid);
    g_autofree char *stat = NULL;
    if (!g_file_get_contents(path, &stat, NULL, NULL))
        return true;
    const char *p = strrchr(stat, ')');
    return p && p[1] == ' ' && p[2] == 'Z';
}

static void run_child_and_check(const char *mode, int sig)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 2); /* the child's expected failure report */
        close(fds[0]);
        close(fds[1]);
        execl("/proc/self/exe", "test-harness", mode, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    FILE *in = fdopen(fds[0], "r");
    char dir[4096] = "";
    int prosody = 0;
    char line[4200];
    while (fgets(line, sizeof line, in)) {
        if (sscanf(line, "%4095s %d", dir, &prosody) == 2 && dir[0] == '/')
            break;
    }
    assert_true(prosody > 0);
    struct stat sb;
    assert_int_equal(stat(dir, &sb), 0);
    if (sig)
        kill(pid, sig);
    int status;
    waitpid(pid, &status, 0);
    fclose(in);
    if (sig) {
        assert_true(WIFSIGNALED(status));
        assert_int_equal(WTERMSIG(status), sig);
    } else {
        assert_true(WIFEXITED(status));
        assert_int_not_equal(WEXITSTATUS(status), 0);
    }
    for (int i = 0; i < 300 && !pid_gone(prosody); i++)
        g_usleep(10 * 1000);
    assert_true(pid_gone(prosody));
    assert_int_not_equal(stat(dir, &sb), 0);
}

static void harness__cleans_up_after_a_failed_test(void **state)
{
    (void)state;
    run_child_and_check("--child-fail", 0);
}

static void harness__cleans_up_after_sigterm(void **state)
{
    (void)state;
    run_child_and_check("--child-hang", SIGTERM);
}

static void harness__cleans_up_after_sigint(void **state)
{
    (void)state;
    run_child_and_check("--child-hang", SIGINT);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        return child_main(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(harness__logs_accounts_in_and_lets_them_talk, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(harness__connects_a_component_with_the_right_secret,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(harness__refuses_a_component_with_a_wrong_secret, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(harness__restarts_prosody_on_the_same_ports, setup,
                                        teardown),
        cmocka_unit_test(harness__cleans_up_after_a_failed_test),
        cmocka_unit_test(harness__cleans_up_after_sigterm),
        cmocka_unit_test(harness__cleans_up_after_sigint),
    };
    return cmocka_run_group_tests_name("harness", tests, hx_group_setup_prosody,
                                       hx_group_teardown);
}
