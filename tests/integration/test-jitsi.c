/* Jitsi Meet through client-proxy (issue 12, "Proof"), against a real
 * Prosody, shaped as Jitsi uses Prosody's mod_client_proxy:
 *
 * - Jicofo logs in as focus@auth.localhost (a second VirtualHost of the
 *   harness's Prosody) with resources focus1 and focus2, inside this
 *   process (the helper section below).  It answers each <conference/>
 *   set with a result <conference ready='true' room=... focusjid=.../>,
 *   sometimes after "joining the room" (up to 500 ms), and <logout/> with
 *   a result.  It reads the sender as Jicofo does (the resource of `from`
 *   when `from` is its client-proxy domain) and notes every request that
 *   does not come through client-proxy or whose sender does not parse.
 * - client-proxy serves HX_DOMAIN (Jitsi's focus.<domain>) with target
 *   focus@auth.localhost and encoding raw, the format Jicofo parses.
 * - Participants are users alice, bob, ... @localhost, with several
 *   resources each, sending <conference room='NAME@conference.localhost'/>.
 *
 * The Jicofo-like delays and the room sizes come from a PRNG whose seed is
 * printed; JITSI_SEED=N replays it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"

#define FOCUS_HOST "auth.localhost"
#define FOCUS_ACCOUNT "focus@" FOCUS_HOST
#define FOCUS_NS "http://jitsi.org/protocol/focus"
#define MUC_DOMAIN "conference.localhost"
#define REQUEST_TIMEOUT_S 10 /* [proxy] request_timeout: above every bound below */
#define REPLY_MS 8000        /* how long to wait for a reply that must come */
#define JOIN_MAX_MS 500      /* Jicofo "joins the room" for up to this long */
#define ONLINE_MS 8000       /* until client-proxy knows a resource */

/* Participants' accounts (alice and bob come with the harness). */
static const char *const accounts[] = {"alice", "bob", "carol", "dave", "erin", "frank"};
#define N_ACCOUNTS ((unsigned)G_N_ELEMENTS(accounts))

static guint32 seed; /* of the run's PRNGs (JITSI_SEED) */

/* ==== A Jicofo-like implementing client ======================================
 * Harness workers logged in as focus@auth.localhost whose requests
 * focus_on_request() takes.  Answers that wait for a room to be joined sit
 * in `pending` until a global timed handler on the run's libstrophe context
 * sends them, so they go out from inside whatever the harness is pumping. */

typedef enum {
    FOCUS_JOINS,     /* answers a conference at once or after up to JOIN_MAX_MS */
    FOCUS_SLOW,      /* answers a conference after join_ms; pings at once */
    FOCUS_HUNG,      /* answers nothing, pings included */
    FOCUS_VIDEOBRIDGE, /* not Jicofo: a conference gets cancel/feature-not-implemented */
} focus_behaviour_t;

typedef struct jicofo jicofo_t;

typedef struct {
    jicofo_t *jicofo;
    hx_client_t *client; /* focus@auth.localhost/NAME */
    const char *name;    /* "focus1", "focus2", "jvb" */
    focus_behaviour_t behaviour;
    int join_ms; /* FOCUS_SLOW */
} focus_t;

/* A conference or logout request a focus resource received. */
typedef struct {
    char *id;
    const char *focus; /* the resource that got it (a focus_t's name) */
    char *sender;      /* who Jicofo reads as the sender: jicofo_sender() */
    char *room;        /* a conference's room, or NULL */
    gint64 at;         /* hx_now_ms() when it arrived */
} seen_t;

typedef struct {
    focus_t *focus;
    xmpp_stanza_t *reply;
    gint64 due; /* hx_now_ms() */
} pending_t;

struct jicofo {
    hx_t *hx;
    GRand *rand;
    focus_t focus[2];       /* focus1, focus2 */
    focus_t jvb;            /* client NULL unless jicofo_add_videobridge() */
    GPtrArray *seen;        /* seen_t *, in arrival order */
    GPtrArray *pending;     /* pending_t * */
    GPtrArray *violations;  /* char *: what Jicofo would not have taken */
    unsigned jvb_conferences; /* conference requests the videobridge refused */
};

static void seen_free(gpointer data)
{
    seen_t *s = data;
    g_free(s->id);
    g_free(s->sender);
    g_free(s->room);
    g_free(s);
}

static void pending_free(gpointer data)
{
    pending_t *p = data;
    xmpp_stanza_release(p->reply);
    g_free(p);
}

/* A JID Jicofo's parser takes: [node@]domain[/resource], no part empty. */
static bool is_jid(const char *s)
{
    const char *slash = strchr(s, '/');
    size_t bare_len = slash ? (size_t)(slash - s) : strlen(s);
    const char *at = memchr(s, '@', bare_len);
    const char *domain = at ? at + 1 : s;
    size_t domain_len = bare_len - (size_t)(domain - s);
    return domain_len > 0 && (!at || at > s) && (!slash || slash[1]);
}

/* The sender Jicofo reads from FROM: when the bare JID of FROM is its
 * client-proxy domain and FROM has a resource, that resource parsed as a
 * JID; otherwise FROM itself.  NULL when it is no JID.  (g_free it.) */
static char *jicofo_sender(const char *from)
{
    const char *slash = strchr(from, '/');
    g_autofree char *bare = slash ? g_strndup(from, (gsize)(slash - from)) : g_strdup(from);
    if (g_ascii_strcasecmp(bare, HX_DOMAIN) == 0 && slash && slash[1])
        return is_jid(slash + 1) ? g_strdup(slash + 1) : NULL;
    return is_jid(from) ? g_strdup(from) : NULL;
}

static void violation(jicofo_t *j, const char *what, xmpp_stanza_t *req)
{
    g_autofree char *text = hx_text(req);
    g_ptr_array_add(j->violations, g_strdup_printf("%s: %s", what, text));
}

static xmpp_stanza_t *payload_of(xmpp_stanza_t *iq)
{
    xmpp_stanza_t *ch = xmpp_stanza_get_children(iq);
    while (ch && !xmpp_stanza_is_tag(ch))
        ch = xmpp_stanza_get_next(ch);
    return ch;
}

/* Jicofo's answer to REQ: to the `from` it saw, with REQ's id; for a
 * conference in ROOM, <conference ready='true' room focusjid/>. */
static xmpp_stanza_t *result_for(focus_t *f, xmpp_stanza_t *req, const char *room)
{
    xmpp_ctx_t *ctx = hx_ctx(f->jicofo->hx);
    xmpp_stanza_t *res = xmpp_iq_new(ctx, "result", xmpp_stanza_get_id(req));
    xmpp_stanza_set_to(res, xmpp_stanza_get_from(req));
    if (room) {
        xmpp_stanza_t *conf = xmpp_stanza_new(ctx);
        xmpp_stanza_set_name(conf, "conference");
        xmpp_stanza_set_ns(conf, FOCUS_NS);
        xmpp_stanza_set_attribute(conf, "ready", "true");
        xmpp_stanza_set_attribute(conf, "room", room);
        xmpp_stanza_set_attribute(conf, "focusjid", hx_client_jid(f->client));
        xmpp_stanza_add_child_ex(res, conf, 0);
    }
    return res;
}

