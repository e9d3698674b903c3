#include "jid-check.h"

#include <string.h>

#include <glib.h>

#include <client-proxy/plugin.h>

bool pc_jid_bytes_plausible(const char *s, size_t len)
{
    if (len == 0 || len > G_MAXSSIZE)
        return false;
    if (!g_utf8_validate_len(s, len, NULL))
        return false;
    for (const char *p = s; p < s + len; p = g_utf8_next_char(p)) {
        gunichar c = g_utf8_get_char(p);
        if (c < 0x20 || (c >= 0x7f && c <= 0x9f))
            return false;
    }
    return true;
}

int pc_jid_write(const uint8_t *bytes, size_t len, char *jid, size_t jid_size)
{
    if (len == 0 || memchr(bytes, '\0', len) != NULL)
        return CP_EBADTOKEN;
    if (len >= jid_size)
        return CP_ETOOLONG;
    memcpy(jid, bytes, len);
    jid[len] = '\0';
    return CP_OK;
}
