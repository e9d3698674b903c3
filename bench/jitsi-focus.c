/* jitsi-focus: a Jicofo-like implementing client for the Jitsi benchmark.
 *
 *   jitsi-focus --jid focus@auth.localhost --password pw --server 127.0.0.1 \
 *               --port 5222 --resources 2 [--resource-prefix focus] \
 *               [--min-delay 0.1] [--max-delay 2] [--seed 1] \
 *               [--client-proxy focus.localhost ...]
 *
 * Logs in R resources (focus1 ... focusR) in one libstrophe context driven
 * with xmpp_run_once, approves every `subscribe`, is available, and answers
 * each <conference xmlns='http://jitsi.org/protocol/focus' room=.../> set as
 * Jicofo does once it has joined the room: a result
 *   <conference ready='true' room=... focusjid=... session-id=...>
 *     <property name='authentication' value='false'/> ...
 * after a delay drawn uniformly from [MIN, MAX] seconds.  The delay is a
 * function of the seed and the request's machine-uid, so the same request
 * waits as long in every mode of a run and in every run with the same seed.
 *
 * For the benchmark (not Jicofo's): the result's <conference/> also carries
 * bench-chosen-us (the drawn delay) and bench-held-us (the time from the
 * handler seeing the request to queuing the answer), so that the sender can
 * take exactly the time it spent here out of its latency.
 *
 * It reads the sender as Jicofo does: when the bare `from` is a --client-proxy
 * domain, its resource must be a JID.  Requests whose sender Jicofo would not
 * parse, and requests that are not conferences, are counted and answered
 * with an error at once.  Prints "ready R" once all resources are online;
 * on SIGTERM/SIGINT, a summary on stderr, then exit 0. */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <strophe.h>

#include "common.h"
#include "strophe-common.h"

#define FOCUS_NS "http://jitsi.org/protocol/focus"
#define MAX_PROXY_DOMAINS 8

typedef struct {
    xmpp_conn_t *conn;
    int index;
    bool online;
    char jid[512]; /* full JID: the result's focusjid */
} focus_t;

/* A conference answer waiting for its delay to run out.  It owns id, to and
 * room (strdup'd from the request); focus is borrowed from the resources'
 * array, which outlives every pending answer. */
typedef struct {
    int64_t due, received; /* µs, bench_now_us() */
    int64_t chosen_us;
    focus_t *focus;
    char *id, *to, *room;
} pending_t;

/* Min-heap of pending answers by due time. */
static struct {
    pending_t *v;
    size_t n, cap;
} heap;

static struct {
    double min_delay, max_delay;
    uint64_t seed;
    const char *proxy_domain[MAX_PROXY_DOMAINS];
    int nproxy;
} opt = {.min_delay = 0.1, .max_delay = 2.0, .seed = 1};

