/* The stream parser (core/stream.c) and the rewrite (core/wire.c), fed
 * bytes as a server would send them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>
#include <glib.h>

#include "stream.h"
#include "wire.h"

#define HEADER                                                                    \
    "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' "        \
    "xmlns:stream='http://etherx.jabber.org/streams' from='proxy.example.org' " \
    "id='abc123'>"

/* What the events reported, one line each. */
static GString *events_log;
static GPtrArray *stanza_bytes; /* each stanza's bytes, or "(dropped)" */

static void on_opened(const char *id, void *data)
{
    (void)data;
    g_string_append_printf(events_log, "opened %s\n", id ? id : "-");
}

static void on_authenticated(void *data)
{
    (void)data;
    g_string_append(events_log, "authenticated\n");
}

static void on_stanza(const wire_stanza_t *s, void *data)
{
    (void)data;
    g_string_append_printf(events_log, "%s from=%s to=%s id=%s type=%s payload=%s ns=%s\n",
                           s->name, s->from ? s->from : "-", s->to ? s->to : "-",
                           s->id ? s->id : "-", s->type ? s->type : "-",
                           s->has_payload ? "yes" : "no", s->payload_ns ? s->payload_ns : "-");
    g_ptr_array_add(stanza_bytes,
                    s->bytes ? g_strndup(s->bytes, s->length) : g_strdup("(dropped)"));
}

static void on_error(const char *condition, const char *text, void *data)
{
    (void)data;
    g_string_append_printf(events_log, "error %s: %s\n", condition ? condition : "-",
                           text ? text : "-");
}

static const stream_events_t events = {on_opened, on_authenticated, on_stanza, on_error, NULL};

static int setup(void **state)
{
    (void)state;
    events_log = g_string_new(NULL);
    stanza_bytes = g_ptr_array_new_with_free_func(g_free);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    g_string_free(events_log, TRUE);
    g_ptr_array_free(stanza_bytes, TRUE);
    return 0;
}

/* Feeds TEXT to a new parser in pieces of PIECE bytes; returns the status
 * after the last piece (or the first that was not STREAM_OK). */
static stream_status_t feed(const char *text, size_t piece, const char **problem)
{
    stream_parser_t *parser = stream_parser_new(&events);
    stream_status_t status = STREAM_OK;
    size_t length = strlen(text);
    for (size_t at = 0; at < length && status == STREAM_OK; at += piece)
        status = stream_parser_feed(parser, text + at, MIN(piece, length - at), problem);
    stream_parser_free(parser);
    return status;
}

static void stream__reports_the_header_the_handshake_and_stanzas(void **state)
{
    (void)state;
    static const char iq[] = "<iq type='get' id='q1' from='alice@example.org/phone' "
                             "to='proxy.example.org' xml:lang='en'>"
                             "<ping xmlns='urn:xmpp:ping'/></iq>";
    assert_int_equal(feed(HEADER "<handshake/>" "\n " "<iq type='get' id='q1' "
                          "from='alice@example.org/phone' to='proxy.example.org' "
                          "xml:lang='en'><ping xmlns='urn:xmpp:ping'/></iq>",
                          4096, NULL),
                     STREAM_OK);
    assert_string_equal(events_log->str,
                        "opened abc123\n"
                        "authenticated\n"
                        "iq from=alice@example.org/phone to=proxy.example.org id=q1 type=get "
                        "payload=yes ns=urn:xmpp:ping\n");
    assert_string_equal(stanza_bytes->pdata[0], iq);
}

static void stream__gives_the_same_stanzas_whatever_the_reads(void **state)
{
    (void)state;
    static const char body[] =
        "<handshake/><iq type='result' id='r1' from='service@example.org/w1' "
        "to='proxy.example.org/t1'/> <message from='a@b' id='m&amp;1'><body>x &lt; y"
        "</body></message><presence from='service@example.org/w2'><show>dnd</show>"
        "</presence>";
    assert_int_equal(feed(HEADER "<handshake/>" "<iq type='result' id='r1' "
                          "from='service@example.org/w1' to='proxy.example.org/t1'/> "
                          "<message from='a@b' id='m&amp;1'><body>x &lt; y</body></message>"
                          "<presence from='service@example.org/w2'><show>dnd</show>"
                          "</presence>",
                          4096, NULL),
                     STREAM_OK);
    g_autofree char *whole = g_strdup(events_log->str);
    assert_int_equal(stanza_bytes->len, 3);
    assert_string_equal(stanza_bytes->pdata[0],
                        "<iq type='result' id='r1' from='service@example.org/w1' "
                        "to='proxy.example.org/t1'/>");
    assert_string_equal(stanza_bytes->pdata[1],
                        "<message from='a@b' id='m&amp;1'><body>x &lt; y</body></message>");
    assert_non_null(strstr(whole, "message from=a@b to=- id=m&1 type=- payload=yes "
                                  "ns=jabber:component:accept\n"));

    /* A byte at a time: every stanza crosses reads. */
    for (size_t piece = 1; piece <= 7; piece += 3) {
        g_string_truncate(events_log, 0);
        g_ptr_array_set_size(stanza_bytes, 0);
        g_autofree char *text = g_strconcat(HEADER, body, NULL);
        assert_int_equal(feed(text, piece, NULL), STREAM_OK);
        assert_string_equal(events_log->str, whole);
        assert_string_equal(stanza_bytes->pdata[1],
                            "<message from='a@b' id='m&amp;1'><body>x &lt; y</body></message>");
    }
}

