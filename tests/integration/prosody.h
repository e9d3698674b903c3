/* A private Prosody (Debian's `prosody` package) for one run: its config,
 * data and log in the run's directory, c2s and component listeners on free
 * ports of 127.0.0.1 only, started as a child that dies with the test
 * process and stopped by its pid.
 *
 * It serves VirtualHost "localhost" and the component HX_DOMAIN.  A run
 * that needs accounts on another host (Jitsi's focus@auth.localhost) adds
 * it with hx_prosody_add_host(); a run that does not gets exactly the
 * config it always had. */
#ifndef HX_PROSODY_H
#define HX_PROSODY_H

#include <stdbool.h>
#include <sys/types.h>

#include "run.h"

typedef struct hx_prosody hx_prosody_t;

/** The run's Prosody, not started yet: picks its free ports, writes its
 *  config and the accounts service, alice and bob (password HX_PASSWORD).
 *  A run has at most one; HX owns it (hx_free() stops and frees it). */
hx_prosody_t *hx_prosody_new(hx_t *hx);
/** HX's Prosody, or NULL before hx_prosody_new(). */
hx_prosody_t *hx_prosody(const hx_t *hx);
/** Adds account NODE@localhost (password HX_PASSWORD).  Call it while
 *  Prosody is stopped. */
void hx_prosody_add_account(hx_prosody_t *p, const char *node);
/** Adds VirtualHost HOST (read during the call) beside "localhost", with
 *  the same settings, and rewrites the config.  Call it while Prosody is
 *  stopped; adding a host twice, or "localhost", changes nothing. */
void hx_prosody_add_host(hx_prosody_t *p, const char *host);
/** Adds account NODE@HOST (password HX_PASSWORD); HOST is "localhost" or
 *  one added with hx_prosody_add_host() (else it aborts).  Call it while
 *  Prosody is stopped.  Log in with hx_client_connect_at() (clients.h). */
void hx_prosody_add_account_at(hx_prosody_t *p, const char *node, const char *host);
/** Starts Prosody and waits until both ports accept connections.  Returns
 *  false (with a message on stderr) on failure. */
bool hx_prosody_start(hx_prosody_t *p);
/** SIGTERM, wait, SIGKILL after a bound.  The data stays. */
void hx_prosody_stop(hx_prosody_t *p);
/** Stop, then start again on the same ports with the same data. */
bool hx_prosody_restart(hx_prosody_t *p);
int hx_prosody_c2s_port(const hx_prosody_t *p);
int hx_prosody_component_port(const hx_prosody_t *p);
/** Its pid, or 0 when it is not running. */
pid_t hx_prosody_pid(const hx_prosody_t *p);

#endif
