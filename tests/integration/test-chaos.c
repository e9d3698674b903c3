/* Chaos: client-proxy under sustained load in both directions while its
 * world falls apart, against a real Prosody, bounded in time (about 65 s).
 *
 *   - USERS users (alice, bob, carol, dave, erin) each keep IN_FLIGHT
 *     requests in flight, mostly `get`, one in SET_PERCENT `set`, and with
 *     one request in MESSAGE_PERCENT also send a chat message to the domain;
 *   - PROCS resources service@localhost/proc-N are separate processes of
 *     examples/implementing-client (IMPLEMENTING_CLIENT_BIN), each killed
 *     with SIGKILL and started again at random times;
 *   - two more resources are harness workers in this process:
 *     service@localhost/hold never answers anything (HX_HOLD): with
 *     request_timeout = 2 and unhealthy_after = 3 it must be benched;
 *     service@localhost/asker answers like the example, learns the users'
 *     addresses from the `from` of what it receives (the encoding is hmac,
 *     which nobody else can write), and keeps ASK_IN_FLIGHT XEP-0199 pings
 *     of its own in flight to them, which the users answer at once; it
 *     drains (`dnd`) most of the time, so that it does not keep a resource
 *     available while the processes are all down;
 *   - Prosody is restarted once.  The users' own c2s streams die with it, so
 *     the load stops first and every request in flight, both ways, is let
 *     finish; after the restart the users and the workers log in again, the
 *     test waits until client-proxy is back and has re-learned every
 *     resource, and load resumes.
 *
 * At the end every request a user sent must have received exactly one
 * reply: a result that echoes its own payload, or one of client-proxy's
 * errors (service-unavailable, remote-server-timeout, resource-constraint),
 * all from the bare domain.  Every ping the asker sent must have received
 * exactly one reply with its own id, from the address it went to: the
 * user's result, or service-unavailable or remote-server-timeout.  None
 * lost, none duplicated either way.
 *
 * Messages are not requests: one that client-proxy sends to a process as it
 * is killed may be lost (Prosody here has no offline storage), and one that
 * reaches Prosody after the process is gone is `chat` to an offline full
 * JID, which Prosody gives to every other resource of the account (RFC 6121
 * §8.5.3.2.1) with its `to` unchanged.  So delivery is not asserted, but
 * what the two workers see is: no worker gets a message twice, and all
 * copies of one message carry the same `to` (client-proxy sent it to one
 * resource only).  Every message error a user gets is for a message of its
 * own, once.
 *
 * client-proxy's VmRSS at the end must be within RSS_SLACK_KIB of its value
 * after the warm-up, and it must exit 0 on SIGTERM with no sanitizer or
 * valgrind report.
 *
 * The random choices (kill times, restart delays, when the asker drains, get
 * or set, messages, whom the asker pings) come from one PRNG whose seed is printed;
 * CHAOS_SEED=N replays a seed (the timing of the network is not replayed,
 * of course).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define USERS 5
#define IN_FLIGHT 8         /* per user */
#define SET_PERCENT 20
#define MESSAGE_PERCENT 10  /* of the requests sent, also a message */
#define ASK_IN_FLIGHT 4     /* the asker's pings to users */
#define PROCS 3
#define REQUEST_TIMEOUT_S 2
#define UNHEALTHY_AFTER 3
#define WARMUP_MS 8000      /* load before the first VmRSS reading */
#define PHASE1_MS 22000     /* load before the server restart */
#define PHASE2_MS 25000     /* load after it */
#define DRAIN_MS 8000       /* request_timeout, a retry, and slack */
#define READY_MS 20000      /* after the restart, until every resource is back */
#define KILL_MIN_MS 1500    /* a process lives this long at least... */
#define KILL_MAX_MS 5000    /* ...and at most */
#define DOWN_MIN_MS 200     /* a killed process stays down this long... */
#define DOWN_MAX_MS 1500    /* ...up to this */
/* The asker takes new requests this long at a time, and drains (dnd) this
 * long in between: mostly draining, so that the processes' deaths still
 * leave no resource to take requests at times. */
#define SERVE_MIN_MS 200
#define SERVE_MAX_MS 1500
#define DRAIN_MIN_MS 1500
#define DRAIN_MAX_MS 5000
#define RSS_SLACK_KIB 4096
#define SAMPLE_EVERY 97     /* requests also counted with hx_count_id */
#define KEY "k1 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"
#define PING_NS "urn:xmpp:ping"
#define OUTBOUND_ID_PREFIX "cp-out-" /* client-proxy's ids for the asker's pings */

static const char *const user_names[USERS] = {"alice", "bob", "carol", "dave", "erin"};

/* The workers in this process, the only resources whose messages the test
 * can see. */
enum { HOLD, ASKER, WORKERS };
static const char *const worker_names[WORKERS] = {"hold", "asker"};

typedef struct {
    char *id;
    unsigned seq; /* the payload carries it: a result must echo it back */
    int user;
    bool set;
} req_t;

/* A ping the asker sent to a user. */
typedef struct {
    char *id;
    int user;
    char *address; /* where it went: the reply must come from there */
} ask_t;

/* A message a user sent to the domain. */
typedef struct {
    char *id;
    char *body;
    int user;
    char *to;      /* the resource client-proxy sent it to, from its first copy seen */
    guint got_by;  /* bit per worker that received a copy */
    bool bounced;  /* its sender got an error for it */
} msg_t;

typedef struct {
    hx_client_t *c;
    GHashTable *in_flight; /* id -> req_t *, borrowed from all */
    unsigned scanned;      /* received stanzas already looked at */
    unsigned asked;        /* pings the asker sent to this user's addresses */
    unsigned pinged;       /* of them, how many reached this user */
    unsigned ask_results;  /* of them, how many came back as a result */
} user_t;

