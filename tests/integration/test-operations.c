/* What operators see of client-proxy (issue 13), with the real programs on
 * the other side: Debian's Prometheus scrapes [metrics] listen and answers
 * for what the test caused, promtool lints the exposition, /health follows
 * the resources; the test plays systemd's side of the notification protocol
 * (NOTIFY_SOCKET, WATCHDOG_USEC); and slixmpp's XEP-0050 client
 * (admin-client.py) runs the admin commands as an admin, and as a user who
 * is not one, whose commands belong to the service.
 *
 * The group's run has a Prosody with one more account, admin@localhost.
 * Each test gets the workers service@localhost/worker-1 and /worker-2, and
 * alice and bob, in its fixture, and starts its own client-proxy; what it
 * starts besides (Prometheus, the notify socket) is in the fixture too, so
 * that the teardown stops it when the test fails.
 *
 * PROMETHEUS, PROMTOOL and ADMIN_CLIENT (the script) come from meson.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define REPLY_MS 3000
#define ONLINE_MS 8000          /* until client-proxy knows a worker */
#define HTTP_TIMEOUT_S 5        /* one HTTP exchange */
#define PROMETHEUS_MS 30000     /* Prometheus up, and its first scrape */
#define SCRIPT_MS 30000         /* one run of admin-client.py */
#define WATCHDOG_USEC 1000000   /* as systemd's WatchdogSec=1 sets it */
#define COMMANDS_NS "http://jabber.org/protocol/commands"

/* What test 1 causes. */
#define N_RESULTS 12
#define N_ERRORS 3   /* the workers answer an error */
#define N_TIMEOUTS 2 /* nobody answers within request_timeout */

typedef struct {
    gint64 at_ms;
    pid_t pid; /* the sender, from SCM_CREDENTIALS */
    char *text;
} datagram_t;

typedef struct {
    hx_t *hx; /* the group's run, with its Prosody (borrowed) */
    hx_client_t *w1, *w2, *alice, *bob;
    hx_client_t *workers[3];
    hx_proxy_t *proxy;   /* the test's client-proxy, or NULL */
    int metrics_port;    /* its [metrics] listen port, or 0 */
    pid_t prometheus;    /* hx_spawn()ed, or 0 */
    int prometheus_port;
    int notify_fd;       /* systemd's side, or -1 */
    char *notify_path;
    GPtrArray *datagrams; /* datagram_t *, in arrival order */
} fixture_t;

static const char *program(const char *env, const char *fallback)
{
    const char *value = g_getenv(env);
    return value && *value ? value : fallback;
}

/* ---- HTTP, as a scraper does it ------------------------------------------- */

/* GET TARGET (path and query) from 127.0.0.1:PORT over HTTP/1.0, so that the
 * server closes the connection after its answer.  Returns the status code,
 * or -1 with no answer; the header block and the body in new strings *HEAD
 * and *BODY (g_free them; either may be NULL). */
static int http_get(int port, const char *target, char **head, char **body)
{
    if (head)
        *head = NULL;
    if (body)
        *body = NULL;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = HTTP_TIMEOUT_S};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    g_autofree char *request =
        g_strdup_printf("GET %s HTTP/1.0\r\nHost: 127.0.0.1:%d\r\nUser-Agent: test-operations\r\n"
                        "Connection: close\r\n\r\n",
                        target, port);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        write(fd, request, strlen(request)) != (ssize_t)strlen(request)) {
        close(fd);
        return -1;
    }
    g_autoptr(GString) answer = g_string_new(NULL);
    char buffer[8192];
    ssize_t n;
    while ((n = read(fd, buffer, sizeof buffer)) > 0 || (n < 0 && errno == EINTR))
        if (n > 0)
            g_string_append_len(answer, buffer, n);
    close(fd);
    const char *end = strstr(answer->str, "\r\n\r\n");
    int status = -1;
    if (n < 0 || !end || sscanf(answer->str, "HTTP/1.%*d %d", &status) != 1)
        return -1;
    g_autofree char *headers = g_ascii_strdown(answer->str, end - answer->str);
    if (strstr(headers, "transfer-encoding: chunked"))
        fail_msg("GET %s: a chunked answer to HTTP/1.0", target);
    if (head)
        *head = g_steal_pointer(&headers);
    if (body)
        *body = g_strdup(end + 4);
    return status;
}

/* Polls GET TARGET until its status is WANT; returns the body (g_free it),
 * or fails the test with the last answer. */
static char *http_wait_status(fixture_t *f, int port, const char *target, int want,
                              int timeout_ms)
{
    gint64 end = hx_now_ms() + timeout_ms;
    for (;;) {
        char *body = NULL;
        int status = http_get(port, target, NULL, &body);
        if (status == want)
            return body;
        if (hx_now_ms() >= end)
            fail_msg("GET %s: status %d, not %d, after %d ms: %s", target, status, want,
                     timeout_ms, body ? body : "(no answer)");
        g_free(body);
        hx_pump(f->hx, 100);
    }
}

/* ---- Prometheus ------------------------------------------------------------ */

/* Starts Debian's prometheus on a free loopback port, its data and log in
 * the run's directory, scraping only client-proxy's /metrics every second.
 * Nothing else is configured (no alertmanager, no remote write, no rules),
 * so it reaches nothing but that port. */
