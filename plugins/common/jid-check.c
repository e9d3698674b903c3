#include "jid-check.h"

#include <glib.h>

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
