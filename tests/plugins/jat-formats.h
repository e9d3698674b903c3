/* Tokens of jat-hmac and jat-sealed built from their documented formats
 * alone (the comments at the top of plugins/jat-hmac/jat-hmac.c and
 * plugins/jat-sealed/jat-sealed.c), with code of their own where it can
 * be: GLib's HMAC and GLib's base64 (its alphabet translated) where the
 * plugins use libsodium's HMAC and our base64url, so that a plugin and this
 * reading of its format cannot share a mistake.
 *
 * Version 1 is what encode() made before issue 14: the plugins no longer
 * make it, but must still decode it until it expires. */
#ifndef TESTS_PLUGINS_JAT_FORMATS_H
#define TESTS_PLUGINS_JAT_FORMATS_H

#include <stddef.h>
#include <stdint.h>

/** 2026-01-01T00:00:00Z: version 2 counts expiries from it. */
#define JAT_EPOCH_2026 INT64_C(1767225600)

/** A test key as the key file holds it: KEY_LEN bytes at KEY. */
typedef struct jat_key {
    const uint8_t *bytes;
    size_t len;
} jat_key_t;

/** 32 bytes of FILL (JAT_KEY1, JAT_KEY2), as jat_fixture_with_keys() writes
 *  them.  The bytes live in static storage, one buffer per FILL value. */
jat_key_t jat_key_of(int fill);

/** TIME (seconds since the Unix epoch) in seconds since 2026, clamped into
 *  four bytes as the plugins do. */
uint32_t jat_since_2026(int64_t time);

/** RFC 4648 base64url without padding, by g_base64_encode() with '+' and
 *  '/' translated and '=' dropped.  g_free() it. */
char *jat_base64url(const uint8_t *bytes, size_t len);

/* Each returns a new token (g_free()) for JID[0..JID_LEN) under KEY with
 * VERSION as its first byte (and wherever the format uses it), and EXPIRES
 * in the format's own unit. */

/** jat-hmac version 1: base32(version || expires || HMAC-SHA256[0..16) || jid),
 *  EXPIRES since the Unix epoch. */
char *jat_hmac_v1_token(jat_key_t key, uint8_t version, uint32_t expires, const void *jid,
                        size_t jid_len);
/** jat-hmac version 2: base64url(version || expires || HMAC-SHA256[0..8) || jid),
 *  EXPIRES since 2026. */
char *jat_hmac_v2_token(jat_key_t key, uint8_t version, uint32_t expires, const void *jid,
                        size_t jid_len);
/** jat-sealed version 1: base32(version || nonce || XChaCha20-Poly1305(expires || jid)),
 *  with NONCE (24 bytes; NULL: random), EXPIRES since the Unix epoch. */
char *jat_sealed_v1_token(jat_key_t key, uint8_t version, const uint8_t *nonce,
                          uint32_t expires, const void *jid, size_t jid_len);
/** jat-sealed version 2: base64url(version || expires || siv || XChaCha20-Poly1305(jid)),
 *  EXPIRES since 2026.  SIV (12 bytes) replaces the siv the format computes
 *  when it is not NULL, as only a forger would. */
char *jat_sealed_v2_token(jat_key_t key, uint8_t version, uint32_t expires, const uint8_t *siv,
                          const void *jid, size_t jid_len);

#endif
