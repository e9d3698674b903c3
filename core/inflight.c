/* Requests in flight, from admission to their one reply: see inflight.h. */
#include "inflight.h"

#include <string.h>

#include "jid.h"
#include "log.h"

/* Tokens stay valid a little past the request's deadline, so that the wall
 * clock (tokens) and the monotonic clock (deadlines) cannot disagree about
 * a reply that arrives just in time. */
#define TOKEN_GRACE_SECONDS 5

struct inflight {
    outbox_t *outbox;        /* borrowed */
    char *domain;            /* answers come from it */
    char *instance_domain;   /* requests go out from it */
    char *target;
    int request_timeout;     /* seconds */
    overload_t *limits;
    /* Two indexes of the same requests: a reply names its request by token
     * and id; a duplicate is found by sender and id, whatever the encoding
     * (with a random token, the same sender and id make another token). */
    GHashTable *by_token;    /* request_t, keyed on (token, id); owning */
    GHashTable *by_sender;   /* request_t, keyed on (sender, id) */
    GQueue by_deadline;      /* request_t, earliest first */
    GString *scratch;        /* where stanzas are written, reused */
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

inflight_t *inflight_new(const config_t *config, outbox_t *outbox)
{
    inflight_t *inflight = g_new0(inflight_t, 1);
    inflight->outbox = outbox;
    inflight->limits = overload_new(config);
    /* The request and its strings are one allocation. */
    inflight->by_token = g_hash_table_new_full(token_hash, token_equal, g_free, NULL);
    inflight->by_sender = g_hash_table_new(sender_hash, sender_equal);
    g_queue_init(&inflight->by_deadline);
    inflight->scratch = g_string_sized_new(1024);
    inflight_reconfigure(inflight, config);
    return inflight;
}

void inflight_free(inflight_t *inflight)
{
    if (!inflight)
        return;
    g_assert(g_hash_table_size(inflight->by_token) == 0);
    g_hash_table_destroy(inflight->by_token);
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
    overload_reconfigure(inflight->limits, config);
}

inflight_admission_t inflight_admit(inflight_t *inflight, const char *sender, const char *id,
                                    int64_t now)
{
    request_t key = {.sender = (char *)sender, .id = (char *)id};
    if (g_hash_table_contains(inflight->by_sender, &key))
        return INFLIGHT_DUPLICATE;
    switch (overload_admit(inflight->limits, sender, now)) {
    case OVERLOAD_ADMITTED:
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

/* Makes a request and its strings in one allocation: one per request. */
static request_t *request_new(const char *token, const char *id, const char *sender,
                              const char *retry_request, size_t retry_length)
{
    size_t token_size = strlen(token) + 1, id_size = strlen(id) + 1;
    size_t sender_size = strlen(sender) + 1;
    size_t retry_size = retry_request ? retry_length + 1 : 0;
    request_t *request =
        g_malloc0(sizeof *request + token_size + id_size + sender_size + retry_size);
    request->token = memcpy((char *)(request + 1), token, token_size);
    request->id = memcpy(request->token + token_size, id, id_size);
    request->sender = memcpy(request->id + id_size, sender, sender_size);
    if (retry_request) {
        request->retry_request =
            memcpy(request->sender + sender_size, retry_request, retry_length);
        request->retry_request[retry_length] = '\0';
        request->retry_length = retry_length;
    }
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

/* Deadlines mostly arrive in order, so the walk from the tail is short;
 * only a shortened timeout makes it go further. */
static void insert_by_deadline(inflight_t *inflight, request_t *request)
{
    GList *after = inflight->by_deadline.tail;
    while (after && ((request_t *)after->data)->deadline > request->deadline)
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

inflight_start_status_t inflight_start(inflight_t *inflight, const wire_stanza_t *iq,
                                       plugin_t *jat, resource_t *resource, bool keep_for_retry,
                                       int64_t now, request_t **started)
{
    char token[CP_TOKEN_MAX + 1];
    int64_t expires = g_get_real_time() / G_USEC_PER_SEC + inflight->request_timeout +
                      TOKEN_GRACE_SECONDS;
    int status = plugin_encode(jat, iq->from, expires, token, sizeof token);
    size_t token_length = status == CP_OK ? strnlen(token, sizeof token) : 0;
    if (token_length == 0 || token_length > CP_TOKEN_MAX) {
        if (status == CP_OK) { /* encoded, but unusable: let it go like any other */
            token[CP_TOKEN_MAX] = '\0';
            plugin_forget(jat, token);
        }
        log_warning("%s cannot encode %s (status %d)", plugin_file(jat), iq->from, status);
        inflight_withdraw(inflight, iq->from);
        return INFLIGHT_UNENCODABLE;
    }

    request_t *request = request_new(token, iq->id, iq->from, keep_for_retry ? iq->bytes : NULL,
                                     iq->length);
    /* Two live requests cannot share a token and an id: the sender and id
     * were admitted as unique, and an encoding gives two senders two
     * tokens.  A plugin that broke that would route one reply twice. */
    if (g_hash_table_contains(inflight->by_token, request)) {
        log_error("%s made token %s twice: refusing the second request", plugin_file(jat),
                  token);
        g_free(request);
        plugin_forget(jat, token);
        inflight_withdraw(inflight, iq->from);
        return INFLIGHT_UNENCODABLE;
    }
    request->jat = plugin_ref(jat);
    request->sent_at = now;
    request->deadline = now + (int64_t)inflight->request_timeout * G_USEC_PER_SEC;
    g_hash_table_add(inflight->by_token, request);
    g_hash_table_add(inflight->by_sender, request);
    attach_to_resource(request, resource);
    insert_by_deadline(inflight, request);

    log_debug("request %s from %s -> %s/%s as %s/%s", request->id, request->sender,
              inflight->target, resource->info.name, inflight->instance_domain, token);
    forward(inflight, iq->bytes, iq->length, token, resource);
    if (started)
        *started = request;
    return INFLIGHT_STARTED;
}

void inflight_retry(inflight_t *inflight, request_t *request, resource_t *resource,
                    const wire_stanza_t *kept)
{
    log_info("request %s from %s retried on %s/%s: %s/%s went offline", request->id,
             request->sender, inflight->target, resource->info.name, inflight->target,
             request->resource->info.name);
    detach_from_resource(request);
    attach_to_resource(request, resource);
    request->retried = true;
    forward(inflight, kept->bytes, kept->length, request->token, resource);
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
    bool failed;
    int64_t elapsed = -1;
    if (reply) {
        log_debug("reply %s from %s -> %s", request->id, reply->from, request->sender);
        wire_rewrite(inflight->scratch, reply->bytes, reply->length, inflight->domain,
                     request->sender);
        failed = reply->type && strcmp(reply->type, "error") == 0;
        elapsed = g_get_monotonic_time() - request->sent_at;
    } else {
        stanza_write_error(inflight->scratch, "iq", inflight->domain, request->sender,
                           request->id, error);
        failed = true;
    }
    outbox_send_string(inflight->outbox, inflight->scratch);

    roster_record_outcome(request->resource, failed, elapsed);
    plugin_forget(request->jat, request->token);
    plugin_unref(request->jat); /* the last request of a replaced encoding releases it */
    overload_release(inflight->limits, request->sender);
    detach_from_resource(request);
    g_queue_unlink(&inflight->by_deadline, &request->deadline_link);
    g_hash_table_remove(inflight->by_sender, request);
    g_hash_table_remove(inflight->by_token, request); /* frees it */
}

request_t *inflight_earliest(const inflight_t *inflight)
{
    return inflight->by_deadline.head ? inflight->by_deadline.head->data : NULL;
}

size_t inflight_count(const inflight_t *inflight)
{
    return g_hash_table_size(inflight->by_token);
}
