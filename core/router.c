#include "router.h"

#include <stdio.h>
#include <string.h>

#include "jid.h"
#include "log.h"
#include "overload.h"
#include "pending.h"
#include "resources.h"
#include "stream.h"

#define STANZA_ERROR_NS "urn:ietf:params:xml:ns:xmpp-stanzas"

/* Tokens stay valid a little past the request's deadline, so that the wall
 * clock (tokens) and the monotonic clock (deadlines) cannot disagree about
 * a reply that arrives just in time. */
#define TOKEN_GRACE_SECONDS 5

/* A get whose resource went offline is retried elsewhere only if this much
 * of its time is left: less would likely end in a timeout anyway. */
#define RETRY_MIN_REMAINING_US (500 * 1000)

/* Ids of the XEP-0199 pings that test a benched resource. */
#define PING_ID_PREFIX "cp-health-"
#define PING_NS "urn:xmpp:ping"

struct router {
    xmpp_ctx_t *ctx;
    char *domain;            /* where users send requests, and answers come from */
    char *instance_domain;   /* where the target's replies and presence come to */
    char *target;            /* bare JID of the implementing client */
    int request_timeout;     /* seconds */
    char **resource_filter;  /* [proxy] resources, or NULL */
    bool retry_get;          /* [proxy] retry_get */
    int unhealthy_after;     /* [proxy] unhealthy_after; 0: never bench */
    unsigned ping_serial;

    plugin_t *dispatch;
    const cp_dispatch_ops_t *dispatch_ops;
    plugin_t *jat;
    const cp_jat_ops_t *jat_ops;
    router_callbacks_t callbacks;

    resource_set_t *resources;
    GPtrArray *candidates;   /* resources that may take new requests, for dispatch */
    pending_table_t *pending;
    overload_t *overload;
    GPtrArray *held;         /* answers made while the stream was down (GBytes), sent
                                once it is up */
    GString *scratch;        /* where rewritten stanzas are written, reused */
    bool connected;
    bool paused;             /* draining before a new stream */
};

/* ---- Building and sending stanzas --------------------------------------- */

static void emit_bytes(router_t *router, const char *bytes, size_t length)
{
    if (router->connected)
        router->callbacks.send(bytes, length, router->callbacks.userdata);
    else
        g_ptr_array_add(router->held, g_bytes_new(bytes, length));
}

/* Sends a stanza the router built.  These are the rare ones (errors,
 * presence, pings): what is forwarded is rewritten, never serialised. */
static void emit(router_t *router, xmpp_stanza_t *stanza)
{
    char *text;
    size_t length;
    if (xmpp_stanza_to_text(stanza, &text, &length) != XMPP_EOK) {
        log_error("out of memory: could not send a <%s/>", xmpp_stanza_get_name(stanza));
        return;
    }
    emit_bytes(router, text, length);
    xmpp_free(router->ctx, text);
}

/* Sends the stanza BYTES (LENGTH) with new addresses FROM and TO. */
static void emit_rewritten(router_t *router, const char *bytes, size_t length, const char *from,
                           const char *to)
{
    g_string_truncate(router->scratch, 0);
    wire_rewrite(router->scratch, bytes, length, from, to);
    emit_bytes(router, router->scratch->str, router->scratch->len);
}

static xmpp_stanza_t *new_element(xmpp_ctx_t *ctx, const char *name, const char *ns)
{
    xmpp_stanza_t *element = xmpp_stanza_new(ctx);
    xmpp_stanza_set_name(element, name);
    if (ns)
        xmpp_stanza_set_ns(element, ns);
    return element;
}

/* Sends a stanza error (RFC 6120 §8.3) as a NAME ("iq" or "message") from
 * our domain to TO.  ID may be NULL. */
