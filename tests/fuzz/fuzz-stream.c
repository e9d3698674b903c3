/* libFuzzer target: the stream parser (core/stream.c) and the rewrite
 * (core/wire.c) fed arbitrary bytes, as the server's side of a stream after
 * a fixed header.  The first input byte sets the size of the pieces the
 * rest is fed in (1 to 256 bytes), as reads would cut it.
 *
 * Invariants (a failure aborts, which libFuzzer reports as a crash):
 *   - the pieces change nothing: the events, the stanzas' attributes and
 *     bytes, and the final status are those of the input fed in one piece;
 *   - nothing waits for a later read: when the pieces fed so far end at a
 *     piece's end halfway through, the events so far are those of that much
 *     of the input fed at once (every stanza it completes was delivered);
 *   - a stanza's bytes begin with '<' and its name, and end with '>';
 *   - those bytes, rewritten with a new from and to (characters that need
 *     escaping included), parse again as exactly one stanza with the new
 *     from and to and the same name, id, type and payload namespace. */
#include <string.h>

#include <glib.h>

#include "fuzz-common.h"
#include "stream.h"
#include "wire.h"

#define NEW_FROM "proxy.example.org/t<&'\">"
#define NEW_TO "service@example.org/w\"1'"

/* What one parse produced, written out for comparison. */
typedef struct record {
    GString *log;
} record_t;

static void append_field(GString *log, const char *label, const char *value)
{
    g_string_append_printf(log, " %s=%s", label, value ? value : "(none)");
}

static void on_opened(const char *id, void *data)
{
    record_t *record = data;
    g_string_append(record->log, "opened");
    append_field(record->log, "id", id);
    g_string_append_c(record->log, '\n');
}

static void on_authenticated(void *data)
{
    record_t *record = data;
    g_string_append(record->log, "authenticated\n");
}

static void on_error(const char *condition, const char *text, void *data)
{
    record_t *record = data;
    g_string_append(record->log, "error");
    append_field(record->log, "condition", condition);
    append_field(record->log, "text", text);
    g_string_append_c(record->log, '\n');
}

/* The rewritten stanza, parsed again. */
static void check_rewritten(const wire_stanza_t *rewritten, void *data)
{
    const wire_stanza_t *original = data;
    FUZZ_CHECK(strcmp(rewritten->name, original->name) == 0, "rewrite changed the name");
    FUZZ_CHECK(g_strcmp0(rewritten->from, NEW_FROM) == 0, "rewritten from: %s",
               rewritten->from ? rewritten->from : "(none)");
    FUZZ_CHECK(g_strcmp0(rewritten->to, NEW_TO) == 0, "rewritten to: %s",
               rewritten->to ? rewritten->to : "(none)");
    FUZZ_CHECK(g_strcmp0(rewritten->id, original->id) == 0, "rewrite changed the id");
    FUZZ_CHECK(g_strcmp0(rewritten->type, original->type) == 0, "rewrite changed the type");
    FUZZ_CHECK(rewritten->has_payload == original->has_payload, "rewrite changed the payload");
    /* An inherited xmlns that repeats the stream's namespace may go; the
     * payload's namespace is then still the stream's. */
    FUZZ_CHECK(g_strcmp0(rewritten->payload_ns, original->payload_ns) == 0,
               "rewrite changed the payload namespace: %s -> %s",
               original->payload_ns ? original->payload_ns : "(none)",
               rewritten->payload_ns ? rewritten->payload_ns : "(none)");
}

static void on_stanza(const wire_stanza_t *stanza, void *data)
{
    record_t *record = data;
    g_string_append(record->log, "stanza");
    append_field(record->log, "name", stanza->name);
    append_field(record->log, "from", stanza->from);
    append_field(record->log, "to", stanza->to);
    append_field(record->log, "id", stanza->id);
    append_field(record->log, "type", stanza->type);
    append_field(record->log, "payload", stanza->has_payload ? "yes" : "no");
    append_field(record->log, "ns", stanza->payload_ns);
    g_string_append(record->log, " bytes=");
    if (stanza->bytes)
        g_string_append_len(record->log, stanza->bytes, (gssize)stanza->length);
    g_string_append_c(record->log, '\n');
    if (!stanza->bytes)
        return;

    size_t name_length = strlen(stanza->name);
    FUZZ_CHECK(stanza->length >= name_length + 3 && stanza->bytes[0] == '<' &&
                   memcmp(stanza->bytes + 1, stanza->name, name_length) == 0 &&
                   stanza->bytes[stanza->length - 1] == '>',
               "a stanza's bytes are not its element");

    GString *out = g_string_new(NULL);
    wire_rewrite(out, stanza->bytes, stanza->length, NEW_FROM, NEW_TO);
    int parsed = stream_parse_stanzas(out->str, out->len, check_rewritten, (void *)stanza);
    FUZZ_CHECK(parsed == 1, "a rewritten stanza parses as %d: %s", parsed, out->str);
    g_string_free(out, TRUE);
}

/* Feeds DATA in pieces of PIECE bytes; returns what happened. */
static char *parse(const uint8_t *data, size_t size, size_t piece)
{
    static const char header[] = "<stream:stream xmlns='jabber:component:accept' "
                                 "xmlns:stream='http://etherx.jabber.org/streams' id='s1'>";
    record_t record = {g_string_new(NULL)};
    const stream_events_t events = {on_opened, on_authenticated, on_stanza, on_error, &record};
    stream_parser_t *parser = stream_parser_new(&events);
    FUZZ_CHECK(parser != NULL, "cannot create a parser");
    const char *problem = NULL;
    stream_status_t status = stream_parser_feed(parser, header, sizeof header - 1, &problem);
    for (size_t at = 0; at < size && status == STREAM_OK; at += piece) {
        size_t n = MIN(piece, size - at);
        status = stream_parser_feed(parser, (const char *)data + at, n, &problem);
    }
    g_string_append_printf(record.log, "status %d %s\n", status, problem ? problem : "");
    stream_parser_free(parser);
    return g_string_free(record.log, FALSE);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t piece = (size_t)data[0] + 1;
    g_autofree char *whole = parse(data + 1, size - 1, size);
    g_autofree char *pieces = parse(data + 1, size - 1, piece);
    FUZZ_CHECK(strcmp(whole, pieces) == 0, "pieces of %zu bytes changed the events:\n%s\n--\n%s",
               piece, whole, pieces);

    size_t halfway = (size - 1) / piece / 2 * piece;
    g_autofree char *half_at_once = parse(data + 1, halfway, halfway);
    g_autofree char *half_in_pieces = parse(data + 1, halfway, piece);
    FUZZ_CHECK(strcmp(half_at_once, half_in_pieces) == 0,
               "after %zu bytes in pieces of %zu, events still wait for a later read:\n%s\n--\n%s",
               halfway, piece, half_at_once, half_in_pieces);
    return 0;
}
