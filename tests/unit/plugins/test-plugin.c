/* One source, several deliberately good or broken plugins, chosen by
 * -DVARIANT_* at build time, for the loader's tests. */
#include <client-proxy/plugin.h>

#include <string.h>

static int encode(void *state, const char *jid, int64_t expires, char *token, size_t size)
{
    (void)state;
    (void)expires;
    if (strlen(jid) >= size)
        return CP_ETOOLONG;
    strcpy(token, jid);
    return CP_OK;
}

static int decode(void *state, const char *token, char *jid, size_t size)
{
    return encode(state, token, 0, jid, size);
}

static const cp_jat_ops_t ops = {
    .size = sizeof(cp_jat_ops_t),
    .encode = encode,
    .decode = decode,
};

static int init(const cp_host_api_t *api, cp_host_t *host, void **state)
{
    static int state_token;
#if defined(VARIANT_REFUSES)
    (void)state;
    (void)state_token;
    const char *mode = api->config_get(host, "mode");
    api->config_error(host, "mode", "\"%s\" is not a mode this plugin knows", mode ? mode : "");
    return CP_EINVAL;
#else
    (void)api;
    (void)host;
    *state = &state_token;
    return CP_OK;
#endif
}

static void fini(void *state)
{
    (void)state;
}

#if defined(VARIANT_UNRESOLVED)
/* A symbol no library provides: binding at load time must fail. */
extern int cp_test_symbol_that_does_not_exist(void);
int cp_test_use_missing(void);
CP_PLUGIN_EXPORT int cp_test_use_missing(void)
{
    return cp_test_symbol_that_does_not_exist();
}
#endif

#if defined(VARIANT_NO_DESCRIPTOR)
/* A descriptor under a misspelt name is no descriptor. */
CP_PLUGIN_EXPORT const cp_plugin_descriptor_t cp_plugin_descripter = {
    .abi_major = CP_PLUGIN_ABI_MAJOR, .abi_minor = CP_PLUGIN_ABI_MINOR, .kind = CP_PLUGIN_JAT,
    .name = "no-descriptor", .init = init, .fini = fini, .ops = &ops,
};
#elif defined(VARIANT_NEWER_MAJOR)
CP_PLUGIN_EXPORT const cp_plugin_descriptor_t cp_plugin_descriptor = {
    .abi_major = CP_PLUGIN_ABI_MAJOR + 1, .abi_minor = 0, .kind = CP_PLUGIN_JAT,
    .name = "newer-major", .init = init, .fini = fini, .ops = &ops,
};
#elif defined(VARIANT_OLD_MINOR)
/* Built for ABI 1.0, before the host checked that init() reads every
 * option: it reads none. */
CP_PLUGIN_EXPORT const cp_plugin_descriptor_t cp_plugin_descriptor = {
    .abi_major = CP_PLUGIN_ABI_MAJOR, .abi_minor = 0, .kind = CP_PLUGIN_JAT,
    .name = PLUGIN_NAME, .description = "test", .init = init, .fini = fini, .ops = &ops,
};
#elif defined(VARIANT_NEWER_MINOR)
CP_PLUGIN_EXPORT const cp_plugin_descriptor_t cp_plugin_descriptor = {
    .abi_major = CP_PLUGIN_ABI_MAJOR, .abi_minor = CP_PLUGIN_ABI_MINOR + 1,
    .kind = CP_PLUGIN_JAT, .name = "newer-minor", .init = init, .fini = fini, .ops = &ops,
};
#elif defined(VARIANT_WRONG_KIND)
CP_PLUGIN_DEFINE(CP_PLUGIN_DISPATCH, "wrong-kind", "a JAT ops table declared as dispatch",
                 init, fini, &ops);
#else
CP_PLUGIN_DEFINE(CP_PLUGIN_JAT, PLUGIN_NAME, "loader test plugin", init, fini, &ops);
#endif
