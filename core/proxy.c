/* Runs client-proxy: wires the connection to the router, and owns the
 * timers, the signals and the reloads (see proxy.h). */
#include "proxy.h"

#include <signal.h>
#include <string.h>

#include <glib-unix.h>

#include "admin.h"
#include "allocator.h"
#include "connection.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "router.h"

/* How often a stream change checks whether requests in flight are done. */
#define DRAIN_POLL_MS 100
/* On stop, the stream stays open until no stanza has come for STOP_QUIET_MS
 * (at most STOP_GRACE_MS): every request that arrives meanwhile is answered
 * on it.  After our closing tag nothing more can be sent, and what the
 * server routed to us before reading it could no longer be answered. */
#define STOP_POLL_MS 20
#define STOP_QUIET_MS 100
#define STOP_GRACE_MS 2000
/* Under load, the stream's input may gather for up to 1/COALESCE_SHARE of
 * the age of the oldest request in flight, and at most COALESCE_MAX_MS,
 * before it is read: the server writes each stanza as it routes it, and a
 * wake-up per stanza costs more than our work on it.  A build may set
 * either (-Dc_args=-DCOALESCE_MAX_MS=4) to measure another window
 * (bench/README.md, "Fewer wake-ups"). */
#ifndef COALESCE_SHARE
#define COALESCE_SHARE 8
#endif
#ifndef COALESCE_MAX_MS
#define COALESCE_MAX_MS 2
#endif
/* How often systemd hears what client-proxy is doing (when it changed). */
#define STATUS_POLL_MS 1000

typedef struct proxy {
    GMainLoop *loop;
    proxy_setup_t setup;       /* what runs now */
    proxy_setup_t next;        /* a reload waiting for a new stream, or empty */
    connection_t *connection;
    router_t *router;
    guint deadline_timer;
    int64_t deadline_timer_at; /* monotonic µs the timer fires at */
    guint drain_timer;
    guint stop_timer;
    int64_t stop_started_at;   /* monotonic µs */
    int64_t last_stanza_at;    /* monotonic µs */
    bool stopping;
    bool was_up;               /* the stream was up before: a reconnect */
    metrics_t *metrics;        /* survives reloads */
    http_t *http;              /* [metrics] listen, or NULL */
    admin_t *admin;            /* [admin] jids' commands */
    notify_t *notify;
    guint status_timer;
    GArray *snapshot_storage;  /* metrics_resource_t, reused per scrape */
} proxy_t;

bool proxy_setup_load(const char *path, proxy_setup_t *setup, GError **error)
{
    *setup = (proxy_setup_t){0};
    if (!(setup->config = config_load(path, error)) ||
        !(setup->dispatch = plugin_load(setup->config, CP_PLUGIN_DISPATCH,
                                        setup->config->dispatch, error)) ||
        !(setup->jat = plugin_load(setup->config, CP_PLUGIN_JAT, setup->config->encoding,
                                   error))) {
        proxy_setup_clear(setup);
        return false;
    }
    return true;
}

void proxy_setup_clear(proxy_setup_t *setup)
{
    plugin_unref(setup->jat);
    plugin_unref(setup->dispatch);
    config_free(setup->config);
    *setup = (proxy_setup_t){0};
}

/* ---- Deadlines --------------------------------------------------------------
 * One timer for all requests: armed for the earliest deadline, and left alone
 * when that request is answered first (firing early costs one check). */

static gboolean on_deadline(gpointer data);

static void arm_deadline_timer(int64_t deadline, void *userdata)
{
    proxy_t *proxy = userdata;
    if (proxy->deadline_timer && proxy->deadline_timer_at <= deadline)
        return;
    if (proxy->deadline_timer)
        g_source_remove(proxy->deadline_timer);
    int64_t delay_us = MAX(0, deadline - g_get_monotonic_time());
    proxy->deadline_timer_at = deadline;
    proxy->deadline_timer = g_timeout_add((guint)((delay_us + 999) / 1000), on_deadline, proxy);
}

static gboolean on_deadline(gpointer data)
{
    proxy_t *proxy = data;
    proxy->deadline_timer = 0;
    router_expire(proxy->router, g_get_monotonic_time());
    int64_t next = router_next_deadline(proxy->router);
    if (next >= 0)
        arm_deadline_timer(next, proxy);
    return G_SOURCE_REMOVE;
}

/* ---- Between the connection and the router --------------------------------- */

static void send_stanza(const char *bytes, size_t length, void *userdata)
{
    proxy_t *proxy = userdata;
    connection_send(proxy->connection, bytes, length);
}

static void create_router(proxy_t *proxy)
{
    const router_callbacks_t callbacks = {
        .send = send_stanza,
        .deadline_changed = arm_deadline_timer,
        .userdata = proxy,
        .metrics = proxy->metrics,
    };
    proxy->router = router_new(proxy->setup.config, proxy->setup.dispatch, proxy->setup.jat,
                               &callbacks);
}