static void prometheus_start(fixture_t *f)
{
    const char *dir = hx_dir(f->hx);
    int held;
    f->prometheus_port = hx_pick_port(&held);
    g_autofree char *yml = g_strdup_printf("# written by tests/integration/test-operations.c\n"
                                           "global:\n"
                                           "  scrape_interval: 1s\n"
                                           "  scrape_timeout: 1s\n"
                                           "  evaluation_interval: 1s\n"
                                           "scrape_configs:\n"
                                           "  - job_name: client-proxy\n"
                                           "    static_configs:\n"
                                           "      - targets: ['127.0.0.1:%d']\n",
                                           f->metrics_port);
    g_autofree char *config = hx_write_file(f->hx, "prometheus.yml", yml, 0600);
    g_autofree char *data = g_build_filename(dir, "prometheus-data", NULL);
    g_autofree char *log = g_build_filename(dir, "prometheus.log", NULL);
    g_autofree char *config_flag = g_strdup_printf("--config.file=%s", config);
    g_autofree char *data_flag = g_strdup_printf("--storage.tsdb.path=%s", data);
    g_autofree char *listen_flag =
        g_strdup_printf("--web.listen-address=127.0.0.1:%d", f->prometheus_port);
    char *argv[] = {(char *)program("PROMETHEUS", "prometheus"), config_flag, data_flag,
                    listen_flag, "--storage.tsdb.retention.time=1h", "--log.level=info", NULL};
    close(held);
    f->prometheus = hx_spawn(f->hx, argv, log);
    assert_true(f->prometheus > 0);
}

static void prometheus_stop(fixture_t *f)
{
    if (f->prometheus <= 0)
        return;
    hx_spawn_stop(f->hx, f->prometheus, HX_STOP_BOUND_MS);
    f->prometheus = 0;
}

static void dump_prometheus_log(fixture_t *f)
{
    g_autofree char *path = g_build_filename(hx_dir(f->hx), "prometheus.log", NULL);
    g_autofree char *log = hx_read_file(path);
    fprintf(stderr, "---- prometheus.log ----\n%s------------------------\n", log);
}

/* Prometheus's answer to the instant query EXPR: true when it has exactly
 * one sample, its value in *VALUE.  The raw answer in *RAW (g_free it). */
static bool prometheus_query(fixture_t *f, const char *expr, double *value, char **raw)
{
    g_autofree char *escaped = g_uri_escape_string(expr, NULL, FALSE);
    g_autofree char *target = g_strdup_printf("/api/v1/query?query=%s", escaped);
    int status = http_get(f->prometheus_port, target, NULL, raw);
    if (status != 200 || !*raw || !strstr(*raw, "\"status\":\"success\""))
        return false;
    /* {"status":"success","data":{"resultType":"vector","result":[
     *  {"metric":{...},"value":[1700000000.123,"12"]}]}} */
    const char *sample = strstr(*raw, "\"value\":[");
    if (!sample || strstr(sample + 1, "\"value\":["))
        return false;
    const char *number = strstr(sample, ",\"");
    if (!number)
        return false;
    char *after = NULL;
    *value = g_ascii_strtod(number + 2, &after);
    return after && *after == '"';
}

/* Pumps until Prometheus answers EXPR with the value WANT; fails the test
 * with its last answer otherwise. */
static void prometheus_expect(fixture_t *f, const char *expr, double want, int timeout_ms)
{
    gint64 end = hx_now_ms() + timeout_ms;
    for (;;) {
        double value = 0;
        g_autofree char *raw = NULL;
        bool one = prometheus_query(f, expr, &value, &raw);
        if (one && value == want) {
            print_message("prometheus: %s = %g\n", expr, value);
            return;
        }
        if (hx_now_ms() >= end) {
            dump_prometheus_log(f);
            fprintf(stderr, "prometheus answered: %s\n", raw ? raw : "(nothing)");
            fail_msg("prometheus: %s: expected %g", expr, want);
        }
        hx_pump(f->hx, 200);
    }
}

/* ---- client-proxy ---------------------------------------------------------- */

static void dump_log(fixture_t *f)
{
    g_autofree char *log = f->proxy ? hx_proxy_log(f->proxy) : g_strdup("");
    fprintf(stderr, "---- client-proxy stderr ----\n%s-----------------------------\n", log);
}

/* Starts client-proxy with [metrics] listen on a free loopback port, MORE
 * (config lines after [proxy]'s, or NULL) and ENV (hx_proxy_opts_t). */
static void start_proxy(fixture_t *f, int request_timeout, const char *more,
                        const char *const *env)
{
    int held;
    f->metrics_port = hx_pick_port(&held);
    g_autofree char *extra = g_strdup_printf("%s\n[metrics]\nlisten = 127.0.0.1:%d\n",
                                             more ? more : "", f->metrics_port);
    hx_proxy_opts_t options = {.request_timeout = request_timeout, .extra = extra, .env = env};
    close(held);
    f->proxy = hx_proxy_start(f->hx, &options);
    assert_non_null(f->proxy);
}

