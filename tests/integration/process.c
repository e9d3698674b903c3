/* Processes and files of a test run (process.h): spawning children that die
 * with the test process, waiting for them while the test clients are
 * pumped, stopping by PID, the emergency cleanup, free loopback ports. */
#include "process.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
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

#include "run-private.h"

gint64 hx_now_ms(void)
{
    return g_get_monotonic_time() / 1000;
}

void hx_sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ---- the emergency cleanup ------------------------------------------------
 * The one piece of mutable state that is not held by a test: a handler for
 * a fatal signal, or atexit(), must reach every child and temporary
 * directory without the objects that own them.  So each child is entered
 * here when it is started and removed when it is reaped, each run enters
 * its directory, and the ejabberd part enters a hook for its VM (not our
 * child).  Fixed arrays of values written before they are needed: the
 * handler neither allocates nor locks.  A slot is in use while its pid,
 * argv[0] or fn is set; that field is written last when a slot is filled
 * and cleared first when it is emptied. */

#define EMERGENCY_CHILDREN 64
#define EMERGENCY_DIRS 8
#define EMERGENCY_HOOKS 4

static struct {
    bool installed;
    volatile pid_t children[EMERGENCY_CHILDREN];
    struct {
        char *volatile argv[4]; /* /bin/rm -rf DIR NULL */
    } dirs[EMERGENCY_DIRS];
    struct {
        void (*volatile fn)(void *arg);
        void *volatile arg;
    } hooks[EMERGENCY_HOOKS];
} g_emergency;

/* Only async-signal-safe calls: it runs from a signal handler. */
static void emergency_cleanup(void)
{
    for (int i = 0; i < EMERGENCY_CHILDREN; i++) {
        pid_t pid = g_emergency.children[i];
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            g_emergency.children[i] = 0;
        }
    }
    for (int i = 0; i < EMERGENCY_HOOKS; i++) {
        void (*fn)(void *) = g_emergency.hooks[i].fn;
        if (fn) {
            g_emergency.hooks[i].fn = NULL;
            fn(g_emergency.hooks[i].arg);
        }
    }
    for (int i = 0; i < EMERGENCY_DIRS; i++) {
        char *const *argv = (char *const *)g_emergency.dirs[i].argv;
        if (!argv[0])
            continue;
        pid_t rm = fork();
        if (rm == 0) {
            execv(argv[0], argv);
            _exit(127);
        }
        if (rm > 0)
            waitpid(rm, NULL, 0);
        g_emergency.dirs[i].argv[0] = NULL; /* the strings leak: we are dying */
    }
}

static void on_fatal_signal(int sig)
{
    emergency_cleanup();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* A test process that exits with a run still live (a group setup that
 * failed, say) leaves nothing behind either. */
static void at_exit(void)
{
    emergency_cleanup();
}

static void emergency_install(void)
{
    if (g_emergency.installed)
        return;
    g_emergency.installed = true;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fatal_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    atexit(at_exit);
}

static void emergency_add_child(pid_t pid)
{
    emergency_install();
    for (int i = 0; i < EMERGENCY_CHILDREN; i++) {
        if (g_emergency.children[i] <= 0) {
            g_emergency.children[i] = pid;
            return;
        }
    }
    fprintf(stderr, "harness: more than %d children at once\n", EMERGENCY_CHILDREN);
    abort();
}

static void emergency_remove_child(pid_t pid)
{
    for (int i = 0; i < EMERGENCY_CHILDREN; i++) {
        if (g_emergency.children[i] == pid)
            g_emergency.children[i] = 0;
    }
}

void hx_emergency_add_dir(const char *dir)
{
    emergency_install();
    if (g_getenv("HX_KEEP"))
        return;
    for (int i = 0; i < EMERGENCY_DIRS; i++) {
        if (!g_emergency.dirs[i].argv[0]) {
            g_emergency.dirs[i].argv[1] = "-rf";
            g_emergency.dirs[i].argv[2] = g_strdup(dir);
            g_emergency.dirs[i].argv[3] = NULL;
            g_emergency.dirs[i].argv[0] = "/bin/rm";
            return;
        }
    }
    fprintf(stderr, "harness: more than %d temporary directories at once\n", EMERGENCY_DIRS);
    abort();
}

void hx_emergency_remove_dir(const char *dir)
{
    for (int i = 0; i < EMERGENCY_DIRS; i++) {
        if (g_emergency.dirs[i].argv[0] && strcmp(g_emergency.dirs[i].argv[2], dir) == 0) {
            g_emergency.dirs[i].argv[0] = NULL;
            g_free(g_emergency.dirs[i].argv[2]);
            g_emergency.dirs[i].argv[2] = NULL;
        }
    }
}

void hx_emergency_add_hook(void (*fn)(void *arg), void *arg)
{
    emergency_install();
    for (int i = 0; i < EMERGENCY_HOOKS; i++) {
        if (!g_emergency.hooks[i].fn) {
            g_emergency.hooks[i].arg = arg;
            g_emergency.hooks[i].fn = fn;
            return;
        }
    }
    fprintf(stderr, "harness: more than %d emergency hooks\n", EMERGENCY_HOOKS);
    abort();
}

void hx_emergency_remove_hook(void (*fn)(void *arg), void *arg)
{
    for (int i = 0; i < EMERGENCY_HOOKS; i++) {
        if (g_emergency.hooks[i].fn == fn && g_emergency.hooks[i].arg == arg)
            g_emergency.hooks[i].fn = NULL;
    }
}

/* ---- children ------------------------------------------------------------- */

pid_t hx_child_start(char *const argv[], const char *out, const char *err)
{
    return hx_child_start_env(argv, NULL, out, err);
}

pid_t hx_child_start_env(char *const argv[], char *const env[], const char *out,
                         const char *err)
{
    /* Made before the fork: the child only execs. */
    g_auto(GStrv) envp = g_get_environ();
    for (size_t i = 0; env && env[i]; i++) {
        const char *eq = strchr(env[i], '=');
        if (eq) {
            g_autofree char *name = g_strndup(env[i], (gsize)(eq - env[i]));
            envp = g_environ_setenv(envp, name, eq + 1, TRUE);
        } else {
            envp = g_environ_unsetenv(envp, env[i]);
        }
    }
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "harness: fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid > 0) {
        emergency_add_child(pid);
        return pid;
    }

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
    execvpe(argv[0], argv, envp);
    fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

bool hx_child_exited(pid_t pid, int *status)
{
    int st;
    if (waitpid(pid, &st, WNOHANG) != pid)
        return false;
    emergency_remove_child(pid);
    if (status)
        *status = st;
    return true;
}

int hx_child_wait(hx_t *hx, pid_t pid, int bound_ms)
{
    gint64 end = hx_now_ms() + bound_ms;
    for (;;) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            emergency_remove_child(pid);
            return status;
        }
        if (r < 0 && errno != EINTR) {
            emergency_remove_child(pid);
            return -2;
        }
        if (hx_now_ms() >= end)
            return -1;
        hx_pump(hx, 10);
    }
}

