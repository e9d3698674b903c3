/* Logging (core/log.c): what a line may hold, and the budget of per-stanza
 * lines.  Lines are captured through log_set_sink(), time is a fake clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>
#include <glib.h>

#include "log.h"

#define SECOND G_USEC_PER_SEC

static GPtrArray *lines; /* every line written, owned */
static int64_t now;      /* what the fake clock says, µs */

static void capture(const char *line, void *userdata)
{
    (void)userdata;
    g_ptr_array_add(lines, g_strdup(line));
}

static int64_t fake_clock(void)
{
    return now;
}

static int setup(void **state)
{
    (void)state;
    lines = g_ptr_array_new_with_free_func(g_free);
    now = 1000 * SECOND;
    log_set_sink(capture, NULL);
    log_set_clock(fake_clock);
    log_set_level(CP_LOG_INFO);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    log_set_sink(NULL, NULL);
    log_set_clock(NULL);
    g_ptr_array_free(lines, TRUE);
    return 0;
}

static const char *line(guint i)
{
    if (i >= lines->len)
        fail_msg("line %u was not written (%u were)", i, lines->len);
    return lines->pdata[i];
}

static void log__keeps_a_value_with_newlines_and_escapes_on_one_line(void **state)
{
    (void)state;
    log_warning("dropped a reply from %s", "a@b/c\nclient-proxy: error: forged\r\x1b[2J");
    assert_int_equal(lines->len, 1);
    assert_string_equal(line(0), "client-proxy: warning: dropped a reply from "
                                 "a@b/c\\x0aclient-proxy: error: forged\\x0d\\x1b[2J");
}

static void log__escapes_del_c1_controls_line_separators_and_bytes_that_are_not_utf8(void **state)
{
    (void)state;
    log_info("del=%s c1=%s ls=%s bad=%s cut=%s kept=%s", "\x7f", "\xc2\x85", "\xe2\x80\xa8",
             "\xff\xfe", "\xc3", "caf\xc3\xa9 \xe2\x82\xac");
    assert_string_equal(line(0), "client-proxy: info: del=\\x7f c1=\\xc2\\x85 "
                                 "ls=\\xe2\\x80\\xa8 bad=\\xff\\xfe cut=\\xc3 "
                                 "kept=caf\xc3\xa9 \xe2\x82\xac");
}

static void log__escapes_the_origin_too(void **state)
{
    (void)state;
    log_write(CP_LOG_ERROR, "jat-\nx.so", "%s", "ok");
    assert_string_equal(line(0), "client-proxy: error: jat-\\x0ax.so: ok");
}

static void log_limited__writes_a_burst_then_suppresses_until_the_window_ends(void **state)
{
    (void)state;
    static log_limit_t limit = LOG_LIMIT_INIT;
    for (int i = 0; i < 3 * LOG_LIMIT_BURST; i++)
        log_limited(&limit, CP_LOG_WARNING, "refused request %d", i);
    assert_int_equal(lines->len, LOG_LIMIT_BURST);
    assert_string_equal(line(LOG_LIMIT_BURST - 1), "client-proxy: warning: refused request 9");

    now += LOG_LIMIT_WINDOW_S * SECOND - 1;
    log_limited(&limit, CP_LOG_WARNING, "refused request %d", 30);
    assert_int_equal(lines->len, LOG_LIMIT_BURST);
}

static void log_limited__says_how_many_it_suppressed_in_the_next_line_it_writes(void **state)
{
    (void)state;
    static log_limit_t limit = LOG_LIMIT_INIT;
    for (int i = 0; i < LOG_LIMIT_BURST + 25; i++)
        log_limited(&limit, CP_LOG_WARNING, "refused request %d", i);
    now += LOG_LIMIT_WINDOW_S * SECOND;
    log_limited(&limit, CP_LOG_WARNING, "refused request %d", 99);
    log_limited(&limit, CP_LOG_WARNING, "refused request %d", 100);
    assert_int_equal(lines->len, LOG_LIMIT_BURST + 2);
    assert_string_equal(line(LOG_LIMIT_BURST), "client-proxy: warning: refused request 99 "
                                               "(25 similar lines suppressed before this one)");
    assert_string_equal(line(LOG_LIMIT_BURST + 1), "client-proxy: warning: refused request 100");
}