/* Waits until client-proxy has said that both workers are online. */
static void wait_workers_online(fixture_t *f)
{
    for (int i = 0; f->workers[i]; i++) {
        g_autofree char *needle = g_strdup_printf("%s is online", hx_client_jid(f->workers[i]));
        g_autofree char *line = hx_proxy_wait_log(f->proxy, 0, needle, ONLINE_MS);
        if (!line) {
            dump_log(f);
            fail_msg("client-proxy never said \"%s\"", needle);
        }
    }
}

/* "result", or the error's "type/condition", of REPLY to ID (g_free it);
 * fails the test when there is none. */
static char *outcome_of(xmpp_stanza_t *reply, const char *id)
{
    if (!reply)
        fail_msg("no reply to %s", id);
    if (strcmp(xmpp_stanza_get_type(reply), "result") == 0)
        return g_strdup("result");
    char *error = hx_error_of(reply);
    return error ? error : hx_text(reply);
}

/* An echo request from USER, answered by a worker in HX_ANSWER mode; its
 * outcome as outcome_of() says it (g_free it). */
static char *ask(hx_client_t *user)
{
    g_autofree char *id =
        hx_iq_send(user, HX_DOMAIN, "get", "<echo xmlns='" HX_ECHO_NS "'>n</echo>");
    return outcome_of(hx_wait_reply(user, id, REPLY_MS), id);
}

/* A request from USER that a worker in HX_HOLD mode takes; it answers with
 * an error of TYPE and CONDITION when CONDITION is not NULL, and not at all
 * otherwise.  Its outcome as outcome_of() says it (g_free it). */
static char *ask_held(fixture_t *f, hx_client_t *user, const char *type, const char *condition)
{
    g_autofree char *id =
        hx_iq_send(user, HX_DOMAIN, "get", "<echo xmlns='" HX_ECHO_NS "'>h</echo>");
    hx_client_t *holder = NULL;
    xmpp_stanza_t *request = hx_take_request(f->workers, &holder, REPLY_MS);
    if (!request)
        fail_msg("request %s reached no worker", id);
    if (condition) {
        /* A service that processed the request and failed: not a refusal
         * (feature-not-implemented, service-unavailable), which client-proxy
         * would try on the other resource. */
        xmpp_stanza_t *error = xmpp_stanza_reply_error(request, type, condition, NULL);
        xmpp_stanza_del_attribute(error, "lang");
        xmpp_stanza_del_attribute(error, "from");
        xmpp_stanza_set_to(error, xmpp_stanza_get_from(request));
        hx_send(holder, error);
        xmpp_stanza_release(error);
    }
    return outcome_of(hx_wait_reply(user, id, REPLY_MS + 2000), id);
}

/* ---- systemd's side: the notify socket -------------------------------------- */

static void notify_open(fixture_t *f)
{
    f->notify_path = g_build_filename(hx_dir(f->hx), "notify.sock", NULL);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    assert_true(strlen(f->notify_path) < sizeof sa.sun_path);
    strcpy(sa.sun_path, f->notify_path);
    f->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    assert_true(f->notify_fd >= 0);
    assert_int_equal(bind(f->notify_fd, (struct sockaddr *)&sa, sizeof sa), 0);
    int on = 1; /* the sender's pid with each datagram, as systemd asks */
    assert_int_equal(setsockopt(f->notify_fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof on), 0);
}

static void datagram_free(gpointer data)
{
    datagram_t *d = data;
    g_free(d->text);
    g_free(d);
}

/* Reads what has arrived. */
static void notify_read(fixture_t *f)
{
    for (;;) {
        char text[4096];
        union {
            struct cmsghdr align;
            char bytes[CMSG_SPACE(sizeof(struct ucred))];
        } control;
        struct iovec iov = {.iov_base = text, .iov_len = sizeof text - 1};
        struct msghdr msg = {.msg_iov = &iov,
                             .msg_iovlen = 1,
                             .msg_control = control.bytes,
                             .msg_controllen = sizeof control.bytes};
        ssize_t n = recvmsg(f->notify_fd, &msg, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return;
        datagram_t *d = g_new0(datagram_t, 1);
        d->at_ms = hx_now_ms();
        d->text = g_strndup(text, (gsize)n);
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
                struct ucred cred;
                memcpy(&cred, CMSG_DATA(c), sizeof cred);
                d->pid = cred.pid;
            }
        }
        g_ptr_array_add(f->datagrams, d);
    }
}

static datagram_t *datagram(fixture_t *f, guint i)
{
    return i < f->datagrams->len ? f->datagrams->pdata[i] : NULL;
}

/* Whether datagram D has a line starting with PREFIX. */
static bool has_line(const datagram_t *d, const char *prefix)
{
    g_auto(GStrv) lines = g_strsplit(d->text, "\n", -1);
    for (char **l = lines; *l; l++)
        if (g_str_has_prefix(*l, prefix))
            return true;
    return false;
}

/* What arrived so far, one datagram a line (newlines as '|'), for a failure
 * message or the test's output (g_free it). */
static char *notify_transcript(fixture_t *f, gint64 t0)
{
    GString *out = g_string_new(NULL);
    for (guint i = 0; i < f->datagrams->len; i++) {
        datagram_t *d = datagram(f, i);
        g_autofree char *flat = g_strdelimit(g_strdup(d->text), "\n", '|');
        g_string_append_printf(out, "  %6lld ms  %s\n", (long long)(d->at_ms - t0), flat);
    }
    return g_string_free(out, FALSE);
}

