/* Counting for Prometheus: see metrics.h.  The text exposition format is
 * written here: no C client library for it is packaged in Debian 12 (only
 * prometheus-cpp, which is C++), and the format is a few lines of text per
 * family; promtool checks what we write in the tests. */
#include "metrics.h"

#include <string.h>

/* From sub-millisecond replies on loopback to request_timeout's 30 s. */
static const double duration_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                          0.1,    0.25,  0.5,    1,     2.5,  5,     10,
                                          30,     60};
#define BUCKETS G_N_ELEMENTS(duration_buckets)

static const char *const direction_names[] = {"inbound", "outbound"};

typedef struct histogram {
    uint64_t counts[BUCKETS]; /* not cumulative: rendered cumulatively */
    uint64_t count;
    double sum;
} histogram_t;

struct metrics {
    GHashTable *requests;  /* "direction\x1foutcome" -> uint64_t * */
    GHashTable *messages;  /* likewise */
    GHashTable *dropped;   /* reason -> uint64_t * */
    uint64_t request_totals[2];
    histogram_t durations[2];
    bool stream_up;
    uint64_t reconnects;
    uint64_t reloads[2];   /* failed, succeeded */
    char *encoding, *dispatch;
    double start_time;     /* seconds since the Unix epoch */
};

metrics_t *metrics_new(void)
{
    metrics_t *metrics = g_new0(metrics_t, 1);
    metrics->requests = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    metrics->messages = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    metrics->dropped = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    metrics->start_time = (double)g_get_real_time() / G_USEC_PER_SEC;
    return metrics;
}

void metrics_free(metrics_t *metrics)
{
    if (!metrics)
        return;
    g_hash_table_destroy(metrics->requests);
    g_hash_table_destroy(metrics->messages);
    g_hash_table_destroy(metrics->dropped);
    g_free(metrics->encoding);
    g_free(metrics->dispatch);
    g_free(metrics);
}

void metrics_set_plugins(metrics_t *metrics, const char *encoding, const char *dispatch)
{
    if (!metrics)
        return;
    g_free(metrics->encoding);
    g_free(metrics->dispatch);
    metrics->encoding = g_strdup(encoding);
    metrics->dispatch = g_strdup(dispatch);
}

static void bump(GHashTable *table, const char *key)
{
    uint64_t *count = g_hash_table_lookup(table, key);
    if (!count) {
        count = g_new0(uint64_t, 1);
        g_hash_table_insert(table, g_strdup(key), count);
    }
    (*count)++;
}

static void bump_pair(GHashTable *table, metrics_direction_t direction, const char *outcome)
{
    char key[64];
    g_snprintf(key, sizeof key, "%s\x1f%s", direction_names[direction], outcome);
    bump(table, key);
}

void metrics_count_request(metrics_t *metrics, metrics_direction_t direction,
                           const char *outcome, double seconds)
{
    if (!metrics)
        return;
    bump_pair(metrics->requests, direction, outcome);
    metrics->request_totals[direction]++;
    if (seconds < 0)
        return;
    histogram_t *histogram = &metrics->durations[direction];
    size_t bucket = 0;
    while (bucket < BUCKETS && seconds > duration_buckets[bucket])
        bucket++;
    if (bucket < BUCKETS)
        histogram->counts[bucket]++;
    histogram->count++;
    histogram->sum += seconds;
}

void metrics_count_message(metrics_t *metrics, metrics_direction_t direction,
                           const char *outcome)
{
    if (metrics)
        bump_pair(metrics->messages, direction, outcome);
}

void metrics_count_dropped(metrics_t *metrics, const char *reason)
{
    if (metrics)
        bump(metrics->dropped, reason);
}

void metrics_set_stream_up(metrics_t *metrics, bool up)
{
    if (metrics)
        metrics->stream_up = up;
}

void metrics_count_reconnect(metrics_t *metrics)
{
    if (metrics)
        metrics->reconnects++;
}

