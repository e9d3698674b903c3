/* Small helpers shared by the core unit tests. */
#ifndef CP_TESTS_UNIT_HELPERS_H
#define CP_TESTS_UNIT_HELPERS_H

#include <glib.h>
#include <glib/gstdio.h>

/* Writes TEXT to a new temporary file and returns its path (g_free it;
 * remove the file with g_unlink). */
static inline char *write_temp_file(const char *text)
{
    char *path = NULL;
    int fd = g_file_open_tmp("client-proxy-test-XXXXXX.conf", &path, NULL);
    g_assert(fd >= 0);
    g_assert(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    return path;
}

#define VALID_CONFIG                 \
    "[component]\n"                  \
    "domain = proxy.example.org\n"   \
    "secret = s3cret\n"              \
    "server = 127.0.0.1\n"           \
    "port = 5347\n"                  \
    "\n"                             \
    "[proxy]\n"                      \
    "target = service@example.org\n" \
    "dispatch = random\n"            \
    "encoding = hmac\n"              \
    "request_timeout = 30\n"

#endif