/* Pumps MS milliseconds, reading datagrams as they come, so that their
 * times are those of their sending, to a few milliseconds. */
static void notify_pump(fixture_t *f, int ms)
{
    gint64 end = hx_now_ms() + ms;
    while (hx_now_ms() < end) {
        notify_read(f);
        hx_pump(f->hx, 5);
    }
    notify_read(f);
}

/* Pumps until a datagram at index FROM or later has a line starting with
 * PREFIX; returns its index, or fails the test with what did arrive. */
static guint wait_datagram(fixture_t *f, guint from, const char *prefix, int timeout_ms)
{
    gint64 end = hx_now_ms() + timeout_ms;
    for (;;) {
        notify_read(f);
        for (guint i = from; i < f->datagrams->len; i++)
            if (has_line(datagram(f, i), prefix))
                return i;
        if (hx_now_ms() >= end) {
            gint64 t0 = datagram(f, 0) ? datagram(f, 0)->at_ms : hx_now_ms();
            g_autofree char *transcript = notify_transcript(f, t0);
            dump_log(f);
            fprintf(stderr, "the notify socket got:\n%s", transcript);
            fail_msg("no \"%s\" within %d ms", prefix, timeout_ms);
        }
        hx_pump(f->hx, 5);
    }
}

/* The value of NAME= in datagram D, or NULL (g_free it). */
static char *field_of(const datagram_t *d, const char *name)
{
    g_autofree char *prefix = g_strdup_printf("%s=", name);
    g_auto(GStrv) lines = g_strsplit(d->text, "\n", -1);
    for (char **l = lines; *l; l++)
        if (g_str_has_prefix(*l, prefix))
            return g_strdup(*l + strlen(prefix));
    return NULL;
}

/* ---- admin-client.py -------------------------------------------------------- */

/* Runs admin-client.py as NODE@localhost with STEPS (NULL-terminated) while
 * the workers are pumped, and prints its output; returns its `key=value`
 * lines as a table (free it with g_hash_table_unref).  Fails the test unless
 * it ran every step. */
static GHashTable *run_admin_client(fixture_t *f, const char *node, const char *const *steps)
{
    g_autofree char *jid = g_strdup_printf("%s@localhost", node);
    g_autofree char *port = g_strdup_printf("%d", hx_c2s_port(f->hx));
    GPtrArray *argv = g_ptr_array_new();
    g_ptr_array_add(argv, (char *)program("ADMIN_CLIENT", "admin-client.py"));
    const char *fixed[] = {"--jid", jid, "--password", HX_PASSWORD, "--port", port,
                           "--to", HX_DOMAIN};
    for (size_t i = 0; i < G_N_ELEMENTS(fixed); i++)
        g_ptr_array_add(argv, (char *)fixed[i]);
    for (const char *const *s = steps; *s; s++)
        g_ptr_array_add(argv, (char *)*s);
    g_ptr_array_add(argv, NULL);
    g_autofree char *out = NULL, *err = NULL;
    gint64 t0 = hx_now_ms();
    int rc = hx_run(f->hx, (char *const *)argv->pdata, &out, &err, SCRIPT_MS);
    g_ptr_array_free(argv, TRUE);
    /* printf: cmocka's print_message() cuts at 1 KiB. */
    printf("admin-client.py as %s (%lld ms, exit %d):\n%s%s", jid,
           (long long)(hx_now_ms() - t0), rc, out, err);
    fflush(stdout);
    if (rc != 0) {
        dump_log(f);
        fail_msg("admin-client.py as %s exited %d", jid, rc);
    }
    GHashTable *table = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_auto(GStrv) lines = g_strsplit(out, "\n", -1);
    for (char **l = lines; *l; l++) {
        const char *eq = strchr(*l, '=');
        if (eq)
            g_hash_table_replace(table, g_strndup(*l, (gsize)(eq - *l)), g_strdup(eq + 1));
    }
    return table;
}

/* Value of KEY in T, or fails the test (the script's whole output is in
 * the test's stdout already). */
static const char *kv(GHashTable *t, const char *key)
{
    const char *value = g_hash_table_lookup(t, key);
    if (!value)
        fail_msg("admin-client.py printed no %s", key);
    return value;
}

static void expect_kv(GHashTable *t, const char *key, const char *want)
{
    const char *value = kv(t, key);
    if (strcmp(value, want) != 0)
        fail_msg("admin-client.py: %s=%s, expected %s", key, value, want);
}

/* How many of COUNT echo requests from alice each worker got. */
static void spread(fixture_t *f, int count, unsigned *to1, unsigned *to2)
{
    unsigned before1 = hx_requests_seen(f->w1), before2 = hx_requests_seen(f->w2);
    for (int i = 0; i < count; i++) {
        g_autofree char *outcome = ask(f->alice);
        assert_string_equal(outcome, "result");
    }
    *to1 = hx_requests_seen(f->w1) - before1;
    *to2 = hx_requests_seen(f->w2) - before2;
    print_message("%d requests: %u to worker-1, %u to worker-2\n", count, *to1, *to2);
}

/* The first IQ worker W received at index FROM or later whose payload is
 * NAME in namespace NS, or NULL. */
