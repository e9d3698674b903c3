/* What happens to each stanza: see router.h, and the README's "What the
 * sender gets", which this file follows line by line. */
#include "router.h"

#include <string.h>

#include "addresses.h"
#include "bounces.h"
#include "discovery.h"
#include "health.h"
#include "inflight.h"
#include "jid.h"
#include "log.h"
#include "metrics.h"
#include "roster.h"
#include "service-presence.h"
#include "stanza.h"
#include "stream.h"

/* A get whose resource went offline is retried elsewhere only if this much
 * of its time is left: less would likely end in a timeout anyway. */
#define RETRY_MIN_REMAINING_US (500 * 1000)

struct router {
    char *domain;            /* where users send requests, and answers come from */
    char *instance_domain;   /* where the target's replies and presence come to */
    char *target;            /* bare JID of the implementing client */
    bool retry_get;          /* [proxy] retry_get */
    int64_t hold_us;         /* [proxy] hold */
    router_deadline_fn deadline_changed;
    void *userdata;
    metrics_t *metrics;      /* borrowed, or NULL */

    outbox_t *outbox;
    roster_t *roster;
    health_t *health;
    inflight_t *inflight;
    discovery_t *discovery;
    addresses_t *addresses;
    bounces_t *bounces;
    service_presence_t *presence;

    bool paused;             /* draining before a new stream */
    bool stopping;           /* router_shutdown() was called */
    bool placing_held;       /* in place_held(): it does not start again */
    GString *scratch;        /* where stanzas are written, reused */
    log_limit_t dropped_log; /* lines about stanzas dropped */
    log_limit_t refused_log; /* lines about requests refused for [limits] */
    log_limit_t expired_log; /* lines about requests timed out or held in vain: a
                                hung resource can take thousands along */
};

/* ---- Errors client-proxy answers with ------------------------------------
 * One per row of "What the sender gets". */

static const stanza_error_t no_resource_online = {
    "cancel", "service-unavailable", "no resource of the service is online"};
static const stanza_error_t no_resource_takes_requests = {
    "cancel", "service-unavailable", "no resource of the service takes requests now"};
static const stanza_error_t strategy_declined = {
    "cancel", "service-unavailable", "no resource of the service can take this request"};
static const stanza_error_t resource_went_offline = {
    "cancel", "service-unavailable", "the resource handling this request went offline"};
static const stanza_error_t timed_out = {
    "wait", "remote-server-timeout", "the service did not answer in time"};
static const stanza_error_t stream_lost = {
    "wait", "remote-server-timeout", "the connection to the server was lost"};
static const stanza_error_t outbound_stream_lost = {
    "cancel", "service-unavailable", "the connection to the server was lost"};
static const stanza_error_t too_many_in_flight = {
    "wait", "resource-constraint", "too many requests in flight; retry later"};
static const stanza_error_t too_many_from_sender = {
    "wait", "resource-constraint", "too many of your requests in flight; retry later"};
static const stanza_error_t over_rate = {
    "wait", "policy-violation", "too many requests per second; retry later"};
static const stanza_error_t reconnecting = {
    "wait", "service-unavailable",
    "client-proxy is reconnecting for a new configuration; retry shortly"};
static const stanza_error_t stopping = {
    "cancel", "service-unavailable", "client-proxy is shutting down"};
static const stanza_error_t from_target = {
    "cancel", "feature-not-implemented", "the service's own requests are not handled"};
static const stanza_error_t no_payload = {
    "modify", "bad-request", "an IQ request must carry a payload element"};
static const stanza_error_t no_id = {"modify", "bad-request", "an IQ must have an id"};
static const stanza_error_t bad_type = {
    "modify", "bad-request", "an IQ's type must be get, set, result or error"};
static const stanza_error_t duplicate_id = {
    "modify", "bad-request", "a request with this id is already in flight"};
static const stanza_error_t unencodable = {
    "cancel", "internal-server-error", "the sender's address cannot be translated"};
static const stanza_error_t request_too_large = {
    "modify", "not-acceptable", "the request is larger than client-proxy forwards"};
static const stanza_error_t reply_too_large = {
    "cancel", "not-acceptable", "the service's reply is larger than client-proxy relays"};
static const stanza_error_t hold_expired = {
    "cancel", "service-unavailable", "no resource of the service came online in time"};
static const stanza_error_t no_such_user = {
    "cancel", "service-unavailable", "there is no user at this address"};
static const stanza_error_t unknown_address = {
    "cancel", "item-not-found", "no user has this address, or it has expired"};
static const stanza_error_t message_too_large = {
    "modify", "not-acceptable", "the message is larger than client-proxy forwards"};

/* ---- Small helpers --------------------------------------------------------- */

typedef enum address {
    ADDRESS_OURS,  /* our domain or instance domain, with or without a resource */
    ADDRESS_USER,  /* node@ one of our domains: nobody lives there */
    ADDRESS_OTHER, /* not ours at all: the server misrouted it */
} address_t;

static bool is_our_domain(const router_t *router, const char *jid)
{
    return jid_bare_equal(jid, router->domain) || jid_bare_equal(jid, router->instance_domain);
}

static address_t classify(const router_t *router, const char *to)
{
    if (!to)
        return ADDRESS_OTHER;
    if (is_our_domain(router, to))
        return ADDRESS_OURS;
    const char *at = strchr(to, '@');
    const char *slash = strchr(to, '/');
    if (at && (!slash || at < slash) && is_our_domain(router, at + 1))
        return ADDRESS_USER;
    return ADDRESS_OTHER;
}

/* Answers STANZA at once with ERROR, from FROM; DIRECTION says whether it
 * came from a user or from the service, for the metrics. */
