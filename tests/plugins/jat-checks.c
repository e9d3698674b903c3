#include "jat-checks.h"

#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <string.h>

#include <cmocka.h>
#include <glib.h>

#include "base32.h"
#include "base64url.h"
#include "fake-host.h"
#include "jat-formats.h"
#include "temp-file.h"

const char *const jat_unusual_jids[] = {
    "\"d'artagnan\"@example.org/res with spaces",
    "d\\27artagnan@example.org/res with spaces",    /* XEP-0106 escaped */
    "jürgen@bücher.example/Gerät",
    "用户@例子.测试/资源",
    "😀@emoji.example/🎉 party",
    "user@example.org/a/b/c",                        /* '/' in the resource */
    "user@example.org/x@y.example/z",                /* '@' and '/' in the resource */
    "user@[2001:db8::1]/res",                        /* IP literal domain */
    "user@example.org/#%&<>'\"",
    "example.org/res",                               /* no localpart */
    "user@example.org",                              /* bare JID */
    "a@b/c",
    NULL,
};

jat_fixture_t *jat_fixture_new(const char *const *config)
{
    jat_fixture_t *fx = g_new0(jat_fixture_t, 1);
    fx->host = fake_host_new();
    for (size_t i = 0; config != NULL && config[i] != NULL; i += 2)
        fake_host_set(fx->host, config[i], config[i + 1]);
    fx->ops = fake_host_jat_ops();
    int status = fake_host_init_plugin(fx->host, &fx->state);
    if (status != CP_OK)
        fail_msg("init returned %d:\n%s", status, fake_host_transcript(fx->host));
    return fx;
}

void jat_fixture_free(jat_fixture_t *fx)
{
    if (fx->state != NULL)
        cp_plugin_descriptor.fini(fx->state);
    fake_host_free(fx->host);
    g_free(fx);
}

char *jat_jid_of_length(size_t len)
{
    const char *prefix = "u@example.org/";
    size_t prefix_len = strlen(prefix);
    assert_true(len > prefix_len);
    char *jid = g_malloc(len + 1);
    memcpy(jid, prefix, prefix_len);
    memset(jid + prefix_len, 'r', len - prefix_len);
    jid[len] = '\0';
    return jid;
}

void jat_assert_resource_safe(const char *token)
{
    size_t len = strlen(token);
    assert_in_range(len, 1, CP_TOKEN_MAX);
    assert_true(g_utf8_validate(token, (gssize)len, NULL));
    for (const char *p = token; *p != '\0'; p = g_utf8_next_char(p)) {
        gunichar c = g_utf8_get_char(p);
        if (c < 0x20 || (c >= 0x7f && c <= 0x9f))
            fail_msg("token holds control character U+%04X", c);
    }
}

void jat_assert_base32_alphabet(const char *token)
{
    assert_true(token[0] != '\0');
    for (const char *p = token; *p != '\0'; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '2' && *p <= '7')))
            fail_msg("token \"%s\" holds '%c', outside [a-z2-7]", token, *p);
    }
}

void jat_assert_base64url_alphabet(const char *token)
{
    assert_true(token[0] != '\0');
    for (const char *p = token; *p != '\0'; p++) {
        if (!g_ascii_isalnum(*p) && *p != '-' && *p != '_')
            fail_msg("token \"%s\" holds '%c', outside [A-Za-z0-9_-]", token, *p);
    }
}

char *jat_assert_round_trip(jat_fixture_t *fx, const char *jid, int64_t expires)
{
    char token[CP_TOKEN_MAX + 1];
    char back[CP_JID_MAX + 1];

    memset(token, 0x55, sizeof token);
    int status = fx->ops->encode(fx->state, jid, expires, token, sizeof token);
    if (status != CP_OK)
        fail_msg("encode(\"%s\") returned %d", jid, status);
    jat_assert_resource_safe(token);
    memset(back, 0x55, sizeof back);
    status = fx->ops->decode(fx->state, token, back, sizeof back);
    if (status != CP_OK)
        fail_msg("decode of the token for \"%s\" returned %d", jid, status);
    assert_string_equal(back, jid);
    return g_strdup(token);
}

int jat_decode_status(jat_fixture_t *fx, const char *token)
{
    char back[CP_JID_MAX + 1];
    return fx->ops->decode(fx->state, token, back, sizeof back);
}

char *jat_encode_ok(jat_fixture_t *fx, const char *jid, int64_t expires)
{
    char token[CP_TOKEN_MAX + 1];
    int status = fx->ops->encode(fx->state, jid, expires, token, sizeof token);
    if (status != CP_OK)
        fail_msg("encode(\"%s\") returned %d", jid, status);
    return g_strdup(token);
}

