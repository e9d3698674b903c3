/* libFuzzer target: the router fed arbitrary sequences of stanzas.
 *
 * The input is read line by line.  A line that begins with '<' and is
 * namespace-well-formed, as anything a server sends is, is parsed by the
 * stream parser (core/stream.c) and each stanza in it handed to
 * router_handle(), as if the server had sent it on the component stream.  A line that begins with
 * '!' is a command:
 *   !expire            every deadline passes (router_expire far ahead)
 *   !tick              router_expire(now): normally nothing is due
 *   !pong [TYPE]       the resource pinged last answers its ping
 *   !useranswer [TYPE] the user the service asked last answers (default
 *                      result)
 *   !answer [TYPE [RESOURCE]]
 *                      the implementing client answers the latest forwarded
 *                      request, from the resource it went to (or RESOURCE),
 *                      with TYPE (default result)
 *   !decline  !accept  the strategy declines / places requests again
 *   !pick N            the strategy picks candidate N mod n
 *   !failencode  !encode   the encoding fails / works again
 *   !disconnect  !connect  the stream goes down / comes back
 *   !pause  !resume    router_pause()
 *   !reconfigure       new instances of both plugins, and the other config
 *                      (a resource filter, another timeout, no retries,
 *                      benched after one timeout, few requests in flight)
 * Anything else is ignored.  At the end: router_shutdown(), router_free().
 *
 * Invariants (a failure aborts, which libFuzzer reports as a crash):
 *   - every stanza sent is from the domain; or from domain/TOKEN, a token
 *     the encoding issued (a user's address), and then to a resource of the
 *     target; or (an error) from the user at the domain it was sent to;
 *   - every stanza sent has a non-empty `to`;
 *   - an IQ get/set is sent only to TARGET/RESOURCE from a pinned token,
 *     for the resource that the strategy chose during that same call, and
 *     which is online; or from the bare domain, as a XEP-0199 ping to an
 *     online resource, or as the service's request to a user, with an id of
 *     client-proxy's own never used before;
 *   - presence is sent only from the bare domain;
 *   - an IQ result/error goes only to someone owed an answer: every IQ that
 *     is addressed to the domain (bare or not: the service's requests to
 *     users too) with a sender and is not itself a result or error is owed
 *     exactly one, and so is every get or set with an id addressed to a
 *     user at the domain.  Never two.  After router_shutdown(), none is
 *     still owed;
 *   - a message error goes to a user only if one was owed: for a message
 *     to the domain or to a user at it, at most one;
 *   - the strategy sees only online, non-draining candidates, n >= 1, and
 *     resource_online()/resource_offline() pair up;
 *   - every token the encoding issues is forgotten exactly once, before
 *     fini() of the instance that issued it;
 *   - no leak (LeakSanitizer, per input) and no memory error (ASan/UBSan).
 *
 * Set FUZZ_VERBOSE=1 to see client-proxy's log lines (debug level). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <strophe.h>

#include "config.h"
#include "fake-plugins.h"
#include "fuzz-common.h"
#include "log.h"
#include "metrics.h"
#include "plugin-loader.h"
#include "router.h"
#include "stream.h"

#define DOMAIN "proxy.example.org"
#define TARGET "service@example.org"

/* ---- The model of what is owed ---------------------------------------- */

typedef struct forwarded {
    char *token;
    char *id;
    char *resource;
} forwarded_t;

typedef struct run {
    xmpp_ctx_t *ctx;        /* libstrophe: another parser than core's checks what is sent */
    router_t *router;
    plugin_t *dispatch, *jat;
    bool connected;
    bool other_config;
    GHashTable *owed;       /* "iq|message" \x1f JID \x1f id -> count (GINT_TO_POINTER) */
    forwarded_t last;       /* the latest request forwarded, for !answer */
    char *last_ping_to, *last_ping_id; /* the latest ping, for !pong */
    char *last_outbound_to, *last_outbound_id; /* the service's latest request to a
                                                  user, for !useranswer */
    GHashTable *wire_ids;   /* ids client-proxy gave the service's requests */
    metrics_t *metrics;
    bool in_handle;         /* select() may choose only inside router_handle(), or
                               router_reconfigure() (which may place held requests) */
} run_t;

