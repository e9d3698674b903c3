#include "fake-host.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include <glib.h>

/* This file is the host: it defines the struct that is opaque to plugins. */
struct cp_host {
    GHashTable *config;   /* key -> value, both owned */
    GPtrArray *errors;    /* "key: message", owned */
    GPtrArray *logs;      /* "LEVEL message", owned */
    GString *transcript;  /* for failure messages */
    bool random_broken;
    size_t address_limit;
};

static const char *const level_names[] = {"ERROR", "WARNING", "INFO", "DEBUG"};

static void fake_log(cp_host_t *host, cp_log_level_t level, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    char *text = g_strdup_vprintf(fmt, args);
    va_end(args);
    g_assert((unsigned)level < G_N_ELEMENTS(level_names));
    char *line = g_strdup_printf("%s %s", level_names[level], text);
    g_free(text);
    g_string_append_printf(host->transcript, "log: %s\n", line);
    g_ptr_array_add(host->logs, line);
}

static const char *fake_config_get(cp_host_t *host, const char *key)
{
    return g_hash_table_lookup(host->config, key);
}

static void fake_config_error(cp_host_t *host, const char *key, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    char *text = g_strdup_vprintf(fmt, args);
    va_end(args);
    char *line = g_strdup_printf("%s: %s", key != NULL ? key : "(group)", text);
    g_free(text);
    g_string_append_printf(host->transcript, "config_error: %s\n", line);
    g_ptr_array_add(host->errors, line);
}

static int fake_random_bytes(cp_host_t *host, void *buf, size_t len)
{
    if (host->random_broken)
        return CP_EFAIL;
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n <= 0)
            return CP_EFAIL;
        p += n;
        len -= (size_t)n;
    }
    return CP_OK;
}

static size_t fake_address_limit(cp_host_t *host)
{
    return host->address_limit;
}

const cp_host_api_t fake_host_api = {
    .size = sizeof(cp_host_api_t),
    .log = fake_log,
    .config_get = fake_config_get,
    .config_error = fake_config_error,
    .random_bytes = fake_random_bytes,
    .address_limit = fake_address_limit,
};

cp_host_t *fake_host_new(void)
{
    cp_host_t *host = g_new0(cp_host_t, 1);
    host->config = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    host->errors = g_ptr_array_new_with_free_func(g_free);
    host->logs = g_ptr_array_new_with_free_func(g_free);
    host->transcript = g_string_new(NULL);
    host->address_limit = 100000; /* [limits] addresses' default */
    return host;
}

void fake_host_free(cp_host_t *host)
{
    if (host == NULL)
        return;
    g_hash_table_destroy(host->config);
    g_ptr_array_free(host->errors, TRUE);
    g_ptr_array_free(host->logs, TRUE);
    g_string_free(host->transcript, TRUE);
    g_free(host);
}

void fake_host_set(cp_host_t *host, const char *key, const char *value)
{
    g_hash_table_insert(host->config, g_strdup(key), g_strdup(value));
}

void fake_host_set_address_limit(cp_host_t *host, size_t limit)
{
    host->address_limit = limit;
}

void fake_host_break_random(cp_host_t *host)
{
    host->random_broken = true;
}

size_t fake_host_error_count(const cp_host_t *host)
{
    return host->errors->len;
}

bool fake_host_has_error(const cp_host_t *host, const char *key, const char *needle)
{
    char *prefix = g_strdup_printf("%s: ", key != NULL ? key : "(group)");
    bool found = false;
    for (guint i = 0; i < host->errors->len && !found; i++) {
        const char *line = g_ptr_array_index(host->errors, i);
        found = g_str_has_prefix(line, prefix) && strstr(line + strlen(prefix), needle) != NULL;
    }
    g_free(prefix);
    return found;
}

size_t fake_host_log_count(const cp_host_t *host, cp_log_level_t level, const char *needle)
{
    size_t count = 0;
    for (guint i = 0; i < host->logs->len; i++) {
        const char *line = g_ptr_array_index(host->logs, i);
        const char *name = level_names[level];
        if (g_str_has_prefix(line, name) && line[strlen(name)] == ' ' &&
            strstr(line + strlen(name) + 1, needle) != NULL)
            count++;
    }
    return count;
}

const char *fake_host_transcript(cp_host_t *host)
{
    return host->transcript->str;
}

int fake_host_init_plugin(cp_host_t *host, void **state)
{
    g_assert_cmpuint(cp_plugin_descriptor.abi_major, ==, CP_PLUGIN_ABI_MAJOR);
    *state = NULL;
    return cp_plugin_descriptor.init(&fake_host_api, host, state);
}

const cp_jat_ops_t *fake_host_jat_ops(void)
{
    g_assert_cmpuint(cp_plugin_descriptor.kind, ==, CP_PLUGIN_JAT);
    const cp_jat_ops_t *ops = cp_plugin_descriptor.ops;
    g_assert_cmpuint(ops->size, ==, sizeof(cp_jat_ops_t));
    return ops;
}

const cp_dispatch_ops_t *fake_host_dispatch_ops(void)
{
    g_assert_cmpuint(cp_plugin_descriptor.kind, ==, CP_PLUGIN_DISPATCH);
    const cp_dispatch_ops_t *ops = cp_plugin_descriptor.ops;
    g_assert_cmpuint(ops->size, ==, sizeof(cp_dispatch_ops_t));
    return ops;
}

long long fake_host_now(void)
{
    return (long long)(g_get_real_time() / G_USEC_PER_SEC);
}
