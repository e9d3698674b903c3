/* client-proxy: one XMPP component address in front of the many resources
 * of one client account.  This file is the command line only. */
#include <stdio.h>
#include <stdlib.h>

#include <glib.h>

#include "allocator.h"
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
    {"config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path,
     "Run with this configuration; SIGHUP re-reads it", "FILE"},
    {"check-config", 0, 0, G_OPTION_ARG_FILENAME, &check_path,
     "Validate FILE and load its plugins without connecting; exit 0 when good", "FILE"},
    {"verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose, "Log every request (debug level)", NULL},
    {"version", 'V', 0, G_OPTION_ARG_NONE, &show_version, "Print the version and exit", NULL},
    {NULL, 0, 0, 0, NULL, NULL, NULL},
};

int main(int argc, char **argv)
{
    allocator_tune();
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
    log_use_journal_if_stderr_is_it();

    proxy_setup_t setup;
    const char *path = check_path ? check_path : config_path;
    int status = EXIT_CONFIG;
    if (!proxy_setup_load(path, &setup, &error)) {
        fprintf(stderr, "client-proxy: %s\n", error->message);
    } else if (check_path) {
        printf("%s: valid (%s, %s)\n", check_path, plugin_file(setup.dispatch),
               plugin_file(setup.jat));
        proxy_setup_clear(&setup);
        status = EXIT_SUCCESS;
    } else {
        status = proxy_run(&setup);
    }
    g_free(config_path);
    g_free(check_path);
    return status;
}
