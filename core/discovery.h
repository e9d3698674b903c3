/* Discovery: how client-proxy learns which resources of the target exist.
 *
 * By presence ([proxy] discovery = presence, the default): it subscribes to
 * the target and probes it whenever the stream comes up; the roster follows
 * the presence that comes back.  When that presence bounces (an error from
 * the target's bare JID) or the target ends the subscription, it asks again
 * after 1 s, doubling up to [component] reconnect_max, until a resource is
 * available.
 *
 * By ping (discovery = ping): no subscription at all, for accounts that
 * never approve one.  The resources named in [proxy] resources are pinged
 * (XEP-0199) every ping_interval; one is online while it answers, and
 * offline when it answers with an error or not within ping_timeout. */
#ifndef CP_CORE_DISCOVERY_H
#define CP_CORE_DISCOVERY_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "outbox.h"
#include "wire.h"

/* Ids of discovery's pings. */
#define DISCOVERY_PING_ID_PREFIX "cp-discover-"

typedef struct discovery discovery_t;

/* What discovery found out about a resource, for the router to act on. */
typedef struct discovery_events {
    void (*alive)(const char *name, void *userdata); /* it answered a ping */
    void (*gone)(const char *name, void *userdata);  /* it did not, or with an error */
    void *userdata;
} discovery_events_t;

/* Sends through OUTBOX (borrowed; it outlives this) from CONFIG's
 * instance_domain (read during the call).  EVENTS is copied. */
discovery_t *discovery_new(const config_t *config, outbox_t *outbox,
                           const discovery_events_t *events);
void discovery_free(discovery_t *discovery);
void discovery_reconfigure(discovery_t *discovery, const config_t *config);

bool discovery_by_presence(const discovery_t *discovery);

/* The stream is up: ask for the target's presence, or ping every resource
 * named. */
void discovery_connected(discovery_t *discovery, int64_t now);
/* The stream is down: nothing is outstanding any more. */
void discovery_disconnected(discovery_t *discovery);

/* The target's presence told of an available resource: no need to ask
 * again. */
void discovery_presence_seen(discovery_t *discovery);
/* The target's presence bounced, or it ended our subscription: ask again
 * later. */
void discovery_presence_lost(discovery_t *discovery, int64_t now);

/* Whether IQ (borrowed), a result or error to the bare domain, answers a
 * discovery ping; if so it is handled (events fire) and true returned. */
bool discovery_handle_reply(discovery_t *discovery, const wire_stanza_t *iq);

/* Does what is due at NOW (monotonic µs): pings, their timeouts, probes. */
void discovery_due(discovery_t *discovery, int64_t now);

/* When discovery_due() next has something to do (monotonic µs), or -1. */
int64_t discovery_next_due(const discovery_t *discovery);

#endif
