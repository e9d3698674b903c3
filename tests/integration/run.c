/* One test run (run.h): its temporary directory, its libstrophe context,
 * and hx_free(), which stops whatever a test left running. */
#include "run.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run-private.h"

hx_t *hx_new(void)
{
    hx_t *hx = g_new0(hx_t, 1);
    const char *base = g_getenv("TMPDIR");
    hx->dir = g_build_filename(base && *base ? base : "/tmp", "cp-it-XXXXXX", NULL);
    if (!mkdtemp(hx->dir)) {
        fprintf(stderr, "harness: mkdtemp %s: %s\n", hx->dir, strerror(errno));
        abort();
    }
    hx_emergency_add_dir(hx->dir);

    const char *wrapper = g_getenv("CLIENT_PROXY_WRAPPER");
    GError *error = NULL;
    if (wrapper && *wrapper && !g_shell_parse_argv(wrapper, NULL, &hx->wrapper, &error)) {
        fprintf(stderr, "harness: CLIENT_PROXY_WRAPPER: %s\n", error->message);
        abort();
    }

    xmpp_initialize();
    xmpp_log_t *log = g_getenv("HX_DEBUG") ? xmpp_get_default_logger(XMPP_LEVEL_DEBUG) : NULL;
    hx->ctx = xmpp_ctx_new(NULL, log);
    hx->clients = g_ptr_array_new();
    hx->proxies = g_ptr_array_new();
    hx->helpers = g_array_new(FALSE, FALSE, sizeof(pid_t));
    return hx;
}

static int remove_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void hx_free(hx_t *hx)
{
    if (!hx)
        return;
    while (hx->helpers->len > 0)
        hx_spawn_stop(hx, g_array_index(hx->helpers, pid_t, 0), HX_STOP_BOUND_MS);
    while (hx->clients->len > 0)
        hx_client_free(g_ptr_array_index(hx->clients, hx->clients->len - 1));
    while (hx->proxies->len > 0)
        hx_proxy_free(g_ptr_array_index(hx->proxies, hx->proxies->len - 1));
    hx_prosody_free(hx->prosody);
    hx_ejabberd_free(hx->ejabberd);

    if (g_getenv("HX_KEEP"))
        fprintf(stderr, "harness: kept %s\n", hx->dir);
    else
        nftw(hx->dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
    hx_emergency_remove_dir(hx->dir);

    xmpp_ctx_free(hx->ctx);
    xmpp_shutdown();
    g_ptr_array_unref(hx->clients);
    g_ptr_array_unref(hx->proxies);
    g_array_unref(hx->helpers);
    g_strfreev(hx->wrapper);
    g_free(hx->dir);
    g_free(hx);
}

const char *hx_dir(const hx_t *hx)
{
    return hx->dir;
}

xmpp_ctx_t *hx_ctx(const hx_t *hx)
{
    return hx->ctx;
}

int hx_c2s_port(const hx_t *hx)
{
    if (hx->prosody)
        return hx_prosody_c2s_port(hx->prosody);
    if (hx->ejabberd)
        return hx_ejabberd_c2s_port(hx->ejabberd);
    return 0;
}

int hx_group_setup(void **state)
{
    *state = hx_new();
    return 0;
}

int hx_group_setup_prosody(void **state)
{
    hx_t *hx = hx_new();
    *state = hx;
    return hx_prosody_start(hx_prosody_new(hx)) ? 0 : -1;
}

int hx_group_teardown(void **state)
{
    hx_free(*state);
    *state = NULL;
    return 0;
}
