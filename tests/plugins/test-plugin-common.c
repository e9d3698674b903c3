/* Unit tests for plugins/common: base32, base64url, expiries, constant-time
 * compare, key files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "base32.h"
#include "base64url.h"
#include "const-time.h"
#include "expiry.h"
#include "key-file.h"
#include "temp-file.h"

/* ---- base32 ----------------------------------------------------------- */

static void assert_decodes_to(const char *text, const char *expected)
{
    uint8_t out[64];
    size_t n = 0;
    if (!pc_base32_decode(text, strlen(text), out, sizeof out, &n))
        fail_msg("\"%s\" was refused", text);
    assert_int_equal(n, strlen(expected));
    assert_memory_equal(out, expected, n);
}

static void assert_refused(const char *text)
{
    uint8_t out[64];
    size_t n = 0;
    if (pc_base32_decode(text, strlen(text), out, sizeof out, &n))
        fail_msg("\"%s\" was accepted", text);
}

static void base32__matches__rfc4648_vectors_lowercased(void **unused)
{
    (void)unused;
    static const char *const vectors[][2] = {
        {"", ""},           {"f", "my"},          {"fo", "mzxq"},
        {"foo", "mzxw6"},   {"foob", "mzxw6yq"},  {"fooba", "mzxw6ytb"},
        {"foobar", "mzxw6ytboi"},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(vectors); i++) {
        char out[32];
        size_t len = strlen(vectors[i][0]);
        assert_int_equal(pc_base32_encoded_len(len), strlen(vectors[i][1]));
        pc_base32_encode((const uint8_t *)vectors[i][0], len, out);
        assert_string_equal(out, vectors[i][1]);
        assert_decodes_to(vectors[i][1], vectors[i][0]);
    }
}

static void base32__refuses__uppercase_padding_and_foreign_characters(void **unused)
{
    (void)unused;
    assert_refused("MZXW6");
    assert_refused("mzXw6");
    assert_refused("my======");
    assert_refused("mzxw6===");
    assert_refused("mzxq====");
    assert_refused("my=");
    assert_refused("mz0w6"); /* 0, 1, 8 and 9 are not in the alphabet */
    assert_refused("mz1w6");
    assert_refused("mz8w6");
    assert_refused("mz9w6");
    assert_refused(" mzxw6");
    assert_refused("mzx-6");
}

static void base32__refuses__impossible_lengths(void **unused)
{
    (void)unused;
    assert_refused("m");        /* 1 mod 8 */
    assert_refused("mzx");      /* 3 mod 8 */
    assert_refused("mzxw6y");   /* 6 mod 8 */
    assert_refused("mzxw6ytbo");
    /* The same lengths with only zero bits over: still no byte string
     * encodes to them ("a" would otherwise be a second token for ""). */
    assert_refused("a");
    assert_refused("aaa");
    assert_refused("mzxw6a");
    assert_refused("mzxw6ytba");
}

static void base32__refuses__nonzero_trailing_bits(void **unused)
{
    (void)unused;
    assert_decodes_to("my", "f");
    assert_refused("mz");       /* "f" with the last of the two spare bits set */
    assert_refused("mzxr");     /* "fo" with spare bits */
    assert_refused("mzxw7");    /* "foo" with a spare bit */
    assert_refused("mzxw6yr");  /* "foob" with spare bits */
    assert_refused("mzxw6ytbol");
}

/* Every string of one to three characters decodes only when it is the
 * encoding of what it decodes to: each byte string has exactly one token. */
static void base32__accepts__exactly_one_encoding_per_byte_string(void **unused)
{
    (void)unused;
    const char *alphabet = "abcdefghijklmnopqrstuvwxyz234567";
    unsigned accepted[4] = {0};
    for (size_t len = 1; len <= 3; len++) {
        unsigned total = 1u << (5 * len);
        for (unsigned code = 0; code < total; code++) {
            char text[4] = {0};
            for (size_t k = 0; k < len; k++)
                text[k] = alphabet[(code >> (5 * k)) & 31];
            uint8_t bytes[2];
            size_t n = 0;
            if (pc_base32_decode(text, len, bytes, sizeof bytes, &n)) {
                char again[8];
                pc_base32_encode(bytes, n, again);
                assert_string_equal(again, text);
                accepted[len]++;
            }
        }
    }
    assert_int_equal(accepted[1], 0);   /* no byte string encodes to 1 character */
    assert_int_equal(accepted[2], 256); /* each byte to exactly one pair */
    assert_int_equal(accepted[3], 0);
}

