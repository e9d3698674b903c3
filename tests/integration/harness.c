/* Integration-test harness: see harness.h. */
#include "harness.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define STOP_BOUND_MS 5000     /* SIGTERM -> SIGKILL */
/* SIGTERM -> SIGKILL for a client-proxy under CLIENT_PROXY_WRAPPER: valgrind
 * checks for leaks after main() returns, and that takes seconds. */
#define HX_WRAPPED_STOP_MS 30000
#define START_BOUND_MS 15000   /* Prosody until both ports accept */
#define CONNECT_BOUND_MS 10000 /* a test client until its session */
#define EJ_START_BOUND_MS 30000 /* ejabberd until started, ports open */
#define EJ_CTL_BOUND_MS 30000   /* one `ejabberdctl register` */

/* ---- the run ------------------------------------------------------------- */

static char *g_dir;
/* Built once, so that the signal handler needs no allocation. */
static char *g_rm_argv[4];
static volatile pid_t g_prosody_pid;
static volatile pid_t g_proxy_pids[HX_MAX_PROXIES];
typedef struct {
    int status; /* last collected wait status */
    int seq;    /* of its config and log files */
    char *err, *out;
} proxy_t;
_Static_assert(HX_MAX_PROXIES == 4, "the initializer below");
static proxy_t g_proxies[HX_MAX_PROXIES] = {
    {.status = -1}, {.status = -1}, {.status = -1}, {.status = -1}};
static int g_c2s_port, g_component_port;
static int g_client_port; /* hx_client_use_port() */
static char *g_prosody_cfg;
static int g_proxy_seq;
static volatile pid_t g_helpers[8]; /* from hx_spawn() */
/* ejabberd: ejabberdctl (our child, bash) and the Erlang VM it leads to
 * through su (not our child, another user: stopped by pid). */
static volatile pid_t g_ej_ctl_pid, g_ej_beam_pid;
static volatile int g_ej_watchdog_fd = -1; /* write end; see ej_watchdog_start() */
static xmpp_ctx_t *g_ctx;
static GPtrArray *g_clients; /* hx_client_t *, not owned */

static void ej_cleanup(void);
static void ej_forget(void);
static void ej_watchdog_close(void);