static xmpp_stanza_t *request_with(hx_client_t *w, unsigned from, const char *name,
                                   const char *ns)
{
    for (unsigned i = from; i < hx_requests_seen(w); i++) {
        xmpp_stanza_t *iq = hx_request_seen(w, i);
        xmpp_stanza_t *payload = xmpp_stanza_get_child_by_name_and_ns(iq, name, ns);
        if (payload)
            return iq;
    }
    return NULL;
}

/* ---- tests ------------------------------------------------------------------- */

static void operations__prometheus_scrapes_what_the_test_caused(void **state)
{
    fixture_t *f = *state;
    start_proxy(f, 1, NULL, NULL);
    wait_workers_online(f);
    g_autofree char *ok = http_wait_status(f, f->metrics_port, "/health", 200, ONLINE_MS);
    assert_string_equal(ok, "ok\n");

    /* What Prometheus must count: results, the workers' errors, timeouts. */
    for (int i = 0; i < N_RESULTS; i++) {
        g_autofree char *outcome = ask(f->alice);
        assert_string_equal(outcome, "result");
    }
    hx_client_set_mode(f->w1, HX_HOLD);
    hx_client_set_mode(f->w2, HX_HOLD);
    for (int i = 0; i < N_ERRORS; i++) {
        g_autofree char *outcome = ask_held(f, f->bob, "cancel", "item-not-found");
        assert_string_equal(outcome, "cancel/item-not-found");
    }
    /* Fewer than unhealthy_after (3), so that neither worker is benched. */
    for (int i = 0; i < N_TIMEOUTS; i++) {
        g_autofree char *outcome = ask_held(f, f->alice, NULL, NULL);
        assert_string_equal(outcome, "wait/remote-server-timeout");
    }
    hx_client_set_mode(f->w1, HX_ANSWER);
    hx_client_set_mode(f->w2, HX_ANSWER);

    prometheus_start(f);
    gint64 t0 = hx_now_ms();
    /* up is Prometheus's own verdict on the scrape: 1 once it parsed one.
     * The first comes about 5 s after its start: its discovery manager
     * hands the targets to the scrape manager every 5 s. */
    prometheus_expect(f, "up{job=\"client-proxy\"}", 1, PROMETHEUS_MS);
    print_message("prometheus: first scrape %lld ms after its start\n",
                  (long long)(hx_now_ms() - t0));
    const struct {
        const char *expr;
        double want;
    } checks[] = {
        {"sum(client_proxy_requests_total{direction=\"inbound\",outcome=\"result\"})", N_RESULTS},
        {"sum(client_proxy_requests_total{direction=\"inbound\",outcome=\"error\"})", N_ERRORS},
        {"sum(client_proxy_requests_total{direction=\"inbound\","
         "outcome=\"remote-server-timeout\"})",
         N_TIMEOUTS},
        {"sum(client_proxy_requests_total{direction=\"inbound\"})",
         N_RESULTS + N_ERRORS + N_TIMEOUTS},
        {"client_proxy_request_duration_seconds_count{direction=\"inbound\"}",
         N_RESULTS + N_ERRORS + N_TIMEOUTS},
        {"client_proxy_request_duration_seconds_bucket{direction=\"inbound\",le=\"+Inf\"}",
         N_RESULTS + N_ERRORS + N_TIMEOUTS},
        {"client_proxy_resources{state=\"online\"}", 2},
        {"client_proxy_resources{state=\"draining\"}", 0},
        {"client_proxy_resources{state=\"benched\"}", 0},
        {"client_proxy_requests_in_flight{direction=\"inbound\"}", 0},
        {"client_proxy_stream_up", 1},
        {"client_proxy_build_info{encoding=\"raw\",dispatch=\"random\"}", 1},
        {"count(client_proxy_resource_requests_in_flight)", 2},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(checks); i++)
        prometheus_expect(f, checks[i].expr, checks[i].want, 3000);

    /* The exposition itself: what promtool says of it. */
    g_autofree char *head = NULL, *text = NULL;
    assert_int_equal(http_get(f->metrics_port, "/metrics", &head, &text), 200);
    if (!strstr(head, "content-type: text/plain; version=0.0.4"))
        fail_msg("GET /metrics: not Prometheus' text format 0.0.4:\n%s", head);
    g_autofree char *saved = hx_write_file(f->hx, "metrics.txt", text, 0600);
    g_autofree char *quoted = g_shell_quote(saved);
    g_autofree char *command =
        g_strdup_printf("exec %s check metrics < %s", program("PROMTOOL", "promtool"), quoted);
    char *argv[] = {"/bin/sh", "-c", command, NULL};
    g_autofree char *out = NULL, *err = NULL;
    int rc = hx_run(f->hx, argv, &out, &err, 30000);
    print_message("promtool check metrics: exit %d, stdout \"%s\", stderr \"%s\"\n", rc, out,
                  err);
    if (rc != 0 || *out || *err) {
        fprintf(stderr, "---- /metrics ----\n%s------------------\n", text);
        fail_msg("promtool check metrics found problems (exit %d): %s%s", rc, out, err);
    }

    /* /health follows the resources, and Prometheus keeps scraping. */
    hx_client_disconnect(f->w1);
    hx_client_disconnect(f->w2);
    g_autofree char *reason = http_wait_status(f, f->metrics_port, "/health", 503, 5000);
    print_message("/health without workers: 503 %s", reason);
    if (!*reason || strchr(reason, '\n') != reason + strlen(reason) - 1 ||
        !strstr(reason, "resource"))
        fail_msg("/health: 503 without a one-line reason: \"%s\"", reason);
    prometheus_expect(f, "client_proxy_resources{state=\"online\"}", 0, 10000);
    prometheus_expect(f, "client_proxy_stream_up", 1, 3000);
}

