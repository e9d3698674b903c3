/* Test XMPP clients (clients.h): libstrophe connections on the run's
 * context, the record of what each received, workers that echo or hold
 * requests, and the pump that every wait of the harness goes through. */
#include "clients.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "run-private.h"

#define CONNECT_BOUND_MS 10000 /* a test client until its session */

enum { ST_OFFLINE, ST_CONNECTING, ST_ONLINE };

struct hx_client {
    hx_t *hx;
    xmpp_conn_t *conn;
    char *bare;
    char *host; /* of its bare JID: roster pushes come from it */
    char *resource;
    char *jid; /* bound full JID */
    int port;  /* the server's c2s port */
    bool worker;
    bool approves; /* a worker answers `subscribe` with `subscribed` */
    int state;
    hx_mode_t mode;
    hx_request_fn handler; /* or NULL: MODE decides */
    void *handler_arg;
    GPtrArray *rx;       /* every stanza received (owned copies) */
    GPtrArray *requests; /* IQ get/set received, worker only (refs) */
    GQueue *held;        /* requests not yet answered or taken (refs) */
};

static char *new_id(hx_t *hx)
{
    return g_strdup_printf("hx%u-%08x", ++hx->iq_ids, g_random_int());
}

/* ---- pumping -------------------------------------------------------------- */

void hx_pump(hx_t *hx, int ms)
{
    gint64 end = hx_now_ms() + ms;
    do {
        gint64 before = hx_now_ms();
        xmpp_run_once(hx->ctx, 5);
        /* With no connection xmpp_run_once() may return at once. */
        if (hx_now_ms() == before)
            g_usleep(1000);
    } while (hx_now_ms() < end);
}

bool hx_pump_until(hx_t *hx, bool (*pred)(void *), void *arg, int timeout_ms)
{
    gint64 end = hx_now_ms() + timeout_ms;
    while (!pred(arg)) {
        if (hx_now_ms() >= end)
            return false;
        hx_pump(hx, 5);
    }
    return true;
}

/* ---- sending -------------------------------------------------------------- */

static xmpp_stanza_t *parse(hx_t *hx, const char *xml)
{
    xmpp_stanza_t *st = xmpp_stanza_new_from_string(hx->ctx, xml);
    if (!st) {
        fprintf(stderr, "harness: cannot parse %s\n", xml);
        abort();
    }
    return st;
}

void hx_send(hx_client_t *c, xmpp_stanza_t *stanza)
{
    xmpp_send(c->conn, stanza);
}

void hx_send_xml(hx_client_t *c, const char *xml)
{
    xmpp_stanza_t *st = parse(c->hx, xml);
    xmpp_send(c->conn, st);
    xmpp_stanza_release(st);
}

void hx_send_presence(hx_client_t *c, const char *type, const char *show, const char *to)
{
    xmpp_ctx_t *ctx = c->hx->ctx;
    xmpp_stanza_t *p = xmpp_presence_new(ctx);
    if (type)
        xmpp_stanza_set_type(p, type);
    if (to)
        xmpp_stanza_set_to(p, to);
    if (show) {
        xmpp_stanza_t *s = xmpp_stanza_new(ctx);
        xmpp_stanza_set_name(s, "show");
        xmpp_stanza_t *t = xmpp_stanza_new(ctx);
        xmpp_stanza_set_text(t, show);
        xmpp_stanza_add_child_ex(s, t, 0);
        xmpp_stanza_add_child_ex(p, s, 0);
    }
    xmpp_send(c->conn, p);
    xmpp_stanza_release(p);
}

char *hx_iq_send(hx_client_t *c, const char *to, const char *type, const char *payload_xml)
{
    char *id = new_id(c->hx);
    xmpp_stanza_t *iq = xmpp_iq_new(c->hx->ctx, type, id);
    xmpp_stanza_set_to(iq, to);
    if (payload_xml) {
        xmpp_stanza_t *p = parse(c->hx, payload_xml);
        xmpp_stanza_add_child_ex(iq, p, 0);
    }
    xmpp_send(c->conn, iq);
    xmpp_stanza_release(iq);
    return id;
}

