/* Stanzas as bytes: see wire.h. */
#include "wire.h"

#include <string.h>

/* The bytes have been checked by expat as one well-formed element, so the
 * start tag follows XML 1.0's grammar exactly:
 *   '<' Name (S Name S? '=' S? ('"' [^"]* '"' | "'" [^']* "'"))* S? ('>' | '/>')
 * and a plain scan finds each attribute. */

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static const char *skip_space(const char *p, const char *end)
{
    while (p < end && is_space(*p))
        p++;
    return p;
}

static const char *skip_name(const char *p, const char *end)
{
    while (p < end && !is_space(*p) && *p != '=' && *p != '>' && *p != '/')
        p++;
    return p;
}

static bool name_is(const char *name, size_t length, const char *literal)
{
    return length == strlen(literal) && memcmp(name, literal, length) == 0;
}

/* An attribute whose value the rewrite replaces or drops.  VALUE includes
 * its quotes.  The id is replaced only when NEW_ID is given. */
static bool is_replaced(const char *name, size_t name_length, const char *value,
                        size_t value_length, bool new_id)
{
    if (name_is(name, name_length, "from") || name_is(name, name_length, "to"))
        return true;
    if (new_id && name_is(name, name_length, "id"))
        return true;
    return name_is(name, name_length, "xmlns") &&
           value_length == strlen(XMPP_NS_COMPONENT_ACCEPT) + 2 &&
           memcmp(value + 1, XMPP_NS_COMPONENT_ACCEPT, value_length - 2) == 0;
}

void wire_rewrite(GString *out, const char *bytes, size_t length, const char *from,
                  const char *to)
{
    wire_rewrite_with_id(out, bytes, length, from, to, NULL);
}

void wire_rewrite_with_id(GString *out, const char *bytes, size_t length, const char *from,
                          const char *to, const char *id)
{
    const char *end = bytes + length;
    const char *p = skip_name(bytes + 1, end); /* past '<' and the element's name */
    g_string_append_len(out, bytes, p - bytes);

    for (;;) {
        const char *attribute = skip_space(p, end);
        if (attribute >= end || *attribute == '>' || *attribute == '/') {
            p = attribute;
            break;
        }
        const char *name_end = skip_name(attribute, end);
        const char *value = skip_space(skip_space(name_end, end) + 1, end); /* past '=' */
        const char *close = memchr(value + 1, *value, end - value - 1);
        g_assert(close); /* well-formed: every value has its closing quote */
        p = close + 1;
        if (!is_replaced(attribute, name_end - attribute, value, p - value, id != NULL)) {
            g_string_append_c(out, ' ');
            g_string_append_len(out, attribute, p - attribute);
        }
    }

    if (id) {
        g_string_append(out, " id='");
        wire_append_escaped(out, id);
        g_string_append_c(out, '\'');
    }
    g_string_append(out, " from='");
    wire_append_escaped(out, from);
    g_string_append(out, "' to='");
    wire_append_escaped(out, to);
    g_string_append_c(out, '\'');
    g_string_append_len(out, p, end - p); /* '>' content '</name>', or '/>' */
}

void wire_append_escaped(GString *out, const char *text)
{
    const char *run = text;
    for (const char *p = text; *p; p++) {
        const char *entity;
        switch (*p) {
        case '&': entity = "&amp;"; break;
        case '<': entity = "&lt;"; break;
        case '>': entity = "&gt;"; break;
        case '\'': entity = "&apos;"; break;
        case '"': entity = "&quot;"; break;
        default: continue;
        }
        g_string_append_len(out, run, p - run);
        g_string_append(out, entity);
        run = p + 1;
    }
    g_string_append(out, run);
}