typedef struct {
    hx_client_t *c;
    unsigned scanned;    /* received stanzas already looked at */
    unsigned messages;   /* users' messages client-proxy sent to it */
    unsigned redirected; /* copies Prosody redirected to it from another resource */
} worker_t;

/* Outcomes of one kind of request (or message) that got an answer. */
typedef struct {
    unsigned results, errors;
    GHashTable *conditions; /* "type/condition" -> unsigned * */
} tally_t;

typedef struct {
    pid_t pid; /* 0: down */
    gint64 next_ms; /* when to kill it (up) or start it (down) */
    unsigned kills;
} proc_t;

typedef struct {
    hx_t *hx; /* the test's run, with its Prosody */
    hx_proxy_t *proxy;
    GRand *rand;
    guint32 seed;
    user_t users[USERS];
    worker_t workers[WORKERS];
    proc_t procs[PROCS];
    char *key_file;
    GPtrArray *all;     /* req_t *, every request sent (owned) */
    GHashTable *by_id;  /* id -> req_t *, every request sent */
    tally_t replies;    /* to the users' requests */
    unsigned seq;
    unsigned sent, gets, sets, duplicates, strays;
    /* The asker: its pings, and when it drains. */
    char *address[USERS];  /* each user's latest address the asker saw, or NULL */
    GPtrArray *asks;       /* ask_t *, every ping sent (owned) */
    GHashTable *ask_by_id; /* id -> ask_t *, every ping sent */
    GHashTable *asking;    /* id -> ask_t *, in flight */
    GHashTable *outbound_ids; /* client-proxy's ids the users saw (owned keys) */
    tally_t ask_replies;
    unsigned ask_duplicates;
    bool asker_draining;   /* it sent presence `dnd` */
    gint64 asker_next_ms;  /* when it stops (or starts) draining */
    unsigned asker_drains;
    /* The users' messages. */
    GPtrArray *msgs;       /* msg_t *, every message sent (owned) */
    GHashTable *msg_by_id; /* id -> msg_t * */
    tally_t msg_errors;    /* errors only */
    unsigned msg_duplicates;
    bool chaos; /* kill and start processes, drain the asker, send new requests */
} chaos_t;

static void tally_init(tally_t *tally)
{
    tally->conditions = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
}

static void tally_error(tally_t *tally, const char *cond)
{
    unsigned *count = g_hash_table_lookup(tally->conditions, cond);
    if (!count) {
        count = g_new0(unsigned, 1);
        g_hash_table_insert(tally->conditions, g_strdup(cond), count);
    }
    (*count)++;
    tally->errors++;
}

static void tally_print(const tally_t *tally)
{
    GHashTableIter it;
    gpointer key, value;
    g_hash_table_iter_init(&it, tally->conditions);
    while (g_hash_table_iter_next(&it, &key, &value))
        print_message("  error %s: %u\n", (char *)key, *(unsigned *)value);
}

/* ---- chaos: the processes, and the asker's draining ------------------------- */

static void proc_start(chaos_t *t, int i)
{
    const char *bin = g_getenv("IMPLEMENTING_CLIENT_BIN");
    g_autofree char *port = g_strdup_printf("%d", hx_c2s_port(t->hx));
    g_autofree char *resource = g_strdup_printf("proc-%d", i + 1);
    g_autofree char *out = g_strdup_printf("%s/%s.out", hx_dir(t->hx), resource);
    char *argv[] = {(char *)bin, "--jid", HX_TARGET, "--password", HX_PASSWORD,
                    "--server", "127.0.0.1", "--port", port, "--resource", resource, NULL};
    pid_t pid = hx_spawn(t->hx, argv, out);
    if (pid <= 0)
        fail_msg("cannot start %s", bin);
    t->procs[i].pid = pid;
    t->procs[i].next_ms =
        hx_now_ms() + g_rand_int_range(t->rand, KILL_MIN_MS, KILL_MAX_MS + 1);
}

