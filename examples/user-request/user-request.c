/* user-request: a user of the service, for demos.
 *
 *   user-request --jid alice@localhost --password PW --server 127.0.0.1 \
 *       --port 5222 --to proxy.localhost --count 3 [--text hello] \
 *       [--message TEXT] [--pings N]
 *
 * Sends COUNT echo requests (<echo xmlns='urn:example:echo'>TEXT N</echo>)
 * to the proxy one after the other and prints, for each reply, who handled
 * it and the address the service saw instead of ours:
 *
 *   #1 id=req-1 result from proxy.localhost: handled by worker-2, \
 *      seen as proxy.localhost/alice@localhost/user-request
 *   #2 id=req-2 error from proxy.localhost: cancel/service-unavailable
 *
 * The other direction, the service writing to us and asking us (the
 * implementing client's --greet does both):
 *   --message TEXT  then writes TEXT to the proxy as a chat message and waits
 *                   for a message back from it;
 *   --pings N       stays until N pings from the proxy have been answered.
 *
 *   -> chat to proxy.localhost: hi
 *   <- chat from proxy.localhost: hello alice@localhost/user-request, this is worker-1
 *   <- ping from proxy.localhost id=ID: answered with result
 *
 * Like any client it answers every IQ get or set it receives: a XEP-0199
 * ping with a result, anything else with cancel/service-unavailable.
 *
 * Exits 0 when every request got a result, the message got a message back and
 * the pings came, 1 otherwise, 2 on bad usage.  --count 0 sends no request.
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
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

static struct {
    const char *jid;
    const char *password;
    const char *server;
    int port;
    const char *to;
    int count;
    const char *text;
    int timeout_s;
    const char *message;
    int pings;
} opt = {.server = "127.0.0.1", .port = 5222, .to = "proxy.localhost",
         .count = 1, .text = "hello", .timeout_s = 40};

typedef struct {
    xmpp_ctx_t *ctx;
    xmpp_conn_t *conn;
    bool online;
    bool closed;
    int next;      /* number of the request in flight (1-based) */
    int results;   /* how many got a result */
    bool waiting;  /* a request is in flight */
    bool wrote;    /* --message was sent */
    bool heard;    /* and a message came back */
    bool bounced;  /* or an error came back instead */
    int pings;     /* pings from the proxy answered */
    bool leaving;  /* all done: the stream is closing */
} session_t;

