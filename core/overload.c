#include "overload.h"

#include <string.h>

#include <glib.h>

#include "jid.h"

/* Senders tracked at most, per request allowed in flight: a sender is kept
 * while it has a request in flight or its bucket is refilling, and a flood
 * of one-off senders must not grow the table without end. */
#define TRACKED_PER_IN_FLIGHT 4
/* Admissions between two sweeps of idle senders. */
#define SWEEP_EVERY 1024

typedef struct sender {
    unsigned in_flight;
    double tokens;       /* requests it may still send at once */
    int64_t refilled_at; /* monotonic µs */
} sender_t;

struct overload {
    GHashTable *senders; /* bare JID -> sender_t, owning */
    unsigned in_flight;
    unsigned max_in_flight;
    unsigned max_per_sender;
    double rate;         /* tokens per second; 0: no rate limit */
    double burst;
    unsigned admissions_since_sweep;
};

static void refill(const overload_t *limits, sender_t *sender, int64_t now)
{
    double elapsed_s = (double)(now - sender->refilled_at) / G_USEC_PER_SEC;
    sender->tokens = MIN(limits->burst, sender->tokens + elapsed_s * limits->rate);
    sender->refilled_at = now;
}

/* A sender with nothing in flight and a full bucket is like one never seen. */
static bool is_idle(const overload_t *limits, sender_t *sender, int64_t now)
{
    if (sender->in_flight > 0)
        return false;
    if (limits->rate <= 0)
        return true;
    refill(limits, sender, now);
    return sender->tokens >= limits->burst;
}

static void sweep(overload_t *limits, int64_t now)
{
    GHashTableIter iter;
    gpointer value;
    g_hash_table_iter_init(&iter, limits->senders);
    while (g_hash_table_iter_next(&iter, NULL, &value))
        if (is_idle(limits, value, now))
            g_hash_table_iter_remove(&iter);
    limits->admissions_since_sweep = 0;
}

overload_t *overload_new(const config_t *config)
{
    overload_t *limits = g_new0(overload_t, 1);
    limits->senders = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    overload_reconfigure(limits, config);
    return limits;
}

void overload_free(overload_t *limits)
{
    if (!limits)
        return;
    g_hash_table_destroy(limits->senders);
    g_free(limits);
}

void overload_reconfigure(overload_t *limits, const config_t *config)
{
    limits->max_in_flight = (unsigned)config->in_flight;
    limits->max_per_sender = (unsigned)config->in_flight_per_sender;
    limits->rate = config->rate_per_sender;
    limits->burst = config->burst_per_sender;
}

overload_verdict_t overload_admit(overload_t *limits, const char *sender_jid, int64_t now)
{
    if (limits->in_flight >= limits->max_in_flight)
        return OVERLOAD_FULL;

    char bare[JID_BARE_MAX + 1];
    if (!jid_split_bare(sender_jid, bare, sizeof bare))
        return OVERLOAD_SENDER_FULL;
    sender_t *sender = g_hash_table_lookup(limits->senders, bare);
    if (!sender) {
        size_t cap = (size_t)limits->max_in_flight * TRACKED_PER_IN_FLIGHT;
        if (g_hash_table_size(limits->senders) >= cap ||
            ++limits->admissions_since_sweep >= SWEEP_EVERY)
            sweep(limits, now);
        if (g_hash_table_size(limits->senders) >= cap)
            return OVERLOAD_FULL;
        sender = g_new0(sender_t, 1);
        sender->tokens = limits->burst;
        sender->refilled_at = now;
        g_hash_table_insert(limits->senders, g_strdup(bare), sender);
    }

    if (sender->in_flight >= limits->max_per_sender)
        return OVERLOAD_SENDER_FULL;
    if (limits->rate > 0) {
        refill(limits, sender, now);
        if (sender->tokens < 1.0)
            return OVERLOAD_RATE;
        sender->tokens -= 1.0;
    }
    sender->in_flight++;
    limits->in_flight++;
    return OVERLOAD_ADMITTED;
}

void overload_release(overload_t *limits, const char *sender_jid)
{
    char bare[JID_BARE_MAX + 1];
    sender_t *sender = jid_split_bare(sender_jid, bare, sizeof bare)
                           ? g_hash_table_lookup(limits->senders, bare)
                           : NULL;
    g_return_if_fail(sender && sender->in_flight > 0 && limits->in_flight > 0);
    sender->in_flight--;
    limits->in_flight--;
    if (sender->in_flight == 0 && limits->rate <= 0)
        g_hash_table_remove(limits->senders, bare);
}

size_t overload_tracked_senders(const overload_t *limits)
{
    return g_hash_table_size(limits->senders);
}
