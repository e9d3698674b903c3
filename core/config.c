/* The operator's configuration: see config.h. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jid.h"

G_DEFINE_QUARK(client-proxy-config-error-quark, config_error)

/* The keys each of our groups accepts: a misspelt key is an error rather than
 * a setting silently ignored. */
static const char *const component_keys[] = {
    "domain", "instance_domain", "secret", "server", "port", "reconnect_initial",
    "reconnect_max", "keepalive", NULL};
static const char *const proxy_keys[] = {
    "target",    "dispatch",  "encoding",        "request_timeout",  "resources",
    "retry_get", "unhealthy_after", "address_lifetime", "hold",       "discovery",
    "ping_interval", "ping_timeout", NULL};
static const char *const plugins_keys[] = {"path", NULL};
static const char *const metrics_keys[] = {"listen", NULL};
static const char *const admin_keys[] = {"jids", NULL};
static const char *const limits_keys[] = {"in_flight", "in_flight_per_sender", "rate_per_sender",
                                          "burst_per_sender", "addresses", NULL};

/* Writes control characters as \xNN: an error stays one line even when it
 * quotes a value with a newline in it (a keyfile's "\n" escape). */
static char *one_line(const char *text)
{
    GString *line = g_string_sized_new(strlen(text));
    for (const char *p = text; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            g_string_append_printf(line, "\\x%02x", (unsigned char)*p);
        else
            g_string_append_c(line, *p);
    }
    return g_string_free(line, FALSE);
}

char *config_describe_error(const char *path, const char *group, const char *key,
                            const char *message)
{
    g_autofree char *raw = key ? g_strdup_printf("%s: [%s] %s: %s", path, group, key, message)
                               : g_strdup_printf("%s: [%s]: %s", path, group, message);
    return one_line(raw);
}

static void set_error(GError **error, const config_t *config, config_error_t code,
                      const char *group, const char *key, const char *fmt, ...) G_GNUC_PRINTF(6, 7);

static void set_error(GError **error, const config_t *config, config_error_t code,
                      const char *group, const char *key, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    g_autofree char *message = g_strdup_vprintf(fmt, args);
    va_end(args);
    g_autofree char *line = config_describe_error(config->path, group, key, message);
    g_set_error_literal(error, CONFIG_ERROR, code, line);
}

/* Returns a new string, DEFAULT_VALUE when the key is absent and a default
 * exists, or NULL with ERROR set. */
static char *read_string(const config_t *config, const char *group, const char *key,
                         const char *default_value, GError **error)
{
    if (!g_key_file_has_key(config->keyfile, group, key, NULL)) {
        if (default_value)
            return g_strdup(default_value);
        set_error(error, config, CONFIG_ERROR_MISSING, group, key, "required key is missing");
        return NULL;
    }
    char *value = g_key_file_get_string(config->keyfile, group, key, NULL);
    if (!value) {
        set_error(error, config, CONFIG_ERROR_INVALID, group, key, "not a valid string");
        return NULL;
    }
    g_strstrip(value);
    if (*value == '\0') {
        g_free(value);
        set_error(error, config, CONFIG_ERROR_INVALID, group, key, "must not be empty");
        return NULL;
    }
    return value;
}

static bool read_int(const config_t *config, const char *group, const char *key,
                     int default_value, int min, int max, int *out, GError **error)
{
    if (!g_key_file_has_key(config->keyfile, group, key, NULL)) {
        *out = default_value;
        return true;
    }
    g_autofree char *text = g_key_file_get_string(config->keyfile, group, key, NULL);
    gint64 value;
    if (!text || !g_ascii_string_to_signed(g_strstrip(text), 10, min, max, &value, NULL)) {
        set_error(error, config, CONFIG_ERROR_INVALID, group, key,
                  "expected a whole number from %d to %d, got \"%s\"", min, max,
                  text ? text : "");
        return false;
    }
    *out = (int)value;
    return true;
}

static bool read_bool(const config_t *config, const char *group, const char *key,
                      bool default_value, bool *out, GError **error)
{
    if (!g_key_file_has_key(config->keyfile, group, key, NULL)) {
        *out = default_value;
        return true;
    }
    g_autofree char *text = g_key_file_get_string(config->keyfile, group, key, NULL);
    if (text && (strcmp(g_strstrip(text), "true") == 0 || strcmp(text, "false") == 0)) {
        *out = strcmp(text, "true") == 0;
        return true;
    }
    set_error(error, config, CONFIG_ERROR_INVALID, group, key,
              "expected true or false, got \"%s\"", text ? text : "(not UTF-8)");
    return false;
}

