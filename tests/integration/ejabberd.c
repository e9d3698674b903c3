/* A private ejabberd for one run (ejabberd.h): config, start through
 * ejabberdctl, accounts, stop by the VM's pid, and the watchdog that cleans
 * up if the test process dies without doing so. */
#include "ejabberd.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "run-private.h"

#define START_BOUND_MS 30000 /* until started, ports open */
#define CTL_BOUND_MS 30000   /* one `ejabberdctl register` */

struct hx_ejabberd {
    hx_t *hx;
    char *ctl; /* path of ejabberdctl */
    uid_t uid; /* of the `ejabberd` user */
    gid_t gid;
    char *dir;  /* RUN/ejabberd, owned by the ejabberd user */
    char *node; /* Erlang node name, unique to this run */
    char *out;  /* ejabberdctl's console output: RUN/ejabberd.out */
    char *ctl_cfg, *yml, *pidfile, *logs, *spool;
    int c2s_port, dist_port, components;
    int component_ports[HX_EJABBERD_MAX_COMPONENTS];
    char *instance_domains[HX_EJABBERD_MAX_COMPONENTS];
    GPtrArray *accounts; /* char *: registered at the next start */
    /* Read by the emergency hook, ej_emergency(). */
    volatile pid_t ctl_pid;  /* `ejabberdctl foreground`, our child (bash) */
    volatile pid_t beam_pid; /* the VM it leads to through su: not our child */
    volatile int watchdog_fd; /* write end; see watchdog_start() */
    pid_t watchdog_pid;
};

static char *find_ejabberdctl(void)
{
    char *ctl = g_find_program_in_path("ejabberdctl");
    if (!ctl && g_file_test("/usr/sbin/ejabberdctl", G_FILE_TEST_IS_EXECUTABLE))
        ctl = g_strdup("/usr/sbin/ejabberdctl");
    return ctl;
}

const char *hx_ejabberd_missing(void)
{
    g_autofree char *ctl = find_ejabberdctl();
    if (!ctl)
        return "ejabberdctl is not installed (apt-get install ejabberd)";
    struct passwd *pw = getpwnam("ejabberd");
    if (!pw)
        return "there is no `ejabberd` user (apt-get install ejabberd)";
    if (geteuid() != 0 && geteuid() != pw->pw_uid)
        return "ejabberdctl runs only as root or as `ejabberd`, not as this user";
    return NULL;
}

hx_ejabberd_t *hx_ejabberd(const hx_t *hx)
{
    return hx->ejabberd;
}

int hx_ejabberd_c2s_port(const hx_ejabberd_t *ej)
{
    return ej->c2s_port;
}

int hx_ejabberd_component_port(const hx_ejabberd_t *ej, int i)
{
    return i >= 0 && i < ej->components ? ej->component_ports[i] : 0;
}

const char *hx_ejabberd_instance_domain(const hx_ejabberd_t *ej, int i)
{
    return i >= 0 && i < ej->components ? ej->instance_domains[i] : NULL;
}

pid_t hx_ejabberd_pid(const hx_ejabberd_t *ej)
{
    return ej->beam_pid;
}

char *hx_ejabberd_log(const hx_ejabberd_t *ej)
{
    return hx_read_file(ej->out);
}

bool hx_ejabberd_running(const hx_ejabberd_t *ej)
{
    return ej->ctl_pid > 0 || ej->beam_pid > 0;
}

/* ---- finding the VM ----------------------------------------------------------
 * Plain libc: the watchdog uses these too. */

static bool proc_is_beam(pid_t pid)
{
    char path[64], comm[32] = {0};
    snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, comm, sizeof comm - 1);
    close(fd);
    return n > 0 && strncmp(comm, "beam", 4) == 0;
}

static pid_t read_pidfile(const char *path)
{
    char buf[32] = {0};
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    long pid = n > 0 ? strtol(buf, NULL, 10) : 0;
    return pid > 0 && proc_is_beam((pid_t)pid) ? (pid_t)pid : 0;
}