static void send_error(router_t *router, const char *name, const char *to, const char *id,
                       const char *type, const char *condition, const char *text)
{
    xmpp_stanza_t *stanza = new_element(router->ctx, name, NULL);
    xmpp_stanza_set_type(stanza, "error");
    if (id)
        xmpp_stanza_set_id(stanza, id);
    xmpp_stanza_set_from(stanza, router->domain);
    xmpp_stanza_set_to(stanza, to);

    xmpp_stanza_t *error = new_element(router->ctx, "error", NULL);
    xmpp_stanza_set_attribute(error, "type", type);
    xmpp_stanza_add_child_ex(error, new_element(router->ctx, condition, STANZA_ERROR_NS), 0);
    if (text) {
        xmpp_stanza_t *text_element = new_element(router->ctx, "text", STANZA_ERROR_NS);
        xmpp_stanza_t *body = xmpp_stanza_new(router->ctx);
        xmpp_stanza_set_text(body, text);
        xmpp_stanza_add_child_ex(text_element, body, 0);
        xmpp_stanza_add_child_ex(error, text_element, 0);
    }
    xmpp_stanza_add_child_ex(stanza, error, 0);
    emit(router, stanza);
    xmpp_stanza_release(stanza);
}

/* Sends presence of TYPE (NULL: available) from FROM, one of our domains,
 * to TO.  Our own presence to the target goes from the instance's domain,
 * so that ejabberd, which picks at random among the instances that share
 * a domain, delivers the target's presence to every instance (README,
 * "Several instances on one domain"). */
static void send_presence(router_t *router, const char *type, const char *from, const char *to)
{
    xmpp_stanza_t *presence = new_element(router->ctx, "presence", NULL);
    if (type)
        xmpp_stanza_set_type(presence, type);
    xmpp_stanza_set_from(presence, from);
    xmpp_stanza_set_to(presence, to);
    emit(router, presence);
    xmpp_stanza_release(presence);
}

/* ---- Requests in flight -------------------------------------------------- */

/* Every token encode() made is forgotten exactly once, whatever happens to
 * its request, so that stateful encodings never leak. */
static void forget_token(plugin_t *jat, const char *token)
{
    const cp_jat_ops_t *ops = plugin_ops(jat);
    if (CP_HAS_MEMBER(ops, cp_jat_ops_t, forget) && ops->forget)
        ops->forget(plugin_state(jat), token);
}

/* Ends ENTRY: updates its resource's record and lets the encoding forget
 * the token.  FAILED and ELAPSED_US as for resources_record_outcome(). */
static void finish(router_t *router, pending_t *entry, bool failed, int64_t elapsed_us)
{
    plugin_t *jat = entry->jat;
    resources_record_outcome(entry->resource, failed, elapsed_us);
    forget_token(jat, entry->token);
    overload_release(router->overload, entry->sender);
    pending_remove(router->pending, entry);
    plugin_unload(jat); /* the last request of a replaced encoding releases it */
}

/* Answers ENTRY's sender with an error and ends it. */
static void fail(router_t *router, pending_t *entry, const char *type, const char *condition,
                 const char *text)
{
    send_error(router, "iq", entry->sender, entry->id, type, condition, text);
    finish(router, entry, true, -1);
}

/* Tells the caller that something is due at DEADLINE (monotonic µs). */
static void notify_deadline(router_t *router, int64_t deadline)
{
    if (router->callbacks.deadline_changed)
        router->callbacks.deadline_changed(deadline, router->callbacks.userdata);
}

/* ---- Resources ----------------------------------------------------------- */

/* Draining: a resource that says it is busy or away keeps answering what it
 * has, but gets nothing new. */
static bool is_draining(const resource_t *resource)
{
    return strcmp(resource->info.show, "dnd") == 0 || strcmp(resource->info.show, "xa") == 0;
}

/* Rebuilds the candidates after a presence change, so that placing a
 * request does not filter every resource again. */
static void refresh_candidates(router_t *router)
{
    size_t n;
    const cp_resource_t *const *all = resources_all(router->resources, &n);
    g_ptr_array_set_size(router->candidates, 0);
    for (size_t i = 0; i < n; i++) {
        resource_t *resource = (resource_t *)all[i];
        if (!is_draining(resource) && !resource->unhealthy &&
            config_resource_allowed(router->resource_filter, resource->info.name))
            g_ptr_array_add(router->candidates, resource);
    }
}

/* Asks the strategy to choose among the candidates (there is at least one)
 * for a request from SENDER.  Returns NULL when it declines or errs. */
