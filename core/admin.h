/* Admin commands over XMPP (XEP-0050 ad-hoc commands, with XEP-0004 data
 * forms), for the bare JIDs of [admin] jids: status, resources, drain,
 * undrain and reload, so that any client with ad-hoc command support
 * (Gajim, Psi, Conversations, profanity) can run them.
 *
 * Only an admin's IQs to the bare domain about client-proxy's commands
 * (disco#items on the commands node, disco#info of it or of a command, one
 * of the five commands) are handled here; anyone else's, and everything
 * else (the service's own commands and disco included), goes to the router
 * as before. */
#ifndef CP_CORE_ADMIN_H
#define CP_CORE_ADMIN_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "metrics.h"
#include "router.h"
#include "wire.h"

#define ADMIN_COMMANDS_NS "http://jabber.org/protocol/commands"

typedef struct admin_callbacks {
    /* Reloads the configuration, as SIGHUP does; *OUTCOME is one line for
     * the admin (the callee allocates, the admin module frees it). */
    bool (*reload)(char **outcome, void *userdata);
    /* Whether the stream is up now. */
    bool (*stream_up)(void *userdata);
    void *userdata;
} admin_callbacks_t;

typedef struct admin admin_t;

/* Answers through ROUTER (router_send(): an answer given while the stream
 * closes, as after a reload that changes it, goes out on the next one), and
 * reads ROUTER and METRICS (borrowed; both outlive the admin module).
 * CONFIG is read during the call; CALLBACKS is copied. */
admin_t *admin_new(const config_t *config, router_t *router, metrics_t *metrics,
                   const admin_callbacks_t *callbacks);
void admin_free(admin_t *admin);

/* Takes CONFIG's admins, domain and plugin names. */
void admin_reconfigure(admin_t *admin, const config_t *config);

/* Handles IQ if it is an admin's request about client-proxy's commands:
 * answers it and returns true.  Returns false for anything else (the
 * router's). */
bool admin_handle(admin_t *admin, const wire_stanza_t *iq);

#endif
