#include "connection.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>

#include <glib-unix.h>

#include "log.h"

/* libstrophe's own timers (connect and handshake timeouts) and any output a
 * full socket left queued advance only inside xmpp_run_once(). */
#define PUMP_INTERVAL_MS 50
/* Reads are 4 KiB at a time: bound the work done per wake-up. */
#define MAX_ROUNDS_PER_WAKEUP 64
/* Unanswered keepalive probes before the kernel gives up on the peer. */
#define KEEPALIVE_PROBES 3

struct connection {
    xmpp_ctx_t *ctx;
    xmpp_conn_t *conn;
    connection_callbacks_t callbacks;
    char *domain;
    char *server;
    unsigned short port;
    unsigned backoff_first_ms; /* [component] reconnect_initial */
    unsigned backoff_max_ms;   /* [component] reconnect_max */
    int keepalive_s;           /* [component] keepalive */

    int fd;              /* -1 while there is no socket */
    guint fd_watch;
    bool watching_output;/* until the TCP connect completes */
    guint pump_timer;
    guint flush_idle;
    guint reconnect_timer;
    unsigned backoff_ms;

    GPtrArray *outbox;   /* stanzas sent during libstrophe's dispatch (references) */
    bool up;             /* handshake completed, stream not yet ended */
    bool pumping;        /* inside xmpp_run_once(): no re-entry */
    bool closing;
    unsigned long events;/* stanzas and connection events seen: work was done */
};

/* libstrophe's sockopt callback carries no user data.  One process has one
 * component connection, so it is found here. */
static connection_t *sockopt_owner;

static void pump(connection_t *c);
static void request_flush(connection_t *c);
static void schedule_reconnect(connection_t *c);

/* ---- libstrophe 0.12.2 component workaround ------------------------------
 * xmpp_connect_component() never allocates the stream-management state that
 * xmpp_send() and the disconnect path dereference, so the first stanza sent
 * on a component stream crashes.  A client connect attempt allocates it; with
 * an empty host it fails at once and leaves the connection disconnected, and
 * the state then lives as long as the connection.  Kept in this one place;
 * tests/integration exercises send and server-side disconnect under ASan so
 * that a libstrophe that changes this fails loudly. */
static bool allocate_sm_state(xmpp_conn_t *conn)
{
    int status = xmpp_connect_client(conn, "", 1, NULL, NULL);
    return status != XMPP_EOK && xmpp_conn_is_disconnected(conn);
}

static const char *stream_error_name(xmpp_error_type_t type)
{
    static const char *const names[] = {
        [XMPP_SE_BAD_FORMAT] = "bad-format",
        [XMPP_SE_BAD_NS_PREFIX] = "bad-namespace-prefix",
        [XMPP_SE_CONFLICT] = "conflict",
        [XMPP_SE_CONN_TIMEOUT] = "connection-timeout",
        [XMPP_SE_HOST_GONE] = "host-gone",
        [XMPP_SE_HOST_UNKNOWN] = "host-unknown",
        [XMPP_SE_IMPROPER_ADDR] = "improper-addressing",
        [XMPP_SE_INTERNAL_SERVER_ERROR] = "internal-server-error",
        [XMPP_SE_INVALID_FROM] = "invalid-from",
        [XMPP_SE_INVALID_ID] = "invalid-id",
        [XMPP_SE_INVALID_NS] = "invalid-namespace",
        [XMPP_SE_INVALID_XML] = "invalid-xml",
        [XMPP_SE_NOT_AUTHORIZED] = "not-authorized",
        [XMPP_SE_POLICY_VIOLATION] = "policy-violation",
        [XMPP_SE_REMOTE_CONN_FAILED] = "remote-connection-failed",
        [XMPP_SE_RESOURCE_CONSTRAINT] = "resource-constraint",
        [XMPP_SE_RESTRICTED_XML] = "restricted-xml",
        [XMPP_SE_SEE_OTHER_HOST] = "see-other-host",
        [XMPP_SE_SYSTEM_SHUTDOWN] = "system-shutdown",
        [XMPP_SE_UNDEFINED_CONDITION] = "undefined-condition",
        [XMPP_SE_UNSUPPORTED_ENCODING] = "unsupported-encoding",
        [XMPP_SE_UNSUPPORTED_STANZA_TYPE] = "unsupported-stanza-type",
        [XMPP_SE_UNSUPPORTED_VERSION] = "unsupported-version",
        [XMPP_SE_XML_NOT_WELL_FORMED] = "not-well-formed",
    };
    if ((size_t)type < G_N_ELEMENTS(names) && names[type])
        return names[type];
    return "undefined-condition";
}

