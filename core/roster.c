/* The implementing client's resources and the candidates among them: see
 * roster.h. */
#include "roster.h"

#include <string.h>

#include "log.h"
#include "stanza.h"

/* Weight of the newest reply in the latency moving average. */
#define LATENCY_EWMA_ALPHA 0.2

struct roster {
    char *target;            /* for log lines */
    char **resource_filter;  /* [proxy] resources, or NULL */
    plugin_t *dispatch;      /* a reference */
    GHashTable *by_name;     /* name -> resource_t, owning: every resource */
    /* Who may take a new request, updated when presence or health changes
     * so that placing a request filters nothing, and a change costs O(1).
     * Two views of one list: the roster's own records, and what the
     * strategy is shown; resource->candidate_slot indexes both. */
    GPtrArray *candidates;      /* resource_t */
    GPtrArray *candidate_infos; /* const cp_resource_t */
};

/* Draining: a resource that says it is busy or away keeps answering what it
 * has, but gets nothing new. */
static bool is_draining(const resource_t *resource)
{
    return resource->drained || strcmp(resource->info.show, "dnd") == 0 ||
           strcmp(resource->info.show, "xa") == 0;
}

bool roster_is_draining(const resource_t *resource)
{
    return is_draining(resource);
}

void roster_set_drained(roster_t *roster, resource_t *resource, bool drained)
{
    if (resource->drained == drained)
        return;
    resource->drained = drained;
    log_info("resource %s/%s %s by an admin", roster->target, resource->info.name,
             drained ? "is draining: no new requests" : "takes requests again");
    roster_update_candidacy(roster, resource);
}

static bool is_allowed(const roster_t *roster, const resource_t *resource)
{
    return roster_allows(roster, resource->info.name);
}

bool roster_allows(const roster_t *roster, const char *name)
{
    return config_resource_allowed(roster->resource_filter, name);
}

static void resource_free(resource_t *resource)
{
    g_free((char *)resource->info.name);
    g_free((char *)resource->info.show);
    g_free(resource);
}

roster_t *roster_new(const config_t *config, plugin_t *dispatch)
{
    roster_t *roster = g_new0(roster_t, 1);
    roster->target = g_strdup(config->target);
    roster->resource_filter = g_strdupv(config->resources);
    roster->dispatch = plugin_ref(dispatch);
    roster->by_name = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
                                            (GDestroyNotify)resource_free);
    roster->candidates = g_ptr_array_new();
    roster->candidate_infos = g_ptr_array_new();
    return roster;
}

void roster_free(roster_t *roster)
{
    if (!roster)
        return;
    g_assert(g_hash_table_size(roster->by_name) == 0);
    g_ptr_array_free(roster->candidates, TRUE);
    g_ptr_array_free(roster->candidate_infos, TRUE);
    g_hash_table_destroy(roster->by_name);
    plugin_unref(roster->dispatch);
    g_strfreev(roster->resource_filter);
    g_free(roster->target);
    g_free(roster);
}

static void add_candidate(roster_t *roster, resource_t *resource)
{
    resource->candidate_slot = (int)roster->candidates->len;
    g_ptr_array_add(roster->candidates, resource);
    g_ptr_array_add(roster->candidate_infos, &resource->info);
}

/* Moves the last candidate into RESOURCE's slot. */
static void remove_candidate(roster_t *roster, resource_t *resource)
{
    guint slot = (guint)resource->candidate_slot;
    g_ptr_array_remove_index_fast(roster->candidates, slot);
    g_ptr_array_remove_index_fast(roster->candidate_infos, slot);
    if (slot < roster->candidates->len)
        ((resource_t *)roster->candidates->pdata[slot])->candidate_slot = (int)slot;
    resource->candidate_slot = -1;
}

void roster_update_candidacy(roster_t *roster, resource_t *resource)
{
    bool eligible = !resource->leaving && !is_draining(resource) &&
                    !health_is_benched(resource) && is_allowed(roster, resource);
    bool offered = resource->candidate_slot >= 0;
    if (eligible && !offered)
        add_candidate(roster, resource);
    else if (!eligible && offered)
        remove_candidate(roster, resource);
}

