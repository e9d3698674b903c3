#include "resources.h"

#include <string.h>

/* Weight of the newest reply in the latency moving average. */
#define LATENCY_EWMA_ALPHA 0.2

struct resource_set {
    GHashTable *by_name; /* name -> resource_t, owning */
    GPtrArray *all;      /* resource_t, the order dispatch sees */
};

static void resource_free(resource_t *resource)
{
    g_free((char *)resource->info.name);
    g_free((char *)resource->info.show);
    g_free(resource->ping_id);
    g_free(resource);
}

resource_set_t *resources_new(void)
{
    resource_set_t *set = g_new0(resource_set_t, 1);
    set->by_name = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
                                         (GDestroyNotify)resource_free);
    set->all = g_ptr_array_new();
    return set;
}

void resources_free(resource_set_t *set)
{
    if (!set)
        return;
    g_ptr_array_free(set->all, TRUE);
    g_hash_table_destroy(set->by_name);
    g_free(set);
}

resource_t *resources_lookup(resource_set_t *set, const char *name)
{
    return g_hash_table_lookup(set->by_name, name);
}

resource_t *resources_update(resource_set_t *set, const char *name, const char *show,
                             int priority, bool *added)
{
    resource_t *resource = resources_lookup(set, name);
    *added = resource == NULL;
    if (!resource) {
        resource = g_new0(resource_t, 1);
        resource->info.size = sizeof(cp_resource_t);
        resource->info.name = g_strdup(name);
        g_queue_init(&resource->pending);
        g_hash_table_insert(set->by_name, (char *)resource->info.name, resource);
        g_ptr_array_add(set->all, resource);
    }
    if (!resource->info.show || strcmp(resource->info.show, show) != 0) {
        g_free((char *)resource->info.show);
        resource->info.show = g_strdup(show);
    }
    resource->info.priority = priority;
    return resource;
}

void resources_remove(resource_set_t *set, resource_t *resource)
{
    g_assert(g_queue_is_empty(&resource->pending));
    g_ptr_array_remove_fast(set->all, resource);
    g_hash_table_remove(set->by_name, resource->info.name);
}

size_t resources_count(const resource_set_t *set)
{
    return set->all->len;
}

const cp_resource_t *const *resources_all(const resource_set_t *set, size_t *n)
{
    *n = set->all->len;
    return (const cp_resource_t *const *)set->all->pdata;
}

void resources_record_outcome(resource_t *resource, bool failed, int64_t elapsed_us)
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