static config_t *configs[2];
static bool verbose;

static char *owed_key(const char *kind, const char *jid, const char *id)
{
    return g_strdup_printf("%s\x1f%s\x1f%s", kind, jid, id ? id : "\x1e(none)");
}

static void owe(run_t *run, const char *kind, const char *jid, const char *id)
{
    char *key = owed_key(kind, jid, id);
    int count = GPOINTER_TO_INT(g_hash_table_lookup(run->owed, key));
    g_hash_table_replace(run->owed, key, GINT_TO_POINTER(count + 1));
}

static void pay(run_t *run, const char *kind, const char *jid, const char *id)
{
    char *key = owed_key(kind, jid, id);
    int count = GPOINTER_TO_INT(g_hash_table_lookup(run->owed, key));
    FUZZ_CHECK(count > 0, "an answer (%s) to %s, id %s, that nobody is owed", kind, jid,
               id ? id : "(none)");
    if (count == 1)
        g_hash_table_remove(run->owed, key);
    else
        g_hash_table_replace(run->owed, g_strdup(key), GINT_TO_POINTER(count - 1));
    g_free(key);
}

/* True when JID's bare part (up to the first '/') is BARE, ignoring ASCII case
 * as the router does for the domain and the target. */
static bool bare_is(const char *jid, const char *bare)
{
    const char *slash = strchr(jid, '/');
    size_t len = slash ? (size_t)(slash - jid) : strlen(jid);
    return len == strlen(bare) && g_ascii_strncasecmp(jid, bare, len) == 0;
}

/* True when JID is NODE@DOMAIN, with or without a resource: an address at
 * the component's domain where no user lives. */
static bool is_user_at_domain(const char *jid)
{
    const char *at = strchr(jid, '@');
    const char *slash = strchr(jid, '/');
    return at && (!slash || at < slash) && bare_is(at + 1, DOMAIN);
}

static void forwarded_clear(forwarded_t *f)
{
    g_free(f->token);
    g_free(f->id);
    g_free(f->resource);
    memset(f, 0, sizeof *f);
}

static void check_stanza(run_t *run, xmpp_stanza_t *stanza);

/* The send seam: every stanza the router emits comes through here, and
 * must be one well-formed element. */
static void check_sent(const char *bytes, size_t length, void *userdata)
{
    run_t *run = userdata;
    g_autofree char *text = g_strndup(bytes, length);
    FUZZ_CHECK(strlen(text) == length, "sent a NUL byte");
    xmpp_stanza_t *stanza = xmpp_stanza_new_from_string(run->ctx, text);
    FUZZ_CHECK(stanza != NULL, "sent what is not one well-formed element: %s", text);
    check_stanza(run, stanza);
    xmpp_stanza_release(stanza);
}

