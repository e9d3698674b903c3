/* implementing-client: the service behind client-proxy, as an operator would
 * write it.
 *
 *   implementing-client --jid service@localhost --password PW \
 *       --server 127.0.0.1 --port 5222 --resource worker-1 --resource worker-2 \
 *       [--greet]
 *
 * It logs in the target account once per --resource, all connections in one
 * libstrophe context, and for each resource:
 *   - approves a `subscribe` (client-proxy subscribes to learn who is online),
 *   - sends available presence,
 *   - answers every IQ get/set:
 *       urn:example:echo  the payload back, plus
 *                         <handled-by xmlns='urn:example:echo'
 *                                     resource='worker-1' from='<from seen>'/>
 *       urn:xmpp:ping     an empty result
 *       anything else     error cancel/feature-not-implemented
 *   - prints one line per request: "worker-1 <- get from FROM id=ID".
 * With --greet, each resource also shows the other direction, the service
 * writing and asking a user:
 *   - a chat or normal message with a body from <domain>/<address> (a user,
 *     as client-proxy presents them) is answered with a message to that same
 *     address, "hello <address>, this is worker-1",
 *   - then a XEP-0199 ping goes to the address, and its answer is logged when
 *     it comes back with our id:
 *       worker-1 <- chat from FROM id=ID
 *       worker-1 -> greeted FROM, ping id=ping-1
 *       worker-1 <- ping id=ping-1 result from FROM in 1.8 ms
 *     (or "error cancel/service-unavailable" instead of "result").
 * SIGTERM or SIGINT sends unavailable presence, closes the streams, exits 0.
 * A dropped connection is retried every few seconds.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <glib.h>
#include <strophe.h>

#define ECHO_NS "urn:example:echo"
#define PING_NS "urn:xmpp:ping"
#define STANZAS_NS "urn:ietf:params:xml:ns:xmpp-stanzas"
#define RECONNECT_MS 3000

typedef struct {
    xmpp_ctx_t *ctx;
    xmpp_conn_t *conn;
    char *resource;
    bool online;
    bool want_online; /* false once we are shutting down */
    gint64 retry_at;  /* monotonic ms of the next reconnect, 0: none */
    unsigned pings_sent;
    GHashTable *pings; /* our pings awaiting an answer: id -> gint64 *, µs sent */
} worker_t;

static struct {
    const char *jid;
    const char *password;
    const char *server;
    int port;
    bool greet;
} opt = {.server = "127.0.0.1", .port = 5222};

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static gint64 now_ms(void)
{
    return g_get_monotonic_time() / 1000;
}

/* libstrophe writes every stanza on its own: without TCP_NODELAY each
 * request/response exchange stalls about 40 ms on Nagle's algorithm. */
