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
/** Asserts TOKEN holds only base64url characters [A-Za-z0-9_-]. */
void jat_assert_base64url_alphabet(const char *token);

/** Decodes TOKEN and returns the status (the JID is discarded). */
int jat_decode_status(jat_fixture_t *fx, const char *token);

/** Encodes JID, which must succeed, and returns the token (g_free()). */
char *jat_encode_ok(jat_fixture_t *fx, const char *jid, int64_t expires);

/** A deadline an hour from now. */
int64_t jat_in_an_hour(void);

/* ---- Keyed encodings (jat-hmac, jat-sealed) --------------------------- */

/** Test keys are 32 bytes, every one the same: JAT_KEY1 is 32 bytes of 0x11. */
#define JAT_KEY1 0x11
#define JAT_KEY2 0x22
#define JAT_NO_KEY (-1)

/** A fixture whose key_file holds FILE_TEXT (mode 0600; removed after init). */
jat_fixture_t *jat_fixture_with_key_file(const char *file_text);
/** A fixture whose key file holds key FIRST and, unless JAT_NO_KEY, SECOND. */
jat_fixture_t *jat_fixture_with_keys(int first, int second);

/** Asserts init refuses malformed key files, files open to group or others,
 *  files without a key, a missing file and an empty key_file setting, each
 *  with one config_error() on key_file that names the file and the fault. */
void jat_assert_bad_key_files_refused(void);
/** Asserts init with a key file logs how many keys it loaded, never a key. */
void jat_assert_key_bytes_never_logged(void);

/** Asserts init without key_file warns that tokens will not survive a
 *  restart (and works), and fails with CP_EFAIL and a log line when no
 *  random bytes can be had. */
void jat_assert_random_key_when_no_key_file(void);

/** How a keyed encoding writes its bytes as text: version 1 of jat-hmac
 *  and jat-sealed in base32, version 2 in base64url. */
typedef enum jat_coding {
    JAT_BASE32,
    JAT_BASE64URL,
} jat_coding_t;

/** Decodes TEXT in CODING into BYTES (room for CP_TOKEN_MAX bytes);
 *  returns how many.  The text must be canonical. */
size_t jat_text_bytes(jat_coding_t coding, const char *text, uint8_t *bytes);
/** BYTES[0..N) as text in CODING.  g_free() it. */
char *jat_bytes_text(jat_coding_t coding, const uint8_t *bytes, size_t n);

/** Asserts every single-bit flip of TOKEN's characters, and of the bytes
 *  under its text in CODING (re-encoded), is refused with CP_EBADTOKEN,
 *  and that TOKEN itself still decodes with EXPECTED (CP_OK or
 *  CP_EEXPIRED). */
void jat_assert_tampering_refused(jat_fixture_t *fx, jat_coding_t coding, const char *token,
                                  int expected);
/** Asserts every prefix of TOKEN, TOKEN with characters of CODING
 *  appended, TOKEN with bytes cut from or added under its text, one longer
 *  than CP_TOKEN_MAX, with its letters' case changed, padded with '=', or
 *  in the standard base64 alphabet, is refused with CP_EBADTOKEN. */
void jat_assert_reshaping_refused(jat_fixture_t *fx, jat_coding_t coding, const char *token);
/** Asserts tokens for past deadlines (also negative ones) decode with
 *  CP_EEXPIRED, and for future ones (up to INT64_MAX) with CP_OK. */
void jat_assert_deadlines_kept(jat_fixture_t *fx);
/** Asserts a token made under one key (from a file, or random) is refused
 *  with CP_EBADTOKEN under another, expired or not. */
void jat_assert_other_keys_refused(void);
/** Asserts a token made under key 2 opens where the file lists key 1 then
 *  key 2, and that the first key of a file is the one tokens are made with. */
void jat_assert_every_key_of_the_file_opens(void);

/** Asserts the same JID and expiry give FX the same token (a stable
 *  address), and another expiry or JID another token. */
void jat_assert_one_token_per_jid_and_expiry(jat_fixture_t *fx);
/** For a version 2 token (base64url; a version byte, then the expiry in
 *  four big-endian bytes of seconds since 2026): asserts FX writes
 *  expiries before 2026 as 0 and clamps those after 2162-02-07, in tokens
 *  for juliet@example.com/balcony.  ALSO (may be NULL) is called with each token's
 *  bytes, for the encoding's own checks. */
void jat_assert_expiry_counted_from_2026(jat_fixture_t *fx,
                                         void (*also)(const uint8_t *bytes, size_t n));

/** Makes a version 1 token for JID (JID_LEN bytes) that expires at
 *  EXPIRES under key JAT_KEY1 (g_free it): the test's own writer of the
 *  old format. */
typedef char *(*jat_v1_writer_t)(int64_t expires, const char *jid, size_t jid_len);
/** For an encoding whose version 1 tokens are base32 and begin with 'a',
 *  and whose version 2 tokens are base64url and begin with 'A' (hmac,
 *  sealed): asserts that FX (keyed with JAT_KEY1) decodes both, that
 *  neither can be read as the other (their bytes in the other's coding,
 *  or their first character swapped), and that no other first character
 *  makes GENUINE_V2, a valid version 2 token, decode. */
void jat_assert_versions_apart(jat_fixture_t *fx, jat_v1_writer_t write_v1,
                               const char *genuine_v2);

#endif
