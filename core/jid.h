/* JIDs as client-proxy handles them: split, joined, compared and checked.
 *
 * Addresses on a component stream have been checked by the server, so
 * splitting at the first '/' is exact: neither the localpart nor the
 * domainpart may contain one (RFC 7622).  These helpers never allocate. */
#ifndef CP_CORE_JID_H
#define CP_CORE_JID_H

#include <stdbool.h>
#include <stddef.h>

/* A bare JID (localpart@domainpart) is at most 1023 + 1 + 1023 bytes. */
#define JID_BARE_MAX 2047

/* Length of JID's bare part: everything before the first '/'. */
size_t jid_bare_length(const char *jid);

/* JID's resourcepart (borrowed from JID), or NULL when it has none. */
const char *jid_resource(const char *jid);

/* True when JID's bare part is BARE, ignoring ASCII case: the server has
 * normalised JID, but an operator may write a configured JID in another
 * case. */
bool jid_bare_equal(const char *jid, const char *bare);

/* True when A and B are the same JID: bare parts equal ignoring ASCII case,
 * resources (or their absence) byte for byte. */
bool jid_equal(const char *a, const char *b);

/* Copies JID's bare part into BARE (SIZE bytes).  Returns false, leaving
 * BARE empty, when it does not fit. */
bool jid_split_bare(const char *jid, char *bare, size_t size);

/* Writes BARE/RESOURCE into FULL (SIZE bytes), truncated to fit: no server
 * accepts a JID that long anyway.  Cheaper than snprintf(), which showed in
 * profiles. */
void jid_join(char *full, size_t size, const char *bare, const char *resource);

/* True when TEXT can be a domainpart we put in a configuration: 1 to 1023
 * bytes, none of them a space, control character or one of "/@:'\"&<>". */
bool jid_is_domain(const char *text);

/* True when TEXT is localpart@domainpart, each part as jid_is_domain()
 * checks it. */
bool jid_is_bare(const char *text);

#endif
