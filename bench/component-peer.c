/* component-peer: client-proxy's ceiling, with the XMPP server taken out.
 *
 *   component-peer --port P --secret S [--domain proxy.localhost]
 *       [--target service@localhost] [--resources 2] [--senders 16]
 *       [--rotate-senders] [--inflight 512] [--payload BYTES] [--refuse-first]
 *       [--warmup 1]
 *       [--duration 10] [--hold 100000] [--heap-file FILE] [--label L]
 *       [--child-log FILE] [--no-pin] -- client-proxy --config FILE
 *
 * A minimal XEP-0114 *server* peer on 127.0.0.1:P.  It starts the command
 * after `--` (client-proxy, configured to connect to P; pinned to CPU 1 and
 * this program to CPU 0 when there are two), accepts its component stream,
 * checks the handshake (hex SHA-1 of stream id + secret), and announces R
 * available resources of the target, all at once, followed by one request:
 * when client-proxy forwards that request it has taken every presence
 * before it, so the time and CPU to that moment are what R presences cost
 * (presence_seconds, presence_cpu_us; CPU from /proc/PID/schedstat, in ns).
 * Then:
 *
 *  1. throughput: keeps K IQ gets in flight from S senders to the domain,
 *     answers every request client-proxy forwards as the resource it went
 *     to, and counts the replies client-proxy routes back.  Requests per
 *     second, latency (request in, reply out), and client-proxy's CPU time
 *     per request (utime+stime from /proc/PID/stat over the measured window)
 *     and its minor page faults per request.  Slot k's requests come from
 *     sender k % S; with --rotate-senders each request comes from the next
 *     of the S senders in turn, so that S distinct senders are seen even
 *     when S is far above K.  With --payload BYTES a request carries BYTES
 *     of text in <data xmlns='urn:client-proxy:bench'/> instead of a ping;
 *     with --refuse-first the resource a request goes to first answers
 *     cancel/service-unavailable ("I did not process it"), so that
 *     client-proxy retries it on another resource, which answers;
 *  2. memory (when --hold N > 0): sends N requests that it does not answer
 *     (client-proxy needs request_timeout well above the run), measures
 *     client-proxy's VmRSS once all N have been forwarded, then answers them
 *     all and waits until N replies are routed: bytes per request in flight =
 *     VmRSS delta / N.  With --heap-file FILE (client-proxy run with
 *     bench/heap-count.so preloaded and HEAP_COUNT_FILE=FILE), also its heap
 *     bytes delta / N, exact even for one request.
 *
 * Output: one key=value line and one human line, as loadgen's.  Exit status
 * 0 when it ran, 1 when client-proxy did not connect or failed. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib.h>

#include "common.h"

/* ---- options ------------------------------------------------------------- */

static struct {
    int port, resources, senders, inflight, hold, payload;
    double warmup, duration;
    const char *secret, *domain, *target, *label, *child_log, *heap_file;
    bool pin, rotate_senders, refuse_first;
    char **cmd;
} opt = {.resources = 2, .senders = 16, .inflight = 512, .hold = 100000, .warmup = 1,
         .duration = 10, .domain = "proxy.localhost", .target = "service@localhost",
         .label = "component", .child_log = "/dev/null", .pin = true};

static volatile sig_atomic_t interrupted;
static pid_t child = -1;
static int sock = -1;
static bool stopping, closed_ours; /* client-proxy is being stopped: its close is expected */

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void die(const char *fmt, const char *arg)
{
    fprintf(stderr, "component-peer: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    if (child > 0) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
    }
    exit(1);
}

/* CPU time PID has run, in ns, from /proc/PID/schedstat (exact, where
 * /proc/PID/stat counts in clock ticks); -1 if unknown. */
static int64_t cpu_ns(int pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/schedstat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long long ns = -1;
    if (fscanf(f, "%lld", &ns) != 1)
        ns = -1;
    fclose(f);
    return ns;
}

