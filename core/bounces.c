/* Routing a bounce back to the resource that sent the message: see
 * bounces.h. */
#include "bounces.h"

#include <string.h>

#include <glib.h>

#include "jid.h"

typedef struct sent {
    char *key;        /* user (bare part lowercased) \x1f id */
    char *resource;
    char *address;
    int64_t sent_at;  /* monotonic µs */
    GList link;       /* in by_age */
} sent_t;

struct bounces {
    GHashTable *by_key; /* key -> sent_t, owning */
    GQueue by_age;      /* sent_t, oldest first */
};

static void sent_free(gpointer data)
{
    sent_t *sent = data;
    g_free(sent->key);
    g_free(sent->resource);
    g_free(sent->address);
    g_free(sent);
}

/* The server answers from the address we sent to, perhaps in another case
 * in its bare part. */
static char *key_of(const char *user, const char *id)
{
    size_t bare = jid_bare_length(user);
    g_autofree char *lower = g_ascii_strdown(user, (gssize)bare);
    return g_strdup_printf("%s%s\x1f%s", lower, user + bare, id);
}

bounces_t *bounces_new(void)
{
    bounces_t *bounces = g_new0(bounces_t, 1);
    bounces->by_key = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, sent_free);
    g_queue_init(&bounces->by_age);
    return bounces;
}

void bounces_free(bounces_t *bounces)
{
    if (!bounces)
        return;
    g_hash_table_destroy(bounces->by_key);
    g_free(bounces);
}

static void drop(bounces_t *bounces, sent_t *sent)
{
    g_queue_unlink(&bounces->by_age, &sent->link);
    g_hash_table_remove(bounces->by_key, sent->key);
}

static void expire(bounces_t *bounces, int64_t now)
{
    sent_t *oldest;
    while ((oldest = g_queue_peek_head(&bounces->by_age)) &&
           (now - oldest->sent_at > (int64_t)BOUNCES_KEEP_S * G_USEC_PER_SEC ||
            bounces->by_age.length > BOUNCES_MAX))
        drop(bounces, oldest);
}

void bounces_remember(bounces_t *bounces, const char *user, const char *id,
                      const char *resource, const char *address, int64_t now)
{
    char *key = key_of(user, id);
    sent_t *earlier = g_hash_table_lookup(bounces->by_key, key);
    if (earlier)
        drop(bounces, earlier); /* the same id again: the newest sender wins */
    sent_t *sent = g_new0(sent_t, 1);
    sent->key = key;
    sent->resource = g_strdup(resource);
    sent->address = g_strdup(address);
    sent->sent_at = now;
    sent->link.data = sent;
    g_hash_table_insert(bounces->by_key, sent->key, sent);
    g_queue_push_tail_link(&bounces->by_age, &sent->link);
    expire(bounces, now);
}

bool bounces_take(bounces_t *bounces, const char *user, const char *id, int64_t now,
                  char **resource, char **address)
{
    expire(bounces, now);
    g_autofree char *key = key_of(user, id);
    sent_t *sent = g_hash_table_lookup(bounces->by_key, key);
    if (!sent)
        return false;
    *resource = g_steal_pointer(&sent->resource);
    *address = g_steal_pointer(&sent->address);
    drop(bounces, sent);
    return true;
}

size_t bounces_count(const bounces_t *bounces)
{
    return g_hash_table_size(bounces->by_key);
}
