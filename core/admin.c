/* XEP-0050 admin commands: see admin.h. */
#include "admin.h"

#include <string.h>

#include <client-proxy/plugin.h>

#include "health.h"
#include "jid.h"
#include "log.h"
#include "roster.h"
#include "stanza.h"

#define DISCO_INFO_NS "http://jabber.org/protocol/disco#info"
#define DISCO_ITEMS_NS "http://jabber.org/protocol/disco#items"
#define DATA_FORMS_NS "jabber:x:data"
/* A multi-stage command's session lives this long between its stages. */
#define SESSION_LIFETIME_US (10 * 60 * G_USEC_PER_SEC)

typedef struct command {
    const char *node;
    const char *name;
} command_t;

static const command_t commands[] = {
    {"status", "Status: version, uptime, stream, plugins, requests"},
    {"resources", "Resources: each one's show, priority, requests in flight, latency, health"},
    {"drain", "Drain a resource: no new requests (as if it had set dnd)"},
    {"undrain", "Undrain a resource: it takes requests again"},
    {"reload", "Reload the configuration (as SIGHUP)"},
};

typedef struct session {
    char *owner; /* the full JID that started it: only it may go on */
    char *node;
    int64_t started; /* monotonic µs */
} session_t;

struct admin {
    router_t *router;      /* borrowed */
    metrics_t *metrics;    /* borrowed */
    admin_callbacks_t callbacks;
    char *domain;
    char **jids;           /* lowercased bare JIDs; NULL: none */
    char *encoding, *dispatch;
    int64_t started;       /* monotonic µs */
    unsigned serial;
    GHashTable *sessions;  /* sessionid -> session_t, owning */
    GString *out;
};

static void session_free(gpointer data)
{
    session_t *session = data;
    g_free(session->owner);
    g_free(session->node);
    g_free(session);
}

admin_t *admin_new(const config_t *config, router_t *router, metrics_t *metrics,
                   const admin_callbacks_t *callbacks)
{
    admin_t *admin = g_new0(admin_t, 1);
    admin->router = router;
    admin->metrics = metrics;
    admin->callbacks = *callbacks;
    admin->started = g_get_monotonic_time();
    admin->sessions = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, session_free);
    admin->out = g_string_sized_new(2048);
    admin_reconfigure(admin, config);
    return admin;
}

void admin_free(admin_t *admin)
{
    if (!admin)
        return;
    g_hash_table_destroy(admin->sessions);
    g_string_free(admin->out, TRUE);
    g_free(admin->domain);
    g_strfreev(admin->jids);
    g_free(admin->encoding);
    g_free(admin->dispatch);
    g_free(admin);
}

void admin_reconfigure(admin_t *admin, const config_t *config)
{
    g_free(admin->domain);
    admin->domain = g_strdup(config->domain);
    g_strfreev(admin->jids);
    admin->jids = g_strdupv(config->admin_jids);
    g_free(admin->encoding);
    admin->encoding = g_strdup(config->encoding);
    g_free(admin->dispatch);
    admin->dispatch = g_strdup(config->dispatch);
}

static bool is_admin(const admin_t *admin, const char *from)
{
    if (!admin->jids)
        return false;
    char bare[JID_BARE_MAX + 1];
    if (!jid_split_bare(from, bare, sizeof bare))
        return false;
    g_autofree char *lower = g_ascii_strdown(bare, -1);
    return g_strv_contains((const char *const *)admin->jids, lower);
}

/* ---- Writing ----------------------------------------------------------------- */

static void attribute(GString *out, const char *name, const char *value)
{
    g_string_append_printf(out, " %s='", name);
    wire_append_escaped(out, value);
    g_string_append_c(out, '\'');
}

/* Opens the result to IQ, from the bare domain. */
static void open_result(admin_t *admin, const wire_stanza_t *iq)
{
    g_string_truncate(admin->out, 0);
    g_string_append(admin->out, "<iq type='result'");
    attribute(admin->out, "id", iq->id);
    attribute(admin->out, "from", admin->domain);
    attribute(admin->out, "to", iq->from);
    g_string_append_c(admin->out, '>');
}

static void send_out(admin_t *admin)
{
    router_send(admin->router, admin->out->str, admin->out->len);
}

static void close_result(admin_t *admin)
{
    g_string_append(admin->out, "</iq>");
    send_out(admin);
}

static void answer_error(admin_t *admin, const wire_stanza_t *iq, const char *type,
                         const char *condition, const char *text)
{
    g_string_truncate(admin->out, 0);
    const stanza_error_t error = {type, condition, text};
    stanza_write_error(admin->out, "iq", admin->domain, iq->from, iq->id, &error);
    send_out(admin);
}

