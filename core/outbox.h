/* Everything client-proxy sends goes through the outbox: the send seam
 * (the function given at creation, which unit tests replace), and what is
 * held while the stream is down, sent in order once it is up again.
 *
 * Nothing given to the outbox is lost while the process runs: a stanza is
 * either handed to a live stream, or held.  Bytes a dying stream could not
 * write come back with outbox_down(). */
#ifndef CP_CORE_OUTBOX_H
#define CP_CORE_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>

#include <glib.h>

/* Sends LENGTH bytes of BYTES: one or more whole stanzas, borrowed for the
 * call. */
typedef void (*outbox_send_fn)(const char *bytes, size_t length, void *userdata);

typedef struct outbox outbox_t;

/* SEND and USERDATA are kept.  The outbox starts down: it holds. */
outbox_t *outbox_new(outbox_send_fn send, void *userdata);
/* Frees what is still held; logs how much could never be sent. */
void outbox_free(outbox_t *outbox);

/* Sends LENGTH bytes of BYTES (whole stanzas, copied if held). */
void outbox_send(outbox_t *outbox, const char *bytes, size_t length);

/* Sends OUT's contents and empties it: the common case of a stanza just
 * written into a scratch buffer. */
void outbox_send_string(outbox_t *outbox, GString *out);

/* The stream is up: what was held goes out first, in order. */
void outbox_up(outbox_t *outbox);

/* The stream is down or closing: hold from now on.  UNSENT (LENGTH bytes,
 * whole stanzas, borrowed; may be NULL) are stanzas handed to the stream
 * that it never wrote: they are held again, before anything held later. */
void outbox_down(outbox_t *outbox, const char *unsent, size_t length);

bool outbox_is_up(const outbox_t *outbox);

/* Stanza batches held, for logs and tests. */
size_t outbox_held_count(const outbox_t *outbox);

#endif
