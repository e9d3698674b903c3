/* Plugins: finding, checking and instantiating them (see plugin-loader.h). */
#include "plugin-loader.h"

#include <dlfcn.h>
#include <errno.h>
#include <ltdl.h>
#include <string.h>
#include <sys/random.h>

#include "log.h"

#ifndef PLUGINDIR
#error "PLUGINDIR must be defined by the build"
#endif

G_DEFINE_QUARK(client-proxy-plugin-error-quark, plugin_error)

/* What a plugin's host API calls receive: everything the host knows about
 * one instance. */
struct cp_host {
    char *origin;          /* "jat-hmac": prefixes its log lines */
    char *group;           /* "encoding:hmac" */
    GHashTable *settings;  /* key -> value: a copy of its config group */
    GHashTable *read;      /* the keys config_get() was asked for during init() */
    size_t address_limit;  /* [limits] addresses */
    char *error_key;       /* from config_error(), until init() returns */
    char *error_message;
};

/* A plugin's operations, resolved once at load time: an optional one that
 * the plugin lacks (or that its ABI minor predates) is NULL here, so that no
 * caller needs to know which ABI minor added what. */
typedef struct resolved_ops {
    /* dispatch */
    int (*select)(void *state, const cp_dispatch_request_t *request,
                  const cp_resource_t *const *candidates, size_t n);
    void (*resource_online)(void *state, const cp_resource_t *resource);
    void (*resource_offline)(void *state, const cp_resource_t *resource);
    /* jat */
    int (*encode)(void *state, const char *jid, int64_t expires, char *token, size_t size);
    int (*decode)(void *state, const char *token, char *jid, size_t size);
    void (*forget)(void *state, const char *token);
} resolved_ops_t;

struct plugin {
    char *file;
    lt_dlhandle module;
    const cp_plugin_descriptor_t *descriptor;
    resolved_ops_t ops;
    void *state;
    int refs;
    bool initialised;
    bool uses_ltdl;        /* holds a reference on libltdl (lt_dlinit) */
    struct cp_host host;
};

const char *plugin_kind_prefix(cp_plugin_kind_t kind)
{
    return kind == CP_PLUGIN_DISPATCH ? "dispatch" : "jat";
}

/* The [proxy] key and the group prefix that name a plugin of KIND. */
static const char *kind_config_key(cp_plugin_kind_t kind)
{
    return kind == CP_PLUGIN_DISPATCH ? "dispatch" : "encoding";
}

static const char *kind_group_prefix(cp_plugin_kind_t kind)
{
    return kind == CP_PLUGIN_DISPATCH ? CONFIG_GROUP_DISPATCH_PREFIX
                                      : CONFIG_GROUP_ENCODING_PREFIX;
}

/* ---- The host API handed to plugins ------------------------------------ */

static void host_log(cp_host_t *host, cp_log_level_t level, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    log_writev(level, host->origin, fmt, args);
    va_end(args);
}

static const char *host_config_get(cp_host_t *host, const char *key)
{
    if (!key)
        return NULL;
    if (host->read)
        g_hash_table_add(host->read, g_strdup(key));
    return g_hash_table_lookup(host->settings, key);
}

static void host_config_error(cp_host_t *host, const char *key, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    g_free(host->error_key);
    g_free(host->error_message);
    host->error_key = g_strdup(key);
    host->error_message = g_strdup_vprintf(fmt, args);
    va_end(args);
}

static int host_random_bytes(cp_host_t *host, void *buf, size_t len)
{
    (void)host;
    unsigned char *out = buf;
    while (len > 0) {
        ssize_t n = getrandom(out, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return CP_EFAIL;
        }
        out += n;
        len -= (size_t)n;
    }
    return CP_OK;
}

static size_t host_address_limit(cp_host_t *host)
{
    return host->address_limit;
}

static const cp_host_api_t host_api = {
    .size = sizeof(cp_host_api_t),
    .log = host_log,
    .config_get = host_config_get,
    .config_error = host_config_error,
    .random_bytes = host_random_bytes,
    .address_limit = host_address_limit,
};

/* ---- Finding and checking the module ----------------------------------- */

