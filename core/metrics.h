/* Metrics: what client-proxy counts, rendered in Prometheus' text
 * exposition format (version 0.0.4) for GET /metrics.
 *
 * Counters and histograms live here and survive reloads; gauges (requests
 * in flight, resources) are read from the router when scraped, so that a
 * resource gone is a label set gone.  Every label value is one of a closed
 * set written in client-proxy's code, or a resource name of the target:
 * never anything a sender chose.  Every function accepts METRICS == NULL
 * and then does nothing (unit tests run without). */
#ifndef CP_CORE_METRICS_H
#define CP_CORE_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

typedef enum metrics_direction {
    METRICS_INBOUND,  /* a user asks or writes to the service */
    METRICS_OUTBOUND, /* the service asks or writes to a user */
} metrics_direction_t;

typedef struct metrics metrics_t;

/* BUILD_ENCODING and BUILD_DISPATCH name the plugins, for build_info;
 * update them with metrics_set_plugins() on a reload. */
metrics_t *metrics_new(void);
void metrics_free(metrics_t *metrics);

void metrics_set_plugins(metrics_t *metrics, const char *encoding, const char *dispatch);

/* A request ended with OUTCOME: "result", "error" (the answerer's own), or
 * the condition of the error client-proxy answered with (a literal).
 * SECONDS is the time from its arrival to its answer, as its sender waited
 * (a hold included), or negative when it was answered at once. */
void metrics_count_request(metrics_t *metrics, metrics_direction_t direction,
                           const char *outcome, double seconds);

/* A message was forwarded ("forwarded"), or answered with an error of
 * condition OUTCOME (a literal). */
void metrics_count_message(metrics_t *metrics, metrics_direction_t direction,
                           const char *outcome);

/* A stanza was dropped for REASON (a literal, snake_case). */
void metrics_count_dropped(metrics_t *metrics, const char *reason);

void metrics_set_stream_up(metrics_t *metrics, bool up);
void metrics_count_reconnect(metrics_t *metrics);
void metrics_count_reload(metrics_t *metrics, bool succeeded);

/* What the router knows now, for the gauges. */
typedef struct metrics_resource {
    const char *name;   /* borrowed */
    unsigned in_flight;
} metrics_resource_t;

typedef struct metrics_snapshot {
    size_t in_flight[2];   /* by metrics_direction_t */
    size_t held;
    size_t online;    /* may take a request */
    size_t benched;   /* not answering: waits for its ping's answer */
    size_t draining;  /* dnd or xa, or drained by an admin */
    size_t left_out;  /* online, but [proxy] resources keeps it out */
    const metrics_resource_t *resources; /* borrowed */
    size_t resource_count;
} metrics_snapshot_t;

/* Appends the exposition text to OUT: the counters, and the gauges of NOW. */
void metrics_render(const metrics_t *metrics, const metrics_snapshot_t *now, GString *out);

/* Totals, for the admin status command. */
uint64_t metrics_requests_total(const metrics_t *metrics, metrics_direction_t direction);

#endif
