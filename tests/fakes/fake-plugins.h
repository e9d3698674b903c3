/* Fake plugins of both kinds for the router's unit tests and its fuzz
 * target, linked into the test program (plugin_new_builtin()).
 *
 * Every instance keeps its own books and checks the host's side of the
 * contract in include/client-proxy/plugin.h as it goes: select() sees only
 * announced, non-draining candidates, resource_online()/resource_offline()
 * pair up, every token issued is forgotten exactly once and before fini()
 * of the instance that issued it.  As plugin.h asks from ABI 1.1, a token
 * forgotten still decodes: it is its sender's address.  A broken promise is reported through
 * fake_world.violation.
 *
 * Plugins' init() takes no argument of the test's, so the fakes find what
 * steers them in fake_world, which each test (or fuzz input) resets with
 * fake_world_reset() first. */
#ifndef CP_TESTS_FAKE_PLUGINS_H
#define CP_TESTS_FAKE_PLUGINS_H

#include <stdbool.h>

#include <glib.h>

#include <client-proxy/plugin.h>

typedef struct fake_dispatch {
    GHashTable *online; /* const cp_resource_t * -> its name (owned) */
} fake_dispatch_t;

typedef struct fake_jat {
    GHashTable *known;  /* token -> sender JID, both owned: every token issued,
                           which stays the sender's address (ABI 1.1) */
    GHashTable *live;   /* token -> pins (GUINT_TO_POINTER): issued and not yet
                           forgotten as often as issued */
} fake_jat_t;

typedef struct fake_world {
    /* What the test steers. */
    const char *preferred;   /* choose the candidate of this name when there is one */
    unsigned pick;           /* else candidate pick % n */
    bool decline;            /* select() declines */
    bool decline_unless_alone; /* select() declines while there are two
                                  candidates or more */
    bool fail_encode;        /* encode() fails with CP_ETOOLONG */
    bool fail_decode;        /* decode() rejects every token (CP_EBADTOKEN) */
    /* What the fakes saw. */
    unsigned issued;         /* tokens issued: "t1", "t2", ... */
    unsigned forgotten;
    unsigned online_calls, offline_calls;
    size_t last_n;           /* candidates of the last select() */
    const cp_resource_t *const *last_candidates; /* the array it was given,
                                to tell whether the host copied its list:
                                the host's, borrowed; compared, never read
                                once select() has returned */
    cp_dispatch_request_t last_request; /* of the last select(); strings owned
                                           by fake_world (last_sender etc.) */
    char *chosen;            /* name select() returned last, or NULL: owned */
    fake_dispatch_t *dispatch; /* the strategy instance created last */
    GPtrArray *jat_instances;  /* every fake_jat_t alive */
    /* How a broken promise is reported: aborts by default. */
    void (*violation)(const char *message);
} fake_world_t;

extern fake_world_t fake_world;

/* Forgets everything of the previous run (no instance may be alive) and
 * reports violations through VIOLATION (NULL: abort). */
void fake_world_reset(void (*violation)(const char *message));
/* Frees what fake_world holds; every instance must have been finished. */
void fake_world_clear(void);

/* Clears fake_world.chosen. */
void fake_world_forget_choice(void);

/* True when TOKEN is pinned (issued, not yet forgotten) in some encoding
 * instance. */
bool fake_world_token_is_live(const char *token);

/* True when some encoding instance issued TOKEN: it is an address. */
bool fake_world_token_is_known(const char *token);

/* True when the current strategy instance was told NAME is online. */
bool fake_world_is_online(const char *name);

extern const cp_plugin_descriptor_t fake_dispatch_descriptor;
extern const cp_plugin_descriptor_t fake_jat_descriptor;

#endif
