/* client-proxy as a child of the test process (client-proxy.h): config
 * files, start and stop by pid, reading and waiting on its log, and the
 * memory-report check every teardown makes. */
#include "client-proxy.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "run-private.h"

struct hx_proxy {
    hx_t *hx;
    pid_t pid;   /* 0 once reaped */
    int status;  /* last collected wait status, -1 before */
    char *config; /* paths in the run's directory */
    char *out, *err;
};

const char *hx_proxy_bin(void)
{
    const char *bin = g_getenv("CLIENT_PROXY_BIN");
    return bin && *bin ? bin : "client-proxy";
}

char *const *hx_proxy_wrapper(const hx_t *hx)
{
    return hx->wrapper;
}

/* WRAPPER... PROGRAM ARGS...: a new vector of borrowed strings (g_free it). */
static char **wrapped_argv(const hx_t *hx, const char *program, char *const args[])
{
    GPtrArray *v = g_ptr_array_new();
    for (size_t i = 0; hx->wrapper && hx->wrapper[i]; i++)
        g_ptr_array_add(v, hx->wrapper[i]);
    g_ptr_array_add(v, (char *)program);
    for (size_t i = 0; args && args[i]; i++)
        g_ptr_array_add(v, args[i]);
    g_ptr_array_add(v, NULL);
    return (char **)g_ptr_array_free(v, FALSE);
}

int hx_proxy_run(hx_t *hx, char *const args[], char **out, char **err, int timeout_ms)
{
    g_autofree char **argv = wrapped_argv(hx, hx_proxy_bin(), args);
    return hx_run(hx, argv, out, err, timeout_ms);
}

char *hx_memcheck_report(const char *log)
{
    static const char *const needles[] = {
        "Sanitizer", "runtime error:",
        /* valgrind (memcheck) */
        "definitely lost", "indirectly lost", "possibly lost in loss record",
        "Invalid read", "Invalid write", "Invalid free", "Mismatched free",
        "uninitialised", "unaddressable", "Syscall param",
        "Source and destination overlap", "Process terminating with default action",
    };
    if (!log)
        return NULL;
    g_auto(GStrv) lines = g_strsplit(log, "\n", -1);
    for (char **l = lines; *l; l++) {
        for (size_t i = 0; i < G_N_ELEMENTS(needles); i++) {
            if (strstr(*l, needles[i]))
                return g_strdup(*l);
        }
        const char *summary = strstr(*l, "ERROR SUMMARY: ");
        if (summary && strtol(summary + strlen("ERROR SUMMARY: "), NULL, 10) > 0)
            return g_strdup(*l);
    }
    return NULL;
}

/* ---- config ------------------------------------------------------------------ */

static int default_port(const hx_t *hx)
{
    if (hx->prosody)
        return hx_prosody_component_port(hx->prosody);
    if (hx->ejabberd)
        return hx_ejabberd_component_port(hx->ejabberd, 0);
    return 0;
}

char *hx_proxy_write_config(hx_t *hx, const char *name, const hx_proxy_opts_t *o)
{
    hx_proxy_opts_t d = {0};
    if (o)
        d = *o;
    g_autofree char *instance =
        d.instance_domain ? g_strdup_printf("instance_domain = %s\n", d.instance_domain) : NULL;
    g_autofree char *text = g_strdup_printf(
        "[component]\n"
        "domain = %s\n"
        "%s"
        "secret = %s\n"
        "server = 127.0.0.1\n"
        "port = %d\n"
        "\n"
        "[proxy]\n"
        "target = %s\n"
        "dispatch = %s\n"
        "encoding = %s\n"
        "request_timeout = %d\n"
        "%s",
        d.domain ? d.domain : HX_DOMAIN, instance ? instance : "",
        d.secret ? d.secret : HX_SECRET, d.port ? d.port : default_port(hx),
        d.target ? d.target : HX_TARGET, d.dispatch ? d.dispatch : "random",
        d.encoding ? d.encoding : "raw", d.request_timeout ? d.request_timeout : 2,
        d.extra ? d.extra : "");
    char *path = hx_write_file(hx, name, text, 0600);
    /* It holds the secret: client-proxy refuses it readable by others. */
    struct stat st;
    if (stat(path, &st) != 0 || (st.st_mode & 07777) != 0600) {
        fprintf(stderr, "harness: %s is not mode 0600\n", path);
        abort();
    }
    return path;
}

void hx_proxy_rewrite_config(hx_proxy_t *p, const hx_proxy_opts_t *opts)
{
    g_autofree char *name = g_path_get_basename(p->config);
    g_free(hx_proxy_write_config(p->hx, name, opts));
}