static resource_t *choose_resource(router_t *router, const char *sender, const char *type,
                                   const char *payload_ns)
{
    cp_dispatch_request_t request = {.sender = sender, .type = type, .payload_ns = payload_ns};
    size_t n = router->candidates->len;
    const cp_resource_t *const *candidates = (const cp_resource_t *const *)router->candidates->pdata;
    int chosen = router->dispatch_ops->select(plugin_state(router->dispatch), &request,
                                              candidates, n);
    if (chosen >= 0 && (size_t)chosen < n)
        return (resource_t *)candidates[chosen];
    if (chosen != CP_EDECLINE)
        log_error("%s returned %d for %zu candidates", plugin_file(router->dispatch), chosen, n);
    return NULL;
}

/* Sends the request BYTES to RESOURCE, from our domain's TOKEN. */
static void send_to_resource(router_t *router, const char *bytes, size_t length,
                             const char *token, const resource_t *resource)
{
    char to[CP_JID_MAX + 1], translated[CP_JID_MAX + 1];
    jid_join(to, sizeof to, router->target, resource->info.name);
    jid_join(translated, sizeof translated, router->instance_domain, token);
    emit_rewritten(router, bytes, length, translated, to);
}

typedef struct retry {
    router_t *router;
    pending_t *entry;
    bool sent;
} retry_t;

/* The kept request, parsed again: it goes to another resource if the
 * strategy finds one. */
static void retry_parsed(const wire_stanza_t *request, void *data)
{
    retry_t *retry = data;
    router_t *router = retry->router;
    pending_t *entry = retry->entry;
    resource_t *resource = choose_resource(router, entry->sender, "get", request->payload_ns);
    if (!resource)
        return;
    log_info("request %s from %s retried on %s/%s: %s/%s went offline", entry->id,
             entry->sender, router->target, resource->info.name, router->target,
             entry->resource->info.name);
    pending_move(router->pending, entry, resource);
    entry->retried = true;
    send_to_resource(router, request->bytes, request->length, entry->token, resource);
    retry->sent = true;
}

/* Sends ENTRY, a get whose resource is going, to another candidate, once,
 * if enough of its time is left.  Returns false when it cannot. */
static bool retry_elsewhere(router_t *router, pending_t *entry)
{
    if (!entry->retry_request || entry->retried || !router->connected ||
        router->candidates->len == 0 ||
        entry->deadline - g_get_monotonic_time() < RETRY_MIN_REMAINING_US)
        return false;
    retry_t retry = {router, entry, false};
    stream_parse_stanzas(entry->retry_request, strlen(entry->retry_request), retry_parsed, &retry);
    return retry.sent;
}

/* Fails what RESOURCE has in flight (or, with MAY_RETRY, moves the gets it
 * may), tells the dispatch plugin, and forgets the resource. */
static void drop_resource(router_t *router, resource_t *resource, bool may_retry,
                          const char *type, const char *condition, const char *text)
{
    g_ptr_array_remove_fast(router->candidates, resource);
    while (!g_queue_is_empty(&resource->pending)) {
        pending_t *entry = resource->pending.head->data;
        if (!may_retry || !retry_elsewhere(router, entry))
            fail(router, entry, type, condition, text);
    }
    if (CP_HAS_MEMBER(router->dispatch_ops, cp_dispatch_ops_t, resource_offline) &&
        router->dispatch_ops->resource_offline)
        router->dispatch_ops->resource_offline(plugin_state(router->dispatch), &resource->info);
    resources_remove(router->resources, resource);
    refresh_candidates(router);
}

static void drop_all_resources(router_t *router, const char *type, const char *condition,
                               const char *text)
{
    size_t n;
    const cp_resource_t *const *all;
    while ((all = resources_all(router->resources, &n)) && n > 0)
        drop_resource(router, (resource_t *)all[n - 1], false, type, condition, text);
}

/* Returns the text of NAME's child of PRESENCE (may be NULL) as a new
 * string, or NULL. */
static char *child_text(xmpp_stanza_t *presence, const char *name)
{
    xmpp_stanza_t *child = presence ? xmpp_stanza_get_child_by_name(presence, name) : NULL;
    return child ? xmpp_stanza_get_text(child) : NULL;
}

