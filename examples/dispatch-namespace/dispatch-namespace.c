/* dispatch-namespace: an example of a third-party dispatch strategy.
 *
 * Sends each request to a resource named after the namespace of its
 * payload: the last segment of the namespace, alone or followed by '-'.
 * A request in urn:example:weather goes to "weather" or "weather-2"; one in
 * urn:xmpp:ping goes to "ping".  Among several such resources, the one with
 * the fewest requests in flight wins.
 *
 * Configuration, in client-proxy's keyfile:
 *   [proxy]
 *   dispatch = namespace
 *   [dispatch:namespace]
 *   fallback = decline    # or "any": no matching resource -> least busy one
 *
 * It uses nothing but the SDK's header and the C library. */
#include <client-proxy/plugin.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct namespace_state {
    bool fall_back_to_any; /* else decline when no resource matches */
} namespace_state_t;

/* The last segment of NS: after its last ':' or '/'. */
static const char *last_segment(const char *ns)
{
    const char *colon = strrchr(ns, ':');
    const char *slash = strrchr(ns, '/');
    const char *cut = colon > slash ? colon : slash;
    return cut ? cut + 1 : ns;
}

static bool named_after(const char *resource, const char *segment)
{
    size_t length = strlen(segment);
    return length > 0 && strncmp(resource, segment, length) == 0 &&
           (resource[length] == '\0' || resource[length] == '-');
}

static int least_busy(const cp_resource_t *const *candidates, size_t n, const char *segment)
{
    int best = CP_EDECLINE;
    for (size_t i = 0; i < n; i++) {
        if (segment && !named_after(candidates[i]->name, segment))
            continue;
        if (best < 0 || candidates[i]->in_flight < candidates[best]->in_flight)
            best = (int)i;
    }
    return best;
}

static int namespace_select(void *state, const cp_dispatch_request_t *request,
                            const cp_resource_t *const *candidates, size_t n)
{
    const namespace_state_t *self = state;
    int chosen = request->payload_ns
                     ? least_busy(candidates, n, last_segment(request->payload_ns))
                     : CP_EDECLINE;
    if (chosen < 0 && self->fall_back_to_any)
        chosen = least_busy(candidates, n, NULL);
    return chosen;
}

static int namespace_init(const cp_host_api_t *api, cp_host_t *host, void **state)
{
    const char *fallback = api->config_get(host, "fallback");
    bool any = fallback && strcmp(fallback, "any") == 0;
    if (fallback && !any && strcmp(fallback, "decline") != 0) {
        api->config_error(host, "fallback", "expected \"decline\" or \"any\", got \"%s\"",
                          fallback);
        return CP_EINVAL;
    }
    namespace_state_t *self = calloc(1, sizeof *self);
    if (!self)
        return CP_ENOMEM;
    self->fall_back_to_any = any;
    *state = self;
    return CP_OK;
}

static void namespace_fini(void *state)
{
    free(state);
}

static const cp_dispatch_ops_t namespace_ops = {
    .size = sizeof(cp_dispatch_ops_t),
    .select = namespace_select,
};

CP_PLUGIN_DEFINE(CP_PLUGIN_DISPATCH, "namespace",
                 "sends each request to a resource named after its payload's namespace",
                 namespace_init, namespace_fini, &namespace_ops);