static xmpp_stanza_t *error_for(xmpp_stanza_t *req, const char *type, const char *condition)
{
    xmpp_stanza_t *res = xmpp_stanza_reply_error(req, type, condition, NULL);
    xmpp_stanza_del_attribute(res, "lang");
    xmpp_stanza_del_attribute(res, "from");
    xmpp_stanza_set_to(res, xmpp_stanza_get_from(req));
    return res;
}

/* Sends REPLY (taken) from F after DELAY_MS. */
static void answer(focus_t *f, xmpp_stanza_t *reply, int delay_ms)
{
    if (delay_ms <= 0) {
        hx_send(f->client, reply);
        xmpp_stanza_release(reply);
        return;
    }
    pending_t *p = g_new0(pending_t, 1);
    p->focus = f;
    p->reply = reply;
    p->due = hx_now_ms() + delay_ms;
    g_ptr_array_add(f->jicofo->pending, p);
}

/* How long Jicofo takes to join the room: half the time no wait at all. */
static int join_delay(focus_t *f)
{
    if (f->behaviour == FOCUS_SLOW)
        return f->join_ms;
    GRand *rand = f->jicofo->rand;
    return g_rand_boolean(rand) ? 0 : g_rand_int_range(rand, 1, JOIN_MAX_MS + 1);
}

/* A request to a focus resource (hx_request_fn). */
static void focus_on_request(hx_client_t *c, xmpp_stanza_t *req, void *arg)
{
    (void)c;
    focus_t *f = arg;
    jicofo_t *j = f->jicofo;
    xmpp_stanza_t *payload = payload_of(req);
    const char *name = payload ? xmpp_stanza_get_name(payload) : "";
    const char *ns = payload ? xmpp_stanza_get_ns(payload) : NULL;
    const char *from = xmpp_stanza_get_from(req);
    bool ping = ns && strcmp(ns, "urn:xmpp:ping") == 0;
    bool conference = ns && strcmp(ns, FOCUS_NS) == 0 && strcmp(name, "conference") == 0;
    bool logout = ns && strcmp(ns, FOCUS_NS) == 0 && strcmp(name, "logout") == 0;

    if (f->behaviour == FOCUS_VIDEOBRIDGE) {
        j->jvb_conferences += conference;
        answer(f, ping ? result_for(f, req, NULL)
                       : error_for(req, "cancel", "feature-not-implemented"), 0);
        return;
    }
    if (ping) {
        if (f->behaviour != FOCUS_HUNG)
            answer(f, result_for(f, req, NULL), 0);
        return;
    }
    if (!conference && !logout) {
        violation(j, "not a focus request", req);
        answer(f, error_for(req, "modify", "bad-request"), 0);
        return;
    }
    char *sender = from ? jicofo_sender(from) : NULL;
    if (!sender)
        violation(j, "no sender Jicofo can parse", req);
    else if (!g_str_has_prefix(from, HX_DOMAIN "/"))
        violation(j, "not through client-proxy", req);
    const char *room = conference ? xmpp_stanza_get_attribute(payload, "room") : NULL;
    if (conference && !room)
        violation(j, "a conference without a room", req);

    seen_t *s = g_new0(seen_t, 1);
    s->id = g_strdup(xmpp_stanza_get_id(req));
    s->focus = f->name;
    s->sender = sender;
    s->room = g_strdup(room);
    s->at = hx_now_ms();
    g_ptr_array_add(j->seen, s);

    if (f->behaviour == FOCUS_HUNG)
        return;
    if (conference && room)
        answer(f, result_for(f, req, room), join_delay(f));
    else if (conference)
        answer(f, error_for(req, "modify", "bad-request"), 0);
    else
        answer(f, result_for(f, req, NULL), 0);
}

/* Sends the answers that are due (an xmpp_global_timed_handler). */
static int jicofo_tick(xmpp_ctx_t *ctx, void *arg)
{
    (void)ctx;
    jicofo_t *j = arg;
    gint64 now = hx_now_ms();
    for (guint i = 0; i < j->pending->len;) {
        pending_t *p = j->pending->pdata[i];
        if (p->due > now) {
            i++;
            continue;
        }
        if (hx_client_connected(p->focus->client))
            hx_send(p->focus->client, p->reply);
        g_ptr_array_remove_index(j->pending, i);
    }
    return 1;
}

static bool focus_connect(jicofo_t *j, focus_t *f, const char *name, focus_behaviour_t behaviour)
{
    f->jicofo = j;
    f->name = name;
    f->behaviour = behaviour;
    f->client = hx_client_connect_at(j->hx, "focus", FOCUS_HOST, name, true);
    if (f->client)
        hx_client_set_handler(f->client, focus_on_request, f);
    return f->client != NULL;
}

static void jicofo_free(jicofo_t *j)
{
    if (!j)
        return;
    xmpp_global_timed_handler_delete(hx_ctx(j->hx), jicofo_tick);
    hx_client_free(j->focus[0].client);
    hx_client_free(j->focus[1].client);
    hx_client_free(j->jvb.client);
    g_ptr_array_unref(j->seen);
    g_ptr_array_unref(j->pending);
    g_ptr_array_unref(j->violations);
    g_rand_free(j->rand);
    g_free(j);
}

/* Jicofo with focus1 and focus2 online.  Returns NULL if they could not log
 * in.  jicofo_free() it. */
static jicofo_t *jicofo_new(hx_t *hx)
{
    jicofo_t *j = g_new0(jicofo_t, 1);
    j->hx = hx;
    j->rand = g_rand_new_with_seed(seed);
    j->seen = g_ptr_array_new_with_free_func(seen_free);
    j->pending = g_ptr_array_new_with_free_func(pending_free);
    j->violations = g_ptr_array_new_with_free_func(g_free);
    xmpp_global_timed_handler_add(hx_ctx(hx), jicofo_tick, 5, j);
    if (focus_connect(j, &j->focus[0], "focus1", FOCUS_JOINS) &&
        focus_connect(j, &j->focus[1], "focus2", FOCUS_JOINS))
        return j;
    jicofo_free(j);
    return NULL;
}

/* A videobridge logged in as the focus account: focus@auth.localhost/jvb. */
static bool jicofo_add_videobridge(jicofo_t *j)
{
    return focus_connect(j, &j->jvb, "jvb", FOCUS_VIDEOBRIDGE);
}

