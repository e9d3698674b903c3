/* dispatch-random: sends each request to a resource chosen uniformly at
 * random among the candidates.
 *
 * Configuration, group [dispatch:random]:
 *   seed  an unsigned 32-bit integer.  Makes the choices reproducible (for
 *         tests); without it the generator is seeded from the host's CSPRNG.
 *         The choices need to be fair, not unpredictable. */
#include <glib.h>

#include <client-proxy/plugin.h>

#include "seed.h"

typedef struct random_state {
    GRand *rand; /* owned */
} random_state_t;

static int random_init(const cp_host_api_t *api, cp_host_t *host, void **state)
{
    GRand *rand = NULL;
    int status = pc_rand_from_config(api, host, &rand);
    if (status != CP_OK)
        return status;

    random_state_t *dispatch = g_new0(random_state_t, 1);
    dispatch->rand = rand;
    *state = dispatch;
    return CP_OK;
}

static void random_fini(void *state)
{
    random_state_t *dispatch = state;
    g_rand_free(dispatch->rand);
    g_free(dispatch);
}

static int random_select(void *state, const cp_dispatch_request_t *request,
                         const cp_resource_t *const *candidates, size_t n)
{
    random_state_t *dispatch = state;
    (void)request;
    (void)candidates;

    if (n == 0)
        return CP_EDECLINE;
    /* The index is returned as an int; more candidates than that cannot be
     * told apart, so choose among the first G_MAXINT32. */
    if (n > G_MAXINT32)
        n = G_MAXINT32;
    /* g_rand_int_range() rejects out-of-range draws, so every index is
     * equally likely (unless G_RANDOM_VERSION=2.0 asks for the old method). */
    return (int)g_rand_int_range(dispatch->rand, 0, (gint32)n);
}

static const cp_dispatch_ops_t random_ops = {
    .size = sizeof(cp_dispatch_ops_t),
    .select = random_select,
    .resource_online = NULL,
    .resource_offline = NULL,
};

CP_PLUGIN_DEFINE(CP_PLUGIN_DISPATCH, "random",
                 "sends each request to a resource chosen uniformly at random",
                 random_init, random_fini, &random_ops);
