/* The service's own presence, as users see it: available while at least
 * one resource may take requests, unavailable when none can.
 *
 * A user who sends subscribe to the bare domain is subscribed at once, and
 * hears the current presence; so does one who probes.  Both are remembered
 * (in memory, at most [limits] addresses of them, the least recently heard
 * from dropped first) and told whenever the presence changes.  unsubscribe
 * is acknowledged and forgets the user. */
#ifndef CP_CORE_SERVICE_PRESENCE_H
#define CP_CORE_SERVICE_PRESENCE_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "outbox.h"

typedef struct service_presence service_presence_t;

/* Presence goes through OUTBOX (borrowed; it outlives this) from CONFIG's
 * domain (read during the call).  The service starts unavailable. */
service_presence_t *service_presence_new(const config_t *config, outbox_t *outbox);
void service_presence_free(service_presence_t *presence);
void service_presence_reconfigure(service_presence_t *presence, const config_t *config);

/* FROM (a full or bare JID) subscribes, probes, or unsubscribes. */
void service_presence_subscribe(service_presence_t *presence, const char *from);
void service_presence_probe(service_presence_t *presence, const char *from);
void service_presence_unsubscribe(service_presence_t *presence, const char *from);

/* Whether a resource may take requests now: when that changes while the
 * stream is up, every subscriber hears it. */
void service_presence_set_available(service_presence_t *presence, bool available);

size_t service_presence_subscriber_count(const service_presence_t *presence);

#endif
