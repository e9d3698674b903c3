/* The component stream's parser: see stream.h. */
#include "stream.h"

#include <string.h>

#include <expat.h>

#include "expat-features.h"

#define STREAM_ERRORS_NS "urn:ietf:params:xml:ns:xmpp-streams"

/* expat runs without namespace processing: it would expand every name of
 * every stanza, and only the stream's and the payload's namespaces matter.
 * Names arrive as written ("stream:stream"), xmlns attributes as attributes.
 * Prefixes are not checked again: the server passes on only
 * namespace-well-formed XML (RFC 6120 §11.2). */

typedef enum top_kind {
    TOP_NONE,      /* between top-level elements */
    TOP_STANZA,
    TOP_HANDSHAKE,
    TOP_ERROR,     /* <stream:error/> */
} top_kind_t;

/* Offsets into parser->strings; -1 when absent. */
typedef struct stanza_fields {
    gssize name, from, to, id, type, ns, payload_ns;
} stanza_fields_t;

struct stream_parser {
    XML_Parser xml;
    stream_events_t events;
    stream_status_t status;
    const char *problem;
    unsigned depth;            /* elements open, the stream's root included */
    char *error_name;          /* "stream:error" */
    char *stream_ns;           /* the root's default namespace */

    /* The top-level element being read. */
    top_kind_t top;
    gint64 top_start;          /* stream offset of its '<' */
    bool oversized;            /* longer than WIRE_STANZA_MAX: bytes dropped */
    bool has_payload;
    GString *strings;          /* its attribute values, each NUL-terminated */
    stanza_fields_t fields;
    GArray *payload_attributes; /* gssize offsets into strings: the payload's
                                   attribute names and values, in pairs */
    GPtrArray *attribute_view;  /* the same as pointers, NULL-terminated, for
                                   the stanza event */
    GString *error_text;       /* a stream error's text, while inside <text/> */

    /* Bytes fed and not yet released: events point into them. */
    GByteArray *held;
    gint64 held_start;         /* stream offset of held->data[0] */
    gint64 fed;                /* stream offset after the last byte fed */
    gint64 released_to;        /* nothing before this offset is needed again */
};

static void stop(stream_parser_t *parser, stream_status_t status, const char *problem)
{
    if (parser->status != STREAM_OK)
        return;
    parser->status = status;
    parser->problem = problem;
    XML_StopParser(parser->xml, XML_FALSE);
}

static const char *attribute(const XML_Char **attributes, const char *name)
{
    for (; *attributes; attributes += 2)
        if (strcmp(attributes[0], name) == 0)
            return attributes[1];
    return NULL;
}

static gssize keep_string(stream_parser_t *parser, const char *value)
{
    if (!value)
        return -1;
    gssize offset = (gssize)parser->strings->len;
    g_string_append_len(parser->strings, value, (gssize)strlen(value) + 1);
    return offset;
}

static const char *kept_string(const stream_parser_t *parser, gssize offset)
{
    return offset < 0 ? NULL : parser->strings->str + offset;
}

/* The attribute that declares the prefix of NAME ("xmlns:p" for "p:x"),
 * or NULL when NAME has no prefix (g_free it). */
static char *prefix_declaration(const char *name)
{
    const char *colon = strchr(name, ':');
    return colon ? g_strdup_printf("xmlns:%.*s", (int)(colon - name), name) : NULL;
}

/* Records the namespace of the stanza's first child element, NAME with
 * ATTRIBUTES: declared on the child, else the stanza's default, else the
 * stream's.  A prefix declared further out than the child itself is not
 * looked up (no server writes payloads that way): the namespace is then
 * unknown. */