/* F's process dies: what it was about to answer is lost with it. */
static void jicofo_kill(focus_t *f)
{
    GPtrArray *pending = f->jicofo->pending;
    for (guint i = 0; i < pending->len;) {
        if (((pending_t *)pending->pdata[i])->focus == f)
            g_ptr_array_remove_index(pending, i);
        else
            i++;
    }
    hx_client_disconnect(f->client);
}

/* F starts again, as it was configured. */
static bool jicofo_restart(focus_t *f)
{
    f->behaviour = FOCUS_JOINS;
    return hx_client_reconnect(f->client);
}

/* Where in `seen` the request with ID that focus resource FOCUS (NULL:
 * any) received is, or -1. */
static int jicofo_seen_at(jicofo_t *j, const char *id, const char *focus)
{
    for (guint i = 0; i < j->seen->len; i++) {
        seen_t *s = j->seen->pdata[i];
        if (strcmp(s->id, id) == 0 && (!focus || strcmp(s->focus, focus) == 0))
            return (int)i;
    }
    return -1;
}

/* That request, or NULL. */
static seen_t *jicofo_seen(jicofo_t *j, const char *id, const char *focus)
{
    int i = jicofo_seen_at(j, id, focus);
    return i < 0 ? NULL : j->seen->pdata[i];
}

/* Fails the test if Jicofo met a request it would not have taken. */
static void assert_jicofo_content(jicofo_t *j)
{
    for (guint i = 0; i < j->violations->len; i++)
        print_message("Jicofo: %s\n", (char *)j->violations->pdata[i]);
    if (j->violations->len > 0)
        fail_msg("Jicofo met %u requests it would not have taken", j->violations->len);
}

/* ==== The fixture ============================================================ */

typedef struct {
    hx_client_t *who;
    char *id;
    char *room;           /* NAME@conference.localhost */
    gint64 sent, replied; /* hx_now_ms(); replied 0 until a reply came */
    xmpp_stanza_t *reply; /* recorded by WHO's client */
} ask_t;

typedef struct {
    hx_t *hx;        /* the group's run and Prosody (borrowed) */
    GRand *rand;
    jicofo_t *jicofo;
    hx_proxy_t *proxy;       /* the test's client-proxy, or NULL */
    GPtrArray *participants; /* hx_client_t * */
    GPtrArray *asks;         /* ask_t * */
} fixture_t;

static void ask_free(gpointer data)
{
    ask_t *a = data;
    g_free(a->id);
    g_free(a->room);
    g_free(a);
}

static void dump_log(fixture_t *fx)
{
    g_autofree char *log = fx->proxy ? hx_proxy_log(fx->proxy) : g_strdup("");
    fprintf(stderr, "---- client-proxy stderr ----\n%s-----------------------------\n", log);
}

/* Stops client-proxy (it must exit 0 with no sanitizer or valgrind report)
 * and frees what the test made, also after a failure. */
static int teardown(void **state)
{
    fixture_t *fx = *state;
    int status = fx->proxy && hx_proxy_running(fx->proxy) ? hx_proxy_stop(fx->proxy) : 0;
    g_autofree char *log = fx->proxy ? hx_proxy_log(fx->proxy) : g_strdup("");
    g_autofree char *report = hx_memcheck_report(log);
    bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0 && !report;
    if (!clean)
        fprintf(stderr, "client-proxy did not stop cleanly (0x%x):\n%s", (unsigned)status, log);
    hx_proxy_free(fx->proxy);
    jicofo_free(fx->jicofo);
    for (guint i = 0; i < fx->participants->len; i++)
        hx_client_free(fx->participants->pdata[i]);
    g_ptr_array_unref(fx->participants);
    g_ptr_array_unref(fx->asks);
    g_rand_free(fx->rand);
    *state = fx->hx;
    g_free(fx);
    return clean ? 0 : -1;
}

/* Jicofo online; each test starts its client-proxy and participants. */
static int setup(void **state)
{
    fixture_t *fx = g_new0(fixture_t, 1);
    fx->hx = *state;
    *state = fx;
    fx->rand = g_rand_new_with_seed(seed + 1);
    fx->participants = g_ptr_array_new();
    fx->asks = g_ptr_array_new_with_free_func(ask_free);
    fx->jicofo = jicofo_new(fx->hx);
    if (fx->jicofo)
        return 0;
    teardown(state); /* cmocka runs none after a failed setup */
    return -1;
}

/* Starts client-proxy for Jicofo with DISPATCH and EXTRA (more [proxy]
 * lines, then maybe groups, or NULL), and waits until it knows the
 * resources ONLINE (NULL-terminated names). */
static void start_proxy(fixture_t *fx, const char *dispatch, const char *extra,
                        const char *const *online)
{
    hx_proxy_opts_t o = {.target = FOCUS_ACCOUNT,
                         .dispatch = dispatch,
                         .encoding = "raw",
                         .request_timeout = REQUEST_TIMEOUT_S,
                         .extra = extra};
    fx->proxy = hx_proxy_start(fx->hx, &o);
    assert_non_null(fx->proxy);
    for (const char *const *name = online; *name; name++) {
        g_autofree char *needle = g_strdup_printf("resource %s/%s is online", FOCUS_ACCOUNT, *name);
        g_autofree char *line = hx_proxy_wait_log(fx->proxy, 0, needle, ONLINE_MS);
        if (!line) {
            dump_log(fx);
            fail_msg("client-proxy never logged \"%s\"", needle);
        }
    }
}

static const char *const both_focus[] = {"focus1", "focus2", NULL};

/* Waits until client-proxy logs, after MARK, that NAME is offline; returns
 * when, or fails. */
static gint64 wait_offline(fixture_t *fx, size_t mark, const char *name, int timeout_ms)
{
    g_autofree char *needle = g_strdup_printf("%s/%s is offline", FOCUS_ACCOUNT, name);
    g_autofree char *line = hx_proxy_wait_log(fx->proxy, mark, needle, timeout_ms);
    if (!line) {
        dump_log(fx);
        fail_msg("client-proxy never logged \"%s\"", needle);
    }
    return hx_now_ms();
}

/* A participant NODE@localhost/RESOURCE, freed by the teardown. */
static hx_client_t *participant(fixture_t *fx, const char *node, const char *resource)
{
    hx_client_t *c = hx_client_connect(fx->hx, node, resource, false);
    if (!c)
        fail_msg("%s@localhost/%s could not log in", node, resource);
    g_ptr_array_add(fx->participants, c);
    return c;
}

/* One participant per account, resource RESOURCE; into OUT[N_ACCOUNTS]. */
static void one_per_account(fixture_t *fx, const char *resource, hx_client_t **out)
{
    for (unsigned i = 0; i < N_ACCOUNTS; i++)
        out[i] = participant(fx, accounts[i], resource);
}

/* WHO asks to join ROOM (a name at conference.localhost), as
 * lib-jitsi-meet does. */