static void answer_from(router_t *router, const char *from, const wire_stanza_t *stanza,
                        const stanza_error_t *error, metrics_direction_t direction)
{
    stanza_write_error(router->scratch, stanza->name, from, stanza->from, stanza->id, error);
    outbox_send_string(router->outbox, router->scratch);
    if (strcmp(stanza->name, "iq") == 0)
        metrics_count_request(router->metrics, direction, error->condition, -1);
    else
        metrics_count_message(router->metrics, direction, error->condition);
}

/* A stanza goes unanswered: counted by REASON (snake_case) and logged at
 * LEVEL, within the budget of such lines. */
static void drop(router_t *router, const char *reason, cp_log_level_t level, const char *fmt,
                 ...) G_GNUC_PRINTF(4, 5);

static void drop(router_t *router, const char *reason, cp_log_level_t level, const char *fmt,
                 ...)
{
    metrics_count_dropped(router->metrics, reason);
    if (level > log_get_level())
        return;
    va_list args;
    va_start(args, fmt);
    g_autofree char *line = g_strdup_vprintf(fmt, args);
    va_end(args);
    const log_field_t fields[] = {{"CLIENT_PROXY_DROPPED", reason}};
    log_limited_fields(&router->dropped_log, level, fields, G_N_ELEMENTS(fields), "%s", line);
}

/* Journal fields for REQUEST: its id, its resource, and its sender's bare
 * JID (the message names the sender anyway: the field lets an operator
 * filter on it).  Fills FIELDS (3) and BARE. */
static size_t request_fields(const request_t *request, log_field_t *fields, char *bare)
{
    jid_split_bare(request->sender, bare, JID_BARE_MAX + 1);
    fields[0] = (log_field_t){"CLIENT_PROXY_REQUEST_ID", request->id};
    fields[1] = (log_field_t){"CLIENT_PROXY_RESOURCE",
                              request->resource ? request->resource->info.name : NULL};
    fields[2] = (log_field_t){"CLIENT_PROXY_SENDER", bare};
    return 3;
}

/* Answers STANZA, which the service sent to a user's ADDRESS, at once with
 * ERROR from that address. */
static void answer_from_address(router_t *router, const char *address,
                                const wire_stanza_t *stanza, const stanza_error_t *error)
{
    char from[CP_JID_MAX + 1];
    jid_join(from, sizeof from, router->domain, address);
    answer_from(router, from, stanza, error, METRICS_OUTBOUND);
}

/* Answers STANZA at once with ERROR, from the bare domain, as every answer
 * to what was sent to the service comes. */
static void answer(router_t *router, const wire_stanza_t *stanza, const stanza_error_t *error)
{
    answer_from(router, router->domain, stanza, error, METRICS_INBOUND);
}

/* True when FROM is a resource of the target that [proxy] resources lets
 * serve: the only senders whose stanzas to a user's address go to that
 * user.  Anyone else's reach the service, so client-proxy is no relay. */
static bool is_service(const router_t *router, const char *from)
{
    const char *name = jid_resource(from);
    return name && *name && jid_bare_equal(from, router->target) &&
           roster_allows(router->roster, name);
}

static void place_held(router_t *router);

/* Who may take a request changed: held requests go to a resource that now
 * can, and subscribed users hear when the service comes or goes. */
static void note_availability(router_t *router)
{
    place_held(router);
    service_presence_set_available(router->presence,
                                   roster_candidate_count(router->roster) > 0);
}

static void notify_deadline(router_t *router, int64_t deadline)
{
    if (router->deadline_changed && deadline >= 0)
        router->deadline_changed(deadline, router->userdata);
}

static void send_presence(router_t *router, const char *type, const char *from, const char *to)
{
    stanza_write_presence(router->scratch, type, from, to);
    outbox_send_string(router->outbox, router->scratch);
}

/* ---- Choosing again -------------------------------------------------------
 * A request kept as bytes is parsed again to be placed: what the strategy
 * sees of it is read from them. */

typedef struct placing {
    router_t *router;
    request_t *request;
    const resource_t *except; /* not this one, or NULL */
    bool sent;
} placing_t;

/* Chooses a resource for the kept request KEPT, but PLACING->except. */
static resource_t *choose_again(placing_t *placing, const wire_stanza_t *kept)
{
    const cp_dispatch_request_t request = {.sender = placing->request->sender,
                                           .type = kept->type,
                                           .payload_ns = kept->payload_ns,
                                           .payload_attributes = kept->payload_attributes};
    return roster_choose(placing->router->roster, &request, placing->except);
}

static void retry_parsed(const wire_stanza_t *kept, void *data)
{
    placing_t *placing = data;
    resource_t *resource = choose_again(placing, kept);
    if (resource) {
        inflight_retry(placing->router->inflight, placing->request, resource);
        placing->sent = true;
    }
}

/* Sends REQUEST to another candidate than its resource, once, if enough of
 * its time is left.  Returns false when it cannot. */
static bool retry_elsewhere(router_t *router, request_t *request)
{
    if (request->retried || !outbox_is_up(router->outbox) ||
        request->deadline - g_get_monotonic_time() < RETRY_MIN_REMAINING_US)
        return false;
    placing_t placing = {router, request, request->resource, false};
    stream_parse_stanzas(request->kept, request->kept_length, retry_parsed, &placing);
    return placing.sent;
}

static void held_parsed(const wire_stanza_t *kept, void *data)
{
    placing_t *placing = data;
    router_t *router = placing->router;
    resource_t *resource = choose_again(placing, kept);
    if (!resource)
        return;
    char token[CP_TOKEN_MAX + 1];
    plugin_t *jat = addresses_issue(router->addresses, placing->request->sender, token);
    if (!jat) {
        inflight_end(router->inflight, placing->request, NULL, &unencodable);
        return;
    }
    if (!inflight_place_held(router->inflight, placing->request, token, jat, resource)) {
        inflight_end(router->inflight, placing->request, NULL, &unencodable);
        return;
    }
    placing->sent = true;
}

