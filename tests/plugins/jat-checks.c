#include "jat-checks.h"

#include <setjmp.h>
#include <stdarg.h>
#include <string.h>

#include <cmocka.h>
#include <glib.h>

#include "fake-host.h"

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