static ask_t *ask_conference(fixture_t *fx, hx_client_t *who, const char *room)
{
    ask_t *a = g_new0(ask_t, 1);
    a->who = who;
    a->room = g_strdup_printf("%s@%s", room, MUC_DOMAIN);
    g_autofree char *uid = g_compute_checksum_for_string(G_CHECKSUM_MD5, hx_client_jid(who), -1);
    g_autofree char *payload = g_strdup_printf(
        "<conference xmlns='" FOCUS_NS "' room='%s' machine-uid='%s'>"
        "<property name='startAudioMuted' value='9'/>"
        "<property name='startVideoMuted' value='9'/>"
        "<property name='rtcstatsEnabled' value='false'/>"
        "<property name='visitors-version' value='1'/>"
        "</conference>",
        a->room, uid);
    a->sent = hx_now_ms();
    a->id = hx_iq_send(who, HX_DOMAIN, "set", payload);
    g_ptr_array_add(fx->asks, a);
    return a;
}

static bool reply_came(ask_t *a)
{
    if (!a->reply) {
        a->reply = hx_wait_reply(a->who, a->id, 0);
        if (a->reply)
            a->replied = hx_now_ms();
    }
    return a->reply != NULL;
}

/* Pumps for MS milliseconds, noting when each reply to the test's
 * requests comes (5 ms apart at most). */
static void pump(fixture_t *fx, int ms)
{
    gint64 end = hx_now_ms() + ms;
    do {
        hx_pump(fx->hx, 5);
        for (guint i = 0; i < fx->asks->len; i++)
            reply_came(fx->asks->pdata[i]);
    } while (hx_now_ms() < end);
}

/* Pumps until each of ASKS[0..N) has its reply; fails naming one that
 * did not within TIMEOUT_MS. */
static void wait_replies(fixture_t *fx, ask_t **asks, guint n, int timeout_ms)
{
    gint64 end = hx_now_ms() + timeout_ms;
    for (;;) {
        ask_t *missing = NULL;
        for (guint i = 0; i < n && !missing; i++)
            if (!reply_came(asks[i]))
                missing = asks[i];
        if (!missing)
            return;
        if (hx_now_ms() >= end) {
            dump_log(fx);
            fail_msg("no reply to %s's conference %s (room %s)", hx_client_jid(missing->who),
                     missing->id, missing->room);
        }
        pump(fx, 5);
    }
}

/* Then pumps a little, and fails if any of them got more than one reply. */
static void assert_each_answered_once(fixture_t *fx, ask_t **asks, guint n)
{
    pump(fx, 300);
    for (guint i = 0; i < n; i++) {
        int count = hx_count_id(asks[i]->who, asks[i]->id);
        if (count != 1)
            fail_msg("%s's request %s got %d replies", hx_client_jid(asks[i]->who),
                     asks[i]->id, count);
    }
}

/* The resource ("focus1") named by a conference result's focusjid, or
 * NULL. */
static const char *focus_of(const ask_t *a)
{
    const char *jid = hx_child_attr(a->reply, "conference", FOCUS_NS, "focusjid");
    if (!jid || !g_str_has_prefix(jid, FOCUS_ACCOUNT "/"))
        return NULL;
    return jid + strlen(FOCUS_ACCOUNT "/");
}

/* A's reply is Jicofo's result, routed back to the participant whole, and
 * Jicofo read the participant's full JID exactly.  Returns the focus
 * resource that answered. */
static const char *assert_conference_result(fixture_t *fx, const ask_t *a)
{
    g_autofree char *text = hx_text(a->reply);
    if (!a->reply || strcmp(xmpp_stanza_get_type(a->reply), "result") != 0)
        fail_msg("%s's conference %s got no result: %s", hx_client_jid(a->who), a->id, text);
    assert_string_equal(xmpp_stanza_get_from(a->reply), HX_DOMAIN);
    assert_string_equal(xmpp_stanza_get_to(a->reply), hx_client_jid(a->who));
    assert_string_equal(xmpp_stanza_get_id(a->reply), a->id);
    const char *ready = hx_child_attr(a->reply, "conference", FOCUS_NS, "ready");
    const char *room = hx_child_attr(a->reply, "conference", FOCUS_NS, "room");
    const char *focus = focus_of(a);
    if (!ready || strcmp(ready, "true") != 0 || !room || strcmp(room, a->room) != 0 || !focus ||
        (strcmp(focus, "focus1") != 0 && strcmp(focus, "focus2") != 0))
        fail_msg("not Jicofo's result for room %s: %s", a->room, text);
    seen_t *s = jicofo_seen(fx->jicofo, a->id, focus);
    if (!s)
        fail_msg("%s answered %s, which it never received", focus, a->id);
    if (!s->sender || strcmp(s->sender, hx_client_jid(a->who)) != 0)
        fail_msg("Jicofo read the sender of %s as %s, not %s", a->id,
                 s->sender ? s->sender : "(nothing)", hx_client_jid(a->who));
    return focus;
}

/* ==== The tests ============================================================== */

/* One participant's conference and logout end to end: Jicofo receives the
 * request with its properties, reads the participant's full JID back from
 * the token (also one whose resource holds '/' and '@'), and its result
 * reaches the participant from the bare domain with the same id. */
