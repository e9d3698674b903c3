#include "key-file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>

/* Far above any sane key file; stops us reading /dev/zero or a log file. */
#define KEY_FILE_MAX_BYTES (1024 * 1024)

static void key_ring_append(pc_key_ring_t *ring, const char *id, size_t id_len,
                            uint8_t *bytes, size_t len)
{
    ring->keys = g_renew(pc_key_t, ring->keys, ring->count + 1);
    pc_key_t *key = &ring->keys[ring->count++];
    memset(key->id, 0, sizeof key->id);
    memcpy(key->id, id, id_len);
    key->bytes = bytes;
    key->len = len;
}

pc_key_ring_t *pc_key_ring_from_bytes(const void *bytes, size_t len)
{
    pc_key_ring_t *ring = g_new0(pc_key_ring_t, 1);
    key_ring_append(ring, "", 0, g_memdup2(bytes, len), len);
    return ring;
}

void pc_key_ring_free(pc_key_ring_t *ring)
{
    if (ring == NULL)
        return;
    for (size_t i = 0; i < ring->count; i++) {
        explicit_bzero(ring->keys[i].bytes, ring->keys[i].len);
        g_free(ring->keys[i].bytes);
    }
    g_free(ring->keys);
    g_free(ring);
}

static bool key_id_char(char c)
{
    return g_ascii_isalnum(c) || c == '.' || c == '_' || c == '-';
}

/* Parses one line, LINE[0..LEN), already stripped of its newline, into RING.
 * Returns NULL, or a new message (without path or line number) saying what
 * is wrong.  The message never quotes the line: it may hold key bytes. */
static char *key_line_parse(pc_key_ring_t *ring, const char *line, size_t len)
{
    const char *hash = memchr(line, '#', len);
    if (hash != NULL)
        len = (size_t)(hash - line);
    /* Leading and trailing blanks (and a CR from a DOS file) are harmless. */
    while (len > 0 && (line[0] == ' ' || line[0] == '\t')) {
        line++;
        len--;
    }
    while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t' || line[len - 1] == '\r'))
        len--;
    if (len == 0)
        return NULL;

    const char *id = line;
    size_t id_len = 0;
    const char *hex = line;
    size_t hex_len = len;
    const char *space = memchr(line, ' ', len);
    if (space != NULL) {
        id_len = (size_t)(space - line);
        hex = space + 1;
        hex_len = len - id_len - 1;
        if (id_len > PC_KEY_ID_MAX)
            return g_strdup_printf("key id is %zu characters long; at most %d are allowed",
                                   id_len, PC_KEY_ID_MAX);
        for (size_t i = 0; i < id_len; i++) {
            if (!key_id_char(id[i]))
                return g_strdup("key id may only hold letters, digits, '.', '_' and '-'");
        }
        for (size_t i = 0; i < ring->count; i++) {
            if (strlen(ring->keys[i].id) == id_len && memcmp(ring->keys[i].id, id, id_len) == 0)
                return g_strdup_printf("key id \"%.*s\" is used twice", (int)id_len, id);
        }
    }

    for (size_t i = 0; i < hex_len; i++) {
        if (!g_ascii_isxdigit(hex[i])) {
            if (hex[i] == ' ' || hex[i] == '\t')
                return g_strdup("expected a key id, one space and the key in hex");
            return g_strdup("the key holds a character that is not a hex digit");
        }
    }
    if (hex_len % 2 != 0)
        return g_strdup_printf("the key has an odd number (%zu) of hex digits", hex_len);
    if (hex_len / 2 < PC_KEY_MIN_BYTES)
        return g_strdup_printf("the key is %zu bytes long; at least %d are needed",
                               hex_len / 2, PC_KEY_MIN_BYTES);

    size_t key_len = hex_len / 2;
    uint8_t *bytes = g_malloc(key_len);
    for (size_t i = 0; i < key_len; i++)
        bytes[i] = (uint8_t)(g_ascii_xdigit_value(hex[2 * i]) << 4 | g_ascii_xdigit_value(hex[2 * i + 1]));
    key_ring_append(ring, id, id_len, bytes, key_len);
    return NULL;
}

/* Reads the whole of FD into a new buffer of *LEN bytes.  The caller wipes
 * and frees it.  Returns NULL and sets errno on failure. */
