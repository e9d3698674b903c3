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
 *   - every stanza sent is from the domain, or from domain/TOKEN for a
 *     token the encoding issued and has not been told to forget;
 *   - every stanza sent has a non-empty `to`;
 *   - an IQ get/set is sent only to TARGET/RESOURCE, for the resource that
 *     the strategy chose during that same call, and which is online; or,
 *     from the bare domain, as a XEP-0199 ping to an online resource;
 *   - presence is sent only to the target (bare or full);
 *   - an IQ result/error goes only to someone owed an answer: every IQ that
 *     is addressed to the domain with a sender and is not itself a result
 *     or error is owed exactly one, every message (not an error) one error.
 *     Never two.  After router_shutdown(), none is still owed;
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
#include "fuzz-common.h"
#include "log.h"
#include "plugin-loader.h"
#include "router.h"
#include "stream.h"

#define DOMAIN "proxy.example.org"
#define TARGET "service@example.org"

/* ---- Fake plugins: each instance keeps its own books ------------------- */

typedef struct dispatch_fake {
    GHashTable *online; /* const cp_resource_t * -> owned name */
} dispatch_fake_t;

typedef struct jat_fake {
    GHashTable *live; /* token -> sender JID, both owned: issued, not forgotten */
} jat_fake_t;

/* What the test steers and what it saw during one router call. */
static struct {
    bool decline;
    unsigned pick;
    bool fail_encode;
    unsigned next_token;
    char *chosen;                 /* name select() returned during this call */
    dispatch_fake_t *dispatch;    /* the current strategy instance */
    GPtrArray *jat_instances;     /* every jat_fake_t alive */
} world;

static void free_chosen(void)
{
    g_free(world.chosen);
    world.chosen = NULL;
}

static int dispatch_init(const cp_host_api_t *api, cp_host_t *host, void **state)
{
    (void)api;
    (void)host;
    dispatch_fake_t *fake = g_new0(dispatch_fake_t, 1);
    fake->online = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
    *state = fake;
    return CP_OK;
}

static void dispatch_fini(void *state)
{
    dispatch_fake_t *fake = state;
    /* fini() may come with resources still online (a reload replaced it). */
    g_hash_table_destroy(fake->online);
    g_free(fake);
}

static int dispatch_select(void *state, const cp_dispatch_request_t *request,
                           const cp_resource_t *const *candidates, size_t n)
{
    dispatch_fake_t *fake = state;
    FUZZ_CHECK(n >= 1, "select() with %zu candidates", n);
    FUZZ_CHECK(request->sender && request->type, "select() without sender or type");
    FUZZ_CHECK(strcmp(request->type, "get") == 0 || strcmp(request->type, "set") == 0,
               "select() for an IQ of type %s", request->type);
    for (size_t i = 0; i < n; i++) {
        const char *name = g_hash_table_lookup(fake->online, candidates[i]);
        FUZZ_CHECK(name != NULL, "candidate %zu was never announced online", i);
        FUZZ_CHECK(strcmp(name, candidates[i]->name) == 0, "a candidate changed its name");
        FUZZ_CHECK(strcmp(candidates[i]->show, "dnd") != 0 &&
                       strcmp(candidates[i]->show, "xa") != 0,
                   "a draining resource (%s) is a candidate", candidates[i]->show);
    }
    if (world.decline)
        return CP_EDECLINE;
    size_t i = world.pick % n;
    free_chosen();
    world.chosen = g_strdup(candidates[i]->name);
    return (int)i;
}

static void dispatch_online(void *state, const cp_resource_t *resource)
{
    dispatch_fake_t *fake = state;
    FUZZ_CHECK(!g_hash_table_contains(fake->online, resource), "resource_online() twice");
    FUZZ_CHECK(resource->name && *resource->name, "a resource without a name");
    g_hash_table_insert(fake->online, (gpointer)resource, g_strdup(resource->name));
}

static void dispatch_offline(void *state, const cp_resource_t *resource)
{
    dispatch_fake_t *fake = state;
    FUZZ_CHECK(g_hash_table_remove(fake->online, resource),
               "resource_offline() for a resource not online");
}

static const cp_dispatch_ops_t dispatch_ops = {
    .size = sizeof(cp_dispatch_ops_t),
    .select = dispatch_select,
    .resource_online = dispatch_online,
    .resource_offline = dispatch_offline,
};

static int jat_init(const cp_host_api_t *api, cp_host_t *host, void **state)
{
    (void)api;
    (void)host;
    jat_fake_t *fake = g_new0(jat_fake_t, 1);
    fake->live = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_ptr_array_add(world.jat_instances, fake);
    *state = fake;
    return CP_OK;
}

static void jat_fini(void *state)
{
    jat_fake_t *fake = state;
    FUZZ_CHECK(g_hash_table_size(fake->live) == 0,
               "fini() with %u token(s) never forgotten", g_hash_table_size(fake->live));
    g_hash_table_destroy(fake->live);
    g_ptr_array_remove(world.jat_instances, fake);
    g_free(fake);
}