static void jitsi__a_participant_gets_its_conference_and_logs_out(void **state)
{
    fixture_t *fx = *state;
    start_proxy(fx, "random", NULL, both_focus);
    hx_client_t *who[] = {participant(fx, "alice", "desk"),
                          participant(fx, "bob", "meet/tab@2")};
    assert_string_equal(hx_client_jid(who[1]), "bob@localhost/meet/tab@2");

    ask_t *asks[2];
    for (int i = 0; i < 2; i++)
        asks[i] = ask_conference(fx, who[i], "lobby");
    wait_replies(fx, asks, 2, REPLY_MS);
    for (int i = 0; i < 2; i++) {
        const char *focus = assert_conference_result(fx, asks[i]);
        /* What Jicofo received: to its own full JID, the payload intact. */
        hx_client_t *fc = strcmp(focus, "focus1") == 0 ? fx->jicofo->focus[0].client
                                                       : fx->jicofo->focus[1].client;
        xmpp_stanza_t *req = NULL;
        for (unsigned k = 0; k < hx_requests_seen(fc) && !req; k++)
            if (g_strcmp0(xmpp_stanza_get_id(hx_request_seen(fc, k)), asks[i]->id) == 0)
                req = hx_request_seen(fc, k);
        assert_non_null(req);
        assert_string_equal(xmpp_stanza_get_to(req), hx_client_jid(fc));
        g_autofree char *from = g_strdup_printf("%s/%s", HX_DOMAIN, hx_client_jid(who[i]));
        assert_string_equal(xmpp_stanza_get_from(req), from);
        xmpp_stanza_t *conf = xmpp_stanza_get_child_by_name_and_ns(req, "conference", FOCUS_NS);
        assert_non_null(conf);
        assert_string_equal(xmpp_stanza_get_attribute(conf, "room"), asks[i]->room);
        g_autofree char *uid =
            g_compute_checksum_for_string(G_CHECKSUM_MD5, hx_client_jid(who[i]), -1);
        assert_string_equal(xmpp_stanza_get_attribute(conf, "machine-uid"), uid);
        unsigned props = 0;
        for (xmpp_stanza_t *p = xmpp_stanza_get_children(conf); p; p = xmpp_stanza_get_next(p))
            props += xmpp_stanza_is_tag(p) && strcmp(xmpp_stanza_get_name(p), "property") == 0;
        assert_int_equal(props, 4);
        assert_string_equal(hx_child_attr(conf, "property", NULL, "name"), "startAudioMuted");
        assert_string_equal(hx_child_attr(conf, "property", NULL, "value"), "9");
    }

    /* The logout: a set Jicofo answers with an empty result. */
    g_autofree char *id = hx_iq_send(
        who[1], HX_DOMAIN, "set", "<logout xmlns='" FOCUS_NS "' session-id='s-4f2a9c'/>");
    xmpp_stanza_t *r = hx_wait_reply(who[1], id, REPLY_MS);
    g_autofree char *text = hx_text(r);
    if (!r || strcmp(xmpp_stanza_get_type(r), "result") != 0)
        fail_msg("the logout got no result: %s", text);
    assert_string_equal(xmpp_stanza_get_from(r), HX_DOMAIN);
    seen_t *s = jicofo_seen(fx->jicofo, id, NULL);
    assert_non_null(s);
    assert_null(s->room);
    assert_string_equal(s->sender, hx_client_jid(who[1]));

    assert_each_answered_once(fx, asks, 2);
    assert_int_equal(hx_count_id(who[1], id), 1);
    assert_jicofo_content(fx->jicofo);
}

/* ---- dispatch sticky by room ------------------------------------------------ */

#define ROOMS 50
#define MAX_MEMBERS 4
#define RESOURCES 6 /* of each account */

typedef struct {
    char name[16];
    hx_client_t *members[MAX_MEMBERS];
    unsigned size;
    const char *focus; /* where its participants went: "focus1" or "focus2" */
} room_t;

/* Whether `client-proxy --check-config` takes [dispatch:sticky] key =
 * VALUE; its stderr into *WHY (g_free it). */
static bool sticky_takes_key(fixture_t *fx, const char *value, char **why)
{
    g_autofree char *extra = g_strdup_printf("\n[dispatch:sticky]\nkey = %s\n", value);
    hx_proxy_opts_t o = {.target = FOCUS_ACCOUNT, .dispatch = "sticky", .extra = extra};
    g_autofree char *path = hx_proxy_write_config(fx->hx, "sticky-key-check.conf", &o);
    char *args[] = {"--check-config", path, NULL};
    g_autofree char *out = NULL;
    int rc = hx_proxy_run(fx->hx, args, &out, why, 10000);
    return rc == 0;
}

/* Every participant of every room asks for its conference; all of a room's
 * must reach the same focus resource, which is stored in room->focus. */
static void place_rooms(fixture_t *fx, room_t *rooms, const char *when)
{
    GPtrArray *asks = g_ptr_array_new();
    for (unsigned r = 0; r < ROOMS; r++)
        for (unsigned k = 0; k < rooms[r].size; k++)
            g_ptr_array_add(asks, ask_conference(fx, rooms[r].members[k], rooms[r].name));
    gint64 t0 = hx_now_ms();
    wait_replies(fx, (ask_t **)asks->pdata, asks->len, REPLY_MS);
    print_message("%s: %u conferences answered in %lld ms\n", when, asks->len,
                  (long long)(hx_now_ms() - t0));
    guint i = 0;
    for (unsigned r = 0; r < ROOMS; r++) {
        rooms[r].focus = NULL;
        for (unsigned k = 0; k < rooms[r].size; k++) {
            ask_t *a = asks->pdata[i++];
            const char *focus = assert_conference_result(fx, a);
            if (rooms[r].focus && strcmp(focus, rooms[r].focus) != 0)
                fail_msg("%s: room %s is split: %s on %s, an earlier participant on %s", when,
                         rooms[r].name, hx_client_jid(a->who), focus, rooms[r].focus);
            rooms[r].focus = focus;
        }
    }
    assert_each_answered_once(fx, (ask_t **)asks->pdata, asks->len);
    g_ptr_array_free(asks, TRUE);
}

/* dispatch sticky keyed by the room: 50 rooms of 3-4 participants each,
 * drawn from six accounts with six resources each (so a participant is in
 * several rooms, and a room has several accounts), each room on one focus
 * resource; when one resource leaves, only its rooms move, all to the one
 * that remains. */
