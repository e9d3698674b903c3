#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "plugin-loader.h"
#include "unit-helpers.h"

/* Built beside this test by tests/unit/meson.build. */
static const char *test_plugin_dir(void)
{
    const char *dir = g_getenv("TEST_PLUGIN_DIR");
    assert_non_null(dir);
    return dir;
}

/* A config whose encoding is NAME and whose [plugins] path is PATH. */
static config_t *config_with_encoding(const char *name, const char *path)
{
    g_autofree char *text = g_strdup_printf(
        "[component]\ndomain = p.example\nsecret = x\n"
        "[proxy]\ntarget = a@example\nencoding = %s\n"
        "[plugins]\npath = %s\n"
        "[encoding:refuses]\nmode = sideways\n",
        name, path);
    g_autofree char *file = write_temp_file(text);
    g_autoptr(GError) error = NULL;
    config_t *config = config_load(file, &error);
    g_unlink(file);
    assert_non_null(config);
    return config;
}

/* Loads jat-NAME.so and returns the error message (g_free it), or NULL when
 * it loaded. */
static char *load_error(const char *name, const char *path)
{
    g_autoptr(config_t) config = config_with_encoding(name, path);
    g_autoptr(GError) error = NULL;
    g_autoptr(plugin_t) plugin = plugin_load(config, CP_PLUGIN_JAT, name, &error);
    if (plugin) {
        assert_null(error);
        return NULL;
    }
    assert_non_null(error);
    GString *line = g_string_new(error->message);
    g_string_replace(line, config->path, "FILE", 0);
    return g_string_free(line, FALSE);
}

static void assert_contains(const char *haystack, const char *needle)
{
    if (!haystack || !strstr(haystack, needle))
        fail_msg("\"%s\" does not contain \"%s\"", haystack ? haystack : "(null)", needle);
}

static void plugin_load__loads_a_good_plugin_and_calls_it(void **state)
{
    (void)state;
    g_autoptr(config_t) config = config_with_encoding("good", test_plugin_dir());
    g_autoptr(GError) error = NULL;
    g_autoptr(plugin_t) plugin = plugin_load(config, CP_PLUGIN_JAT, "good", &error);
    assert_non_null(plugin);
    char token[CP_TOKEN_MAX + 1];
    assert_int_equal(plugin_encode(plugin, "a@b/c", 0, token, sizeof token), CP_OK);
    assert_string_equal(token, "a@b/c");
    g_autofree char *expected = g_build_filename(test_plugin_dir(), "jat-good.so", NULL);
    assert_string_equal(plugin_file(plugin), expected);
}

static void plugin_load__searches_the_environment_after_the_config(void **state)
{
    (void)state;
    g_setenv(PLUGIN_PATH_ENV, test_plugin_dir(), TRUE);
    g_autofree char *message = load_error("good", "/nonexistent-first");
    assert_null(message);
    g_setenv(PLUGIN_PATH_ENV, "", TRUE);
}

static void plugin_load__names_every_directory_it_searched(void **state)
{
    (void)state;
    g_autofree char *message = load_error("nope", "/nonexistent-a:/nonexistent-b");
    assert_contains(message, "FILE: [proxy] encoding: no plugin named \"nope\": jat-nope.so is in "
                             "none of /nonexistent-a:/nonexistent-b:");
}

static void plugin_load__refuses_a_newer_abi_major(void **state)
{
    (void)state;
    g_autofree char *message = load_error("newer-major", test_plugin_dir());
    g_autofree char *expected = g_strdup_printf(
        "FILE: [proxy] encoding: %s/jat-newer-major.so was built for plugin ABI %d.0, but this "
        "client-proxy provides %d.%d",
        test_plugin_dir(), CP_PLUGIN_ABI_MAJOR + 1, CP_PLUGIN_ABI_MAJOR, CP_PLUGIN_ABI_MINOR);
    assert_string_equal(message, expected);
}

static void plugin_load__refuses_a_newer_abi_minor(void **state)
{
    (void)state;
    g_autofree char *message = load_error("newer-minor", test_plugin_dir());
    g_autofree char *version = g_strdup_printf("was built for plugin ABI %d.%d",
                                               CP_PLUGIN_ABI_MAJOR, CP_PLUGIN_ABI_MINOR + 1);
    assert_contains(message, version);
}

