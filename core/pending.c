#include "pending.h"

#include <string.h>

struct pending_table {
    GHashTable *entries; /* pending_t -> itself, keyed on (token, id), owning */
    GQueue by_deadline;  /* earliest first */
};

static guint pending_hash(gconstpointer key)
{
    const pending_t *entry = key;
    return g_str_hash(entry->token) * 31u + g_str_hash(entry->id);
}

static gboolean pending_equal(gconstpointer a, gconstpointer b)
{
    const pending_t *x = a, *y = b;
    return strcmp(x->token, y->token) == 0 && strcmp(x->id, y->id) == 0;
}

/* The entry and its three strings are one allocation. */
static void pending_destroy(pending_t *entry)
{
    g_free(entry);
}

pending_table_t *pending_new(void)
{
    pending_table_t *table = g_new0(pending_table_t, 1);
    table->entries = g_hash_table_new_full(pending_hash, pending_equal,
                                           (GDestroyNotify)pending_destroy, NULL);
    g_queue_init(&table->by_deadline);
    return table;
}

void pending_free(pending_table_t *table)
{
    if (!table)
        return;
    g_assert(g_hash_table_size(table->entries) == 0);
    g_hash_table_destroy(table->entries);
    g_free(table);
}

pending_t *pending_lookup(pending_table_t *table, const char *token, const char *id)
{
    pending_t key = {.token = (char *)token, .id = (char *)id};
    return g_hash_table_lookup(table->entries, &key);
}

pending_t *pending_add(pending_table_t *table, const char *token, const char *id,
                       const char *sender, const char *retry_request, size_t retry_length,
                       resource_t *resource, int64_t now, int64_t deadline)
{
    if (pending_lookup(table, token, id))
        return NULL;

    size_t token_size = strlen(token) + 1, id_size = strlen(id) + 1;
    size_t sender_size = strlen(sender) + 1;
    size_t retry_size = retry_request ? retry_length + 1 : 0;
    pending_t *entry =
        g_malloc0(sizeof *entry + token_size + id_size + sender_size + retry_size);
    entry->token = memcpy((char *)(entry + 1), token, token_size);
    entry->id = memcpy(entry->token + token_size, id, id_size);
    entry->sender = memcpy(entry->id + id_size, sender, sender_size);
    if (retry_request) {
        entry->retry_request = memcpy(entry->sender + sender_size, retry_request, retry_length);
        entry->retry_request[retry_length] = '\0';
    }
    entry->resource = resource;
    entry->sent_at = now;
    entry->deadline = deadline;
    entry->resource_link.data = entry;
    entry->deadline_link.data = entry;
    g_hash_table_add(table->entries, entry);
    g_queue_push_tail_link(&resource->pending, &entry->resource_link);
    resource->info.in_flight++;

    /* Deadlines mostly arrive in order, so the walk from the tail is short;
     * only a shortened timeout makes it go further. */
    GList *after = table->by_deadline.tail;
    while (after && ((pending_t *)after->data)->deadline > deadline)
        after = after->prev;
    if (after)
        g_queue_insert_after_link(&table->by_deadline, after, &entry->deadline_link);
    else
        g_queue_push_head_link(&table->by_deadline, &entry->deadline_link);
    return entry;
}

void pending_move(pending_table_t *table, pending_t *entry, resource_t *resource)
{
    (void)table;
    g_queue_unlink(&entry->resource->pending, &entry->resource_link);
    entry->resource->info.in_flight--;
    entry->resource = resource;
    g_queue_push_tail_link(&resource->pending, &entry->resource_link);
    resource->info.in_flight++;
}

void pending_remove(pending_table_t *table, pending_t *entry)
{
    g_queue_unlink(&table->by_deadline, &entry->deadline_link);
    g_queue_unlink(&entry->resource->pending, &entry->resource_link);
    entry->resource->info.in_flight--;
    g_hash_table_remove(table->entries, entry);
}

pending_t *pending_earliest(pending_table_t *table)
{
    return table->by_deadline.head ? table->by_deadline.head->data : NULL;
}

size_t pending_count(const pending_table_t *table)
{
    return g_hash_table_size(table->entries);
}
