/* core/stanza.c: the stanzas core writes itself, and reading one in depth.
 * What is written is read back with libstrophe, another parser than
 * core's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>
#include <strophe.h>

#include "stanza.h"

static xmpp_ctx_t *ctx;

static int setup(void **state)
{
    (void)state;
    xmpp_initialize();
    ctx = xmpp_ctx_new(NULL, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    xmpp_ctx_free(ctx);
    xmpp_shutdown();
    return 0;
}

static xmpp_stanza_t *read_back(GString *out)
{
    xmpp_stanza_t *stanza = xmpp_stanza_new_from_string(ctx, out->str);
    assert_non_null(stanza);
    return stanza;
}

static void stanza_write_error__writes_an_rfc6120_error_with_every_value_escaped(void **state)
{
    (void)state;
    GString *out = g_string_new(NULL);
    const stanza_error_t error = {"cancel", "service-unavailable", "a <b> & 'c' \"d\""};
    stanza_write_error(out, "iq", "proxy.example.org", "al'ice@example.org/<x>", "i&d", &error);
    xmpp_stanza_t *stanza = read_back(out);
    assert_string_equal(xmpp_stanza_get_name(stanza), "iq");
    assert_string_equal(xmpp_stanza_get_type(stanza), "error");
    assert_string_equal(xmpp_stanza_get_id(stanza), "i&d");
    assert_string_equal(xmpp_stanza_get_from(stanza), "proxy.example.org");
    assert_string_equal(xmpp_stanza_get_to(stanza), "al'ice@example.org/<x>");
    xmpp_stanza_t *e = xmpp_stanza_get_child_by_name(stanza, "error");
    assert_string_equal(xmpp_stanza_get_attribute(e, "type"), "cancel");
    assert_non_null(xmpp_stanza_get_child_by_name_and_ns(e, "service-unavailable",
                                                         STANZA_ERRORS_NS));
    char *text = xmpp_stanza_get_text(xmpp_stanza_get_child_by_name(e, "text"));
    assert_string_equal(text, "a <b> & 'c' \"d\"");
    xmpp_free(ctx, text);
    xmpp_stanza_release(stanza);
    g_string_free(out, TRUE);
}

static void stanza_write_error__leaves_out_an_absent_id_and_text(void **state)
{
    (void)state;
    GString *out = g_string_new(NULL);
    const stanza_error_t error = {"modify", "bad-request", NULL};
    stanza_write_error(out, "message", "proxy.example.org", "bob@example.org", NULL, &error);
    assert_null(strstr(out->str, "id="));
    assert_null(strstr(out->str, "<text"));
    xmpp_stanza_release(read_back(out));
    g_string_free(out, TRUE);
}

static void stanza_write_presence_and_ping__are_what_xmpp_expects(void **state)
{
    (void)state;
    GString *out = g_string_new(NULL);
    stanza_write_presence(out, "probe", "proxy.example.org", "service@example.org");
    assert_string_equal(out->str,
                        "<presence type='probe' from='proxy.example.org' to='service@example.org'/>");
    g_string_truncate(out, 0);
    stanza_write_presence(out, NULL, "proxy.example.org", "service@example.org");
    assert_string_equal(out->str, "<presence from='proxy.example.org' to='service@example.org'/>");
    g_string_truncate(out, 0);
    stanza_write_ping(out, "cp-health-1", "proxy.example.org", "service@example.org/w");
    xmpp_stanza_t *ping = read_back(out);
    assert_string_equal(xmpp_stanza_get_type(ping), "get");
    assert_non_null(xmpp_stanza_get_child_by_name_and_ns(ping, "ping", STANZA_PING_NS));
    xmpp_stanza_release(ping);
    g_string_free(out, TRUE);
}

static void stanza_parse__reads_children_text_namespaces_and_errors(void **state)
{
    (void)state;
    const char *xml = "<iq type='error' id='1' from='a@b/c'>"
                      "<query xmlns='urn:x' node='n'/>"
                      "<error type='cancel'><feature-not-implemented "
                      "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
                      "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>no &amp; never</text>"
                      "</error></iq>";
    g_autoptr(stanza_element_t) tree = stanza_parse(xml, strlen(xml));
    assert_non_null(tree);
    assert_string_equal(tree->name, "iq");
    assert_null(tree->ns);
    assert_string_equal(stanza_attribute(tree, "id"), "1");
    const stanza_element_t *query = stanza_child(tree, "query", "urn:x");
    assert_non_null(query);
    assert_string_equal(stanza_attribute(query, "node"), "n");
    assert_null(stanza_child(tree, "query", "urn:y"));
    const char *type = NULL;
    assert_string_equal(stanza_error_condition(tree, &type), "feature-not-implemented");
    assert_string_equal(type, "cancel");
    const stanza_element_t *error = stanza_child(tree, "error", NULL);
    assert_string_equal(stanza_child_text(error, "text"), "no & never");
}

static void stanza_parse__refuses_what_is_not_one_well_formed_element(void **state)
{
    (void)state;
    const char *const bad[] = {"", "<a>", "<a/><b/>", "<a></b>", "text",
                               "<!DOCTYPE a [<!ENTITY x 'y'>]><a>&x;</a>", "<p:a/>"};
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++)
        assert_null(stanza_parse(bad[i], strlen(bad[i])));
    assert_null(stanza_parse(NULL, 0));
}

/* Nested elements as deep as DEPTH: <a><a>...</a></a>. */
static GString *nested(size_t depth)
{
    GString *xml = g_string_new(NULL);
    for (size_t i = 0; i < depth; i++)
        g_string_append(xml, "<a>");
    for (size_t i = 0; i < depth; i++)
        g_string_append(xml, "</a>");
    return xml;
}

static void stanza_parse__refuses_a_tree_deeper_than_the_cap_without_exhausting_the_stack(
    void **state)
{
    (void)state;
    /* 140,000 levels fit under WIRE_STANZA_MAX and used to overflow the
     * stack when the tree was freed. */
    g_autoptr(GString) deep = nested(140000);
    assert_null(stanza_parse(deep->str, deep->len));

    g_autoptr(GString) deepest_allowed = nested(STANZA_DEPTH_MAX);
    g_autoptr(stanza_element_t) tree = stanza_parse(deepest_allowed->str, deepest_allowed->len);
    assert_non_null(tree);
    g_autoptr(GString) one_too_deep = nested(STANZA_DEPTH_MAX + 1);
    assert_null(stanza_parse(one_too_deep->str, one_too_deep->len));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stanza_write_error__writes_an_rfc6120_error_with_every_value_escaped),
        cmocka_unit_test(stanza_write_error__leaves_out_an_absent_id_and_text),
        cmocka_unit_test(stanza_write_presence_and_ping__are_what_xmpp_expects),
        cmocka_unit_test(stanza_parse__reads_children_text_namespaces_and_errors),
        cmocka_unit_test(stanza_parse__refuses_what_is_not_one_well_formed_element),
        cmocka_unit_test(
            stanza_parse__refuses_a_tree_deeper_than_the_cap_without_exhausting_the_stack),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
