/* client-proxy, the program under test, as a child of the test process:
 * its config file (mode 0600: it holds the component secret), start and
 * stop by pid, its log, and the checks on its shutdown.
 *
 * With env CLIENT_PROXY_WRAPPER set (an argv prefix, split like a shell
 * would, e.g. "valgrind --error-exitcode=99 -q ..."), every client-proxy is
 * run under that wrapper: the pid is the wrapper's (valgrind keeps the
 * pid), its reports go to client-proxy's stderr file unless told otherwise,
 * and stopping it waits longer before SIGKILL (HX_WRAPPED_STOP_MS) for its
 * exit checks.
 */
#ifndef HX_CLIENT_PROXY_H
#define HX_CLIENT_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "run.h"

/* SIGTERM -> SIGKILL for a client-proxy under CLIENT_PROXY_WRAPPER:
 * valgrind checks for leaks after main() returns, and that takes seconds. */
#define HX_WRAPPED_STOP_MS 30000

/* How long to wait for a log line that must come.  Long, because under
 * valgrind and beside other tests client-proxy can be slow by seconds; a
 * line that comes costs no more than the time it took. */
#define HX_LOG_WAIT_MS 20000

typedef struct {
    const char *domain; /* default HX_DOMAIN */
    /* [component] instance_domain, written only when not NULL */
    const char *instance_domain;
    const char *secret;   /* default HX_SECRET */
    int port;             /* default the run's Prosody's component port, or
                             its ejabberd's first */
    const char *target;   /* default HX_TARGET */
    const char *dispatch; /* default "random" */
    const char *encoding; /* default "raw" */
    int request_timeout;  /* default 2 */
    const char *extra;    /* appended verbatim to the config, or NULL */
    /* hx_proxy_start() only: changes to client-proxy's environment, e.g.
     * NOTIFY_SOCKET for systemd's side (NULL-terminated, or NULL; see
     * hx_child_start_env()) */
    const char *const *env;
} hx_proxy_opts_t;

typedef struct hx_proxy hx_proxy_t;

/** Path of the client-proxy binary (env CLIENT_PROXY_BIN, else
 *  "client-proxy"; borrowed from the environment). */
const char *hx_proxy_bin(void);
/** The argv prefix from CLIENT_PROXY_WRAPPER (NULL-terminated, owned by
 *  HX), or NULL when unset. */
char *const *hx_proxy_wrapper(const hx_t *hx);

/** Writes a config file NAME from OPTS (NULL: the defaults; read during
 *  the call only) into HX's directory, mode 0600; returns its path (g_free
 *  it). */
char *hx_proxy_write_config(hx_t *hx, const char *name, const hx_proxy_opts_t *opts);
/** Writes a config file from OPTS (as hx_proxy_write_config()) and starts
 *  `client-proxy --config FILE`
 *  (under CLIENT_PROXY_WRAPPER if set) with stdout and stderr to files in
 *  HX's directory.  Returns a new handle (hx_proxy_free() it; else
 *  hx_free() does), or NULL if it could not be started. */
hx_proxy_t *hx_proxy_start(hx_t *hx, const hx_proxy_opts_t *opts);
/** Stops P if it runs (as hx_proxy_stop(), unchecked) and frees it.  NULL
 *  is allowed. */
void hx_proxy_free(hx_proxy_t *p);
/** Its pid (the wrapper's, if any), or 0 once it has exited. */
pid_t hx_proxy_pid(const hx_proxy_t *p);
/** Rewrites P's config file from OPTS (to reload it, send SIGHUP
 *  afterwards). */
void hx_proxy_rewrite_config(hx_proxy_t *p, const hx_proxy_opts_t *opts);

/** Everything it wrote to stderr so far (g_free it). */
char *hx_proxy_log(const hx_proxy_t *p);
/** Length of the log now, to look only at lines written after this. */
size_t hx_proxy_log_mark(const hx_proxy_t *p);
/** Pumps the run's clients until the log after MARK contains NEEDLE (case
 *  insensitive); returns the matching line (g_free it) or NULL on
 *  timeout. */
char *hx_proxy_wait_log(hx_proxy_t *p, size_t mark, const char *needle, int timeout_ms);
/** How many lines of the log after MARK contain NEEDLE (case
 *  insensitive). */
unsigned hx_proxy_log_count(const hx_proxy_t *p, size_t mark, const char *needle);

void hx_proxy_signal(hx_proxy_t *p, int sig);
/** Pumps the clients until client-proxy exits; returns its wait status, or
 *  -1 on timeout (it is then still running).  Once it has exited, returns
 *  that status again. */
int hx_proxy_wait_exit(hx_proxy_t *p, int timeout_ms);
/** SIGTERM, then SIGKILL after a bound.  Returns the wait status (the one
 *  collected earlier if it had exited already, -1 if none was). */
int hx_proxy_stop(hx_proxy_t *p);
bool hx_proxy_running(hx_proxy_t *p);

/** Checks a client-proxy stderr text for reports of a memory error or leak:
 *  AddressSanitizer/UBSan ("Sanitizer", "runtime error:") and valgrind
 *  ("ERROR SUMMARY: N" with N > 0, "definitely lost", "indirectly lost",
 *  "Invalid read/write/free", "uninitialised", "Mismatched free").  Returns
 *  the first offending line (g_free it), or NULL when clean. */
char *hx_memcheck_report(const char *log);
/** hx_run() of `client-proxy ARGS...` (ARGS NULL-terminated, without the
 *  program), under CLIENT_PROXY_WRAPPER if set. */
int hx_proxy_run(hx_t *hx, char *const args[], char **out, char **err, int timeout_ms);

#endif
