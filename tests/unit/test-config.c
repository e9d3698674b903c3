#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "unit-helpers.h"

/* Loads TEXT as a config file; returns the config or NULL and *MESSAGE
 * (g_free it) with the error line, whose file name is replaced by "FILE". */
static config_t *load_text(const char *text, char **message)
{
    g_autofree char *path = write_temp_file(text);
    GError *error = NULL;
    config_t *config = config_load(path, &error);
    *message = NULL;
    if (error) {
        GString *line = g_string_new(error->message);
        g_string_replace(line, path, "FILE", 0);
        *message = g_string_free(line, FALSE);
        g_error_free(error);
    }
    g_unlink(path);
    return config;
}

static void assert_error(const char *text, const char *expected)
{
    g_autofree char *message = NULL;
    config_t *config = load_text(text, &message);
    assert_null(config);
    assert_non_null(message);
    if (strcmp(message, expected) != 0)
        fail_msg("expected \"%s\", got \"%s\"", expected, message);
}

static void config_load__reads_every_key(void **state)
{
    (void)state;
    g_autofree char *message = NULL;
    g_autoptr(config_t) config = load_text(VALID_CONFIG "[plugins]\npath = /a: /b/c ::\n"
                                                        "[encoding:hmac]\nkey_file = /k\n",
                                           &message);
    assert_non_null(config);
    assert_string_equal(config->domain, "proxy.example.org");
    assert_string_equal(config->secret, "s3cret");
    assert_string_equal(config->server, "127.0.0.1");
    assert_int_equal(config->port, 5347);
    assert_string_equal(config->target, "service@example.org");
    assert_string_equal(config->dispatch, "random");
    assert_string_equal(config->encoding, "hmac");
    assert_int_equal(config->request_timeout, 30);
    assert_int_equal(g_strv_length(config->plugin_path), 2);
    assert_string_equal(config->plugin_path[0], "/a");
    assert_string_equal(config->plugin_path[1], "/b/c");
}

static void config_load__applies_defaults(void **state)
{
    (void)state;
    g_autofree char *message = NULL;
    g_autoptr(config_t) config = load_text("[component]\ndomain = p.example\nsecret = x\n"
                                           "[proxy]\ntarget = a@example\n",
                                           &message);
    assert_non_null(config);
    assert_string_equal(config->server, "127.0.0.1");
    assert_int_equal(config->port, CONFIG_DEFAULT_PORT);
    assert_string_equal(config->dispatch, CONFIG_DEFAULT_DISPATCH);
    assert_string_equal(config->encoding, CONFIG_DEFAULT_ENCODING);
    assert_int_equal(config->request_timeout, CONFIG_DEFAULT_REQUEST_TIMEOUT);
    assert_int_equal(g_strv_length(config->plugin_path), 0);
}

static void config_load__names_a_missing_file(void **state)
{
    (void)state;
    g_autoptr(GError) error = NULL;
    assert_null(config_load("/nonexistent/client-proxy.conf", &error));
    assert_string_equal(error->message, "/nonexistent/client-proxy.conf: no such file");
}

static void config_load__names_a_file_that_is_not_a_keyfile(void **state)
{
    (void)state;
    g_autofree char *message = NULL;
    assert_null(load_text("this is not = a keyfile\n", &message));
    assert_true(g_str_has_prefix(message, "FILE: "));
}

static void config_load__names_group_and_key_of_a_missing_key(void **state)
{
    (void)state;
    assert_error("[component]\ndomain = p.example\n[proxy]\ntarget = a@example\n",
                 "FILE: [component] secret: required key is missing");
    assert_error("[component]\ndomain = p.example\nsecret = x\n[proxy]\n",
                 "FILE: [proxy] target: required key is missing");
}

static void config_load__names_a_missing_group(void **state)
{
    (void)state;
    assert_error("[component]\ndomain = p.example\nsecret = x\n",
                 "FILE: [proxy]: required group is missing");
}

