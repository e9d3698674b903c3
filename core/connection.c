/* The component's stream to the server: see connection.h. */
#include "connection.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>

#include <gio/gio.h>
#include <glib-unix.h>

#include "log.h"
#include "stream.h"

/* From the start of the TCP connect to the server's <handshake/>. */
#define ESTABLISH_TIMEOUT_MS (10 * 1000)
/* After our </stream:stream>, how long the server may take to close its side. */
#define CLOSE_TIMEOUT_MS (2 * 1000)
/* Reads are this large; a wake-up reads at most READS_PER_WAKEUP of them,
 * so that timers and signals are not starved by a busy server. */
#define READ_SIZE (64 * 1024)
#define READS_PER_WAKEUP 8
/* Unanswered keepalive probes before the kernel gives up on the peer. */
#define KEEPALIVE_PROBES 3

static const char stream_end[] = "</stream:stream>";

typedef enum connection_state {
    STATE_IDLE,           /* no socket */
    STATE_CONNECTING,     /* TCP connect under way */
    STATE_OPENING,        /* our stream header sent, waiting for the server's */
    STATE_AUTHENTICATING, /* our handshake sent */
    STATE_UP,
    STATE_CLOSING,        /* our </stream:stream> sent */
} connection_state_t;

struct connection {
    connection_callbacks_t callbacks;
    char *domain;
    char *secret;
    char *server;
    unsigned short port;
    unsigned backoff_first_ms; /* [component] reconnect_initial */
    unsigned backoff_max_ms;   /* [component] reconnect_max */
    int keepalive_s;           /* [component] keepalive */
    unsigned backoff_ms;

    connection_state_t state;
    bool closing;              /* connection_close() was called: no reconnect */
    GCancellable *connecting;  /* the TCP connect under way, or NULL */
    GSocketConnection *socket; /* owns the descriptor */
    int fd;                    /* -1 without a socket */
    guint fd_watch;            /* the socket in the poll set, or 0 */
    bool watching_input;       /* what fd_watch polls for */
    bool watching_output;
    bool output_blocked;       /* the kernel's buffer was full */
    guint window_timer;        /* the coalescing window is open: input is
                                  read when it fires, not polled for */
    unsigned window_ms;        /* its length */
    gint64 last_input_at;      /* monotonic µs of the last read with bytes */
    guint state_timer;         /* ESTABLISH_TIMEOUT_MS or CLOSE_TIMEOUT_MS */
    guint reconnect_timer;
    guint flush_idle;

    stream_parser_t *parser;
    GByteArray *out;           /* queued, not yet written (but head_written bytes) */
    GArray *out_units;         /* out_unit_t: how out divides into what was queued */
    size_t head_written;       /* bytes of the first unit already written */
    GByteArray *unsent;        /* stanzas a dying stream never wrote, for the
                                  down callback */
    bool reading;              /* in serve_socket(): sends wait for its flush */
    int failure;               /* errno of a failed write, for the teardown */
    const char *problem;       /* what a stream event found wrong (static text) */
    char *stream_error;        /* the server's <stream:error/>, described */
    char read_buffer[READ_SIZE];
};

/* One piece of output as it was queued: whole stanzas from the caller, or
 * a piece of the stream itself (header, handshake, closing tag).  A stanza
 * the kernel never took in full can be given back when the stream dies, so
 * that the caller sends it again on the next stream. */
typedef struct out_unit {
    size_t length;
    bool stanzas;
} out_unit_t;

static void schedule_reconnect(connection_t *c);
static void teardown(connection_t *c, int error, const char *problem);

/* ---- Reporting ------------------------------------------------------------ */

/* What a stream error means for an operator, where it is likely a mistake
 * in the configuration. */
static const char *stream_error_hint(const char *condition)
{
    if (!condition)
        return "";
    if (strcmp(condition, "not-authorized") == 0)
        return " (is [component] secret the one the server has for this domain?)";
    if (strcmp(condition, "host-unknown") == 0)
        return " (the server has no component for [component] domain)";
    if (strcmp(condition, "conflict") == 0)
        return " (another component is connected for this domain)";
    return "";
}