/* The VM of node NODE: from PIDFILE, else by its command line. */
static pid_t find_beam(const char *pidfile, const char *node)
{
    pid_t pid = pidfile ? read_pidfile(pidfile) : 0;
    if (pid > 0 || !node)
        return pid;
    char needle[256];
    int needle_len = snprintf(needle, sizeof needle, "-sname%c%s%c", 0, node, 0);
    if (needle_len <= 0 || needle_len >= (int)sizeof needle)
        return 0;
    DIR *proc = opendir("/proc");
    struct dirent *e;
    while (proc && pid == 0 && (e = readdir(proc))) {
        char *end;
        long p = strtol(e->d_name, &end, 10);
        if (*end || p <= 0 || !proc_is_beam((pid_t)p))
            continue;
        char path[64], cmd[4096];
        snprintf(path, sizeof path, "/proc/%ld/cmdline", p);
        int fd = open(path, O_RDONLY);
        if (fd < 0)
            continue;
        ssize_t len = read(fd, cmd, sizeof cmd);
        close(fd);
        if (len > 0 && memmem(cmd, (size_t)len, needle, (size_t)needle_len))
            pid = (pid_t)p;
    }
    if (proc)
        closedir(proc);
    return pid;
}

static pid_t ej_find_beam(const hx_ejabberd_t *ej)
{
    return find_beam(ej->pidfile, ej->node);
}

/* ---- the watchdog ------------------------------------------------------------
 * A child in a session of its own (meson kills the test's process group)
 * that outlives the test process if it dies without cleaning up, then kills
 * ejabberd and removes the run's directory.  It reads pid_t values from a
 * pipe: 0: ejabberd is starting (its pid is in the pidfile soon), > 0: the
 * VM's pid, -1: ejabberd stopped, -2: all clean, exit quietly.  End of file
 * without -2 means the test process is gone. */

static void watchdog_main(int fd, const char *pidfile, const char *node,
                          const char *remove_dir)
{
    pid_t beam = 0;
    bool stopped = true, done = false;
    for (;;) {
        pid_t v;
        ssize_t n = read(fd, &v, sizeof v);
        if (n < 0 && errno == EINTR)
            continue;
        if (n != (ssize_t)sizeof v)
            break;
        if (v >= 0) {
            beam = v;
            stopped = false;
        } else {
            beam = 0;
            stopped = true;
            done = v == -2;
        }
    }
    if (done)
        _exit(0);
    if (!stopped && beam > 0 && proc_is_beam(beam)) {
        hx_foreign_kill(beam, 5000);
    } else if (!stopped) {
        /* It was starting: its VM may still be on its way up (su and sh
         * outlive ejabberdctl), so look for it for a while. */
        for (int t = 0; t < 100; t++) {
            beam = find_beam(pidfile, node);
            if (beam > 0) {
                hx_foreign_kill(beam, 5000);
                break;
            }
            hx_sleep_ms(100);
        }
    }
    if (remove_dir) {
        char *argv[] = {"/bin/rm", "-rf", (char *)remove_dir, NULL};
        execv(argv[0], argv);
    }
    _exit(0);
}

static void watchdog_send(hx_ejabberd_t *ej, pid_t v)
{
    if (ej->watchdog_fd >= 0 && write(ej->watchdog_fd, &v, sizeof v) != (ssize_t)sizeof v)
        fprintf(stderr, "harness: ejabberd watchdog: %s\n", strerror(errno));
}

static void watchdog_start(hx_ejabberd_t *ej)
{
    if (ej->watchdog_fd >= 0)
        return;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        fprintf(stderr, "harness: pipe: %s\n", strerror(errno));
        abort();
    }
    const char *remove_dir = g_getenv("HX_KEEP") ? NULL : ej->hx->dir;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "harness: fork: %s\n", strerror(errno));
        abort();
    }
    if (pid == 0) {
        setsid();
        signal(SIGTERM, SIG_IGN);
        signal(SIGINT, SIG_IGN);
        signal(SIGHUP, SIG_IGN);
        signal(SIGPIPE, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        /* Keep no descriptor but the pipe's read end: not meson's output
         * pipes (it would wait for us), not the clients' sockets. */
        int fd = dup2(fds[0], 3);
        int null = open("/dev/null", O_RDWR);
        if (fd != 3 || null < 0)
            _exit(127);
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        close_range(4, ~0U, 0);
        watchdog_main(3, ej->pidfile, ej->node, remove_dir);
    }
    close(fds[0]);
    ej->watchdog_pid = pid;
    ej->watchdog_fd = fds[1];
}

