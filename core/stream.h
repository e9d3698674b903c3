/* The server's side of a XEP-0114 component stream, parsed with expat: the
 * stream header, the handshake's answer, stream errors, and stanzas handed
 * over as wire_stanza_t.  No sockets here: connection.c feeds the bytes, and
 * tests and fuzzers feed their own. */
#ifndef CP_CORE_STREAM_H
#define CP_CORE_STREAM_H

#include <stdbool.h>
#include <stddef.h>

#include "wire.h"

#define XMPP_NS_STREAMS "http://etherx.jabber.org/streams"

typedef struct stream_events {
    /* The server's stream header.  ID (NULL when absent) is borrowed. */
    void (*opened)(const char *id, void *userdata);
    /* The server's <handshake/>: the component is authenticated. */
    void (*authenticated)(void *userdata);
    /* A stanza, borrowed for the call. */
    void (*stanza)(const wire_stanza_t *stanza, void *userdata);
    /* A <stream:error/>: its defined CONDITION (NULL when none is given)
     * and its TEXT (NULL when absent), borrowed.  The server closes next. */
    void (*error)(const char *condition, const char *text, void *userdata);
    void *userdata;
} stream_events_t;

typedef enum stream_status {
    STREAM_OK,     /* feed more */
    STREAM_CLOSED, /* the server's </stream:stream> was read */
    STREAM_BROKEN, /* not a well-formed XMPP stream: see the problem */
} stream_status_t;

typedef struct stream_parser stream_parser_t;

/* EVENTS is copied; members may be NULL. */
stream_parser_t *stream_parser_new(const stream_events_t *events);
void stream_parser_free(stream_parser_t *parser);

/* Parses the next LENGTH bytes of the stream, calling the events as
 * elements complete.  After anything but STREAM_OK, feed no more: for
 * STREAM_BROKEN, *PROBLEM (static text) says what was wrong. */
stream_status_t stream_parser_feed(stream_parser_t *parser, const char *bytes, size_t length,
                                   const char **problem);

/* Parses BYTES (LENGTH of them) as the stanzas of a component stream whose
 * header this function supplies, calling STANZA for each.  Returns how many
 * it handed over, or -1 when the bytes are not well-formed or end inside an
 * element (the stanzas before the fault were handed over).  For tests,
 * fuzzers and re-reading a kept request. */
int stream_parse_stanzas(const char *bytes, size_t length,
                         void (*stanza)(const wire_stanza_t *stanza, void *userdata),
                         void *userdata);

#endif
