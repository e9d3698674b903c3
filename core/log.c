#include "log.h"

#include <stdio.h>

static cp_log_level_t max_level = CP_LOG_INFO;

static const char *const level_names[] = {
    [CP_LOG_ERROR] = "error",
    [CP_LOG_WARNING] = "warning",
    [CP_LOG_INFO] = "info",
    [CP_LOG_DEBUG] = "debug",
};

void log_set_level(cp_log_level_t level)
{
    max_level = level;
}

cp_log_level_t log_get_level(void)
{
    return max_level;
}

void log_writev(cp_log_level_t level, const char *origin, const char *fmt, va_list args)
{
    if (level > max_level)
        return;
    if (level < CP_LOG_ERROR || level > CP_LOG_DEBUG)
        level = CP_LOG_ERROR;

    /* One fprintf per part, under the stream's lock, so a line is never
     * interleaved with another writer's. */
    flockfile(stderr);
    fprintf(stderr, "client-proxy: %s: ", level_names[level]);
    if (origin)
        fprintf(stderr, "%s: ", origin);
    vfprintf(stderr, fmt, args);
    fputc('\n', stderr);
    funlockfile(stderr);
}

void log_write(cp_log_level_t level, const char *origin, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    log_writev(level, origin, fmt, args);
    va_end(args);
}

void log_limited(log_limit_t *limit, cp_log_level_t level, const char *fmt, ...)
{
    (void)limit;
    va_list args;
    va_start(args, fmt);
    log_writev(level, NULL, fmt, args);
    va_end(args);
}