static void keep_payload_namespace(stream_parser_t *parser, const char *name,
                                   const XML_Char **attributes)
{
    /* Its other attributes, for strategies that place by them (a Jitsi
     * conference's room); namespace declarations are not attributes. */
    for (const XML_Char **attribute = attributes; *attribute; attribute += 2) {
        if (strcmp(attribute[0], "xmlns") == 0 || g_str_has_prefix(attribute[0], "xmlns:"))
            continue;
        gssize pair[2] = {keep_string(parser, attribute[0]), keep_string(parser, attribute[1])};
        g_array_append_vals(parser->payload_attributes, pair, 2);
    }

    g_autofree char *declaration = prefix_declaration(name);
    const char *declared = attribute(attributes, declaration ? declaration : "xmlns");
    if (declared)
        parser->fields.payload_ns = keep_string(parser, declared);
    else if (declaration)
        parser->fields.payload_ns = -1;
    else if (parser->fields.ns >= 0)
        parser->fields.payload_ns = parser->fields.ns;
    else
        parser->fields.payload_ns = keep_string(parser, parser->stream_ns);
}

static void open_stream(stream_parser_t *parser, const char *name, const XML_Char **attributes)
{
    const char *colon = strchr(name, ':');
    g_autofree char *declaration = prefix_declaration(name);
    const char *ns = attribute(attributes, declaration ? declaration : "xmlns");
    if (strcmp(colon ? colon + 1 : name, "stream") != 0 || !ns ||
        strcmp(ns, XMPP_NS_STREAMS) != 0) {
        stop(parser, STREAM_BROKEN, "the server did not open an XMPP stream");
        return;
    }
    parser->error_name = colon ? g_strdup_printf("%.*s:error", (int)(colon - name), name)
                               : g_strdup("error");
    parser->stream_ns = g_strdup(attribute(attributes, "xmlns"));
    parser->released_to = XML_GetCurrentByteIndex(parser->xml) +
                          XML_GetCurrentByteCount(parser->xml);
    if (parser->events.opened)
        parser->events.opened(attribute(attributes, "id"), parser->events.userdata);
}

static void open_top(stream_parser_t *parser, const char *name, const XML_Char **attributes)
{
    parser->top_start = XML_GetCurrentByteIndex(parser->xml);
    parser->oversized = false;
    if (strcmp(name, parser->error_name) == 0) {
        parser->top = TOP_ERROR;
        parser->fields.name = -1; /* the condition, once read */
        return;
    }
    if (strcmp(name, "handshake") == 0) {
        parser->top = TOP_HANDSHAKE;
        return;
    }
    parser->top = TOP_STANZA;
    parser->has_payload = false;
    g_string_truncate(parser->strings, 0);
    g_array_set_size(parser->payload_attributes, 0);
    parser->fields = (stanza_fields_t){
        .name = keep_string(parser, name),
        .from = keep_string(parser, attribute(attributes, "from")),
        .to = keep_string(parser, attribute(attributes, "to")),
        .id = keep_string(parser, attribute(attributes, "id")),
        .type = keep_string(parser, attribute(attributes, "type")),
        .ns = keep_string(parser, attribute(attributes, "xmlns")),
        .payload_ns = -1,
    };
}

static void XMLCALL on_text(void *data, const XML_Char *text, int length)
{
    stream_parser_t *parser = data;
    g_string_append_len(parser->error_text, text, length);
}

static void XMLCALL on_start(void *data, const XML_Char *name, const XML_Char **attributes)
{
    stream_parser_t *parser = data;
    if (parser->status != STREAM_OK)
        return; /* expat may finish the tag it was in when stopped */
    unsigned depth = parser->depth++;
    if (depth == 0) {
        open_stream(parser, name, attributes);
    } else if (depth == 1) {
        open_top(parser, name, attributes);
    } else if (depth == 2 && parser->top == TOP_STANZA && !parser->has_payload) {
        parser->has_payload = true;
        keep_payload_namespace(parser, name, attributes);
    } else if (depth == 2 && parser->top == TOP_ERROR) {
        const char *ns = attribute(attributes, "xmlns");
        if (!ns || strcmp(ns, STREAM_ERRORS_NS) != 0)
            return; /* an application-specific condition */
        if (strcmp(name, "text") == 0) {
            g_string_truncate(parser->error_text, 0);
            XML_SetCharacterDataHandler(parser->xml, on_text);
        } else if (parser->fields.name < 0) {
            g_string_truncate(parser->strings, 0);
            parser->fields.name = keep_string(parser, name);
        }
    }
}

