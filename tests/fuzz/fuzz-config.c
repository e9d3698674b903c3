/* libFuzzer target: the configuration loader fed arbitrary files.
 *
 * The input is written to a file (in a private directory made once) and
 * read with config_load().  When it loads:
 *   - the fields the rest of client-proxy relies on are checked: domain,
 *     secret, server, target, dispatch and encoding set and non-empty,
 *     port 1..65535, request_timeout 1..CONFIG_MAX_REQUEST_TIMEOUT, plugin
 *     names free of '/' and '.', the target a bare JID (one '@', no '/');
 *   - config_changes() and config_stream_changed() against a fixed valid
 *     configuration, and config_resource_allowed(), run on it; a change of
 *     [component] secret is listed without its values;
 *   - dispatch-random (built in this tree, ASan-instrumented) is loaded
 *     with plugin_load() and the file's [dispatch:random] group, and
 *     unloaded.  Only the build directory is searched: the file's own
 *     [plugins] path is replaced, so the input never picks what is loaded.
 * When it does not load, there must be an error message that begins with
 * the file's path.  Then the input is loaded again with a [component]
 * secret and a plugin's seed of its own appended: no error message, and no
 * config_changes() line, may show either.  Always: no crash, no leak, no
 * memory error.  Every file is written mode 0600, as it holds a secret.
 *
 * Set FUZZ_VERBOSE=1 to see client-proxy's log lines. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "config.h"
#include "fuzz-common.h"
#include "log.h"
#include "plugin-loader.h"

#ifndef FUZZ_PLUGIN_DIR
#error "compile with -DFUZZ_PLUGIN_DIR=\"<build>/plugins/dispatch-random\""
#endif

static char *dir;       /* private temporary directory, made once */
static char *path;      /* DIR/client-proxy.conf, rewritten for every input */
static config_t *reference;
/* Held for the whole run, so that loading the module for an input only
 * takes another reference rather than mapping and relocating it again. */
static plugin_t *resident;

static config_t *load_text(const void *data, size_t size, GError **error)
{
    /* No fsync, no rename: this is a scratch file.  Removed first, as
     * G_FILE_SET_CONTENTS_NONE does not truncate on GLib 2.74: a longer
     * earlier input's end would be read after this one. */
    g_unlink(path);
    FUZZ_CHECK(g_file_set_contents_full(path, data, (gssize)size, G_FILE_SET_CONTENTS_NONE, 0600,
                                        NULL),
               "cannot write %s", path);
    return config_load(path, error);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (!g_getenv("FUZZ_VERBOSE"))
        stderr = fopen("/dev/null", "w"); /* log lines; sanitizers use fd 2 */
    g_setenv(PLUGIN_PATH_ENV, "", TRUE);
    dir = g_dir_make_tmp("cp-fuzz-config-XXXXXX", NULL);
    FUZZ_CHECK(dir != NULL, "cannot make a temporary directory");
    path = g_build_filename(dir, "client-proxy.conf", NULL);
    static const char valid[] = "[component]\ndomain = proxy.example.org\nsecret = s\n"
                                "[proxy]\ntarget = service@example.org\n";
    GError *error = NULL;
    reference = load_text(valid, sizeof valid - 1, &error);
    FUZZ_CHECK(reference != NULL, "%s", error ? error->message : "?");
    g_strfreev(reference->plugin_path);
    reference->plugin_path = g_strsplit(FUZZ_PLUGIN_DIR, ":", -1);
    resident = plugin_load(reference, CP_PLUGIN_DISPATCH, "random", &error);
    FUZZ_CHECK(resident != NULL, "%s", error ? error->message : "?");
    return 0;
}