static void config_load__rejects_malformed_values(void **state)
{
    (void)state;
    assert_error("[component]\ndomain = p.example\nsecret = x\nport = 70000\n"
                 "[proxy]\ntarget = a@example\n",
                 "FILE: [component] port: expected a whole number from 1 to 65535, got \"70000\"");
    assert_error("[component]\ndomain = p.example\nsecret = x\nport = fifty\n"
                 "[proxy]\ntarget = a@example\n",
                 "FILE: [component] port: expected a whole number from 1 to 65535, got \"fifty\"");
    assert_error("[component]\ndomain = p.example\nsecret = x\n"
                 "[proxy]\ntarget = a@example\nrequest_timeout = 0\n",
                 "FILE: [proxy] request_timeout: expected a whole number from 1 to 3600, got \"0\"");
    assert_error("[component]\ndomain = p.example\nsecret = \n[proxy]\ntarget = a@example\n",
                 "FILE: [component] secret: must not be empty");
    assert_error("[component]\ndomain = user@p.example\nsecret = x\n[proxy]\ntarget = a@example\n",
                 "FILE: [component] domain: \"user@p.example\" is not a domain name");
    assert_error("[component]\ndomain = p.example\ninstance_domain = p.example/i1\nsecret = x\n"
                 "[proxy]\ntarget = a@example\n",
                 "FILE: [component] instance_domain: \"p.example/i1\" is not a domain name");
}

static void config_load__rejects_a_target_that_is_not_a_bare_jid(void **state)
{
    (void)state;
    assert_error("[component]\ndomain = p.example\nsecret = x\n[proxy]\ntarget = example.org\n",
                 "FILE: [proxy] target: \"example.org\" is not a bare JID (user@domain)");
    assert_error("[component]\ndomain = p.example\nsecret = x\n[proxy]\ntarget = a@example/res\n",
                 "FILE: [proxy] target: \"a@example/res\" is not a bare JID (user@domain)");
}

static void config_load__rejects_plugin_names_that_leave_the_plugin_directory(void **state)
{
    (void)state;
    assert_error("[component]\ndomain = p.example\nsecret = x\n"
                 "[proxy]\ntarget = a@example\nencoding = ../../tmp/evil\n",
                 "FILE: [proxy] encoding: \"../../tmp/evil\" is not a plugin name (letters, "
                 "digits, '-' and '_')");
}

static void config_load__rejects_unknown_keys_and_groups(void **state)
{
    (void)state;
    assert_error(VALID_CONFIG "request_timout = 5\n", "FILE: [proxy] request_timout: unknown key");
    assert_error(VALID_CONFIG "[logging]\nlevel = debug\n", "FILE: [logging]: unknown group");
}

static void config_load__reads_the_resource_filter(void **state)
{
    (void)state;
    g_autofree char *message = NULL;
    g_autoptr(config_t) config = load_text(VALID_CONFIG "resources = worker-* ; [ab]ackup-?\n",
                                           &message);
    assert_non_null(config);
    assert_int_equal(g_strv_length(config->resources), 2);
    assert_true(config_resource_allowed(config->resources, "worker-1"));
    assert_true(config_resource_allowed(config->resources, "backup-7"));
    assert_false(config_resource_allowed(config->resources, "backup-10"));
    assert_false(config_resource_allowed(config->resources, "gajim"));
    assert_true(config_resource_allowed(NULL, "anything"));
}

static void config_load__rejects_a_bad_glob(void **state)
{
    (void)state;
    assert_error(VALID_CONFIG "resources = worker-[12\n",
                 "FILE: [proxy] resources: \"worker-[12\" is not a valid pattern: '[' without ']'");
    assert_error(VALID_CONFIG "resources = worker-*;;\n",
                 "FILE: [proxy] resources: \"\" is not a valid pattern: an empty pattern");
    assert_error(VALID_CONFIG "resources = a]\n",
                 "FILE: [proxy] resources: \"a]\" is not a valid pattern: ']' without '['");
}