static void check_stanza(run_t *run, xmpp_stanza_t *stanza)
{
    const char *name = xmpp_stanza_get_name(stanza);
    const char *type = xmpp_stanza_get_type(stanza);
    const char *from = xmpp_stanza_get_from(stanza);
    const char *to = xmpp_stanza_get_to(stanza);
    const char *id = xmpp_stanza_get_id(stanza);

    FUZZ_CHECK(run->connected, "sent while the stream is down");
    FUZZ_CHECK(name != NULL, "a stanza without a name");
    FUZZ_CHECK(to != NULL && *to, "<%s/> without a recipient", name);
    FUZZ_CHECK(from != NULL, "<%s/> without a sender", name);
    bool error = type && strcmp(type, "error") == 0;
    bool to_service = bare_is(to, TARGET) && strchr(to, '/');
    const char *token = NULL;
    if (error && is_user_at_domain(from)) {
        /* The answer to a stanza for a user at the domain comes from the
         * address it was sent to. */
    } else if (strcmp(from, DOMAIN) != 0) {
        FUZZ_CHECK(g_str_has_prefix(from, DOMAIN "/") && from[strlen(DOMAIN "/")],
                   "<%s/> sent from %s", name, from);
        token = from + strlen(DOMAIN "/");
        /* A user's address: live while its request is, or known for good.
         * An error to the service comes from whatever address it wrote to. */
        FUZZ_CHECK(fake_world_token_is_known(token) || (error && to_service),
                   "sent from %s: a token never issued", from);
        FUZZ_CHECK(to_service, "<%s/> from a user's address %s to %s, not to the service",
                   name, from, to);
    }

    if (strcmp(name, "presence") == 0) {
        FUZZ_CHECK(token == NULL, "presence from a token");
    } else if (strcmp(name, "message") == 0) {
        /* Client-proxy answers a message with an error only if it owes
         * one; errors to the service are bounces or answers to its own. */
        if (error && !to_service)
            pay(run, "message", to, id);
        if (!error && token)
            FUZZ_CHECK(fake_world_token_is_live(token) || run->in_handle,
                       "a message forwarded outside router_handle()");
    } else if (strcmp(name, "iq") == 0) {
        FUZZ_CHECK(type != NULL, "an IQ without a type");
        bool request = strcmp(type, "get") == 0 || strcmp(type, "set") == 0;
        if (request && token == NULL && id && g_str_has_prefix(id, "cp-health-")) {
            /* A XEP-0199 ping to a benched resource. */
            FUZZ_CHECK(to_service, "a ping to %s", to);
            FUZZ_CHECK(fake_world_is_online(strchr(to, '/') + 1), "a ping to %s, not online", to);
            xmpp_stanza_t *ping = xmpp_stanza_get_children(stanza);
            FUZZ_CHECK(ping && g_strcmp0(xmpp_stanza_get_ns(ping), "urn:xmpp:ping") == 0,
                       "a get from the domain that is not a ping");
            g_free(run->last_ping_to);
            g_free(run->last_ping_id);
            run->last_ping_to = g_strdup(to);
            run->last_ping_id = g_strdup(id);
        } else if (request && token == NULL) {
            /* The service asks a user, with an id of client-proxy's own. */
            FUZZ_CHECK(run->in_handle, "a request of the service sent outside router_handle()");
            FUZZ_CHECK(!to_service, "the service's request sent to the service");
            FUZZ_CHECK(id && g_str_has_prefix(id, "cp-out-"), "the service's request as id %s",
                       id ? id : "(none)");
            FUZZ_CHECK(!g_hash_table_contains(run->wire_ids, id), "id %s used twice", id);
            g_hash_table_add(run->wire_ids, g_strdup(id));
            g_free(run->last_outbound_to);
            g_free(run->last_outbound_id);
            run->last_outbound_to = g_strdup(to);
            run->last_outbound_id = g_strdup(id);
        } else if (request) {
            FUZZ_CHECK(run->in_handle, "a request forwarded outside router_handle()");
            FUZZ_CHECK(fake_world_token_is_live(token), "a request forwarded from %s, not pinned",
                       from);
            FUZZ_CHECK(id != NULL, "a request forwarded without an id");
            FUZZ_CHECK(fake_world.chosen != NULL, "a request forwarded without select()");
            char *expected = g_strdup_printf("%s/%s", TARGET, fake_world.chosen);
            FUZZ_CHECK(strcmp(to, expected) == 0, "a request forwarded to %s, chosen: %s", to,
                       expected);
            g_free(expected);
            FUZZ_CHECK(fake_world_is_online(fake_world.chosen), "a request forwarded to %s, which is not online",
                       to);
            forwarded_clear(&run->last);
            run->last.token = g_strdup(token);
            run->last.id = g_strdup(id);
            run->last.resource = g_strdup(fake_world.chosen);
            fake_world_forget_choice();
        } else {
            FUZZ_CHECK(strcmp(type, "result") == 0 || error, "an IQ of type %s sent", type);
            FUZZ_CHECK(token == NULL || to_service, "an answer to a user sent from a token");
            pay(run, "iq", to, id);
        }
    } else {
        FUZZ_CHECK(false, "<%s/> sent", name);
    }
}

