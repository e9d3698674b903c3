/* /metrics and /health over HTTP, with libsoup: see http.h.
 *
 * Why libsoup-3.0 rather than libmicrohttpd: SoupServer is GObject-based
 * and runs in the GLib main loop client-proxy already runs, so there is no
 * thread and no second event loop; libmicrohttpd would bring either its own
 * threads or an external-select mode to bridge by hand. */
#include "http.h"

#include <gio/gio.h>
#include <libsoup/soup.h>

#include "log.h"

struct http {
    SoupServer *server;
    GSocketService *service;  /* accepts, so that connections can be counted */
    GHashTable *connections;  /* GSocketConnection, weakly referenced */
    http_handlers_t handlers;
    int port;
};

static void on_connection_gone(gpointer data, GObject *gone)
{
    http_t *http = data;
    g_hash_table_remove(http->connections, gone);
}

static gboolean on_incoming(GSocketService *service, GSocketConnection *connection,
                            GObject *source, gpointer data)
{
    (void)service;
    (void)source;
    http_t *http = data;
    if (g_hash_table_size(http->connections) >= HTTP_MAX_CONNECTIONS) {
        log_debug("metrics: refused a connection: %d are open", HTTP_MAX_CONNECTIONS);
        g_io_stream_close(G_IO_STREAM(connection), NULL, NULL);
        return TRUE;
    }
    GSocket *socket = g_socket_connection_get_socket(connection);
    g_socket_set_timeout(socket, HTTP_IDLE_TIMEOUT_S);
    g_autoptr(GSocketAddress) local = g_socket_connection_get_local_address(connection, NULL);
    g_autoptr(GSocketAddress) remote = g_socket_connection_get_remote_address(connection, NULL);
    g_autoptr(GError) error = NULL;
    if (!soup_server_accept_iostream(http->server, G_IO_STREAM(connection), local, remote,
                                     &error)) {
        log_warning("metrics: cannot serve a connection: %s", error->message);
        return TRUE;
    }
    g_hash_table_add(http->connections, connection);
    g_object_weak_ref(G_OBJECT(connection), on_connection_gone, http);
    return TRUE;
}

static bool is_get(SoupServerMessage *message)
{
    const char *method = soup_server_message_get_method(message);
    if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0)
        return true;
    soup_server_message_set_status(message, SOUP_STATUS_METHOD_NOT_ALLOWED, NULL);
    soup_message_headers_append(soup_server_message_get_response_headers(message), "Allow",
                                "GET, HEAD");
    return false;
}

static void respond(SoupServerMessage *message, unsigned status, const char *type,
                    GString *body)
{
    soup_server_message_set_status(message, status, NULL);
    soup_server_message_set_response(message, type, SOUP_MEMORY_COPY, body->str, body->len);
}

static void on_metrics(SoupServer *server, SoupServerMessage *message, const char *path,
                       GHashTable *query, gpointer data)
{
    (void)server;
    (void)query;
    http_t *http = data;
    if (strcmp(path, "/metrics") != 0) {
        soup_server_message_set_status(message, SOUP_STATUS_NOT_FOUND, NULL);
        return;
    }
    if (!is_get(message))
        return;
    g_autoptr(GString) body = g_string_sized_new(8192);
    http->handlers.metrics(body, http->handlers.userdata);
    respond(message, SOUP_STATUS_OK, "text/plain; version=0.0.4; charset=utf-8", body);
}

static void on_health(SoupServer *server, SoupServerMessage *message, const char *path,
                      GHashTable *query, gpointer data)
{
    (void)server;
    (void)query;
    http_t *http = data;
    if (strcmp(path, "/health") != 0) {
        soup_server_message_set_status(message, SOUP_STATUS_NOT_FOUND, NULL);
        return;
    }
    if (!is_get(message))
        return;
    g_autoptr(GString) body = g_string_new(NULL);
    bool healthy = http->handlers.health(body, http->handlers.userdata);
    if (healthy)
        g_string_assign(body, "ok");
    g_string_append_c(body, '\n');
    respond(message, healthy ? SOUP_STATUS_OK : SOUP_STATUS_SERVICE_UNAVAILABLE,
            "text/plain; charset=utf-8", body);
}

/* HOST:PORT as a socket address: an address as it is, a name resolved. */
static GSocketAddress *address_of(const char *host, int port, GError **error)
{
    g_autoptr(GInetAddress) literal = g_inet_address_new_from_string(host);
    if (literal)
        return g_inet_socket_address_new(literal, (guint16)port);
    g_autoptr(GResolver) resolver = g_resolver_get_default();
    GList *found = g_resolver_lookup_by_name(resolver, host, NULL, error);
    if (!found)
        return NULL;
    GSocketAddress *address = g_inet_socket_address_new(found->data, (guint16)port);
    g_resolver_free_addresses(found);
    return address;
}

http_t *http_new(const char *host, int port, const http_handlers_t *handlers, GError **error)
{
    g_autoptr(GSocketAddress) address = address_of(host, port, error);
    if (!address)
        return NULL;
    http_t *http = g_new0(http_t, 1);
    http->handlers = *handlers;
    http->connections = g_hash_table_new(g_direct_hash, g_direct_equal);
    http->server = soup_server_new("server-header", "client-proxy", NULL);
    soup_server_add_handler(http->server, "/metrics", on_metrics, http, NULL);
    soup_server_add_handler(http->server, "/health", on_health, http, NULL);
    http->service = g_socket_service_new();
    g_autoptr(GSocketAddress) bound = NULL;
    if (!g_socket_listener_add_address(G_SOCKET_LISTENER(http->service), address,
                                       G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL, &bound,
                                       error)) {
        http_free(http);
        return NULL;
    }
    http->port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
    g_signal_connect(http->service, "incoming", G_CALLBACK(on_incoming), http);
    g_socket_service_start(http->service);
    log_info("serving /metrics and /health on %s:%d", host, http->port);
    return http;
}

void http_free(http_t *http)
{
    if (!http)
        return;
    g_socket_service_stop(http->service);
    g_socket_listener_close(G_SOCKET_LISTENER(http->service));
    g_object_unref(http->service);
    /* Connections still open are SoupServer's; it closes them as it goes. */
    GHashTableIter iter;
    gpointer connection;
    g_hash_table_iter_init(&iter, http->connections);
    while (g_hash_table_iter_next(&iter, &connection, NULL))
        g_object_weak_unref(G_OBJECT(connection), on_connection_gone, http);
    g_hash_table_destroy(http->connections);
    soup_server_disconnect(http->server);
    g_object_unref(http->server);
    g_free(http);
}

int http_port(const http_t *http)
{
    return http->port;
}

unsigned http_connection_count(const http_t *http)
{
    return g_hash_table_size(http->connections);
}