/* What a stream error means for an operator, where it is likely a mistake
 * in the configuration. */
static const char *stream_error_hint(xmpp_error_type_t type)
{
    switch (type) {
    case XMPP_SE_NOT_AUTHORIZED:
        return " (is [component] secret the one the server has for this domain?)";
    case XMPP_SE_HOST_UNKNOWN:
        return " (the server has no component for [component] domain)";
    case XMPP_SE_CONFLICT:
        return " (another component is connected for this domain)";
    default:
        return "";
    }
}

/* ---- The socket in the GLib main loop ------------------------------------ */

static void unwatch_socket(connection_t *c)
{
    if (c->fd_watch)
        g_source_remove(c->fd_watch);
    c->fd_watch = 0;
    c->fd = -1;
}

static gboolean on_socket(int fd, GIOCondition condition, gpointer data);

static void watch_socket(connection_t *c, bool output)
{
    if (c->fd_watch)
        g_source_remove(c->fd_watch);
    GIOCondition condition = G_IO_IN | G_IO_ERR | G_IO_HUP;
    if (output)
        condition |= G_IO_OUT;
    c->watching_output = output;
    c->fd_watch = g_unix_fd_add(c->fd, condition, on_socket, c);
}

static gboolean on_socket(int fd, GIOCondition condition, gpointer data)
{
    (void)fd;
    (void)condition;
    connection_t *c = data;
    pump(c);
    /* Once the TCP connect has completed, a writable socket is no news. */
    if (c->fd_watch && c->watching_output && !xmpp_conn_is_connecting(c->conn))
        watch_socket(c, false);
    return G_SOURCE_CONTINUE;
}

static int on_sockopt(xmpp_conn_t *conn, void *sock)
{
    (void)conn;
    connection_t *c = sockopt_owner;
    int fd = *(int *)sock;

    /* A dead server is noticed within KEEPALIVE seconds either way: idle
     * probes while nothing is sent, and a bound on unacknowledged data
     * while something is. */
    int keepalive = c ? c->keepalive_s : CONFIG_DEFAULT_KEEPALIVE;
    int on = 1, count = KEEPALIVE_PROBES;
    int interval = MAX(1, keepalive / (2 * KEEPALIVE_PROBES));
    int idle = MAX(1, keepalive - count * interval);
    unsigned user_timeout_ms = (unsigned)keepalive * 1000u;

    /* libstrophe writes each stanza on its own; with Nagle, every
     * request/response exchange would stall about 40 ms. */
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms, sizeof user_timeout_ms) != 0)
        log_warning("cannot set socket options: %s", g_strerror(errno));

    if (fd >= FD_SETSIZE) {
        /* libstrophe select()s: a higher descriptor would corrupt memory. */
        log_error("socket descriptor %d is beyond select()'s limit", fd);
        return -1;
    }
    if (c) {
        unwatch_socket(c);
        c->fd = fd;
        watch_socket(c, true);
    }
    return 0;
}

/* Writes STANZA to libstrophe's queue.  Never called during libstrophe's
 * dispatch, so the stanza is ours alone: the stream's default namespace,
 * which the parser writes out on every stanza it read (33 bytes the server
 * would parse again), can go.  During dispatch it cannot: libstrophe still
 * compares the stanza's namespace with later handlers' filters. */
static void write_stanza(connection_t *c, xmpp_stanza_t *stanza)
{
    const char *ns = xmpp_stanza_get_ns(stanza);
    if (ns && strcmp(ns, XMPP_NS_COMPONENT) == 0)
        xmpp_stanza_del_attribute(stanza, "xmlns");
    xmpp_send(c->conn, stanza);
}

static void flush_outbox(connection_t *c)
{
    for (guint i = 0; i < c->outbox->len; i++)
        write_stanza(c, c->outbox->pdata[i]);
    g_ptr_array_set_size(c->outbox, 0);
}

/* Runs libstrophe until it has nothing more to do right now: it reads 4 KiB
 * at a time, and what its handlers sent meanwhile is written in one batch
 * when it returns. */
static void pump(connection_t *c)
{
    if (c->pumping)
        return;
    c->pumping = true;
    unsigned long before;
    int rounds = 0;
    do {
        before = c->events;
        xmpp_run_once(c->ctx, 0);
        flush_outbox(c);
    } while (c->events != before && ++rounds < MAX_ROUNDS_PER_WAKEUP);
    c->pumping = false;
    if (c->events != before) /* stopped by the bound with work left */
        request_flush(c);
}

