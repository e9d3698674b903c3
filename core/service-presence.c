/* The service's presence towards users: see service-presence.h. */
#include "service-presence.h"

#include <glib.h>

#include "jid.h"
#include "log.h"
#include "stanza.h"

typedef struct subscriber {
    char *bare;  /* lowercased bare JID */
    GList link;  /* in by_age */
} subscriber_t;

struct service_presence {
    outbox_t *outbox;       /* borrowed */
    char *domain;
    size_t limit;           /* [limits] addresses */
    bool available;         /* what the resources allow now */
    bool announced;         /* what subscribers last heard (while up) */
    GHashTable *by_bare;    /* bare -> subscriber_t, owning */
    GQueue by_age;          /* subscriber_t, least recently heard from first */
    GString *scratch;
};

static void subscriber_free(gpointer data)
{
    subscriber_t *subscriber = data;
    g_free(subscriber->bare);
    g_free(subscriber);
}

service_presence_t *service_presence_new(const config_t *config, outbox_t *outbox)
{
    service_presence_t *presence = g_new0(service_presence_t, 1);
    presence->outbox = outbox;
    presence->by_bare = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, subscriber_free);
    g_queue_init(&presence->by_age);
    presence->scratch = g_string_sized_new(256);
    service_presence_reconfigure(presence, config);
    return presence;
}

void service_presence_free(service_presence_t *presence)
{
    if (!presence)
        return;
    g_hash_table_destroy(presence->by_bare);
    g_string_free(presence->scratch, TRUE);
    g_free(presence->domain);
    g_free(presence);
}

static void forget_oldest_beyond(service_presence_t *presence, size_t limit)
{
    subscriber_t *oldest;
    while (presence->by_age.length > limit && (oldest = g_queue_pop_head(&presence->by_age)))
        g_hash_table_remove(presence->by_bare, oldest->bare);
}

void service_presence_reconfigure(service_presence_t *presence, const config_t *config)
{
    g_free(presence->domain);
    presence->domain = g_strdup(config->domain);
    presence->limit = (size_t)config->addresses;
    forget_oldest_beyond(presence, presence->limit);
}

static char *bare_of(const char *jid)
{
    return g_ascii_strdown(jid, (gssize)jid_bare_length(jid));
}

static void send(service_presence_t *presence, const char *type, const char *to)
{
    stanza_write_presence(presence->scratch, type, presence->domain, to);
    outbox_send_string(presence->outbox, presence->scratch);
}

static void send_current(service_presence_t *presence, const char *to)
{
    send(presence, presence->available ? NULL : "unavailable", to);
}

static void remember(service_presence_t *presence, const char *from)
{
    char *bare = bare_of(from);
    subscriber_t *subscriber = g_hash_table_lookup(presence->by_bare, bare);
    if (subscriber) {
        g_free(bare);
        g_queue_unlink(&presence->by_age, &subscriber->link);
    } else {
        subscriber = g_new0(subscriber_t, 1);
        subscriber->bare = bare;
        subscriber->link.data = subscriber;
        g_hash_table_insert(presence->by_bare, subscriber->bare, subscriber);
    }
    g_queue_push_tail_link(&presence->by_age, &subscriber->link);
    forget_oldest_beyond(presence, presence->limit);
}

void service_presence_subscribe(service_presence_t *presence, const char *from)
{
    g_autofree char *bare = bare_of(from);
    send(presence, "subscribed", bare);
    send_current(presence, bare);
    remember(presence, from);
}

void service_presence_probe(service_presence_t *presence, const char *from)
{
    send_current(presence, from);
    remember(presence, from);
}

void service_presence_unsubscribe(service_presence_t *presence, const char *from)
{
    g_autofree char *bare = bare_of(from);
    send(presence, "unsubscribed", bare);
    subscriber_t *subscriber = g_hash_table_lookup(presence->by_bare, bare);
    if (subscriber) {
        g_queue_unlink(&presence->by_age, &subscriber->link);
        g_hash_table_remove(presence->by_bare, bare);
    }
}

void service_presence_set_available(service_presence_t *presence, bool available)
{
    presence->available = available;
    if (!outbox_is_up(presence->outbox) || presence->announced == available)
        return;
    presence->announced = available;
    log_info("the service is %s: telling %u subscribers", available ? "available" : "unavailable",
             presence->by_age.length);
    for (GList *link = presence->by_age.head; link; link = link->next)
        send_current(presence, ((subscriber_t *)link->data)->bare);
}

size_t service_presence_subscriber_count(const service_presence_t *presence)
{
    return g_hash_table_size(presence->by_bare);
}
