/* Health: a resource that stays online but stops answering would swallow
 * every request sent to it until its timeout, and one that answers that it
 * did not process them (cancel/feature-not-implemented or
 * service-unavailable: another program logged in as the same account)
 * would fail them.  After unhealthy_after such failures in a row it is
 * benched: no new requests, and a XEP-0199 ping from the component every
 * request_timeout until it answers one.
 *
 * Each resource carries a health_record_t that only this module reads or
 * writes; health_t knows the benched ones, so that finding the next ping
 * due costs nothing when all is well. */
#ifndef CP_CORE_HEALTH_H
#define CP_CORE_HEALTH_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "outbox.h"

/* Ids of the pings that test a benched resource. */
#define HEALTH_PING_ID_PREFIX "cp-health-"

typedef struct resource resource_t;

typedef struct health_record {
    unsigned consecutive_failures; /* timeouts and refusals in a row */
    bool benched;         /* no new requests until it answers a ping */
    char *ping_id;        /* the ping it owes an answer to, or NULL */
    int64_t ping_due;     /* monotonic µs: when to ping it again */
} health_record_t;

typedef struct health health_t;

/* Pings go through OUTBOX (borrowed; it outlives the health_t) from
 * CONFIG's instance_domain to resources of its target.  CONFIG is read
 * during the call only. */
health_t *health_new(const config_t *config, outbox_t *outbox);
void health_free(health_t *health);

/* Takes CONFIG's unhealthy_after, request_timeout, target and
 * instance_domain, for what comes next. */
void health_reconfigure(health_t *health, const config_t *config);

/* A request sent to RESOURCE failed: it timed out, or the resource said it
 * did not process it (WHY, for the log: "timed out", "refused a request").  Returns
 * true when this benched it (the caller stops offering it). */
bool health_note_failure(health_t *health, resource_t *resource, const char *why);

/* RESOURCE answered a request: it is not silent. */
void health_note_answer(resource_t *resource);

/* RESOURCE answered the ping ID with TYPE ("result" or "error").  Returns
 * true when that ends its bench (the caller offers it again); false when
 * ID is not the ping it owes, or the answer is an error. */
bool health_note_ping_reply(health_t *health, resource_t *resource, const char *id,
                            const char *type);

bool health_is_benched(const resource_t *resource);

/* RESOURCE is going: forget its record. */
void health_forget(health_t *health, resource_t *resource);

/* Pings the benched resources whose last ping went unanswered by NOW
 * (monotonic µs). */
void health_ping_due(health_t *health, int64_t now);

/* When the next ping is due (monotonic µs), or -1. */
int64_t health_next_due(const health_t *health);

#endif
