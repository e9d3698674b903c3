/* Stanzas as they cross the wire: the few attributes routing needs, read
 * once by the stream parser, and the stanza's exact bytes.
 *
 * The router forwards a request or a reply by rewriting its start tag and
 * copying the rest of its bytes.  Building a tree for it and serialising
 * that tree again cost more than all of client-proxy's own code
 * (bench/README.md); only the rare stanzas read in depth (presence) become
 * trees, with stanza_parse() (stanza.h). */
#ifndef CP_CORE_WIRE_H
#define CP_CORE_WIRE_H

#include <stdbool.h>
#include <stddef.h>

#include <glib.h>

#define XMPP_NS_COMPONENT_ACCEPT "jabber:component:accept"

/* Larger stanzas are still routed by their attributes, but their bytes are
 * not kept (see wire_stanza_t.bytes).  Servers cap client stanzas lower
 * (Prosody 256 KiB, ejabberd 64 KiB by default). */
#define WIRE_STANZA_MAX (1024 * 1024)

/* One stanza read from the stream.  Every pointer is borrowed from the
 * parser and valid only during the callback that hands the stanza over. */
typedef struct wire_stanza {
    const char *name;       /* "iq", "presence", "message", or what else came */
    const char *from;       /* attribute values, unescaped; NULL when absent */
    const char *to;
    const char *id;
    const char *type;
    bool has_payload;       /* it has a child element */
    const char *payload_ns; /* the first child element's namespace, or NULL */
    const char *const *payload_attributes; /* the first child element's
                               attributes as name, value pairs, NULL-terminated;
                               never NULL from the parser */
    const char *bytes;      /* the stanza as received, not NUL-terminated; NULL
                               when it was larger than WIRE_STANZA_MAX */
    size_t length;
} wire_stanza_t;

/* Appends to OUT the stanza BYTES (LENGTH of them: one element as the stream
 * parser delivered it) with its from and to replaced by FROM and TO.  Its
 * other attributes and its content are copied unchanged, except an xmlns
 * that only repeats the stream's namespace: the server would parse those
 * bytes again for nothing. */
void wire_rewrite(GString *out, const char *bytes, size_t length, const char *from,
                  const char *to);

/* As wire_rewrite(), and replaces the id with ID too (added when the
 * stanza had none). */
void wire_rewrite_with_id(GString *out, const char *bytes, size_t length, const char *from,
                          const char *to, const char *id);

/* Appends TEXT to OUT, escaped for an attribute value or character data. */
void wire_append_escaped(GString *out, const char *text);

#endif
