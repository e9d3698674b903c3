/* Logging to stderr, one line per event.  Secrets must never be passed in. */
#ifndef CP_CORE_LOG_H
#define CP_CORE_LOG_H

#include <stdarg.h>

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

/* TEMPORARY until the audit branch lands: a budget for one kind of
 * per-stanza line. */
typedef struct log_limit {
    int64_t window_start;
    unsigned written;
    unsigned suppressed;
} log_limit_t;
#define LOG_LIMIT_INIT {0}
void log_limited(log_limit_t *limit, cp_log_level_t level, const char *fmt, ...) CP_PRINTF(3, 4);

#endif
