/* Fake plugins that keep books and check the host: see fake-plugins.h. */
#include "fake-plugins.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

fake_world_t fake_world;

static char *last_sender, *last_type, *last_payload_ns;

static void violated(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

static void violated(const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    g_autofree char *message = g_strdup_vprintf(fmt, args);
    va_end(args);
    if (fake_world.violation) {
        fake_world.violation(message);
        return;
    }
    fprintf(stderr, "fake plugins: %s\n", message);
    abort();
}

#define EXPECT(condition, ...)       \
    do {                             \
        if (!(condition))            \
            violated(__VA_ARGS__);   \
    } while (0)

void fake_world_reset(void (*violation)(const char *message))
{
    fake_world_clear();
    fake_world = (fake_world_t){.violation = violation};
    fake_world.jat_instances = g_ptr_array_new();
}

void fake_world_clear(void)
{
    if (fake_world.jat_instances) {
        EXPECT(fake_world.jat_instances->len == 0, "an encoding instance was never finished");
        g_ptr_array_free(fake_world.jat_instances, TRUE);
        fake_world.jat_instances = NULL;
    }
    fake_world_forget_choice();
    g_clear_pointer(&last_sender, g_free);
    g_clear_pointer(&last_type, g_free);
    g_clear_pointer(&last_payload_ns, g_free);
}

void fake_world_forget_choice(void)
{
    g_clear_pointer(&fake_world.chosen, g_free);
}

bool fake_world_token_is_live(const char *token)
{
    for (guint i = 0; fake_world.jat_instances && i < fake_world.jat_instances->len; i++) {
        fake_jat_t *fake = fake_world.jat_instances->pdata[i];
        if (g_hash_table_contains(fake->live, token))
            return true;
    }
    return false;
}

bool fake_world_token_is_known(const char *token)
{
    for (guint i = 0; fake_world.jat_instances && i < fake_world.jat_instances->len; i++) {
        fake_jat_t *fake = fake_world.jat_instances->pdata[i];
        if (g_hash_table_contains(fake->known, token))
            return true;
    }
    return false;
}

bool fake_world_is_online(const char *name)
{
    if (!fake_world.dispatch)
        return false;
    GHashTableIter iter;
    gpointer value;
    g_hash_table_iter_init(&iter, fake_world.dispatch->online);
    while (g_hash_table_iter_next(&iter, NULL, &value))
        if (strcmp(value, name) == 0)
            return true;
    return false;
}

/* ---- Dispatch -------------------------------------------------------------- */

static int dispatch_init(const cp_host_api_t *api, cp_host_t *host, void **state)
{
    (void)api;
    (void)host;
    fake_dispatch_t *fake = g_new0(fake_dispatch_t, 1);
    fake->online = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
    fake_world.dispatch = fake;
    *state = fake;
    return CP_OK;
}

static void dispatch_fini(void *state)
{
    fake_dispatch_t *fake = state;
    /* fini() may come with resources still online (a reload replaced it). */
    if (fake_world.dispatch == fake)
        fake_world.dispatch = NULL;
    g_hash_table_destroy(fake->online);
    g_free(fake);
}

static void remember_request(const cp_dispatch_request_t *request)
{
    g_free(last_sender);
    g_free(last_type);
    g_free(last_payload_ns);
    last_sender = g_strdup(request->sender);
    last_type = g_strdup(request->type);
    last_payload_ns = g_strdup(request->payload_ns);
    fake_world.last_request = (cp_dispatch_request_t){
        .sender = last_sender, .type = last_type, .payload_ns = last_payload_ns};
}

static int dispatch_select(void *state, const cp_dispatch_request_t *request,
                           const cp_resource_t *const *candidates, size_t n)
{
    fake_dispatch_t *fake = state;
    EXPECT(n >= 1, "select() with %zu candidates", n);
    EXPECT(request->sender && request->type, "select() without sender or type");
    static const char *const types[] = {"get", "set", "chat", "normal", "groupchat", "headline",
                                        NULL};
    EXPECT(g_strv_contains(types, request->type), "select() for a stanza of type %s",
           request->type);
    EXPECT(request->payload_attributes != NULL, "select() without payload attributes");
    for (size_t i = 0; i < n; i++) {
        const char *name = g_hash_table_lookup(fake->online, candidates[i]);
        EXPECT(name != NULL, "candidate %zu was never announced online", i);
        EXPECT(name && strcmp(name, candidates[i]->name) == 0, "a candidate changed its name");
        EXPECT(strcmp(candidates[i]->show, "dnd") != 0 && strcmp(candidates[i]->show, "xa") != 0,
               "a draining resource (%s) is a candidate", candidates[i]->show);
    }
    fake_world.last_n = n;
    fake_world.last_candidates = candidates;
    remember_request(request);
    if (fake_world.decline || (fake_world.decline_unless_alone && n > 1))
        return CP_EDECLINE;
    size_t chosen = fake_world.pick % n;
    for (size_t i = 0; fake_world.preferred && i < n; i++)
        if (strcmp(candidates[i]->name, fake_world.preferred) == 0)
            chosen = i;
    g_free(fake_world.chosen);
    fake_world.chosen = g_strdup(candidates[chosen]->name);
    return (int)chosen;
}

static void dispatch_online(void *state, const cp_resource_t *resource)
{
    fake_dispatch_t *fake = state;
    EXPECT(!g_hash_table_contains(fake->online, resource), "resource_online() twice");
    EXPECT(resource->name && *resource->name, "a resource without a name");
    g_hash_table_insert(fake->online, (gpointer)resource, g_strdup(resource->name));
    fake_world.online_calls++;
}

static void dispatch_offline(void *state, const cp_resource_t *resource)
{
    fake_dispatch_t *fake = state;
    EXPECT(g_hash_table_remove(fake->online, resource),
           "resource_offline() for a resource not online");
    fake_world.offline_calls++;
}

static const cp_dispatch_ops_t dispatch_ops = {
    .size = sizeof(cp_dispatch_ops_t),
    .select = dispatch_select,
    .resource_online = dispatch_online,
    .resource_offline = dispatch_offline,
};

const cp_plugin_descriptor_t fake_dispatch_descriptor = {
    CP_PLUGIN_ABI_MAJOR, CP_PLUGIN_ABI_MINOR, CP_PLUGIN_DISPATCH, "fake", "a test's strategy",
    dispatch_init, dispatch_fini, &dispatch_ops,
};

/* ---- JAT ----------------------------------------------------------------- */

static int jat_init(const cp_host_api_t *api, cp_host_t *host, void **state)
{
    (void)api;
    (void)host;
    fake_jat_t *fake = g_new0(fake_jat_t, 1);
    fake->known = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    fake->live = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_ptr_array_add(fake_world.jat_instances, fake);
    *state = fake;
    return CP_OK;
}

static void jat_fini(void *state)
{
    fake_jat_t *fake = state;
    EXPECT(g_hash_table_size(fake->live) == 0, "fini() with %u token(s) never forgotten",
           g_hash_table_size(fake->live));
    g_hash_table_destroy(fake->live);
    g_hash_table_destroy(fake->known);
    g_ptr_array_remove(fake_world.jat_instances, fake);
    g_free(fake);
}

static int jat_encode(void *state, const char *jid, int64_t expires, char *token, size_t size)
{
    fake_jat_t *fake = state;
    (void)expires;
    EXPECT(size >= CP_TOKEN_MAX + 1, "encode() with a buffer of %zu", size);
    if (fake_world.fail_encode)
        return CP_ETOOLONG;
    snprintf(token, size, "t%u", ++fake_world.issued);
    g_hash_table_insert(fake->known, g_strdup(token), g_strdup(jid));
    g_hash_table_insert(fake->live, g_strdup(token), GUINT_TO_POINTER(1));
    return CP_OK;
}

static int jat_decode(void *state, const char *token, char *jid, size_t size)
{
    fake_jat_t *fake = state;
    EXPECT(size >= CP_JID_MAX + 1, "decode() with a buffer of %zu", size);
    const char *found = g_hash_table_lookup(fake->known, token);
    if (!found || fake_world.fail_decode)
        return CP_EBADTOKEN;
    g_strlcpy(jid, found, size);
    return CP_OK;
}

static void jat_forget(void *state, const char *token)
{
    fake_jat_t *fake = state;
    EXPECT(g_hash_table_remove(fake->live, token),
           "forget(%s): not issued by this instance, or forgotten already", token);
    fake_world.forgotten++;
}

static const cp_jat_ops_t jat_ops = {
    .size = sizeof(cp_jat_ops_t),
    .encode = jat_encode,
    .decode = jat_decode,
    .forget = jat_forget,
};

const cp_plugin_descriptor_t fake_jat_descriptor = {
    CP_PLUGIN_ABI_MAJOR, CP_PLUGIN_ABI_MINOR, CP_PLUGIN_JAT, "fake", "a test's encoding",
    jat_init, jat_fini, &jat_ops,
};