static void proc_kill(chaos_t *t, int i)
{
    pid_t pid = t->procs[i].pid;
    kill(pid, SIGKILL);
    int status = hx_spawn_stop(t->hx, pid, 2000); /* reaps it */
    if (!(status >= 0 && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
        fail_msg("proc-%d (pid %d) had already ended: wait status 0x%x", i + 1, (int)pid,
                 (unsigned)status);
    t->procs[i].pid = 0;
    t->procs[i].kills++;
    t->procs[i].next_ms =
        hx_now_ms() + g_rand_int_range(t->rand, DOWN_MIN_MS, DOWN_MAX_MS + 1);
}

/* The asker takes new requests (available) or drains (dnd): it keeps
 * asking either way, and client-proxy routes its answers either way. */
static void asker_serve(chaos_t *t, bool serve)
{
    if (serve == !t->asker_draining)
        return;
    hx_send_presence(t->workers[ASKER].c, NULL, serve ? NULL : "dnd", NULL);
    t->asker_draining = !serve;
    if (!serve)
        t->asker_drains++;
}

/* When the asker's present state ends. */
static void asker_schedule(chaos_t *t)
{
    int ms = t->asker_draining ? g_rand_int_range(t->rand, DRAIN_MIN_MS, DRAIN_MAX_MS + 1)
                               : g_rand_int_range(t->rand, SERVE_MIN_MS, SERVE_MAX_MS + 1);
    t->asker_next_ms = hx_now_ms() + ms;
}

/* Kills and starts processes, and drains the asker or ends its draining,
 * when their time has come. */
static void chaos_step(chaos_t *t)
{
    if (!t->chaos)
        return;
    gint64 now = hx_now_ms();
    if (now >= t->asker_next_ms) {
        asker_serve(t, t->asker_draining);
        asker_schedule(t);
    }
    for (int i = 0; i < PROCS; i++) {
        if (now < t->procs[i].next_ms)
            continue;
        if (t->procs[i].pid)
            proc_kill(t, i);
        else
            proc_start(t, i);
    }
}

static void procs_all_up(chaos_t *t)
{
    for (int i = 0; i < PROCS; i++) {
        if (!t->procs[i].pid)
            proc_start(t, i);
    }
}

/* ---- load: what the users send and receive ---------------------------------- */

static void send_message(chaos_t *t, int u)
{
    msg_t *m = g_new0(msg_t, 1);
    m->id = g_strdup_printf("msg-%u", t->msgs->len + 1);
    m->body = g_strdup_printf("%s from %s", m->id, user_names[u]);
    m->user = u;
    g_ptr_array_add(t->msgs, m);
    g_hash_table_insert(t->msg_by_id, m->id, m);
    g_autofree char *xml = g_strdup_printf(
        "<message type='chat' id='%s' to='" HX_DOMAIN "'><body>%s</body></message>", m->id,
        m->body);
    hx_send_xml(t->users[u].c, xml);
}

static void send_one(chaos_t *t, int u)
{
    req_t *r = g_new0(req_t, 1);
    r->seq = ++t->seq;
    r->user = u;
    r->set = g_rand_int_range(t->rand, 0, 100) < SET_PERCENT;
    g_autofree char *payload =
        g_strdup_printf("<echo xmlns='" HX_ECHO_NS "'>r%u</echo>", r->seq);
    r->id = hx_iq_send(t->users[u].c, HX_DOMAIN, r->set ? "set" : "get", payload);
    g_ptr_array_add(t->all, r);
    g_hash_table_insert(t->by_id, r->id, r);
    g_hash_table_insert(t->users[u].in_flight, r->id, r);
    t->sent++;
    if (r->set)
        t->sets++;
    else
        t->gets++;
    if (g_rand_int_range(t->rand, 0, 100) < MESSAGE_PERCENT)
        send_message(t, u);
}

static bool allowed_error(const char *cond)
{
    static const char *const allowed[] = {
        "cancel/service-unavailable",  /* no resource, or it went offline */
        "wait/remote-server-timeout",  /* nothing answered in time */
        "wait/resource-constraint",    /* too many in flight */
    };
    for (size_t i = 0; i < G_N_ELEMENTS(allowed); i++) {
        if (strcmp(cond, allowed[i]) == 0)
            return true;
    }
    return false;
}

static bool is_reply(xmpp_stanza_t *st)
{
    const char *type = xmpp_stanza_get_type(st);
    return strcmp(xmpp_stanza_get_name(st), "iq") == 0 && type &&
           (strcmp(type, "result") == 0 || strcmp(type, "error") == 0);
}

static bool is_request(xmpp_stanza_t *st)
{
    const char *type = xmpp_stanza_get_type(st);
    return strcmp(xmpp_stanza_get_name(st), "iq") == 0 && type &&
           (strcmp(type, "get") == 0 || strcmp(type, "set") == 0);
}

static bool is_message_of_type(xmpp_stanza_t *st, const char *type)
{
    const char *t = xmpp_stanza_get_type(st);
    return strcmp(xmpp_stanza_get_name(st), "message") == 0 && t && strcmp(t, type) == 0;
}

/* A reply user U received: it must answer one of U's requests in flight. */
static void user_reply(chaos_t *t, int u, xmpp_stanza_t *st)
{
    user_t *user = &t->users[u];
    const char *id = xmpp_stanza_get_id(st);
    req_t *r = id ? g_hash_table_lookup(t->by_id, id) : NULL;
    const char *from = xmpp_stanza_get_from(st);
    if (!r && (!from || strncmp(from, HX_DOMAIN, strlen(HX_DOMAIN)) != 0))
        return; /* the user's own server: session setup */
    g_autofree char *text = hx_text(st);
    if (!r || r->user != u) {
        t->strays++;
        fprintf(stderr, "%s: a reply to no request of theirs: %s\n", user_names[u], text);
        return;
    }
    if (!g_hash_table_remove(user->in_flight, id)) {
        t->duplicates++;
        fprintf(stderr, "%s: a second reply to %s: %s\n", user_names[u], id, text);
        return;
    }
    if (!from || strcmp(from, HX_DOMAIN) != 0)
        fail_msg("reply to %s not from %s: %s", id, HX_DOMAIN, text);
    if (strcmp(xmpp_stanza_get_type(st), "result") == 0) {
        g_autofree char *want = g_strdup_printf("r%u", r->seq);
        const char *got = hx_echo_text(st);
        if (!got || strcmp(got, want) != 0)
            fail_msg("request %s (%s) got someone else's result: %s", id, want, text);
        t->replies.results++;
    } else {
        g_autofree char *cond = hx_error_of(st);
        if (!cond || !allowed_error(cond))
            fail_msg("request %s got an unexpected error: %s", id, text);
        tally_error(&t->replies, cond);
    }
}

/* A request user U received from client-proxy: one of the asker's pings,
 * under an id of client-proxy's own.  The user answers it, as a client
 * that supports XEP-0199 would. */
static void user_asked(chaos_t *t, int u, xmpp_stanza_t *st)
{
    const char *from = xmpp_stanza_get_from(st);
    if (!from || strncmp(from, HX_DOMAIN, strlen(HX_DOMAIN)) != 0)
        return; /* not through client-proxy */
    const char *id = xmpp_stanza_get_id(st);
    if (strcmp(from, HX_DOMAIN) != 0 || !id || !g_str_has_prefix(id, OUTBOUND_ID_PREFIX) ||
        !xmpp_stanza_get_child_by_name_and_ns(st, "ping", PING_NS))
        fail_msg("%s got a request the asker did not send: %s", user_names[u], hx_text(st));
    if (!g_hash_table_add(t->outbound_ids, g_strdup(id))) {
        g_autofree char *text = hx_text(st);
        t->ask_duplicates++;
        fprintf(stderr, "%s: a request client-proxy had sent already: %s\n", user_names[u],
                text);
        return;
    }
    t->users[u].pinged++;
    xmpp_stanza_t *result = xmpp_iq_new(hx_ctx(t->hx), "result", id);
    xmpp_stanza_set_to(result, HX_DOMAIN);
    hx_send(t->users[u].c, result);
    xmpp_stanza_release(result);
}

/* A message error user U received: it must be for a message of U's, once. */
static void user_message_error(chaos_t *t, int u, xmpp_stanza_t *st)
{
    const char *id = xmpp_stanza_get_id(st);
    msg_t *m = id ? g_hash_table_lookup(t->msg_by_id, id) : NULL;
    g_autofree char *text = hx_text(st);
    if (!m || m->user != u) {
        t->strays++;
        fprintf(stderr, "%s: an error for no message of theirs: %s\n", user_names[u], text);
        return;
    }
    if (m->bounced) {
        t->msg_duplicates++;
        fprintf(stderr, "%s: a second error for message %s: %s\n", user_names[u], id, text);
        return;
    }
    m->bounced = true;
    g_autofree char *cond = hx_error_of(st);
    tally_error(&t->msg_errors, cond ? cond : "(no error element)");
}

/* Looks at the stanzas user U received since the last call. */
static void collect(chaos_t *t, int u)
{
    user_t *user = &t->users[u];
    unsigned n = hx_received_count(user->c);
    for (; user->scanned < n; user->scanned++) {
        xmpp_stanza_t *st = hx_received(user->c, user->scanned);
        if (is_reply(st))
            user_reply(t, u, st);
        else if (is_request(st))
            user_asked(t, u, st);
        else if (is_message_of_type(st, "error"))
            user_message_error(t, u, st);
    }
}

static unsigned in_flight(chaos_t *t)
{
    unsigned n = 0;
    for (int u = 0; u < USERS; u++)
        n += g_hash_table_size(t->users[u].in_flight);
    return n;
}

/* ---- load: what the workers receive ----------------------------------------- */

/* Which user an address the asker saw belongs to, by the id of the request
 * or message that came from it; -1 when unknown. */
static int user_of(chaos_t *t, const char *id)
{
    req_t *r = id ? g_hash_table_lookup(t->by_id, id) : NULL;
    if (r)
        return r->user;
    msg_t *m = id ? g_hash_table_lookup(t->msg_by_id, id) : NULL;
    return m ? m->user : -1;
}

static void learn_address(chaos_t *t, xmpp_stanza_t *st)
{
    const char *from = xmpp_stanza_get_from(st);
    int u = user_of(t, xmpp_stanza_get_id(st));
    if (u < 0 || !from || !g_str_has_prefix(from, HX_DOMAIN "/"))
        return;
    if (!t->address[u] || strcmp(t->address[u], from) != 0) {
        g_free(t->address[u]);
        t->address[u] = g_strdup(from);
    }
}

/* A message that worker W received.  A copy redirected by Prosody keeps the
 * `to` client-proxy wrote, a process's (the workers stay online while load
 * runs); two copies with different `to`, or two copies at one worker, mean
 * client-proxy sent it twice. */
static void worker_message(chaos_t *t, int w, xmpp_stanza_t *st)
{
    worker_t *worker = &t->workers[w];
    const char *id = xmpp_stanza_get_id(st);
    const char *from = xmpp_stanza_get_from(st);
    const char *to = xmpp_stanza_get_to(st);
    msg_t *m = id ? g_hash_table_lookup(t->msg_by_id, id) : NULL;
    if (!m || !from || !g_str_has_prefix(from, HX_DOMAIN "/") || !to)
        fail_msg("%s got a message no user sent: %s", worker_names[w], hx_text(st));
    char *body = xmpp_stanza_get_text(xmpp_stanza_get_child_by_name(st, "body"));
    bool intact = body && strcmp(body, m->body) == 0;
    xmpp_free(hx_ctx(t->hx), body);
    if (!intact)
        fail_msg("%s got message %s with another body: %s", worker_names[w], id, hx_text(st));
    if (m->got_by & (1u << w) || (m->to && strcmp(m->to, to) != 0)) {
        g_autofree char *text = hx_text(st);
        t->msg_duplicates++;
        fprintf(stderr, "%s: message %s again (first to %s): %s\n", worker_names[w], id,
                m->to, text);
        return;
    }
    m->got_by |= 1u << w;
    if (!m->to)
        m->to = g_strdup(to);
    if (strcmp(to, hx_client_jid(worker->c)) == 0)
        worker->messages++;
    else if (g_str_has_prefix(to, HX_TARGET "/proc-"))
        worker->redirected++;
    else
        fail_msg("%s got message %s meant for another worker: %s", worker_names[w], id,
                 hx_text(st));
}

/* ---- load: the asker's pings ------------------------------------------------ */

static bool allowed_ask_error(const char *cond)
{
    return strcmp(cond, "cancel/service-unavailable") == 0 || /* user offline, stream lost */
           strcmp(cond, "wait/remote-server-timeout") == 0;   /* the user did not answer */
}

/* A reply to one of the asker's pings: once, from the address it went to. */
static void ask_reply(chaos_t *t, xmpp_stanza_t *st)
{
    const char *id = xmpp_stanza_get_id(st);
    const char *from = xmpp_stanza_get_from(st);
    ask_t *a = id ? g_hash_table_lookup(t->ask_by_id, id) : NULL;
    if (!a && (!from || strncmp(from, HX_DOMAIN, strlen(HX_DOMAIN)) != 0))
        return; /* the asker's own server: session setup, roster */
    if (!a || !g_hash_table_remove(t->asking, id)) {
        g_autofree char *text = hx_text(st);
        if (!a)
            t->strays++;
        else
            t->ask_duplicates++;
        fprintf(stderr, "asker: %s: %s\n", a ? "a second reply" : "a reply to no ping of its own",
                text);
        return;
    }
    if (!from || strcmp(from, a->address) != 0)
        fail_msg("reply to ping %s not from %s: %s", id, a->address, hx_text(st));
    if (strcmp(xmpp_stanza_get_type(st), "result") == 0) {
        t->ask_replies.results++;
        t->users[a->user].ask_results++;
    } else {
        g_autofree char *cond = hx_error_of(st);
        if (!cond || !allowed_ask_error(cond))
            fail_msg("ping %s got an unexpected error: %s", id, hx_text(st));
        tally_error(&t->ask_replies, cond);
    }
}

/* Looks at the stanzas worker W received since the last call (requests are
 * answered or held by the harness itself). */
static void collect_worker(chaos_t *t, int w)
{
    worker_t *worker = &t->workers[w];
    unsigned n = hx_received_count(worker->c);
    for (; worker->scanned < n; worker->scanned++) {
        xmpp_stanza_t *st = hx_received(worker->c, worker->scanned);
        if (is_message_of_type(st, "chat"))
            worker_message(t, w, st);
        if (w != ASKER)
            continue;
        if (is_request(st) || is_message_of_type(st, "chat"))
            learn_address(t, st);
        else if (is_reply(st))
            ask_reply(t, st);
    }
}

/* Tops the asker's pings up to ASK_IN_FLIGHT, each to a user picked at
 * random among those whose address it has seen. */
static void ask_step(chaos_t *t)
{
    hx_client_t *asker = t->workers[ASKER].c;
    while (g_hash_table_size(t->asking) < ASK_IN_FLIGHT) {
        int first = g_rand_int_range(t->rand, 0, USERS), u = -1;
        for (int i = 0; i < USERS && u < 0; i++) {
            if (t->address[(first + i) % USERS])
                u = (first + i) % USERS;
        }
        if (u < 0)
            return;
        ask_t *a = g_new0(ask_t, 1);
        a->user = u;
        a->address = g_strdup(t->address[u]);
        a->id = hx_iq_send(asker, a->address, "get", "<ping xmlns='" PING_NS "'/>");
        g_ptr_array_add(t->asks, a);
        g_hash_table_insert(t->ask_by_id, a->id, a);
        g_hash_table_insert(t->asking, a->id, a);
        t->users[u].asked++;
    }
}

/* ---- load: driving it ------------------------------------------------------- */

static void collect_all(chaos_t *t)
{
    for (int u = 0; u < USERS; u++)
        collect(t, u);
    for (int w = 0; w < WORKERS; w++)
        collect_worker(t, w);
}

static unsigned unanswered(chaos_t *t)
{
    return in_flight(t) + g_hash_table_size(t->asking);
}

/* Keeps IN_FLIGHT requests per user and ASK_IN_FLIGHT pings of the asker in
 * flight for MS, with messages and chaos.  The asker serves at first. */
static void load_run(chaos_t *t, int ms)
{
    gint64 end = hx_now_ms() + ms;
    t->chaos = true;
    asker_schedule(t);
    while (hx_now_ms() < end) {
        collect_all(t);
        for (int u = 0; u < USERS; u++) {
            while (g_hash_table_size(t->users[u].in_flight) < IN_FLIGHT)
                send_one(t, u);
        }
        ask_step(t);
        chaos_step(t);
        hx_pump(t->hx, 5);
    }
}

static void print_lost(chaos_t *t)
{
    fprintf(stderr, "lost:");
    for (int u = 0; u < USERS; u++) {
        GHashTableIter it;
        gpointer key;
        g_hash_table_iter_init(&it, t->users[u].in_flight);
        while (g_hash_table_iter_next(&it, &key, NULL))
            fprintf(stderr, " %s:%s", user_names[u], (char *)key);
    }
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, t->asking);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        ask_t *a = value;
        fprintf(stderr, " asker:%s(to %s)", a->id, user_names[a->user]);
    }
    char *log = hx_proxy_log(t->proxy);
    fprintf(stderr, "\n---- client-proxy stderr ----\n%s\n", log);
    g_free(log);
}