int64_t jat_in_an_hour(void)
{
    return fake_host_now() + 3600;
}

jat_fixture_t *jat_fixture_with_key_file(const char *file_text)
{
    char *path = temp_file_write(file_text, 0600);
    const char *config[] = {"key_file", path, NULL};
    jat_fixture_t *fx = jat_fixture_new(config);
    temp_file_remove(path); /* read at init; not needed after */
    return fx;
}

jat_fixture_t *jat_fixture_with_keys(int first, int second)
{
    char *hex1 = temp_hex_key(32, (unsigned char)first);
    char *hex2 = second != JAT_NO_KEY ? temp_hex_key(32, (unsigned char)second) : g_strdup("");
    char *text = g_strdup_printf("one %s\n%s\n", hex1, hex2);
    jat_fixture_t *fx = jat_fixture_with_key_file(text);
    g_free(text);
    g_free(hex1);
    g_free(hex2);
    return fx;
}

/* Asserts init refuses a key file holding TEXT (with MODE), reporting it on
 * key_file with a message that names the path and contains NEEDLE. */
static void assert_key_file_refused(const char *text, mode_t mode, const char *needle)
{
    char *path = temp_file_write(text, mode);
    cp_host_t *host = fake_host_new();
    void *state = NULL;
    fake_host_set(host, "key_file", path);
    int status = fake_host_init_plugin(host, &state);
    if (status != CP_EINVAL)
        fail_msg("init returned %d, not CP_EINVAL", status);
    assert_int_equal(fake_host_error_count(host), 1);
    if (!fake_host_has_error(host, "key_file", path) || !fake_host_has_error(host, "key_file", needle))
        fail_msg("expected a key_file error naming %s with \"%s\", got:\n%s", path, needle,
                 fake_host_transcript(host));
    fake_host_free(host);
    temp_file_remove(path);
}

void jat_assert_bad_key_files_refused(void)
{
    char *good = temp_hex_key(32, 0x42), *short_key = temp_hex_key(31, 0x42);
    char *text = g_strdup_printf("%s\n", short_key);
    assert_key_file_refused(text, 0600, "line 1: the key is 31 bytes");
    g_free(text);

    text = g_strdup_printf("%s\n%sa\n", good, good); /* odd count on line 2 */
    assert_key_file_refused(text, 0600, "line 2: the key has an odd number");
    g_free(text);

    text = g_strdup_printf("# rotated monthly\nkey/1 %s\n", good);
    assert_key_file_refused(text, 0600, "line 2: key id may only hold");
    g_free(text);

    text = g_strdup_printf("%s\n", good);
    assert_key_file_refused(text, 0644, "accessible to group or others");
    assert_key_file_refused(text, 0604, "accessible to group or others");
    g_free(text);

    assert_key_file_refused("# nothing yet\n", 0600, "holds no key");
    g_free(good);
    g_free(short_key);

    cp_host_t *host = fake_host_new();
    void *state = NULL;
    fake_host_set(host, "key_file", "/nonexistent/cp-test/jat.keys");
    assert_int_equal(fake_host_init_plugin(host, &state), CP_EINVAL);
    assert_true(fake_host_has_error(host, "key_file", "cannot open /nonexistent/cp-test/jat.keys"));
    fake_host_free(host);

    host = fake_host_new();
    fake_host_set(host, "key_file", "");
    assert_int_equal(fake_host_init_plugin(host, &state), CP_EINVAL);
    assert_true(fake_host_has_error(host, "key_file", "is empty"));
    fake_host_free(host);
}

void jat_assert_key_bytes_never_logged(void)
{
    jat_fixture_t *fx = jat_fixture_with_keys(JAT_KEY1, JAT_NO_KEY);
    assert_int_equal(fake_host_log_count(fx->host, CP_LOG_INFO, "loaded 1 key(s)"), 1);
    assert_null(strstr(fake_host_transcript(fx->host), "1111111111"));
    jat_fixture_free(fx);
}

void jat_assert_random_key_when_no_key_file(void)
{
    jat_fixture_t *fx = jat_fixture_new(NULL);
    assert_int_equal(fake_host_log_count(fx->host, CP_LOG_WARNING, "will not survive a restart"), 1);
    g_free(jat_assert_round_trip(fx, "juliet@example.com/balcony", jat_in_an_hour()));
    jat_fixture_free(fx);

    cp_host_t *host = fake_host_new();
    void *state = NULL;
    fake_host_break_random(host);
    assert_int_equal(fake_host_init_plugin(host, &state), CP_EFAIL);
    assert_int_equal(fake_host_log_count(host, CP_LOG_ERROR, "random"), 1);
    fake_host_free(host);
}

