/* core/admin.c: XEP-0050 commands for [admin] jids, with a real router
 * behind fake plugins.  What it sends is read back with libstrophe. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <strophe.h>

#include "admin.h"
#include "config.h"
#include "fake-plugins.h"
#include "router.h"
#include "stream.h"
#include "unit-helpers.h"

#define DOMAIN "proxy.example.org"
#define ADMIN "Admin@Example.org/laptop"

typedef struct fixture {
    xmpp_ctx_t *ctx;
    config_t *config;
    plugin_t *dispatch, *jat;
    metrics_t *metrics;
    router_t *router;
    admin_t *admin;
    GPtrArray *sent;       /* xmpp_stanza_t, what went out on the stream */
    int reloads;
    bool stream_up;
    bool reload_closes_stream; /* the reload changes [component], as a real one may */
} fixture_t;

static void fail_violation(const char *message)
{
    fail_msg("%s", message);
}

static void record(const char *bytes, size_t length, void *userdata)
{
    fixture_t *f = userdata;
    g_autofree char *text = g_strndup(bytes, length);
    xmpp_stanza_t *stanza = xmpp_stanza_new_from_string(f->ctx, text);
    assert_non_null(stanza);
    g_ptr_array_add(f->sent, stanza);
}

static bool reload(char **outcome, void *userdata)
{
    fixture_t *f = userdata;
    f->reloads++;
    if (f->reload_closes_stream) /* what the proxy's close_stream() does */
        router_disconnected(f->router, NULL, 0);
    *outcome = g_strdup("done; new requests use x and y");
    return true;
}

static bool stream_up(void *userdata)
{
    return ((fixture_t *)userdata)->stream_up;
}

static void release(gpointer stanza)
{
    xmpp_stanza_release(stanza);
}

static int setup(void **state)
{
    fake_world_reset(fail_violation);
    fixture_t *f = g_new0(fixture_t, 1);
    xmpp_initialize();
    f->ctx = xmpp_ctx_new(NULL, NULL);
    g_autofree char *path = write_temp_file(
        "[component]\ndomain = " DOMAIN "\nsecret = s\n[proxy]\ntarget = service@example.org\n"
        "[admin]\njids = admin@example.org; ops@example.org\n");
    f->config = config_load(path, NULL);
    g_unlink(path);
    assert_non_null(f->config);
    f->dispatch = plugin_new_builtin(f->config, &fake_dispatch_descriptor, NULL);
    f->jat = plugin_new_builtin(f->config, &fake_jat_descriptor, NULL);
    f->metrics = metrics_new();
    f->sent = g_ptr_array_new_with_free_func(release);
    const router_callbacks_t callbacks = {record, NULL, f, f->metrics};
    f->router = router_new(f->config, f->dispatch, f->jat, &callbacks);
    router_connected(f->router);
    const admin_callbacks_t admin_callbacks = {reload, stream_up, f};
    f->admin = admin_new(f->config, f->router, f->metrics, &admin_callbacks);
    f->stream_up = true;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    admin_free(f->admin);
    router_shutdown(f->router);
    router_free(f->router);
    metrics_free(f->metrics);
    plugin_unref(f->jat);
    plugin_unref(f->dispatch);
    config_free(f->config);
    g_ptr_array_free(f->sent, TRUE);
    xmpp_ctx_free(f->ctx);
    xmpp_shutdown();
    fake_world_clear();
    g_free(f);
    return 0;
}

typedef struct handling {
    fixture_t *f;
    bool handled;
} handling_t;

static void to_admin(const wire_stanza_t *stanza, void *data)
{
    handling_t *handling = data;
    handling->handled = admin_handle(handling->f->admin, stanza);
    if (!handling->handled)
        router_handle(handling->f->router, stanza);
}

