/* loadgen: closed-loop IQ load over real client connections.
 *
 *   loadgen --server 127.0.0.1 --port 5222 --users 4 --window 32 \
 *           --user-prefix u --domain localhost --password pw \
 *           --to service@localhost/r1 --to service@localhost/r2 \
 *           --warmup 1 --duration 10 [--label direct] [--cpu prosody=PID ...]
 *
 * U users (USER-PREFIX1@DOMAIN ... USER-PREFIXU@DOMAIN, all logged in through
 * one libstrophe context that this program drives with xmpp_run_once) each
 * keep W IQ gets (<ping xmlns='urn:xmpp:ping'/>) in flight, spread round-robin
 * over the --to JIDs.  Each answer frees its slot, which is refilled at once.
 * Only answers that arrive in the measured window (after the warm-up) count.
 * Answers are matched by id alone, whatever their `from`: direct answers come
 * from the resource, client-proxy's and mod_client_proxy's from the
 * component's bare domain, with the request's id.
 *
 * Output: one machine-readable line
 *   label=... rps=... ok=... errors=... unmatched=... lost=... p50_us=...
 *   p90_us=... p99_us=... max_us=... cpu_us_per_req_NAME=... cpu_pct_NAME=...
 * then one human line.  CPU is utime+stime of each --cpu PID over exactly the
 * measured window, divided by the answers counted in it.
 * Exit status 0 when it ran (whatever the figures), 1 when it could not log
 * in, 2 for a usage error. */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <strophe.h>

#include "common.h"
#include "strophe-common.h"

#define MAX_CPU 8
#define MAX_TO 64

typedef struct {
    int64_t sent_at; /* µs, 0: free */
    unsigned gen;
} slot_t;

typedef struct {
    xmpp_conn_t *conn;
    int index;
    bool online, failed;
    slot_t *slots;
    unsigned next_to;
} user_t;

static struct {
    const char *server, *prefix, *domain, *password, *label;
    int port, users, window;
    double warmup, duration;
    const char *to[MAX_TO];
    int nto;
    const char *cpu_name[MAX_CPU];
    int cpu_pid[MAX_CPU];
    int ncpu;
} opt = {.server = "127.0.0.1", .port = 5222, .prefix = "u", .domain = "localhost",
         .password = "pw", .label = "run", .users = 4, .window = 32, .warmup = 1,
         .duration = 10};

static struct {
    bool started;    /* the load began: earlier IQs are libstrophe's own */
    bool sending;    /* new requests may be sent */
    bool measuring;  /* answers count */
    uint64_t ok, errors, unmatched, in_flight;
    bench_samples_t lat;
} st;

/* In every id, and the users' resource: an answer to an earlier run's
 * request (one a server or client-proxy still held) never matches ours. */
static unsigned run_tag;
static volatile sig_atomic_t interrupted;
static bool closing;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void send_request(user_t *u, int slot)
{
    char buf[1024];
    slot_t *s = &u->slots[slot];
    s->gen++;
    const char *to = opt.to[u->next_to++ % (unsigned)opt.nto];
    int n = snprintf(buf, sizeof buf,
                     "<iq type='get' id='%x.%x.%x' to='%s'><ping xmlns='urn:xmpp:ping'/></iq>",
                     run_tag, (unsigned)slot, s->gen, to);
    s->sent_at = bench_now_us();
    st.in_flight++;
    xmpp_send_raw(u->conn, buf, (size_t)n);
}

static int on_iq(xmpp_conn_t *conn, xmpp_stanza_t *iq, void *data)
{
    (void)conn;
    user_t *u = data;
    const char *type = xmpp_stanza_get_type(iq);
    const char *id = xmpp_stanza_get_id(iq);
    if (!type || (strcmp(type, "result") != 0 && strcmp(type, "error") != 0))
        return 1;
    unsigned tag, slot, gen;
    char tail;
    if (!id || sscanf(id, "%x.%x.%x%c", &tag, &slot, &gen, &tail) != 3 || tag != run_tag || slot >= (unsigned)opt.window ||
        u->slots[slot].sent_at == 0 || u->slots[slot].gen != gen) {
        if (st.started)
            st.unmatched++;
        return 1;
    }
    slot_t *s = &u->slots[slot];
    int64_t now = bench_now_us();
    if (st.measuring) {
        if (type[0] == 'r') {
            st.ok++;
            bench_samples_add(&st.lat, now - s->sent_at);
        } else {
            st.errors++;
        }
    }
    s->sent_at = 0;
    st.in_flight--;
    if (st.sending)
        send_request(u, (int)slot);
    return 1;
}