/* Sends nothing more and waits until every request in flight, both ways, is
 * answered (the users keep answering pings); the processes are left alone
 * meanwhile (and all started again, and the asker serves). */
static void load_drain(chaos_t *t, const char *when)
{
    t->chaos = false;
    procs_all_up(t);
    asker_serve(t, true);
    gint64 end = hx_now_ms() + DRAIN_MS;
    for (;;) {
        collect_all(t);
        if (unanswered(t) == 0 || hx_now_ms() >= end)
            break;
        hx_pump(t->hx, 5);
    }
    hx_pump(t->hx, 300); /* room for a duplicate to show */
    collect_all(t);
    if (unanswered(t) > 0) {
        print_lost(t); /* (fail_msg() jumps: print before it.) */
        fail_msg("%s: %u requests and %u pings lost (no reply within %d ms)", when,
                 in_flight(t), g_hash_table_size(t->asking), DRAIN_MS);
    }
    assert_int_equal(t->duplicates, 0);
    assert_int_equal(t->ask_duplicates, 0);
    assert_int_equal(t->msg_duplicates, 0);
    assert_int_equal(t->strays, 0);
    print_message("%s: %u sent, all answered (%u results, %u errors); %u pings, all answered; "
                  "%u messages\n",
                  when, t->sent, t->replies.results, t->replies.errors, t->asks->len,
                  t->msgs->len);
}