/* PRESENCE is the tree of an available presence, or NULL if it could not
 * be read: then the resource is available with priority 0. */
static void update_resource(router_t *router, xmpp_stanza_t *presence, const char *name)
{
    char *show_text = child_text(presence, "show");
    char *priority_text = child_text(presence, "priority");
    static const char *const shows[] = {"chat", "away", "xa", "dnd", NULL};
    const char *show = show_text && g_strv_contains(shows, show_text) ? show_text : "";
    gint64 priority = 0;
    if (priority_text)
        g_ascii_string_to_signed(g_strstrip(priority_text), 10, -128, 127, &priority, NULL);

    resource_t *before = resources_lookup(router->resources, name);
    bool was_draining = before && is_draining(before);
    bool added;
    resource_t *resource = resources_update(router->resources, name, show, (int)priority, &added);
    if (added) {
        log_info("resource %s/%s is online", router->target, name);
        if (!config_resource_allowed(router->resource_filter, name))
            log_info("resource %s/%s does not match [proxy] resources: it gets no requests",
                     router->target, name);
        if (CP_HAS_MEMBER(router->dispatch_ops, cp_dispatch_ops_t, resource_online) &&
            router->dispatch_ops->resource_online)
            router->dispatch_ops->resource_online(plugin_state(router->dispatch),
                                                  &resource->info);
    }
    if (is_draining(resource) != was_draining)
        log_info("resource %s/%s %s (show: %s)", router->target, name,
                 was_draining ? "takes requests again" : "is draining: no new requests",
                 *show ? show : "available");
    refresh_candidates(router);
    xmpp_free(router->ctx, show_text);
    xmpp_free(router->ctx, priority_text);
}

static void handle_presence(router_t *router, const wire_stanza_t *presence)
{
    const char *from = presence->from, *type = presence->type;
    /* Which of our domains it was for: subscriptions are answered from it. */
    const char *addressed = presence->to && jid_bare_equal(presence->to, router->domain)
                                ? router->domain
                                : router->instance_domain;
    if (!jid_bare_equal(from, router->target)) {
        log_debug("ignored presence (%s) from %s: not the target", type ? type : "available",
                  from);
        return;
    }

    const char *name = jid_resource(from);
    if (!type || strcmp(type, "available") == 0) {
        if (name && *name) {
            /* Only show and priority are read: presence is rare enough to
             * be parsed into a tree. */
            xmpp_stanza_t *tree = wire_stanza_tree(router->ctx, presence);
            update_resource(router, tree, name);
            if (tree)
                xmpp_stanza_release(tree);
        }
    } else if (strcmp(type, "unavailable") == 0) {
        resource_t *resource = name ? resources_lookup(router->resources, name) : NULL;
        if (resource) {
            log_info("resource %s is offline", from);
            drop_resource(router, resource, true, "cancel", "service-unavailable",
                          "the resource handling this request went offline");
        }
    } else if (strcmp(type, "error") == 0) {
        log_warning("presence error from %s: forgetting all of its resources", from);
        drop_all_resources(router, "cancel", "service-unavailable",
                           "the service's presence failed");
    } else if (strcmp(type, "subscribe") == 0) {
        send_presence(router, "subscribed", addressed, router->target);
    } else if (strcmp(type, "probe") == 0) {
        send_presence(router, NULL, addressed, from);
    } else if (strcmp(type, "subscribed") == 0) {
        log_info("%s accepted our subscription", router->target);
    } else if (strcmp(type, "unsubscribed") == 0 || strcmp(type, "unsubscribe") == 0) {
        log_warning("%s ended our subscription (%s): no requests can be placed until it "
                    "subscribes us again",
                    router->target, type);
    }
}

/* ---- Health --------------------------------------------------------------
 * A resource that stays online but stops answering would swallow every
 * request sent to it until its timeout.  After unhealthy_after timeouts in a
 * row it is benched: no new requests, and a XEP-0199 ping from the component
 * every request_timeout until it answers one. */

