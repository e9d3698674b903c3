/* Fixture and checks shared by the tests of every dispatch strategy. */
#ifndef TESTS_PLUGINS_DISPATCH_CHECKS_H
#define TESTS_PLUGINS_DISPATCH_CHECKS_H

#include <stdbool.h>
#include <stddef.h>

#include <glib.h>

#include <client-proxy/plugin.h>

#define DISPATCH_MAX_RESOURCES 64

/** A plugin instance and the resources a host would hand it.  The fixture
 *  plays the host: it keeps the candidates in an array it swap-removes
 *  from, as core/ does. */
typedef struct dispatch_fixture {
    cp_host_t *host;
    void *state;
    const cp_dispatch_ops_t *ops;
    cp_resource_t resources[DISPATCH_MAX_RESOURCES]; /* resource r is named PREFIX r */
    char names[DISPATCH_MAX_RESOURCES][16];
    const cp_resource_t *candidates[DISPATCH_MAX_RESOURCES];
    size_t n;       /* candidates[0..n) are in use */
    GRand *shuffle; /* NULL, or dispatch_pick() shuffles the candidates first; owned */
} dispatch_fixture_t;

/** A get from juliet@example.com/balcony with a ping payload, which has no
 *  attributes. */
extern const cp_dispatch_request_t dispatch_request;

/** Makes a host with SEED as its "seed" (NULL: none) and inits the plugin,
 *  which must succeed.  The resources are named PREFIX0, PREFIX1, ...; the
 *  first N (no presence announced) are the candidates, in order. */
dispatch_fixture_t *dispatch_fixture_new(const char *seed, const char *prefix, size_t n);
/** dispatch_fixture_new() with the options CONFIG (key, value pairs,
 *  NULL-terminated) instead of a seed. */
dispatch_fixture_t *dispatch_fixture_new_with(const char *const *config, const char *prefix,
                                              size_t n);
/** Finis the plugin, with whoever is still online, and frees the fixture. */
void dispatch_fixture_free(dispatch_fixture_t *fx);

/** Resource R comes online (resource_online(), when the plugin has it) and
 *  becomes the last candidate. */
void dispatch_join(dispatch_fixture_t *fx, size_t r);
/** Resource R goes offline (resource_offline(), when the plugin has it)
 *  and is swap-removed from the candidates; it must be one. */
void dispatch_leave(dispatch_fixture_t *fx, size_t r);
/** Shuffles candidates[0..n) with RAND. */
void dispatch_shuffle(dispatch_fixture_t *fx, GRand *rand);

/** Selects for dispatch_request among the first N candidates; asserts that
 *  an index in range comes back and returns it. */
int dispatch_select(dispatch_fixture_t *fx, size_t n);
/** Selects for a request from SENDER among CANDIDATES[0..N); asserts that
 *  an index in range comes back and returns the chosen resource's number. */
size_t dispatch_pick_among(dispatch_fixture_t *fx, const char *sender,
                           const cp_resource_t *const *candidates, size_t n);
/** dispatch_pick_among() the fixture's candidates, shuffled first when
 *  fx->shuffle is set. */
size_t dispatch_pick(dispatch_fixture_t *fx, const char *sender);
/** dispatch_pick() for REQUEST as it is (its payload's attributes, say). */
size_t dispatch_pick_request(dispatch_fixture_t *fx, const cp_dispatch_request_t *request);

/** Pearson's chi-square statistic of COUNTS[0..N) against a uniform
 *  distribution over TOTAL draws. */
double dispatch_chi_square(const unsigned *counts, size_t n, unsigned total);
/** The critical value of chi-square at p = 0.999 for DEGREES (1..10)
 *  degrees of freedom. */
double dispatch_critical_0999(size_t degrees);
/** Fails, saying what was counted (FMT, printf-style), unless COUNTS[0..N)
 *  of TOTAL draws pass the chi-square test of uniformity at p = 0.999. */
void dispatch_assert_uniform(const unsigned *counts, size_t n, unsigned total, const char *fmt,
                             ...) G_GNUC_PRINTF(4, 5);

/** Asserts the descriptor is a dispatch strategy named NAME whose ops have
 *  select() and, exactly when PRESENCE_HOOKS, the presence hooks. */
void dispatch_assert_descriptor(const char *name, bool presence_hooks);
/** Asserts init refuses each of BAD[0..COUNT) as "seed", with one
 *  config_error() on seed saying it is not an unsigned integer. */
void dispatch_assert_seeds_refused(const char *const *bad, size_t count);
/** Asserts two instances with one seed choose alike among 7, and one with
 *  another seed mostly does not. */
void dispatch_assert_seed_repeats_choices(void);
/** Asserts two unseeded instances choose alike among N fewer than MAX_SAME
 *  times in 1000, and that init fails when no random bytes can be had. */
void dispatch_assert_seeded_from_random(size_t n, unsigned max_same);

#endif
