/* Routes stanzas between senders and the implementing client's resources.
 *
 * The router is the one place that decides what happens to a stanza.  It
 * knows nothing of sockets: everything it sends goes through the send
 * function given at creation (the seam unit tests replace), and time comes
 * in through router_expire(). */
#ifndef CP_CORE_ROUTER_H
#define CP_CORE_ROUTER_H

#include <stdbool.h>
#include <stdint.h>

#include <strophe.h>

#include "config.h"
#include "plugin-loader.h"
#include "wire.h"

/* Sends LENGTH bytes of BYTES: one whole stanza, borrowed for the call. */
typedef void (*router_send_fn)(const char *bytes, size_t length, void *userdata);

/* Called when the earliest deadline may have moved earlier: the caller
 * arranges for router_expire() to run by then.  DEADLINE is monotonic µs. */
typedef void (*router_deadline_fn)(int64_t deadline, void *userdata);

typedef struct router_callbacks {
    router_send_fn send;
    router_deadline_fn deadline_changed; /* may be NULL: the caller polls */
    void *userdata;
} router_callbacks_t;

typedef struct router router_t;

/* Creates a router for CONFIG's domain, target and timeout.  CTX, for the
 * stanzas the router builds and reads in depth, is borrowed and must
 * outlive the router; the router takes its own references
 * on DISPATCH and JAT; CONFIG is only read during the call. */
router_t *router_new(xmpp_ctx_t *ctx, const config_t *config, plugin_t *dispatch, plugin_t *jat,
                     const router_callbacks_t *callbacks);

/* Applies a reloaded configuration to new requests: the strategy, the
 * encoding, request_timeout and the resource filter.  Requests in flight
 * keep their deadline and the encoding that made their token, until they
 * end.  The domain and target must be unchanged (see proxy.c).  References
 * as for router_new(). */
void router_reconfigure(router_t *router, const config_t *config, plugin_t *dispatch,
                        plugin_t *jat);

/* While paused, new requests are answered with wait/service-unavailable
 * and requests in flight go on: proxy.c drains them before a new stream. */
void router_pause(router_t *router, bool paused);

/* Frees the router.  Call router_shutdown() first to answer what is pending. */
void router_free(router_t *router);

/* Handles one stanza received on the component stream (borrowed). */
void router_handle(router_t *router, const wire_stanza_t *stanza);

/* The stream is up: probe and subscribe to the target, and send what was
 * held back while the stream was down. */
void router_connected(router_t *router);

/* The stream went down: the resources are forgotten, and every request in
 * flight is answered with wait/remote-server-timeout once it is back. */
void router_disconnected(router_t *router);

/* Answers every request in flight with an error and says goodbye to the
 * target (unavailable presence).  Call while still connected. */
void router_shutdown(router_t *router);

/* Answers the requests whose deadline is at or before NOW (monotonic µs). */
void router_expire(router_t *router, int64_t now);

/* The earliest deadline among pending requests (monotonic µs), or -1. */
int64_t router_next_deadline(router_t *router);

size_t router_pending_count(const router_t *router);
size_t router_resource_count(const router_t *router);

#endif