static void operations__tells_systemd_each_step(void **state)
{
    fixture_t *f = *state;
    notify_open(f);
    g_autofree char *socket_env = g_strdup_printf("NOTIFY_SOCKET=%s", f->notify_path);
    g_autofree char *watchdog_env = g_strdup_printf("WATCHDOG_USEC=%d", WATCHDOG_USEC);
    /* WATCHDOG_PID unset: the watchdog is for whoever reads WATCHDOG_USEC. */
    const char *env[] = {socket_env, watchdog_env, "WATCHDOG_PID", NULL};
    gint64 t0 = hx_now_ms();
    start_proxy(f, 2, NULL, env);
    pid_t pid = hx_proxy_pid(f->proxy);

    /* READY=1 once a resource can take requests: client-proxy has said so
     * by then, and it did not wait for its bound. */
    guint ready = wait_datagram(f, 0, "READY=1", ONLINE_MS);
    g_autofree char *log = hx_proxy_log(f->proxy);
    if (!strstr(log, "service@localhost/worker-1 is online") &&
        !strstr(log, "service@localhost/worker-2 is online")) {
        dump_log(f);
        fail_msg("READY=1 before a resource was online");
    }
    assert_null(strstr(log, "ready anyway"));
    for (guint i = 0; i < ready; i++)
        assert_false(has_line(datagram(f, i), "READY=1"));
    guint status = wait_datagram(f, ready, "STATUS=serving 2 resources", ONLINE_MS);
    for (guint i = 0; i < status; i++)
        if (has_line(datagram(f, i), "STATUS=serving"))
            assert_true(i > ready);

    /* The watchdog: at WATCHDOG_USEC / 2, so never a gap of WATCHDOG_USEC. */
    gint64 window_start = hx_now_ms(), last = 0, widest = 0;
    notify_pump(f, 2500);
    unsigned pets = 0, in_window = 0;
    for (guint i = 0; i < f->datagrams->len; i++) {
        datagram_t *d = datagram(f, i);
        if (!has_line(d, "WATCHDOG=1"))
            continue;
        pets++;
        in_window += d->at_ms >= window_start;
        if (last)
            widest = MAX(widest, d->at_ms - last);
        last = d->at_ms;
    }
    print_message("WATCHDOG=1 %u times; %u in the last 2.5 s; widest gap %lld ms\n", pets,
                  in_window, (long long)widest);
    assert_true(in_window >= 2);
    if (widest >= WATCHDOG_USEC / 1000)
        fail_msg("WATCHDOG=1 %lld ms apart: systemd would have killed it (WatchdogSec=1)",
                 (long long)widest);

    /* SIGHUP: RELOADING=1 with the time it began, then READY=1. */
    gint64 before_us = g_get_monotonic_time();
    guint mark = f->datagrams->len;
    hx_proxy_signal(f->proxy, SIGHUP);
    guint reloading = wait_datagram(f, mark, "RELOADING=1", 5000);
    gint64 after_us = g_get_monotonic_time();
    g_autofree char *usec_text = field_of(datagram(f, reloading), "MONOTONIC_USEC");
    if (!usec_text)
        fail_msg("RELOADING=1 without MONOTONIC_USEC: \"%s\"", datagram(f, reloading)->text);
    gint64 usec = g_ascii_strtoll(usec_text, NULL, 10);
    if (usec < before_us || usec > after_us)
        fail_msg("MONOTONIC_USEC=%s is not CLOCK_MONOTONIC between SIGHUP (%lld) and its "
                 "arrival (%lld)",
                 usec_text, (long long)before_us, (long long)after_us);
    for (guint i = mark; i < reloading; i++)
        assert_false(has_line(datagram(f, i), "READY=1"));
    guint reloaded = wait_datagram(f, reloading, "READY=1", 5000);
    assert_true(reloaded > reloading);

    /* SIGTERM: STOPPING=1, then exit 0. */
    mark = f->datagrams->len;
    hx_proxy_signal(f->proxy, SIGTERM);
    guint stopping = wait_datagram(f, mark, "STOPPING=1", 5000);
    int exit_status = hx_proxy_wait_exit(f->proxy, hx_proxy_wrapper(f->hx) ? HX_WRAPPED_STOP_MS
                                                                           : 5000);
    if (exit_status == -1)
        fail_msg("client-proxy still runs after SIGTERM");
    assert_true(WIFEXITED(exit_status));
    assert_int_equal(WEXITSTATUS(exit_status), 0);
    notify_read(f);
    for (guint i = stopping + 1; i < f->datagrams->len; i++)
        if (has_line(datagram(f, i), "READY=1") || has_line(datagram(f, i), "RELOADING=1"))
            fail_msg("\"%s\" after STOPPING=1", datagram(f, i)->text);

    /* Every datagram came from client-proxy (the kernel says who sent it). */
    for (guint i = 0; i < f->datagrams->len; i++)
        if (datagram(f, i)->pid != pid)
            fail_msg("datagram \"%s\" from pid %d, not client-proxy's %d",
                     datagram(f, i)->text, (int)datagram(f, i)->pid, (int)pid);

    g_autofree char *transcript = notify_transcript(f, t0);
    printf("the notify socket got (ms after the start):\n%s", transcript); /* may pass 1 KiB */
}