static void base32__round_trips__random_bytes_of_every_short_length(void **unused)
{
    (void)unused;
    GRand *rand = g_rand_new_with_seed(4648);
    for (size_t len = 0; len <= 80; len++) {
        uint8_t in[80], out[80];
        char text[160];
        size_t n = 0;
        for (size_t i = 0; i < len; i++)
            in[i] = (uint8_t)g_rand_int_range(rand, 0, 256);
        pc_base32_encode(in, len, text);
        assert_int_equal(strlen(text), pc_base32_encoded_len(len));
        assert_true(pc_base32_decode(text, strlen(text), out, sizeof out, &n));
        assert_int_equal(n, len);
        assert_memory_equal(out, in, len);
    }
    g_rand_free(rand);
}

static void base32__refuses__output_that_does_not_fit(void **unused)
{
    (void)unused;
    uint8_t out[5];
    size_t n = 0;
    assert_true(pc_base32_decode("mzxw6ytb", 8, out, 5, &n));
    assert_false(pc_base32_decode("mzxw6ytboi", 10, out, 5, &n));
}

/* ---- base64url -------------------------------------------------------- */

static void assert_b64_decodes_to(const char *text, const void *expected, size_t len)
{
    uint8_t out[64];
    size_t n = 0;
    if (!pc_base64url_decode(text, strlen(text), out, sizeof out, &n))
        fail_msg("\"%s\" was refused", text);
    assert_int_equal(n, len);
    assert_memory_equal(out, expected, n);
}

static void assert_b64_refused(const char *text)
{
    uint8_t out[64];
    size_t n = 0;
    if (pc_base64url_decode(text, strlen(text), out, sizeof out, &n))
        fail_msg("\"%s\" was accepted", text);
}

/* RFC 4648 section 10, without the padding, and the two characters that
 * base64url has in place of '+' and '/'. */
static void base64url__matches__rfc4648_vectors_without_padding(void **unused)
{
    (void)unused;
    static const char *const vectors[][2] = {
        {"", ""},          {"f", "Zg"},         {"fo", "Zm8"},
        {"foo", "Zm9v"},   {"foob", "Zm9vYg"},  {"fooba", "Zm9vYmE"},
        {"foobar", "Zm9vYmFy"},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(vectors); i++) {
        char out[32];
        size_t len = strlen(vectors[i][0]);
        assert_int_equal(pc_base64url_encoded_len(len), strlen(vectors[i][1]));
        pc_base64url_encode((const uint8_t *)vectors[i][0], len, out);
        assert_string_equal(out, vectors[i][1]);
        assert_b64_decodes_to(vectors[i][1], vectors[i][0], len);
    }
    static const uint8_t high[] = {0xfb, 0xff, 0xbf}; /* "+/+/" in base64 */
    char out[8];
    pc_base64url_encode(high, sizeof high, out);
    assert_string_equal(out, "-_-_");
    assert_b64_decodes_to("-_-_", high, sizeof high);
}

/* GLib's encoder, its alphabet translated and its padding dropped, agrees
 * on random bytes of every length up to 100, and the text decodes back. */
static void base64url__matches__glib_on_random_bytes_of_every_short_length(void **unused)
{
    (void)unused;
    GRand *rand = g_rand_new_with_seed(4648);
    for (size_t len = 0; len <= 100; len++) {
        uint8_t in[100], out[100];
        char text[160];
        size_t n = 0;
        for (size_t i = 0; i < len; i++)
            in[i] = (uint8_t)g_rand_int_range(rand, 0, 256);
        pc_base64url_encode(in, len, text);
        assert_int_equal(strlen(text), pc_base64url_encoded_len(len));

        char *glib = g_base64_encode(in, len);
        g_strdelimit(glib, "+", '-');
        g_strdelimit(glib, "/", '_');
        char *pad = strchr(glib, '=');
        if (pad != NULL)
            *pad = '\0';
        assert_string_equal(text, glib);
        g_free(glib);

        assert_true(pc_base64url_decode(text, strlen(text), out, sizeof out, &n));
        assert_int_equal(n, len);
        assert_memory_equal(out, in, len);
    }
    g_rand_free(rand);
}