gint64 hx_now_ms(void)
{
    return g_get_monotonic_time() / 1000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Kills PID, which is not our child, with SIGKILL and waits up to BOUND_MS
 * for it to be gone.  Async-signal-safe. */
static void kill_foreign(pid_t pid, long bound_ms)
{
    if (pid <= 0)
        return;
    kill(pid, SIGKILL);
    for (long t = 0; t < bound_ms && kill(pid, 0) == 0; t += 10)
        sleep_ms(10);
}

static void on_fatal_signal(int sig)
{
    /* Only async-signal-safe calls here. */
    enum { N = 2 + HX_MAX_PROXIES + 8 };
    pid_t pids[N] = {g_prosody_pid, g_ej_ctl_pid};
    for (int i = 0; i < HX_MAX_PROXIES; i++)
        pids[2 + i] = g_proxy_pids[i];
    for (int i = 0; i < 8; i++)
        pids[2 + HX_MAX_PROXIES + i] = g_helpers[i];
    for (int i = 0; i < N; i++) {
        if (pids[i] > 0) {
            kill(pids[i], SIGKILL);
            waitpid(pids[i], NULL, 0);
        }
    }
    if (g_ej_beam_pid > 0) {
        kill_foreign(g_ej_beam_pid, 3000);
        /* The watchdog need not kill it again. */
        pid_t done = -1;
        if (g_ej_watchdog_fd >= 0) {
            ssize_t n = write(g_ej_watchdog_fd, &done, sizeof done);
            (void)n;
        }
    }
    if (g_rm_argv[0]) {
        pid_t rm = fork();
        if (rm == 0) {
            execv(g_rm_argv[0], g_rm_argv);
            _exit(127);
        }
        if (rm > 0)
            waitpid(rm, NULL, 0);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static void at_exit(void)
{
    hx_cleanup();
}

xmpp_ctx_t *hx_ctx(void)
{
    return g_ctx;
}

const char *hx_dir(void)
{
    return g_dir;
}

const char *hx_init(void)
{
    if (g_dir)
        return g_dir;
    const char *base = g_getenv("TMPDIR");
    g_autofree char *tmpl =
        g_build_filename(base && *base ? base : "/tmp", "cp-it-XXXXXX", NULL);
    if (!mkdtemp(tmpl)) {
        fprintf(stderr, "harness: mkdtemp %s: %s\n", tmpl, strerror(errno));
        abort();
    }
    g_dir = g_strdup(tmpl);
    g_rm_argv[0] = "/bin/rm";
    g_rm_argv[1] = "-rf";
    g_rm_argv[2] = g_dir;
    g_rm_argv[3] = NULL;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fatal_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    atexit(at_exit);

    xmpp_initialize();
    xmpp_log_t *log = NULL;
    if (g_getenv("HX_DEBUG"))
        log = xmpp_get_default_logger(XMPP_LEVEL_DEBUG);
    g_ctx = xmpp_ctx_new(NULL, log);
    g_clients = g_ptr_array_new();
    return g_dir;
}

static int rm_one(const char *path, const struct stat *sb, int flag,
                  struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void hx_cleanup(void)
{
    for (int i = 0; i < 8; i++) {
        if (g_helpers[i] > 0)
            hx_spawn_stop(g_helpers[i], STOP_BOUND_MS);
    }
    while (g_clients && g_clients->len > 0)
        hx_client_free(g_ptr_array_index(g_clients, g_clients->len - 1));
    for (int i = 0; i < HX_MAX_PROXIES; i++) {
        if (g_proxy_pids[i] > 0)
            hx_proxy_stop_at(i);
    }
    if (g_prosody_pid > 0)
        hx_prosody_stop();
    ej_cleanup();
    if (g_dir) {
        if (!g_getenv("HX_KEEP"))
            nftw(g_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        else
            fprintf(stderr, "harness: kept %s\n", g_dir);
        g_rm_argv[0] = NULL;
        g_clear_pointer(&g_dir, g_free);
    }
    if (g_ctx) {
        xmpp_ctx_free(g_ctx);
        g_ctx = NULL;
        xmpp_shutdown();
    }
    g_clear_pointer(&g_clients, g_ptr_array_unref);
    g_clear_pointer(&g_prosody_cfg, g_free);
    for (int i = 0; i < HX_MAX_PROXIES; i++) {
        g_clear_pointer(&g_proxies[i].err, g_free);
        g_clear_pointer(&g_proxies[i].out, g_free);
    }
    ej_forget();
    /* Done: the watchdog exits without touching anything. */
    ej_watchdog_close();
}

/* ---- children ------------------------------------------------------------ */

static pid_t spawn(char *const argv[], const char *out, const char *err)
{
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "harness: fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid > 0)
        return pid;

    /* Child: die with the test process, keep none of its sockets (a client
     * socket held open here would hide a disconnect from the server). */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    int fo = open(out, O_WRONLY | O_CREAT | O_APPEND, 0600);
    int fe = open(err, O_WRONLY | O_CREAT | O_APPEND, 0600);
    int fi = open("/dev/null", O_RDONLY);
    if (fo < 0 || fe < 0 || fi < 0)
        _exit(127);
    dup2(fi, 0);
    dup2(fo, 1);
    dup2(fe, 2);
    close_range(3, ~0U, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    execvp(argv[0], argv);
    fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

/* Waits for PID up to BOUND_MS while pumping the clients; returns the wait
 * status or -1 if it is still running. */
static int wait_child(pid_t pid, int bound_ms)
{
    gint64 end = hx_now_ms() + bound_ms;
    for (;;) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return status;
        if (r < 0 && errno != EINTR)
            return -2;
        if (hx_now_ms() >= end)
            return -1;
        hx_pump(10);
    }
}

/* SIGTERM, wait up to BOUND_MS, SIGKILL. */
static int stop_child_within(pid_t pid, int bound_ms)
{
    kill(pid, SIGTERM);
    int status = wait_child(pid, bound_ms);
    if (status == -1) {
        fprintf(stderr, "harness: pid %d ignored SIGTERM, killing\n", (int)pid);
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    return status;
}

static int stop_child(pid_t pid)
{
    return stop_child_within(pid, STOP_BOUND_MS);
}

static char *read_file(const char *path)
{
    char *text = NULL;
    if (!g_file_get_contents(path, &text, NULL, NULL))
        return g_strdup("");
    return text;
}

char *hx_write_file(const char *name, const char *text, int mode)
{
    char *path = g_build_filename(g_dir, name, NULL);
    if (!g_file_set_contents(path, text, -1, NULL) || chmod(path, mode) != 0) {
        fprintf(stderr, "harness: cannot write %s\n", path);
        abort();
    }
    return path;
}

pid_t hx_spawn(char *const argv[], const char *out_path)
{
    for (int i = 0; i < 8; i++) {
        if (g_helpers[i] <= 0) {
            pid_t pid = spawn(argv, out_path, out_path);
            g_helpers[i] = pid > 0 ? pid : 0;
            return pid;
        }
    }
    fprintf(stderr, "harness: too many helpers\n");
    return -1;
}

int hx_spawn_stop(pid_t pid, int timeout_ms)
{
    kill(pid, SIGTERM);
    int status = wait_child(pid, timeout_ms);
    if (status == -1) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    for (int i = 0; i < 8; i++) {
        if (g_helpers[i] == pid)
            g_helpers[i] = 0;
    }
    return status;
}

int hx_run(char *const argv[], char **out, char **err, int timeout_ms)
{
    static int seq;
    seq++;
    g_autofree char *o = g_strdup_printf("%s/run-%d.out", g_dir, seq);
    g_autofree char *e = g_strdup_printf("%s/run-%d.err", g_dir, seq);
    pid_t pid = spawn(argv, o, e);
    if (pid < 0)
        return -1;
    int status = wait_child(pid, timeout_ms);
    if (status == -1) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        status = -1;
    }
    if (out)
        *out = read_file(o);
    if (err)
        *err = read_file(e);
    if (status < 0 || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

/* ---- Prosody ------------------------------------------------------------- */

static int bind_free_port(int *fd_out)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
        fprintf(stderr, "harness: no free port: %s\n", strerror(errno));
        abort();
    }
    *fd_out = fd;
    return ntohs(sa.sin_port);
}

static bool port_accepts(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

static void write_account(const char *name)
{
    g_autofree char *dir =
        g_build_filename(g_dir, "data", "localhost", "accounts", NULL);
    g_mkdir_with_parents(dir, 0700);
    g_autofree char *path = g_strdup_printf("%s/%s.dat", dir, name);
    g_autofree char *text =
        g_strdup_printf("return {\n\t[\"password\"] = \"%s\";\n};\n", HX_PASSWORD);
    g_file_set_contents(path, text, -1, NULL);
}

static void write_prosody_config(void)
{
    int fd1, fd2;
    g_c2s_port = bind_free_port(&fd1);
    g_component_port = bind_free_port(&fd2);
    close(fd1);
    close(fd2);

    g_autofree char *certs = g_build_filename(g_dir, "certs", NULL);
    g_mkdir_with_parents(certs, 0700);
    g_autofree char *cfg = g_strdup_printf(
        "-- written by tests/integration/harness.c\n"
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
        g_dir, g_c2s_port, g_component_port, HX_DOMAIN, HX_SECRET);
    g_prosody_cfg = hx_write_file("prosody.cfg.lua", cfg, 0600);
    write_account("service");
    write_account("alice");
    write_account("bob");
}

static bool prosody_spawn(void)
{
    char *argv[] = {"prosody", "--config", g_prosody_cfg, "-F", NULL};
    g_autofree char *out = g_build_filename(g_dir, "prosody.stdout", NULL);
    pid_t pid = spawn(argv, out, out);
    if (pid < 0)
        return false;
    g_prosody_pid = pid;
    gint64 end = hx_now_ms() + START_BOUND_MS;
    while (!(port_accepts(g_c2s_port) && port_accepts(g_component_port))) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            g_prosody_pid = 0;
            g_autofree char *text = read_file(out);
            fprintf(stderr, "harness: prosody exited (status %d):\n%s\n",
                    status, text);
            return false;
        }
        if (hx_now_ms() > end) {
            fprintf(stderr, "harness: prosody did not open its ports\n");
            hx_prosody_stop();
            return false;
        }
        g_usleep(10 * 1000);
    }
    return true;
}

int hx_group_start_prosody(void **state)
{
    (void)state;
    return hx_prosody_start() ? 0 : -1;
}

int hx_group_cleanup(void **state)
{
    (void)state;
    hx_cleanup();
    return 0;
}

bool hx_prosody_start(void)
{
    hx_init();
    if (!g_prosody_cfg)
        write_prosody_config();
    return prosody_spawn();
}

void hx_prosody_stop(void)
{
    pid_t pid = g_prosody_pid;
    if (pid <= 0)
        return;
    stop_child(pid);
    g_prosody_pid = 0;
    /* Let the clients see their connections close. */
    hx_pump(50);
}

bool hx_prosody_restart(void)
{
    hx_prosody_stop();
    return prosody_spawn();
}

int hx_c2s_port(void)
{
    return g_c2s_port;
}

int hx_component_port(void)
{
    return g_component_port;
}

pid_t hx_prosody_pid(void)
{
    return g_prosody_pid;
}

void hx_prosody_add_account(const char *node)
{
    hx_init();
    write_account(node);
}

/* ---- ejabberd ------------------------------------------------------------ */

typedef struct {
    bool configured;   /* config written and ports chosen */
    bool started_once; /* the default accounts are registered */
    char *ctl;         /* path of ejabberdctl */
    char *dir;         /* DIR/ejabberd, owned by the ejabberd user */
    char *node;        /* Erlang node name, unique to this run */
    char *out;         /* ejabberdctl's console output: DIR/ejabberd.out */
    char *ctl_cfg, *yml, *pidfile, *logs, *spool;
    int c2s_port, dist_port, components;
    int component_ports[HX_EJABBERD_MAX_COMPONENTS];
    char *instance_domains[HX_EJABBERD_MAX_COMPONENTS];
    GPtrArray *accounts; /* char *: registered at the next start */
    pid_t watchdog_pid;
    uid_t uid;
    gid_t gid;
} ej_t;

static ej_t g_ej;

const char *hx_ejabberd_missing(void)
{
    static char why[200];
    g_free(g_ej.ctl);
    g_ej.ctl = g_find_program_in_path("ejabberdctl");
    if (!g_ej.ctl && g_file_test("/usr/sbin/ejabberdctl", G_FILE_TEST_IS_EXECUTABLE))
        g_ej.ctl = g_strdup("/usr/sbin/ejabberdctl");
    if (!g_ej.ctl)
        return "ejabberdctl is not installed (apt-get install ejabberd)";
    struct passwd *pw = getpwnam("ejabberd");
    if (!pw)
        return "there is no `ejabberd` user (apt-get install ejabberd)";
    g_ej.uid = pw->pw_uid;
    g_ej.gid = pw->pw_gid;
    if (geteuid() != 0 && geteuid() != pw->pw_uid) {
        snprintf(why, sizeof why,
                 "ejabberdctl runs only as root or as `ejabberd`, not as uid %d",
                 (int)geteuid());
        return why;
    }
    return NULL;
}

int hx_ejabberd_c2s_port(void)
{
    return g_ej.c2s_port;
}

int hx_ejabberd_component_port(int i)
{
    return i >= 0 && i < g_ej.components ? g_ej.component_ports[i] : 0;
}

const char *hx_ejabberd_instance_domain(int i)
{
    return i >= 0 && i < g_ej.components ? g_ej.instance_domains[i] : NULL;
}

pid_t hx_ejabberd_pid(void)
{
    return g_ej_beam_pid;
}

char *hx_ejabberd_log(void)
{
    return g_ej.out ? read_file(g_ej.out) : g_strdup("");
}

/* The watchdog: a child in a session of its own (meson kills the test's
 * process group) that outlives the test process if it dies without cleaning
 * up, then kills ejabberd and removes the directory.  It reads pid_t values
 * from a pipe: 0: ejabberd is starting (its pid is in the pidfile soon),
 * > 0: the VM's pid, -1: ejabberd stopped, -2: all clean, exit quietly.  End
 * of file without -2 means the test process is gone. */
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

/* The VM of node NODE: from PIDFILE, else by its command line (plain libc:
 * the watchdog uses it too). */
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

static pid_t ej_find_beam(void)
{
    return find_beam(g_ej.pidfile, g_ej.node);
}

static void ej_watchdog_main(int fd, const char *pidfile, const char *node,
                             bool keep)
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
        kill_foreign(beam, 5000);
    } else if (!stopped) {
        /* It was starting: its VM may still be on its way up (su and sh
         * outlive ejabberdctl), so look for it for a while. */
        for (int t = 0; t < 100; t++) {
            beam = find_beam(pidfile, node);
            if (beam > 0) {
                kill_foreign(beam, 5000);
                break;
            }
            sleep_ms(100);
        }
    }
    if (!keep && g_rm_argv[0])
        execv(g_rm_argv[0], g_rm_argv);
    _exit(0);
}

static void ej_watchdog_send(pid_t v)
{
    if (g_ej_watchdog_fd >= 0 &&
        write(g_ej_watchdog_fd, &v, sizeof v) != (ssize_t)sizeof v)
        fprintf(stderr, "harness: ejabberd watchdog: %s\n", strerror(errno));
}

static void ej_watchdog_start(void)
{
    if (g_ej_watchdog_fd >= 0)
        return;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        fprintf(stderr, "harness: pipe: %s\n", strerror(errno));
        abort();
    }
    bool keep = g_getenv("HX_KEEP") != NULL;
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
        ej_watchdog_main(3, g_ej.pidfile, g_ej.node, keep);
    }
    close(fds[0]);
    g_ej.watchdog_pid = pid;
    g_ej_watchdog_fd = fds[1];
}

static void ej_watchdog_close(void)
{
    if (g_ej_watchdog_fd < 0)
        return;
    ej_watchdog_send(-2);
    close(g_ej_watchdog_fd);
    g_ej_watchdog_fd = -1;
    if (g_ej.watchdog_pid > 0 && waitpid(g_ej.watchdog_pid, NULL, 0) < 0)
        fprintf(stderr, "harness: ejabberd watchdog: %s\n", strerror(errno));
    g_ej.watchdog_pid = 0;
}

static int chown_one(const char *path, const struct stat *sb, int flag,
                     struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return lchown(path, g_ej.uid, g_ej.gid) == 0 ? 0 : -1;
}

static void ej_configure(const hx_ejabberd_opts_t *o)
{
    hx_ejabberd_opts_t d = {0};
    if (o)
        d = *o;
    g_ej.components = d.components > 0 ? d.components : 1;
    if (g_ej.components > HX_EJABBERD_MAX_COMPONENTS) {
        fprintf(stderr, "harness: at most %d ejabberd component listeners\n",
                HX_EJABBERD_MAX_COMPONENTS);
        abort();
    }
    const char *domain = d.domain ? d.domain : HX_DOMAIN;
    const char *secret = d.secret ? d.secret : HX_SECRET;

    /* Every port at once, so that no two are the same. */
    int fds[2 + HX_EJABBERD_MAX_COMPONENTS];
    g_ej.c2s_port = bind_free_port(&fds[0]);
    g_ej.dist_port = bind_free_port(&fds[1]);
    for (int i = 0; i < g_ej.components; i++)
        g_ej.component_ports[i] = bind_free_port(&fds[2 + i]);
    for (int i = 0; i < 2 + g_ej.components; i++)
        close(fds[i]);

    g_ej.dir = g_build_filename(g_dir, "ejabberd", NULL);
    g_ej.logs = g_build_filename(g_ej.dir, "logs", NULL);
    g_ej.spool = g_build_filename(g_ej.dir, "spool", NULL);
    g_ej.out = g_build_filename(g_dir, "ejabberd.out", NULL);
    g_ej.pidfile = g_build_filename(g_ej.dir, "ejabberd.pid", NULL);
    g_ej.ctl_cfg = g_build_filename(g_ej.dir, "ejabberdctl.cfg", NULL);
    g_ej.yml = g_build_filename(g_ej.dir, "ejabberd.yml", NULL);
    g_ej.node = g_strdup_printf("hxit%d-%08x@localhost", (int)getpid(), g_random_int());
    g_mkdir_with_parents(g_ej.logs, 0700);
    g_mkdir_with_parents(g_ej.spool, 0700);

    /* ejabberdctl reads the Erlang resolver's config from the config dir:
     * "localhost" (the node's host) without DNS. */
    g_free(hx_write_file("ejabberd/inetrc",
                         "{lookup,[\"file\",\"native\"]}.\n"
                         "{host,{127,0,0,1}, [\"localhost\",\"hostalias\"]}.\n"
                         "{file, resolv, \"/etc/resolv.conf\"}.\n",
                         0644));
    /* ERL_DIST_PORT: the node listens there, ejabberdctl's commands go
     * there, and neither starts nor asks epmd. */
    g_autofree char *ctl_cfg = g_strdup_printf(
        "# written by tests/integration/harness.c\n"
        "ERLANG_NODE=%s\n"
        "ERL_DIST_PORT=%d\n"
        "INET_DIST_INTERFACE=127.0.0.1\n"
        "EJABBERD_PID_PATH=%s\n"
        "EJABBERD_BYPASS_WARNINGS=true\n",
        g_ej.node, g_ej.dist_port, g_ej.pidfile);
    g_free(hx_write_file("ejabberd/ejabberdctl.cfg", ctl_cfg, 0644));

    GString *yml = g_string_new(NULL);
    g_string_append_printf(yml,
                           "# written by tests/integration/harness.c\n"
                           "hosts: [\"localhost\"]\n"
                           "loglevel: info\n"
                           "auth_method: internal\n"
                           "auth_password_format: plain\n"
                           "listen:\n"
                           "  - port: %d\n"
                           "    ip: \"127.0.0.1\"\n"
                           "    module: ejabberd_c2s\n",
                           g_ej.c2s_port);
    for (int i = 0; i < g_ej.components; i++) {
        g_free(g_ej.instance_domains[i]);
        const char *inst = d.instance_domains[i];
        g_ej.instance_domains[i] =
            !inst ? g_strdup_printf("i%d.%s", i + 1, domain)
                  : *inst ? g_strdup(inst) : NULL;
        g_string_append_printf(yml,
                               "  - port: %d\n"
                               "    ip: \"127.0.0.1\"\n"
                               "    module: ejabberd_service\n"
                               "    hosts:\n"
                               "      \"%s\":\n"
                               "        password: \"%s\"\n",
                               g_ej.component_ports[i], domain, secret);
        if (g_ej.instance_domains[i])
            g_string_append_printf(yml,
                                   "      \"%s\":\n"
                                   "        password: \"%s\"\n",
                                   g_ej.instance_domains[i], secret);
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
    g_free(hx_write_file("ejabberd/ejabberd.yml", yml->str, 0600));
    g_string_free(yml, TRUE);

    if (geteuid() == 0) {
        /* ejabberdctl runs the VM as `ejabberd`: it needs its directory, and
         * a way through ours (listing it stays ours alone). */
        if (chmod(g_dir, 0711) != 0 ||
            nftw(g_ej.dir, chown_one, 16, FTW_PHYS) != 0) {
            fprintf(stderr, "harness: cannot hand %s to ejabberd: %s\n", g_ej.dir,
                    strerror(errno));
            abort();
        }
    }
    g_ej.configured = true;
}

/* ejabberdctl --ctl-config ... ARGS...: a new vector (g_free it; the
 * strings are borrowed). */
static char **ej_argv(char *const args[])
{
    GPtrArray *v = g_ptr_array_new();
    char *fixed[] = {g_ej.ctl, "--ctl-config", g_ej.ctl_cfg, "--config-dir",
                     g_ej.dir, "--config", g_ej.yml, "--logs", g_ej.logs,
                     "--spool", g_ej.spool};
    for (size_t i = 0; i < G_N_ELEMENTS(fixed); i++)
        g_ptr_array_add(v, fixed[i]);
    for (size_t i = 0; args[i]; i++)
        g_ptr_array_add(v, args[i]);
    g_ptr_array_add(v, NULL);
    return (char **)g_ptr_array_free(v, FALSE);
}

/* Starts `ejabberdctl ARGS...` with its output to a new file *OUT (g_free
 * it). */
static pid_t ej_ctl_spawn(char *const args[], char **out)
{
    static int seq;
    *out = g_strdup_printf("%s/ejabberdctl-%d.out", g_dir, ++seq);
    g_autofree char **argv = ej_argv(args);
    return spawn(argv, *out, *out);
}

/* Waits for an ejabberdctl command; true if it exited 0. */
static bool ej_ctl_wait(pid_t pid)
{
    if (pid <= 0)
        return false;
    int status = wait_child(pid, EJ_CTL_BOUND_MS);
    if (status == -1) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return false;
    }
    return status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* `ejabberdctl register` of each of NODES, all at once: each starts an
 * Erlang VM of its own, about a second. */
static bool ej_register(char **nodes, guint n)
{
    pid_t *pids = g_new0(pid_t, n);
    char **outs = g_new0(char *, n + 1);
    for (guint i = 0; i < n; i++) {
        char *args[] = {"register", nodes[i], "localhost", HX_PASSWORD, NULL};
        pids[i] = ej_ctl_spawn(args, &outs[i]);
    }
    bool ok = true;
    for (guint i = 0; i < n; i++) {
        if (ej_ctl_wait(pids[i]))
            continue;
        /* Once more, alone: two of these VMs may have picked the same
         * random node name. */
        char *args[] = {"register", nodes[i], "localhost", HX_PASSWORD, NULL};
        g_free(outs[i]);
        if (ej_ctl_wait(ej_ctl_spawn(args, &outs[i])))
            continue;
        g_autofree char *text = read_file(outs[i]);
        fprintf(stderr, "harness: ejabberdctl register %s failed:\n%s\n", nodes[i],
                text);
        ok = false;
    }
    g_strfreev(outs);
    g_free(pids);
    return ok;
}

static bool all_ej_ports_accept(void)
{
    if (!port_accepts(g_ej.c2s_port))
        return false;
    for (int i = 0; i < g_ej.components; i++) {
        if (!port_accepts(g_ej.component_ports[i]))
            return false;
    }
    return true;
}

static bool ej_spawn(void)
{
    ej_watchdog_start();
    /* ejabberd leaves its pidfile behind when it stops. */
    unlink(g_ej.pidfile);
    struct stat st;
    size_t mark = stat(g_ej.out, &st) == 0 ? (size_t)st.st_size : 0;
    char *args[] = {"foreground", NULL};
    g_autofree char **argv = ej_argv(args);
    ej_watchdog_send(0);
    pid_t pid = spawn(argv, g_ej.out, g_ej.out);
    if (pid < 0) {
        ej_watchdog_send(-1);
        return false;
    }
    g_ej_ctl_pid = pid;
    gint64 start = hx_now_ms(), end = start + EJ_START_BOUND_MS;
    for (;;) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            g_ej_ctl_pid = 0;
            g_autofree char *text = hx_ejabberd_log();
            fprintf(stderr, "harness: ejabberd exited (status %d):\n%s\n", status,
                    text + MIN(mark, strlen(text)));
            kill_foreign(ej_find_beam(), STOP_BOUND_MS); /* its VM, if any */
            ej_watchdog_send(-1);
            return false;
        }
        g_autofree char *text = hx_ejabberd_log();
        pid_t beam = 0;
        if (strlen(text) > mark && strstr(text + mark, "is started in the node") &&
            all_ej_ports_accept() && (beam = ej_find_beam()) > 0) {
            g_ej_beam_pid = beam;
            ej_watchdog_send(beam);
            break;
        }
        if (hx_now_ms() > end) {
            fprintf(stderr, "harness: ejabberd did not start within %d ms:\n%s\n",
                    EJ_START_BOUND_MS, text + MIN(mark, strlen(text)));
            hx_ejabberd_stop();
            return false;
        }
        hx_pump(20);
    }
    if (g_getenv("HX_DEBUG"))
        fprintf(stderr, "harness: ejabberd started in %" G_GINT64_FORMAT " ms\n",
                hx_now_ms() - start);
    return true;
}

