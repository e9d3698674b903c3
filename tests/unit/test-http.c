/* core/http.c: /metrics and /health served in the main loop, and a cap on
 * the connections a client can hold open. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>
#include <gio/gio.h>

#include "http.h"

typedef struct fixture {
    http_t *http;
    bool healthy;
    GMainContext *context;
} fixture_t;

static void render(GString *out, void *userdata)
{
    (void)userdata;
    g_string_append(out, "# TYPE up gauge\nup 1\n");
}

static bool health(GString *reason, void *userdata)
{
    fixture_t *f = userdata;
    if (!f->healthy)
        g_string_append(reason, "the stream is down");
    return f->healthy;
}

static int setup(void **state)
{
    fixture_t *f = g_new0(fixture_t, 1);
    const http_handlers_t handlers = {render, health, f};
    g_autoptr(GError) error = NULL;
    f->http = http_new("127.0.0.1", 0, &handlers, &error);
    assert_non_null(f->http);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    http_free(f->http);
    g_free(f);
    return 0;
}

/* A wait that never ends is a failure, not a hang; the bound is far above
 * any slow machine's (valgrind's included), and is no timing assert. */
#define WAIT_BOUND_S 60

static gboolean on_wait_bound(gpointer data)
{
    *(bool *)data = true;
    return G_SOURCE_REMOVE;
}

/* Runs the default main context, as client-proxy's loop would, until
 * UNTIL(DATA) holds; fails the test past WAIT_BOUND_S. */
static void run_until(bool (*until)(void *data), void *data)
{
    bool bound_hit = false;
    guint bound = g_timeout_add_seconds(WAIT_BOUND_S, on_wait_bound, &bound_hit);
    while (!until(data) && !bound_hit)
        g_main_context_iteration(NULL, TRUE);
    if (bound_hit)
        fail_msg("waited %d s for the listener", WAIT_BOUND_S);
    g_source_remove(bound);
}

static bool is_set(void *data)
{
    return *(bool *)data;
}

typedef struct connection_count {
    http_t *http;
    unsigned at_least, below;
} connection_count_t;

static bool count_reached(void *data)
{
    const connection_count_t *count = data;
    unsigned n = http_connection_count(count->http);
    return n >= count->at_least && n < count->below;
}

typedef struct exchange {
    GSocketConnection *connection;
    GString *received;
    bool done;
    char buffer[4096];
} exchange_t;

static void on_read(GObject *source, GAsyncResult *result, gpointer data)
{
    exchange_t *exchange = data;
    gssize n = g_input_stream_read_finish(G_INPUT_STREAM(source), result, NULL);
    if (n <= 0) {
        exchange->done = true;
        return;
    }
    g_string_append_len(exchange->received, exchange->buffer, n);
    g_input_stream_read_async(G_INPUT_STREAM(source), exchange->buffer, sizeof exchange->buffer,
                              G_PRIORITY_DEFAULT, NULL, on_read, exchange);
}

static GSocketConnection *connect_to(fixture_t *f)
{
    g_autoptr(GSocketClient) client = g_socket_client_new();
    g_autoptr(GError) error = NULL;
    g_autofree char *where = g_strdup_printf("127.0.0.1:%d", http_port(f->http));
    GSocketConnection *connection = g_socket_client_connect_to_host(client, where, 0, NULL, &error);
    assert_non_null(connection);
    return connection;
}

/* Sends REQUEST on a new connection and reads until the server closes it
 * (Connection: close).  Returns what came back (g_free it). */
static char *exchange(fixture_t *f, const char *request)
{
    exchange_t exchange = {.connection = connect_to(f), .received = g_string_new(NULL)};
    GOutputStream *out = g_io_stream_get_output_stream(G_IO_STREAM(exchange.connection));
    g_output_stream_write_all(out, request, strlen(request), NULL, NULL, NULL);
    GInputStream *in = g_io_stream_get_input_stream(G_IO_STREAM(exchange.connection));
    g_input_stream_read_async(in, exchange.buffer, sizeof exchange.buffer, G_PRIORITY_DEFAULT, NULL,
                              on_read, &exchange);
    run_until(is_set, &exchange.done);
    g_object_unref(exchange.connection);
    return g_string_free(exchange.received, FALSE);
}

static void http__serves_metrics_and_health(void **state)
{
    fixture_t *f = *state;
    g_autofree char *metrics =
        exchange(f, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_non_null(strstr(metrics, "HTTP/1.1 200"));
    assert_non_null(strstr(metrics, "text/plain; version=0.0.4"));
    assert_non_null(strstr(metrics, "\r\n\r\n# TYPE up gauge\nup 1\n"));

    f->healthy = false;
    g_autofree char *sick = exchange(f, "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_non_null(strstr(sick, "HTTP/1.1 503"));
    assert_non_null(strstr(sick, "\r\n\r\nthe stream is down\n"));
    f->healthy = true;
    g_autofree char *well = exchange(f, "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_non_null(strstr(well, "HTTP/1.1 200"));
    assert_non_null(strstr(well, "\r\n\r\nok\n"));

    g_autofree char *post = exchange(f, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                                        "Connection: close\r\n\r\n");
    assert_non_null(strstr(post, "HTTP/1.1 405"));
    g_autofree char *other = exchange(f, "GET /other HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_non_null(strstr(other, "HTTP/1.1 404"));
}

/* Clients that connect and say nothing cannot take the listener: beyond
 * HTTP_MAX_CONNECTIONS a connection is closed at once, and one is served
 * again as soon as one of them leaves. */
static void http__refuses_connections_beyond_the_cap(void **state)
{
    fixture_t *f = *state;
    GSocketConnection *idle[HTTP_MAX_CONNECTIONS];
    for (int i = 0; i < HTTP_MAX_CONNECTIONS; i++) {
        idle[i] = connect_to(f);
        connection_count_t accepted = {f->http, (unsigned)i + 1, G_MAXUINT};
        run_until(count_reached, &accepted);
    }
    assert_int_equal(http_connection_count(f->http), HTTP_MAX_CONNECTIONS);

    g_autofree char *refused =
        exchange(f, "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_string_equal(refused, ""); /* closed without an answer */

    g_io_stream_close(G_IO_STREAM(idle[0]), NULL, NULL);
    g_object_unref(idle[0]);
    connection_count_t room = {f->http, 0, HTTP_MAX_CONNECTIONS};
    run_until(count_reached, &room);
    f->healthy = true;
    g_autofree char *served =
        exchange(f, "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_non_null(strstr(served, "HTTP/1.1 200"));
    for (int i = 1; i < HTTP_MAX_CONNECTIONS; i++)
        g_object_unref(idle[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(http__serves_metrics_and_health, setup, teardown),
        cmocka_unit_test_setup_teardown(http__refuses_connections_beyond_the_cap, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
