/* Requests in flight, from admission to their one reply: see inflight.h. */
#include "inflight.h"

#include <string.h>

#include "jid.h"
#include "log.h"

struct inflight {
    outbox_t *outbox;        /* borrowed */
    metrics_t *metrics;      /* borrowed, or NULL */
    char *domain;            /* answers come from it */
    char *instance_domain;   /* requests go out from it */
    char *target;
    int request_timeout;     /* seconds */
    overload_t *limits;
    unsigned max_outbound;   /* half of [limits] in_flight */
    unsigned outbound_serial;
    uint64_t admitted_total;
    /* Every request is in by_sender and by_deadline, and in one of the two
     * indexes its answer finds it by: a resource's reply names a forward
     * request by token and id, a user's answer an outbound one by our id.
     * A duplicate is found by sender and id, whatever the encoding (with a
     * random token, the same sender and id make another token). */
    GHashTable *by_sender;   /* request_t, keyed on (sender, id); owning */
    GHashTable *by_token;    /* forward request_t, keyed on (token, id) */
    GHashTable *by_wire_id;  /* outbound request_t, keyed on wire_id */
    GQueue outbound;         /* outbound request_t, oldest first */
    GQueue held;             /* held request_t, in arrival order */
    GQueue by_deadline;      /* request_t, earliest inflight_expiry() first */
    GString *scratch;        /* where stanzas are written, reused */
    log_limit_t retried_log; /* a resource that goes takes many requests along */
};

static guint token_hash(gconstpointer key)
{
    const request_t *request = key;
    return g_str_hash(request->token) * 31u + g_str_hash(request->id);
}

static gboolean token_equal(gconstpointer a, gconstpointer b)
{
    const request_t *x = a, *y = b;
    return strcmp(x->token, y->token) == 0 && strcmp(x->id, y->id) == 0;
}

static guint sender_hash(gconstpointer key)
{
    const request_t *request = key;
    return g_str_hash(request->sender) * 31u + g_str_hash(request->id);
}

static gboolean sender_equal(gconstpointer a, gconstpointer b)
{
    const request_t *x = a, *y = b;
    return strcmp(x->sender, y->sender) == 0 && strcmp(x->id, y->id) == 0;
}

inflight_t *inflight_new(const config_t *config, outbox_t *outbox, metrics_t *metrics)
{
    inflight_t *inflight = g_new0(inflight_t, 1);
    inflight->outbox = outbox;
    inflight->metrics = metrics;
    inflight->limits = overload_new(config);
    /* The request and its strings are one allocation. */
    inflight->by_sender = g_hash_table_new_full(sender_hash, sender_equal, g_free, NULL);
    inflight->by_token = g_hash_table_new(token_hash, token_equal);
    inflight->by_wire_id = g_hash_table_new(g_str_hash, g_str_equal);
    g_queue_init(&inflight->outbound);
    g_queue_init(&inflight->held);
    g_queue_init(&inflight->by_deadline);
    inflight->scratch = g_string_sized_new(1024);
    inflight_reconfigure(inflight, config);
    return inflight;
}

void inflight_free(inflight_t *inflight)
{
    if (!inflight)
        return;
    g_assert(g_hash_table_size(inflight->by_sender) == 0);
    g_hash_table_destroy(inflight->by_token);
    g_hash_table_destroy(inflight->by_wire_id);
    g_hash_table_destroy(inflight->by_sender);
    overload_free(inflight->limits);
    g_string_free(inflight->scratch, TRUE);
    g_free(inflight->domain);
    g_free(inflight->instance_domain);
    g_free(inflight->target);
    g_free(inflight);
}

void inflight_reconfigure(inflight_t *inflight, const config_t *config)
{
    g_free(inflight->domain);
    inflight->domain = g_strdup(config->domain);
    g_free(inflight->instance_domain);
    inflight->instance_domain = g_strdup(config->instance_domain);
    g_free(inflight->target);
    inflight->target = g_strdup(config->target);
    inflight->request_timeout = config->request_timeout;
    inflight->max_outbound = (unsigned)MAX(1, config->in_flight / 2);
    overload_reconfigure(inflight->limits, config);
}

inflight_admission_t inflight_admit(inflight_t *inflight, const char *sender, const char *id,
                                    bool outbound, int64_t now)
{
    request_t key = {.sender = (char *)sender, .id = (char *)id};
    if (g_hash_table_contains(inflight->by_sender, &key))
        return INFLIGHT_DUPLICATE;
    if (outbound && inflight->outbound.length >= inflight->max_outbound)
        return INFLIGHT_FULL;
    switch (overload_admit(inflight->limits, sender, now)) {
    case OVERLOAD_ADMITTED:
        inflight->admitted_total++;
        return INFLIGHT_ADMITTED;
    case OVERLOAD_FULL:
        return INFLIGHT_FULL;
    case OVERLOAD_SENDER_FULL:
        return INFLIGHT_SENDER_FULL;
    case OVERLOAD_RATE:
        return INFLIGHT_RATE;
    }
    g_assert_not_reached();
}

