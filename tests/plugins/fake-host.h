/* A fake plugin host for unit tests: the part of core/ a plugin sees,
 * replaced at link time.  Configuration comes from an in-memory key/value
 * group; config_error() and log() lines are recorded so that tests can
 * assert on them. */
#ifndef TESTS_PLUGINS_FAKE_HOST_H
#define TESTS_PLUGINS_FAKE_HOST_H

#include <stdbool.h>
#include <stddef.h>

#include <client-proxy/plugin.h>

/** The descriptor of the one plugin compiled into each test executable. */
extern const cp_plugin_descriptor_t cp_plugin_descriptor;

/** The host API table, as core/ would hand it to init(). */
extern const cp_host_api_t fake_host_api;

/** A new host with an empty configuration group.  Free with fake_host_free(). */
cp_host_t *fake_host_new(void);
void fake_host_free(cp_host_t *host);

/** Sets KEY to VALUE (copied) in the plugin's configuration group. */
void fake_host_set(cp_host_t *host, const char *key, const char *value);

/** What address_limit() says from now on (100000 at first). */
void fake_host_set_address_limit(cp_host_t *host, size_t limit);

/** Makes random_bytes() fail from now on. */
void fake_host_break_random(cp_host_t *host);

/** Number of config_error() calls so far. */
size_t fake_host_error_count(const cp_host_t *host);
/** True when a config_error() for KEY (NULL: the group) had a message
 *  containing NEEDLE. */
bool fake_host_has_error(const cp_host_t *host, const char *key, const char *needle);

/** Number of log lines at LEVEL whose text contains NEEDLE ("" matches all). */
size_t fake_host_log_count(const cp_host_t *host, cp_log_level_t level, const char *needle);
/** All recorded text (errors and logs), one line each; owned by the host. */
const char *fake_host_transcript(cp_host_t *host);

/* ---- Helpers for the tests ------------------------------------------- */

/** Calls init() through the descriptor with HOST; returns its status. */
int fake_host_init_plugin(cp_host_t *host, void **state);

/** The descriptor's ops as a JAT table (asserts the kind). */
const cp_jat_ops_t *fake_host_jat_ops(void);
/** The descriptor's ops as a dispatch table (asserts the kind). */
const cp_dispatch_ops_t *fake_host_dispatch_ops(void);

/** Current time in seconds since the Unix epoch. */
long long fake_host_now(void);

#endif