static void field(GString *out, const char *var, const char *label, const char *type,
                  const char *value)
{
    g_string_append(out, "<field");
    attribute(out, "var", var);
    if (label)
        attribute(out, "label", label);
    if (type)
        attribute(out, "type", type);
    g_string_append(out, "><value>");
    wire_append_escaped(out, value);
    g_string_append(out, "</value></field>");
}

static void open_command(GString *out, const char *node, const char *sessionid,
                         const char *status)
{
    g_string_append(out, "<command xmlns='" ADMIN_COMMANDS_NS "'");
    attribute(out, "node", node);
    attribute(out, "sessionid", sessionid);
    attribute(out, "status", status);
    g_string_append_c(out, '>');
}

static void note(GString *out, const char *type, const char *text)
{
    g_string_append(out, "<note");
    attribute(out, "type", type);
    g_string_append_c(out, '>');
    wire_append_escaped(out, text);
    g_string_append(out, "</note>");
}

static char *new_sessionid(admin_t *admin)
{
    return g_strdup_printf("cp-admin-%u-%08x", ++admin->serial, g_random_int());
}

/* ---- Discovery ---------------------------------------------------------------- */

static void disco_info(admin_t *admin, const wire_stanza_t *iq, const char *node)
{
    open_result(admin, iq);
    g_string_append(admin->out, "<query xmlns='" DISCO_INFO_NS "'");
    if (node)
        attribute(admin->out, "node", node);
    g_string_append_c(admin->out, '>');
    if (strcmp(node, ADMIN_COMMANDS_NS) == 0)
        g_string_append(admin->out, "<identity category='automation' type='command-list'/>");
    else
        g_string_append(admin->out, "<identity category='automation' type='command-node'/>");
    g_string_append(admin->out, "<feature var='" DISCO_INFO_NS "'/>"
                                "<feature var='" DISCO_ITEMS_NS "'/>"
                                "<feature var='" ADMIN_COMMANDS_NS "'/>"
                                "<feature var='" DATA_FORMS_NS "'/></query>");
    close_result(admin);
}

static void disco_items(admin_t *admin, const wire_stanza_t *iq)
{
    open_result(admin, iq);
    g_string_append(admin->out, "<query xmlns='" DISCO_ITEMS_NS "' node='" ADMIN_COMMANDS_NS "'>");
    for (size_t i = 0; i < G_N_ELEMENTS(commands); i++) {
        g_string_append(admin->out, "<item");
        attribute(admin->out, "jid", admin->domain);
        attribute(admin->out, "node", commands[i].node);
        attribute(admin->out, "name", commands[i].name);
        g_string_append(admin->out, "/>");
    }
    g_string_append(admin->out, "</query>");
    close_result(admin);
}

/* ---- The commands ------------------------------------------------------------- */

static char *duration(int64_t us)
{
    int64_t s = us / G_USEC_PER_SEC;
    return g_strdup_printf("%" G_GINT64_FORMAT "d %02" G_GINT64_FORMAT ":%02" G_GINT64_FORMAT
                           ":%02" G_GINT64_FORMAT,
                           s / 86400, s / 3600 % 24, s / 60 % 60, s % 60);
}

static void run_status(admin_t *admin, GString *out)
{
    g_autofree char *uptime = duration(g_get_monotonic_time() - admin->started);
    g_autoptr(GPtrArray) resources = router_resources(admin->router);
    size_t total = router_pending_count(admin->router);
    g_autofree char *in_flight = g_strdup_printf("%zu", total);
    g_autofree char *held = g_strdup_printf("%zu", router_held_count(admin->router));
    g_autofree char *online = g_strdup_printf("%u", resources->len);
    g_autofree char *inbound = g_strdup_printf(
        "%" G_GUINT64_FORMAT, metrics_requests_total(admin->metrics, METRICS_INBOUND));
    g_autofree char *outbound = g_strdup_printf(
        "%" G_GUINT64_FORMAT, metrics_requests_total(admin->metrics, METRICS_OUTBOUND));
    bool up = admin->callbacks.stream_up(admin->callbacks.userdata);

    g_string_append(out, "<x xmlns='" DATA_FORMS_NS "' type='result'>"
                         "<title>client-proxy status</title>");
    field(out, "version", "Version", "text-single", CLIENT_PROXY_VERSION);
    field(out, "uptime", "Uptime", "text-single", uptime);
    field(out, "stream", "Stream to the server", "text-single", up ? "up" : "down");
    field(out, "encoding", "Encoding", "text-single", admin->encoding);
    field(out, "dispatch", "Dispatch strategy", "text-single", admin->dispatch);
    field(out, "resources", "Resources online", "text-single", online);
    field(out, "in_flight", "Requests in flight", "text-single", in_flight);
    field(out, "held", "Requests held for a resource", "text-single", held);
    field(out, "requests_inbound", "Requests from users, in all", "text-single", inbound);
    field(out, "requests_outbound", "Requests of the service, in all", "text-single", outbound);
    g_string_append(out, "</x>");
}

