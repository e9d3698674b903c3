/* Requests in flight: the one owner of every IQ request from its admission
 * to its one reply.
 *
 * A request is admitted against [limits] (inflight_admit), started once a
 * resource is chosen (inflight_start: its token is encoded here, and the
 * request holds a reference to the encoding instance that made it, so its
 * reply decodes even after a reload replaced that encoding), and ended by
 * inflight_end(), whatever the outcome: the resource's reply, or an error
 * client-proxy answers itself (timeout, the resource went offline, the
 * stream dropped, a reload, shutdown).  inflight_end() is the only way a
 * request leaves the table, and it always sends exactly one answer. */
#ifndef CP_CORE_INFLIGHT_H
#define CP_CORE_INFLIGHT_H

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

#include "config.h"
#include "outbox.h"
#include "overload.h"
#include "plugin-loader.h"
#include "roster.h"
#include "stanza.h"
#include "wire.h"

typedef struct request {
    char *token;          /* the resourcepart it was forwarded from */
    char *id;             /* the sender's id, kept unchanged */
    char *sender;         /* full JID that asked */
    resource_t *resource; /* where it went: borrowed from the roster */
    plugin_t *jat;        /* a reference: the encoding that made the token */
    char *retry_request;  /* a get's bytes as received, kept for one retry,
                             or NULL */
    size_t retry_length;
    bool retried;         /* already moved to another resource once */
    int64_t sent_at;      /* monotonic µs */
    int64_t deadline;     /* monotonic µs */
    GList resource_link;  /* in resource->requests */
    GList deadline_link;  /* in the table's deadline order */
} request_t;

typedef enum inflight_start_status {
    INFLIGHT_STARTED,
    INFLIGHT_UNENCODABLE, /* the encoding cannot write this sender */
} inflight_start_status_t;

typedef struct inflight inflight_t;

/* Answers go through OUTBOX (borrowed; it outlives the table), from
 * CONFIG's domain.  CONFIG is read during the call only. */
inflight_t *inflight_new(const config_t *config, outbox_t *outbox);
/* The table must be empty: every request is answered before it goes. */
void inflight_free(inflight_t *inflight);

/* Takes CONFIG's domain, timeouts and [limits] for new requests. */
void inflight_reconfigure(inflight_t *inflight, const config_t *config);

/* Whether SENDER may place a request with ID now (monotonic µs): a request
 * with the same sender and id is in flight, or a bound
 * or rate of [limits] says no.  When admitted, the request counts against
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
                                    int64_t now);
void inflight_withdraw(inflight_t *inflight, const char *sender);

/* Starts the admitted request IQ (borrowed) on RESOURCE: encodes its sender
 * with JAT, records it until NOW + request_timeout, keeps its bytes for one
 * retry when KEEP_FOR_RETRY, and forwards it, from INSTANCE_DOMAIN/token to
 * TARGET/resource.  On INFLIGHT_UNENCODABLE the admission is withdrawn and
 * nothing was sent: the caller answers.  *STARTED (may be NULL) gets the
 * request, owned by the table. */
inflight_start_status_t inflight_start(inflight_t *inflight, const wire_stanza_t *iq,
                                       plugin_t *jat, resource_t *resource, bool keep_for_retry,
                                       int64_t now, request_t **started);

/* Sends REQUEST's kept bytes (a get) to RESOURCE instead, once. */
void inflight_retry(inflight_t *inflight, request_t *request, resource_t *resource,
                    const wire_stanza_t *kept);

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

/* Ends REQUEST with exactly one answer to its sender: REPLY, the resource's
 * own (forwarded with only its addresses rewritten), or ERROR, answered by
 * client-proxy.  Exactly one of them is non-NULL.  Records the outcome on
 * its resource, lets its encoding forget the token, gives back its share of
 * the limits, and frees it. */
void inflight_end(inflight_t *inflight, request_t *request, const wire_stanza_t *reply,
                  const stanza_error_t *error);

/* The request with the earliest deadline, or NULL. */
request_t *inflight_earliest(const inflight_t *inflight);

size_t inflight_count(const inflight_t *inflight);

#endif
