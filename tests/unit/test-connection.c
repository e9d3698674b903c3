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

/* What the scripted server does once the component is authenticated, step
 * by step; then it closes the socket. */
typedef enum step_kind {
    STEP_END,
    STEP_WRITE,      /* TEXT, in one write */
    STEP_READ_UNTIL, /* reads until TEXT has been seen */
    STEP_READ_ONCE,  /* one read: what it brought is kept in first_read */
    STEP_PAUSE,      /* 50 ms without writing: the next write comes alone */
} step_kind_t;

typedef struct step {
    step_kind_t kind;
    const char *text;
} step_t;

typedef struct script {
    int listener;
    const step_t *steps;
    GString *first_read; /* what the STEP_READ_ONCE read brought */
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
    g_assert(write(fd, text, length) == (ssize_t)length);
}

/* The server's side, in its own thread: cmocka's asserts belong to the
 * test's thread, so this one only records what it saw. */
static gpointer serve(gpointer data)
{
    script_t *script = data;
    int fd = accept(script->listener, NULL, NULL);
    g_assert(fd >= 0);
    read_until(fd, "<stream:stream");
    write_all(fd, SERVER_HEADER);
    read_until(fd, "</handshake>");
    write_all(fd, "<handshake/>");
    for (const step_t *step = script->steps; step->kind != STEP_END; step++) {
        if (step->kind == STEP_WRITE) {
            write_all(fd, step->text);
        } else if (step->kind == STEP_READ_UNTIL) {
            read_until(fd, step->text);
        } else if (step->kind == STEP_PAUSE) {
            g_usleep(50 * 1000);
        } else {
            char buffer[64 * 1024];
            ssize_t n = read(fd, buffer, sizeof buffer);
            if (n > 0)
                g_string_append_len(script->first_read, buffer, n);
        }
    }
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
    unsigned coalesce_ms;   /* what the connection hears when it asks */
    int reads;              /* how often it asked: once per read that brought bytes */
    int read_of_stanza[64]; /* for each stanza, the number of the read that brought it */
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
    if (seen->stanzas < (int)G_N_ELEMENTS(seen->read_of_stanza))
        seen->read_of_stanza[seen->stanzas] = seen->reads;
    seen->stanzas++;
    if (seen->reply_to_requests && strcmp(stanza->name, "iq") == 0)
        connection_send(seen->connection, REPLY, strlen(REPLY));
}

static void on_closed(void *data)
{
    (void)data;
}

static unsigned coalesce_ms(void *data)
{
    observed_t *seen = data;
    seen->reads++;
    return seen->coalesce_ms;
}

static gboolean give_up(gpointer data)
{
    g_main_loop_quit(data);
    return G_SOURCE_REMOVE;
}

/* Runs one stream against a server that takes STEPS; SEEN records what
 * happened, and FIRST_READ (may be NULL) what the server's STEP_READ_ONCE
 * read brought. */
