/* Forged tokens against one authenticating encoding (jat-hmac, jat-opaque
 * or jat-sealed, chosen with -DFORGERY_ENCODING): a million against each
 * format it reads, none may be accepted.
 *
 * Four kinds against each format the encoding reads, from a fixed seed so
 * that a failure reproduces:
 *   - random strings over the format's alphabet, of the lengths genuine
 *     tokens have; half of them are the text of random bytes that begin
 *     with the right version byte, so that they reach the MAC (or AEAD)
 *     check rather than stop at the format;
 *   - random bytes (1 to CP_TOKEN_MAX of them, no NUL);
 *   - a genuine token with one bit flipped, under its text or in one of
 *     its characters;
 *   - a genuine token with 2 to 16 bits flipped under its text, or cut
 *     short, or with a byte appended under its text.
 * The formats: jat-opaque's base32; for jat-hmac and jat-sealed
 * (-DFORGERY_KEYED=1), version 2 in base64url, which encode() makes, and
 * version 1 in base32, which it made before issue 14 and which still
 * decodes (its genuine tokens built by jat-formats.c under the same keys).
 * Every forgery must be refused with CP_EBADTOKEN: not CP_OK, and not
 * CP_EEXPIRED either (a forged token's deadline means nothing).
 *
 * FORGERY_COUNT in the environment overrides the count (per format). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <glib.h>

#include "base32.h"
#include "base64url.h"
#include "fake-host.h"
#include "jat-checks.h"
#if FORGERY_KEYED
#include "jat-formats.h"
#endif

#ifndef FORGERY_ENCODING
#error "compile with -DFORGERY_ENCODING=\"hmac\" (or opaque, sealed)"
#endif

#define DEFAULT_COUNT 1000000
#define SEED 0x5eed2024u
#define GENUINE_COUNT 64
#define KINDS 4

static const char base32_alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
static const char base64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* One format the encoding reads, and genuine tokens of it. */
typedef struct format {
    const char *name;
    jat_coding_t coding;
    int version;      /* the first byte of a token; -1: jat-opaque's have none */
    size_t overhead;  /* bytes besides the JID (jat-opaque: of the whole token) */
    char *genuine[GENUINE_COUNT];
    size_t min_len, max_len; /* of the genuine tokens, in characters */
    size_t counts[KINDS];    /* tried, by kind */
    size_t reached_check;    /* of the right version and a plausible length */
} format_t;

typedef struct forgery {
    jat_fixture_t *fx;
    GRand *rand;
    format_t formats[2];
    size_t format_count;
    char *jid; /* decode's output buffer, CP_JID_MAX + 1 bytes */
} forgery_t;

static const char *alphabet_of(const format_t *format)
{
    return format->coding == JAT_BASE32 ? base32_alphabet : base64url_alphabet;
}

static size_t alphabet_size(const format_t *format)
{
    return strlen(alphabet_of(format));
}

/* Decodes TEXT in FORMAT's coding into BYTES (CP_TOKEN_MAX); false when it
 * is not a canonical text of it. */
static bool text_bytes(const format_t *format, const char *text, uint8_t *bytes, size_t *n)
{
    size_t len = strlen(text);
    if (len > CP_TOKEN_MAX)
        return false;
    return format->coding == JAT_BASE32
               ? pc_base32_decode(text, len, bytes, CP_TOKEN_MAX, n)
               : pc_base64url_decode(text, len, bytes, CP_TOKEN_MAX, n);
}

static void bytes_text(const format_t *format, const uint8_t *bytes, size_t n, char *text)
{
    if (format->coding == JAT_BASE32)
        pc_base32_encode(bytes, n, text);
    else
        pc_base64url_encode(bytes, n, text);
}

/* The most bytes whose text fits a resourcepart. */
static size_t bytes_max(const format_t *format)
{
    return format->coding == JAT_BASE32 ? CP_TOKEN_MAX * 5 / 8 : CP_TOKEN_MAX * 6 / 8;
}

/* Decodes TOKEN, which must be refused as forged. */
static void expect_refused(forgery_t *f, format_t *format, const char *token, int kind)
{
    format->counts[kind]++;
    uint8_t bytes[CP_TOKEN_MAX];
    size_t n = 0;
    if (text_bytes(format, token, bytes, &n) &&
        (format->version >= 0 ? n > format->overhead && bytes[0] == format->version
                              : n == format->overhead))
        format->reached_check++;
    int status = f->fx->ops->decode(f->fx->state, token, f->jid, CP_JID_MAX + 1);
    if (status != CP_EBADTOKEN)
        fail_msg("forged %s token (kind %d) \"%s\" decoded with status %d%s%s", format->name,
                 kind, token, status, status == CP_OK ? " as " : "",
                 status == CP_OK ? f->jid : "");
}

/* A length in [min_len, max_len] that the coding can have (base32: not 1,
 * 3 or 6 mod 8; base64url: not 1 mod 4). */