static void close_top(stream_parser_t *parser)
{
    gint64 end = XML_GetCurrentByteIndex(parser->xml) + XML_GetCurrentByteCount(parser->xml);
    top_kind_t top = parser->top;
    parser->top = TOP_NONE;
    parser->released_to = end;

    if (top == TOP_HANDSHAKE) {
        if (parser->events.authenticated)
            parser->events.authenticated(parser->events.userdata);
    } else if (top == TOP_ERROR) {
        if (parser->events.error)
            parser->events.error(kept_string(parser, parser->fields.name),
                                 parser->error_text->len ? parser->error_text->str : NULL,
                                 parser->events.userdata);
    } else if (top == TOP_STANZA && parser->events.stanza) {
        const stanza_fields_t *fields = &parser->fields;
        g_ptr_array_set_size(parser->attribute_view, 0);
        for (guint i = 0; i < parser->payload_attributes->len; i++)
            g_ptr_array_add(parser->attribute_view,
                            (gpointer)kept_string(parser, g_array_index(parser->payload_attributes,
                                                                        gssize, i)));
        g_ptr_array_add(parser->attribute_view, NULL);
        wire_stanza_t stanza = {
            .name = kept_string(parser, fields->name),
            .from = kept_string(parser, fields->from),
            .to = kept_string(parser, fields->to),
            .id = kept_string(parser, fields->id),
            .type = kept_string(parser, fields->type),
            .has_payload = parser->has_payload,
            .payload_ns = kept_string(parser, fields->payload_ns),
            .payload_attributes = (const char *const *)parser->attribute_view->pdata,
        };
        if (!parser->oversized && end - parser->top_start <= WIRE_STANZA_MAX) {
            stanza.bytes = (const char *)parser->held->data + (parser->top_start -
                                                               parser->held_start);
            stanza.length = (size_t)(end - parser->top_start);
        }
        parser->events.stanza(&stanza, parser->events.userdata);
    }
}

static void XMLCALL on_end(void *data, const XML_Char *name)
{
    (void)name;
    stream_parser_t *parser = data;
    if (parser->status != STREAM_OK)
        return;
    unsigned depth = --parser->depth;
    if (depth == 0)
        stop(parser, STREAM_CLOSED, NULL);
    else if (depth == 1)
        close_top(parser);
    else if (depth == 2 && parser->top == TOP_ERROR)
        XML_SetCharacterDataHandler(parser->xml, NULL);
}

static void XMLCALL on_doctype(void *data, const XML_Char *name, const XML_Char *system_id,
                               const XML_Char *public_id, int has_internal_subset)
{
    (void)name;
    (void)system_id;
    (void)public_id;
    (void)has_internal_subset;
    stop(data, STREAM_BROKEN, "the stream has a document type declaration, which XMPP forbids");
}

stream_parser_t *stream_parser_new(const stream_events_t *events)
{
    stream_parser_t *parser = g_new0(stream_parser_t, 1);
    parser->xml = XML_ParserCreate("UTF-8");
    if (!parser->xml) {
        g_free(parser);
        return NULL;
    }
    parser->events = *events;
    parser->strings = g_string_sized_new(256);
    parser->payload_attributes = g_array_new(FALSE, FALSE, sizeof(gssize));
    parser->attribute_view = g_ptr_array_new();
    parser->error_text = g_string_new(NULL);
    parser->held = g_byte_array_sized_new(64 * 1024);
#ifdef HAVE_XML_SETREPARSEDEFERRALENABLED
    /* expat 2.6 and later do not parse a token that a read left unfinished
     * again until the bytes waiting have doubled: a stanza behind a large
     * start tag would wait for more of the stream, on a quiet one for ever.
     * Off, every read parses all it completes, as before 2.6; the quadratic
     * cost deferral guards against stays bounded, as stream_parser_feed()
     * refuses a token longer than WIRE_STANZA_MAX. */
    XML_SetReparseDeferralEnabled(parser->xml, XML_FALSE);
#endif
    XML_SetUserData(parser->xml, parser);
    XML_SetElementHandler(parser->xml, on_start, on_end);
    XML_SetStartDoctypeDeclHandler(parser->xml, on_doctype);
    return parser;
}