static const char *const base32_alphabet = "abcdefghijklmnopqrstuvwxyz234567";
static const char *const base64url_alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t jat_text_bytes(jat_coding_t coding, const char *text, uint8_t *bytes)
{
    size_t n = 0;
    bool ok = coding == JAT_BASE32
                  ? pc_base32_decode(text, strlen(text), bytes, CP_TOKEN_MAX, &n)
                  : pc_base64url_decode(text, strlen(text), bytes, CP_TOKEN_MAX, &n);
    if (!ok)
        fail_msg("\"%s\" is not canonical %s", text, coding == JAT_BASE32 ? "base32" : "base64url");
    return n;
}

char *jat_bytes_text(jat_coding_t coding, const uint8_t *bytes, size_t n)
{
    char *text;
    if (coding == JAT_BASE32) {
        text = g_malloc(pc_base32_encoded_len(n) + 1);
        pc_base32_encode(bytes, n, text);
    } else {
        text = g_malloc(pc_base64url_encoded_len(n) + 1);
        pc_base64url_encode(bytes, n, text);
    }
    return text;
}

/* Decodes TEXT (g_free()d here), which must be refused; WHAT says how it
 * was made, for the failure message. */
static void assert_refused_and_free(jat_fixture_t *fx, char *text, const char *what)
{
    int status = jat_decode_status(fx, text);
    if (status != CP_EBADTOKEN)
        fail_msg("%s (\"%s\") gave %d", what, text, status);
    g_free(text);
}

void jat_assert_tampering_refused(jat_fixture_t *fx, jat_coding_t coding, const char *token,
                                  int expected)
{
    char *copy = g_strdup(token);
    size_t len = strlen(copy);
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            copy[i] ^= (char)(1 << bit);
            int status = jat_decode_status(fx, copy);
            if (status != CP_EBADTOKEN)
                fail_msg("flip of bit %d of character %zu gave %d", bit, i, status);
            copy[i] ^= (char)(1 << bit);
        }
    }
    g_free(copy);

    /* Flips in the characters are mostly caught by the coding; flips in the
     * bytes under it, re-encoded canonically, must be caught by the key. */
    uint8_t bytes[CP_TOKEN_MAX];
    size_t n = jat_text_bytes(coding, token, bytes);
    for (size_t i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit++) {
            bytes[i] ^= (uint8_t)(1u << bit);
            char *what = g_strdup_printf("flip of bit %d of byte %zu", bit, i);
            assert_refused_and_free(fx, jat_bytes_text(coding, bytes, n), what);
            g_free(what);
            bytes[i] ^= (uint8_t)(1u << bit);
        }
    }
    assert_int_equal(jat_decode_status(fx, token), expected); /* the control */
}

void jat_assert_reshaping_refused(jat_fixture_t *fx, jat_coding_t coding, const char *token)
{
    size_t len = strlen(token);
    for (size_t cut = 0; cut < len; cut++) {
        char *prefix = g_strndup(token, cut);
        if (jat_decode_status(fx, prefix) != CP_EBADTOKEN)
            fail_msg("token cut to %zu characters was not refused", cut);
        g_free(prefix);
    }
    const char *alphabet = coding == JAT_BASE32 ? base32_alphabet : base64url_alphabet;
    for (size_t extra = 1; extra <= 8; extra++) {
        for (size_t c = 0; alphabet[c] != '\0'; c++) {
            char *longer = g_strdup_printf("%s%.*s", token, (int)extra, "aaaaaaaa");
            longer[len + extra - 1] = alphabet[c];
            if (jat_decode_status(fx, longer) != CP_EBADTOKEN)
                fail_msg("token extended by \"%s\" was not refused", longer + len);
            g_free(longer);
        }
    }

    /* Bytes cut from or added to those under the text. */
    uint8_t bytes[CP_TOKEN_MAX + 1];
    size_t n = jat_text_bytes(coding, token, bytes);
    for (size_t cut = 1; cut < n; cut++) {
        char *what = g_strdup_printf("token without its last %zu bytes", cut);
        assert_refused_and_free(fx, jat_bytes_text(coding, bytes, n - cut), what);
        g_free(what);
    }
    bytes[n] = 'x';
    char *longer = jat_bytes_text(coding, bytes, n + 1);
    if (strlen(longer) <= CP_TOKEN_MAX)
        assert_refused_and_free(fx, longer, "token with a byte more");
    else
        g_free(longer);
    char *huge = g_strnfill(CP_TOKEN_MAX + 1, 'a');
    assert_int_equal(jat_decode_status(fx, huge), CP_EBADTOKEN);
    g_free(huge);

    /* Case matters in both codings: base32 has no uppercase, and in
     * base64url each case stands for other bits. */
    char *upper = g_ascii_strup(token, -1);
    if (strcmp(upper, token) != 0)
        assert_refused_and_free(fx, upper, "token in uppercase");
    else
        g_free(upper);
    char *lower = g_ascii_strdown(token, -1);
    if (strcmp(lower, token) != 0)
        assert_refused_and_free(fx, lower, "token in lowercase");
    else
        g_free(lower);
    assert_refused_and_free(fx, g_strdup_printf("%s=", token), "token padded");
    assert_refused_and_free(fx, g_strdup_printf("%s==", token), "token padded twice");
    /* The same bytes in the standard alphabet of base64. */
    if (strpbrk(token, "-_") != NULL) {
        char *standard = g_strdup(token);
        g_strdelimit(standard, "-", '+');
        g_strdelimit(standard, "_", '/');
        assert_refused_and_free(fx, standard, "token in base64's standard alphabet");
    }
}

