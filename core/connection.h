/* The component's stream to the XMPP server (XEP-0114): a TCP socket in the
 * GLib main loop, read and parsed by stream.c, written from one buffer that
 * is flushed once per wake-up, reconnecting with backoff when it drops.
 * Under load, input is read in batches rather than stanza by stanza. */
#ifndef CP_CORE_CONNECTION_H
#define CP_CORE_CONNECTION_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "wire.h"

typedef struct connection_callbacks {
    void (*up)(void *userdata);                        /* handshake done */
    /* An established stream ended.  UNSENT (LENGTH bytes, borrowed for the
     * call) are the whole stanzas given to connection_send() that it never
     * wrote in full, or wrote after the server had stopped reading: send
     * them again on the next stream. */
    void (*down)(const char *unsent, size_t length, void *userdata);
    /* A stanza, borrowed for the call; also while closing, when nothing can
     * be sent on this stream any more. */
    void (*stanza)(const wire_stanza_t *stanza, void *userdata);
    void (*closed)(void *userdata);                    /* connection_close() finished */
    /* How long input may gather before it is read (ms; 0, or a NULL
     * member: at once), asked after each read that brought bytes while the
     * stream is up.  While it is not 0 and
     * stanzas come more often than that, the connection reads them in one
     * wake-up at the end of such a window rather than one by one. */
    unsigned (*coalesce_ms)(void *userdata);
    void *userdata;
} connection_callbacks_t;

typedef struct connection connection_t;

/* Prepares a connection for CONFIG's [component] settings (copied). */
connection_t *connection_new(const config_t *config, const connection_callbacks_t *callbacks);
void connection_free(connection_t *connection);

/* Connects, and keeps reconnecting with backoff until connection_close(). */
void connection_start(connection_t *connection);

/* Queues LENGTH bytes of BYTES (copied: one or more whole stanzas) and
 * makes sure they are written soon: at the end of the current wake-up when
 * called from a callback of this connection.  Bytes sent while the stream
 * is not up are dropped: callers hold what must survive, and get back what
 * a dying stream did not write (the down callback). */
void connection_send(connection_t *connection, const char *bytes, size_t length);

bool connection_is_up(const connection_t *connection);

/* Writes what is queued, closes the stream and stops reconnecting; the
 * closed callback follows (at once when the stream is already down). */
void connection_close(connection_t *connection);

/* After the closed callback: takes CONFIG's [component] settings (copied)
 * for the next connection_start(). */
void connection_reconfigure(connection_t *connection, const config_t *config);

#endif
