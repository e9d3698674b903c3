/* core/outbox.c: the send seam, and what is held while the stream is down. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "outbox.h"

static void record(const char *bytes, size_t length, void *userdata)
{
    g_string_append_len(userdata, bytes, (gssize)length);
    g_string_append_c(userdata, '|');
}

static void outbox__holds_while_down_and_sends_in_order_once_up(void **state)
{
    (void)state;
    GString *sent = g_string_new(NULL);
    outbox_t *outbox = outbox_new(record, sent);
    assert_false(outbox_is_up(outbox));
    outbox_send(outbox, "<a/>", 4);
    outbox_send(outbox, "<b/>", 4);
    assert_int_equal(sent->len, 0);
    assert_int_equal(outbox_held_count(outbox), 2);

    outbox_up(outbox);
    assert_string_equal(sent->str, "<a/>|<b/>|");
    outbox_send(outbox, "<c/>", 4);
    assert_string_equal(sent->str, "<a/>|<b/>|<c/>|");
    assert_int_equal(outbox_held_count(outbox), 0);
    outbox_free(outbox);
    g_string_free(sent, TRUE);
}

/* Audit, issue 10 #7: what a dying stream never wrote goes out first on
 * the next one, before what was held after it. */
static void outbox_down__sends_again_what_the_stream_never_wrote_first(void **state)
{
    (void)state;
    GString *sent = g_string_new(NULL);
    outbox_t *outbox = outbox_new(record, sent);
    outbox_up(outbox);
    outbox_down(outbox, "<reply1/><reply2/>", 18);
    outbox_send(outbox, "<later/>", 8);
    assert_int_equal(sent->len, 0);
    outbox_up(outbox);
    assert_string_equal(sent->str, "<reply1/><reply2/>|<later/>|");
    outbox_free(outbox);
    g_string_free(sent, TRUE);
}

static void outbox_send_string__sends_and_empties_the_buffer(void **state)
{
    (void)state;
    GString *sent = g_string_new(NULL);
    outbox_t *outbox = outbox_new(record, sent);
    outbox_up(outbox);
    GString *scratch = g_string_new("<x/>");
    outbox_send_string(outbox, scratch);
    assert_int_equal(scratch->len, 0);
    assert_string_equal(sent->str, "<x/>|");
    g_string_free(scratch, TRUE);
    outbox_free(outbox);
    g_string_free(sent, TRUE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(outbox__holds_while_down_and_sends_in_order_once_up),
        cmocka_unit_test(outbox_down__sends_again_what_the_stream_never_wrote_first),
        cmocka_unit_test(outbox_send_string__sends_and_empties_the_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
