/* Unit tests for plugins/dispatch-sticky through its descriptor, and for its
 * SipHash against the reference vectors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <glib.h>

#include "dispatch-checks.h"
#include "fake-host.h"
#include "siphash.h"

#define MAX_RESOURCES 16
#define SENDERS 10000

/* A fixture with SEED as [dispatch:sticky] seed (NULL: none) and N
 * candidates named "worker-0".. in order. */
static dispatch_fixture_t *fixture_new(const char *seed, size_t n)
{
    return dispatch_fixture_new(seed, "worker-", n);
}

/* Sender number I, with a resource that changes with I to show it is
 * ignored.  Returns a new string. */
static char *sender_jid(unsigned i)
{
    return g_strdup_printf("user%u@example.com/device%u", i, i % 3);
}

/* Fills PLACED[0..SENDERS) with each sender's resource number. */
static void place_all(dispatch_fixture_t *fx, size_t *placed)
{
    for (unsigned i = 0; i < SENDERS; i++) {
        char *jid = sender_jid(i);
        placed[i] = dispatch_pick(fx, jid);
        g_free(jid);
    }
}

static void descriptor__names__sticky_dispatch(void **unused)
{
    (void)unused;
    dispatch_assert_descriptor("sticky", false);
}

/* The placement of every instance, and of every version, depends on the hash
 * being exactly SipHash-2-4: the reference vectors (key 00..0f, message
 * 00..len-1) from the SipHash paper's reference code. */
static void siphash__matches__the_reference_vectors(void **unused)
{
    (void)unused;
    static const struct {
        size_t len;
        uint64_t hash;
    } vectors[] = {
        {0, UINT64_C(0x726fdb47dd0e0e31)},  {1, UINT64_C(0x74f839c593dc67fd)},
        {7, UINT64_C(0xab0200f58b01d137)},  {8, UINT64_C(0x93f5f5799a932462)},
        {15, UINT64_C(0xa129ca6149be45e5)}, {16, UINT64_C(0x3f2acc7f57c29bdb)},
        {63, UINT64_C(0x958a324ceb064572)},
        /* Past the reference vectors (the length byte wraps at 256), from
         * an independent Python model checked on the vectors above. */
        {200, UINT64_C(0x10849fe512591651)}, {256, UINT64_C(0x999d0526d2a7bfd7)},
        {300, UINT64_C(0x4b0b710db6117839)},
    };
    const uint64_t k0 = UINT64_C(0x0706050403020100), k1 = UINT64_C(0x0f0e0d0c0b0a0908);
    uint8_t message[300];
    for (size_t i = 0; i < sizeof message; i++)
        message[i] = (uint8_t)(i & 0xff);

    for (size_t v = 0; v < G_N_ELEMENTS(vectors); v++) {
        size_t len = vectors[v].len;
        sticky_siphash_t whole;
        sticky_siphash_init(&whole, k0, k1);
        sticky_siphash_update(&whole, message, len);
        assert_int_equal(sticky_siphash_final(&whole), vectors[v].hash);

        /* In pieces, and continued from a copy, as select() does. */
        for (size_t split = 0; split <= len; split++) {
            sticky_siphash_t prefix, rest;
            sticky_siphash_init(&prefix, k0, k1);
            sticky_siphash_update(&prefix, message, split);
            rest = prefix;
            for (size_t i = split; i < len; i++)
                sticky_siphash_byte(&rest, message[i]);
            assert_int_equal(sticky_siphash_final(&rest), vectors[v].hash);
        }
    }
}

static void select__keeps__a_sender_on_its_resource_whatever_the_order(void **unused)
{
    (void)unused;
    dispatch_fixture_t *fx = fixture_new("17", 7);
    GRand *rand = g_rand_new_with_seed(3);
    size_t placed[SENDERS];
    place_all(fx, placed);
    for (int round = 0; round < 5; round++) {
        dispatch_shuffle(fx, rand);
        for (unsigned i = 0; i < SENDERS; i += 7) {
            char *jid = sender_jid(i);
            assert_int_equal(dispatch_pick(fx, jid), placed[i]);
            assert_int_equal(dispatch_pick(fx, jid), placed[i]); /* and again: no memory of calls */
            g_free(jid);
        }
    }
    g_rand_free(rand);
    dispatch_fixture_free(fx);
}

static void select__ignores__case_of_the_bare_jid_and_the_resource(void **unused)
{
    (void)unused;
    dispatch_fixture_t *fx = fixture_new(NULL, 10);
    GRand *rand = g_rand_new_with_seed(8);
    unsigned varied = 0;
    for (unsigned i = 0; i < 2000; i++) {
        char *bare = g_strdup_printf("romeo.%u@Montague.example", i);
        char *lower = g_ascii_strdown(bare, -1);
        size_t expected = dispatch_pick(fx, lower);
        /* Random ASCII case, and every kind of resource part. */
        for (char *p = bare; *p; p++)
            *p = g_rand_boolean(rand) ? g_ascii_toupper(*p) : g_ascii_tolower(*p);
        char *with_resource = g_strdup_printf("%s/Orchard %u/x", bare, i);
        char *with_empty = g_strdup_printf("%s/", bare);
        assert_int_equal(dispatch_pick(fx, bare), expected);
        assert_int_equal(dispatch_pick(fx, with_resource), expected);
        assert_int_equal(dispatch_pick(fx, with_empty), expected);
        varied += expected != dispatch_pick(fx, "romeo@montague.example");
        g_free(bare);
        g_free(lower);
        g_free(with_resource);
        g_free(with_empty);
    }
    assert_true(varied > 1000); /* bare JIDs do matter: about 1800 expected */
    g_rand_free(rand);
    dispatch_fixture_free(fx);
}