static void report_end(connection_t *c, bool was_up, int error, const char *problem)
{
    if (c->stream_error) {
        log_error("the server closed the stream: %s", c->stream_error);
    } else if (problem) {
        log_error("%s %s:%u: %s", was_up ? "lost the connection to" : "cannot connect to",
                  c->server, c->port, problem);
    } else if (c->closing) {
        log_info("disconnected from %s:%u", c->server, c->port);
    } else if (error) {
        log_error("%s %s:%u: %s", was_up ? "lost the connection to" : "cannot connect to",
                  c->server, c->port, g_strerror(error));
    } else if (was_up) {
        log_error("lost the connection to %s:%u", c->server, c->port);
    } else {
        log_error("cannot connect to %s:%u: the server closed the stream before the handshake",
                  c->server, c->port);
    }
}

/* ---- Writing ---------------------------------------------------------------- */

static gboolean on_socket(int fd, GIOCondition condition, gpointer data);

/* Polls the socket for what the stream needs now: input unless the
 * coalescing window is open, output while the kernel's buffer is full. */
static void update_watch(connection_t *c)
{
    bool input = !c->window_timer, output = c->output_blocked;
    if (c->fd < 0 ||
        (c->fd_watch && c->watching_input == input && c->watching_output == output))
        return;
    if (c->fd_watch)
        g_source_remove(c->fd_watch); /* perhaps the source being dispatched */
    c->fd_watch = 0;
    c->watching_input = input;
    c->watching_output = output;
    if (!input && !output)
        return;
    GIOCondition condition = G_IO_ERR | G_IO_HUP;
    if (input)
        condition |= G_IO_IN;
    if (output)
        condition |= G_IO_OUT;
    /* GLib blocks a source while it is dispatched unless it may recurse,
     * and blocking takes its descriptor out of the poll set and puts it
     * back: three eventfd syscalls per wake-up, as many as the work itself
     * (strace, bench/README.md).  on_socket() runs no nested main loop. */
    GSource *source = g_unix_fd_source_new(c->fd, condition);
    g_source_set_can_recurse(source, TRUE);
    g_source_set_callback(source, G_SOURCE_FUNC(on_socket), c, NULL);
    c->fd_watch = g_source_attach(source, NULL);
    g_source_unref(source);
}

static gboolean on_failure(gpointer data)
{
    connection_t *c = data;
    c->flush_idle = 0;
    teardown(c, c->failure, NULL);
    return G_SOURCE_REMOVE;
}

/* Forgets the units the kernel has taken in full. */
static void drop_written(connection_t *c)
{
    size_t done = 0, units = 0;
    while (units < c->out_units->len) {
        const out_unit_t *unit = &g_array_index(c->out_units, out_unit_t, units);
        if (c->head_written < unit->length)
            break;
        c->head_written -= unit->length;
        done += unit->length;
        units++;
    }
    if (done > 0) {
        g_byte_array_remove_range(c->out, 0, (guint)done);
        g_array_remove_range(c->out_units, 0, (guint)units);
    }
}

/* Writes what the kernel takes.  A failure is handled from the main loop,
 * never from inside the caller's send. */
static void flush(connection_t *c)
{
    while (c->out->len > c->head_written && c->fd >= 0 && !c->failure) {
        ssize_t n = send(c->fd, c->out->data + c->head_written, c->out->len - c->head_written,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            c->head_written += (size_t)n;
            drop_written(c);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            c->output_blocked = true;
            update_watch(c);
            return;
        } else {
            c->failure = n < 0 ? errno : EPIPE;
            if (!c->reading && !c->flush_idle)
                c->flush_idle = g_idle_add(on_failure, c);
            return;
        }
    }
    if (c->fd >= 0 && !c->failure) {
        c->output_blocked = false;
        update_watch(c);
    }
}