/* All clean: the watchdog exits without touching anything. */
static void watchdog_close(hx_ejabberd_t *ej)
{
    if (ej->watchdog_fd < 0)
        return;
    watchdog_send(ej, -2);
    close(ej->watchdog_fd);
    ej->watchdog_fd = -1;
    if (ej->watchdog_pid > 0 && waitpid(ej->watchdog_pid, NULL, 0) < 0)
        fprintf(stderr, "harness: ejabberd watchdog: %s\n", strerror(errno));
    ej->watchdog_pid = 0;
}

/* The emergency hook (process.h): ejabberdctl, our child, is dead already;
 * the VM is not our child.  Async-signal-safe. */
static void ej_emergency(void *arg)
{
    hx_ejabberd_t *ej = arg;
    pid_t beam = ej->beam_pid;
    if (beam <= 0)
        return;
    hx_foreign_kill(beam, 3000);
    /* The watchdog need not kill it again. */
    pid_t stopped = -1;
    if (ej->watchdog_fd >= 0) {
        ssize_t n = write(ej->watchdog_fd, &stopped, sizeof stopped);
        (void)n;
    }
}

/* ---- config ----------------------------------------------------------------- */

/* lchown() of PATH and everything below it. */
static bool chown_tree(const char *path, uid_t uid, gid_t gid)
{
    if (lchown(path, uid, gid) != 0)
        return false;
    GDir *dir = g_file_test(path, G_FILE_TEST_IS_DIR) &&
                        !g_file_test(path, G_FILE_TEST_IS_SYMLINK)
                    ? g_dir_open(path, 0, NULL)
                    : NULL;
    bool ok = true;
    const char *name;
    while (ok && dir && (name = g_dir_read_name(dir))) {
        g_autofree char *child = g_build_filename(path, name, NULL);
        ok = chown_tree(child, uid, gid);
    }
    if (dir)
        g_dir_close(dir);
    return ok;
}