static int set_nodelay(xmpp_conn_t *conn, void *sock)
{
    (void)conn;
    int one = 1;
    return setsockopt(*(int *)sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static xmpp_stanza_t *find_element(xmpp_stanza_t *parent, const char *name,
                                   const char *ns)
{
    for (xmpp_stanza_t *ch = xmpp_stanza_get_children(parent); ch;
         ch = xmpp_stanza_get_next(ch)) {
        if (!xmpp_stanza_is_tag(ch))
            continue;
        const char *cns = xmpp_stanza_get_ns(ch);
        if (strcmp(xmpp_stanza_get_name(ch), name) == 0 &&
            (!ns || (cns && strcmp(cns, ns) == 0)))
            return ch;
        xmpp_stanza_t *deeper = find_element(ch, name, ns);
        if (deeper)
            return deeper;
    }
    return NULL;
}

/* Prints the error of STANZA as "type/condition". */
static void print_error(xmpp_stanza_t *stanza)
{
    xmpp_stanza_t *err = xmpp_stanza_get_child_by_name(stanza, "error");
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
    printf("%s/%s\n", err && xmpp_stanza_get_type(err) ? xmpp_stanza_get_type(err)
                                                       : "?",
           cond);
}

static void print_reply(session_t *s, xmpp_stanza_t *reply)
{
    const char *type = xmpp_stanza_get_type(reply);
    const char *from = xmpp_stanza_get_from(reply);
    printf("#%d id=%s %s from %s: ", s->next, xmpp_stanza_get_id(reply),
           type ? type : "?", from ? from : "?");

    if (type && strcmp(type, "result") == 0) {
        s->results++;
        xmpp_stanza_t *by = find_element(reply, "handled-by", ECHO_NS);
        if (by)
            printf("handled by %s, seen as %s\n",
                   xmpp_stanza_get_attribute(by, "resource"),
                   xmpp_stanza_get_attribute(by, "from"));
        else
            printf("(no handled-by in the reply)\n");
        return;
    }

    print_error(reply);
}

static int on_reply(xmpp_conn_t *conn, xmpp_stanza_t *reply, void *data);

static void send_next(session_t *s)
{
    s->next++;
    g_autofree char *id = g_strdup_printf("req-%d", s->next);
    g_autofree char *body = g_strdup_printf("%s %d", opt.text, s->next);

    xmpp_stanza_t *text = xmpp_stanza_new(s->ctx);
    xmpp_stanza_set_text(text, body);
    xmpp_stanza_t *echo = xmpp_stanza_new(s->ctx);
    xmpp_stanza_set_name(echo, "echo");
    xmpp_stanza_set_ns(echo, ECHO_NS);
    xmpp_stanza_add_child_ex(echo, text, 0);
    xmpp_stanza_t *iq = xmpp_iq_new(s->ctx, "get", id);
    xmpp_stanza_set_to(iq, opt.to);
    xmpp_stanza_add_child_ex(iq, echo, 0);

    xmpp_id_handler_add(s->conn, on_reply, id, s);
    xmpp_send(s->conn, iq);
    xmpp_stanza_release(iq);
    s->waiting = true;
}

/* --message: one chat message to the proxy, which hands it to one resource
 * of the service. */
static void send_message(session_t *s)
{
    xmpp_stanza_t *msg = xmpp_message_new(s->ctx, "chat", opt.to, "msg-1");
    xmpp_message_set_body(msg, opt.message);
    xmpp_send(s->conn, msg);
    xmpp_stanza_release(msg);
    s->wrote = true;
    printf("-> chat to %s: %s\n", opt.to, opt.message);
}

/* Whether something the options ask for has not come yet. */
static bool awaiting(const session_t *s)
{
    return s->next < opt.count || s->waiting || (opt.message && !s->heard) ||
           s->pings < opt.pings;
}

/* The next step: requests one after the other, then the message, then
 * waiting for what is still awaited; the stream closes once nothing is, or
 * once the message bounced (then nothing will come). */
static void advance(session_t *s)
{
    if (s->leaving || s->waiting)
        return;
    if (s->next < opt.count) {
        send_next(s);
    } else if (opt.message && !s->wrote) {
        send_message(s);
    } else if (s->bounced || !awaiting(s)) {
        s->leaving = true;
        xmpp_disconnect(s->conn);
    }
    fflush(stdout);
}

static int on_reply(xmpp_conn_t *conn, xmpp_stanza_t *reply, void *data)
{
    (void)conn;
    session_t *s = data;
    print_reply(s, reply);
    s->waiting = false;
    advance(s);
    return 0; /* one reply per id: remove this handler */
}

/* Whether JID is --to, or one of its resources. */
static bool from_proxy(const char *jid)
{
    size_t n = strlen(opt.to);
    return jid && strncmp(jid, opt.to, n) == 0 && (jid[n] == '\0' || jid[n] == '/');
}

/* A message from the proxy: the service writing to us, from the bare domain
 * (or an error, when our message could not be delivered). */
static int on_message(xmpp_conn_t *conn, xmpp_stanza_t *msg, void *data)
{
    (void)conn;
    session_t *s = data;
    const char *from = xmpp_stanza_get_from(msg);
    if (!from_proxy(from))
        return 1;
    const char *type = xmpp_stanza_get_type(msg);
    bool error = type && strcmp(type, "error") == 0;
    if (error) {
        printf("<- error from %s: ", from);
        print_error(msg);
    } else {
        char *body = xmpp_message_get_body(msg);
        printf("<- %s from %s: %s\n", type ? type : "normal", from, body ? body : "(no body)");
        xmpp_free(s->ctx, body);
    }
    /* What comes before we wrote is printed, but answers nothing. */
    if (s->wrote && error)
        s->bounced = true;
    else if (s->wrote)
        s->heard = true;
    advance(s);
    return 1;
}

/* Any XMPP client must answer an IQ get or set (RFC 6120 8.2.3); a ping
 * (XEP-0199) with an empty result. */
static int on_request(xmpp_conn_t *conn, xmpp_stanza_t *req, void *data)
{
    session_t *s = data;
    const char *type = xmpp_stanza_get_type(req);
    if (!type || (strcmp(type, "get") != 0 && strcmp(type, "set") != 0))
        return 1; /* results and errors: on_reply has them */

    const char *from = xmpp_stanza_get_from(req);
    bool ping = strcmp(type, "get") == 0 &&
                xmpp_stanza_get_child_by_name_and_ns(req, "ping", PING_NS) != NULL;
    if (s->leaving) {
        /* An answer now would follow our </stream:stream>: the server would
         * never read it, and the asker gets an error or a timeout instead. */
        if (ping && from_proxy(from))
            printf("<- ping from %s id=%s: unanswered, the stream is closing\n", from,
                   xmpp_stanza_get_id(req));
        return 1;
    }
    xmpp_stanza_t *answer;
    if (ping) {
        answer = xmpp_iq_new(s->ctx, "result", xmpp_stanza_get_id(req));
        if (from)
            xmpp_stanza_set_to(answer, from);
    } else {
        answer = xmpp_stanza_reply_error(req, "cancel", "service-unavailable", NULL);
        /* The parser turns xml:lang into "lang" and the reply copies it. */
        xmpp_stanza_del_attribute(answer, "lang");
    }
    xmpp_send(conn, answer);
    xmpp_stanza_release(answer);

    if (ping && from_proxy(from)) {
        printf("<- ping from %s id=%s: answered with result\n", from,
               xmpp_stanza_get_id(req));
        s->pings++;
        advance(s);
    }
    return 1;
}

static void on_connection(xmpp_conn_t *conn, xmpp_conn_event_t event,
                          int error, xmpp_stream_error_t *stream_error,
                          void *data)
{
    (void)conn;
    session_t *s = data;
    if (event == XMPP_CONN_CONNECT) {
        s->online = true;
        if (opt.count > 0)
            printf("connected as %s, sending %d request(s) to %s\n",
                   xmpp_conn_get_bound_jid(conn), opt.count, opt.to);
        else
            printf("connected as %s, writing to %s\n", xmpp_conn_get_bound_jid(conn),
                   opt.to);
        advance(s);
        return;
    }
    if (!s->online)
        fprintf(stderr, "could not log in to %s:%d (%s)\n", opt.server,
                opt.port,
                stream_error && stream_error->text ? stream_error->text
                : error                            ? strerror(error)
                                                   : "refused");
    s->closed = true;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: user-request --jid JID --password PW [--server HOST] "
                 "[--port N]\n"
                 "                    [--to JID] [--count N] [--text TEXT] "
                 "[--timeout SECONDS]\n"
                 "                    [--message TEXT] [--pings N]\n");
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc;) {
        const char *arg = argv[i++];
        const char *val = i < argc ? argv[i++] : NULL;
        if (strcmp(arg, "--help") == 0) {
            usage(stdout);
            return 0;
        }
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
        else if (strcmp(arg, "--to") == 0)
            opt.to = val;
        else if (strcmp(arg, "--count") == 0)
            opt.count = atoi(val);
        else if (strcmp(arg, "--text") == 0)
            opt.text = val;
        else if (strcmp(arg, "--timeout") == 0)
            opt.timeout_s = atoi(val);
        else if (strcmp(arg, "--message") == 0)
            opt.message = val;
        else if (strcmp(arg, "--pings") == 0)
            opt.pings = atoi(val);
        else {
            usage(stderr);
            return 2;
        }
    }
    if (!opt.jid || !opt.password || opt.count < 0 || opt.pings < 0 || opt.port <= 0 ||
        (opt.count == 0 && !opt.message && opt.pings == 0)) {
        usage(stderr);
        return 2;
    }

    xmpp_initialize();
    session_t s = {0};
    s.ctx = xmpp_ctx_new(NULL, getenv("STROPHE_DEBUG")
                                   ? xmpp_get_default_logger(XMPP_LEVEL_DEBUG)
                                   : NULL);
    s.conn = xmpp_conn_new(s.ctx);
    /* Without a resource the server picks one; name ours for the demo. */
    g_autofree char *jid = strchr(opt.jid, '/')
                               ? g_strdup(opt.jid)
                               : g_strdup_printf("%s/user-request", opt.jid);
    xmpp_conn_set_jid(s.conn, jid);
    xmpp_conn_set_pass(s.conn, opt.password);
    xmpp_conn_set_flags(s.conn, XMPP_CONN_FLAG_DISABLE_TLS);
    xmpp_conn_set_sockopt_callback(s.conn, set_nodelay);
    xmpp_handler_add(s.conn, on_message, NULL, "message", NULL, &s);
    xmpp_handler_add(s.conn, on_request, NULL, "iq", NULL, &s);

    int rc = 1;
    if (xmpp_connect_client(s.conn, opt.server, (unsigned short)opt.port,
                            on_connection, &s) == XMPP_EOK) {
        gint64 give_up = g_get_monotonic_time() + (gint64)opt.timeout_s * G_USEC_PER_SEC;
        while (!s.closed && g_get_monotonic_time() < give_up)
            xmpp_run_once(s.ctx, 100);
        if (!s.closed && s.waiting)
            fprintf(stderr, "gave up after %d s waiting for request #%d\n",
                    opt.timeout_s, s.next);
        else if (!s.closed && opt.message && !s.heard)
            fprintf(stderr, "gave up after %d s waiting for a message from %s\n",
                    opt.timeout_s, opt.to);
        else if (!s.closed && s.pings < opt.pings)
            fprintf(stderr, "gave up after %d s waiting for ping %d of %d from %s\n",
                    opt.timeout_s, s.pings + 1, opt.pings, opt.to);
        rc = s.results == opt.count && !s.bounced && !awaiting(&s) ? 0 : 1;
    } else {
        fprintf(stderr, "cannot connect to %s:%d\n", opt.server, opt.port);
    }

    xmpp_conn_release(s.conn);
    xmpp_ctx_free(s.ctx);
    xmpp_shutdown();
    return rc;
}
