/* The component's stream to the XMPP server (XEP-0114), driven by libstrophe
 * from the GLib main loop, reconnecting with backoff when it drops. */
#ifndef CP_CORE_CONNECTION_H
#define CP_CORE_CONNECTION_H

#include <stdbool.h>

#include <strophe.h>

#include "config.h"

typedef struct connection_callbacks {
    void (*up)(void *userdata);                        /* handshake done */
    void (*down)(void *userdata);                      /* an established stream ended */
    void (*stanza)(xmpp_stanza_t *stanza, void *userdata); /* borrowed for the call */
    void (*closed)(void *userdata);                    /* connection_close() finished */
    void *userdata;
} connection_callbacks_t;

typedef struct connection connection_t;

/* Prepares a connection for CONFIG (copied).  Returns NULL, with the reason
 * logged, if libstrophe cannot be set up. */
connection_t *connection_new(const config_t *config, const connection_callbacks_t *callbacks);
void connection_free(connection_t *connection);

/* The libstrophe context, for building stanzas.  Owned by CONNECTION. */
xmpp_ctx_t *connection_context(connection_t *connection);

/* Connects, and keeps reconnecting with backoff until connection_close(). */
void connection_start(connection_t *connection);

/* Queues STANZA (borrowed) and makes sure it is written soon.  A stanza sent
 * while the stream is down is lost: callers hold what must survive. */
void connection_send(connection_t *connection, xmpp_stanza_t *stanza);

bool connection_is_up(const connection_t *connection);

/* Writes what is queued, closes the stream and stops reconnecting; the
 * closed callback follows (at once when the stream is already down). */
void connection_close(connection_t *connection);

/* After the closed callback: takes CONFIG's [component] settings (copied)
 * for the next connection_start(). */
void connection_reconfigure(connection_t *connection, const config_t *config);

#endif
