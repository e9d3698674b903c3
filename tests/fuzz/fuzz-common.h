/* Helpers shared by the libFuzzer targets. */
#ifndef TESTS_FUZZ_FUZZ_COMMON_H
#define TESTS_FUZZ_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* An invariant: when COND is false, says why on fd 2 (the router target
 * points stderr elsewhere) and aborts, which libFuzzer reports as a crash
 * and saves the input. */
#define FUZZ_CHECK(cond, ...)                                               \
    do {                                                                    \
        if (!(cond)) {                                                      \
            dprintf(2, "%s:%d: invariant broken: ", __FILE__, __LINE__);   \
            dprintf(2, __VA_ARGS__);                                        \
            dprintf(2, "\n");                                               \
            abort();                                                        \
        }                                                                   \
    } while (0)

/* Writes TEXT to a new file, mode 0600, in a new private temporary
 * directory.  Returns its path (g_free() through fuzz_remove_private_file). */
char *fuzz_write_private_file(const char *text);
/* Writes SIZE bytes of DATA likewise (they may hold NULs). */
char *fuzz_write_private_data(const void *data, size_t size);
/* Removes the file and its directory, and frees PATH. */
void fuzz_remove_private_file(char *path);

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
