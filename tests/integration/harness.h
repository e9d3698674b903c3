/* Integration-test harness: a real Prosody, a real client-proxy, and test
 * XMPP clients, all children or guests of the test process.
 *
 * Everything lives in one temporary directory made by hx_init().  Prosody and
 * client-proxy are started as children that die with the test process
 * (PR_SET_PDEATHSIG); they are stopped and the directory removed by
 * hx_cleanup(), which also runs from atexit() and from a SIGTERM/SIGINT
 * handler (meson kills a timed-out test with SIGTERM).
 *
 * A test may use ejabberd instead of Prosody (hx_ejabberd_start()): it runs
 * as the `ejabberd` user, so it is no child that PR_SET_PDEATHSIG could
 * reach; hx_cleanup() and the signal handler stop it by pid, and a watchdog
 * process kills it and removes the directory if the test process dies
 * without cleaning up (SIGKILL, abort).
 *
 * Test clients are libstrophe client connections on one shared xmpp_ctx.
 * The harness pumps it with xmpp_run_once() from its wait helpers only,
 * never from inside a libstrophe callback.  Every stanza a client receives
 * is recorded, so a test can ask afterwards what arrived.
 *
 * Ownership: functions returning xmpp_stanza_t * return a stanza recorded by
 * the harness; it stays valid until the client is freed.  Do not release it.
 */
#ifndef HX_HARNESS_H
#define HX_HARNESS_H

#include <stdbool.h>
#include <sys/types.h>

#include <glib.h>
#include <strophe.h>

#define HX_DOMAIN "proxy.localhost"
#define HX_SECRET "s3cret"
#define HX_TARGET "service@localhost"
#define HX_PASSWORD "pw"
#define HX_ECHO_NS "urn:example:echo"

/* ---- the run: temporary directory and cleanup ---------------------------- */

/** Makes the temporary directory and installs the cleanup handlers.  Safe to
 *  call more than once.  Returns the directory. */
const char *hx_init(void);
/** Stops every child, disconnects every client, removes the directory. */
void hx_cleanup(void);
/** cmocka group fixtures for tests that share one Prosody: the first starts
 *  it, the second runs hx_cleanup().  STATE is unused. */
int hx_group_start_prosody(void **state);
int hx_group_cleanup(void **state);
/** The temporary directory (NULL before hx_init()). */
const char *hx_dir(void);
/** The shared libstrophe context the harness pumps. */
xmpp_ctx_t *hx_ctx(void);

/* ---- Prosody -------------------------------------------------------------- */

/** Writes the config and the accounts (service, alice, bob, all with
 *  HX_PASSWORD), picks free ports, starts Prosody and waits until both ports
 *  accept connections.  Returns false (with a message on stderr) on failure. */
bool hx_prosody_start(void);
/** SIGTERM, wait, SIGKILL after a bound.  The data stays. */
void hx_prosody_stop(void);
/** Stop, then start again on the same ports with the same data. */
bool hx_prosody_restart(void);
int hx_c2s_port(void);
int hx_component_port(void);
pid_t hx_prosody_pid(void);
/** Adds account NODE@localhost (password HX_PASSWORD) to those written by
 *  hx_prosody_start().  Call it before hx_prosody_start() (or while Prosody
 *  is stopped). */
void hx_prosody_add_account(const char *node);

/* ---- ejabberd ------------------------------------------------------------- */

/* A private ejabberd (Debian's `ejabberd` package) on free 127.0.0.1 ports,
 * with its config, Mnesia spool and logs in DIR/ejabberd.  Its Erlang
 * distribution listens on a free port of its own (ERL_DIST_PORT), so no epmd
 * is started or used.  ejabberdctl must run as root (it switches to the
 * `ejabberd` user) or as `ejabberd`. */

#define HX_EJABBERD_MAX_COMPONENTS 4

typedef struct {
    /* Component listeners (ejabberd_service), each on its own port: 0 means
     * 1, at most HX_EJABBERD_MAX_COMPONENTS. */
    int components;
    const char *domain; /* served on every listener; default HX_DOMAIN */
    const char *secret; /* of every host; default HX_SECRET */
    /* Listener I also serves instance_domains[I] (client-proxy's
     * [component] instance_domain): NULL means "i<I+1>.<domain>", "" none. */
    const char *instance_domains[HX_EJABBERD_MAX_COMPONENTS];
} hx_ejabberd_opts_t;