static void check_loaded(config_t *config)
{
    FUZZ_CHECK(config->domain && *config->domain, "no domain");
    FUZZ_CHECK(config->secret && *config->secret, "no secret");
    FUZZ_CHECK(config->server && *config->server, "no server");
    FUZZ_CHECK(config->port >= 1 && config->port <= 65535, "port %d", config->port);
    FUZZ_CHECK(config->target && *config->target, "no target");
    const char *at = strchr(config->target, '@');
    FUZZ_CHECK(at && at > config->target && at[1] && !strchr(at + 1, '@') &&
                   !strchr(config->target, '/'),
               "target \"%s\" is not a bare JID", config->target);
    FUZZ_CHECK(!strchr(config->domain, '/') && !strchr(config->domain, '@'),
               "domain \"%s\" is not a domain", config->domain);
    FUZZ_CHECK(config->request_timeout >= 1 &&
                   config->request_timeout <= CONFIG_MAX_REQUEST_TIMEOUT,
               "request_timeout %d", config->request_timeout);
    const char *names[] = {config->dispatch, config->encoding};
    for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
        FUZZ_CHECK(names[i] && *names[i], "no plugin name");
        FUZZ_CHECK(!strchr(names[i], '/') && !strchr(names[i], '.'),
                   "plugin name \"%s\" could leave the plugin directory", names[i]);
    }
    FUZZ_CHECK(config->plugin_path != NULL, "no plugin path");

    char **changes = config_changes(reference, config);
    FUZZ_CHECK(changes != NULL, "config_changes() returned NULL");
    for (char **change = changes; *change; change++)
        if (g_str_has_prefix(*change, "[" CONFIG_GROUP_COMPONENT "] secret"))
            FUZZ_CHECK(strcmp(*change, "[" CONFIG_GROUP_COMPONENT "] secret") == 0,
                       "a change line shows the secret");
    g_strfreev(changes);
    (void)config_stream_changed(reference, config);
    (void)config_resource_allowed(config->resources, "phone");
    (void)config_resource_allowed(config->resources, "worker-1");

    /* Load dispatch-random from this build only, with the file's group. */
    g_strfreev(config->plugin_path);
    config->plugin_path = g_new0(char *, 2);
    config->plugin_path[0] = g_strdup(FUZZ_PLUGIN_DIR);
    GError *error = NULL;
    plugin_t *plugin = plugin_load(config, CP_PLUGIN_DISPATCH, "random", &error);
    if (plugin) {
        FUZZ_CHECK(plugin_file(plugin) != NULL, "a plugin without a file name");
        plugin_unref(plugin);
    } else {
        FUZZ_CHECK(error && error->message && *error->message, "plugin_load failed silently");
        FUZZ_CHECK(error->domain == PLUGIN_ERROR && error->code == PLUGIN_ERROR_INIT,
                   "dispatch-random did not load: %s", error->message);
        g_error_free(error);
    }
}

/* Appended to the input for the second load; last wins in a keyfile. */
#define SECRET "Fuzz-Secret-q7Zw"
#define SEED "Fuzz-Seed-k3Pv"
static const char secret_tail[] = "\n[" CONFIG_GROUP_COMPONENT "]\nsecret = " SECRET "\n"
                                  "[" CONFIG_GROUP_DISPATCH_PREFIX "any]\nseed = " SEED "\n";

static void check_shows_no_secret(const char *text, const char *what)
{
    FUZZ_CHECK(!strstr(text, SECRET) && !strstr(text, SEED), "%s shows a secret: %s", what, text);
}

static void check_secrets_stay_hidden(const uint8_t *data, size_t size)
{
    if (memmem(data, size, SECRET, strlen(SECRET)) || memmem(data, size, SEED, strlen(SEED)))
        return; /* the input itself may quote them where quoting is fine */
    GByteArray *text = g_byte_array_sized_new((guint)(size + sizeof secret_tail));
    g_byte_array_append(text, data, (guint)size);
    g_byte_array_append(text, (const guint8 *)secret_tail, sizeof secret_tail - 1);
    GError *error = NULL;
    config_t *config = load_text(text->data, text->len, &error);
    g_byte_array_free(text, TRUE);
    if (!config) {
        check_shows_no_secret(error->message, "an error");
        g_error_free(error);
        return;
    }
    char **changes = config_changes(reference, config);
    for (char **change = changes; *change; change++)
        check_shows_no_secret(*change, "a change");
    g_strfreev(changes);
    changes = config_changes(config, reference);
    for (char **change = changes; *change; change++)
        check_shows_no_secret(*change, "a change");
    g_strfreev(changes);
    config_free(config);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    GError *error = NULL;
    config_t *config = load_text(data, size, &error);
    if (config) {
        FUZZ_CHECK(error == NULL, "loaded, yet an error is set");
        check_loaded(config);
        config_free(config);
    } else {
        FUZZ_CHECK(error && error->domain == CONFIG_ERROR, "refused without a config error");
        FUZZ_CHECK(g_str_has_prefix(error->message, path),
                   "the error does not begin with the file: %s", error->message);
        FUZZ_CHECK(!strchr(error->message, '\n'), "the error is not one line: %s",
                   error->message);
        g_error_free(error);
    }
    check_secrets_stay_hidden(data, size);
    return 0;
}
