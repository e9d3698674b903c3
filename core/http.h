/* The HTTP listener for operators' tools ([metrics] listen): GET /metrics
 * in Prometheus' text format, and GET /health for load balancers and
 * container checks.  libsoup's SoupServer serves it in the GLib main loop.
 *
 * Scraping must never stall routing: every socket is non-blocking in the
 * same loop, at most HTTP_MAX_CONNECTIONS are open at once (more are
 * closed at once), and one that stays silent for HTTP_IDLE_TIMEOUT_S is
 * dropped, so a slow or hostile client holds nothing for long. */
#ifndef CP_CORE_HTTP_H
#define CP_CORE_HTTP_H

#include <stdbool.h>

#include <glib.h>

#define HTTP_MAX_CONNECTIONS 4
#define HTTP_IDLE_TIMEOUT_S 10

typedef struct http_handlers {
    /* Appends the exposition text to OUT. */
    void (*metrics)(GString *out, void *userdata);
    /* True when healthy; else appends the one-line reason to REASON. */
    bool (*health)(GString *reason, void *userdata);
    void *userdata;
} http_handlers_t;

typedef struct http http_t;

/* Listens on HOST (an address, or a name resolved now) and PORT (0: any
 * free one, for tests).  HANDLERS is copied.  Returns NULL with ERROR set
 * when it cannot listen. */
http_t *http_new(const char *host, int port, const http_handlers_t *handlers, GError **error);
/* Closes the listener and every connection.  NULL is allowed. */
void http_free(http_t *http);

/* Connections open now, for tests. */
unsigned http_connection_count(const http_t *http);

/* The port it listens on. */
int http_port(const http_t *http);

#endif
