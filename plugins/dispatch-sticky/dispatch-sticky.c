/* dispatch-sticky: sends every request of one sender to the same resource for
 * as long as that resource stays a candidate, so that a resource can keep
 * per-user state (a session, a cache) without sharing it.
 *
 * It uses rendezvous (highest-random-weight) hashing: each candidate scores
 * SipHash-2-4(key, lower(bare JID) || 0x00 || resource name) and the highest
 * score wins.  So the choice depends on names alone, not on the order of the
 * candidates or on earlier requests; when a resource leaves, only the senders
 * it had move (spread over the rest), and one that joins takes about
 * 1/(n+1) of the senders, each from wherever it was, and nobody else moves.
 *
 * The sender is its bare JID: the part before the first '/', with ASCII
 * letters lowercased, because the localpart and domainpart of a JID are
 * case-insensitive, and all of a user's clients should land on one resource.
 * Non-ASCII case is not folded: servers send JIDs in their canonical form.
 *
 * Configuration, group [dispatch:sticky]:
 *   seed  an unsigned 64-bit integer from which the hash key is derived.
 *         Without it the key is a fixed one (the key for seed 0), so that
 *         several client-proxy instances, and restarts, send a sender to the
 *         same resource.  Set the same seed on every instance to make the
 *         placement unpredictable to outsiders; a different seed reshuffles
 *         every sender. */
#include <stdbool.h>
#include <string.h>

#include <glib.h>

#include <client-proxy/plugin.h>

#include "seed.h"
#include "siphash.h"

typedef struct sticky_state {
    uint64_t k0, k1; /* the SipHash key */
} sticky_state_t;

/* One step of SplitMix64 (Steele, Lea and Flood, 2014): spreads a seed that
 * operators write as a small number over all 64 bits of a key word. */
static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static int sticky_init(const cp_host_api_t *api, cp_host_t *host, void **state)
{
    uint64_t seed = 0;
    bool given = false; /* no seed is seed 0 */
    int status = pc_read_seed(api, host, G_MAXUINT64, &seed, &given);
    if (status != CP_OK)
        return status;

    sticky_state_t *dispatch = g_new0(sticky_state_t, 1);
    uint64_t x = seed;
    dispatch->k0 = splitmix64(&x);
    dispatch->k1 = splitmix64(&x);
    *state = dispatch;
    return CP_OK;
}

static void sticky_fini(void *state)
{
    g_free(state);
}

static int sticky_select(void *state, const cp_dispatch_request_t *request,
                         const cp_resource_t *const *candidates, size_t n)
{
    sticky_state_t *dispatch = state;

    if (n == 0)
        return CP_EDECLINE;
    /* The index is returned as an int; choose among the first G_MAXINT32. */
    if (n > G_MAXINT32)
        n = G_MAXINT32;

    /* Feed the sender once; each candidate continues from a copy.  The NUL
     * cannot occur in a JID, so it separates the two parts unambiguously. */
    sticky_siphash_t prefix;
    sticky_siphash_init(&prefix, dispatch->k0, dispatch->k1);
    const char *sender = request->sender != NULL ? request->sender : "";
    for (const char *p = sender; *p != '\0' && *p != '/'; p++)
        sticky_siphash_byte(&prefix, (uint8_t)g_ascii_tolower(*p));
    sticky_siphash_byte(&prefix, 0);

    size_t best = 0;
    uint64_t best_score = 0;
    for (size_t i = 0; i < n; i++) {
        sticky_siphash_t hash = prefix;
        const char *name = candidates[i]->name;
        sticky_siphash_update(&hash, name, strlen(name));
        uint64_t score = sticky_siphash_final(&hash);
        /* Equal scores (about 2^-64) go to the smaller name, not to the
         * earlier index: the array's order must not matter. */
        if (i == 0 || score > best_score ||
            (score == best_score && strcmp(name, candidates[best]->name) < 0)) {
            best = i;
            best_score = score;
        }
    }
    return (int)best;
}

static const cp_dispatch_ops_t sticky_ops = {
    .size = sizeof(cp_dispatch_ops_t),
    .select = sticky_select,
    .resource_online = NULL,
    .resource_offline = NULL,
};

CP_PLUGIN_DEFINE(CP_PLUGIN_DISPATCH, "sticky",
                 "sends each sender's requests to the same resource while it is online",
                 sticky_init, sticky_fini, &sticky_ops);
