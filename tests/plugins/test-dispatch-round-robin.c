/* Unit tests for plugins/dispatch-round-robin through its descriptor.  The
 * fixture plays the host: it announces resources, keeps the candidates in an
 * array it swap-removes from (as core/ does), and can shuffle that array
 * before every call so that nothing may depend on its order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <glib.h>

#include "dispatch-checks.h"
#include "fake-host.h"

#define MAX_RESOURCES 32

/* A fixture with nobody online.  SHUFFLE_SEED != 0 shuffles the candidates
 * before every select(). */
static dispatch_fixture_t *fixture_new(guint32 shuffle_seed)
{
    dispatch_fixture_t *fx = dispatch_fixture_new(NULL, "res", 0);
    if (shuffle_seed != 0)
        fx->shuffle = g_rand_new_with_seed(shuffle_seed);
    return fx;
}

/* Places one request among CANDIDATES[0..N); returns the chosen resource's
 * number. */
static size_t pick_among(dispatch_fixture_t *fx, const cp_resource_t **candidates, size_t n)
{
    return dispatch_pick_among(fx, dispatch_request.sender, candidates, n);
}

/* Places one request among the online resources. */
static size_t pick(dispatch_fixture_t *fx)
{
    return dispatch_pick(fx, dispatch_request.sender);
}

static void descriptor__names__round_robin_dispatch(void **unused)
{
    (void)unused;
    dispatch_assert_descriptor("round-robin", true);
}

static void select__gives__each_of_n_exactly_k_of_k_times_n(void **unused)
{
    (void)unused;
    static const size_t sizes[] = {1, 2, 3, 5, 7, 13, MAX_RESOURCES};
    for (guint32 shuffle_seed = 0; shuffle_seed <= 1; shuffle_seed++) {
        for (size_t s = 0; s < G_N_ELEMENTS(sizes); s++) {
            size_t n = sizes[s];
            dispatch_fixture_t *fx = fixture_new(shuffle_seed);
            for (size_t r = 0; r < n; r++)
                dispatch_join(fx, r);
            unsigned counts[MAX_RESOURCES] = {0};
            const unsigned k = 37;
            for (unsigned i = 0; i < k * n; i++) {
                size_t chosen = pick(fx);
                /* Strict rotation, in the order they came online. */
                if (chosen != i % n)
                    fail_msg("n = %zu, request %u went to res%zu, not res%zu", n, i, chosen,
                             (size_t)(i % n));
                counts[chosen]++;
            }
            for (size_t r = 0; r < n; r++)
                assert_int_equal(counts[r], k);
            dispatch_fixture_free(fx);
        }
    }
}

static void select__goes_on__after_the_cursor_when_another_leaves(void **unused)
{
    (void)unused;
    enum { A, B, C };
    dispatch_fixture_t *fx = fixture_new(0);
    dispatch_join(fx, A);
    dispatch_join(fx, B);
    dispatch_join(fx, C);
    assert_int_equal(pick(fx), A);
    dispatch_leave(fx, B); /* swap-remove: the array is now A, C */
    assert_int_equal(pick(fx), C);
    assert_int_equal(pick(fx), A);
    assert_int_equal(pick(fx), C);
    dispatch_fixture_free(fx);
}

static void select__goes_on__with_the_successor_when_the_last_chosen_leaves(void **unused)
{
    (void)unused;
    enum { A, B, C, D };
    dispatch_fixture_t *fx = fixture_new(0);
    for (size_t r = A; r <= D; r++)
        dispatch_join(fx, r);
    assert_int_equal(pick(fx), A);
    assert_int_equal(pick(fx), B);
    dispatch_leave(fx, B);
    assert_int_equal(pick(fx), C);
    assert_int_equal(pick(fx), D);
    dispatch_leave(fx, D); /* the last of the ring: the rotation wraps to the head */
    assert_int_equal(pick(fx), A);
    dispatch_leave(fx, A); /* the head */
    assert_int_equal(pick(fx), C);
    assert_int_equal(pick(fx), C);
    dispatch_fixture_free(fx);
}

static void select__gives__a_newcomer_its_turn_within_one_round(void **unused)
{
    (void)unused;
    enum { A, B, C, D };
    dispatch_fixture_t *fx = fixture_new(0);
    dispatch_join(fx, A);
    dispatch_join(fx, B);
    dispatch_join(fx, C);
    assert_int_equal(pick(fx), A);
    assert_int_equal(pick(fx), B);
    dispatch_join(fx, D);
    /* Everyone once, D included, before anyone twice. */
    assert_int_equal(pick(fx), C);
    assert_int_equal(pick(fx), D);
    assert_int_equal(pick(fx), A);
    assert_int_equal(pick(fx), B);
    assert_int_equal(pick(fx), C);
    dispatch_fixture_free(fx);
}

/* Random joins, leaves and requests, with the array shuffled on every call:
 * after any change, nobody is chosen twice before every candidate once, and
 * a newcomer is chosen within as many requests as there are candidates. */