static void run_resources(admin_t *admin, GString *out)
{
    g_autoptr(GPtrArray) resources = router_resources(admin->router);
    g_string_append(out, "<x xmlns='" DATA_FORMS_NS "' type='result'>"
                         "<title>Resources of the service</title><reported>"
                         "<field var='resource' label='Resource'/>"
                         "<field var='show' label='Show'/>"
                         "<field var='priority' label='Priority'/>"
                         "<field var='in_flight' label='In flight'/>"
                         "<field var='latency_ms' label='Latency (ms)'/>"
                         "<field var='health' label='Health'/>"
                         "<field var='draining' label='Draining'/>"
                         "</reported>");
    for (guint i = 0; i < resources->len; i++) {
        const resource_t *resource = resources->pdata[i];
        g_autofree char *priority = g_strdup_printf("%d", resource->info.priority);
        g_autofree char *in_flight = g_strdup_printf("%u", resource->info.in_flight);
        g_autofree char *latency = g_strdup_printf("%.1f", resource->info.latency_ms);
        g_string_append(out, "<item>");
        field(out, "resource", NULL, NULL, resource->info.name);
        field(out, "show", NULL, NULL, *resource->info.show ? resource->info.show : "available");
        field(out, "priority", NULL, NULL, priority);
        field(out, "in_flight", NULL, NULL, in_flight);
        field(out, "latency_ms", NULL, NULL, latency);
        field(out, "health", NULL, NULL, health_is_benched(resource) ? "benched" : "ok");
        field(out, "draining", NULL, NULL, roster_is_draining(resource) ? "yes" : "no");
        g_string_append(out, "</item>");
    }
    g_string_append(out, "</x>");
}

/* The form that asks which resource to drain or undrain. */
static void ask_for_resource(admin_t *admin, GString *out, const char *node)
{
    g_autoptr(GPtrArray) resources = router_resources(admin->router);
    g_string_append(out, "<actions execute='complete'><complete/></actions>"
                         "<x xmlns='" DATA_FORMS_NS "' type='form'><title>");
    g_string_append(out, strcmp(node, "drain") == 0 ? "Drain a resource" : "Undrain a resource");
    g_string_append(out, "</title><field var='resource' label='Resource' type='list-single'>"
                         "<required/>");
    for (guint i = 0; i < resources->len; i++) {
        const resource_t *resource = resources->pdata[i];
        g_string_append(out, "<option");
        attribute(out, "label", resource->info.name);
        g_string_append(out, "><value>");
        wire_append_escaped(out, resource->info.name);
        g_string_append(out, "</value></option>");
    }
    g_string_append(out, "</field></x>");
}

/* The value of field VAR of the submitted form in COMMAND, or NULL. */
static const char *submitted(const stanza_element_t *command, const char *var)
{
    const stanza_element_t *form = stanza_child(command, "x", DATA_FORMS_NS);
    if (!form || g_strcmp0(stanza_attribute(form, "type"), "submit") != 0)
        return NULL;
    for (guint i = 0; i < form->children->len; i++) {
        const stanza_element_t *child = g_ptr_array_index(form->children, i);
        if (strcmp(child->name, "field") == 0 && g_strcmp0(stanza_attribute(child, "var"), var) == 0)
            return stanza_child_text(child, "value");
    }
    return NULL;
}

static void expire_sessions(admin_t *admin)
{
    int64_t now = g_get_monotonic_time();
    GHashTableIter iter;
    gpointer session;
    g_hash_table_iter_init(&iter, admin->sessions);
    while (g_hash_table_iter_next(&iter, NULL, &session))
        if (now - ((session_t *)session)->started > SESSION_LIFETIME_US)
            g_hash_table_iter_remove(&iter);
}