static void on_up(void *userdata)
{
    proxy_t *proxy = userdata;
    if (proxy->was_up)
        metrics_count_reconnect(proxy->metrics);
    proxy->was_up = true;
    metrics_set_stream_up(proxy->metrics, true);
    router_connected(proxy->router);
    notify_connected(proxy->notify);
}

static void on_down(const char *unsent, size_t length, void *userdata)
{
    proxy_t *proxy = userdata;
    size_t pending = router_pending_count(proxy->router);
    metrics_set_stream_up(proxy->metrics, false);
    router_disconnected(proxy->router, unsent, length);
    if (pending)
        log_warning("%zu requests in flight will be answered with remote-server-timeout once "
                    "reconnected",
                    pending);
}

static void on_stanza(const wire_stanza_t *stanza, void *userdata)
{
    proxy_t *proxy = userdata;
    proxy->last_stanza_at = g_get_monotonic_time();
    if (strcmp(stanza->name, "iq") == 0 && admin_handle(proxy->admin, stanza))
        return;
    router_handle(proxy->router, stanza);
    /* Ready as soon as a resource is known (a presence just came), not at
     * the next status poll. */
    if (router_serving(proxy->router))
        notify_resources_known(proxy->notify);
}

/* How long the connection may let input gather before reading it: never
 * while a request is alone, as its reply would wait; else a share of the
 * time requests already spend in flight, so that the wait stays a small
 * part of their latency (bench/README.md, "Fewer wake-ups"). */
static unsigned coalesce_ms(void *userdata)
{
    proxy_t *proxy = userdata;
    if (router_pending_count(proxy->router) < 2)
        return 0;
    int64_t age = router_oldest_request_age(proxy->router, g_get_monotonic_time());
    return (unsigned)MIN(age / COALESCE_SHARE / 1000, COALESCE_MAX_MS);
}

/* The stream is closed: either we stop, or a reload changed the stream and
 * a new one starts with the new setup.  The router stays: what it holds for
 * the next stream (answers to requests that came while this one closed) is
 * sent on it. */
static void on_closed(void *userdata)
{
    proxy_t *proxy = userdata;
    if (proxy->stopping || !proxy->next.config) {
        g_main_loop_quit(proxy->loop);
        return;
    }
    router_reconfigure(proxy->router, proxy->next.config, proxy->next.dispatch,
                       proxy->next.jat);
    admin_reconfigure(proxy->admin, proxy->next.config);
    router_pause(proxy->router, false);
    proxy_setup_clear(&proxy->setup);
    proxy->setup = proxy->next;
    proxy->next = (proxy_setup_t){0};
    connection_reconfigure(proxy->connection, proxy->setup.config);
    log_info("reload: connecting with the new [component] settings");
    connection_start(proxy->connection);
}

/* ---- What operators see: /metrics, /health, systemd ------------------------------- */

static void render_metrics(GString *out, void *userdata)
{
    proxy_t *proxy = userdata;
    metrics_snapshot_t snapshot;
    router_snapshot(proxy->router, &snapshot, proxy->snapshot_storage);
    metrics_render(proxy->metrics, &snapshot, out);
}

static bool check_health(GString *reason, void *userdata)
{
    proxy_t *proxy = userdata;
    if (!connection_is_up(proxy->connection)) {
        g_string_append(reason, "the stream to the XMPP server is down");
        return false;
    }
    if (!router_serving(proxy->router)) {
        g_string_append(reason, "no resource of the service can take requests");
        return false;
    }
    return true;
}

/* Starts the HTTP listener CONFIG asks for, or none.  Returns false, with
 * ERROR set, when it cannot listen. */
static bool listen_for_operators(proxy_t *proxy, const config_t *config, GError **error)
{
    if (!config->metrics_host)
        return true;
    const http_handlers_t handlers = {render_metrics, check_health, proxy};
    proxy->http = http_new(config->metrics_host, config->metrics_port, &handlers, error);
    return proxy->http != NULL;
}

static bool same_listener(const config_t *a, const config_t *b)
{
    return g_strcmp0(a->metrics_host, b->metrics_host) == 0 && a->metrics_port == b->metrics_port;
}

static bool admin_reload(char **outcome, void *userdata);

static bool admin_stream_up(void *userdata)
{
    proxy_t *proxy = userdata;
    return connection_is_up(proxy->connection);
}

static gboolean on_status_poll(gpointer data)
{
    proxy_t *proxy = data;
    allocator_release_when_idle(router_pending_count(proxy->router),
                                router_admitted_total(proxy->router));
    bool up = connection_is_up(proxy->connection);
    if (up && router_serving(proxy->router))
        notify_resources_known(proxy->notify);
    notify_status(proxy->notify, up, router_resource_count(proxy->router),
                  router_pending_count(proxy->router), router_held_count(proxy->router));
    return G_SOURCE_CONTINUE;
}