void jat_assert_deadlines_kept(jat_fixture_t *fx)
{
    static const char *const jid = "juliet@example.com/balcony";
    int64_t now = fake_host_now();
    const struct {
        int64_t expires;
        int status;
    } cases[] = {
        {now - 10, CP_EEXPIRED},
        {-5, CP_EEXPIRED},     /* clamped to 1970 */
        {now + 60, CP_OK},
        {INT64_MAX, CP_OK},    /* clamped to 2106 */
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        char *token = jat_encode_ok(fx, jid, cases[i].expires);
        int status = jat_decode_status(fx, token);
        if (status != cases[i].status)
            fail_msg("deadline %" PRId64 ": decode gave %d, not %d", cases[i].expires, status,
                     cases[i].status);
        g_free(token);
    }
}

void jat_assert_other_keys_refused(void)
{
    static const char *const jid = "juliet@example.com/balcony";
    jat_fixture_t *a = jat_fixture_with_keys(JAT_KEY1, JAT_NO_KEY);
    jat_fixture_t *b = jat_fixture_with_keys(JAT_KEY2, JAT_NO_KEY);
    char *token = jat_encode_ok(a, jid, jat_in_an_hour());
    assert_int_equal(jat_decode_status(a, token), CP_OK);
    assert_int_equal(jat_decode_status(b, token), CP_EBADTOKEN);
    g_free(token);
    /* Even an expired one says nothing but "bad" under another key. */
    token = jat_encode_ok(a, jid, fake_host_now() - 10);
    assert_int_equal(jat_decode_status(a, token), CP_EEXPIRED);
    assert_int_equal(jat_decode_status(b, token), CP_EBADTOKEN);
    g_free(token);
    jat_fixture_free(a);
    jat_fixture_free(b);

    /* Two random keys differ too. */
    a = jat_fixture_new(NULL);
    b = jat_fixture_new(NULL);
    token = jat_encode_ok(a, jid, jat_in_an_hour());
    assert_int_equal(jat_decode_status(b, token), CP_EBADTOKEN);
    g_free(token);
    jat_fixture_free(a);
    jat_fixture_free(b);
}

void jat_assert_every_key_of_the_file_opens(void)
{
    jat_fixture_t *new_only = jat_fixture_with_keys(JAT_KEY2, JAT_NO_KEY);
    jat_fixture_t *rotating = jat_fixture_with_keys(JAT_KEY1, JAT_KEY2); /* KEY1 first */
    jat_fixture_t *old_only = jat_fixture_with_keys(JAT_KEY1, JAT_NO_KEY);

    char *token = jat_encode_ok(new_only, "juliet@example.com/balcony", jat_in_an_hour());
    char back[CP_JID_MAX + 1];
    assert_int_equal(rotating->ops->decode(rotating->state, token, back, sizeof back), CP_OK);
    assert_string_equal(back, "juliet@example.com/balcony");
    g_free(token);

    /* The first key makes tokens: old_only accepts, new_only does not. */
    token = jat_encode_ok(rotating, "romeo@example.net/orchard", jat_in_an_hour());
    assert_int_equal(jat_decode_status(old_only, token), CP_OK);
    assert_int_equal(jat_decode_status(new_only, token), CP_EBADTOKEN);
    g_free(token);

    jat_fixture_free(new_only);
    jat_fixture_free(rotating);
    jat_fixture_free(old_only);
}