/* Rebuilds every candidacy, after the filter changed. */
static void refresh_all(roster_t *roster)
{
    GHashTableIter iter;
    gpointer resource;
    g_hash_table_iter_init(&iter, roster->by_name);
    while (g_hash_table_iter_next(&iter, NULL, &resource))
        roster_update_candidacy(roster, resource);
}

void roster_reconfigure(roster_t *roster, const config_t *config, plugin_t *dispatch)
{
    plugin_t *old = roster->dispatch;
    roster->dispatch = plugin_ref(dispatch);
    plugin_unref(old);
    g_free(roster->target);
    roster->target = g_strdup(config->target);
    g_strfreev(roster->resource_filter);
    roster->resource_filter = g_strdupv(config->resources);
    /* The new strategy learns the resources that are online already. */
    GHashTableIter iter;
    gpointer resource;
    g_hash_table_iter_init(&iter, roster->by_name);
    while (g_hash_table_iter_next(&iter, NULL, &resource))
        plugin_resource_online(roster->dispatch, &((resource_t *)resource)->info);
    refresh_all(roster);
}

/* The show of an available presence, as one of the strings RFC 6120 allows
 * ("" for none or anything else), static. */
static const char *normalised_show(const char *show)
{
    static const char *const shows[] = {"chat", "away", "xa", "dnd"};
    for (size_t i = 0; show && i < G_N_ELEMENTS(shows); i++)
        if (strcmp(show, shows[i]) == 0)
            return shows[i];
    return "";
}

static int presence_priority(const char *text)
{
    gint64 priority = 0;
    if (text) {
        g_autofree char *trimmed = g_strstrip(g_strdup(text));
        g_ascii_string_to_signed(trimmed, 10, -128, 127, &priority, NULL);
    }
    return (int)priority;
}

static void update(roster_t *roster, const char *name, const char *show, int priority);

void roster_presence_available(roster_t *roster, const char *name,
                               const wire_stanza_t *presence)
{
    /* Presence is rare enough to be read as a tree; one that cannot be read
     * still says the resource is there, with priority 0. */
    g_autoptr(stanza_element_t) tree = stanza_parse(presence->bytes, presence->length);
    const char *show = normalised_show(tree ? stanza_child_text(tree, "show") : NULL);
    int priority = presence_priority(tree ? stanza_child_text(tree, "priority") : NULL);
    update(roster, name, show, priority);
}

resource_t *roster_resource_alive(roster_t *roster, const char *name)
{
    resource_t *resource = roster_lookup(roster, name);
    if (!resource)
        update(roster, name, "", 0);
    return roster_lookup(roster, name);
}

/* Adds resource NAME or updates its SHOW and PRIORITY. */
static void update(roster_t *roster, const char *name, const char *show, int priority)
{
    resource_t *resource = roster_lookup(roster, name);
    bool added = resource == NULL;
    bool was_draining = resource && is_draining(resource);
    if (added) {
        resource = g_new0(resource_t, 1);
        resource->info.size = sizeof(cp_resource_t);
        resource->info.name = g_strdup(name);
        resource->info.show = g_strdup(show);
        g_queue_init(&resource->requests);
        resource->candidate_slot = -1;
        g_hash_table_insert(roster->by_name, (char *)resource->info.name, resource);
    } else if (strcmp(resource->info.show, show) != 0) {
        g_free((char *)resource->info.show);
        resource->info.show = g_strdup(show);
    }
    resource->info.priority = priority;

    if (added) {
        const log_field_t fields[] = {{"CLIENT_PROXY_RESOURCE", name}};
        log_fields(CP_LOG_INFO, fields, G_N_ELEMENTS(fields), "resource %s/%s is online",
                   roster->target, name);
        if (!is_allowed(roster, resource))
            log_info("resource %s/%s does not match [proxy] resources: it gets no requests",
                     roster->target, name);
        plugin_resource_online(roster->dispatch, &resource->info);
    }
    if (is_draining(resource) != was_draining)
        log_info("resource %s/%s %s (show: %s)", roster->target, name,
                 was_draining ? "takes requests again" : "is draining: no new requests",
                 *show ? show : "available");
    roster_update_candidacy(roster, resource);
}

