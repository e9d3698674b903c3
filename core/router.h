/* The router decides what happens to each stanza that arrives on the
 * component stream: the table in the README's "What the sender gets", and
 * nothing else.  What it decides is carried out by the modules it owns:
 *   roster.c    the target's resources, and which may take a request
 *   inflight.c  requests from admission to their one reply
 *   health.c    benching resources that stop answering, and pinging them
 *   outbox.c    the send seam, and what is held while the stream is down
 * It knows nothing of sockets, and time comes in through router_expire(). */
#ifndef CP_CORE_ROUTER_H
#define CP_CORE_ROUTER_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "metrics.h"
#include "outbox.h"
#include "plugin-loader.h"
#include "wire.h"

/* Called when the earliest deadline may have moved earlier: the caller
 * arranges for router_expire() to run by then.  DEADLINE is monotonic µs. */
typedef void (*router_deadline_fn)(int64_t deadline, void *userdata);

typedef struct router_callbacks {
    outbox_send_fn send;                 /* the send seam: whole stanzas */
    router_deadline_fn deadline_changed; /* may be NULL: the caller polls */
    void *userdata;
    metrics_t *metrics;                  /* where it counts (borrowed; it
                                            outlives the router), or NULL */
} router_callbacks_t;

typedef struct router router_t;

/* Creates a router for CONFIG (read during the call only), choosing
 * resources with DISPATCH and encoding senders with JAT: the router takes
 * its own references.  It starts disconnected: what it sends is held until
 * router_connected(). */
router_t *router_new(const config_t *config, plugin_t *dispatch, plugin_t *jat,
                     const router_callbacks_t *callbacks);

/* Applies a reloaded configuration to new requests: the strategy, the
 * encoding, the limits and timeouts, the resource filter.  Requests in
 * flight keep their deadline and the encoding that made their token, until
 * they end.  A new [component] domain, instance_domain or target may be
 * given only while the stream is down (proxy.c reconnects for it): what was
 * held for the old stream is still sent on the new one.  References as for
 * router_new(). */
void router_reconfigure(router_t *router, const config_t *config, plugin_t *dispatch,
                        plugin_t *jat);

/* While paused, new requests are answered with wait/service-unavailable
 * and requests in flight go on: proxy.c drains them before a new stream. */
void router_pause(router_t *router, bool paused);

/* Frees the router.  Call router_shutdown() first to answer what is in
 * flight; what could not be sent is logged. */
void router_free(router_t *router);

/* Handles one stanza received on the component stream (borrowed). */
void router_handle(router_t *router, const wire_stanza_t *stanza);

/* The stream is up: send what was held, probe and subscribe to the target. */
void router_connected(router_t *router);

/* The stream is down (or closing: nothing more can be written on it).
 * UNSENT (LENGTH bytes, borrowed, may be NULL) are whole stanzas the stream
 * took but never wrote: the answers and messages among them are held and
 * sent first once it is back; IQ requests (forwards, pings, requests to
 * users) are dropped, since they are ended as failed here.  The resources
 * are forgotten, and every request in flight is answered with
 * wait/remote-server-timeout once the stream is back, but those held for a
 * resource ([proxy] hold), which wait on. */
void router_disconnected(router_t *router, const char *unsent, size_t length);

/* Sends BYTES (LENGTH of them: whole stanzas, borrowed for the call) for
 * another part of client-proxy that answers on the component stream: on this
 * stream, or, while it is down or closing, held for the next one as the
 * router's own answers are. */
void router_send(router_t *router, const char *bytes, size_t length);

/* Client-proxy stops: every request in flight is answered with
 * cancel/service-unavailable, so is every new one from now on, and the
 * target is told goodbye (unavailable presence).  Call while connected. */
void router_shutdown(router_t *router);

/* Answers the requests whose deadline is at or before NOW (monotonic µs),
 * and does what else is due: pings, probes. */
void router_expire(router_t *router, int64_t now);

/* When router_expire() next has something to do (monotonic µs), or -1. */
int64_t router_next_deadline(router_t *router);

/* Requests in flight, in both directions, held ones included. */
size_t router_pending_count(const router_t *router);
/* How long the request in flight that times out first has been in flight
 * at NOW (monotonic µs): under load, about how long requests take; 0 when
 * none is. */
int64_t router_oldest_request_age(const router_t *router, int64_t now);
/* How many requests were admitted since router_new() (inflight.h). */
uint64_t router_admitted_total(const router_t *router);
/* Requests waiting for a resource ([proxy] hold). */
size_t router_held_count(const router_t *router);
size_t router_resource_count(const router_t *router);
/* True when a resource can take a request now. */
bool router_serving(const router_t *router);

/* Every resource online: a new array for the caller to free, of resource_t
 * (roster.h) borrowed from the router, valid until it next changes. */
GPtrArray *router_resources(router_t *router);

/* Drains resource NAME (no new requests) or undrains it, for an admin.
 * Returns false when no such resource is online. */
bool router_drain(router_t *router, const char *name, bool drained);

/* What the router knows now, for the metrics' gauges: SNAPSHOT's resources
 * point into STORAGE (a GArray of metrics_resource_t the caller owns), and
 * their names into the router; valid until the router next changes. */
void router_snapshot(router_t *router, metrics_snapshot_t *snapshot, GArray *storage);

#endif