static void configure(hx_ejabberd_t *ej, const hx_ejabberd_opts_t *o)
{
    hx_t *hx = ej->hx;
    hx_ejabberd_opts_t d = {0};
    if (o)
        d = *o;
    ej->components = d.components > 0 ? d.components : 1;
    if (ej->components > HX_EJABBERD_MAX_COMPONENTS) {
        fprintf(stderr, "harness: at most %d ejabberd component listeners\n",
                HX_EJABBERD_MAX_COMPONENTS);
        abort();
    }
    const char *domain = d.domain ? d.domain : HX_DOMAIN;
    const char *secret = d.secret ? d.secret : HX_SECRET;

    /* Every port at once, so that no two are the same. */
    int fds[2 + HX_EJABBERD_MAX_COMPONENTS];
    ej->c2s_port = hx_pick_port(&fds[0]);
    ej->dist_port = hx_pick_port(&fds[1]);
    for (int i = 0; i < ej->components; i++)
        ej->component_ports[i] = hx_pick_port(&fds[2 + i]);
    for (int i = 0; i < 2 + ej->components; i++)
        close(fds[i]);

    ej->dir = g_build_filename(hx->dir, "ejabberd", NULL);
    ej->logs = g_build_filename(ej->dir, "logs", NULL);
    ej->spool = g_build_filename(ej->dir, "spool", NULL);
    ej->out = g_build_filename(hx->dir, "ejabberd.out", NULL);
    ej->pidfile = g_build_filename(ej->dir, "ejabberd.pid", NULL);
    ej->ctl_cfg = g_build_filename(ej->dir, "ejabberdctl.cfg", NULL);
    ej->yml = g_build_filename(ej->dir, "ejabberd.yml", NULL);
    ej->node = g_strdup_printf("hxit%d-%08x@localhost", (int)getpid(), g_random_int());
    g_mkdir_with_parents(ej->logs, 0700);
    g_mkdir_with_parents(ej->spool, 0700);

    /* ejabberdctl reads the Erlang resolver's config from the config dir:
     * "localhost" (the node's host) without DNS. */
    g_free(hx_write_file(hx, "ejabberd/inetrc",
                         "{lookup,[\"file\",\"native\"]}.\n"
                         "{host,{127,0,0,1}, [\"localhost\",\"hostalias\"]}.\n"
                         "{file, resolv, \"/etc/resolv.conf\"}.\n",
                         0644));
    /* ERL_DIST_PORT: the node listens there, ejabberdctl's commands go
     * there, and neither starts nor asks epmd. */
    g_autofree char *ctl_cfg = g_strdup_printf("# written by tests/integration/ejabberd.c\n"
                                               "ERLANG_NODE=%s\n"
                                               "ERL_DIST_PORT=%d\n"
                                               "INET_DIST_INTERFACE=127.0.0.1\n"
                                               "EJABBERD_PID_PATH=%s\n"
                                               "EJABBERD_BYPASS_WARNINGS=true\n",
                                               ej->node, ej->dist_port, ej->pidfile);
    g_free(hx_write_file(hx, "ejabberd/ejabberdctl.cfg", ctl_cfg, 0644));

    GString *yml = g_string_new(NULL);
    g_string_append_printf(yml,
                           "# written by tests/integration/ejabberd.c\n"
                           "hosts: [\"localhost\"]\n"
                           "loglevel: info\n"
                           "auth_method: internal\n"
                           "auth_password_format: plain\n"
                           "listen:\n"
                           "  - port: %d\n"
                           "    ip: \"127.0.0.1\"\n"
                           "    module: ejabberd_c2s\n",
                           ej->c2s_port);
    for (int i = 0; i < ej->components; i++) {
        const char *inst = d.instance_domains[i];
        ej->instance_domains[i] = !inst ? g_strdup_printf("i%d.%s", i + 1, domain)
                                  : *inst ? g_strdup(inst)
                                          : NULL;
        g_string_append_printf(yml,
                               "  - port: %d\n"
                               "    ip: \"127.0.0.1\"\n"
                               "    module: ejabberd_service\n"
                               "    hosts:\n"
                               "      \"%s\":\n"
                               "        password: \"%s\"\n",
                               ej->component_ports[i], domain, secret);
        if (ej->instance_domains[i])
            g_string_append_printf(yml,
                                   "      \"%s\":\n"
                                   "        password: \"%s\"\n",
                                   ej->instance_domains[i], secret);
    }
    g_string_append(yml, "acl:\n"
                         "  local:\n"
                         "    user_regexp: \"\"\n"
                         "access_rules:\n"
                         "  local:\n"
                         "    allow: local\n"
                         "modules:\n"
                         "  mod_roster: {}\n"
                         "  mod_disco: {}\n"
                         "  mod_ping: {}\n");
    g_free(hx_write_file(hx, "ejabberd/ejabberd.yml", yml->str, 0600));
    g_string_free(yml, TRUE);

    if (geteuid() == 0) {
        /* ejabberdctl runs the VM as `ejabberd`: it needs its directory, and
         * a way through ours (listing it stays ours alone). */
        if (chmod(hx->dir, 0711) != 0 || !chown_tree(ej->dir, ej->uid, ej->gid)) {
            fprintf(stderr, "harness: cannot hand %s to ejabberd: %s\n", ej->dir,
                    strerror(errno));
            abort();
        }
    }
}

hx_ejabberd_t *hx_ejabberd_new(hx_t *hx, const hx_ejabberd_opts_t *opts)
{
    if (hx->ejabberd) {
        fprintf(stderr, "harness: a run has one ejabberd\n");
        abort();
    }
    const char *missing = hx_ejabberd_missing();
    if (missing) {
        fprintf(stderr, "harness: %s\n", missing);
        return NULL;
    }
    hx_ejabberd_t *ej = g_new0(hx_ejabberd_t, 1);
    ej->hx = hx;
    ej->watchdog_fd = -1;
    ej->ctl = find_ejabberdctl();
    struct passwd *pw = getpwnam("ejabberd");
    ej->uid = pw->pw_uid;
    ej->gid = pw->pw_gid;
    ej->accounts = g_ptr_array_new_with_free_func(g_free);
    g_ptr_array_add(ej->accounts, g_strdup("service"));
    g_ptr_array_add(ej->accounts, g_strdup("alice"));
    g_ptr_array_add(ej->accounts, g_strdup("bob"));
    configure(ej, opts);
    hx_emergency_add_hook(ej_emergency, ej);
    hx->ejabberd = ej;
    return ej;
}

/* ---- ejabberdctl -------------------------------------------------------------- */

/* ejabberdctl --ctl-config ... ARGS...: a new vector (g_free it; the
 * strings are borrowed). */
