/* The fixture that the forward, dispatch, routing and lifecycle tests share.
 *
 * A suite is one test file's run: one Prosody for all its tests, and the
 * encoding and dispatch plugin its client-proxy uses (a file parametrised by
 * encoding or dispatch name takes them from argv).  Each test gets the suite
 * in its cmocka state (PX_TEST() hands it over); its setup makes a fixture:
 * the target's two resources service@localhost/worker-1 and /worker-2
 * inside this process, the users alice and bob, and a client-proxy that
 * already forwards to both workers.  The teardown stops that client-proxy,
 * checks that it shut down cleanly, and frees the clients.  What a test
 * starts beyond that goes into the fixture too (fx->other, fx->proxy), so
 * that a failed test leaves nothing for the next one.
 *
 * CLIENT_PROXY_BIN and CLIENT_PROXY_PLUGIN_PATH come from meson.
 */
#ifndef PX_PROXY_FIXTURE_H
#define PX_PROXY_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "harness.h"

#define PX_TIMEOUT_S 2       /* request_timeout for most tests */
#define PX_LONG_TIMEOUT_S 10 /* where a reply must come well before it */
#define PX_REPLY_MS 10000    /* how long to wait for a reply that must come */

typedef struct {
    const char *encoding; /* [proxy] encoding (borrowed) */
    const char *dispatch; /* [proxy] dispatch (borrowed) */
    const char *proxy_lines; /* more [proxy] lines ("key = value\n"), or NULL */
    hx_t *hx;             /* the run and its Prosody: px_suite_start() */
} px_suite_t;

typedef struct {
    px_suite_t *suite; /* borrowed */
    hx_t *hx;          /* the suite's run (borrowed) */
    hx_client_t *w1, *w2; /* service@localhost/worker-1, /worker-2, or NULL */
    hx_client_t *alice, *bob;
    hx_client_t *workers[3]; /* w1, w2, NULL */
    hx_client_t *other;      /* one more client a test may connect */
    hx_proxy_t *proxy;       /* the test's client-proxy, or NULL */
} px_fixture_t;

/** Starts the suite's run and its Prosody.  False (with a message on
 *  stderr) on failure. */
bool px_suite_start(px_suite_t *suite);
/** Stops and frees the run. */
void px_suite_stop(px_suite_t *suite);

/* Test F with the fixture: two workers, alice and bob, and a client-proxy
 * with request_timeout PX_TIMEOUT_S (_LONG: PX_LONG_TIMEOUT_S).  _USERS:
 * alice and bob only, and client-proxy.  _BARE: no client, no client-proxy
 * (the test starts its own into fx->proxy; the teardown checks it). */
#define PX_TEST(f, suite) cmocka_unit_test_prestate_setup_teardown(f, px_setup, px_teardown, suite)
#define PX_TEST_LONG(f, suite) \
    cmocka_unit_test_prestate_setup_teardown(f, px_setup_long, px_teardown, suite)
#define PX_TEST_USERS(f, suite) \
    cmocka_unit_test_prestate_setup_teardown(f, px_setup_users, px_teardown, suite)
#define PX_TEST_BARE(f, suite) \
    cmocka_unit_test_prestate_setup_teardown(f, px_setup_bare, px_teardown, suite)

/* cmocka fixtures: *STATE is the suite before setup, the fixture after. */
int px_setup(void **state);
int px_setup_long(void **state);
int px_setup_users(void **state);
int px_setup_bare(void **state);
int px_teardown(void **state);

/* ---- client-proxy --------------------------------------------------------- */

/** Starts fx->proxy with the suite's encoding and dispatch (and a key file
 *  for the keyed encodings) and REQUEST_TIMEOUT, and waits until it
 *  forwards to both workers, if there are any.  Returns 0, or -1 with the
 *  reason on stderr. */
int px_start_proxy(px_fixture_t *fx, int request_timeout);
/** Stops fx->proxy and checks that it shut down cleanly: exit 0 on SIGTERM
 *  (if it still ran), and no sanitizer or valgrind report in its log.
 *  Returns 0, or -1 with its log on stderr.  0 when there is none. */
int px_stop_proxy_checked(px_fixture_t *fx);
/** Prints fx->proxy's stderr, for a failure message. */
void px_dump_log(px_fixture_t *fx);
/** Waits until client-proxy forwards to every worker in WORKERS
 *  (NULL-terminated, all in HX_ANSWER mode): it is connected and knows
 *  those resources.  USER sends the pings that find out. */
bool px_wait_ready(px_fixture_t *fx, hx_client_t *user, hx_client_t **workers,
                   int timeout_ms);

/* ---- requests and replies ------------------------------------------------- */

/** An echo payload carrying TEXT, with a nested element (g_free it). */
char *px_echo_payload(const char *text);
/** Fails the test unless ST is an error stanza with condition EXPECTED
 *  ("type/condition"). */
void px_assert_error(xmpp_stanza_t *st, const char *expected);
/** Both workers hold requests for the test to answer. */
void px_hold_all(px_fixture_t *fx);
/** One request from USER of TYPE to TO, forwarded and answered; checks both
 *  legs and that exactly one reply came.  Returns the token the worker saw
 *  (g_free it). */
char *px_forward_once(px_fixture_t *fx, hx_client_t *user, const char *type, const char *to,
                      const char *text);
/** FROM answers REQ with `to` = TO (NULL: REQ's sender); the answer must be
 *  dropped with a log line, which is returned (g_free it). */
char *px_expect_dropped(px_fixture_t *fx, hx_client_t *from, xmpp_stanza_t *req, const char *to);

/* ---- checks that the forward and dispatch tests both run ------------------ */

/** gets and sets from alice and bob, to the bare domain and to a resource of
 *  it, each answered once; the token hides the user's JID unless the
 *  encoding is raw. */
void px_check_forwarding(px_fixture_t *fx);
/** The resource holding a set disconnects (DISCONNECT) or goes unavailable:
 *  cancel/service-unavailable at once, not after request_timeout (a set may
 *  not be idempotent: no retry). */
void px_check_set_fails_when_its_resource_leaves(px_fixture_t *fx, bool disconnect);
/** Replies with the right token and id from the other resource of the
 *  target and from a user are dropped; the request times out. */
void px_check_wrong_sender_dropped(px_fixture_t *fx);

#endif