int hx_child_kill(pid_t pid)
{
    int status = -1;
    kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    emergency_remove_child(pid);
    return status;
}

int hx_child_stop(hx_t *hx, pid_t pid, int bound_ms)
{
    kill(pid, SIGTERM);
    int status = hx_child_wait(hx, pid, bound_ms);
    if (status == -1) {
        fprintf(stderr, "harness: pid %d ignored SIGTERM, killing\n", (int)pid);
        status = hx_child_kill(pid);
    }
    return status;
}

/* ---- processes that are not our children ---------------------------------- */

void hx_foreign_kill(pid_t pid, long bound_ms)
{
    if (pid <= 0)
        return;
    kill(pid, SIGKILL);
    for (long t = 0; t < bound_ms && kill(pid, 0) == 0; t += 10)
        hx_sleep_ms(10);
}

bool hx_foreign_wait(hx_t *hx, pid_t pid, int bound_ms)
{
    gint64 end = hx_now_ms() + bound_ms;
    while (pid > 0 && kill(pid, 0) == 0) {
        if (hx_now_ms() >= end)
            return false;
        hx_pump(hx, 10);
    }
    return true;
}

/* ---- helper programs and commands ----------------------------------------- */

pid_t hx_spawn(hx_t *hx, char *const argv[], const char *out_path)
{
    pid_t pid = hx_child_start(argv, out_path, out_path);
    if (pid > 0)
        g_array_append_val(hx->helpers, pid);
    return pid;
}

int hx_spawn_stop(hx_t *hx, pid_t pid, int timeout_ms)
{
    kill(pid, SIGTERM);
    int status = hx_child_wait(hx, pid, timeout_ms);
    if (status == -1)
        hx_child_kill(pid);
    for (guint i = 0; i < hx->helpers->len; i++) {
        if (g_array_index(hx->helpers, pid_t, i) == pid)
            g_array_remove_index(hx->helpers, i--);
    }
    return status;
}

int hx_run(hx_t *hx, char *const argv[], char **out, char **err, int timeout_ms)
{
    unsigned seq = ++hx->commands_run;
    g_autofree char *o = g_strdup_printf("%s/run-%u.out", hx->dir, seq);
    g_autofree char *e = g_strdup_printf("%s/run-%u.err", hx->dir, seq);
    pid_t pid = hx_child_start(argv, o, e);
    if (pid < 0)
        return -1;
    int status = hx_child_wait(hx, pid, timeout_ms);
    if (status == -1) {
        hx_child_kill(pid);
        status = -1;
    }
    if (out)
        *out = hx_read_file(o);
    if (err)
        *err = hx_read_file(e);
    if (status < 0 || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

/* ---- files ---------------------------------------------------------------- */

char *hx_read_file(const char *path)
{
    char *text = NULL;
    if (!g_file_get_contents(path, &text, NULL, NULL))
        return g_strdup("");
    return text;
}

char *hx_write_file(hx_t *hx, const char *name, const char *text, int mode)
{
    char *path = g_build_filename(hx->dir, name, NULL);
    /* Created with MODE (the umask may only narrow it), so that a secret
     * is never readable by others, not even for a moment; then exactly
     * MODE, so that a test can ask for a mode too open on purpose. */
    GError *error = NULL;
    if (!g_file_set_contents_full(path, text, -1, G_FILE_SET_CONTENTS_CONSISTENT, mode,
                                  &error) ||
        chmod(path, (mode_t)mode) != 0) {
        fprintf(stderr, "harness: cannot write %s: %s\n", path,
                error ? error->message : strerror(errno));
        abort();
    }
    return path;
}

/* ---- loopback ports ------------------------------------------------------- */

int hx_pick_port(int *held_fd)
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
    *held_fd = fd;
    return ntohs(sa.sin_port);
}

bool hx_port_accepts(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}
