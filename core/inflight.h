/* Requests in flight: the one owner of every IQ request from its admission
 * to its one reply, in both directions.
 *
 * Forward: a user asks the service.  The request is admitted against
 * [limits] (inflight_admit), started once a resource is chosen and the
 * sender's address made (inflight_start: the request holds a reference to
 * the encoding instance that made the token, so its reply decodes even
 * after a reload replaced that encoding), and matched to the resource's
 * reply by token and id.  While no resource can take it, it may wait
 * instead ([proxy] hold: inflight_hold), and is started in arrival order
 * once one can (inflight_place_held).
 *
 * Outbound: a resource asks a user, through the user's address
 * (inflight_start_outbound).  It goes to the user from the bare domain with
 * an id of client-proxy's own, so that ids of different resources never
 * collide, and the user's answer comes back to the resource with its own
 * id, from the address it wrote to.
 *
 * Either way a request ends by inflight_end(), whatever the outcome: the
 * answer, or an error client-proxy answers itself (timeout, the resource
 * went offline, the stream dropped, a reload, shutdown).  inflight_end() is
 * the only way a request leaves the table, and it always sends exactly one
 * answer. */
#ifndef CP_CORE_INFLIGHT_H
#define CP_CORE_INFLIGHT_H

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

#include "config.h"
#include "metrics.h"
#include "outbox.h"
#include "overload.h"
#include "plugin-loader.h"
#include "roster.h"
#include "stanza.h"
#include "wire.h"

/* Ids of outbound requests as the user sees them. */
#define INFLIGHT_OUTBOUND_ID_PREFIX "cp-out-"

typedef struct request {
    char *token;          /* forward: the address it was forwarded from;
                             outbound: the address the resource wrote to */
    char *id;             /* the asker's id, kept unchanged */
    char *sender;         /* full JID that asked: a user, or (outbound) a
                             resource of the target */
    resource_t *resource; /* forward: where it went, borrowed from the
                             roster; outbound: NULL */
    plugin_t *jat;        /* forward: a reference to the encoding that made
                             the token; outbound: NULL */
    char *user;           /* outbound: the user it went to; else NULL */
    char *wire_id;        /* the id it went out with: forward, the asker's;
                             outbound, ours */
    char *kept;           /* forward: the request's bytes as received, for a
                             retry elsewhere, or for when it is placed after
                             being held; outbound: NULL */
    size_t kept_length;
    bool get;             /* a get (which a resource leaving may retry) */
    bool retried;         /* already moved to another resource once */
    char *refused_by;     /* the resource that said it could not process it
                             before the retry, or NULL (owned) */
    bool held;            /* forward: waiting for a resource ([proxy] hold) */
    int64_t hold_until;   /* monotonic µs, while held */
    int64_t arrived_at;   /* monotonic µs: when it came (the duration metric) */
    int64_t dispatched_at; /* monotonic µs: when its resource got it, the
                             last time (the resource's latency) */
    int64_t deadline;     /* monotonic µs */
    GList resource_link;  /* in resource->requests */
    GList deadline_link;  /* in the table's deadline order */
} request_t;

typedef struct inflight inflight_t;

/* Answers go through OUTBOX (borrowed; it outlives the table), from
 * CONFIG's domain, and are counted in METRICS (borrowed, may be NULL).
 * CONFIG is read during the call only. */
inflight_t *inflight_new(const config_t *config, outbox_t *outbox, metrics_t *metrics);
/* The table must be empty: every request is answered before it goes. */
void inflight_free(inflight_t *inflight);

/* Takes CONFIG's domain, timeouts and [limits] for new requests. */
void inflight_reconfigure(inflight_t *inflight, const config_t *config);

/* Whether SENDER may place a request with ID now (monotonic µs): a request
 * with the same sender and id is in flight, or a bound or rate of [limits]
 * says no.  Outbound requests (OUTBOUND) count against the same bounds, and
 * are also held to half of [limits] in_flight, so that the service asking
 * cannot starve users asking it.  When admitted, the request counts against
 * the limits until inflight_start() took it, or inflight_withdraw() gave
 * the admission back. */
typedef enum inflight_admission {
    INFLIGHT_ADMITTED,
    INFLIGHT_DUPLICATE,    /* modify/bad-request */
    INFLIGHT_FULL,         /* wait/resource-constraint */
    INFLIGHT_SENDER_FULL,  /* wait/resource-constraint */
    INFLIGHT_RATE,         /* wait/policy-violation */
} inflight_admission_t;
inflight_admission_t inflight_admit(inflight_t *inflight, const char *sender, const char *id,
                                    bool outbound, int64_t now);
void inflight_withdraw(inflight_t *inflight, const char *sender);

