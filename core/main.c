/* client-proxy: one XMPP component address in front of the many resources
 * of one client account.  This file is the command line only. */
#include <stdio.h>
#include <stdlib.h>

#include <glib.h>

#include "config.h"
#include "log.h"
#include "plugin-loader.h"
#include "proxy.h"

/* Exit status for a bad command line, configuration or plugin. */
#define EXIT_CONFIG 2

static char *config_path;
static char *check_path;
static gboolean verbose;
static gboolean show_version;

static const GOptionEntry options[] = {
    {"config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path, "Run with this configuration", "FILE"},
    {"check-config", 0, 0, G_OPTION_ARG_FILENAME, &check_path,
     "Validate FILE and load its plugins without connecting; exit 0 when good", "FILE"},
    {"verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose, "Log every request (debug level)", NULL},
    {"version", 'V', 0, G_OPTION_ARG_NONE, &show_version, "Print the version and exit", NULL},
    {NULL, 0, 0, 0, NULL, NULL, NULL},
};

/* Loads the configuration at PATH and both plugins it names.  Returns false
 * after printing one line that names the file, the group and the key. */
static bool load(const char *path, config_t **config, plugin_t **dispatch, plugin_t **jat)
{
    g_autoptr(GError) error = NULL;
    if (!(*config = config_load(path, &error)) ||
        !(*dispatch = plugin_load(*config, CP_PLUGIN_DISPATCH, (*config)->dispatch, &error)) ||
        !(*jat = plugin_load(*config, CP_PLUGIN_JAT, (*config)->encoding, &error))) {
        fprintf(stderr, "client-proxy: %s\n", error->message);
        return false;
    }
    return true;
}

int main(int argc, char **argv)
{
    g_autoptr(GOptionContext) context = g_option_context_new("- XMPP component in front of a client's resources");
    g_option_context_add_main_entries(context, options, NULL);
    g_option_context_set_description(context,
        "Exit status: 0 on success, 2 for a bad command line, configuration or plugin.\n"
        "Plugins are looked up in [plugins] path, then $" PLUGIN_PATH_ENV ", then " PLUGINDIR ".");
    g_autoptr(GError) error = NULL;
    if (!g_option_context_parse(context, &argc, &argv, &error)) {
        fprintf(stderr, "client-proxy: %s (try --help)\n", error->message);
        return EXIT_CONFIG;
    }
    if (show_version) {
        printf("client-proxy %s (plugin ABI %d.%d)\n", CLIENT_PROXY_VERSION, CP_PLUGIN_ABI_MAJOR,
               CP_PLUGIN_ABI_MINOR);
        return EXIT_SUCCESS;
    }
    if (argc > 1 || (!config_path == !check_path)) {
        fprintf(stderr, "client-proxy: give exactly one of --config FILE or --check-config FILE "
                        "(try --help)\n");
        return EXIT_CONFIG;
    }
    if (verbose)
        log_set_level(CP_LOG_DEBUG);

    config_t *config = NULL;
    plugin_t *dispatch = NULL, *jat = NULL;
    int status = EXIT_CONFIG;
    if (load(check_path ? check_path : config_path, &config, &dispatch, &jat)) {
        if (check_path) {
            printf("%s: valid (%s, %s)\n", check_path, plugin_file(dispatch), plugin_file(jat));
            status = EXIT_SUCCESS;
        } else {
            status = proxy_run(config, dispatch, jat);
        }
    }
    plugin_unload(jat);
    plugin_unload(dispatch);
    config_free(config);
    g_free(config_path);
    g_free(check_path);
    return status;
}