/* ---- Signals ------------------------------------------------------------------ */

/* Closes the stream; on_closed() follows.  From now on the router holds
 * what it sends: nothing more can be written on this stream. */
static void close_stream(proxy_t *proxy)
{
    router_disconnected(proxy->router, NULL, 0);
    connection_close(proxy->connection);
}

/* Stopping: the stream closes once the server has gone quiet, or after a
 * bound when it does not. */
static gboolean on_stop_poll(gpointer data)
{
    proxy_t *proxy = data;
    int64_t now = g_get_monotonic_time();
    if (now - proxy->last_stanza_at < STOP_QUIET_MS * 1000 &&
        now - proxy->stop_started_at < STOP_GRACE_MS * 1000)
        return G_SOURCE_CONTINUE;
    proxy->stop_timer = 0;
    close_stream(proxy);
    return G_SOURCE_REMOVE;
}

static gboolean on_stop_signal(gpointer data)
{
    proxy_t *proxy = data;
    if (proxy->stopping)
        return G_SOURCE_CONTINUE;
    proxy->stopping = true;
    notify_stopping(proxy->notify);
    if (proxy->drain_timer)
        g_source_remove(proxy->drain_timer);
    proxy->drain_timer = 0;
    log_info("stopping; answering %zu requests in flight", router_pending_count(proxy->router));
    if (!connection_is_up(proxy->connection)) {
        close_stream(proxy);
        return G_SOURCE_CONTINUE;
    }
    /* Answers what is in flight and says goodbye to the target; requests
     * that still come are answered until the server goes quiet. */
    router_shutdown(proxy->router);
    proxy->stop_started_at = g_get_monotonic_time();
    proxy->stop_timer = g_timeout_add(STOP_POLL_MS, on_stop_poll, proxy);
    return G_SOURCE_CONTINUE;
}

/* What a stream change waits for: the requests on a resource (or on their
 * way to a user).  Requests held for a resource ([proxy] hold) wait on
 * across the new stream; waiting for them would delay, by up to the hold, a
 * reload that fixes a wrong target, the very case where none can be placed. */
static size_t requests_on_this_stream(const proxy_t *proxy)
{
    return router_pending_count(proxy->router) - router_held_count(proxy->router);
}

/* Ends the stream so that on_closed() starts the next one. */
static void close_for_new_stream(proxy_t *proxy)
{
    log_info("reload: no request in flight; closing the stream");
    close_stream(proxy);
}

/* A new stream is needed: new requests are refused meanwhile, and those in
 * flight are answered (by their resource, or by their timeout) first. */
static gboolean on_drain_poll(gpointer data)
{
    proxy_t *proxy = data;
    if (requests_on_this_stream(proxy) > 0)
        return G_SOURCE_CONTINUE;
    proxy->drain_timer = 0;
    close_for_new_stream(proxy);
    return G_SOURCE_REMOVE;
}

/* Re-reads the configuration and applies it.  Returns true when it was
 * applied (or will be, on the new stream); *OUTCOME says what happened, in
 * one line for an operator (g_free it). */
static bool reload_setup(proxy_t *proxy, char **outcome)
{
    const char *path = proxy->setup.config->path;
    if (proxy->next.config) {
        *outcome = g_strdup("ignored: the previous reload is still waiting for its new stream");
        log_warning("reload: %s", *outcome);
        return false;
    }
    g_autoptr(GError) error = NULL;
    proxy_setup_t setup;
    if (!proxy_setup_load(path, &setup, &error)) {
        *outcome = g_strdup_printf("refused, still running the previous configuration: %s",
                                   error->message);
        log_error("reload %s", *outcome);
        return false;
    }
    if (!same_listener(proxy->setup.config, setup.config)) {
        http_t *old = proxy->http;
        proxy->http = NULL;
        if (!listen_for_operators(proxy, setup.config, &error)) {
            proxy->http = old;
            *outcome = g_strdup_printf("refused, still running the previous configuration: "
                                       "[metrics] listen: %s",
                                       error->message);
            log_error("reload %s", *outcome);
            proxy_setup_clear(&setup);
            return false;
        }
        http_free(old);
    }
    metrics_set_plugins(proxy->metrics, setup.config->encoding, setup.config->dispatch);

    g_auto(GStrv) changes = config_changes(proxy->setup.config, setup.config);
    if (!changes[0])
        log_info("reload: %s unchanged; plugins reloaded (their own files re-read)", path);
    for (char **change = changes; *change; change++)
        log_info("reload: %s", *change);

    if (config_stream_changed(proxy->setup.config, setup.config)) {
        log_info("reload: the stream or the target changed; answering %zu requests in flight "
                 "before reconnecting",
                 requests_on_this_stream(proxy));
        proxy->next = setup;
        router_pause(proxy->router, true);
        if (requests_on_this_stream(proxy) == 0)
            close_for_new_stream(proxy);
        else
            proxy->drain_timer = g_timeout_add(DRAIN_POLL_MS, on_drain_poll, proxy);
        *outcome = g_strdup("done; reconnecting with the new [component] settings once the "
                            "requests in flight are answered");
        return true;
    }
    router_reconfigure(proxy->router, setup.config, setup.dispatch, setup.jat);
    admin_reconfigure(proxy->admin, setup.config);
    proxy_setup_clear(&proxy->setup);
    proxy->setup = setup;
    *outcome = g_strdup_printf("done; new requests use %s and %s", plugin_file(setup.dispatch),
                               plugin_file(setup.jat));
    log_info("reload: %s", *outcome);
    return true;
}