bool hx_ejabberd_start(const hx_ejabberd_opts_t *opts)
{
    hx_init();
    const char *missing = hx_ejabberd_missing();
    if (missing) {
        fprintf(stderr, "harness: %s\n", missing);
        return false;
    }
    if (hx_ejabberd_running())
        hx_ejabberd_stop();
    if (!g_ej.configured)
        ej_configure(opts);
    if (!g_ej.accounts)
        g_ej.accounts = g_ptr_array_new_with_free_func(g_free);
    if (!g_ej.started_once) {
        const char *defaults[] = {"service", "alice", "bob"};
        for (size_t i = 0; i < G_N_ELEMENTS(defaults); i++)
            g_ptr_array_insert(g_ej.accounts, (int)i, g_strdup(defaults[i]));
    }
    if (!ej_spawn())
        return false;
    g_ej.started_once = true;
    if (g_ej.accounts->len > 0) {
        gint64 start = hx_now_ms();
        bool ok = ej_register((char **)g_ej.accounts->pdata, g_ej.accounts->len);
        if (g_getenv("HX_DEBUG"))
            fprintf(stderr, "harness: %u ejabberd accounts in %" G_GINT64_FORMAT " ms\n",
                    g_ej.accounts->len, hx_now_ms() - start);
        g_ptr_array_set_size(g_ej.accounts, 0);
        if (!ok) {
            hx_ejabberd_stop();
            return false;
        }
    }
    return true;
}

