/* Processes and files of a test run: children that die with the test
 * process, waiting for them while the clients are pumped, stopping by PID,
 * the emergency cleanup, free loopback ports, files in the run's directory.
 */
#ifndef HX_PROCESS_H
#define HX_PROCESS_H

#include <stdbool.h>
#include <sys/types.h>

#include <glib.h>

#include "run.h"

#define HX_STOP_BOUND_MS 5000 /* SIGTERM, then SIGKILL after this */

/** Monotonic milliseconds. */
gint64 hx_now_ms(void);

/* ---- for tests: helper programs and commands ------------------------------ */

/** Starts a helper program (an example, say) with stdout and stderr to
 *  OUT_PATH.  It dies with the test process; hx_free() stops it if the test
 *  did not.  Returns its pid, or -1. */
pid_t hx_spawn(hx_t *hx, char *const argv[], const char *out_path);
/** SIGTERM to helper PID, then pumps until it exits; returns its wait
 *  status, or -1 (it has then been killed) if it did not exit within
 *  TIMEOUT_MS. */
int hx_spawn_stop(hx_t *hx, pid_t pid, int timeout_ms);
/** Runs a command to completion with stdout and stderr captured into new
 *  strings *OUT and *ERR (g_free them; either may be NULL).  Returns the
 *  exit code, or -1 if it died by a signal or did not end within
 *  TIMEOUT_MS (then it is killed). */
int hx_run(hx_t *hx, char *const argv[], char **out, char **err, int timeout_ms);

/** Writes HX's directory/NAME containing TEXT, with MODE from the moment it
 *  exists (and exactly MODE, whatever the umask).  Returns the path
 *  (g_free it).  Aborts on failure. */
char *hx_write_file(hx_t *hx, const char *name, const char *text, int mode);
/** The contents of PATH as a new string (g_free it); "" if unreadable. */
char *hx_read_file(const char *path);

/* ---- for the parts of the harness: children -------------------------------
 * A child started here is in the emergency cleanup until one of the
 * functions below has reaped it.  Reap children only through them. */

/** Starts ARGV (searched in PATH) with stdin from /dev/null and stdout and
 *  stderr appended to OUT and ERR (made 0600).  The child gets SIGKILL when
 *  the test process dies (PR_SET_PDEATHSIG) and inherits none of its
 *  descriptors.  Returns its pid, or -1. */
pid_t hx_child_start(char *const argv[], const char *out, const char *err);
/** hx_child_start() with the test process's environment changed by ENV
 *  (NULL-terminated; NULL: none): "NAME=VALUE" sets NAME, a bare "NAME"
 *  removes it. */
pid_t hx_child_start_env(char *const argv[], char *const env[], const char *out,
                         const char *err);
/** Waits up to BOUND_MS for child PID while pumping HX's clients.  Returns
 *  its wait status, -1 if it still runs, -2 if it is no child of ours. */
int hx_child_wait(hx_t *hx, pid_t pid, int bound_ms);
/** True (and its wait status in *STATUS) if child PID has exited; does not
 *  wait. */
bool hx_child_exited(pid_t pid, int *status);
/** SIGTERM, waits up to BOUND_MS (pumping), then SIGKILL.  Returns the wait
 *  status. */
int hx_child_stop(hx_t *hx, pid_t pid, int bound_ms);
/** SIGKILL and reap.  Returns the wait status. */
int hx_child_kill(pid_t pid);

/* ---- for the parts of the harness: processes that are not our children ---- */

/** SIGKILL to PID, then waits up to BOUND_MS until it is gone.
 *  Async-signal-safe. */
void hx_foreign_kill(pid_t pid, long bound_ms);
/** Pumps HX's clients until PID is gone; false on timeout. */
bool hx_foreign_wait(hx_t *hx, pid_t pid, int bound_ms);
/** Sleeps MS milliseconds, through signals.  Async-signal-safe. */
void hx_sleep_ms(long ms);

/* ---- for the parts of the harness: the emergency cleanup -------------------
 * When the test process dies of SIGTERM, SIGINT or SIGHUP (meson stops a
 * timed-out test with SIGTERM), or exits while something is still
 * registered here, the emergency cleanup SIGKILLs every child still
 * registered, runs the hooks, and removes the directories (unless HX_KEEP is
 * set).  The handlers are installed the first time anything is
 * registered. */

/** Removes DIR (copied) if the test process dies.  hx_new() registers the
 *  run's directory. */
void hx_emergency_add_dir(const char *dir);
void hx_emergency_remove_dir(const char *dir);
/** Calls FN(ARG) if the test process dies, after the children are killed:
 *  for processes that are not our children.  FN must be async-signal-safe,
 *  and ARG must stay valid until hx_emergency_remove_hook(). */
void hx_emergency_add_hook(void (*fn)(void *arg), void *arg);
void hx_emergency_remove_hook(void (*fn)(void *arg), void *arg);

/* ---- for the parts of the harness: loopback ports ------------------------- */

/** Binds a new socket to a port of 127.0.0.1 that the kernel picks and
 *  returns the port.  The socket stays open in *HELD_FD so that the next
 *  pick differs: close it just before the server is started. */
int hx_pick_port(int *held_fd);
/** True if something accepts connections on 127.0.0.1:PORT. */
bool hx_port_accepts(int port);

#endif