static void select__stays__fair_through_random_joins_and_leaves(void **unused)
{
    (void)unused;
    dispatch_fixture_t *fx = fixture_new(99);
    GRand *rand = g_rand_new_with_seed(2024);
    bool online[MAX_RESOURCES] = {false};
    bool seen[MAX_RESOURCES] = {false};
    size_t seen_count = 0;
    size_t newcomer = SIZE_MAX, newcomer_budget = 0;
    unsigned changes = 0;

    for (int step = 0; step < 20000; step++) {
        int action = g_rand_int_range(rand, 0, 10);
        size_t r = (size_t)g_rand_int_range(rand, 0, MAX_RESOURCES);
        if (action == 0 && fx->n > 1 && online[r] && r != newcomer) {
            dispatch_leave(fx, r);
            online[r] = false;
        } else if (action == 1 && !online[r] && newcomer == SIZE_MAX) {
            dispatch_join(fx, r);
            online[r] = true;
            newcomer = r;
            newcomer_budget = fx->n;
        } else if (fx->n > 0) {
            size_t chosen = pick(fx);
            assert_true(online[chosen]);
            if (seen_count == fx->n) { /* a round is complete: start another */
                memset(seen, 0, sizeof seen);
                seen_count = 0;
            }
            if (seen[chosen])
                fail_msg("step %d: res%zu chosen twice in one round of %zu", step, chosen,
                         fx->n);
            seen[chosen] = true;
            seen_count++;
            if (chosen == newcomer)
                newcomer = SIZE_MAX;
            else if (newcomer != SIZE_MAX && --newcomer_budget == 0)
                fail_msg("step %d: newcomer res%zu not chosen within a round", step, newcomer);
            continue;
        } else {
            continue;
        }
        /* A change starts a new round. */
        memset(seen, 0, sizeof seen);
        seen_count = 0;
        changes++;
    }
    assert_true(changes > 1000);
    g_rand_free(rand);
    dispatch_fixture_free(fx);
}

/* A resource the host leaves out (draining, filtered) keeps its place in the
 * ring and is skipped, not forgotten. */
static void select__skips__online_resources_that_are_not_candidates(void **unused)
{
    (void)unused;
    enum { A, B, C, D };
    dispatch_fixture_t *fx = fixture_new(0);
    for (size_t r = A; r <= D; r++)
        dispatch_join(fx, r);
    const cp_resource_t *some[] = {&fx->resources[D], &fx->resources[B]};
    assert_int_equal(pick_among(fx, some, 2), B);
    assert_int_equal(pick_among(fx, some, 2), D);
    assert_int_equal(pick_among(fx, some, 2), B);
    /* Everyone eligible again: the rotation goes on after B. */
    assert_int_equal(pick(fx), C);
    assert_int_equal(pick(fx), D);
    assert_int_equal(pick(fx), A);
    dispatch_fixture_free(fx);
}

/* A candidate the host did not announce is served too, last in the ring. */
static void select__adopts__a_candidate_never_announced(void **unused)
{
    (void)unused;
    enum { A, B, X = 9 };
    dispatch_fixture_t *fx = fixture_new(0);
    dispatch_join(fx, A);
    dispatch_join(fx, B);
    const cp_resource_t *all[] = {&fx->resources[X], &fx->resources[B], &fx->resources[A]};
    assert_int_equal(pick_among(fx, all, 3), A);
    assert_int_equal(pick_among(fx, all, 3), B);
    assert_int_equal(pick_among(fx, all, 3), X);
    assert_int_equal(pick_among(fx, all, 3), A);
    fx->ops->resource_offline(fx->state, &fx->resources[X]);
    assert_int_equal(pick(fx), B);
    assert_int_equal(pick(fx), A);
    dispatch_fixture_free(fx);
}

static void resource_offline__ignores__an_unknown_resource(void **unused)
{
    (void)unused;
    dispatch_fixture_t *fx = fixture_new(0);
    dispatch_join(fx, 0);
    dispatch_join(fx, 1);
    fx->ops->resource_offline(fx->state, &fx->resources[5]);
    fx->ops->resource_online(fx->state, &fx->resources[0]); /* again: keeps its place */
    assert_int_equal(pick(fx), 0);
    assert_int_equal(pick(fx), 1);
    assert_int_equal(pick(fx), 0);
    assert_int_equal(fx->ops->select(fx->state, &dispatch_request, fx->candidates, 0), CP_EDECLINE);
    dispatch_fixture_free(fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(descriptor__names__round_robin_dispatch),
        cmocka_unit_test(select__gives__each_of_n_exactly_k_of_k_times_n),
        cmocka_unit_test(select__goes_on__after_the_cursor_when_another_leaves),
        cmocka_unit_test(select__goes_on__with_the_successor_when_the_last_chosen_leaves),
        cmocka_unit_test(select__gives__a_newcomer_its_turn_within_one_round),
        cmocka_unit_test(select__stays__fair_through_random_joins_and_leaves),
        cmocka_unit_test(select__skips__online_resources_that_are_not_candidates),
        cmocka_unit_test(select__adopts__a_candidate_never_announced),
        cmocka_unit_test(resource_offline__ignores__an_unknown_resource),
    };
    return cmocka_run_group_tests_name("dispatch-round-robin", tests, NULL, NULL);
}
