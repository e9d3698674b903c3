/* One test run: the temporary directory, the libstrophe context that the
 * test clients share, and the servers started in it.
 *
 * A cmocka group holds one run and hands it to its tests in their state
 * (hx_group_setup_prosody(), or a suite struct of the test file's own).
 * What a single test starts (its clients, its client-proxy, its helper
 * processes) lives in that test's fixture and is freed by its teardown, so
 * nothing of one test is left for the next.  hx_free() is the safety net:
 * it stops and frees whatever is still live in the run.
 */
#ifndef HX_RUN_H
#define HX_RUN_H

#include <stdbool.h>

#include <glib.h>
#include <strophe.h>

/* What the servers, client-proxy and the clients agree on. */
#define HX_DOMAIN "proxy.localhost"    /* client-proxy's component domain */
#define HX_SECRET "s3cret"             /* its component secret */
#define HX_TARGET "service@localhost"  /* the implementing client's account */
#define HX_PASSWORD "pw"               /* of every account */
#define HX_ECHO_NS "urn:example:echo"  /* what the test workers echo */

typedef struct hx hx_t;

/** A new run: makes its temporary directory ($TMPDIR or /tmp,
 *  cp-it-XXXXXX) and its libstrophe context, and registers the directory
 *  with the emergency cleanup (process.h).  Aborts on failure.  The caller
 *  owns it: hx_free() it. */
hx_t *hx_new(void);
/** Frees what is still live in HX (helper processes stopped, clients
 *  disconnected, client-proxy processes and servers stopped, in that
 *  order), removes the directory (kept with HX_KEEP=1, its path printed on
 *  stderr) and frees HX.  NULL is allowed. */
void hx_free(hx_t *hx);

/** The temporary directory (owned by HX). */
const char *hx_dir(const hx_t *hx);
/** The libstrophe context of HX's clients (owned by HX).  Only the harness
 *  pumps it, from its wait functions (clients.h). */
xmpp_ctx_t *hx_ctx(const hx_t *hx);
/** The c2s port clients connect to: the run's Prosody's if it has one,
 *  else its ejabberd's; 0 when neither was created. */
int hx_c2s_port(const hx_t *hx);

/** cmocka group fixtures.  hx_group_setup() sets *STATE to a new run
 *  (hx_t *); hx_group_setup_prosody() also starts its Prosody;
 *  hx_group_teardown() hx_free()s *STATE.  Each test of the group gets the
 *  run in its state. */
int hx_group_setup(void **state);
int hx_group_setup_prosody(void **state);
int hx_group_teardown(void **state);

#endif