static void config_load__survives_values_that_are_not_utf8(void **state)
{
    (void)state;
    assert_error(VALID_CONFIG "retry_get = \xff\xfe\n",
                 "FILE: [proxy] retry_get: expected true or false, got \"(not UTF-8)\"");
    assert_error(VALID_CONFIG "[limits]\nrate_per_sender = \xff\n",
                 "FILE: [limits] rate_per_sender: expected requests per second from 0 (no "
                 "limit) to 1000000, got \"(not UTF-8)\"");
}

static void config_load__keeps_an_error_on_one_line(void **state)
{
    (void)state;
    assert_error(VALID_CONFIG "[limits]\nin_flight = 1\\n2\n",
                 "FILE: [limits] in_flight: expected a whole number from 1 to 10000000, got "
                 "\"1\\x0a2\"");
}

static void config_load__leaves_plugin_groups_to_plugins(void **state)
{
    (void)state;
    g_autofree char *message = NULL;
    g_autoptr(config_t) config = load_text(VALID_CONFIG "[encoding:other]\nanything = 1\n"
                                                        "[dispatch:mine]\nweights = 1;2\n",
                                           &message);
    assert_non_null(config);
}

#define DISTINCT_SECRET "hunter2-Qz7w"

/* Loads TEXT from a file of MODE; returns the error line, with the file's
 * name replaced by "FILE" (g_free it), or NULL when it loads. */
static char *load_error_with_mode(const char *text, mode_t mode)
{
    g_autofree char *path = write_temp_file(text);
    assert_int_equal(g_chmod(path, mode), 0);
    g_autoptr(GError) error = NULL;
    g_autoptr(config_t) config = config_load(path, &error);
    g_unlink(path);
    if (config)
        return NULL;
    GString *line = g_string_new(error->message);
    g_string_replace(line, path, "FILE", 0);
    return g_string_free(line, FALSE);
}

static void config_load__names_a_malformed_line_by_its_number_without_quoting_it(void **state)
{
    (void)state;
    assert_error("[component]\ndomain = p.example\nsecret " DISTINCT_SECRET "\n"
                 "[proxy]\ntarget = a@example\n",
                 "FILE: line 3: not a [group], a key = value or a comment (not shown: it may "
                 "hold a secret)");
    assert_error("# client-proxy\n\nsecret = " DISTINCT_SECRET "\n[component]\n",
                 "FILE: line 3: a key before the first [group]");
    assert_error("[component]\ndomain = p.example\nEncoding = " DISTINCT_SECRET "\n",
                 "FILE: line 3: an Encoding other than UTF-8");
    assert_error(VALID_CONFIG "[encoding:hmac\n", "FILE: line 12: not a [group], a key = value "
                                                  "or a comment (not shown: it may hold a secret)");
}

static void config_load__refuses_a_file_others_can_read_when_it_holds_the_secret(void **state)
{
    (void)state;
    g_autofree char *world = load_error_with_mode(VALID_CONFIG, 0644);
    assert_non_null(world);
    assert_string_equal(world, "FILE: readable by group or others (mode 0644), yet it holds "
                               "[component] secret: chmod 600 FILE");
    g_autofree char *group = load_error_with_mode(VALID_CONFIG, 0640);
    assert_non_null(group);
    assert_non_null(strstr(group, "(mode 0640)"));
    assert_null(load_error_with_mode(VALID_CONFIG, 0600));
    assert_null(load_error_with_mode(VALID_CONFIG, 0400));
    /* Without the secret, its absence is what is wrong. */
    g_autofree char *no_secret =
        load_error_with_mode("[component]\ndomain = p.example\n[proxy]\ntarget = a@example\n",
                             0644);
    assert_string_equal(no_secret, "FILE: [component] secret: required key is missing");
}

