/* responder: a silent, fast implementing client for the benchmark.
 *
 *   responder --jid service@localhost --password pw --server 127.0.0.1 \
 *             --port 5222 --resources 2 [--resource-prefix r]
 *
 * Logs in R resources (r1 ... rR) in one libstrophe context driven with
 * xmpp_run_once, approves every `subscribe`, is available, and answers every
 * IQ get/set at once with an empty result (same id, to the sender it saw).
 * Prints "ready R" on stdout once all R resources are online; otherwise
 * silent.  SIGTERM/SIGINT: unavailable presence, streams closed, exit 0. */
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

typedef struct {
    xmpp_conn_t *conn;
    int index;
    bool online;
} res_t;

static volatile sig_atomic_t stop;
static bool closing;
static unsigned long long answered, undeliverable;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int on_iq(xmpp_conn_t *conn, xmpp_stanza_t *iq, void *data)
{
    (void)data;
    const char *type = xmpp_stanza_get_type(iq);
    if (!type || (strcmp(type, "get") != 0 && strcmp(type, "set") != 0))
        return 1;
    const char *id = xmpp_stanza_get_id(iq), *from = xmpp_stanza_get_from(iq);
    char buf[4096];
    size_t n = 0;
    n += (size_t)snprintf(buf, sizeof buf, "<iq type='result' id='");
    if (!id || !from || bench_xml_escape(buf, sizeof buf, &n, id) != 0) {
        undeliverable++;
        return 1;
    }
    static const char mid[] = "' to='";
    memcpy(buf + n, mid, sizeof mid - 1);
    n += sizeof mid - 1;
    if (bench_xml_escape(buf, sizeof buf, &n, from) != 0 || n + 4 > sizeof buf) {
        undeliverable++;
        return 1;
    }
    memcpy(buf + n, "'/>", 3);
    n += 3;
    xmpp_send_raw(conn, buf, n);
    answered++;
    return 1;
}

static void on_conn(xmpp_conn_t *conn, xmpp_conn_event_t ev, int error,
                    xmpp_stream_error_t *se, void *data)
{
    res_t *r = data;
    if (ev == XMPP_CONN_CONNECT) {
        r->online = true;
        xmpp_stanza_t *p = xmpp_presence_new(xmpp_conn_get_context(conn));
        xmpp_send(conn, p);
        xmpp_stanza_release(p);
        return;
    }
    if (!closing)
        fprintf(stderr, "responder: r%d disconnected%s%s (error %d)\n", r->index,
                se && se->text ? ": " : "", se && se->text ? se->text : "", error);
    r->online = false;
    if (!closing)
        stop = 1; /* a benchmark with a resource gone is void: end loudly */
}

int main(int argc, char **argv)
{
    const char *jid = NULL, *pw = NULL, *server = "127.0.0.1", *prefix = "r";
    int port = 5222, nres = 2;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (strcmp(a, "--jid") == 0) jid = v;
        else if (strcmp(a, "--password") == 0) pw = v;
        else if (strcmp(a, "--server") == 0) server = v;
        else if (strcmp(a, "--port") == 0) port = atoi(v);
        else if (strcmp(a, "--resources") == 0) nres = atoi(v);
        else if (strcmp(a, "--resource-prefix") == 0) prefix = v;
        else {
            fprintf(stderr, "responder: unknown option %s\n", a);
            return 2;
        }
    }
    if (!jid || !pw || nres < 1 || nres > 500 || (argc - 1) % 2) {
        fprintf(stderr, "usage: responder --jid JID --password PW [--server H] [--port N]\n"
                        "                 [--resources R] [--resource-prefix P]\n");
        return 2;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    xmpp_initialize();
    xmpp_ctx_t *ctx = xmpp_ctx_new(NULL, NULL);
    res_t *rs = calloc((size_t)nres, sizeof *rs);
    for (int i = 0; i < nres; i++) {
        char full[512];
        snprintf(full, sizeof full, "%s/%s%d", jid, prefix, i + 1);
        rs[i].index = i + 1;
        rs[i].conn = xmpp_conn_new(ctx);
        xmpp_conn_set_jid(rs[i].conn, full);
        xmpp_conn_set_pass(rs[i].conn, pw);
        xmpp_conn_set_flags(rs[i].conn, XMPP_CONN_FLAG_DISABLE_TLS);
        xmpp_conn_set_sockopt_callback(rs[i].conn, bench_set_nodelay);
        xmpp_handler_add(rs[i].conn, on_iq, NULL, "iq", NULL, &rs[i]);
        xmpp_handler_add(rs[i].conn, bench_approve_subscriptions, NULL, "presence", NULL, &rs[i]);
        if (xmpp_connect_client(rs[i].conn, server, (unsigned short)port, on_conn, &rs[i]) !=
            XMPP_EOK) {
            fprintf(stderr, "responder: cannot connect r%d\n", i + 1);
            return 1;
        }
    }
    bool ready = false;
    int64_t give_up = bench_now_us() + 20 * 1000000LL;
    while (!stop) {
        xmpp_run_once(ctx, 20);
        if (!ready) {
            int online = 0;
            for (int i = 0; i < nres; i++)
                online += rs[i].online;
            if (online == nres) {
                ready = true;
                printf("ready %d\n", nres);
                fflush(stdout);
            } else if (bench_now_us() > give_up) {
                fprintf(stderr, "responder: only %d of %d resources online\n", online, nres);
                return 1;
            }
        }
    }
    closing = true;
    for (int i = 0; i < nres; i++) {
        if (!rs[i].online)
            continue;
        xmpp_stanza_t *bye = xmpp_presence_new(ctx);
        xmpp_stanza_set_type(bye, "unavailable");
        xmpp_send(rs[i].conn, bye);
        xmpp_stanza_release(bye);
        xmpp_disconnect(rs[i].conn);
    }
    give_up = bench_now_us() + 2000000LL;
    for (;;) {
        bool open = false;
        for (int i = 0; i < nres; i++)
            open = open || !xmpp_conn_is_disconnected(rs[i].conn);
        if (!open || bench_now_us() > give_up)
            break;
        xmpp_run_once(ctx, 10);
    }
    fprintf(stderr, "responder: answered %llu, %llu unanswerable\n", answered, undeliverable);
    for (int i = 0; i < nres; i++)
        xmpp_conn_release(rs[i].conn);
    free(rs);
    xmpp_ctx_free(ctx);
    xmpp_shutdown();
    return 0;
}
