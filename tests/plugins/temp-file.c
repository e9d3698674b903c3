#include "temp-file.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <glib.h>
#include <glib/gstdio.h>

char *temp_file_write(const char *contents, mode_t mode)
{
    GError *error = NULL;
    char *dir = g_dir_make_tmp("cp-plugin-test-XXXXXX", &error);
    assert_non_null(dir);
    char *path = g_build_filename(dir, "keys", NULL);
    g_free(dir);
    if (!g_file_set_contents_full(path, contents, -1, G_FILE_SET_CONTENTS_NONE, (int)mode, &error))
        fail_msg("cannot write %s: %s", path, error->message);
    /* The umask may have taken bits away; put back exactly what was asked. */
    assert_int_equal(g_chmod(path, (int)mode), 0);
    return path;
}

void temp_file_remove(char *path)
{
    char *dir = g_path_get_dirname(path);
    g_unlink(path);
    g_rmdir(dir);
    g_free(dir);
    g_free(path);
}

char *temp_hex_key(size_t len_bytes, unsigned char fill)
{
    GString *hex = g_string_new(NULL);
    for (size_t i = 0; i < len_bytes; i++)
        g_string_append_printf(hex, "%02x", fill);
    return g_string_free(hex, FALSE);
}