resource_t *roster_lookup(roster_t *roster, const char *name)
{
    return g_hash_table_lookup(roster->by_name, name);
}

void roster_set_leaving(roster_t *roster, resource_t *resource)
{
    resource->leaving = true;
    roster_update_candidacy(roster, resource);
}

void roster_remove(roster_t *roster, resource_t *resource)
{
    g_assert(g_queue_is_empty(&resource->requests));
    if (resource->candidate_slot >= 0)
        remove_candidate(roster, resource);
    plugin_resource_offline(roster->dispatch, &resource->info);
    g_hash_table_remove(roster->by_name, resource->info.name);
}

GPtrArray *roster_list(roster_t *roster)
{
    GPtrArray *list = g_ptr_array_sized_new(g_hash_table_size(roster->by_name));
    GHashTableIter iter;
    gpointer resource;
    g_hash_table_iter_init(&iter, roster->by_name);
    while (g_hash_table_iter_next(&iter, NULL, &resource))
        g_ptr_array_add(list, resource);
    return list;
}

size_t roster_candidate_count(const roster_t *roster)
{
    return roster->candidates->len;
}

/* Trades the places of candidates A and B in both views.  Their
 * candidate_slot is left as it was: the caller trades them back. */
static void trade_places(roster_t *roster, guint a, guint b)
{
    gpointer *resources = roster->candidates->pdata, *infos = roster->candidate_infos->pdata;
    gpointer resource = resources[a], info = infos[a];
    resources[a] = resources[b];
    infos[a] = infos[b];
    resources[b] = resource;
    infos[b] = info;
}

resource_t *roster_choose(roster_t *roster, const cp_dispatch_request_t *request,
                          const resource_t *except)
{
    size_t n = roster->candidates->len;
    /* A retry elsewhere: EXCEPT steps out by trading places with the last
     * candidate, and the strategy is shown one candidate fewer; the list is
     * restored before anything else sees it.  A copy without it would cost
     * O(candidates) per retry, and a resource leaving retries all its
     * requests at once. */
    guint set_aside = G_MAXUINT;
    if (except && except->candidate_slot >= 0) {
        g_assert(roster->candidates->pdata[except->candidate_slot] == except);
        set_aside = (guint)except->candidate_slot;
        trade_places(roster, set_aside, (guint)(n - 1));
        n--;
    }
    resource_t *chosen_resource = NULL;
    /* plugin.h promises payload attributes, empty when there are none. */
    static const char *const no_attributes[] = {NULL};
    cp_dispatch_request_t complete = *request;
    if (!complete.payload_attributes)
        complete.payload_attributes = no_attributes;
    int chosen = n == 0 ? CP_EDECLINE
                        : plugin_select(roster->dispatch, &complete,
                                        (const cp_resource_t *const *)roster->candidate_infos->pdata,
                                        n);
    if (chosen >= 0 && (size_t)chosen < n)
        chosen_resource = roster->candidates->pdata[chosen];
    else if (chosen != CP_EDECLINE)
        log_error("%s returned %d for %zu candidates", plugin_file(roster->dispatch), chosen, n);
    if (set_aside != G_MAXUINT)
        trade_places(roster, set_aside, (guint)n);
    return chosen_resource;
}

void roster_record_outcome(resource_t *resource, bool failed, int64_t elapsed_us)
{
    resource->outcomes = (uint16_t)((resource->outcomes << 1) | (failed ? 1u : 0u));
    resource->info.recent_failures = (unsigned)__builtin_popcount(resource->outcomes);
    if (elapsed_us < 0)
        return;
    double ms = (double)elapsed_us / 1000.0;
    resource->info.latency_ms = resource->info.latency_ms == 0.0
                                    ? ms
                                    : LATENCY_EWMA_ALPHA * ms +
                                          (1.0 - LATENCY_EWMA_ALPHA) * resource->info.latency_ms;
}

size_t roster_count(const roster_t *roster)
{
    return g_hash_table_size(roster->by_name);
}