/* Minor page faults of PID so far (field 10 of /proc/PID/stat); -1 if unknown. */
static int64_t minor_faults(int pid)
{
    char path[64], b[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(b, 1, sizeof b - 1, f);
    fclose(f);
    b[n] = '\0';
    char *p = strrchr(b, ')');
    unsigned long long faults;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %llu", &faults) != 1)
        return -1;
    return (int64_t)faults;
}

/* client-proxy's heap bytes, as bench/heap-count.so counts them; -1 without
 * --heap-file. */
static int64_t heap_bytes(void)
{
    if (!opt.heap_file)
        return -1;
    int fd = open(opt.heap_file, O_RDONLY);
    int64_t bytes = -1;
    if (fd >= 0 && pread(fd, &bytes, sizeof bytes, 0) != (ssize_t)sizeof bytes)
        bytes = -1;
    if (fd >= 0)
        close(fd);
    return bytes;
}

/* ---- buffers ------------------------------------------------------------- */

typedef struct {
    char *p;
    size_t len, cap;
} buf_t;

static void buf_reserve(buf_t *b, size_t extra)
{
    if (b->len + extra <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 65536;
    while (cap < b->len + extra)
        cap *= 2;
    b->p = realloc(b->p, cap);
    if (!b->p)
        abort();
    b->cap = cap;
}

static void buf_add(buf_t *b, const char *s, size_t n)
{
    buf_reserve(b, n + 1);
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void buf_str(buf_t *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

static void buf_esc(buf_t *b, const char *s)
{
    size_t n = strlen(s) * 6 + 1;
    buf_reserve(b, n);
    bench_xml_escape(b->p, b->cap, &b->len, s);
}

static buf_t in, out;

/* ---- a small incremental XML tokenizer -----------------------------------
 * Enough for what a component sends: the stream header, then stanzas
 * (elements at depth 1) with attributes in either quote, text, empty
 * elements, and <?xml?> or comments.  Of each stanza it keeps the name, the
 * attributes type, id, from and to (entities decoded), and where the stanza
 * lies in the buffer, which is only compacted between stanzas. */

#define ATTR_MAX 3100

typedef struct {
    char name[64];
    char type[32], id[256], from[ATTR_MAX], to[ATTR_MAX];
    size_t start, end; /* offsets in `in` of the whole stanza */
} stanza_t;

static struct {
    size_t pos;        /* next byte to scan */
    size_t start;      /* start of the current stanza, when depth >= 2 */
    int depth;         /* 0: before the stream, 1: in it, 2+: inside a stanza */
    bool stream_open, stream_closed;
    stanza_t st;
} px;

static void on_stream_open(void);
static void on_stanza(stanza_t *st);

static void decode_into(char *dst, size_t cap, const char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < cap; i++) {
        if (s[i] == '&') {
            static const struct { const char *e; char c; } ents[] = {
                {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&apos;", '\''}, {"&quot;", '"'}};
            bool done = false;
            for (size_t k = 0; k < 5 && !done; k++) {
                size_t l = strlen(ents[k].e);
                if (i + l <= n && memcmp(s + i, ents[k].e, l) == 0) {
                    dst[o++] = ents[k].c;
                    i += l - 1;
                    done = true;
                }
            }
            if (done)
                continue;
        }
        dst[o++] = s[i];
    }
    dst[o] = '\0';
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Parses the start tag at px.pos ('<' then a name).  Returns 1 when done,
 * 0 when incomplete; sets *EMPTY.  When CAPTURE, fills px.st. */
static int parse_start_tag(bool capture, bool *empty)
{
    const char *b = in.p;
    size_t n = in.len, i = px.pos + 1, name0 = i;
    while (i < n && !is_space(b[i]) && b[i] != '>' && b[i] != '/')
        i++;
    if (i >= n)
        return 0;
    if (capture) {
        size_t l = i - name0 < sizeof px.st.name - 1 ? i - name0 : sizeof px.st.name - 1;
        memcpy(px.st.name, b + name0, l);
        px.st.name[l] = '\0';
        px.st.type[0] = px.st.id[0] = px.st.from[0] = px.st.to[0] = '\0';
    }
    for (;;) {
        while (i < n && is_space(b[i]))
            i++;
        if (i >= n)
            return 0;
        if (b[i] == '>') {
            *empty = false;
            px.pos = i + 1;
            return 1;
        }
        if (b[i] == '/') {
            if (i + 1 >= n)
                return 0;
            *empty = true;
            px.pos = i + 2;
            return 1;
        }
        size_t a0 = i;
        while (i < n && b[i] != '=' && !is_space(b[i]))
            i++;
        size_t a1 = i;
        while (i < n && b[i] != '=')
            i++;
        i++;
        while (i < n && is_space(b[i]))
            i++;
        if (i >= n)
            return 0;
        char q = b[i];
        if (q != '\'' && q != '"')
            die("%s", "malformed attribute from client-proxy");
        const char *v0 = b + i + 1;
        const char *v1 = memchr(v0, q, n - (i + 1));
        if (!v1)
            return 0;
        if (capture) {
            size_t al = a1 - a0, vl = (size_t)(v1 - v0);
            char *dst = NULL;
            size_t cap = 0;
            if (al == 4 && memcmp(b + a0, "type", 4) == 0) dst = px.st.type, cap = sizeof px.st.type;
            else if (al == 2 && memcmp(b + a0, "id", 2) == 0) dst = px.st.id, cap = sizeof px.st.id;
            else if (al == 4 && memcmp(b + a0, "from", 4) == 0) dst = px.st.from, cap = ATTR_MAX;
            else if (al == 2 && memcmp(b + a0, "to", 2) == 0) dst = px.st.to, cap = ATTR_MAX;
            if (dst)
                decode_into(dst, cap, v0, vl);
        }
        i = (size_t)(v1 - b) + 1;
    }
}

/* Scans as much of `in` as is complete, calling on_stanza() per stanza. */
static void parse(void)
{
    for (;;) {
        if (px.stream_closed)
            return;
        const char *b = in.p;
        size_t n = in.len;
        if (px.pos >= n)
            return;
        if (b[px.pos] != '<') { /* text: skip to the next tag */
            const char *lt = memchr(b + px.pos, '<', n - px.pos);
            px.pos = lt ? (size_t)(lt - b) : n;
            continue;
        }
        if (px.pos + 1 >= n)
            return;
        char c = b[px.pos + 1];
        if (c == '?' || c == '!') {
            const char *endmark = c == '?' ? "?>" : "-->";
            const char *e = memmem(b + px.pos, n - px.pos, endmark, strlen(endmark));
            if (!e)
                return;
            px.pos = (size_t)(e - b) + strlen(endmark);
            continue;
        }
        if (c == '/') {
            const char *gt = memchr(b + px.pos, '>', n - px.pos);
            if (!gt)
                return;
            px.pos = (size_t)(gt - b) + 1;
            px.depth--;
            if (px.depth == 1) {
                px.st.start = px.start;
                px.st.end = px.pos;
                on_stanza(&px.st);
            } else if (px.depth <= 0) {
                px.stream_closed = true;
            }
            continue;
        }
        size_t tag0 = px.pos;
        bool empty = false;
        if (!parse_start_tag(px.depth == 1 || px.depth == 0, &empty)) {
            px.pos = tag0;
            return;
        }
        if (px.depth == 0) {
            px.depth = 1;
            px.stream_open = true;
            on_stream_open();
        } else if (px.depth == 1) {
            px.start = tag0;
            if (empty) {
                px.st.start = tag0;
                px.st.end = px.pos;
                on_stanza(&px.st);
            } else {
                px.depth = 2;
            }
        } else if (!empty) {
            px.depth++;
        }
    }
}

/* Drops what has been parsed, keeping an unfinished stanza. */
static void compact(void)
{
    size_t keep = px.depth >= 2 ? px.start : px.pos;
    if (keep == 0)
        return;
    memmove(in.p, in.p + keep, in.len - keep);
    in.len -= keep;
    px.pos -= keep;
    if (px.depth >= 2)
        px.start = 0;
}

/* ---- the benchmark ------------------------------------------------------- */

static const char stream_id[] = "bench-stream-4f1c9a";
static bool up;
static bool sending, measuring, holding;

typedef struct {
    int64_t sent_at; /* 0: free */
    unsigned gen;
    bool refused;    /* --refuse-first: its first resource refused it */
} slot_t;
static slot_t *slots;
static uint64_t in_flight, ok, errors, unmatched, forwarded, unexpected, refused;
static uint64_t held_forwarded, held_replies, held_errors;
static bench_samples_t lat;
static GPtrArray *held; /* "<iq .../>" answers, written when released */
static uint64_t hold_seq;

static void on_stream_open(void)
{
    buf_str(&out, "<?xml version='1.0'?><stream:stream "
                  "xmlns:stream='http://etherx.jabber.org/streams' "
                  "xmlns='jabber:component:accept' from='");
    buf_esc(&out, opt.domain);
    buf_str(&out, "' id='");
    buf_str(&out, stream_id);
    buf_str(&out, "'>");
}

static char *payload; /* "<ping .../>", or <data/> with --payload bytes of text */
static size_t payload_length;
static uint64_t sender_turn; /* --rotate-senders: the sender of the next request */

static void make_payload(void)
{
    if (opt.payload == 0) {
        payload = g_strdup("<ping xmlns='urn:xmpp:ping'/>");
    } else {
        static const char open[] = "<data xmlns='urn:client-proxy:bench'>", close[] = "</data>";
        payload = g_malloc(sizeof open - 1 + (size_t)opt.payload + sizeof close);
        char *p = stpcpy(payload, open);
        for (int i = 0; i < opt.payload; i++) /* text needing no escape, in 72-byte lines */
            *p++ = i % 73 == 72 ? '\n' : "abcdefghijklmnopqrstuvwxyz0123456789"[i % 36];
        strcpy(p, close);
    }
    payload_length = strlen(payload);
}

/* An IQ get with ID from sender number SENDER (from 1) to the domain. */
static void add_request(const char *id, int sender)
{
    char b[512];
    int n = snprintf(b, sizeof b, "<iq type='get' id='%s' from='bench-s%d@localhost/load' to='%s'>",
                     id, sender, opt.domain);
    buf_add(&out, b, (size_t)n);
    buf_add(&out, payload, payload_length);
    buf_str(&out, "</iq>");
}

static void send_request(int slot)
{
    char id[32];
    slot_t *s = &slots[slot];
    s->gen++;
    s->refused = false;
    snprintf(id, sizeof id, "%x.%x", (unsigned)slot, s->gen);
    int sender = opt.rotate_senders ? (int)(sender_turn++ % (uint64_t)opt.senders) + 1
                                    : slot % opt.senders + 1;
    s->sent_at = bench_now_us();
    in_flight++;
    add_request(id, sender);
}

static void send_held_request(void)
{
    char id[32];
    uint64_t k = hold_seq++;
    snprintf(id, sizeof id, "h%llx", (unsigned long long)k);
    add_request(id, (int)(k % (uint64_t)opt.senders) + 1);
}

/* The request that follows the presences: forwarded, it says they are taken. */
static bool presence_marker_forwarded;

static void handshake(stanza_t *st)
{
    /* The text between <handshake> and </handshake>. */
    const char *s = in.p + st->start, *e = in.p + st->end;
    const char *gt = memchr(s, '>', (size_t)(e - s));
    const char *lt = gt ? memchr(gt, '<', (size_t)(e - gt)) : NULL;
    char *want;
    {
        GChecksum *ck = g_checksum_new(G_CHECKSUM_SHA1);
        g_checksum_update(ck, (const guchar *)stream_id, (gssize)strlen(stream_id));
        g_checksum_update(ck, (const guchar *)opt.secret, (gssize)strlen(opt.secret));
        want = g_strdup(g_checksum_get_string(ck));
        g_checksum_free(ck);
    }
    bool good = gt && lt && (size_t)(lt - gt - 1) == strlen(want) &&
                g_ascii_strncasecmp(gt + 1, want, strlen(want)) == 0;
    g_free(want);
    if (!good) {
        buf_str(&out, "<stream:error><not-authorized "
                      "xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"
                      "</stream:stream>");
        die("%s", "client-proxy's handshake does not match the secret");
    }
    buf_str(&out, "<handshake/>");
    up = true;
    /* The target accepts the subscription; its resources come later, all
     * at once (send_presences()). */
    buf_str(&out, "<presence type='subscribed' from='");
    buf_esc(&out, opt.target);
    buf_str(&out, "' to='");
    buf_esc(&out, opt.domain);
    buf_str(&out, "'/>");
}

/* Every resource available, in one burst, then the marker request. */
static void send_presences(void)
{
    for (int r = 1; r <= opt.resources; r++) {
        char b[1024];
        snprintf(b, sizeof b, "<presence from='%s/r%d' to='%s'/>", opt.target, r, opt.domain);
        buf_str(&out, b);
    }
    add_request("p0", 1);
}

static void answer(buf_t *dst, stanza_t *st)
{
    buf_str(dst, "<iq type='result' id='");
    buf_esc(dst, st->id);
    buf_str(dst, "' from='");
    buf_esc(dst, st->to);
    buf_str(dst, "' to='");
    buf_esc(dst, st->from);
    buf_str(dst, "'/>");
}

/* The resource says it did not process the request (it cannot). */
static void refuse(buf_t *dst, stanza_t *st)
{
    buf_str(dst, "<iq type='error' id='");
    buf_esc(dst, st->id);
    buf_str(dst, "' from='");
    buf_esc(dst, st->to);
    buf_str(dst, "' to='");
    buf_esc(dst, st->from);
    buf_str(dst, "'><error type='cancel'><service-unavailable "
                 "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>");
}

/* --refuse-first: true when ST is a measured request's first forward. */
static bool first_forward(const stanza_t *st)
{
    unsigned slot, gen;
    char tail;
    if (!opt.refuse_first || sscanf(st->id, "%x.%x%c", &slot, &gen, &tail) != 2 ||
        slot >= (unsigned)opt.inflight || slots[slot].gen != gen || slots[slot].refused)
        return false;
    slots[slot].refused = true;
    return true;
}

static void on_stanza(stanza_t *st)
{
    if (strcmp(st->name, "handshake") == 0) {
        handshake(st);
        return;
    }
    if (strcmp(st->name, "iq") != 0)
        return; /* presence (probe, subscribe, available): nothing to do */
    size_t tl = strlen(opt.target);
    bool to_target = strncmp(st->to, opt.target, tl) == 0 && st->to[tl] == '/';
    bool request = strcmp(st->type, "get") == 0 || strcmp(st->type, "set") == 0;
    bool reply = strcmp(st->type, "result") == 0 || strcmp(st->type, "error") == 0;
    if (request && to_target) {
        if (st->id[0] == 'p') {
            presence_marker_forwarded = true;
            answer(&out, st);
            return;
        }
        if (st->id[0] == 'h') {
            held_forwarded++;
            buf_t one = {0};
            answer(&one, st);
            buf_add(&one, "", 0);
            one.p[one.len] = '\0';
            g_ptr_array_add(held, one.p);
            return;
        }
        forwarded++;
        if (first_forward(st)) {
            refused++;
            refuse(&out, st);
        } else {
            answer(&out, st);
        }
        return;
    }
    if (!reply || strncmp(st->to, "bench-s", 7) != 0) {
        unexpected++;
        return;
    }
    if (st->id[0] == 'p')
        return; /* the presence marker's reply */
    if (st->id[0] == 'h') {
        if (st->type[0] == 'r')
            held_replies++;
        else
            held_errors++;
        return;
    }
    unsigned slot, gen;
    char tail;
    if (sscanf(st->id, "%x.%x%c", &slot, &gen, &tail) != 2 || slot >= (unsigned)opt.inflight ||
        slots[slot].sent_at == 0 || slots[slot].gen != gen) {
        unmatched++;
        return;
    }
    slot_t *s = &slots[slot];
    if (measuring) {
        if (st->type[0] == 'r') {
            ok++;
            bench_samples_add(&lat, bench_now_us() - s->sent_at);
        } else {
            errors++;
        }
    }
    s->sent_at = 0;
    in_flight--;
    if (sending)
        send_request((int)slot);
}

/* One round of I/O: waits up to TIMEOUT_MS, reads and parses what came,
 * writes what is queued. */
static void io(int timeout_ms)
{
    struct pollfd p = {.fd = sock, .events = POLLIN | (out.len ? POLLOUT : 0)};
    int r = poll(&p, 1, timeout_ms);
    if (r < 0 && errno != EINTR)
        die("poll: %s", strerror(errno));
    if (r <= 0)
        return;
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
        for (int rounds = 0; rounds < 16; rounds++) {
            buf_reserve(&in, 262144);
            ssize_t got = read(sock, in.p + in.len, in.cap - in.len - 1);
            if (got == 0 && stopping) {
                close(sock);
                sock = -1;
                return;
            }
            if (got == 0)
                die("%s", "client-proxy closed the connection");
            if (got < 0) {
                if (errno == EAGAIN || errno == EINTR)
                    break;
                die("read: %s", strerror(errno));
            }
            in.len += (size_t)got;
            parse();
            compact();
            if (px.stream_closed && !stopping)
                die("%s", "client-proxy closed the stream");
            if (px.stream_closed && !closed_ours) {
                buf_str(&out, "</stream:stream>");
                closed_ours = true;
            }
            if ((size_t)got < 65536)
                break;
        }
    }
    if (out.len && sock >= 0) {
        ssize_t put = write(sock, out.p, out.len);
        if (put < 0 && errno != EAGAIN && errno != EINTR)
            die("write: %s", strerror(errno));
        if (put > 0) {
            memmove(out.p, out.p + put, out.len - (size_t)put);
            out.len -= (size_t)put;
        }
    }
}

static void spawn_child(void)
{
    fflush(NULL);
    child = fork();
    if (child < 0)
        die("fork: %s", strerror(errno));
    if (child > 0)
        return;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (opt.pin && sysconf(_SC_NPROCESSORS_ONLN) >= 2) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(1, &set);
        sched_setaffinity(0, sizeof set, &set);
    }
    int fd = open(opt.child_log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
    }
    signal(SIGPIPE, SIG_DFL);
    execvp(opt.cmd[0], opt.cmd);
    fprintf(stderr, "component-peer: exec %s: %s\n", opt.cmd[0], strerror(errno));
    _exit(127);
}

static void stop_child(void)
{
    if (child <= 0)
        return;
    stopping = true;
    kill(child, SIGTERM);
    int64_t end = bench_now_us() + 5000000;
    while (bench_now_us() < end) {
        if (sock >= 0)
            io(10); /* let it close its stream */
        if (waitpid(child, NULL, WNOHANG) == child) {
            child = -1;
            return;
        }
        if (sock < 0)
            usleep(10000);
    }
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    child = -1;
}

static bool child_alive(void)
{
    return child > 0 && waitpid(child, NULL, WNOHANG) == 0;
}

int main(int argc, char **argv)
{
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            opt.cmd = argv + i + 1;
            break;
        }
        if (strcmp(a, "--no-pin") == 0) {
            opt.pin = false;
            continue;
        }
        if (strcmp(a, "--rotate-senders") == 0) {
            opt.rotate_senders = true;
            continue;
        }
        if (strcmp(a, "--refuse-first") == 0) {
            opt.refuse_first = true;
            continue;
        }
        const char *v = i + 1 < argc ? argv[++i] : NULL;
        if (!v) die("option %s needs a value", a);
        if (strcmp(a, "--port") == 0) opt.port = atoi(v);
        else if (strcmp(a, "--secret") == 0) opt.secret = v;
        else if (strcmp(a, "--domain") == 0) opt.domain = v;
        else if (strcmp(a, "--target") == 0) opt.target = v;
        else if (strcmp(a, "--resources") == 0) opt.resources = atoi(v);
        else if (strcmp(a, "--senders") == 0) opt.senders = atoi(v);
        else if (strcmp(a, "--inflight") == 0) opt.inflight = atoi(v);
        else if (strcmp(a, "--hold") == 0) opt.hold = atoi(v);
        else if (strcmp(a, "--payload") == 0) opt.payload = atoi(v);
        else if (strcmp(a, "--heap-file") == 0) opt.heap_file = v;
        else if (strcmp(a, "--warmup") == 0) opt.warmup = atof(v);
        else if (strcmp(a, "--duration") == 0) opt.duration = atof(v);
        else if (strcmp(a, "--label") == 0) opt.label = v;
        else if (strcmp(a, "--child-log") == 0) opt.child_log = v;
        else die("unknown option %s", a);
    }
    if (!opt.cmd || !opt.cmd[0] || opt.port <= 0 || !opt.secret || opt.resources < 1 ||
        opt.senders < 1 || opt.inflight < 1 || opt.hold < 0 || opt.duration <= 0 ||
        opt.payload < 0) {
        fprintf(stderr, "usage: component-peer --port P --secret S [options] -- COMMAND...\n"
                        "(see the comment at the top of bench/component-peer.c)\n");
        return 2;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (opt.pin && sysconf(_SC_NPROCESSORS_ONLN) >= 2) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(0, &set);
        sched_setaffinity(0, sizeof set, &set);
    }

    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&sin, sizeof sin) != 0 || listen(lfd, 4) != 0)
        die("cannot listen on 127.0.0.1: %s", strerror(errno));
    spawn_child();

    /* Accept client-proxy's connection, bounded. */
    int64_t give_up = bench_now_us() + 15000000;
    while (sock < 0) {
        struct pollfd p = {.fd = lfd, .events = POLLIN};
        if (poll(&p, 1, 100) > 0)
            sock = accept(lfd, NULL, NULL);
        if (interrupted || !child_alive() || bench_now_us() > give_up)
            die("%s", "client-proxy did not connect (see --child-log)");
    }
    close(lfd);
    setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(sock, F_SETFL, fcntl(sock, F_GETFL) | O_NONBLOCK);
    held = g_ptr_array_new_with_free_func(free);
    slots = calloc((size_t)opt.inflight, sizeof *slots);

    make_payload();
    while (!up) {
        io(50);
        if (interrupted || bench_now_us() > give_up)
            die("%s", "no handshake from client-proxy");
    }
    /* A moment for client-proxy to subscribe and probe; then every
     * resource's presence at once, and the marker behind them. */
    int64_t settle = bench_now_us() + 100000;
    while (bench_now_us() < settle)
        io(10);
    int64_t presence_t0 = bench_now_us(), presence_cpu0 = cpu_ns(child);
    send_presences();
    while (!presence_marker_forwarded) {
        io(1);
        if (interrupted || !child_alive() || bench_now_us() > presence_t0 + 60000000)
            die("%s", "client-proxy did not take the resources' presence in 60 s");
    }
    int64_t presence_us = bench_now_us() - presence_t0;
    int64_t presence_cpu_ns = cpu_ns(child) - presence_cpu0;
    /* Then a moment for client-proxy to settle. */
    settle = bench_now_us() + 200000;
    while (bench_now_us() < settle)
        io(10);

    /* 1. Throughput. */
    int64_t t0 = bench_now_us(), m_start = t0, m_end;
    int64_t warm_end = t0 + (int64_t)(opt.warmup * 1e6);
    int64_t end = warm_end + (int64_t)(opt.duration * 1e6);
    int64_t cpu0 = bench_cpu_us(child), cpu1, self0 = bench_cpu_us(getpid()), self1;
    int64_t mach0 = bench_machine_busy_us(), mach1;
    int64_t faults0 = minor_faults(child), faults1;
    sending = true;
    measuring = opt.warmup <= 0;
    for (int s = 0; s < opt.inflight; s++)
        send_request(s);
    for (;;) {
        io(5);
        int64_t now = bench_now_us();
        if (!measuring && now >= warm_end) {
            measuring = true;
            m_start = now;
            cpu0 = bench_cpu_us(child);
            self0 = bench_cpu_us(getpid());
            mach0 = bench_machine_busy_us();
            faults0 = minor_faults(child);
        }
        if (now >= end || interrupted)
            break;
    }
    m_end = bench_now_us();
    cpu1 = bench_cpu_us(child);
    self1 = bench_cpu_us(getpid());
    mach1 = bench_machine_busy_us();
    faults1 = minor_faults(child);
    measuring = sending = false;
    give_up = bench_now_us() + 5000000;
    while (in_flight > 0 && bench_now_us() < give_up && !interrupted)
        io(5);
    uint64_t lost = in_flight;

    /* 2. Memory per request in flight. */
    long rss0 = -1, rss1 = -1, rss2 = -1;
    int64_t heap0 = -1, heap1 = -1, heap2 = -1;
    bool hold_complete = false;
    double hold_secs = 0;
    if (opt.hold > 0 && !interrupted) {
        /* Long enough for client-proxy, idle, to give back what the
         * throughput run left free (looked at once a second, and given back
         * after a whole second without requests: core/allocator.h). */
        settle = bench_now_us() + 2500000;
        while (bench_now_us() < settle)
            io(10);
        rss0 = bench_rss_kb(child);
        heap0 = heap_bytes();
        holding = true;
        int64_t h0 = bench_now_us();
        give_up = h0 + 60000000;
        int queued = 0;
        /* Until each has been forwarded or refused (client-proxy's limits). */
        while (held_forwarded + held_errors < (uint64_t)opt.hold && bench_now_us() < give_up &&
               !interrupted) {
            /* Feed in batches, so that the output buffer stays small. */
            while (queued < opt.hold && out.len < 1 << 20) {
                send_held_request();
                queued++;
            }
            io(5);
        }
        hold_secs = (double)(bench_now_us() - h0) / 1e6;
        hold_complete = held_forwarded == (uint64_t)opt.hold;
        settle = bench_now_us() + 300000;
        while (bench_now_us() < settle)
            io(10);
        rss1 = bench_rss_kb(child);
        heap1 = heap_bytes();
        /* Answer them all; client-proxy routes every reply back. */
        guint next = 0;
        give_up = bench_now_us() + 60000000;
        while (held_replies < held_forwarded && bench_now_us() < give_up &&
               !interrupted) {
            while (next < held->len && out.len < 1 << 20) {
                buf_str(&out, held->pdata[next]);
                next++;
            }
            io(5);
        }
        settle = bench_now_us() + 2500000; /* as above */
        while (bench_now_us() < settle)
            io(10);
        rss2 = bench_rss_kb(child);
        heap2 = heap_bytes();
    }

    double secs = (double)(m_end - m_start) / 1e6;
    bench_samples_sort(&lat);
    double rps = (double)ok / secs;
    double cpu_per = ok && cpu0 >= 0 && cpu1 >= 0 ? (double)(cpu1 - cpu0) / (double)ok : -1;
    double cpu_pct = cpu0 >= 0 && cpu1 >= 0 ? 100.0 * (double)(cpu1 - cpu0) / 1e6 / secs : -1;
    double peer_pct = 100.0 * (double)(self1 - self0) / 1e6 / secs;
    double other_pct = 100.0 * (double)(mach1 - mach0 - (cpu1 - cpu0) - (self1 - self0)) / 1e6 / secs;
    long bytes_per = hold_complete && rss1 >= 0 && rss0 >= 0
                         ? (rss1 - rss0) * 1024L / opt.hold
                         : -1;
    double heap_per = hold_complete && heap1 >= 0 && heap0 >= 0
                          ? (double)(heap1 - heap0) / opt.hold
                          : -1;
    double faults_per = ok && faults0 >= 0 && faults1 >= 0
                            ? (double)(faults1 - faults0) / (double)ok
                            : -1;
    printf("label=%s inflight=%d senders=%d resources=%d seconds=%.3f rps=%.0f ok=%llu "
           "errors=%llu unmatched=%llu lost=%llu unexpected=%llu p50_us=%u p90_us=%u "
           "p99_us=%u max_us=%u cpu_us_per_req_proxy=%.2f cpu_pct_proxy=%.0f hold=%d "
           "held_forwarded=%llu held_replies=%llu held_errors=%llu hold_seconds=%.2f "
           "rss0_kb=%ld rss_held_kb=%ld rss_after_kb=%ld bytes_per_inflight=%ld "
           "cpu_pct_peer=%.0f cpu_pct_other=%.0f payload=%d rotate_senders=%d "
           "minor_faults_per_req=%.3f heap0=%lld heap_held=%lld heap_after=%lld "
           "heap_bytes_per_inflight=%.1f presence_seconds=%.6f presence_cpu_us=%.1f "
           "refused=%llu\n",
           opt.label, opt.inflight, opt.senders, opt.resources, secs, rps,
           (unsigned long long)ok, (unsigned long long)errors, (unsigned long long)unmatched,
           (unsigned long long)lost, (unsigned long long)unexpected,
           bench_percentile(lat.v, lat.n, 50), bench_percentile(lat.v, lat.n, 90),
           bench_percentile(lat.v, lat.n, 99), lat.n ? lat.v[lat.n - 1] : 0, cpu_per, cpu_pct,
           opt.hold, (unsigned long long)held_forwarded, (unsigned long long)held_replies,
           (unsigned long long)held_errors, hold_secs, rss0, rss1, rss2, bytes_per, peer_pct,
           other_pct, opt.payload, opt.rotate_senders, faults_per, (long long)heap0,
           (long long)heap1, (long long)heap2, heap_per, (double)presence_us / 1e6,
           presence_cpu_ns >= 0 ? (double)presence_cpu_ns / 1e3 : -1.0,
           (unsigned long long)refused);
    printf("# %s: %.0f req/s with %d in flight, client-proxy %.2f us CPU/request (%.0f%% of a "
           "core), p50 %u us; %d held: VmRSS %ld -> %ld kB = %ld bytes/request in flight, "
           "%ld kB after answering\n",
           opt.label, rps, opt.inflight, cpu_per, cpu_pct, bench_percentile(lat.v, lat.n, 50),
           opt.hold, rss0, rss1, bytes_per, rss2);
    fflush(stdout);
    stop_child();
    g_ptr_array_free(held, TRUE);
    free(slots);
    free(lat.v);
    free(in.p);
    free(out.p);
    g_free(payload);
    return 0;
}