static void operations__tells_systemd_ready_after_a_bound_without_resources(void **state)
{
    fixture_t *f = *state;
    hx_client_disconnect(f->w1);
    hx_client_disconnect(f->w2);
    notify_open(f);
    g_autofree char *socket_env = g_strdup_printf("NOTIFY_SOCKET=%s", f->notify_path);
    const char *env[] = {socket_env, "WATCHDOG_USEC", "WATCHDOG_PID", NULL};
    gint64 t0 = hx_now_ms();
    start_proxy(f, 2, NULL, env);
    guint connected = wait_datagram(f, 0, "STATUS=serving 0 resources", ONLINE_MS);
    guint ready = wait_datagram(f, connected, "READY=1", 15000);
    gint64 after = datagram(f, ready)->at_ms - t0;
    g_autofree char *transcript = notify_transcript(f, t0);
    printf("READY=1 %lld ms after the start, with no resource:\n%s", (long long)after,
           transcript);
    /* The bound is g_timeout_add_seconds(5) from the stream coming up,
     * which GLib rounds to a whole second of its own, up to 250 ms early. */
    if (after < 4750)
        fail_msg("READY=1 %lld ms after the start: before its 5 s bound", (long long)after);
    g_autofree char *line = hx_proxy_wait_log(f->proxy, 0, "ready anyway", HX_LOG_WAIT_MS);
    assert_non_null(line);
    for (guint i = 0; i < f->datagrams->len; i++)
        assert_false(has_line(datagram(f, i), "WATCHDOG=1"));
}

static void operations__runs_admin_commands_for_admins_only(void **state)
{
    fixture_t *f = *state;
    start_proxy(f, 2, "[admin]\njids = admin@localhost\n", NULL);
    wait_workers_online(f);
    char *version_args[] = {"--version", NULL};
    g_autofree char *version_out = NULL;
    assert_int_equal(hx_proxy_run(f->hx, version_args, &version_out, NULL, 30000), 0);
    g_auto(GStrv) version_words = g_strsplit(version_out, " ", 3);
    assert_non_null(version_words[1]); /* "client-proxy VERSION (plugin ABI ...)" */
    const char *version = version_words[1];

    /* The admin lists the commands, asks, and drains worker-1. */
    const char *first[] = {"list", "status", "resources", "drain=worker-1", NULL};
    g_autoptr(GHashTable) t = run_admin_client(f, "admin", first);
    expect_kv(t, "list.type", "result");
    expect_kv(t, "list.count", "5");
    expect_kv(t, "list.nodes", "status resources drain undrain reload");
    expect_kv(t, "list.jids", HX_DOMAIN);
    expect_kv(t, "status.from", HX_DOMAIN);
    expect_kv(t, "status.status", "completed");
    expect_kv(t, "status.field.version", version);
    expect_kv(t, "status.field.resources", "2");
    expect_kv(t, "status.field.stream", "up");
    expect_kv(t, "status.field.encoding", "raw");
    expect_kv(t, "status.field.dispatch", "random");
    expect_kv(t, "resources.status", "completed");
    expect_kv(t, "resources.items", "2");
    g_autofree char *names = g_strdup_printf("%s %s", kv(t, "resources.item.0.resource"),
                                             kv(t, "resources.item.1.resource"));
    if (strcmp(names, "worker-1 worker-2") != 0 && strcmp(names, "worker-2 worker-1") != 0)
        fail_msg("resources: %s", names);
    expect_kv(t, "resources.item.0.draining", "no");
    expect_kv(t, "resources.item.1.draining", "no");
    expect_kv(t, "drain.form.status", "executing");
    expect_kv(t, "drain.form.form_type", "form");
    const char *options = kv(t, "drain.form.options");
    assert_non_null(strstr(options, "worker-1"));
    assert_non_null(strstr(options, "worker-2"));
    expect_kv(t, "drain.status", "completed");
    const char *drained = kv(t, "drain.note");
    if (!g_str_has_prefix(drained, "info: worker-1 takes no new requests"))
        fail_msg("drain said: %s", drained);

    /* Drained: worker-2 gets every new request, and the gauge shows it. */
    unsigned to1, to2;
    spread(f, 12, &to1, &to2);
    assert_int_equal(to1, 0);
    assert_int_equal(to2, 12);
    g_autofree char *metrics = NULL;
    assert_int_equal(http_get(f->metrics_port, "/metrics", NULL, &metrics), 200);
    assert_non_null(strstr(metrics, "client_proxy_resources{state=\"draining\"} 1\n"));

    /* Undrained, and reloaded. */
    const char *second[] = {"undrain=worker-1", "resources", "reload", NULL};
    g_autoptr(GHashTable) t2 = run_admin_client(f, "admin", second);
    expect_kv(t2, "undrain.status", "completed");
    const char *undrained = kv(t2, "undrain.note");
    if (!g_str_has_prefix(undrained, "info: worker-1 takes requests again"))
        fail_msg("undrain said: %s", undrained);
    expect_kv(t2, "resources.item.0.draining", "no");
    expect_kv(t2, "resources.item.1.draining", "no");
    expect_kv(t2, "reload.status", "completed");
    const char *reloaded = kv(t2, "reload.note");
    if (!g_str_has_prefix(reloaded, "info: done"))
        fail_msg("reload said: %s", reloaded);
    g_autofree char *line = hx_proxy_wait_log(f->proxy, 0, "reloaded the configuration", HX_LOG_WAIT_MS);
    assert_non_null(line);
    spread(f, 20, &to1, &to2);
    assert_true(to1 > 0);
    assert_true(to2 > 0);

    /* bob is no admin: his commands are the service's, and reach a worker. */
    unsigned seen1 = hx_requests_seen(f->w1), seen2 = hx_requests_seen(f->w2);
    const char *bobs[] = {"list", "status", NULL};
    g_autoptr(GHashTable) t3 = run_admin_client(f, "bob", bobs);
    xmpp_stanza_t *command = request_with(f->w1, seen1, "command", COMMANDS_NS);
    if (!command)
        command = request_with(f->w2, seen2, "command", COMMANDS_NS);
    if (!command)
        fail_msg("bob's command reached no worker");
    g_autofree char *command_text = hx_text(command);
    print_message("a worker got: %s\n", command_text);
    assert_string_equal(hx_child_attr(command, "command", COMMANDS_NS, "node"), "status");
    assert_true(g_str_has_prefix(xmpp_stanza_get_from(command), HX_DOMAIN "/bob@localhost/"));
    xmpp_stanza_t *items = request_with(f->w1, seen1, "query",
                                        "http://jabber.org/protocol/disco#items");
    if (!items)
        items = request_with(f->w2, seen2, "query", "http://jabber.org/protocol/disco#items");
    assert_non_null(items);
    /* What bob got back is the worker's answer (the test worker knows no
     * commands), from the bare domain. */
    expect_kv(t3, "status.type", "error");
    expect_kv(t3, "status.error", "cancel/feature-not-implemented");
    expect_kv(t3, "status.from", HX_DOMAIN);
    expect_kv(t3, "list.type", "error");
    expect_kv(t3, "list.error", "cancel/feature-not-implemented");
}