/** NULL when ejabberd can be started here; else why not (ejabberdctl not
 *  installed, no `ejabberd` user, not running as root or `ejabberd`): a
 *  test then skips.  The string is static. */
const char *hx_ejabberd_missing(void);
/** Writes the config, picks free ports, starts ejabberd, waits until it has
 *  started and every port accepts, and registers the accounts (service,
 *  alice, bob and those of hx_ejabberd_add_account(), password HX_PASSWORD).
 *  OPTS (may be NULL) count at the first start only: later starts keep the
 *  config, ports and data.  About 3 s.  Returns false (with a message on
 *  stderr) on failure.  Test clients connect to it unless Prosody was
 *  started (hx_client_port()). */
bool hx_ejabberd_start(const hx_ejabberd_opts_t *opts);
/** SIGTERM to ejabberd (SIGKILL after a bound), waits until it is gone.
 *  The data stays. */
void hx_ejabberd_stop(void);
/** Stop, then start again on the same ports with the same data. */
bool hx_ejabberd_restart(void);
bool hx_ejabberd_running(void);
int hx_ejabberd_c2s_port(void);
/** Port of component listener I (0-based), or 0. */
int hx_ejabberd_component_port(int i);
/** The instance domain listener I serves besides the shared one, or NULL. */
const char *hx_ejabberd_instance_domain(int i);
/** The Erlang VM's pid (beam.smp, owned by `ejabberd`), or 0. */
pid_t hx_ejabberd_pid(void);
/** Account NODE@localhost with HX_PASSWORD: registered at once (ejabberdctl
 *  register) when ejabberd runs, else at its start.  False on failure. */
bool hx_ejabberd_add_account(const char *node);
/** ejabberd's console output so far (g_free it). */
char *hx_ejabberd_log(void);

/* ---- client-proxy --------------------------------------------------------- */

/* The harness runs up to HX_MAX_PROXIES client-proxy processes at once, by
 * index.  The functions without _at act on index 0. */
#define HX_MAX_PROXIES 4

typedef struct {
    const char *domain;    /* default HX_DOMAIN */
    /* [component] instance_domain, written only when not NULL */
    const char *instance_domain;
    const char *secret;    /* default HX_SECRET */
    int port;              /* default hx_component_port() (Prosody's), or
                              ejabberd's first component port */
    const char *target;    /* default HX_TARGET */
    const char *dispatch;  /* default "random" */
    const char *encoding;  /* default "raw" */
    int request_timeout;   /* default 2 */
    const char *extra;     /* appended verbatim to the config, or NULL */
} hx_proxy_opts_t;

/** Path of the client-proxy binary (env CLIENT_PROXY_BIN). */
const char *hx_proxy_bin(void);
/** Writes DIR/NAME containing TEXT with MODE; returns the path (g_free it). */
char *hx_write_file(const char *name, const char *text, int mode);
/** Writes a config file from OPTS into the temporary directory; returns its
 *  path (g_free it). */
char *hx_proxy_write_config(const char *name, const hx_proxy_opts_t *opts);
/** Starts `client-proxy --config FILE` with stdout and stderr to files in
 *  the temporary directory, as index 0 (stopping the one running there).
 *
 *  With env CLIENT_PROXY_WRAPPER set (an argv prefix, split like a shell
 *  would, e.g. "valgrind --error-exitcode=99 -q ..."), runs it under that
 *  wrapper: the pid is the wrapper's (valgrind keeps the pid), its reports go
 *  to client-proxy's stderr file unless told otherwise, and hx_proxy_stop()
 *  waits longer before SIGKILL (HX_WRAPPED_STOP_MS) for its exit checks. */
pid_t hx_proxy_start(const hx_proxy_opts_t *opts);
/** The running client-proxy's pid (the wrapper's, if any), or 0. */
pid_t hx_proxy_pid(void);
/** The argv prefix from CLIENT_PROXY_WRAPPER, or NULL when unset
 *  (NULL-terminated, owned by the harness). */