void metrics_count_reload(metrics_t *metrics, bool succeeded)
{
    if (metrics)
        metrics->reloads[succeeded ? 1 : 0]++;
}

uint64_t metrics_requests_total(const metrics_t *metrics, metrics_direction_t direction)
{
    return metrics ? metrics->request_totals[direction] : 0;
}

/* ---- Rendering ------------------------------------------------------------ */

static void family(GString *out, const char *name, const char *type, const char *help)
{
    g_string_append_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value, escaped as the format asks: backslash, quote, newline. */
static void append_label_value(GString *out, const char *value)
{
    for (const char *p = value; *p; p++) {
        if (*p == '\\' || *p == '"')
            g_string_append_c(out, '\\');
        if (*p == '\n')
            g_string_append(out, "\\n");
        else
            g_string_append_c(out, *p);
    }
}

static gint compare_strings(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorted keys of TABLE, so that the output is stable (a new GPtrArray of
 * borrowed strings). */
static GPtrArray *sorted_keys(GHashTable *table)
{
    GPtrArray *keys = g_ptr_array_new();
    GHashTableIter iter;
    gpointer key;
    g_hash_table_iter_init(&iter, table);
    while (g_hash_table_iter_next(&iter, &key, NULL))
        g_ptr_array_add(keys, key);
    g_ptr_array_sort(keys, compare_strings);
    return keys;
}

static void render_pairs(GString *out, const char *name, GHashTable *table,
                         const char *second_label)
{
    g_autoptr(GPtrArray) keys = sorted_keys(table);
    for (guint i = 0; i < keys->len; i++) {
        const char *key = keys->pdata[i];
        const char *separator = strchr(key, '\x1f');
        g_string_append_printf(out, "%s{direction=\"%.*s\",%s=\"", name,
                               (int)(separator - key), key, second_label);
        append_label_value(out, separator + 1);
        g_string_append_printf(out, "\"} %" G_GUINT64_FORMAT "\n",
                               *(uint64_t *)g_hash_table_lookup(table, key));
    }
}

static void render_histogram(GString *out, const char *name, const histogram_t *histogram,
                             const char *direction)
{
    uint64_t cumulative = 0;
    for (size_t i = 0; i < BUCKETS; i++) {
        cumulative += histogram->counts[i];
        g_string_append_printf(out, "%s_bucket{direction=\"%s\",le=\"%g\"} %" G_GUINT64_FORMAT
                                    "\n",
                               name, direction, duration_buckets[i], cumulative);
    }
    g_string_append_printf(out, "%s_bucket{direction=\"%s\",le=\"+Inf\"} %" G_GUINT64_FORMAT "\n",
                           name, direction, histogram->count);
    g_string_append_printf(out, "%s_sum{direction=\"%s\"} %.9g\n", name, direction,
                           histogram->sum);
    g_string_append_printf(out, "%s_count{direction=\"%s\"} %" G_GUINT64_FORMAT "\n", name,
                           direction, histogram->count);
}

void metrics_render(const metrics_t *metrics, const metrics_snapshot_t *now, GString *out)
{
    if (!metrics)
        return;
    family(out, "client_proxy_build_info", "gauge",
           "The version and the plugins running; always 1.");
    g_string_append(out, "client_proxy_build_info{version=\"");
    append_label_value(out, CLIENT_PROXY_VERSION);
    g_string_append(out, "\",encoding=\"");
    append_label_value(out, metrics->encoding ? metrics->encoding : "");
    g_string_append(out, "\",dispatch=\"");
    append_label_value(out, metrics->dispatch ? metrics->dispatch : "");
    g_string_append(out, "\"} 1\n");

    family(out, "process_start_time_seconds", "gauge",
           "When client-proxy started, in seconds since the Unix epoch.");
    g_string_append_printf(out, "process_start_time_seconds %.3f\n", metrics->start_time);

    family(out, "client_proxy_requests_total", "counter",
           "IQ requests ended, by direction and outcome: the answerer's result or error, or "
           "the condition client-proxy answered with.");
    render_pairs(out, "client_proxy_requests_total", metrics->requests, "outcome");

    family(out, "client_proxy_request_duration_seconds", "histogram",
           "Time from a request's arrival to its answer, a hold included.");
    for (int direction = 0; direction < 2; direction++)
        render_histogram(out, "client_proxy_request_duration_seconds",
                         &metrics->durations[direction], direction_names[direction]);

    family(out, "client_proxy_requests_in_flight", "gauge",
           "IQ requests waiting for their answer, held ones included.");
    for (int direction = 0; direction < 2; direction++)
        g_string_append_printf(out, "client_proxy_requests_in_flight{direction=\"%s\"} %zu\n",
                               direction_names[direction], now->in_flight[direction]);
    family(out, "client_proxy_requests_held", "gauge",
           "IQ requests waiting for a resource to come online ([proxy] hold).");
    g_string_append_printf(out, "client_proxy_requests_held %zu\n", now->held);

    family(out, "client_proxy_messages_total", "counter",
           "Messages by direction: forwarded, or answered with an error of this condition.");
    render_pairs(out, "client_proxy_messages_total", metrics->messages, "outcome");

    family(out, "client_proxy_resources", "gauge",
           "Resources of the target, each in one state: online (may take a request), benched "
           "(not answering), draining (dnd or xa, or drained by an admin), left_out (by "
           "[proxy] resources).");
    g_string_append_printf(out, "client_proxy_resources{state=\"online\"} %zu\n", now->online);
    g_string_append_printf(out, "client_proxy_resources{state=\"benched\"} %zu\n", now->benched);
    g_string_append_printf(out, "client_proxy_resources{state=\"draining\"} %zu\n",
                           now->draining);
    g_string_append_printf(out, "client_proxy_resources{state=\"left_out\"} %zu\n",
                           now->left_out);
    family(out, "client_proxy_resource_requests_in_flight", "gauge",
           "Requests waiting for each online resource's answer.");
    for (size_t i = 0; i < now->resource_count; i++) {
        g_string_append(out, "client_proxy_resource_requests_in_flight{resource=\"");
        append_label_value(out, now->resources[i].name);
        g_string_append_printf(out, "\"} %u\n", now->resources[i].in_flight);
    }

    family(out, "client_proxy_stream_up", "gauge", "1 while the component's stream is up.");
    g_string_append_printf(out, "client_proxy_stream_up %d\n", metrics->stream_up ? 1 : 0);
    family(out, "client_proxy_reconnects_total", "counter",
           "Times the stream to the server came up again after it had been up.");
    g_string_append_printf(out, "client_proxy_reconnects_total %" G_GUINT64_FORMAT "\n",
                           metrics->reconnects);
    family(out, "client_proxy_reloads_total", "counter", "Reloads of the configuration.");
    g_string_append_printf(out, "client_proxy_reloads_total{result=\"success\"} %" G_GUINT64_FORMAT
                                "\nclient_proxy_reloads_total{result=\"failure\"} %" G_GUINT64_FORMAT
                                "\n",
                           metrics->reloads[1], metrics->reloads[0]);
    family(out, "client_proxy_dropped_stanzas_total", "counter",
           "Stanzas dropped without an answer, by reason.");
    g_autoptr(GPtrArray) reasons = sorted_keys(metrics->dropped);
    for (guint i = 0; i < reasons->len; i++)
        g_string_append_printf(out,
                               "client_proxy_dropped_stanzas_total{reason=\"%s\"} %" G_GUINT64_FORMAT
                               "\n",
                               (const char *)reasons->pdata[i],
                               *(uint64_t *)g_hash_table_lookup(metrics->dropped,
                                                                reasons->pdata[i]));
}