static gboolean on_flush(gpointer data)
{
    connection_t *c = data;
    c->flush_idle = 0;
    flush(c);
    return G_SOURCE_REMOVE;
}

static void queue_unit(connection_t *c, const char *bytes, size_t length, bool stanzas)
{
    g_byte_array_append(c->out, (const guint8 *)bytes, (guint)length);
    const out_unit_t unit = {length, stanzas};
    g_array_append_val(c->out_units, unit);
    /* Within on_socket() the flush follows the reads; elsewhere, after
     * whatever else this main loop iteration sends. */
    if (!c->reading && !c->flush_idle)
        c->flush_idle = g_idle_add_full(G_PRIORITY_DEFAULT, on_flush, c, NULL);
}

/* Queues a piece of the stream itself. */
static void queue(connection_t *c, const char *bytes, size_t length)
{
    queue_unit(c, bytes, length, false);
}

/* Takes the stanzas queued and not written in full out of the output, into
 * UNSENT: the stream is ending, and they would be written to a server that
 * has stopped reading (or not written at all). */
static void take_unsent(connection_t *c, GByteArray *unsent)
{
    size_t offset = 0;
    for (guint i = 0; i < c->out_units->len; i++) {
        const out_unit_t *unit = &g_array_index(c->out_units, out_unit_t, i);
        if (unit->stanzas)
            g_byte_array_append(unsent, c->out->data + offset, (guint)unit->length);
        offset += unit->length;
    }
    g_byte_array_set_size(c->out, 0);
    g_array_set_size(c->out_units, 0);
    c->head_written = 0;
}

/* ---- The stream ------------------------------------------------------------- */

static void on_stream_opened(const char *id, void *data)
{
    connection_t *c = data;
    if (c->state != STATE_OPENING)
        return;
    if (!id) {
        c->problem = "the server's stream header has no id"; /* serve_socket() ends it */
        return;
    }
    /* XEP-0114: the hex SHA-1 of the stream id followed by the secret. */
    g_autoptr(GChecksum) sha1 = g_checksum_new(G_CHECKSUM_SHA1);
    g_checksum_update(sha1, (const guchar *)id, (gssize)strlen(id));
    g_checksum_update(sha1, (const guchar *)c->secret, (gssize)strlen(c->secret));
    g_autofree char *handshake =
        g_strdup_printf("<handshake>%s</handshake>", g_checksum_get_string(sha1));
    queue(c, handshake, strlen(handshake));
    c->state = STATE_AUTHENTICATING;
}

static void on_stream_authenticated(void *data)
{
    connection_t *c = data;
    if (c->state != STATE_AUTHENTICATING)
        return;
    c->state = STATE_UP;
    c->backoff_ms = 0;
    if (c->state_timer)
        g_source_remove(c->state_timer);
    c->state_timer = 0;
    log_info("connected to %s:%u as %s", c->server, c->port, c->domain);
    c->callbacks.up(c->callbacks.userdata);
}

static void on_stream_stanza(const wire_stanza_t *stanza, void *data)
{
    connection_t *c = data;
    /* While closing, the server still delivers what it routed before it
     * read our closing tag: the caller answers it on the next stream. */
    if (c->state == STATE_UP || c->state == STATE_CLOSING)
        c->callbacks.stanza(stanza, c->callbacks.userdata);
    else
        log_debug("ignored <%s/> outside an authenticated stream", stanza->name);
}

static void on_stream_error(const char *condition, const char *text, void *data)
{
    connection_t *c = data;
    g_free(c->stream_error);
    c->stream_error = g_strdup_printf("%s%s%s%s", condition ? condition : "undefined-condition",
                                      text ? ": " : "", text ? text : "",
                                      stream_error_hint(condition));
}

/* Reads what has arrived, hands it to the parser, and writes what that
 * produced in one go.  *GOT_BYTES says whether any bytes came.  Returns
 * false when the stream ended, by the server, a parse error or a failed
 * write: it is torn down, and C may be freed (by the closed callback). */