/* Returns the directories to search, in order, as a new GStrv. */
static char **search_path(const config_t *config)
{
    GPtrArray *dirs = g_ptr_array_new();
    for (char **dir = config->plugin_path; dir && *dir; dir++)
        g_ptr_array_add(dirs, g_strdup(*dir));
    const char *env = g_getenv(PLUGIN_PATH_ENV);
    g_auto(GStrv) env_dirs = g_strsplit(env ? env : "", ":", -1);
    for (char **dir = env_dirs; *dir; dir++)
        if (**dir)
            g_ptr_array_add(dirs, g_strdup(*dir));
    g_ptr_array_add(dirs, g_strdup(PLUGINDIR));
    g_ptr_array_add(dirs, NULL);
    return (char **)g_ptr_array_free(dirs, FALSE);
}

/* lt_dlerror() mostly says "file not found" whatever went wrong; dlopen()
 * names the missing symbol or library.  Returns a new string. */
static char *explain_open_failure(const char *file)
{
    const char *lt_reason = lt_dlerror();
    void *probe = dlopen(file, RTLD_NOW | RTLD_LOCAL);
    if (probe) {
        dlclose(probe);
        return g_strdup(lt_reason ? lt_reason : "unknown error");
    }
    const char *reason = dlerror();
    return g_strdup(reason ? reason : (lt_reason ? lt_reason : "unknown error"));
}

/* The one place that reads an ops table member by member: CP_HAS_MEMBER
 * tells which members the plugin's ABI minor has. */
#define RESOLVE(ops, type, member) (CP_HAS_MEMBER(ops, type, member) ? (ops)->member : NULL)

static void resolve_ops(plugin_t *plugin)
{
    const cp_plugin_descriptor_t *d = plugin->descriptor;
    plugin->ops = (resolved_ops_t){0};
    if (!d->ops)
        return;
    if (d->kind == CP_PLUGIN_JAT) {
        const cp_jat_ops_t *ops = d->ops;
        plugin->ops.encode = RESOLVE(ops, cp_jat_ops_t, encode);
        plugin->ops.decode = RESOLVE(ops, cp_jat_ops_t, decode);
        plugin->ops.forget = RESOLVE(ops, cp_jat_ops_t, forget);
    } else if (d->kind == CP_PLUGIN_DISPATCH) {
        const cp_dispatch_ops_t *ops = d->ops;
        plugin->ops.select = RESOLVE(ops, cp_dispatch_ops_t, select);
        plugin->ops.resource_online = RESOLVE(ops, cp_dispatch_ops_t, resource_online);
        plugin->ops.resource_offline = RESOLVE(ops, cp_dispatch_ops_t, resource_offline);
    }
}

static bool check_descriptor(plugin_t *plugin, cp_plugin_kind_t kind, const char *name,
                             GError **error)
{
    const cp_plugin_descriptor_t *d = plugin->descriptor;
    const char *file = plugin->file;

    if (d->abi_major != CP_PLUGIN_ABI_MAJOR || d->abi_minor > CP_PLUGIN_ABI_MINOR) {
        g_set_error(error, PLUGIN_ERROR, PLUGIN_ERROR_INCOMPATIBLE,
                    "%s was built for plugin ABI %u.%u, but this client-proxy provides %d.%d",
                    file, d->abi_major, d->abi_minor, CP_PLUGIN_ABI_MAJOR, CP_PLUGIN_ABI_MINOR);
        return false;
    }
    if (d->kind != (uint32_t)kind) {
        g_set_error(error, PLUGIN_ERROR, PLUGIN_ERROR_INCOMPATIBLE,
                    "%s is not a %s plugin (its kind is %u)", file, plugin_kind_prefix(kind),
                    d->kind);
        return false;
    }
    if (!d->name || strcmp(d->name, name) != 0) {
        g_set_error(error, PLUGIN_ERROR, PLUGIN_ERROR_INCOMPATIBLE,
                    "%s calls itself \"%s\", not \"%s\"", file, d->name ? d->name : "(null)",
                    name);
        return false;
    }

    resolve_ops(plugin);
    bool complete = d->init && d->fini && d->ops;
    if (complete && kind == CP_PLUGIN_JAT)
        complete = plugin->ops.encode && plugin->ops.decode;
    else if (complete)
        complete = plugin->ops.select != NULL;
    if (!complete) {
        g_set_error(error, PLUGIN_ERROR, PLUGIN_ERROR_INCOMPATIBLE,
                    "%s lacks a required function (init, fini or an operation)", file);
        return false;
    }
    return true;
}