/* Plugin names become file names, so they must not reach outside the plugin
 * directories. */
static bool is_plugin_name(const char *s)
{
    if (!g_ascii_isalnum(*s))
        return false;
    for (; *s; s++)
        if (!g_ascii_isalnum(*s) && *s != '-' && *s != '_')
            return false;
    return true;
}

static bool check_keys(const config_t *config, const char *group, const char *const *allowed,
                       GError **error)
{
    g_auto(GStrv) keys = g_key_file_get_keys(config->keyfile, group, NULL, NULL);
    for (char **key = keys; key && *key; key++) {
        if (!g_strv_contains(allowed, *key)) {
            set_error(error, config, CONFIG_ERROR_INVALID, group, *key, "unknown key");
            return false;
        }
    }
    return true;
}

static bool read_component(config_t *config, GError **error)
{
    const char *g = CONFIG_GROUP_COMPONENT;
    if (!check_keys(config, g, component_keys, error))
        return false;
    if (!(config->domain = read_string(config, g, "domain", NULL, error)))
        return false;
    if (!jid_is_domain(config->domain)) {
        set_error(error, config, CONFIG_ERROR_INVALID, g, "domain",
                  "\"%s\" is not a domain name", config->domain);
        return false;
    }
    if (!(config->instance_domain =
              read_string(config, g, "instance_domain", config->domain, error)))
        return false;
    if (!jid_is_domain(config->instance_domain)) {
        set_error(error, config, CONFIG_ERROR_INVALID, g, "instance_domain",
                  "\"%s\" is not a domain name", config->instance_domain);
        return false;
    }
    if (!(config->secret = read_string(config, g, "secret", NULL, error)))
        return false;
    if (!(config->server = read_string(config, g, "server", "127.0.0.1", error)))
        return false;
    if (!read_int(config, g, "port", CONFIG_DEFAULT_PORT, 1, 65535, &config->port, error) ||
        !read_int(config, g, "reconnect_initial", CONFIG_DEFAULT_RECONNECT_INITIAL, 1, 3600,
                  &config->reconnect_initial, error) ||
        !read_int(config, g, "reconnect_max", CONFIG_DEFAULT_RECONNECT_MAX, 1, 86400,
                  &config->reconnect_max, error) ||
        !read_int(config, g, "keepalive", CONFIG_DEFAULT_KEEPALIVE, 5, 86400, &config->keepalive,
                  error))
        return false;
    if (config->reconnect_max < config->reconnect_initial) {
        set_error(error, config, CONFIG_ERROR_INVALID, g, "reconnect_max",
                  "must not be less than reconnect_initial (%d)", config->reconnect_initial);
        return false;
    }
    return true;
}

static bool read_plugin_name(config_t *config, const char *key, const char *default_value,
                             char **out, GError **error)
{
    if (!(*out = read_string(config, CONFIG_GROUP_PROXY, key, default_value, error)))
        return false;
    if (!is_plugin_name(*out)) {
        set_error(error, config, CONFIG_ERROR_INVALID, CONFIG_GROUP_PROXY, key,
                  "\"%s\" is not a plugin name (letters, digits, '-' and '_')", *out);
        return false;
    }
    return true;
}

/* Returns why PATTERN is not a glob we accept, or NULL.  fnmatch() would
 * take an unclosed '[' literally; an operator more likely forgot the ']'. */
static const char *glob_problem(const char *pattern)
{
    if (!*pattern)
        return "an empty pattern";
    for (const char *p = pattern; *p; p++) {
        if (*p == '\\' && p[1]) {
            p++;
        } else if (*p == '[') {
            const char *close = strchr(p + 1 + (p[1] == ']'), ']');
            if (!close)
                return "'[' without ']'";
            p = close;
        } else if (*p == ']') {
            return "']' without '['";
        }
    }
    return NULL;
}

/* [proxy] resources: globs separated by ';', any of which a resource's name
 * must match for it to receive requests. */
