/* dispatch-round-robin: sends requests to the candidates in strict rotation.
 *
 * The resources form a ring in the order they came online, and a cursor names
 * the one chosen last.  Each request goes to the first ring member after the
 * cursor that is among the candidates.  The ring survives changes: when a
 * resource leaves, the rotation goes on with its successor rather than
 * starting over, and one that joins takes its turn within one round.  With n
 * unchanging candidates, k * n requests give each exactly k.
 *
 * The ring holds every online resource, eligible or not: the host's filter
 * and draining only decide which members are candidates on a given request,
 * so a resource that stops draining keeps its place.
 *
 * Configuration, group [dispatch:round-robin]: none. */
#include <glib.h>

#include <client-proxy/plugin.h>

typedef struct rr_member {
    const cp_resource_t *resource; /* borrowed from the host; used as a key only */
    guint64 mark;                  /* == round_robin_state_t.epoch: a candidate now */
    int index;                     /* its index among the candidates, when marked */
} rr_member_t;

typedef struct round_robin_state {
    GQueue ring;        /* of rr_member_t * (owned), in join order */
    GHashTable *links;  /* resource pointer -> its GList link in ring */
    GList *cursor;      /* link chosen last; NULL: start at the head */
    guint64 epoch;      /* counts select() calls, so marks need no clearing */
} round_robin_state_t;

static int round_robin_init(const cp_host_api_t *api, cp_host_t *host, void **state)
{
    (void)api;
    (void)host;
    round_robin_state_t *dispatch = g_new0(round_robin_state_t, 1);
    g_queue_init(&dispatch->ring);
    /* Keyed by pointer: the host keeps a resource's pointer from
     * resource_online() to resource_offline(), and names could be reused. */
    dispatch->links = g_hash_table_new(g_direct_hash, g_direct_equal);
    *state = dispatch;
    return CP_OK;
}

static void round_robin_fini(void *state)
{
    round_robin_state_t *dispatch = state;
    g_hash_table_destroy(dispatch->links);
    g_queue_clear_full(&dispatch->ring, g_free);
    g_free(dispatch);
}

/* Appends RESOURCE to the ring (it joined last) and returns its member. */
static rr_member_t *ring_append(round_robin_state_t *dispatch, const cp_resource_t *resource)
{
    rr_member_t *member = g_new0(rr_member_t, 1);
    member->resource = resource;
    g_queue_push_tail(&dispatch->ring, member);
    g_hash_table_insert(dispatch->links, (gpointer)resource, dispatch->ring.tail);
    return member;
}

static void round_robin_online(void *state, const cp_resource_t *resource)
{
    round_robin_state_t *dispatch = state;
    if (!g_hash_table_contains(dispatch->links, resource))
        ring_append(dispatch, resource);
}

static void round_robin_offline(void *state, const cp_resource_t *resource)
{
    round_robin_state_t *dispatch = state;
    GList *link = g_hash_table_lookup(dispatch->links, resource);
    if (link == NULL)
        return;
    /* Step the cursor back so that its successor, the leaver's, is next.
     * Off the head it becomes NULL, which also means "the head is next". */
    if (dispatch->cursor == link)
        dispatch->cursor = link->prev;
    g_hash_table_remove(dispatch->links, resource);
    g_free(link->data);
    g_queue_delete_link(&dispatch->ring, link);
}

static int round_robin_select(void *state, const cp_dispatch_request_t *request,
                              const cp_resource_t *const *candidates, size_t n)
{
    round_robin_state_t *dispatch = state;
    (void)request;

    if (n == 0)
        return CP_EDECLINE;
    /* The index is returned as an int; choose among the first G_MAXINT32. */
    if (n > G_MAXINT32)
        n = G_MAXINT32;

    /* Mark this call's candidates in the ring.  The array's order changes
     * between calls, so indices are only good for this one. */
    dispatch->epoch++;
    for (size_t i = 0; i < n; i++) {
        GList *link = g_hash_table_lookup(dispatch->links, candidates[i]);
        /* A candidate the host never announced joins now, last, so that
         * select() always has an answer. */
        rr_member_t *member = link != NULL ? link->data : ring_append(dispatch, candidates[i]);
        member->mark = dispatch->epoch;
        member->index = (int)i;
    }

    /* Every candidate is in the ring, so one lap finds one. */
    GList *link = dispatch->cursor != NULL ? dispatch->cursor->next : dispatch->ring.head;
    for (guint step = 0; step < dispatch->ring.length; step++) {
        if (link == NULL)
            link = dispatch->ring.head;
        rr_member_t *member = link->data;
        if (member->mark == dispatch->epoch) {
            dispatch->cursor = link;
            return member->index;
        }
        link = link->next;
    }
    g_assert_not_reached();
    return CP_EDECLINE;
}

static const cp_dispatch_ops_t round_robin_ops = {
    .size = sizeof(cp_dispatch_ops_t),
    .select = round_robin_select,
    .resource_online = round_robin_online,
    .resource_offline = round_robin_offline,
};

CP_PLUGIN_DEFINE(CP_PLUGIN_DISPATCH, "round-robin",
                 "sends requests to the resources in turn, in the order they came online",
                 round_robin_init, round_robin_fini, &round_robin_ops);
