/* Runs client-proxy: the connection, the router, their timers and signals,
 * and reloads of the configuration. */
#ifndef CP_CORE_PROXY_H
#define CP_CORE_PROXY_H

#include <stdbool.h>

#include <glib.h>

#include "config.h"
#include "plugin-loader.h"

/* A configuration and the two plugins it names, loaded together. */
typedef struct proxy_setup {
    config_t *config;
    plugin_t *dispatch;
    plugin_t *jat;
} proxy_setup_t;

/* Loads the file at PATH and both plugins into SETUP (owned by the caller:
 * proxy_setup_clear()).  Returns false, with SETUP empty and ERROR set to
 * one line naming the file, the group and the key. */
bool proxy_setup_load(const char *path, proxy_setup_t *setup, GError **error);

/* Releases what SETUP holds and empties it. */
void proxy_setup_clear(proxy_setup_t *setup);

/* Runs until SIGTERM or SIGINT; SIGHUP reloads SETUP's file.  Takes what
 * SETUP holds and empties it.  Returns the process exit status. */
int proxy_run(proxy_setup_t *setup);

#endif
