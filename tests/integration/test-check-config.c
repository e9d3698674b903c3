/* `client-proxy --check-config` on good and bad files (missing file,
 * missing key, unknown plugin, key file mode), `--version` and `--help`.
 * No server: client-proxy only reads its config and exits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "harness.h"

/* `client-proxy --check-config PATH`: its exit code, its stderr in *ERR
 * (g_free it).  Fails the test on a sanitizer or valgrind report. */
static int check_config(hx_t *hx, const char *path, char **err)
{
    char *args[] = {"--check-config", (char *)path, NULL};
    g_autofree char *out = NULL;
    int rc = hx_proxy_run(hx, args, &out, err, 30000);
    g_autofree char *report = hx_memcheck_report(*err);
    if (report)
        fail_msg("client-proxy --check-config %s: %s\n%s", path, report, *err);
    return rc;
}

/* Exit 2 and exactly one line on stderr containing every one of NEEDLES
 * (NULL-terminated). */
static void assert_rejected(hx_t *hx, const char *path, const char *const *needles)
{
    g_autofree char *err = NULL;
    int rc = check_config(hx, path, &err);
    print_message("stderr: %s", err);
    assert_int_equal(rc, 2);
    g_autofree char *trimmed = g_strdup(err);
    g_strchomp(trimmed);
    if (!*trimmed || strchr(trimmed, '\n'))
        fail_msg("expected one line on stderr, got:\n%s", err);
    for (const char *const *n = needles; *n; n++) {
        if (!strstr(trimmed, *n))
            fail_msg("stderr does not name \"%s\": %s", *n, trimmed);
    }
}

static void check_config__accepts_a_good_config_for_each_encoding(void **state)
{
    hx_t *hx = *state;
    g_autofree char *key = hx_write_file(
        hx, "good.key", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n",
        0600);
    const char *encodings[] = {"raw", "base32", "hmac", "opaque", "sealed"};
    for (size_t i = 0; i < G_N_ELEMENTS(encodings); i++) {
        bool keyed = strcmp(encodings[i], "hmac") == 0 || strcmp(encodings[i], "sealed") == 0;
        g_autofree char *extra =
            keyed ? g_strdup_printf("[encoding:%s]\nkey_file = %s\n", encodings[i], key) : NULL;
        hx_proxy_opts_t o = {.encoding = encodings[i], .port = 5347, .extra = extra};
        g_autofree char *name = g_strdup_printf("good-%s.conf", encodings[i]);
        g_autofree char *path = hx_proxy_write_config(hx, name, &o);
        g_autofree char *err = NULL;
        int rc = check_config(hx, path, &err);
        if (rc != 0)
            fail_msg("%s: exit %d, stderr: %s", encodings[i], rc, err);
    }
    /* hmac without a key file is good too. */
    hx_proxy_opts_t o = {.encoding = "hmac", .port = 5347};
    g_autofree char *path = hx_proxy_write_config(hx, "good-hmac-nokey.conf", &o);
    g_autofree char *err = NULL;
    int rc = check_config(hx, path, &err);
    if (rc != 0)
        fail_msg("hmac without key_file: exit %d, stderr: %s", rc, err);
}

static void check_config__rejects_a_missing_file(void **state)
{
    hx_t *hx = *state;
    g_autofree char *path = g_build_filename(hx_dir(hx), "nosuch.conf", NULL);
    const char *needles[] = {path, NULL};
    assert_rejected(hx, path, needles);
}

static void check_config__rejects_a_missing_key(void **state)
{
    hx_t *hx = *state;
    g_autofree char *path =
        hx_write_file(hx, "missing-target.conf",
                      "[component]\ndomain = proxy.localhost\nsecret = s\nserver = 127.0.0.1\n"
                      "port = 5347\n\n[proxy]\ndispatch = random\nencoding = raw\n"
                      "request_timeout = 2\n",
                      0600);
    const char *needles[] = {path, "proxy", "target", NULL};
    assert_rejected(hx, path, needles);

    g_autofree char *path2 =
        hx_write_file(hx, "missing-secret.conf",
                      "[component]\ndomain = proxy.localhost\nserver = 127.0.0.1\n"
                      "port = 5347\n\n[proxy]\ntarget = service@localhost\ndispatch = random\n"
                      "encoding = raw\nrequest_timeout = 2\n",
                      0600);
    const char *needles2[] = {path2, "component", "secret", NULL};
    assert_rejected(hx, path2, needles2);
}

static void check_config__rejects_an_unknown_plugin(void **state)
{
    hx_t *hx = *state;
    hx_proxy_opts_t o = {.encoding = "nosuch", .port = 5347};
    g_autofree char *path = hx_proxy_write_config(hx, "unknown-encoding.conf", &o);
    const char *needles[] = {path, "proxy", "encoding", NULL};
    assert_rejected(hx, path, needles);

    hx_proxy_opts_t o2 = {.dispatch = "nosuch", .port = 5347};
    g_autofree char *path2 = hx_proxy_write_config(hx, "unknown-dispatch.conf", &o2);
    const char *needles2[] = {path2, "proxy", "dispatch", NULL};
    assert_rejected(hx, path2, needles2);
}

static void check_config__rejects_a_key_file_others_can_read(void **state)
{
    hx_t *hx = *state;
    g_autofree char *key = hx_write_file(
        hx, "open.key", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n",
        0644);
    g_autofree char *extra = g_strdup_printf("[encoding:hmac]\nkey_file = %s\n", key);
    hx_proxy_opts_t o = {.encoding = "hmac", .port = 5347, .extra = extra};
    g_autofree char *path = hx_proxy_write_config(hx, "open-key.conf", &o);
    const char *needles[] = {path, "encoding:hmac", "key_file", NULL};
    assert_rejected(hx, path, needles);
}

static void command_line__prints_version_and_help(void **state)
{
    hx_t *hx = *state;
    char *v[] = {"--version", NULL};
    g_autofree char *out = NULL, *err = NULL;
    assert_int_equal(hx_proxy_run(hx, v, &out, &err, 30000), 0);
    assert_non_null(strstr(out, "client-proxy"));
    char *h[] = {"--help", NULL};
    g_autofree char *hout = NULL, *herr = NULL;
    assert_int_equal(hx_proxy_run(hx, h, &hout, &herr, 30000), 0);
    assert_non_null(strstr(hout, "--config"));
    assert_non_null(strstr(hout, "--check-config"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(check_config__accepts_a_good_config_for_each_encoding),
        cmocka_unit_test(check_config__rejects_a_missing_file),
        cmocka_unit_test(check_config__rejects_a_missing_key),
        cmocka_unit_test(check_config__rejects_an_unknown_plugin),
        cmocka_unit_test(check_config__rejects_a_key_file_others_can_read),
        cmocka_unit_test(command_line__prints_version_and_help),
    };
    return cmocka_run_group_tests_name("check-config", tests, hx_group_setup,
                                       hx_group_teardown);
}
