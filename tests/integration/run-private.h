/* What the parts of the harness share about a run (run.h).  Tests do not
 * include this: they use the functions of the parts. */
#ifndef HX_RUN_PRIVATE_H
#define HX_RUN_PRIVATE_H

#include <sys/types.h>

#include "harness.h"

struct hx {
    char *dir;       /* the temporary directory */
    xmpp_ctx_t *ctx; /* shared by the clients, pumped by hx_pump() */
    char **wrapper;  /* CLIENT_PROXY_WRAPPER as an argv, or NULL */

    /* Counters that keep names unique within the run. */
    unsigned proxies_started; /* proxy-N.conf, .stdout, .stderr */
    unsigned commands_run;    /* run-N.out, run-N.err (hx_run()) */
    unsigned ejabberdctl_run; /* ejabberdctl-N.out */
    unsigned iq_ids;          /* hxN-RANDOM */

    /* What is live.  Each object adds itself when it is made and removes
     * itself when it is freed; hx_free() frees what is left. */
    GPtrArray *clients; /* hx_client_t * */
    GPtrArray *proxies; /* hx_proxy_t * */
    GArray *helpers;    /* pid_t of hx_spawn() children not yet stopped */
    hx_prosody_t *prosody;   /* at most one, owned */
    hx_ejabberd_t *ejabberd; /* at most one, owned */
};

/* Stop and free a server; hx_free() calls them. */
void hx_prosody_free(hx_prosody_t *p);
void hx_ejabberd_free(hx_ejabberd_t *ej);

#endif
