/* Two client-proxy instances serving one component domain on one ejabberd
 * (README, "Several instances on one domain").
 *
 * ejabberd hands each stanza for a domain with several component connections
 * to one of them at random.  So each instance has a domain of its own
 * ([component] instance_domain, i1.proxy.localhost and i2.proxy.localhost),
 * served on its own listener next to the shared proxy.localhost: requests to
 * proxy.localhost are split between the instances by ejabberd, each instance
 * forwards them from <its instance domain>/<token>, and the replies and the
 * target's presence come back to it alone.
 *
 *   instances__split_the_shared_domain_and_answer_each_request_once
 *       USERS users keep IN_FLIGHT requests in flight each, REQUESTS in
 *       all: every one gets exactly one reply, a result from
 *       proxy.localhost with its own id and payload, and both instances
 *       forwarded some (the reply's echoed handled-by/@from names the
 *       instance domain the resource saw); neither instance dropped a reply
 *       or timed out
 *   instances__both_see_a_resource_leave_and_return
 *       a resource that goes offline is offline for both instances (its
 *       unavailable presence goes to each instance domain), gets no more
 *       requests, and is back for both when it logs in again
 *   instances__share_an_ejabberd_that_starts_no_epmd
 *       ejabberd's VM was told to start no epmd
 *
 * The target service@localhost runs WORKERS resources inside this process
 * (clients.h), answering at once.  Skips (exit 77 for meson) when ejabberd
 * is not installed or cannot be run from here (hx_ejabberd_missing()).
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
#include <unistd.h>

#include "harness.h"

#define INSTANCES 2
#define WORKERS 3
#define USERS 2
#define REQUESTS 400
#define IN_FLIGHT 8         /* per user */
#define REQUEST_TIMEOUT_S 10 /* a lost reply shows as an error, not a hang */
#define READY_MS 20000      /* until both instances know every resource */
#define PRESENCE_MS 5000    /* until both instances saw a presence change */
#define LOAD_MS 60000       /* bound of one round of load */
#define KEY "k1 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"

static const char *const user_names[USERS] = {"alice", "bob"};

/* The group's state. */
typedef struct {
    hx_t *hx;             /* the run */
    hx_ejabberd_t *ej;    /* its ejabberd (owned by hx), NULL when skipped */
    const char *missing;  /* why ejabberd cannot run here, or NULL */
    unsigned epmd_before; /* epmd processes before ejabberd started */
} suite_t;

/* Each test's. */
typedef struct {
    suite_t *suite;
    hx_t *hx;
    hx_ejabberd_t *ej;
    hx_client_t *workers[WORKERS + 1]; /* NULL-terminated */
    hx_client_t *users[USERS];
    char *key_file;
    hx_proxy_t *proxies[INSTANCES];
    unsigned payloads; /* sent so far: request N carries "nN" */
} fx_t;

typedef struct {
    char *id;
    unsigned seq; /* the payload carries it: the result must echo it */
    int user;
    int replies;
} req_t;

typedef struct {
    unsigned sent, replied, results, duplicates, strays;
    unsigned by_instance[INSTANCES];
    unsigned by_worker[WORKERS];
    GPtrArray *problems; /* char *: the first few, for the message */
    gint64 ms;
} stats_t;

/* ---- helpers -------------------------------------------------------------- */

static void dump_logs(fx_t *fx)
{
    for (int i = 0; i < INSTANCES; i++) {
        g_autofree char *log = fx->proxies[i] ? hx_proxy_log(fx->proxies[i]) : g_strdup("");
        fprintf(stderr, "---- client-proxy %d (%s) stderr ----\n%s", i + 1,
                hx_ejabberd_instance_domain(fx->ej, i), log);
    }
    fprintf(stderr, "-------------------------------------\n");
}

/* Number of processes named epmd. */
static unsigned count_epmd(void)
{
    unsigned n = 0;
    GDir *proc = g_dir_open("/proc", 0, NULL);
    const char *name;
    while (proc && (name = g_dir_read_name(proc))) {
        if (!g_ascii_isdigit(name[0]))
            continue;
        g_autofree char *path = g_strdup_printf("/proc/%s/comm", name);
        g_autofree char *comm = NULL;
        if (g_file_get_contents(path, &comm, NULL, NULL) &&
            strcmp(g_strstrip(comm), "epmd") == 0)
            n++;
    }
    if (proc)
        g_dir_close(proc);
    return n;
}