void inflight_withdraw(inflight_t *inflight, const char *sender)
{
    overload_release(inflight->limits, sender);
}

/* Copies TEXT (may be NULL) to *NEXT and moves *NEXT past it. */
static char *place(char **next, const char *text, size_t length)
{
    if (!text)
        return NULL;
    char *copy = memcpy(*next, text, length);
    copy[length] = '\0';
    *next += length + 1;
    return copy;
}

static size_t size_of(const char *text)
{
    return text ? strlen(text) + 1 : 0;
}

/* Makes a request and its strings in one allocation: one per request.
 * TOKEN is NULL for a held request (it has none yet: a token this long is
 * reserved), USER and WIRE_ID are for outbound requests (NULL otherwise),
 * KEPT for a forward one (NULL otherwise). */
static request_t *request_new(const char *token, const char *id, const char *sender,
                              const char *user, const char *wire_id, const char *kept,
                              size_t kept_length, int64_t now, int64_t deadline)
{
    size_t token_size = token ? size_of(token) : CP_TOKEN_MAX + 1;
    size_t strings = token_size + size_of(id) + size_of(sender) + size_of(user) +
                     size_of(wire_id) + (kept ? kept_length + 1 : 0);
    /* Only the record is cleared: its strings are written over, and a
     * request's kept bytes may be as large as a stanza may be. */
    request_t *request = g_malloc(sizeof *request + strings);
    *request = (request_t){0};
    char *next = (char *)(request + 1);
    request->token = next;
    if (token)
        memcpy(request->token, token, token_size);
    else
        request->token[0] = '\0';
    next += token_size;
    request->id = place(&next, id, strlen(id));
    request->sender = place(&next, sender, strlen(sender));
    request->user = place(&next, user, user ? strlen(user) : 0);
    request->wire_id = wire_id ? place(&next, wire_id, strlen(wire_id)) : request->id;
    request->kept = place(&next, kept, kept_length);
    request->kept_length = kept ? kept_length : 0;
    request->arrived_at = now;
    request->dispatched_at = now;
    request->deadline = deadline;
    request->resource_link.data = request;
    request->deadline_link.data = request;
    return request;
}

static void attach_to_resource(request_t *request, resource_t *resource)
{
    request->resource = resource;
    g_queue_push_tail_link(&resource->requests, &request->resource_link);
    resource->info.in_flight++;
}

static void detach_from_resource(request_t *request)
{
    g_queue_unlink(&request->resource->requests, &request->resource_link);
    request->resource->info.in_flight--;
}

int64_t inflight_expiry(const request_t *request)
{
    return request->held ? MIN(request->hold_until, request->deadline) : request->deadline;
}

/* Expiries mostly arrive in order, so the walk from the tail is short;
 * only a shortened timeout, or a hold, makes it go further. */
static void insert_by_deadline(inflight_t *inflight, request_t *request)
{
    int64_t expiry = inflight_expiry(request);
    GList *after = inflight->by_deadline.tail;
    while (after && inflight_expiry(after->data) > expiry)
        after = after->prev;
    if (after)
        g_queue_insert_after_link(&inflight->by_deadline, after, &request->deadline_link);
    else
        g_queue_push_head_link(&inflight->by_deadline, &request->deadline_link);
}

/* Sends BYTES (a request as received) to RESOURCE from our TOKEN. */
static void forward(inflight_t *inflight, const char *bytes, size_t length, const char *token,
                    const resource_t *resource)
{
    char to[CP_JID_MAX + 1], translated[CP_JID_MAX + 1];
    jid_join(to, sizeof to, inflight->target, resource->info.name);
    jid_join(translated, sizeof translated, inflight->instance_domain, token);
    wire_rewrite(inflight->scratch, bytes, length, translated, to);
    outbox_send_string(inflight->outbox, inflight->scratch);
}

/* The sender and id were admitted as unique, and one address stands for
 * one sender, so no request in flight has this token and id; a plugin that
 * broke that would have one reply routed twice.  Returns false, with the
 * pin given back, when the token is taken. */
static bool token_is_free(inflight_t *inflight, const char *token, const char *id, plugin_t *jat)
{
    request_t key = {.token = (char *)token, .id = (char *)id};
    if (!g_hash_table_contains(inflight->by_token, &key))
        return true;
    log_error("%s gave token %s to two senders: refusing the second request", plugin_file(jat),
              token);
    plugin_forget(jat, token);
    return false;
}