/* ---- client-proxy ----------------------------------------------------------- */

static long rss_kib(pid_t pid)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/status", (int)pid);
    g_autofree char *text = NULL;
    if (!g_file_get_contents(path, &text, NULL, NULL))
        return -1;
    const char *line = strstr(text, "\nVmRSS:");
    return line ? strtol(line + strlen("\nVmRSS:"), NULL, 10) : -1;
}

/* AddressSanitizer keeps freed memory in quarantine (256 MiB by default) and
 * valgrind's RSS is its own: neither says anything about client-proxy's. */
static const char *rss_meaningless(chaos_t *t, pid_t pid)
{
    if (hx_proxy_wrapper(t->hx))
        return "client-proxy runs under CLIENT_PROXY_WRAPPER";
    g_autofree char *path = g_strdup_printf("/proc/%d/maps", (int)pid);
    g_autofree char *maps = NULL;
    if (g_file_get_contents(path, &maps, NULL, NULL) && strstr(maps, "libasan"))
        return "client-proxy is built with AddressSanitizer (its quarantine holds freed "
               "memory; LeakSanitizer checks for leaks at exit)";
    return NULL;
}

/* Pumps until the log after MARK says each of the resources is online. */
static void wait_resources(chaos_t *t, size_t mark, int timeout_ms)
{
    gint64 end = hx_now_ms() + timeout_ms;
    for (int i = 0; i < PROCS + WORKERS; i++) {
        g_autofree char *needle =
            i < PROCS ? g_strdup_printf("resource " HX_TARGET "/proc-%d is online", i + 1)
                      : g_strdup_printf("resource " HX_TARGET "/%s is online",
                                        worker_names[i - PROCS]);
        gint64 left = end - hx_now_ms();
        g_autofree char *line =
            hx_proxy_wait_log(t->proxy, mark, needle, left > 0 ? (int)left : 0);
        if (!line) {
            char *log = hx_proxy_log(t->proxy);
            fprintf(stderr, "---- client-proxy stderr ----\n%s\n", log);
            g_free(log);
            fail_msg("no \"%s\" within %d ms", needle + strlen("resource "), timeout_ms);
        }
    }
}

