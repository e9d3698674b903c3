/* A private Prosody for one run (prosody.h): config, accounts, start on
 * free loopback ports, stop by pid. */
#include "prosody.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "run-private.h"

#define START_BOUND_MS 15000 /* until both ports accept */

struct hx_prosody {
    hx_t *hx;
    char *config; /* path of prosody.cfg.lua */
    char *out;    /* its stdout and stderr */
    int c2s_port, component_port;
    pid_t pid; /* 0: not running */
};

static void write_account(hx_prosody_t *p, const char *node)
{
    g_autofree char *dir = g_build_filename(p->hx->dir, "data", "localhost", "accounts", NULL);
    g_mkdir_with_parents(dir, 0700);
    g_autofree char *path = g_strdup_printf("%s/%s.dat", dir, node);
    g_autofree char *text =
        g_strdup_printf("return {\n\t[\"password\"] = \"%s\";\n};\n", HX_PASSWORD);
    g_file_set_contents(path, text, -1, NULL);
}

static void write_config(hx_prosody_t *p)
{
    int fd1, fd2;
    p->c2s_port = hx_pick_port(&fd1);
    p->component_port = hx_pick_port(&fd2);
    close(fd1);
    close(fd2);

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
        "\n"
        "Component \"%4$s\"\n"
        "\tcomponent_secret = \"%5$s\"\n",
        dir, p->c2s_port, p->component_port, HX_DOMAIN, HX_SECRET);
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
    write_config(p);
    write_account(p, "service");
    write_account(p, "alice");
    write_account(p, "bob");
    hx->prosody = p;
    return p;
}

hx_prosody_t *hx_prosody(const hx_t *hx)
{
    return hx->prosody;
}

void hx_prosody_add_account(hx_prosody_t *p, const char *node)
{
    write_account(p, node);
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
    g_free(p->config);
    g_free(p->out);
    g_free(p);
}