static bool read_resource_filter(config_t *config, GError **error)
{
    const char *g = CONFIG_GROUP_PROXY;
    if (!g_key_file_has_key(config->keyfile, g, "resources", NULL))
        return true;
    g_autofree char *text = read_string(config, g, "resources", NULL, error);
    if (!text)
        return false;
    g_auto(GStrv) patterns = g_strsplit(text, ";", -1);
    GPtrArray *kept = g_ptr_array_new_with_free_func(g_free);
    for (char **pattern = patterns; *pattern; pattern++) {
        g_strstrip(*pattern);
        const char *problem = glob_problem(*pattern);
        if (problem) {
            set_error(error, config, CONFIG_ERROR_INVALID, g, "resources",
                      "\"%s\" is not a valid pattern: %s", *pattern, problem);
            g_ptr_array_free(kept, TRUE);
            return false;
        }
        g_ptr_array_add(kept, g_strdup(*pattern));
    }
    g_ptr_array_add(kept, NULL);
    config->resources = (char **)g_ptr_array_free(kept, FALSE);
    return true;
}

bool config_resource_allowed(char *const *patterns, const char *resource)
{
    if (!patterns)
        return true;
    for (char *const *pattern = patterns; *pattern; pattern++)
        if (fnmatch(*pattern, resource, 0) == 0)
            return true;
    return false;
}

/* An address must outlive the requests made with it. */
static bool read_address_lifetime(config_t *config, GError **error)
{
    const char *g = CONFIG_GROUP_PROXY;
    if (!read_int(config, g, "address_lifetime", CONFIG_DEFAULT_ADDRESS_LIFETIME, 1,
                  10 * 365 * 86400, &config->address_lifetime, error))
        return false;
    if (config->address_lifetime < config->request_timeout) {
        set_error(error, config, CONFIG_ERROR_INVALID, g, "address_lifetime",
                  "must not be less than request_timeout (%d): a reply comes to the address "
                  "of its request",
                  config->request_timeout);
        return false;
    }
    return true;
}

/* [proxy] discovery: presence (subscribe to the target) or ping (ping the
 * resources [proxy] resources names, which must then be plain names). */
static bool read_discovery(config_t *config, GError **error)
{
    const char *g = CONFIG_GROUP_PROXY;
    g_autofree char *discovery = read_string(config, g, "discovery", "presence", error);
    if (!discovery)
        return false;
    if (strcmp(discovery, "presence") != 0 && strcmp(discovery, "ping") != 0) {
        set_error(error, config, CONFIG_ERROR_INVALID, g, "discovery",
                  "expected presence or ping, got \"%s\"", discovery);
        return false;
    }
    config->discover_by_ping = strcmp(discovery, "ping") == 0;
    if (!read_int(config, g, "ping_interval", CONFIG_DEFAULT_PING_INTERVAL, 1, 3600,
                  &config->ping_interval, error) ||
        !read_int(config, g, "ping_timeout", CONFIG_DEFAULT_PING_TIMEOUT, 1, 3600,
                  &config->ping_timeout, error))
        return false;
    if (!config->discover_by_ping)
        return true;
    if (!config->resources) {
        set_error(error, config, CONFIG_ERROR_MISSING, g, "resources",
                  "discovery = ping needs the resources to ping, by name");
        return false;
    }
    for (char **name = config->resources; *name; name++) {
        if (strpbrk(*name, "*?[]\\")) {
            set_error(error, config, CONFIG_ERROR_INVALID, g, "resources",
                      "\"%s\": with discovery = ping, resources are names, not patterns",
                      *name);
            return false;
        }
    }
    return true;
}