static void jitsi__keeps_each_room_on_one_focus_and_moves_only_the_rooms_of_one_that_leaves(
    void **state)
{
    fixture_t *fx = *state;
    /* Until the branch that adds `key` lands, dispatch-sticky either refuses
     * it or, reading no such option, takes anything. */
    g_autofree char *why_room = NULL, *why_bogus = NULL;
    bool takes_room = sticky_takes_key(fx, "attribute:room", &why_room);
    bool takes_bogus = takes_room && sticky_takes_key(fx, "no-such-kind-of-key", &why_bogus);
    if (!takes_room || takes_bogus) {
        if (!takes_room)
            print_message("skipped: client-proxy --check-config refuses [dispatch:sticky] key = "
                          "attribute:room: %s",
                          why_room);
        else
            print_message("skipped: dispatch-sticky takes [dispatch:sticky] key = "
                          "no-such-kind-of-key as well as attribute:room: it does not read "
                          "`key` yet\n");
        g_clear_pointer(&why_room, g_free);
        g_clear_pointer(&why_bogus, g_free);
        skip();
    }

    start_proxy(fx, "sticky", "\n[dispatch:sticky]\nkey = attribute:room\n", both_focus);
    gint64 t0 = hx_now_ms();
    hx_client_t *pool[RESOURCES][N_ACCOUNTS];
    for (unsigned res = 0; res < RESOURCES; res++) {
        g_autofree char *resource = g_strdup_printf("tab-%u", res);
        one_per_account(fx, resource, pool[res]);
    }
    /* Room r: the accounts from r on, with resource r / 6 (mod 6). */
    room_t *rooms = g_new0(room_t, ROOMS);
    unsigned members = 0;
    for (unsigned r = 0; r < ROOMS; r++) {
        g_snprintf(rooms[r].name, sizeof rooms[r].name, "room-%02u", r);
        rooms[r].size = (unsigned)g_rand_int_range(fx->rand, 3, MAX_MEMBERS + 1);
        for (unsigned k = 0; k < rooms[r].size; k++)
            rooms[r].members[k] = pool[(r / N_ACCOUNTS) % RESOURCES][(r + k) % N_ACCOUNTS];
        members += rooms[r].size;
    }
    print_message("%u participants (%u JIDs, logged in in %lld ms) in %u rooms\n", members,
                  fx->participants->len, (long long)(hx_now_ms() - t0), ROOMS);

    place_rooms(fx, rooms, "first");
    const char *before[ROOMS];
    unsigned on1 = 0;
    for (unsigned r = 0; r < ROOMS; r++) {
        before[r] = rooms[r].focus;
        on1 += strcmp(before[r], "focus1") == 0;
    }
    print_message("focus1 has %u rooms, focus2 %u\n", on1, ROOMS - on1);
    assert_true(on1 > 0 && on1 < ROOMS);

    /* The resource of room-00 leaves. */
    focus_t *leaving = strcmp(before[0], "focus1") == 0 ? &fx->jicofo->focus[0]
                                                        : &fx->jicofo->focus[1];
    const char *remaining = leaving == &fx->jicofo->focus[0] ? "focus2" : "focus1";
    size_t mark = hx_proxy_log_mark(fx->proxy);
    hx_send_presence(leaving->client, "unavailable", NULL, NULL);
    wait_offline(fx, mark, leaving->name, REPLY_MS);

    place_rooms(fx, rooms, "after it left");
    unsigned moved = 0;
    for (unsigned r = 0; r < ROOMS; r++) {
        if (strcmp(before[r], leaving->name) == 0) {
            moved++;
            if (strcmp(rooms[r].focus, remaining) != 0)
                fail_msg("room %s moved from %s to %s", rooms[r].name, before[r], rooms[r].focus);
        } else if (strcmp(rooms[r].focus, before[r]) != 0) {
            fail_msg("room %s of %s moved to %s, though %s stayed", rooms[r].name, before[r],
                     rooms[r].focus, before[r]);
        }
    }
    print_message("%u rooms moved from %s to %s, %u stayed\n", moved, leaving->name, remaining,
                  ROOMS - moved);
    g_free(rooms);
    assert_jicofo_content(fx->jicofo);
}

/* ---- [proxy] hold: Jicofo restarted ------------------------------------------ */

#define RESTART_MS 3000 /* Jicofo is away this long */

/* Every participant gets a conference: the service runs. */
static void warm_up(fixture_t *fx, hx_client_t **who, unsigned n)
{
    ask_t *asks[N_ACCOUNTS];
    for (unsigned i = 0; i < n; i++)
        asks[i] = ask_conference(fx, who[i], "warm-up");
    wait_replies(fx, asks, n, REPLY_MS);
    for (unsigned i = 0; i < n; i++)
        assert_conference_result(fx, asks[i]);
}

/* Both focus resources go away at once (Jicofo's process ends), and
 * client-proxy learns it.  Returns when they began to go. */
static gint64 jicofo_goes_away(fixture_t *fx)
{
    size_t mark = hx_proxy_log_mark(fx->proxy);
    gint64 t0 = hx_now_ms();
    jicofo_kill(&fx->jicofo->focus[0]);
    jicofo_kill(&fx->jicofo->focus[1]);
    wait_offline(fx, mark, "focus1", REPLY_MS);
    wait_offline(fx, mark, "focus2", REPLY_MS);
    return t0;
}

/* While Jicofo is away, participants WHO ask N times, one every 200 ms,
 * into ASKS. */
static void ask_while_away(fixture_t *fx, hx_client_t **who, ask_t **asks, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        g_autofree char *room = g_strdup_printf("restart-%02u", i);
        asks[i] = ask_conference(fx, who[i % N_ACCOUNTS], room);
        pump(fx, 200);
    }
}

/* hold = 10: the requests sent while Jicofo restarts wait for it; the
 * first focus resource back takes them all, in the order they came, and
 * each gets its one result. */
static void jitsi__requests_wait_for_a_restarting_jicofo_with_hold(void **state)
{
    fixture_t *fx = *state;
    start_proxy(fx, "random", "hold = 10\n", both_focus);
    hx_client_t *who[N_ACCOUNTS];
    one_per_account(fx, "web", who);
    warm_up(fx, who, N_ACCOUNTS);

    gint64 down = jicofo_goes_away(fx);
    enum { N = 12 };
    ask_t *asks[N];
    ask_while_away(fx, who, asks, N);
    while (hx_now_ms() < down + RESTART_MS)
        pump(fx, 10);
    for (unsigned i = 0; i < N; i++)
        assert_false(reply_came(asks[i])); /* held, not refused */
    gint64 back = hx_now_ms();
    assert_true(jicofo_restart(&fx->jicofo->focus[0]));

    wait_replies(fx, asks, N, REPLY_MS);
    int arrived_before = -1;
    for (unsigned i = 0; i < N; i++) {
        const char *focus = assert_conference_result(fx, asks[i]);
        assert_string_equal(focus, "focus1");
        int at = jicofo_seen_at(fx->jicofo, asks[i]->id, "focus1");
        if (at < arrived_before)
            fail_msg("request %u reached focus1 before the one sent 200 ms earlier", i);
        arrived_before = at;
    }
    assert_each_answered_once(fx, asks, N);
    print_message("Jicofo away %lld ms; the first request waited %lld ms, the last %lld ms\n",
                  (long long)(back - down), (long long)(asks[0]->replied - asks[0]->sent),
                  (long long)(asks[N - 1]->replied - asks[N - 1]->sent));
    assert_jicofo_content(fx->jicofo);
}

/* hold = 1: the same requests get cancel/service-unavailable, once each,
 * and none before it has waited its second; Jicofo, back later, never sees
 * them, and takes new ones. */
