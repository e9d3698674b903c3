/* Telling systemd what client-proxy is doing (Type=notify), through
 * libsystemd's sd_notify(): READY=1 once connected and the resources are
 * known (or NOTIFY_READY_BOUND_S after connecting if none are), RELOADING=1
 * with MONOTONIC_USEC and READY=1 around a reload, STOPPING=1, STATUS=
 * lines ("serving 2 resources, 14 requests in flight"), and WATCHDOG=1 at
 * half of WatchdogSec when it is set.  Without NOTIFY_SOCKET (not under
 * systemd) every call does nothing. */
#ifndef CP_CORE_NOTIFY_H
#define CP_CORE_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>

#define NOTIFY_READY_BOUND_S 5

typedef struct notify notify_t;

/* Starts the watchdog's timer, if systemd asked for one. */
notify_t *notify_new(void);
void notify_free(notify_t *notify);

/* The stream is up: ready once resources are known, or after a bound. */
void notify_connected(notify_t *notify);
/* A resource can take requests: ready now, if not yet. */
void notify_resources_known(notify_t *notify);

/* A reload begins and ends. */
void notify_reloading(notify_t *notify);
void notify_reloaded(notify_t *notify);

void notify_stopping(notify_t *notify);

/* Says what client-proxy is doing, when that changed. */
void notify_status(notify_t *notify, bool stream_up, size_t resources, size_t in_flight,
                   size_t held);

#endif
