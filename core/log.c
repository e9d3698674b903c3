/* Logging: see log.h. */
#include "log.h"

#include <stdbool.h>
#include <stdio.h>

#include <glib.h>

static cp_log_level_t max_level = CP_LOG_INFO;
/* Test seams (log_set_sink, log_set_clock); NULL: stderr, the monotonic clock. */
static void (*sink)(const char *line, void *userdata);
static void *sink_userdata;
static int64_t (*clock_override)(void);

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

/* True for what could end a line, or rewrite one on a terminal: C0 and C1
 * controls and DEL (Unicode's Cc), and the line and paragraph separators. */
static bool breaks_lines(gunichar c)
{
    return g_unichar_iscntrl(c) || c == 0x2028 || c == 0x2029;
}

/* Appends TEXT to LINE, with each byte of what breaks_lines() and of what is
 * not UTF-8 written as \xNN. */
static void append_escaped(GString *line, const char *text)
{
    for (const char *p = text; *p;) {
        gunichar c = g_utf8_get_char_validated(p, -1);
        bool valid = c != (gunichar)-1 && c != (gunichar)-2;
        const char *next = valid ? g_utf8_next_char(p) : p + 1;
        if (valid && !breaks_lines(c)) {
            g_string_append_len(line, p, next - p);
        } else {
            for (; p < next; p++)
                g_string_append_printf(line, "\\x%02x", (unsigned char)*p);
        }
        p = next;
    }
}

void log_writev(cp_log_level_t level, const char *origin, const char *fmt, va_list args)
{
    if (level > max_level)
        return;
    if (level < CP_LOG_ERROR || level > CP_LOG_DEBUG)
        level = CP_LOG_ERROR;

    /* Escaped after formatting, so that no argument, whatever its format,
     * can slip a newline through. */
    g_autofree char *message = g_strdup_vprintf(fmt, args);
    GString *line = g_string_new("client-proxy: ");
    g_string_append(line, level_names[level]);
    g_string_append(line, ": ");
    if (origin) {
        append_escaped(line, origin);
        g_string_append(line, ": ");
    }
    append_escaped(line, message);

    if (sink) {
        sink(line->str, sink_userdata);
    } else {
        /* One write, so that a line is never interleaved with another
         * writer's. */
        g_string_append_c(line, '\n');
        fwrite(line->str, 1, line->len, stderr);
    }
    g_string_free(line, TRUE);
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
    if (level > max_level)
        return;
    int64_t now = clock_override ? clock_override() : g_get_monotonic_time();
    if (now - limit->window_start >= (int64_t)LOG_LIMIT_WINDOW_S * G_USEC_PER_SEC) {
        limit->window_start = now;
        limit->written = 0;
    }
    if (limit->written >= LOG_LIMIT_BURST) {
        limit->suppressed++;
        return;
    }
    limit->written++;

    va_list args;
    va_start(args, fmt);
    g_autofree char *message = g_strdup_vprintf(fmt, args);
    va_end(args);
    if (limit->suppressed > 0)
        log_write(level, NULL, "%s (%u similar lines suppressed before this one)", message,
                  limit->suppressed);
    else
        log_write(level, NULL, "%s", message);
    limit->suppressed = 0;
}

void log_set_sink(void (*new_sink)(const char *line, void *userdata), void *userdata)
{
    sink = new_sink;
    sink_userdata = userdata;
}

void log_set_clock(int64_t (*clock)(void))
{
    clock_override = clock;
}