bool hx_ejabberd_running(void)
{
    return g_ej_ctl_pid > 0 || g_ej_beam_pid > 0;
}

/* Pumps until PID (not our child) is gone; false on timeout. */
static bool wait_foreign(pid_t pid, int bound_ms)
{
    gint64 end = hx_now_ms() + bound_ms;
    while (pid > 0 && kill(pid, 0) == 0) {
        if (hx_now_ms() >= end)
            return false;
        hx_pump(10);
    }
    return true;
}

void hx_ejabberd_stop(void)
{
    pid_t ctl = g_ej_ctl_pid, beam = g_ej_beam_pid;
    if (ctl <= 0 && beam <= 0)
        return;
    if (beam <= 0)
        beam = ej_find_beam();
    if (beam > 0) {
        /* A clean stop: about a second. */
        kill(beam, SIGTERM);
        if (!wait_foreign(beam, STOP_BOUND_MS)) {
            fprintf(stderr, "harness: ejabberd (pid %d) ignored SIGTERM, killing\n",
                    (int)beam);
            kill_foreign(beam, STOP_BOUND_MS);
        }
    }
    if (ctl > 0) {
        /* It ends when the VM does (through su and sh). */
        if (wait_child(ctl, beam > 0 ? 2000 : 0) == -1) {
            kill(ctl, SIGKILL);
            waitpid(ctl, NULL, 0);
            /* A VM that was still on its way up. */
            pid_t late = ej_find_beam();
            if (late > 0)
                kill_foreign(late, STOP_BOUND_MS);
        }
    }
    g_ej_ctl_pid = 0;
    g_ej_beam_pid = 0;
    ej_watchdog_send(-1);
    /* Let the clients see their connections close. */
    hx_pump(50);
}