static bool serve_socket(connection_t *c, bool *got_bytes)
{
    int error = 0;
    const char *problem = NULL;
    bool ended = false;

    *got_bytes = false;
    c->reading = true;
    for (int reads = 0; reads < READS_PER_WAKEUP && !ended; reads++) {
        ssize_t n = recv(c->fd, c->read_buffer, sizeof c->read_buffer, MSG_DONTWAIT);
        if (n > 0) {
            if (!*got_bytes)
                c->last_input_at = g_get_monotonic_time();
            *got_bytes = true;
            stream_status_t status = stream_parser_feed(c->parser, c->read_buffer, (size_t)n,
                                                        &problem);
            ended = status != STREAM_OK || c->problem;
            if (c->problem)
                problem = c->problem;
            if ((size_t)n < sizeof c->read_buffer)
                break; /* drained: the next poll says when there is more */
        } else if (n == 0) {
            ended = true; /* the server closed its side */
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            break;
        } else {
            error = errno;
            ended = true;
        }
    }
    c->reading = false;

    if (ended && c->state == STATE_UP) {
        /* What this wake-up routed would reach a server that has stopped
         * reading: keep it for the next stream (teardown hands it over). */
        take_unsent(c, c->unsent);
        if (!error && !problem) /* the server ended the stream: answer in kind */
            queue(c, stream_end, sizeof stream_end - 1);
    }
    flush(c);
    if (ended || c->failure) {
        teardown(c, error ? error : c->failure, problem);
        return false;
    }
    return true;
}

/* How long input should gather before it is read again (ms; 0: it is
 * polled for), after a read that brought bytes or not (GOT_BYTES). */
static unsigned window_wanted(connection_t *c, bool got_bytes)
{
    if (!got_bytes || c->state != STATE_UP || !c->callbacks.coalesce_ms)
        return 0;
    return c->callbacks.coalesce_ms(c->callbacks.userdata);
}

static gboolean on_window_end(gpointer data);

static void open_window(connection_t *c, unsigned ms)
{
    c->window_ms = ms;
    c->window_timer = g_timeout_add(ms, on_window_end, c);
}

static gboolean on_window_end(gpointer data)
{
    connection_t *c = data;
    bool got_bytes;
    if (!serve_socket(c, &got_bytes))
        return G_SOURCE_REMOVE; /* the timer went with the stream */
    unsigned ms = window_wanted(c, got_bytes);
    if (ms == c->window_ms)
        return G_SOURCE_CONTINUE; /* another window, from this wake-up */
    c->window_timer = 0;
    if (ms > 0)
        open_window(c, ms);
    update_watch(c);
    return G_SOURCE_REMOVE;
}

static gboolean on_socket(int fd, GIOCondition condition, gpointer data)
{
    (void)fd;
    (void)condition;
    connection_t *c = data;
    gint64 previous_input_at = c->last_input_at;
    bool got_bytes;
    if (!serve_socket(c, &got_bytes))
        return G_SOURCE_REMOVE; /* the source went with the stream */
    if (c->window_timer)
        return G_SOURCE_CONTINUE; /* woken for output while a window is open */
    /* A window opens only when stanzas come faster than it is long: one
     * that would catch nothing would cost a wake-up of its own. */
    unsigned ms = window_wanted(c, got_bytes);
    if (ms > 0 && c->last_input_at - previous_input_at < (gint64)ms * 1000) {
        open_window(c, ms);
        update_watch(c); /* removes this source, as input is not polled now */
    }
    return G_SOURCE_CONTINUE;
}

/* ---- Connecting and tearing down ------------------------------------------- */