void hx_answer(hx_client_t *c, xmpp_stanza_t *req, const char *to_override)
{
    xmpp_ctx_t *ctx = c->hx->ctx;
    xmpp_stanza_t *payload = xmpp_stanza_get_children(req);
    while (payload && !xmpp_stanza_is_tag(payload))
        payload = xmpp_stanza_get_next(payload);
    const char *ns = payload ? xmpp_stanza_get_ns(payload) : NULL;
    xmpp_stanza_t *res;

    if (ns && strcmp(ns, HX_ECHO_NS) == 0) {
        res = xmpp_iq_new(ctx, "result", xmpp_stanza_get_id(req));
        xmpp_stanza_t *echo = xmpp_stanza_copy(payload);
        xmpp_stanza_t *by = xmpp_stanza_new(ctx);
        xmpp_stanza_set_name(by, "handled-by");
        xmpp_stanza_set_ns(by, HX_ECHO_NS);
        xmpp_stanza_set_attribute(by, "resource", c->resource);
        xmpp_stanza_set_attribute(by, "from", xmpp_stanza_get_from(req));
        xmpp_stanza_add_child_ex(echo, by, 0);
        xmpp_stanza_add_child_ex(res, echo, 0);
    } else if (ns && strcmp(ns, "urn:xmpp:ping") == 0) {
        res = xmpp_iq_new(ctx, "result", xmpp_stanza_get_id(req));
    } else {
        res = xmpp_stanza_reply_error(req, "cancel", "feature-not-implemented", NULL);
        xmpp_stanza_del_attribute(res, "lang");
        xmpp_stanza_del_attribute(res, "from");
    }
    xmpp_stanza_set_to(res, to_override ? to_override : xmpp_stanza_get_from(req));
    xmpp_send(c->conn, res);
    xmpp_stanza_release(res);
}

/* ---- libstrophe callbacks ------------------------------------------------- */

static void release_stanza(gpointer stanza)
{
    xmpp_stanza_release(stanza);
}

static int on_stanza(xmpp_conn_t *conn, xmpp_stanza_t *st, void *data)
{
    (void)conn;
    hx_client_t *c = data;
    xmpp_ctx_t *ctx = c->hx->ctx;
    xmpp_stanza_t *copy = xmpp_stanza_copy(st);
    g_ptr_array_add(c->rx, copy);
    if (!c->worker)
        return 1;

    const char *name = xmpp_stanza_get_name(st);
    const char *type = xmpp_stanza_get_type(st);
    if (strcmp(name, "presence") == 0 && type && strcmp(type, "subscribe") == 0) {
        if (!c->approves)
            return 1;
        xmpp_stanza_t *p = xmpp_presence_new(ctx);
        xmpp_stanza_set_type(p, "subscribed");
        xmpp_stanza_set_to(p, xmpp_stanza_get_from(st));
        xmpp_send(c->conn, p);
        xmpp_stanza_release(p);
    } else if (strcmp(name, "iq") == 0 && type &&
               (strcmp(type, "get") == 0 || strcmp(type, "set") == 0)) {
        const char *from = xmpp_stanza_get_from(st);
        if (!from || strcmp(from, c->bare) == 0 || strcmp(from, c->host) == 0) {
            /* A roster push from our own server: acknowledge it. */
            xmpp_stanza_t *ack = xmpp_iq_new(ctx, "result", xmpp_stanza_get_id(st));
            if (from)
                xmpp_stanza_set_to(ack, from);
            xmpp_send(c->conn, ack);
            xmpp_stanza_release(ack);
            return 1;
        }
        g_ptr_array_add(c->requests, xmpp_stanza_clone(copy));
        if (c->handler)
            c->handler(c, copy, c->handler_arg);
        else if (c->mode == HX_ANSWER)
            hx_answer(c, copy, NULL);
        else
            g_queue_push_tail(c->held, xmpp_stanza_clone(copy));
    }
    return 1;
}