static void select__spreads__senders_evenly(void **unused)
{
    (void)unused;
    static const size_t sizes[] = {5, 10};
    static const char *const seeds[] = {NULL, "12345"};
    for (size_t s = 0; s < G_N_ELEMENTS(sizes); s++) {
        for (size_t k = 0; k < G_N_ELEMENTS(seeds); k++) {
            size_t n = sizes[s];
            dispatch_fixture_t *fx = fixture_new(seeds[k], n);
            size_t placed[SENDERS];
            place_all(fx, placed);
            unsigned counts[MAX_RESOURCES] = {0};
            for (unsigned i = 0; i < SENDERS; i++)
                counts[placed[i]]++;
            dispatch_assert_uniform(counts, n, SENDERS, "seed %s", seeds[k] ? seeds[k] : "none");
            dispatch_fixture_free(fx);
        }
    }
}

/* When one of N leaves, exactly its senders move, about 1/N of them. */
static void assert_leave_moves_only_its_senders(size_t n, size_t gone)
{
    dispatch_fixture_t *fx = fixture_new(NULL, n);
    size_t before[SENDERS], after[SENDERS];
    place_all(fx, before);
    dispatch_leave(fx, gone);
    place_all(fx, after);
    unsigned moved = 0;
    for (unsigned i = 0; i < SENDERS; i++) {
        if (after[i] != before[i]) {
            moved++;
            if (before[i] != gone)
                fail_msg("n = %zu: sender %u moved from worker-%zu, which stayed", n, i,
                         before[i]);
        } else if (before[i] == gone) {
            fail_msg("n = %zu: sender %u still on worker-%zu, which left", n, i, gone);
        }
    }
    if (moved > 1.3 * SENDERS / n)
        fail_msg("n = %zu: %u of %d senders moved", n, moved, SENDERS);
    assert_true(moved > 0);
    dispatch_fixture_free(fx);
}

/* When one joins N, about 1/(N + 1) of the senders move, all to it. */
static void assert_join_moves_only_to_the_newcomer(size_t n)
{
    dispatch_fixture_t *fx = fixture_new(NULL, n);
    size_t before[SENDERS], after[SENDERS];
    place_all(fx, before);
    dispatch_join(fx, n);
    place_all(fx, after);
    unsigned moved = 0;
    for (unsigned i = 0; i < SENDERS; i++) {
        if (after[i] != before[i]) {
            moved++;
            if (after[i] != n)
                fail_msg("n = %zu: sender %u moved to worker-%zu, not the newcomer", n, i,
                         after[i]);
        }
    }
    double expected = (double)SENDERS / (double)(n + 1);
    if (moved < 0.7 * expected || moved > 1.3 * expected)
        fail_msg("n = %zu: %u senders moved to the newcomer, about %.0f expected", n, moved,
                 expected);
    dispatch_fixture_free(fx);
}

static void select__moves__only_the_senders_of_a_resource_that_left(void **unused)
{
    (void)unused;
    assert_leave_moves_only_its_senders(5, 0);
    assert_leave_moves_only_its_senders(5, 3);
    assert_leave_moves_only_its_senders(10, 4);
    assert_leave_moves_only_its_senders(10, 9);
}

static void select__moves__about_one_in_n_plus_one_to_a_newcomer(void **unused)
{
    (void)unused;
    assert_join_moves_only_to_the_newcomer(5);
    assert_join_moves_only_to_the_newcomer(10);
}

/* The placement is part of the interface: instances of different versions
 * must agree during an upgrade.  Expected choices from an independent Python
 * model of the documented scheme: key words from SplitMix64(seed), score =
 * SipHash-2-4(lowercase ASCII bare JID, NUL, resource name), highest wins. */
