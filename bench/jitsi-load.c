/* jitsi-load: open-loop bursts of Jitsi conference requests, for the Jitsi
 * benchmark (bench/README.md, "The Jitsi case").
 *
 *   jitsi-load --to focus.localhost --server 127.0.0.1 --port 5222 \
 *              [--users 200] [--requests 10000] [--seconds 10] [--rooms 500] \
 *              [--muc conference.localhost] [--seed 1] [--drain 10] \
 *              [--user-prefix u] [--domain localhost] [--password pw] \
 *              [--label L] [--cpu NAME=PID ...] [--rss NAME=PID ...] \
 *              [--metrics HOST:PORT]
 *
 * U users (USER-PREFIX1@DOMAIN ...), all logged in through one libstrophe
 * context driven with xmpp_run_once, send N conference requests at an even
 * rate over T seconds whatever the answers (open loop): request k leaves
 * at k*T/N from user k mod U, for a room drawn from R rooms.  Each is the IQ
 * lib-jitsi-meet sends when a participant joins (its Moderator's conference
 * request): <conference xmlns='http://jitsi.org/protocol/focus' room=...
 * machine-uid=...> with the properties startAudioMuted, startVideoMuted,
 * rtcstatsEnabled and visitors-version.  Rooms and machine-uids come from
 * --seed, so every run with one seed sends the same requests, and
 * jitsi-focus, which draws its delay from the machine-uid, holds each one
 * as long in every run.
 *
 * jitsi-focus writes into each result how long it held the request
 * (bench-held-us); added latency = latency - held: what the path between
 * the user and the focus (server, proxy, and both libstrophe loops) added.
 *
 * While it runs, a thread samples every 100 ms: requests in flight (sent,
 * not answered), each --rss PID's VmRSS, and with --metrics client-proxy's
 * client_proxy_requests_in_flight{direction="inbound"}.  CPU (utime+stime)
 * of each --cpu PID, and of itself, is taken over the window from the first
 * request to the end of the drain.  After the last request it waits up to
 * --drain seconds for the answers; what is still unanswered then is lost.
 *
 * Output: one machine-readable line of key=value, then one human line.
 * Exit status 0 when it ran (whatever the figures), 1 when it could not log
 * in, 2 for a usage error. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <strophe.h>

#include "common.h"
#include "strophe-common.h"

#define FOCUS_NS "http://jitsi.org/protocol/focus"
#define MAX_CPU 8
#define MAX_RSS 4
#define MAX_CONDITIONS 8
#define SAMPLE_US 100000

typedef struct {
    xmpp_conn_t *conn;
    int index;
    bool online, failed;
} user_t;

static struct {
    const char *server, *prefix, *domain, *password, *label, *to, *muc;
    int port, users, rooms;
    long requests;
    double seconds, drain;
    uint64_t seed;
    const char *cpu_name[MAX_CPU];
    int cpu_pid[MAX_CPU];
    int ncpu;
    const char *rss_name[MAX_RSS];
    int rss_pid[MAX_RSS];
    int nrss;
    const char *metrics; /* HOST:PORT, or NULL */
} opt = {.server = "127.0.0.1", .port = 5222, .prefix = "u", .domain = "localhost",
         .password = "pw", .label = "jitsi", .muc = "conference.localhost", .users = 200,
         .rooms = 500, .requests = 10000, .seconds = 10, .drain = 10, .seed = 1};

/* Per request, by index. */
static int64_t *sent_at;  /* µs; 0: not sent */
static bool *answered;

static struct {
    uint64_t ok, errors, unmatched, malformed;
    bench_samples_t latency, added, focus_late, send_lag;
    size_t payload_bytes;
    struct {
        char name[48];
        uint64_t count;
    } conditions[MAX_CONDITIONS];
    int nconditions;
} st;

static atomic_long in_flight;

/* What the sampling thread found; read after it is joined. */
static struct {
    atomic_bool run;
    long in_flight_peak;
    double in_flight_sum;
    long samples;
    long rss_peak_kb[MAX_RSS];
    long metrics_peak, metrics_scrapes, metrics_failures;
} sampler = {.metrics_peak = -1};