bool hx_ejabberd_restart(void)
{
    hx_ejabberd_stop();
    if (!g_ej.configured) {
        fprintf(stderr, "harness: hx_ejabberd_restart() before hx_ejabberd_start()\n");
        return false;
    }
    return hx_ejabberd_start(NULL);
}

bool hx_ejabberd_add_account(const char *node)
{
    hx_init();
    if (hx_ejabberd_running()) {
        char *nodes[] = {(char *)node};
        return ej_register(nodes, 1);
    }
    if (!g_ej.accounts)
        g_ej.accounts = g_ptr_array_new_with_free_func(g_free);
    g_ptr_array_add(g_ej.accounts, g_strdup(node));
    return true;
}

static void ej_cleanup(void)
{
    hx_ejabberd_stop();
}

static void ej_forget(void)
{
    g_free(g_ej.ctl);
    g_free(g_ej.dir);
    g_free(g_ej.node);
    g_free(g_ej.out);
    g_free(g_ej.ctl_cfg);
    g_free(g_ej.yml);
    g_free(g_ej.pidfile);
    g_free(g_ej.logs);
    g_free(g_ej.spool);
    for (int i = 0; i < HX_EJABBERD_MAX_COMPONENTS; i++)
        g_free(g_ej.instance_domains[i]);
    if (g_ej.accounts)
        g_ptr_array_unref(g_ej.accounts);
    pid_t watchdog = g_ej.watchdog_pid;
    memset(&g_ej, 0, sizeof g_ej);
    g_ej.watchdog_pid = watchdog;
}

/* ---- client-proxy -------------------------------------------------------- */

const char *hx_proxy_bin(void)
{
    const char *bin = g_getenv("CLIENT_PROXY_BIN");
    return bin && *bin ? bin : "client-proxy";
}

char *const *hx_proxy_wrapper(void)
{
    static char **wrapper;
    static bool parsed;
    if (!parsed) {
        parsed = true;
        const char *text = g_getenv("CLIENT_PROXY_WRAPPER");
        GError *error = NULL;
        if (text && *text && !g_shell_parse_argv(text, NULL, &wrapper, &error)) {
            fprintf(stderr, "harness: CLIENT_PROXY_WRAPPER: %s\n", error->message);
            abort();
        }
    }
    return wrapper;
}

/* WRAPPER... PROGRAM ARGS...: a new vector of borrowed strings (g_free it). */
static char **wrapped_argv(const char *program, char *const args[])
{
    GPtrArray *v = g_ptr_array_new();
    char *const *wrapper = hx_proxy_wrapper();
    for (size_t i = 0; wrapper && wrapper[i]; i++)
        g_ptr_array_add(v, wrapper[i]);
    g_ptr_array_add(v, (char *)program);
    for (size_t i = 0; args && args[i]; i++)
        g_ptr_array_add(v, args[i]);
    g_ptr_array_add(v, NULL);
    return (char **)g_ptr_array_free(v, FALSE);
}

int hx_proxy_run(char *const args[], char **out, char **err, int timeout_ms)
{
    g_autofree char **argv = wrapped_argv(hx_proxy_bin(), args);
    return hx_run(argv, out, err, timeout_ms);
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

char *hx_proxy_write_config(const char *name, const hx_proxy_opts_t *o)
{
    hx_proxy_opts_t d = {0};
    if (o)
        d = *o;
    g_autofree char *instance =
        d.instance_domain ? g_strdup_printf("instance_domain = %s\n", d.instance_domain)
                          : NULL;
    int port = d.port ? d.port
               : g_component_port ? g_component_port
                                  : hx_ejabberd_component_port(0);
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
        d.secret ? d.secret : HX_SECRET, port, d.target ? d.target : HX_TARGET,
        d.dispatch ? d.dispatch : "random", d.encoding ? d.encoding : "raw",
        d.request_timeout ? d.request_timeout : 2, d.extra ? d.extra : "");
    return hx_write_file(name, text, 0600);
}

static proxy_t *proxy_at(int i)
{
    if (i < 0 || i >= HX_MAX_PROXIES) {
        fprintf(stderr, "harness: no client-proxy index %d (0 to %d)\n", i,
                HX_MAX_PROXIES - 1);
        abort();
    }
    return &g_proxies[i];
}

pid_t hx_proxy_start_at(int i, const hx_proxy_opts_t *opts)
{
    proxy_t *p = proxy_at(i);
    hx_init();
    if (g_proxy_pids[i] > 0)
        hx_proxy_stop_at(i);
    p->seq = ++g_proxy_seq;
    g_autofree char *name = g_strdup_printf("proxy-%d.conf", p->seq);
    g_autofree char *cfg = hx_proxy_write_config(name, opts);
    g_free(p->err);
    g_free(p->out);
    p->err = g_strdup_printf("%s/proxy-%d.stderr", g_dir, p->seq);
    p->out = g_strdup_printf("%s/proxy-%d.stdout", g_dir, p->seq);
    char *args[] = {"--config", cfg, NULL};
    g_autofree char **argv = wrapped_argv(hx_proxy_bin(), args);
    pid_t pid = spawn(argv, p->out, p->err);
    g_proxy_pids[i] = pid > 0 ? pid : 0;
    p->status = -1;
    return pid;
}