static void stream__finds_the_payload_namespace(void **state)
{
    (void)state;
    assert_int_equal(feed(HEADER
                          "<iq id='1' xmlns='jabber:component:accept'><a:q xmlns:a='urn:a'/></iq>"
                          "<iq id='2' xmlns='urn:stanza'><q/></iq>"
                          "<iq id='3'>text only</iq>"
                          "<iq id='4'><first xmlns='urn:first'/><second xmlns='urn:second'/></iq>",
                          4096, NULL),
                     STREAM_OK);
    assert_string_equal(events_log->str,
                        "opened abc123\n"
                        "iq from=- to=- id=1 type=- payload=yes ns=urn:a\n"
                        "iq from=- to=- id=2 type=- payload=yes ns=urn:stanza\n"
                        "iq from=- to=- id=3 type=- payload=no ns=-\n"
                        "iq from=- to=- id=4 type=- payload=yes ns=urn:first\n");
}

static void stream__reports_a_stream_error_and_the_close(void **state)
{
    (void)state;
    assert_int_equal(feed(HEADER "<stream:error><not-authorized "
                          "xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text "
                          "xmlns='urn:ietf:params:xml:ns:xmpp-streams'>wrong &amp; bad</text>"
                          "</stream:error></stream:stream>",
                          5, NULL),
                     STREAM_CLOSED);
    assert_string_equal(events_log->str, "opened abc123\nerror not-authorized: wrong & bad\n");
}

static void stream__refuses_what_is_not_an_xmpp_stream(void **state)
{
    (void)state;
    const char *problem = NULL;
    assert_int_equal(feed("<html><body/></html>", 4096, &problem), STREAM_BROKEN);
    assert_string_equal(problem, "the server did not open an XMPP stream");

    problem = NULL;
    assert_int_equal(feed("<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'aaaa'>]>" HEADER,
                          4096, &problem),
                     STREAM_BROKEN);
    assert_non_null(strstr(problem, "document type"));

    problem = NULL;
    assert_int_equal(feed(HEADER "<iq id='1'></message>", 4096, &problem), STREAM_BROKEN);
    assert_non_null(problem);
    assert_string_equal(events_log->str, "opened abc123\n");
}

static void stream__routes_an_oversized_stanza_by_its_attributes(void **state)
{
    (void)state;
    GString *text = g_string_new(HEADER "<iq type='get' id='big' from='a@b/c' to='p'><q "
                                        "xmlns='urn:big'>");
    while (text->len < WIRE_STANZA_MAX + 4096)
        g_string_append(text, "0123456789abcdef");
    g_string_append(text, "</q></iq><iq type='get' id='next' from='a@b/c' to='p'/>");
    assert_int_equal(feed(text->str, 64 * 1024, NULL), STREAM_OK);
    g_string_free(text, TRUE);
    assert_string_equal(events_log->str,
                        "opened abc123\n"
                        "iq from=a@b/c to=p id=big type=get payload=yes ns=urn:big\n"
                        "iq from=a@b/c to=p id=next type=get payload=no ns=-\n");
    assert_string_equal(stanza_bytes->pdata[0], "(dropped)");
    assert_string_equal(stanza_bytes->pdata[1], "<iq type='get' id='next' from='a@b/c' to='p'/>");
}

/* expat 2.6 and later defer re-parsing a token that a read left unfinished
 * until the bytes waiting have doubled: left on, that holds a start tag with
 * a large attribute, and every stanza behind it, until the server sends as
 * much again, which on a quiet stream may be never. */