static void on_conn(xmpp_conn_t *conn, xmpp_conn_event_t ev, int error,
                    xmpp_stream_error_t *se, void *data)
{
    (void)conn;
    user_t *u = data;
    if (ev == XMPP_CONN_CONNECT) {
        u->online = true;
        return;
    }
    if (!closing)
        fprintf(stderr, "loadgen: user %d disconnected%s%s (error %d)\n", u->index,
                se && se->text ? ": " : "", se && se->text ? se->text : "", error);
    u->online = false;
    u->failed = true;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: loadgen --to JID [--to JID ...] [--server H] [--port N] [--users U]\n"
               "               [--window W] [--user-prefix P] [--domain D] [--password PW]\n"
               "               [--warmup S] [--duration S] [--label L] [--cpu NAME=PID ...]\n");
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (!v) {
            usage(stderr);
            return 2;
        }
        i++;
        if (strcmp(a, "--server") == 0) opt.server = v;
        else if (strcmp(a, "--port") == 0) opt.port = atoi(v);
        else if (strcmp(a, "--users") == 0) opt.users = atoi(v);
        else if (strcmp(a, "--window") == 0) opt.window = atoi(v);
        else if (strcmp(a, "--user-prefix") == 0) opt.prefix = v;
        else if (strcmp(a, "--domain") == 0) opt.domain = v;
        else if (strcmp(a, "--password") == 0) opt.password = v;
        else if (strcmp(a, "--warmup") == 0) opt.warmup = atof(v);
        else if (strcmp(a, "--duration") == 0) opt.duration = atof(v);
        else if (strcmp(a, "--label") == 0) opt.label = v;
        else if (strcmp(a, "--to") == 0 && opt.nto < MAX_TO) opt.to[opt.nto++] = v;
        else if (strcmp(a, "--cpu") == 0 && opt.ncpu < MAX_CPU && strchr(v, '=')) {
            opt.cpu_name[opt.ncpu] = strndup(v, (size_t)(strchr(v, '=') - v));
            opt.cpu_pid[opt.ncpu++] = atoi(strchr(v, '=') + 1);
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (opt.ncpu < MAX_CPU) { /* our own CPU, to see whether we are the bottleneck */
        opt.cpu_name[opt.ncpu] = "loadgen";
        opt.cpu_pid[opt.ncpu++] = (int)getpid();
    }
    if (opt.nto == 0 || opt.users < 1 || opt.window < 1 || opt.duration <= 0 || opt.users > 500) {
        usage(stderr);
        return 2;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    run_tag = (unsigned)(((uint64_t)bench_now_us() * 2654435761u) ^ (unsigned)getpid()) & 0xffffff;
    xmpp_initialize();
    xmpp_ctx_t *ctx = xmpp_ctx_new(NULL, NULL);
    user_t *users = calloc((size_t)opt.users, sizeof *users);
    for (int i = 0; i < opt.users; i++) {
        user_t *u = &users[i];
        u->index = i + 1;
        u->slots = calloc((size_t)opt.window, sizeof *u->slots);
        u->conn = xmpp_conn_new(ctx);
        char jid[512];
        snprintf(jid, sizeof jid, "%s%d@%s/load-%x", opt.prefix, i + 1, opt.domain, run_tag);
        xmpp_conn_set_jid(u->conn, jid);
        xmpp_conn_set_pass(u->conn, opt.password);
        xmpp_conn_set_flags(u->conn, XMPP_CONN_FLAG_DISABLE_TLS);
        xmpp_conn_set_sockopt_callback(u->conn, bench_set_nodelay);
        xmpp_handler_add(u->conn, on_iq, NULL, "iq", NULL, u);
        if (xmpp_connect_client(u->conn, opt.server, (unsigned short)opt.port, on_conn, u) !=
            XMPP_EOK) {
            fprintf(stderr, "loadgen: cannot connect user %d\n", i + 1);
            return 1;
        }
    }

    /* Log everybody in, bounded. */
    int64_t give_up = bench_now_us() + 20 * 1000000LL;
    for (;;) {
        int online = 0, failed = 0;
        for (int i = 0; i < opt.users; i++) {
            online += users[i].online;
            failed += users[i].failed;
        }
        if (online == opt.users)
            break;
        if (failed || interrupted || bench_now_us() > give_up) {
            fprintf(stderr, "loadgen: only %d of %d users logged in\n", online, opt.users);
            return 1;
        }
        xmpp_run_once(ctx, 10);
    }

    int64_t t0 = bench_now_us();
    int64_t warm_end = t0 + (int64_t)(opt.warmup * 1e6);
    int64_t end = warm_end + (int64_t)(opt.duration * 1e6);
    int64_t cpu0[MAX_CPU], cpu1[MAX_CPU], mach0 = -1, mach1 = -1;
    int64_t m_start = 0, m_end = 0;
    st.started = st.sending = true;
    st.measuring = opt.warmup <= 0;
    if (st.measuring) {
        m_start = t0;
        mach0 = bench_machine_busy_us();
        for (int c = 0; c < opt.ncpu; c++)
            cpu0[c] = bench_cpu_us(opt.cpu_pid[c]);
    }
    for (int i = 0; i < opt.users; i++)
        for (int s = 0; s < opt.window; s++)
            send_request(&users[i], s);

    while (!interrupted) {
        xmpp_run_once(ctx, 1);
        int64_t now = bench_now_us();
        if (!st.measuring && now >= warm_end) {
            st.measuring = true;
            m_start = now;
            mach0 = bench_machine_busy_us();
            for (int c = 0; c < opt.ncpu; c++)
                cpu0[c] = bench_cpu_us(opt.cpu_pid[c]);
        }
        if (now >= end)
            break;
    }
    m_end = bench_now_us();
    mach1 = bench_machine_busy_us();
    for (int c = 0; c < opt.ncpu; c++)
        cpu1[c] = bench_cpu_us(opt.cpu_pid[c]);
    st.measuring = false;
    st.sending = false;

    /* Drain what is in flight (bounded), so that the next run starts clean. */
    give_up = bench_now_us() + 2 * 1000000LL;
    while (st.in_flight > 0 && bench_now_us() < give_up && !interrupted)
        xmpp_run_once(ctx, 5);
    uint64_t lost = st.in_flight;

    double secs = (double)(m_end - m_start) / 1e6;
    if (secs <= 0)
        secs = 1e-9;
    bench_samples_sort(&st.lat);
    uint32_t p50 = bench_percentile(st.lat.v, st.lat.n, 50);
    uint32_t p90 = bench_percentile(st.lat.v, st.lat.n, 90);
    uint32_t p99 = bench_percentile(st.lat.v, st.lat.n, 99);
    uint32_t max = st.lat.n ? st.lat.v[st.lat.n - 1] : 0;
    double rps = (double)st.ok / secs;
    printf("label=%s users=%d window=%d seconds=%.3f rps=%.0f ok=%llu errors=%llu "
           "unmatched=%llu lost=%llu p50_us=%u p90_us=%u p99_us=%u max_us=%u",
           opt.label, opt.users, opt.window, secs, rps, (unsigned long long)st.ok,
           (unsigned long long)st.errors, (unsigned long long)st.unmatched,
           (unsigned long long)lost, p50, p90, p99, max);
    for (int c = 0; c < opt.ncpu; c++) {
        int64_t used = cpu0[c] >= 0 && cpu1[c] >= 0 ? cpu1[c] - cpu0[c] : -1;
        double per = used >= 0 && st.ok ? (double)used / (double)st.ok : -1;
        printf(" cpu_us_per_req_%s=%.1f cpu_pct_%s=%.0f", opt.cpu_name[c], per,
               opt.cpu_name[c], used >= 0 ? 100.0 * (double)used / 1e6 / secs : -1);
    }
    /* Load we did not account for: the machine's busy time minus ours. */
    if (mach0 >= 0 && mach1 >= 0) {
        int64_t other = mach1 - mach0;
        for (int c = 0; c < opt.ncpu; c++)
            if (cpu0[c] >= 0 && cpu1[c] >= 0)
                other -= cpu1[c] - cpu0[c];
        printf(" cpu_pct_machine=%.0f cpu_pct_other=%.0f",
               100.0 * (double)(mach1 - mach0) / 1e6 / secs, 100.0 * (double)other / 1e6 / secs);
    }
    printf("\n# %s: %.0f req/s over %.1f s (%d users x %d in flight), latency p50 %u us, "
           "p90 %u, p99 %u, max %u; %llu errors, %llu unmatched, %llu lost\n",
           opt.label, rps, secs, opt.users, opt.window, p50, p90, p99, max,
           (unsigned long long)st.errors, (unsigned long long)st.unmatched,
           (unsigned long long)lost);
    fflush(stdout);

    closing = true;
    for (int i = 0; i < opt.users; i++)
        if (users[i].online)
            xmpp_disconnect(users[i].conn);
    give_up = bench_now_us() + 1000000LL;
    for (;;) {
        bool open = false;
        for (int i = 0; i < opt.users; i++)
            open = open || !xmpp_conn_is_disconnected(users[i].conn);
        if (!open || bench_now_us() > give_up)
            break;
        xmpp_run_once(ctx, 10);
    }
    for (int i = 0; i < opt.users; i++) {
        xmpp_conn_release(users[i].conn);
        free(users[i].slots);
    }
    free(users);
    free(st.lat.v);
    xmpp_ctx_free(ctx);
    xmpp_shutdown();
    return 0;
}
