/* Forged tokens against one authenticating encoding (jat-hmac, jat-opaque
 * or jat-sealed, chosen with -DFORGERY_ENCODING): a million of them, none
 * may be accepted.
 *
 * Four kinds, a quarter each, from a fixed seed so that a failure
 * reproduces:
 *   - random strings over the base32 alphabet, of the lengths genuine
 *     tokens have; half of them are the base32 of random bytes that begin
 *     with the right version byte, so that they reach the MAC (or AEAD) check
 *     rather than stop at the format;
 *   - random bytes (1 to CP_TOKEN_MAX of them, no NUL);
 *   - a genuine token with one bit flipped, under its base32 or in one of
 *     its characters;
 *   - a genuine token with 2 to 16 bits flipped under its base32, or cut
 *     short, or with a byte appended under its base32.
 * Every one must be refused with CP_EBADTOKEN: not CP_OK, and not
 * CP_EEXPIRED either (a forged token's deadline means nothing).
 *
 * FORGERY_COUNT in the environment overrides the count. */
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
#include "fake-host.h"
#include "jat-checks.h"

#ifndef FORGERY_ENCODING
#error "compile with -DFORGERY_ENCODING=\"hmac\" (or opaque, sealed)"
#endif

#define DEFAULT_COUNT 1000000
#define SEED 0x5eed2024u
#define GENUINE_COUNT 64
/* The version byte that hmac and sealed tokens begin with, and the bytes
 * they have besides the JID (jat-hmac.c, jat-sealed.c). */
#define TOKEN_VERSION 0x01
#define OVERHEAD (strcmp(FORGERY_ENCODING, "hmac") == 0 ? 21 : 45)

static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";

typedef struct forgery {
    jat_fixture_t *fx;
    GRand *rand;
    char *genuine[GENUINE_COUNT];
    size_t min_len, max_len;  /* of the genuine tokens, in characters */
    size_t counts[4];         /* tried, by kind */
    size_t reached_check;     /* decoded to the right version and a plausible length */
    char *jid;                /* decode's output buffer, CP_JID_MAX + 1 bytes */
} forgery_t;

static bool keyed(void)
{
    return strcmp(FORGERY_ENCODING, "opaque") != 0;
}

/* Decodes TOKEN, which must be refused as forged. */
static void expect_refused(forgery_t *f, const char *token, int kind)
{
    f->counts[kind]++;
    uint8_t bytes[CP_TOKEN_MAX];
    size_t n = 0, len = strlen(token);
    if (len <= CP_TOKEN_MAX && pc_base32_decode(token, len, bytes, sizeof bytes, &n) &&
        (keyed() ? n > OVERHEAD && bytes[0] == TOKEN_VERSION : n == 16))
        f->reached_check++;
    int status = f->fx->ops->decode(f->fx->state, token, f->jid, CP_JID_MAX + 1);
    if (status != CP_EBADTOKEN)
        fail_msg("forged token (kind %d) \"%s\" decoded with status %d%s%s", kind, token,
                 status, status == CP_OK ? " as " : "", status == CP_OK ? f->jid : "");
}

/* A length in [min_len, max_len] that base32 can have (not 1, 3 or 6 mod 8). */
static size_t plausible_length(forgery_t *f)
{
    for (;;) {
        size_t len = (size_t)g_rand_int_range(f->rand, (gint32)f->min_len, (gint32)f->max_len + 1);
        if (len % 8 != 1 && len % 8 != 3 && len % 8 != 6)
            return len;
    }
}

static void random_base32(forgery_t *f, char *token)
{
    size_t len = plausible_length(f);
    if (g_rand_boolean(f->rand)) {
        for (size_t i = 0; i < len; i++)
            token[i] = alphabet[g_rand_int_range(f->rand, 0, 32)];
        token[len] = '\0';
    } else {
        uint8_t bytes[CP_TOKEN_MAX];
        size_t n = len * 5 / 8;
        for (size_t i = 0; i < n; i++)
            bytes[i] = (uint8_t)g_rand_int(f->rand);
        if (keyed())
            bytes[0] = TOKEN_VERSION;
        pc_base32_encode(bytes, n, token);
    }
}

static void random_bytes(forgery_t *f, char *token)
{
    size_t len = (size_t)g_rand_int_range(f->rand, 1, CP_TOKEN_MAX + 1);
    for (size_t i = 0; i < len; i++)
        token[i] = (char)g_rand_int_range(f->rand, 1, 256);
    token[len] = '\0';
}

