/* dispatch-sticky: sends every request of one sender, or of one room, to the
 * same resource for as long as that resource stays a candidate, so that a
 * resource can keep per-user or per-conference state (a session, a cache, a
 * Jitsi conference) without sharing it.
 *
 * It uses rendezvous (highest-random-weight) hashing: each candidate scores
 * SipHash-2-4 of the request's key and its own name, and the highest score
 * wins.  So the choice depends on names alone, not on the order of the
 * candidates or on earlier requests; when a resource leaves, only the keys
 * it had move (spread over the rest), and one that joins takes about
 * 1/(n+1) of the keys, each from wherever it was, and nobody else moves.
 *
 * A key is the sender or an attribute's value, hashed as
 *   sender:     lower(bare JID) || 0x00 || resource name
 *   attribute:  0x00 || lower(value) || 0x00 || resource name
 * None of the parts can hold a NUL (they are C strings), so a sender's input
 * holds one NUL and an attribute's two: by construction no room is hashed as
 * a sender is, however alike their texts.
 *
 * The sender is its bare JID: the part before the first '/', with ASCII
 * letters lowercased, because the localpart and domainpart of a JID are
 * case-insensitive, and all of a user's clients should land on one resource.
 * An attribute's value is lowercased likewise, whole: Jitsi's room is a MUC
 * room's bare JID, compared as above; for any other value, folding case can
 * only put more keys together, never split one.  Non-ASCII case is not
 * folded: servers and Jitsi send JIDs in their canonical form.
 *
 * Messages are keyed as IQ requests are: their type plays no part, and the
 * attribute is read from their first child.
 *
 * Configuration, group [dispatch:sticky]:
 *   key   what keeps requests together.  "sender" (the default): the
 *         requester's bare JID.  "attribute:NAME": the value of attribute
 *         NAME (as written: case-sensitive, a prefix included) of the
 *         payload element, so that "attribute:room" keeps each Jitsi
 *         conference on one Jicofo; a request without it, or with it empty,
 *         is keyed by its sender.  Not a secret: a reload that changes it
 *         shows its old and new values.
 *   seed  an unsigned 64-bit integer from which the SipHash key is derived.
 *         Without it the SipHash key is a fixed one (the one for seed 0), so
 *         that several client-proxy instances, and restarts, place a key on
 *         the same resource.  Set the same seed on every instance to make
 *         the placement unpredictable to outsiders; a different seed
 *         reshuffles every key. */
#include <stdbool.h>
#include <string.h>

#include <glib.h>

#include <client-proxy/plugin.h>

#include "seed.h"
#include "siphash.h"

#define KEY_SENDER "sender"
#define KEY_ATTRIBUTE_PREFIX "attribute:"

typedef struct sticky_state {
    uint64_t k0, k1; /* the SipHash key */
    char *attribute; /* the NAME of key = attribute:NAME, owned; NULL: the sender */
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

static bool has_space(const char *text)
{
    for (const char *p = text; *p != '\0'; p++)
        if (g_ascii_isspace(*p))
            return true;
    return false;
}

/* Reads the "key" option: sets *ATTRIBUTE to a new copy of NAME for
 * "attribute:NAME", or to NULL for "sender" or no option.  Returns CP_OK, or
 * CP_EINVAL after config_error(). */
static int read_key(const cp_host_api_t *api, cp_host_t *host, char **attribute)
{
    const char *key = api->config_get(host, "key");
    *attribute = NULL;
    if (key == NULL || strcmp(key, KEY_SENDER) == 0)
        return CP_OK;

    if (g_str_has_prefix(key, KEY_ATTRIBUTE_PREFIX)) {
        const char *name = key + strlen(KEY_ATTRIBUTE_PREFIX);
        if (*name != '\0' && !has_space(name)) {
            *attribute = g_strdup(name);
            return CP_OK;
        }
    }
    /* Quoted, as it is no secret; escaped, to keep the error on one line. */
    char *quoted = g_strescape(key, NULL);
    api->config_error(host, "key",
                      "expected " KEY_SENDER " or " KEY_ATTRIBUTE_PREFIX
                      "NAME (NAME not empty, without spaces), got \"%s\"",
                      quoted);
    g_free(quoted);
    return CP_EINVAL;
}

static int sticky_init(const cp_host_api_t *api, cp_host_t *host, void **state)
{
    uint64_t seed = 0;
    bool given = false; /* no seed is seed 0 */
    int status = pc_read_seed(api, host, G_MAXUINT64, &seed, &given);
    if (status != CP_OK)
        return status;
    char *attribute = NULL;
    status = read_key(api, host, &attribute);
    if (status != CP_OK)
        return status;

    sticky_state_t *dispatch = g_new0(sticky_state_t, 1);
    dispatch->attribute = attribute;
    uint64_t x = seed;
    dispatch->k0 = splitmix64(&x);
    dispatch->k1 = splitmix64(&x);
    *state = dispatch;
    return CP_OK;
}

static void sticky_fini(void *state)
{
    sticky_state_t *dispatch = state;
    g_free(dispatch->attribute);
    g_free(dispatch);
}

/* The value of attribute NAME of REQUEST's payload, or NULL.  XML allows an
 * attribute only once per element, so the first match is the one. */
static const char *payload_attribute(const cp_dispatch_request_t *request, const char *name)
{
    for (const char *const *pair = request->payload_attributes; pair[0] != NULL; pair += 2)
        if (strcmp(pair[0], name) == 0)
            return pair[1];
    return NULL;
}

/* Feeds TEXT with ASCII letters lowercased, up to its end or STOP. */
static void feed_lowercase(sticky_siphash_t *hash, const char *text, char stop)
{
    for (const char *p = text; *p != '\0' && *p != stop; p++)
        sticky_siphash_byte(hash, (uint8_t)g_ascii_tolower(*p));
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

    /* Feed the key once; each candidate continues from a copy.  The NULs
     * cannot occur in the parts, so they separate them unambiguously (see
     * the top of this file). */
    sticky_siphash_t prefix;
    sticky_siphash_init(&prefix, dispatch->k0, dispatch->k1);
    const char *value =
        dispatch->attribute != NULL ? payload_attribute(request, dispatch->attribute) : NULL;
    if (value != NULL && *value != '\0') {
        sticky_siphash_byte(&prefix, 0);
        feed_lowercase(&prefix, value, '\0');
    } else {
        feed_lowercase(&prefix, request->sender != NULL ? request->sender : "", '/');
    }
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
                 "sends all requests with one key (the sender, or a payload attribute) "
                 "to the same resource while it is online",
                 sticky_init, sticky_fini, &sticky_ops);
