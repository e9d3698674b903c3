/* jat-raw: the token is the sender's full JID, verbatim.
 *
 * This is the format of Prosody's mod_client_proxy.  It hides nothing and
 * authenticates nothing: the implementing client sees every sender and can
 * make the component answer as any JID it likes.  Use it for compatibility
 * and debugging; prefer jat-sealed, jat-hmac or jat-opaque otherwise. */
#include <stdlib.h>
#include <string.h>

#include <client-proxy/plugin.h>

#include "jid-check.h"

typedef struct raw_state {
    const cp_host_api_t *api; /* borrowed from the host until fini() */
    cp_host_t *host;
} raw_state_t;

static int raw_init(const cp_host_api_t *api, cp_host_t *host, void **state)
{
    raw_state_t *raw = calloc(1, sizeof *raw);
    if (raw == NULL)
        return CP_ENOMEM;
    raw->api = api;
    raw->host = host;
    *state = raw;
    return CP_OK;
}

static void raw_fini(void *state)
{
    free(state);
}

static int raw_encode(void *state, const char *jid, int64_t expires, char *token,
                      size_t token_size)
{
    (void)state;
    (void)expires; /* nothing to store it in: a raw token never expires */
    size_t len = strnlen(jid, CP_TOKEN_MAX + 1);
    if (len == 0)
        return CP_EFAIL;
    /* A full JID can be three times longer than a resourcepart. */
    if (len > CP_TOKEN_MAX || len >= token_size)
        return CP_ETOOLONG;
    memcpy(token, jid, len + 1);
    return CP_OK;
}

static int raw_decode(void *state, const char *token, char *jid, size_t jid_size)
{
    (void)state;
    size_t len = strnlen(token, CP_TOKEN_MAX + 1);
    if (len > CP_TOKEN_MAX || !pc_jid_bytes_plausible(token, len))
        return CP_EBADTOKEN;
    if (len >= jid_size)
        return CP_ETOOLONG; /* the host broke its promise of CP_JID_MAX + 1 */
    memcpy(jid, token, len + 1);
    return CP_OK;
}

static const cp_jat_ops_t raw_ops = {
    .size = sizeof(cp_jat_ops_t),
    .encode = raw_encode,
    .decode = raw_decode,
    .forget = NULL,
};

CP_PLUGIN_DEFINE(CP_PLUGIN_JAT, "raw",
                 "token is the sender's full JID, verbatim (as Prosody's mod_client_proxy)",
                 raw_init, raw_fini, &raw_ops);
