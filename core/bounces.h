/* Where the bounce of a message a resource sent goes back to.
 *
 * A message from a resource to a user keeps its id; if the user's server
 * cannot deliver it, it comes back as a message of type error from the
 * user, with that id, to the bare domain.  For a while (BOUNCES_KEEP_S,
 * and at most BOUNCES_MAX messages) the router remembers which resource
 * sent which id to whom, through which address, to route the bounce back.
 * A message without an id cannot be matched, and is not remembered. */
#ifndef CP_CORE_BOUNCES_H
#define CP_CORE_BOUNCES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BOUNCES_KEEP_S 300
#define BOUNCES_MAX 10000

typedef struct bounces bounces_t;

bounces_t *bounces_new(void);
void bounces_free(bounces_t *bounces);

/* RESOURCE (a full JID) sent message ID to USER through ADDRESS at NOW
 * (monotonic µs).  Every string is copied. */
void bounces_remember(bounces_t *bounces, const char *user, const char *id,
                      const char *resource, const char *address, int64_t now);

/* The sender of message ID to USER, if remembered: returns true and gives
 * the resource and the address (new strings for the caller) and forgets
 * it.  Messages older than BOUNCES_KEEP_S at NOW are forgotten first. */
bool bounces_take(bounces_t *bounces, const char *user, const char *id, int64_t now,
                  char **resource, char **address);

size_t bounces_count(const bounces_t *bounces);

#endif
