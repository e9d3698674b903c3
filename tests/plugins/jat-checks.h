/* Checks shared by the tests of every JAT encoding. */
#ifndef TESTS_PLUGINS_JAT_CHECKS_H
#define TESTS_PLUGINS_JAT_CHECKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <client-proxy/plugin.h>

typedef struct jat_fixture {
    cp_host_t *host;
    void *state;
    const cp_jat_ops_t *ops;
} jat_fixture_t;

/** Full JIDs with unusual but valid characters; NULL-terminated. */
extern const char *const jat_unusual_jids[];

/** Makes a host with CONFIG (alternating keys and values, NULL-terminated;
 *  may be NULL) and inits the plugin, which must succeed. */
jat_fixture_t *jat_fixture_new(const char *const *config);
/** Finis the plugin (when it was inited) and frees the host. */
void jat_fixture_free(jat_fixture_t *fx);

/** A JID "u@example.org/rrr..." of exactly LEN bytes.  g_free() it. */
char *jat_jid_of_length(size_t len);

/** Encodes JID, checks the token is a valid resourcepart, decodes it and
 *  checks the JID comes back byte for byte.  Returns the token (g_free()). */
char *jat_assert_round_trip(jat_fixture_t *fx, const char *jid, int64_t expires);

/** Asserts TOKEN is usable as a resourcepart: 1..CP_TOKEN_MAX bytes of
 *  UTF-8 without control characters. */
void jat_assert_resource_safe(const char *token);
/** Asserts TOKEN holds only lowercase base32 characters [a-z2-7]. */
void jat_assert_base32_alphabet(const char *token);

/** Decodes TOKEN and returns the status (the JID is discarded). */
int jat_decode_status(jat_fixture_t *fx, const char *token);

#endif