static void plugin_load__refuses_a_plugin_of_another_kind(void **state)
{
    (void)state;
    g_autofree char *message = load_error("wrong-kind", test_plugin_dir());
    assert_contains(message, "jat-wrong-kind.so is not a jat plugin");
}

static void plugin_load__refuses_a_module_without_descriptor(void **state)
{
    (void)state;
    g_autofree char *message = load_error("no-descriptor", test_plugin_dir());
    assert_contains(message, "jat-no-descriptor.so is not a client-proxy plugin: it exports no "
                             "cp_plugin_descriptor");
}

static void plugin_load__names_the_missing_symbol_of_a_broken_module(void **state)
{
    (void)state;
    g_autofree char *message = load_error("unresolved", test_plugin_dir());
    assert_contains(message, "cannot load ");
    assert_contains(message, "cp_test_symbol_that_does_not_exist");
}

static void plugin_load__refuses_a_module_whose_name_differs(void **state)
{
    (void)state;
    g_autofree char *dir = g_dir_make_tmp("client-proxy-loader-XXXXXX", NULL);
    g_autofree char *source = g_build_filename(test_plugin_dir(), "jat-good.so", NULL);
    g_autofree char *copy = g_build_filename(dir, "jat-other.so", NULL);
    g_autofree char *contents = NULL;
    gsize length;
    assert_true(g_file_get_contents(source, &contents, &length, NULL));
    assert_true(g_file_set_contents(copy, contents, (gssize)length, NULL));
    g_autofree char *message = load_error("other", dir);
    g_unlink(copy);
    g_rmdir(dir);
    assert_contains(message, "calls itself \"good\", not \"other\"");
}

static void plugin_load__reports_a_refused_config_with_group_and_key(void **state)
{
    (void)state;
    g_autofree char *message = load_error("refuses", test_plugin_dir());
    assert_string_equal(message,
                        "FILE: [encoding:refuses] mode: \"sideways\" is not a mode this plugin knows");
}

/* Loads jat-NAME with EXTRA appended to the configuration; returns the
 * error line with the file's name as FILE (g_free it), or NULL. */
static char *load_error_with(const char *name, const char *extra)
{
    g_autofree char *text = g_strdup_printf("[component]\ndomain = p.example\nsecret = x\n"
                                            "[proxy]\ntarget = a@example\nencoding = %s\n"
                                            "[plugins]\npath = %s\n%s",
                                            name, test_plugin_dir(), extra);
    g_autofree char *file = write_temp_file(text);
    g_autoptr(config_t) config = config_load(file, NULL);
    g_unlink(file);
    assert_non_null(config);
    g_autoptr(GError) error = NULL;
    g_autoptr(plugin_t) plugin = plugin_load(config, CP_PLUGIN_JAT, name, &error);
    if (plugin)
        return NULL;
    GString *line = g_string_new(error->message);
    g_string_replace(line, config->path, "FILE", 0);
    return g_string_free(line, FALSE);
}

/* A misspelt option in a plugin's group is no longer ignored: the plugin
 * never asked for it. */
static void plugin_load__refuses_an_option_the_plugin_does_not_read(void **state)
{
    (void)state;
    g_autofree char *message = load_error_with("good", "[encoding:good]\nkye_file = /x\n");
    assert_contains(message, "FILE: [encoding:good] kye_file: unknown option");
    /* A plugin built for ABI 1.0 may read its options later: it loads. */
    g_autofree char *old = load_error_with("old-minor", "[encoding:old-minor]\nlater = 1\n");
    assert_null(old);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plugin_load__refuses_an_option_the_plugin_does_not_read),
        cmocka_unit_test(plugin_load__loads_a_good_plugin_and_calls_it),
        cmocka_unit_test(plugin_load__searches_the_environment_after_the_config),
        cmocka_unit_test(plugin_load__names_every_directory_it_searched),
        cmocka_unit_test(plugin_load__refuses_a_newer_abi_major),
        cmocka_unit_test(plugin_load__refuses_a_newer_abi_minor),
        cmocka_unit_test(plugin_load__refuses_a_plugin_of_another_kind),
        cmocka_unit_test(plugin_load__refuses_a_module_without_descriptor),
        cmocka_unit_test(plugin_load__names_the_missing_symbol_of_a_broken_module),
        cmocka_unit_test(plugin_load__refuses_a_module_whose_name_differs),
        cmocka_unit_test(plugin_load__reports_a_refused_config_with_group_and_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