static void start_proxy(chaos_t *t)
{
    g_autofree char *extra = g_strdup_printf("retry_get = true\n"
                                             "unhealthy_after = %d\n"
                                             "\n[encoding:hmac]\nkey_file = %s\n"
                                             "\n[dispatch:random]\nseed = %u\n",
                                             UNHEALTHY_AFTER, t->key_file, t->seed);
    hx_proxy_opts_t o = {.dispatch = "random", .encoding = "hmac",
                         .request_timeout = REQUEST_TIMEOUT_S, .extra = extra};
    t->proxy = hx_proxy_start(t->hx, &o);
    assert_non_null(t->proxy);
    wait_resources(t, 0, READY_MS);
}

/* ---- the test --------------------------------------------------------------- */

/* Users' requests the silent worker got (not client-proxy's pings, which
 * come from the bare domain). */
static unsigned hold_requests(chaos_t *t)
{
    hx_client_t *hold = t->workers[HOLD].c;
    unsigned n = 0;
    for (unsigned i = 0; i < hx_requests_seen(hold); i++) {
        const char *from = xmpp_stanza_get_from(hx_request_seen(hold, i));
        if (from && strchr(from, '/'))
            n++;
    }
    return n;
}

static void print_counts(chaos_t *t)
{
    print_message("sent %u (%u get, %u set); results %u; errors %u; lost %u; duplicated %u\n",
                  t->sent, t->gets, t->sets, t->replies.results, t->replies.errors,
                  in_flight(t), t->duplicates);
    tally_print(&t->replies);
    print_message("asker: %u pings to users; results %u; errors %u; lost %u; duplicated %u\n",
                  t->asks->len, t->ask_replies.results, t->ask_replies.errors,
                  g_hash_table_size(t->asking), t->ask_duplicates);
    tally_print(&t->ask_replies);
    for (int u = 0; u < USERS; u++)
        print_message("  %s: asked %u, reached %u, results %u\n", user_names[u],
                      t->users[u].asked, t->users[u].pinged, t->users[u].ask_results);
    print_message("messages: sent %u; errors %u; duplicated %u\n", t->msgs->len,
                  t->msg_errors.errors, t->msg_duplicates);
    tally_print(&t->msg_errors);
    for (int w = 0; w < WORKERS; w++)
        print_message("  %s got %u sent to it, %u redirected by Prosody\n", worker_names[w],
                      t->workers[w].messages, t->workers[w].redirected);
    unsigned kills = 0;
    for (int i = 0; i < PROCS; i++)
        kills += t->procs[i].kills;
    print_message("processes killed %u times; the asker drained %u times; hold saw %u "
                  "stanzas to answer\n",
                  kills, t->asker_drains, hx_requests_seen(t->workers[HOLD].c));
}

/* How many stanzas with each id of IDS (a set) C received, in COUNTS. */
static void count_ids(hx_client_t *c, GHashTable *ids, GHashTable *counts)
{
    for (unsigned i = 0; i < hx_received_count(c); i++) {
        const char *id = xmpp_stanza_get_id(hx_received(c, i));
        if (id && g_hash_table_contains(ids, id))
            g_hash_table_insert(
                counts, (char *)id,
                GUINT_TO_POINTER(GPOINTER_TO_UINT(g_hash_table_lookup(counts, id)) + 1));
    }
}

