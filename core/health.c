/* Benching resources that stop answering, and pinging them: see health.h. */
#include "health.h"

#include <string.h>

#include <client-proxy/plugin.h>

#include "jid.h"
#include "log.h"
#include "roster.h"
#include "stanza.h"

struct health {
    outbox_t *outbox;          /* borrowed */
    char *target;
    char *instance_domain;     /* pings come from it: replies come back to us */
    int unhealthy_after;       /* 0: never bench */
    int64_t ping_interval_us;  /* request_timeout */
    unsigned ping_serial;
    GHashTable *benched;       /* resource_t, borrowed from the roster */
    GString *scratch;
};

health_t *health_new(const config_t *config, outbox_t *outbox)
{
    health_t *health = g_new0(health_t, 1);
    health->outbox = outbox;
    health->benched = g_hash_table_new(g_direct_hash, g_direct_equal);
    health->scratch = g_string_sized_new(256);
    health_reconfigure(health, config);
    return health;
}

void health_free(health_t *health)
{
    if (!health)
        return;
    g_assert(g_hash_table_size(health->benched) == 0);
    g_hash_table_destroy(health->benched);
    g_string_free(health->scratch, TRUE);
    g_free(health->target);
    g_free(health->instance_domain);
    g_free(health);
}

void health_reconfigure(health_t *health, const config_t *config)
{
    g_free(health->target);
    health->target = g_strdup(config->target);
    g_free(health->instance_domain);
    health->instance_domain = g_strdup(config->instance_domain);
    health->unhealthy_after = config->unhealthy_after;
    health->ping_interval_us = (int64_t)config->request_timeout * G_USEC_PER_SEC;
}

static void send_ping(health_t *health, resource_t *resource, int64_t now)
{
    health_record_t *record = &resource->health;
    g_free(record->ping_id);
    record->ping_id = g_strdup_printf(HEALTH_PING_ID_PREFIX "%u", ++health->ping_serial);
    record->ping_due = now + health->ping_interval_us;

    char to[CP_JID_MAX + 1];
    jid_join(to, sizeof to, health->target, resource->info.name);
    stanza_write_ping(health->scratch, record->ping_id, health->instance_domain, to);
    outbox_send_string(health->outbox, health->scratch);
}

bool health_note_failure(health_t *health, resource_t *resource, const char *why)
{
    health_record_t *record = &resource->health;
    record->consecutive_failures++;
    if (health->unhealthy_after == 0 || record->benched ||
        record->consecutive_failures < (unsigned)health->unhealthy_after)
        return false;
    /* "timed out 3 times in a row": the wording operators (and tests) grep
     * for since timeouts were the only failure. */
    log_warning("resource %s/%s %s %u times in a row: no new requests until it answers a ping",
                health->target, resource->info.name, why, record->consecutive_failures);
    record->benched = true;
    g_hash_table_add(health->benched, resource);
    send_ping(health, resource, g_get_monotonic_time());
    return true;
}

void health_note_answer(resource_t *resource)
{
    resource->health.consecutive_failures = 0;
}

bool health_note_ping_reply(health_t *health, resource_t *resource, const char *id,
                            const char *type)
{
    health_record_t *record = &resource->health;
    if (!record->ping_id || strcmp(record->ping_id, id) != 0) {
        log_debug("ignored ping reply %s from %s/%s: no such ping outstanding", id,
                  health->target, resource->info.name);
        return false;
    }
    if (strcmp(type, "result") != 0) {
        log_info("resource %s/%s answered its ping with an error: still benched",
                 health->target, resource->info.name);
        return false;
    }
    g_clear_pointer(&record->ping_id, g_free);
    record->benched = false;
    record->consecutive_failures = 0;
    g_hash_table_remove(health->benched, resource);
    log_info("resource %s/%s answered a ping: it takes requests again", health->target,
             resource->info.name);
    return true;
}

bool health_is_benched(const resource_t *resource)
{
    return resource->health.benched;
}

void health_forget(health_t *health, resource_t *resource)
{
    g_hash_table_remove(health->benched, resource);
    g_clear_pointer(&resource->health.ping_id, g_free);
    resource->health = (health_record_t){0};
}

void health_ping_due(health_t *health, int64_t now)
{
    if (!outbox_is_up(health->outbox))
        return; /* the resources are forgotten when the stream drops */
    GHashTableIter iter;
    gpointer resource;
    g_hash_table_iter_init(&iter, health->benched);
    while (g_hash_table_iter_next(&iter, &resource, NULL))
        if (((resource_t *)resource)->health.ping_due <= now)
            send_ping(health, resource, now);
}

int64_t health_next_due(const health_t *health)
{
    int64_t next = -1;
    GHashTableIter iter;
    gpointer resource;
    g_hash_table_iter_init(&iter, health->benched);
    while (g_hash_table_iter_next(&iter, &resource, NULL)) {
        int64_t due = ((resource_t *)resource)->health.ping_due;
        if (next < 0 || due < next)
            next = due;
    }
    return next;
}