static void config_load__never_shows_the_secret_in_an_error(void **state)
{
    (void)state;
    static const char *const broken[] = {
        "[component]\nsecret " DISTINCT_SECRET "\n",
        "[component]\nsecret=" DISTINCT_SECRET " = \n[proxy\n",
        "secret = " DISTINCT_SECRET "\n",
        "[component]\n" DISTINCT_SECRET "\n",
        "[component]\n" DISTINCT_SECRET "[x] = 1\n",
        "[" DISTINCT_SECRET "\n",
        "[component]\nEncoding = " DISTINCT_SECRET "\n",
        "[component]\ndomain = p.example\nsecret = " DISTINCT_SECRET "\nport = x\n"
        "[proxy]\ntarget = a@example\n",
        "[component]\ndomain = p.example\nsecret = " DISTINCT_SECRET "\n[proxy]\n",
        "[component]\ndomain = p.example\nsecret = " DISTINCT_SECRET "\n"
        "[proxy]\ntarget = a@example\n[dispatch:x]\nseed\n",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(broken); i++) {
        for (int readable = 0; readable < 2; readable++) {
            g_autofree char *message = load_error_with_mode(broken[i], readable ? 0644 : 0600);
            if (!message)
                fail_msg("file %zu loaded", i);
            if (strstr(message, DISTINCT_SECRET))
                fail_msg("file %zu: the error shows the secret: %s", i, message);
        }
    }
}

/* Loads TEXT (a valid configuration, 0600) or fails the test. */
static config_t *load_valid(const char *text)
{
    g_autofree char *message = NULL;
    config_t *config = load_text(text, &message);
    if (!config)
        fail_msg("%s", message);
    return config;
}

static void config_changes__lists_secret_options_without_their_values(void **state)
{
    (void)state;
    g_autoptr(config_t) before = load_valid(
        VALID_CONFIG "[dispatch:sticky]\nseed = 11111\n"
                     "[encoding:vault]\npassword = old-pw\napi_secret = old-s\n"
                     "signing_key = old-k\nkey_file = /etc/a.key\nlifetime = 60\n");
    g_autoptr(config_t) after = load_valid(
        "[component]\ndomain = proxy.example.org\nsecret = " DISTINCT_SECRET "\n"
        "[proxy]\ntarget = service@example.org\n"
        "[dispatch:sticky]\nseed = 22222\n"
        "[encoding:vault]\npassword = new-pw\napi_secret = new-s\n"
        "signing_key = new-k\nkey_file = /etc/b.key\nlifetime = 90\n"
        "[dispatch:random]\nrandom_seed = new-rs\n");
    g_auto(GStrv) changes = config_changes(before, after);
    g_autofree char *all = g_strjoinv("\n", changes);
    for (const char *p = all; *p; p++)
        if (g_str_has_prefix(p, "old-") || g_str_has_prefix(p, "new-") ||
            g_str_has_prefix(p, "s3cret") || g_str_has_prefix(p, DISTINCT_SECRET) ||
            g_str_has_prefix(p, "11111") || g_str_has_prefix(p, "22222"))
            fail_msg("a change shows a secret's value:\n%s", all);
    assert_true(g_strv_contains((const char *const *)changes, "[component] secret"));
    assert_true(g_strv_contains((const char *const *)changes, "[dispatch:sticky] seed"));
    assert_true(g_strv_contains((const char *const *)changes, "[encoding:vault] password"));
    assert_true(g_strv_contains((const char *const *)changes, "[encoding:vault] api_secret"));
    assert_true(g_strv_contains((const char *const *)changes, "[encoding:vault] signing_key"));
    assert_true(g_strv_contains((const char *const *)changes, "[dispatch:random] random_seed"));
    /* A key file's path is no secret, nor is any other option. */
    assert_true(g_strv_contains((const char *const *)changes,
                                "[encoding:vault] key_file (/etc/a.key -> /etc/b.key)"));
    assert_true(g_strv_contains((const char *const *)changes,
                                "[encoding:vault] lifetime (60 -> 90)"));
}

