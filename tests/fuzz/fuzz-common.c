#include "fuzz-common.h"

#include <string.h>

#include <glib.h>
#include <glib/gstdio.h>

char *fuzz_write_private_data(const void *data, size_t size)
{
    GError *error = NULL;
    char *dir = g_dir_make_tmp("cp-fuzz-XXXXXX", &error);
    FUZZ_CHECK(dir != NULL, "cannot make a temporary directory: %s", error->message);
    char *path = g_build_filename(dir, "file", NULL);
    g_free(dir);
    FUZZ_CHECK(g_file_set_contents_full(path, data, (gssize)size, G_FILE_SET_CONTENTS_NONE, 0600,
                                        &error),
               "cannot write %s: %s", path, error->message);
    return path;
}

char *fuzz_write_private_file(const char *text)
{
    return fuzz_write_private_data(text, strlen(text));
}

void fuzz_remove_private_file(char *path)
{
    char *dir = g_path_get_dirname(path);
    g_unlink(path);
    g_rmdir(dir);
    g_free(dir);
    g_free(path);
}
