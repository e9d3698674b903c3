/* core/connection.c against a scripted XEP-0114 server on loopback: a
 * thread that plays the server's side of one stream byte for byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "config.h"
#include "connection.h"
#include "unit-helpers.h"

#define SERVER_HEADER                                                                      \
    "<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' " \
    "xmlns='jabber:component:accept' id='s1' from='proxy.example.org'>"
#define REQUEST                                                                  \
    "<iq type='get' id='q1' from='alice@example.org/phone' to='proxy.example.org'>" \
    "<ping xmlns='urn:xmpp:ping'/></iq>"
#define REPLY "<iq type='result' id='q1' from='proxy.example.org' to='alice@example.org/phone'/>"

/* What the scripted server sends once the component is authenticated, in
 * one write, and whether it closes the socket after it. */
typedef struct script {
    int listener;
    const char *after_handshake;
} script_t;

/* Reads from FD until TEXT has been seen (or the peer closes). */
static void read_until(int fd, const char *text)
{
    GString *seen = g_string_new(NULL);
    char buffer[4096];
    while (!strstr(seen->str, text)) {
        ssize_t n = read(fd, buffer, sizeof buffer);
        if (n <= 0)
            break;
        g_string_append_len(seen, buffer, n);
    }
    g_string_free(seen, TRUE);
}

static void write_all(int fd, const char *text)
{
    size_t length = strlen(text);
    assert_int_equal(write(fd, text, length), (ssize_t)length);
}

static gpointer serve(gpointer data)
{
    script_t *script = data;
    int fd = accept(script->listener, NULL, NULL);
    assert_true(fd >= 0);
    read_until(fd, "<stream:stream");
    write_all(fd, SERVER_HEADER);
    read_until(fd, "</handshake>");
    write_all(fd, "<handshake/>");
    write_all(fd, script->after_handshake);
    close(fd); /* the server is gone: whatever the component writes now is lost */
    return NULL;
}

/* A listener on a free 127.0.0.1 port; its port into *PORT. */
static int listen_on_loopback(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&address, sizeof address), 0);
    assert_int_equal(listen(fd, 1), 0);
    socklen_t length = sizeof address;
    getsockname(fd, (struct sockaddr *)&address, &length);
    *port = ntohs(address.sin_port);
    return fd;
}

typedef struct observed {
    GMainLoop *loop;
    connection_t *connection;
    bool reply_to_requests;
    int stanzas;
    GString *unsent;
    bool down;
} observed_t;

static void on_up(void *data)
{
    (void)data;
}

static void on_down(const char *unsent, size_t length, void *data)
{
    observed_t *seen = data;
    seen->down = true;
    g_string_append_len(seen->unsent, unsent, (gssize)length);
    g_main_loop_quit(seen->loop);
}

static void on_stanza(const wire_stanza_t *stanza, void *data)
{
    observed_t *seen = data;
    seen->stanzas++;
    if (seen->reply_to_requests && strcmp(stanza->name, "iq") == 0)
        connection_send(seen->connection, REPLY, strlen(REPLY));
}

static void on_closed(void *data)
{
    (void)data;
}

static gboolean give_up(gpointer data)
{
    g_main_loop_quit(data);
    return G_SOURCE_REMOVE;
}

/* Runs one stream against SCRIPT's server; SEEN records what happened. */
static void run_stream(const char *after_handshake, observed_t *seen)
{
    int port;
    script_t script = {.listener = listen_on_loopback(&port), .after_handshake = after_handshake};
    g_autofree char *text = g_strdup_printf("[component]\ndomain = proxy.example.org\n"
                                            "secret = s\nport = %d\nreconnect_initial = 60\n"
                                            "[proxy]\ntarget = service@example.org\n",
                                            port);
    g_autofree char *path = write_temp_file(text);
    g_autoptr(config_t) config = config_load(path, NULL);
    g_unlink(path);
    assert_non_null(config);

    GThread *server = g_thread_new("server", serve, &script);
    seen->loop = g_main_loop_new(NULL, FALSE);
    seen->unsent = g_string_new(NULL);
    const connection_callbacks_t callbacks = {
        .up = on_up, .down = on_down, .stanza = on_stanza, .closed = on_closed, .userdata = seen};
    seen->connection = connection_new(config, &callbacks);
    connection_start(seen->connection);
    guint bound = g_timeout_add_seconds(10, give_up, seen->loop);
    g_main_loop_run(seen->loop);
    g_source_remove(bound);
    g_thread_join(server);
    connection_free(seen->connection);
    g_main_loop_unref(seen->loop);
    close(script.listener);
}

/* Audit, issue 10 #7: the server sends a request and closes in the same
 * read; the reply routed from that read would go to a closed socket.  It
 * comes back to the caller instead, for the next stream. */
static void connection__gives_back_what_it_routed_in_the_read_that_ended_the_stream(
    void **state)
{
    (void)state;
    observed_t seen = {.reply_to_requests = true};
    run_stream(REQUEST "</stream:stream>", &seen);
    assert_true(seen.down);
    assert_int_equal(seen.stanzas, 1);
    assert_string_equal(seen.unsent->str, REPLY);
    g_string_free(seen.unsent, TRUE);
}

static void connection__gives_back_nothing_when_nothing_was_routed(void **state)
{
    (void)state;
    observed_t seen = {.reply_to_requests = false};
    run_stream(REQUEST "</stream:stream>", &seen);
    assert_true(seen.down);
    assert_int_equal(seen.stanzas, 1);
    assert_string_equal(seen.unsent->str, "");
    g_string_free(seen.unsent, TRUE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            connection__gives_back_what_it_routed_in_the_read_that_ended_the_stream),
        cmocka_unit_test(connection__gives_back_nothing_when_nothing_was_routed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