static void base64url__refuses__padding_the_standard_alphabet_and_foreign_characters(void **unused)
{
    (void)unused;
    assert_b64_refused("Zg==");
    assert_b64_refused("Zg=");
    assert_b64_refused("Zm8=");
    assert_b64_refused("+_-_"); /* base64's own '+' and '/' */
    assert_b64_refused("-/-_");
    assert_b64_refused(" Zm9v");
    assert_b64_refused("Zm9v\n");
    assert_b64_refused("Zm.v");
    assert_b64_refused("Zm9\xc3\xa9");
    assert_b64_refused("Zm9v~A");
}

static void base64url__refuses__impossible_lengths(void **unused)
{
    (void)unused;
    assert_b64_refused("Z");     /* 1 mod 4 */
    assert_b64_refused("Zm9vY");
    /* Only zero bits over: still no byte string encodes to them ("A" would
     * otherwise be a second token for ""). */
    assert_b64_refused("A");
    assert_b64_refused("AAAAA");
}

static void base64url__refuses__nonzero_trailing_bits(void **unused)
{
    (void)unused;
    assert_b64_decodes_to("Zg", "f", 1);
    assert_b64_refused("Zh");     /* "f" with a spare bit set */
    assert_b64_refused("Zv");
    assert_b64_refused("Zm9");    /* "fo" with a spare bit */
    assert_b64_refused("Zm9vYh"); /* "foob" with spare bits */
    assert_b64_refused("Zm9vYmF");
}

/* Every string of one to three characters decodes only when it is the
 * encoding of what it decodes to: each byte string has exactly one token. */
static void base64url__accepts__exactly_one_encoding_per_byte_string(void **unused)
{
    (void)unused;
    const char *alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned accepted[4] = {0};
    for (size_t len = 1; len <= 3; len++) {
        unsigned total = 1u << (6 * len);
        for (unsigned code = 0; code < total; code++) {
            char text[4] = {0};
            for (size_t k = 0; k < len; k++)
                text[k] = alphabet[(code >> (6 * k)) & 63];
            uint8_t bytes[2];
            size_t n = 0;
            if (pc_base64url_decode(text, len, bytes, sizeof bytes, &n)) {
                char again[8];
                pc_base64url_encode(bytes, n, again);
                assert_string_equal(again, text);
                accepted[len]++;
            }
        }
    }
    assert_int_equal(accepted[1], 0);     /* no byte string encodes to 1 character */
    assert_int_equal(accepted[2], 256);   /* each byte to exactly one pair */
    assert_int_equal(accepted[3], 65536); /* each two bytes to exactly one triple */
}

static void base64url__refuses__output_that_does_not_fit(void **unused)
{
    (void)unused;
    uint8_t out[6];
    size_t n = 0;
    assert_true(pc_base64url_decode("Zm9vYmFy", 8, out, 6, &n));
    assert_int_equal(n, 6);
    assert_false(pc_base64url_decode("Zm9vYmFyYg", 10, out, 6, &n));
}

/* decoded_max() is what tells the plugins how long a JID fits: the most
 * bytes whose text has at most that many characters. */
static void base64url__decoded_max__is_the_most_bytes_that_fit(void **unused)
{
    (void)unused;
    for (size_t chars = 0; chars <= 1100; chars++) {
        size_t max = pc_base64url_decoded_max(chars);
        assert_true(pc_base64url_encoded_len(max) <= chars);
        assert_true(pc_base64url_encoded_len(max + 1) > chars);
    }
    assert_int_equal(pc_base64url_decoded_max(1023), 767);
}

/* ---- expiry ----------------------------------------------------------- */