/* Starts the held requests, oldest first, while the strategy finds them a
 * resource: one it declines waits on, and so do those behind it (first in,
 * first out).  Never while stopping or with the stream down: the resources
 * are being dropped one by one then, and a strategy may accept what it
 * declined a moment before, on a resource that goes next. */
static void place_held(router_t *router)
{
    if (router->placing_held || router->stopping || !outbox_is_up(router->outbox))
        return;
    router->placing_held = true;
    request_t *held;
    while ((held = inflight_oldest_held(router->inflight)) &&
           roster_candidate_count(router->roster) > 0) {
        placing_t placing = {router, held, NULL, false};
        stream_parse_stanzas(held->kept, held->kept_length, held_parsed, &placing);
        if (!placing.sent && inflight_oldest_held(router->inflight) == held)
            break; /* the strategy declines it: it waits on */
    }
    router->placing_held = false;
}

/* ---- Resources that leave -------------------------------------------------- */

/* RESOURCE leaves: its requests are retried (gets, with MAY_RETRY and
 * [proxy] retry_get: a set may not be idempotent) or answered with ERROR,
 * then it is forgotten. */
static void drop_resource(router_t *router, resource_t *resource, bool may_retry,
                          const stanza_error_t *error)
{
    roster_set_leaving(router->roster, resource);
    while (!g_queue_is_empty(&resource->requests)) {
        request_t *request = resource->requests.head->data;
        if (!(may_retry && router->retry_get && request->get) ||
            !retry_elsewhere(router, request))
            inflight_end(router->inflight, request, NULL, error);
    }
    health_forget(router->health, resource);
    roster_remove(router->roster, resource);
    note_availability(router);
}

static void drop_all_resources(router_t *router, const stanza_error_t *error)
{
    GPtrArray *all = roster_list(router->roster);
    for (guint i = 0; i < all->len; i++)
        drop_resource(router, all->pdata[i], false, error);
    g_ptr_array_free(all, TRUE);
}

/* ---- IQ requests ------------------------------------------------------------ */

/* Admits STANZA from its sender against [limits] (OUTBOUND: a resource's
 * request to a user).  Returns NULL when admitted, or the error to answer
 * with. */
static const stanza_error_t *admit(router_t *router, const wire_stanza_t *stanza, bool outbound,
                                   int64_t now)
{
    const char *id = stanza->id, *from = stanza->from;
    switch (inflight_admit(router->inflight, from, id, outbound, now)) {
    case INFLIGHT_ADMITTED:
        return NULL;
    case INFLIGHT_DUPLICATE:
        return &duplicate_id;
    case INFLIGHT_FULL:
        log_limited(&router->refused_log, CP_LOG_WARNING,
                    "refused request %s from %s: [limits] in_flight reached%s", id, from,
                    outbound ? " (half of it for the service's own requests)" : "");
        return &too_many_in_flight;
    case INFLIGHT_SENDER_FULL:
        log_limited(&router->refused_log, CP_LOG_WARNING,
                    "refused request %s from %s: [limits] in_flight_per_sender reached", id,
                    from);
        return &too_many_from_sender;
    case INFLIGHT_RATE:
        log_limited(&router->refused_log, CP_LOG_WARNING,
                    "refused request %s from %s: over [limits] rate_per_sender", id, from);
        return &over_rate;
    }
    g_assert_not_reached();
}

/* Why no resource could be chosen. */
static const stanza_error_t *no_candidate(const router_t *router)
{
    if (roster_count(router->roster) == 0)
        return &no_resource_online;
    if (roster_candidate_count(router->roster) == 0)
        return &no_resource_takes_requests;
    return &strategy_declined;
}

/* Places the request IQ on a resource.  Returns NULL when it is on its way,
 * or the error to answer it with. */
static const stanza_error_t *place_request(router_t *router, const wire_stanza_t *iq)
{
    if (jid_bare_equal(iq->from, router->target))
        return &from_target;
    if (!iq->has_payload)
        return &no_payload;
    if (!iq->bytes)
        return &request_too_large;
    if (router->stopping)
        return &stopping;
    if (router->paused)
        return &reconnecting;

    int64_t now = g_get_monotonic_time();
    const stanza_error_t *refusal = admit(router, iq, false, now);
    if (refusal)
        return refusal;

    const cp_dispatch_request_t request = {.sender = iq->from,
                                           .type = iq->type,
                                           .payload_ns = iq->payload_ns,
                                           .payload_attributes = iq->payload_attributes};
    if (roster_candidate_count(router->roster) == 0 && router->hold_us > 0) {
        /* [proxy] hold: a resource may come back (a restart); wait for it. */
        request_t *held = inflight_hold(router->inflight, iq, now + router->hold_us, now);
        if (inflight_earliest(router->inflight) == held)
            notify_deadline(router, inflight_expiry(held));
        return NULL;
    }
    resource_t *resource = roster_choose(router->roster, &request, NULL);
    if (!resource) {
        inflight_withdraw(router->inflight, iq->from);
        return no_candidate(router);
    }

    char token[CP_TOKEN_MAX + 1];
    plugin_t *jat = addresses_issue(router->addresses, iq->from, token);
    if (!jat) {
        inflight_withdraw(router->inflight, iq->from);
        return &unencodable;
    }
    request_t *started = inflight_start(router->inflight, iq, token, jat, resource, now);
    if (!started)
        return &unencodable;
    if (inflight_earliest(router->inflight) == started)
        notify_deadline(router, started->deadline);
    return NULL;
}