static bool read_proxy(config_t *config, GError **error)
{
    const char *g = CONFIG_GROUP_PROXY;
    if (!check_keys(config, g, proxy_keys, error))
        return false;
    if (!(config->target = read_string(config, g, "target", NULL, error)))
        return false;
    if (!jid_is_bare(config->target)) {
        set_error(error, config, CONFIG_ERROR_INVALID, g, "target",
                  "\"%s\" is not a bare JID (user@domain)", config->target);
        return false;
    }
    return read_plugin_name(config, "dispatch", CONFIG_DEFAULT_DISPATCH, &config->dispatch, error) &&
           read_plugin_name(config, "encoding", CONFIG_DEFAULT_ENCODING, &config->encoding, error) &&
           read_int(config, g, "request_timeout", CONFIG_DEFAULT_REQUEST_TIMEOUT, 1,
                    CONFIG_MAX_REQUEST_TIMEOUT, &config->request_timeout, error) &&
           read_resource_filter(config, error) &&
           read_bool(config, g, "retry_get", true, &config->retry_get, error) &&
           read_int(config, g, "unhealthy_after", CONFIG_DEFAULT_UNHEALTHY_AFTER, 0, 1000,
                    &config->unhealthy_after, error) &&
           read_address_lifetime(config, error) &&
           read_int(config, g, "hold", 0, 0, CONFIG_MAX_REQUEST_TIMEOUT, &config->hold, error) &&
           read_discovery(config, error);
}

static bool read_plugins(config_t *config, GError **error)
{
    const char *g = CONFIG_GROUP_PLUGINS;
    if (!check_keys(config, g, plugins_keys, error))
        return false;
    g_autofree char *path = g_key_file_get_string(config->keyfile, g, "path", NULL);
    g_auto(GStrv) dirs = g_strsplit(path ? path : "", ":", -1);
    GPtrArray *kept = g_ptr_array_new();
    for (char **dir = dirs; *dir; dir++) {
        g_strstrip(*dir);
        if (**dir)
            g_ptr_array_add(kept, g_strdup(*dir));
    }
    g_ptr_array_add(kept, NULL);
    config->plugin_path = (char **)g_ptr_array_free(kept, FALSE);
    return true;
}

static bool read_limits(config_t *config, GError **error)
{
    const char *g = CONFIG_GROUP_LIMITS;
    if (!check_keys(config, g, limits_keys, error))
        return false;
    if (!read_int(config, g, "in_flight", CONFIG_DEFAULT_IN_FLIGHT, 1, 10000000,
                  &config->in_flight, error) ||
        !read_int(config, g, "in_flight_per_sender", CONFIG_DEFAULT_IN_FLIGHT_PER_SENDER, 1,
                  10000000, &config->in_flight_per_sender, error))
        return false;
    config->rate_per_sender = 0;
    if (g_key_file_has_key(config->keyfile, g, "rate_per_sender", NULL)) {
        g_autofree char *text = g_key_file_get_string(config->keyfile, g, "rate_per_sender", NULL);
        char *end = NULL;
        double rate = text ? g_ascii_strtod(g_strstrip(text), &end) : -1;
        if (!text || !*text || *end || !(rate >= 0 && rate <= 1e6)) {
            set_error(error, config, CONFIG_ERROR_INVALID, g, "rate_per_sender",
                      "expected requests per second from 0 (no limit) to 1000000, got \"%s\"",
                      text ? text : "(not UTF-8)");
            return false;
        }
        config->rate_per_sender = rate;
    }
    int default_burst = config->rate_per_sender > 0 ? (int)MAX(1, 2 * config->rate_per_sender) : 1;
    return read_int(config, g, "burst_per_sender", default_burst, 1, 10000000,
                    &config->burst_per_sender, error) &&
           read_int(config, g, "addresses", CONFIG_DEFAULT_ADDRESSES, 1, 10000000,
                    &config->addresses, error);
}

/* [metrics] listen = HOST:PORT, IPv6 addresses in brackets. */
static bool read_metrics(config_t *config, GError **error)
{
    const char *g = CONFIG_GROUP_METRICS;
    if (!check_keys(config, g, metrics_keys, error))
        return false;
    if (!g_key_file_has_key(config->keyfile, g, "listen", NULL))
        return true;
    g_autofree char *listen = read_string(config, g, "listen", NULL, error);
    if (!listen)
        return false;
    const char *colon = strrchr(listen, ':');
    g_autofree char *host = colon ? g_strndup(listen, (gsize)(colon - listen)) : NULL;
    if (host && host[0] == '[') {
        size_t length = strlen(host);
        if (length < 3 || host[length - 1] != ']') {
            g_clear_pointer(&host, g_free);
        } else {
            char *inner = g_strndup(host + 1, length - 2);
            g_free(host);
            host = inner;
        }
    } else if (host && strchr(host, ':')) {
        g_clear_pointer(&host, g_free); /* an IPv6 address needs its brackets */
    }
    gint64 port = 0;
    if (!host || !*host || !g_ascii_string_to_signed(colon + 1, 10, 1, 65535, &port, NULL)) {
        set_error(error, config, CONFIG_ERROR_INVALID, g, "listen",
                  "expected HOST:PORT (an IPv6 address in brackets), got \"%s\"", listen);
        return false;
    }
    config->metrics_host = g_steal_pointer(&host);
    config->metrics_port = (int)port;
    return true;
}