static void select__places__senders_as_the_documented_scheme_does(void **unused)
{
    (void)unused;
    static const char *const names[] = {"alpha", "beta", "gamma", "delta", "epsilon"};
    static const char *const senders[] = {
        "juliet@capulet.example/balcony", "Romeo@Montague.Example", "capulet.example",
        "nurse@capulet.example/a/b", "juliet@montague.example", "x", "ab@c/d", "a@bc/d",
        "TYBALT@capulet.example/Sword", "benvolio@montague.example/",
    };
    static const struct {
        const char *seed;
        const char *chosen[G_N_ELEMENTS(senders)];
    } expected[] = {
        {NULL, {"epsilon", "delta", "alpha", "delta", "gamma", "beta", "alpha", "gamma",
                "epsilon", "alpha"}},
        {"18446744073709551615", {"alpha", "delta", "epsilon", "epsilon", "alpha", "gamma",
                                  "delta", "delta", "gamma", "alpha"}},
    };
    for (size_t e = 0; e < G_N_ELEMENTS(expected); e++) {
        dispatch_fixture_t *fx = fixture_new(expected[e].seed, G_N_ELEMENTS(names));
        for (size_t i = 0; i < G_N_ELEMENTS(names); i++)
            fx->resources[i].name = names[i];
        for (size_t i = 0; i < G_N_ELEMENTS(senders); i++) {
            const char *chosen = fx->resources[dispatch_pick(fx, senders[i])].name;
            if (strcmp(chosen, expected[e].chosen[i]) != 0)
                fail_msg("seed %s, %s: chose %s, not %s",
                         expected[e].seed ? expected[e].seed : "none", senders[i], chosen,
                         expected[e].chosen[i]);
        }
        dispatch_fixture_free(fx);
    }
}

/* The domain is part of the bare JID: the same localpart at two domains is
 * two senders. */
static void select__tells_apart__the_same_localpart_at_two_domains(void **unused)
{
    (void)unused;
    dispatch_fixture_t *fx = fixture_new(NULL, 10);
    unsigned differ = 0;
    for (unsigned i = 0; i < 1000; i++) {
        char *a = g_strdup_printf("user%u@capulet.example/r", i);
        char *b = g_strdup_printf("user%u@montague.example/r", i);
        differ += dispatch_pick(fx, a) != dispatch_pick(fx, b);
        g_free(a);
        g_free(b);
    }
    assert_true(differ > 800); /* about 900 expected */
    dispatch_fixture_free(fx);
}

/* Instances agree: the choice depends on the names and the seed only, not
 * on where the host keeps its resources or in what order. */
static void select__agrees__between_instances_with_the_same_seed(void **unused)
{
    (void)unused;
    GRand *rand = g_rand_new_with_seed(21);
    dispatch_fixture_t *a = fixture_new(NULL, 6);
    dispatch_fixture_t *b = fixture_new("0", 6); /* no seed is seed 0 */
    dispatch_fixture_t *c = fixture_new("18446744073709551615", 6);
    dispatch_fixture_t *d = fixture_new("18446744073709551615", 6);
    dispatch_shuffle(b, rand);
    dispatch_shuffle(d, rand);
    unsigned same_as_c = 0;
    for (unsigned i = 0; i < 3000; i++) {
        char *jid = sender_jid(i);
        size_t x = dispatch_pick(a, jid);
        assert_int_equal(dispatch_pick(b, jid), x);
        size_t y = dispatch_pick(c, jid);
        assert_int_equal(dispatch_pick(d, jid), y);
        same_as_c += x == y;
        g_free(jid);
    }
    /* Another seed, another placement: about 1/6 agree by chance. */
    assert_true(same_as_c < 1000);
    g_rand_free(rand);
    dispatch_fixture_free(a);
    dispatch_fixture_free(b);
    dispatch_fixture_free(c);
    dispatch_fixture_free(d);
}

static void select__handles__one_candidate_and_none(void **unused)
{
    (void)unused;
    dispatch_fixture_t *fx = fixture_new(NULL, 1);
    assert_int_equal(dispatch_pick(fx, "a@b"), 0);
    assert_int_equal(dispatch_pick(fx, "b.example"), 0);
    const cp_dispatch_request_t request = {.sender = "a@b/c", .type = "set", .payload_ns = NULL};
    assert_int_equal(fx->ops->select(fx->state, &request, fx->candidates, 0), CP_EDECLINE);
    dispatch_fixture_free(fx);
}

static void init__refuses__a_malformed_seed(void **unused)
{
    (void)unused;
    static const char *const bad[] = {
        "", "abc", "-1", "1.5", " 1", "1 ", "0x10", "18446744073709551616",
        "99999999999999999999999",
    };
    dispatch_assert_seeds_refused(bad, G_N_ELEMENTS(bad));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(descriptor__names__sticky_dispatch),
        cmocka_unit_test(siphash__matches__the_reference_vectors),
        cmocka_unit_test(select__keeps__a_sender_on_its_resource_whatever_the_order),
        cmocka_unit_test(select__ignores__case_of_the_bare_jid_and_the_resource),
        cmocka_unit_test(select__spreads__senders_evenly),
        cmocka_unit_test(select__moves__only_the_senders_of_a_resource_that_left),
        cmocka_unit_test(select__moves__about_one_in_n_plus_one_to_a_newcomer),
        cmocka_unit_test(select__places__senders_as_the_documented_scheme_does),
        cmocka_unit_test(select__tells_apart__the_same_localpart_at_two_domains),
        cmocka_unit_test(select__agrees__between_instances_with_the_same_seed),
        cmocka_unit_test(select__handles__one_candidate_and_none),
        cmocka_unit_test(init__refuses__a_malformed_seed),
    };
    return cmocka_run_group_tests_name("dispatch-sticky", tests, NULL, NULL);
}