/* Places the request IQ that a resource sent to a user's ADDRESS.  Returns
 * NULL when it is on its way, or the error to answer the resource with. */
static const stanza_error_t *place_outbound(router_t *router, const wire_stanza_t *iq,
                                            const char *address)
{
    if (!iq->has_payload)
        return &no_payload;
    if (!iq->bytes)
        return &request_too_large;
    if (router->stopping)
        return &stopping;
    if (router->paused)
        return &reconnecting;
    char user[CP_JID_MAX + 1];
    if (!addresses_read(router->addresses, address, user))
        return &unknown_address;
    int64_t now = g_get_monotonic_time();
    const stanza_error_t *refusal = admit(router, iq, true, now);
    if (refusal)
        return refusal;
    request_t *started = inflight_start_outbound(router->inflight, iq, address, user, now);
    if (inflight_earliest(router->inflight) == started)
        notify_deadline(router, started->deadline);
    return NULL;
}

/* ---- IQ replies ------------------------------------------------------------- */

/* RESOURCE (NULL: gone since) failed a request (WHY, for the log): benched
 * after unhealthy_after failures in a row. */
static void note_failure(router_t *router, resource_t *resource, const char *why)
{
    if (resource && health_note_failure(router->health, resource, why)) {
        roster_update_candidacy(router->roster, resource);
        note_availability(router);
        notify_deadline(router, health_next_due(router->health));
    }
}

/* True when the error reply IQ says the resource did not process the
 * request at all: cancel/feature-not-implemented or service-unavailable. */
static bool is_refusal(const wire_stanza_t *iq)
{
    g_autoptr(stanza_element_t) tree = stanza_parse(iq->bytes, iq->length);
    const char *type = NULL;
    const char *condition = tree ? stanza_error_condition(tree, &type) : NULL;
    return condition && g_strcmp0(type, "cancel") == 0 &&
           (strcmp(condition, "feature-not-implemented") == 0 ||
            strcmp(condition, "service-unavailable") == 0);
}

static void route_reply(router_t *router, const wire_stanza_t *iq)
{
    const char *from = iq->from, *to = iq->to, *id = iq->id, *type = iq->type;
    const char *from_resource = jid_resource(from);
    const char *token = jid_resource(to);
    if (!jid_bare_equal(from, router->target) || !from_resource) {
        drop(router, "not_from_the_service", CP_LOG_WARNING,
             "dropped IQ %s from %s: only resources of %s may reply", type, from,
             router->target);
        return;
    }
    if (!token || !*token || !id) {
        drop(router, "no_token_or_id", CP_LOG_WARNING,
             "dropped IQ %s from %s: addressed to %s, without a token or an id", type,
             from, to);
        return;
    }

    request_t *request;
    switch (inflight_match_reply(router->inflight, token, id, from_resource, &request)) {
    case INFLIGHT_MATCHED:
        break;
    case INFLIGHT_NO_REQUEST:
        drop(router, "no_request_in_flight", CP_LOG_INFO,
             "dropped IQ %s id %s from %s: it answers no request in flight (late, "
             "repeated, or a forged token)",
             type, id, from);
        return;
    case INFLIGHT_WRONG_RESOURCE:
        /* After a retry, the first resource's answer (often the server's
         * bounce for it) is expected, not suspicious. */
        drop(router, "wrong_resource", request->retried ? CP_LOG_INFO : CP_LOG_WARNING,
             "dropped IQ %s id %s from %s: the request went to resource %s", type, id,
             from, request->resource->info.name);
        return;
    case INFLIGHT_TOKEN_REJECTED:
        drop(router, "token_rejected", CP_LOG_WARNING,
             "dropped IQ %s id %s from %s: %s rejected its token", type, id, from,
             plugin_file(request->jat));
        return;
    }

    if (!iq->bytes) {
        health_note_answer(request->resource);
        log_warning("reply %s from %s is larger than %d bytes: its sender gets an error", id,
                    from, WIRE_STANZA_MAX);
        inflight_end(router->inflight, request, NULL, &reply_too_large);
        return;
    }
    bool refusal = strcmp(type, "error") == 0 && is_refusal(iq);
    if (refusal && !request->retried) {
        /* It says it did not process the request: another program logged
         * in as the target (a videobridge as Jitsi's focus) may answer so.
         * Once elsewhere, get or set. */
        log_field_t fields[3];
        char bare[JID_BARE_MAX + 1];
        size_t n = request_fields(request, fields, bare);
        log_limited_fields(&router->refused_log, CP_LOG_WARNING, fields, n,
                           "resource %s did not process request %s from %s (it answered that "
                           "it cannot): trying another resource",
                           from, id, request->sender);
        g_autofree char *refused_by = g_strdup(request->resource->info.name);
        if (retry_elsewhere(router, request)) {
            inflight_note_refusal(request, refused_by);
            return;
        }
    }
    /* A refusal counts against a resource's health only when another one
     * then processed the request: a service that answers every sender of
     * an unknown request feature-not-implemented is right to, and no
     * sender may bench its resources that way. */
    if (!refusal && request->refused_by)
        note_failure(router, roster_lookup(router->roster, request->refused_by),
                     "refused a request");
    health_note_answer(request->resource);
    inflight_end(router->inflight, request, iq, NULL);
}

