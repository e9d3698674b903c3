/* Files for tests that read from disk (key files). */
#ifndef TESTS_PLUGINS_TEMP_FILE_H
#define TESTS_PLUGINS_TEMP_FILE_H

#include <sys/types.h>

/** Writes CONTENTS to a new file with MODE in a new temporary directory and
 *  returns its path (g_free()).  Remove both with temp_file_remove(). */
char *temp_file_write(const char *contents, mode_t mode);
void temp_file_remove(char *path);

/** A line of hex digits: LEN_BYTES bytes, each FILL.  g_free() it. */
char *temp_hex_key(size_t len_bytes, unsigned char fill);

#endif