/* Decodes a genuine token's base32 into BYTES; returns how many. */
static size_t genuine_bytes(forgery_t *f, uint8_t *bytes, const char **genuine)
{
    *genuine = f->genuine[g_rand_int_range(f->rand, 0, GENUINE_COUNT)];
    size_t n = 0;
    assert_true(pc_base32_decode(*genuine, strlen(*genuine), bytes, CP_TOKEN_MAX, &n));
    return n;
}

static void flip_one_bit(forgery_t *f, char *token)
{
    uint8_t bytes[CP_TOKEN_MAX];
    const char *genuine;
    size_t n = genuine_bytes(f, bytes, &genuine);
    if (g_rand_boolean(f->rand)) {
        size_t bit = (size_t)g_rand_int_range(f->rand, 0, (gint32)(n * 8));
        bytes[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        pc_base32_encode(bytes, n, token);
    } else {
        size_t len = strlen(genuine);
        memcpy(token, genuine, len + 1);
        size_t i = (size_t)g_rand_int_range(f->rand, 0, (gint32)len);
        token[i] ^= (char)(1u << g_rand_int_range(f->rand, 0, 7)); /* never to NUL */
    }
}

static void flip_many_bits(forgery_t *f, char *token)
{
    uint8_t bytes[CP_TOKEN_MAX];
    const char *genuine;
    size_t n = genuine_bytes(f, bytes, &genuine);
    switch (g_rand_int_range(f->rand, 0, 4)) {
    case 0: /* cut short */
        n = (size_t)g_rand_int_range(f->rand, 1, (gint32)n);
        break;
    case 1: /* a byte more */
        if (n < CP_TOKEN_MAX * 5 / 8)
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
    pc_base32_encode(bytes, n, token);
}

static int setup(void **state)
{
    forgery_t *f = g_new0(forgery_t, 1);
    f->fx = keyed() ? jat_fixture_with_keys(JAT_KEY1, JAT_KEY2) : jat_fixture_new(NULL);
    f->rand = g_rand_new_with_seed(SEED);
    f->jid = g_malloc(CP_JID_MAX + 1);
    f->min_len = SIZE_MAX;
    for (int i = 0; i < GENUINE_COUNT; i++) {
        /* JIDs from 5 bytes to the longest the encoding takes. */
        size_t len = 15 + (size_t)i * 9;
        char *jid = jat_jid_of_length(len);
        char token[CP_TOKEN_MAX + 1];
        int status = f->fx->ops->encode(f->fx->state, jid, jat_in_an_hour(), token, sizeof token);
        if (status == CP_ETOOLONG)
            status = f->fx->ops->encode(f->fx->state, "a@b/c", jat_in_an_hour(), token,
                                        sizeof token);
        assert_int_equal(status, CP_OK);
        assert_int_equal(jat_decode_status(f->fx, token), CP_OK);
        f->genuine[i] = g_strdup(token);
        f->min_len = MIN(f->min_len, strlen(token));
        f->max_len = MAX(f->max_len, strlen(token));
        g_free(jid);
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    forgery_t *f = *state;
    for (int i = 0; i < GENUINE_COUNT; i++) {
        /* Still genuine after a million forgeries around them. */
        assert_int_equal(jat_decode_status(f->fx, f->genuine[i]), CP_OK);
        if (f->fx->ops->forget)
            f->fx->ops->forget(f->fx->state, f->genuine[i]);
        g_free(f->genuine[i]);
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

    for (size_t i = 0; i < count; i++) {
        int kind = (int)(i % 4);
        switch (kind) {
        case 0: random_base32(f, token); break;
        case 1: random_bytes(f, token); break;
        case 2: flip_one_bit(f, token); break;
        default: flip_many_bits(f, token); break;
        }
        expect_refused(f, token, kind);
    }

    double seconds = (double)(g_get_monotonic_time() - start) / G_USEC_PER_SEC;
    print_message("jat-%s: %zu forged tokens refused in %.1f s (seed %#x): %zu random base32, "
                  "%zu random bytes, %zu one-bit flips, %zu multi-bit flips or reshaped; %zu "
                  "of them reached the %s\n",
                  FORGERY_ENCODING, count, seconds, SEED, f->counts[0], f->counts[1],
                  f->counts[2], f->counts[3], f->reached_check,
                  keyed() ? "MAC/AEAD check" : "table lookup with a well-formed token");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(forged_tokens__are_all_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
