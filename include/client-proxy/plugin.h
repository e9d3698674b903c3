/* client-proxy plugin ABI.
 *
 * A plugin is a shared module named <kind>-<name>.so ("dispatch-random.so",
 * "jat-hmac.so") that exports exactly one data symbol, a
 * cp_plugin_descriptor_t named by CP_PLUGIN_SYMBOL.  Define it with
 * CP_PLUGIN_DEFINE().
 *
 * Lifecycle, as the host guarantees it:
 *   1. The host loads the module and checks abi_major == CP_PLUGIN_ABI_MAJOR
 *      and abi_minor <= its own CP_PLUGIN_ABI_MINOR; otherwise the module is
 *      closed and never called.
 *   2. init() once per instance.  A module may be instantiated more than once
 *      (for example across a configuration reload), so keep all state in
 *      *state, never in globals.
 *   3. The ops are called any number of times between init() and fini().
 *   4. fini() once, after the last call into the ops.
 *
 * Threading: none.  The host calls every function from its one thread, and
 * never re-enters a plugin: no call starts before the previous one returned.
 *
 * What else the host guarantees:
 *   - init() sees only the plugin's own configuration group; a plugin never
 *     reads the operator's secrets.
 *   - The host never logs the value of an option named secret, seed or
 *     password, or ending in _secret, _seed, _password or _key (not
 *     key_file, a path, nor key alone), so give every option that holds a
 *     secret such a name, and quote its value in no log() or
 *     config_error() of your own.
 *   - select() is called with at least one candidate.  The candidates are
 *     the online resources that match the operator's [proxy] resources
 *     filter and take requests: not draining (presence show "dnd" or "xa",
 *     or drained by an admin), not benched for failing (unhealthy_after),
 *     and not on their way out.
 *   - A cp_resource_t pointer stays the same from resource_online() to
 *     resource_offline() for it; the candidates array itself is rebuilt
 *     when presence changes, so never keep indices across calls.
 *   - encode() and decode() get buffers of at least CP_TOKEN_MAX + 1 and
 *     CP_JID_MAX + 1 bytes.  decode() is called only for replies that come
 *     from a resource of the target; the token is still untrusted.
 *   - Every token that encode() returned is passed to forget() exactly once,
 *     when its request ends for whatever reason (reply, timeout, the
 *     resource going offline, a disconnect, shutdown), when the message it
 *     was made for has been forwarded, or at once if the host could not
 *     use it.
 *   - fini() comes after the last call into the ops, also when client-proxy
 *     stops with requests in flight.
 *
 * Ownership: every pointer the host passes in is borrowed and valid only for
 * the duration of the call, unless its documentation says otherwise.  A
 * plugin never frees what the host gave it, and the host never frees what a
 * plugin returns except through the plugin's own functions.
 *
 * Versioning: tables that may grow (cp_host_api_t, the ops tables,
 * cp_resource_t) begin with their own size and only ever grow at their end.
 * A plugin must check host_api->size before using a member added after the
 * ABI minor it was built for.  cp_dispatch_request_t also grows at its end;
 * it needs no size, since the host never loads a plugin of a newer minor.
 *
 * Addresses (ABI 1.1).  Every token is also the sender's address: the
 * implementing client may keep it and write to it later, to send the user
 * a message or an IQ request.  So encode()'s EXPIRES is the end of the
 * token's life as an address ([proxy] address_lifetime from now), and from
 * ABI 1.1 forget() means "this request or message has ended", not "this
 * token is dead": an encoding that keeps state per token keeps it until
 * the token's expiry, pinned while requests made with it are in flight
 * (between encode() and forget()), and within host_api->address_limit(),
 * dropping the least recently used unpinned tokens first.  decode() may be
 * called for a token the implementing client wrote itself, at any time
 * before its expiry, and also for a token encode() never made (raw and
 * base32 tokens can be written by anyone).  A plugin built for ABI 1.0
 * still works: its tokens serve as addresses for as long as it decodes
 * them.
 */
#ifndef CLIENT_PROXY_PLUGIN_H
#define CLIENT_PROXY_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A major bump breaks every plugin; a minor bump only appends. */
#define CP_PLUGIN_ABI_MAJOR 1
#define CP_PLUGIN_ABI_MINOR 1

/** Name of the one symbol a plugin exports. */
#define CP_PLUGIN_SYMBOL "cp_plugin_descriptor"

/** Longest full JID (RFC 7622: three parts of at most 1023 bytes each). */
#define CP_JID_MAX 3071
/** Longest token: it is used as a resourcepart, so at most 1023 bytes. */
#define CP_TOKEN_MAX 1023

#if defined(__GNUC__)
#define CP_PLUGIN_EXPORT __attribute__((visibility("default")))
#define CP_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define CP_PLUGIN_EXPORT
#define CP_PRINTF(fmt, args)
#endif

