/* The implementing client's online resources, learnt from presence. */
#ifndef CP_CORE_RESOURCES_H
#define CP_CORE_RESOURCES_H

#include <stdbool.h>

#include <glib.h>

#include <client-proxy/plugin.h>

typedef struct resource {
    cp_resource_t info;   /* first: dispatch plugins see a resource_t as this */
    GQueue pending;       /* the pending_t sent to it, oldest first (links owned by pending) */
    uint16_t outcomes;    /* last 16 replies, newest in bit 0: 1 = error or timeout */
    unsigned consecutive_timeouts;
    bool unhealthy;       /* benched after timeouts, until it answers a ping */
    char *ping_id;        /* id of the ping it owes an answer to, or NULL */
    int64_t ping_due;     /* monotonic µs: when to ping it again */
} resource_t;

typedef struct resource_set resource_set_t;

resource_set_t *resources_new(void);
/* Frees every resource.  Their pending queues must be empty. */
void resources_free(resource_set_t *set);

/* Returns the resource named NAME, or NULL.  Owned by SET. */
resource_t *resources_lookup(resource_set_t *set, const char *name);

/* Adds NAME or updates its presence.  SHOW is "" when plainly available.
 * Returns the resource (owned by SET); *ADDED tells whether it is new. */
resource_t *resources_update(resource_set_t *set, const char *name, const char *show,
                             int priority, bool *added);

/* Removes and frees RESOURCE, whose pending queue must be empty. */
void resources_remove(resource_set_t *set, resource_t *resource);

size_t resources_count(const resource_set_t *set);

/* Every online resource, for dispatch: an array of N pointers owned by SET,
 * valid until the set next changes. */
const cp_resource_t *const *resources_all(const resource_set_t *set, size_t *n);

/* Records how a request sent to RESOURCE ended: FAILED for an error reply or
 * a timeout; ELAPSED_US for a reply (ignored when failed by timeout). */
void resources_record_outcome(resource_t *resource, bool failed, int64_t elapsed_us);

#endif
