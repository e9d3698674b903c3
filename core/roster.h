/* The roster: the implementing client's resources as client-proxy knows
 * them from presence, and which of them may take a new request.
 *
 * It owns every resource_t: it reads their presence (show, priority),
 * applies [proxy] resources and the drain rule (a resource whose show is
 * dnd or xa takes no new requests), keeps the candidates that dispatch
 * chooses among, and tells the dispatch plugin who comes and goes. */
#ifndef CP_CORE_ROSTER_H
#define CP_CORE_ROSTER_H

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

#include <client-proxy/plugin.h>

#include "config.h"
#include "health.h"
#include "plugin-loader.h"
#include "wire.h"

typedef struct resource {
    cp_resource_t info;     /* what strategies see; owned by the roster */
    GQueue requests;        /* the requests sent to it, oldest first: the
                               links and their data belong to inflight.c */
    health_record_t health; /* read and written by health.c only */
    uint16_t outcomes;      /* last 16 answers, newest in bit 0: 1 = failed */
    int candidate_slot;     /* its index among the candidates, or -1 */
    bool leaving;           /* going offline: no new requests, not even retries */
    bool drained;           /* an admin drained it (as if its show were dnd) */
} resource_t;

typedef struct roster roster_t;

/* Creates an empty roster for CONFIG's target and resource filter (read
 * during the call), choosing with DISPATCH (the roster takes its own
 * reference). */
roster_t *roster_new(const config_t *config, plugin_t *dispatch);
/* Frees the roster: every resource must have been removed. */
void roster_free(roster_t *roster);

/* Takes CONFIG's resource filter and a new DISPATCH (referenced), which
 * learns the resources already online. */
void roster_reconfigure(roster_t *roster, const config_t *config, plugin_t *dispatch);

/* An available presence from resource NAME of the target, as received
 * (PRESENCE's bytes carry show and priority).  Adds or updates it. */
void roster_presence_available(roster_t *roster, const char *name,
                               const wire_stanza_t *presence);

/* True when [proxy] resources lets resource NAME take requests, and send
 * through users' addresses. */
bool roster_allows(const roster_t *roster, const char *name);

/* Resource NAME answered a discovery ping (discovery = ping): adds it,
 * plainly available with priority 0, if it is new.  Returns it. */
resource_t *roster_resource_alive(roster_t *roster, const char *name);

/* Returns the resource named NAME, or NULL.  Owned by the roster. */
resource_t *roster_lookup(roster_t *roster, const char *name);

/* RESOURCE is going: it is no candidate from now on, while its requests
 * are retried elsewhere or answered.  roster_remove() follows. */
void roster_set_leaving(roster_t *roster, resource_t *resource);

/* Removes and frees RESOURCE, whose requests must all have ended, telling
 * the dispatch plugin first. */
void roster_remove(roster_t *roster, resource_t *resource);

/* Every resource, in no particular order: a new array for the caller to
 * free, of resource_t pointers owned by the roster. */
GPtrArray *roster_list(roster_t *roster);

/* Offers RESOURCE to dispatch or stops offering it, after its health
 * changed. */
void roster_update_candidacy(roster_t *roster, resource_t *resource);

/* How many resources may take a new request now. */
size_t roster_candidate_count(const roster_t *roster);

/* Asks the dispatch plugin to choose among the candidates for REQUEST
 * (borrowed), but EXCEPT (may be NULL).  Returns the resource, or NULL when
 * there is no candidate, or the strategy declines or errs.  The strategy is
 * shown the roster's own list, with or without EXCEPT: the roster's part
 * is O(1) however many candidates there are. */
resource_t *roster_choose(roster_t *roster, const cp_dispatch_request_t *request,
                          const resource_t *except);

/* True when RESOURCE takes no new requests because it said dnd or xa, or an
 * admin drained it. */
bool roster_is_draining(const resource_t *resource);

/* An admin drains RESOURCE (DRAINED) or lets it take requests again, as if
 * it had set dnd; its own presence does not undo it. */
void roster_set_drained(roster_t *roster, resource_t *resource, bool drained);

/* Records how a request sent to RESOURCE ended: FAILED for an error or a
 * timeout; ELAPSED_US, the time to a reply, or -1 when there was none. */
void roster_record_outcome(resource_t *resource, bool failed, int64_t elapsed_us);

size_t roster_count(const roster_t *roster);

#endif