/* ---- fixture ------------------------------------------------------------------ */

/* Stops what the test started; client-proxy must have exited 0 (on the
 * test's SIGTERM or on ours) with no sanitizer or valgrind report. */
static int teardown(void **state)
{
    fixture_t *f = *state;
    prometheus_stop(f);
    int status = 0;
    if (f->proxy)
        status = hx_proxy_running(f->proxy) ? hx_proxy_stop(f->proxy)
                                            : hx_proxy_wait_exit(f->proxy, 0);
    g_autofree char *log = f->proxy ? hx_proxy_log(f->proxy) : g_strdup("");
    g_autofree char *report = hx_memcheck_report(log); /* sanitizers, valgrind */
    bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0 && !report;
    if (!clean)
        fprintf(stderr, "client-proxy did not stop cleanly (0x%x):\n%s", (unsigned)status, log);
    hx_proxy_free(f->proxy);
    if (f->notify_fd >= 0)
        close(f->notify_fd);
    if (f->notify_path)
        unlink(f->notify_path);
    g_free(f->notify_path);
    g_ptr_array_unref(f->datagrams);
    hx_client_free(f->w1);
    hx_client_free(f->w2);
    hx_client_free(f->alice);
    hx_client_free(f->bob);
    *state = f->hx;
    g_free(f);
    return clean ? 0 : -1;
}

static int setup(void **state)
{
    fixture_t *f = g_new0(fixture_t, 1);
    f->hx = *state;
    *state = f;
    f->notify_fd = -1;
    f->datagrams = g_ptr_array_new_with_free_func(datagram_free);
    f->w1 = hx_client_connect(f->hx, "service", "worker-1", true);
    f->w2 = hx_client_connect(f->hx, "service", "worker-2", true);
    f->alice = hx_client_connect(f->hx, "alice", "desk", false);
    f->bob = hx_client_connect(f->hx, "bob", "phone", false);
    f->workers[0] = f->w1;
    f->workers[1] = f->w2;
    if (f->w1 && f->w2 && f->alice && f->bob)
        return 0;
    teardown(state); /* cmocka runs none after a failed setup */
    return -1;
}

/* The run, its Prosody, and the admin's account in it. */
static int group_setup(void **state)
{
    hx_t *hx = hx_new();
    *state = hx;
    hx_prosody_t *prosody = hx_prosody_new(hx);
    hx_prosody_add_account(prosody, "admin");
    return hx_prosody_start(prosody) ? 0 : -1;
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(operations__prometheus_scrapes_what_the_test_caused),
        T(operations__tells_systemd_each_step),
        T(operations__tells_systemd_ready_after_a_bound_without_resources),
        T(operations__runs_admin_commands_for_admins_only),
    };
#undef T
    return cmocka_run_group_tests_name("operations", tests, group_setup, hx_group_teardown);
}