pid_t hx_proxy_start(const hx_proxy_opts_t *opts)
{
    return hx_proxy_start_at(0, opts);
}

pid_t hx_proxy_pid_at(int i)
{
    proxy_at(i);
    return g_proxy_pids[i];
}

pid_t hx_proxy_pid(void)
{
    return hx_proxy_pid_at(0);
}

void hx_proxy_rewrite_config_at(int i, const hx_proxy_opts_t *opts)
{
    g_autofree char *name = g_strdup_printf("proxy-%d.conf", proxy_at(i)->seq);
    g_free(hx_proxy_write_config(name, opts));
}

void hx_proxy_rewrite_config(const hx_proxy_opts_t *opts)
{
    hx_proxy_rewrite_config_at(0, opts);
}

char *hx_proxy_log_at(int i)
{
    proxy_t *p = proxy_at(i);
    return p->err ? read_file(p->err) : g_strdup("");
}

char *hx_proxy_log(void)
{
    return hx_proxy_log_at(0);
}

size_t hx_proxy_log_mark_at(int i)
{
    g_autofree char *text = hx_proxy_log_at(i);
    return strlen(text);
}

size_t hx_proxy_log_mark(void)
{
    return hx_proxy_log_mark_at(0);
}

char *hx_proxy_wait_log_at(int i, size_t mark, const char *needle,
                           int timeout_ms)
{
    g_autofree char *low_needle = g_ascii_strdown(needle, -1);
    gint64 end = hx_now_ms() + timeout_ms;
    for (;;) {
        g_autofree char *text = hx_proxy_log_at(i);
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
        hx_pump(20);
    }
}

char *hx_proxy_wait_log(size_t mark, const char *needle, int timeout_ms)
{
    return hx_proxy_wait_log_at(0, mark, needle, timeout_ms);
}