/* Which instance domain FROM (a JID DOMAIN/TOKEN) is on, or -1. */
static int instance_of(fx_t *fx, const char *from)
{
    for (int i = 0; from && i < INSTANCES; i++) {
        const char *d = hx_ejabberd_instance_domain(fx->ej, i);
        size_t n = strlen(d);
        if (strncmp(from, d, n) == 0 && from[n] == '/' && from[n + 1])
            return i;
    }
    return -1;
}

static int worker_of(fx_t *fx, const char *resource)
{
    for (int w = 0; resource && w < WORKERS; w++) {
        if (strcmp(resource, hx_client_resource(fx->workers[w])) == 0)
            return w;
    }
    return -1;
}

static void problem(stats_t *s, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void problem(stats_t *s, const char *fmt, ...)
{
    if (s->problems->len >= 10)
        return;
    va_list ap;
    va_start(ap, fmt);
    g_ptr_array_add(s->problems, g_strdup_vprintf(fmt, ap));
    va_end(ap);
}

/* Looks at what USER received since *SCANNED: replies to our requests. */
static void scan(fx_t *fx, int u, unsigned *scanned, GHashTable *by_id,
                 unsigned *in_flight, stats_t *s)
{
    hx_client_t *c = fx->users[u];
    for (; *scanned < hx_received_count(c); (*scanned)++) {
        xmpp_stanza_t *st = hx_received(c, *scanned);
        if (strcmp(xmpp_stanza_get_name(st), "iq") != 0)
            continue;
        const char *id = xmpp_stanza_get_id(st);
        req_t *r = id ? g_hash_table_lookup(by_id, id) : NULL;
        g_autofree char *text = hx_text(st);
        if (!r || r->user != u) {
            s->strays++;
            problem(s, "a stray IQ: %s", text);
            continue;
        }
        if (++r->replies > 1) {
            s->duplicates++;
            problem(s, "a second reply to %s: %s", id, text);
            continue;
        }
        s->replied++;
        in_flight[u]--;
        const char *type = xmpp_stanza_get_type(st);
        if (!type || strcmp(type, "result") != 0) {
            problem(s, "not a result: %s", text);
            continue;
        }
        g_autofree char *want = g_strdup_printf("n%u", r->seq);
        const char *echoed = hx_echo_text(st);
        const char *from = xmpp_stanza_get_from(st), *to = xmpp_stanza_get_to(st);
        if (!from || strcmp(from, HX_DOMAIN) != 0 || !to ||
            strcmp(to, hx_client_jid(c)) != 0 || !echoed ||
            strcmp(echoed, want) != 0) {
            problem(s, "expected a result from %s to %s echoing %s: %s", HX_DOMAIN,
                    hx_client_jid(c), want, text);
            continue;
        }
        int inst = instance_of(fx, hx_child_attr(st, "handled-by", HX_ECHO_NS, "from"));
        int w = worker_of(fx, hx_child_attr(st, "handled-by", HX_ECHO_NS, "resource"));
        if (inst < 0 || w < 0) {
            problem(s, "the resource saw no instance domain as sender: %s", text);
            continue;
        }
        s->results++;
        s->by_instance[inst]++;
        s->by_worker[w]++;
    }
}

/* Sends N gets to HX_DOMAIN from the users, IN_FLIGHT in flight per user,
 * until every one is answered; then checks that each got exactly one
 * result, and that both instances forwarded some. */
static void load(fx_t *fx, unsigned n, stats_t *s)
{
    memset(s, 0, sizeof *s);
    s->problems = g_ptr_array_new_with_free_func(g_free);
    GPtrArray *all = g_ptr_array_new();
    GHashTable *by_id = g_hash_table_new(g_str_hash, g_str_equal);
    unsigned in_flight[USERS] = {0}, scanned[USERS];
    for (int u = 0; u < USERS; u++)
        scanned[u] = hx_received_count(fx->users[u]);

    gint64 start = hx_now_ms(), end = start + LOAD_MS;
    while (s->replied < n) {
        for (int u = 0; u < USERS; u++) {
            while (in_flight[u] < IN_FLIGHT && s->sent < n) {
                req_t *r = g_new0(req_t, 1);
                r->seq = ++fx->payloads;
                r->user = u;
                g_autofree char *payload =
                    g_strdup_printf("<echo xmlns='" HX_ECHO_NS "'>n%u</echo>", r->seq);
                r->id = hx_iq_send(fx->users[u], HX_DOMAIN, "get", payload);
                g_ptr_array_add(all, r);
                g_hash_table_insert(by_id, r->id, r);
                in_flight[u]++;
                s->sent++;
            }
        }
        hx_pump(fx->hx, 2);
        for (int u = 0; u < USERS; u++)
            scan(fx, u, &scanned[u], by_id, in_flight, s);
        if (hx_now_ms() > end)
            break;
    }
    s->ms = hx_now_ms() - start;
    /* Late duplicates or strays. */
    hx_pump(fx->hx, 500);
    for (int u = 0; u < USERS; u++)
        scan(fx, u, &scanned[u], by_id, in_flight, s);

    unsigned unanswered = 0;
    for (unsigned i = 0; i < all->len; i++) {
        req_t *r = g_ptr_array_index(all, i);
        if (r->replies == 0) {
            if (unanswered++ == 0)
                problem(s, "no reply to %s (from %s)", r->id, user_names[r->user]);
        }
    }
    printf("instances: %u requests in %" G_GINT64_FORMAT " ms: %u results, %u "
           "unanswered, %u duplicates, %u strays; by instance %u/%u; by resource "
           "%u/%u/%u\n",
           s->sent, s->ms, s->results, unanswered, s->duplicates, s->strays,
           s->by_instance[0], s->by_instance[1], s->by_worker[0], s->by_worker[1],
           s->by_worker[2]);
    fflush(stdout);

    bool bad = s->sent != n || s->results != n || unanswered || s->duplicates ||
               s->strays || s->problems->len > 0;
    for (int i = 0; i < INSTANCES; i++)
        bad = bad || s->by_instance[i] == 0;
    if (bad) {
        for (unsigned i = 0; i < s->problems->len; i++)
            fprintf(stderr, "  %s\n", (char *)g_ptr_array_index(s->problems, i));
        dump_logs(fx);
    }
    for (unsigned i = 0; i < all->len; i++) {
        req_t *r = g_ptr_array_index(all, i);
        g_free(r->id);
        g_free(r);
    }
    g_ptr_array_free(all, TRUE);
    g_hash_table_destroy(by_id);
    g_ptr_array_free(s->problems, TRUE);
    s->problems = NULL;

    assert_int_equal(s->sent, n);
    assert_int_equal(unanswered, 0);
    assert_int_equal(s->duplicates, 0);
    assert_int_equal(s->strays, 0);
    assert_int_equal(s->results, n);
    for (int i = 0; i < INSTANCES; i++) {
        if (s->by_instance[i] == 0)
            fail_msg("instance %d (%s) forwarded none of %u requests", i + 1,
                     hx_ejabberd_instance_domain(fx->ej, i), n);
    }
}

/* Neither instance dropped a reply (one reaching the instance that did not
 * forward its request would be "dropped IQ ... answers no request") or let
 * a request time out. */
static void assert_logs_clean(fx_t *fx)
{
    static const char *const bad[] = {"dropped IQ", "timed out"};
    for (int i = 0; i < INSTANCES; i++) {
        for (size_t b = 0; b < G_N_ELEMENTS(bad); b++) {
            if (hx_proxy_log_count(fx->proxies[i], 0, bad[b]) > 0) {
                dump_logs(fx);
                fail_msg("client-proxy %d logged \"%s\"", i + 1, bad[b]);
            }
        }
    }
}

/* Waits until instance I's log after MARK says NEEDLE. */
static void wait_log(fx_t *fx, int i, size_t mark, const char *needle, int timeout_ms)
{
    g_autofree char *line = hx_proxy_wait_log(fx->proxies[i], mark, needle, timeout_ms);
    if (!line) {
        dump_logs(fx);
        fail_msg("client-proxy %d (%s) never logged \"%s\"", i + 1,
                 hx_ejabberd_instance_domain(fx->ej, i), needle);
    }
}

/* ---- fixtures ------------------------------------------------------------- */

/* The run and its ejabberd, one component listener per instance; with
 * none of that when ejabberd cannot run here (the tests then skip). */
static int group_setup(void **state)
{
    suite_t *suite = g_new0(suite_t, 1);
    *state = suite;
    suite->missing = hx_ejabberd_missing();
    if (suite->missing) {
        fprintf(stderr, "instances: skipped: %s\n", suite->missing);
        return 0;
    }
    if (!g_file_test(hx_proxy_bin(), G_FILE_TEST_IS_EXECUTABLE)) {
        fprintf(stderr, "CLIENT_PROXY_BIN (%s) is not an executable\n", hx_proxy_bin());
        return -1;
    }
    suite->epmd_before = count_epmd();
    suite->hx = hx_new();
    hx_ejabberd_opts_t o = {.components = INSTANCES};
    gint64 start = hx_now_ms();
    suite->ej = hx_ejabberd_new(suite->hx, &o);
    if (!suite->ej || !hx_ejabberd_start(suite->ej))
        return -1;
    printf("instances: ejabberd started, accounts registered, in %" G_GINT64_FORMAT
           " ms (c2s %d, components %d and %d)\n",
           hx_now_ms() - start, hx_ejabberd_c2s_port(suite->ej),
           hx_ejabberd_component_port(suite->ej, 0), hx_ejabberd_component_port(suite->ej, 1));
    fflush(stdout);
    return 0;
}

static int group_teardown(void **state)
{
    suite_t *suite = *state;
    hx_free(suite->hx);
    g_free(suite);
    return 0;
}

/* Stops both instances: each must exit 0 on SIGTERM with no sanitizer or
 * valgrind report in its log.  Frees the clients. */
static int teardown(void **state)
{
    fx_t *fx = *state;
    int rc = 0;
    for (int i = 0; i < INSTANCES; i++) {
        hx_proxy_t *p = fx->proxies[i];
        if (!p)
            continue;
        bool was_running = hx_proxy_running(p);
        int status = was_running ? hx_proxy_stop(p) : hx_proxy_wait_exit(p, 0);
        g_autofree char *log = hx_proxy_log(p);
        g_autofree char *report = hx_memcheck_report(log);
        if (report || (was_running && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))) {
            fprintf(stderr, "client-proxy %d did not stop cleanly (wait status 0x%x)\n",
                    i + 1, (unsigned)status);
            rc = -1;
        }
    }
    if (rc != 0)
        dump_logs(fx);
    for (int i = 0; i < INSTANCES; i++)
        hx_proxy_free(fx->proxies[i]);
    for (int w = 0; w < WORKERS; w++)
        hx_client_free(fx->workers[w]);
    for (int u = 0; u < USERS; u++)
        hx_client_free(fx->users[u]);
    g_free(fx->key_file);
    *state = fx->suite;
    g_free(fx);
    return rc;
}

