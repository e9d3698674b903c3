/* dispatch-random: sends each request to a resource chosen uniformly at
 * random among the candidates.
 *
 * Configuration, group [dispatch:random]:
 *   seed  an unsigned 32-bit integer.  Makes the choices reproducible (for
 *         tests); without it the generator is seeded from the host's CSPRNG.
 *         The choices need to be fair, not unpredictable. */
#include <glib.h>

#include <client-proxy/plugin.h>

/* Words of CSPRNG output that seed the Mersenne Twister when no seed is set. */
#define RANDOM_SEED_WORDS 4

typedef struct random_state {
    GRand *rand; /* owned */
} random_state_t;

static int random_init(const cp_host_api_t *api, cp_host_t *host, void **state)
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
        guint32 seed[RANDOM_SEED_WORDS];
        if (api->random_bytes(host, seed, sizeof seed) != CP_OK) {
            api->log(host, CP_LOG_ERROR, "cannot get random bytes for a seed");
            return CP_EFAIL;
        }
        rand = g_rand_new_with_seed_array(seed, RANDOM_SEED_WORDS);
    }

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