static void on_conn(xmpp_conn_t *conn, xmpp_conn_event_t ev, int error,
                    xmpp_stream_error_t *se, void *data)
{
    (void)error;
    (void)se;
    hx_client_t *c = data;
    if (ev != XMPP_CONN_CONNECT) {
        c->state = ST_OFFLINE;
        return;
    }
    c->state = ST_ONLINE;
    g_free(c->jid);
    c->jid = g_strdup(xmpp_conn_get_bound_jid(conn));
    if (c->worker) {
        /* Fetch the roster first: Prosody forwards `subscribed` and roster
         * pushes only to resources that did. */
        g_autofree char *id = new_id(c->hx);
        xmpp_stanza_t *iq = xmpp_iq_new(c->hx->ctx, "get", id);
        xmpp_stanza_t *q = xmpp_stanza_new(c->hx->ctx);
        xmpp_stanza_set_name(q, "query");
        xmpp_stanza_set_ns(q, "jabber:iq:roster");
        xmpp_stanza_add_child_ex(iq, q, 0);
        xmpp_send(conn, iq);
        xmpp_stanza_release(iq);
        hx_send_presence(c, NULL, NULL, NULL);
    }
}

static int set_nodelay(xmpp_conn_t *conn, void *sock)
{
    (void)conn;
    int one = 1;
    return setsockopt(*(int *)sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* ---- connections ---------------------------------------------------------- */

static bool not_connecting(void *arg)
{
    return ((hx_client_t *)arg)->state != ST_CONNECTING;
}

static bool start_connect(hx_client_t *c)
{
    c->state = ST_CONNECTING;
    if (xmpp_connect_client(c->conn, "127.0.0.1", (unsigned short)c->port, on_conn, c) !=
        XMPP_EOK) {
        c->state = ST_OFFLINE;
        return false;
    }
    hx_pump_until(c->hx, not_connecting, c, CONNECT_BOUND_MS);
    if (c->state != ST_ONLINE)
        return false;
    /* Let the roster query and initial presence go out. */
    hx_pump(c->hx, 20);
    return true;
}

hx_client_t *hx_client_connect(hx_t *hx, const char *node, const char *resource, bool worker)
{
    return hx_client_connect_at(hx, node, "localhost", resource, worker);
}

hx_client_t *hx_client_connect_at(hx_t *hx, const char *node, const char *host,
                                  const char *resource, bool worker)
{
    hx_client_t *c = g_new0(hx_client_t, 1);
    c->hx = hx;
    c->bare = g_strdup_printf("%s@%s", node, host);
    c->host = g_strdup(host);
    c->resource = g_strdup(resource);
    c->worker = worker;
    c->approves = true;
    c->port = hx_c2s_port(hx);
    c->mode = HX_ANSWER;
    c->rx = g_ptr_array_new_with_free_func(release_stanza);
    c->requests = g_ptr_array_new_with_free_func(release_stanza);
    c->held = g_queue_new();
    c->conn = xmpp_conn_new(hx->ctx);
    g_autofree char *jid = g_strdup_printf("%s/%s", c->bare, resource);
    xmpp_conn_set_jid(c->conn, jid);
    xmpp_conn_set_pass(c->conn, HX_PASSWORD);
    xmpp_conn_set_flags(c->conn, XMPP_CONN_FLAG_DISABLE_TLS);
    xmpp_conn_set_sockopt_callback(c->conn, set_nodelay);
    xmpp_handler_add(c->conn, on_stanza, NULL, NULL, NULL, c);
    g_ptr_array_add(hx->clients, c);
    if (!start_connect(c)) {
        fprintf(stderr, "harness: %s could not log in\n", jid);
        hx_client_free(c);
        return NULL;
    }
    return c;
}

static bool is_offline(void *arg)
{
    return ((hx_client_t *)arg)->state == ST_OFFLINE;
}

void hx_client_disconnect(hx_client_t *c)
{
    if (c->state == ST_OFFLINE)
        return;
    xmpp_disconnect(c->conn);
    hx_pump_until(c->hx, is_offline, c, 3000);
}

bool hx_client_reconnect(hx_client_t *c)
{
    if (c->state != ST_OFFLINE)
        hx_client_disconnect(c);
    return start_connect(c);
}

bool hx_client_connected(const hx_client_t *c)
{
    return c->state == ST_ONLINE;
}

void hx_client_free(hx_client_t *c)
{
    if (!c)
        return;
    if (c->state != ST_OFFLINE)
        hx_client_disconnect(c);
    g_ptr_array_remove(c->hx->clients, c);
    xmpp_conn_release(c->conn);
    g_queue_free_full(c->held, release_stanza);
    g_ptr_array_unref(c->requests);
    g_ptr_array_unref(c->rx);
    g_free(c->bare);
    g_free(c->host);
    g_free(c->resource);
    g_free(c->jid);
    g_free(c);
}

const char *hx_client_jid(const hx_client_t *c)
{
    return c->jid;
}

const char *hx_client_resource(const hx_client_t *c)
{
    return c->resource;
}

void hx_client_set_mode(hx_client_t *c, hx_mode_t mode)
{
    c->mode = mode;
}

void hx_client_set_handler(hx_client_t *c, hx_request_fn fn, void *arg)
{
    c->handler = fn;
    c->handler_arg = arg;
}

void hx_client_set_approves(hx_client_t *c, bool approves)
{
    c->approves = approves;
}

/* ---- what arrived --------------------------------------------------------- */

static xmpp_stanza_t *find_reply(hx_client_t *c, const char *id)
{
    for (unsigned i = 0; i < c->rx->len; i++) {
        xmpp_stanza_t *st = g_ptr_array_index(c->rx, i);
        const char *sid = xmpp_stanza_get_id(st);
        const char *type = xmpp_stanza_get_type(st);
        if (sid && strcmp(sid, id) == 0 && type &&
            (strcmp(type, "result") == 0 || strcmp(type, "error") == 0))
            return st;
    }
    return NULL;
}

xmpp_stanza_t *hx_wait_reply(hx_client_t *c, const char *id, int timeout_ms)
{
    gint64 end = hx_now_ms() + timeout_ms;
    xmpp_stanza_t *st;
    while (!(st = find_reply(c, id))) {
        if (hx_now_ms() >= end)
            return NULL;
        hx_pump(c->hx, 5);
    }
    return st;
}

xmpp_stanza_t *hx_iq(hx_client_t *c, const char *to, const char *type,
                     const char *payload_xml, int timeout_ms)
{
    g_autofree char *id = hx_iq_send(c, to, type, payload_xml);
    return hx_wait_reply(c, id, timeout_ms);
}

int hx_count_id(hx_client_t *c, const char *id)
{
    int n = 0;
    for (unsigned i = 0; i < c->rx->len; i++) {
        const char *sid = xmpp_stanza_get_id(g_ptr_array_index(c->rx, i));
        if (sid && strcmp(sid, id) == 0)
            n++;
    }
    return n;
}

unsigned hx_received_count(hx_client_t *c)
{
    return c->rx->len;
}

xmpp_stanza_t *hx_received(hx_client_t *c, unsigned i)
{
    return i < c->rx->len ? g_ptr_array_index(c->rx, i) : NULL;
}

static bool matches(xmpp_stanza_t *st, const char *name, const char *type,
                    const char *from_prefix)
{
    if (strcmp(xmpp_stanza_get_name(st), name) != 0)
        return false;
    const char *t = xmpp_stanza_get_type(st);
    if (type) {
        if (strcmp(type, "available") == 0 ? t != NULL : (!t || strcmp(t, type) != 0))
            return false;
    }
    const char *from = xmpp_stanza_get_from(st);
    if (from_prefix && (!from || strncmp(from, from_prefix, strlen(from_prefix)) != 0))
        return false;
    return true;
}

xmpp_stanza_t *hx_wait_stanza(hx_client_t *c, unsigned mark, const char *name,
                              const char *type, const char *from_prefix, int timeout_ms)
{
    gint64 end = hx_now_ms() + timeout_ms;
    for (;;) {
        for (unsigned i = mark; i < c->rx->len; i++) {
            xmpp_stanza_t *st = g_ptr_array_index(c->rx, i);
            if (matches(st, name, type, from_prefix))
                return st;
        }
        if (hx_now_ms() >= end)
            return NULL;
        hx_pump(c->hx, 5);
    }
}

/* ---- workers -------------------------------------------------------------- */

xmpp_stanza_t *hx_take_request(hx_client_t **workers, hx_client_t **holder, int timeout_ms)
{
    if (!workers[0])
        return NULL;
    hx_t *hx = workers[0]->hx;
    gint64 end = hx_now_ms() + timeout_ms;
    for (;;) {
        for (hx_client_t **w = workers; *w; w++) {
            if (!g_queue_is_empty((*w)->held)) {
                xmpp_stanza_t *st = g_queue_pop_head((*w)->held);
                /* The holder's `requests` array keeps it alive. */
                xmpp_stanza_release(st);
                if (holder)
                    *holder = *w;
                return st;
            }
        }
        if (hx_now_ms() >= end)
            return NULL;
        hx_pump(hx, 5);
    }
}

unsigned hx_requests_seen(hx_client_t *c)
{
    return c->requests->len;
}

xmpp_stanza_t *hx_request_seen(hx_client_t *c, unsigned i)
{
    return i < c->requests->len ? g_ptr_array_index(c->requests, i) : NULL;
}

/* ---- stanza helpers ------------------------------------------------------- */

const char *hx_echo_text(xmpp_stanza_t *iq)
{
    xmpp_stanza_t *echo = xmpp_stanza_get_child_by_name_and_ns(iq, "echo", HX_ECHO_NS);
    for (xmpp_stanza_t *ch = echo ? xmpp_stanza_get_children(echo) : NULL; ch;
         ch = xmpp_stanza_get_next(ch)) {
        if (xmpp_stanza_is_text(ch))
            return xmpp_stanza_get_text_ptr(ch);
    }
    return NULL;
}

char *hx_error_of(xmpp_stanza_t *st)
{
    xmpp_stanza_t *err = xmpp_stanza_get_child_by_name(st, "error");
    if (!err)
        return NULL;
    const char *type = xmpp_stanza_get_type(err);
    const char *cond = "?";
    for (xmpp_stanza_t *ch = xmpp_stanza_get_children(err); ch; ch = xmpp_stanza_get_next(ch)) {
        const char *ns = xmpp_stanza_get_ns(ch);
        if (xmpp_stanza_is_tag(ch) && ns &&
            strcmp(ns, "urn:ietf:params:xml:ns:xmpp-stanzas") == 0 &&
            strcmp(xmpp_stanza_get_name(ch), "text") != 0) {
            cond = xmpp_stanza_get_name(ch);
            break;
        }
    }
    return g_strdup_printf("%s/%s", type ? type : "?", cond);
}

char *hx_text(xmpp_stanza_t *st)
{
    if (!st)
        return g_strdup("(none)");
    char *buf = NULL;
    size_t len = 0;
    if (xmpp_stanza_to_text(st, &buf, &len) != XMPP_EOK)
        return g_strdup("(unprintable)");
    char *out = g_strndup(buf, len);
    xmpp_free(xmpp_stanza_get_context(st), buf);
    return out;
}

const char *hx_child_attr(xmpp_stanza_t *st, const char *name, const char *ns,
                          const char *attr)
{
    if (!st)
        return NULL;
    for (xmpp_stanza_t *ch = xmpp_stanza_get_children(st); ch; ch = xmpp_stanza_get_next(ch)) {
        if (!xmpp_stanza_is_tag(ch))
            continue;
        const char *cns = xmpp_stanza_get_ns(ch);
        if (strcmp(xmpp_stanza_get_name(ch), name) == 0 && (!ns || (cns && strcmp(cns, ns) == 0)))
            return xmpp_stanza_get_attribute(ch, attr);
        const char *deep = hx_child_attr(ch, name, ns, attr);
        if (deep)
            return deep;
    }
    return NULL;
}