static void expiry__counts__seconds_from_its_epoch_clamped_into_four_bytes(void **unused)
{
    (void)unused;
    const int64_t e2026 = PC_EXPIRY_EPOCH_2026;
    assert_int_equal(e2026, 1767225600); /* 2026-01-01T00:00:00Z */
    assert_int_equal(pc_expiry_clamp(e2026 + 5, e2026), 5);
    assert_int_equal(pc_expiry_clamp(e2026, e2026), 0);
    assert_int_equal(pc_expiry_clamp(e2026 - 1, e2026), 0);
    assert_int_equal(pc_expiry_clamp(INT64_MIN, e2026), 0);
    assert_int_equal(pc_expiry_clamp(e2026 + UINT32_MAX, e2026), UINT32_MAX);
    assert_int_equal(pc_expiry_clamp(e2026 + UINT32_MAX + INT64_C(1), e2026), UINT32_MAX);
    assert_int_equal(pc_expiry_clamp(INT64_MAX, e2026), UINT32_MAX);
    assert_int_equal(pc_expiry_clamp(1767225600, PC_EXPIRY_EPOCH_UNIX), 1767225600);
    assert_int_equal(pc_expiry_clamp(-5, PC_EXPIRY_EPOCH_UNIX), 0);
    assert_int_equal(pc_expiry_clamp(INT64_MAX, PC_EXPIRY_EPOCH_UNIX), UINT32_MAX);

    uint8_t bytes[PC_EXPIRY_LEN];
    pc_expiry_put(bytes, 0x8b309e00);
    assert_memory_equal(bytes, "\x8b\x30\x9e\x00", 4);
    assert_int_equal(pc_expiry_get(bytes), 0x8b309e00);
}

static void expiry__passes__after_its_second_under_either_epoch(void **unused)
{
    (void)unused;
    int64_t now = g_get_real_time() / G_USEC_PER_SEC;
    const int64_t epochs[] = {PC_EXPIRY_EPOCH_UNIX, PC_EXPIRY_EPOCH_2026};
    for (size_t i = 0; i < G_N_ELEMENTS(epochs); i++) {
        assert_true(pc_expiry_passed(pc_expiry_clamp(now - 2, epochs[i]), epochs[i]));
        assert_false(pc_expiry_passed(pc_expiry_clamp(now + 60, epochs[i]), epochs[i]));
        assert_false(pc_expiry_passed(UINT32_MAX, epochs[i]));
    }
    /* The same four bytes mean 136 years apart under the two epochs. */
    assert_false(pc_expiry_passed(pc_expiry_clamp(now + 60, PC_EXPIRY_EPOCH_UNIX),
                                  PC_EXPIRY_EPOCH_2026));
    assert_true(pc_expiry_passed(pc_expiry_clamp(now + 60, PC_EXPIRY_EPOCH_2026),
                                 PC_EXPIRY_EPOCH_UNIX));
}

/* ---- constant-time compare -------------------------------------------- */

static void const_time_equal__tells__equal_from_different(void **unused)
{
    (void)unused;
    uint8_t a[16] = {0}, b[16] = {0};
    assert_true(pc_const_time_equal(a, b, sizeof a));
    assert_true(pc_const_time_equal(a, b, 0));
    for (size_t i = 0; i < sizeof a; i++) {
        for (int bit = 0; bit < 8; bit++) {
            b[i] ^= (uint8_t)(1u << bit);
            assert_false(pc_const_time_equal(a, b, sizeof a));
            b[i] ^= (uint8_t)(1u << bit);
        }
    }
}

/* ---- key files -------------------------------------------------------- */

/* Loads CONTENTS (written with MODE) and returns the ring, or NULL with the
 * error in *ERROR. */
static pc_key_ring_t *load_text(const char *contents, mode_t mode, char **error, char **path_out)
{
    char *path = temp_file_write(contents, mode);
    *error = NULL;
    pc_key_ring_t *ring = pc_key_ring_load(path, error);
    if (path_out != NULL)
        *path_out = g_strdup(path);
    temp_file_remove(path);
    return ring;
}

/* Asserts CONTENTS is refused with a message containing NEEDLE and the path,
 * and not containing any of the file's key material. */
static void assert_key_file_refused(const char *contents, mode_t mode, const char *needle)
{
    char *error = NULL, *path = NULL;
    pc_key_ring_t *ring = load_text(contents, mode, &error, &path);
    if (ring != NULL)
        fail_msg("accepted:\n%s", contents);
    assert_non_null(error);
    if (strstr(error, needle) == NULL || strstr(error, path) == NULL)
        fail_msg("message \"%s\" lacks \"%s\" or the path", error, needle);
    /* No run of 16 hex digits of the file's content may leak into it. */
    for (const char *p = contents; strlen(p) >= 16; p++) {
        char chunk[17];
        memcpy(chunk, p, 16);
        chunk[16] = '\0';
        gboolean all_hex = TRUE;
        for (int i = 0; i < 16; i++)
            all_hex &= g_ascii_isxdigit(chunk[i]);
        if (all_hex && strstr(error, chunk) != NULL)
            fail_msg("message \"%s\" quotes key material", error);
    }
    g_free(error);
    g_free(path);
}

