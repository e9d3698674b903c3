/* JID helpers: see jid.h. */
#include "jid.h"

#include <string.h>

#include <glib.h>

#define JID_PART_MAX 1023

size_t jid_bare_length(const char *jid)
{
    const char *slash = strchr(jid, '/');
    return slash ? (size_t)(slash - jid) : strlen(jid);
}

const char *jid_resource(const char *jid)
{
    const char *slash = strchr(jid, '/');
    return slash ? slash + 1 : NULL;
}

bool jid_bare_equal(const char *jid, const char *bare)
{
    size_t length = jid_bare_length(jid);
    return length == strlen(bare) && g_ascii_strncasecmp(jid, bare, length) == 0;
}

bool jid_equal(const char *a, const char *b)
{
    size_t length = jid_bare_length(a);
    return length == jid_bare_length(b) && g_ascii_strncasecmp(a, b, length) == 0 &&
           g_strcmp0(jid_resource(a), jid_resource(b)) == 0;
}

bool jid_split_bare(const char *jid, char *bare, size_t size)
{
    size_t length = jid_bare_length(jid);
    if (size == 0)
        return false;
    if (length >= size) {
        bare[0] = '\0';
        return false;
    }
    memcpy(bare, jid, length);
    bare[length] = '\0';
    return true;
}

void jid_join(char *full, size_t size, const char *bare, const char *resource)
{
    size_t n = g_strlcpy(full, bare, size);
    if (n + 1 < size) {
        full[n] = '/';
        g_strlcpy(full + n + 1, resource, size - n - 1);
    }
}

/* Characters we refuse in a configured JID part: they would need escaping
 * (RFC 7622 forbids most of them in a domainpart, XEP-0106 escapes them in
 * a localpart), and an operator who writes one has likely made a typo. */
static bool is_part(const char *text, size_t length)
{
    if (length == 0 || length > JID_PART_MAX)
        return false;
    for (size_t i = 0; i < length; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c <= ' ' || c == 0x7f || strchr("/@:'\"&<>", c))
            return false;
    }
    return true;
}

bool jid_is_domain(const char *text)
{
    return is_part(text, strlen(text));
}

bool jid_is_bare(const char *text)
{
    const char *at = strchr(text, '@');
    return at && is_part(text, (size_t)(at - text)) && jid_is_domain(at + 1);
}