static void log_limited__gives_each_kind_of_line_its_own_budget(void **state)
{
    (void)state;
    static log_limit_t dropped = LOG_LIMIT_INIT, refused = LOG_LIMIT_INIT;
    for (int i = 0; i < 2 * LOG_LIMIT_BURST; i++) {
        log_limited(&dropped, CP_LOG_WARNING, "dropped %d", i);
        log_limited(&refused, CP_LOG_WARNING, "refused %d", i);
    }
    assert_int_equal(lines->len, 2 * LOG_LIMIT_BURST);
}

static void log_limited__spends_no_budget_on_lines_below_the_level(void **state)
{
    (void)state;
    static log_limit_t limit = LOG_LIMIT_INIT;
    for (int i = 0; i < 2 * LOG_LIMIT_BURST; i++)
        log_limited(&limit, CP_LOG_DEBUG, "detail %d", i);
    assert_int_equal(lines->len, 0);
    log_limited(&limit, CP_LOG_WARNING, "refused");
    assert_string_equal(line(0), "client-proxy: warning: refused");
}

static void log_limited__escapes_what_it_writes(void **state)
{
    (void)state;
    static log_limit_t limit = LOG_LIMIT_INIT;
    log_limited(&limit, CP_LOG_WARNING, "refused %s", "x\ny");
    assert_string_equal(line(0), "client-proxy: warning: refused x\\x0ay");
}

typedef struct entry {
    GPtrArray *fields; /* char *, "NAME=value" */
} entry_t;

static void record_entry(char *const *fields, size_t n, void *userdata)
{
    entry_t *entry = userdata;
    g_ptr_array_set_size(entry->fields, 0);
    for (size_t i = 0; i < n; i++)
        g_ptr_array_add(entry->fields, g_strdup(fields[i]));
}

static bool has_field(const entry_t *entry, const char *field)
{
    for (guint i = 0; i < entry->fields->len; i++)
        if (strcmp(entry->fields->pdata[i], field) == 0)
            return true;
    return false;
}

/* Issue 13: with stderr the journal, an entry carries its priority, its
 * message and its fields, escaped like any line; a field without a value
 * is left out. */
static void log_fields__writes_a_structured_journal_entry(void **state)
{
    (void)state;
    entry_t entry = {g_ptr_array_new_with_free_func(g_free)};
    log_set_journal_sink(record_entry, &entry);
    const log_field_t fields[] = {{"CLIENT_PROXY_RESOURCE", "worker\n1"},
                                  {"CLIENT_PROXY_SENDER", NULL}};
    log_fields(CP_LOG_WARNING, fields, G_N_ELEMENTS(fields), "resource %s is odd", "w\r");
    assert_true(has_field(&entry, "PRIORITY=4"));
    assert_true(has_field(&entry, "MESSAGE=resource w\\x0d is odd"));
    assert_true(has_field(&entry, "SYSLOG_IDENTIFIER=client-proxy"));
    assert_true(has_field(&entry, "CLIENT_PROXY_RESOURCE=worker\\x0a1"));
    for (guint i = 0; i < entry.fields->len; i++)
        assert_false(g_str_has_prefix(entry.fields->pdata[i], "CLIENT_PROXY_SENDER"));
    log_write(CP_LOG_ERROR, "jat-hmac", "plain");
    assert_true(has_field(&entry, "PRIORITY=3"));
    assert_true(has_field(&entry, "MESSAGE=jat-hmac: plain"));
    log_set_journal_sink(NULL, NULL);
    g_ptr_array_free(entry.fields, TRUE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(log_fields__writes_a_structured_journal_entry),
        cmocka_unit_test_setup_teardown(log__keeps_a_value_with_newlines_and_escapes_on_one_line,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            log__escapes_del_c1_controls_line_separators_and_bytes_that_are_not_utf8, setup,
            teardown),
        cmocka_unit_test_setup_teardown(log__escapes_the_origin_too, setup, teardown),
        cmocka_unit_test_setup_teardown(
            log_limited__writes_a_burst_then_suppresses_until_the_window_ends, setup, teardown),
        cmocka_unit_test_setup_teardown(
            log_limited__says_how_many_it_suppressed_in_the_next_line_it_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(log_limited__gives_each_kind_of_line_its_own_budget,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(log_limited__spends_no_budget_on_lines_below_the_level,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(log_limited__escapes_what_it_writes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
