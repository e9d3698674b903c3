/* A private ejabberd (Debian's `ejabberd` package) for one run, on free
 * ports of 127.0.0.1, with its config, Mnesia spool and logs in the run's
 * directory/ejabberd.  Its Erlang distribution listens on a free port of its
 * own (ERL_DIST_PORT), so no epmd is started or used.
 *
 * ejabberdctl must run as root (it switches to the `ejabberd` user) or as
 * `ejabberd`, so the Erlang VM is no child of ours that PR_SET_PDEATHSIG
 * could reach: it is stopped by its pid, by the emergency cleanup too
 * (process.h), and a watchdog process kills it and removes the run's
 * directory if the test process dies without cleaning up (SIGKILL, abort).
 */
#ifndef HX_EJABBERD_H
#define HX_EJABBERD_H

#include <stdbool.h>
#include <sys/types.h>

#include "run.h"

#define HX_EJABBERD_MAX_COMPONENTS 4

typedef struct {
    /* Component listeners (ejabberd_service), each on its own port: 0 means
     * 1, at most HX_EJABBERD_MAX_COMPONENTS. */
    int components;
    const char *domain; /* served on every listener; default HX_DOMAIN */
    const char *secret; /* of every host; default HX_SECRET */
    /* Listener I also serves instance_domains[I] (client-proxy's
     * [component] instance_domain): NULL means "i<I+1>.<domain>", "" none. */
    const char *instance_domains[HX_EJABBERD_MAX_COMPONENTS];
} hx_ejabberd_opts_t;

typedef struct hx_ejabberd hx_ejabberd_t;

/** NULL when ejabberd can be started here; else why not (ejabberdctl not
 *  installed, no `ejabberd` user, not running as root or `ejabberd`): a
 *  test then skips.  The string is a constant. */
const char *hx_ejabberd_missing(void);
/** The run's ejabberd, not started yet: picks its free ports and writes its
 *  config from OPTS (NULL: the defaults; read during the call only).  Accounts service, alice and bob
 *  (password HX_PASSWORD) are registered at its first start.  A run has at
 *  most one; HX owns it (hx_free() stops and frees it).  NULL (with a
 *  message on stderr) when hx_ejabberd_missing() says why. */
hx_ejabberd_t *hx_ejabberd_new(hx_t *hx, const hx_ejabberd_opts_t *opts);
/** HX's ejabberd, or NULL. */
hx_ejabberd_t *hx_ejabberd(const hx_t *hx);
/** Starts ejabberd, waits until it has started and every port accepts,
 *  and registers the accounts not registered yet.  About 3 s.  Returns
 *  false (with a message on stderr) on failure. */
bool hx_ejabberd_start(hx_ejabberd_t *ej);
/** SIGTERM to the VM (SIGKILL after a bound), waits until it is gone.  The
 *  data stays. */
void hx_ejabberd_stop(hx_ejabberd_t *ej);
/** Stop, then start again on the same ports with the same data. */
bool hx_ejabberd_restart(hx_ejabberd_t *ej);
bool hx_ejabberd_running(const hx_ejabberd_t *ej);
int hx_ejabberd_c2s_port(const hx_ejabberd_t *ej);
/** Port of component listener I (0-based), or 0. */
int hx_ejabberd_component_port(const hx_ejabberd_t *ej, int i);
/** The instance domain listener I serves besides the shared one (owned by
 *  EJ), or NULL. */
const char *hx_ejabberd_instance_domain(const hx_ejabberd_t *ej, int i);
/** The Erlang VM's pid (beam.smp, owned by `ejabberd`), or 0. */
pid_t hx_ejabberd_pid(const hx_ejabberd_t *ej);
/** Account NODE@localhost with HX_PASSWORD: registered at once (ejabberdctl
 *  register) when ejabberd runs, else at its next start.  False on
 *  failure. */
bool hx_ejabberd_add_account(hx_ejabberd_t *ej, const char *node);
/** ejabberd's console output so far (g_free it). */
char *hx_ejabberd_log(const hx_ejabberd_t *ej);

#endif