/* [admin] jids = bare JIDs separated by ';'. */
static bool read_admin(config_t *config, GError **error)
{
    const char *g = CONFIG_GROUP_ADMIN;
    if (!check_keys(config, g, admin_keys, error))
        return false;
    if (!g_key_file_has_key(config->keyfile, g, "jids", NULL))
        return true;
    g_autofree char *text = read_string(config, g, "jids", NULL, error);
    if (!text)
        return false;
    g_auto(GStrv) jids = g_strsplit(text, ";", -1);
    GPtrArray *kept = g_ptr_array_new_with_free_func(g_free);
    for (char **jid = jids; *jid; jid++) {
        g_strstrip(*jid);
        if (!**jid)
            continue;
        if (!jid_is_bare(*jid)) {
            set_error(error, config, CONFIG_ERROR_INVALID, g, "jids",
                      "\"%s\" is not a bare JID (user@domain)", *jid);
            g_ptr_array_free(kept, TRUE);
            return false;
        }
        g_ptr_array_add(kept, g_ascii_strdown(*jid, -1));
    }
    g_ptr_array_add(kept, NULL);
    config->admin_jids = (char **)g_ptr_array_free(kept, FALSE);
    return true;
}

static bool check_groups(config_t *config, GError **error)
{
    static const char *const required[] = {CONFIG_GROUP_COMPONENT, CONFIG_GROUP_PROXY, NULL};
    for (const char *const *group = required; *group; group++) {
        if (!g_key_file_has_group(config->keyfile, *group)) {
            set_error(error, config, CONFIG_ERROR_MISSING, *group, NULL, "required group is missing");
            return false;
        }
    }
    g_auto(GStrv) groups = g_key_file_get_groups(config->keyfile, NULL);
    for (char **group = groups; *group; group++) {
        if (strcmp(*group, CONFIG_GROUP_COMPONENT) && strcmp(*group, CONFIG_GROUP_PROXY) &&
            strcmp(*group, CONFIG_GROUP_PLUGINS) && strcmp(*group, CONFIG_GROUP_LIMITS) &&
            strcmp(*group, CONFIG_GROUP_METRICS) && strcmp(*group, CONFIG_GROUP_ADMIN) &&
            !g_str_has_prefix(*group, CONFIG_GROUP_DISPATCH_PREFIX) &&
            !g_str_has_prefix(*group, CONFIG_GROUP_ENCODING_PREFIX)) {
            set_error(error, config, CONFIG_ERROR_INVALID, *group, NULL, "unknown group");
            return false;
        }
    }
    return true;
}

/* Reads the whole of PATH into *CONTENTS (a new buffer of *LENGTH bytes;
 * wipe and free it) and *MODE, both from the one open file, so that the mode
 * checked is that of the bytes read. */
static bool read_file(const char *path, char **contents, gsize *length, mode_t *mode,
                      GError **error)
{
    /* O_NONBLOCK: a FIFO named by mistake must not hang before fstat(). */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        int saved = errno;
        g_set_error(error, CONFIG_ERROR, CONFIG_ERROR_FILE, "%s: %s", path,
                    saved == ENOENT ? "no such file" : g_strerror(saved));
        return false;
    }
    struct stat st;
    const char *problem = fstat(fd, &st) != 0 ? g_strerror(errno)
                          : !S_ISREG(st.st_mode) ? "not a regular file"
                                                 : NULL;
    if (problem) {
        g_set_error(error, CONFIG_ERROR, CONFIG_ERROR_FILE, "%s: %s", path, problem);
        close(fd);
        return false;
    }
    *mode = st.st_mode;

    GIOChannel *channel = g_io_channel_unix_new(fd);
    g_io_channel_set_close_on_unref(channel, TRUE);
    g_autoptr(GError) read_error = NULL;
    bool read = g_io_channel_set_encoding(channel, NULL, &read_error) == G_IO_STATUS_NORMAL &&
                g_io_channel_read_to_end(channel, contents, length, &read_error) ==
                    G_IO_STATUS_NORMAL;
    g_io_channel_unref(channel);
    if (!read)
        g_set_error(error, CONFIG_ERROR, CONFIG_ERROR_FILE, "%s: %s", path, read_error->message);
    return read;
}