static void key_file__loads__ids_comments_and_blank_lines(void **unused)
{
    (void)unused;
    char *k1 = temp_hex_key(32, 0x11), *k2 = temp_hex_key(48, 0xab), *k3 = temp_hex_key(32, 0xC3);
    for (char *p = k3; *p; p++)
        *p = g_ascii_toupper(*p); /* uppercase hex is fine */
    char *text = g_strdup_printf("# keys for jat-hmac\n"
                                 "\n"
                                 "2024-06.a %s   # current\n"
                                 "   \t\n"
                                 "%s\r\n"
                                 "  old_key %s\n"
                                 "# trailing comment",
                                 k1, k2, k3);
    char *error = NULL;
    pc_key_ring_t *ring = load_text(text, 0600, &error, NULL);
    if (ring == NULL)
        fail_msg("refused: %s", error);
    assert_int_equal(ring->count, 3);
    assert_string_equal(ring->keys[0].id, "2024-06.a");
    assert_int_equal(ring->keys[0].len, 32);
    assert_int_equal(ring->keys[0].bytes[0], 0x11);
    assert_int_equal(ring->keys[0].bytes[31], 0x11);
    assert_string_equal(ring->keys[1].id, "");
    assert_int_equal(ring->keys[1].len, 48);
    assert_int_equal(ring->keys[1].bytes[47], 0xab);
    assert_string_equal(ring->keys[2].id, "old_key");
    assert_int_equal(ring->keys[2].bytes[0], 0xc3);
    pc_key_ring_free(ring);
    g_free(text);
    g_free(k1);
    g_free(k2);
    g_free(k3);
}

static void key_file__refuses__a_short_key_naming_its_line(void **unused)
{
    (void)unused;
    char *good = temp_hex_key(32, 1), *short_key = temp_hex_key(31, 2);
    char *text = g_strdup_printf("# comment\n%s\n\n%s\n", good, short_key);
    assert_key_file_refused(text, 0600, "line 4: the key is 31 bytes long; at least 32");
    g_free(text);
    g_free(good);
    g_free(short_key);
}

static void key_file__refuses__an_odd_number_of_hex_digits(void **unused)
{
    (void)unused;
    char *key = temp_hex_key(33, 7);
    key[65] = '\0';
    char *text = g_strdup_printf("%s\n", key);
    assert_key_file_refused(text, 0600, "line 1: the key has an odd number (65)");
    g_free(text);
    g_free(key);
}

static void key_file__refuses__bad_key_ids(void **unused)
{
    (void)unused;
    char *key = temp_hex_key(32, 9);
    char *text = g_strdup_printf("abcdefghijklmnopq %s\n", key); /* 17 characters */
    assert_key_file_refused(text, 0600, "line 1: key id is 17 characters");
    g_free(text);
    text = g_strdup_printf("\n\nk!y %s\n", key);
    assert_key_file_refused(text, 0600, "line 3: key id may only hold");
    g_free(text);
    text = g_strdup_printf("a %s\na %s\n", key, key);
    assert_key_file_refused(text, 0600, "line 2: key id \"a\" is used twice");
    g_free(text);
    text = g_strdup_printf("a  %s\n", key); /* two spaces */
    assert_key_file_refused(text, 0600, "line 1: expected a key id, one space");
    g_free(text);
    text = g_strdup_printf("a %s extra\n", key);
    assert_key_file_refused(text, 0600, "line 1: expected a key id, one space");
    g_free(text);
    g_free(key);
}

static void key_file__refuses__non_hex_characters(void **unused)
{
    (void)unused;
    char *key = temp_hex_key(32, 9);
    key[10] = 'g';
    char *text = g_strdup_printf("%s\n", key);
    assert_key_file_refused(text, 0600, "line 1: the key holds a character that is not a hex");
    g_free(text);
    g_free(key);
}

static void key_file__refuses__a_file_without_keys(void **unused)
{
    (void)unused;
    assert_key_file_refused("", 0600, "holds no key");
    assert_key_file_refused("# only a comment\n\n", 0600, "holds no key");
}