static void send_ping(router_t *router, resource_t *resource)
{
    g_free(resource->ping_id);
    resource->ping_id = g_strdup_printf(PING_ID_PREFIX "%u", ++router->ping_serial);
    resource->ping_due = g_get_monotonic_time() + (int64_t)router->request_timeout * G_USEC_PER_SEC;

    char to[CP_JID_MAX + 1];
    jid_join(to, sizeof to, router->target, resource->info.name);
    xmpp_stanza_t *iq = new_element(router->ctx, "iq", NULL);
    xmpp_stanza_set_type(iq, "get");
    xmpp_stanza_set_id(iq, resource->ping_id);
    xmpp_stanza_set_from(iq, router->instance_domain);
    xmpp_stanza_set_to(iq, to);
    xmpp_stanza_add_child_ex(iq, new_element(router->ctx, "ping", PING_NS), 0);
    emit(router, iq);
    xmpp_stanza_release(iq);
    notify_deadline(router, resource->ping_due);
}

static void note_timeout(router_t *router, resource_t *resource)
{
    resource->consecutive_timeouts++;
    if (router->unhealthy_after == 0 || resource->unhealthy ||
        resource->consecutive_timeouts < (unsigned)router->unhealthy_after)
        return;
    log_warning("resource %s/%s timed out %u times in a row: no new requests until it answers "
                "a ping",
                router->target, resource->info.name, resource->consecutive_timeouts);
    resource->unhealthy = true;
    refresh_candidates(router);
    send_ping(router, resource);
}

static void handle_ping_reply(router_t *router, const char *from, const char *id,
                              const char *type)
{
    const char *name = jid_resource(from);
    resource_t *resource = name && jid_bare_equal(from, router->target)
                               ? resources_lookup(router->resources, name)
                               : NULL;
    if (!resource || !resource->ping_id || strcmp(resource->ping_id, id) != 0) {
        log_debug("ignored ping reply %s from %s: no such ping outstanding", id, from);
        return;
    }
    if (strcmp(type, "result") != 0) {
        log_info("resource %s answered its ping with an error: still benched", from);
        return;
    }
    g_clear_pointer(&resource->ping_id, g_free);
    resource->unhealthy = false;
    resource->consecutive_timeouts = 0;
    refresh_candidates(router);
    log_info("resource %s answered a ping: it takes requests again", from);
}

/* Pings again the benched resources whose last ping went unanswered. */
static void ping_benched(router_t *router, int64_t now)
{
    size_t n;
    const cp_resource_t *const *all = resources_all(router->resources, &n);
    for (size_t i = 0; i < n; i++) {
        resource_t *resource = (resource_t *)all[i];
        if (resource->unhealthy && resource->ping_due <= now && router->connected)
            send_ping(router, resource);
    }
}

/* ---- IQ ------------------------------------------------------------------ */

/* Chooses a resource, encodes the sender and sends IQ on its way.  Returns
 * false after answering the sender with an error. */
static bool place_request(router_t *router, const wire_stanza_t *iq)
{
    const char *from = iq->from, *id = iq->id, *type = iq->type;
    if (router->candidates->len == 0) {
        send_error(router, "iq", from, id, "cancel", "service-unavailable",
                   resources_count(router->resources) == 0
                       ? "no resource of the service is online"
                       : "no resource of the service takes requests now");
        return false;
    }
    resource_t *resource = choose_resource(router, from, type, iq->payload_ns);
    if (!resource) {
        send_error(router, "iq", from, id, "cancel", "service-unavailable",
                   "no resource of the service can take this request");
        return false;
    }

    char token[CP_TOKEN_MAX + 1];
    int64_t expires = g_get_real_time() / G_USEC_PER_SEC + router->request_timeout +
                      TOKEN_GRACE_SECONDS;
    int status = router->jat_ops->encode(plugin_state(router->jat), from, expires, token,
                                         sizeof token);
    size_t token_length = status == CP_OK ? strnlen(token, sizeof token) : 0;
    if (token_length == 0 || token_length > CP_TOKEN_MAX) {
        if (status == CP_OK) { /* encoded, but unusable: let it go like any other */
            token[CP_TOKEN_MAX] = '\0';
            forget_token(router->jat, token);
        }
        log_warning("%s cannot encode %s (status %d)", plugin_file(router->jat), from, status);
        send_error(router, "iq", from, id, "cancel", "internal-server-error",
                   "the sender's address cannot be translated");
        return false;
    }

    int64_t now = g_get_monotonic_time();
    int64_t deadline = now + (int64_t)router->request_timeout * G_USEC_PER_SEC;
    /* A get may be retried elsewhere once; a set may not be idempotent. */
    bool keep_for_retry = router->retry_get && strcmp(type, "get") == 0;
    pending_t *entry = pending_add(router->pending, token, id, from,
                                   keep_for_retry ? iq->bytes : NULL, iq->length, resource, now,
                                   deadline);
    if (!entry) {
        forget_token(router->jat, token);
        send_error(router, "iq", from, id, "modify", "bad-request",
                   "a request with this id is already in flight");
        return false;
    }
    entry->jat = plugin_ref(router->jat);

    log_debug("request %s from %s -> %s/%s as %s/%s", id, from, router->target,
              resource->info.name, router->instance_domain, token);
    send_to_resource(router, iq->bytes, iq->length, token, resource);
    if (pending_earliest(router->pending) == entry)
        notify_deadline(router, entry->deadline);
    return true;
}