/* The number (from 1) of the first line of TEXT that GLib's keyfile parser
 * refuses, or 0.  GLib's messages quote the line, which may hold a secret,
 * and do not number it; its parser refuses a line for what the line holds
 * (or, for a key, for no group before it), so the first refused line is
 * where a prefix of TEXT first fails to load: found by bisection. */
static unsigned first_refused_line(const char *text, gsize length)
{
    GArray *line_ends = g_array_new(FALSE, FALSE, sizeof(gsize));
    for (gsize i = 0; i < length; i++)
        if (text[i] == '\n' || i + 1 == length) {
            gsize end = i + 1;
            g_array_append_val(line_ends, end);
        }
    /* Invariant: the first LOADS lines load; the first FAILS do not. */
    guint loads = 0, fails = line_ends->len;
    while (fails - loads > 1) {
        guint middle = loads + (fails - loads) / 2;
        GKeyFile *prefix = g_key_file_new();
        bool loaded = g_key_file_load_from_data(prefix, text,
                                                g_array_index(line_ends, gsize, middle - 1),
                                                G_KEY_FILE_NONE, NULL);
        g_key_file_free(prefix);
        if (loaded)
            loads = middle;
        else
            fails = middle;
    }
    g_array_free(line_ends, TRUE);
    return fails;
}

/* Why GLib refused a line, in words that quote nothing from it. */
static const char *refused_line_problem(const GError *parse_error)
{
    if (g_error_matches(parse_error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_GROUP_NOT_FOUND))
        return "a key before the first [group]";
    if (g_error_matches(parse_error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_UNKNOWN_ENCODING))
        return "an Encoding other than UTF-8";
    return "not a [group], a key = value or a comment (not shown: it may hold a secret)";
}

static bool parse_keyfile(config_t *config, const char *text, gsize length, GError **error)
{
    g_autoptr(GError) parse_error = NULL;
    if (g_key_file_load_from_data(config->keyfile, text, length, G_KEY_FILE_NONE, &parse_error))
        return true;
    unsigned line = first_refused_line(text, length);
    if (line > 0)
        g_set_error(error, CONFIG_ERROR, CONFIG_ERROR_FILE, "%s: line %u: %s", config->path, line,
                    refused_line_problem(parse_error));
    else
        g_set_error(error, CONFIG_ERROR, CONFIG_ERROR_FILE, "%s: not a keyfile", config->path);
    return false;
}

/* Like the key files of plugins (plugins/common/key-file.c), a file that
 * holds the component secret is for its owner's eyes only. */
static bool check_secret_is_private(const config_t *config, mode_t mode, GError **error)
{
    if ((mode & (S_IRGRP | S_IROTH)) == 0 ||
        !g_key_file_has_key(config->keyfile, CONFIG_GROUP_COMPONENT, "secret", NULL))
        return true;
    g_set_error(error, CONFIG_ERROR, CONFIG_ERROR_FILE,
                "%s: readable by group or others (mode %04o), yet it holds [%s] secret: "
                "chmod 600 %s",
                config->path, (unsigned)(mode & 07777), CONFIG_GROUP_COMPONENT, config->path);
    return false;
}

config_t *config_load(const char *path, GError **error)
{
    g_autoptr(config_t) config = g_new0(config_t, 1);
    config->path = g_strdup(path);
    config->keyfile = g_key_file_new();

    char *text = NULL;
    gsize length = 0;
    mode_t mode = 0;
    if (!read_file(path, &text, &length, &mode, error))
        return NULL;
    bool parsed = parse_keyfile(config, text, length, error);
    explicit_bzero(text, length);
    g_free(text);
    if (!parsed || !check_secret_is_private(config, mode, error))
        return NULL;

    if (!check_groups(config, error) || !read_component(config, error) ||
        !read_proxy(config, error) || !read_plugins(config, error) ||
        !read_limits(config, error) || !read_metrics(config, error) ||
        !read_admin(config, error))
        return NULL;
    return g_steal_pointer(&config);
}