static void copy_settings(plugin_t *plugin, const config_t *config)
{
    plugin->host.settings = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_auto(GStrv) keys = g_key_file_get_keys(config->keyfile, plugin->host.group, NULL, NULL);
    for (char **key = keys; key && *key; key++) {
        char *value = g_key_file_get_string(config->keyfile, plugin->host.group, *key, NULL);
        if (value)
            g_hash_table_insert(plugin->host.settings, g_strdup(*key), g_strstrip(value));
    }
}

/* Prefixes ERROR's message with the config file, group and key that chose
 * this plugin, so that every loader error is one self-contained line. */
static void prefix_with_config_key(GError **error, const config_t *config, cp_plugin_kind_t kind)
{
    if (!error || !*error)
        return;
    g_autofree char *line = config_describe_error(config->path, CONFIG_GROUP_PROXY,
                                                  kind_config_key(kind), (*error)->message);
    g_free((*error)->message);
    (*error)->message = g_steal_pointer(&line);
}

static bool open_module(plugin_t *plugin, const config_t *config, cp_plugin_kind_t kind,
                        const char *name, GError **error)
{
    g_autofree char *basename = g_strdup_printf("%s-%s.so", plugin_kind_prefix(kind), name);
    g_auto(GStrv) dirs = search_path(config);
    for (char **dir = dirs; *dir && !plugin->file; dir++) {
        char *candidate = g_build_filename(*dir, basename, NULL);
        if (g_file_test(candidate, G_FILE_TEST_EXISTS))
            plugin->file = candidate;
        else
            g_free(candidate);
    }
    if (!plugin->file) {
        g_autofree char *searched = g_strjoinv(":", dirs);
        g_set_error(error, PLUGIN_ERROR, PLUGIN_ERROR_NOT_FOUND,
                    "no plugin named \"%s\": %s is in none of %s", name, basename, searched);
        return false;
    }

    plugin->module = lt_dlopen(plugin->file);
    if (!plugin->module) {
        g_autofree char *reason = explain_open_failure(plugin->file);
        g_set_error(error, PLUGIN_ERROR, PLUGIN_ERROR_OPEN, "cannot load %s: %s", plugin->file,
                    reason);
        return false;
    }
    plugin->descriptor = lt_dlsym(plugin->module, CP_PLUGIN_SYMBOL);
    if (!plugin->descriptor) {
        g_set_error(error, PLUGIN_ERROR, PLUGIN_ERROR_INCOMPATIBLE,
                    "%s is not a client-proxy plugin: it exports no %s", plugin->file,
                    CP_PLUGIN_SYMBOL);
        return false;
    }
    return true;
}

/* An option in the plugin's group that its init() never asked for is most
 * likely misspelt: from ABI 1.1 that is an error naming it, as for
 * client-proxy's own groups; a plugin built for 1.0 may read its options
 * later, so it only gets a warning. */
static bool check_unread_options(plugin_t *plugin, const config_t *config, GError **error)
{
    GHashTableIter iter;
    gpointer key;
    g_hash_table_iter_init(&iter, plugin->host.settings);
    while (g_hash_table_iter_next(&iter, &key, NULL)) {
        if (g_hash_table_contains(plugin->host.read, key))
            continue;
        if (plugin->descriptor->abi_minor >= 1) {
            g_autofree char *line = config_describe_error(
                config->path, plugin->host.group, key,
                "unknown option: the plugin has no option of this name");
            g_set_error_literal(error, PLUGIN_ERROR, PLUGIN_ERROR_INIT, line);
            return false;
        }
        log_warning("%s: [%s] %s: the plugin did not read this option at start (misspelt?)",
                    config->path, plugin->host.group, (const char *)key);
    }
    g_clear_pointer(&plugin->host.read, g_hash_table_destroy);
    return true;
}

/* Checks PLUGIN's descriptor and runs its init() with its configuration
 * group.  Takes PLUGIN; returns it, or NULL with ERROR set. */