static void jitsi__held_requests_get_service_unavailable_when_the_hold_runs_out(void **state)
{
    fixture_t *fx = *state;
    start_proxy(fx, "random", "hold = 1\n", both_focus);
    hx_client_t *who[N_ACCOUNTS];
    one_per_account(fx, "web", who);
    warm_up(fx, who, N_ACCOUNTS);

    gint64 down = jicofo_goes_away(fx);
    enum { N = 8 };
    ask_t *asks[N];
    ask_while_away(fx, who, asks, N);
    wait_replies(fx, asks, N, REPLY_MS);
    gint64 shortest = G_MAXINT64;
    for (unsigned i = 0; i < N; i++) {
        g_autofree char *text = hx_text(asks[i]->reply);
        g_autofree char *error = hx_error_of(asks[i]->reply);
        if (g_strcmp0(error, "cancel/service-unavailable") != 0 ||
            strcmp(xmpp_stanza_get_type(asks[i]->reply), "error") != 0)
            fail_msg("expected cancel/service-unavailable, got %s", text);
        assert_string_equal(xmpp_stanza_get_from(asks[i]->reply), HX_DOMAIN);
        gint64 waited = asks[i]->replied - asks[i]->sent;
        shortest = MIN(shortest, waited);
        if (waited < 950)
            fail_msg("request %u was refused after %lld ms, before its hold of 1 s ran out", i,
                     (long long)waited);
    }
    print_message("refused after %lld ms at the soonest\n", (long long)shortest);

    while (hx_now_ms() < down + RESTART_MS)
        pump(fx, 10);
    size_t mark = hx_proxy_log_mark(fx->proxy);
    assert_true(jicofo_restart(&fx->jicofo->focus[0]));
    g_autofree char *line = hx_proxy_wait_log(fx->proxy, mark, "focus1 is online", ONLINE_MS);
    assert_non_null(line);
    ask_t *after = ask_conference(fx, who[0], "after-restart");
    wait_replies(fx, &after, 1, REPLY_MS);
    assert_string_equal(assert_conference_result(fx, after), "focus1");

    assert_each_answered_once(fx, asks, N);
    for (unsigned i = 0; i < N; i++)
        assert_null(jicofo_seen(fx->jicofo, asks[i]->id, NULL));
    assert_jicofo_content(fx->jicofo);
}

/* ---- [proxy] discovery = ping ------------------------------------------------ */

#define PING_BOUND_MS (1000 + 1000 + 2000) /* ping_interval + ping_timeout + slack */

static const char ping_lines[] = "discovery = ping\n"
                                 "resources = focus1;focus2\n"
                                 "ping_interval = 1\n"
                                 "ping_timeout = 1\n";

/* The focus account as one that never approved a subscription: its
 * resources answer no `subscribe`, and the subscription that earlier tests
 * of this run approved is removed from its roster. */
static void never_subscribed(fixture_t *fx)
{
    for (int i = 0; i < 2; i++)
        hx_client_set_approves(fx->jicofo->focus[i].client, false);
    hx_client_t *f1 = fx->jicofo->focus[0].client;
    hx_send_xml(f1, "<iq type='set' id='forget-the-proxy'><query xmlns='jabber:iq:roster'>"
                    "<item jid='" HX_DOMAIN "' subscription='remove'/></query></iq>");
    xmpp_stanza_t *r = hx_wait_reply(f1, "forget-the-proxy", REPLY_MS);
    g_autofree char *error = r ? hx_error_of(r) : NULL;
    /* item-not-found: no earlier test subscribed. */
    if (!r || (error && !g_str_has_suffix(error, "/item-not-found"))) {
        g_autofree char *text = hx_text(r);
        fail_msg("the roster item of %s was not removed: %s", HX_DOMAIN, text);
    }
}

/* How many `subscribe` from the proxy domain C received. */
static unsigned subscribes_from_proxy(hx_client_t *c)
{
    unsigned n = 0;
    for (unsigned i = 0; i < hx_received_count(c); i++) {
        xmpp_stanza_t *st = hx_received(c, i);
        const char *from = xmpp_stanza_get_from(st);
        n += strcmp(xmpp_stanza_get_name(st), "presence") == 0 &&
             g_strcmp0(xmpp_stanza_get_type(st), "subscribe") == 0 && from &&
             g_str_has_prefix(from, HX_DOMAIN);
    }
    return n;
}

/* Conferences from WHO, one every INTERVAL_MS, until N were sent; into
 * ASKS. */
static void ask_every(fixture_t *fx, hx_client_t **who, const char *prefix, ask_t **asks,
                      unsigned n, int interval_ms)
{
    for (unsigned i = 0; i < n; i++) {
        g_autofree char *room = g_strdup_printf("%s-%02u", prefix, i);
        asks[i] = ask_conference(fx, who[i % N_ACCOUNTS], room);
        if (interval_ms > 0)
            pump(fx, interval_ms);
    }
}

/* discovery = ping for an account that never approved a subscription:
 * requests are served, and none of the resources hears a `subscribe`.  A
 * focus resource is killed while it is joining rooms: the requests it held
 * get cancel/service-unavailable once each, within ping_interval +
 * ping_timeout (and slack), and from then on the other one takes them
 * all. */
static void jitsi__discovery_by_ping_serves_without_a_subscription_and_drops_a_killed_focus(
    void **state)
{
    fixture_t *fx = *state;
    never_subscribed(fx);
    start_proxy(fx, "random", ping_lines, both_focus);
    hx_client_t *who[N_ACCOUNTS];
    one_per_account(fx, "web", who);
    warm_up(fx, who, N_ACCOUNTS);

    /* focus1 takes its time joining rooms: gather requests in flight on it. */
    focus_t *killed = &fx->jicofo->focus[0];
    killed->behaviour = FOCUS_SLOW;
    killed->join_ms = 8000;
    GPtrArray *held = g_ptr_array_new(), *others = g_ptr_array_new();
    for (unsigned i = 0; held->len < 3 && i < 60; i++) {
        g_autofree char *room = g_strdup_printf("joining-%02u", i);
        ask_t *a = ask_conference(fx, who[i % N_ACCOUNTS], room);
        gint64 end = hx_now_ms() + REPLY_MS;
        while (!jicofo_seen(fx->jicofo, a->id, NULL) && hx_now_ms() < end)
            pump(fx, 5);
        seen_t *s = jicofo_seen(fx->jicofo, a->id, NULL);
        assert_non_null(s);
        g_ptr_array_add(strcmp(s->focus, "focus1") == 0 ? held : others, a);
    }
    assert_int_equal(held->len, 3);

    size_t mark = hx_proxy_log_mark(fx->proxy);
    gint64 t0 = hx_now_ms();
    jicofo_kill(killed);
    wait_replies(fx, (ask_t **)held->pdata, held->len, PING_BOUND_MS + 2000);
    for (guint i = 0; i < held->len; i++) {
        ask_t *a = held->pdata[i];
        g_autofree char *text = hx_text(a->reply);
        g_autofree char *error = hx_error_of(a->reply);
        if (g_strcmp0(error, "cancel/service-unavailable") != 0)
            fail_msg("a request in flight on the killed focus got %s", text);
        if (a->replied - t0 > PING_BOUND_MS)
            fail_msg("its error came %lld ms after the kill", (long long)(a->replied - t0));
    }
    wait_offline(fx, mark, "focus1", 0);
    print_message("focus1 killed: the %u requests it held were answered within %lld ms\n",
                  held->len, (long long)(((ask_t *)held->pdata[held->len - 1])->replied - t0));

    wait_replies(fx, (ask_t **)others->pdata, others->len, REPLY_MS);
    for (guint i = 0; i < others->len; i++)
        assert_string_equal(assert_conference_result(fx, others->pdata[i]), "focus2");
    ask_t *after[12];
    ask_every(fx, who, "after-kill", after, 12, 0);
    wait_replies(fx, after, 12, REPLY_MS);
    for (unsigned i = 0; i < 12; i++)
        assert_string_equal(assert_conference_result(fx, after[i]), "focus2");

    assert_each_answered_once(fx, (ask_t **)held->pdata, held->len);
    assert_each_answered_once(fx, (ask_t **)others->pdata, others->len);
    assert_each_answered_once(fx, after, 12);
    assert_int_equal(subscribes_from_proxy(fx->jicofo->focus[0].client), 0);
    assert_int_equal(subscribes_from_proxy(fx->jicofo->focus[1].client), 0);
    g_ptr_array_free(held, TRUE);
    g_ptr_array_free(others, TRUE);
    assert_jicofo_content(fx->jicofo);
}

