#include "proxy.h"

#include <signal.h>

#include <glib-unix.h>

#include "connection.h"
#include "log.h"
#include "router.h"

/* How often a stream change checks whether requests in flight are done. */
#define DRAIN_POLL_MS 100

typedef struct proxy {
    GMainLoop *loop;
    proxy_setup_t setup;       /* what runs now */
    proxy_setup_t next;        /* a reload waiting for a new stream, or empty */
    xmpp_ctx_t *ctx;           /* libstrophe, for the stanzas the router builds */
    connection_t *connection;
    router_t *router;
    guint deadline_timer;
    int64_t deadline_timer_at; /* monotonic µs the timer fires at */
    guint drain_timer;
    bool stopping;
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
    plugin_unload(setup->jat);
    plugin_unload(setup->dispatch);
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
    };
    proxy->router = router_new(proxy->ctx, proxy->setup.config,
                               proxy->setup.dispatch, proxy->setup.jat, &callbacks);
}

static void on_up(void *userdata)
{
    proxy_t *proxy = userdata;
    router_connected(proxy->router);
}

static void on_down(void *userdata)
{
    proxy_t *proxy = userdata;
    size_t pending = router_pending_count(proxy->router);
    router_disconnected(proxy->router);
    if (pending)
        log_warning("%zu requests in flight will be answered with remote-server-timeout once "
                    "reconnected",
                    pending);
}

static void on_stanza(const wire_stanza_t *stanza, void *userdata)
{
    proxy_t *proxy = userdata;
    router_handle(proxy->router, stanza);
}

/* The stream is closed: either we stop, or a reload changed the stream and
 * a new one starts with the new setup. */
static void on_closed(void *userdata)
{
    proxy_t *proxy = userdata;
    if (proxy->stopping || !proxy->next.config) {
        g_main_loop_quit(proxy->loop);
        return;
    }
    router_free(proxy->router);
    proxy_setup_clear(&proxy->setup);
    proxy->setup = proxy->next;
    proxy->next = (proxy_setup_t){0};
    connection_reconfigure(proxy->connection, proxy->setup.config);
    create_router(proxy);
    log_info("reload: connecting with the new [component] settings");
    connection_start(proxy->connection);
}

/* ---- Signals ------------------------------------------------------------------ */

/* Answers what is in flight, says goodbye to the target while the stream is
 * up, and closes it; on_closed() follows. */
static void close_stream(proxy_t *proxy)
{
    if (connection_is_up(proxy->connection))
        router_shutdown(proxy->router);
    connection_close(proxy->connection);
}

static gboolean on_stop_signal(gpointer data)
{
    proxy_t *proxy = data;
    if (proxy->stopping)
        return G_SOURCE_CONTINUE;
    proxy->stopping = true;
    if (proxy->drain_timer)
        g_source_remove(proxy->drain_timer);
    proxy->drain_timer = 0;
    log_info("stopping; answering %zu requests in flight", router_pending_count(proxy->router));
    close_stream(proxy);
    return G_SOURCE_CONTINUE;
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
    if (router_pending_count(proxy->router) > 0)
        return G_SOURCE_CONTINUE;
    proxy->drain_timer = 0;
    close_for_new_stream(proxy);
    return G_SOURCE_REMOVE;
}

static void reload(proxy_t *proxy)
{
    const char *path = proxy->setup.config->path;
    if (proxy->next.config) {
        log_warning("reload: ignored, the previous one is still waiting for its new stream");
        return;
    }
    g_autoptr(GError) error = NULL;
    proxy_setup_t setup;
    if (!proxy_setup_load(path, &setup, &error)) {
        log_error("reload refused, still running the previous configuration: %s",
                  error->message);
        return;
    }

    g_auto(GStrv) changes = config_changes(proxy->setup.config, setup.config);
    if (!changes[0])
        log_info("reload: %s unchanged; plugins reloaded (their own files re-read)", path);
    for (char **change = changes; *change; change++)
        log_info("reload: %s", *change);

    if (config_stream_changed(proxy->setup.config, setup.config)) {
        log_info("reload: the stream or the target changed; answering %zu requests in flight "
                 "before reconnecting",
                 router_pending_count(proxy->router));
        proxy->next = setup;
        router_pause(proxy->router, true);
        if (router_pending_count(proxy->router) == 0)
            close_for_new_stream(proxy);
        else
            proxy->drain_timer = g_timeout_add(DRAIN_POLL_MS, on_drain_poll, proxy);
        return;
    }
    router_reconfigure(proxy->router, setup.config, setup.dispatch, setup.jat);
    proxy_setup_clear(&proxy->setup);
    proxy->setup = setup;
    log_info("reload: done; new requests use %s and %s", plugin_file(setup.dispatch),
             plugin_file(setup.jat));
}

static gboolean on_reload_signal(gpointer data)
{
    proxy_t *proxy = data;
    if (!proxy->stopping)
        reload(proxy);
    return G_SOURCE_CONTINUE;
}

int proxy_run(proxy_setup_t *setup)
{
    proxy_t proxy = {.loop = g_main_loop_new(NULL, FALSE), .setup = *setup};
    *setup = (proxy_setup_t){0};
    const connection_callbacks_t connection_callbacks = {
        .up = on_up,
        .down = on_down,
        .stanza = on_stanza,
        .closed = on_closed,
        .userdata = &proxy,
    };
    xmpp_initialize();
    proxy.ctx = xmpp_ctx_new(NULL, NULL);
    if (!proxy.ctx) {
        log_error("cannot create a libstrophe context");
        xmpp_shutdown();
        proxy_setup_clear(&proxy.setup);
        g_main_loop_unref(proxy.loop);
        return 1;
    }
    proxy.connection = connection_new(proxy.setup.config, &connection_callbacks);
    create_router(&proxy);

    guint term = g_unix_signal_add(SIGTERM, on_stop_signal, &proxy);
    guint interrupt = g_unix_signal_add(SIGINT, on_stop_signal, &proxy);
    guint hangup = g_unix_signal_add(SIGHUP, on_reload_signal, &proxy);
    /* A peer that vanishes must not kill us on the next write. */
    signal(SIGPIPE, SIG_IGN);

    connection_start(proxy.connection);
    g_main_loop_run(proxy.loop);

    g_source_remove(term);
    g_source_remove(interrupt);
    g_source_remove(hangup);
    if (proxy.deadline_timer)
        g_source_remove(proxy.deadline_timer);
    router_free(proxy.router);
    connection_free(proxy.connection);
    xmpp_ctx_free(proxy.ctx);
    xmpp_shutdown();
    proxy_setup_clear(&proxy.next);
    proxy_setup_clear(&proxy.setup);
    g_main_loop_unref(proxy.loop);
    log_info("stopped");
    return 0;
}