static void run_script(const step_t *steps, observed_t *seen, GString *first_read)
{
    int port;
    script_t script = {.listener = listen_on_loopback(&port), .steps = steps,
                       .first_read = first_read};
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
    const connection_callbacks_t callbacks = {.up = on_up,
                                              .down = on_down,
                                              .stanza = on_stanza,
                                              .closed = on_closed,
                                              .coalesce_ms = coalesce_ms,
                                              .userdata = seen};
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

/* A server that sends AFTER_HANDSHAKE in one write and closes. */
static void run_stream(const char *after_handshake, observed_t *seen)
{
    const step_t steps[] = {{STEP_WRITE, after_handshake}, {STEP_END, NULL}};
    run_script(steps, seen, NULL);
}

/* COUNT requests with ids q0, q1...: the stanzas of one write. */
static char *requests(int count)
{
    GString *out = g_string_new(NULL);
    for (int i = 0; i < count; i++)
        g_string_append_printf(out,
                               "<iq type='get' id='q%d' from='alice@example.org/phone' "
                               "to='proxy.example.org'><ping xmlns='urn:xmpp:ping'/></iq>",
                               i);
    return g_string_free(out, FALSE);
}

static int occurrences(const char *haystack, const char *needle)
{
    int count = 0;
    for (const char *at = strstr(haystack, needle); at; at = strstr(at + 1, needle))
        count++;
    return count;
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

/* Many stanzas in one read are all handed over, and the replies to them,
 * queued while they were, leave in one write: the server's first read has
 * every one of them. */
static void connection__answers_a_read_of_many_stanzas_with_one_write(void **state)
{
    (void)state;
    enum { COUNT = 40 };
    g_autofree char *burst = requests(COUNT);
    const step_t steps[] = {
        {STEP_WRITE, burst},
        {STEP_READ_ONCE, NULL},
        {STEP_WRITE, "</stream:stream>"},
        {STEP_END, NULL},
    };
    observed_t seen = {.reply_to_requests = true};
    GString *first_read = g_string_new(NULL);
    run_script(steps, &seen, first_read);
    assert_true(seen.down);
    assert_int_equal(seen.stanzas, COUNT);
    assert_int_equal(occurrences(first_read->str, REPLY), COUNT);
    g_string_free(first_read, TRUE);
    g_string_free(seen.unsent, TRUE);
}

/* While requests queue up, input may gather before it is read: every
 * stanza still arrives, every reply still leaves, and the end of the
 * stream is still noticed, however the stanzas come. */
static void connection__loses_nothing_while_requests_queue_up(void **state)
{
    (void)state;
    enum { COUNT = 20 };
    g_autofree char *burst = requests(COUNT);
    GString *replies = g_string_new(NULL);
    for (int i = 0; i < COUNT; i++)
        g_string_append(replies, REPLY);
    /* Requests one by one, each as soon as the last was answered, then
     * a burst, then the end of the stream right behind a last request. */
    const step_t steps[] = {
        {STEP_WRITE, REQUEST}, {STEP_READ_UNTIL, REPLY},
        {STEP_WRITE, REQUEST}, {STEP_READ_UNTIL, REPLY},
        {STEP_WRITE, REQUEST}, {STEP_READ_UNTIL, REPLY},
        {STEP_WRITE, burst},   {STEP_READ_UNTIL, replies->str},
        {STEP_WRITE, REQUEST}, {STEP_WRITE, "</stream:stream>"},
        {STEP_END, NULL},
    };
    observed_t seen = {.reply_to_requests = true, .coalesce_ms = 1};
    run_script(steps, &seen, NULL);
    assert_true(seen.down);
    assert_int_equal(seen.stanzas, 3 + COUNT + 1);
    g_string_free(replies, TRUE);
    g_string_free(seen.unsent, TRUE);
}

/* Once stanzas come faster than the window is long, the ones that follow
 * gather while it is open and are read together: three requests written
 * 50 ms apart inside a 1 s window come in one read.  Read as they come,
 * each would be a read (a wake-up) of its own. */
static void connection__reads_what_gathered_in_the_window_at_once(void **state)
{
    (void)state;
    g_autofree char *three_replies = g_strconcat(REPLY, REPLY, REPLY, NULL);
    const step_t steps[] = {
        {STEP_WRITE, REQUEST}, {STEP_READ_UNTIL, REPLY},
        /* the second request, soon after the first, opens the window */
        {STEP_WRITE, REQUEST}, {STEP_READ_UNTIL, REPLY},
        {STEP_WRITE, REQUEST}, {STEP_PAUSE, NULL},
        {STEP_WRITE, REQUEST}, {STEP_PAUSE, NULL},
        {STEP_WRITE, REQUEST}, {STEP_READ_UNTIL, three_replies},
        {STEP_WRITE, "</stream:stream>"},
        {STEP_END, NULL},
    };
    observed_t seen = {.reply_to_requests = true, .coalesce_ms = 1000};
    run_script(steps, &seen, NULL);
    assert_true(seen.down);
    assert_int_equal(seen.stanzas, 5);
    assert_int_not_equal(seen.read_of_stanza[0], seen.read_of_stanza[1]);
    assert_int_not_equal(seen.read_of_stanza[1], seen.read_of_stanza[2]);
    assert_int_equal(seen.read_of_stanza[2], seen.read_of_stanza[3]);
    assert_int_equal(seen.read_of_stanza[3], seen.read_of_stanza[4]);
    g_string_free(seen.unsent, TRUE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            connection__gives_back_what_it_routed_in_the_read_that_ended_the_stream),
        cmocka_unit_test(connection__gives_back_nothing_when_nothing_was_routed),
        cmocka_unit_test(connection__answers_a_read_of_many_stanzas_with_one_write),
        cmocka_unit_test(connection__loses_nothing_while_requests_queue_up),
        cmocka_unit_test(connection__reads_what_gathered_in_the_window_at_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