/* ---- Driving it -------------------------------------------------------- */

static void run_start(run_t *run)
{
    memset(run, 0, sizeof *run);
    fake_world_reset(NULL); /* a broken promise aborts: libFuzzer reports a crash */
    run->ctx = xmpp_ctx_new(NULL, NULL);
    run->owed = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    run->wire_ids = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    run->dispatch = plugin_new_builtin(configs[0], &fake_dispatch_descriptor, NULL);
    run->jat = plugin_new_builtin(configs[0], &fake_jat_descriptor, NULL);
    FUZZ_CHECK(run->dispatch && run->jat, "cannot instantiate the fakes");
    run->metrics = metrics_new();
    const router_callbacks_t callbacks = {check_sent, NULL, run, run->metrics};
    run->router = router_new(configs[0], run->dispatch, run->jat, &callbacks);
    run->connected = true;
    router_connected(run->router);
}

static void reconfigure(run_t *run)
{
    run->other_config = !run->other_config;
    const config_t *config = configs[run->other_config];
    plugin_t *dispatch = plugin_new_builtin(config, &fake_dispatch_descriptor, NULL);
    plugin_t *jat = plugin_new_builtin(config, &fake_jat_descriptor, NULL);
    FUZZ_CHECK(dispatch && jat, "cannot instantiate the fakes");
    /* A new filter may let a resource take the requests held for one. */
    run->in_handle = true;
    router_reconfigure(run->router, config, dispatch, jat);
    run->in_handle = false;
    plugin_unref(run->dispatch);
    plugin_unref(run->jat);
    run->dispatch = dispatch;
    run->jat = jat;
}

static void handle_parsed(const wire_stanza_t *stanza, void *userdata)
{
    run_t *run = userdata;
    const char *name = stanza->name, *type = stanza->type, *from = stanza->from;
    const char *to = stanza->to, *id = stanza->id;

    /* What the router owes for this stanza, by its contract (README, "What
     * the sender gets"). */
    if (from && *from) {
        bool reply = type && (strcmp(type, "result") == 0 || strcmp(type, "error") == 0);
        bool request = type && (strcmp(type, "get") == 0 || strcmp(type, "set") == 0);
        if (strcmp(name, "iq") == 0 && to && bare_is(to, DOMAIN) && !reply)
            owe(run, "iq", from, id);
        else if (strcmp(name, "iq") == 0 && to && is_user_at_domain(to) && request && id)
            owe(run, "iq", from, id);
        else if (strcmp(name, "message") == 0 && to && is_user_at_domain(to) &&
                 !(type && strcmp(type, "error") == 0))
            owe(run, "message", from, id);
        else if (strcmp(name, "message") == 0 && to && bare_is(to, DOMAIN) &&
                 !(type && strcmp(type, "error") == 0))
            owe(run, "message", from, id);
    }

    fake_world_forget_choice();
    run->in_handle = true;
    router_handle(run->router, stanza);
    run->in_handle = false;
    fake_world_forget_choice();
}

static void handle_stanza(run_t *run, const char *xml)
{
    /* Servers pass on only namespace-well-formed XML (RFC 6120 §11.2), and
     * stream.c relies on it rather than checking every prefix again:
     * libstrophe's namespace-aware parser stands in for the server. */
    xmpp_stanza_t *checked = xmpp_stanza_new_from_string(run->ctx, xml);
    if (!checked)
        return;
    xmpp_stanza_release(checked);
    stream_parse_stanzas(xml, strlen(xml), handle_parsed, run);
}

