/* jat-opaque: the token is 128 random bits; the JID stays in our memory.
 *
 *   token = base32(16 bytes from the host's CSPRNG), 26 characters
 *
 * The implementing client learns nothing about the sender, and cannot guess
 * a live token.  The price is state, and tokens die with the process.
 *
 * Each token is its sender's address (plugin.h, "Addresses"): one JID has
 * one token while it lives, renewed each time it is given out again or
 * written to.  A token is pinned while requests made with it are in flight
 * (encode() to forget()); the unpinned ones wait in least-recently-used
 * order, so that expiry and the host's address_limit() both drop from one
 * end: every call costs O(1) amortised. */
#include <stdbool.h>
#include <string.h>

#include <glib.h>

#include <client-proxy/plugin.h>

#include "base32.h"

#define OPAQUE_RANDOM_LEN 16
#define OPAQUE_TOKEN_LEN 26 /* pc_base32_encoded_len(OPAQUE_RANDOM_LEN) */
/* When the host is older than ABI 1.1 and cannot say. */
#define OPAQUE_DEFAULT_LIMIT 100000

typedef struct opaque_entry {
    char token[OPAQUE_TOKEN_LEN + 1];
    char *jid;        /* owned */
    int64_t expires;  /* seconds since the Unix epoch */
    int64_t lifetime; /* seconds: what a use renews the expiry to */
    unsigned pins;    /* encode() calls not yet forgotten */
    GList lru_link;   /* in unpinned, while pins == 0 */
} opaque_entry_t;

typedef struct opaque_state {
    const cp_host_api_t *api; /* borrowed from the host until fini() */
    cp_host_t *host;
    GHashTable *by_token;     /* token -> opaque_entry_t, owning */
    GHashTable *by_jid;       /* jid -> the same entry */
    GQueue unpinned;          /* opaque_entry_t, least recently used first */
    size_t limit;             /* unpinned entries kept at most */
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

static void drop(opaque_state_t *opaque, opaque_entry_t *entry)
{
    if (entry->pins == 0)
        g_queue_unlink(&opaque->unpinned, &entry->lru_link);
    g_hash_table_remove(opaque->by_jid, entry->jid);
    g_hash_table_remove(opaque->by_token, entry->token); /* frees it */
}

/* Drops unpinned entries from the least recently used end: those expired,
 * and those beyond the limit.  Lifetimes hardly differ, so the oldest use
 * expires first and the walk stops at the first live one. */
static void trim(opaque_state_t *opaque, int64_t now)
{
    opaque_entry_t *oldest;
    while ((oldest = g_queue_peek_head(&opaque->unpinned)) &&
           (now > oldest->expires || opaque->unpinned.length > opaque->limit))
        drop(opaque, oldest);
}

/* ENTRY was used now: it lives another lifetime, and is the most recent. */
static void renew(opaque_state_t *opaque, opaque_entry_t *entry, int64_t expires)
{
    entry->expires = MAX(entry->expires, expires);
    if (entry->pins == 0) {
        g_queue_unlink(&opaque->unpinned, &entry->lru_link);
        g_queue_push_tail_link(&opaque->unpinned, &entry->lru_link);
    }
}

static int opaque_init(const cp_host_api_t *api, cp_host_t *host, void **state)
{
    opaque_state_t *opaque = g_new0(opaque_state_t, 1);
    opaque->api = api;
    opaque->host = host;
    opaque->by_token = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, opaque_entry_free);
    opaque->by_jid = g_hash_table_new(g_str_hash, g_str_equal);
    g_queue_init(&opaque->unpinned);
    opaque->limit = CP_HAS_MEMBER(api, cp_host_api_t, address_limit) && api->address_limit
                        ? api->address_limit(host)
                        : OPAQUE_DEFAULT_LIMIT;
    *state = opaque;
    return CP_OK;
}

static void opaque_fini(void *state)
{
    opaque_state_t *opaque = state;
    g_hash_table_destroy(opaque->by_jid);
    g_hash_table_destroy(opaque->by_token);
    g_free(opaque);
}

