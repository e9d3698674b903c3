/* jat-opaque: the token is 128 random bits; the JID stays in our memory.
 *
 *   token = base32(16 bytes from the host's CSPRNG), 26 characters
 *
 * The implementing client learns nothing about the sender, and cannot guess
 * a live token.  The price is state: tokens die with the process, and each
 * one costs memory until forget() or its deadline.  Expired entries are
 * swept when the table has doubled since the last sweep, so memory stays
 * proportional to the requests actually in flight even if forget() is
 * never called. */
#include <string.h>

#include <glib.h>

#include <client-proxy/plugin.h>

#include "base32.h"

#define OPAQUE_RANDOM_LEN 16
#define OPAQUE_TOKEN_LEN 26 /* pc_base32_encoded_len(OPAQUE_RANDOM_LEN) */
/* Below this many entries a sweep is not worth its walk over the table. */
#define OPAQUE_SWEEP_MIN 64

typedef struct opaque_entry {
    char *jid;       /* owned */
    int64_t expires; /* seconds since the Unix epoch */
} opaque_entry_t;

typedef struct opaque_state {
    const cp_host_api_t *api; /* borrowed from the host until fini() */
    cp_host_t *host;
    GHashTable *tokens;       /* owned: token (owned char *) -> opaque_entry_t (owned) */
    guint sweep_at;           /* sweep when the table reaches this size */
} opaque_state_t;

static void opaque_entry_free(gpointer data)
{
    opaque_entry_t *entry = data;
    g_free(entry->jid);
    g_free(entry);
}

static int64_t now_seconds(void)
{
    return g_get_real_time() / G_USEC_PER_SEC;
}

static gboolean opaque_entry_expired(gpointer key, gpointer value, gpointer user_data)
{
    (void)key;
    const opaque_entry_t *entry = value;
    const int64_t *now = user_data;
    return *now > entry->expires;
}

/* Drops expired entries, then waits until the table has doubled again, so
 * that each insertion pays for a bounded share of the walks. */
static void opaque_sweep(opaque_state_t *opaque)
{
    int64_t now = now_seconds();
    guint removed = g_hash_table_foreach_remove(opaque->tokens, opaque_entry_expired, &now);
    guint left = g_hash_table_size(opaque->tokens);

    opaque->sweep_at = MAX(OPAQUE_SWEEP_MIN, left * 2);
    if (removed > 0)
        opaque->api->log(opaque->host, CP_LOG_DEBUG, "swept %u expired token(s), %u left",
                         removed, left);
}

static int opaque_init(const cp_host_api_t *api, cp_host_t *host, void **state)
{
    opaque_state_t *opaque = g_new0(opaque_state_t, 1);
    opaque->api = api;
    opaque->host = host;
    opaque->tokens = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, opaque_entry_free);
    opaque->sweep_at = OPAQUE_SWEEP_MIN;
    *state = opaque;
    return CP_OK;
}

static void opaque_fini(void *state)
{
    opaque_state_t *opaque = state;
    g_hash_table_destroy(opaque->tokens);
    g_free(opaque);
}

static int opaque_encode(void *state, const char *jid, int64_t expires, char *token,
                         size_t token_size)
{
    opaque_state_t *opaque = state;
    uint8_t secret[OPAQUE_RANDOM_LEN];
    char fresh[OPAQUE_TOKEN_LEN + 1];

    size_t jid_len = strnlen(jid, CP_JID_MAX + 1);
    if (jid_len == 0)
        return CP_EFAIL;
    if (jid_len > CP_JID_MAX || token_size <= OPAQUE_TOKEN_LEN)
        return CP_ETOOLONG;
    if (g_hash_table_size(opaque->tokens) >= opaque->sweep_at)
        opaque_sweep(opaque);

    /* A repeat of 128 random bits means the generator is broken; still,
     * never let one token stand for two senders. */
    do {
        if (opaque->api->random_bytes(opaque->host, secret, sizeof secret) != CP_OK) {
            opaque->api->log(opaque->host, CP_LOG_ERROR, "cannot get random bytes for a token");
            return CP_EFAIL;
        }
        pc_base32_encode(secret, sizeof secret, fresh);
    } while (g_hash_table_contains(opaque->tokens, fresh));

    opaque_entry_t *entry = g_new(opaque_entry_t, 1);
    entry->jid = g_strndup(jid, jid_len);
    entry->expires = expires;
    g_hash_table_insert(opaque->tokens, g_strdup(fresh), entry);
    memcpy(token, fresh, sizeof fresh);
    return CP_OK;
}

static int opaque_decode(void *state, const char *token, char *jid, size_t jid_size)
{
    opaque_state_t *opaque = state;

    /* Anything but the exact shape we hand out is unknown by definition;
     * checking it first keeps long junk out of the hash function. */
    if (strnlen(token, OPAQUE_TOKEN_LEN + 1) != OPAQUE_TOKEN_LEN)
        return CP_EBADTOKEN;
    const opaque_entry_t *entry = g_hash_table_lookup(opaque->tokens, token);
    if (entry == NULL)
        return CP_EBADTOKEN;
    if (now_seconds() > entry->expires) {
        g_hash_table_remove(opaque->tokens, token);
        return CP_EEXPIRED;
    }
    size_t len = strlen(entry->jid);
    if (len >= jid_size)
        return CP_ETOOLONG; /* the host broke its promise of CP_JID_MAX + 1 */
    memcpy(jid, entry->jid, len + 1);
    return CP_OK;
}

static void opaque_forget(void *state, const char *token)
{
    opaque_state_t *opaque = state;
    g_hash_table_remove(opaque->tokens, token);
}

static const cp_jat_ops_t opaque_ops = {
    .size = sizeof(cp_jat_ops_t),
    .encode = opaque_encode,
    .decode = opaque_decode,
    .forget = opaque_forget,
};

CP_PLUGIN_DEFINE(CP_PLUGIN_JAT, "opaque",
                 "token is 128 random bits mapped in memory to the sender: hides the JID, "
                 "does not survive a restart",
                 opaque_init, opaque_fini, &opaque_ops);
