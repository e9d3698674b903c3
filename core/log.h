/* Logging to stderr, one line per event.  Whatever a message holds, a line
 * stays one line: control characters (C0, DEL, C1), U+2028, U+2029 and bytes
 * that are not UTF-8 are written as \xNN, so a value from the network can
 * never start a line of its own.  Per-stanza lines go through a log_limit_t,
 * so that a flood of bad stanzas cannot flood the log.  Secrets must never
 * be passed in.  Single-threaded, like the rest of the host. */
#ifndef CP_CORE_LOG_H
#define CP_CORE_LOG_H

#include <stdarg.h>
#include <stdint.h>

#include <client-proxy/plugin.h>

/* Lines above LEVEL are discarded.  Default: CP_LOG_INFO. */
void log_set_level(cp_log_level_t level);
cp_log_level_t log_get_level(void);

/* Writes "client-proxy: LEVEL: [ORIGIN: ]message" to stderr.  ORIGIN may be
 * NULL; plugins pass their file name. */
void log_write(cp_log_level_t level, const char *origin, const char *fmt, ...) CP_PRINTF(3, 4);
void log_writev(cp_log_level_t level, const char *origin, const char *fmt, va_list args)
    CP_PRINTF(3, 0);

#define log_error(...) log_write(CP_LOG_ERROR, NULL, __VA_ARGS__)
#define log_warning(...) log_write(CP_LOG_WARNING, NULL, __VA_ARGS__)
#define log_info(...) log_write(CP_LOG_INFO, NULL, __VA_ARGS__)
#define log_debug(...)                                  \
    do {                                                \
        if (log_get_level() >= CP_LOG_DEBUG)            \
            log_write(CP_LOG_DEBUG, NULL, __VA_ARGS__); \
    } while (0)

#define LOG_LIMIT_BURST 10
#define LOG_LIMIT_WINDOW_S 10

/* A budget for one kind of per-stanza line (a dropped reply, a refused request):
 * at most LOG_LIMIT_BURST lines per LOG_LIMIT_WINDOW_S seconds; the first line
 * after a suppression says how many were suppressed. Zero-initialise it (LOG_LIMIT_INIT). */
typedef struct log_limit {
    int64_t window_start; /* monotonic µs at which the current window began */
    unsigned written;     /* lines written in the current window */
    unsigned suppressed;  /* lines dropped since the last one written */
} log_limit_t;
#define LOG_LIMIT_INIT {0}

/* Writes a line as log_write() with no origin would, if LIMIT's budget
 * allows.  Lines above the level set are discarded without spending it. */
void log_limited(log_limit_t *limit, cp_log_level_t level, const char *fmt, ...) CP_PRINTF(3, 4);

/* A field of a structured journal entry: NAME in the journal's form
 * (CLIENT_PROXY_RESOURCE), VALUE borrowed for the call (NULL: left out). */
typedef struct log_field {
    const char *name;
    const char *value;
} log_field_t;

/* As log_write() with no origin, with FIELDS (N of them) added to the entry
 * when stderr is the journal; elsewhere the fields are left out (the
 * message says what matters). */
void log_fields(cp_log_level_t level, const log_field_t *fields, size_t n, const char *fmt, ...)
    CP_PRINTF(4, 5);

/* log_limited() with FIELDS, as log_fields() adds them. */
void log_limited_fields(log_limit_t *limit, cp_log_level_t level, const log_field_t *fields,
                        size_t n, const char *fmt, ...) CP_PRINTF(5, 6);

/* Looks whether stderr is the journal (systemd's JOURNAL_STREAM names it);
 * if so, entries are written there with sd_journal_send(): PRIORITY,
 * MESSAGE, SYSLOG_IDENTIFIER and the fields.  Call once at start. */
void log_use_journal_if_stderr_is_it(void);

/* For tests only. */
/* Hands every line (escaped, without its newline, borrowed for the call) to
 * SINK instead of stderr; NULL restores stderr. */
void log_set_sink(void (*sink)(const char *line, void *userdata), void *userdata);
/* Hands every journal entry (its fields as "NAME=value" strings, borrowed
 * for the call) to SINK as if stderr were the journal; NULL: off again. */
void log_set_journal_sink(void (*sink)(char *const *fields, size_t n, void *userdata),
                          void *userdata);
/* Makes log_limited() read the time (monotonic µs) from CLOCK instead of
 * g_get_monotonic_time(); NULL restores it. */
void log_set_clock(int64_t (*clock)(void));

#endif
