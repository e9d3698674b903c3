/* A private Prosody for one run (prosody.h): config, accounts, start on
 * free loopback ports, stop by pid. */
#include "prosody.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "run-private.h"

#define START_BOUND_MS 15000 /* until both ports accept */

struct hx_prosody {
    hx_t *hx;
    char *config; /* path of prosody.cfg.lua */
    char *out;    /* its stdout and stderr */
    int c2s_port, component_port;
    GPtrArray *hosts; /* VirtualHosts beside "localhost" (hx_prosody_add_host()) */
    pid_t pid;        /* 0: not running */
};

/* A host's directory in Prosody's data_path: its datamanager writes every
 * byte but letters and digits as %xx ("auth.localhost" is auth%2elocalhost). */
static char *data_dir_name(const char *host)
{
    GString *name = g_string_new(NULL);
    for (const char *c = host; *c; c++) {
        if (g_ascii_isalnum(*c))
            g_string_append_c(name, *c);
        else
            g_string_append_printf(name, "%%%02x", (unsigned char)*c);
    }
    return g_string_free(name, FALSE);
}

static void write_account(hx_prosody_t *p, const char *node, const char *host)
{
    g_autofree char *host_dir = data_dir_name(host);
    g_autofree char *dir = g_build_filename(p->hx->dir, "data", host_dir, "accounts", NULL);
    g_mkdir_with_parents(dir, 0700);
    g_autofree char *path = g_strdup_printf("%s/%s.dat", dir, node);
    g_autofree char *text =
        g_strdup_printf("return {\n\t[\"password\"] = \"%s\";\n};\n", HX_PASSWORD);
    g_file_set_contents(path, text, -1, NULL);
}

static void pick_ports(hx_prosody_t *p)
{
    int fd1, fd2;
    p->c2s_port = hx_pick_port(&fd1);
    p->component_port = hx_pick_port(&fd2);
    close(fd1);
    close(fd2);
}

/* prosody.cfg.lua, written again whenever a host is added. */
static void write_config(hx_prosody_t *p)
{
    GString *more_hosts = g_string_new(NULL);
    for (guint i = 0; i < p->hosts->len; i++)
        g_string_append_printf(more_hosts, "\nVirtualHost \"%s\"\n",
                               (const char *)p->hosts->pdata[i]);
    const char *dir = p->hx->dir;
    g_autofree char *certs = g_build_filename(dir, "certs", NULL);
    g_mkdir_with_parents(certs, 0700);
    g_autofree char *cfg = g_strdup_printf(
        "-- written by tests/integration/prosody.c\n"
        "run_as_root = true\n"
        "pidfile = \"%1$s/prosody.pid\"\n"
        "data_path = \"%1$s/data\"\n"
        "certificates = \"%1$s/certs\"\n"
        "log = { debug = \"%1$s/prosody.log\" }\n"
        "interfaces = { \"127.0.0.1\" }\n"
        "c2s_interfaces = { \"127.0.0.1\" }\n"
        "component_interfaces = { \"127.0.0.1\" }\n"
        "c2s_ports = { %2$d }\n"
        "component_ports = { %3$d }\n"
        "s2s_ports = { }\n"
        "http_ports = { }\n"
        "https_ports = { }\n"
        "c2s_direct_tls_ports = { }\n"
        "s2s_direct_tls_ports = { }\n"
        "legacy_ssl_ports = { }\n"
        "modules_enabled = { \"roster\"; \"saslauth\"; \"disco\"; \"ping\"; "
        "\"posix\" }\n"
        "modules_disabled = { \"s2s\"; \"tls\"; \"offline\" }\n"
        "c2s_require_encryption = false\n"
        "allow_unencrypted_plain_auth = true\n"
        "authentication = \"internal_plain\"\n"
        "network_settings = { nagle = false; opportunistic_writes = true; }\n"
        "\n"
        "VirtualHost \"localhost\"\n"
        "%6$s"
        "\n"
        "Component \"%4$s\"\n"
        "\tcomponent_secret = \"%5$s\"\n",
        dir, p->c2s_port, p->component_port, HX_DOMAIN, HX_SECRET, more_hosts->str);
    g_string_free(more_hosts, TRUE);
    g_free(p->config);
    p->config = hx_write_file(p->hx, "prosody.cfg.lua", cfg, 0600);
}

