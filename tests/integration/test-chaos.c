/* Chaos: client-proxy under sustained load while its world falls apart,
 * against a real Prosody, bounded in time (about 75 s).
 *
 *   - USERS users (alice, bob, carol, dave, erin) each keep IN_FLIGHT
 *     requests in flight, mostly `get`, one in SET_PERCENT `set`;
 *   - PROCS resources service@localhost/proc-N are separate processes of
 *     examples/implementing-client (IMPLEMENTING_CLIENT_BIN), each killed
 *     with SIGKILL and started again at random times;
 *   - one more resource, service@localhost/hold, is a harness worker that
 *     never answers anything (HX_HOLD): with request_timeout = 2 and
 *     unhealthy_after = 3 it must be benched;
 *   - Prosody is restarted once.  The users' own c2s streams die with it, so
 *     the load stops first and every request in flight is let finish; after
 *     the restart the users and the worker log in again, the test waits until
 *     client-proxy is back and has re-learned every resource, and load
 *     resumes.
 *
 * At the end every request sent must have received exactly one reply: a
 * result that echoes its own payload, or one of client-proxy's errors
 * (service-unavailable, remote-server-timeout, resource-constraint), all from
 * the bare domain.  None lost, none duplicated.  client-proxy's VmRSS at the
 * end must be within RSS_SLACK_KIB of its value after the warm-up, and it
 * must exit 0 on SIGTERM with no sanitizer or valgrind report.
 *
 * The random choices (kill times, restart delays, get or set) come from one
 * PRNG whose seed is printed; CHAOS_SEED=N replays a seed (the timing of the
 * network is not replayed, of course).
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

#define USERS 5
#define IN_FLIGHT 8         /* per user */
#define SET_PERCENT 20
#define PROCS 3
#define REQUEST_TIMEOUT_S 2
#define UNHEALTHY_AFTER 3
#define WARMUP_MS 8000      /* load before the first VmRSS reading */
#define PHASE1_MS 22000     /* load before the server restart */
#define PHASE2_MS 25000     /* load after it */
#define DRAIN_MS 8000       /* request_timeout, a retry, and slack */
#define READY_MS 20000      /* after the restart, until every resource is back */
#define KILL_MIN_MS 1500    /* a process lives this long at least... */
#define KILL_MAX_MS 5000    /* ...and at most */
#define DOWN_MIN_MS 200     /* a killed process stays down this long... */
#define DOWN_MAX_MS 1500    /* ...up to this */
#define RSS_SLACK_KIB 4096
#define SAMPLE_EVERY 97     /* requests also counted with hx_count_id */
#define KEY "k1 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"

static const char *const user_names[USERS] = {"alice", "bob", "carol", "dave", "erin"};

typedef struct {
    char *id;
    unsigned seq; /* the payload carries it: a result must echo it back */
    int user;
    bool set;
} req_t;

typedef struct {
    hx_client_t *c;
    GHashTable *in_flight; /* id -> req_t *, borrowed from all */
    unsigned scanned;      /* received stanzas already looked at */
} user_t;

typedef struct {
    pid_t pid; /* 0: down */
    gint64 next_ms; /* when to kill it (up) or start it (down) */
    unsigned kills;
} proc_t;

typedef struct {
    hx_t *hx; /* the test's run, with its Prosody */
    hx_proxy_t *proxy;
    GRand *rand;
    guint32 seed;
    user_t users[USERS];
    hx_client_t *hold;
    proc_t procs[PROCS];
    char *key_file;
    GPtrArray *all;     /* req_t *, every request sent (owned) */
    GHashTable *by_id;  /* id -> req_t *, every request sent */
    GHashTable *errors; /* "type/condition" -> count */
    unsigned seq;
    unsigned sent, gets, sets, results, errors_total, duplicates, strays;
    bool chaos; /* kill and start processes */
} chaos_t;

/* ---- implementing-client processes ----------------------------------------- */