static int jat_encode(void *state, const char *jid, int64_t expires, char *token, size_t size)
{
    jat_fake_t *fake = state;
    (void)expires;
    FUZZ_CHECK(size >= CP_TOKEN_MAX + 1, "encode() with a buffer of %zu", size);
    if (world.fail_encode)
        return CP_ETOOLONG;
    snprintf(token, size, "t%u", ++world.next_token);
    g_hash_table_insert(fake->live, g_strdup(token), g_strdup(jid));
    return CP_OK;
}

static int jat_decode(void *state, const char *token, char *jid, size_t size)
{
    jat_fake_t *fake = state;
    FUZZ_CHECK(size >= CP_JID_MAX + 1, "decode() with a buffer of %zu", size);
    const char *found = g_hash_table_lookup(fake->live, token);
    if (!found)
        return CP_EBADTOKEN;
    g_strlcpy(jid, found, size);
    return CP_OK;
}

static void jat_forget(void *state, const char *token)
{
    jat_fake_t *fake = state;
    FUZZ_CHECK(g_hash_table_remove(fake->live, token),
               "forget(%s): not issued by this instance, or forgotten already", token);
}

static const cp_jat_ops_t jat_ops = {
    .size = sizeof(cp_jat_ops_t),
    .encode = jat_encode,
    .decode = jat_decode,
    .forget = jat_forget,
};

static const cp_plugin_descriptor_t dispatch_descriptor = {
    CP_PLUGIN_ABI_MAJOR, CP_PLUGIN_ABI_MINOR, CP_PLUGIN_DISPATCH, "fuzz", "fuzz",
    dispatch_init, dispatch_fini, &dispatch_ops,
};
static const cp_plugin_descriptor_t jat_descriptor = {
    CP_PLUGIN_ABI_MAJOR, CP_PLUGIN_ABI_MINOR, CP_PLUGIN_JAT, "fuzz", "fuzz",
    jat_init, jat_fini, &jat_ops,
};

/* ---- The model of what is owed ---------------------------------------- */

typedef struct forwarded {
    char *token;
    char *id;
    char *resource;
} forwarded_t;