static unsigned run_tag; /* in every id: answers to an earlier run never match */
static volatile sig_atomic_t interrupted;
static bool started; /* the burst began: earlier IQs are libstrophe's own (bind, session) */
static bool closing;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* client_proxy_requests_in_flight{direction="inbound"} from HOST:PORT's
 * /metrics; -1 when it cannot be read.  Blocking, with 1 s timeouts: it runs
 * in the sampling thread, never in the one that sends. */
static long scrape_in_flight(const char *hostport)
{
    char host[64];
    const char *colon = strrchr(hostport, ':');
    if (!colon || (size_t)(colon - hostport) >= sizeof host)
        return -1;
    memcpy(host, hostport, (size_t)(colon - hostport));
    host[colon - hostport] = '\0';
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = 1};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    long value = -1;
    static char body[1 << 16];
    size_t n = 0;
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0) {
        static const char request[] = "GET /metrics HTTP/1.0\r\nHost: bench\r\n\r\n";
        if (send(fd, request, sizeof request - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof request - 1)) {
            ssize_t got;
            while (n + 1 < sizeof body && (got = recv(fd, body + n, sizeof body - 1 - n, 0)) > 0)
                n += (size_t)got;
        }
    }
    close(fd);
    body[n] = '\0';
    static const char series[] = "\nclient_proxy_requests_in_flight{direction=\"inbound\"} ";
    const char *at = strstr(body, series);
    if (at)
        value = strtol(at + sizeof series - 1, NULL, 10);
    return value;
}

static void *sample_loop(void *unused)
{
    (void)unused;
    while (atomic_load(&sampler.run)) {
        int64_t next = bench_now_us() + SAMPLE_US;
        long now_in_flight = atomic_load(&in_flight);
        if (now_in_flight > sampler.in_flight_peak)
            sampler.in_flight_peak = now_in_flight;
        sampler.in_flight_sum += (double)now_in_flight;
        sampler.samples++;
        for (int i = 0; i < opt.nrss; i++) {
            long kb = bench_rss_kb(opt.rss_pid[i]);
            if (kb > sampler.rss_peak_kb[i])
                sampler.rss_peak_kb[i] = kb;
        }
        if (opt.metrics) {
            long v = scrape_in_flight(opt.metrics);
            sampler.metrics_scrapes++;
            if (v < 0)
                sampler.metrics_failures++;
            else if (v > sampler.metrics_peak)
                sampler.metrics_peak = v;
        }
        int64_t wait = next - bench_now_us();
        if (wait > 0)
            usleep((useconds_t)wait);
    }
    return NULL;
}

/* Request K: lib-jitsi-meet's conference request for a participant joining
 * a room, as strophe.js writes it (xmlns on the iq, "<uuid>:sendIQ" ids),
 * written into the caller's BUF of CAP bytes; returns its length, 0 when it
 * does not fit. */
