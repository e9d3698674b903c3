/* Overload protection: bounds on requests in flight, in all and per sender,
 * and a per-sender rate limit (token bucket).  A sender is a bare JID, so
 * that many resources of one account share one allowance. */
#ifndef CP_CORE_OVERLOAD_H
#define CP_CORE_OVERLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

typedef enum {
    OVERLOAD_ADMITTED,
    OVERLOAD_FULL,          /* too many requests in flight: wait/resource-constraint */
    OVERLOAD_SENDER_FULL,   /* this sender has too many in flight: wait/resource-constraint */
    OVERLOAD_RATE,          /* this sender is over its rate: wait/policy-violation */
} overload_verdict_t;

typedef struct overload overload_t;

/* Reads the [limits] settings of CONFIG (only during the call). */
overload_t *overload_new(const config_t *config);
void overload_free(overload_t *limits);

/* Takes new settings; what is in flight stays counted. */
void overload_reconfigure(overload_t *limits, const config_t *config);

/* Decides whether SENDER (a full or bare JID) may place a request at NOW
 * (monotonic µs).  An admitted request counts as in flight until
 * overload_release() for the same sender.  O(1) amortised, whatever the
 * senders do: making room for a new sender never scans the table. */
overload_verdict_t overload_admit(overload_t *limits, const char *sender, int64_t now);

/* A request that overload_admit() admitted for SENDER has ended. */
void overload_release(overload_t *limits, const char *sender);

/* How many senders are tracked now (bounded whatever they send). */
size_t overload_tracked_senders(const overload_t *limits);

/* How many tracked senders were looked at to forget them since
 * overload_new(): for tests, which show that it grows with admissions, not
 * with the table. */
size_t overload_senders_examined(const overload_t *limits);

#endif