/* Hands admin one stanza written as XML; returns whether it handled it. */
static bool receive(fixture_t *f, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static bool receive(fixture_t *f, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    g_autofree char *xml = g_strdup_vprintf(fmt, args);
    va_end(args);
    g_ptr_array_set_size(f->sent, 0);
    handling_t handling = {f, false};
    assert_int_equal(stream_parse_stanzas(xml, strlen(xml), to_admin, &handling), 1);
    return handling.handled;
}

static void online(fixture_t *f, const char *name)
{
    receive(f, "<presence from='service@example.org/%s' to='" DOMAIN "'/>", name);
}

static xmpp_stanza_t *only_sent(fixture_t *f)
{
    assert_int_equal(f->sent->len, 1);
    return f->sent->pdata[0];
}

static xmpp_stanza_t *command_of(xmpp_stanza_t *iq)
{
    assert_string_equal(xmpp_stanza_get_type(iq), "result");
    xmpp_stanza_t *command =
        xmpp_stanza_get_child_by_name_and_ns(iq, "command", ADMIN_COMMANDS_NS);
    assert_non_null(command);
    return command;
}

/* The value of field VAR of the first form in COMMAND, or NULL. */
static const char *form_value(fixture_t *f, xmpp_stanza_t *command, const char *var)
{
    xmpp_stanza_t *form = xmpp_stanza_get_child_by_name_and_ns(command, "x", "jabber:x:data");
    for (xmpp_stanza_t *field = form ? xmpp_stanza_get_children(form) : NULL; field;
         field = xmpp_stanza_get_next(field)) {
        if (g_strcmp0(xmpp_stanza_get_name(field), "field") == 0 &&
            g_strcmp0(xmpp_stanza_get_attribute(field, "var"), var) == 0) {
            char *text = xmpp_stanza_get_text(xmpp_stanza_get_child_by_name(field, "value"));
            static char kept[256];
            g_strlcpy(kept, text ? text : "", sizeof kept);
            xmpp_free(f->ctx, text);
            return kept;
        }
    }
    return NULL;
}

static void admin__lists_its_commands_to_admins_only(void **state)
{
    fixture_t *f = *state;
    assert_true(receive(f, "<iq type='get' id='d1' from='" ADMIN "' to='" DOMAIN "'>"
                           "<query xmlns='http://jabber.org/protocol/disco#items' "
                           "node='http://jabber.org/protocol/commands'/></iq>"));
    xmpp_stanza_t *query = xmpp_stanza_get_child_by_name(only_sent(f), "query");
    int items = 0;
    for (xmpp_stanza_t *item = xmpp_stanza_get_children(query); item;
         item = xmpp_stanza_get_next(item))
        items++;
    assert_int_equal(items, 5);
    assert_true(receive(f, "<iq type='get' id='d2' from='" ADMIN "' to='" DOMAIN "'>"
                           "<query xmlns='http://jabber.org/protocol/disco#info' node='status'/>"
                           "</iq>"));
    assert_string_equal(xmpp_stanza_get_attribute(
                            xmpp_stanza_get_child_by_name(
                                xmpp_stanza_get_child_by_name(only_sent(f), "query"), "identity"),
                            "type"),
                        "command-node");
    /* The service's own disco and commands reach it, admins' included. */
    assert_false(receive(f, "<iq type='get' id='d6' from='" ADMIN "' to='" DOMAIN "'>"
                            "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>"));
    assert_false(receive(f, "<iq type='set' id='d7' from='" ADMIN "' to='" DOMAIN "'>"
                            "<command xmlns='http://jabber.org/protocol/commands' "
                            "node='frobnicate'/></iq>"));
    /* Anyone else's go to the service, as before. */
    assert_false(receive(f, "<iq type='get' id='d3' from='mallory@example.org/x' to='" DOMAIN
                            "'><query xmlns='http://jabber.org/protocol/disco#items' "
                            "node='http://jabber.org/protocol/commands'/></iq>"));
    assert_false(receive(f, "<iq type='set' id='d4' from='mallory@example.org/x' to='" DOMAIN
                            "'><command xmlns='http://jabber.org/protocol/commands' "
                            "node='reload' action='execute'/></iq>"));
    assert_int_equal(f->reloads, 0);
    /* And so do an admin's requests to a resource of the domain. */
    assert_false(receive(f, "<iq type='set' id='d5' from='" ADMIN "' to='" DOMAIN "/x'>"
                            "<command xmlns='http://jabber.org/protocol/commands' "
                            "node='reload'/></iq>"));
}

static void admin__reports_status_and_resources(void **state)
{
    fixture_t *f = *state;
    online(f, "worker-1");
    online(f, "worker-2");
    assert_true(receive(f, "<iq type='set' id='s1' from='" ADMIN "' to='" DOMAIN "'>"
                           "<command xmlns='http://jabber.org/protocol/commands' node='status' "
                           "action='execute'/></iq>"));
    xmpp_stanza_t *command = command_of(only_sent(f));
    assert_string_equal(xmpp_stanza_get_attribute(command, "status"), "completed");
    assert_string_equal(form_value(f, command, "version"), CLIENT_PROXY_VERSION);
    assert_string_equal(form_value(f, command, "stream"), "up");
    assert_string_equal(form_value(f, command, "resources"), "2");
    assert_string_equal(form_value(f, command, "encoding"), "hmac");

    assert_true(receive(f, "<iq type='set' id='s2' from='" ADMIN "' to='" DOMAIN "'>"
                           "<command xmlns='http://jabber.org/protocol/commands' "
                           "node='resources'/></iq>"));
    command = command_of(only_sent(f));
    xmpp_stanza_t *form = xmpp_stanza_get_child_by_name_and_ns(command, "x", "jabber:x:data");
    int items = 0;
    for (xmpp_stanza_t *child = xmpp_stanza_get_children(form); child;
         child = xmpp_stanza_get_next(child))
        items += g_strcmp0(xmpp_stanza_get_name(child), "item") == 0;
    assert_int_equal(items, 2);
}

/* drain in two stages, as a client with a form would run it; then the
 * resource gets no new request, and undrain gives it back. */
static void admin__drains_and_undrains_a_resource(void **state)
{
    fixture_t *f = *state;
    online(f, "worker-1");
    assert_true(receive(f, "<iq type='set' id='r1' from='" ADMIN "' to='" DOMAIN "'>"
                           "<command xmlns='http://jabber.org/protocol/commands' node='drain' "
                           "action='execute'/></iq>"));
    xmpp_stanza_t *command = command_of(only_sent(f));
    assert_string_equal(xmpp_stanza_get_attribute(command, "status"), "executing");
    g_autofree char *session = g_strdup(xmpp_stanza_get_attribute(command, "sessionid"));
    assert_true(receive(f, "<iq type='set' id='r2' from='" ADMIN "' to='" DOMAIN "'>"
                           "<command xmlns='http://jabber.org/protocol/commands' node='drain' "
                           "sessionid='%s' action='complete'><x xmlns='jabber:x:data' "
                           "type='submit'><field var='resource'><value>worker-1</value></field>"
                           "</x></command></iq>",
                        session));
    command = command_of(only_sent(f));
    assert_string_equal(xmpp_stanza_get_attribute(command, "status"), "completed");
    assert_false(router_serving(f->router));
    /* The session is over. */
    assert_true(receive(f, "<iq type='set' id='r3' from='" ADMIN "' to='" DOMAIN "'>"
                           "<command xmlns='http://jabber.org/protocol/commands' node='drain' "
                           "sessionid='%s'/></iq>",
                        session));
    assert_string_equal(xmpp_stanza_get_type(only_sent(f)), "error");
    /* One stage: the form along with execute. */
    assert_true(receive(f, "<iq type='set' id='r4' from='" ADMIN "' to='" DOMAIN "'>"
                           "<command xmlns='http://jabber.org/protocol/commands' "
                           "node='undrain'><x xmlns='jabber:x:data' type='submit'>"
                           "<field var='resource'><value>worker-1</value></field></x>"
                           "</command></iq>"));
    assert_true(router_serving(f->router));
}

/* Review: a session goes on only from the JID that started it, on its node
 * (XEP-0050 ties a session to its requester). */
static void admin__keeps_a_session_to_the_admin_and_the_command_that_started_it(void **state)
{
    fixture_t *f = *state;
    online(f, "worker-1");
    assert_true(receive(f, "<iq type='set' id='r1' from='" ADMIN "' to='" DOMAIN "'>"
                           "<command xmlns='http://jabber.org/protocol/commands' node='drain' "
                           "action='execute'/></iq>"));
    g_autofree char *session =
        g_strdup(xmpp_stanza_get_attribute(command_of(only_sent(f)), "sessionid"));
    const char *const others[][2] = {{"ops@example.org/phone", "drain"}, {ADMIN, "undrain"}};
    for (size_t i = 0; i < G_N_ELEMENTS(others); i++) {
        assert_true(receive(f, "<iq type='set' id='r2' from='%s' to='" DOMAIN "'>"
                               "<command xmlns='http://jabber.org/protocol/commands' node='%s' "
                               "sessionid='%s' action='complete'><x xmlns='jabber:x:data' "
                               "type='submit'><field var='resource'><value>worker-1</value>"
                               "</field></x></command></iq>",
                            others[i][0], others[i][1], session));
        assert_string_equal(xmpp_stanza_get_type(only_sent(f)), "error");
    }
    assert_true(router_serving(f->router));
    assert_true(receive(f, "<iq type='set' id='r3' from='" ADMIN "' to='" DOMAIN "'>"
                           "<command xmlns='http://jabber.org/protocol/commands' node='drain' "
                           "sessionid='%s' action='complete'><x xmlns='jabber:x:data' "
                           "type='submit'><field var='resource'><value>worker-1</value>"
                           "</field></x></command></iq>",
                        session));
    assert_string_equal(xmpp_stanza_get_attribute(command_of(only_sent(f)), "status"),
                        "completed");
    assert_false(router_serving(f->router));
}

static void admin__reloads_and_says_how_it_went(void **state)
{
    fixture_t *f = *state;
    assert_true(receive(f, "<iq type='set' id='l1' from='ops@example.org/phone' to='" DOMAIN
                           "'><command xmlns='http://jabber.org/protocol/commands' "
                           "node='reload' action='execute'/></iq>"));
    assert_int_equal(f->reloads, 1);
    xmpp_stanza_t *command = command_of(only_sent(f));
    xmpp_stanza_t *said = xmpp_stanza_get_child_by_name(command, "note");
    char *text = xmpp_stanza_get_text(said);
    assert_string_equal(text, "done; new requests use x and y");
    xmpp_free(f->ctx, text);
}

/* A reload that changes [component] closes the stream before the answer is
 * written: the answer waits for the next stream rather than being lost. */
static void admin__answers_a_reload_that_closes_the_stream_on_the_next_one(void **state)
{
    fixture_t *f = *state;
    f->reload_closes_stream = true;
    assert_true(receive(f, "<iq type='set' id='l2' from='ops@example.org/phone' to='" DOMAIN
                           "'><command xmlns='http://jabber.org/protocol/commands' "
                           "node='reload' action='execute'/></iq>"));
    assert_int_equal(f->reloads, 1);
    assert_int_equal(f->sent->len, 0);

    router_connected(f->router);
    int answers = 0;
    for (guint i = 0; i < f->sent->len; i++) {
        xmpp_stanza_t *stanza = f->sent->pdata[i];
        if (g_strcmp0(xmpp_stanza_get_id(stanza), "l2") == 0) {
            answers++;
            assert_string_equal(xmpp_stanza_get_attribute(command_of(stanza), "status"),
                                "completed");
        }
    }
    assert_int_equal(answers, 1);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(admin__lists_its_commands_to_admins_only),
        T(admin__reports_status_and_resources),
        T(admin__drains_and_undrains_a_resource),
        T(admin__keeps_a_session_to_the_admin_and_the_command_that_started_it),
        T(admin__reloads_and_says_how_it_went),
        T(admin__answers_a_reload_that_closes_the_stream_on_the_next_one),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