static void proc_start(chaos_t *t, int i)
{
    const char *bin = g_getenv("IMPLEMENTING_CLIENT_BIN");
    g_autofree char *port = g_strdup_printf("%d", hx_c2s_port(t->hx));
    g_autofree char *resource = g_strdup_printf("proc-%d", i + 1);
    g_autofree char *out = g_strdup_printf("%s/%s.out", hx_dir(t->hx), resource);
    char *argv[] = {(char *)bin, "--jid", HX_TARGET, "--password", HX_PASSWORD,
                    "--server", "127.0.0.1", "--port", port, "--resource", resource, NULL};
    pid_t pid = hx_spawn(t->hx, argv, out);
    if (pid <= 0)
        fail_msg("cannot start %s", bin);
    t->procs[i].pid = pid;
    t->procs[i].next_ms =
        hx_now_ms() + g_rand_int_range(t->rand, KILL_MIN_MS, KILL_MAX_MS + 1);
}

static void proc_kill(chaos_t *t, int i)
{
    pid_t pid = t->procs[i].pid;
    kill(pid, SIGKILL);
    int status = hx_spawn_stop(t->hx, pid, 2000); /* reaps it */
    if (!(status >= 0 && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
        fail_msg("proc-%d (pid %d) had already ended: wait status 0x%x", i + 1, (int)pid,
                 (unsigned)status);
    t->procs[i].pid = 0;
    t->procs[i].kills++;
    t->procs[i].next_ms =
        hx_now_ms() + g_rand_int_range(t->rand, DOWN_MIN_MS, DOWN_MAX_MS + 1);
}

/* Kills and starts processes whose time has come. */
static void chaos_step(chaos_t *t)
{
    if (!t->chaos)
        return;
    gint64 now = hx_now_ms();
    for (int i = 0; i < PROCS; i++) {
        if (now < t->procs[i].next_ms)
            continue;
        if (t->procs[i].pid)
            proc_kill(t, i);
        else
            proc_start(t, i);
    }
}

static void procs_all_up(chaos_t *t)
{
    for (int i = 0; i < PROCS; i++) {
        if (!t->procs[i].pid)
            proc_start(t, i);
    }
}

/* ---- load ------------------------------------------------------------------- */

static void send_one(chaos_t *t, int u)
{
    req_t *r = g_new0(req_t, 1);
    r->seq = ++t->seq;
    r->user = u;
    r->set = g_rand_int_range(t->rand, 0, 100) < SET_PERCENT;
    g_autofree char *payload =
        g_strdup_printf("<echo xmlns='" HX_ECHO_NS "'>r%u</echo>", r->seq);
    r->id = hx_iq_send(t->users[u].c, HX_DOMAIN, r->set ? "set" : "get", payload);
    g_ptr_array_add(t->all, r);
    g_hash_table_insert(t->by_id, r->id, r);
    g_hash_table_insert(t->users[u].in_flight, r->id, r);
    t->sent++;
    if (r->set)
        t->sets++;
    else
        t->gets++;
}

static bool allowed_error(const char *cond)
{
    static const char *const allowed[] = {
        "cancel/service-unavailable",  /* no resource, or it went offline */
        "wait/remote-server-timeout",  /* nothing answered in time */
        "wait/resource-constraint",    /* too many in flight */
    };
    for (size_t i = 0; i < G_N_ELEMENTS(allowed); i++) {
        if (strcmp(cond, allowed[i]) == 0)
            return true;
    }
    return false;
}

/* Looks at the stanzas user U received since the last call: each reply must
 * answer a request in flight, once. */
static void collect(chaos_t *t, int u)
{
    user_t *user = &t->users[u];
    unsigned n = hx_received_count(user->c);
    for (; user->scanned < n; user->scanned++) {
        xmpp_stanza_t *st = hx_received(user->c, user->scanned);
        const char *type = xmpp_stanza_get_type(st);
        const char *id = xmpp_stanza_get_id(st);
        if (strcmp(xmpp_stanza_get_name(st), "iq") != 0 || !type ||
            (strcmp(type, "result") != 0 && strcmp(type, "error") != 0))
            continue;
        req_t *r = id ? g_hash_table_lookup(t->by_id, id) : NULL;
        const char *from = xmpp_stanza_get_from(st);
        if (!r && (!from || strncmp(from, HX_DOMAIN, strlen(HX_DOMAIN)) != 0))
            continue; /* the user's own server: session setup */
        g_autofree char *text = hx_text(st);
        if (!r || r->user != u) {
            t->strays++;
            fprintf(stderr, "%s: a reply to no request of theirs: %s\n", user_names[u], text);
            continue;
        }
        if (!g_hash_table_remove(user->in_flight, id)) {
            t->duplicates++;
            fprintf(stderr, "%s: a second reply to %s: %s\n", user_names[u], id, text);
            continue;
        }
        if (!from || strcmp(from, HX_DOMAIN) != 0)
            fail_msg("reply to %s not from %s: %s", id, HX_DOMAIN, text);
        if (strcmp(type, "result") == 0) {
            g_autofree char *want = g_strdup_printf("r%u", r->seq);
            const char *got = hx_echo_text(st);
            if (!got || strcmp(got, want) != 0)
                fail_msg("request %s (%s) got someone else's result: %s", id, want, text);
            t->results++;
        } else {
            g_autofree char *cond = hx_error_of(st);
            if (!cond || !allowed_error(cond))
                fail_msg("request %s got an unexpected error: %s", id, text);
            unsigned *count = g_hash_table_lookup(t->errors, cond);
            if (!count) {
                count = g_new0(unsigned, 1);
                g_hash_table_insert(t->errors, g_strdup(cond), count);
            }
            (*count)++;
            t->errors_total++;
        }
    }
}

static unsigned in_flight(chaos_t *t)
{
    unsigned n = 0;
    for (int u = 0; u < USERS; u++)
        n += g_hash_table_size(t->users[u].in_flight);
    return n;
}

/* Keeps IN_FLIGHT requests per user in flight for MS, with chaos. */
static void load_run(chaos_t *t, int ms)
{
    gint64 end = hx_now_ms() + ms;
    t->chaos = true;
    while (hx_now_ms() < end) {
        for (int u = 0; u < USERS; u++) {
            collect(t, u);
            while (g_hash_table_size(t->users[u].in_flight) < IN_FLIGHT)
                send_one(t, u);
        }
        chaos_step(t);
        hx_pump(t->hx, 5);
    }
}

/* Sends nothing more and waits until every request in flight is answered;
 * the processes are left alone meanwhile (and all started again). */
static void load_drain(chaos_t *t, const char *when)
{
    t->chaos = false;
    procs_all_up(t);
    gint64 end = hx_now_ms() + DRAIN_MS;
    for (;;) {
        for (int u = 0; u < USERS; u++)
            collect(t, u);
        if (in_flight(t) == 0 || hx_now_ms() >= end)
            break;
        hx_pump(t->hx, 5);
    }
    hx_pump(t->hx, 300); /* room for a duplicate to show */
    for (int u = 0; u < USERS; u++)
        collect(t, u);
    if (in_flight(t) > 0) {
        /* (fail_msg() jumps: free before it.) */
        fprintf(stderr, "lost:");
        for (int u = 0; u < USERS; u++) {
            GHashTableIter it;
            gpointer key;
            g_hash_table_iter_init(&it, t->users[u].in_flight);
            while (g_hash_table_iter_next(&it, &key, NULL))
                fprintf(stderr, " %s:%s", user_names[u], (char *)key);
        }
        char *log = hx_proxy_log(t->proxy);
        fprintf(stderr, "\n---- client-proxy stderr ----\n%s\n", log);
        g_free(log);
        fail_msg("%s: %u requests lost (no reply within %d ms)", when, in_flight(t), DRAIN_MS);
    }
    assert_int_equal(t->duplicates, 0);
    assert_int_equal(t->strays, 0);
    print_message("%s: %u sent, all answered (%u results, %u errors)\n", when, t->sent,
                  t->results, t->errors_total);
}

/* ---- client-proxy ----------------------------------------------------------- */

static long rss_kib(pid_t pid)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/status", (int)pid);
    g_autofree char *text = NULL;
    if (!g_file_get_contents(path, &text, NULL, NULL))
        return -1;
    const char *line = strstr(text, "\nVmRSS:");
    return line ? strtol(line + strlen("\nVmRSS:"), NULL, 10) : -1;
}

/* AddressSanitizer keeps freed memory in quarantine (256 MiB by default) and
 * valgrind's RSS is its own: neither says anything about client-proxy's. */
static const char *rss_meaningless(chaos_t *t, pid_t pid)
{
    if (hx_proxy_wrapper(t->hx))
        return "client-proxy runs under CLIENT_PROXY_WRAPPER";
    g_autofree char *path = g_strdup_printf("/proc/%d/maps", (int)pid);
    g_autofree char *maps = NULL;
    if (g_file_get_contents(path, &maps, NULL, NULL) && strstr(maps, "libasan"))
        return "client-proxy is built with AddressSanitizer (its quarantine holds freed "
               "memory; LeakSanitizer checks for leaks at exit)";
    return NULL;
}

/* Pumps until the log after MARK says each of the resources is online. */
static void wait_resources(chaos_t *t, size_t mark, int timeout_ms)
{
    gint64 end = hx_now_ms() + timeout_ms;
    for (int i = 0; i <= PROCS; i++) {
        g_autofree char *needle =
            i < PROCS ? g_strdup_printf("resource " HX_TARGET "/proc-%d is online", i + 1)
                      : g_strdup("resource " HX_TARGET "/hold is online");
        gint64 left = end - hx_now_ms();
        g_autofree char *line =
            hx_proxy_wait_log(t->proxy, mark, needle, left > 0 ? (int)left : 0);
        if (!line) {
            char *log = hx_proxy_log(t->proxy);
            fprintf(stderr, "---- client-proxy stderr ----\n%s\n", log);
            g_free(log);
            fail_msg("no \"%s\" within %d ms", needle + strlen("resource "), timeout_ms);
        }
    }
}

static void start_proxy(chaos_t *t)
{
    g_autofree char *extra = g_strdup_printf("retry_get = true\n"
                                             "unhealthy_after = %d\n"
                                             "\n[encoding:hmac]\nkey_file = %s\n"
                                             "\n[dispatch:random]\nseed = %u\n",
                                             UNHEALTHY_AFTER, t->key_file, t->seed);
    hx_proxy_opts_t o = {.dispatch = "random", .encoding = "hmac",
                         .request_timeout = REQUEST_TIMEOUT_S, .extra = extra};
    t->proxy = hx_proxy_start(t->hx, &o);
    assert_non_null(t->proxy);
    wait_resources(t, 0, READY_MS);
}

/* ---- the test --------------------------------------------------------------- */

/* Users' requests the silent worker got (not client-proxy's pings, which
 * come from the bare domain). */
static unsigned hold_requests(chaos_t *t)
{
    unsigned n = 0;
    for (unsigned i = 0; i < hx_requests_seen(t->hold); i++) {
        const char *from = xmpp_stanza_get_from(hx_request_seen(t->hold, i));
        if (from && strchr(from, '/'))
            n++;
    }
    return n;
}

static void print_counts(chaos_t *t)
{
    print_message("sent %u (%u get, %u set); results %u; errors %u; lost %u; duplicated %u\n",
                  t->sent, t->gets, t->sets, t->results, t->errors_total, in_flight(t),
                  t->duplicates);
    GHashTableIter it;
    gpointer key, value;
    g_hash_table_iter_init(&it, t->errors);
    while (g_hash_table_iter_next(&it, &key, &value))
        print_message("  error %s: %u\n", (char *)key, *(unsigned *)value);
    unsigned kills = 0;
    for (int i = 0; i < PROCS; i++)
        kills += t->procs[i].kills;
    print_message("processes killed %u times; hold saw %u stanzas to answer\n", kills,
                  hx_requests_seen(t->hold));
}

static void chaos__answers_every_request_exactly_once(void **state)
{
    chaos_t *t = *state;
    gint64 t0 = hx_now_ms();
    start_proxy(t);
    pid_t pid = hx_proxy_pid(t->proxy);

    /* Warm-up: everything has happened at least once (kills, timeouts,
     * benching) before the first reading. */
    load_run(t, WARMUP_MS);
    load_drain(t, "warm-up");
    g_autofree char *benched =
        hx_proxy_wait_log(t->proxy, 0, "resource " HX_TARGET "/hold timed out", 1000);
    if (!benched)
        fail_msg("the silent resource was never benched");
    print_message("logged: %s\n", benched);
    long rss_warm = rss_kib(pid);
    assert_true(rss_warm > 0);
    unsigned hold_before = hold_requests(t);

    load_run(t, PHASE1_MS);
    load_drain(t, "before the restart");
    /* Benched, it got nothing but pings (it answers none). */
    print_message("hold: %u requests before it was benched, %u while benched\n", hold_before,
                  hold_requests(t) - hold_before);
    assert_int_equal(hold_requests(t), hold_before);

    /* The restart.  Nothing is in flight; the users' streams drop. */
    size_t mark = hx_proxy_log_mark(t->proxy);
    gint64 restart_at = hx_now_ms();
    assert_true(hx_prosody_restart(hx_prosody(t->hx)));
    for (int u = 0; u < USERS; u++) {
        if (!hx_client_reconnect(t->users[u].c))
            fail_msg("%s could not log in again", user_names[u]);
    }
    if (!hx_client_reconnect(t->hold))
        fail_msg("the hold worker could not log in again");
    procs_all_up(t);
    wait_resources(t, mark, READY_MS);
    g_autofree char *connected = hx_proxy_wait_log(t->proxy, mark, "connected to", 0);
    assert_non_null(connected);
    print_message("back %lld ms after the restart began\n",
                  (long long)(hx_now_ms() - restart_at));
    assert_int_equal(hx_proxy_pid(t->proxy), pid);

    load_run(t, PHASE2_MS);
    load_drain(t, "at the end");
    long rss_end = rss_kib(pid);

    /* Every request: exactly one stanza with its id, counted again over all
     * that each user received (any kind), and the harness's way
     * (hx_count_id, a linear scan) for a sample. */
    g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
    for (int u = 0; u < USERS; u++) {
        for (unsigned i = 0; i < hx_received_count(t->users[u].c); i++) {
            const char *id = xmpp_stanza_get_id(hx_received(t->users[u].c, i));
            if (id && g_hash_table_contains(t->by_id, id))
                g_hash_table_insert(seen, (char *)id,
                                    GUINT_TO_POINTER(GPOINTER_TO_UINT(
                                                         g_hash_table_lookup(seen, id)) +
                                                     1));
        }
    }
    for (guint i = 0; i < t->all->len; i++) {
        req_t *r = t->all->pdata[i];
        unsigned replies = GPOINTER_TO_UINT(g_hash_table_lookup(seen, r->id));
        if (i % SAMPLE_EVERY == 0)
            assert_int_equal(hx_count_id(t->users[r->user].c, r->id), replies);
        if (replies != 1)
            fail_msg("request %s of %s got %u replies", r->id, user_names[r->user], replies);
    }
    print_counts(t);
    assert_int_equal(t->results + t->errors_total, t->sent);
    assert_true(t->results > t->sent / 2);

    print_message("client-proxy VmRSS: %ld KiB after the warm-up, %ld KiB at the end (%+ld)\n",
                  rss_warm, rss_end, rss_end - rss_warm);
    const char *why = rss_meaningless(t, pid);
    if (why)
        print_message("VmRSS bound not checked: %s\n", why);
    else if (rss_end - rss_warm > RSS_SLACK_KIB)
        fail_msg("client-proxy grew by %ld KiB (bound %d KiB)", rss_end - rss_warm,
                 RSS_SLACK_KIB);
    print_message("seed %u; %.1f s\n", t->seed, (hx_now_ms() - t0) / 1000.0);
}

/* ---- fixture ------------------------------------------------------------------ */

/* Stops what is left (processes, clients, client-proxy, Prosody), removes
 * the run's directory, frees T. */
static void chaos_free(chaos_t *t)
{
    for (int i = 0; i < PROCS; i++) {
        if (t->procs[i].pid)
            hx_spawn_stop(t->hx, t->procs[i].pid, 3000);
    }
    for (int u = 0; u < USERS; u++) {
        hx_client_free(t->users[u].c);
        if (t->users[u].in_flight)
            g_hash_table_destroy(t->users[u].in_flight);
    }
    hx_client_free(t->hold);
    hx_proxy_free(t->proxy);
    for (guint i = 0; i < t->all->len; i++) {
        req_t *r = t->all->pdata[i];
        g_free(r->id);
        g_free(r);
    }
    g_ptr_array_free(t->all, TRUE);
    g_hash_table_destroy(t->by_id);
    g_hash_table_destroy(t->errors);
    g_rand_free(t->rand);
    g_free(t->key_file);
    hx_free(t->hx);
    g_free(t);
}

/* A run of its own with its Prosody (five users), the silent worker, and
 * the implementing-client processes; the test starts client-proxy. */
static bool chaos_start(chaos_t *t)
{
    const char *bin = g_getenv("IMPLEMENTING_CLIENT_BIN");
    if (!bin || !g_file_test(bin, G_FILE_TEST_IS_EXECUTABLE)) {
        fprintf(stderr, "IMPLEMENTING_CLIENT_BIN (%s) is not an executable\n",
                bin ? bin : "unset");
        return false;
    }
    t->hx = hx_new();
    hx_prosody_t *prosody = hx_prosody_new(t->hx);
    for (int u = 0; u < USERS; u++)
        hx_prosody_add_account(prosody, user_names[u]);
    if (!hx_prosody_start(prosody))
        return false;
    t->key_file = hx_write_file(t->hx, "hmac.key", KEY, 0600);
    for (int u = 0; u < USERS; u++) {
        t->users[u].c = hx_client_connect(t->hx, user_names[u], "load", false);
        t->users[u].in_flight = g_hash_table_new(g_str_hash, g_str_equal);
        if (!t->users[u].c)
            return false;
    }
    t->hold = hx_client_connect(t->hx, "service", "hold", true);
    if (!t->hold)
        return false;
    hx_client_set_mode(t->hold, HX_HOLD);
    for (int i = 0; i < PROCS; i++)
        proc_start(t, i);
    return true;
}

static int setup(void **state)
{
    chaos_t *t = g_new0(chaos_t, 1);
    *state = t;
    const char *env = g_getenv("CHAOS_SEED");
    t->seed = env && *env ? (guint32)strtoul(env, NULL, 10) : g_random_int();
    printf("chaos seed %u (CHAOS_SEED=%u replays it)\n", t->seed, t->seed);
    fflush(stdout);
    t->rand = g_rand_new_with_seed(t->seed);
    t->all = g_ptr_array_new();
    t->by_id = g_hash_table_new(g_str_hash, g_str_equal);
    t->errors = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    if (chaos_start(t))
        return 0;
    chaos_free(t); /* cmocka runs no teardown after a failed setup */
    *state = NULL;
    return -1;
}

/* client-proxy must still run, exit 0 on SIGTERM, and have no sanitizer or
 * valgrind report in its log. */
static int teardown(void **state)
{
    chaos_t *t = *state;
    bool was_running = t->proxy && hx_proxy_running(t->proxy);
    int status = !t->proxy     ? -1
                 : was_running ? hx_proxy_stop(t->proxy)
                               : hx_proxy_wait_exit(t->proxy, 0);
    g_autofree char *log = t->proxy ? hx_proxy_log(t->proxy) : g_strdup("");
    g_autofree char *report = hx_memcheck_report(log);
    bool clean = was_running && WIFEXITED(status) && WEXITSTATUS(status) == 0 && !report;
    if (!clean)
        fprintf(stderr, "client-proxy did not stop cleanly (%s, wait status 0x%x%s%s):\n%s",
                was_running ? "running" : "had already exited", (unsigned)status,
                report ? "; " : "", report ? report : "", log);
    else
        print_message("client-proxy exited 0 on SIGTERM, no memory report\n");
    chaos_free(t);
    return clean ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(chaos__answers_every_request_exactly_once, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("chaos", tests, NULL, NULL);
}