/* A user answers a request a resource sent it (inflight_start_outbound()). */
static void route_answer(router_t *router, const wire_stanza_t *iq)
{
    request_t *request = inflight_match_answer(router->inflight, iq->id, iq->from);
    if (!request) {
        drop(router, "no_request_of_the_service", CP_LOG_INFO,
             "dropped IQ %s id %s from %s: it answers no request of the service in "
             "flight (late, or not from the user asked)",
             iq->type, iq->id, iq->from);
        return;
    }
    if (!iq->bytes) {
        log_warning("answer %s from %s is larger than %d bytes: the service gets an error",
                    iq->id, iq->from, WIRE_STANZA_MAX);
        inflight_end(router->inflight, request, NULL, &reply_too_large);
        return;
    }
    inflight_end(router->inflight, request, iq, NULL);
}

static void handle_ping_reply(router_t *router, const wire_stanza_t *iq)
{
    const char *name = jid_resource(iq->from);
    resource_t *resource = name && jid_bare_equal(iq->from, router->target)
                               ? roster_lookup(router->roster, name)
                               : NULL;
    if (!resource) {
        log_debug("ignored ping reply %s from %s: not a resource of the target", iq->id,
                  iq->from);
        return;
    }
    if (health_note_ping_reply(router->health, resource, iq->id, iq->type)) {
        roster_update_candidacy(router->roster, resource);
        note_availability(router);
    }
}

static void handle_iq(router_t *router, const wire_stanza_t *iq)
{
    const char *type = iq->type;
    bool request = type && (strcmp(type, "get") == 0 || strcmp(type, "set") == 0);
    bool reply = type && (strcmp(type, "result") == 0 || strcmp(type, "error") == 0);

    switch (classify(router, iq->to)) {
    case ADDRESS_OURS:
        break;
    case ADDRESS_USER:
        if (request && iq->id)
            answer_from(router, iq->to, iq, &no_such_user, METRICS_INBOUND);
        else
            drop(router, "answer_to_no_user", CP_LOG_INFO,
                 "dropped IQ %s from %s: addressed to %s, where no user lives",
                 type ? type : "(no type)", iq->from, iq->to);
        return;
    case ADDRESS_OTHER:
        drop(router, "misaddressed", CP_LOG_WARNING,
             "dropped IQ from %s: addressed to %s, not to %s", iq->from,
             iq->to ? iq->to : "nobody", router->domain);
        return;
    }

    const char *address = jid_resource(iq->to);
    bool to_domain = !address || !*address;
    if (reply && iq->id && to_domain && g_str_has_prefix(iq->id, HEALTH_PING_ID_PREFIX)) {
        handle_ping_reply(router, iq);
    } else if (reply && to_domain && discovery_handle_reply(router->discovery, iq)) {
        notify_deadline(router, discovery_next_due(router->discovery));
    } else if (reply && iq->id && to_domain &&
               g_str_has_prefix(iq->id, INFLIGHT_OUTBOUND_ID_PREFIX)) {
        route_answer(router, iq);
    } else if (reply) {
        route_reply(router, iq);
    } else if (!request) {
        answer(router, iq, &bad_type);
    } else if (!iq->id) {
        answer(router, iq, &no_id);
    } else if (!to_domain && is_service(router, iq->from)) {
        /* The service asks a user: answered from the address it wrote to. */
        const stanza_error_t *refusal = place_outbound(router, iq, address);
        if (refusal)
            answer_from_address(router, address, iq, refusal);
    } else {
        const stanza_error_t *refusal = place_request(router, iq);
        if (refusal)
            answer(router, iq, refusal);
    }
}

/* ---- Messages --------------------------------------------------------------- */

/* The type a strategy sees for a message: RFC 6121 §5.2.2 has a message of
 * no type, or of one not understood, read as normal. */
static const char *message_type(const wire_stanza_t *message)
{
    static const char *const types[] = {"chat", "groupchat", "headline", "normal"};
    for (size_t i = 0; message->type && i < G_N_ELEMENTS(types); i++)
        if (strcmp(message->type, types[i]) == 0)
            return types[i];
    return "normal";
}

/* A user writes to the service: the message goes to one resource, chosen
 * as for a request, from the user's address. */
static void forward_message(router_t *router, const wire_stanza_t *message)
{
    if (!message->bytes) {
        answer(router, message, &message_too_large);
        return;
    }
    if (router->stopping || router->paused) {
        answer(router, message, router->stopping ? &stopping : &reconnecting);
        return;
    }
    const cp_dispatch_request_t request = {.sender = message->from,
                                           .type = message_type(message),
                                           .payload_ns = message->payload_ns,
                                           .payload_attributes = message->payload_attributes};
    resource_t *resource = roster_choose(router->roster, &request, NULL);
    if (!resource) {
        answer(router, message, no_candidate(router));
        return;
    }
    char token[CP_TOKEN_MAX + 1];
    plugin_t *jat = addresses_issue(router->addresses, message->from, token);
    if (!jat) {
        answer(router, message, &unencodable);
        return;
    }
    char to[CP_JID_MAX + 1], from[CP_JID_MAX + 1];
    jid_join(to, sizeof to, router->target, resource->info.name);
    jid_join(from, sizeof from, router->instance_domain, token);
    log_debug("message %s from %s -> %s as %s", message->id ? message->id : "(no id)",
              message->from, to, from);
    metrics_count_message(router->metrics, METRICS_INBOUND, "forwarded");
    wire_rewrite(router->scratch, message->bytes, message->length, from, to);
    outbox_send_string(router->outbox, router->scratch);
    plugin_forget(jat, token); /* forwarded: the address stays, unpinned */
}

/* The service writes to a user through the user's ADDRESS: the message goes
 * from the bare domain, unchanged but for its addresses. */