static gboolean on_pump_timer(gpointer data)
{
    pump(data);
    return G_SOURCE_CONTINUE;
}

static gboolean on_flush(gpointer data)
{
    connection_t *c = data;
    c->flush_idle = 0;
    pump(c);
    return G_SOURCE_REMOVE;
}

/* Asks for a pass of libstrophe soon, for work queued outside pump(). */
static void request_flush(connection_t *c)
{
    if (c->pumping)
        c->events++; /* pump()'s loop makes one more pass */
    else if (!c->flush_idle)
        c->flush_idle = g_idle_add(on_flush, c);
}

/* ---- Connection events ---------------------------------------------------- */

static int on_stanza(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *userdata)
{
    (void)conn;
    connection_t *c = userdata;
    c->events++;
    c->callbacks.stanza(stanza, c->callbacks.userdata);
    return 1; /* keep the handler */
}

static void report_disconnect(connection_t *c, bool was_up, int error,
                              xmpp_stream_error_t *stream_error)
{
    if (stream_error) {
        log_error("the server closed the stream: %s%s%s%s",
                  stream_error_name(stream_error->type),
                  stream_error->text ? ": " : "", stream_error->text ? stream_error->text : "",
                  stream_error_hint(stream_error->type));
    } else if (c->closing) {
        log_info("disconnected from %s:%u", c->server, c->port);
    } else if (error) {
        log_error("%s %s:%u: %s", was_up ? "lost the connection to" : "cannot connect to",
                  c->server, c->port, g_strerror(error));
    } else if (was_up) {
        log_error("lost the connection to %s:%u", c->server, c->port);
    } else {
        log_error("cannot connect to %s:%u: refused, unreachable, or closed before the handshake",
                  c->server, c->port);
    }
}

static void on_connection_event(xmpp_conn_t *conn, xmpp_conn_event_t event, int error,
                                xmpp_stream_error_t *stream_error, void *userdata)
{
    (void)conn;
    connection_t *c = userdata;
    c->events++;

    if (event == XMPP_CONN_CONNECT) {
        log_info("connected to %s:%u as %s", c->server, c->port, c->domain);
        c->up = true;
        c->backoff_ms = 0;
        c->callbacks.up(c->callbacks.userdata);
        return;
    }
    if (event != XMPP_CONN_DISCONNECT && event != XMPP_CONN_FAIL)
        return;

    bool was_up = c->up;
    c->up = false;
    unwatch_socket(c);
    report_disconnect(c, was_up, error, stream_error);
    if (was_up)
        c->callbacks.down(c->callbacks.userdata);

    if (c->closing) {
        c->callbacks.closed(c->callbacks.userdata);
    } else {
        schedule_reconnect(c);
    }
}

static void connect_now(connection_t *c)
{
    int status = xmpp_connect_component(c->conn, c->server, c->port, on_connection_event, c);
    if (status != XMPP_EOK) {
        log_error("cannot start connecting to %s:%u (libstrophe error %d)", c->server, c->port,
                  status);
        schedule_reconnect(c);
    }
}

static gboolean on_reconnect_timer(gpointer data)
{
    connection_t *c = data;
    c->reconnect_timer = 0;
    log_info("connecting to %s:%u", c->server, c->port);
    connect_now(c);
    return G_SOURCE_REMOVE;
}

/* Exponential backoff with jitter, so that many instances restarted with
 * their server do not all knock at once. */
static void schedule_reconnect(connection_t *c)
{
    if (c->reconnect_timer || c->closing)
        return;
    c->backoff_ms = c->backoff_ms ? MIN(c->backoff_ms * 2, c->backoff_max_ms) : c->backoff_first_ms;
    unsigned delay = (unsigned)g_random_int_range((gint32)(c->backoff_ms * 8 / 10),
                                                  (gint32)(c->backoff_ms * 12 / 10) + 1);
    log_info("reconnecting in %.1f s", delay / 1000.0);
    c->reconnect_timer = g_timeout_add(delay, on_reconnect_timer, c);
}

/* ---- Public functions ----------------------------------------------------- */

static void forward_libstrophe_log(void *userdata, xmpp_log_level_t level, const char *area,
                                   const char *msg)
{
    (void)userdata;
    /* Only its warnings and errors: its debug output carries every byte of
     * the stream, the handshake digest included. */
    if (level == XMPP_LEVEL_ERROR)
        log_write(CP_LOG_ERROR, "libstrophe", "%s: %s", area, msg);
    else if (level == XMPP_LEVEL_WARN)
        log_write(CP_LOG_WARNING, "libstrophe", "%s: %s", area, msg);
}