static size_t plausible_length(forgery_t *f, const format_t *format)
{
    for (;;) {
        size_t len = (size_t)g_rand_int_range(f->rand, (gint32)format->min_len,
                                              (gint32)format->max_len + 1);
        if (format->coding == JAT_BASE32 ? len % 8 != 1 && len % 8 != 3 && len % 8 != 6
                                         : len % 4 != 1)
            return len;
    }
}

static void random_text(forgery_t *f, const format_t *format, char *token)
{
    size_t len = plausible_length(f, format);
    if (g_rand_boolean(f->rand)) {
        const char *alphabet = alphabet_of(format);
        for (size_t i = 0; i < len; i++)
            token[i] = alphabet[g_rand_int_range(f->rand, 0, (gint32)alphabet_size(format))];
        token[len] = '\0';
    } else {
        uint8_t bytes[CP_TOKEN_MAX];
        size_t n = format->coding == JAT_BASE32 ? len * 5 / 8 : len * 6 / 8;
        for (size_t i = 0; i < n; i++)
            bytes[i] = (uint8_t)g_rand_int(f->rand);
        if (format->version >= 0)
            bytes[0] = (uint8_t)format->version;
        bytes_text(format, bytes, n, token);
    }
}

static void random_bytes(forgery_t *f, char *token)
{
    size_t len = (size_t)g_rand_int_range(f->rand, 1, CP_TOKEN_MAX + 1);
    for (size_t i = 0; i < len; i++)
        token[i] = (char)g_rand_int_range(f->rand, 1, 256);
    token[len] = '\0';
}

/* Decodes one of FORMAT's genuine tokens into BYTES; returns how many. */
static size_t genuine_bytes(forgery_t *f, const format_t *format, uint8_t *bytes,
                            const char **genuine)
{
    *genuine = format->genuine[g_rand_int_range(f->rand, 0, GENUINE_COUNT)];
    size_t n = 0;
    assert_true(text_bytes(format, *genuine, bytes, &n));
    return n;
}