static void set_socket_options(connection_t *c, int fd)
{
    /* A dead server is noticed within KEEPALIVE seconds either way: idle
     * probes while nothing is sent, and a bound on unacknowledged data
     * while something is. */
    int on = 1, count = KEEPALIVE_PROBES;
    int interval = MAX(1, c->keepalive_s / (2 * KEEPALIVE_PROBES));
    int idle = MAX(1, c->keepalive_s - count * interval);
    unsigned user_timeout_ms = (unsigned)c->keepalive_s * 1000u;

    /* Requests and replies are small and want to leave at once. */
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms, sizeof user_timeout_ms) != 0)
        log_warning("cannot set socket options: %s", g_strerror(errno));
}

static gboolean on_establish_timeout(gpointer data)
{
    connection_t *c = data;
    c->state_timer = 0;
    teardown(c, 0, "no handshake within 10 s");
    return G_SOURCE_REMOVE;
}

static gboolean on_close_timeout(gpointer data)
{
    connection_t *c = data;
    c->state_timer = 0;
    teardown(c, 0, NULL);
    return G_SOURCE_REMOVE;
}

static void on_connected(GObject *source, GAsyncResult *result, gpointer data)
{
    g_autoptr(GError) error = NULL;
    GSocketConnection *socket =
        g_socket_client_connect_to_host_finish(G_SOCKET_CLIENT(source), result, &error);
    if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return; /* torn down, perhaps freed: DATA must not be touched */

    connection_t *c = data;
    g_clear_object(&c->connecting);
    if (!socket) {
        teardown(c, 0, error->message);
        return;
    }
    c->socket = socket;
    c->fd = g_socket_get_fd(g_socket_connection_get_socket(socket));
    set_socket_options(c, c->fd);
    c->parser = stream_parser_new(&(stream_events_t){
        .opened = on_stream_opened,
        .authenticated = on_stream_authenticated,
        .stanza = on_stream_stanza,
        .error = on_stream_error,
        .userdata = c,
    });
    c->state = STATE_OPENING;
    update_watch(c);
    g_autofree char *header = g_strdup_printf(
        "<?xml version='1.0'?><stream:stream xmlns='" XMPP_NS_COMPONENT_ACCEPT
        "' xmlns:stream='" XMPP_NS_STREAMS "' to='%s'>", c->domain);
    queue(c, header, strlen(header));
}

static void connect_now(connection_t *c)
{
    g_autoptr(GSocketClient) client = g_socket_client_new();
    /* The server is named in our configuration: no system proxy between. */
    g_socket_client_set_enable_proxy(client, FALSE);
    c->connecting = g_cancellable_new();
    c->state = STATE_CONNECTING;
    c->state_timer = g_timeout_add(ESTABLISH_TIMEOUT_MS, on_establish_timeout, c);
    g_socket_client_connect_to_host_async(client, c->server, c->port, c->connecting,
                                          on_connected, c);
}

/* Closes the socket and forgets the stream; then reports, and either
 * reconnects later or, after connection_close(), says it is closed.
 * ERROR (errno) and PROBLEM (text) say what went wrong, if anything. */
static void release_stream(connection_t *c)
{
    if (c->connecting) {
        g_cancellable_cancel(c->connecting);
        g_clear_object(&c->connecting);
    }
    if (c->fd_watch)
        g_source_remove(c->fd_watch);
    c->fd_watch = 0;
    if (c->window_timer)
        g_source_remove(c->window_timer);
    c->window_timer = 0;
    c->output_blocked = false;
    if (c->state_timer)
        g_source_remove(c->state_timer);
    c->state_timer = 0;
    if (c->flush_idle)
        g_source_remove(c->flush_idle);
    c->flush_idle = 0;
    if (c->socket) {
        g_io_stream_close(G_IO_STREAM(c->socket), NULL, NULL);
        g_clear_object(&c->socket);
    }
    c->fd = -1;
    stream_parser_free(c->parser);
    c->parser = NULL;
    g_byte_array_set_size(c->out, 0);
    g_array_set_size(c->out_units, 0);
    c->head_written = 0;
    c->failure = 0;
    c->problem = NULL;
    c->state = STATE_IDLE;
}

