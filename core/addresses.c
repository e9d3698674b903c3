/* Users' addresses, written and read by the encodings: see addresses.h. */
#include "addresses.h"

#include <string.h>

#include <glib.h>

#include "log.h"

typedef struct retired {
    plugin_t *jat;      /* a reference */
    int64_t until;      /* monotonic µs: its last address has expired then */
} retired_t;

struct addresses {
    plugin_t *jat;      /* a reference: makes new addresses */
    int64_t lifetime_s; /* [proxy] address_lifetime */
    GQueue retired;     /* retired_t, oldest first */
    log_limit_t unencodable_log; /* any user can send such a JID, often */
};

addresses_t *addresses_new(const config_t *config, plugin_t *jat)
{
    addresses_t *addresses = g_new0(addresses_t, 1);
    addresses->jat = plugin_ref(jat);
    addresses->lifetime_s = config->address_lifetime;
    g_queue_init(&addresses->retired);
    return addresses;
}

static void retired_free(retired_t *retired)
{
    plugin_unref(retired->jat);
    g_free(retired);
}

void addresses_free(addresses_t *addresses)
{
    if (!addresses)
        return;
    g_queue_clear_full(&addresses->retired, (GDestroyNotify)retired_free);
    plugin_unref(addresses->jat);
    g_free(addresses);
}

void addresses_reconfigure(addresses_t *addresses, const config_t *config, plugin_t *jat)
{
    if (jat != addresses->jat) {
        retired_t *retired = g_new0(retired_t, 1);
        retired->jat = addresses->jat;
        retired->until = g_get_monotonic_time() + addresses->lifetime_s * G_USEC_PER_SEC;
        g_queue_push_tail(&addresses->retired, retired);
        addresses->jat = plugin_ref(jat);
    }
    addresses->lifetime_s = config->address_lifetime;
}

plugin_t *addresses_issue(addresses_t *addresses, const char *sender, char *token)
{
    int64_t expires = g_get_real_time() / G_USEC_PER_SEC + addresses->lifetime_s;
    int status = plugin_encode(addresses->jat, sender, expires, token, CP_TOKEN_MAX + 1);
    size_t length = status == CP_OK ? strnlen(token, CP_TOKEN_MAX + 1) : 0;
    if (length > 0 && length <= CP_TOKEN_MAX)
        return addresses->jat;
    if (status == CP_OK) { /* encoded, but unusable: let it go like any other */
        token[CP_TOKEN_MAX] = '\0';
        plugin_forget(addresses->jat, token);
    }
    log_limited(&addresses->unencodable_log, CP_LOG_WARNING, "%s cannot encode %s (status %d)",
                plugin_file(addresses->jat), sender, status);
    return NULL;
}

static bool read_with(plugin_t *jat, const char *address, char *jid)
{
    return plugin_decode(jat, address, jid, CP_JID_MAX + 1) == CP_OK;
}

bool addresses_read(addresses_t *addresses, const char *address, char *jid)
{
    if (read_with(addresses->jat, address, jid))
        return true;
    for (GList *link = addresses->retired.tail; link; link = link->prev)
        if (read_with(((retired_t *)link->data)->jat, address, jid))
            return true;
    return false;
}

void addresses_expire(addresses_t *addresses, int64_t now)
{
    retired_t *oldest;
    while ((oldest = g_queue_peek_head(&addresses->retired)) && oldest->until <= now)
        retired_free(g_queue_pop_head(&addresses->retired));
}

int64_t addresses_next_expiry(const addresses_t *addresses)
{
    const retired_t *oldest = g_queue_peek_head((GQueue *)&addresses->retired);
    return oldest ? oldest->until : -1;
}