/* A new entry for JID with a fresh random token, or NULL. */
static opaque_entry_t *create(opaque_state_t *opaque, const char *jid, size_t jid_len)
{
    uint8_t secret[OPAQUE_RANDOM_LEN];
    opaque_entry_t *entry = g_new0(opaque_entry_t, 1);
    /* A repeat of 128 random bits means the generator is broken; still,
     * never let one token stand for two senders. */
    do {
        if (opaque->api->random_bytes(opaque->host, secret, sizeof secret) != CP_OK) {
            opaque->api->log(opaque->host, CP_LOG_ERROR, "cannot get random bytes for a token");
            g_free(entry);
            return NULL;
        }
        pc_base32_encode(secret, sizeof secret, entry->token);
    } while (g_hash_table_contains(opaque->by_token, entry->token));
    entry->jid = g_strndup(jid, jid_len);
    entry->lru_link.data = entry;
    g_hash_table_insert(opaque->by_token, entry->token, entry);
    g_hash_table_insert(opaque->by_jid, entry->jid, entry);
    return entry;
}

static int opaque_encode(void *state, const char *jid, int64_t expires, char *token,
                         size_t token_size)
{
    opaque_state_t *opaque = state;
    size_t jid_len = strnlen(jid, CP_JID_MAX + 1);
    if (jid_len == 0)
        return CP_EFAIL;
    if (jid_len > CP_JID_MAX || token_size <= OPAQUE_TOKEN_LEN)
        return CP_ETOOLONG;

    int64_t now = now_seconds();
    trim(opaque, now);
    opaque_entry_t *entry = g_hash_table_lookup(opaque->by_jid, jid);
    if (entry && now > entry->expires && entry->pins == 0) {
        drop(opaque, entry); /* its address has ended: a new one */
        entry = NULL;
    }
    bool fresh = entry == NULL;
    if (fresh && !(entry = create(opaque, jid, jid_len)))
        return CP_EFAIL;
    if (fresh)
        entry->expires = expires;
    else
        renew(opaque, entry, expires);
    /* expires - now cannot overflow: now is positive and expires a signed
     * 64-bit, but expires may be as far as INT64_MAX (never expiring). */
    entry->lifetime = expires > now ? expires - now : 0;
    if (entry->pins++ == 0 && !fresh)
        g_queue_unlink(&opaque->unpinned, &entry->lru_link);
    memcpy(token, entry->token, sizeof entry->token);
    return CP_OK;
}

static int opaque_decode(void *state, const char *token, char *jid, size_t jid_size)
{
    opaque_state_t *opaque = state;

    /* Anything but the exact shape we hand out is unknown by definition;
     * checking it first keeps long junk out of the hash function. */
    if (strnlen(token, OPAQUE_TOKEN_LEN + 1) != OPAQUE_TOKEN_LEN)
        return CP_EBADTOKEN;
    opaque_entry_t *entry = g_hash_table_lookup(opaque->by_token, token);
    if (entry == NULL)
        return CP_EBADTOKEN;
    int64_t now = now_seconds();
    if (now > entry->expires) {
        if (entry->pins == 0)
            drop(opaque, entry);
        return CP_EEXPIRED;
    }
    size_t len = strlen(entry->jid);
    if (len >= jid_size)
        return CP_ETOOLONG; /* the host broke its promise of CP_JID_MAX + 1 */
    memcpy(jid, entry->jid, len + 1);
    /* Written to: in use.  A lifetime up to INT64_MAX must not overflow. */
    int64_t renewed = entry->lifetime > INT64_MAX - now ? INT64_MAX : now + entry->lifetime;
    renew(opaque, entry, renewed);
    return CP_OK;
}

static void opaque_forget(void *state, const char *token)
{
    opaque_state_t *opaque = state;
    opaque_entry_t *entry = g_hash_table_lookup(opaque->by_token, token);
    if (!entry || entry->pins == 0)
        return;
    if (--entry->pins > 0)
        return;
    int64_t now = now_seconds();
    g_queue_push_tail_link(&opaque->unpinned, &entry->lru_link);
    if (now > entry->expires)
        drop(opaque, entry);
    trim(opaque, now);
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