static void send_to_user(router_t *router, const wire_stanza_t *message, const char *address)
{
    char user[CP_JID_MAX + 1];
    if (!addresses_read(router->addresses, address, user)) {
        answer_from_address(router, address, message, &unknown_address);
        return;
    }
    if (!message->bytes) {
        answer_from_address(router, address, message, &message_too_large);
        return;
    }
    log_debug("message %s from %s -> %s", message->id ? message->id : "(no id)", message->from,
              user);
    metrics_count_message(router->metrics, METRICS_OUTBOUND, "forwarded");
    wire_rewrite(router->scratch, message->bytes, message->length, router->domain, user);
    outbox_send_string(router->outbox, router->scratch);
    if (message->id)
        bounces_remember(router->bounces, user, message->id, message->from, address,
                         g_get_monotonic_time());
}

/* A user's server could not deliver a message the service sent: it goes
 * back to the resource that sent it, from the address it wrote to. */
static void route_bounce(router_t *router, const wire_stanza_t *bounce)
{
    g_autofree char *resource = NULL, *address = NULL;
    if (!bounce->id || !bounce->bytes ||
        !bounces_take(router->bounces, bounce->from, bounce->id, g_get_monotonic_time(),
                      &resource, &address)) {
        drop(router, "unmatched_message_error", CP_LOG_INFO,
             "dropped a message error from %s: it answers no message the service sent "
             "(or one too long ago)",
             bounce->from);
        return;
    }
    char from[CP_JID_MAX + 1];
    jid_join(from, sizeof from, router->domain, address);
    wire_rewrite(router->scratch, bounce->bytes, bounce->length, from, resource);
    outbox_send_string(router->outbox, router->scratch);
}

static void handle_message(router_t *router, const wire_stanza_t *message)
{
    bool error = message->type && strcmp(message->type, "error") == 0;
    switch (classify(router, message->to)) {
    case ADDRESS_OURS:
        break;
    case ADDRESS_USER:
        if (!error) /* never answer an error, or two entities can loop */
            answer_from(router, message->to, message, &no_such_user, METRICS_INBOUND);
        return;
    case ADDRESS_OTHER:
        drop(router, "misaddressed", CP_LOG_WARNING,
             "dropped a message from %s: addressed to %s, not to %s", message->from,
             message->to ? message->to : "nobody", router->domain);
        return;
    }

    const char *address = jid_resource(message->to);
    bool to_domain = !address || !*address;
    if (is_service(router, message->from)) {
        if (error)
            drop(router, "bounce_of_a_users_message", CP_LOG_INFO,
                 "dropped a message error from %s: a bounce of a user's message",
                 message->from);
        else if (to_domain)
            drop(router, "service_message_to_the_domain", CP_LOG_INFO,
                 "dropped a message from %s to %s: the service writes to users' "
                 "addresses",
                 message->from, message->to);
        else
            send_to_user(router, message, address);
    } else if (jid_bare_equal(message->from, router->target)) {
        drop(router, "from_a_resource_left_out", CP_LOG_INFO,
             "dropped a message from %s: [proxy] resources keeps it out", message->from);
    } else if (error) {
        route_bounce(router, message);
    } else {
        forward_message(router, message);
    }
}

/* ---- Presence --------------------------------------------------------------- */

static void handle_target_presence(router_t *router, const wire_stanza_t *presence,
                                   const char *addressed)
{
    const char *from = presence->from, *type = presence->type;
    const char *name = jid_resource(from);
    bool availability = !type || strcmp(type, "available") == 0 ||
                        strcmp(type, "unavailable") == 0 || strcmp(type, "error") == 0;
    if (availability && !discovery_by_presence(router->discovery)) {
        log_debug("ignored presence from %s: [proxy] discovery = ping", from);
    } else if (!type || strcmp(type, "available") == 0) {
        if (name && *name) {
            discovery_presence_seen(router->discovery);
            roster_presence_available(router->roster, name, presence);
        }
    } else if (strcmp(type, "unavailable") == 0 || strcmp(type, "error") == 0) {
        resource_t *resource = name ? roster_lookup(router->roster, name) : NULL;
        if (resource) {
            const log_field_t fields[] = {{"CLIENT_PROXY_RESOURCE", name}};
            log_fields(CP_LOG_INFO, fields, G_N_ELEMENTS(fields), "resource %s is offline%s",
                       from, strcmp(type, "error") == 0 ? " (its presence failed)" : "");
            drop_resource(router, resource, true, &resource_went_offline);
        } else if (!name && strcmp(type, "error") == 0) {
            /* Our probe or subscription bounced: that says nothing of the
             * resources online, but we must ask again. */
            log_warning("presence error from %s: asking again later", from);
            discovery_presence_lost(router->discovery, g_get_monotonic_time());
            notify_deadline(router, discovery_next_due(router->discovery));
        }
    } else if (strcmp(type, "subscribe") == 0) {
        send_presence(router, "subscribed", addressed, router->target);
    } else if (strcmp(type, "probe") == 0) {
        send_presence(router, NULL, addressed, from);
    } else if (strcmp(type, "subscribed") == 0) {
        log_info("%s accepted our subscription", router->target);
    } else if (strcmp(type, "unsubscribed") == 0 || strcmp(type, "unsubscribe") == 0) {
        log_warning("%s ended our subscription (%s): asking it to subscribe us again",
                    router->target, type);
        discovery_presence_lost(router->discovery, g_get_monotonic_time());
        notify_deadline(router, discovery_next_due(router->discovery));
    }
    note_availability(router);
}

/* A user's presence to the service: subscriptions and probes are answered
 * here; nothing else is relayed to the resources. */