static int set_nodelay(xmpp_conn_t *conn, void *sock)
{
    (void)conn;
    int one = 1;
    return setsockopt(*(int *)sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* First element child of STANZA, or NULL. */
static xmpp_stanza_t *first_element(xmpp_stanza_t *stanza)
{
    xmpp_stanza_t *ch = xmpp_stanza_get_children(stanza);
    while (ch && !xmpp_stanza_is_tag(ch))
        ch = xmpp_stanza_get_next(ch);
    return ch;
}

static void send_and_release(xmpp_conn_t *conn, xmpp_stanza_t *stanza)
{
    xmpp_send(conn, stanza);
    xmpp_stanza_release(stanza);
}

static xmpp_stanza_t *build_reply(worker_t *w, xmpp_stanza_t *req)
{
    xmpp_stanza_t *payload = first_element(req);
    const char *ns = payload ? xmpp_stanza_get_ns(payload) : NULL;
    const char *from = xmpp_stanza_get_from(req);

    if (ns && strcmp(ns, ECHO_NS) == 0) {
        /* The payload back, with a note of who handled it and which
         * address it came from (the address client-proxy translated). */
        xmpp_stanza_t *echo = xmpp_stanza_copy(payload);
        xmpp_stanza_t *by = xmpp_stanza_new(w->ctx);
        xmpp_stanza_set_name(by, "handled-by");
        xmpp_stanza_set_ns(by, ECHO_NS);
        xmpp_stanza_set_attribute(by, "resource", w->resource);
        xmpp_stanza_set_attribute(by, "from", from ? from : "");
        xmpp_stanza_add_child_ex(echo, by, 0);

        xmpp_stanza_t *res = xmpp_iq_new(w->ctx, "result",
                                         xmpp_stanza_get_id(req));
        xmpp_stanza_add_child_ex(res, echo, 0);
        return res;
    }
    if (ns && strcmp(ns, PING_NS) == 0)
        return xmpp_iq_new(w->ctx, "result", xmpp_stanza_get_id(req));

    xmpp_stanza_t *err = xmpp_stanza_reply_error(req, "cancel",
                                                 "feature-not-implemented", NULL);
    /* The parser turns xml:lang into "lang" and the reply copies it. */
    xmpp_stanza_del_attribute(err, "lang");
    return err;
}

static int on_iq(xmpp_conn_t *conn, xmpp_stanza_t *req, void *data)
{
    worker_t *w = data;
    const char *type = xmpp_stanza_get_type(req);
    if (!type || (strcmp(type, "get") != 0 && strcmp(type, "set") != 0))
        return 1; /* results and errors: nothing to answer */

    const char *from = xmpp_stanza_get_from(req);
    const char *id = xmpp_stanza_get_id(req);
    printf("%s <- %s from %s id=%s\n", w->resource, type, from ? from : "?",
           id ? id : "?");
    fflush(stdout);

    xmpp_stanza_t *res = build_reply(w, req);
    if (from)
        xmpp_stanza_set_to(res, from);
    send_and_release(conn, res);
    return 1;
}

/* What ANSWER says, into BUF: "result", or "error TYPE/CONDITION". */
static const char *outcome(xmpp_stanza_t *answer, char *buf, size_t size)
{
    const char *type = xmpp_stanza_get_type(answer);
    if (type && strcmp(type, "result") == 0)
        return "result";
    xmpp_stanza_t *err = xmpp_stanza_get_child_by_name(answer, "error");
    const char *cond = "?";
    for (xmpp_stanza_t *ch = err ? xmpp_stanza_get_children(err) : NULL; ch;
         ch = xmpp_stanza_get_next(ch)) {
        const char *ns = xmpp_stanza_get_ns(ch);
        if (xmpp_stanza_is_tag(ch) && ns && strcmp(ns, STANZAS_NS) == 0 &&
            strcmp(xmpp_stanza_get_name(ch), "text") != 0) {
            cond = xmpp_stanza_get_name(ch);
            break;
        }
    }
    const char *err_type = err ? xmpp_stanza_get_type(err) : NULL;
    snprintf(buf, size, "error %s/%s", err_type ? err_type : "?", cond);
    return buf;
}

/* The answer to one of our pings: client-proxy gives it back with the id we
 * chose, from the address we pinged.  It answers every request, with an
 * error when the user does not answer within its request_timeout, so no timer
 * of ours is needed. */
static int on_ping_answer(xmpp_conn_t *conn, xmpp_stanza_t *answer, void *data)
{
    (void)conn;
    worker_t *w = data;
    const char *type = xmpp_stanza_get_type(answer);
    const char *id = xmpp_stanza_get_id(answer);
    gint64 *sent = g_hash_table_lookup(w->pings, id);
    if (!sent || !type || (strcmp(type, "result") != 0 && strcmp(type, "error") != 0))
        return 1; /* not the answer: keep waiting */

    const char *from = xmpp_stanza_get_from(answer);
    double ms = (double)(g_get_monotonic_time() - *sent) / 1000.0;
    char what[128];
    printf("%s <- ping id=%s %s from %s in %.1f ms\n", w->resource, id,
           outcome(answer, what, sizeof what), from ? from : "?", ms);
    fflush(stdout);
    g_hash_table_remove(w->pings, id);
    return 0; /* one answer per id: remove this handler */
}

/* Whether FROM is a user as client-proxy presents them, <domain>/<address>:
 * a full JID without a node.  A resource of an account has a node. */
static bool is_proxied_user(const char *from)
{
    const char *slash = from ? strchr(from, '/') : NULL;
    const char *at = from ? strchr(from, '@') : NULL;
    return slash && slash[1] && (!at || at > slash);
}

/* --greet: a user wrote to us.  Answer at the address the message came from,
 * as for an IQ, then ping that address. */
static int on_message(xmpp_conn_t *conn, xmpp_stanza_t *msg, void *data)
{
    worker_t *w = data;
    const char *type = xmpp_stanza_get_type(msg);
    const char *from = xmpp_stanza_get_from(msg);
    /* Chat and normal (no type is normal) with a body: not errors, which
     * must never be answered (two entities could loop), not groupchat or
     * headline, and not a bare chat state. */
    if ((type && strcmp(type, "chat") != 0 && strcmp(type, "normal") != 0) ||
        !xmpp_stanza_get_child_by_name(msg, "body") || !is_proxied_user(from))
        return 1;

    const char *id = xmpp_stanza_get_id(msg);
    printf("%s <- %s from %s id=%s\n", w->resource, type ? type : "normal", from,
           id ? id : "?");

    const char *address = strchr(from, '/') + 1; /* the user, as we may name them */
    g_autofree char *text = g_strdup_printf("hello %s, this is %s", address, w->resource);
    xmpp_stanza_t *hello = xmpp_message_new(w->ctx, type, from, NULL);
    xmpp_message_set_body(hello, text);
    send_and_release(conn, hello);

    /* Our own id: client-proxy sends the user one of its own and gives the
     * answer back with ours. */
    g_autofree char *ping_id = g_strdup_printf("ping-%u", ++w->pings_sent);
    xmpp_stanza_t *ping = xmpp_iq_new(w->ctx, "get", ping_id);
    xmpp_stanza_set_to(ping, from);
    xmpp_stanza_t *payload = xmpp_stanza_new(w->ctx);
    xmpp_stanza_set_name(payload, "ping");
    xmpp_stanza_set_ns(payload, PING_NS);
    xmpp_stanza_add_child_ex(ping, payload, 0);
    gint64 *sent = g_new(gint64, 1);
    *sent = g_get_monotonic_time();
    g_hash_table_insert(w->pings, g_strdup(ping_id), sent);
    xmpp_id_handler_add(conn, on_ping_answer, ping_id, w);
    send_and_release(conn, ping);

    printf("%s -> greeted %s, ping id=%s\n", w->resource, from, ping_id);
    fflush(stdout);
    return 1;
}

static int on_presence(xmpp_conn_t *conn, xmpp_stanza_t *pres, void *data)
{
    worker_t *w = data;
    const char *type = xmpp_stanza_get_type(pres);
    const char *from = xmpp_stanza_get_from(pres);
    if (type && from && strcmp(type, "subscribe") == 0) {
        /* client-proxy asks to see our presence: let it. */
        xmpp_stanza_t *ok = xmpp_presence_new(w->ctx);
        xmpp_stanza_set_type(ok, "subscribed");
        xmpp_stanza_set_to(ok, from);
        send_and_release(conn, ok);
        printf("%s: approved subscription from %s\n", w->resource, from);
        fflush(stdout);
    }
    return 1;
}

static void on_connection(xmpp_conn_t *conn, xmpp_conn_event_t event,
                          int error, xmpp_stream_error_t *stream_error,
                          void *data)
{
    worker_t *w = data;
    if (event == XMPP_CONN_CONNECT) {
        w->online = true;
        fprintf(stderr, "%s: online as %s\n", w->resource,
                xmpp_conn_get_bound_jid(conn));
        send_and_release(conn, xmpp_presence_new(w->ctx));
        return;
    }
    w->online = false;
    if (stream_error && stream_error->text)
        fprintf(stderr, "%s: disconnected: %s\n", w->resource,
                stream_error->text);
    else
        fprintf(stderr, "%s: disconnected%s%s\n", w->resource,
                error ? ": " : "", error ? strerror(error) : "");
    if (w->want_online)
        w->retry_at = now_ms() + RECONNECT_MS;
}

static bool worker_connect(worker_t *w)
{
    w->retry_at = 0;
    if (xmpp_connect_client(w->conn, opt.server, (unsigned short)opt.port,
                            on_connection, w) != XMPP_EOK) {
        fprintf(stderr, "%s: cannot connect to %s:%d\n", w->resource,
                opt.server, opt.port);
        w->retry_at = now_ms() + RECONNECT_MS;
        return false;
    }
    return true;
}

static void worker_init(worker_t *w, xmpp_ctx_t *ctx, const char *resource)
{
    w->ctx = ctx;
    w->resource = g_strdup(resource);
    w->want_online = true;
    w->conn = xmpp_conn_new(ctx);

    g_autofree char *full_jid = g_strdup_printf("%s/%s", opt.jid, resource);
    xmpp_conn_set_jid(w->conn, full_jid);
    xmpp_conn_set_pass(w->conn, opt.password);
    /* A demo against a local server: plain text.  Drop this in production. */
    xmpp_conn_set_flags(w->conn, XMPP_CONN_FLAG_DISABLE_TLS);
    xmpp_conn_set_sockopt_callback(w->conn, set_nodelay);
    xmpp_handler_add(w->conn, on_iq, NULL, "iq", NULL, w);
    xmpp_handler_add(w->conn, on_presence, NULL, "presence", NULL, w);
    w->pings = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    if (opt.greet)
        xmpp_handler_add(w->conn, on_message, NULL, "message", NULL, w);
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: implementing-client --jid JID --password PW "
            "[--server HOST] [--port N]\n"
            "                           --resource NAME [--resource NAME ...] "
            "[--greet]\n");
}

int main(int argc, char **argv)
{
    GPtrArray *resources = g_ptr_array_new();
    for (int i = 1; i < argc;) {
        const char *arg = argv[i++];
        if (strcmp(arg, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(arg, "--greet") == 0) {
            opt.greet = true;
            continue;
        }
        const char *val = i < argc ? argv[i++] : NULL; /* the others take one */
        if (!val) {
            usage(stderr);
            return 2;
        }
        if (strcmp(arg, "--jid") == 0)
            opt.jid = val;
        else if (strcmp(arg, "--password") == 0)
            opt.password = val;
        else if (strcmp(arg, "--server") == 0)
            opt.server = val;
        else if (strcmp(arg, "--port") == 0)
            opt.port = atoi(val);
        else if (strcmp(arg, "--resource") == 0)
            g_ptr_array_add(resources, (char *)val);
        else {
            usage(stderr);
            return 2;
        }
    }
    if (!opt.jid || !opt.password || resources->len == 0 || opt.port <= 0) {
        usage(stderr);
        return 2;
    }

    /* No SA_RESTART: a signal interrupts libstrophe's select(). */
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    xmpp_initialize();
    xmpp_log_t *log = getenv("STROPHE_DEBUG")
                          ? xmpp_get_default_logger(XMPP_LEVEL_DEBUG)
                          : NULL;
    xmpp_ctx_t *ctx = xmpp_ctx_new(NULL, log);

    guint n = resources->len;
    worker_t *workers = g_new0(worker_t, n);
    for (guint i = 0; i < n; i++) {
        worker_init(&workers[i], ctx, g_ptr_array_index(resources, i));
        worker_connect(&workers[i]);
    }

    /* One loop drives every connection. */
    while (!stop_requested) {
        xmpp_run_once(ctx, 200);
        for (guint i = 0; i < n; i++) {
            if (workers[i].retry_at && now_ms() >= workers[i].retry_at)
                worker_connect(&workers[i]);
        }
    }

    /* Say goodbye on every open stream, then wait (a bounded time) for the
     * server to close them. */
    for (guint i = 0; i < n; i++) {
        workers[i].want_online = false;
        if (workers[i].online) {
            xmpp_stanza_t *bye = xmpp_presence_new(ctx);
            xmpp_stanza_set_type(bye, "unavailable");
            send_and_release(workers[i].conn, bye);
            xmpp_disconnect(workers[i].conn);
        }
    }
    gint64 give_up = now_ms() + 2000;
    for (;;) {
        bool open = false;
        for (guint i = 0; i < n; i++)
            open = open || !xmpp_conn_is_disconnected(workers[i].conn);
        if (!open || now_ms() > give_up)
            break;
        xmpp_run_once(ctx, 50);
    }

    for (guint i = 0; i < n; i++) {
        xmpp_conn_release(workers[i].conn);
        g_hash_table_unref(workers[i].pings);
        g_free(workers[i].resource);
    }
    g_free(workers);
    g_ptr_array_unref(resources);
    xmpp_ctx_free(ctx);
    xmpp_shutdown();
    return 0;
}