/* REQUEST goes to RESOURCE from TOKEN, made by JAT: found by its reply from
 * now on. */
static void dispatch_to(inflight_t *inflight, request_t *request, const char *token,
                        plugin_t *jat, resource_t *resource)
{
    g_strlcpy(request->token, token, CP_TOKEN_MAX + 1);
    request->jat = plugin_ref(jat);
    g_hash_table_add(inflight->by_token, request);
    attach_to_resource(request, resource);
    log_debug("request %s from %s -> %s/%s as %s/%s", request->id, request->sender,
              inflight->target, resource->info.name, inflight->instance_domain, token);
    forward(inflight, request->kept, request->kept_length, token, resource);
}

request_t *inflight_start(inflight_t *inflight, const wire_stanza_t *iq, const char *token,
                          plugin_t *jat, resource_t *resource, int64_t now)
{
    if (!token_is_free(inflight, token, iq->id, jat)) {
        inflight_withdraw(inflight, iq->from);
        return NULL;
    }
    request_t *request =
        request_new(token, iq->id, iq->from, NULL, NULL, iq->bytes, iq->length, now,
                    now + (int64_t)inflight->request_timeout * G_USEC_PER_SEC);
    request->get = strcmp(iq->type, "get") == 0;
    g_hash_table_add(inflight->by_sender, request);
    insert_by_deadline(inflight, request);
    dispatch_to(inflight, request, token, jat, resource);
    return request;
}

request_t *inflight_hold(inflight_t *inflight, const wire_stanza_t *iq, int64_t hold_until,
                         int64_t now)
{
    request_t *request =
        request_new(NULL, iq->id, iq->from, NULL, NULL, iq->bytes, iq->length, now,
                    now + (int64_t)inflight->request_timeout * G_USEC_PER_SEC);
    request->held = true;
    request->hold_until = hold_until;
    request->get = strcmp(iq->type, "get") == 0;
    g_hash_table_add(inflight->by_sender, request);
    g_queue_push_tail_link(&inflight->held, &request->resource_link);
    insert_by_deadline(inflight, request);
    log_debug("request %s from %s held: no resource can take it", request->id,
              request->sender);
    return request;
}

request_t *inflight_oldest_held(const inflight_t *inflight)
{
    return inflight->held.head ? inflight->held.head->data : NULL;
}

size_t inflight_outbound_count(const inflight_t *inflight)
{
    return inflight->outbound.length;
}

size_t inflight_held_count(const inflight_t *inflight)
{
    return inflight->held.length;
}

bool inflight_place_held(inflight_t *inflight, request_t *request, const char *token,
                         plugin_t *jat, resource_t *resource)
{
    if (!token_is_free(inflight, token, request->id, jat))
        return false;
    g_queue_unlink(&inflight->held, &request->resource_link);
    request->held = false;
    /* Its expiry is its deadline now, no longer the end of its hold. */
    g_queue_unlink(&inflight->by_deadline, &request->deadline_link);
    insert_by_deadline(inflight, request);
    request->dispatched_at = g_get_monotonic_time();
    dispatch_to(inflight, request, token, jat, resource);
    return true;
}

request_t *inflight_start_outbound(inflight_t *inflight, const wire_stanza_t *iq,
                                   const char *address, const char *user, int64_t now)
{
    char wire_id[sizeof INFLIGHT_OUTBOUND_ID_PREFIX + 24];
    g_snprintf(wire_id, sizeof wire_id, INFLIGHT_OUTBOUND_ID_PREFIX "%u-%08x",
               ++inflight->outbound_serial, g_random_int());
    request_t *request =
        request_new(address, iq->id, iq->from, user, wire_id, NULL, 0, now,
                    now + (int64_t)inflight->request_timeout * G_USEC_PER_SEC);
    g_hash_table_add(inflight->by_sender, request);
    g_hash_table_insert(inflight->by_wire_id, request->wire_id, request);
    g_queue_push_tail_link(&inflight->outbound, &request->resource_link);
    insert_by_deadline(inflight, request);

    log_debug("request %s from %s -> %s as %s", request->id, request->sender, user, wire_id);
    wire_rewrite_with_id(inflight->scratch, iq->bytes, iq->length, inflight->domain, user,
                         wire_id);
    outbox_send_string(inflight->outbox, inflight->scratch);
    return request;
}

request_t *inflight_match_answer(inflight_t *inflight, const char *id, const char *from)
{
    request_t *request = g_hash_table_lookup(inflight->by_wire_id, id);
    if (!request)
        return NULL;
    /* The user's server answers from the address we sent to, perhaps with
     * its bare part in another case. */
    return jid_equal(from, request->user) ? request : NULL;
}