void jat_assert_versions_apart(jat_fixture_t *fx, jat_v1_writer_t write_v1,
                               const char *genuine_v2)
{
    int64_t later = jat_in_an_hour();
    for (size_t i = 0; jat_unusual_jids[i] != NULL; i++) {
        const char *jid = jat_unusual_jids[i];
        char *v1 = write_v1(later, jid, strlen(jid));
        char *v2 = jat_encode_ok(fx, jid, later);
        assert_int_equal(jat_decode_status(fx, v1), CP_OK);
        assert_int_equal(jat_decode_status(fx, v2), CP_OK);
        assert_int_equal(v1[0], 'a');
        assert_int_equal(v2[0], 'A');

        /* A version 1 text read as base64url begins with 0x69 or 0x6a
         * ('a' is 011010, and [e-h] begin with 01 or 10), never with
         * version 2's byte; a version 2 text is never base32. */
        uint8_t bytes[CP_TOKEN_MAX];
        size_t n = 0;
        if (pc_base64url_decode(v1, strlen(v1), bytes, sizeof bytes, &n))
            assert_in_range(bytes[0], 0x69, 0x6a);
        assert_false(pc_base32_decode(v2, strlen(v2), bytes, sizeof bytes, &n));

        /* Each token's bytes in the other's coding, and its first
         * character swapped for the other's. */
        n = jat_text_bytes(JAT_BASE32, v1, bytes);
        char *v1_as_64 = jat_bytes_text(JAT_BASE64URL, bytes, n);
        n = jat_text_bytes(JAT_BASE64URL, v2, bytes);
        char *v2_as_32 = jat_bytes_text(JAT_BASE32, bytes, n);
        assert_int_equal(v1_as_64[0], 'A'); /* so it is read as version 2... */
        assert_int_equal(v2_as_32[0], 'a'); /* ...and this as version 1 */
        assert_int_equal(jat_decode_status(fx, v1_as_64), CP_EBADTOKEN);
        assert_int_equal(jat_decode_status(fx, v2_as_32), CP_EBADTOKEN);
        v1[0] = 'A';
        v2[0] = 'a';
        assert_int_equal(jat_decode_status(fx, v1), CP_EBADTOKEN);
        assert_int_equal(jat_decode_status(fx, v2), CP_EBADTOKEN);
        g_free(v1_as_64);
        g_free(v2_as_32);
        g_free(v1);
        g_free(v2);
    }
    /* No other first character is a token of ours. */
    assert_int_equal(jat_decode_status(fx, ""), CP_EBADTOKEN);
    for (int c = 1; c < 256; c++) {
        if (c == 'a' || c == 'A')
            continue;
        char *token = g_strdup(genuine_v2);
        token[0] = (char)c;
        assert_int_equal(jat_decode_status(fx, token), CP_EBADTOKEN);
        g_free(token);
    }
}

void jat_assert_one_token_per_jid_and_expiry(jat_fixture_t *fx)
{
    const char *juliet = "juliet@example.com/balcony";
    int64_t expires = jat_in_an_hour();
    char *a = jat_encode_ok(fx, juliet, expires);
    char *b = jat_encode_ok(fx, juliet, expires);
    char *later = jat_encode_ok(fx, juliet, expires + 1);
    char *other = jat_encode_ok(fx, "juliet@example.com/balconY", expires);
    assert_string_equal(a, b);
    assert_string_not_equal(a, later);
    assert_string_not_equal(a, other);
    g_free(a);
    g_free(b);
    g_free(later);
    g_free(other);
}

void jat_assert_expiry_counted_from_2026(jat_fixture_t *fx,
                                         void (*also)(const uint8_t *bytes, size_t n))
{
    const struct {
        int64_t expires;
        uint32_t written;
    } cases[] = {
        {JAT_EPOCH_2026 + 1, 1},
        {JAT_EPOCH_2026 + 86400, 86400},
        {JAT_EPOCH_2026, 0},
        {1000000000, 0},
        {-5, 0},
        {JAT_EPOCH_2026 + UINT32_MAX, UINT32_MAX},
        {INT64_MAX, UINT32_MAX},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        char *token = jat_encode_ok(fx, "juliet@example.com/balcony", cases[i].expires);
        uint8_t bytes[CP_TOKEN_MAX];
        size_t n = jat_text_bytes(JAT_BASE64URL, token, bytes);
        if (also)
            also(bytes, n);
        uint32_t written = (uint32_t)bytes[1] << 24 | (uint32_t)bytes[2] << 16 |
                           (uint32_t)bytes[3] << 8 | bytes[4];
        assert_int_equal(written, cases[i].written);
        g_free(token);
    }
}
