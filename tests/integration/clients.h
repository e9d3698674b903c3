/* Test XMPP clients: libstrophe client connections on the run's context
 * (run.h), users and implementing-client resources ("workers") whose
 * answers the test controls.
 *
 * The harness pumps the context with xmpp_run_once() from its wait
 * functions only, never from inside a libstrophe callback.  Every stanza a
 * client receives is recorded, so a test can ask afterwards what arrived.
 *
 * Ownership: functions returning xmpp_stanza_t * return a stanza recorded
 * by the harness; it stays valid until its client is freed.  Do not
 * release it.
 */
#ifndef HX_CLIENTS_H
#define HX_CLIENTS_H

#include <stdbool.h>

#include <glib.h>
#include <strophe.h>

#include "run.h"

typedef enum {
    HX_ANSWER, /* a worker answers IQ get/set at once, like the example */
    HX_HOLD,   /* a worker keeps IQ get/set for the test to answer */
} hx_mode_t;

typedef struct hx_client hx_client_t;

/* ---- pumping -------------------------------------------------------------- */

/** Pumps HX's context for MS milliseconds. */
void hx_pump(hx_t *hx, int ms);
/** Pumps until PRED(ARG) is true; false on timeout. */
bool hx_pump_until(hx_t *hx, bool (*pred)(void *), void *arg, int timeout_ms);

/* ---- connections ---------------------------------------------------------- */

/** Connects NODE@localhost/RESOURCE (both copied) to the run's server
 *  (hx_c2s_port()) and waits for the session.  A worker (an implementing-client resource) also
 *  fetches its roster, approves `subscribe` with `subscribed`, sends
 *  available presence, and handles IQ get/set according to its mode
 *  (HX_ANSWER at first).  Returns a new client (hx_client_free() it; else
 *  hx_free() does), or NULL on failure. */
hx_client_t *hx_client_connect(hx_t *hx, const char *node, const char *resource,
                               bool worker);
/** hx_client_connect() for NODE@HOST/RESOURCE, HOST being a host of the
 *  run's Prosody (prosody.h, hx_prosody_add_host()).  A worker takes the
 *  roster pushes of HOST, not of localhost, as its server's. */
hx_client_t *hx_client_connect_at(hx_t *hx, const char *node, const char *host,
                                  const char *resource, bool worker);
/** Disconnects (if connected) and frees C with what it recorded.  NULL is
 *  allowed. */
void hx_client_free(hx_client_t *c);
/** Disconnects and waits until libstrophe reports it. */
void hx_client_disconnect(hx_client_t *c);
/** Connects again after a disconnect (same JID, same port), waits for the
 *  session. */
bool hx_client_reconnect(hx_client_t *c);
bool hx_client_connected(const hx_client_t *c);
/** The bound full JID (owned by C). */
const char *hx_client_jid(const hx_client_t *c);
/** The resource it asked for (owned by C). */
const char *hx_client_resource(const hx_client_t *c);
void hx_client_set_mode(hx_client_t *c, hx_mode_t mode);

/** What a worker does with each IQ get/set instead of its mode, while set:
 *  FN(C, REQ, ARG), called from inside the pump (it may send, it must not
 *  pump).  REQ is recorded (hx_request_seen()) and owned by C.  Roster
 *  pushes from its own server are acknowledged as before.  FN NULL: the
 *  mode decides again. */
typedef void (*hx_request_fn)(hx_client_t *c, xmpp_stanza_t *req, void *arg);
void hx_client_set_handler(hx_client_t *c, hx_request_fn fn, void *arg);
/** Whether a worker answers `subscribe` with `subscribed` (true at first).
 *  False: it records a `subscribe` and answers nothing, like an account
 *  that never approves client-proxy's subscription. */
void hx_client_set_approves(hx_client_t *c, bool approves);

/* ---- sending -------------------------------------------------------------- */

/** Sends a stanza given as XML text (parsed with
 *  xmpp_stanza_new_from_string; aborts if it does not parse). */
void hx_send_xml(hx_client_t *c, const char *xml);
/** Sends STANZA (still the caller's). */
void hx_send(hx_client_t *c, xmpp_stanza_t *stanza);
/** Sends <presence/> with TYPE (NULL for available) and SHOW (or NULL), to
 *  TO (NULL: broadcast). */
void hx_send_presence(hx_client_t *c, const char *type, const char *show, const char *to);
/** Sends an IQ of TYPE to TO with PAYLOAD_XML (or NULL) as its only child.
 *  Returns its id (g_free it). */
char *hx_iq_send(hx_client_t *c, const char *to, const char *type, const char *payload_xml);

/* ---- what arrived --------------------------------------------------------- */

/** Pumps until C received a result/error IQ with ID; NULL on timeout. */
xmpp_stanza_t *hx_wait_reply(hx_client_t *c, const char *id, int timeout_ms);
/** Sends and waits, in one. */
xmpp_stanza_t *hx_iq(hx_client_t *c, const char *to, const char *type,
                     const char *payload_xml, int timeout_ms);
/** How many stanzas C received with ID (of any kind). */
int hx_count_id(hx_client_t *c, const char *id);
/** Number of stanzas received so far; a mark for hx_wait_stanza(). */
unsigned hx_received_count(hx_client_t *c);
/** Stanza I received (from 0), or NULL. */
xmpp_stanza_t *hx_received(hx_client_t *c, unsigned i);
/** Pumps until C received, at index >= MARK, a stanza with element NAME and
 *  TYPE (NULL: none/any, "available": no type attribute), from a JID
 *  starting with FROM_PREFIX (NULL: any).  NULL on timeout. */
xmpp_stanza_t *hx_wait_stanza(hx_client_t *c, unsigned mark, const char *name,
                              const char *type, const char *from_prefix, int timeout_ms);

/* ---- workers -------------------------------------------------------------- */

/** Pumps until any of WORKERS (NULL-terminated, of one run) holds a request
 *  not yet taken; returns it and stores its holder in *HOLDER (if not
 *  NULL).  The request leaves the holder's queue; the holder still owns
 *  it. */
xmpp_stanza_t *hx_take_request(hx_client_t **workers, hx_client_t **holder, int timeout_ms);
/** How many IQ get/set worker C received in total. */
unsigned hx_requests_seen(hx_client_t *c);
/** Request I that worker C received (from 0), or NULL. */
xmpp_stanza_t *hx_request_seen(hx_client_t *c, unsigned i);
/** Answers REQ from C the way the example does (echo + handled-by).  If
 *  TO_OVERRIDE is not NULL the reply's `to` is set to it. */
void hx_answer(hx_client_t *c, xmpp_stanza_t *req, const char *to_override);

/* ---- stanza helpers ------------------------------------------------------- */

/** The text of the <echo xmlns=HX_ECHO_NS/> element of IQ (borrowed from
 *  IQ), or NULL. */
const char *hx_echo_text(xmpp_stanza_t *iq);
/** "error type/condition" of an error stanza, e.g.
 *  "cancel/service-unavailable" (g_free it); NULL if it has no <error/>. */
char *hx_error_of(xmpp_stanza_t *st);
/** The stanza as text (g_free it), for messages; "(none)" for NULL. */
char *hx_text(xmpp_stanza_t *st);
/** Attribute ATTR of the first descendant named NAME in namespace NS (NULL:
 *  any), borrowed from ST, or NULL. */
const char *hx_child_attr(xmpp_stanza_t *st, const char *name, const char *ns,
                          const char *attr);

#endif
