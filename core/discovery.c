/* Learning the target's resources, by presence or by ping: see
 * discovery.h. */
#include "discovery.h"

#include <string.h>

#include <client-proxy/plugin.h>

#include "jid.h"
#include "log.h"
#include "stanza.h"

#define REDISCOVER_FIRST_US (1 * G_USEC_PER_SEC)

/* A resource named in [proxy] resources, under discovery = ping. */
typedef struct pinged {
    char *name;
    char *ping_id;     /* the ping it owes an answer to, or NULL */
    int64_t ping_deadline; /* monotonic µs: no answer by then means gone */
} pinged_t;

struct discovery {
    outbox_t *outbox;          /* borrowed */
    discovery_events_t events;
    char *target;
    char *instance_domain;
    bool by_ping;
    int64_t ping_interval_us;
    int64_t ping_timeout_us;
    int64_t rediscover_max_us;
    GPtrArray *pinged;         /* pinged_t, under discovery = ping */
    unsigned serial;
    bool up;
    int64_t next_round;        /* monotonic µs: the next round of pings; -1 */
    int64_t rediscover_at;     /* monotonic µs: probe again; -1: no need */
    int64_t rediscover_delay;  /* µs */
    GString *scratch;
};

static void pinged_free(gpointer data)
{
    pinged_t *pinged = data;
    g_free(pinged->name);
    g_free(pinged->ping_id);
    g_free(pinged);
}

discovery_t *discovery_new(const config_t *config, outbox_t *outbox,
                           const discovery_events_t *events)
{
    discovery_t *discovery = g_new0(discovery_t, 1);
    discovery->outbox = outbox;
    discovery->events = *events;
    discovery->pinged = g_ptr_array_new_with_free_func(pinged_free);
    discovery->scratch = g_string_sized_new(256);
    discovery->next_round = -1;
    discovery->rediscover_at = -1;
    discovery->rediscover_delay = REDISCOVER_FIRST_US;
    discovery_reconfigure(discovery, config);
    return discovery;
}

void discovery_free(discovery_t *discovery)
{
    if (!discovery)
        return;
    g_ptr_array_free(discovery->pinged, TRUE);
    g_string_free(discovery->scratch, TRUE);
    g_free(discovery->target);
    g_free(discovery->instance_domain);
    g_free(discovery);
}

void discovery_reconfigure(discovery_t *discovery, const config_t *config)
{
    g_free(discovery->target);
    discovery->target = g_strdup(config->target);
    g_free(discovery->instance_domain);
    discovery->instance_domain = g_strdup(config->instance_domain);
    discovery->by_ping = config->discover_by_ping;
    discovery->ping_interval_us = (int64_t)config->ping_interval * G_USEC_PER_SEC;
    discovery->ping_timeout_us = (int64_t)config->ping_timeout * G_USEC_PER_SEC;
    discovery->rediscover_max_us = (int64_t)config->reconnect_max * G_USEC_PER_SEC;

    /* The names to ping; one that is no longer named is gone. */
    GPtrArray *old = discovery->pinged;
    discovery->pinged = g_ptr_array_new_with_free_func(pinged_free);
    for (char **name = config->discover_by_ping ? config->resources : NULL; name && *name;
         name++) {
        pinged_t *pinged = g_new0(pinged_t, 1);
        pinged->name = g_strdup(*name);
        g_ptr_array_add(discovery->pinged, pinged);
    }
    for (guint i = 0; i < old->len; i++) {
        pinged_t *before = old->pdata[i];
        bool still = false;
        for (guint j = 0; j < discovery->pinged->len && !still; j++)
            still = strcmp(((pinged_t *)discovery->pinged->pdata[j])->name, before->name) == 0;
        if (!still)
            discovery->events.gone(before->name, discovery->events.userdata);
    }
    g_ptr_array_free(old, TRUE);
    if (discovery->by_ping && discovery->up && discovery->next_round < 0)
        discovery->next_round = g_get_monotonic_time();
}

bool discovery_by_presence(const discovery_t *discovery)
{
    return !discovery->by_ping;
}

static void send_presence(discovery_t *discovery, const char *type)
{
    stanza_write_presence(discovery->scratch, type, discovery->instance_domain,
                          discovery->target);
    outbox_send_string(discovery->outbox, discovery->scratch);
}

/* The probe first: Prosody cancels a pending subscription that a probe
 * follows.  Once subscribed, the server sends nothing by itself after a
 * reconnect, so the probe is what brings the resources back. */
static void ask_for_presence(discovery_t *discovery)
{
    send_presence(discovery, "probe");
    send_presence(discovery, "subscribe");
}