static size_t format_request(char *buf, size_t cap, long k)
{
    uint64_t r = bench_splitmix64(opt.seed ^ ((uint64_t)k * 0x9e3779b97f4a7c15ULL));
    unsigned room = (unsigned)(r % (uint64_t)opt.rooms);
    uint64_t uid_hi = bench_splitmix64(r ^ 1), uid_lo = bench_splitmix64(r ^ 2);
    int n = snprintf(buf, cap,
                     "<iq xmlns='jabber:client' to='%s' type='set' "
                     "id='%08x-%04x-4%03x-%04x-%012lx:sendIQ'>"
                     "<conference xmlns='" FOCUS_NS "' room='room-%u@%s' "
                     "machine-uid='%016llx%016llx'>"
                     "<property name='startAudioMuted' value='10'/>"
                     "<property name='startVideoMuted' value='10'/>"
                     "<property name='rtcstatsEnabled' value='false'/>"
                     "<property name='visitors-version' value='1'/>"
                     "</conference></iq>",
                     opt.to, run_tag, (unsigned)(uid_hi & 0xffff), (unsigned)(uid_lo & 0xfff),
                     (unsigned)((uid_lo >> 16) & 0xffff), (unsigned long)k, room, opt.muc,
                     (unsigned long long)uid_hi, (unsigned long long)uid_lo);
    return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

static void send_request(user_t *users, long k)
{
    char buf[2048];
    size_t n = format_request(buf, sizeof buf, k);
    if (n == 0)
        abort(); /* the names given do not fit: a usage error caught early */
    st.payload_bytes += n;
    sent_at[k] = bench_now_us();
    atomic_fetch_add(&in_flight, 1);
    xmpp_send_raw(users[k % opt.users].conn, buf, n);
}

static void count_condition(xmpp_stanza_t *iq)
{
    const char *name = "(none)";
    xmpp_stanza_t *error = xmpp_stanza_get_child_by_name(iq, "error");
    for (xmpp_stanza_t *c = error ? xmpp_stanza_get_children(error) : NULL; c;
         c = xmpp_stanza_get_next(c))
        if (xmpp_stanza_is_tag(c) && strcmp(xmpp_stanza_get_name(c), "text") != 0) {
            name = xmpp_stanza_get_name(c);
            break;
        }
    for (int i = 0; i < st.nconditions; i++)
        if (strcmp(st.conditions[i].name, name) == 0) {
            st.conditions[i].count++;
            return;
        }
    if (st.nconditions < MAX_CONDITIONS) {
        snprintf(st.conditions[st.nconditions].name, sizeof st.conditions[0].name, "%s", name);
        st.conditions[st.nconditions++].count = 1;
    }
}

static int on_iq(xmpp_conn_t *conn, xmpp_stanza_t *iq, void *data)
{
    (void)conn;
    (void)data;
    const char *type = xmpp_stanza_get_type(iq), *id = xmpp_stanza_get_id(iq);
    if (!type || (strcmp(type, "result") != 0 && strcmp(type, "error") != 0))
        return 1;
    unsigned tag;
    unsigned long k;
    if (!id || sscanf(id, "%8x-%*4x-%*4x-%*4x-%12lx:sendIQ", &tag, &k) != 2 || tag != run_tag ||
        k >= (unsigned long)opt.requests || sent_at[k] == 0 || answered[k]) {
        if (started)
            st.unmatched++;
        return 1;
    }
    int64_t latency = bench_now_us() - sent_at[k];
    answered[k] = true;
    atomic_fetch_sub(&in_flight, 1);
    if (type[0] == 'e') {
        st.errors++;
        count_condition(iq);
        return 1;
    }
    xmpp_stanza_t *conf = xmpp_stanza_get_child_by_name_and_ns(iq, "conference", FOCUS_NS);
    const char *held = conf ? xmpp_stanza_get_attribute(conf, "bench-held-us") : NULL;
    const char *chosen = conf ? xmpp_stanza_get_attribute(conf, "bench-chosen-us") : NULL;
    const char *ready = conf ? xmpp_stanza_get_attribute(conf, "ready") : NULL;
    if (!held || !chosen || !ready || strcmp(ready, "true") != 0) {
        st.malformed++;
        return 1;
    }
    st.ok++;
    int64_t held_us = strtoll(held, NULL, 10), chosen_us = strtoll(chosen, NULL, 10);
    bench_samples_add(&st.latency, latency);
    bench_samples_add(&st.added, latency - held_us);
    bench_samples_add(&st.focus_late, held_us - chosen_us);
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
        fprintf(stderr, "jitsi-load: user %d disconnected%s%s (error %d)\n", u->index,
                se && se->text ? ": " : "", se && se->text ? se->text : "", error);
    u->online = false;
    u->failed = true;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: jitsi-load --to DOMAIN [--server H] [--port N] [--users U]\n"
               "                  [--requests N] [--seconds T] [--rooms R] [--muc DOMAIN]\n"
               "                  [--seed S] [--drain S] [--user-prefix P] [--domain D]\n"
               "                  [--password PW] [--label L] [--cpu NAME=PID ...]\n"
               "                  [--rss NAME=PID ...] [--metrics HOST:PORT]\n");
}

