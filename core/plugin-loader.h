/* Finds, loads, checks and instantiates plugins (libltdl). */
#ifndef CP_CORE_PLUGIN_LOADER_H
#define CP_CORE_PLUGIN_LOADER_H

#include <glib.h>

#include <client-proxy/plugin.h>

#include "config.h"

/* Environment variable with more plugin directories, colon-separated. */
#define PLUGIN_PATH_ENV "CLIENT_PROXY_PLUGIN_PATH"

#define PLUGIN_ERROR (plugin_error_quark())
GQuark plugin_error_quark(void);

typedef enum {
    PLUGIN_ERROR_NOT_FOUND,   /* no <kind>-<name>.so in any directory */
    PLUGIN_ERROR_OPEN,        /* the file exists but cannot be loaded */
    PLUGIN_ERROR_INCOMPATIBLE,/* wrong ABI version, kind, name or ops table */
    PLUGIN_ERROR_INIT,        /* its init() refused its configuration */
} plugin_error_t;

/* One initialised instance of a plugin. */
typedef struct plugin plugin_t;

/* Loads <kind>-<name>.so from the first directory of config->plugin_path,
 * $CLIENT_PROXY_PLUGIN_PATH and the install directory that has it, checks
 * its descriptor, and runs its init() with the plugin's own configuration
 * group.  Returns a new instance for plugin_unref(), or NULL with ERROR set
 * to one line naming the config file, the group and the key.  CONFIG is only
 * read during the call: the plugin keeps a copy of its group. */
plugin_t *plugin_load(const config_t *config, cp_plugin_kind_t kind, const char *name,
                      GError **error);

/* Instantiates a plugin linked into the program (tests use it for fakes),
 * with the same checks and configuration as plugin_load().  DESCRIPTOR is
 * borrowed and must outlive the instance. */
plugin_t *plugin_new_builtin(const config_t *config, const cp_plugin_descriptor_t *descriptor,
                             GError **error);

/* Takes another reference on PLUGIN (requests in flight hold the encoding
 * that made their token, across a reload).  Returns PLUGIN. */
plugin_t *plugin_ref(plugin_t *plugin);

/* Drops a reference; the last one runs fini() and closes the module.  NULL
 * is allowed. */
void plugin_unref(plugin_t *plugin);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(plugin_t, plugin_unref)

/* Calls into a plugin's ops, with its state.  The ops are resolved once at
 * load time, so an optional one the plugin lacks (or that its ABI minor
 * predates) does nothing here.  Arguments and results as documented in
 * client-proxy/plugin.h; every pointer is borrowed for the call. */
int plugin_select(plugin_t *dispatch, const cp_dispatch_request_t *request,
                  const cp_resource_t *const *candidates, size_t n);
void plugin_resource_online(plugin_t *dispatch, const cp_resource_t *resource);
void plugin_resource_offline(plugin_t *dispatch, const cp_resource_t *resource);
int plugin_encode(plugin_t *jat, const char *jid, int64_t expires, char *token, size_t size);
int plugin_decode(plugin_t *jat, const char *token, char *jid, size_t size);
void plugin_forget(plugin_t *jat, const char *token);

/* The state that its init() returned (tests inspect their fakes' state). */
void *plugin_state(const plugin_t *plugin);
/* Path of the module file, for messages.  Owned by PLUGIN. */
const char *plugin_file(const plugin_t *plugin);

/* "dispatch" or "jat": the file-name prefix of KIND. */
const char *plugin_kind_prefix(cp_plugin_kind_t kind);

#endif