/* Every request and every ping: exactly one stanza with its id, counted
 * again over all that its sender received (any kind), and the harness's way
 * (hx_count_id, a linear scan) for a sample. */
static void assert_one_reply_each(chaos_t *t)
{
    g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
    for (int u = 0; u < USERS; u++)
        count_ids(t->users[u].c, t->by_id, seen);
    for (guint i = 0; i < t->all->len; i++) {
        req_t *r = t->all->pdata[i];
        unsigned replies = GPOINTER_TO_UINT(g_hash_table_lookup(seen, r->id));
        if (i % SAMPLE_EVERY == 0)
            assert_int_equal(hx_count_id(t->users[r->user].c, r->id), replies);
        if (replies != 1)
            fail_msg("request %s of %s got %u replies", r->id, user_names[r->user], replies);
    }
    hx_client_t *asker = t->workers[ASKER].c;
    g_autoptr(GHashTable) answered = g_hash_table_new(g_str_hash, g_str_equal);
    count_ids(asker, t->ask_by_id, answered);
    for (guint i = 0; i < t->asks->len; i++) {
        ask_t *a = t->asks->pdata[i];
        unsigned replies = GPOINTER_TO_UINT(g_hash_table_lookup(answered, a->id));
        if (i % SAMPLE_EVERY == 0)
            assert_int_equal(hx_count_id(asker, a->id), replies);
        if (replies != 1)
            fail_msg("ping %s to %s got %u replies", a->id, user_names[a->user], replies);
    }
    /* A ping reaches the user it was addressed to, and only a ping that
     * reached its user comes back as a result. */
    for (int u = 0; u < USERS; u++) {
        user_t *user = &t->users[u];
        if (user->pinged > user->asked || user->ask_results > user->pinged)
            fail_msg("%s: asked %u, reached %u, results %u", user_names[u], user->asked,
                     user->pinged, user->ask_results);
    }
}

static void chaos__answers_every_request_exactly_once_in_both_directions(void **state)
{
    chaos_t *t = *state;
    gint64 t0 = hx_now_ms();
    start_proxy(t);
    pid_t pid = hx_proxy_pid(t->proxy);

    /* Warm-up: everything has happened at least once (kills, timeouts,
     * benching) before the first reading. */
    load_run(t, WARMUP_MS);
    load_drain(t, "warm-up");
    g_autofree char *benched =
        hx_proxy_wait_log(t->proxy, 0, "resource " HX_TARGET "/hold timed out", HX_LOG_WAIT_MS);
    if (!benched)
        fail_msg("the silent resource was never benched");
    print_message("logged: %s\n", benched);
    long rss_warm = rss_kib(pid);
    assert_true(rss_warm > 0);
    unsigned hold_before = hold_requests(t), hold_messages_before = t->workers[HOLD].messages;

    load_run(t, PHASE1_MS);
    load_drain(t, "before the restart");
    /* Benched, it got nothing but pings (it answers none), and no messages
     * but those Prosody redirected from a process just killed. */
    print_message("hold: %u requests and %u messages before it was benched, %u and %u while "
                  "benched\n",
                  hold_before, hold_messages_before, hold_requests(t) - hold_before,
                  t->workers[HOLD].messages - hold_messages_before);
    assert_int_equal(hold_requests(t), hold_before);
    assert_int_equal(t->workers[HOLD].messages, hold_messages_before);

    /* The restart.  Nothing is in flight; the users' streams drop. */
    size_t mark = hx_proxy_log_mark(t->proxy);
    gint64 restart_at = hx_now_ms();
    assert_true(hx_prosody_restart(hx_prosody(t->hx)));
    for (int u = 0; u < USERS; u++) {
        if (!hx_client_reconnect(t->users[u].c))
            fail_msg("%s could not log in again", user_names[u]);
    }
    for (int w = 0; w < WORKERS; w++) {
        if (!hx_client_reconnect(t->workers[w].c))
            fail_msg("the %s worker could not log in again", worker_names[w]);
    }
    t->asker_draining = false; /* a new session starts available */
    procs_all_up(t);
    wait_resources(t, mark, READY_MS);
    g_autofree char *connected = hx_proxy_wait_log(t->proxy, mark, "connected to", 0);
    assert_non_null(connected);
    print_message("back %lld ms after the restart began\n",
                  (long long)(hx_now_ms() - restart_at));
    assert_int_equal(hx_proxy_pid(t->proxy), pid);

    load_run(t, PHASE2_MS);
    load_drain(t, "at the end");
    long rss_end = rss_kib(pid);

    assert_one_reply_each(t);
    print_counts(t);
    assert_int_equal(t->replies.results + t->replies.errors, t->sent);
    assert_true(t->replies.results > t->sent / 2);
    assert_int_equal(t->ask_replies.results + t->ask_replies.errors, t->asks->len);
    assert_true(t->ask_replies.results > t->asks->len / 2);

    print_message("client-proxy VmRSS: %ld KiB after the warm-up, %ld KiB at the end (%+ld)\n",
                  rss_warm, rss_end, rss_end - rss_warm);
    const char *why = rss_meaningless(t, pid);
    if (why)
        print_message("VmRSS bound not checked: %s\n", why);
    else if (rss_end - rss_warm > RSS_SLACK_KIB)
        fail_msg("client-proxy grew by %ld KiB (bound %d KiB)", rss_end - rss_warm,
                 RSS_SLACK_KIB);
    print_message("seed %u; %.1f s\n", t->seed, (hx_now_ms() - t0) / 1000.0);
}

/* ---- fixture ---------------------------------------------------------------- */

/* Stops what is left (processes, clients, client-proxy, Prosody), removes
 * the run's directory, frees T. */