/* discovery = ping: a focus resource that hangs (still connected, answering
 * nothing, pings included) gets no request later than ping_interval +
 * ping_timeout (and slack) after it hung; what it held is answered with an
 * error once, within that bound, and everything else with a result. */
static void jitsi__discovery_by_ping_stops_sending_to_a_hung_focus(void **state)
{
    fixture_t *fx = *state;
    never_subscribed(fx);
    start_proxy(fx, "random", ping_lines, both_focus);
    hx_client_t *who[N_ACCOUNTS];
    one_per_account(fx, "web", who);
    warm_up(fx, who, N_ACCOUNTS);

    size_t mark = hx_proxy_log_mark(fx->proxy);
    gint64 t0 = hx_now_ms();
    fx->jicofo->focus[1].behaviour = FOCUS_HUNG;
    enum { N = 90 }; /* one every 50 ms: 4.5 s */
    ask_t *asks[N];
    ask_every(fx, who, "hung", asks, N, 50);
    wait_replies(fx, asks, N, REPLY_MS);

    unsigned on_hung = 0, last_ms = 0;
    for (unsigned i = 0; i < N; i++) {
        seen_t *s = jicofo_seen(fx->jicofo, asks[i]->id, "focus2");
        if (!s) {
            assert_string_equal(assert_conference_result(fx, asks[i]), "focus1");
            continue;
        }
        on_hung++;
        last_ms = (unsigned)(s->at - t0);
        if (s->at - t0 > PING_BOUND_MS)
            fail_msg("the hung focus got request %u %lld ms after it hung", i,
                     (long long)(s->at - t0));
        g_autofree char *text = hx_text(asks[i]->reply);
        g_autofree char *error = hx_error_of(asks[i]->reply);
        if (g_strcmp0(error, "cancel/service-unavailable") != 0)
            fail_msg("a request in flight on the hung focus got %s", text);
        if (asks[i]->replied - t0 > PING_BOUND_MS)
            fail_msg("its error came %lld ms after the focus hung",
                     (long long)(asks[i]->replied - t0));
    }
    g_autofree char *line = hx_proxy_wait_log(fx->proxy, mark, "does not answer its pings", 0);
    print_message("the hung focus got %u requests, the last %u ms after it hung; logged: %s\n",
                  on_hung, last_ms, line ? line : "(nothing)");
    assert_true(on_hung > 0);
    assert_non_null(line);
    assert_non_null(strstr(line, "focus2"));
    assert_each_answered_once(fx, asks, N);
    assert_jicofo_content(fx->jicofo);
}

/* ---- a videobridge on the focus account ---------------------------------------- */

/* A videobridge logged in as focus@auth.localhost/jvb answers conferences
 * with cancel/feature-not-implemented; with dispatch random and no
 * `resources` filter, each request it gets is tried once more elsewhere, so
 * every participant still gets Jicofo's result, and client-proxy warns,
 * naming it. */
static void jitsi__a_videobridge_on_the_focus_account_does_not_fail_a_join(void **state)
{
    fixture_t *fx = *state;
    assert_true(jicofo_add_videobridge(fx->jicofo));
    static const char *const all[] = {"focus1", "focus2", "jvb", NULL};
    start_proxy(fx, "random", NULL, all);
    hx_client_t *who[N_ACCOUNTS];
    one_per_account(fx, "web", who);

    enum { N = 30 };
    ask_t *asks[N];
    ask_every(fx, who, "bridge", asks, N, 0);
    wait_replies(fx, asks, N, REPLY_MS);
    for (unsigned i = 0; i < N; i++)
        assert_conference_result(fx, asks[i]);
    assert_each_answered_once(fx, asks, N);

    g_autofree char *line =
        hx_proxy_wait_log(fx->proxy, 0, FOCUS_ACCOUNT "/jvb did not process", 0);
    print_message("the videobridge refused %u of %u; logged: %s\n", fx->jicofo->jvb_conferences,
                  N, line ? line : "(nothing)");
    assert_true(fx->jicofo->jvb_conferences > 0);
    if (!line) {
        dump_log(fx);
        fail_msg("no warning names %s/jvb", FOCUS_ACCOUNT);
    }
    assert_jicofo_content(fx->jicofo);
}

/* ==== The run ================================================================ */

/* The run's Prosody, with VirtualHost auth.localhost and focus@ on it, and
 * the participants' accounts. */
static int group_setup(void **state)
{
    const char *env = g_getenv("JITSI_SEED");
    seed = env && *env ? (guint32)strtoul(env, NULL, 10) : g_random_int();
    print_message("seed %u (JITSI_SEED=%u replays it)\n", seed, seed);
    if (!g_file_test(hx_proxy_bin(), G_FILE_TEST_IS_EXECUTABLE)) {
        fprintf(stderr, "CLIENT_PROXY_BIN (%s) is not an executable\n", hx_proxy_bin());
        return -1;
    }
    hx_t *hx = hx_new();
    *state = hx;
    hx_prosody_t *prosody = hx_prosody_new(hx);
    hx_prosody_add_host(prosody, FOCUS_HOST);
    hx_prosody_add_account_at(prosody, "focus", FOCUS_HOST);
    for (unsigned i = 0; i < N_ACCOUNTS; i++)
        hx_prosody_add_account(prosody, accounts[i]);
    return hx_prosody_start(prosody) ? 0 : -1;
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(jitsi__a_participant_gets_its_conference_and_logs_out),
        T(jitsi__keeps_each_room_on_one_focus_and_moves_only_the_rooms_of_one_that_leaves),
        T(jitsi__requests_wait_for_a_restarting_jicofo_with_hold),
        T(jitsi__held_requests_get_service_unavailable_when_the_hold_runs_out),
        T(jitsi__discovery_by_ping_serves_without_a_subscription_and_drops_a_killed_focus),
        T(jitsi__discovery_by_ping_stops_sending_to_a_hung_focus),
        T(jitsi__a_videobridge_on_the_focus_account_does_not_fail_a_join),
    };
#undef T
    return cmocka_run_group_tests_name("jitsi", tests, group_setup, hx_group_teardown);
}