static void forward_request(router_t *router, const wire_stanza_t *iq)
{
    const char *from = iq->from, *id = iq->id;
    if (!iq->has_payload) {
        send_error(router, "iq", from, id, "modify", "bad-request",
                   "an IQ request must carry a payload element");
        return;
    }
    if (!iq->bytes) {
        send_error(router, "iq", from, id, "modify", "not-acceptable",
                   "the request is larger than client-proxy forwards");
        return;
    }
    if (router->paused) {
        send_error(router, "iq", from, id, "wait", "service-unavailable",
                   "client-proxy is reconnecting for a new configuration; retry shortly");
        return;
    }

    switch (overload_admit(router->overload, from, g_get_monotonic_time())) {
    case OVERLOAD_ADMITTED:
        break;
    case OVERLOAD_FULL:
        send_error(router, "iq", from, id, "wait", "resource-constraint",
                   "too many requests in flight; retry later");
        return;
    case OVERLOAD_SENDER_FULL:
        send_error(router, "iq", from, id, "wait", "resource-constraint",
                   "too many of your requests in flight; retry later");
        return;
    case OVERLOAD_RATE:
        send_error(router, "iq", from, id, "wait", "policy-violation",
                   "too many requests per second; retry later");
        return;
    }
    if (!place_request(router, iq))
        overload_release(router->overload, from);
}

static void route_reply(router_t *router, const wire_stanza_t *iq)
{
    const char *from = iq->from, *to = iq->to, *id = iq->id, *type = iq->type;
    const char *token = jid_resource(to);
    if (!jid_bare_equal(from, router->target) || !jid_resource(from)) {
        log_warning("dropped IQ %s from %s: only resources of %s may reply", type, from,
                    router->target);
        return;
    }
    if (!token || !*token || !id) {
        log_warning("dropped IQ %s from %s: addressed to %s, without a token or an id", type,
                    from, to);
        return;
    }

    /* The token and id must name a request in flight: a forged or altered
     * token names none.  Its own encoding then checks the token, which a
     * reload may have replaced for new requests since. */
    pending_t *entry = pending_lookup(router->pending, token, id);
    if (!entry) {
        log_info("dropped IQ %s id %s from %s: it answers no request in flight (late, "
                 "repeated, or a forged token)",
                 type, id, from);
        return;
    }
    if (strcmp(jid_resource(from), entry->resource->info.name) != 0) {
        log_warning("dropped IQ %s id %s from %s: the request went to resource %s", type, id,
                    from, entry->resource->info.name);
        return;
    }
    const cp_jat_ops_t *jat_ops = plugin_ops(entry->jat);
    char sender[CP_JID_MAX + 1];
    int status = jat_ops->decode(plugin_state(entry->jat), token, sender, sizeof sender);
    if (status != CP_OK || strcmp(sender, entry->sender) != 0) {
        log_warning("dropped IQ %s id %s from %s: %s rejected its token (status %d)", type, id,
                    from, plugin_file(entry->jat), status);
        return;
    }

    entry->resource->consecutive_timeouts = 0;
    if (!iq->bytes) {
        log_warning("reply %s from %s is larger than %d bytes: its sender gets an error", id,
                    from, WIRE_STANZA_MAX);
        fail(router, entry, "cancel", "not-acceptable",
             "the service's reply is larger than client-proxy relays");
        return;
    }
    log_debug("reply %s from %s -> %s", id, from, entry->sender);
    emit_rewritten(router, iq->bytes, iq->length, router->domain, entry->sender);
    finish(router, entry, strcmp(type, "error") == 0, g_get_monotonic_time() - entry->sent_at);
}