unsigned hx_proxy_log_count_at(int i, size_t mark, const char *needle)
{
    g_autofree char *text = hx_proxy_log_at(i);
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

void hx_proxy_signal_at(int i, int sig)
{
    proxy_at(i);
    if (g_proxy_pids[i] > 0)
        kill(g_proxy_pids[i], sig);
}

void hx_proxy_signal(int sig)
{
    hx_proxy_signal_at(0, sig);
}

int hx_proxy_wait_exit_at(int i, int timeout_ms)
{
    proxy_t *p = proxy_at(i);
    if (g_proxy_pids[i] <= 0)
        return p->status;
    int status = wait_child(g_proxy_pids[i], timeout_ms);
    if (status >= 0) {
        g_proxy_pids[i] = 0;
        p->status = status;
    }
    return status;
}

int hx_proxy_wait_exit(int timeout_ms)
{
    return hx_proxy_wait_exit_at(0, timeout_ms);
}

int hx_proxy_stop_at(int i)
{
    proxy_t *p = proxy_at(i);
    if (g_proxy_pids[i] <= 0)
        return p->status;
    p->status = stop_child_within(
        g_proxy_pids[i], hx_proxy_wrapper() ? HX_WRAPPED_STOP_MS : STOP_BOUND_MS);
    g_proxy_pids[i] = 0;
    return p->status;
}

int hx_proxy_stop(void)
{
    return hx_proxy_stop_at(0);
}

bool hx_proxy_running_at(int i)
{
    proxy_t *p = proxy_at(i);
    if (g_proxy_pids[i] <= 0)
        return false;
    int status;
    if (waitpid(g_proxy_pids[i], &status, WNOHANG) == g_proxy_pids[i]) {
        g_proxy_pids[i] = 0;
        p->status = status;
        return false;
    }
    return true;
}

bool hx_proxy_running(void)
{
    return hx_proxy_running_at(0);
}

/* ---- test XMPP clients --------------------------------------------------- */

enum { ST_OFFLINE, ST_CONNECTING, ST_ONLINE };

struct hx_client {
    xmpp_conn_t *conn;
    char *bare;
    char *resource;
    char *jid; /* bound full JID */
    int port;  /* the server's c2s port */
    bool worker;
    int state;
    hx_mode_t mode;
    GPtrArray *rx;       /* every stanza received (owned copies) */
    GPtrArray *requests; /* IQ get/set received, worker only (refs) */
    GQueue *held;        /* requests not yet answered or taken (refs) */
};

static unsigned g_id_seq;

static char *new_id(void)
{
    return g_strdup_printf("hx%u-%08x", ++g_id_seq, g_random_int());
}

void hx_pump(int ms)
{
    gint64 end = hx_now_ms() + ms;
    do {
        gint64 before = hx_now_ms();
        xmpp_run_once(g_ctx, 5);
        /* With no connection xmpp_run_once() may return at once. */
        if (hx_now_ms() == before)
            g_usleep(1000);
    } while (hx_now_ms() < end);
}

bool hx_pump_until(bool (*pred)(void *), void *arg, int timeout_ms)
{
    gint64 end = hx_now_ms() + timeout_ms;
    while (!pred(arg)) {
        if (hx_now_ms() >= end)
            return false;
        hx_pump(5);
    }
    return true;
}

static int set_nodelay(xmpp_conn_t *conn, void *sock)
{
    (void)conn;
    int one = 1;
    return setsockopt(*(int *)sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static xmpp_stanza_t *parse(const char *xml)
{
    xmpp_stanza_t *st = xmpp_stanza_new_from_string(g_ctx, xml);
    if (!st) {
        fprintf(stderr, "harness: cannot parse %s\n", xml);
        abort();
    }
    return st;
}

void hx_send(hx_client_t *c, xmpp_stanza_t *stanza)
{
    xmpp_send(c->conn, stanza);
}

void hx_send_xml(hx_client_t *c, const char *xml)
{
    xmpp_stanza_t *st = parse(xml);
    xmpp_send(c->conn, st);
    xmpp_stanza_release(st);
}

void hx_send_presence(hx_client_t *c, const char *type, const char *show,
                      const char *to)
{
    xmpp_stanza_t *p = xmpp_presence_new(g_ctx);
    if (type)
        xmpp_stanza_set_type(p, type);
    if (to)
        xmpp_stanza_set_to(p, to);
    if (show) {
        xmpp_stanza_t *s = xmpp_stanza_new(g_ctx);
        xmpp_stanza_set_name(s, "show");
        xmpp_stanza_t *t = xmpp_stanza_new(g_ctx);
        xmpp_stanza_set_text(t, show);
        xmpp_stanza_add_child_ex(s, t, 0);
        xmpp_stanza_add_child_ex(p, s, 0);
    }
    xmpp_send(c->conn, p);
    xmpp_stanza_release(p);
}

static void release_stanza(gpointer stanza)
{
    xmpp_stanza_release(stanza);
}

void hx_answer(hx_client_t *c, xmpp_stanza_t *req, const char *to_override)
{
    xmpp_stanza_t *payload = xmpp_stanza_get_children(req);
    while (payload && !xmpp_stanza_is_tag(payload))
        payload = xmpp_stanza_get_next(payload);
    const char *ns = payload ? xmpp_stanza_get_ns(payload) : NULL;
    xmpp_stanza_t *res;

    if (ns && strcmp(ns, HX_ECHO_NS) == 0) {
        res = xmpp_iq_new(g_ctx, "result", xmpp_stanza_get_id(req));
        xmpp_stanza_t *echo = xmpp_stanza_copy(payload);
        xmpp_stanza_t *by = xmpp_stanza_new(g_ctx);
        xmpp_stanza_set_name(by, "handled-by");
        xmpp_stanza_set_ns(by, HX_ECHO_NS);
        xmpp_stanza_set_attribute(by, "resource", c->resource);
        xmpp_stanza_set_attribute(by, "from", xmpp_stanza_get_from(req));
        xmpp_stanza_add_child_ex(echo, by, 0);
        xmpp_stanza_add_child_ex(res, echo, 0);
    } else if (ns && strcmp(ns, "urn:xmpp:ping") == 0) {
        res = xmpp_iq_new(g_ctx, "result", xmpp_stanza_get_id(req));
    } else {
        res = xmpp_stanza_reply_error(req, "cancel", "feature-not-implemented",
                                      NULL);
        xmpp_stanza_del_attribute(res, "lang");
        xmpp_stanza_del_attribute(res, "from");
    }
    xmpp_stanza_set_to(res, to_override ? to_override
                                        : xmpp_stanza_get_from(req));
    xmpp_send(c->conn, res);
    xmpp_stanza_release(res);
}

static int on_stanza(xmpp_conn_t *conn, xmpp_stanza_t *st, void *data)
{
    (void)conn;
    hx_client_t *c = data;
    xmpp_stanza_t *copy = xmpp_stanza_copy(st);
    g_ptr_array_add(c->rx, copy);
    if (!c->worker)
        return 1;

    const char *name = xmpp_stanza_get_name(st);
    const char *type = xmpp_stanza_get_type(st);
    if (strcmp(name, "presence") == 0 && type && strcmp(type, "subscribe") == 0) {
        xmpp_stanza_t *p = xmpp_presence_new(g_ctx);
        xmpp_stanza_set_type(p, "subscribed");
        xmpp_stanza_set_to(p, xmpp_stanza_get_from(st));
        xmpp_send(c->conn, p);
        xmpp_stanza_release(p);
    } else if (strcmp(name, "iq") == 0 && type &&
               (strcmp(type, "get") == 0 || strcmp(type, "set") == 0)) {
        const char *from = xmpp_stanza_get_from(st);
        if (!from || strcmp(from, c->bare) == 0 ||
            strcmp(from, "localhost") == 0) {
            /* A roster push from our own server: acknowledge it. */
            xmpp_stanza_t *ack = xmpp_iq_new(g_ctx, "result",
                                             xmpp_stanza_get_id(st));
            if (from)
                xmpp_stanza_set_to(ack, from);
            xmpp_send(c->conn, ack);
            xmpp_stanza_release(ack);
            return 1;
        }
        g_ptr_array_add(c->requests, xmpp_stanza_clone(copy));
        if (c->mode == HX_ANSWER)
            hx_answer(c, copy, NULL);
        else
            g_queue_push_tail(c->held, xmpp_stanza_clone(copy));
    }
    return 1;
}

static void on_conn(xmpp_conn_t *conn, xmpp_conn_event_t ev, int error,
                    xmpp_stream_error_t *se, void *data)
{
    (void)error;
    (void)se;
    hx_client_t *c = data;
    if (ev == XMPP_CONN_CONNECT) {
        c->state = ST_ONLINE;
        g_free(c->jid);
        c->jid = g_strdup(xmpp_conn_get_bound_jid(conn));
        if (c->worker) {
            /* Fetch the roster first: Prosody forwards `subscribed` and
             * roster pushes only to resources that did. */
            char *id = new_id();
            xmpp_stanza_t *iq = xmpp_iq_new(g_ctx, "get", id);
            xmpp_stanza_t *q = xmpp_stanza_new(g_ctx);
            xmpp_stanza_set_name(q, "query");
            xmpp_stanza_set_ns(q, "jabber:iq:roster");
            xmpp_stanza_add_child_ex(iq, q, 0);
            xmpp_send(conn, iq);
            xmpp_stanza_release(iq);
            g_free(id);
            hx_send_presence(c, NULL, NULL, NULL);
        }
    } else {
        c->state = ST_OFFLINE;
    }
}

int hx_client_port(void)
{
    if (g_client_port)
        return g_client_port;
    return g_c2s_port ? g_c2s_port : hx_ejabberd_c2s_port();
}

void hx_client_use_port(int port)
{
    g_client_port = port;
}

static bool not_connecting(void *arg)
{
    return ((hx_client_t *)arg)->state != ST_CONNECTING;
}

static bool start_connect(hx_client_t *c)
{
    c->state = ST_CONNECTING;
    if (xmpp_connect_client(c->conn, "127.0.0.1", (unsigned short)c->port,
                            on_conn, c) != XMPP_EOK) {
        c->state = ST_OFFLINE;
        return false;
    }
    hx_pump_until(not_connecting, c, CONNECT_BOUND_MS);
    if (c->state != ST_ONLINE)
        return false;
    /* Let the roster query and initial presence go out. */
    hx_pump(20);
    return true;
}

hx_client_t *hx_client_connect(const char *node, const char *resource,
                               bool worker)
{
    hx_init();
    hx_client_t *c = g_new0(hx_client_t, 1);
    c->bare = g_strdup_printf("%s@localhost", node);
    c->resource = g_strdup(resource);
    c->worker = worker;
    c->port = hx_client_port();
    c->mode = HX_ANSWER;
    c->rx = g_ptr_array_new_with_free_func(release_stanza);
    c->requests =
        g_ptr_array_new_with_free_func(release_stanza);
    c->held = g_queue_new();
    c->conn = xmpp_conn_new(g_ctx);
    g_autofree char *jid = g_strdup_printf("%s/%s", c->bare, resource);
    xmpp_conn_set_jid(c->conn, jid);
    xmpp_conn_set_pass(c->conn, HX_PASSWORD);
    xmpp_conn_set_flags(c->conn, XMPP_CONN_FLAG_DISABLE_TLS);
    xmpp_conn_set_sockopt_callback(c->conn, set_nodelay);
    xmpp_handler_add(c->conn, on_stanza, NULL, NULL, NULL, c);
    g_ptr_array_add(g_clients, c);
    if (!start_connect(c)) {
        fprintf(stderr, "harness: %s could not log in\n", jid);
        hx_client_free(c);
        return NULL;
    }
    return c;
}

static bool is_offline(void *arg)
{
    return ((hx_client_t *)arg)->state == ST_OFFLINE;
}

void hx_client_disconnect(hx_client_t *c)
{
    if (c->state == ST_OFFLINE)
        return;
    xmpp_disconnect(c->conn);
    hx_pump_until(is_offline, c, 3000);
}

bool hx_client_reconnect(hx_client_t *c)
{
    if (c->state != ST_OFFLINE)
        hx_client_disconnect(c);
    return start_connect(c);
}

bool hx_client_connected(const hx_client_t *c)
{
    return c->state == ST_ONLINE;
}

void hx_client_free(hx_client_t *c)
{
    if (!c)
        return;
    if (c->state != ST_OFFLINE)
        hx_client_disconnect(c);
    g_ptr_array_remove(g_clients, c);
    xmpp_conn_release(c->conn);
    g_queue_free_full(c->held, release_stanza);
    g_ptr_array_unref(c->requests);
    g_ptr_array_unref(c->rx);
    g_free(c->bare);
    g_free(c->resource);
    g_free(c->jid);
    g_free(c);
}

const char *hx_client_jid(const hx_client_t *c)
{
    return c->jid;
}

const char *hx_client_resource(const hx_client_t *c)
{
    return c->resource;
}

void hx_client_set_mode(hx_client_t *c, hx_mode_t mode)
{
    c->mode = mode;
}

char *hx_iq_send(hx_client_t *c, const char *to, const char *type,
                 const char *payload_xml)
{
    char *id = new_id();
    xmpp_stanza_t *iq = xmpp_iq_new(g_ctx, type, id);
    xmpp_stanza_set_to(iq, to);
    if (payload_xml) {
        xmpp_stanza_t *p = parse(payload_xml);
        xmpp_stanza_add_child_ex(iq, p, 0);
    }
    xmpp_send(c->conn, iq);
    xmpp_stanza_release(iq);
    return id;
}

static xmpp_stanza_t *find_reply(hx_client_t *c, const char *id)
{
    for (unsigned i = 0; i < c->rx->len; i++) {
        xmpp_stanza_t *st = g_ptr_array_index(c->rx, i);
        const char *sid = xmpp_stanza_get_id(st);
        const char *type = xmpp_stanza_get_type(st);
        if (sid && strcmp(sid, id) == 0 && type &&
            (strcmp(type, "result") == 0 || strcmp(type, "error") == 0))
            return st;
    }
    return NULL;
}

const char *hx_echo_text(xmpp_stanza_t *iq)
{
    xmpp_stanza_t *echo = xmpp_stanza_get_child_by_name_and_ns(iq, "echo", HX_ECHO_NS);
    for (xmpp_stanza_t *ch = echo ? xmpp_stanza_get_children(echo) : NULL; ch;
         ch = xmpp_stanza_get_next(ch)) {
        if (xmpp_stanza_is_text(ch))
            return xmpp_stanza_get_text_ptr(ch);
    }
    return NULL;
}

xmpp_stanza_t *hx_wait_reply(hx_client_t *c, const char *id, int timeout_ms)
{
    gint64 end = hx_now_ms() + timeout_ms;
    xmpp_stanza_t *st;
    while (!(st = find_reply(c, id))) {
        if (hx_now_ms() >= end)
            return NULL;
        hx_pump(5);
    }
    return st;
}

xmpp_stanza_t *hx_iq(hx_client_t *c, const char *to, const char *type,
                     const char *payload_xml, int timeout_ms)
{
    g_autofree char *id = hx_iq_send(c, to, type, payload_xml);
    return hx_wait_reply(c, id, timeout_ms);
}

int hx_count_id(hx_client_t *c, const char *id)
{
    int n = 0;
    for (unsigned i = 0; i < c->rx->len; i++) {
        const char *sid = xmpp_stanza_get_id(g_ptr_array_index(c->rx, i));
        if (sid && strcmp(sid, id) == 0)
            n++;
    }
    return n;
}

unsigned hx_received_count(hx_client_t *c)
{
    return c->rx->len;
}

xmpp_stanza_t *hx_received(hx_client_t *c, unsigned i)
{
    return i < c->rx->len ? g_ptr_array_index(c->rx, i) : NULL;
}

static bool matches(xmpp_stanza_t *st, const char *name, const char *type,
                    const char *from_prefix)
{
    if (strcmp(xmpp_stanza_get_name(st), name) != 0)
        return false;
    const char *t = xmpp_stanza_get_type(st);
    if (type) {
        if (strcmp(type, "available") == 0 ? t != NULL
                                           : (!t || strcmp(t, type) != 0))
            return false;
    }
    const char *from = xmpp_stanza_get_from(st);
    if (from_prefix &&
        (!from || strncmp(from, from_prefix, strlen(from_prefix)) != 0))
        return false;
    return true;
}

xmpp_stanza_t *hx_wait_stanza(hx_client_t *c, unsigned mark, const char *name,
                              const char *type, const char *from_prefix,
                              int timeout_ms)
{
    gint64 end = hx_now_ms() + timeout_ms;
    for (;;) {
        for (unsigned i = mark; i < c->rx->len; i++) {
            xmpp_stanza_t *st = g_ptr_array_index(c->rx, i);
            if (matches(st, name, type, from_prefix))
                return st;
        }
        if (hx_now_ms() >= end)
            return NULL;
        hx_pump(5);
    }
}

xmpp_stanza_t *hx_take_request(hx_client_t **workers, hx_client_t **holder,
                               int timeout_ms)
{
    gint64 end = hx_now_ms() + timeout_ms;
    for (;;) {
        for (hx_client_t **w = workers; *w; w++) {
            if (!g_queue_is_empty((*w)->held)) {
                xmpp_stanza_t *st = g_queue_pop_head((*w)->held);
                /* The holder's `requests` array keeps it alive. */
                xmpp_stanza_release(st);
                if (holder)
                    *holder = *w;
                return st;
            }
        }
        if (hx_now_ms() >= end)
            return NULL;
        hx_pump(5);
    }
}

unsigned hx_requests_seen(hx_client_t *c)
{
    return c->requests->len;
}

xmpp_stanza_t *hx_request_seen(hx_client_t *c, unsigned i)
{
    return i < c->requests->len ? g_ptr_array_index(c->requests, i) : NULL;
}

/* ---- stanza helpers ------------------------------------------------------ */

char *hx_error_of(xmpp_stanza_t *st)
{
    xmpp_stanza_t *err = xmpp_stanza_get_child_by_name(st, "error");
    if (!err)
        return NULL;
    const char *type = xmpp_stanza_get_type(err);
    const char *cond = "?";
    for (xmpp_stanza_t *ch = xmpp_stanza_get_children(err); ch;
         ch = xmpp_stanza_get_next(ch)) {
        const char *ns = xmpp_stanza_get_ns(ch);
        if (xmpp_stanza_is_tag(ch) && ns &&
            strcmp(ns, "urn:ietf:params:xml:ns:xmpp-stanzas") == 0 &&
            strcmp(xmpp_stanza_get_name(ch), "text") != 0) {
            cond = xmpp_stanza_get_name(ch);
            break;
        }
    }
    return g_strdup_printf("%s/%s", type ? type : "?", cond);
}

char *hx_text(xmpp_stanza_t *st)
{
    if (!st)
        return g_strdup("(none)");
    char *buf = NULL;
    size_t len = 0;
    if (xmpp_stanza_to_text(st, &buf, &len) != XMPP_EOK)
        return g_strdup("(unprintable)");
    char *out = g_strndup(buf, len);
    xmpp_free(g_ctx, buf);
    return out;
}

const char *hx_child_attr(xmpp_stanza_t *st, const char *name, const char *ns,
                          const char *attr)
{
    if (!st)
        return NULL;
    for (xmpp_stanza_t *ch = xmpp_stanza_get_children(st); ch;
         ch = xmpp_stanza_get_next(ch)) {
        if (!xmpp_stanza_is_tag(ch))
            continue;
        const char *cns = xmpp_stanza_get_ns(ch);
        if (strcmp(xmpp_stanza_get_name(ch), name) == 0 &&
            (!ns || (cns && strcmp(cns, ns) == 0)))
            return xmpp_stanza_get_attribute(ch, attr);
        const char *deep = hx_child_attr(ch, name, ns, attr);
        if (deep)
            return deep;
    }
    return NULL;
}