typedef struct run {
    xmpp_ctx_t *ctx;
    router_t *router;
    plugin_t *dispatch, *jat;
    bool connected;
    bool other_config;
    GHashTable *owed;       /* "iq|message" \x1f JID \x1f id -> count (GINT_TO_POINTER) */
    forwarded_t last;       /* the latest request forwarded, for !answer */
    char *last_ping_to, *last_ping_id; /* the latest ping, for !pong */
    bool in_handle;         /* select() may choose only inside router_handle() */
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

static bool token_is_live(const char *token)
{
    for (guint i = 0; i < world.jat_instances->len; i++) {
        jat_fake_t *fake = world.jat_instances->pdata[i];
        if (g_hash_table_contains(fake->live, token))
            return true;
    }
    return false;
}

static void forwarded_clear(forwarded_t *f)
{
    g_free(f->token);
    g_free(f->id);
    g_free(f->resource);
    memset(f, 0, sizeof *f);
}

/* True when the current strategy was told NAME is online. */
static bool is_online(const char *name)
{
    GHashTableIter iter;
    gpointer value;
    g_hash_table_iter_init(&iter, world.dispatch->online);
    while (g_hash_table_iter_next(&iter, NULL, &value))
        if (strcmp(value, name) == 0)
            return true;
    return false;
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
    const char *token = NULL;
    if (strcmp(from, DOMAIN) != 0) {
        FUZZ_CHECK(g_str_has_prefix(from, DOMAIN "/") && from[strlen(DOMAIN "/")],
                   "<%s/> sent from %s", name, from);
        token = from + strlen(DOMAIN "/");
        FUZZ_CHECK(token_is_live(token), "sent from %s: a token not issued or forgotten", from);
    }

    if (strcmp(name, "presence") == 0) {
        FUZZ_CHECK(token == NULL, "presence from a token");
        FUZZ_CHECK(bare_is(to, TARGET), "presence sent to %s", to);
    } else if (strcmp(name, "message") == 0) {
        FUZZ_CHECK(token == NULL, "a message from a token");
        FUZZ_CHECK(type && strcmp(type, "error") == 0, "a message that is not an error");
        pay(run, "message", to, id);
    } else if (strcmp(name, "iq") == 0) {
        FUZZ_CHECK(type != NULL, "an IQ without a type");
        if (strcmp(type, "get") == 0 && token == NULL) {
            /* A XEP-0199 ping to a benched resource. */
            FUZZ_CHECK(id != NULL && g_str_has_prefix(id, "cp-health-"), "a get from the domain");
            FUZZ_CHECK(g_str_has_prefix(to, TARGET "/"), "a ping to %s", to);
            FUZZ_CHECK(is_online(to + strlen(TARGET "/")), "a ping to %s, not online", to);
            xmpp_stanza_t *ping = xmpp_stanza_get_children(stanza);
            FUZZ_CHECK(ping && g_strcmp0(xmpp_stanza_get_ns(ping), "urn:xmpp:ping") == 0,
                       "a get from the domain that is not a ping");
            g_free(run->last_ping_to);
            g_free(run->last_ping_id);
            run->last_ping_to = g_strdup(to);
            run->last_ping_id = g_strdup(id);
        } else if (strcmp(type, "get") == 0 || strcmp(type, "set") == 0) {
            FUZZ_CHECK(run->in_handle, "a request forwarded outside router_handle()");
            FUZZ_CHECK(token != NULL, "a request forwarded from the bare domain");
            FUZZ_CHECK(id != NULL, "a request forwarded without an id");
            FUZZ_CHECK(world.chosen != NULL, "a request forwarded without select()");
            char *expected = g_strdup_printf("%s/%s", TARGET, world.chosen);
            FUZZ_CHECK(strcmp(to, expected) == 0, "a request forwarded to %s, chosen: %s", to,
                       expected);
            g_free(expected);
            FUZZ_CHECK(is_online(world.chosen), "a request forwarded to %s, which is not online",
                       to);
            forwarded_clear(&run->last);
            run->last.token = g_strdup(token);
            run->last.id = g_strdup(id);
            run->last.resource = g_strdup(world.chosen);
            free_chosen();
        } else {
            FUZZ_CHECK(strcmp(type, "result") == 0 || strcmp(type, "error") == 0,
                       "an IQ of type %s sent", type);
            FUZZ_CHECK(token == NULL, "an answer sent from a token");
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
    world.decline = false;
    world.pick = 0;
    world.fail_encode = false;
    world.next_token = 0;
    world.jat_instances = g_ptr_array_new();
    run->ctx = xmpp_ctx_new(NULL, NULL);
    run->owed = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    run->dispatch = plugin_new_builtin(configs[0], &dispatch_descriptor, NULL);
    run->jat = plugin_new_builtin(configs[0], &jat_descriptor, NULL);
    FUZZ_CHECK(run->dispatch && run->jat, "cannot instantiate the fakes");
    world.dispatch = plugin_state(run->dispatch);
    const router_callbacks_t callbacks = {check_sent, NULL, run};
    run->router = router_new(run->ctx, configs[0], run->dispatch, run->jat, &callbacks);
    run->connected = true;
    router_connected(run->router);
}

static void reconfigure(run_t *run)
{
    run->other_config = !run->other_config;
    const config_t *config = configs[run->other_config];
    plugin_t *dispatch = plugin_new_builtin(config, &dispatch_descriptor, NULL);
    plugin_t *jat = plugin_new_builtin(config, &jat_descriptor, NULL);
    FUZZ_CHECK(dispatch && jat, "cannot instantiate the fakes");
    world.dispatch = plugin_state(dispatch);
    router_reconfigure(run->router, config, dispatch, jat);
    plugin_unload(run->dispatch);
    plugin_unload(run->jat);
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
        if (strcmp(name, "iq") == 0 && to && bare_is(to, DOMAIN) && !reply)
            owe(run, "iq", from, id);
        else if (strcmp(name, "message") == 0 && !(type && strcmp(type, "error") == 0))
            owe(run, "message", from, id);
    }

    free_chosen();
    run->in_handle = true;
    router_handle(run->router, stanza);
    run->in_handle = false;
    free_chosen();
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
    } else if (g_str_has_prefix(line, "!pong")) {
        pong(run, line + strlen("!pong"));
    } else if (strcmp(line, "!decline") == 0) {
        world.decline = true;
    } else if (strcmp(line, "!accept") == 0) {
        world.decline = false;
    } else if (g_str_has_prefix(line, "!pick ")) {
        world.pick = (unsigned)g_ascii_strtoull(line + strlen("!pick "), NULL, 10);
    } else if (strcmp(line, "!failencode") == 0) {
        world.fail_encode = true;
    } else if (strcmp(line, "!encode") == 0) {
        world.fail_encode = false;
    } else if (strcmp(line, "!disconnect") == 0) {
        run->connected = false;
        router_disconnected(run->router);
        FUZZ_CHECK(router_resource_count(run->router) == 0, "resources survive a disconnect");
        FUZZ_CHECK(router_pending_count(run->router) == 0, "requests survive a disconnect");
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
    GHashTableIter iter;
    gpointer key;
    g_hash_table_iter_init(&iter, run->owed);
    if (g_hash_table_iter_next(&iter, &key, NULL)) {
        char *printable = g_strdup(key);
        g_strdelimit(printable, "\x1f\x1e", ' ');
        FUZZ_CHECK(false, "never answered: %s", printable);
    }
    router_free(run->router);
    plugin_unload(run->dispatch);
    plugin_unload(run->jat);
    FUZZ_CHECK(world.jat_instances->len == 0, "an encoding instance was never finished");
    g_ptr_array_free(world.jat_instances, TRUE);
    forwarded_clear(&run->last);
    g_free(run->last_ping_to);
    g_free(run->last_ping_id);
    g_hash_table_destroy(run->owed);
    xmpp_ctx_free(run->ctx);
    free_chosen();
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