static void handle_user_presence(router_t *router, const wire_stanza_t *presence)
{
    const char *type = presence->type;
    if (!type || !presence->to || !jid_bare_equal(presence->to, router->domain) ||
        jid_resource(presence->to)) {
        log_debug("ignored presence (%s) from %s: not relayed", type ? type : "available",
                  presence->from);
    } else if (strcmp(type, "subscribe") == 0) {
        service_presence_subscribe(router->presence, presence->from);
    } else if (strcmp(type, "probe") == 0) {
        service_presence_probe(router->presence, presence->from);
    } else if (strcmp(type, "unsubscribe") == 0) {
        service_presence_unsubscribe(router->presence, presence->from);
    } else {
        log_debug("ignored presence (%s) from %s: not relayed", type, presence->from);
    }
}

static void handle_presence(router_t *router, const wire_stanza_t *presence)
{
    if (!jid_bare_equal(presence->from, router->target)) {
        handle_user_presence(router, presence);
        return;
    }
    if (!outbox_is_up(router->outbox)) {
        /* The stream is closing: what it says of the resources is about to
         * be out of date, and the next stream probes again. */
        log_debug("ignored presence from %s: the stream is closing", presence->from);
        return;
    }
    /* Which of our domains it was for: subscriptions are answered from it. */
    const char *addressed = presence->to && jid_bare_equal(presence->to, router->domain)
                                ? router->domain
                                : router->instance_domain;
    handle_target_presence(router, presence, addressed);
}

void router_handle(router_t *router, const wire_stanza_t *stanza)
{
    const char *name = stanza->name;
    if (!stanza->from || !*stanza->from) {
        drop(router, "no_sender", CP_LOG_WARNING, "dropped <%s/> without a sender",
             name);
        return;
    }
    if (strcmp(name, "iq") == 0)
        handle_iq(router, stanza);
    else if (strcmp(name, "presence") == 0)
        handle_presence(router, stanza);
    else if (strcmp(name, "message") == 0)
        handle_message(router, stanza);
    else
        log_debug("ignored <%s/> from %s", name, stanza->from);
}

/* ---- Life cycle ------------------------------------------------------------- */

static void take_settings(router_t *router, const config_t *config)
{
    g_free(router->domain);
    router->domain = g_strdup(config->domain);
    g_free(router->instance_domain);
    router->instance_domain = g_strdup(config->instance_domain);
    g_free(router->target);
    router->target = g_strdup(config->target);
    router->retry_get = config->retry_get;
    router->hold_us = (int64_t)config->hold * G_USEC_PER_SEC;
}

/* ---- Discovery's findings (discovery = ping) ------------------------------ */

static void on_alive(const char *name, void *data)
{
    router_t *router = data;
    if (roster_lookup(router->roster, name))
        return;
    roster_resource_alive(router->roster, name);
    note_availability(router);
}

static void on_gone(const char *name, void *data)
{
    router_t *router = data;
    resource_t *resource = roster_lookup(router->roster, name);
    if (!resource)
        return;
    log_info("resource %s/%s is offline: it does not answer its pings", router->target, name);
    drop_resource(router, resource, true, &resource_went_offline);
}

router_t *router_new(const config_t *config, plugin_t *dispatch, plugin_t *jat,
                     const router_callbacks_t *callbacks)
{
    router_t *router = g_new0(router_t, 1);
    take_settings(router, config);
    router->deadline_changed = callbacks->deadline_changed;
    router->userdata = callbacks->userdata;
    router->metrics = callbacks->metrics;
    router->outbox = outbox_new(callbacks->send, callbacks->userdata);
    router->roster = roster_new(config, dispatch);
    router->health = health_new(config, router->outbox);
    router->inflight = inflight_new(config, router->outbox, router->metrics);
    const discovery_events_t events = {on_alive, on_gone, router};
    router->discovery = discovery_new(config, router->outbox, &events);
    router->addresses = addresses_new(config, jat);
    router->bounces = bounces_new();
    router->presence = service_presence_new(config, router->outbox);
    router->scratch = g_string_sized_new(512);
    return router;
}

void router_free(router_t *router)
{
    if (!router)
        return;
    /* Whatever is still in flight is abandoned: its answers are held, and
     * outbox_free() says how many could not be sent. */
    outbox_down(router->outbox, NULL, 0);
    drop_all_resources(router, &stopping);
    inflight_end_outbound(router->inflight, &stopping);
    inflight_end_held(router->inflight, &stopping);
    inflight_free(router->inflight);
    discovery_free(router->discovery);
    addresses_free(router->addresses);
    bounces_free(router->bounces);
    service_presence_free(router->presence);
    health_free(router->health);
    roster_free(router->roster);
    outbox_free(router->outbox);
    g_string_free(router->scratch, TRUE);
    g_free(router->domain);
    g_free(router->instance_domain);
    g_free(router->target);
    g_free(router);
}

void router_reconfigure(router_t *router, const config_t *config, plugin_t *dispatch,
                        plugin_t *jat)
{
    g_assert(!outbox_is_up(router->outbox) ||
             (g_ascii_strcasecmp(router->target, config->target) == 0 &&
              strcmp(router->domain, config->domain) == 0 &&
              strcmp(router->instance_domain, config->instance_domain) == 0));
    take_settings(router, config);
    roster_reconfigure(router->roster, config, dispatch);
    health_reconfigure(router->health, config);
    inflight_reconfigure(router->inflight, config);
    discovery_reconfigure(router->discovery, config);
    addresses_reconfigure(router->addresses, config, jat);
    service_presence_reconfigure(router->presence, config);
    note_availability(router);
    /* New pings to send, or a retired encoding to release: the owner's
     * timer must know. */
    notify_deadline(router, router_next_deadline(router));
}

void router_send(router_t *router, const char *bytes, size_t length)
{
    outbox_send(router->outbox, bytes, length);
}

void router_pause(router_t *router, bool paused)
{
    router->paused = paused;
}

