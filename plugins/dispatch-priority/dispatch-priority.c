/* dispatch-priority: sends each request to a resource of the highest presence
 * priority, chosen uniformly at random among those that share it.  As with
 * messages to a bare JID (RFC 6121, section 8.5.2), a resource with a
 * negative priority never gets one; when only such resources remain, the
 * request is declined.
 *
 * Configuration, group [dispatch:priority]:
 *   seed  an unsigned 32-bit integer.  Makes the choices among equals
 *         reproducible (for tests); without it the generator is seeded from
 *         the host's CSPRNG.  The choices need to be fair, not unpredictable. */
#include <glib.h>

#include <client-proxy/plugin.h>

#include "pick-best.h"
#include "seed.h"

typedef struct priority_state {
    GRand *rand; /* owned */
} priority_state_t;

static int priority_init(const cp_host_api_t *api, cp_host_t *host, void **state)
{
    GRand *rand = NULL;
    int status = pc_rand_from_config(api, host, &rand);
    if (status != CP_OK)
        return status;

    priority_state_t *dispatch = g_new0(priority_state_t, 1);
    dispatch->rand = rand;
    *state = dispatch;
    return CP_OK;
}

static void priority_fini(void *state)
{
    priority_state_t *dispatch = state;
    g_rand_free(dispatch->rand);
    g_free(dispatch);
}

static int64_t presence_priority(const cp_resource_t *resource)
{
    return resource->priority;
}

static int priority_select(void *state, const cp_dispatch_request_t *request,
                           const cp_resource_t *const *candidates, size_t n)
{
    priority_state_t *dispatch = state;
    (void)request;
    /* Declined, without a draw, when the highest priority is negative. */
    return pc_pick_best(dispatch->rand, candidates, n, presence_priority, 0);
}

static const cp_dispatch_ops_t priority_ops = {
    .size = sizeof(cp_dispatch_ops_t),
    .select = priority_select,
    .resource_online = NULL,
    .resource_offline = NULL,
};

CP_PLUGIN_DEFINE(CP_PLUGIN_DISPATCH, "priority",
                 "sends each request to a resource of the highest presence priority, never a negative one",
                 priority_init, priority_fini, &priority_ops);
