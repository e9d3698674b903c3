/* Overload protection: see overload.h. */
#include "overload.h"

#include <string.h>

#include <glib.h>

#include "jid.h"

/* Senders tracked at most, per request allowed in flight: a sender is kept
 * while it has a request in flight or its bucket is refilling, and a flood
 * of one-off senders must not grow the table without end. */
#define TRACKED_PER_IN_FLIGHT 4

/* A sender with nothing in flight whose bucket is refilling is quiet: it is
 * forgotten once its bucket is full, when it is like one never seen.  Quiet
 * senders wait in QUIET_QUEUES queues, each in the order they went quiet, by
 * how long their bucket needs to fill: queue q holds those that need more
 * than FULL / 2^(q+1) and at most FULL / 2^q, FULL (burst / rate) being a
 * whole refill; the last queue also holds all that need less.  Those ahead
 * of a sender went quiet no later and need at most twice as long, so looking
 * at the front of each queue only, a sender is forgotten at most twice as
 * long after going quiet as its bucket needs, and never before: the front
 * is checked against the clock.  That is what makes admission O(1)
 * amortised: it looks at QUIET_QUEUES fronts and at each sender it forgets,
 * and never at the whole table. */
#define QUIET_QUEUES 16

typedef struct sender {
    char *jid;           /* the bare JID, the table's key; owned */
    unsigned in_flight;
    double tokens;       /* requests it may still send at once */
    int64_t refilled_at; /* monotonic µs */
    int quiet_queue;     /* index into overload_t.quiet, or -1 when not quiet */
    GList quiet_link;    /* its link in that queue; data points to the sender */
} sender_t;

struct overload {
    GHashTable *senders; /* bare JID -> sender_t, owning */
    GQueue quiet[QUIET_QUEUES]; /* of sender_t, linked through quiet_link */
    unsigned in_flight;
    unsigned max_in_flight;
    unsigned max_per_sender;
    double rate;         /* tokens per second; 0: no rate limit */
    double burst;
    int64_t latest;      /* the latest time overload_admit() was given, µs */
    size_t examined;     /* senders looked at to forget them, for tests */
};

static void free_sender(gpointer data)
{
    sender_t *sender = data;
    g_free(sender->jid);
    g_free(sender);
}

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

static void forget(overload_t *limits, sender_t *sender)
{
    if (sender->quiet_queue >= 0)
        g_queue_unlink(&limits->quiet[sender->quiet_queue], &sender->quiet_link);
    g_hash_table_remove(limits->senders, sender->jid);
}

/* SENDER has nothing in flight any more: it waits for its bucket to fill,
 * or, when it is full, goes at once.  Without an own clock, "now" is the
 * latest time admission was given: it is at most the real time, so the need
 * is overestimated, never under. */
static void go_quiet(overload_t *limits, sender_t *sender)
{
    if (limits->rate > 0) {
        refill(limits, sender, MAX(limits->latest, sender->refilled_at));
        double share_missing = (limits->burst - sender->tokens) / limits->burst;
        if (share_missing > 0) {
            int queue = 0;
            for (; share_missing <= 0.5 && queue < QUIET_QUEUES - 1; share_missing *= 2)
                queue++;
            sender->quiet_queue = queue;
            g_queue_push_tail_link(&limits->quiet[queue], &sender->quiet_link);
            return;
        }
    }
    forget(limits, sender);
}

/* Forgets the quiet senders at the front of each queue whose bucket is full
 * again at NOW. */
static void forget_idle(overload_t *limits, int64_t now)
{
    for (int queue = 0; queue < QUIET_QUEUES; queue++) {
        sender_t *front;
        while ((front = g_queue_peek_head(&limits->quiet[queue]))) {
            limits->examined++;
            if (!is_idle(limits, front, now))
                break;
            forget(limits, front);
        }
    }
}

overload_t *overload_new(const config_t *config)
{
    overload_t *limits = g_new0(overload_t, 1);
    limits->senders = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, free_sender);
    for (int queue = 0; queue < QUIET_QUEUES; queue++)
        g_queue_init(&limits->quiet[queue]);
    overload_reconfigure(limits, config);
    return limits;
}

void overload_free(overload_t *limits)
{
    if (!limits)
        return;
    g_hash_table_destroy(limits->senders); /* the queues' links go with their senders */
    g_free(limits);
}

/* Quiet senders keep their queue: the front's check against the clock
 * still forgets none too early, and those that go quiet from now on are
 * queued by the new rate and burst. */
void overload_reconfigure(overload_t *limits, const config_t *config)
{
    limits->max_in_flight = (unsigned)config->in_flight;
    limits->max_per_sender = (unsigned)config->in_flight_per_sender;
    limits->rate = config->rate_per_sender;
    limits->burst = config->burst_per_sender;
}

overload_verdict_t overload_admit(overload_t *limits, const char *sender_jid, int64_t now)
{
    limits->latest = MAX(limits->latest, now);
    if (limits->in_flight >= limits->max_in_flight)
        return OVERLOAD_FULL;

    char bare[JID_BARE_MAX + 1];
    if (!jid_split_bare(sender_jid, bare, sizeof bare))
        return OVERLOAD_SENDER_FULL;
    sender_t *sender = g_hash_table_lookup(limits->senders, bare);
    if (!sender) {
        forget_idle(limits, now);
        size_t cap = (size_t)limits->max_in_flight * TRACKED_PER_IN_FLIGHT;
        if (g_hash_table_size(limits->senders) >= cap)
            return OVERLOAD_FULL;
        sender = g_new0(sender_t, 1);
        sender->jid = g_strdup(bare);
        sender->tokens = limits->burst;
        sender->refilled_at = now;
        sender->quiet_queue = -1;
        sender->quiet_link.data = sender;
        g_hash_table_insert(limits->senders, sender->jid, sender);
    }

    if (sender->in_flight >= limits->max_per_sender)
        return OVERLOAD_SENDER_FULL;
    if (limits->rate > 0) {
        refill(limits, sender, now);
        if (sender->tokens < 1.0)
            return OVERLOAD_RATE;
        sender->tokens -= 1.0;
    }
    if (sender->quiet_queue >= 0) {
        g_queue_unlink(&limits->quiet[sender->quiet_queue], &sender->quiet_link);
        sender->quiet_queue = -1;
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
    if (sender->in_flight == 0)
        go_quiet(limits, sender);
}

size_t overload_tracked_senders(const overload_t *limits)
{
    return g_hash_table_size(limits->senders);
}

size_t overload_senders_examined(const overload_t *limits)
{
    return limits->examined;
}