static char *read_all(int fd, size_t *len)
{
    size_t size = 4096, used = 0;
    char *buf = g_malloc(size);

    for (;;) {
        if (used == size) {
            if (size >= KEY_FILE_MAX_BYTES) {
                explicit_bzero(buf, used);
                g_free(buf);
                errno = EFBIG;
                return NULL;
            }
            /* Grow by hand so that the old copy is wiped, not just freed. */
            char *bigger = g_malloc(size * 2);
            memcpy(bigger, buf, used);
            explicit_bzero(buf, used);
            g_free(buf);
            buf = bigger;
            size *= 2;
        }
        ssize_t n = read(fd, buf + used, size - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int saved = errno;
            explicit_bzero(buf, used);
            g_free(buf);
            errno = saved;
            return NULL;
        }
        if (n == 0)
            break;
        used += (size_t)n;
    }
    *len = used;
    return buf;
}

pc_key_ring_t *pc_key_ring_load(const char *path, char **error)
{
    /* O_NONBLOCK: a FIFO named by mistake must not hang start-up before
     * fstat() can refuse it. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        *error = g_strdup_printf("cannot open %s: %s", path, g_strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        *error = g_strdup_printf("cannot stat %s: %s", path, g_strerror(errno));
        close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        *error = g_strdup_printf("%s is not a regular file", path);
        close(fd);
        return NULL;
    }
    if ((st.st_mode & 077) != 0) {
        *error = g_strdup_printf("%s is accessible to group or others (mode %04o); "
                                 "it holds secret keys: chmod 600 it",
                                 path, (unsigned)(st.st_mode & 07777));
        close(fd);
        return NULL;
    }

    size_t len = 0;
    char *text = read_all(fd, &len);
    int saved = errno;
    close(fd);
    if (text == NULL) {
        *error = g_strdup_printf("cannot read %s: %s", path, g_strerror(saved));
        return NULL;
    }

    pc_key_ring_t *ring = g_new0(pc_key_ring_t, 1);
    unsigned line_no = 0;
    char *reason = NULL;
    for (size_t start = 0; start < len && reason == NULL;) {
        const char *nl = memchr(text + start, '\n', len - start);
        size_t end = nl != NULL ? (size_t)(nl - text) : len;
        line_no++;
        if (memchr(text + start, '\0', end - start) != NULL)
            reason = g_strdup("the line holds a NUL byte");
        else
            reason = key_line_parse(ring, text + start, end - start);
        start = end + 1;
    }
    explicit_bzero(text, len);
    g_free(text);

    if (reason != NULL) {
        *error = g_strdup_printf("%s line %u: %s", path, line_no, reason);
        g_free(reason);
        pc_key_ring_free(ring);
        return NULL;
    }
    if (ring->count == 0) {
        *error = g_strdup_printf("%s holds no key", path);
        pc_key_ring_free(ring);
        return NULL;
    }
    return ring;
}

int pc_key_ring_from_config(const cp_host_api_t *api, cp_host_t *host, size_t random_len,
                            pc_key_ring_t **ring)
{
    const char *key_file = api->config_get(host, "key_file");

    if (key_file != NULL) {
        if (key_file[0] == '\0') {
            api->config_error(host, "key_file", "is empty; give the path of a key file, "
                              "or remove it to use a random key");
            return CP_EINVAL;
        }
        char *error = NULL;
        pc_key_ring_t *keys = pc_key_ring_load(key_file, &error);
        if (keys == NULL) {
            api->config_error(host, "key_file", "%s", error);
            g_free(error);
            return CP_EINVAL;
        }
        api->log(host, CP_LOG_INFO, "loaded %zu key(s) from %s", keys->count, key_file);
        *ring = keys;
        return CP_OK;
    }

    uint8_t *random_key = g_malloc(random_len);
    if (api->random_bytes(host, random_key, random_len) != CP_OK) {
        explicit_bzero(random_key, random_len); /* it may have been partly filled */
        g_free(random_key);
        api->log(host, CP_LOG_ERROR, "cannot get random bytes for a key");
        return CP_EFAIL;
    }
    *ring = pc_key_ring_from_bytes(random_key, random_len);
    explicit_bzero(random_key, random_len);
    g_free(random_key);
    api->log(host, CP_LOG_WARNING,
             "no key_file configured: using a random key, so tokens will not "
             "survive a restart");
    return CP_OK;
}