/* Starts the admitted request IQ (borrowed) on RESOURCE: records it until
 * NOW + request_timeout, keeps its bytes for a retry, and forwards it, from
 * INSTANCE_DOMAIN/TOKEN to TARGET/resource.  TOKEN is the sender's address,
 * made by JAT and pinned: the request takes that pin (plugin_forget() when
 * it ends) and a reference to JAT.  Returns the request, owned by the
 * table; or NULL, with the pin and the admission given back, when the
 * encoding gave this token to another sender with a request of this id in
 * flight (a broken plugin). */
request_t *inflight_start(inflight_t *inflight, const wire_stanza_t *iq, const char *token,
                          plugin_t *jat, resource_t *resource, int64_t now);

/* Keeps the admitted request IQ (borrowed) waiting for a resource until
 * HOLD_UNTIL (monotonic µs), or its own deadline if sooner.  Returns it,
 * owned by the table. */
request_t *inflight_hold(inflight_t *inflight, const wire_stanza_t *iq, int64_t hold_until,
                         int64_t now);

/* The request held longest, or NULL. */
request_t *inflight_oldest_held(const inflight_t *inflight);

/* Starts held REQUEST on RESOURCE, from TOKEN made by JAT (as for
 * inflight_start()), keeping the deadline it had.  Returns false when the
 * token cannot be used: the request is still held, for the caller to end. */
bool inflight_place_held(inflight_t *inflight, request_t *request, const char *token,
                         plugin_t *jat, resource_t *resource);

/* Ends every held request with ERROR (client-proxy stops). */
void inflight_end_held(inflight_t *inflight, const stanza_error_t *error);

/* When REQUEST must end if nothing answers it: its deadline, or for a held
 * one the end of its hold if sooner (monotonic µs). */
int64_t inflight_expiry(const request_t *request);

/* Starts the admitted outbound request IQ (borrowed), a get or set from a
 * resource of the target to ADDRESS, which stands for USER: records it
 * until NOW + request_timeout and sends it to USER from the bare domain,
 * with an id of client-proxy's own.  Returns the request, owned by the
 * table. */
request_t *inflight_start_outbound(inflight_t *inflight, const wire_stanza_t *iq,
                                   const char *address, const char *user, int64_t now);

/* REQUEST was retried because resource NAME (copied) refused it. */
void inflight_note_refusal(request_t *request, const char *name);

/* Sends REQUEST's kept bytes to RESOURCE instead, once. */
void inflight_retry(inflight_t *inflight, request_t *request, resource_t *resource);

/* Why a reply matches no request, for the log. */
typedef enum inflight_match {
    INFLIGHT_MATCHED,
    INFLIGHT_NO_REQUEST,     /* late, repeated, or a forged token */
    INFLIGHT_WRONG_RESOURCE, /* the request went to another resource */
    INFLIGHT_TOKEN_REJECTED, /* its encoding rejects the token */
} inflight_match_t;

/* Finds the request that a reply with TOKEN and ID from resource
 * FROM_RESOURCE answers, and has its encoding check the token.  *REQUEST
 * gets it when INFLIGHT_MATCHED; otherwise *REQUEST may name the request it
 * did not match, for the log. */
inflight_match_t inflight_match_reply(inflight_t *inflight, const char *token, const char *id,
                                      const char *from_resource, request_t **request);

/* The outbound request that an answer with ID from FROM answers, or NULL
 * (none with that id, or FROM is not the user it went to). */
request_t *inflight_match_answer(inflight_t *inflight, const char *id, const char *from);

/* Ends every outbound request with ERROR: the stream is gone, or client-
 * proxy stops.  (Forward requests end with their resources.) */
void inflight_end_outbound(inflight_t *inflight, const stanza_error_t *error);

/* Ends REQUEST with exactly one answer to its sender: REPLY, the answer of
 * the resource or user it went to (forwarded with only its addresses, and
 * for an outbound request its id, rewritten), or ERROR, answered by
 * client-proxy.  Exactly one of them is non-NULL.  Records the outcome on
 * its resource, lets its encoding forget the token, gives back its share of
 * the limits, and frees it. */
void inflight_end(inflight_t *inflight, request_t *request, const wire_stanza_t *reply,
                  const stanza_error_t *error);

/* The request that expires first (inflight_expiry()), or NULL. */
request_t *inflight_earliest(const inflight_t *inflight);

/* How many requests the service asked users. */
size_t inflight_outbound_count(const inflight_t *inflight);

/* How many requests wait for a resource ([proxy] hold). */
size_t inflight_held_count(const inflight_t *inflight);

size_t inflight_count(const inflight_t *inflight);

/* How many requests were admitted since inflight_new(): it changes when
 * requests came and went between two looks at inflight_count(). */
uint64_t inflight_admitted_total(const inflight_t *inflight);

#endif