static char **ctl_argv(hx_ejabberd_t *ej, char *const args[])
{
    GPtrArray *v = g_ptr_array_new();
    char *fixed[] = {ej->ctl,   "--ctl-config", ej->ctl_cfg, "--config-dir",
                     ej->dir,   "--config",     ej->yml,     "--logs",
                     ej->logs,  "--spool",      ej->spool};
    for (size_t i = 0; i < G_N_ELEMENTS(fixed); i++)
        g_ptr_array_add(v, fixed[i]);
    for (size_t i = 0; args[i]; i++)
        g_ptr_array_add(v, args[i]);
    g_ptr_array_add(v, NULL);
    return (char **)g_ptr_array_free(v, FALSE);
}

/* Starts `ejabberdctl ARGS...` with its output to a new file *OUT (g_free
 * it). */
static pid_t ctl_start(hx_ejabberd_t *ej, char *const args[], char **out)
{
    *out = g_strdup_printf("%s/ejabberdctl-%u.out", ej->hx->dir, ++ej->hx->ejabberdctl_run);
    g_autofree char **argv = ctl_argv(ej, args);
    return hx_child_start(argv, *out, *out);
}

/* Waits for an ejabberdctl command; true if it exited 0. */
static bool ctl_wait(hx_ejabberd_t *ej, pid_t pid)
{
    if (pid <= 0)
        return false;
    int status = hx_child_wait(ej->hx, pid, CTL_BOUND_MS);
    if (status == -1) {
        hx_child_kill(pid);
        return false;
    }
    return status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* `ejabberdctl register` of each of NODES, all at once: each starts an
 * Erlang VM of its own, about a second. */
static bool register_accounts(hx_ejabberd_t *ej, char **nodes, guint n)
{
    pid_t *pids = g_new0(pid_t, n);
    char **outs = g_new0(char *, n + 1);
    for (guint i = 0; i < n; i++) {
        char *args[] = {"register", nodes[i], "localhost", HX_PASSWORD, NULL};
        pids[i] = ctl_start(ej, args, &outs[i]);
    }
    bool ok = true;
    for (guint i = 0; i < n; i++) {
        if (ctl_wait(ej, pids[i]))
            continue;
        /* Once more, alone: two of these VMs may have picked the same
         * random node name. */
        char *args[] = {"register", nodes[i], "localhost", HX_PASSWORD, NULL};
        g_free(outs[i]);
        if (ctl_wait(ej, ctl_start(ej, args, &outs[i])))
            continue;
        g_autofree char *text = hx_read_file(outs[i]);
        fprintf(stderr, "harness: ejabberdctl register %s failed:\n%s\n", nodes[i], text);
        ok = false;
    }
    g_strfreev(outs);
    g_free(pids);
    return ok;
}

/* ---- start and stop ------------------------------------------------------------- */

static bool all_ports_accept(const hx_ejabberd_t *ej)
{
    if (!hx_port_accepts(ej->c2s_port))
        return false;
    for (int i = 0; i < ej->components; i++) {
        if (!hx_port_accepts(ej->component_ports[i]))
            return false;
    }
    return true;
}

/* `ejabberdctl foreground`, until the VM has started and every port
 * accepts. */
static bool spawn(hx_ejabberd_t *ej)
{
    watchdog_start(ej);
    /* ejabberd leaves its pidfile behind when it stops. */
    unlink(ej->pidfile);
    struct stat st;
    size_t mark = stat(ej->out, &st) == 0 ? (size_t)st.st_size : 0;
    char *args[] = {"foreground", NULL};
    g_autofree char **argv = ctl_argv(ej, args);
    watchdog_send(ej, 0);
    pid_t pid = hx_child_start(argv, ej->out, ej->out);
    if (pid < 0) {
        watchdog_send(ej, -1);
        return false;
    }
    ej->ctl_pid = pid;
    gint64 start = hx_now_ms(), end = start + START_BOUND_MS;
    for (;;) {
        int status;
        if (hx_child_exited(pid, &status)) {
            ej->ctl_pid = 0;
            g_autofree char *text = hx_ejabberd_log(ej);
            fprintf(stderr, "harness: ejabberd exited (status %d):\n%s\n", status,
                    text + MIN(mark, strlen(text)));
            hx_foreign_kill(ej_find_beam(ej), HX_STOP_BOUND_MS); /* its VM, if any */
            watchdog_send(ej, -1);
            return false;
        }
        g_autofree char *text = hx_ejabberd_log(ej);
        pid_t beam = 0;
        if (strlen(text) > mark && strstr(text + mark, "is started in the node") &&
            all_ports_accept(ej) && (beam = ej_find_beam(ej)) > 0) {
            ej->beam_pid = beam;
            watchdog_send(ej, beam);
            break;
        }
        if (hx_now_ms() > end) {
            fprintf(stderr, "harness: ejabberd did not start within %d ms:\n%s\n",
                    START_BOUND_MS, text + MIN(mark, strlen(text)));
            hx_ejabberd_stop(ej);
            return false;
        }
        hx_pump(ej->hx, 20);
    }
    if (g_getenv("HX_DEBUG"))
        fprintf(stderr, "harness: ejabberd started in %" G_GINT64_FORMAT " ms\n",
                hx_now_ms() - start);
    return true;
}

bool hx_ejabberd_start(hx_ejabberd_t *ej)
{
    if (hx_ejabberd_running(ej))
        hx_ejabberd_stop(ej);
    if (!spawn(ej))
        return false;
    if (ej->accounts->len > 0) {
        gint64 start = hx_now_ms();
        bool ok = register_accounts(ej, (char **)ej->accounts->pdata, ej->accounts->len);
        if (g_getenv("HX_DEBUG"))
            fprintf(stderr, "harness: %u ejabberd accounts in %" G_GINT64_FORMAT " ms\n",
                    ej->accounts->len, hx_now_ms() - start);
        g_ptr_array_set_size(ej->accounts, 0);
        if (!ok) {
            hx_ejabberd_stop(ej);
            return false;
        }
    }
    return true;
}

void hx_ejabberd_stop(hx_ejabberd_t *ej)
{
    pid_t ctl = ej->ctl_pid, beam = ej->beam_pid;
    if (ctl <= 0 && beam <= 0)
        return;
    if (beam <= 0)
        beam = ej_find_beam(ej);
    if (beam > 0) {
        /* A clean stop: about a second. */
        kill(beam, SIGTERM);
        if (!hx_foreign_wait(ej->hx, beam, HX_STOP_BOUND_MS)) {
            fprintf(stderr, "harness: ejabberd (pid %d) ignored SIGTERM, killing\n", (int)beam);
            hx_foreign_kill(beam, HX_STOP_BOUND_MS);
        }
    }
    if (ctl > 0) {
        /* It ends when the VM does (through su and sh). */
        if (hx_child_wait(ej->hx, ctl, beam > 0 ? 2000 : 0) == -1) {
            hx_child_kill(ctl);
            /* A VM that was still on its way up. */
            pid_t late = ej_find_beam(ej);
            if (late > 0)
                hx_foreign_kill(late, HX_STOP_BOUND_MS);
        }
    }
    ej->ctl_pid = 0;
    ej->beam_pid = 0;
    watchdog_send(ej, -1);
    /* Let the clients see their connections close. */
    hx_pump(ej->hx, 50);
}

bool hx_ejabberd_restart(hx_ejabberd_t *ej)
{
    hx_ejabberd_stop(ej);
    return hx_ejabberd_start(ej);
}

bool hx_ejabberd_add_account(hx_ejabberd_t *ej, const char *node)
{
    if (hx_ejabberd_running(ej)) {
        char *nodes[] = {(char *)node};
        return register_accounts(ej, nodes, 1);
    }
    g_ptr_array_add(ej->accounts, g_strdup(node));
    return true;
}

void hx_ejabberd_free(hx_ejabberd_t *ej)
{
    if (!ej)
        return;
    hx_ejabberd_stop(ej);
    watchdog_close(ej);
    hx_emergency_remove_hook(ej_emergency, ej);
    if (ej->hx->ejabberd == ej)
        ej->hx->ejabberd = NULL;
    g_free(ej->ctl);
    g_free(ej->dir);
    g_free(ej->node);
    g_free(ej->out);
    g_free(ej->ctl_cfg);
    g_free(ej->yml);
    g_free(ej->pidfile);
    g_free(ej->logs);
    g_free(ej->spool);
    for (int i = 0; i < HX_EJABBERD_MAX_COMPONENTS; i++)
        g_free(ej->instance_domains[i]);
    g_ptr_array_unref(ej->accounts);
    g_free(ej);
}