static void handle_iq(router_t *router, const wire_stanza_t *iq)
{
    const char *from = iq->from, *to = iq->to, *id = iq->id, *type = iq->type;
    if (!to || !(jid_bare_equal(to, router->domain) || jid_bare_equal(to, router->instance_domain))) {
        log_warning("dropped IQ from %s: addressed to %s, not to %s", from, to ? to : "nobody",
                    router->domain);
        return;
    }

    bool request = type && (strcmp(type, "get") == 0 || strcmp(type, "set") == 0);
    bool reply = type && (strcmp(type, "result") == 0 || strcmp(type, "error") == 0);
    if (reply && id && !jid_resource(to) && g_str_has_prefix(id, PING_ID_PREFIX)) {
        handle_ping_reply(router, from, id, type);
    } else if (reply) {
        route_reply(router, iq);
    } else if (!request) {
        send_error(router, "iq", from, id, "modify", "bad-request",
                   "an IQ's type must be get, set, result or error");
    } else if (!id) {
        send_error(router, "iq", from, NULL, "modify", "bad-request", "an IQ must have an id");
    } else if (jid_bare_equal(from, router->target)) {
        send_error(router, "iq", from, id, "cancel", "feature-not-implemented",
                   "the service's own requests are not handled");
    } else {
        forward_request(router, iq);
    }
}

static void handle_message(router_t *router, const wire_stanza_t *message)
{
    if (message->type && strcmp(message->type, "error") == 0)
        return; /* never answer an error, or two entities can loop */
    send_error(router, "message", message->from, message->id, "cancel",
               "feature-not-implemented", "messages are not handled");
}

void router_handle(router_t *router, const wire_stanza_t *stanza)
{
    const char *name = stanza->name;
    const char *from = stanza->from;
    if (!from || !*from) {
        log_warning("dropped <%s/> without a sender", name);
        return;
    }
    if (strcmp(name, "iq") == 0)
        handle_iq(router, stanza);
    else if (strcmp(name, "presence") == 0)
        handle_presence(router, stanza);
    else if (strcmp(name, "message") == 0)
        handle_message(router, stanza);
    else
        log_debug("ignored <%s/> from %s", name, from);
}

/* ---- Life cycle ---------------------------------------------------------- */

router_t *router_new(xmpp_ctx_t *ctx, const config_t *config, plugin_t *dispatch, plugin_t *jat,
                     const router_callbacks_t *callbacks)
{
    router_t *router = g_new0(router_t, 1);
    router->ctx = ctx;
    router->domain = g_strdup(config->domain);
    router->instance_domain = g_strdup(config->instance_domain);
    router->target = g_strdup(config->target);
    router->request_timeout = config->request_timeout;
    router->resource_filter = g_strdupv(config->resources);
    router->retry_get = config->retry_get;
    router->unhealthy_after = config->unhealthy_after;
    router->overload = overload_new(config);
    router->dispatch = plugin_ref(dispatch);
    router->dispatch_ops = plugin_ops(dispatch);
    router->jat = plugin_ref(jat);
    router->jat_ops = plugin_ops(jat);
    router->callbacks = *callbacks;
    router->resources = resources_new();
    router->candidates = g_ptr_array_new();
    router->pending = pending_new();
    router->held = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    router->scratch = g_string_sized_new(1024);
    return router;
}