hx_prosody_t *hx_prosody_new(hx_t *hx)
{
    if (hx->prosody) {
        fprintf(stderr, "harness: a run has one Prosody\n");
        abort();
    }
    hx_prosody_t *p = g_new0(hx_prosody_t, 1);
    p->hx = hx;
    p->out = g_build_filename(hx->dir, "prosody.stdout", NULL);
    p->hosts = g_ptr_array_new_with_free_func(g_free);
    pick_ports(p);
    write_config(p);
    write_account(p, "service", "localhost");
    write_account(p, "alice", "localhost");
    write_account(p, "bob", "localhost");
    hx->prosody = p;
    return p;
}

hx_prosody_t *hx_prosody(const hx_t *hx)
{
    return hx->prosody;
}

void hx_prosody_add_account(hx_prosody_t *p, const char *node)
{
    write_account(p, node, "localhost");
}

void hx_prosody_add_host(hx_prosody_t *p, const char *host)
{
    if (strcmp(host, "localhost") == 0 ||
        g_ptr_array_find_with_equal_func(p->hosts, host, g_str_equal, NULL))
        return;
    g_ptr_array_add(p->hosts, g_strdup(host));
    write_config(p);
}

void hx_prosody_add_account_at(hx_prosody_t *p, const char *node, const char *host)
{
    if (strcmp(host, "localhost") != 0 &&
        !g_ptr_array_find_with_equal_func(p->hosts, host, g_str_equal, NULL)) {
        fprintf(stderr, "harness: %s is not a host of this Prosody (hx_prosody_add_host())\n",
                host);
        abort();
    }
    write_account(p, node, host);
}

bool hx_prosody_start(hx_prosody_t *p)
{
    char *argv[] = {"prosody", "--config", p->config, "-F", NULL};
    pid_t pid = hx_child_start(argv, p->out, p->out);
    if (pid < 0)
        return false;
    p->pid = pid;
    gint64 end = hx_now_ms() + START_BOUND_MS;
    while (!(hx_port_accepts(p->c2s_port) && hx_port_accepts(p->component_port))) {
        int status;
        if (hx_child_exited(pid, &status)) {
            p->pid = 0;
            g_autofree char *text = hx_read_file(p->out);
            fprintf(stderr, "harness: prosody exited (status %d):\n%s\n", status, text);
            return false;
        }
        if (hx_now_ms() > end) {
            fprintf(stderr, "harness: prosody did not open its ports\n");
            hx_prosody_stop(p);
            return false;
        }
        g_usleep(10 * 1000);
    }
    return true;
}

void hx_prosody_stop(hx_prosody_t *p)
{
    if (p->pid <= 0)
        return;
    hx_child_stop(p->hx, p->pid, HX_STOP_BOUND_MS);
    p->pid = 0;
    /* Let the clients see their connections close. */
    hx_pump(p->hx, 50);
}

bool hx_prosody_restart(hx_prosody_t *p)
{
    hx_prosody_stop(p);
    return hx_prosody_start(p);
}

int hx_prosody_c2s_port(const hx_prosody_t *p)
{
    return p->c2s_port;
}

int hx_prosody_component_port(const hx_prosody_t *p)
{
    return p->component_port;
}

pid_t hx_prosody_pid(const hx_prosody_t *p)
{
    return p->pid;
}

void hx_prosody_free(hx_prosody_t *p)
{
    if (!p)
        return;
    hx_prosody_stop(p);
    if (p->hx->prosody == p)
        p->hx->prosody = NULL;
    g_ptr_array_unref(p->hosts);
    g_free(p->config);
    g_free(p->out);
    g_free(p);
}