/* WORKERS resources of the target, USERS users, and INSTANCES client-proxy
 * processes that each know every resource. */
static bool fixture_start(fx_t *fx)
{
    for (int w = 0; w < WORKERS; w++) {
        g_autofree char *resource = g_strdup_printf("worker-%d", w + 1);
        fx->workers[w] = hx_client_connect(fx->hx, "service", resource, true);
        if (!fx->workers[w])
            return false;
    }
    for (int u = 0; u < USERS; u++) {
        fx->users[u] = hx_client_connect(fx->hx, user_names[u], "desk", false);
        if (!fx->users[u])
            return false;
    }
    fx->key_file = hx_write_file(fx->hx, "hmac.key", KEY, 0600);
    g_autofree char *extra = g_strdup_printf("\n[encoding:hmac]\nkey_file = %s\n", fx->key_file);
    for (int i = 0; i < INSTANCES; i++) {
        hx_proxy_opts_t o = {.instance_domain = hx_ejabberd_instance_domain(fx->ej, i),
                             .port = hx_ejabberd_component_port(fx->ej, i),
                             .dispatch = "random",
                             .encoding = "hmac",
                             .request_timeout = REQUEST_TIMEOUT_S,
                             .extra = extra};
        fx->proxies[i] = hx_proxy_start(fx->hx, &o);
        if (!fx->proxies[i])
            return false;
    }
    /* Both instances subscribe from their own domain and learn every
     * resource from the presence sent there. */
    gint64 start = hx_now_ms();
    for (int i = 0; i < INSTANCES; i++) {
        for (int w = 0; w < WORKERS; w++) {
            g_autofree char *needle =
                g_strdup_printf("resource %s is online", hx_client_jid(fx->workers[w]));
            g_autofree char *line = hx_proxy_wait_log(fx->proxies[i], 0, needle, READY_MS);
            if (!line) {
                fprintf(stderr, "client-proxy %d never logged \"%s\"\n", i + 1, needle);
                dump_logs(fx);
                return false;
            }
        }
    }
    printf("instances: both instances knew all %d resources after %" G_GINT64_FORMAT " ms\n",
           WORKERS, hx_now_ms() - start);
    fflush(stdout);
    return true;
}

