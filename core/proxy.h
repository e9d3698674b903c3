/* Runs client-proxy: the connection, the router, their timers and signals. */
#ifndef CP_CORE_PROXY_H
#define CP_CORE_PROXY_H

#include "config.h"
#include "plugin-loader.h"

/* Runs until SIGTERM or SIGINT.  CONFIG, DISPATCH and JAT are borrowed.
 * Returns the process exit status. */
int proxy_run(const config_t *config, plugin_t *dispatch, plugin_t *jat);

#endif