static void stream__delivers_every_complete_stanza_by_the_end_of_its_feed(void **state)
{
    (void)state;
    static const char small[] = "<iq type='get' id='small' from='a@b/c' to='p'/>";
    GString *big = g_string_new("<iq type='get' id='big' from='a@b/c' to='p' pad='");
    for (int i = 0; i < 200 * 1024 / 16; i++)
        g_string_append(big, "0123456789abcdef");
    g_string_append(big, "'/>");
    /* The start tag over three reads, the last with a whole stanza after it.
     * expat makes no progress in the second, so it defers the third. */
    size_t cut1 = 64 * 1024, cut2 = big->len - 16 * 1024;
    GString *feeds[] = {g_string_new(HEADER), g_string_new(NULL), g_string_new(NULL)};
    g_string_append_len(feeds[0], big->str, (gssize)cut1);
    g_string_append_len(feeds[1], big->str + cut1, (gssize)(cut2 - cut1));
    g_string_append(feeds[2], big->str + cut2);
    g_string_append(feeds[2], small);

    stream_parser_t *parser = stream_parser_new(&events);
    for (size_t i = 0; i < G_N_ELEMENTS(feeds); i++) {
        assert_int_equal(stream_parser_feed(parser, feeds[i]->str, feeds[i]->len, NULL),
                         STREAM_OK);
        assert_int_equal(stanza_bytes->len, i + 1 < G_N_ELEMENTS(feeds) ? 0 : 2);
        g_string_free(feeds[i], TRUE);
    }
    assert_string_equal(stanza_bytes->pdata[0], big->str);
    assert_string_equal(stanza_bytes->pdata[1], small);
    stream_parser_free(parser);
    g_string_free(big, TRUE);
}

/* expat holds an unfinished token whole and, without deferral, scans it
 * again on every read: a tag longer than any stanza may be breaks the
 * stream, so that neither memory nor that work grows without end. */
static void stream__refuses_a_tag_longer_than_a_stanza_may_be(void **state)
{
    (void)state;
    GString *text = g_string_new(HEADER "<iq type='get' id='huge' pad='");
    while (text->len < WIRE_STANZA_MAX + 64 * 1024)
        g_string_append(text, "0123456789abcdef");
    const char *problem = NULL;
    assert_int_equal(feed(text->str, 64 * 1024, &problem), STREAM_BROKEN);
    g_string_free(text, TRUE);
    assert_non_null(strstr(problem, "longer than a stanza may be"));
    assert_string_equal(events_log->str, "opened abc123\n");
}

static void rewrite(const char *stanza, const char *from, const char *to, const char *expected)
{
    GString *out = g_string_new(NULL);
    wire_rewrite(out, stanza, strlen(stanza), from, to);
    assert_string_equal(out->str, expected);
    g_string_free(out, TRUE);
}

static void wire__rewrites_the_addresses_and_keeps_the_rest(void **state)
{
    (void)state;
    rewrite("<iq type='get' from='a@b/c' id=\"x'1\" to='p.example' xml:lang='en'>"
            "<q xmlns='urn:q' to='inner'/></iq>",
            "p.example/t1", "s@example/w1",
            "<iq type='get' id=\"x'1\" xml:lang='en' from='p.example/t1' to='s@example/w1'>"
            "<q xmlns='urn:q' to='inner'/></iq>");
    /* Self-closing, odd spacing, the stream's namespace repeated. */
    rewrite("<iq\n type = 'result'\tid='r'  xmlns='jabber:component:accept' to='p/t'"
            " from='s@e/w' />",
            "p", "a@b/c", "<iq type = 'result' id='r' from='p' to='a@b/c'/>");
    /* Another namespace is kept; the new addresses are escaped. */
    rewrite("<message xmlns='jabber:client' from='x'>hi</message>", "p/<&'\">", "a&b",
            "<message xmlns='jabber:client' from='p/&lt;&amp;&apos;&quot;&gt;' "
            "to='a&amp;b'>hi</message>");
}

static void wire__escapes_what_xml_needs(void **state)
{
    (void)state;
    GString *out = g_string_new("x");
    wire_append_escaped(out, "a<b>c&d'e\"f");
    assert_string_equal(out->str, "xa&lt;b&gt;c&amp;d&apos;e&quot;f");
    g_string_free(out, TRUE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(stream__reports_the_header_the_handshake_and_stanzas,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(stream__gives_the_same_stanzas_whatever_the_reads, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(stream__finds_the_payload_namespace, setup, teardown),
        cmocka_unit_test_setup_teardown(stream__reports_a_stream_error_and_the_close, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(stream__refuses_what_is_not_an_xmpp_stream, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(stream__routes_an_oversized_stanza_by_its_attributes,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            stream__delivers_every_complete_stanza_by_the_end_of_its_feed, setup, teardown),
        cmocka_unit_test_setup_teardown(stream__refuses_a_tag_longer_than_a_stanza_may_be, setup,
                                        teardown),
        cmocka_unit_test(wire__rewrites_the_addresses_and_keeps_the_rest),
        cmocka_unit_test(wire__escapes_what_xml_needs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