void router_connected(router_t *router)
{
    outbox_up(router->outbox);
    discovery_connected(router->discovery, g_get_monotonic_time());
    notify_deadline(router, discovery_next_due(router->discovery));
}

/* Keeps STANZA for the next stream unless it is an IQ request: those are a
 * forward to a resource, a ping, or a request to a user, and each is ended
 * as failed right after (drop_all_resources(), inflight_end_outbound()), so
 * sending it later would run what its sender was told had failed. */
static void keep_unless_request(const wire_stanza_t *stanza, void *data)
{
    GString *kept = data;
    if (strcmp(stanza->name, "iq") == 0 &&
        (g_strcmp0(stanza->type, "get") == 0 || g_strcmp0(stanza->type, "set") == 0))
        return;
    if (!stanza->bytes) { /* only a stanza near WIRE_STANZA_MAX that grew */
        log_warning("a %s over %d bytes the stream took but never wrote is lost", stanza->name,
                    WIRE_STANZA_MAX);
        return;
    }
    g_string_append_len(kept, stanza->bytes, (gssize)stanza->length);
}

void router_disconnected(router_t *router, const char *unsent, size_t length)
{
    g_autoptr(GString) kept = g_string_new(NULL);
    if (unsent && length > 0)
        stream_parse_stanzas(unsent, length, keep_unless_request, kept);
    outbox_down(router->outbox, kept->str, kept->len);
    discovery_disconnected(router->discovery);
    drop_all_resources(router, &stream_lost);
    inflight_end_outbound(router->inflight, &outbound_stream_lost);
}

void router_shutdown(router_t *router)
{
    router->stopping = true;
    drop_all_resources(router, &stopping);
    inflight_end_outbound(router->inflight, &stopping);
    inflight_end_held(router->inflight, &stopping);
    send_presence(router, "unavailable", router->instance_domain, router->target);
}

void router_expire(router_t *router, int64_t now)
{
    request_t *request;
    while ((request = inflight_earliest(router->inflight)) && inflight_expiry(request) <= now) {
        resource_t *resource = request->resource;
        if (request->held && request->deadline > now) {
            log_limited(&router->expired_log, CP_LOG_INFO,
                        "request %s from %s held in vain: no resource came online", request->id,
                        request->sender);
            inflight_end(router->inflight, request, NULL, &hold_expired);
            continue;
        }
        log_field_t fields[3];
        char bare[JID_BARE_MAX + 1];
        size_t n = request_fields(request, fields, bare);
        log_limited_fields(&router->expired_log, CP_LOG_INFO, fields, n,
                           "request %s from %s timed out on %s", request->id, request->sender,
                           resource ? resource->info.name
                           : request->user ? request->user
                                           : "no resource");
        inflight_end(router->inflight, request, NULL, &timed_out);
        note_failure(router, resource, "timed out");
    }
    health_ping_due(router->health, now);
    discovery_due(router->discovery, now);
    addresses_expire(router->addresses, now);
}

static int64_t earlier(int64_t a, int64_t b)
{
    return a < 0 ? b : b < 0 ? a : MIN(a, b);
}

int64_t router_next_deadline(router_t *router)
{
    request_t *earliest = inflight_earliest(router->inflight);
    int64_t next = earliest ? inflight_expiry(earliest) : -1;
    next = earlier(next, health_next_due(router->health));
    next = earlier(next, addresses_next_expiry(router->addresses));
    return earlier(next, discovery_next_due(router->discovery));
}

size_t router_pending_count(const router_t *router)
{
    return inflight_count(router->inflight);
}

int64_t router_oldest_request_age(const router_t *router, int64_t now)
{
    const request_t *earliest = inflight_earliest(router->inflight);
    return earliest ? MAX(0, now - earliest->arrived_at) : 0;
}

uint64_t router_admitted_total(const router_t *router)
{
    return inflight_admitted_total(router->inflight);
}

void router_snapshot(router_t *router, metrics_snapshot_t *snapshot, GArray *storage)
{
    *snapshot = (metrics_snapshot_t){0};
    g_array_set_size(storage, 0);
    g_autoptr(GPtrArray) all = roster_list(router->roster);
    for (guint i = 0; i < all->len; i++) {
        const resource_t *resource = all->pdata[i];
        const metrics_resource_t entry = {resource->info.name, resource->info.in_flight};
        g_array_append_val(storage, entry);
        /* Each resource in one state, so that they add up: draining first
         * (its own choice, or an admin's), then benched, then left out by
         * [proxy] resources; online means it may take a request. */
        if (roster_is_draining(resource))
            snapshot->draining++;
        else if (health_is_benched(resource))
            snapshot->benched++;
        else if (resource->candidate_slot >= 0)
            snapshot->online++;
        else
            snapshot->left_out++;
    }
    snapshot->resources = (const metrics_resource_t *)storage->data;
    snapshot->resource_count = storage->len;
    snapshot->held = inflight_held_count(router->inflight);
    size_t outbound = inflight_outbound_count(router->inflight);
    snapshot->in_flight[METRICS_OUTBOUND] = outbound;
    snapshot->in_flight[METRICS_INBOUND] = inflight_count(router->inflight) - outbound;
}

GPtrArray *router_resources(router_t *router)
{
    return roster_list(router->roster);
}

bool router_drain(router_t *router, const char *name, bool drained)
{
    resource_t *resource = roster_lookup(router->roster, name);
    if (!resource)
        return false;
    roster_set_drained(router->roster, resource, drained);
    note_availability(router);
    return true;
}

bool router_serving(const router_t *router)
{
    return roster_candidate_count(router->roster) > 0;
}

size_t router_held_count(const router_t *router)
{
    return inflight_held_count(router->inflight);
}

size_t router_resource_count(const router_t *router)
{
    return roster_count(router->roster);
}
