/* Stanzas client-proxy writes and reads itself: see stanza.h. */
#include "stanza.h"

#include <string.h>

#include <expat.h>

#include "wire.h"

/* ---- Writing -------------------------------------------------------------- */

/* Appends NAME='VALUE' (escaped), with a space before, when VALUE is set. */
static void append_attribute(GString *out, const char *name, const char *value)
{
    if (!value)
        return;
    g_string_append_c(out, ' ');
    g_string_append(out, name);
    g_string_append(out, "='");
    wire_append_escaped(out, value);
    g_string_append_c(out, '\'');
}

static void open_stanza(GString *out, const char *name, const char *type, const char *id,
                        const char *from, const char *to)
{
    g_string_append_c(out, '<');
    g_string_append(out, name);
    append_attribute(out, "type", type);
    append_attribute(out, "id", id);
    append_attribute(out, "from", from);
    append_attribute(out, "to", to);
}

void stanza_write_error(GString *out, const char *name, const char *from, const char *to,
                        const char *id, const stanza_error_t *error)
{
    open_stanza(out, name, "error", id, from, to);
    g_string_append(out, "><error");
    append_attribute(out, "type", error->type);
    g_string_append(out, "><");
    g_string_append(out, error->condition);
    g_string_append(out, " xmlns='" STANZA_ERRORS_NS "'/>");
    if (error->text) {
        g_string_append(out, "<text xmlns='" STANZA_ERRORS_NS "'>");
        wire_append_escaped(out, error->text);
        g_string_append(out, "</text>");
    }
    g_string_append(out, "</error></");
    g_string_append(out, name);
    g_string_append_c(out, '>');
}

void stanza_write_presence(GString *out, const char *type, const char *from, const char *to)
{
    open_stanza(out, "presence", type, NULL, from, to);
    g_string_append(out, "/>");
}

void stanza_write_ping(GString *out, const char *id, const char *from, const char *to)
{
    open_stanza(out, "iq", "get", id, from, to);
    g_string_append(out, "><ping xmlns='" STANZA_PING_NS "'/></iq>");
}

/* ---- Reading -------------------------------------------------------------- */

/* expat with namespace processing: names arrive as "URI<sep>local". */
#define NS_SEPARATOR ' '

typedef struct tree_builder {
    XML_Parser xml;
    stanza_element_t *root;
    GPtrArray *open; /* the path from the root to the element being read */
    bool too_deep;   /* STANZA_DEPTH_MAX reached: the parse was stopped */
} tree_builder_t;

static void element_free(gpointer data)
{
    stanza_element_t *element = data;
    g_free(element->name);
    g_free(element->ns);
    g_strfreev(element->attributes);
    g_string_free(element->text, TRUE);
    g_ptr_array_free(element->children, TRUE);
    g_free(element);
}

static void XMLCALL on_start(void *data, const XML_Char *name, const XML_Char **attributes)
{
    tree_builder_t *builder = data;
    if (builder->open->len >= STANZA_DEPTH_MAX) {
        builder->too_deep = true;
        XML_StopParser(builder->xml, XML_FALSE);
        return;
    }
    stanza_element_t *element = g_new0(stanza_element_t, 1);
    const char *separator = strrchr(name, NS_SEPARATOR);
    element->name = g_strdup(separator ? separator + 1 : name);
    element->ns = separator ? g_strndup(name, (gsize)(separator - name)) : NULL;
    element->attributes = g_strdupv((char **)attributes);
    element->text = g_string_new(NULL);
    element->children = g_ptr_array_new_with_free_func(element_free);

    if (builder->open->len > 0) {
        stanza_element_t *parent = g_ptr_array_index(builder->open, builder->open->len - 1);
        g_ptr_array_add(parent->children, element);
    } else {
        builder->root = element;
    }
    g_ptr_array_add(builder->open, element);
}

static void XMLCALL on_end(void *data, const XML_Char *name)
{
    (void)name;
    tree_builder_t *builder = data;
    g_ptr_array_set_size(builder->open, builder->open->len - 1);
}

static void XMLCALL on_text(void *data, const XML_Char *text, int length)
{
    tree_builder_t *builder = data;
    if (builder->open->len > 0) {
        stanza_element_t *element = g_ptr_array_index(builder->open, builder->open->len - 1);
        g_string_append_len(element->text, text, length);
    }
}

/* XMPP forbids document type declarations (RFC 6120 §11.1), and refusing
 * them keeps entity expansion out. */
static void XMLCALL on_doctype(void *data, const XML_Char *name, const XML_Char *system_id,
                               const XML_Char *public_id, int has_internal_subset)
{
    (void)name;
    (void)system_id;
    (void)public_id;
    (void)has_internal_subset;
    tree_builder_t *builder = data;
    XML_StopParser(builder->xml, XML_FALSE);
}

stanza_element_t *stanza_parse(const char *bytes, size_t length)
{
    if (!bytes || length > G_MAXINT)
        return NULL;
    tree_builder_t builder = {.xml = XML_ParserCreateNS("UTF-8", NS_SEPARATOR),
                              .open = g_ptr_array_new()};
    if (!builder.xml) {
        g_ptr_array_free(builder.open, TRUE);
        return NULL;
    }
    XML_SetUserData(builder.xml, &builder);
    XML_SetElementHandler(builder.xml, on_start, on_end);
    XML_SetCharacterDataHandler(builder.xml, on_text);
    XML_SetStartDoctypeDeclHandler(builder.xml, on_doctype);
    bool ok = XML_Parse(builder.xml, bytes, (int)length, XML_TRUE) == XML_STATUS_OK &&
              !builder.too_deep && builder.root && builder.open->len == 0;
    XML_ParserFree(builder.xml);
    g_ptr_array_free(builder.open, TRUE);
    if (!ok && builder.root) {
        element_free(builder.root);
        builder.root = NULL;
    }
    return builder.root;
}

void stanza_tree_free(stanza_element_t *tree)
{
    if (tree)
        element_free(tree);
}

const stanza_element_t *stanza_child(const stanza_element_t *element, const char *name,
                                     const char *ns)
{
    for (guint i = 0; i < element->children->len; i++) {
        const stanza_element_t *child = g_ptr_array_index(element->children, i);
        if (strcmp(child->name, name) == 0 && (!ns || g_strcmp0(child->ns, ns) == 0))
            return child;
    }
    return NULL;
}

const char *stanza_attribute(const stanza_element_t *element, const char *name)
{
    for (char **attribute = element->attributes; attribute[0] && attribute[1]; attribute += 2)
        if (strcmp(attribute[0], name) == 0)
            return attribute[1];
    return NULL;
}

const char *stanza_child_text(const stanza_element_t *element, const char *name)
{
    const stanza_element_t *child = stanza_child(element, name, NULL);
    return child ? child->text->str : NULL;
}

const char *stanza_error_condition(const stanza_element_t *element, const char **type)
{
    const stanza_element_t *error = stanza_child(element, "error", NULL);
    if (!error)
        return NULL;
    for (guint i = 0; i < error->children->len; i++) {
        const stanza_element_t *child = g_ptr_array_index(error->children, i);
        if (g_strcmp0(child->ns, STANZA_ERRORS_NS) == 0 && strcmp(child->name, "text") != 0) {
            if (type)
                *type = stanza_attribute(error, "type");
            return child->name;
        }
    }
    return NULL;
}