void config_free(config_t *config)
{
    if (!config)
        return;
    g_free(config->path);
    if (config->keyfile)
        g_key_file_free(config->keyfile);
    g_free(config->domain);
    g_free(config->instance_domain);
    if (config->secret) {
        explicit_bzero(config->secret, strlen(config->secret));
        g_free(config->secret);
    }
    g_free(config->server);
    g_free(config->target);
    g_free(config->dispatch);
    g_free(config->encoding);
    g_strfreev(config->plugin_path);
    g_free(config->metrics_host);
    g_strfreev(config->admin_jids);
    g_strfreev(config->resources);
    g_free(config);
}

bool config_key_is_secret(const char *key)
{
    /* "key" alone names no secret: [dispatch:sticky] key says what to
     * place by.  "api_key" and the like do. */
    static const char *const secret_words[] = {"secret", "seed", "password", NULL};
    for (const char *const *word = secret_words; *word; word++) {
        g_autofree char *suffix = g_strconcat("_", *word, NULL);
        if (strcmp(key, *word) == 0 || g_str_has_suffix(key, suffix))
            return true;
    }
    return g_str_has_suffix(key, "_key");
}

/* Returns the value of GROUP/KEY in CONFIG, stripped, or NULL. */
static char *raw_value(const config_t *config, const char *group, const char *key)
{
    char *value = g_key_file_get_string(config->keyfile, group, key, NULL);
    return value ? g_strstrip(value) : NULL;
}

static void add_key_changes(GPtrArray *changes, const config_t *old_config,
                            const config_t *new_config, const char *group)
{
    g_auto(GStrv) old_keys = g_key_file_get_keys(old_config->keyfile, group, NULL, NULL);
    g_auto(GStrv) new_keys = g_key_file_get_keys(new_config->keyfile, group, NULL, NULL);
    GPtrArray *keys = g_ptr_array_new();
    for (char **key = old_keys; key && *key; key++)
        g_ptr_array_add(keys, *key);
    for (char **key = new_keys; key && *key; key++)
        if (!old_keys || !g_strv_contains((const char *const *)old_keys, *key))
            g_ptr_array_add(keys, *key);

    for (guint i = 0; i < keys->len; i++) {
        const char *key = keys->pdata[i];
        g_autofree char *before = raw_value(old_config, group, key);
        g_autofree char *after = raw_value(new_config, group, key);
        if (g_strcmp0(before, after) == 0)
            continue;
        if (config_key_is_secret(key))
            g_ptr_array_add(changes, g_strdup_printf("[%s] %s", group, key));
        else
            g_ptr_array_add(changes, g_strdup_printf("[%s] %s (%s -> %s)", group, key,
                                                     before ? before : "unset",
                                                     after ? after : "unset"));
    }
    g_ptr_array_free(keys, TRUE);
}

char **config_changes(const config_t *old_config, const config_t *new_config)
{
    GPtrArray *changes = g_ptr_array_new();
    g_auto(GStrv) old_groups = g_key_file_get_groups(old_config->keyfile, NULL);
    g_auto(GStrv) new_groups = g_key_file_get_groups(new_config->keyfile, NULL);
    for (char **group = old_groups; *group; group++)
        add_key_changes(changes, old_config, new_config, *group);
    for (char **group = new_groups; *group; group++)
        if (!g_strv_contains((const char *const *)old_groups, *group))
            add_key_changes(changes, old_config, new_config, *group);
    g_ptr_array_add(changes, NULL);
    return (char **)g_ptr_array_free(changes, FALSE);
}

bool config_stream_changed(const config_t *old_config, const config_t *new_config)
{
    return strcmp(old_config->domain, new_config->domain) != 0 ||
           strcmp(old_config->instance_domain, new_config->instance_domain) != 0 ||
           strcmp(old_config->secret, new_config->secret) != 0 ||
           strcmp(old_config->server, new_config->server) != 0 ||
           old_config->port != new_config->port ||
           g_ascii_strcasecmp(old_config->target, new_config->target) != 0 ||
           old_config->discover_by_ping != new_config->discover_by_ping;
}
