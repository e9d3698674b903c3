/* The stanzas client-proxy writes itself (errors, presence, pings) and the
 * few it reads beyond their attributes (presence, the error of a reply).
 *
 * Core writes XML one way: into a GString, with wire_append_escaped() for
 * every value, as wire_rewrite() does for forwarded stanzas.  It reads XML
 * one way too, with expat: the stream parser for every stanza, and
 * stanza_parse() here for the rare one read in depth. */
#ifndef CP_CORE_STANZA_H
#define CP_CORE_STANZA_H

#include <stdbool.h>
#include <stddef.h>

#include <glib.h>

#define STANZA_ERRORS_NS "urn:ietf:params:xml:ns:xmpp-stanzas"
#define STANZA_PING_NS "urn:xmpp:ping"

/* A stanza error (RFC 6120 §8.3).  The strings are borrowed: usually
 * literals. */
typedef struct stanza_error {
    const char *type;      /* "cancel", "wait", "modify", "auth" */
    const char *condition; /* "service-unavailable", ... */
    const char *text;      /* for humans, or NULL */
} stanza_error_t;

/* Appends to OUT an error stanza NAME ("iq", "message" or "presence") of
 * type "error" from FROM to TO, answering ID (NULL: none).  Every string is
 * borrowed and escaped here. */
void stanza_write_error(GString *out, const char *name, const char *from, const char *to,
                        const char *id, const stanza_error_t *error);

/* Appends presence of TYPE (NULL: available) from FROM to TO. */
void stanza_write_presence(GString *out, const char *type, const char *from, const char *to);

/* Appends a XEP-0199 ping, an IQ get with ID from FROM to TO. */
void stanza_write_ping(GString *out, const char *id, const char *from, const char *to);

/* One element of a stanza read in depth.  Everything in it is owned by the
 * tree it belongs to (stanza_tree_free()). */
typedef struct stanza_element {
    char *name;          /* local name */
    char *ns;            /* namespace URI, or NULL when none was declared in
                            the stanza (the stream's default applies) */
    char **attributes;   /* name, value, name, value, ..., NULL; names as
                            "uri local" when prefixed with a namespace */
    GString *text;       /* character data directly inside it */
    GPtrArray *children; /* stanza_element_t, in document order */
} stanza_element_t;

/* How deep a tree stanza_parse() builds.  Real stanzas nest a handful of
 * levels; the cap keeps the recursive free (and anything walking the tree)
 * off the end of the stack when a peer sends 100,000 nested elements. */
#define STANZA_DEPTH_MAX 64

/* Parses BYTES (LENGTH of them: one element, as the stream delivered it)
 * into a tree for stanza_tree_free(), or returns NULL when they are not one
 * well-formed element, or nest deeper than STANZA_DEPTH_MAX. */
stanza_element_t *stanza_parse(const char *bytes, size_t length);
void stanza_tree_free(stanza_element_t *tree);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(stanza_element_t, stanza_tree_free)

/* The first child of ELEMENT named NAME in namespace NS (NULL: any), or
 * NULL.  Borrowed from the tree. */
const stanza_element_t *stanza_child(const stanza_element_t *element, const char *name,
                                     const char *ns);

/* The value of ELEMENT's unprefixed attribute NAME, or NULL.  Borrowed. */
const char *stanza_attribute(const stanza_element_t *element, const char *name);

/* The text of ELEMENT's child NAME (any namespace), or NULL when it has no
 * such child.  Borrowed. */
const char *stanza_child_text(const stanza_element_t *element, const char *name);

/* The defined condition of ELEMENT's <error/> (its child in the stanzas
 * namespace), and its type into *TYPE (may be NULL).  Returns NULL when
 * ELEMENT carries no error with a condition.  Borrowed. */
const char *stanza_error_condition(const stanza_element_t *element, const char **type);

#endif