/** True when TABLE (a pointer to a struct that begins with its size) is
 *  large enough to hold MEMBER: use it before reading a member added after
 *  the ABI minor the other side was built for. */
#define CP_HAS_MEMBER(table, type, member) \
    ((table)->size >= offsetof(type, member) + sizeof(((type *)0)->member))

/** Status codes returned across the ABI.  Zero is success. */
typedef enum cp_status {
    CP_OK = 0,
    CP_EFAIL = -1,      /**< unspecified failure; the plugin logged why */
    CP_ENOMEM = -2,     /**< out of memory */
    CP_EINVAL = -3,     /**< invalid argument or configuration */
    CP_ETOOLONG = -4,   /**< the result does not fit the buffer or limit */
    CP_EBADTOKEN = -5,  /**< token malformed, forged or unknown */
    CP_EEXPIRED = -6,   /**< token genuine but past its expiry */
    CP_EDECLINE = -7,   /**< dispatch: no candidate is suitable */
} cp_status_t;

typedef enum cp_log_level {
    CP_LOG_ERROR = 0,
    CP_LOG_WARNING = 1,
    CP_LOG_INFO = 2,
    CP_LOG_DEBUG = 3,
} cp_log_level_t;

typedef enum cp_plugin_kind {
    CP_PLUGIN_DISPATCH = 1, /**< file prefix "dispatch-", ops cp_dispatch_ops_t */
    CP_PLUGIN_JAT = 2,      /**< file prefix "jat-", ops cp_jat_ops_t */
} cp_plugin_kind_t;

/** The host's handle for one plugin instance.  Opaque to plugins. */
typedef struct cp_host cp_host_t;

/** Services the host offers a plugin.  Append-only; see "Versioning". */
typedef struct cp_host_api {
    size_t size; /**< sizeof(cp_host_api_t) as the host was built */

    /** Logs a line prefixed with the plugin's name.  Never log secrets. */
    void (*log)(cp_host_t *host, cp_log_level_t level, const char *fmt, ...) CP_PRINTF(3, 4);

    /** Returns the value of KEY in the plugin's own configuration group
     *  ("[dispatch:NAME]" or "[encoding:NAME]"), or NULL when it is absent.
     *  The string is owned by the host and stays valid until fini().
     *  From ABI 1.1, ask for every option you have in init(): the host
     *  refuses to load a plugin whose group holds an option init() never
     *  asked for (a misspelt name), naming it. */
    const char *(*config_get)(cp_host_t *host, const char *key);

    /** Reports why the value of KEY (NULL: the group as a whole) cannot be
     *  used.  Call it, then return CP_EINVAL from init(): the host prints one
     *  line naming the file, the group and the key. */
    void (*config_error)(cp_host_t *host, const char *key, const char *fmt, ...) CP_PRINTF(3, 4);

    /** Fills BUF with LEN bytes from the kernel's CSPRNG.
     *  Returns CP_OK or CP_EFAIL. */
    int (*random_bytes)(cp_host_t *host, void *buf, size_t len);

    /** ABI 1.1.  How many addresses an encoding that keeps state per token
     *  may keep at most ([limits] addresses), pinned ones aside (see
     *  "Addresses" above). */
    size_t (*address_limit)(cp_host_t *host);
} cp_host_api_t;

/* ---- JAT encodings ---------------------------------------------------- */

/** How a sender's JID is written into, and read back from, a token. */
typedef struct cp_jat_ops {
    size_t size; /**< sizeof(cp_jat_ops_t) as the plugin was built */

    /** Writes the token for JID (a full JID, or a bare one) into TOKEN,
     *  NUL-terminated.  TOKEN has TOKEN_SIZE bytes (at least
     *  CP_TOKEN_MAX + 1).  EXPIRES is in seconds since the Unix epoch: the
     *  token must decode until then, and need not after.  From ABI 1.1 it is
     *  the end of the token's life as an address (see "Addresses"); before,
     *  the request's deadline.  Giving the same JID the same token while it
     *  lives makes a stable address.  Every byte must be valid in a JID
     *  resourcepart.  Returns CP_OK, CP_ETOOLONG, or CP_EFAIL. */
    int (*encode)(void *state, const char *jid, int64_t expires, char *token, size_t token_size);

    /** Writes the JID that TOKEN stands for into JID, NUL-terminated.  JID
     *  has JID_SIZE bytes (at least CP_JID_MAX + 1).  TOKEN is untrusted
     *  input: it comes from the implementing client.  Authenticating
     *  encodings must compare MACs in constant time.
     *  Returns CP_OK, CP_EBADTOKEN, or CP_EEXPIRED. */
    int (*decode)(void *state, const char *token, char *jid, size_t jid_size);

    /** Optional (may be NULL).  The request or message that TOKEN was made
     *  for has ended (answered, timed out, abandoned, or forwarded).  Before
     *  ABI 1.1: state kept for it can go.  From ABI 1.1: the token is no
     *  longer pinned, but still the sender's address until its expiry (see
     *  "Addresses"). */
    void (*forget)(void *state, const char *token);
} cp_jat_ops_t;