void router_free(router_t *router)
{
    if (!router)
        return;
    /* Whatever is still in flight is abandoned: answers are held, not sent. */
    router->connected = false;
    drop_all_resources(router, "cancel", "service-unavailable", "client-proxy stopped");
    g_ptr_array_free(router->held, TRUE);
    g_string_free(router->scratch, TRUE);
    plugin_unload(router->dispatch);
    plugin_unload(router->jat);
    pending_free(router->pending);
    overload_free(router->overload);
    g_ptr_array_free(router->candidates, TRUE);
    resources_free(router->resources);
    g_strfreev(router->resource_filter);
    g_free(router->domain);
    g_free(router->instance_domain);
    g_free(router->target);
    g_free(router);
}

void router_reconfigure(router_t *router, const config_t *config, plugin_t *dispatch,
                       plugin_t *jat)
{
    plugin_t *old_dispatch = router->dispatch, *old_jat = router->jat;
    router->dispatch = plugin_ref(dispatch);
    router->dispatch_ops = plugin_ops(dispatch);
    router->jat = plugin_ref(jat);
    router->jat_ops = plugin_ops(jat);
    router->request_timeout = config->request_timeout;
    g_strfreev(router->resource_filter);
    router->resource_filter = g_strdupv(config->resources);
    router->retry_get = config->retry_get;
    router->unhealthy_after = config->unhealthy_after;
    overload_reconfigure(router->overload, config);

    /* The new strategy learns the resources that are online already. */
    size_t n;
    const cp_resource_t *const *all = resources_all(router->resources, &n);
    if (CP_HAS_MEMBER(router->dispatch_ops, cp_dispatch_ops_t, resource_online) &&
        router->dispatch_ops->resource_online)
        for (size_t i = 0; i < n; i++)
            router->dispatch_ops->resource_online(plugin_state(dispatch), all[i]);
    refresh_candidates(router);

    /* Requests in flight hold their own references to the old encoding. */
    plugin_unload(old_dispatch);
    plugin_unload(old_jat);
}

void router_pause(router_t *router, bool paused)
{
    router->paused = paused;
}

void router_connected(router_t *router)
{
    router->connected = true;
    for (guint i = 0; i < router->held->len; i++) {
        gsize length;
        const char *bytes = g_bytes_get_data(router->held->pdata[i], &length);
        router->callbacks.send(bytes, length, router->callbacks.userdata);
    }
    g_ptr_array_set_size(router->held, 0);

    /* The probe first: Prosody cancels a pending subscription that a probe
     * follows.  Once subscribed, the server sends nothing by itself after a
     * reconnect, so the probe is what brings the resources back. */
    send_presence(router, "probe", router->instance_domain, router->target);
    send_presence(router, "subscribe", router->instance_domain, router->target);
    send_presence(router, NULL, router->instance_domain, router->target);
}

void router_disconnected(router_t *router)
{
    router->connected = false;
    drop_all_resources(router, "wait", "remote-server-timeout",
                       "the connection to the server was lost");
}

void router_shutdown(router_t *router)
{
    drop_all_resources(router, "cancel", "service-unavailable", "client-proxy is shutting down");
    send_presence(router, "unavailable", router->instance_domain, router->target);
}

void router_expire(router_t *router, int64_t now)
{
    pending_t *entry;
    while ((entry = pending_earliest(router->pending)) && entry->deadline <= now) {
        resource_t *resource = entry->resource;
        log_info("request %s from %s timed out on %s/%s", entry->id, entry->sender,
                 router->target, resource->info.name);
        fail(router, entry, "wait", "remote-server-timeout", "the service did not answer in time");
        note_timeout(router, resource);
    }
    ping_benched(router, now);
}

int64_t router_next_deadline(router_t *router)
{
    pending_t *earliest = pending_earliest(router->pending);
    int64_t next = earliest ? earliest->deadline : -1;
    size_t n;
    const cp_resource_t *const *all = resources_all(router->resources, &n);
    for (size_t i = 0; i < n; i++) {
        const resource_t *resource = (const resource_t *)all[i];
        if (resource->unhealthy && (next < 0 || resource->ping_due < next))
            next = resource->ping_due;
    }
    return next;
}

size_t router_pending_count(const router_t *router)
{
    return pending_count(router->pending);
}

size_t router_resource_count(const router_t *router)
{
    return resources_count(router->resources);
}
