/* The operator's configuration: a GLib keyfile, validated as a whole. */
#ifndef CP_CORE_CONFIG_H
#define CP_CORE_CONFIG_H

#include <stdbool.h>

#include <glib.h>

#define CONFIG_GROUP_COMPONENT "component"
#define CONFIG_GROUP_PROXY "proxy"
#define CONFIG_GROUP_PLUGINS "plugins"
#define CONFIG_GROUP_LIMITS "limits"
#define CONFIG_GROUP_METRICS "metrics"
#define CONFIG_GROUP_ADMIN "admin"
/* Plugins read only their own group: "dispatch:NAME" or "encoding:NAME". */
#define CONFIG_GROUP_DISPATCH_PREFIX "dispatch:"
#define CONFIG_GROUP_ENCODING_PREFIX "encoding:"

#define CONFIG_DEFAULT_PORT 5347
#define CONFIG_DEFAULT_DISPATCH "random"
#define CONFIG_DEFAULT_ENCODING "hmac"
#define CONFIG_DEFAULT_REQUEST_TIMEOUT 30
#define CONFIG_MAX_REQUEST_TIMEOUT 3600
#define CONFIG_DEFAULT_RECONNECT_INITIAL 1
#define CONFIG_DEFAULT_RECONNECT_MAX 60
#define CONFIG_DEFAULT_KEEPALIVE 60
#define CONFIG_DEFAULT_UNHEALTHY_AFTER 3
#define CONFIG_DEFAULT_IN_FLIGHT 10000
#define CONFIG_DEFAULT_IN_FLIGHT_PER_SENDER 100
#define CONFIG_DEFAULT_ADDRESS_LIFETIME 86400
#define CONFIG_DEFAULT_ADDRESSES 100000
#define CONFIG_DEFAULT_PING_INTERVAL 10
#define CONFIG_DEFAULT_PING_TIMEOUT 5

#define CONFIG_ERROR (config_error_quark())
GQuark config_error_quark(void);

typedef enum {
    CONFIG_ERROR_FILE,    /* missing or unreadable file, or not a keyfile */
    CONFIG_ERROR_MISSING, /* a required key is absent */
    CONFIG_ERROR_INVALID, /* a value is malformed or out of range */
} config_error_t;

typedef struct config {
    char *path;         /* the file it was read from */
    GKeyFile *keyfile;  /* owned; plugins read their own groups from it */

    /* [component] */
    char *domain;       /* the component's JID, e.g. proxy.example.org */
    char *instance_domain; /* this instance's own domain, served on the same
                              stream: requests go out from it, presence and
                              replies come back to it; default: domain */
    char *secret;       /* never log it */
    char *server;       /* host name or address of the XMPP server */
    int port;
    int reconnect_initial; /* seconds before the first reconnect attempt */
    int reconnect_max;     /* cap of the doubling backoff, seconds */
    int keepalive;         /* a dead connection is noticed within this, seconds */

    /* [proxy] */
    char *target;       /* bare JID of the implementing client */
    char *dispatch;     /* plugin name: dispatch-<name>.so */
    char *encoding;     /* plugin name: jat-<name>.so */
    int request_timeout; /* seconds */
    char **resources;   /* NULL-terminated globs a resource must match to get
                           requests; NULL when every resource may */
    bool retry_get;     /* retry a get once elsewhere when its resource leaves */
    int unhealthy_after; /* consecutive timeouts that bench a resource; 0: never */
    int address_lifetime; /* seconds an address stays valid after it was given out */
    int hold;            /* seconds a request waits for a resource when none can
                            take it; 0: answered at once */
    bool discover_by_ping; /* [proxy] discovery = ping: no subscription; the
                              resources named in [proxy] resources are pinged */
    int ping_interval;   /* discovery = ping: seconds between pings */
    int ping_timeout;    /* discovery = ping: seconds a ping may go unanswered */

    /* [limits]: what any number of senders can make client-proxy hold */
    int in_flight;            /* requests in flight, in all */
    int in_flight_per_sender; /* requests in flight per sender (bare JID) */
    double rate_per_sender;   /* requests per second per sender; 0: no limit */
    int burst_per_sender;     /* requests a sender may send at once */
    int addresses;            /* addresses a stateful encoding keeps at most, and
                                 users the service's presence is sent to */

    /* [plugins] */
    char **plugin_path; /* NULL-terminated; directories searched first */

    /* [metrics] */
    char *metrics_host; /* listen's host (IPv6 without brackets), or NULL: no
                           HTTP listener */
    int metrics_port;

    /* [admin] */
    char **admin_jids;  /* NULL-terminated bare JIDs, lowercased, whose ad-hoc
                           commands client-proxy runs itself; NULL: none */
} config_t;

/* Reads and validates PATH.  Returns a new config_t to be freed with
 * config_free(), or NULL with ERROR set to one line naming the file, the
 * group and the key: "FILE: [group] key: what is wrong", or the line: "FILE:
 * line N: what is wrong".  An error never quotes [component] secret, nor a
 * line GLib cannot parse.  A file that holds [component] secret must not be
 * readable by group or others. */
config_t *config_load(const char *path, GError **error);

void config_free(config_t *config);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(config_t, config_free)

/* True when RESOURCE matches one of PATTERNS ([proxy] resources), or when
 * PATTERNS is NULL (no filter). */
bool config_resource_allowed(char *const *patterns, const char *resource);

/* True when an option named KEY, in any group, holds a secret, whose value
 * is never logged: KEY is "secret", "seed" or "password", or ends in
 * "_secret", "_seed", "_password" or "_key" ("key_file", a path, does not;
 * neither does "key" alone: [dispatch:sticky] key is no secret).
 * README.md's configuration section and plugin.h tell operators and plugin
 * authors the same rule. */
bool config_key_is_secret(const char *key);

/* Lists what differs between OLD and NEW, one "[group] key" per change,
 * with "(old -> new)" values except for secrets (config_key_is_secret()).
 * Returns a new GStrv, empty when nothing changed. */
char **config_changes(const config_t *old_config, const config_t *new_config);

/* True when OLD and NEW differ in [component], in the target, or in how the
 * target's resources are discovered: a change that needs a new stream (the
 * resources known are forgotten, and found again the new way). */
bool config_stream_changed(const config_t *old_config, const config_t *new_config);

/* Prefixes PATH/GROUP/KEY context to MESSAGE, for errors found after
 * loading (by plugins) as well as while loading.  KEY may be NULL.  Control
 * characters are written as \xNN, so the result is always one line.
 * Returns a new string. */
char *config_describe_error(const char *path, const char *group, const char *key,
                            const char *message);

#endif
