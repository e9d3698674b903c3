/* jat-base32: the token is base32(full JID), lowercase, unpadded.
 *
 * Unlike jat-raw the token is always a safe resourcepart whatever the JID
 * holds, and it reads back exactly; like jat-raw it is neither secret nor
 * authenticated: anyone can decode it, and forge one. */
#include <stdlib.h>
#include <string.h>

#include <client-proxy/plugin.h>

#include "base32.h"
#include "jid-check.h"

/* The longest JID whose encoding still fits a resourcepart. */
#define BASE32_JID_MAX (CP_TOKEN_MAX * 5 / 8)

typedef struct base32_state {
    const cp_host_api_t *api; /* borrowed from the host until fini() */
    cp_host_t *host;
} base32_state_t;

static int base32_init(const cp_host_api_t *api, cp_host_t *host, void **state)
{
    base32_state_t *b32 = calloc(1, sizeof *b32);
    if (b32 == NULL)
        return CP_ENOMEM;
    b32->api = api;
    b32->host = host;
    *state = b32;
    return CP_OK;
}

static void base32_fini(void *state)
{
    free(state);
}

static int base32_jat_encode(void *state, const char *jid, int64_t expires, char *token,
                             size_t token_size)
{
    (void)state;
    (void)expires; /* not stored: the token carries only the JID */
    size_t len = strnlen(jid, BASE32_JID_MAX + 1);
    if (len == 0)
        return CP_EFAIL;
    if (len > BASE32_JID_MAX || pc_base32_encoded_len(len) >= token_size)
        return CP_ETOOLONG;
    pc_base32_encode((const uint8_t *)jid, len, token);
    return CP_OK;
}

static int base32_jat_decode(void *state, const char *token, char *jid, size_t jid_size)
{
    (void)state;
    uint8_t bytes[BASE32_JID_MAX];
    size_t len = strnlen(token, CP_TOKEN_MAX + 1);
    size_t n = 0;

    if (len > CP_TOKEN_MAX || !pc_base32_decode(token, len, bytes, sizeof bytes, &n))
        return CP_EBADTOKEN;
    /* Anyone can write a token, so what it decodes to is checked like input. */
    if (!pc_jid_bytes_plausible((const char *)bytes, n))
        return CP_EBADTOKEN;
    if (n >= jid_size)
        return CP_ETOOLONG; /* the host broke its promise of CP_JID_MAX + 1 */
    memcpy(jid, bytes, n);
    jid[n] = '\0';
    return CP_OK;
}

static const cp_jat_ops_t base32_ops = {
    .size = sizeof(cp_jat_ops_t),
    .encode = base32_jat_encode,
    .decode = base32_jat_decode,
    .forget = NULL,
};

CP_PLUGIN_DEFINE(CP_PLUGIN_JAT, "base32",
                 "token is base32 of the sender's full JID: reversible, not authenticated",
                 base32_init, base32_fini, &base32_ops);