/* !answer [TYPE [RESOURCE]] */
static void answer(run_t *run, const char *args)
{
    if (!run->last.token)
        return;
    g_autofree char *trimmed = g_strstrip(g_strdup(args));
    g_auto(GStrv) words = g_strsplit(trimmed, " ", 3);
    const char *type = words[0] && *words[0] ? words[0] : "result";
    const char *resource = words[0] && words[1] && *words[1] ? words[1] : run->last.resource;
    char *xml = g_markup_printf_escaped("<iq type='%s' from='%s/%s' to='%s/%s' id='%s'>"
                                        "<query xmlns='urn:example:fuzz'/></iq>",
                                        type, TARGET, resource, DOMAIN, run->last.token,
                                        run->last.id);
    handle_stanza(run, xml);
    g_free(xml);
}

/* !useranswer [TYPE]: the user the service asked last answers it. */
static void user_answer(run_t *run, const char *args)
{
    if (!run->last_outbound_to)
        return;
    g_autofree char *type = g_strstrip(g_strdup(args));
    char *xml = g_markup_printf_escaped("<iq type='%s' from='%s' to='%s' id='%s'>"
                                        "<answer xmlns='urn:example:fuzz'/></iq>",
                                        *type ? type : "result", run->last_outbound_to, DOMAIN,
                                        run->last_outbound_id);
    handle_stanza(run, xml);
    g_free(xml);
}

/* !pong [TYPE]: the benched resource answers the latest ping. */
static void pong(run_t *run, const char *args)
{
    if (!run->last_ping_to)
        return;
    g_autofree char *type = g_strstrip(g_strdup(args));
    char *xml = g_markup_printf_escaped("<iq type='%s' from='%s' to='%s' id='%s'/>",
                                        *type ? type : "result", run->last_ping_to, DOMAIN,
                                        run->last_ping_id);
    handle_stanza(run, xml);
    g_free(xml);
}

static void command(run_t *run, const char *line)
{
    if (strcmp(line, "!expire") == 0) {
        router_expire(run->router, g_get_monotonic_time() + (int64_t)7200 * G_USEC_PER_SEC);
        FUZZ_CHECK(router_pending_count(run->router) == 0, "requests outlive their deadline");
    } else if (strcmp(line, "!tick") == 0) {
        router_expire(run->router, g_get_monotonic_time());
    } else if (g_str_has_prefix(line, "!answer")) {
        answer(run, line + strlen("!answer"));
    } else if (g_str_has_prefix(line, "!useranswer")) {
        user_answer(run, line + strlen("!useranswer"));
    } else if (g_str_has_prefix(line, "!pong")) {
        pong(run, line + strlen("!pong"));
    } else if (strcmp(line, "!decline") == 0) {
        fake_world.decline = true;
    } else if (strcmp(line, "!accept") == 0) {
        fake_world.decline = false;
    } else if (g_str_has_prefix(line, "!pick ")) {
        fake_world.pick = (unsigned)g_ascii_strtoull(line + strlen("!pick "), NULL, 10);
    } else if (strcmp(line, "!failencode") == 0) {
        fake_world.fail_encode = true;
    } else if (strcmp(line, "!encode") == 0) {
        fake_world.fail_encode = false;
    } else if (strcmp(line, "!disconnect") == 0) {
        run->connected = false;
        router_disconnected(run->router, NULL, 0);
        FUZZ_CHECK(router_resource_count(run->router) == 0, "resources survive a disconnect");
        FUZZ_CHECK(router_pending_count(run->router) == router_held_count(run->router),
                   "requests survive a disconnect (other than those held for a resource)");
    } else if (strcmp(line, "!connect") == 0) {
        if (!run->connected) {
            run->connected = true;
            router_connected(run->router);
        }
    } else if (strcmp(line, "!pause") == 0) {
        router_pause(run->router, true);
    } else if (strcmp(line, "!resume") == 0) {
        router_pause(run->router, false);
    } else if (strcmp(line, "!reconfigure") == 0) {
        reconfigure(run);
    }
}