static void teardown(connection_t *c, int error, const char *problem)
{
    if (c->state == STATE_IDLE)
        return;
    bool was_up = c->state == STATE_UP;
    g_autofree char *reason = g_strdup(problem); /* PROBLEM may live in the parser */
    if (was_up)
        take_unsent(c, c->unsent);
    release_stream(c);
    report_end(c, was_up, error, reason);
    g_clear_pointer(&c->stream_error, g_free);
    if (was_up) {
        c->callbacks.down((const char *)c->unsent->data, c->unsent->len, c->callbacks.userdata);
        g_byte_array_set_size(c->unsent, 0);
    }
    if (c->closing)
        c->callbacks.closed(c->callbacks.userdata);
    else
        schedule_reconnect(c);
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

/* ---- Public functions --------------------------------------------------------- */

static void clear_secret(connection_t *c)
{
    if (c->secret)
        explicit_bzero(c->secret, strlen(c->secret));
    g_clear_pointer(&c->secret, g_free);
}

/* Takes CONFIG's [component] settings. */
static void apply_settings(connection_t *c, const config_t *config)
{
    g_free(c->domain);
    g_free(c->server);
    clear_secret(c);
    c->domain = g_strdup(config->domain);
    c->secret = g_strdup(config->secret);
    c->server = g_strdup(config->server);
    c->port = (unsigned short)config->port;
    c->backoff_first_ms = (unsigned)config->reconnect_initial * 1000u;
    c->backoff_max_ms = (unsigned)config->reconnect_max * 1000u;
    c->keepalive_s = config->keepalive;
    c->backoff_ms = 0;
}

connection_t *connection_new(const config_t *config, const connection_callbacks_t *callbacks)
{
    connection_t *c = g_new0(connection_t, 1);
    c->callbacks = *callbacks;
    c->fd = -1;
    c->out = g_byte_array_sized_new(64 * 1024);
    c->out_units = g_array_new(FALSE, FALSE, sizeof(out_unit_t));
    c->unsent = g_byte_array_new();
    apply_settings(c, config);
    return c;
}

void connection_free(connection_t *c)
{
    if (!c)
        return;
    release_stream(c);
    if (c->reconnect_timer)
        g_source_remove(c->reconnect_timer);
    g_byte_array_free(c->out, TRUE);
    g_array_free(c->out_units, TRUE);
    g_byte_array_free(c->unsent, TRUE);
    g_free(c->stream_error);
    g_free(c->domain);
    g_free(c->server);
    clear_secret(c);
    g_free(c);
}

void connection_start(connection_t *c)
{
    log_info("connecting to %s:%u", c->server, c->port);
    connect_now(c);
}

void connection_send(connection_t *c, const char *bytes, size_t length)
{
    if (c->state != STATE_UP) {
        log_debug("not connected: dropped %zu bytes of output", length);
        return;
    }
    queue_unit(c, bytes, length, true);
}

bool connection_is_up(const connection_t *c)
{
    return c->state == STATE_UP;
}

void connection_reconfigure(connection_t *c, const config_t *config)
{
    g_assert(c->state == STATE_IDLE);
    apply_settings(c, config);
    c->closing = false;
}

void connection_close(connection_t *c)
{
    c->closing = true;
    if (c->reconnect_timer)
        g_source_remove(c->reconnect_timer);
    c->reconnect_timer = 0;

    if (c->state == STATE_IDLE) {
        c->callbacks.closed(c->callbacks.userdata);
    } else if (c->state == STATE_UP) {
        /* What is queued goes out before the closing tag; the server then
         * closes its side, or the timer does. */
        queue(c, stream_end, sizeof stream_end - 1);
        c->state = STATE_CLOSING;
        c->state_timer = g_timeout_add(CLOSE_TIMEOUT_MS, on_close_timeout, c);
    } else if (c->state != STATE_CLOSING) {
        teardown(c, 0, NULL);
    }
}