static int setup(void **state)
{
    fx_t *fx = g_new0(fx_t, 1);
    fx->suite = *state;
    fx->hx = fx->suite->hx;
    fx->ej = fx->suite->ej;
    *state = fx;
    if (fx->suite->missing || fixture_start(fx))
        return 0;
    teardown(state); /* cmocka runs none after a failed setup */
    return -1;
}

/* ---- tests ---------------------------------------------------------------- */

static void instances__split_the_shared_domain_and_answer_each_request_once(void **state)
{
    fx_t *fx = *state;
    if (fx->suite->missing)
        skip();
    stats_t s;
    load(fx, REQUESTS, &s);
    /* What the resources saw: every request from an instance domain, to
     * their own full JID. */
    unsigned seen = 0;
    for (int w = 0; w < WORKERS; w++) {
        for (unsigned i = 0; i < hx_requests_seen(fx->workers[w]); i++) {
            xmpp_stanza_t *req = hx_request_seen(fx->workers[w], i);
            g_autofree char *text = hx_text(req);
            if (instance_of(fx, xmpp_stanza_get_from(req)) < 0 ||
                strcmp(xmpp_stanza_get_to(req), hx_client_jid(fx->workers[w])) != 0)
                fail_msg("worker-%d got a request not from an instance domain: %s",
                         w + 1, text);
            seen++;
        }
    }
    assert_int_equal(seen, REQUESTS);
    assert_logs_clean(fx);
}

