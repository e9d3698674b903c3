/* Requests forwarded to a resource and not yet answered. */
#ifndef CP_CORE_PENDING_H
#define CP_CORE_PENDING_H

#include <stdint.h>

#include <glib.h>

#include "resources.h"

typedef struct pending {
    char *token;          /* the resourcepart it was sent from; with id, the key */
    char *id;             /* the sender's id, kept unchanged */
    char *sender;         /* full JID that asked */
    resource_t *resource; /* where it went; owned by the resource set */
    struct plugin *jat;   /* the encoding that made the token (a reference the
                             router holds): it decodes the reply, even after
                             a reload has put another in its place */
    char *retry_request;  /* a get's bytes as received, kept for one retry,
                             or NULL */
    bool retried;         /* already moved to another resource once */
    int64_t sent_at;      /* monotonic µs */
    int64_t deadline;     /* monotonic µs */
    GList resource_link;  /* in resource->pending */
    GList deadline_link;  /* in the table's deadline order */
} pending_t;

typedef struct pending_table pending_table_t;

pending_table_t *pending_new(void);
/* The table must be empty: every request is answered before it goes. */
void pending_free(pending_table_t *table);

/* Records a request, with RETRY_REQUEST (RETRY_LENGTH bytes) to keep for a
 * retry, or NULL.  Everything is copied, into one allocation with the
 * entry.  Returns the entry (owned by TABLE), or NULL when one with the
 * same TOKEN and ID is in flight. */
pending_t *pending_add(pending_table_t *table, const char *token, const char *id,
                       const char *sender, const char *retry_request, size_t retry_length,
                       resource_t *resource, int64_t now, int64_t deadline);

/* Returns the entry for TOKEN and ID, or NULL. */
pending_t *pending_lookup(pending_table_t *table, const char *token, const char *id);

/* Moves ENTRY to RESOURCE (a retry), keeping its key and deadline. */
void pending_move(pending_table_t *table, pending_t *entry, resource_t *resource);

/* Unlinks ENTRY from the table and its resource, and frees it. */
void pending_remove(pending_table_t *table, pending_t *entry);

/* The entry with the earliest deadline, or NULL when empty. */
pending_t *pending_earliest(pending_table_t *table);

size_t pending_count(const pending_table_t *table);

#endif