static void flip_one_bit(forgery_t *f, const format_t *format, char *token)
{
    uint8_t bytes[CP_TOKEN_MAX];
    const char *genuine;
    size_t n = genuine_bytes(f, format, bytes, &genuine);
    if (g_rand_boolean(f->rand)) {
        size_t bit = (size_t)g_rand_int_range(f->rand, 0, (gint32)(n * 8));
        bytes[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        bytes_text(format, bytes, n, token);
    } else {
        size_t len = strlen(genuine);
        memcpy(token, genuine, len + 1);
        size_t i = (size_t)g_rand_int_range(f->rand, 0, (gint32)len);
        token[i] ^= (char)(1u << g_rand_int_range(f->rand, 0, 7)); /* never to NUL */
    }
}

static void flip_many_bits(forgery_t *f, const format_t *format, char *token)
{
    uint8_t bytes[CP_TOKEN_MAX];
    const char *genuine;
    size_t n = genuine_bytes(f, format, bytes, &genuine);
    switch (g_rand_int_range(f->rand, 0, 4)) {
    case 0: /* cut short */
        n = (size_t)g_rand_int_range(f->rand, 1, (gint32)n);
        break;
    case 1: /* a byte more */
        if (n < bytes_max(format))
            bytes[n++] = (uint8_t)g_rand_int(f->rand);
        else
            bytes[n - 1] ^= 0x80;
        break;
    default: { /* 2 to 16 distinct bits */
        int flips = g_rand_int_range(f->rand, 2, 17);
        uint8_t before[CP_TOKEN_MAX];
        memcpy(before, bytes, n);
        for (int i = 0; i < flips; i++) {
            size_t bit = (size_t)g_rand_int_range(f->rand, 0, (gint32)(n * 8));
            bytes[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        }
        if (memcmp(before, bytes, n) == 0) /* the flips cancelled out */
            bytes[0] ^= 0x40;
        break;
    }
    }
    bytes_text(format, bytes, n, token);
}

/* Fills FORMAT's genuine tokens, made by MAKE for JIDs from 15 bytes to
 * the longest the format takes (then "a@b/c"), and checks they decode. */
static void add_genuine(forgery_t *f, format_t *format, char *(*make)(forgery_t *, int, const char *))
{
    format->min_len = SIZE_MAX;
    for (int i = 0; i < GENUINE_COUNT; i++) {
        size_t len = 15 + (size_t)i * 9;
        char *jid = jat_jid_of_length(len);
        char *token = make(f, i, jid);
        if (token == NULL)
            token = make(f, i, "a@b/c");
        assert_non_null(token);
        assert_int_equal(jat_decode_status(f->fx, token), CP_OK);
        format->genuine[i] = token;
        format->min_len = MIN(format->min_len, strlen(token));
        format->max_len = MAX(format->max_len, strlen(token));
        g_free(jid);
    }
}

/* A token from encode(), or NULL when JID is too long for it. */
static char *make_by_encode(forgery_t *f, int i, const char *jid)
{
    (void)i;
    char token[CP_TOKEN_MAX + 1];
    int status = f->fx->ops->encode(f->fx->state, jid, jat_in_an_hour(), token, sizeof token);
    if (status == CP_ETOOLONG)
        return NULL;
    assert_int_equal(status, CP_OK);
    return g_strdup(token);
}

#if FORGERY_KEYED
/* A version 1 token, under either key of the fixture's file, or NULL when
 * JID is too long for version 1. */
static char *make_v1(forgery_t *f, int i, const char *jid)
{
    (void)f;
    size_t jid_len = strlen(jid);
    jat_key_t key = jat_key_of(i % 2 == 0 ? JAT_KEY1 : JAT_KEY2);
    uint32_t expires = (uint32_t)jat_in_an_hour();
    if (strcmp(FORGERY_ENCODING, "hmac") == 0)
        return jid_len <= 618 ? jat_hmac_v1_token(key, 0x01, expires, jid, jid_len) : NULL;
    return jid_len <= 594 ? jat_sealed_v1_token(key, 0x01, NULL, expires, jid, jid_len) : NULL;
}
#endif

static int setup(void **state)
{
    forgery_t *f = g_new0(forgery_t, 1);
    bool keyed = FORGERY_KEYED;
    f->fx = keyed ? jat_fixture_with_keys(JAT_KEY1, JAT_KEY2) : jat_fixture_new(NULL);
    f->rand = g_rand_new_with_seed(SEED);
    f->jid = g_malloc(CP_JID_MAX + 1);
    if (keyed) {
        /* What each version has besides the JID (jat-hmac.c, jat-sealed.c). */
        bool hmac = strcmp(FORGERY_ENCODING, "hmac") == 0;
        f->formats[0] = (format_t){.name = "version 2", .coding = JAT_BASE64URL,
                                   .version = 0x02, .overhead = hmac ? 13 : 33};
        add_genuine(f, &f->formats[0], make_by_encode);
#if FORGERY_KEYED
        f->formats[1] = (format_t){.name = "version 1", .coding = JAT_BASE32,
                                   .version = 0x01, .overhead = hmac ? 21 : 45};
        add_genuine(f, &f->formats[1], make_v1);
#endif
        f->format_count = 2;
    } else {
        f->formats[0] = (format_t){.name = "opaque", .coding = JAT_BASE32, .version = -1,
                                   .overhead = 16};
        add_genuine(f, &f->formats[0], make_by_encode);
        f->format_count = 1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    forgery_t *f = *state;
    for (size_t k = 0; k < f->format_count; k++) {
        for (int i = 0; i < GENUINE_COUNT; i++) {
            char *genuine = f->formats[k].genuine[i];
            /* Still genuine after a million forgeries around them. */
            assert_int_equal(jat_decode_status(f->fx, genuine), CP_OK);
            if (f->fx->ops->forget && k == 0)
                f->fx->ops->forget(f->fx->state, genuine);
            g_free(genuine);
        }
    }
    jat_fixture_free(f->fx);
    g_rand_free(f->rand);
    g_free(f->jid);
    g_free(f);
    return 0;
}

static void forged_tokens__are_all_refused(void **state)
{
    forgery_t *f = *state;
    const char *env = getenv("FORGERY_COUNT");
    size_t count = env ? (size_t)strtoull(env, NULL, 10) : DEFAULT_COUNT;
    char token[CP_TOKEN_MAX * 2 + 2];
    gint64 start = g_get_monotonic_time();

    for (size_t i = 0; i < count * f->format_count; i++) {
        int kind = (int)(i % KINDS);
        format_t *format = &f->formats[i / KINDS % f->format_count];
        switch (kind) {
        case 0: random_text(f, format, token); break;
        case 1: random_bytes(f, token); break;
        case 2: flip_one_bit(f, format, token); break;
        default: flip_many_bits(f, format, token); break;
        }
        expect_refused(f, format, token, kind);
    }

    double seconds = (double)(g_get_monotonic_time() - start) / G_USEC_PER_SEC;
    print_message("jat-%s: %zu forged tokens refused in %.1f s (seed %#x)\n", FORGERY_ENCODING,
                  count * f->format_count, seconds, SEED);
    for (size_t k = 0; k < f->format_count; k++) {
        const format_t *format = &f->formats[k];
        print_message("  against %s (%s): %zu random text, %zu random bytes, %zu one-bit flips, "
                      "%zu multi-bit flips or reshaped; %zu of them reached the %s\n",
                      format->name, format->coding == JAT_BASE32 ? "base32" : "base64url",
                      format->counts[0], format->counts[1], format->counts[2], format->counts[3],
                      format->reached_check,
                      format->version >= 0 ? "MAC/AEAD check"
                                           : "table lookup with a well-formed token");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(forged_tokens__are_all_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