static void run_command(admin_t *admin, const wire_stanza_t *iq,
                        const stanza_element_t *command)
{
    const char *node = stanza_attribute(command, "node");
    const char *action = stanza_attribute(command, "action");
    const char *sessionid = stanza_attribute(command, "sessionid");
    expire_sessions(admin);
    const session_t *existing = sessionid ? g_hash_table_lookup(admin->sessions, sessionid) : NULL;
    if (sessionid && (!existing || strcmp(existing->owner, iq->from) != 0 ||
                      strcmp(existing->node, node) != 0)) {
        answer_error(admin, iq, "modify", "bad-request", "unknown or expired session");
        return;
    }
    g_autofree char *session = sessionid ? g_strdup(sessionid) : new_sessionid(admin);
    if (action && strcmp(action, "cancel") == 0) {
        g_hash_table_remove(admin->sessions, session);
        open_result(admin, iq);
        open_command(admin->out, node, session, "canceled");
        g_string_append(admin->out, "</command>");
        close_result(admin);
        return;
    }

    GString *body = g_string_new(NULL);
    const char *status = "completed";
    if (strcmp(node, "status") == 0) {
        run_status(admin, body);
    } else if (strcmp(node, "resources") == 0) {
        run_resources(admin, body);
    } else if (strcmp(node, "reload") == 0) {
        g_autofree char *outcome = NULL;
        bool done = admin->callbacks.reload(&outcome, admin->callbacks.userdata);
        log_info("admin %s reloaded the configuration: %s", iq->from, outcome);
        note(body, done ? "info" : "error", outcome);
    } else { /* drain, undrain */
        bool drain = strcmp(node, "drain") == 0;
        const char *resource = submitted(command, "resource");
        if (!resource) {
            status = "executing";
            session_t *kept = g_new0(session_t, 1);
            kept->owner = g_strdup(iq->from);
            kept->node = g_strdup(node);
            kept->started = g_get_monotonic_time();
            g_hash_table_replace(admin->sessions, g_strdup(session), kept);
            ask_for_resource(admin, body, node);
        } else if (router_drain(admin->router, resource, drain)) {
            log_info("admin %s %s resource %s", iq->from, drain ? "drained" : "undrained",
                     resource);
            g_autofree char *text = g_strdup_printf(
                drain ? "%s takes no new requests; its requests in flight go on"
                      : "%s takes requests again",
                resource);
            note(body, "info", text);
        } else {
            g_autofree char *text = g_strdup_printf("no resource %s is online", resource);
            note(body, "error", text);
        }
    }
    if (strcmp(status, "completed") == 0)
        g_hash_table_remove(admin->sessions, session);
    open_result(admin, iq);
    open_command(admin->out, node, session, status);
    g_string_append_len(admin->out, body->str, (gssize)body->len);
    g_string_append(admin->out, "</command>");
    close_result(admin);
    g_string_free(body, TRUE);
}

bool admin_handle(admin_t *admin, const wire_stanza_t *iq)
{
    if (!iq->type || !iq->id || !iq->to || !iq->bytes || jid_resource(iq->to) ||
        !jid_bare_equal(iq->to, admin->domain) || !is_admin(admin, iq->from))
        return false;
    bool get = strcmp(iq->type, "get") == 0, set = strcmp(iq->type, "set") == 0;
    const char *ns = iq->payload_ns;
    if (!ns || !(get || set) ||
        !(strcmp(ns, DISCO_INFO_NS) == 0 || strcmp(ns, DISCO_ITEMS_NS) == 0 ||
          strcmp(ns, ADMIN_COMMANDS_NS) == 0))
        return false;
    g_autoptr(stanza_element_t) tree = stanza_parse(iq->bytes, iq->length);
    const stanza_element_t *payload =
        tree && tree->children->len > 0 ? g_ptr_array_index(tree->children, 0) : NULL;
    if (!payload)
        return false;
    /* Only what names client-proxy's own commands: the service's own disco
     * and commands reach it, admins' included. */
    const char *node = stanza_attribute(payload, "node");
    bool our_node = node && strcmp(node, ADMIN_COMMANDS_NS) == 0;
    for (size_t i = 0; node && i < G_N_ELEMENTS(commands); i++)
        our_node = our_node || strcmp(node, commands[i].node) == 0;
    if (!our_node)
        return false;
    if (get && strcmp(ns, DISCO_INFO_NS) == 0) {
        disco_info(admin, iq, node);
    } else if (get && strcmp(ns, DISCO_ITEMS_NS) == 0 && g_strcmp0(node, ADMIN_COMMANDS_NS) == 0) {
        disco_items(admin, iq);
    } else if (set && strcmp(ns, ADMIN_COMMANDS_NS) == 0 &&
               strcmp(payload->name, "command") == 0) {
        run_command(admin, iq, payload);
    } else {
        return false; /* disco#items of the service itself, and the like */
    }
    return true;
}
