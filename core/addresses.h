/* Users' addresses, as the implementing client sees them:
 * <domain>/<address>, where the encoding plugin writes the address.
 *
 * Every token client-proxy gives out is one (plugin.h, "Addresses"): it
 * stays valid for [proxy] address_lifetime after it was given out, so that
 * a resource can write to the user later.  This module owns the encoding
 * instances: the one that makes new addresses, and those a reload replaced,
 * which still read the addresses they made until their lifetime is over. */
#ifndef CP_CORE_ADDRESSES_H
#define CP_CORE_ADDRESSES_H

#include <stdbool.h>
#include <stdint.h>

#include <client-proxy/plugin.h>

#include "config.h"
#include "plugin-loader.h"

typedef struct addresses addresses_t;

/* Makes addresses with JAT (a reference is taken) for CONFIG's lifetime
 * (read during the call). */
addresses_t *addresses_new(const config_t *config, plugin_t *jat);
void addresses_free(addresses_t *addresses);

/* New addresses come from JAT (referenced) and live CONFIG's lifetime; the
 * instance they came from before keeps reading its own for that long. */
void addresses_reconfigure(addresses_t *addresses, const config_t *config, plugin_t *jat);

/* Writes the address of SENDER into TOKEN (CP_TOKEN_MAX + 1 bytes) and
 * returns the instance that made it (borrowed: plugin_ref() it to keep
 * it), or NULL when the encoding cannot write this sender.  The address is
 * pinned until plugin_forget() on that instance. */
plugin_t *addresses_issue(addresses_t *addresses, const char *sender, char *token);

/* Reads ADDRESS, which a resource wrote, into JID (CP_JID_MAX + 1 bytes):
 * true when the current encoding, or one a reload retired, reads it. */
bool addresses_read(addresses_t *addresses, const char *address, char *jid);

/* Lets go of the retired instances whose addresses have all expired by NOW
 * (monotonic µs). */
void addresses_expire(addresses_t *addresses, int64_t now);

/* When addresses_expire() next has something to do (monotonic µs), or -1. */
int64_t addresses_next_expiry(const addresses_t *addresses);

#endif