static void config_key_is_secret__names_secrets_but_not_paths_or_the_sticky_key(void **state)
{
    (void)state;
    const char *const secret[] = {"secret", "seed", "password", "api_key", "db_password",
                                  "shared_secret", "hash_seed"};
    const char *const not_secret[] = {"key", "key_file", "keys", "seeds", "domain", "path"};
    for (size_t i = 0; i < G_N_ELEMENTS(secret); i++)
        assert_true(config_key_is_secret(secret[i]));
    for (size_t i = 0; i < G_N_ELEMENTS(not_secret); i++)
        assert_false(config_key_is_secret(not_secret[i]));
}

static void config_load__reads_the_metrics_listener_and_the_admins(void **state)
{
    (void)state;
    g_autoptr(config_t) v4 = load_valid(VALID_CONFIG "[metrics]\nlisten = 127.0.0.1:9464\n"
                                                     "[admin]\njids = Admin@Example.org; "
                                                     "ops@example.org\n");
    assert_string_equal(v4->metrics_host, "127.0.0.1");
    assert_int_equal(v4->metrics_port, 9464);
    assert_int_equal(g_strv_length(v4->admin_jids), 2);
    assert_string_equal(v4->admin_jids[0], "admin@example.org");
    g_autoptr(config_t) v6 = load_valid(VALID_CONFIG "[metrics]\nlisten = [::1]:9100\n");
    assert_string_equal(v6->metrics_host, "::1");
    assert_int_equal(v6->metrics_port, 9100);
    g_autoptr(config_t) none = load_valid(VALID_CONFIG);
    assert_null(none->metrics_host);
    assert_null(none->admin_jids);
    const char *const bad[] = {"9464", "::1:9464", "[::1]9464", "host:", "host:0",
                               "host:65536", ":9464", "[]:1"};
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autofree char *text = g_strdup_printf(VALID_CONFIG "[metrics]\nlisten = %s\n", bad[i]);
        g_autofree char *message = load_error_with_mode(text, 0600);
        if (!message || !strstr(message, "[metrics] listen: expected HOST:PORT"))
            fail_msg("listen = %s: %s", bad[i], message ? message : "accepted");
    }
    g_autofree char *message =
        load_error_with_mode(VALID_CONFIG "[admin]\njids = admin@example.org; example.org\n",
                             0600);
    assert_non_null(strstr(message, "[admin] jids: \"example.org\" is not a bare JID"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(config_load__reads_the_metrics_listener_and_the_admins),
        cmocka_unit_test(config_key_is_secret__names_secrets_but_not_paths_or_the_sticky_key),
        cmocka_unit_test(config_load__reads_every_key),
        cmocka_unit_test(config_load__applies_defaults),
        cmocka_unit_test(config_load__names_a_missing_file),
        cmocka_unit_test(config_load__names_a_file_that_is_not_a_keyfile),
        cmocka_unit_test(config_load__names_group_and_key_of_a_missing_key),
        cmocka_unit_test(config_load__names_a_missing_group),
        cmocka_unit_test(config_load__rejects_malformed_values),
        cmocka_unit_test(config_load__rejects_a_target_that_is_not_a_bare_jid),
        cmocka_unit_test(config_load__rejects_plugin_names_that_leave_the_plugin_directory),
        cmocka_unit_test(config_load__rejects_unknown_keys_and_groups),
        cmocka_unit_test(config_load__reads_the_resource_filter),
        cmocka_unit_test(config_load__rejects_a_bad_glob),
        cmocka_unit_test(config_load__survives_values_that_are_not_utf8),
        cmocka_unit_test(config_load__keeps_an_error_on_one_line),
        cmocka_unit_test(config_load__leaves_plugin_groups_to_plugins),
        cmocka_unit_test(config_load__names_a_malformed_line_by_its_number_without_quoting_it),
        cmocka_unit_test(config_load__refuses_a_file_others_can_read_when_it_holds_the_secret),
        cmocka_unit_test(config_load__never_shows_the_secret_in_an_error),
        cmocka_unit_test(config_changes__lists_secret_options_without_their_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