char *const *hx_proxy_wrapper(void);
/** Checks a client-proxy stderr text for reports of a memory error or leak:
 *  AddressSanitizer/UBSan ("Sanitizer", "runtime error:") and valgrind
 *  ("ERROR SUMMARY: N" with N > 0, "definitely lost", "indirectly lost",
 *  "Invalid read/write/free", "uninitialised", "Mismatched free").  Returns
 *  the first offending line (g_free it), or NULL when clean. */
char *hx_memcheck_report(const char *log);
/** Rewrites the running client-proxy's config file from OPTS (to reload
 *  it, send SIGHUP afterwards). */
void hx_proxy_rewrite_config(const hx_proxy_opts_t *opts);
/** Everything it wrote to stderr so far (g_free it). */
char *hx_proxy_log(void);
/** Length of the log now, to wait for lines written after this point. */
size_t hx_proxy_log_mark(void);
/** Pumps the clients until the log after MARK contains NEEDLE (case
 *  insensitive); returns the matching line (g_free it) or NULL on timeout. */
char *hx_proxy_wait_log(size_t mark, const char *needle, int timeout_ms);
void hx_proxy_signal(int sig);
/** Pumps the clients until client-proxy exits; returns its wait status, or
 *  -1 on timeout (it is then still running). */
int hx_proxy_wait_exit(int timeout_ms);
/** SIGTERM, then SIGKILL after a bound.  Returns the wait status. */
int hx_proxy_stop(void);
bool hx_proxy_running(void);

/* The same for client-proxy number I (0 <= I < HX_MAX_PROXIES); each has its
 * own config file, log and pid.  hx_proxy_start_at() stops the one running
 * at I first, and leaves the others alone. */
pid_t hx_proxy_start_at(int i, const hx_proxy_opts_t *opts);
pid_t hx_proxy_pid_at(int i);
void hx_proxy_rewrite_config_at(int i, const hx_proxy_opts_t *opts);
char *hx_proxy_log_at(int i);
size_t hx_proxy_log_mark_at(int i);
char *hx_proxy_wait_log_at(int i, size_t mark, const char *needle,
                           int timeout_ms);
/** How many lines of the log after MARK contain NEEDLE (case insensitive). */
unsigned hx_proxy_log_count_at(int i, size_t mark, const char *needle);
void hx_proxy_signal_at(int i, int sig);
int hx_proxy_wait_exit_at(int i, int timeout_ms);
int hx_proxy_stop_at(int i);
bool hx_proxy_running_at(int i);

/** Starts a helper program (an example, say) with stdout and stderr to
 *  OUT_PATH; it dies with the test process and is killed by hx_cleanup(). */
pid_t hx_spawn(char *const argv[], const char *out_path);
/** Pumps until the helper PID exits; returns its wait status, or -1 (then
 *  it has been killed) if it did not exit within timeout_ms of SIGTERM. */
int hx_spawn_stop(pid_t pid, int timeout_ms);

/** Runs a command to completion with stdout/stderr captured; returns the exit
 *  code (or -1 if it died by a signal or did not end within timeout_ms). */
int hx_run(char *const argv[], char **out, char **err, int timeout_ms);
/** hx_run() of `client-proxy ARGS...` (ARGS NULL-terminated, without the
 *  program), under CLIENT_PROXY_WRAPPER if set. */
int hx_proxy_run(char *const args[], char **out, char **err, int timeout_ms);

/* ---- test XMPP clients ---------------------------------------------------- */

typedef enum {
    HX_ANSWER,  /* a worker answers IQ get/set at once, like the example */
    HX_HOLD,    /* a worker keeps IQ get/set for the test to answer */
} hx_mode_t;

typedef struct hx_client hx_client_t;

/** The c2s port hx_client_connect() uses: the one set with
 *  hx_client_use_port(), else Prosody's once hx_prosody_start() picked its
 *  ports, else ejabberd's.  A client reconnects to the port it first used. */
int hx_client_port(void);
/** Makes hx_client_connect() use PORT (0: back to the default above). */
void hx_client_use_port(int port);

/** Connects NODE@localhost/RESOURCE and waits for the session.  A worker
 *  (an implementing-client resource) also fetches its roster, approves
 *  `subscribe` with `subscribed`, sends available presence, and handles IQ
 *  get/set according to its mode.  Returns NULL on failure. */
hx_client_t *hx_client_connect(const char *node, const char *resource,
                               bool worker);