static void ping(discovery_t *discovery, pinged_t *pinged, int64_t now)
{
    g_free(pinged->ping_id);
    pinged->ping_id =
        g_strdup_printf(DISCOVERY_PING_ID_PREFIX "%u", ++discovery->serial);
    pinged->ping_deadline = now + discovery->ping_timeout_us;
    char to[CP_JID_MAX + 1];
    jid_join(to, sizeof to, discovery->target, pinged->name);
    stanza_write_ping(discovery->scratch, pinged->ping_id, discovery->instance_domain, to);
    outbox_send_string(discovery->outbox, discovery->scratch);
}

void discovery_connected(discovery_t *discovery, int64_t now)
{
    discovery->up = true;
    discovery->rediscover_at = -1;
    discovery->rediscover_delay = REDISCOVER_FIRST_US;
    if (discovery->by_ping) {
        discovery->next_round = now;
        discovery_due(discovery, now);
    } else {
        ask_for_presence(discovery);
    }
    /* Our own presence, so that the target may see the service online. */
    send_presence(discovery, NULL);
}

void discovery_disconnected(discovery_t *discovery)
{
    discovery->up = false;
    discovery->next_round = -1;
    discovery->rediscover_at = -1;
    for (guint i = 0; i < discovery->pinged->len; i++)
        g_clear_pointer(&((pinged_t *)discovery->pinged->pdata[i])->ping_id, g_free);
}

void discovery_presence_seen(discovery_t *discovery)
{
    discovery->rediscover_at = -1;
    discovery->rediscover_delay = REDISCOVER_FIRST_US;
}

void discovery_presence_lost(discovery_t *discovery, int64_t now)
{
    if (discovery->by_ping || discovery->rediscover_at >= 0)
        return;
    discovery->rediscover_at = now + discovery->rediscover_delay;
}

bool discovery_handle_reply(discovery_t *discovery, const wire_stanza_t *iq)
{
    if (!iq->id || !g_str_has_prefix(iq->id, DISCOVERY_PING_ID_PREFIX))
        return false;
    const char *name = jid_resource(iq->from);
    for (guint i = 0; name && jid_bare_equal(iq->from, discovery->target) &&
                      i < discovery->pinged->len;
         i++) {
        pinged_t *pinged = discovery->pinged->pdata[i];
        if (strcmp(pinged->name, name) != 0 || g_strcmp0(pinged->ping_id, iq->id) != 0)
            continue;
        g_clear_pointer(&pinged->ping_id, g_free);
        /* An error is the server saying the resource is not there (or one
         * that does not know XEP-0199, which cannot be told from it). */
        if (strcmp(iq->type, "result") == 0)
            discovery->events.alive(pinged->name, discovery->events.userdata);
        else
            discovery->events.gone(pinged->name, discovery->events.userdata);
        return true;
    }
    log_debug("ignored ping reply %s from %s: no such ping outstanding", iq->id, iq->from);
    return true;
}

void discovery_due(discovery_t *discovery, int64_t now)
{
    if (!discovery->up)
        return;
    if (discovery->rediscover_at >= 0 && discovery->rediscover_at <= now) {
        log_info("asking %s for its presence again", discovery->target);
        ask_for_presence(discovery);
        discovery->rediscover_delay =
            MIN(discovery->rediscover_delay * 2, discovery->rediscover_max_us);
        discovery->rediscover_at = now + discovery->rediscover_delay;
    }
    for (guint i = 0; i < discovery->pinged->len; i++) {
        pinged_t *pinged = discovery->pinged->pdata[i];
        if (pinged->ping_id && pinged->ping_deadline <= now) {
            /* Said once, by the router, when it was online: a resource that
             * stays hung is not news every round. */
            g_clear_pointer(&pinged->ping_id, g_free);
            log_debug("resource %s/%s did not answer its ping within %" G_GINT64_FORMAT " s",
                      discovery->target, pinged->name,
                      discovery->ping_timeout_us / G_USEC_PER_SEC);
            discovery->events.gone(pinged->name, discovery->events.userdata);
        }
    }
    if (discovery->next_round >= 0 && discovery->next_round <= now) {
        for (guint i = 0; i < discovery->pinged->len; i++) {
            pinged_t *pinged = discovery->pinged->pdata[i];
            if (!pinged->ping_id) /* one still waiting for its answer keeps waiting */
                ping(discovery, pinged, now);
        }
        discovery->next_round = now + discovery->ping_interval_us;
    }
}

static int64_t earlier(int64_t a, int64_t b)
{
    return a < 0 ? b : b < 0 ? a : MIN(a, b);
}

int64_t discovery_next_due(const discovery_t *discovery)
{
    int64_t next = earlier(discovery->next_round, discovery->rediscover_at);
    for (guint i = 0; i < discovery->pinged->len; i++) {
        const pinged_t *pinged = discovery->pinged->pdata[i];
        if (pinged->ping_id)
            next = earlier(next, pinged->ping_deadline);
    }
    return next;
}