/* Parses NAME=PID from V; *name is a new string the options keep for the
 * life of the process (never freed). */
static bool name_pid(const char *v, const char **name, int *pid)
{
    const char *eq = strchr(v, '=');
    if (!eq)
        return false;
    *name = strndup(v, (size_t)(eq - v));
    *pid = atoi(eq + 1);
    return *name && *pid > 0;
}

static uint32_t pct(bench_samples_t *s, double p)
{
    return bench_percentile(s->v, s->n, p);
}

static uint32_t max_of(bench_samples_t *s)
{
    return s->n ? s->v[s->n - 1] : 0;
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
        else if (strcmp(a, "--requests") == 0) opt.requests = atol(v);
        else if (strcmp(a, "--seconds") == 0) opt.seconds = atof(v);
        else if (strcmp(a, "--rooms") == 0) opt.rooms = atoi(v);
        else if (strcmp(a, "--muc") == 0) opt.muc = v;
        else if (strcmp(a, "--seed") == 0) opt.seed = strtoull(v, NULL, 0);
        else if (strcmp(a, "--drain") == 0) opt.drain = atof(v);
        else if (strcmp(a, "--user-prefix") == 0) opt.prefix = v;
        else if (strcmp(a, "--domain") == 0) opt.domain = v;
        else if (strcmp(a, "--password") == 0) opt.password = v;
        else if (strcmp(a, "--label") == 0) opt.label = v;
        else if (strcmp(a, "--to") == 0) opt.to = v;
        else if (strcmp(a, "--metrics") == 0) opt.metrics = v;
        else if (strcmp(a, "--cpu") == 0 && opt.ncpu < MAX_CPU &&
                 name_pid(v, &opt.cpu_name[opt.ncpu], &opt.cpu_pid[opt.ncpu]))
            opt.ncpu++;
        else if (strcmp(a, "--rss") == 0 && opt.nrss < MAX_RSS &&
                 name_pid(v, &opt.rss_name[opt.nrss], &opt.rss_pid[opt.nrss]))
            opt.nrss++;
        else {
            usage(stderr);
            return 2;
        }
    }
    if (opt.ncpu < MAX_CPU) { /* our own CPU, to see whether we are the bottleneck */
        opt.cpu_name[opt.ncpu] = "load";
        opt.cpu_pid[opt.ncpu++] = (int)getpid();
    }
    /* libstrophe select()s: every fd below 1024. */
    if (!opt.to || strlen(opt.to) > 300 || strlen(opt.muc) > 300 || opt.users < 1 ||
        opt.users > 800 || opt.requests < 1 || opt.requests > 100000000 || opt.seconds <= 0 ||
        opt.rooms < 1 || opt.drain < 0) {
        usage(stderr);
        return 2;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    sent_at = calloc((size_t)opt.requests, sizeof *sent_at);
    answered = calloc((size_t)opt.requests, sizeof *answered);
    if (!sent_at || !answered)
        abort();
    run_tag = (unsigned)(((uint64_t)bench_now_us() * 2654435761u) ^ (unsigned)getpid());
    xmpp_initialize();
    xmpp_ctx_t *ctx = xmpp_ctx_new(NULL, NULL);
    user_t *users = calloc((size_t)opt.users, sizeof *users);
    for (int i = 0; i < opt.users; i++) {
        user_t *u = &users[i];
        u->index = i + 1;
        u->conn = xmpp_conn_new(ctx);
        char jid[512];
        snprintf(jid, sizeof jid, "%s%d@%s/jitsi-%08x", opt.prefix, i + 1, opt.domain, run_tag);
        xmpp_conn_set_jid(u->conn, jid);
        xmpp_conn_set_pass(u->conn, opt.password);
        xmpp_conn_set_flags(u->conn, XMPP_CONN_FLAG_DISABLE_TLS);
        xmpp_conn_set_sockopt_callback(u->conn, bench_set_nodelay);
        xmpp_handler_add(u->conn, on_iq, NULL, "iq", NULL, u);
        if (xmpp_connect_client(u->conn, opt.server, (unsigned short)opt.port, on_conn, u) !=
            XMPP_EOK) {
            fprintf(stderr, "jitsi-load: cannot connect user %d\n", i + 1);
            return 1;
        }
    }

    /* Log everybody in, bounded. */
    int64_t give_up = bench_now_us() + 60 * 1000000LL;
    for (;;) {
        int online = 0, failed = 0;
        for (int i = 0; i < opt.users; i++) {
            online += users[i].online;
            failed += users[i].failed;
        }
        if (online == opt.users)
            break;
        if (failed || interrupted || bench_now_us() > give_up) {
            fprintf(stderr, "jitsi-load: only %d of %d users logged in\n", online, opt.users);
            return 1;
        }
        xmpp_run_once(ctx, 10);
    }
    /* Let the logins' last stanzas (presence, roster) settle. */
    for (int64_t settle = bench_now_us() + 200000; bench_now_us() < settle;)
        xmpp_run_once(ctx, 10);

    long rss_before[MAX_RSS];
    for (int i = 0; i < opt.nrss; i++)
        rss_before[i] = sampler.rss_peak_kb[i] = bench_rss_kb(opt.rss_pid[i]);
    int64_t cpu0[MAX_CPU], cpu1[MAX_CPU];
    int64_t mach0 = bench_machine_busy_us();
    for (int c = 0; c < opt.ncpu; c++)
        cpu0[c] = bench_cpu_us(opt.cpu_pid[c]);
    atomic_store(&sampler.run, true);
    pthread_t sampling;
    if (pthread_create(&sampling, NULL, sample_loop, NULL) != 0)
        abort();

    /* The schedule: request k at t0 + k*T/N, sent late rather than never.
     * Between sends, libstrophe's select sleeps whole milliseconds (rounded
     * up: a zero timeout would spin a core the servers need). */
    double interval_us = opt.seconds * 1e6 / (double)opt.requests;
    int64_t t0 = bench_now_us(), sending_end = 0, drain_end = INT64_MAX;
    started = true;
    long next = 0;
    while (!interrupted) {
        int64_t now = bench_now_us();
        while (next < opt.requests && t0 + (int64_t)((double)next * interval_us) <= now) {
            bench_samples_add(&st.send_lag, now - (t0 + (int64_t)((double)next * interval_us)));
            send_request(users, next++);
        }
        if (next == opt.requests && sending_end == 0) {
            sending_end = now;
            drain_end = now + (int64_t)(opt.drain * 1e6);
        }
        if (next == opt.requests && (atomic_load(&in_flight) == 0 || now >= drain_end))
            break;
        unsigned long timeout_ms = 5;
        if (next < opt.requests) {
            int64_t wait = t0 + (int64_t)((double)next * interval_us) - now;
            timeout_ms = wait <= 0 ? 0 : wait >= 5000 ? 5 : (unsigned long)((wait + 999) / 1000);
        }
        xmpp_run_once(ctx, timeout_ms);
    }
    int64_t window_end = bench_now_us();
    int64_t mach1 = bench_machine_busy_us();
    for (int c = 0; c < opt.ncpu; c++)
        cpu1[c] = bench_cpu_us(opt.cpu_pid[c]);
    atomic_store(&sampler.run, false);
    pthread_join(sampling, NULL);
    long lost = atomic_load(&in_flight);
    long sent = next;

    double window_s = (double)(window_end - t0) / 1e6;
    if (window_s <= 0)
        window_s = 1e-9;
    bench_samples_sort(&st.latency);
    bench_samples_sort(&st.added);
    bench_samples_sort(&st.focus_late);
    bench_samples_sort(&st.send_lag);
    printf("label=%s users=%d requests=%ld seconds=%g rooms=%d sent=%ld payload_bytes=%zu "
           "ok=%llu errors=%llu malformed=%llu unmatched=%llu lost=%ld "
           "p50_us=%u p99_us=%u max_us=%u added_p50_us=%u added_p99_us=%u added_max_us=%u "
           "focus_late_p99_us=%u send_lag_p99_us=%u send_lag_max_us=%u "
           "inflight_peak=%ld inflight_mean=%.0f window_s=%.3f",
           opt.label, opt.users, opt.requests, opt.seconds, opt.rooms, sent,
           sent ? st.payload_bytes / (size_t)sent : 0, (unsigned long long)st.ok,
           (unsigned long long)st.errors, (unsigned long long)st.malformed,
           (unsigned long long)st.unmatched, lost, pct(&st.latency, 50), pct(&st.latency, 99),
           max_of(&st.latency), pct(&st.added, 50), pct(&st.added, 99), max_of(&st.added),
           pct(&st.focus_late, 99), pct(&st.send_lag, 99), max_of(&st.send_lag),
           sampler.in_flight_peak,
           sampler.samples ? sampler.in_flight_sum / (double)sampler.samples : 0, window_s);
    if (opt.metrics)
        printf(" metrics_inflight_peak=%ld metrics_scrapes=%ld metrics_failures=%ld",
               sampler.metrics_peak, sampler.metrics_scrapes, sampler.metrics_failures);
    for (int i = 0; i < opt.nrss; i++)
        printf(" rss_before_kb_%s=%ld rss_peak_kb_%s=%ld", opt.rss_name[i], rss_before[i],
               opt.rss_name[i], sampler.rss_peak_kb[i]);
    int64_t other = mach1 - mach0;
    for (int c = 0; c < opt.ncpu; c++) {
        int64_t used = cpu0[c] >= 0 && cpu1[c] >= 0 ? cpu1[c] - cpu0[c] : -1;
        if (used > 0)
            other -= used;
        printf(" cpu_ms_%s=%.0f cpu_pct_%s=%.1f", opt.cpu_name[c], (double)used / 1e3,
               opt.cpu_name[c], used >= 0 ? 100.0 * (double)used / 1e6 / window_s : -1);
    }
    if (mach0 >= 0 && mach1 >= 0)
        printf(" cpu_pct_machine=%.0f cpu_pct_other=%.0f",
               100.0 * (double)(mach1 - mach0) / 1e6 / window_s,
               100.0 * (double)other / 1e6 / window_s);
    printf("\n# %s: %ld conference requests over %g s from %d users to %d rooms (%zu bytes "
           "each); %llu answered, %llu errors, %ld lost; latency p50 %u us, p99 %u, max %u; "
           "added p50 %u us, p99 %u, max %u; in flight at most %ld",
           opt.label, sent, opt.seconds, opt.users, opt.rooms,
           sent ? st.payload_bytes / (size_t)sent : 0, (unsigned long long)st.ok,
           (unsigned long long)st.errors, lost, pct(&st.latency, 50), pct(&st.latency, 99),
           max_of(&st.latency), pct(&st.added, 50), pct(&st.added, 99), max_of(&st.added),
           sampler.in_flight_peak);
    for (int i = 0; i < st.nconditions; i++)
        printf("%s %s x%llu", i ? "," : "; errors:", st.conditions[i].name,
               (unsigned long long)st.conditions[i].count);
    printf("\n");
    fflush(stdout);

    closing = true;
    for (int i = 0; i < opt.users; i++)
        if (users[i].online)
            xmpp_disconnect(users[i].conn);
    give_up = bench_now_us() + 2000000LL;
    for (;;) {
        bool open = false;
        for (int i = 0; i < opt.users; i++)
            open = open || !xmpp_conn_is_disconnected(users[i].conn);
        if (!open || bench_now_us() > give_up)
            break;
        xmpp_run_once(ctx, 10);
    }
    for (int i = 0; i < opt.users; i++)
        xmpp_conn_release(users[i].conn);
    free(users);
    free(sent_at);
    free(answered);
    free(st.latency.v);
    free(st.added.v);
    free(st.focus_late.v);
    free(st.send_lag.v);
    xmpp_ctx_free(ctx);
    xmpp_shutdown();
    return 0;
}