/* ---- start and stop ------------------------------------------------------------- */

hx_proxy_t *hx_proxy_start(hx_t *hx, const hx_proxy_opts_t *opts)
{
    unsigned seq = ++hx->proxies_started;
    g_autofree char *name = g_strdup_printf("proxy-%u.conf", seq);
    hx_proxy_t *p = g_new0(hx_proxy_t, 1);
    p->hx = hx;
    p->status = -1;
    p->config = hx_proxy_write_config(hx, name, opts);
    p->err = g_strdup_printf("%s/proxy-%u.stderr", hx->dir, seq);
    p->out = g_strdup_printf("%s/proxy-%u.stdout", hx->dir, seq);
    char *args[] = {"--config", p->config, NULL};
    g_autofree char **argv = wrapped_argv(hx, hx_proxy_bin(), args);
    p->pid = hx_child_start_env(argv, opts ? (char *const *)opts->env : NULL, p->out, p->err);
    if (p->pid <= 0) {
        p->pid = 0;
        hx_proxy_free(p);
        return NULL;
    }
    g_ptr_array_add(hx->proxies, p);
    return p;
}

void hx_proxy_free(hx_proxy_t *p)
{
    if (!p)
        return;
    hx_proxy_stop(p);
    g_ptr_array_remove(p->hx->proxies, p);
    g_free(p->config);
    g_free(p->out);
    g_free(p->err);
    g_free(p);
}

pid_t hx_proxy_pid(const hx_proxy_t *p)
{
    return p->pid;
}

void hx_proxy_signal(hx_proxy_t *p, int sig)
{
    if (p->pid > 0)
        kill(p->pid, sig);
}

int hx_proxy_wait_exit(hx_proxy_t *p, int timeout_ms)
{
    if (p->pid <= 0)
        return p->status;
    int status = hx_child_wait(p->hx, p->pid, timeout_ms);
    if (status >= 0) {
        p->pid = 0;
        p->status = status;
    }
    return status;
}

int hx_proxy_stop(hx_proxy_t *p)
{
    if (p->pid <= 0)
        return p->status;
    p->status = hx_child_stop(p->hx, p->pid, p->hx->wrapper ? HX_WRAPPED_STOP_MS : HX_STOP_BOUND_MS);
    p->pid = 0;
    return p->status;
}

bool hx_proxy_running(hx_proxy_t *p)
{
    if (p->pid <= 0)
        return false;
    int status;
    if (hx_child_exited(p->pid, &status)) {
        p->pid = 0;
        p->status = status;
        return false;
    }
    return true;
}

/* ---- its log ---------------------------------------------------------------------- */

char *hx_proxy_log(const hx_proxy_t *p)
{
    return hx_read_file(p->err);
}

size_t hx_proxy_log_mark(const hx_proxy_t *p)
{
    g_autofree char *text = hx_proxy_log(p);
    return strlen(text);
}

char *hx_proxy_wait_log(hx_proxy_t *p, size_t mark, const char *needle, int timeout_ms)
{
    g_autofree char *low_needle = g_ascii_strdown(needle, -1);
    gint64 end = hx_now_ms() + timeout_ms;
    for (;;) {
        g_autofree char *text = hx_proxy_log(p);
        if (strlen(text) > mark) {
            g_autofree char *low = g_ascii_strdown(text + mark, -1);
            char *hit = strstr(low, low_needle);
            if (hit) {
                /* Return the whole line, with its original case. */
                size_t off = (size_t)(hit - low);
                size_t start = off, stop = off;
                const char *t = text + mark;
                while (start > 0 && t[start - 1] != '\n')
                    start--;
                while (t[stop] && t[stop] != '\n')
                    stop++;
                return g_strndup(t + start, stop - start);
            }
        }
        if (hx_now_ms() >= end)
            return NULL;
        hx_pump(p->hx, 20);
    }
}

unsigned hx_proxy_log_count(const hx_proxy_t *p, size_t mark, const char *needle)
{
    g_autofree char *text = hx_proxy_log(p);
    if (strlen(text) <= mark)
        return 0;
    g_autofree char *low_needle = g_ascii_strdown(needle, -1);
    g_autofree char *low = g_ascii_strdown(text + mark, -1);
    g_auto(GStrv) lines = g_strsplit(low, "\n", -1);
    unsigned n = 0;
    for (char **l = lines; *l; l++)
        n += strstr(*l, low_needle) != NULL;
    return n;
}