static void chaos_free(chaos_t *t)
{
    for (int i = 0; i < PROCS; i++) {
        if (t->procs[i].pid)
            hx_spawn_stop(t->hx, t->procs[i].pid, 3000);
    }
    for (int u = 0; u < USERS; u++) {
        hx_client_free(t->users[u].c);
        if (t->users[u].in_flight)
            g_hash_table_destroy(t->users[u].in_flight);
        g_free(t->address[u]);
    }
    for (int w = 0; w < WORKERS; w++)
        hx_client_free(t->workers[w].c);
    hx_proxy_free(t->proxy);
    for (guint i = 0; i < t->all->len; i++) {
        req_t *r = t->all->pdata[i];
        g_free(r->id);
        g_free(r);
    }
    for (guint i = 0; i < t->asks->len; i++) {
        ask_t *a = t->asks->pdata[i];
        g_free(a->id);
        g_free(a->address);
        g_free(a);
    }
    for (guint i = 0; i < t->msgs->len; i++) {
        msg_t *m = t->msgs->pdata[i];
        g_free(m->id);
        g_free(m->body);
        g_free(m->to);
        g_free(m);
    }
    g_ptr_array_free(t->all, TRUE);
    g_hash_table_destroy(t->by_id);
    g_ptr_array_free(t->asks, TRUE);
    g_hash_table_destroy(t->ask_by_id);
    g_hash_table_destroy(t->asking);
    g_hash_table_destroy(t->outbound_ids);
    g_ptr_array_free(t->msgs, TRUE);
    g_hash_table_destroy(t->msg_by_id);
    g_hash_table_destroy(t->replies.conditions);
    g_hash_table_destroy(t->ask_replies.conditions);
    g_hash_table_destroy(t->msg_errors.conditions);
    g_rand_free(t->rand);
    g_free(t->key_file);
    hx_free(t->hx);
    g_free(t);
}

/* A run of its own with its Prosody (five users), the two workers, and the
 * implementing-client processes; the test starts client-proxy. */
static bool chaos_start(chaos_t *t)
{
    const char *bin = g_getenv("IMPLEMENTING_CLIENT_BIN");
    if (!bin || !g_file_test(bin, G_FILE_TEST_IS_EXECUTABLE)) {
        fprintf(stderr, "IMPLEMENTING_CLIENT_BIN (%s) is not an executable\n",
                bin ? bin : "unset");
        return false;
    }
    t->hx = hx_new();
    hx_prosody_t *prosody = hx_prosody_new(t->hx);
    for (int u = 0; u < USERS; u++)
        hx_prosody_add_account(prosody, user_names[u]);
    if (!hx_prosody_start(prosody))
        return false;
    t->key_file = hx_write_file(t->hx, "hmac.key", KEY, 0600);
    for (int u = 0; u < USERS; u++) {
        t->users[u].c = hx_client_connect(t->hx, user_names[u], "load", false);
        t->users[u].in_flight = g_hash_table_new(g_str_hash, g_str_equal);
        if (!t->users[u].c)
            return false;
    }
    for (int w = 0; w < WORKERS; w++) {
        t->workers[w].c = hx_client_connect(t->hx, "service", worker_names[w], true);
        if (!t->workers[w].c)
            return false;
    }
    hx_client_set_mode(t->workers[HOLD].c, HX_HOLD);
    for (int i = 0; i < PROCS; i++)
        proc_start(t, i);
    return true;
}

static int setup(void **state)
{
    chaos_t *t = g_new0(chaos_t, 1);
    *state = t;
    const char *env = g_getenv("CHAOS_SEED");
    t->seed = env && *env ? (guint32)strtoul(env, NULL, 10) : g_random_int();
    printf("chaos seed %u (CHAOS_SEED=%u replays it)\n", t->seed, t->seed);
    fflush(stdout);
    t->rand = g_rand_new_with_seed(t->seed);
    t->all = g_ptr_array_new();
    t->by_id = g_hash_table_new(g_str_hash, g_str_equal);
    t->asks = g_ptr_array_new();
    t->ask_by_id = g_hash_table_new(g_str_hash, g_str_equal);
    t->asking = g_hash_table_new(g_str_hash, g_str_equal);
    t->outbound_ids = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    t->msgs = g_ptr_array_new();
    t->msg_by_id = g_hash_table_new(g_str_hash, g_str_equal);
    tally_init(&t->replies);
    tally_init(&t->ask_replies);
    tally_init(&t->msg_errors);
    if (chaos_start(t))
        return 0;
    chaos_free(t); /* cmocka runs no teardown after a failed setup */
    *state = NULL;
    return -1;
}

/* client-proxy must still run, exit 0 on SIGTERM, and have no sanitizer or
 * valgrind report in its log. */
static int teardown(void **state)
{
    chaos_t *t = *state;
    bool was_running = t->proxy && hx_proxy_running(t->proxy);
    int status = !t->proxy     ? -1
                 : was_running ? hx_proxy_stop(t->proxy)
                               : hx_proxy_wait_exit(t->proxy, 0);
    g_autofree char *log = t->proxy ? hx_proxy_log(t->proxy) : g_strdup("");
    g_autofree char *report = hx_memcheck_report(log);
    bool clean = was_running && WIFEXITED(status) && WEXITSTATUS(status) == 0 && !report;
    if (!clean)
        fprintf(stderr, "client-proxy did not stop cleanly (%s, wait status 0x%x%s%s):\n%s",
                was_running ? "running" : "had already exited", (unsigned)status,
                report ? "; " : "", report ? report : "", log);
    else
        print_message("client-proxy exited 0 on SIGTERM, no memory report\n");
    chaos_free(t);
    return clean ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            chaos__answers_every_request_exactly_once_in_both_directions, setup, teardown),
    };
    return cmocka_run_group_tests_name("chaos", tests, NULL, NULL);
}
