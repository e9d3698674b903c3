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

static component_t *component_connect(const char *secret)
{
    component_t *c = g_new0(component_t, 1);
    c->conn = xmpp_conn_new(hx_ctx());
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
                                (unsigned short)hx_component_port(),
                                component_cb, c);
    assert_int_equal(rc, XMPP_EOK);
    hx_pump_until(component_settled, c, 5000);
    return c;
}

static bool component_gone(void *arg)
{
    return ((component_t *)arg)->state == 2;
}

static void component_free(component_t *c)
{
    if (c->state == 1) {
        xmpp_disconnect(c->conn);
        hx_pump_until(component_gone, c, 3000);
    }
    xmpp_conn_release(c->conn);
    g_free(c->stream_error);
    g_free(c);
}

/* ---- tests ---------------------------------------------------------------- */

static void accounts_log_in_and_talk(void **state)
{
    (void)state;
    hx_client_t *w = hx_client_connect("service", "worker-1", true);
    hx_client_t *alice = hx_client_connect("alice", "desk", false);
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

    hx_client_free(alice);
    hx_client_free(w);
}

static void component_right_secret_connects(void **state)
{
    (void)state;
    component_t *c = component_connect(HX_SECRET);
    assert_int_equal(c->state, 1);

    hx_client_t *alice = hx_client_connect("alice", "desk", false);
    assert_non_null(alice);
    hx_send_xml(alice, "<message to='proxy.localhost'><body>hi</body></message>");
    for (int i = 0; i < 100 && c->messages == 0; i++)
        hx_pump(10);
    assert_int_equal(c->messages, 1);
    hx_client_free(alice);
    component_free(c);
}

static void component_wrong_secret_refused(void **state)
{
    (void)state;
    component_t *c = component_connect("wrong");
    hx_pump_until(component_gone, c, 3000);
    assert_int_equal(c->state, 2);
    assert_non_null(c->stream_error);
    assert_string_equal(c->stream_error, "not-authorized");
    component_free(c);
}

static void prosody_restarts_on_same_ports(void **state)
{
    (void)state;
    int c2s = hx_c2s_port();
    hx_client_t *alice = hx_client_connect("alice", "desk", false);
    assert_non_null(alice);
    assert_true(hx_prosody_restart());
    assert_int_equal(hx_c2s_port(), c2s);
    assert_false(hx_client_connected(alice));
    assert_true(hx_client_reconnect(alice));
    hx_client_free(alice);
}

/* ---- cleanup after failure and after SIGTERM -------------------------------
 * The test binary runs itself as a child in a mode that starts Prosody,
 * prints "DIR PID", and then fails an assertion or hangs until killed. */

static void child_fails(void **state)
{
    (void)state;
    printf("%s %d\n", hx_dir(), (int)hx_prosody_pid());
    fflush(stdout);
    assert_true(false);
}

static int child_main(const char *mode)
{
    if (strcmp(mode, "--child-fail") == 0) {
        const struct CMUnitTest t[] = {cmocka_unit_test(child_fails)};
        return cmocka_run_group_tests_name("child", t, hx_group_start_prosody,
                                           hx_group_cleanup);
    }
    if (!hx_prosody_start())
        return 3;
    printf("%s %d\n", hx_dir(), (int)hx_prosody_pid());
    fflush(stdout);
    for (;;)
        hx_pump(100);
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

static void cleanup_after_failed_test(void **state)
{
    (void)state;
    run_child_and_check("--child-fail", 0);
}

static void cleanup_after_sigterm(void **state)
{
    (void)state;
    run_child_and_check("--child-hang", SIGTERM);
}

static void cleanup_after_sigint(void **state)
{
    (void)state;
    run_child_and_check("--child-hang", SIGINT);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        return child_main(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accounts_log_in_and_talk),
        cmocka_unit_test(component_right_secret_connects),
        cmocka_unit_test(component_wrong_secret_refused),
        cmocka_unit_test(prosody_restarts_on_same_ports),
        cmocka_unit_test(cleanup_after_failed_test),
        cmocka_unit_test(cleanup_after_sigterm),
        cmocka_unit_test(cleanup_after_sigint),
    };
    return cmocka_run_group_tests_name("harness", tests, hx_group_start_prosody,
                                       hx_group_cleanup);
}