static void instances__both_see_a_resource_leave_and_return(void **state)
{
    fx_t *fx = *state;
    if (fx->suite->missing)
        skip();
    hx_client_t *w3 = fx->workers[WORKERS - 1];
    g_autofree char *offline = g_strdup_printf("resource %s is offline", hx_client_jid(w3));
    g_autofree char *online = g_strdup_printf("resource %s is online", hx_client_jid(w3));
    size_t mark[INSTANCES];

    for (int i = 0; i < INSTANCES; i++)
        mark[i] = hx_proxy_log_mark(fx->proxies[i]);
    gint64 start = hx_now_ms();
    hx_client_disconnect(w3);
    for (int i = 0; i < INSTANCES; i++)
        wait_log(fx, i, mark[i], offline, PRESENCE_MS);
    printf("instances: both saw %s offline after %" G_GINT64_FORMAT " ms\n",
           hx_client_resource(w3), hx_now_ms() - start);

    /* It gets nothing now; the others serve, through both instances. */
    stats_t s;
    load(fx, 60, &s);
    assert_int_equal(s.by_worker[WORKERS - 1], 0);

    for (int i = 0; i < INSTANCES; i++)
        mark[i] = hx_proxy_log_mark(fx->proxies[i]);
    start = hx_now_ms();
    assert_true(hx_client_reconnect(w3));
    for (int i = 0; i < INSTANCES; i++)
        wait_log(fx, i, mark[i], online, PRESENCE_MS);
    printf("instances: both saw %s online again after %" G_GINT64_FORMAT " ms\n",
           hx_client_resource(w3), hx_now_ms() - start);
    fflush(stdout);
    /* And it gets requests again: with random dispatch over three, none in
     * 90 would happen once in 10^15 runs. */
    load(fx, 90, &s);
    assert_true(s.by_worker[WORKERS - 1] > 0);
    assert_logs_clean(fx);
}

static void instances__share_an_ejabberd_that_starts_no_epmd(void **state)
{
    suite_t *suite = *state;
    if (suite->missing)
        skip();
    /* ejabberdctl was given ERL_DIST_PORT: the node listens on that port
     * itself, neither it nor the `register` commands start or ask epmd. */
    pid_t beam = hx_ejabberd_pid(suite->ej);
    assert_true(beam > 0);
    g_autofree char *path = g_strdup_printf("/proc/%d/cmdline", (int)beam);
    g_autofree char *cmd = NULL;
    gsize len = 0;
    assert_true(g_file_get_contents(path, &cmd, &len, NULL));
    static const char no_epmd[] = "-start_epmd\0false";
    static const char port[] = "-erl_epmd_port";
    if (!memmem(cmd, len, no_epmd, sizeof no_epmd - 1) ||
        !memmem(cmd, len, port, sizeof port - 1))
        fail_msg("ejabberd's VM runs without -start_epmd false -erl_epmd_port PORT");
    /* Informative only: others may start an epmd on this machine. */
    unsigned now = count_epmd();
    if (now > suite->epmd_before)
        printf("instances: note: %u epmd process(es) before ejabberd started, %u now\n",
               suite->epmd_before, now);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            instances__split_the_shared_domain_and_answer_each_request_once, setup, teardown),
        cmocka_unit_test_setup_teardown(instances__both_see_a_resource_leave_and_return, setup,
                                        teardown),
        cmocka_unit_test(instances__share_an_ejabberd_that_starts_no_epmd),
    };
    int rc = cmocka_run_group_tests_name("instances", tests, group_setup, group_teardown);
    /* Meson reports exit status 77 as skipped. */
    if (rc == 0 && hx_ejabberd_missing())
        return 77;
    return rc;
}