void inflight_end_outbound(inflight_t *inflight, const stanza_error_t *error)
{
    while (!g_queue_is_empty(&inflight->outbound))
        inflight_end(inflight, inflight->outbound.head->data, NULL, error);
}

void inflight_end_held(inflight_t *inflight, const stanza_error_t *error)
{
    while (!g_queue_is_empty(&inflight->held))
        inflight_end(inflight, inflight->held.head->data, NULL, error);
}

void inflight_note_refusal(request_t *request, const char *name)
{
    g_free(request->refused_by);
    request->refused_by = g_strdup(name);
}

void inflight_retry(inflight_t *inflight, request_t *request, resource_t *resource)
{
    log_limited(&inflight->retried_log, CP_LOG_INFO,
                "request %s from %s retried on %s/%s instead of %s/%s", request->id,
                request->sender, inflight->target, resource->info.name, inflight->target,
                request->resource->info.name);
    detach_from_resource(request);
    attach_to_resource(request, resource);
    request->retried = true;
    request->dispatched_at = g_get_monotonic_time();
    forward(inflight, request->kept, request->kept_length, request->token, resource);
}

inflight_match_t inflight_match_reply(inflight_t *inflight, const char *token, const char *id,
                                      const char *from_resource, request_t **found)
{
    request_t key = {.token = (char *)token, .id = (char *)id};
    request_t *request = g_hash_table_lookup(inflight->by_token, &key);
    *found = request;
    if (!request)
        return INFLIGHT_NO_REQUEST;
    if (strcmp(from_resource, request->resource->info.name) != 0)
        return INFLIGHT_WRONG_RESOURCE;
    /* The token named a request in flight, byte for byte; its own encoding
     * still judges it (plugin.h), even if a reload replaced it since. */
    char sender[CP_JID_MAX + 1];
    int status = plugin_decode(request->jat, token, sender, sizeof sender);
    if (status != CP_OK || strcmp(sender, request->sender) != 0)
        return INFLIGHT_TOKEN_REJECTED;
    return INFLIGHT_MATCHED;
}

void inflight_end(inflight_t *inflight, request_t *request, const wire_stanza_t *reply,
                  const stanza_error_t *error)
{
    g_assert((reply == NULL) != (error == NULL));
    /* Answers to a user come from the bare domain; answers to a resource
     * from the address it wrote to. */
    char outbound_from[CP_JID_MAX + 1];
    const char *from = inflight->domain;
    if (request->user) {
        jid_join(outbound_from, sizeof outbound_from, inflight->domain, request->token);
        from = outbound_from;
    }
    bool failed;
    int64_t elapsed = -1;
    int64_t now = g_get_monotonic_time();
    int64_t since_arrival = now - request->arrived_at;
    metrics_count_request(inflight->metrics,
                          request->user ? METRICS_OUTBOUND : METRICS_INBOUND,
                          reply ? (strcmp(reply->type, "error") == 0 ? "error" : "result")
                                : error->condition,
                          (double)since_arrival / G_USEC_PER_SEC);
    if (reply) {
        log_debug("reply %s from %s -> %s", request->id, reply->from, request->sender);
        wire_rewrite_with_id(inflight->scratch, reply->bytes, reply->length, from,
                             request->sender, request->user ? request->id : NULL);
        failed = reply->type && strcmp(reply->type, "error") == 0;
        elapsed = now - request->dispatched_at;
    } else {
        stanza_write_error(inflight->scratch, "iq", from, request->sender, request->id, error);
        failed = true;
    }
    outbox_send_string(inflight->outbox, inflight->scratch);

    overload_release(inflight->limits, request->sender);
    g_queue_unlink(&inflight->by_deadline, &request->deadline_link);
    if (request->user) {
        g_queue_unlink(&inflight->outbound, &request->resource_link);
        g_hash_table_remove(inflight->by_wire_id, request->wire_id);
    } else if (request->held) {
        g_queue_unlink(&inflight->held, &request->resource_link); /* never sent anywhere */
    } else {
        roster_record_outcome(request->resource, failed, elapsed);
        plugin_forget(request->jat, request->token);
        plugin_unref(request->jat); /* the last request of a replaced encoding releases it */
        detach_from_resource(request);
        g_hash_table_remove(inflight->by_token, request);
    }
    g_free(request->refused_by);
    g_hash_table_remove(inflight->by_sender, request); /* frees it */
}

request_t *inflight_earliest(const inflight_t *inflight)
{
    return inflight->by_deadline.head ? inflight->by_deadline.head->data : NULL;
}

size_t inflight_count(const inflight_t *inflight)
{
    return g_hash_table_size(inflight->by_sender);
}

uint64_t inflight_admitted_total(const inflight_t *inflight)
{
    return inflight->admitted_total;
}