/* ---- Dispatch strategies ---------------------------------------------- */

/** One online resource of the implementing client, as the host sees it.
 *  Owned by the host; valid until resource_offline() returns for it.
 *  Append-only: members may be added at the end. */
typedef struct cp_resource {
    size_t size;                /**< sizeof(cp_resource_t) as the host was built */
    const char *name;           /**< resourcepart, never NULL */
    const char *show;           /**< "" when plainly available, else "chat", "away", "xa" or "dnd" */
    int priority;               /**< presence priority, -128..127 */
    unsigned in_flight;         /**< requests sent to it and not yet answered */
    double latency_ms;          /**< moving average of its reply times; 0 until it replied */
    unsigned recent_failures;   /**< errors and timeouts among its recent replies */
} cp_resource_t;

/** What a strategy knows of the request it places.  Borrowed for the call,
 *  and every string and array in it.  Grows at its end (see "Versioning"). */
typedef struct cp_dispatch_request {
    const char *sender;     /**< full JID of the requester */
    const char *type;       /**< "get" or "set" for an IQ request; from ABI
                                 1.1, for a message, its type: "chat",
                                 "groupchat", "headline" or "normal" */
    const char *payload_ns; /**< namespace of the payload element (a
                                 message's first child), or NULL */
    /** ABI 1.1.  The payload element's attributes as name, value pairs,
     *  NULL-terminated, never NULL (empty when it has none).  Names are as
     *  written, prefixed ones included ("xml:lang").  Values unescaped. */
    const char *const *payload_attributes;
} cp_dispatch_request_t;

typedef struct cp_dispatch_ops {
    size_t size; /**< sizeof(cp_dispatch_ops_t) as the plugin was built */

    /** Chooses a resource for REQUEST among CANDIDATES (N >= 1 pointers,
     *  borrowed for the call).  Returns the chosen index, or CP_EDECLINE
     *  when none is suitable: the sender then gets service-unavailable.
     *  A request held ([proxy] hold) while no resource could take it is
     *  offered again, oldest first, whenever the candidates change; one
     *  declined then waits on, and so do the younger ones behind it. */
    int (*select)(void *state, const cp_dispatch_request_t *request,
                  const cp_resource_t *const *candidates, size_t n);

    /** Optional.  RESOURCE came online (borrowed; the pointer stays the
     *  same until resource_offline() for it). */
    void (*resource_online)(void *state, const cp_resource_t *resource);

    /** Optional.  RESOURCE is going offline; the pointer dies after this. */
    void (*resource_offline)(void *state, const cp_resource_t *resource);
} cp_dispatch_ops_t;

/* ---- The descriptor ---------------------------------------------------- */

typedef struct cp_plugin_descriptor {
    uint32_t abi_major;         /**< CP_PLUGIN_ABI_MAJOR the plugin was built with */
    uint32_t abi_minor;         /**< CP_PLUGIN_ABI_MINOR the plugin was built with */
    uint32_t kind;              /**< a cp_plugin_kind_t */
    const char *name;           /**< "random", "hmac": the file is <kind>-<name>.so */
    const char *description;    /**< one line for operators */

    /** Creates an instance.  API and HOST stay valid until fini().  Stores
     *  the instance's state (owned by the plugin) in *STATE.  On failure,
     *  reports through api->config_error() or api->log() and returns a
     *  negative cp_status_t; fini() is then not called. */
    int (*init)(const cp_host_api_t *api, cp_host_t *host, void **state);

    /** Destroys STATE.  Not called when init() failed. */
    void (*fini)(void *state);

    /** A const cp_dispatch_ops_t * or const cp_jat_ops_t *, by kind. */
    const void *ops;
} cp_plugin_descriptor_t;

/** Defines the one exported descriptor of a plugin. */
#define CP_PLUGIN_DEFINE(kind_, name_, description_, init_, fini_, ops_)            \
    CP_PLUGIN_EXPORT const cp_plugin_descriptor_t cp_plugin_descriptor = {          \
        .abi_major = CP_PLUGIN_ABI_MAJOR,                                           \
        .abi_minor = CP_PLUGIN_ABI_MINOR,                                           \
        .kind = (kind_),                                                            \
        .name = (name_),                                                            \
        .description = (description_),                                             \
        .init = (init_),                                                            \
        .fini = (fini_),                                                            \
        .ops = (ops_),                                                              \
    }

#ifdef __cplusplus
}
#endif

#endif /* CLIENT_PROXY_PLUGIN_H */
