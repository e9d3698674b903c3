/* dispatch-least-pending: sends each request to the candidate with the fewest
 * requests in flight, so that a slow resource gets fewer new ones.  Ties are
 * broken uniformly at random, so that idle resources share the load evenly
 * instead of the first one in the array taking it all.
 *
 * Configuration, group [dispatch:least-pending]:
 *   seed  an unsigned 32-bit integer.  Makes the tie-breaks reproducible (for
 *         tests); without it the generator is seeded from the host's CSPRNG.
 *         The choices need to be fair, not unpredictable. */
#include <glib.h>

#include <client-proxy/plugin.h>

#include "pick-best.h"
#include "seed.h"

typedef struct least_pending_state {
    GRand *rand; /* owned */
} least_pending_state_t;

static int least_pending_init(const cp_host_api_t *api, cp_host_t *host, void **state)
{
    GRand *rand = NULL;
    int status = pc_rand_from_config(api, host, &rand);
    if (status != CP_OK)
        return status;

    least_pending_state_t *dispatch = g_new0(least_pending_state_t, 1);
    dispatch->rand = rand;
    *state = dispatch;
    return CP_OK;
}

static void least_pending_fini(void *state)
{
    least_pending_state_t *dispatch = state;
    g_rand_free(dispatch->rand);
    g_free(dispatch);
}

/* Fewer in flight scores higher. */
static int64_t fewest_in_flight(const cp_resource_t *resource)
{
    return -(int64_t)resource->in_flight;
}

static int least_pending_select(void *state, const cp_dispatch_request_t *request,
                                const cp_resource_t *const *candidates, size_t n)
{
    least_pending_state_t *dispatch = state;
    (void)request;
    return pc_pick_best(dispatch->rand, candidates, n, fewest_in_flight, INT64_MIN);
}

static const cp_dispatch_ops_t least_pending_ops = {
    .size = sizeof(cp_dispatch_ops_t),
    .select = least_pending_select,
    .resource_online = NULL,
    .resource_offline = NULL,
};

CP_PLUGIN_DEFINE(CP_PLUGIN_DISPATCH, "least-pending",
                 "sends each request to the resource with the fewest requests in flight",
                 least_pending_init, least_pending_fini, &least_pending_ops);
