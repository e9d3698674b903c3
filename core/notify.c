/* systemd's notification protocol, through libsystemd: see notify.h.
 * libsystemd is on every systemd machine, and sd_notify() is the
 * implementation of the protocol systemd documents; writing the datagram
 * ourselves would save a dependency and duplicate the abstract-socket and
 * credential handling it already gets right. */
#include "notify.h"

#include <time.h>

#include <glib.h>
#include <systemd/sd-daemon.h>

#include "log.h"

struct notify {
    bool enabled;      /* NOTIFY_SOCKET is set */
    bool ready;
    guint ready_timer;
    guint watchdog_timer;
    char *last_status;
};

static gboolean on_watchdog(gpointer data)
{
    (void)data;
    sd_notify(0, "WATCHDOG=1");
    return G_SOURCE_CONTINUE;
}

notify_t *notify_new(void)
{
    notify_t *notify = g_new0(notify_t, 1);
    notify->enabled = g_getenv("NOTIFY_SOCKET") != NULL;
    uint64_t watchdog_us = 0;
    if (notify->enabled && sd_watchdog_enabled(0, &watchdog_us) > 0 && watchdog_us > 0) {
        guint interval_ms = (guint)MAX(1, watchdog_us / 2000);
        notify->watchdog_timer = g_timeout_add(interval_ms, on_watchdog, notify);
        sd_notify(0, "WATCHDOG=1");
    }
    return notify;
}

void notify_free(notify_t *notify)
{
    if (!notify)
        return;
    if (notify->ready_timer)
        g_source_remove(notify->ready_timer);
    if (notify->watchdog_timer)
        g_source_remove(notify->watchdog_timer);
    g_free(notify->last_status);
    g_free(notify);
}

static void become_ready(notify_t *notify)
{
    if (notify->ready_timer)
        g_source_remove(notify->ready_timer);
    notify->ready_timer = 0;
    if (notify->ready || !notify->enabled)
        return;
    notify->ready = true;
    sd_notify(0, "READY=1");
}

static gboolean on_ready_bound(gpointer data)
{
    notify_t *notify = data;
    notify->ready_timer = 0;
    log_info("no resource of the target is online yet: ready anyway");
    become_ready(notify);
    return G_SOURCE_REMOVE;
}

void notify_connected(notify_t *notify)
{
    if (!notify->enabled || notify->ready || notify->ready_timer)
        return;
    notify->ready_timer = g_timeout_add_seconds(NOTIFY_READY_BOUND_S, on_ready_bound, notify);
}

void notify_resources_known(notify_t *notify)
{
    become_ready(notify);
}

void notify_reloading(notify_t *notify)
{
    if (!notify->enabled)
        return;
    /* systemd 253 and later match the reload by the time it began. */
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    uint64_t usec = (uint64_t)now.tv_sec * 1000000u + (uint64_t)now.tv_nsec / 1000u;
    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%" G_GUINT64_FORMAT, usec);
}

void notify_reloaded(notify_t *notify)
{
    if (notify->enabled)
        sd_notify(0, "READY=1");
}

void notify_stopping(notify_t *notify)
{
    if (notify->enabled)
        sd_notify(0, "STOPPING=1");
}

void notify_status(notify_t *notify, bool stream_up, size_t resources, size_t in_flight,
                   size_t held)
{
    if (!notify->enabled)
        return;
    g_autofree char *status =
        stream_up ? g_strdup_printf("serving %zu resource%s, %zu request%s in flight%s", resources,
                                    resources == 1 ? "" : "s", in_flight,
                                    in_flight == 1 ? "" : "s",
                                    held ? " (some held for a resource)" : "")
                  : g_strdup("connecting to the server");
    if (g_strcmp0(status, notify->last_status) == 0)
        return;
    g_free(notify->last_status);
    notify->last_status = g_steal_pointer(&status);
    sd_notifyf(0, "STATUS=%s", notify->last_status);
}
