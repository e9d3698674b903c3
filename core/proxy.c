#include "proxy.h"

#include <signal.h>

#include <glib-unix.h>

#include "connection.h"
#include "log.h"
#include "router.h"

typedef struct proxy {
    GMainLoop *loop;
    connection_t *connection;
    router_t *router;
    guint deadline_timer;
    int64_t deadline_timer_at; /* monotonic µs the timer fires at */
    bool stopping;
} proxy_t;

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

static void send_stanza(xmpp_stanza_t *stanza, void *userdata)
{
    proxy_t *proxy = userdata;
    connection_send(proxy->connection, stanza);
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

static void on_stanza(xmpp_stanza_t *stanza, void *userdata)
{
    proxy_t *proxy = userdata;
    router_handle(proxy->router, stanza);
}

static void on_closed(void *userdata)
{
    proxy_t *proxy = userdata;
    g_main_loop_quit(proxy->loop);
}

static gboolean on_stop_signal(gpointer data)
{
    proxy_t *proxy = data;
    if (proxy->stopping)
        return G_SOURCE_CONTINUE;
    proxy->stopping = true;
    size_t pending = router_pending_count(proxy->router);
    log_info("stopping; answering %zu requests in flight", pending);
    if (connection_is_up(proxy->connection))
        router_shutdown(proxy->router);
    connection_close(proxy->connection);
    return G_SOURCE_CONTINUE;
}

int proxy_run(const config_t *config, plugin_t *dispatch, plugin_t *jat)
{
    proxy_t proxy = {.loop = g_main_loop_new(NULL, FALSE)};
    const connection_callbacks_t connection_callbacks = {
        .up = on_up,
        .down = on_down,
        .stanza = on_stanza,
        .closed = on_closed,
        .userdata = &proxy,
    };
    proxy.connection = connection_new(config, &connection_callbacks);
    if (!proxy.connection) {
        g_main_loop_unref(proxy.loop);
        return 1;
    }
    const router_callbacks_t router_callbacks = {
        .send = send_stanza,
        .deadline_changed = arm_deadline_timer,
        .userdata = &proxy,
    };
    proxy.router = router_new(connection_context(proxy.connection), config, dispatch, jat,
                              &router_callbacks);

    guint term = g_unix_signal_add(SIGTERM, on_stop_signal, &proxy);
    guint interrupt = g_unix_signal_add(SIGINT, on_stop_signal, &proxy);
    /* A peer that vanishes must not kill us on the next write. */
    signal(SIGPIPE, SIG_IGN);

    connection_start(proxy.connection);
    g_main_loop_run(proxy.loop);

    g_source_remove(term);
    g_source_remove(interrupt);
    if (proxy.deadline_timer)
        g_source_remove(proxy.deadline_timer);
    router_free(proxy.router);
    connection_free(proxy.connection);
    g_main_loop_unref(proxy.loop);
    log_info("stopped");
    return 0;
}