static const xmpp_log_t libstrophe_logger = {forward_libstrophe_log, NULL};

/* Takes CONFIG's [component] settings; the secret goes to libstrophe only. */
static void apply_settings(connection_t *c, const config_t *config)
{
    g_free(c->domain);
    g_free(c->server);
    c->domain = g_strdup(config->domain);
    c->server = g_strdup(config->server);
    c->port = (unsigned short)config->port;
    c->backoff_first_ms = (unsigned)config->reconnect_initial * 1000u;
    c->backoff_max_ms = (unsigned)config->reconnect_max * 1000u;
    c->keepalive_s = config->keepalive;
    c->backoff_ms = 0;
    if (c->conn) {
        xmpp_conn_set_jid(c->conn, config->domain);
        xmpp_conn_set_pass(c->conn, config->secret);
    }
}

static void release_stanza(gpointer stanza)
{
    xmpp_stanza_release(stanza);
}

connection_t *connection_new(const config_t *config, const connection_callbacks_t *callbacks)
{
    connection_t *c = g_new0(connection_t, 1);
    c->callbacks = *callbacks;
    c->fd = -1;
    c->outbox = g_ptr_array_new_with_free_func(release_stanza);

    xmpp_initialize();
    c->ctx = xmpp_ctx_new(NULL, &libstrophe_logger);
    c->conn = c->ctx ? xmpp_conn_new(c->ctx) : NULL;
    if (!c->conn) {
        log_error("cannot create a libstrophe connection");
        connection_free(c);
        return NULL;
    }
    /* The JID must be set before the workaround: without it the client
     * connect fails before it allocates anything. */
    apply_settings(c, config);
    if (!allocate_sm_state(c->conn)) {
        log_error("this libstrophe does not behave like 0.12.2 (see core/connection.c): "
                  "refusing to run a component connection that may crash");
        connection_free(c);
        return NULL;
    }
    xmpp_conn_set_sockopt_callback(c->conn, on_sockopt);
    xmpp_handler_add(c->conn, on_stanza, NULL, NULL, NULL, c);
    sockopt_owner = c;
    return c;
}

void connection_free(connection_t *c)
{
    if (!c)
        return;
    if (sockopt_owner == c)
        sockopt_owner = NULL;
    unwatch_socket(c);
    if (c->pump_timer)
        g_source_remove(c->pump_timer);
    if (c->flush_idle)
        g_source_remove(c->flush_idle);
    if (c->reconnect_timer)
        g_source_remove(c->reconnect_timer);
    if (c->outbox)
        g_ptr_array_free(c->outbox, TRUE);
    if (c->conn)
        xmpp_conn_release(c->conn);
    if (c->ctx)
        xmpp_ctx_free(c->ctx);
    xmpp_shutdown();
    g_free(c->domain);
    g_free(c->server);
    g_free(c);
}

xmpp_ctx_t *connection_context(connection_t *c)
{
    return c->ctx;
}

void connection_start(connection_t *c)
{
    if (!c->pump_timer)
        c->pump_timer = g_timeout_add(PUMP_INTERVAL_MS, on_pump_timer, c);
    log_info("connecting to %s:%u", c->server, c->port);
    connect_now(c);
}

void connection_send(connection_t *c, xmpp_stanza_t *stanza)
{
    if (!c->up) {
        log_debug("not connected: dropped an outgoing <%s/>", xmpp_stanza_get_name(stanza));
        return;
    }
    if (c->pumping) {
        /* Written when xmpp_run_once() returns (see write_stanza()). */
        g_ptr_array_add(c->outbox, xmpp_stanza_clone(stanza));
        c->events++;
        return;
    }
    write_stanza(c, stanza);
    request_flush(c);
}

bool connection_is_up(const connection_t *c)
{
    return c->up;
}

void connection_reconfigure(connection_t *c, const config_t *config)
{
    g_assert(xmpp_conn_is_disconnected(c->conn));
    apply_settings(c, config);
    c->closing = false;
}

void connection_close(connection_t *c)
{
    c->closing = true;
    if (c->reconnect_timer)
        g_source_remove(c->reconnect_timer);
    c->reconnect_timer = 0;

    if (xmpp_conn_is_disconnected(c->conn)) {
        c->callbacks.closed(c->callbacks.userdata);
        return;
    }
    /* Queued stanzas go out before the closing tag.  If the server does not
     * close its side, libstrophe's own timer (2 s, run by our pump) resets
     * the connection; a second xmpp_disconnect() would only re-arm it. */
    xmpp_disconnect(c->conn);
    request_flush(c);
}