static plugin_t *instantiate(plugin_t *plugin_in, const config_t *config, cp_plugin_kind_t kind,
                             const char *name, GError **error)
{
    g_autoptr(plugin_t) plugin = plugin_in;
    if (!check_descriptor(plugin, kind, name, error)) {
        prefix_with_config_key(error, config, kind);
        return NULL;
    }

    plugin->host.origin = g_strdup_printf("%s-%s", plugin_kind_prefix(kind), name);
    plugin->host.group = g_strconcat(kind_group_prefix(kind), name, NULL);
    copy_settings(plugin, config);
    plugin->host.address_limit = (size_t)config->addresses;
    plugin->host.read = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    int status = plugin->descriptor->init(&host_api, &plugin->host, &plugin->state);
    if (status != CP_OK) {
        const char *message = plugin->host.error_message
                                  ? plugin->host.error_message
                                  : "the plugin refused to start (see the lines above)";
        g_autofree char *line = config_describe_error(config->path, plugin->host.group,
                                                      plugin->host.error_key, message);
        g_set_error_literal(error, PLUGIN_ERROR, PLUGIN_ERROR_INIT, line);
        return NULL;
    }
    plugin->initialised = true;
    plugin->refs = 1;
    if (!check_unread_options(plugin, config, error))
        return NULL;
    g_clear_pointer(&plugin->host.error_key, g_free);
    g_clear_pointer(&plugin->host.error_message, g_free);
    log_debug("loaded %s (%s)", plugin->file,
              plugin->descriptor->description ? plugin->descriptor->description : "");
    return g_steal_pointer(&plugin);
}

plugin_t *plugin_load(const config_t *config, cp_plugin_kind_t kind, const char *name,
                      GError **error)
{
    if (lt_dlinit() != 0) {
        g_set_error(error, PLUGIN_ERROR, PLUGIN_ERROR_OPEN, "cannot initialise libltdl: %s",
                    lt_dlerror());
        return NULL;
    }
    g_autoptr(plugin_t) plugin = g_new0(plugin_t, 1);
    plugin->uses_ltdl = true;
    if (!open_module(plugin, config, kind, name, error)) {
        prefix_with_config_key(error, config, kind);
        return NULL;
    }
    return instantiate(g_steal_pointer(&plugin), config, kind, name, error);
}

plugin_t *plugin_new_builtin(const config_t *config, const cp_plugin_descriptor_t *descriptor,
                             GError **error)
{
    plugin_t *plugin = g_new0(plugin_t, 1);
    plugin->descriptor = descriptor;
    plugin->file = g_strdup_printf("(built-in %s)", descriptor->name ? descriptor->name : "?");
    return instantiate(plugin, config, (cp_plugin_kind_t)descriptor->kind,
                       descriptor->name ? descriptor->name : "", error);
}

plugin_t *plugin_ref(plugin_t *plugin)
{
    plugin->refs++;
    return plugin;
}

void plugin_unref(plugin_t *plugin)
{
    if (!plugin || --plugin->refs > 0)
        return;
    if (plugin->initialised)
        plugin->descriptor->fini(plugin->state);
    if (plugin->module)
        lt_dlclose(plugin->module);
    if (plugin->uses_ltdl)
        lt_dlexit();
    g_free(plugin->file);
    g_free(plugin->host.origin);
    g_free(plugin->host.group);
    if (plugin->host.settings)
        g_hash_table_destroy(plugin->host.settings);
    if (plugin->host.read)
        g_hash_table_destroy(plugin->host.read);
    g_free(plugin->host.error_key);
    g_free(plugin->host.error_message);
    g_free(plugin);
}

int plugin_select(plugin_t *dispatch, const cp_dispatch_request_t *request,
                  const cp_resource_t *const *candidates, size_t n)
{
    return dispatch->ops.select(dispatch->state, request, candidates, n);
}

void plugin_resource_online(plugin_t *dispatch, const cp_resource_t *resource)
{
    if (dispatch->ops.resource_online)
        dispatch->ops.resource_online(dispatch->state, resource);
}

void plugin_resource_offline(plugin_t *dispatch, const cp_resource_t *resource)
{
    if (dispatch->ops.resource_offline)
        dispatch->ops.resource_offline(dispatch->state, resource);
}

int plugin_encode(plugin_t *jat, const char *jid, int64_t expires, char *token, size_t size)
{
    return jat->ops.encode(jat->state, jid, expires, token, size);
}

int plugin_decode(plugin_t *jat, const char *token, char *jid, size_t size)
{
    return jat->ops.decode(jat->state, token, jid, size);
}

void plugin_forget(plugin_t *jat, const char *token)
{
    if (jat->ops.forget)
        jat->ops.forget(jat->state, token);
}

void *plugin_state(const plugin_t *plugin)
{
    return plugin->state;
}

const char *plugin_file(const plugin_t *plugin)
{
    return plugin->file;
}
