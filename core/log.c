/* Logging: see log.h. */
#include "log.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <glib.h>
#include <systemd/sd-journal.h>

static cp_log_level_t max_level = CP_LOG_INFO;
/* Test seams (log_set_sink, log_set_clock); NULL: stderr, the monotonic clock. */
static void (*sink)(const char *line, void *userdata);
static void *sink_userdata;
static int64_t (*clock_override)(void);
/* stderr is the journal: entries go there, structured. */
static bool to_journal;
static void (*journal_sink)(char *const *fields, size_t n, void *userdata);
static void *journal_sink_userdata;

/* syslog(3) priorities, as the journal's PRIORITY field wants them. */
static const int priorities[] = {
    [CP_LOG_ERROR] = 3,
    [CP_LOG_WARNING] = 4,
    [CP_LOG_INFO] = 6,
    [CP_LOG_DEBUG] = 7,
};

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

/* Writes one structured entry: MESSAGE (escaped already), PRIORITY, the
 * identifier and FIELDS.  Values from the network are escaped too. */
static void write_journal_entry(cp_log_level_t level, const char *message,
                                const log_field_t *fields, size_t n)
{
    GPtrArray *strings = g_ptr_array_new_with_free_func(g_free);
    g_ptr_array_add(strings, g_strdup_printf("MESSAGE=%s", message));
    g_ptr_array_add(strings, g_strdup_printf("PRIORITY=%d", priorities[level]));
    g_ptr_array_add(strings, g_strdup("SYSLOG_IDENTIFIER=client-proxy"));
    for (size_t i = 0; i < n; i++) {
        if (!fields[i].value)
            continue;
        GString *field = g_string_new(fields[i].name);
        g_string_append_c(field, '=');
        append_escaped(field, fields[i].value);
        g_ptr_array_add(strings, g_string_free(field, FALSE));
    }
    if (journal_sink) {
        journal_sink((char *const *)strings->pdata, strings->len, journal_sink_userdata);
    } else {
        struct iovec *vector = g_new(struct iovec, strings->len);
        for (guint i = 0; i < strings->len; i++)
            vector[i] = (struct iovec){strings->pdata[i], strlen(strings->pdata[i])};
        sd_journal_sendv(vector, (int)strings->len);
        g_free(vector);
    }
    g_ptr_array_free(strings, TRUE);
}

static void write_line(cp_log_level_t level, const char *origin, const log_field_t *fields,
                       size_t n, const char *fmt, va_list args) G_GNUC_PRINTF(5, 0);

static void write_line(cp_log_level_t level, const char *origin, const log_field_t *fields,
                       size_t n, const char *fmt, va_list args)
{
    if (level > max_level)
        return;
    if (level < CP_LOG_ERROR || level > CP_LOG_DEBUG)
        level = CP_LOG_ERROR;

    /* Escaped after formatting, so that no argument, whatever its format,
     * can slip a newline through. */
    g_autofree char *message = g_strdup_vprintf(fmt, args);
    if (to_journal || journal_sink) {
        GString *text = g_string_new(NULL);
        if (origin) {
            append_escaped(text, origin);
            g_string_append(text, ": ");
        }
        append_escaped(text, message);
        write_journal_entry(level, text->str, fields, n);
        g_string_free(text, TRUE);
        return;
    }
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

void log_writev(cp_log_level_t level, const char *origin, const char *fmt, va_list args)
{
    write_line(level, origin, NULL, 0, fmt, args);
}

void log_fields(cp_log_level_t level, const log_field_t *fields, size_t n, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    write_line(level, NULL, fields, n, fmt, args);
    va_end(args);
}

void log_use_journal_if_stderr_is_it(void)
{
    /* systemd sets JOURNAL_STREAM to DEVICE:INODE of the stream it gave;
     * stderr may since have been redirected elsewhere. */
    const char *stream = g_getenv("JOURNAL_STREAM");
    struct stat st;
    unsigned long long device, inode;
    if (!stream || fstat(2, &st) != 0 || sscanf(stream, "%llu:%llu", &device, &inode) != 2)
        return;
    to_journal = (unsigned long long)st.st_dev == device && (unsigned long long)st.st_ino == inode;
}

void log_set_journal_sink(void (*new_sink)(char *const *fields, size_t n, void *userdata),
                          void *userdata)
{
    journal_sink = new_sink;
    journal_sink_userdata = userdata;
}

void log_write(cp_log_level_t level, const char *origin, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    log_writev(level, origin, fmt, args);
    va_end(args);
}

static void limited(log_limit_t *limit, cp_log_level_t level, const log_field_t *fields,
                    size_t n, const char *fmt, va_list args) G_GNUC_PRINTF(5, 0);

void log_limited(log_limit_t *limit, cp_log_level_t level, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    limited(limit, level, NULL, 0, fmt, args);
    va_end(args);
}

void log_limited_fields(log_limit_t *limit, cp_log_level_t level, const log_field_t *fields,
                        size_t n, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    limited(limit, level, fields, n, fmt, args);
    va_end(args);
}

static void limited(log_limit_t *limit, cp_log_level_t level, const log_field_t *fields,
                    size_t n, const char *fmt, va_list args)
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

    g_autofree char *message = g_strdup_vprintf(fmt, args);
    if (limit->suppressed > 0)
        log_fields(level, fields, n, "%s (%u similar lines suppressed before this one)", message,
                   limit->suppressed);
    else
        log_fields(level, fields, n, "%s", message);
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