/** Disconnects (if connected) and frees. */
void hx_client_free(hx_client_t *c);
/** Disconnects and waits until libstrophe reports it. */
void hx_client_disconnect(hx_client_t *c);
/** Connects again after a disconnect (same JID), waits for the session. */
bool hx_client_reconnect(hx_client_t *c);
bool hx_client_connected(const hx_client_t *c);
/** The bound full JID. */
const char *hx_client_jid(const hx_client_t *c);
const char *hx_client_resource(const hx_client_t *c);
void hx_client_set_mode(hx_client_t *c, hx_mode_t mode);

/** Sends a stanza given as XML text (parsed with xmpp_stanza_new_from_string). */
void hx_send_xml(hx_client_t *c, const char *xml);
void hx_send(hx_client_t *c, xmpp_stanza_t *stanza);
/** Sends <presence/> with TYPE (NULL for available) and SHOW (or NULL), to
 *  TO (NULL: broadcast). */
void hx_send_presence(hx_client_t *c, const char *type, const char *show,
                      const char *to);

/* The text of the <echo xmlns=HX_ECHO_NS/> element of IQ (borrowed from
 * IQ), or NULL. */
const char *hx_echo_text(xmpp_stanza_t *iq);

/** Sends an IQ of TYPE to TO with PAYLOAD_XML (or NULL) as its only child.
 *  Returns its id (g_free it). */
char *hx_iq_send(hx_client_t *c, const char *to, const char *type,
                 const char *payload_xml);
/** Pumps until C received a result/error IQ with ID; NULL on timeout. */
xmpp_stanza_t *hx_wait_reply(hx_client_t *c, const char *id, int timeout_ms);
/** Sends and waits, in one. */
xmpp_stanza_t *hx_iq(hx_client_t *c, const char *to, const char *type,
                     const char *payload_xml, int timeout_ms);
/** How many stanzas C received with ID (of any kind). */
int hx_count_id(hx_client_t *c, const char *id);
/** Number of stanzas received so far; use as a mark for hx_received_since. */
unsigned hx_received_count(hx_client_t *c);
xmpp_stanza_t *hx_received(hx_client_t *c, unsigned i);
/** Pumps until C received, at index >= MARK, a stanza with element NAME and
 *  TYPE (NULL: none/any, "available": no type attribute), from a JID
 *  starting with FROM_PREFIX (NULL: any).  NULL on timeout. */
xmpp_stanza_t *hx_wait_stanza(hx_client_t *c, unsigned mark, const char *name,
                              const char *type, const char *from_prefix,
                              int timeout_ms);

/** Worker: pumps until any of WORKERS (NULL-terminated) holds a request not
 *  yet taken; returns it and stores its holder in *HOLDER.  The request is
 *  removed from the holder's queue (still owned by the holder). */
xmpp_stanza_t *hx_take_request(hx_client_t **workers, hx_client_t **holder,
                               int timeout_ms);
/** Worker: how many IQ get/set it received in total. */
unsigned hx_requests_seen(hx_client_t *c);
xmpp_stanza_t *hx_request_seen(hx_client_t *c, unsigned i);
/** Worker: answers REQ the way the example does (echo + handled-by).  If
 *  TO_OVERRIDE is not NULL the reply's `to` is set to it. */
void hx_answer(hx_client_t *c, xmpp_stanza_t *req, const char *to_override);

/** Pumps the shared context for MS milliseconds. */
void hx_pump(int ms);
/** Pumps until PRED(ARG) is true; false on timeout. */
bool hx_pump_until(bool (*pred)(void *), void *arg, int timeout_ms);

/* ---- stanza helpers ------------------------------------------------------- */

/** "error type/condition" of an error stanza, e.g. "cancel/service-unavailable"
 *  (g_free it); NULL if it has no <error/>. */
char *hx_error_of(xmpp_stanza_t *st);
/** The stanza as text (g_free it), for messages. */
char *hx_text(xmpp_stanza_t *st);
/** Attribute of the first child named NAME in namespace NS, or NULL. */
const char *hx_child_attr(xmpp_stanza_t *st, const char *name, const char *ns,
                          const char *attr);
/** Monotonic milliseconds. */
gint64 hx_now_ms(void);

#endif