static volatile sig_atomic_t stop;
static bool closing;
static unsigned long long answered, refused, bad_sender, max_pending;
static int64_t max_late_us; /* how far past its due time an answer went out */

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static uint64_t fnv1a64(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

/* The delay for a request: uniform in [min, max], from the seed and KEY. */
static int64_t delay_for(const char *key)
{
    static uint64_t sequence; /* requests without a machine-uid */
    uint64_t r =
        bench_splitmix64(opt.seed ^ (key ? fnv1a64(key) : ++sequence * 0x2545f4914f6cdd1dULL));
    double unit = (double)(r >> 11) / 9007199254740992.0; /* [0, 1) */
    return (int64_t)((opt.min_delay + unit * (opt.max_delay - opt.min_delay)) * 1e6 + 0.5);
}

/* Takes P (and the strings it owns) into the heap. */
static void heap_push(pending_t p)
{
    if (heap.n == heap.cap) {
        heap.cap = heap.cap ? heap.cap * 2 : 4096;
        heap.v = realloc(heap.v, heap.cap * sizeof *heap.v);
        if (!heap.v)
            abort();
    }
    size_t i = heap.n++;
    while (i > 0 && heap.v[(i - 1) / 2].due > p.due) {
        heap.v[i] = heap.v[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    heap.v[i] = p;
    if (heap.n > max_pending)
        max_pending = heap.n;
}

/* Removes the earliest answer; the caller owns it (and its strings) now. */
static pending_t heap_pop(void)
{
    pending_t top = heap.v[0], last = heap.v[--heap.n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= heap.n)
            break;
        if (c + 1 < heap.n && heap.v[c + 1].due < heap.v[c].due)
            c++;
        if (heap.v[c].due >= last.due)
            break;
        heap.v[i] = heap.v[c];
        i = c;
    }
    if (heap.n > 0)
        heap.v[i] = last;
    return top;
}

/* Appends TEXT to BUF (capacity CAP, length *N; both the caller's); false
 * when it does not fit. */
static bool append(char *buf, size_t cap, size_t *n, const char *text)
{
    size_t len = strlen(text);
    if (*n + len + 1 > cap)
        return false;
    memcpy(buf + *n, text, len + 1);
    *n += len;
    return true;
}

static bool append_escaped(char *buf, size_t cap, size_t *n, const char *text)
{
    return bench_xml_escape(buf, cap, n, text) == 0;
}

/* Sends P's answer: Jicofo's result once it is in the room.  Frees P's
 * strings (P itself is the caller's, popped from the heap). */
static void send_answer(pending_t *p, int64_t now)
{
    char buf[4096], num[160];
    size_t n = 0;
    bool ok = append(buf, sizeof buf, &n, "<iq type='result' id='") &&
              append_escaped(buf, sizeof buf, &n, p->id) &&
              append(buf, sizeof buf, &n, "' to='") &&
              append_escaped(buf, sizeof buf, &n, p->to) &&
              append(buf, sizeof buf, &n, "'><conference xmlns='" FOCUS_NS "' ready='true' room='") &&
              append_escaped(buf, sizeof buf, &n, p->room) &&
              append(buf, sizeof buf, &n, "' focusjid='") &&
              append_escaped(buf, sizeof buf, &n, p->focus->jid);
    /* Jicofo hands out a session id; the benchmark's two figures follow. */
    snprintf(num, sizeof num,
             "' session-id='%016llx' bench-chosen-us='%lld' bench-held-us='%lld'>",
             (unsigned long long)bench_splitmix64(opt.seed ^ fnv1a64(p->id)),
             (long long)p->chosen_us, (long long)(now - p->received));
    ok = ok && append(buf, sizeof buf, &n, num) &&
         append(buf, sizeof buf, &n,
                "<property name='authentication' value='false'/>"
                "<property name='sipGatewayEnabled' value='false'/>"
                "</conference></iq>");
    if (ok && p->focus->online) {
        xmpp_send_raw(p->focus->conn, buf, n);
        answered++;
    } else {
        refused++;
    }
    if (now - p->due > max_late_us)
        max_late_us = now - p->due;
    free(p->id);
    free(p->to);
    free(p->room);
}

/* An error answer at once, for what Jicofo would refuse. */
static void send_error(xmpp_conn_t *conn, const char *id, const char *to, const char *condition)
{
    char buf[2048];
    size_t n = 0;
    bool ok = append(buf, sizeof buf, &n, "<iq type='error' id='") &&
              append_escaped(buf, sizeof buf, &n, id) &&
              append(buf, sizeof buf, &n, "' to='") &&
              append_escaped(buf, sizeof buf, &n, to) &&
              append(buf, sizeof buf, &n, "'><error type='modify'><") &&
              append(buf, sizeof buf, &n, condition) &&
              append(buf, sizeof buf, &n,
                     " xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>");
    if (ok)
        xmpp_send_raw(conn, buf, n);
    refused++;
}

/* A JID Jicofo's parser takes: [node@]domain[/resource], no part empty. */
static bool is_jid(const char *s)
{
    const char *slash = strchr(s, '/');
    size_t bare_len = slash ? (size_t)(slash - s) : strlen(s);
    const char *at = memchr(s, '@', bare_len);
    const char *domain = at ? at + 1 : s;
    size_t domain_len = bare_len - (size_t)(domain - s);
    return domain_len > 0 && (!at || at > s) && (!slash || slash[1]);
}

/* Whether Jicofo would read a sender from FROM (see the file's comment). */
static bool sender_parses(const char *from)
{
    const char *slash = strchr(from, '/');
    size_t bare_len = slash ? (size_t)(slash - from) : strlen(from);
    for (int i = 0; i < opt.nproxy; i++)
        if (strlen(opt.proxy_domain[i]) == bare_len &&
            strncasecmp(from, opt.proxy_domain[i], bare_len) == 0)
            return slash && is_jid(slash + 1);
    return is_jid(from);
}

static int on_iq(xmpp_conn_t *conn, xmpp_stanza_t *iq, void *data)
{
    focus_t *f = data;
    const char *type = xmpp_stanza_get_type(iq);
    if (!type || (strcmp(type, "get") != 0 && strcmp(type, "set") != 0))
        return 1;
    int64_t now = bench_now_us();
    const char *id = xmpp_stanza_get_id(iq), *from = xmpp_stanza_get_from(iq);
    if (!id || !from)
        return 1;
    xmpp_stanza_t *conf = xmpp_stanza_get_child_by_name_and_ns(iq, "conference", FOCUS_NS);
    const char *room = conf ? xmpp_stanza_get_attribute(conf, "room") : NULL;
    if (!sender_parses(from)) {
        bad_sender++;
        send_error(conn, id, from, "bad-request");
        return 1;
    }
    if (strcmp(type, "set") != 0 || !room) {
        send_error(conn, id, from, "bad-request");
        return 1;
    }
    int64_t delay = delay_for(xmpp_stanza_get_attribute(conf, "machine-uid"));
    pending_t p = {.due = now + delay, .received = now, .chosen_us = delay, .focus = f,
                   .id = strdup(id), .to = strdup(from), .room = strdup(room)};
    if (!p.id || !p.to || !p.room)
        abort();
    heap_push(p);
    return 1;
}

static void on_conn(xmpp_conn_t *conn, xmpp_conn_event_t ev, int error,
                    xmpp_stream_error_t *se, void *data)
{
    focus_t *f = data;
    if (ev == XMPP_CONN_CONNECT) {
        f->online = true;
        xmpp_stanza_t *p = xmpp_presence_new(xmpp_conn_get_context(conn));
        xmpp_send(conn, p);
        xmpp_stanza_release(p);
        return;
    }
    if (!closing)
        fprintf(stderr, "jitsi-focus: focus%d disconnected%s%s (error %d)\n", f->index,
                se && se->text ? ": " : "", se && se->text ? se->text : "", error);
    f->online = false;
    if (!closing)
        stop = 1; /* a run with a resource gone is void: end loudly */
}

static void usage(FILE *out)
{
    fprintf(out, "usage: jitsi-focus --jid JID --password PW [--server H] [--port N]\n"
                 "                   [--resources R] [--resource-prefix P] [--min-delay S]\n"
                 "                   [--max-delay S] [--seed N] [--client-proxy DOMAIN ...]\n");
}

int main(int argc, char **argv)
{
    const char *jid = NULL, *pw = NULL, *server = "127.0.0.1", *prefix = "focus";
    int port = 5222, nres = 2;
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (!v) {
            usage(stderr);
            return 2;
        }
        if (strcmp(a, "--jid") == 0) jid = v;
        else if (strcmp(a, "--password") == 0) pw = v;
        else if (strcmp(a, "--server") == 0) server = v;
        else if (strcmp(a, "--port") == 0) port = atoi(v);
        else if (strcmp(a, "--resources") == 0) nres = atoi(v);
        else if (strcmp(a, "--resource-prefix") == 0) prefix = v;
        else if (strcmp(a, "--min-delay") == 0) opt.min_delay = atof(v);
        else if (strcmp(a, "--max-delay") == 0) opt.max_delay = atof(v);
        else if (strcmp(a, "--seed") == 0) opt.seed = strtoull(v, NULL, 0);
        else if (strcmp(a, "--client-proxy") == 0 && opt.nproxy < MAX_PROXY_DOMAINS)
            opt.proxy_domain[opt.nproxy++] = v;
        else {
            usage(stderr);
            return 2;
        }
    }
    if (!jid || !pw || nres < 1 || nres > 500 || opt.min_delay < 0 ||
        opt.max_delay < opt.min_delay) {
        usage(stderr);
        return 2;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    xmpp_initialize();
    xmpp_ctx_t *ctx = xmpp_ctx_new(NULL, NULL);
    focus_t *fs = calloc((size_t)nres, sizeof *fs);
    for (int i = 0; i < nres; i++) {
        focus_t *f = &fs[i];
        snprintf(f->jid, sizeof f->jid, "%s/%s%d", jid, prefix, i + 1);
        f->index = i + 1;
        f->conn = xmpp_conn_new(ctx);
        xmpp_conn_set_jid(f->conn, f->jid);
        xmpp_conn_set_pass(f->conn, pw);
        xmpp_conn_set_flags(f->conn, XMPP_CONN_FLAG_DISABLE_TLS);
        xmpp_conn_set_sockopt_callback(f->conn, bench_set_nodelay);
        xmpp_handler_add(f->conn, on_iq, NULL, "iq", NULL, f);
        xmpp_handler_add(f->conn, bench_approve_subscriptions, NULL, "presence", NULL, f);
        if (xmpp_connect_client(f->conn, server, (unsigned short)port, on_conn, f) != XMPP_EOK) {
            fprintf(stderr, "jitsi-focus: cannot connect focus%d\n", i + 1);
            return 1;
        }
    }
    bool ready = false;
    int64_t give_up = bench_now_us() + 20 * 1000000LL;
    while (!stop) {
        /* Sleep in libstrophe's select until the next answer is due (whole
         * ms, rounded up), then send every answer that is. */
        unsigned long timeout_ms = 20;
        if (heap.n > 0) {
            int64_t wait = heap.v[0].due - bench_now_us();
            timeout_ms = wait <= 0 ? 0 : wait >= 20000 ? 20 : (unsigned long)((wait + 999) / 1000);
        }
        xmpp_run_once(ctx, timeout_ms);
        int64_t now = bench_now_us();
        while (heap.n > 0 && heap.v[0].due <= now) {
            pending_t p = heap_pop();
            send_answer(&p, now);
        }
        if (!ready) {
            int online = 0;
            for (int i = 0; i < nres; i++)
                online += fs[i].online;
            if (online == nres) {
                ready = true;
                printf("ready %d\n", nres);
                fflush(stdout);
            } else if (now > give_up) {
                fprintf(stderr, "jitsi-focus: only %d of %d resources online\n", online, nres);
                return 1;
            }
        }
    }
    closing = true;
    unsigned long long unanswered = heap.n;
    while (heap.n > 0) {
        pending_t p = heap_pop();
        free(p.id);
        free(p.to);
        free(p.room);
    }
    for (int i = 0; i < nres; i++) {
        if (!fs[i].online)
            continue;
        xmpp_stanza_t *bye = xmpp_presence_new(ctx);
        xmpp_stanza_set_type(bye, "unavailable");
        xmpp_send(fs[i].conn, bye);
        xmpp_stanza_release(bye);
        xmpp_disconnect(fs[i].conn);
    }
    give_up = bench_now_us() + 2000000LL;
    for (;;) {
        bool open = false;
        for (int i = 0; i < nres; i++)
            open = open || !xmpp_conn_is_disconnected(fs[i].conn);
        if (!open || bench_now_us() > give_up)
            break;
        xmpp_run_once(ctx, 10);
    }
    fprintf(stderr,
            "jitsi-focus: answered %llu conferences, %llu refused (%llu senders Jicofo "
            "would not parse), %llu pending at exit, at most %llu pending at once, "
            "answers at most %lld us late\n",
            answered, refused, bad_sender, unanswered, max_pending, (long long)max_late_us);
    for (int i = 0; i < nres; i++)
        xmpp_conn_release(fs[i].conn);
    free(fs);
    free(heap.v);
    xmpp_ctx_free(ctx);
    xmpp_shutdown();
    return 0;
}