void stream_parser_free(stream_parser_t *parser)
{
    if (!parser)
        return;
    XML_ParserFree(parser->xml);
    g_string_free(parser->strings, TRUE);
    g_array_free(parser->payload_attributes, TRUE);
    g_ptr_array_free(parser->attribute_view, TRUE);
    g_string_free(parser->error_text, TRUE);
    g_byte_array_free(parser->held, TRUE);
    g_free(parser->error_name);
    g_free(parser->stream_ns);
    g_free(parser);
}

/* Drops the bytes no event can point into any more: all before the open
 * top-level element, or before the end of the last one. */
static void release_bytes(stream_parser_t *parser)
{
    gint64 keep_from = parser->released_to;
    if (parser->top != TOP_NONE) {
        if (!parser->oversized && parser->fed - parser->top_start > WIRE_STANZA_MAX)
            parser->oversized = true;
        keep_from = parser->oversized ? parser->fed : parser->top_start;
    }
    if (keep_from > parser->held_start) {
        g_byte_array_remove_range(parser->held, 0, (guint)(keep_from - parser->held_start));
        parser->held_start = keep_from;
    }
}

/* expat holds the token a read left unfinished (a start tag, a comment) and
 * scans it again with every read until it ends: past WIRE_STANZA_MAX it can
 * be no stanza we would forward, and keeping it would let memory, and the
 * work of each read, grow without end. */
static void refuse_a_huge_token(stream_parser_t *parser)
{
    XML_Index parsed_to = XML_GetCurrentByteIndex(parser->xml); /* past the last event */
    if (parsed_to >= 0 && parser->fed - parsed_to > WIRE_STANZA_MAX)
        stop(parser, STREAM_BROKEN,
             "the server sent an XML token (a tag, a comment) longer than a stanza may be");
}

stream_status_t stream_parser_feed(stream_parser_t *parser, const char *bytes, size_t length,
                                   const char **problem)
{
    if (parser->status == STREAM_OK && length > 0) {
        g_byte_array_append(parser->held, (const guint8 *)bytes, (guint)length);
        parser->fed += (gint64)length;
        if (XML_Parse(parser->xml, bytes, (int)length, XML_FALSE) == XML_STATUS_ERROR)
            stop(parser, STREAM_BROKEN, XML_ErrorString(XML_GetErrorCode(parser->xml)));
        else if (parser->status == STREAM_OK)
            refuse_a_huge_token(parser);
        release_bytes(parser);
    }
    if (problem)
        *problem = parser->problem;
    return parser->status;
}

/* For stream_parse_stanzas(): counts what it hands over. */
typedef struct stanza_counter {
    void (*stanza)(const wire_stanza_t *stanza, void *userdata);
    void *userdata;
    int count;
} stanza_counter_t;

static void count_stanza(const wire_stanza_t *stanza, void *data)
{
    stanza_counter_t *counter = data;
    counter->count++;
    counter->stanza(stanza, counter->userdata);
}

int stream_parse_stanzas(const char *bytes, size_t length,
                         void (*stanza)(const wire_stanza_t *stanza, void *userdata),
                         void *userdata)
{
    static const char header[] = "<stream:stream xmlns='" XMPP_NS_COMPONENT_ACCEPT
                                 "' xmlns:stream='" XMPP_NS_STREAMS "'>";
    stanza_counter_t counter = {stanza, userdata, 0};
    const stream_events_t events = {.stanza = count_stanza, .userdata = &counter};
    stream_parser_t *parser = stream_parser_new(&events);
    bool ok = parser &&
              stream_parser_feed(parser, header, sizeof header - 1, NULL) == STREAM_OK &&
              stream_parser_feed(parser, bytes, length, NULL) == STREAM_OK &&
              parser->depth == 1;
    stream_parser_free(parser);
    return ok ? counter.count : -1;
}