static void run_finish(run_t *run)
{
    if (!run->connected) {
        run->connected = true;
        router_connected(run->router); /* what was held goes out now */
    }
    router_shutdown(run->router);
    FUZZ_CHECK(router_pending_count(run->router) == 0, "requests outlive router_shutdown()");
    FUZZ_CHECK(router_resource_count(run->router) == 0, "resources outlive router_shutdown()");
    /* Every IQ request got its answer.  A message is forwarded or answered
     * with an error: only an error counts here, once at most (see pay()). */
    GHashTableIter iter;
    gpointer key;
    g_hash_table_iter_init(&iter, run->owed);
    while (g_hash_table_iter_next(&iter, &key, NULL)) {
        if (!g_str_has_prefix(key, "iq\x1f"))
            continue;
        char *printable = g_strdup(key);
        g_strdelimit(printable, "\x1f\x1e", ' ');
        FUZZ_CHECK(false, "never answered: %s", printable);
    }
    /* The exposition text: every line a comment or NAME[{LABELS}] VALUE,
     * whatever the stanzas were. */
    GString *text = g_string_new(NULL);
    GArray *storage = g_array_new(FALSE, FALSE, sizeof(metrics_resource_t));
    metrics_snapshot_t snapshot;
    router_snapshot(run->router, &snapshot, storage);
    metrics_render(run->metrics, &snapshot, text);
    g_auto(GStrv) lines = g_strsplit(text->str, "\n", -1);
    for (char **line = lines; *line && **line; line++) {
        if (**line == '#')
            continue;
        FUZZ_CHECK(g_regex_match_simple("^[a-z_]+(\\{([a-z_]+=\"([^\"\\\\\n]|\\\\.)*\",?)*"
                                        "\\})? [0-9.e+-]+$",
                                        *line, 0, 0),
                   "a malformed metrics line: %s", *line);
    }
    g_array_free(storage, TRUE);
    g_string_free(text, TRUE);
    router_free(run->router);
    metrics_free(run->metrics);
    plugin_unref(run->dispatch);
    plugin_unref(run->jat);
    fake_world_clear(); /* checks that every encoding instance was finished */
    forwarded_clear(&run->last);
    g_free(run->last_ping_to);
    g_free(run->last_ping_id);
    g_free(run->last_outbound_to);
    g_free(run->last_outbound_id);
    g_hash_table_destroy(run->wire_ids);
    g_hash_table_destroy(run->owed);
    xmpp_ctx_free(run->ctx);
    fake_world_forget_choice();
}

static config_t *load_config(const char *text)
{
    char *path = fuzz_write_private_file(text);
    GError *error = NULL;
    config_t *config = config_load(path, &error);
    FUZZ_CHECK(config != NULL, "%s", error->message);
    fuzz_remove_private_file(path);
    return config;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    verbose = g_getenv("FUZZ_VERBOSE") != NULL;
    /* Debug level, so that the log lines' reads of stanzas run too; but the
     * lines go nowhere unless asked for (sanitizer reports use fd 2). */
    log_set_level(CP_LOG_DEBUG);
    if (!verbose)
        stderr = fopen("/dev/null", "w");
    xmpp_initialize();
    configs[0] = load_config("[component]\ndomain = " DOMAIN "\nsecret = s\n"
                             "[proxy]\ntarget = " TARGET "\nrequest_timeout = 30\n");
    configs[1] = load_config("[component]\ndomain = " DOMAIN "\nsecret = s\n"
                             "[proxy]\ntarget = " TARGET "\nrequest_timeout = 5\n"
                             "resources = w*; phone\nretry_get = false\nunhealthy_after = 1\n"
                             "hold = 3\n"
                             "[limits]\nin_flight = 4\nin_flight_per_sender = 2\n");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = g_strndup((const char *)data, size); /* stops at a NUL */
    char **lines = g_strsplit(text, "\n", -1);
    g_free(text);

    run_t run;
    run_start(&run);
    for (char **line = lines; *line; line++) {
        /* Nothing arrives while the stream is down. */
        if (**line == '<' && run.connected)
            handle_stanza(&run, *line);
        else if (**line == '!')
            command(&run, *line);
    }
    run_finish(&run);
    g_strfreev(lines);
    return 0;
}