/* A reload, as systemd and the metrics see it.  OUTCOME as for
 * reload_setup(), or NULL. */
static bool reload(proxy_t *proxy, char **outcome)
{
    notify_reloading(proxy->notify);
    g_autofree char *said = NULL;
    bool done = reload_setup(proxy, &said);
    metrics_count_reload(proxy->metrics, done);
    notify_reloaded(proxy->notify);
    if (outcome)
        *outcome = g_steal_pointer(&said);
    return done;
}

static bool admin_reload(char **outcome, void *userdata)
{
    proxy_t *proxy = userdata;
    if (proxy->stopping) {
        *outcome = g_strdup("refused: client-proxy is stopping");
        return false;
    }
    return reload(proxy, outcome);
}

static gboolean on_reload_signal(gpointer data)
{
    proxy_t *proxy = data;
    if (!proxy->stopping)
        reload(proxy, NULL);
    return G_SOURCE_CONTINUE;
}

int proxy_run(proxy_setup_t *setup)
{
    proxy_t proxy = {.loop = g_main_loop_new(NULL, FALSE), .setup = *setup};
    *setup = (proxy_setup_t){0};
    proxy.metrics = metrics_new();
    metrics_set_plugins(proxy.metrics, proxy.setup.config->encoding,
                        proxy.setup.config->dispatch);
    proxy.snapshot_storage = g_array_new(FALSE, FALSE, sizeof(metrics_resource_t));
    g_autoptr(GError) error = NULL;
    if (!listen_for_operators(&proxy, proxy.setup.config, &error)) {
        log_error("%s: [metrics] listen: %s", proxy.setup.config->path, error->message);
        metrics_free(proxy.metrics);
        g_array_free(proxy.snapshot_storage, TRUE);
        proxy_setup_clear(&proxy.setup);
        g_main_loop_unref(proxy.loop);
        return 1;
    }
    proxy.notify = notify_new();
    const connection_callbacks_t connection_callbacks = {
        .up = on_up,
        .down = on_down,
        .stanza = on_stanza,
        .closed = on_closed,
        .coalesce_ms = coalesce_ms,
        .userdata = &proxy,
    };
    proxy.connection = connection_new(proxy.setup.config, &connection_callbacks);
    create_router(&proxy);
    const admin_callbacks_t admin_callbacks = {admin_reload, admin_stream_up, &proxy};
    proxy.admin = admin_new(proxy.setup.config, proxy.router, proxy.metrics, &admin_callbacks);

    guint term = g_unix_signal_add(SIGTERM, on_stop_signal, &proxy);
    guint interrupt = g_unix_signal_add(SIGINT, on_stop_signal, &proxy);
    guint hangup = g_unix_signal_add(SIGHUP, on_reload_signal, &proxy);
    /* A peer that vanishes must not kill us on the next write. */
    signal(SIGPIPE, SIG_IGN);

    connection_start(proxy.connection);
    proxy.status_timer = g_timeout_add(STATUS_POLL_MS, on_status_poll, &proxy);
    g_main_loop_run(proxy.loop);

    g_source_remove(term);
    g_source_remove(interrupt);
    g_source_remove(hangup);
    if (proxy.deadline_timer)
        g_source_remove(proxy.deadline_timer);
    if (proxy.stop_timer)
        g_source_remove(proxy.stop_timer);
    g_source_remove(proxy.status_timer);
    http_free(proxy.http);
    admin_free(proxy.admin);
    router_free(proxy.router);
    connection_free(proxy.connection);
    notify_free(proxy.notify);
    metrics_free(proxy.metrics);
    g_array_free(proxy.snapshot_storage, TRUE);
    proxy_setup_clear(&proxy.next);
    proxy_setup_clear(&proxy.setup);
    g_main_loop_unref(proxy.loop);
    log_info("stopped");
    return 0;
}
