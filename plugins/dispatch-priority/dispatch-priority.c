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

/* Words of CSPRNG output that seed the Mersenne Twister when no seed is set. */
#define PRIORITY_SEED_WORDS 4

typedef struct priority_state {
    GRand *rand; /* owned */
} priority_state_t;

static int priority_init(const cp_host_api_t *api, cp_host_t *host, void **state)
{
    const char *seed_text = api->config_get(host, "seed");
    GRand *rand = NULL;

    if (seed_text != NULL) {
        guint64 seed = 0;
        GError *error = NULL;
        if (!g_ascii_string_to_unsigned(seed_text, 10, 0, G_MAXUINT32, &seed, &error)) {
            api->config_error(host, "seed", "\"%s\" is not an unsigned integer below 2^32: %s",
                              seed_text, error->message);
            g_error_free(error);
            return CP_EINVAL;
        }
        rand = g_rand_new_with_seed((guint32)seed);
    } else {
        guint32 seed[PRIORITY_SEED_WORDS];
        if (api->random_bytes(host, seed, sizeof seed) != CP_OK) {
            api->log(host, CP_LOG_ERROR, "cannot get random bytes for a seed");
            return CP_EFAIL;
        }
        rand = g_rand_new_with_seed_array(seed, PRIORITY_SEED_WORDS);
    }

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

static int priority_select(void *state, const cp_dispatch_request_t *request,
                           const cp_resource_t *const *candidates, size_t n)
{
    priority_state_t *dispatch = state;
    (void)request;

    if (n == 0)
        return CP_EDECLINE;
    /* The index is returned as an int; choose among the first G_MAXINT32. */
    if (n > G_MAXINT32)
        n = G_MAXINT32;

    /* First pass: the highest priority and how many candidates have it. */
    int highest = candidates[0]->priority;
    gint32 tied = 0;
    for (size_t i = 0; i < n; i++) {
        if (candidates[i]->priority > highest) {
            highest = candidates[i]->priority;
            tied = 1;
        } else if (candidates[i]->priority == highest) {
            tied++;
        }
    }
    if (highest < 0)
        return CP_EDECLINE;

    /* Second pass: the pick-th of the tied, with one unbiased draw. */
    gint32 pick = tied > 1 ? g_rand_int_range(dispatch->rand, 0, tied) : 0;
    for (size_t i = 0; i < n; i++) {
        if (candidates[i]->priority == highest && pick-- == 0)
            return (int)i;
    }
    g_assert_not_reached();
    return CP_EDECLINE;
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