static void key_file__refuses__a_file_group_or_others_can_access(void **unused)
{
    (void)unused;
    char *key = temp_hex_key(32, 5);
    assert_key_file_refused(key, 0644, "accessible to group or others (mode 0644)");
    assert_key_file_refused(key, 0640, "mode 0640");
    assert_key_file_refused(key, 0604, "mode 0604");
    assert_key_file_refused(key, 0620, "mode 0620");

    char *error = NULL;
    pc_key_ring_t *ring = load_text(key, 0400, &error, NULL);
    assert_non_null(ring);
    pc_key_ring_free(ring);
    g_free(key);
}

static void key_file__refuses__a_missing_file(void **unused)
{
    (void)unused;
    char *error = NULL;
    assert_null(pc_key_ring_load("/nonexistent/cp-test/keys", &error));
    assert_non_null(strstr(error, "cannot open /nonexistent/cp-test/keys"));
    g_free(error);
}

static void key_file__refuses__a_directory(void **unused)
{
    (void)unused;
    char *dir = g_dir_make_tmp("cp-plugin-test-XXXXXX", NULL);
    assert_non_null(dir);
    assert_int_equal(chmod(dir, 0700), 0);
    char *error = NULL;
    assert_null(pc_key_ring_load(dir, &error));
    assert_non_null(strstr(error, "is not a regular file"));
    g_free(error);
    g_rmdir(dir);
    g_free(dir);
}

static void key_file__refuses__a_fifo_without_blocking(void **unused)
{
    (void)unused;
    char *dir = g_dir_make_tmp("cp-plugin-test-XXXXXX", NULL);
    assert_non_null(dir);
    char *fifo = g_build_filename(dir, "keys", NULL);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    char *error = NULL;
    assert_null(pc_key_ring_load(fifo, &error));
    assert_non_null(strstr(error, "is not a regular file"));
    g_free(error);
    g_unlink(fifo);
    g_rmdir(dir);
    g_free(fifo);
    g_free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(base32__matches__rfc4648_vectors_lowercased),
        cmocka_unit_test(base32__refuses__uppercase_padding_and_foreign_characters),
        cmocka_unit_test(base32__refuses__impossible_lengths),
        cmocka_unit_test(base32__refuses__nonzero_trailing_bits),
        cmocka_unit_test(base32__accepts__exactly_one_encoding_per_byte_string),
        cmocka_unit_test(base32__round_trips__random_bytes_of_every_short_length),
        cmocka_unit_test(base32__refuses__output_that_does_not_fit),
        cmocka_unit_test(base64url__matches__rfc4648_vectors_without_padding),
        cmocka_unit_test(base64url__matches__glib_on_random_bytes_of_every_short_length),
        cmocka_unit_test(base64url__refuses__padding_the_standard_alphabet_and_foreign_characters),
        cmocka_unit_test(base64url__refuses__impossible_lengths),
        cmocka_unit_test(base64url__refuses__nonzero_trailing_bits),
        cmocka_unit_test(base64url__accepts__exactly_one_encoding_per_byte_string),
        cmocka_unit_test(base64url__refuses__output_that_does_not_fit),
        cmocka_unit_test(base64url__decoded_max__is_the_most_bytes_that_fit),
        cmocka_unit_test(expiry__counts__seconds_from_its_epoch_clamped_into_four_bytes),
        cmocka_unit_test(expiry__passes__after_its_second_under_either_epoch),
        cmocka_unit_test(const_time_equal__tells__equal_from_different),
        cmocka_unit_test(key_file__loads__ids_comments_and_blank_lines),
        cmocka_unit_test(key_file__refuses__a_short_key_naming_its_line),
        cmocka_unit_test(key_file__refuses__an_odd_number_of_hex_digits),
        cmocka_unit_test(key_file__refuses__bad_key_ids),
        cmocka_unit_test(key_file__refuses__non_hex_characters),
        cmocka_unit_test(key_file__refuses__a_file_without_keys),
        cmocka_unit_test(key_file__refuses__a_file_group_or_others_can_access),
        cmocka_unit_test(key_file__refuses__a_missing_file),
        cmocka_unit_test(key_file__refuses__a_directory),
        cmocka_unit_test(key_file__refuses__a_fifo_without_blocking),
    };
    return cmocka_run_group_tests_name("plugin-common", tests, NULL, NULL);
}
